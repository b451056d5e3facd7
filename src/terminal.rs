//! What the user's environment allows on the terminal: colour (the
//! [NO_COLOR](https://no-color.org/) convention) and the full-screen chat
//! (not in a `TERM=dumb` terminal). Decided here once for every command.
//!
//! The pure functions take the variables' values (so tests need not touch
//! the process environment); [`Env::from_process`] reads them.

use std::ffi::OsStr;

/// The variables that decide what the terminal gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Env {
    /// `NO_COLOR` is set and not empty: no ANSI colour anywhere.
    pub no_color: bool,
    /// `TERM=dumb`: the terminal cannot move the cursor or draw; output must
    /// be plain lines.
    pub dumb: bool,
}

impl Env {
    /// From the values of `NO_COLOR` and `TERM` (`None`: unset).
    pub fn new(no_color: Option<&OsStr>, term: Option<&OsStr>) -> Self {
        Self {
            // The convention: set *and non-empty* (NO_COLOR= turns nothing off).
            no_color: no_color.is_some_and(|v| !v.is_empty()),
            dumb: term.is_some_and(|t| t == "dumb"),
        }
    }

    /// From this process's environment.
    pub fn from_process() -> Self {
        Self::new(
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
    }

    /// Whether output to a stream may carry ANSI colour: only to a terminal
    /// (`is_tty`), not under NO_COLOR, not on a dumb terminal.
    pub fn color(&self, is_tty: bool) -> bool {
        is_tty && !self.no_color && !self.dumb
    }

    /// Whether a stream may be redrawn in place (a progress bar with `\r`):
    /// only a terminal that is not dumb.
    pub(crate) fn redraw(&self, is_tty: bool) -> bool {
        is_tty && !self.dumb
    }

    /// Why the full-screen chat cannot run here (`None`: it can), as the
    /// error to print before anything touches the terminal.
    pub(crate) fn tui_refusal(&self) -> Option<&'static str> {
        self.dumb.then_some(
            "the chat is a full-screen app and TERM=dumb says this terminal cannot draw one \
             (no cursor movement, no alternate screen); run it in another terminal, or use \
             the plain-text commands: `tokenscope run --prompt TEXT` (a reply with every \
             token's candidates), `tokenscope score --text TEXT`, `tokenscope compare`",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_color: Option<&str>, term: Option<&str>) -> Env {
        Env::new(no_color.map(OsStr::new), term.map(OsStr::new))
    }

    #[test]
    fn no_color_set_and_not_empty_turns_colour_off() {
        assert!(env(None, Some("xterm-256color")).color(true));
        assert!(!env(None, Some("xterm-256color")).color(false), "not a tty");
        assert!(!env(Some("1"), Some("xterm")).color(true));
        assert!(!env(Some("0"), Some("xterm")).color(true), "any value");
        assert!(env(Some(""), Some("xterm")).color(true), "empty: not set");
        assert!(env(None, None).color(true), "TERM unset is not dumb");
    }

    #[test]
    fn a_dumb_terminal_gets_no_colour_no_redraw_and_no_chat() {
        let dumb = env(None, Some("dumb"));
        assert!(!dumb.color(true) && !dumb.redraw(true));
        assert!(dumb.tui_refusal().unwrap().contains("TERM=dumb"));
        assert!(dumb.tui_refusal().unwrap().contains("tokenscope run"));
        let xterm = env(Some("1"), Some("xterm"));
        assert!(xterm.redraw(true) && xterm.tui_refusal().is_none());
    }
}
