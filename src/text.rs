//! Text safety, in one place for the engine, the TUI and the command line:
//! assembling token bytes into UTF-8, escaping what must never reach a
//! terminal raw, and display widths by grapheme cluster.
//!
//! One notation everywhere: C0 controls as their Unicode control pictures
//! (`␛` for ESC, `␇` for BEL), DEL as `␡`, C1 controls as `\x9b`, bidirectional
//! controls (which would reorder the screen) as `<U+202E>`. On one line
//! ([`escape_inline`]) newline, tab and carriage return read `\n`, `\t`, `\r`.
//!
//! Lines break where the Unicode line-breaking algorithm (UAX #14) allows
//! ([`LineBreaks`]), the same rule for the chat, the message box, help and
//! notices.
//!
//! Widths follow what terminals draw: one grapheme cluster (UAX #29, extended)
//! is one glyph, its width the `unicode-width` of the whole cluster (so `❤️`
//! with VS16 and a ZWJ family such as `👩‍👧` are 2 columns, `é` written with a
//! combining accent is 1), measured by ratatui's own [`CellWidth`] so that the
//! buffer agrees (it adds a column for each halfwidth katakana sound mark,
//! `ｶﾞ`, which terminals draw apart).

use std::fmt::Write;

use ratatui::buffer::CellWidth;
use unicode_segmentation::UnicodeSegmentation;

/// Spaces a tab expands to in the TUI (chat and input alike).
pub(crate) const TAB_WIDTH: usize = 4;

// ---- UTF-8 assembly ---------------------------------------------------------

/// Assembles a stream of token byte strings into text, holding back an
/// incomplete multi-byte character until the bytes that complete it arrive.
#[derive(Debug, Default, Clone)]
pub(crate) struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Adds one token's bytes; returns the text they complete (possibly empty).
    /// Invalid sequences become U+FFFD rather than being dropped.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &tail[n..];
                        }
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            rest = tail;
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let start = self.pending.len() - keep;
        self.pending.drain(..start);
        out
    }

    /// Bytes still waiting for the rest of their character.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Ends the stream: whatever is pending becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

// ---- escaping ---------------------------------------------------------------

/// Marks and overrides that reorder text on screen (Unicode bidi controls).
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Zero-width characters that are not combining marks (shown as `<U+200B>`
/// where a token is shown alone, kept in running text).
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

/// True when `c` must be escaped before it reaches a terminal.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Appends the escaped form of an unsafe character (see the module docs).
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
        '\u{7f}' => out.push('␡'),
        '\u{80}'..='\u{9f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "<U+{:04X}>", c as u32);
        }
    }
}

/// Text on one line: `\n`, `\t`, `\r` written as such, every other unsafe
/// character escaped. For model names, metadata, token pieces, table cells.
pub(crate) fn escape_inline(s: &str) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// JSON text made safe for a terminal without changing the value it encodes:
/// every unsafe character that is not JSON whitespace (bidi controls, DEL, C1
/// controls; serde_json escapes only C0 controls, `"` and `\\`) written as a
/// `\uXXXX` escape. Such characters only occur inside strings, where the escape
/// means the same character; newlines and tabs between tokens stay.
pub(crate) fn json_safe(json: &str) -> String {
    let escape = |c: char| is_unsafe(c) && !matches!(c, '\n' | '\t' | '\r');
    if !json.chars().any(escape) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if escape(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Running text for a terminal that does its own line handling (the command
/// line): newlines and tabs kept, every other unsafe character escaped.
pub(crate) fn escape_text(s: &str) -> String {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if is_unsafe(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Running text for the TUI, which breaks lines itself: `'\n'` kept, a tab as
/// [`TAB_WIDTH`] spaces, every other unsafe character escaped.
pub(crate) fn display_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.extend(std::iter::repeat_n(' ', TAB_WIDTH)),
            c if is_unsafe(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// One token shown on its own: [`escape_inline`], with bytes that are not
/// (yet) a whole character as `<0xE4>`.
pub fn readable_piece(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 4);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape_inline(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "<0x{b:02X}>");
        }
    }
    out
}

/// A token made readable in a list of candidates: like [`escape_inline`], and
/// also spaces as `␣`, other blanks and invisible characters as `<U+00A0>`,
/// a combining mark with nothing to sit on as `<U+0301>`, empty text as `∅`.
pub(crate) fn visible_piece(s: &str) -> String {
    if s.is_empty() {
        return "∅".to_string();
    }
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' => out.push('␣'),
            c if is_unsafe(c) => out.push_str(&escape_inline(c.encode_utf8(&mut [0; 4]))),
            c if c.is_whitespace() || is_invisible(c) || (i == 0 && char_width(c) == 0) => {
                let _ = write!(out, "<U+{:04X}>", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

// ---- widths -----------------------------------------------------------------

/// Width of one character on its own (0 for combining marks and controls).
pub(crate) fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// Terminal width of one grapheme cluster (see the module docs); 0 for an
/// empty string or a lone zero-width character.
pub(crate) fn grapheme_width(g: &str) -> usize {
    if g.is_empty() || (g.len() == 1 && g.as_bytes()[0].is_ascii_control()) {
        return 0;
    }
    g.cell_width() as usize
}

/// Terminal width of a display-safe string: the sum over its grapheme clusters.
pub(crate) fn str_width(s: &str) -> usize {
    s.graphemes(true).map(grapheme_width).sum()
}

/// The grapheme clusters of `s` (extended, UAX #29).
pub(crate) fn graphemes(s: &str) -> impl Iterator<Item = &str> {
    s.graphemes(true)
}

/// Cuts `s` to at most `max` columns at a grapheme boundary, ending with `…`
/// when something was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if str_width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for g in s.graphemes(true) {
        let gw = grapheme_width(g);
        if w + gw > max - 1 {
            break;
        }
        w += gw;
        out.push_str(g);
    }
    out.push('…');
    out
}

/// `s` padded with spaces to `width` columns (by display width, not chars).
pub(crate) fn pad_right(s: &str, width: usize) -> String {
    let w = str_width(s);
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

/// `s` padded on the left with spaces to `width` columns (by display width).
pub(crate) fn pad_left(s: &str, width: usize) -> String {
    let mut out: String = std::iter::repeat_n(' ', width.saturating_sub(str_width(s))).collect();
    out.push_str(s);
    out
}

// ---- counts -----------------------------------------------------------------

/// `n` and `noun` (a regular English noun, given in the singular), plural
/// unless `n` is one: `count(1, "token")` = `1 token`, `count(0, "token")` =
/// `0 tokens`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

// ---- line breaking ----------------------------------------------------------

/// Bytes of text kept to decide line breaks. The rules look back past the
/// last character only through runs such as spaces after an opening bracket
/// or a row of flags; a run longer than this is decided from its end.
const BREAK_CONTEXT: usize = 64;

/// Where lines may break, by the Unicode line-breaking algorithm (UAX #14,
/// through `unicode-linebreak`), decided one piece of display text at a time:
/// between two Chinese characters, after a space, never before `。` `，` `）`
/// nor after `（`. Whether a line may break before a piece depends only on
/// the text before it and on the piece's first character, so the same text
/// fed in any split gives the same answers; the text kept is what later
/// answers still depend on (a few characters).
#[derive(Debug, Default, Clone)]
pub(crate) struct LineBreaks {
    /// The end of the text so far, from a point the rules do not look behind.
    ctx: String,
}

impl LineBreaks {
    /// Adds `piece` (a grapheme cluster, or part of one); returns true when a
    /// line may break just before it (never at the start of the text).
    pub fn push(&mut self, piece: &str) -> bool {
        if piece.is_empty() {
            return false;
        }
        let at = self.ctx.len();
        // Not after a `|` (UAX #14 allows it): a template's special tokens
        // (`<|im_end|>`) stay whole; `a | b` still breaks at its spaces.
        let after_bar = self.ctx.ends_with('|');
        self.ctx.push_str(piece);
        let allowed = at > 0
            && !after_bar
            && unicode_linebreak::linebreaks(&self.ctx)
                .find(|&(i, _)| i >= at)
                .is_some_and(|(i, _)| i == at);
        let (settled, _) = unicode_linebreak::split_at_safe(&self.ctx);
        let mut cut = settled.len();
        if self.ctx.len() - cut > BREAK_CONTEXT {
            cut = self.ctx.len() - BREAK_CONTEXT;
            while !self.ctx.is_char_boundary(cut) {
                cut += 1;
            }
        }
        self.ctx.drain(..cut);
        allowed
    }

    /// Starts over, as after a hard line break.
    pub(crate) fn reset(&mut self) {
        self.ctx.clear();
    }
}

/// True when a line may not start with `g` even where a word wider than the
/// line must be cut: closing brackets and quotes, full stops, commas, colons,
/// `!` `?`, small kana and iteration marks, ellipses (UAX #14 classes CL, CP,
/// EX, IS, NS, IN).
pub(crate) fn is_closing(g: &str) -> bool {
    use unicode_linebreak::BreakClass as C;
    g.chars().next().is_some_and(|c| {
        matches!(
            unicode_linebreak::break_property(c as u32),
            C::ClosePunctuation
                | C::CloseParenthesis
                | C::Exclamation
                | C::InfixSeparator
                | C::NonStarter
                | C::Inseparable
        )
    })
}

/// True when a line may not end with `g`: opening brackets (UAX #14 class OP).
pub(crate) fn is_opening(g: &str) -> bool {
    g.chars().next().is_some_and(|c| {
        unicode_linebreak::break_property(c as u32)
            == unicode_linebreak::BreakClass::OpenPunctuation
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_special_token_of_a_template_is_never_broken_after_its_bar() {
        let mut lb = LineBreaks::default();
        let breaks: Vec<&str> = "bottle.<|im_end|> next"
            .split_inclusive(|_| true)
            .filter(|g| lb.push(g))
            .collect();
        // Only at the space: not after `<|` nor after `end|`.
        assert_eq!(breaks, ["n"], "{breaks:?}");
    }

    #[test]
    fn one_is_singular_every_other_count_plural() {
        assert_eq!(count(1, "token"), "1 token");
        assert_eq!(count(0, "token"), "0 tokens");
        assert_eq!(count(2, "line"), "2 lines");
        assert_eq!(count(11, "token"), "11 tokens");
    }

    const SENTENCE: &str = "你好，世界！今天天气很好。🙂 tokenscope";

    #[test]
    fn chinese_sentence_split_at_every_byte_boundary_arrives_intact() {
        let bytes = SENTENCE.as_bytes();
        for cut in 0..=bytes.len() {
            let mut a = Utf8Assembler::default();
            let mut text = a.push(&bytes[..cut]);
            text += &a.push(&bytes[cut..]);
            assert_eq!(text, SENTENCE, "cut at {cut}");
            assert!(a.pending().is_empty());
        }
    }

    #[test]
    fn byte_by_byte_never_emits_half_characters() {
        let mut a = Utf8Assembler::default();
        let mut text = String::new();
        for b in SENTENCE.as_bytes() {
            let piece = a.push(std::slice::from_ref(b));
            assert!(!piece.contains(char::REPLACEMENT_CHARACTER));
            text += &piece;
        }
        assert_eq!(text, SENTENCE);
    }

    #[test]
    fn three_way_splits_of_each_character() {
        for ch in ["你", "🙂", "é"] {
            let b = ch.as_bytes();
            for i in 0..=b.len() {
                for j in i..=b.len() {
                    let mut a = Utf8Assembler::default();
                    let t = a.push(&b[..i]) + &a.push(&b[i..j]) + &a.push(&b[j..]);
                    assert_eq!(t, ch);
                }
            }
        }
    }

    #[test]
    fn invalid_bytes_become_replacement_and_stream_continues() {
        let mut a = Utf8Assembler::default();
        assert_eq!(a.push(b"a\xFFb"), "a\u{FFFD}b");
        assert_eq!(a.push(&[0xE4, 0xBD]), "");
        assert_eq!(a.finish(), "\u{FFFD}");
        assert_eq!(a.push("好".as_bytes()), "好");
    }

    #[test]
    fn readable_piece_shows_partial_bytes_and_escapes_controls() {
        assert_eq!(readable_piece(&[0xE4]), "<0xE4>");
        assert_eq!(readable_piece(&[0xE4, 0xBD]), "<0xE4><0xBD>");
        assert_eq!(readable_piece("你".as_bytes()), "你");
        assert_eq!(readable_piece(b" hi\n"), " hi\\n");
        assert_eq!(readable_piece(b"\x1b[31m"), "␛[31m");
        assert_eq!(readable_piece("\u{202E}x".as_bytes()), "<U+202E>x");
        assert_eq!(readable_piece("\u{061C}".as_bytes()), "<U+061C>");
    }

    #[test]
    fn every_escaper_leaves_nothing_a_terminal_interprets() {
        let nasty = "a\u{1b}[2J\u{7}\u{0}\u{7f}\u{85}\u{9b}1m\u{202e}evil\u{2066}\r\n\tz";
        for (name, out) in [
            ("inline", escape_inline(nasty)),
            ("text", escape_text(nasty)),
            ("display", display_text(nasty)),
            ("piece", readable_piece(nasty.as_bytes())),
            ("visible", visible_piece(nasty)),
        ] {
            for c in out.chars() {
                assert!(
                    !is_unsafe(c) || c == '\n' || c == '\t',
                    "{name}: {c:?} left raw in {out:?}"
                );
            }
        }
        assert_eq!(escape_inline("a\u{1b}[2J\n"), "a␛[2J\\n");
        assert_eq!(escape_text("red\x1b[31m!\x07\nok"), "red␛[31m!␇\nok");
        assert_eq!(escape_text("\u{9b}2J"), "\\x9b2J");
        assert_eq!(display_text("l1\nl2\tz"), "l1\nl2    z");
        assert_eq!(display_text("x\u{7}\u{8}\r"), "x␇␈␍");
        assert_eq!(display_text("a\u{202e}b"), "a<U+202E>b");
    }

    #[test]
    fn json_safe_keeps_the_value_and_escapes_what_a_terminal_would_act_on() {
        let value = serde_json::json!({
            "name": "a\u{1b}[31m\u{202e}b\u{9b}c\u{7f}",
            "list": ["x\ny"],
        });
        for json in [
            value.to_string(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            let safe = json_safe(&json);
            for c in safe.chars() {
                assert!(!is_unsafe(c) || c == '\n', "{c:?} left raw in {safe:?}");
            }
            assert!(
                safe.contains("\\u202e") && safe.contains("\\u009b"),
                "{safe}"
            );
            let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
            assert_eq!(back, value);
        }
        assert_eq!(json_safe("{\"a\": \"ok\"}"), "{\"a\": \"ok\"}");
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
    fn widths_are_per_grapheme_cluster() {
        assert_eq!(str_width("中文ab"), 6);
        assert_eq!(str_width("🙂"), 2);
        assert_eq!(str_width("cafe\u{301}"), 4);
        assert_eq!(str_width("❤\u{fe0f}"), 2, "VS16 makes the heart an emoji");
        assert_eq!(str_width("👩\u{200d}👧"), 2, "a ZWJ family is one glyph");
        assert_eq!(graphemes("👩\u{200d}👧x").count(), 2);
        assert_eq!(truncate("中文中文", 5), "中文…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 1), "…");
        assert_eq!(truncate("abcd", 0), "");
        assert_eq!(truncate("e\u{301}e\u{301}e\u{301}", 2), "e\u{301}…");
        assert_eq!(pad_right("中", 4), "中  ");
        assert_eq!(pad_left("e\u{301}", 3), "  e\u{301}");
        // Halfwidth ｶﾞ: whatever ratatui's buffer reserves for it, or it drops the glyph.
        assert_eq!(
            str_width("\u{ff76}\u{ff9e}"),
            "\u{ff76}\u{ff9e}".cell_width() as usize
        );
        assert!(str_width("\u{ff76}\u{ff9e}") >= 2);
        assert_eq!(str_width("\u{200b}"), 0);
    }
}
