//! The engine process (`tokenscope engine-serve`, hidden): the engine's
//! worker (`engine::worker`) with commands read from stdin and events written
//! to the protocol pipe, both framed by `engine::frame`. Started by
//! [`super::EngineHandle::spawn_process`]; not for people.
//!
//! - The protocol leaves fd 1 first: fd 1 is duplicated for the event writer,
//!   then fd 2 is copied onto fd 1, so whatever llama.cpp prints to stdout
//!   goes to stderr, which the parent logs.
//! - Logs (ours and llama.cpp's) go to stderr as plain lines (`LEVEL target: message`).
//! - A stdin reader thread applies `Cancel` and `Shutdown` at once (the worker
//!   checks cancellations between tokens) and forwards other commands to the
//!   worker's inbox. The end of stdin (the parent is gone) is a shutdown: the
//!   process exits, at the latest [`ORPHAN_GRACE`] later.
//! - A panic of the worker fails the request it was serving (as on a thread),
//!   then the process exits with code [`PANIC_EXIT`].

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::fd::FromRawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use super::api::{Command, Event};
use super::cancel::Cancellations;
use super::{crash, frame, worker};

/// Exit code of the engine process after a worker panic.
pub(crate) const PANIC_EXIT: u8 = 101;

/// How long an orphaned engine process (stdin closed) may take to stop
/// before it exits regardless.
pub(crate) const ORPHAN_GRACE: Duration = Duration::from_secs(3);

/// Runs the engine process until stdin ends or `Shutdown` arrives.
pub fn main() -> ExitCode {
    let protocol = match protocol_off_stdout() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("engine process: cannot set up the protocol pipe: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKENSCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .without_time()
            .with_writer(std::io::stderr)
            .finish()
            .with(super::llama_log::FirstLlamaError)
            .try_init();
    }
    crash::install_panic_hook();

    let cancel = Arc::new(Cancellations::default());
    let (tx, rx) = channel();
    {
        let cancel = cancel.clone();
        let spawned = std::thread::Builder::new()
            .name("tokenscope-engine-stdin".into())
            .spawn(move || read_commands(tx, &cancel));
        if let Err(e) = spawned {
            tracing::error!("cannot start the stdin reader: {e}");
            return ExitCode::from(2);
        }
    }
    let out = RefCell::new((BufWriter::with_capacity(1 << 16, protocol), Vec::new()));
    let flag = cancel.clone();
    let worker = std::thread::Builder::new()
        .name(crash::ENGINE_THREAD.into())
        .spawn(move || {
            worker::run(rx, flag.clone(), move |e: Event| {
                let (w, buf) = &mut *out.borrow_mut();
                let ok = frame::write(w, buf, &e).is_ok();
                if !ok {
                    // Nobody reads the events any more: stop what runs.
                    flag.cancel_all();
                }
                ok
            })
        });
    match worker.map(|t| t.join()) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(_)) => ExitCode::from(PANIC_EXIT),
        Err(e) => {
            tracing::error!("cannot start the engine thread: {e}");
            ExitCode::from(2)
        }
    }
}

/// Duplicates fd 1 (close-on-exec) for the protocol and points fd 1 at stderr.
fn protocol_off_stdout() -> std::io::Result<File> {
    // SAFETY: fcntl/dup2 on the process's own standard descriptors; the new
    // descriptor is owned by the returned File only.
    unsafe {
        let fd = libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(fd))
    }
}

/// The stdin reader: cancels at once, forwards the rest, and on `Shutdown`
/// or the end of stdin stops the worker (and, should it not stop in time,
/// the process).
fn read_commands(tx: Sender<Command>, cancel: &Cancellations) {
    let mut r = BufReader::new(std::io::stdin().lock());
    let mut buf = Vec::new();
    loop {
        match frame::read::<Command, _>(&mut r, &mut buf) {
            Ok(Some(Command::Cancel { request })) => {
                // The flag stops it between tokens; the command wakes it if paused.
                cancel.cancel(request);
                if tx.send(Command::Cancel { request }).is_err() {
                    return;
                }
            }
            Ok(Some(Command::Shutdown)) => break,
            Ok(Some(cmd)) => {
                if tx.send(cmd).is_err() {
                    return;
                }
            }
            Ok(None) => {
                tracing::info!("stdin closed: stopping");
                break;
            }
            Err(e) => {
                tracing::error!("reading a command: {e}: stopping");
                break;
            }
        }
    }
    cancel.cancel_all();
    let _ = tx.send(Command::Shutdown);
    drop(tx);
    // The worker stops between tokens; a call into llama.cpp that does not
    // return must not keep an orphan alive.
    std::thread::sleep(ORPHAN_GRACE);
    tracing::warn!("the engine did not stop in time: exiting");
    // SAFETY: ends the process without running destructors the worker thread
    // may still be using.
    unsafe { libc::_exit(0) };
}
