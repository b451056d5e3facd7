//! Word wrapping of chat text into terminal lines, cell by cell, remembering
//! which token every cell came from (for the heatmap, the token cursor and
//! token boundaries). Wide characters (CJK, emoji) count as two columns.
//!
//! A [`Block`] can be appended to: lines before the last one never change when
//! text is added, so a streaming reply is wrapped incrementally.

use super::escape::{char_width, display_char};

/// What a cell of chat text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Role label of a message header ("you", "assistant").
    Label,
    /// Extra information in a message header.
    Meta,
    /// Plain message text (user or system).
    Text,
    /// Text of the assistant token with this index in its message.
    Token(u32),
    /// A remark such as "[stopped]" or an error.
    Note,
    /// Something shown while waiting (the reply has no token yet).
    Placeholder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub ch: char,
    pub width: u8,
    pub tag: Tag,
}

/// Wrapped lines of one message (or the system prompt).
#[derive(Debug, Clone)]
pub struct Block {
    pub lines: Vec<Vec<Cell>>,
    width: usize,
    /// Columns used on the last line.
    cur: usize,
}

impl Block {
    pub fn new(width: usize) -> Self {
        Self {
            lines: vec![Vec::new()],
            width: width.max(1),
            cur: 0,
        }
    }

    pub fn newline(&mut self) {
        self.lines.push(Vec::new());
        self.cur = 0;
    }

    /// Appends text, made display-safe first (see [`display_char`]).
    pub fn push_str(&mut self, s: &str, tag: Tag) {
        for c in s.chars() {
            display_char(c, |d| self.push_display(d, tag));
        }
    }

    /// Appends one character that is already display-safe (`'\n'` breaks the line).
    pub fn push_display(&mut self, ch: char, tag: Tag) {
        if ch == '\n' {
            self.newline();
            return;
        }
        let w = char_width(ch);
        let cell = Cell {
            ch,
            width: w as u8,
            tag,
        };
        let line_empty = self.lines.last().is_none_or(|l| l.is_empty());
        if w > 0 && self.cur + w > self.width && !line_empty {
            if ch == ' ' {
                // A space may hang past the edge (it is clipped); the next
                // visible character starts the new line.
                self.last().push(cell);
                self.cur += w;
                return;
            }
            let line = self.last();
            let tail = match line.iter().rposition(|c| c.ch == ' ') {
                // Move the word being written to the next line.
                Some(i) if i + 1 < line.len() && line[..i].iter().any(|c| c.ch != ' ') => {
                    line.split_off(i + 1)
                }
                Some(i) if i + 1 == line.len() => Vec::new(),
                // No place to break (one long word): break inside it.
                _ => Vec::new(),
            };
            self.cur = tail.iter().map(|c| c.width as usize).sum();
            self.lines.push(tail);
            if self.cur + w > self.width && self.cur > 0 {
                // The moved word alone is too long: break it here.
                self.newline();
            }
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
        for (li, line) in self.lines.iter().enumerate() {
            let mut col = 0;
            for c in line {
                if c.tag == tag {
                    return Some((li, col));
                }
                col += c.width as usize;
            }
        }
        None
    }

    /// Where a token is seen: its first non-space cell (a leading space may
    /// hang at the end of the line before), else its first cell.
    pub fn find_visible(&self, tag: Tag) -> Option<(usize, usize)> {
        let mut first = None;
        for (li, line) in self.lines.iter().enumerate() {
            let mut col = 0;
            for c in line {
                if c.tag == tag {
                    if c.ch != ' ' {
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
            .map(|l| l.iter().map(|c| c.ch).collect())
            .collect()
    }

    #[test]
    fn wraps_at_word_boundaries() {
        let mut b = Block::new(10);
        b.push_str("the quick brown fox jumps", Tag::Text);
        assert_eq!(text(&b), ["the quick ", "brown fox ", "jumps"]);
        for l in &b.lines {
            assert!(line_width(l) <= 10 || l.last().is_some_and(|c| c.ch == ' '));
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
        let tokens = [
            "Hello", ",", " world", "!", " This", " is", " a", " test", "\n", "新", "的", " line",
        ];
        let mut a = Block::new(9);
        for (i, t) in tokens.iter().enumerate() {
            a.push_str(t, Tag::Token(i as u32));
        }
        let mut b = Block::new(9);
        b.push_str(&tokens.concat(), Tag::Text);
        assert_eq!(text(&a), text(&b));
        assert_eq!(a.find(Tag::Token(2)), Some((0, 6)));
        // " This" starts with the space hanging at the end of line 1.
        assert_eq!(a.find(Tag::Token(4)), Some((1, 6)));
        assert_eq!(a.find_visible(Tag::Token(4)), Some((2, 0)));
        assert_eq!(a.find(Tag::Token(5)), Some((2, 4)));
        assert_eq!(
            a.find_visible(Tag::Token(8)),
            None,
            "a bare newline has no cell"
        );
    }

    #[test]
    fn tiny_widths_do_not_loop() {
        let mut b = Block::new(0);
        b.push_str("中 a b", Tag::Text);
        assert!(b.lines.len() >= 2);
    }
}
