//! Drawing an editable text (the message box, the system prompt editor) the
//! way the chat draws text: the same escaping (`␛`, `␇`, a tab as
//! [`crate::text::TAB_WIDTH`] spaces), the same glyphs and widths by grapheme
//! cluster, the same word wrap. `ratatui-textarea` keeps the text and does the
//! editing; its own drawing would hide control characters (ratatui drops them)
//! and expand tabs to tab stops, so what you typed would not look like what
//! the chat then shows.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui_textarea::TextArea;

use super::wrap::{Block, Cell, Tag};
use crate::text::{display_text, str_width};

/// One screen row of an editable text.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Logical line (index into the text's lines).
    pub line: usize,
    /// Glyphs, each with the char offset in its line where it starts.
    pub cells: Vec<(Cell, usize)>,
}

/// The text wrapped to a width, and where the cursor is on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub rows: Vec<Row>,
    /// (row, column) of the cursor.
    pub cursor: (usize, usize),
}

/// Wraps `lines` to `width` columns (one column is kept free so the cursor
/// fits after the last glyph) and places the cursor, given as (line, char
/// offset) like `TextArea::cursor`.
pub fn layout(lines: &[String], cursor: (usize, usize), width: usize) -> Layout {
    let wrap_w = width.saturating_sub(1).max(1);
    let mut rows = Vec::new();
    let mut cur = (0, 0);
    for (li, line) in lines.iter().enumerate() {
        // Display position (in chars of the display text) of each source char.
        let mut disp_start = Vec::with_capacity(line.len() + 1);
        let mut n = 0;
        for c in line.chars() {
            disp_start.push(n);
            n += display_text(c.encode_utf8(&mut [0; 4])).chars().count();
        }
        disp_start.push(n);
        let src_of = |d: usize| disp_start.partition_point(|&s| s <= d).saturating_sub(1);
        let mut block = Block::new(wrap_w);
        block.push_str(line, Tag::Text);
        let first_row = rows.len();
        for cells in block.lines {
            let cells: Vec<(Cell, usize)> = cells
                .into_iter()
                .map(|c| {
                    let src = src_of(c.at as usize);
                    (c, src)
                })
                .collect();
            rows.push(Row { line: li, cells });
        }
        if li == cursor.0 {
            cur = place_cursor(&rows[first_row..], cursor.1);
            cur.0 += first_row;
        }
    }
    Layout { rows, cursor: cur }
}

/// (row within `rows`, column) of char offset `col`: on the glyph that holds
/// it, else just after the last glyph.
fn place_cursor(rows: &[Row], col: usize) -> (usize, usize) {
    let mut last = (0, 0);
    for (ri, row) in rows.iter().enumerate() {
        let mut x = 0;
        for (cell, src) in &row.cells {
            if *src >= col {
                return (ri, x);
            }
            x += cell.width as usize;
        }
        last = (ri, x);
    }
    last
}

/// Draws `t` into `area`: its text, or its placeholder when empty, with the
/// cursor (when `cursor` is on) and the selection; scrolled so that the cursor
/// row is visible.
pub fn draw(t: &TextArea<'_>, area: Rect, buf: &mut Buffer, cursor: bool) {
    if area.area() == 0 {
        return;
    }
    let cursor_style = t.cursor_style();
    let lines = t.lines();
    if lines.iter().all(|l| l.is_empty()) && lines.len() <= 1 {
        // The cursor's cell, then the placeholder after it.
        if cursor {
            buf.set_string(area.x, area.y, " ", cursor_style);
        }
        let w = area.width.saturating_sub(1) as usize;
        let text = crate::text::truncate(t.placeholder_text(), w);
        let style = t
            .placeholder_style()
            .unwrap_or(Style::default().fg(Color::DarkGray));
        buf.set_stringn(area.x + 1, area.y, &text, w, style);
        return;
    }
    let c = t.cursor();
    let lay = layout(lines, (c.0, c.1), area.width as usize);
    let height = area.height as usize;
    let top = lay.cursor.0.saturating_sub(height.saturating_sub(1));
    let selection = t.selection_range();
    let selected = |line: usize, col: usize| {
        selection
            .is_some_and(|((r1, c1), (r2, c2))| (line, col) >= (r1, c1) && (line, col) < (r2, c2))
    };
    let sel_style = Style::default().bg(Color::LightBlue);
    for (dy, row) in lay.rows.iter().skip(top).take(height).enumerate() {
        let y = area.y + dy as u16;
        let mut x = 0usize;
        for (cell, src) in &row.cells {
            let w = cell.width as usize;
            if x + w > area.width as usize {
                break;
            }
            let mut style = Style::default();
            if selected(row.line, *src) {
                style = sel_style;
            }
            if cursor && (top + dy, x) == lay.cursor {
                style = style.patch(cursor_style);
            }
            buf.set_stringn(area.x + x as u16, y, &cell.text, w, style);
            x += w;
        }
        if cursor && top + dy == lay.cursor.0 && lay.cursor.1 >= x && x < area.width as usize {
            buf.set_string(
                area.x + lay.cursor.1.min(area.width as usize - 1) as u16,
                y,
                " ",
                cursor_style,
            );
        }
    }
}

/// Rows `lines` take when wrapped to `width` columns (for sizing the box).
pub fn rows_needed(lines: &[String], width: usize) -> usize {
    let wrap_w = width.saturating_sub(1).max(1);
    lines
        .iter()
        .map(|l| {
            if str_width(l) < wrap_w && !l.chars().any(crate::text::is_unsafe) {
                1
            } else {
                let mut b = Block::new(wrap_w);
                b.push_str(l, Tag::Text);
                b.lines.len()
            }
        })
        .sum()
}

/// The text of a text area, lines joined.
pub fn input_text(t: &TextArea) -> String {
    t.lines().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(l: &Layout) -> Vec<String> {
        l.rows
            .iter()
            .map(|r| r.cells.iter().map(|(c, _)| c.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn controls_and_tabs_look_as_in_the_chat() {
        let lines = vec!["a\u{1b}[1mb\u{7}\tc".to_string()];
        let l = layout(&lines, (0, 8), 40);
        assert_eq!(shown(&l), ["a␛[1mb␇    c"]);
        // The cursor is on the 'c' (char 8), after the tab's four columns.
        assert_eq!(l.cursor, (0, 11));
    }

    #[test]
    fn the_cursor_follows_graphemes_and_wide_characters() {
        let lines = vec!["你好e\u{301}x".to_string()];
        assert_eq!(layout(&lines, (0, 0), 40).cursor, (0, 0));
        assert_eq!(layout(&lines, (0, 1), 40).cursor, (0, 2));
        assert_eq!(layout(&lines, (0, 2), 40).cursor, (0, 4));
        // Char 4 is the 'x' after "é" (2 chars, 1 column).
        assert_eq!(layout(&lines, (0, 4), 40).cursor, (0, 5));
        assert_eq!(layout(&lines, (0, 5), 40).cursor, (0, 6), "end of line");
    }

    #[test]
    fn a_lone_mark_shown_by_code_point_keeps_the_cursor_in_place() {
        let lines = vec!["\u{301}abc".to_string()];
        let l = layout(&lines, (0, 1), 40);
        assert_eq!(shown(&l), ["<U+0301>abc"]);
        assert_eq!(l.cursor, (0, 8), "on the 'a'");
        assert_eq!(layout(&lines, (0, 0), 40).cursor, (0, 0));
    }

    #[test]
    fn chinese_wraps_between_characters_as_in_the_chat() {
        // Not "Rust " then a whole run of Chinese, nor "，" starting a row.
        let lines = vec!["Rust 我们刚才聊了很多，好".to_string()];
        let l = layout(&lines, (0, 0), 11);
        assert_eq!(shown(&l), ["Rust 我们", "刚才聊了很", "多，好"]);
        assert_eq!(rows_needed(&lines, 11), 3);
    }

    #[test]
    fn wrapped_lines_put_the_cursor_on_the_right_row() {
        let lines = vec!["one two three four".to_string(), "five".to_string()];
        let l = layout(&lines, (0, 14), 10);
        assert_eq!(shown(&l), ["one two ", "three ", "four", "five"]);
        assert_eq!(l.cursor, (2, 0), "on the 'f' of four");
        assert_eq!(layout(&lines, (1, 4), 10).cursor, (3, 4));
        assert_eq!(rows_needed(&lines, 10), 4);
    }
}
