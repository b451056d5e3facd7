//! llama.cpp reports fatal errors with `abort()`, which runs no Rust panic hook
//! or destructor. A SIGABRT handler puts the terminal back first, using only
//! async-signal-safe calls (`write`, `tcsetattr`).

use std::sync::OnceLock;

static COOKED: OnceLock<libc::termios> = OnceLock::new();

/// Leaves the alternate screen, mouse capture and bracketed paste, shows the
/// cursor, and ends a frame cut short (line wrap on, the synchronized update over).
const RESET: &[u8] = b"\x1b[?2004l\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?25h\x1b[?7h\x1b[?2026l\x1b[?1049l";

/// Remembers the terminal's current (cooked) mode and installs the handler.
/// Call before raw mode is entered.
pub fn install() {
    // SAFETY: tcgetattr writes into the zeroed struct we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0 {
            let _ = COOKED.set(t);
        }
    }
    // SAFETY: the handler only calls async-signal-safe functions and reads a
    // OnceLock that is fully initialised before the handler is registered.
    let _ =
        unsafe { signal_hook::low_level::register(signal_hook::consts::SIGABRT, restore_terminal) };
}

/// Puts the terminal back as it was before raw mode, with async-signal-safe
/// calls only (usable from a signal handler).
pub fn restore_terminal() {
    // SAFETY: write(2) and tcsetattr(3) are async-signal-safe.
    unsafe {
        libc::write(libc::STDOUT_FILENO, RESET.as_ptr().cast(), RESET.len());
        if let Some(t) = COOKED.get() {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
        }
    }
}
