//! User configuration: defaults < config file < environment < command-line flags.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::{LoadSettings, MAX_CANDIDATES, SamplingParams, sampler::InvalidParam};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name (unique substring) or path of the model opened at start.
    pub default_model: Option<String>,
    /// Where GGUF files are looked for (besides the app's own models directory).
    pub models_dir: Option<PathBuf>,
    /// System prompt as configured; read it through [`Config::system_prompt`],
    /// which decides when there is none.
    pub system_prompt: String,
    pub max_tokens: u32,
    /// Candidates shown per token in the inspector.
    pub inspector_top_k: usize,
    pub sampling: SamplingParams,
    pub engine: EngineConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Context size in tokens.
    pub ctx: u32,
    /// CPU threads; 0 = number of physical cores.
    pub threads: u32,
    /// Layers offloaded to the GPU (needs a GPU build); 0 = CPU only.
    pub gpu_layers: u32,
    /// Prefill chunk size in tokens.
    pub batch: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let d = LoadSettings::default();
        Self {
            ctx: d.n_ctx,
            threads: d.threads,
            gpu_layers: d.gpu_layers,
            batch: d.n_batch,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            default_model: None,
            models_dir: None,
            system_prompt: String::new(),
            max_tokens: 512,
            inspector_top_k: 10,
            sampling: SamplingParams::default(),
            engine: EngineConfig::default(),
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "config file {path} is not valid: {message}\n  (see config.example.toml for every key and its default)"
    )]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: {source}")]
    Invalid {
        origin: String,
        source: InvalidParam,
    },
    #[error("{origin}: invalid {name} = {value}: must be {range}")]
    Range {
        origin: String,
        name: &'static str,
        value: String,
        range: &'static str,
    },
    /// A value given on the command line, named by the flag the user typed.
    #[error("invalid {flag} {value}: must be {range}")]
    Flag {
        flag: &'static str,
        value: String,
        range: &'static str,
    },
}

impl ConfigError {
    /// For an out-of-range value: the config key, the value and the allowed range.
    pub fn out_of_range(&self) -> Option<(&'static str, &str, &'static str)> {
        match self {
            ConfigError::Invalid { source, .. } => {
                Some((source.name, source.value.as_str(), source.range))
            }
            ConfigError::Range {
                name, value, range, ..
            } => Some((name, value.as_str(), range)),
            _ => None,
        }
    }
}

impl Config {
    /// Reads `path` if it exists; a missing file means defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let config = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })?;
        config.validate(&path.display().to_string())?;
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Environment overrides: `TOKENSCOPE_MODEL`, `TOKENSCOPE_MODELS_DIR`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        if let Some(m) = get("TOKENSCOPE_MODEL").filter(|s| !s.is_empty()) {
            self.default_model = Some(m);
        }
        if let Some(d) = get("TOKENSCOPE_MODELS_DIR").filter(|s| !s.is_empty()) {
            self.models_dir = Some(PathBuf::from(d));
        }
    }

    /// Checks every value; `origin` names where the values came from.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.sampling
            .validate()
            .map_err(|source| ConfigError::Invalid {
                origin: origin.to_string(),
                source,
            })?;
        let range = |name, value: &dyn std::fmt::Display, ok: bool, range| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Range {
                    origin: origin.to_string(),
                    name,
                    value: value.to_string(),
                    range,
                })
            }
        };
        let e = &self.engine;
        range(
            "engine.ctx",
            &e.ctx,
            (64..=1_048_576).contains(&e.ctx),
            "between 64 and 1048576",
        )?;
        range(
            "engine.batch",
            &e.batch,
            (1..=8192).contains(&e.batch),
            "between 1 and 8192",
        )?;
        range(
            "engine.threads",
            &e.threads,
            e.threads <= 1024,
            "between 0 (auto) and 1024",
        )?;
        range(
            "max_tokens",
            &self.max_tokens,
            self.max_tokens >= 1,
            "at least 1",
        )?;
        // Checked in its own type: a cast first would let 2^32 + 1 pass as 1.
        let k = self.inspector_top_k;
        range(
            "inspector_top_k",
            &k,
            (1..=MAX_CANDIDATES).contains(&k),
            "between 1 and 256",
        )?;
        Ok(())
    }

    /// The system prompt to send, or `None` when there is none: an empty or
    /// whitespace-only prompt counts as none (the one rule for `run` and the TUI).
    /// The text is returned as configured, not trimmed.
    pub fn system_prompt(&self) -> Option<&str> {
        let s = self.system_prompt.as_str();
        (!s.trim().is_empty()).then_some(s)
    }

    /// What a request takes from the config: sampling, max tokens, inspector size.
    pub fn request_settings(&self, raw: bool) -> crate::conversation::RequestSettings {
        crate::conversation::RequestSettings {
            raw,
            sampling: self.sampling.clone(),
            max_tokens: self.max_tokens,
            top_k_inspect: self.inspector_top_k,
            paused: false,
            score_prompt: false,
        }
    }

    /// The engine's load settings (context size, threads, GPU layers, batch).
    pub fn load_settings(&self) -> LoadSettings {
        LoadSettings {
            n_ctx: self.engine.ctx,
            threads: self.engine.threads,
            gpu_layers: self.engine.gpu_layers,
            n_batch: self.engine.batch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn example_config_parses_and_is_valid() {
        let text = include_str!("../config.example.toml");
        let c = Config::parse(text).expect("config.example.toml parses");
        c.validate("config.example.toml").unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[sampling]\ntemprature = 0.5\n").unwrap_err();
        assert!(err.contains("temprature"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported_with_location() {
        let err = Config::parse("max_tokens = \"lots\"\n").unwrap_err();
        assert!(
            err.contains("max_tokens") || err.contains("line 1"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_rejected_with_origin_and_range() {
        let c = Config::parse("[sampling]\ntemperature = 9.0\n").unwrap();
        let err = c.validate("my.toml").unwrap_err().to_string();
        assert!(
            err.contains("my.toml")
                && err.contains("temperature")
                && err.contains("between 0 and 5"),
            "{err}"
        );
        let c = Config::parse("[engine]\nctx = 10\n").unwrap();
        let err = c.validate("my.toml").unwrap_err().to_string();
        assert!(err.contains("engine.ctx = 10"), "{err}");
    }

    #[test]
    fn inspector_top_k_is_checked_without_truncation() {
        for (k, ok) in [(0, false), (1, true), (256, true), (257, false)] {
            let c = Config {
                inspector_top_k: k,
                ..Config::default()
            };
            assert_eq!(c.validate("my.toml").is_ok(), ok, "{k}");
        }
        // 2^32 + 1 would be 1 after a cast to u32.
        let c = Config {
            inspector_top_k: (1usize << 32) + 1,
            ..Config::default()
        };
        let err = c.validate("my.toml").unwrap_err().to_string();
        assert!(
            err.contains("my.toml") && err.contains("inspector_top_k = 4294967297"),
            "{err}"
        );
    }

    #[test]
    fn blank_system_prompt_is_none() {
        let mut c = Config::default();
        assert_eq!(c.system_prompt(), None);
        for blank in ["", " ", "\n\t  \n"] {
            c.system_prompt = blank.to_string();
            assert_eq!(c.system_prompt(), None, "{blank:?}");
        }
        c.system_prompt = "  Be brief.\n".to_string();
        assert_eq!(c.system_prompt(), Some("  Be brief.\n"), "kept as written");
    }

    #[test]
    fn env_overrides_file() {
        let mut c = Config::parse("default_model = \"smol\"\n").unwrap();
        c.apply_env(|k| (k == "TOKENSCOPE_MODEL").then(|| "gemma".to_string()));
        assert_eq!(c.default_model.as_deref(), Some("gemma"));
    }
}
