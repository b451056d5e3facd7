//! Sampling settings, their validation, and the llama.cpp sampler chain built from them
//! (`sampler_chain`).

use llama_cpp_2::sampling::LlamaSampler;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Settings for choosing the next token. `temperature == 0` means greedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    pub temperature: f32,
    /// 0 = off.
    pub top_k: u32,
    /// 1.0 = off.
    pub top_p: f32,
    /// 0.0 = off.
    pub min_p: f32,
    /// 1.0 = off.
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: u32,
    pub seed: u32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 42,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
#[error("invalid {name} = {value}: must be {range}")]
pub struct InvalidParam {
    pub name: &'static str,
    pub value: String,
    pub range: &'static str,
}

fn check(
    ok: bool,
    name: &'static str,
    value: f32,
    range: &'static str,
) -> Result<(), InvalidParam> {
    if ok {
        Ok(())
    } else {
        Err(InvalidParam {
            name,
            value: value.to_string(),
            range,
        })
    }
}

impl SamplingParams {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    pub fn validate(&self) -> Result<(), InvalidParam> {
        let t = self.temperature;
        check(
            t.is_finite() && (0.0..=5.0).contains(&t),
            "temperature",
            t,
            "between 0 and 5 (0 = greedy)",
        )?;
        let p = self.top_p;
        check(
            p.is_finite() && p > 0.0 && p <= 1.0,
            "top_p",
            p,
            "in (0, 1] (1 = off)",
        )?;
        let m = self.min_p;
        check(
            m.is_finite() && (0.0..1.0).contains(&m),
            "min_p",
            m,
            "in [0, 1) (0 = off)",
        )?;
        let r = self.repeat_penalty;
        check(
            r.is_finite() && (0.1..=5.0).contains(&r),
            "repeat_penalty",
            r,
            "between 0.1 and 5 (1 = off)",
        )?;
        if self.repeat_last_n > 65_536 {
            return Err(InvalidParam {
                name: "repeat_last_n",
                value: self.repeat_last_n.to_string(),
                range: "at most 65536 (0 = off)",
            });
        }
        if self.top_k > 1_000_000 {
            return Err(InvalidParam {
                name: "top_k",
                value: self.top_k.to_string(),
                range: "at most 1000000 (0 = off)",
            });
        }
        Ok(())
    }
}

/// Builds the sampler chain for `p`; llama.cpp's order: penalties, truncation, temperature, draw.
pub(super) fn sampler_chain(p: &SamplingParams, n_vocab: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    if p.repeat_penalty != 1.0 {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            p.repeat_last_n as i32,
            p.repeat_penalty,
            0.0,
            0.0,
        ));
    }
    if p.is_greedy() {
        chain.push(LlamaSampler::greedy());
    } else {
        if p.top_k > 0 {
            chain.push(LlamaSampler::top_k(p.top_k as i32));
        }
        if p.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(p.top_p, 1));
        }
        if p.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(p.min_p, 1));
        }
        chain.push(LlamaSampler::temp(p.temperature));
        chain.push(LlamaSampler::dist(p.seed));
    }
    LlamaSampler::chain_simple(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(SamplingParams::default().validate(), Ok(()));
        assert_eq!(SamplingParams::greedy().validate(), Ok(()));
    }

    #[test]
    fn rejects_out_of_range_values_naming_them() {
        let cases: Vec<(SamplingParams, &str)> = vec![
            (
                SamplingParams {
                    temperature: -0.1,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    temperature: f32::NAN,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    top_p: 0.0,
                    ..Default::default()
                },
                "top_p",
            ),
            (
                SamplingParams {
                    top_p: 1.5,
                    ..Default::default()
                },
                "top_p",
            ),
            (
                SamplingParams {
                    min_p: 1.0,
                    ..Default::default()
                },
                "min_p",
            ),
            (
                SamplingParams {
                    repeat_penalty: 0.0,
                    ..Default::default()
                },
                "repeat_penalty",
            ),
            (
                SamplingParams {
                    top_k: 2_000_000,
                    ..Default::default()
                },
                "top_k",
            ),
            (
                SamplingParams {
                    repeat_last_n: 2_000_000_000,
                    ..Default::default()
                },
                "repeat_last_n",
            ),
        ];
        for (params, name) in cases {
            let err = params.validate().unwrap_err();
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
