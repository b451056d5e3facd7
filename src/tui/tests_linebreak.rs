//! Line breaking of mixed Chinese, English and emoji in the chat wrapper
//! ([`super::wrap::Block`]): lines break where the Unicode line-breaking
//! algorithm (UAX #14) allows, never inside a grapheme cluster, and every
//! glyph keeps the tokens whose bytes it holds.
//!
//! The checks measure break opportunities with `unicode-linebreak` directly
//! and token spans from the raw token bytes, not from the wrapper's own notes.

use proptest::prelude::*;
use unicode_linebreak::linebreaks;

use super::wrap::{Block, Cell, Tag, line_width};
use crate::text::{Utf8Assembler, str_width};

/// Chinese, English, full-width punctuation, brackets, emoji with a skin
/// tone, a flag, a ZWJ family, an ellipsis.
const PARAGRAPHS: &[&str] = &[
    "我们刚才聊了 Rust 的 ownership，注意：借用检查器（borrow checker）会在编译时报错。😀👍🏽 然后……",
    "「所有权」是 Rust 最独特的特性，它让 Rust 无需垃圾回收（GC）即可保证内存安全。每个值都有一个被称为其所有者的变量、并且一次只能有一个所有者！🇨🇳👩‍👧 好的？",
    "Mixed text: 你好，world！This sentence is mostly English, with 中文词语 inside it, and an emoji 🙂 here.",
];

const WIDTHS: &[usize] = &[10, 17, 24, 40];

/// May not start a line (closing punctuation, full stops, commas).
const NO_START: &str = "。，、．：；！？）」』】〕〉》”’…";
/// May not end a line (opening brackets and quotes).
const NO_END: &str = "（「『【〔〈《“‘";

/// Pseudo-tokens: byte chunks of 1 to 7 bytes, so that characters, emoji
/// sequences and flags are split between tokens as a byte-level BPE does.
fn byte_tokens(s: &str) -> Vec<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut k) = (0, 0);
    while i < b.len() {
        let n = (k * 5 % 7 + 1).min(b.len() - i);
        out.push(b[i..i + n].to_vec());
        i += n;
        k += 1;
    }
    out
}

/// The block of `tokens` streamed one at a time as the app does (UTF-8
/// assembled across tokens), and each token's byte range in the text.
fn stream(tokens: &[Vec<u8>], width: usize) -> (Block, Vec<std::ops::Range<usize>>) {
    let mut b = Block::new(width);
    let mut asm = Utf8Assembler::default();
    let mut ranges = Vec::new();
    let mut at = 0;
    for (i, t) in tokens.iter().enumerate() {
        b.push_str(&asm.push(t), Tag::Token(i as u32));
        ranges.push(at..at + t.len());
        at += t.len();
    }
    (b, ranges)
}

fn line_text(l: &[Cell]) -> String {
    l.iter().map(|c| c.text.as_str()).collect()
}

/// Width without the spaces that may hang past the edge.
fn trimmed_width(l: &str) -> usize {
    str_width(l.trim_end_matches(' '))
}

/// The lines of `b` drawn as a box, for the snapshots.
fn drawn(b: &Block, width: usize) -> String {
    b.lines
        .iter()
        .map(|l| {
            let t = line_text(l);
            let t = t.trim_end_matches(' ');
            format!("|{t}{}|\n", " ".repeat(width.saturating_sub(str_width(t))))
        })
        .collect()
}

/// Every rule of a good wrap, checked on `b` (the wrap of `text` to `width`).
#[track_caller]
fn check_lines(b: &Block, text: &str, width: usize) {
    let lines: Vec<String> = b.lines.iter().map(|l| line_text(l)).collect();
    assert_eq!(lines.concat(), text, "nothing lost or added at {width}");
    for (i, l) in lines.iter().enumerate() {
        let ctx = format!("line {i} {l:?} at width {width}:\n{}", drawn(b, width));
        assert!(trimmed_width(l) <= width, "too wide: {ctx}");
        if i > 0 {
            let first = l.chars().next().expect("no empty line");
            assert!(!NO_START.contains(first), "starts with {first}: {ctx}");
            assert_ne!(first, ' ', "starts with a space: {ctx}");
        }
        if i + 1 < lines.len() {
            let last = l.trim_end_matches(' ').chars().last().expect("not blank");
            assert!(!NO_END.contains(last), "ends with {last}: {ctx}");
            // The next line's first unbreakable piece did not fit here (after
            // this line's spaces).
            let joined = format!("{l}{}", lines[i + 1]);
            let next_break = linebreaks(&joined)
                .map(|(at, _)| at)
                .find(|&at| at > l.len())
                .expect("end of text breaks");
            let piece = &joined[l.len()..next_break];
            assert!(
                str_width(l) + trimmed_width(piece) > width,
                "{piece:?} would have fitted: {ctx}"
            );
            // The line ends where UAX #14 allows a break, unless it allows
            // none in the whole line (a word wider than the line is cut).
            let inside = linebreaks(&joined).any(|(at, _)| at > 0 && at < l.len());
            assert!(
                linebreaks(&joined).any(|(at, _)| at == l.len()) || !inside,
                "no break allowed after it: {ctx}"
            );
        }
    }
}

#[test]
fn mixed_paragraphs_break_where_unicode_allows_at_every_width() {
    for text in PARAGRAPHS {
        for &w in WIDTHS {
            let mut b = Block::new(w);
            b.push_str(text, Tag::Text);
            check_lines(&b, text, w);
        }
    }
}

#[test]
fn streamed_tokens_wrap_as_the_whole_text_and_keep_their_glyphs() {
    for text in PARAGRAPHS {
        let tokens = byte_tokens(text);
        for &w in WIDTHS {
            let (b, ranges) = stream(&tokens, w);
            check_lines(&b, text, w);
            let mut whole = Block::new(w);
            whole.push_str(text, Tag::Text);
            let texts = |b: &Block| b.lines.iter().map(|l| line_text(l)).collect::<Vec<_>>();
            assert_eq!(texts(&b), texts(&whole), "streamed vs whole at {w}");
            // Every glyph is covered by exactly the tokens whose bytes it holds.
            let mut at = 0;
            for cell in b.lines.iter().flatten() {
                let span = at..at + cell.text.len();
                at = span.end;
                let owners: Vec<u32> = ranges
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.start < span.end && span.start < r.end)
                    .map(|(i, _)| i as u32)
                    .collect();
                // The last token is always known; a token whose text ends
                // with a character's first bytes is not (the block is given
                // text, not bytes), so `lo` may be later than the first owner.
                let (first, last) = (owners[0], *owners.last().unwrap());
                assert_eq!(cell.hi, last, "{cell:?} at {span:?}");
                assert!(
                    first <= cell.lo && cell.lo <= cell.hi,
                    "{cell:?} at {span:?}"
                );
                let Tag::Token(t) = cell.tag else {
                    panic!("{cell:?} is not a token's")
                };
                assert!(cell.lo <= t && t <= cell.hi, "{cell:?}");
            }
        }
    }
}

#[test]
fn emoji_sequences_and_flags_are_never_split_across_lines() {
    // Each glyph is 2 columns; at width 3 every line holds one of them.
    let text = "👍🏽🇨🇳👩‍👧❤\u{fe0f}";
    for w in [2, 3, 5] {
        let (b, _) = stream(&byte_tokens(text), w);
        let glyphs: Vec<&str> = b.lines.iter().flatten().map(|c| c.text.as_str()).collect();
        assert_eq!(glyphs, ["👍🏽", "🇨🇳", "👩‍👧", "❤\u{fe0f}"], "width {w}");
        assert!(b.lines.iter().all(|l| line_width(l) <= w));
    }
}

#[test]
fn snapshot_mixed_paragraphs() {
    let mut out = String::new();
    for text in PARAGRAPHS {
        for &w in WIDTHS {
            let mut b = Block::new(w);
            b.push_str(text, Tag::Text);
            out += &format!("width {w}\n{}\n", drawn(&b, w));
        }
    }
    insta::assert_snapshot!("mixed_paragraphs", out);
}

/// Pieces whose line breaking depends on what came before: brackets and
/// quotes before spaces, runs of spaces and of flags, numbers, joiners,
/// line feeds; marks and skin tones on their letter and emoji (the splits
/// into tokens write them apart).
const PIECES: &[&str] = &[
    "中", "文", "。", "，", "（", "）", "「", "」", " ", "   ", "a", "word", "🇨", "🇳", "👍", "👍🏽",
    "\u{200d}", "👩", "e", "e\u{301}", "\n", "…", "1", "5", ".", "$", "-", "“", "”", "\u{200b}",
    "\u{a0}", "\t",
];

proptest! {
    /// However the text is split into tokens (at any byte), the lines are
    /// those of the whole text at once, break opportunities included.
    #[test]
    fn any_split_wraps_as_the_whole_text(
        picks in prop::collection::vec(0..PIECES.len(), 0..80),
        cuts in prop::collection::vec(1usize..9, 1..40),
        width in 1usize..30,
    ) {
        let text: String = picks.iter().map(|&i| PIECES[i]).collect();
        let bytes = text.as_bytes();
        let mut tokens = Vec::new();
        let (mut at, mut k) = (0, 0);
        while at < bytes.len() {
            let n = cuts[k % cuts.len()].min(bytes.len() - at);
            tokens.push(bytes[at..at + n].to_vec());
            at += n;
            k += 1;
        }
        let (streamed, _) = stream(&tokens, width);
        let mut whole = Block::new(width);
        whole.push_str(&text, Tag::Text);
        let cells = |b: &Block| -> Vec<Vec<(String, bool, u32)>> {
            b.lines
                .iter()
                .map(|l| l.iter().map(|c| (c.text.to_string(), c.break_before, c.at)).collect())
                .collect()
        };
        prop_assert_eq!(cells(&streamed), cells(&whole));
    }
}
