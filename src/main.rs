//! The `tokenscope` binary: parses the command line and hands each
//! subcommand to its module under `tokenscope::commands` (the engine's and
//! the quantizer's child processes before anything else starts).

// No `unwrap()` outside tests: a panic should say why (`expect`), or be an error.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{CommandFactory, FromArgMatches};

use tokenscope::cli::{Cli, Cmd, Format};
use tokenscope::commands::{
    Ctx, bench, chat, chats, comparison, fetch, headless, lens, listing, quantize, rollouts,
};
use tokenscope::engine;
use tokenscope::paths::Paths;

/// The command line, parsed; a usage error or `--help` is printed by clap
/// and exits. Its colour follows [`tokenscope::terminal::Env`] (NO_COLOR,
/// TERM=dumb) like every other output: clap's own "auto" would colour a
/// dumb terminal whenever `CI` is set (anstream treats CI as colour-capable).
fn parse_command_line() -> Cli {
    use std::io::IsTerminal;
    let env = tokenscope::terminal::Env::from_process();
    // The language first: `--help` and clap's errors are shown in it.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    tokenscope::i18n::set(tokenscope::cli::language(
        &args,
        &Paths::resolve().config_file,
        |k| std::env::var(k).ok(),
    ));
    let mut command = tokenscope::cli::localized(Cli::command());
    if !env.color(std::io::stderr().is_terminal() || std::io::stdout().is_terminal()) {
        command = command.color(clap::ColorChoice::Never);
    }
    let mut matches = command
        .try_get_matches_from_mut(args)
        .unwrap_or_else(|e| tokenscope::cli::exit_with(e));
    Cli::from_arg_matches_mut(&mut matches)
        .map_err(|e| e.format(&mut command))
        .unwrap_or_else(|e| tokenscope::cli::exit_with(e))
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
        return quantize::worker_main(args);
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
            eprintln!(
                "{}",
                tokenscope::i18n::tr_args(
                    "cli-error-line",
                    "error: { $message }",
                    &[("message", &error_text(&e))],
                )
            );
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

fn real_main(cli: Cli) -> Result<()> {
    let paths = Paths::resolve();
    // Logs (ours and llama.cpp's) go to a size-capped file, never to the terminal.
    tokenscope::logging::init(&paths.log_dir);
    let ctx = Ctx::new(paths, &cli)?;
    if cli.resume && cli.command.is_some() {
        bail!(tokenscope::i18n::tr(
            "cli-resume-with-subcommand",
            "--resume reopens a conversation in the chat: use it without a subcommand (`tokenscope --resume`)"
        ));
    }
    let Some(command) = &cli.command else {
        return chat::main(&ctx, cli.resume);
    };
    match command {
        Cmd::Run {
            prompt,
            format,
            assistant_prefix,
            ..
        } => headless::run_command(&ctx, prompt, *format, assistant_prefix.as_deref()),
        Cmd::Rollouts {
            prompt,
            at,
            branches,
            tokens,
            format,
            ..
        } => rollouts::rollouts_command(
            &ctx,
            &rollouts::RolloutArgs {
                prompt: prompt.clone(),
                at: *at,
                n: *branches,
                m: *tokens,
                jsonl: *format == Format::Jsonl,
            },
        ),
        Cmd::Score {
            text,
            file,
            stdin,
            format,
            ..
        } => headless::score_command(
            &ctx,
            text.as_deref(),
            file.as_deref(),
            stdin.is_some(),
            *format,
        ),
        Cmd::Lens {
            text,
            file,
            position,
            top,
            attention,
            format,
            ..
        } => lens::lens_command(
            &ctx,
            &lens::LensArgs {
                text: text.as_deref(),
                file: file.as_deref(),
                position: *position,
                top: *top,
                attention: *attention,
                format: *format,
            },
        ),
        Cmd::Models { format } => listing::models_command(&ctx, *format),
        Cmd::Info {
            model,
            format,
            server,
            server_model,
            api_key_env,
            tensors,
            ..
        } => listing::info_command(
            &ctx,
            model.as_deref().or(server_model.as_deref()),
            *format,
            *tensors,
            server.as_deref(),
            api_key_env.as_deref(),
        ),
        Cmd::Paths => listing::paths_command(&ctx),
        Cmd::Bench {
            tokens,
            runs,
            only,
            kv,
            ..
        } => bench::bench_command(&ctx, *tokens, *runs, *only, *kv),
        Cmd::Compare {
            models,
            prompt,
            text,
            file,
            raw,
            format,
            ..
        } => comparison::compare_command(
            &ctx,
            models,
            prompt.as_deref(),
            text.as_deref(),
            file.as_deref(),
            *raw,
            *format,
        ),
        Cmd::Quantize {
            input,
            output,
            ty,
            allow_requantize,
            force,
            threads,
        } => quantize::command(
            &ctx,
            input.as_deref(),
            output.as_deref(),
            ty,
            *allow_requantize,
            *force,
            *threads,
        ),
        Cmd::FetchDemos { verify } => fetch::demos(&ctx.paths, *verify),
        Cmd::FetchServer => fetch::server(&ctx.paths),
        Cmd::Chats { search, format } => chats::list(
            &ctx.paths,
            search.as_deref().unwrap_or(""),
            *format == Format::Jsonl,
        ),
        Cmd::Export { id, format, output } => {
            chats::export(&ctx.paths, *id, *format, output.as_deref())
        }
        Cmd::Import { file } => chats::import(&ctx.paths, file),
        // Handled in `main`, before logging starts.
        Cmd::EngineServe | Cmd::QuantizeWorker { .. } => Ok(()),
    }
}
