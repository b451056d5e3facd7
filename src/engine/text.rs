//! Token bytes → text: incremental UTF-8 assembly (a Chinese character or an
//! emoji is often split over several tokens) and escaping for safe display.

use std::fmt::Write;

/// Assembles a stream of token byte strings into text, holding back an
/// incomplete multi-byte character until the bytes that complete it arrive.
#[derive(Debug, Default, Clone)]
pub struct Utf8Assembler {
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
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Ends the stream: whatever is pending becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Characters that must never reach a terminal raw: C0/C1 controls, DEL, and
/// bidirectional overrides that would reorder the screen.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Marks and overrides that reorder text on screen (the TUI's escaping uses this too).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn escape_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Text for display in flowing chat: newlines kept, tabs expanded, every other
/// control character shown escaped (`\x1b`), never interpreted.
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str("    "),
            c if is_unsafe(c) => escape_char(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// One token shown on its own: valid UTF-8 with controls and newlines escaped,
/// and bytes that are not (yet) a whole character as `<0xE4>`.
pub fn readable_piece(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 4);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_unsafe(c) {
                escape_char(&mut out, c);
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "<0x{b:02X}>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(readable_piece(b"\x1b[31m"), "\\x1b[31m");
        assert_eq!(readable_piece("\u{202E}x".as_bytes()), "\\u{202e}x");
        assert_eq!(readable_piece("\u{061C}".as_bytes()), "\\u{61c}");
    }

    #[test]
    fn sanitize_keeps_newlines_but_escapes_escapes() {
        assert_eq!(sanitize("a\nb"), "a\nb");
        assert_eq!(sanitize("red\x1b[31m!\x07"), "red\\x1b[31m!\\x07");
        assert_eq!(sanitize("\u{9b}2J"), "\\x9b2J");
        assert!(!sanitize("x\r\u{7f}").chars().any(|c| c.is_control()));
    }
}
