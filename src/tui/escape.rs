//! Making model (and user) text safe and readable on a terminal.
//!
//! Nothing produced by the model reaches the terminal raw: control characters
//! become visible pictures (`␛` for ESC), C1 controls and bidirectional
//! overrides become `\x9b` / `<U+202E>`. Tabs become spaces in the chat.

use unicode_width::UnicodeWidthChar;

/// Spaces a tab expands to in the chat.
pub const TAB_WIDTH: usize = 4;

use crate::engine::text::is_bidi_control;

/// Calls `out` with the display form of `c` in running text: `'\n'` is kept
/// (the caller breaks the line), everything else that could move the cursor,
/// change colours or reorder text is replaced by something visible.
pub fn display_char(c: char, mut out: impl FnMut(char)) {
    match c {
        '\n' => out('\n'),
        '\t' => (0..TAB_WIDTH).for_each(|_| out(' ')),
        '\u{0}'..='\u{1f}' => out(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
        '\u{7f}' => out('␡'),
        '\u{80}'..='\u{9f}' => format!("\\x{:02x}", c as u32).chars().for_each(out),
        c if is_bidi_control(c) => format!("<U+{:04X}>", c as u32).chars().for_each(out),
        c => out(c),
    }
}

/// The display form of a whole string (see [`display_char`]).
pub fn display_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        display_char(c, |d| out.push(d));
    }
    out
}

/// A single token made readable in a list: spaces as `␣`, newline as `\n`,
/// tab as `\t`, other controls as pictures. Empty text is shown as `∅`.
pub fn visible_piece(s: &str) -> String {
    if s.is_empty() {
        return "∅".to_string();
    }
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' => out.push('␣'),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Other blanks and invisible characters would show as nothing.
            c if c.is_whitespace() || is_invisible(c) || (i == 0 && char_width(c) == 0) => {
                if c.is_control() {
                    display_char(c, |d| out.push(d));
                } else {
                    out.push_str(&format!("<U+{:04X}>", c as u32));
                }
            }
            c => display_char(c, |d| out.push(d)),
        }
    }
    out
}

/// Zero-width characters that are not combining marks.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

/// Terminal width of a (display-safe) character: 0 for combining marks.
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Terminal width of a display-safe string.
pub fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Cuts `s` to at most `max` columns, ending with `…` when something was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if str_width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if w + cw > max - 1 {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(display_text("a\u{1b}[31mb"), "a␛[31mb");
        assert_eq!(display_text("x\u{7}\u{8}\r"), "x␇␈␍");
        assert_eq!(display_text("\u{9b}2J"), "\\x9b2J");
        assert_eq!(display_text("a\u{202e}b"), "a<U+202E>b");
        assert_eq!(display_text("l1\nl2\tz"), "l1\nl2    z");
        for c in display_text("\u{1b}\u{0}\u{7f}\u{85}\u{202e}").chars() {
            assert!(!c.is_control(), "{c:?} left raw");
        }
    }

    #[test]
    fn pieces_show_whitespace() {
        assert_eq!(visible_piece(" the"), "␣the");
        assert_eq!(visible_piece("\n\n"), "\\n\\n");
        assert_eq!(visible_piece("\t\u{1b}"), "\\t␛");
        assert_eq!(visible_piece(""), "∅");
        assert_eq!(visible_piece("\u{a0}x\u{200b}"), "<U+00A0>x<U+200B>");
        assert_eq!(visible_piece("\u{301}"), "<U+0301>");
        assert_eq!(visible_piece("e\u{301}"), "e\u{301}");
    }

    #[test]
    fn widths_and_truncation() {
        assert_eq!(str_width("中文ab"), 6);
        assert_eq!(str_width("🙂"), 2);
        assert_eq!(truncate("中文中文", 5), "中文…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 1), "…");
        assert_eq!(truncate("abcd", 0), "");
    }
}
