//! Wrapping of chat text into terminal lines, glyph by glyph, remembering
//! which token every glyph came from (for the heatmap, the token cursor and
//! token boundaries).
//!
//! Lines break where the Unicode line-breaking algorithm (UAX #14) allows
//! ([`LineBreaks`]): after a space, between two Chinese characters or emoji,
//! never before closing punctuation (`。` `，` `、` `）`) nor after an opening
//! bracket (`（` `「`), never inside a glyph. A word wider than the line is
//! cut, keeping a closing mark with the glyph before it. The same rule wraps
//! the message box, help, notices and the inspector's remarks
//! ([`wrap_plain`], [`wrap_lines`]).
//!
//! A cell is one grapheme cluster, as terminals draw it: `é` written with a
//! combining accent, `❤️` with its variation selector and a ZWJ family are one
//! cell each, with the width of the whole cluster (see [`crate::text`]). A
//! cluster can be written by several tokens (an accent generated as a token of
//! its own, a character whose bytes are split over tokens): the cell records
//! the range of tokens that wrote it, so the token cursor can highlight it
//! from any of them.
//!
//! A [`Block`] can be appended to: lines before the last one never change when
//! text is added, so a streaming reply is wrapped incrementally, and the
//! result equals wrapping the whole text at once.

use compact_str::CompactString;
use ratatui::text::{Line, Span};

use crate::text::{LineBreaks, display_text, grapheme_width, graphemes, is_closing, is_opening};

/// What a cell of chat text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Role label of a message header ("you", "assistant").
    Label,
    /// Extra information in a message header.
    Meta,
    /// The `‹ 2/3 ›` of a turn with alternatives.
    Siblings,
    /// Plain message text (user or system).
    Text,
    /// Text of the assistant token with this index in its message: the token
    /// that started the glyph.
    Token(u32),
    /// A remark such as `[stopped]` or an error.
    Note,
    /// Something shown while waiting (the reply has no token yet).
    Placeholder,
}

/// One glyph on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// One grapheme cluster, display-safe.
    pub text: CompactString,
    /// Columns it takes (1 or 2).
    pub width: u8,
    pub tag: Tag,
    /// For [`Tag::Token`]: the first and last token whose bytes are in this
    /// glyph (`lo <= owner <= hi`). A token whose bytes only start a character
    /// (`<0xE4>`) or only add a mark to one is covered this way.
    pub lo: u32,
    pub hi: u32,
    /// Where its text starts, in chars of the display text pushed into the
    /// block so far (see [`display_text`]): maps a glyph back to its source.
    pub at: u32,
    /// A line may break just before this glyph (UAX #14).
    pub break_before: bool,
}

impl Cell {
    /// True when token `t` wrote (part of) this glyph.
    pub fn covers(&self, t: u32) -> bool {
        matches!(self.tag, Tag::Token(_)) && self.lo <= t && t <= self.hi
    }

    /// True when this glyph holds token `t` only in part (it is shared with
    /// other tokens, and `t` did not start it).
    pub fn is_partial_for(&self, t: u32) -> bool {
        self.covers(t) && (self.lo != self.hi || self.tag != Tag::Token(t))
    }

    fn is_space(&self) -> bool {
        self.text == " "
    }
}

/// Wrapped lines of one message (or the system prompt).
#[derive(Debug, Clone)]
pub struct Block {
    pub lines: Vec<Vec<Cell>>,
    width: usize,
    /// Columns used on the last line.
    cur: usize,
    /// The last cell may still grow: a token that follows can extend its
    /// grapheme cluster (no line break came after it).
    open: bool,
    /// First token since the last glyph whose text was empty (its bytes wait
    /// for the rest of their character).
    pending_lo: Option<u32>,
    /// Chars of display text pushed so far.
    disp: usize,
    /// Where the line may break before the next glyph.
    breaks: LineBreaks,
}

impl Block {
    pub fn new(width: usize) -> Self {
        Self {
            lines: vec![Vec::new()],
            width: width.max(1),
            cur: 0,
            open: false,
            pending_lo: None,
            disp: 0,
            breaks: LineBreaks::default(),
        }
    }

    pub fn newline(&mut self) {
        self.lines.push(Vec::new());
        self.cur = 0;
        self.open = false;
        self.breaks.reset();
    }

    /// Appends text, made display-safe first (see [`display_text`]).
    pub fn push_str(&mut self, s: &str, tag: Tag) {
        let token = match tag {
            Tag::Token(n) => Some(n),
            _ => None,
        };
        if s.is_empty() {
            if let Some(n) = token {
                self.pending_lo.get_or_insert(n);
            }
            return;
        }
        let shown = display_text(s);
        let mut rest = shown.as_str();
        // The start of the text may continue the last glyph (`e` + U+0301,
        // `❤` + U+FE0F, `👩` + ZWJ `👧`, a second regional indicator).
        if let Some(n) = self.continuation(&shown, tag) {
            let (extra, after) = shown.split_at(n);
            self.breaks.push(extra);
            self.append_to_last(extra, token);
            self.disp += extra.chars().count();
            rest = after;
        }
        for g in graphemes(rest) {
            if g == "\n" {
                self.newline();
                self.disp += 1;
                continue;
            }
            let w = grapheme_width(g);
            let mut break_before = self.breaks.push(g);
            if w == 0 {
                // A mark or invisible character with no glyph to sit on
                // (ratatui would drop a zero-width cell): attach it to the
                // glyph before it, else show it by code point (one word).
                if !(self.open && self.append_to_last(g, token)) {
                    for (k, c) in g.chars().enumerate() {
                        let code = format!("<U+{:04X}>", c as u32);
                        for ch in code.chars() {
                            let mut cell = self.cell(ch.encode_utf8(&mut [0; 4]), 1, tag);
                            cell.break_before = std::mem::take(&mut break_before);
                            // Each code names its own char (as when the
                            // chars come in tokens of their own).
                            cell.at = (self.disp + k).min(u32::MAX as usize) as u32;
                            self.push_cell(cell);
                        }
                    }
                    // What follows is not part of the `>` (a mark or a skin
                    // tone in the next token starts a glyph of its own, as in
                    // the whole text).
                    self.open = false;
                }
                self.disp += g.chars().count();
                continue;
            }
            let mut cell = self.cell(g, w, tag);
            cell.break_before = break_before;
            self.push_cell(cell);
            self.disp += g.chars().count();
        }
    }

    fn cell(&mut self, g: &str, w: usize, tag: Tag) -> Cell {
        let (lo, hi) = match tag {
            Tag::Token(n) => (self.pending_lo.take().unwrap_or(n).min(n), n),
            _ => (0, 0),
        };
        Cell {
            text: CompactString::from(g),
            width: w.min(u8::MAX as usize) as u8,
            tag,
            lo,
            hi,
            at: self.disp.min(u32::MAX as usize) as u32,
            break_before: false,
        }
    }

    /// Bytes at the start of `shown` that belong to the last glyph: the
    /// last glyph and the new text, segmented together, start with a longer
    /// cluster than the last glyph alone.
    fn continuation(&self, shown: &str, tag: Tag) -> Option<usize> {
        if !self.open {
            return None;
        }
        let last = self.lines.last().and_then(|l| l.last())?;
        let same_kind = matches!(
            (last.tag, tag),
            (Tag::Token(_), Tag::Token(_)) | (Tag::Text, Tag::Text)
        ) || last.tag == tag;
        if !same_kind {
            return None;
        }
        let mut joined = last.text.clone();
        joined.push_str(shown);
        let first = graphemes(&joined).next()?;
        (first.len() > last.text.len()).then(|| first.len() - last.text.len())
    }

    /// Adds `g` to the last glyph (re-wrapping it when its width changes).
    fn append_to_last(&mut self, g: &str, token: Option<u32>) -> bool {
        let Some(line) = self.lines.last_mut() else {
            return false;
        };
        let Some(mut cell) = line.pop() else {
            return false;
        };
        self.cur -= cell.width as usize;
        cell.text.push_str(g);
        cell.width = grapheme_width(&cell.text).clamp(1, u8::MAX as usize) as u8;
        if let Some(n) = token {
            cell.hi = cell.hi.max(n);
            if let Some(p) = self.pending_lo.take() {
                cell.lo = cell.lo.min(p);
            }
        }
        self.push_cell(cell);
        true
    }

    /// Appends one display-safe glyph, breaking the line where needed.
    ///
    /// Each break leaves a shorter last line, until the glyph fits or starts
    /// a line. A glyph that grows (see [`Self::append_to_last`]) is taken off
    /// and pushed again: the breaks its narrower self made are steps this
    /// loop takes anyway, so the lines are those of the whole text at once.
    fn push_cell(&mut self, cell: Cell) {
        let w = cell.width as usize;
        self.open = true;
        while w > 0 && self.cur + w > self.width && self.lines.last().is_some_and(|l| !l.is_empty())
        {
            if cell.is_space() {
                // A space may hang past the edge (it is clipped); the next
                // visible glyph starts the new line.
                self.last().push(cell);
                self.cur += w;
                return;
            }
            let line = self.last();
            let tail = if cell.break_before {
                Vec::new()
            } else {
                match line.iter().rposition(|c| c.break_before) {
                    // Move what follows the last break opportunity (the word
                    // being written, the character before a `。`) along.
                    Some(i) if line[..i].iter().any(|c| !c.is_space()) => line.split_off(i),
                    // No place to break (a word wider than the line): cut it.
                    _ => cut_word(line, &cell),
                }
            };
            self.cur = line_width(&tail);
            self.lines.push(tail);
        }
        self.last().push(cell);
        self.cur += w;
    }

    fn last(&mut self) -> &mut Vec<Cell> {
        if self.lines.is_empty() {
            self.lines.push(Vec::new());
        }
        self.lines.last_mut().expect("a line")
    }

    /// (line, column) of the first cell with `tag`.
    pub fn find(&self, tag: Tag) -> Option<(usize, usize)> {
        self.find_cell(|c| c.tag == tag)
    }

    /// (line, column) of the first cell `pred` accepts.
    pub fn find_cell(&self, pred: impl Fn(&Cell) -> bool) -> Option<(usize, usize)> {
        for (li, line) in self.lines.iter().enumerate() {
            let mut col = 0;
            for c in line {
                if pred(c) {
                    return Some((li, col));
                }
                col += c.width as usize;
            }
        }
        None
    }

    /// Where token `t` is seen: its first non-space glyph (a leading space may
    /// hang at the end of the line before), else its first glyph; a token
    /// that is part of a glyph shared with others is seen at that glyph.
    pub fn find_token(&self, t: u32) -> Option<(usize, usize)> {
        let mut first = None;
        for (li, line) in self.lines.iter().enumerate() {
            let mut col = 0;
            for c in line {
                if c.covers(t) {
                    if !c.is_space() {
                        return Some((li, col));
                    }
                    first.get_or_insert((li, col));
                } else if first.is_some() {
                    return first;
                }
                col += c.width as usize;
            }
        }
        first
    }
}

/// The end of `line` to move along with `next` where a word wider than the
/// line is cut: a glyph or two more, so that the next line does not start
/// with a closing mark (`，`) nor this one end with an opening bracket (`（`),
/// as long as this line keeps a visible glyph.
fn cut_word(line: &mut Vec<Cell>, next: &Cell) -> Vec<Cell> {
    let mut at = line.len();
    for _ in 0..2 {
        let first = line.get(at).unwrap_or(next);
        let last = &line[at - 1];
        let keeps_one = line[..at - 1].iter().any(|c| !c.is_space());
        if !(is_closing(&first.text) || is_opening(&last.text)) || last.is_space() || !keeps_one {
            break;
        }
        at -= 1;
    }
    line.split_off(at)
}

/// `s` in lines of at most `width` columns by the chat's rule (a glyph wider
/// than that alone on its line), display-safe (see [`display_text`]), `'\n'`
/// starting a new line, spaces at a line's end dropped. For plain text
/// outside the chat (help, the inspector's remarks).
pub fn wrap_plain(s: &str, width: usize) -> Vec<String> {
    let mut b = Block::new(width);
    b.push_str(s, Tag::Text);
    b.lines
        .iter()
        .map(|l| {
            let line: String = l.iter().map(|c| c.text.as_str()).collect();
            line.trim_end_matches(' ').to_string()
        })
        .collect()
}

/// `lines` wrapped to `width` columns by the chat's rule, each piece of text
/// keeping its span's style and each line its own style and alignment: what
/// ratatui's `Paragraph::wrap` does, breaking lines as the chat does. Text
/// is made display-safe (see [`display_text`]); spaces at a line's end are
/// dropped.
pub fn wrap_lines(lines: &[Line<'_>], width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let mut b = Block::new(width);
        // Display char offset where each span starts.
        let mut starts = Vec::with_capacity(line.spans.len());
        for span in &line.spans {
            starts.push(b.disp);
            b.push_str(&span.content, Tag::Text);
        }
        for cells in &b.lines {
            let mut spans: Vec<Span<'static>> = Vec::new();
            let mut current: Option<(usize, String)> = None;
            for c in cells {
                let si = starts
                    .partition_point(|&s| s <= c.at as usize)
                    .saturating_sub(1);
                match &mut current {
                    Some((i, text)) if *i == si => text.push_str(&c.text),
                    _ => {
                        if let Some((i, text)) = current.take() {
                            spans.push(Span::styled(text, line.spans[i].style));
                        }
                        current = Some((si, c.text.to_string()));
                    }
                }
            }
            if let Some((i, mut text)) = current {
                text.truncate(text.trim_end_matches(' ').len());
                spans.push(Span::styled(text, line.spans[i].style));
            }
            let mut l = Line::from(spans).style(line.style);
            l.alignment = line.alignment;
            out.push(l);
        }
    }
    out
}

/// Width of a line of cells.
pub fn line_width(line: &[Cell]) -> usize {
    line.iter().map(|c| c.width as usize).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &Block) -> Vec<String> {
        b.lines
            .iter()
            .map(|l| l.iter().map(|c| c.text.as_str()).collect())
            .collect()
    }

    fn tokens(parts: &[&str], width: usize) -> Block {
        let mut b = Block::new(width);
        for (i, t) in parts.iter().enumerate() {
            b.push_str(t, Tag::Token(i as u32));
        }
        b
    }

    #[test]
    fn wraps_at_word_boundaries() {
        let mut b = Block::new(10);
        b.push_str("the quick brown fox jumps", Tag::Text);
        assert_eq!(text(&b), ["the quick ", "brown fox ", "jumps"]);
        for l in &b.lines {
            assert!(line_width(l) <= 10 || l.last().is_some_and(|c| c.is_space()));
        }
    }

    #[test]
    fn breaks_long_words() {
        let mut b = Block::new(4);
        b.push_str("abcdefghij", Tag::Text);
        assert_eq!(text(&b), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let mut b = Block::new(5);
        b.push_str("中文中文中文", Tag::Text);
        assert_eq!(text(&b), ["中文", "中文", "中文"]);
        let mut b = Block::new(5);
        b.push_str("ab🙂🙂", Tag::Text);
        assert_eq!(text(&b), ["ab🙂", "🙂"]);
        assert!(b.lines.iter().all(|l| line_width(l) <= 5));
    }

    #[test]
    fn newlines_and_controls() {
        let mut b = Block::new(20);
        b.push_str("a\nb\u{1b}[2J", Tag::Text);
        assert_eq!(text(&b), ["a", "b␛[2J"]);
    }

    #[test]
    fn incremental_append_equals_one_go() {
        let parts = [
            "Hello", ",", " world", "!", " This", " is", " a", " test", "\n", "新", "的", " line",
        ];
        let a = tokens(&parts, 9);
        let mut b = Block::new(9);
        b.push_str(&parts.concat(), Tag::Text);
        assert_eq!(text(&a), text(&b));
        assert_eq!(a.find(Tag::Token(2)), Some((0, 6)));
        // " This" starts with the space hanging at the end of line 1.
        assert_eq!(a.find(Tag::Token(4)), Some((1, 6)));
        assert_eq!(a.find_token(4), Some((2, 0)));
        assert_eq!(a.find(Tag::Token(5)), Some((2, 4)));
        assert_eq!(a.find_token(8), None, "a bare newline has no cell");
    }

    #[test]
    fn marks_written_as_tokens_of_their_own_join_their_letter() {
        // " café naïve" as SmolLM2 writes it with combining marks: the accents
        // are tokens of their own.
        let parts = [" cafe", "\u{301}", " nai", "\u{308}", "ve"];
        let b = tokens(&parts, 40);
        let shown: String = text(&b).concat();
        assert_eq!(shown, parts.concat(), "nothing vanishes");
        let line = &b.lines[0];
        assert_eq!(line_width(line), 11);
        let e = line
            .iter()
            .find(|c| c.text == "e\u{301}")
            .expect("é is one glyph");
        assert_eq!((e.tag, e.lo, e.hi), (Tag::Token(0), 0, 1));
        assert!(e.is_partial_for(1) && e.is_partial_for(0));
        assert_eq!(
            b.find_token(1),
            Some((0, 4)),
            "the accent token is seen on its é"
        );
        // Same cells as wrapping the whole text at once.
        let mut whole = Block::new(40);
        whole.push_str(&parts.concat(), Tag::Text);
        assert_eq!(text(&whole), text(&b));
    }

    #[test]
    fn emoji_sequences_are_one_glyph_of_width_two() {
        for parts in [
            &["a ", "❤", "\u{fe0f}", " b"][..],
            &["a ", "👩", "\u{200d}", "👧", " b"][..],
            &["a ", "🇫", "🇷", " b"][..],
        ] {
            let b = tokens(parts, 40);
            assert_eq!(text(&b).concat(), parts.concat());
            let line = &b.lines[0];
            assert_eq!(line.len(), 5, "{parts:?}: {line:?}");
            assert_eq!(line[2].width, 2, "{parts:?}");
            assert_eq!(line_width(line), 6, "{parts:?}");
        }
    }

    #[test]
    fn a_cluster_continued_inside_a_longer_token_joins_too() {
        for parts in [
            &["a ", "👩", "\u{200d}👧 b"][..],
            &["a ", "🇫", "🇷 b"][..],
            &["a ", "e", "\u{301}\u{302} b"][..],
        ] {
            let b = tokens(parts, 40);
            assert_eq!(text(&b).concat(), parts.concat());
            let line = &b.lines[0];
            assert_eq!(line.len(), 5, "{parts:?}: {line:?}");
            assert_eq!((line[2].lo, line[2].hi), (1, 2), "{parts:?}");
        }
        // A second flag after a whole one starts a glyph of its own.
        let b = tokens(&["🇫🇷", "🇺🇸"], 40);
        assert_eq!(text(&b), ["🇫🇷🇺🇸"]);
        assert_eq!(b.lines[0].len(), 2);
    }

    #[test]
    fn cells_know_where_their_text_starts() {
        let mut b = Block::new(40);
        b.push_str("a\u{1b}\u{301}b", Tag::Text);
        b.push_str("\u{301}c", Tag::Text);
        let at: Vec<(String, u32)> = b.lines[0]
            .iter()
            .map(|c| (c.text.to_string(), c.at))
            .collect();
        // "a", "␛" + U+0301 (one glyph), "b" + U+0301, "c".
        assert_eq!(
            at,
            [
                ("a".into(), 0),
                ("␛\u{301}".into(), 1),
                ("b\u{301}".into(), 3),
                ("c".into(), 5)
            ]
        );
        let mut b = Block::new(40);
        b.push_str("\u{301}x", Tag::Text);
        assert!(b.lines[0][..8].iter().all(|c| c.at == 0));
        assert_eq!(b.lines[0][8].at, 1);
    }

    #[test]
    fn a_glyph_that_grows_past_the_edge_moves_to_the_next_line() {
        // "ab ❤" fills 4 columns; U+FE0F makes the heart 2 wide.
        let b = tokens(&["ab ❤", "\u{fe0f}"], 4);
        assert_eq!(text(&b), ["ab ", "❤\u{fe0f}"]);
        assert!(b.lines.iter().all(|l| line_width(l) <= 4));
    }

    #[test]
    fn bytes_split_over_tokens_are_covered_by_their_character() {
        // Token 1 holds the first bytes of 好 (its text is empty), token 2 the rest.
        let b = tokens(&["你", "", "好"], 20);
        let cell = &b.lines[0][1];
        assert_eq!(cell.text, "好");
        assert_eq!((cell.tag, cell.lo, cell.hi), (Tag::Token(2), 1, 2));
        assert!(cell.is_partial_for(1));
        assert!(!b.lines[0][0].is_partial_for(0));
        assert_eq!(b.find_token(1), Some((0, 2)));
    }

    #[test]
    fn a_lone_mark_with_nothing_to_sit_on_is_shown_by_code_point() {
        let mut b = Block::new(20);
        b.push_str("\u{301}x", Tag::Token(0));
        assert_eq!(text(&b), ["<U+0301>x"]);
    }

    #[test]
    fn wrapped_lines_keep_each_span_style() {
        use ratatui::style::{Color, Style};
        let red = Style::default().fg(Color::Red);
        let line = Line::from(vec![
            Span::raw("注意："),
            Span::styled("借用检查器会报错", red),
        ]);
        let got: Vec<Vec<(String, Style)>> = wrap_lines(&[line], 10)
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| (s.content.to_string(), s.style))
                    .collect()
            })
            .collect();
        let plain = Style::default();
        assert_eq!(
            got,
            [
                vec![("注意：".into(), plain), ("借用".into(), red)],
                vec![("检查器会报".into(), red)],
                vec![("错".into(), red)],
            ]
        );
        assert_eq!(wrap_plain("a  b\nc ", 2), ["a", "b", "c"]);
    }

    #[test]
    fn a_word_wider_than_the_line_is_cut_before_a_glyph_that_may_start_one() {
        let mut b = Block::new(10);
        b.push_str("ownership，注意", Tag::Text);
        assert_eq!(text(&b), ["ownershi", "p，注意"]);
        let mut b = Block::new(10);
        b.push_str("abcdefghi（jk", Tag::Text);
        assert_eq!(text(&b), ["abcdefghi", "（jk"]);
    }

    #[test]
    fn tiny_widths_do_not_loop() {
        let mut b = Block::new(0);
        b.push_str("中 a b", Tag::Text);
        assert!(b.lines.len() >= 2);
    }
}
