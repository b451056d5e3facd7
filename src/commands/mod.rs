//! The subcommands: one module per command (or per family of commands),
//! each with the function `main` dispatches to. The chat (no subcommand) is
//! [`chat`]; everything under this folder runs the library core (catalog,
//! engine, conversation, store, tui, …) and prints what it finds.
//!
//! What every command starts from is here: [`Ctx`] (the directories, the
//! parsed command line, the generation flags) and the config and model
//! lookups the commands share.

pub mod bench;
pub mod chat;
pub mod chats;
pub mod comparison;
pub mod fetch;
pub mod headless;
pub mod lens;
pub mod listing;
pub mod quantize;
pub mod rollouts;
pub(crate) mod tensor_view;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::catalog::{self, ModelCard};
use crate::cli::{Cli, GenFlags};
use crate::config::Config;
use crate::engine;
use crate::i18n::{tr, tr_args};
use crate::paths::Paths;

/// What a command starts from: the platform directories, the command line,
/// and its generation flags (those given before the subcommand included:
/// `tokenscope --temp 0 run …`).
pub struct Ctx<'a> {
    pub paths: Paths,
    pub cli: &'a Cli,
    pub flags: GenFlags,
}

impl<'a> Ctx<'a> {
    /// The context of `cli` under `paths`. Errors: flags that contradict
    /// each other ([`Cli::effective_gen_flags`]).
    pub fn new(paths: Paths, cli: &'a Cli) -> Result<Self> {
        let flags = cli.effective_gen_flags()?;
        Ok(Self { paths, cli, flags })
    }

    /// Config from file < environment < the command's flags, validated.
    pub(crate) fn config(&self) -> Result<Config> {
        self.config_with(&self.flags)
    }

    /// Config from file < environment < `flags` (a command with flags of its
    /// own, like `compare`), validated. Errors: a `--config` file that does
    /// not exist, a config that does not parse, a flag out of range.
    pub(crate) fn config_with(&self, flags: &GenFlags) -> Result<Config> {
        let global = &self.cli.global;
        let path = global
            .config
            .clone()
            .unwrap_or_else(|| self.paths.config_file.clone());
        if global.config.is_some() && !path.exists() {
            bail!(tr_args(
                "cli-config-missing",
                "config file { $path } does not exist (see config.example.toml)",
                &[("path", &path.display())],
            ));
        }
        let mut config = Config::load(&path)?;
        config.apply_env(|k| std::env::var(k).ok())?;
        if let Some(d) = &global.models_dir {
            config.models_dir = Some(d.clone());
        }
        flags.apply_checked(&mut config, "command line")?;
        Ok(config)
    }

    /// The directories models are looked for in under `config`.
    pub(crate) fn model_dirs(&self, config: &Config) -> Vec<PathBuf> {
        self.paths.model_dirs(config.models_dir.as_deref())
    }

    /// Everywhere models are looked for under `config`: [`Ctx::model_dirs`]
    /// and the stores of its `sources`.
    pub(crate) fn places(&self, config: &Config) -> catalog::Places {
        catalog::Places::with_stores(self.model_dirs(config), &config.sources)
    }
}

/// The engine in a child process of this very executable.
pub(crate) fn engine_placement() -> Result<engine::Placement> {
    Ok(engine::Placement::Process(own_exe()?))
}

/// This executable (the engine and the quantizer run as children of it).
pub(crate) fn own_exe() -> Result<PathBuf> {
    std::env::current_exe().context(tr("cli-no-exe", "cannot find tokenscope's own executable"))
}

/// The remote server `--server` names (with its key from the environment),
/// `None` without `--server`. Errors: `--api-key-env` without `--server`,
/// a server name that is neither a URL nor a `[[servers]]` entry.
pub(crate) fn remote_target(
    config: &Config,
    flags: &GenFlags,
) -> Result<Option<engine::remote::RemoteTarget>> {
    let Some(server) = &flags.server else {
        if flags.api_key_env.is_some() {
            bail!(tr(
                "cli-api-key-without-server",
                "--api-key-env names the API key of a server: give the server with --server URL (or the name of a [[servers]] entry)"
            ));
        }
        return Ok(None);
    };
    let target = config.server_target(server, flags.api_key_env.as_deref(), |k| {
        std::env::var(k).ok()
    })?;
    Ok(Some(target))
}

/// The named model, else the configured one, else the first demo model found.
pub(crate) fn pick_model(config: &Config, places: &catalog::Places) -> Result<Option<ModelCard>> {
    if let Some(name) = &config.default_model {
        return Ok(Some(places.resolve(name)?));
    }
    let cards: Vec<ModelCard> = places.discover().into_iter().flatten().collect();
    let demo = crate::demo::DEMOS
        .iter()
        .find_map(|d| cards.iter().find(|c| c.file_name == d.file_name));
    Ok(demo.or(cards.first()).cloned())
}

/// [`pick_model`], or an error saying where no model was found.
pub(crate) fn require_model(config: &Config, places: &catalog::Places) -> Result<ModelCard> {
    pick_model(config, places)?.with_context(|| {
        tr_args(
            "cli-no-model-found",
            "no model found in { $searched }: pass --model PATH, or run `tokenscope fetch-demos` to get the demo models",
            &[("searched", &places.searched())],
        )
    })
}

/// The text `score` (and `compare --text`) is asked to score: `--text`,
/// `--file` (`-`: standard input) or, with `stdin`, standard input. Errors:
/// a file that cannot be read, an empty text, no text given.
pub(crate) fn text_to_score(
    text: Option<&str>,
    file: Option<&Path>,
    stdin: bool,
) -> Result<String> {
    read_text(text, file, stdin, &tr("cli-text-to-score", "to score"))
}

/// The text of `--text`, `--file` (`-`: standard input) or `-`, for a
/// command that does something `what` with it ("to score", "to lens").
/// Errors, in those words: none given, an unreadable file, an empty text.
pub(crate) fn read_text(
    text: Option<&str>,
    file: Option<&Path>,
    stdin: bool,
    what: &str,
) -> Result<String> {
    let read_stdin = || -> Result<String> {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).with_context(|| {
            tr_args(
                "cli-text-stdin",
                "cannot read the text { $what } from standard input",
                &[("what", &what)],
            )
        })?;
        Ok(s)
    };
    let text = match (text, file) {
        (Some(t), _) => t.to_string(),
        (None, Some(f)) if f.as_os_str() == "-" => read_stdin()?,
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| {
            tr_args(
                "cli-text-file",
                "cannot read the text { $what } from { $path }",
                &[("what", &what), ("path", &f.display())],
            )
        })?,
        (None, None) if stdin => read_stdin()?,
        (None, None) => {
            bail!(tr_args(
                "cli-text-none",
                "give the text { $what }: --text TEXT, --file PATH or - (standard input)",
                &[("what", &what)],
            ))
        }
    };
    if text.is_empty() {
        bail!(tr_args(
            "cli-text-empty",
            "the text { $what } is empty",
            &[("what", &what)],
        ));
    }
    Ok(text)
}
