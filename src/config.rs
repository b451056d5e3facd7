//! User configuration: defaults < config file < environment < command-line flags.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::{
    LoadSettings, MAX_CANDIDATES, SamplingParams, SurpriseStop, sampler::InvalidParam,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name (unique substring) or path of the model opened at start.
    pub default_model: Option<String>,
    /// Where GGUF files are looked for (besides the app's own models directory).
    pub models_dir: Option<PathBuf>,
    /// Other tools' model stores also listed, read only: `"ollama"`,
    /// `"huggingface"`, `"lmstudio"`, `"llama.cpp"` (all by default; `[]`
    /// lists none). See [`crate::catalog::store_dirs`] for where each is.
    pub sources: Vec<crate::catalog::Store>,
    /// System prompt as configured; read it through [`Config::system_prompt`],
    /// which decides when there is none.
    pub system_prompt: String,
    pub max_tokens: u32,
    /// Candidates shown per token in the inspector.
    pub inspector_top_k: usize,
    pub sampling: SamplingParams,
    pub engine: EngineConfig,
    /// Remote servers (`[[servers]]`): their models are listed in the picker
    /// next to local files, and `--server NAME` picks one.
    pub servers: Vec<ServerConfig>,
    /// What a surprise is (`[surprise] below_p, above_entropy`): where a
    /// reply running to the next surprise pauses (F7), and what `n`/`N` in
    /// the token cursor jump to.
    pub surprise: SurpriseStop,
    /// The language of the interface, `"en"` or `"zh"` (`--lang` overrides;
    /// unset: the locale, see [`crate::i18n::choose`]).
    pub lang: Option<String>,
}

/// A remote server that reports log-probabilities (llama-server, vLLM, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Short name, unique among the servers (`--server NAME`, the picker).
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Name of the environment variable that holds the API key (the key
    /// itself is never written in the config).
    #[serde(default)]
    pub api_key_env: Option<String>,
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
            sources: crate::catalog::Store::ALL.to_vec(),
            system_prompt: String::new(),
            max_tokens: 512,
            inspector_top_k: 10,
            sampling: SamplingParams::default(),
            engine: EngineConfig::default(),
            servers: Vec::new(),
            surprise: SurpriseStop::default(),
            lang: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Parse {
        path: PathBuf,
        message: String,
    },
    Invalid {
        origin: String,
        source: InvalidParam,
    },
    Range {
        origin: String,
        name: &'static str,
        value: String,
        range: &'static str,
    },
    /// A `[[servers]]` entry (or `--server`) that cannot be used.
    Server {
        origin: String,
        name: String,
        message: String,
    },
    /// A value given on the command line, named by the flag the user typed.
    Flag {
        flag: &'static str,
        value: String,
        range: &'static str,
    },
}
impl std::fmt::Display for ConfigError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            ConfigError::Read { path, source } => crate::i18n::tr_args(
                "config-read",
                "cannot read config file { $path }: { $source }",
                &[("path", &path.display()), ("source", &source)],
            ),
            ConfigError::Parse { path, message } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "config-parse",
                    "config file { $path } is not valid: { $message }",
                    &[("path", &path.display()), ("message", &message)],
                ),
                crate::i18n::tr(
                    "config-parse-2",
                    "(see config.example.toml for every key and its default)"
                )
            ),
            ConfigError::Invalid { origin, source } => format!("{origin}: {source}"),
            ConfigError::Range {
                origin,
                name,
                value,
                range,
            } => crate::i18n::tr_args(
                "config-range",
                "{ $origin }: invalid { $name } = { $value }: must be { $range }",
                &[
                    ("origin", &origin),
                    ("name", &name),
                    ("value", &value),
                    ("range", &crate::engine::api::range_words(range)),
                ],
            ),
            ConfigError::Server {
                origin,
                name,
                message,
            } => crate::i18n::tr_args(
                "config-server",
                "{ $origin }: server { $name }: { $message }",
                &[
                    ("origin", &origin),
                    ("name", &format!("{name:?}")),
                    ("message", &message),
                ],
            ),
            ConfigError::Flag { flag, value, range } => crate::i18n::tr_args(
                "config-flag",
                "invalid { $flag } { $value }: must be { $range }",
                &[
                    ("flag", &flag),
                    ("value", &value),
                    ("range", &crate::engine::api::range_words(range)),
                ],
            ),
        };
        f.write_str(&text)
    }
}

impl ConfigError {
    /// For an out-of-range value: the config key, the value and the allowed range.
    pub(crate) fn out_of_range(&self) -> Option<(&'static str, &str, &'static str)> {
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

    /// Environment overrides: `TOKENSCOPE_MODEL`, `TOKENSCOPE_MODELS_DIR`,
    /// and `TOKENSCOPE_SOURCES` (the other tools' stores to read, as the
    /// config key `sources`, comma-separated; set and empty: none).
    ///
    /// # Errors
    /// [`ConfigError::Range`] for a name in `TOKENSCOPE_SOURCES` that is no store.
    pub(crate) fn apply_env(
        &mut self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(m) = get("TOKENSCOPE_MODEL").filter(|s| !s.is_empty()) {
            self.default_model = Some(m);
        }
        if let Some(d) = get("TOKENSCOPE_MODELS_DIR").filter(|s| !s.is_empty()) {
            self.models_dir = Some(PathBuf::from(d));
        }
        if let Some(list) = get("TOKENSCOPE_SOURCES") {
            self.sources = list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    crate::catalog::Store::ALL
                        .into_iter()
                        .find(|s| s.label() == n)
                        .ok_or_else(|| ConfigError::Range {
                            origin: "TOKENSCOPE_SOURCES".into(),
                            name: "source",
                            value: n.to_string(),
                            range: "ollama, huggingface, lmstudio or llama.cpp, comma-separated (empty: none)",
                        })
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    /// Checks every value; `origin` names where the values came from.
    pub(crate) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
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
        if let Some(lang) = &self.lang {
            range(
                "lang",
                &format!("{lang:?}"),
                crate::i18n::CODES.contains(&lang.as_str()),
                "\"en\" or \"zh\"",
            )?;
        }
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
        let sp = &self.surprise;
        range(
            "surprise.below_p",
            &sp.below_p,
            (0.0..=1.0).contains(&sp.below_p),
            "a probability from 0 to 1",
        )?;
        range(
            "surprise.above_entropy",
            &sp.above_entropy,
            sp.above_entropy >= 0.0,
            "bits, 0 or more",
        )?;
        self.validate_servers(origin)
    }

    /// Each `[[servers]]` entry: a name, unique; a usable URL; a plausible
    /// environment variable name for the key.
    fn validate_servers(&self, origin: &str) -> Result<(), ConfigError> {
        for (i, sv) in self.servers.iter().enumerate() {
            let err = |message: String| ConfigError::Server {
                origin: origin.to_string(),
                name: sv.name.clone(),
                message,
            };
            if sv.name.trim().is_empty() {
                return Err(err(format!(
                    "entry {} of [[servers]] has an empty name: give each server a short name",
                    i + 1
                )));
            }
            if self.servers[..i].iter().any(|o| o.name == sv.name) {
                return Err(err("the name is used twice in [[servers]]".into()));
            }
            crate::engine::remote::RemoteTarget::new(&sv.url, None)
                .map_err(|e| err(e.to_string()))?;
            if let Some(var) = &sv.api_key_env {
                check_env_name(var).map_err(|m| err(format!("api_key_env {m}")))?;
            }
        }
        Ok(())
    }

    /// The server `server` names (a `[[servers]]` name, else a URL) with its
    /// API key read from the environment through `get`: the variable
    /// `api_key_env` names (a flag), else the entry's own.
    ///
    /// # Errors
    /// [`ConfigError::Server`]: neither a configured name nor a URL, an
    /// invalid variable name, or a variable that is not set.
    pub(crate) fn server_target(
        &self,
        server: &str,
        api_key_env: Option<&str>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<crate::engine::remote::RemoteTarget, ConfigError> {
        use crate::engine::remote::{ApiKey, RemoteTarget};
        let entry = self.servers.iter().find(|s| s.name == server);
        let err = |message: String| ConfigError::Server {
            origin: "--server".into(),
            name: server.to_string(),
            message,
        };
        let url = match entry {
            Some(e) => e.url.as_str(),
            None if server.contains("://") => server,
            None => {
                let names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
                return Err(err(if names.is_empty() {
                    "not a URL (http://HOST:PORT) and no [[servers]] entry is configured".into()
                } else {
                    format!(
                        "not a URL (http://HOST:PORT) nor a configured server ({})",
                        names.join(", ")
                    )
                }));
            }
        };
        let var = api_key_env.or(entry.and_then(|e| e.api_key_env.as_deref()));
        let key = match var {
            Some(var) => {
                check_env_name(var).map_err(|m| err(format!("--api-key-env {m}")))?;
                let key = get(var).filter(|k| !k.is_empty()).ok_or_else(|| {
                    err(format!(
                        "the environment variable {var} (named to hold the API key) is not set or empty"
                    ))
                })?;
                Some(ApiKey::new(key.trim().to_string()))
            }
            None => None,
        };
        RemoteTarget::new(url, key).map_err(|e| err(e.to_string()))
    }

    /// The system prompt to send, or `None` when there is none: an empty or
    /// whitespace-only prompt counts as none (the one rule for `run` and the TUI).
    /// The text is returned as configured, not trimmed.
    pub(crate) fn system_prompt(&self) -> Option<&str> {
        let s = self.system_prompt.as_str();
        (!s.trim().is_empty()).then_some(s)
    }

    /// What a request takes from the config: sampling, max tokens, inspector size.
    pub(crate) fn request_settings(&self, raw: bool) -> crate::conversation::RequestSettings {
        crate::conversation::RequestSettings {
            raw,
            sampling: self.sampling.clone(),
            max_tokens: self.max_tokens,
            top_k_inspect: self.inspector_top_k,
            paused: false,
            score_prompt: false,
            stop_at_surprise: None,
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

/// An environment variable's name: letters, digits and `_`, not starting with a digit.
fn check_env_name(var: &str) -> Result<(), String> {
    let ok = !var.is_empty()
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{var:?} is not an environment variable name (letters, digits and _): name the variable that holds the key, not the key"
        ))
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
    fn sources_list_or_turn_off_the_other_tools_stores() {
        use crate::catalog::Store;
        assert_eq!(Config::default().sources, Store::ALL);
        let c = Config::parse("sources = [\"ollama\", \"llama.cpp\"]").unwrap();
        assert_eq!(c.sources, [Store::Ollama, Store::LlamaCpp]);
        assert!(Config::parse("sources = []").unwrap().sources.is_empty());
        let err = Config::parse("sources = [\"olama\"]").unwrap_err();
        assert!(
            err.contains("olama") && err.contains("ollama") && err.contains("lmstudio"),
            "{err}"
        );
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
    fn servers_are_parsed_checked_and_resolved() {
        let text = "[[servers]]\nname = \"gpu\"\nurl = \"http://10.0.0.5:8080\"\napi_key_env = \"GPU_KEY\"\n\n[[servers]]\nname = \"local\"\nurl = \"http://127.0.0.1:8080\"\n";
        let c = Config::parse(text).unwrap();
        c.validate("t.toml").unwrap();
        assert_eq!(c.servers.len(), 2);
        let env = |k: &str| (k == "GPU_KEY").then(|| "sk-123".to_string());
        let t = c.server_target("gpu", None, env).unwrap();
        assert_eq!(t.url, "http://10.0.0.5:8080");
        assert!(t.api_key.is_some());
        let t = c.server_target("http://127.0.0.1:9/", None, env).unwrap();
        assert_eq!(
            (t.url.as_str(), t.api_key.is_none()),
            ("http://127.0.0.1:9", true)
        );
        let e = c
            .server_target("gpu", Some("NOPE"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NOPE") && e.contains("not set"), "{e}");
        let e = c.server_target("gpux", None, env).unwrap_err().to_string();
        assert!(e.contains("gpu, local"), "{e}");
        let e = c
            .server_target("local", Some("sk-123 secret"), env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an environment variable name"), "{e}");

        for (bad, what) in [
            (
                "[[servers]]\nname = \"\"\nurl = \"http://a\"\n",
                "empty name",
            ),
            (
                "[[servers]]\nname = \"a\"\nurl = \"http://a\"\n[[servers]]\nname = \"a\"\nurl = \"http://b\"\n",
                "used twice",
            ),
            ("[[servers]]\nname = \"a\"\nurl = \"a:8080\"\n", "no scheme"),
            (
                "[[servers]]\nname = \"a\"\nurl = \"http://a\"\napi_key_env = \"sk-1 2\"\n",
                "not an environment variable name",
            ),
        ] {
            let e = Config::parse(bad)
                .unwrap()
                .validate("t.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(what) && e.starts_with("t.toml: server"),
                "{bad}: {e}"
            );
        }
        let e = Config::parse("[[servers]]\nname = \"a\"\nurl = \"http://a\"\napi_key = \"sk\"\n")
            .unwrap_err();
        assert!(e.contains("api_key"), "{e}");
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
        c.apply_env(|k| (k == "TOKENSCOPE_MODEL").then(|| "gemma".to_string()))
            .unwrap();
        assert_eq!(c.default_model.as_deref(), Some("gemma"));
    }

    #[test]
    fn tokenscope_sources_lists_or_turns_off_the_stores() {
        use crate::catalog::Store;
        let with = |v: &str| {
            let mut c = Config::default();
            let v = v.to_string();
            c.apply_env(|k| (k == "TOKENSCOPE_SOURCES").then(|| v.clone()))
                .map(|()| c.sources)
        };
        assert_eq!(with("").unwrap(), []);
        assert_eq!(
            with("ollama, llama.cpp").unwrap(),
            [Store::Ollama, Store::LlamaCpp]
        );
        let err = with("ollama,olama").unwrap_err().to_string();
        assert!(
            err.contains("TOKENSCOPE_SOURCES") && err.contains("olama") && err.contains("lmstudio"),
            "{err}"
        );
        let mut c = Config::default();
        c.apply_env(|_| None).unwrap();
        assert_eq!(c.sources, Store::ALL, "unset: every store");
    }
}
