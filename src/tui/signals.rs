//! Terminating signals (SIGTERM, SIGHUP, SIGINT, SIGQUIT) while the TUI runs.
//!
//! The first one becomes [`Msg::Signal`]: the loop stops generating, quits,
//! restores the terminal, shuts the engine down, and then the process exits by
//! that signal ([`exit_by`]), so the parent sees the conventional status
//! (128 + signal number: 143, 129, 130, 131). A second signal while that is
//! under way does not wait: the terminal is put back at once and the process
//! exits.

use std::sync::mpsc::Sender;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use super::Msg;

/// The signals the TUI handles.
pub const HANDLED: [i32; 4] = [SIGTERM, SIGHUP, SIGINT, SIGQUIT];

/// Starts the thread that turns signals into messages; the returned handle
/// stops it.
pub fn spawn(tx: Sender<Msg>) -> std::io::Result<Handle> {
    let mut signals = Signals::new(HANDLED)?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("tokenscope-signals".into())
        .spawn(move || {
            let mut first = true;
            for sig in signals.forever() {
                tracing::info!("signal {sig} received");
                if std::mem::take(&mut first) && tx.send(Msg::Signal(sig)).is_ok() {
                    continue;
                }
                // Second signal, or the loop is gone: no more waiting.
                super::abort_guard::restore_terminal();
                exit_by(sig);
            }
        })?;
    Ok(handle)
}

/// Starts a thread that waits (without polling) for the terminal on stdin
/// to hang up, e.g. its window closed or tmux killed, and then sends
/// [`Msg::Signal`]`(SIGHUP)`: the kernel's SIGHUP does not always come (the
/// app may not be the terminal's session leader), and crossterm's input poll
/// spins on a terminal that is gone instead of failing. The thread is never
/// joined: it ends with the process.
pub fn watch_hangup(tx: Sender<Msg>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tokenscope-hangup".into())
        .spawn(move || {
            loop {
                // No events asked: poll returns only for POLLHUP/POLLERR/POLLNVAL.
                let mut fd = libc::pollfd {
                    fd: libc::STDIN_FILENO,
                    events: 0,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let n = unsafe { libc::poll(&mut fd, 1, -1) };
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                if n > 0 && fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                    tracing::info!("the terminal hung up");
                    let _ = tx.send(Msg::Signal(libc::SIGHUP));
                }
                return;
            }
        })
        .map(|_| ())
}

/// Ends the process as the signal `sig` would have: by the signal's default
/// action, except SIGQUIT, which exits with status 131 without dumping core.
pub fn exit_by(sig: i32) -> ! {
    if sig != SIGQUIT {
        // Restores the default disposition and raises the signal again.
        let _ = signal_hook::low_level::emulate_default_handler(sig);
    }
    std::process::exit(128 + sig)
}
