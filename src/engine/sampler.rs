//! Sampling settings: one table of the parameters ([`PARAMS`]: each one's
//! range, words, help and what-if step, read by validation, the settings
//! form and the keys), the values read and written by name, and the
//! llama.cpp sampler chain built from them (`sampler_chain`).

use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
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
pub struct InvalidParam {
    pub name: &'static str,
    pub value: String,
    pub range: &'static str,
}

// Its words and Display are in `api/error.rs` (`InvalidParam::words`): the
// engine process refuses a request with them, and the protocol is the lower room.

/// Which sampling parameter a [`Param`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamName {
    Temperature,
    TopK,
    TopP,
    MinP,
    RepeatPenalty,
    RepeatLastN,
    Seed,
}

/// How the token cursor's what-if keys move a parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WhatIfStep {
    /// By `by` down or up, kept within `[min, max]`, then rounded to a
    /// multiple of `grid` (so repeated presses land on round values).
    Linear {
        by: f32,
        min: f32,
        max: f32,
        grid: f32,
    },
    /// To the next rung of a ladder: down to the largest below (or 0), up
    /// to the smallest above (or stay).
    Ladder(&'static [u32]),
}

/// One sampling parameter as a user sets it: the one table that validation
/// ([`SamplingParams::validate`]), the settings form and the what-if keys
/// read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Param {
    pub which: ParamName,
    /// The config key, the settings form's label, the name in errors.
    pub name: &'static str,
    /// The values accepted: `min..=max`, each end excluded when its `_open`
    /// flag is set (floats must be finite too).
    pub min: f64,
    pub min_open: bool,
    pub max: f64,
    pub max_open: bool,
    /// The accepted values in words, as an error says them.
    pub range: &'static str,
    /// The settings form's help for it; `None`: not in the form.
    pub help: Option<&'static str>,
    /// How the what-if keys move it; `None`: they do not.
    pub whatif: Option<WhatIfStep>,
}

impl Param {
    /// Whether `v` is an accepted value.
    pub(crate) fn accepts(&self, v: f64) -> bool {
        v.is_finite()
            && if self.min_open {
                v > self.min
            } else {
                v >= self.min
            }
            && if self.max_open {
                v < self.max
            } else {
                v <= self.max
            }
    }

    /// The row of `which`.
    pub fn of(which: ParamName) -> &'static Param {
        PARAMS
            .iter()
            .find(|p| p.which == which)
            .expect("every parameter has a row")
    }

    /// The row named `name` (a config key or form label), if any.
    pub fn named(name: &str) -> Option<&'static Param> {
        PARAMS.iter().find(|p| p.name == name)
    }
}

const fn closed(
    which: ParamName,
    name: &'static str,
    min: f64,
    max: f64,
    range: &'static str,
    help: Option<&'static str>,
    whatif: Option<WhatIfStep>,
) -> Param {
    Param {
        which,
        name,
        min,
        min_open: false,
        max,
        max_open: false,
        range,
        help,
        whatif,
    }
}

/// Every sampling parameter, in the settings form's order.
pub(crate) const PARAMS: &[Param] = &[
    closed(
        ParamName::Temperature,
        "temperature",
        0.0,
        5.0,
        "between 0 and 5 (0 = greedy)",
        Some("0 = greedy, up to 5"),
        Some(WhatIfStep::Linear {
            by: 0.1,
            min: 0.0,
            max: 5.0,
            grid: 0.05,
        }),
    ),
    closed(
        ParamName::TopK,
        "top_k",
        0.0,
        1_000_000.0,
        "at most 1000000 (0 = off)",
        Some("0 = off"),
        Some(WhatIfStep::Ladder(&[0, 1, 2, 5, 10, 20, 40, 100, 200])),
    ),
    Param {
        min_open: true,
        ..closed(
            ParamName::TopP,
            "top_p",
            0.0,
            1.0,
            "in (0, 1] (1 = off)",
            Some("(0, 1], 1 = off"),
            Some(WhatIfStep::Linear {
                by: 0.05,
                min: 0.05,
                max: 1.0,
                grid: 0.01,
            }),
        )
    },
    Param {
        max_open: true,
        ..closed(
            ParamName::MinP,
            "min_p",
            0.0,
            1.0,
            "in [0, 1) (0 = off)",
            Some("[0, 1), 0 = off"),
            Some(WhatIfStep::Linear {
                by: 0.01,
                min: 0.0,
                max: 0.5,
                grid: 0.005,
            }),
        )
    },
    closed(
        ParamName::RepeatPenalty,
        "repeat_penalty",
        0.1,
        5.0,
        "between 0.1 and 5 (1 = off)",
        Some("0.1 to 5, 1 = off"),
        None,
    ),
    closed(
        ParamName::RepeatLastN,
        "repeat_last_n",
        0.0,
        65_536.0,
        "at most 65536 (0 = off)",
        None,
        None,
    ),
    closed(
        ParamName::Seed,
        "seed",
        0.0,
        u32::MAX as f64,
        "a whole number from 0 to 4294967295",
        Some("random seed"),
        None,
    ),
];

impl SamplingParams {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    pub(crate) fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// The value of `which`.
    pub fn get(&self, which: ParamName) -> f64 {
        match which {
            ParamName::Temperature => self.temperature as f64,
            ParamName::TopK => self.top_k as f64,
            ParamName::TopP => self.top_p as f64,
            ParamName::MinP => self.min_p as f64,
            ParamName::RepeatPenalty => self.repeat_penalty as f64,
            ParamName::RepeatLastN => self.repeat_last_n as f64,
            ParamName::Seed => self.seed as f64,
        }
    }

    /// The value of `which` as the user wrote it (`0.1`, not `0.10000000149`).
    pub fn text(&self, which: ParamName) -> String {
        match which {
            ParamName::Temperature => self.temperature.to_string(),
            ParamName::TopK => self.top_k.to_string(),
            ParamName::TopP => self.top_p.to_string(),
            ParamName::MinP => self.min_p.to_string(),
            ParamName::RepeatPenalty => self.repeat_penalty.to_string(),
            ParamName::RepeatLastN => self.repeat_last_n.to_string(),
            ParamName::Seed => self.seed.to_string(),
        }
    }

    /// Sets `which` from `text` (a whole number for the counts and the
    /// seed); not validated. Errors: not a number, named as the form shows it.
    pub(crate) fn set_text(&mut self, which: ParamName, text: &str) -> Result<(), String> {
        fn num<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
            text.trim()
                .parse()
                .map_err(|_| format!("invalid {name} = {:?}: not a number", text.trim()))
        }
        let name = Param::of(which).name;
        match which {
            ParamName::Temperature => self.temperature = num(name, text)?,
            ParamName::TopK => self.top_k = num(name, text)?,
            ParamName::TopP => self.top_p = num(name, text)?,
            ParamName::MinP => self.min_p = num(name, text)?,
            ParamName::RepeatPenalty => self.repeat_penalty = num(name, text)?,
            ParamName::RepeatLastN => self.repeat_last_n = num(name, text)?,
            ParamName::Seed => self.seed = num(name, text)?,
        }
        Ok(())
    }

    /// Moves `which` one what-if step down or `up` ([`Param::whatif`]);
    /// a parameter the keys do not move stays.
    pub fn step(&mut self, which: ParamName, up: bool) {
        let round = |x: f32, grid: f32| (x / grid).round() * grid;
        match Param::of(which).whatif {
            Some(WhatIfStep::Linear { by, min, max, grid }) => {
                let x = self.get(which) as f32;
                let v = if up {
                    round((x + by).min(max), grid)
                } else {
                    round((x - by).max(min), grid)
                };
                match which {
                    ParamName::Temperature => self.temperature = v,
                    ParamName::TopP => self.top_p = v,
                    ParamName::MinP => self.min_p = v,
                    ParamName::RepeatPenalty => self.repeat_penalty = v,
                    _ => {}
                }
            }
            Some(WhatIfStep::Ladder(rungs)) => {
                let x = self.get(which) as u32;
                let v = if up {
                    rungs.iter().copied().find(|&k| k > x).unwrap_or(x)
                } else {
                    rungs.iter().rev().copied().find(|&k| k < x).unwrap_or(0)
                };
                match which {
                    ParamName::TopK => self.top_k = v,
                    ParamName::RepeatLastN => self.repeat_last_n = v,
                    ParamName::Seed => self.seed = v,
                    _ => {}
                }
            }
            None => {}
        }
    }

    /// Checks every parameter against its row of [`PARAMS`].
    ///
    /// # Errors
    /// The first parameter out of its range, with the range in words.
    pub(crate) fn validate(&self) -> Result<(), InvalidParam> {
        match PARAMS.iter().find(|p| !p.accepts(self.get(p.which))) {
            Some(p) => Err(InvalidParam {
                name: p.name,
                value: self.text(p.which),
                range: p.range,
            }),
            None => Ok(()),
        }
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

/// Every token of the vocabulary with its logit, in `buf`'s storage (the
/// array the sampler chain works on; give `data` back to `buf` after).
pub(super) fn vocab_array(logits: &[f32], buf: &mut Vec<LlamaTokenData>) -> LlamaTokenDataArray {
    buf.clear();
    buf.extend(
        logits
            .iter()
            .enumerate()
            .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
    );
    LlamaTokenDataArray::new(std::mem::take(buf), false)
}

/// Probability of `id` in the sampler's final candidates (0 when cut off).
/// The array is in vocabulary order when nothing truncated it.
pub(super) fn p_in(arr: &[LlamaTokenData], id: i32) -> f32 {
    if let Some(d) = arr.get(id as usize)
        && d.id().0 == id
    {
        return d.p();
    }
    arr.iter().find(|d| d.id().0 == id).map_or(0.0, |d| d.p())
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

    /// Each row's ends: an end that is in is accepted, one that is out (or
    /// the next value past an end) is refused, by `validate` too.
    #[test]
    fn every_row_accepts_its_range_and_refuses_past_it() {
        for row in PARAMS {
            let mut p = SamplingParams::default();
            let at = |p: &mut SamplingParams, v: f64| {
                p.set_text(row.which, &v.to_string()).unwrap();
                p.validate().map(|_| ()).map_err(|e| e.name)
            };
            let lo = at(&mut p, row.min);
            assert_eq!(lo.is_ok(), !row.min_open, "{} at its min", row.name);
            let hi = at(&mut p, row.max);
            assert_eq!(hi.is_ok(), !row.max_open, "{} at its max", row.name);
            if row.name != "seed" && row.name != "top_k" && row.name != "repeat_last_n" {
                assert_eq!(at(&mut p, row.max + 0.5), Err(row.name));
                assert_eq!(at(&mut p, row.min - 0.5), Err(row.name));
            } else if row.max < u32::MAX as f64 {
                assert_eq!(at(&mut p, row.max + 1.0), Err(row.name));
            }
        }
    }

    #[test]
    fn what_if_steps_stay_in_their_bounds_on_round_values() {
        let near = |a: f32, b: f32| (a - b).abs() < 1e-6;
        let mut p = SamplingParams::default();
        p.step(ParamName::Temperature, true);
        assert!(near(p.temperature, 0.9), "{}", p.temperature);
        p.temperature = 0.03;
        p.step(ParamName::Temperature, false);
        assert_eq!(p.temperature, 0.0, "not below 0");
        p.step(ParamName::TopK, true);
        assert_eq!(p.top_k, 100, "40 -> the next rung");
        p.top_k = 200;
        p.step(ParamName::TopK, true);
        assert_eq!(p.top_k, 200, "the top rung stays");
        p.top_k = 3;
        p.step(ParamName::TopK, false);
        assert_eq!(p.top_k, 2);
        p.min_p = 0.495;
        p.step(ParamName::MinP, true);
        assert!(near(p.min_p, 0.5), "min-p's keys stop at 0.5: {}", p.min_p);
        p.top_p = 0.07;
        p.step(ParamName::TopP, false);
        assert!(
            near(p.top_p, 0.05),
            "top-p's keys stop at 0.05: {}",
            p.top_p
        );
        // Parameters the keys do not move stay.
        let before = p.clone();
        p.step(ParamName::Seed, true);
        p.step(ParamName::RepeatPenalty, false);
        assert_eq!(p, before);
    }

    #[test]
    fn a_parameter_that_is_not_a_number_is_named() {
        let mut p = SamplingParams::default();
        let err = p.set_text(ParamName::TopK, "0.5").unwrap_err();
        assert_eq!(err, "invalid top_k = \"0.5\": not a number");
        assert_eq!(
            Param::named("min_p").map(|r| r.which),
            Some(ParamName::MinP)
        );
        assert!(Param::named("max_tokens").is_none());
    }
}
