use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches};

use tokenscope::catalog::{self, ModelCard};
use tokenscope::cli::{Cli, Cmd, Format, GenFlags};
use tokenscope::config::Config;
use tokenscope::paths::Paths;
use tokenscope::{bench, demo, engine, headless, listing, quantize, tui};

mod chats;

/// The command line, parsed; a usage error or `--help` is printed by clap
/// and exits. Its colour follows [`tokenscope::terminal::Env`] (NO_COLOR,
/// TERM=dumb) like every other output: clap's own "auto" would colour a
/// dumb terminal whenever `CI` is set (anstream treats CI as colour-capable).
fn parse_command_line() -> Cli {
    use std::io::IsTerminal;
    let env = tokenscope::terminal::Env::from_process();
    let mut command = Cli::command();
    if !env.color(std::io::stderr().is_terminal() || std::io::stdout().is_terminal()) {
        command = command.color(clap::ColorChoice::Never);
    }
    let mut matches = command.get_matches_mut();
    Cli::from_arg_matches_mut(&mut matches)
        .map_err(|e| e.format(&mut command))
        .unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    // A file-size limit (ulimit -f) reached is a write error (EFBIG) that
    // says so, like a full disk, not a kill with no word (every process of
    // this binary: the app, the engine, the quantizer).
    // SAFETY: setting a signal to be ignored, before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = parse_command_line();
    // The engine process: before anything opens the log file or touches stdout.
    if let Some(Cmd::EngineServe) = cli.command {
        return engine::serve::main();
    }
    if let Some(Cmd::QuantizeWorker { args }) = &cli.command {
        return tokenscope::quantize::worker_main(args);
    }
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `tokenscope run … | head` closing the pipe early is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                    || c.downcast_ref::<headless::RunError>().is_some_and(
                        |r| matches!(r, headless::RunError::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe),
                    )
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, skipping causes a message already quotes.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !text.contains(&c) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&c);
        }
    }
    text
}

/// The engine in a child process of this very executable.
fn engine_placement() -> Result<engine::Placement> {
    let exe = std::env::current_exe().context("cannot find tokenscope's own executable")?;
    Ok(engine::Placement::Process(exe))
}

/// Config from file < environment < flags, validated.
fn load_config(paths: &Paths, cli: &Cli, flags: &GenFlags) -> Result<Config> {
    let path = cli
        .global
        .config
        .clone()
        .unwrap_or_else(|| paths.config_file.clone());
    if cli.global.config.is_some() && !path.exists() {
        bail!(
            "config file {} does not exist (see config.example.toml)",
            path.display()
        );
    }
    let mut config = Config::load(&path)?;
    config.apply_env(|k| std::env::var(k).ok());
    if let Some(d) = &cli.global.models_dir {
        config.models_dir = Some(d.clone());
    }
    flags.apply_checked(&mut config, "command line")?;
    Ok(config)
}

fn model_dirs(paths: &Paths, config: &Config) -> Vec<PathBuf> {
    paths.model_dirs(config.models_dir.as_deref())
}

/// The remote server `--server` names (with its key from the environment),
/// `None` without `--server`.
fn remote_target(
    config: &Config,
    flags: &GenFlags,
) -> Result<Option<engine::remote::RemoteTarget>> {
    let Some(server) = &flags.server else {
        if flags.api_key_env.is_some() {
            bail!(
                "--api-key-env names the API key of a server: give the server with --server URL (or the name of a [[servers]] entry)"
            );
        }
        return Ok(None);
    };
    let target = config.server_target(server, flags.api_key_env.as_deref(), |k| {
        std::env::var(k).ok()
    })?;
    Ok(Some(target))
}

/// The bench line of the remote client's cost per streamed token.
fn remote_bench_line(
    target: &engine::remote::RemoteTarget,
    model: &str,
    tokens: u32,
    runs: u32,
) -> Result<String> {
    let o = engine::remote::client_overhead(target, model, tokens, 20, runs)?;
    Ok(format!(
        "remote client at {}: {:.1} µs per streamed token (SSE + JSON + step + event; {} tokens × {} candidates, {} bytes of stream, {} runs; target ≤ 500 µs)",
        target.url,
        o.us_per_token,
        o.tokens,
        o.candidates,
        o.bytes,
        runs.max(1)
    ))
}

/// The named model, else the configured one, else the first demo model found.
fn pick_model(config: &Config, dirs: &[PathBuf]) -> Result<Option<ModelCard>> {
    if let Some(name) = &config.default_model {
        return Ok(Some(catalog::resolve(name, dirs)?));
    }
    let cards: Vec<ModelCard> = catalog::discover(dirs).into_iter().flatten().collect();
    let demo = demo::DEMOS
        .iter()
        .find_map(|d| cards.iter().find(|c| c.file_name == d.file_name));
    Ok(demo.or(cards.first()).cloned())
}

fn require_model(config: &Config, dirs: &[PathBuf]) -> Result<ModelCard> {
    pick_model(config, dirs)?.with_context(|| {
        format!(
            "no model found in {}: pass --model PATH, or run `tokenscope fetch-demos` to get the demo models",
            dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// The text `score` is asked to score: `--text`, `--file` (`-`: standard
/// input) or `-`. Errors: a file that cannot be read, an empty text.
fn score_text(text: Option<&str>, file: Option<&std::path::Path>, stdin: bool) -> Result<String> {
    let read_stdin = || -> Result<String> {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("cannot read the text to score from standard input")?;
        Ok(s)
    };
    let text = match (text, file) {
        (Some(t), _) => t.to_string(),
        (None, Some(f)) if f.as_os_str() == "-" => read_stdin()?,
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the text to score from {}", f.display()))?,
        (None, None) if stdin => read_stdin()?,
        (None, None) => {
            bail!("give the text to score: --text TEXT, --file PATH or - (standard input)")
        }
    };
    if text.is_empty() {
        bail!("the text to score is empty");
    }
    Ok(text)
}

/// `tokenscope quantize`: checks, then llama.cpp's quantizer in a child
/// process with a per-tensor progress bar on stderr (a line per tensor when
/// stderr is not a terminal, or a dumb one), then what came out.
/// `dirs`: where the other variants of the model are looked for (the same
/// mix warning).
fn quantize_cmd(
    req: &quantize::Request,
    models_dir: &std::path::Path,
    dirs: &[PathBuf],
) -> Result<()> {
    use std::io::IsTerminal;
    let plan = quantize::plan(req, models_dir)?;
    let exe = std::env::current_exe().context("cannot find tokenscope's own executable")?;
    // A dumb terminal (TERM=dumb) cannot redraw a bar in place: a line per tensor.
    let tty = tokenscope::terminal::Env::from_process().redraw(std::io::stderr().is_terminal());
    eprintln!(
        "quantizing {} ({}, {}) to {} → {}",
        plan.input.file_name,
        plan.input.quant_label(),
        plan.input.size_human(),
        plan.ty.name,
        plan.output.display()
    );
    if plan.allow_requantize && !matches!(plan.input.quant.as_str(), "F32" | "F16" | "BF16") {
        eprintln!(
            "note: {} is already {}: the result is made from those quantized values, not the original weights, so it can only lose against {} (an F16 holds them exactly, nothing more)",
            plan.input.file_name, plan.input.quant, plan.input.file_name
        );
    }
    let outcome = quantize::run(&exe, &plan, |p| match p {
        quantize::Progress::Tensor { done, total, name } => {
            if tty {
                let width = 30;
                let filled = done * width / (*total).max(1);
                eprint!(
                    "\r[{}{}] {done}/{total} {:<40.40}",
                    "#".repeat(filled),
                    ".".repeat(width - filled),
                    tokenscope::text::escape_inline(name)
                );
            } else {
                eprintln!(
                    "tensor {done}/{total} {}",
                    tokenscope::text::escape_inline(name)
                );
            }
        }
    });
    if tty {
        eprintln!();
    }
    let outcome = outcome?;
    // The other models, the output's directory included (OUT may be elsewhere).
    let mut where_ = dirs.to_vec();
    if let Some(dir) = outcome.output.parent() {
        where_.push(dir.to_path_buf());
    }
    where_.sort();
    where_.dedup();
    let mut others: Vec<ModelCard> = catalog::discover(&where_).into_iter().flatten().collect();
    others.sort_by_key(|c| c.path.canonicalize().unwrap_or_else(|_| c.path.clone()));
    others.dedup_by_key(|c| c.path.canonicalize().unwrap_or_else(|_| c.path.clone()));
    let report = tokenscope::quantize_report::report(&plan.input, plan.ty, &outcome, &others);
    print!("{}", report.summary);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn real_main(cli: Cli) -> Result<()> {
    let paths = Paths::resolve();
    // Logs (ours and llama.cpp's) go to a size-capped file, never to the terminal.
    tokenscope::logging::init(&paths.log_dir);
    let stdout = std::io::stdout();
    // Flags before the subcommand count too (`tokenscope --temp 0 run …`).
    let flags = cli.effective_gen_flags()?;
    if cli.resume && cli.command.is_some() {
        bail!(
            "--resume reopens a conversation in the chat: use it without a subcommand (`tokenscope --resume`)"
        );
    }
    match &cli.command {
        None => {
            let config = load_config(&paths, &cli, &flags)?;
            let dirs = model_dirs(&paths, &config);
            let remote = remote_target(&config, &flags)?;
            let initial = match &remote {
                // The server's model named by --model (none: its only one).
                Some(t) => Some(engine::remote::model_ref(
                    &t.url,
                    flags.model.as_deref().unwrap_or(""),
                )),
                None => pick_model(&config, &dirs)?.map(|c| c.path),
            };
            // Resuming, the conversation's own model wins unless one is named.
            let named = flags.model.is_some() || config.default_model.is_some() || remote.is_some();
            let (initial, fallback) = if cli.resume && !named {
                (None, initial)
            } else {
                (initial, None)
            };
            let mut servers: Vec<_> = config
                .servers
                .iter()
                .map(|sv| {
                    let t = config
                        .server_target(&sv.name, None, |k| std::env::var(k).ok())
                        .map_err(|e| e.to_string());
                    (sv.name.clone(), t)
                })
                .collect();
            // The server of --server first (with its key): a [[servers]]
            // entry of the same URL gives it its name.
            if let Some(t) = &remote {
                let same = |s: &Result<engine::remote::RemoteTarget, String>| {
                    s.as_ref().is_ok_and(|s| s.url == t.url)
                };
                let name = servers
                    .iter()
                    .find(|(_, s)| same(s))
                    .map_or_else(|| t.url.clone(), |(n, _)| n.clone());
                servers.retain(|(_, s)| !same(s));
                servers.insert(0, (name, Ok(t.clone())));
            }
            tui::run(tui::TuiOptions {
                servers,
                engine_exe: std::env::current_exe()
                    .context("cannot find tokenscope's own executable")?,
                config,
                initial_model: initial,
                model_dirs: dirs,
                raw: flags.raw,
                conversations_db: Some(paths.conversations_db()),
                resume: cli.resume,
                fallback_model: fallback,
            })
        }
        Some(Cmd::Run {
            prompt,
            format,
            assistant_prefix,
            ..
        }) => {
            let config = load_config(&paths, &cli, &flags)?;
            // A remote server's model is one it lists (none: its only one).
            let (placement, model) = match remote_target(&config, &flags)? {
                Some(target) => {
                    if let Some(w) = target.warning() {
                        eprintln!("warning: {w}");
                    }
                    (
                        engine::Placement::Remote(target),
                        PathBuf::from(flags.model.clone().unwrap_or_default()),
                    )
                }
                None => (
                    engine_placement()?,
                    require_model(&config, &model_dirs(&paths, &config))?.path,
                ),
            };
            let mut out = stdout.lock();
            let args = headless::RunArgs {
                prompt: prompt.clone(),
                raw: flags.raw,
                jsonl: *format == Format::Jsonl,
                assistant_prefix: assistant_prefix.clone(),
            };
            headless::run(
                &placement,
                model,
                &config,
                &args,
                &mut out,
                &mut std::io::stderr().lock(),
            )?;
            Ok(())
        }
        Some(Cmd::Score {
            text,
            file,
            stdin,
            format,
            ..
        }) => {
            let config = load_config(&paths, &cli, &flags)?;
            let text = score_text(text.as_deref(), file.as_deref(), stdin.is_some())?;
            let card = require_model(&config, &model_dirs(&paths, &config))?;
            let mut out = stdout.lock();
            use std::io::IsTerminal;
            let args = headless::ScoreArgs {
                text,
                bos: !flags.raw,
                jsonl: *format == Format::Jsonl,
                color: *format == Format::Text
                    && tokenscope::terminal::Env::from_process()
                        .color(std::io::stdout().is_terminal()),
            };
            headless::score(&engine_placement()?, card.path, &config, &args, &mut out)?;
            Ok(())
        }
        Some(Cmd::Models { format }) => {
            let config = load_config(&paths, &cli, &flags)?;
            let dirs = model_dirs(&paths, &config);
            let cards = catalog::discover(&dirs);
            let mut out = stdout.lock();
            if *format == Format::Jsonl {
                write!(out, "{}", listing::models_jsonl(&cards))?;
            } else if cards.is_empty() {
                writeln!(
                    out,
                    "No models in {}. Run `tokenscope fetch-demos` to get the demo models.",
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
            } else {
                write!(out, "{}", listing::models_table(&cards))?;
            }
            Ok(())
        }
        Some(Cmd::Info {
            model,
            format,
            server,
            server_model,
            api_key_env,
            ..
        }) => {
            let config = load_config(&paths, &cli, &flags)?;
            let model = model.as_deref().or(server_model.as_deref());
            let server_flags = GenFlags {
                server: server.clone(),
                api_key_env: api_key_env.clone(),
                ..GenFlags::default()
            };
            let mut out = stdout.lock();
            if let Some(target) = remote_target(&config, &server_flags)? {
                let report = engine::remote::info::describe(&target, model.unwrap_or(""))?;
                if *format == Format::Jsonl {
                    let json = serde_json::to_string_pretty(&report)?;
                    writeln!(out, "{}", tokenscope::text::json_safe(&json))?;
                } else {
                    write!(out, "{}", engine::remote::info::report_text(&report))?;
                }
                return Ok(());
            }
            let card = catalog::resolve(model.unwrap_or(""), &model_dirs(&paths, &config))?;
            if *format == Format::Jsonl {
                writeln!(out, "{}", listing::info_json(&card))?;
            } else {
                write!(out, "{}", listing::info_text(&card))?;
                let layers = config.engine.gpu_layers;
                writeln!(
                    out,
                    "\nruns on: {}",
                    engine::describe_backend(layers, card.n_layer)
                )?;
            }
            Ok(())
        }
        Some(Cmd::Bench {
            tokens, runs, only, ..
        }) => {
            let config = load_config(&paths, &cli, &flags)?;
            // Against a server: the client's own cost per streamed token.
            if let Some(target) = remote_target(&config, &flags)? {
                let model = flags.model.clone().unwrap_or_default();
                println!("{}", remote_bench_line(&target, &model, *tokens, *runs)?);
                return Ok(());
            }
            let dirs = model_dirs(&paths, &config);
            let models = match &config.default_model {
                Some(name) => vec![catalog::resolve(name, &dirs)?],
                None => {
                    let cards: Vec<ModelCard> =
                        catalog::discover(&dirs).into_iter().flatten().collect();
                    if cards.is_empty() {
                        bail!("no models to benchmark: run `tokenscope fetch-demos` first");
                    }
                    cards
                }
            };
            let mut out = stdout.lock();
            bench::run(
                &models,
                &config,
                *tokens,
                *runs,
                *only,
                &engine_placement()?,
                &mut out,
            )?;
            let wanted = |s| bench::wanted(*only, s);
            // The UI under a token stream: update + full redraw per token.
            if wanted(bench::Section::Ui) {
                writeln!(out, "{}", tui::bench::bench_ui(5000, 120, 40))?;
                writeln!(out, "{}", tui::bench::bench_latency(200, 100))?;
                writeln!(out, "{}", tui::bench::bench_whatif(500))?;
            }
            // The remote client against a local llama-server, when one was fetched.
            let exe = tokenscope::llama_server::server_exe(&paths.data_dir);
            if !wanted(bench::Section::Remote) {
            } else if exe.is_file() {
                let server = tokenscope::llama_server::LlamaServer::start(
                    &exe,
                    &models[0].path,
                    &["-c", "2048", "-np", "1", "--no-webui"],
                    &paths.log_dir,
                    std::time::Duration::from_secs(120),
                )
                .context("starting llama-server for the remote client's bench")?;
                let target = engine::remote::RemoteTarget::new(&server.url, None)?;
                writeln!(out, "{}", remote_bench_line(&target, "", *tokens, *runs)?)?;
            } else {
                writeln!(
                    out,
                    "remote client: not measured (`tokenscope fetch-server` fetches a llama-server to measure it against)"
                )?;
            }
            // A long chat: 50,000 tokens with traces (64 candidates each), opened, then streamed into.
            if wanted(bench::Section::Long) {
                writeln!(
                    out,
                    "{}",
                    tui::bench_long::bench_long_chat(50_000, 64, 1000, 120, 40)
                )?;
            }
            Ok(())
        }
        Some(Cmd::FetchDemos { verify }) => {
            let mut opts = demo::FetchOptions::new(&paths.models_dir);
            opts.wheels_dir = paths.wheels_dir();
            opts.verify = *verify;
            let fetched =
                demo::fetch_demos_with(&paths.models_dir, &opts, |line| eprintln!("{line}"))?;
            for p in fetched {
                println!("{}", p.display());
            }
            Ok(())
        }
        Some(Cmd::Compare {
            models,
            prompt,
            text,
            file,
            raw,
            max_tokens,
            format,
            ctx,
            threads,
        }) => {
            let over = GenFlags {
                max_tokens: *max_tokens,
                ctx: *ctx,
                threads: *threads,
                ..GenFlags::default()
            };
            let config = load_config(&paths, &cli, &over)?;
            let dirs = model_dirs(&paths, &config);
            if models.len() < 2 {
                bail!("compare needs at least two models: --model A --model B [--model C …]");
            }
            let paths_of = models
                .iter()
                .map(|m| catalog::resolve(m, &dirs).map(|c| c.path))
                .collect::<Result<Vec<_>, _>>()?;
            let source = match prompt {
                Some(p) => tokenscope::comparison::Source::Prompt(p.clone()),
                None => tokenscope::comparison::Source::Text(score_text(
                    text.as_deref(),
                    file.as_deref(),
                    false,
                )?),
            };
            let args = tokenscope::comparison::CompareArgs {
                models: paths_of,
                source,
                raw: *raw,
                jsonl: *format == Format::Jsonl,
            };
            let mut out = stdout.lock();
            tokenscope::comparison::compare(&engine_placement()?, &config, &args, &mut out)?;
            Ok(())
        }
        Some(Cmd::Quantize {
            input,
            output,
            ty,
            allow_requantize,
            force,
            threads,
        }) => {
            if ty.eq_ignore_ascii_case("help") {
                print!("{}", quantize::types_help());
                return Ok(());
            }
            let Some(input) = input else {
                bail!("give the model to quantize: `tokenscope quantize IN [OUT] --type TYPE`");
            };
            let config = load_config(&paths, &cli, &flags)?;
            let dirs = model_dirs(&paths, &config);
            // Check the type first: a typo should not cost a model lookup.
            quantize::parse_type(ty)?;
            let card = catalog::resolve(input, &dirs)?;
            let req = quantize::Request {
                input: card.path,
                output: output.clone(),
                ty: ty.clone(),
                allow_requantize: *allow_requantize,
                force: *force,
                threads: *threads,
            };
            quantize_cmd(&req, &paths.models_dir, &dirs)
        }
        Some(Cmd::FetchServer) => {
            let mut opts = demo::FetchOptions::new(&paths.models_dir);
            opts.wheels_dir = paths.wheels_dir();
            let exe =
                tokenscope::llama_server::fetch_server(&paths.data_dir, &opts, &mut |line| {
                    eprintln!("{line}")
                })?;
            println!("{}", exe.display());
            Ok(())
        }
        // Handled in `main`, before logging starts.
        Some(Cmd::EngineServe) | Some(Cmd::QuantizeWorker { .. }) => Ok(()),
        Some(Cmd::Chats { search, format }) => chats::list(
            &paths,
            search.as_deref().unwrap_or(""),
            *format == Format::Jsonl,
        ),
        Some(Cmd::Export { id, format, output }) => {
            chats::export(&paths, *id, *format, output.as_deref())
        }
        Some(Cmd::Import { file }) => chats::import(&paths, file),
        Some(Cmd::Paths) => {
            let config = load_config(&paths, &cli, &flags)?;
            let config_file = cli.global.config.as_ref().unwrap_or(&paths.config_file);
            println!("config file: {}", config_file.display());
            for d in model_dirs(&paths, &config) {
                println!("models:      {}", d.display());
            }
            println!(
                "logs:        {}",
                tokenscope::logging::log_path(&paths.log_dir).display()
            );
            println!("chats:       {}", paths.conversations_db().display());
            Ok(())
        }
    }
}
