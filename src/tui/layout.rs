//! Where each pane goes, as a pure function of the terminal size (shared by
//! `update`, which needs the chat width and height, and `render`).

use ratatui::layout::Rect;

/// The inspector goes to the right of the chat from this width on.
pub const SIDE_INSPECTOR_MIN_WIDTH: u16 = 90;
/// Below the chat (narrow terminals) from this free height on.
pub const BOTTOM_INSPECTOR_MIN_HEIGHT: u16 = 16;
/// Most lines the input box grows to.
pub const INPUT_MAX_LINES: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Areas {
    pub chat: Rect,
    pub inspector: Option<Rect>,
    /// One-line stand-in for the inspector on small terminals.
    pub summary: Option<Rect>,
    pub notice: Option<Rect>,
    pub input: Rect,
    /// Whether the input box has room for its border.
    pub input_bordered: bool,
    pub status: Option<Rect>,
    /// The heatmap's legend: one row under the chat, while the heatmap is on.
    pub legend: Option<Rect>,
}

pub fn inspector_on_side(width: u16) -> bool {
    width >= SIDE_INSPECTOR_MIN_WIDTH
}

pub fn inspector_width(width: u16) -> u16 {
    (width / 5 * 2).clamp(36, 60)
}

/// Width of the chat pane for a terminal of `width` columns.
pub fn chat_width(width: u16) -> u16 {
    if inspector_on_side(width) {
        width - inspector_width(width)
    } else {
        width
    }
}

/// Columns available to chat text (one column of margin each side).
pub fn chat_text_width(width: u16) -> usize {
    (chat_width(width) as usize).saturating_sub(2).max(1)
}

fn take_bottom(rest: &mut Rect, rows: u16) -> Rect {
    let rows = rows.min(rest.height);
    let r = Rect::new(rest.x, rest.y + rest.height - rows, rest.width, rows);
    rest.height -= rows;
    r
}

/// Lays out the screen. `input_lines` is the number of lines in the input box,
/// `notice_rows` the rows the notice wants (0 = none), `inspector_rows` the
/// rows a full inspector wants when it goes below the chat, `legend` whether
/// the heatmap's legend wants a row (under the chat, when there is room).
pub fn compute(
    area: Rect,
    input_lines: usize,
    notice_rows: u16,
    inspector_rows: u16,
    legend: bool,
) -> Areas {
    let mut a = Areas::default();
    let mut rest = area;
    if rest.height >= 2 {
        a.status = Some(take_bottom(&mut rest, 1));
    }
    if rest.height >= 8 {
        let lines = input_lines.clamp(1, INPUT_MAX_LINES) as u16;
        a.input = take_bottom(&mut rest, lines + 2);
        a.input_bordered = true;
    } else if rest.height >= 2 {
        a.input = take_bottom(&mut rest, 1);
    }
    if notice_rows > 0 && rest.height >= 4 {
        let rows = notice_rows.min(3).min(rest.height / 3).max(1);
        a.notice = Some(take_bottom(&mut rest, rows));
    }
    if inspector_on_side(area.width) {
        let w = inspector_width(area.width).min(rest.width);
        a.inspector = Some(Rect::new(rest.x + rest.width - w, rest.y, w, rest.height));
        rest.width -= w;
    } else if rest.height >= BOTTOM_INSPECTOR_MIN_HEIGHT {
        let rows = inspector_rows.min(rest.height / 2);
        a.inspector = Some(take_bottom(&mut rest, rows));
    } else if rest.height >= 5 {
        a.summary = Some(take_bottom(&mut rest, 1));
    }
    if legend && rest.height >= LEGEND_MIN_CHAT_ROWS {
        a.legend = Some(take_bottom(&mut rest, 1));
    }
    a.chat = rest;
    a
}

/// The chat keeps at least this many rows with the legend under it.
const LEGEND_MIN_CHAT_ROWS: u16 = 6;

/// A rectangle of at most `w`×`h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_fits_inside_the_screen() {
        for w in 0..130u16 {
            for h in 0..45u16 {
                let area = Rect::new(0, 0, w, h);
                let a = compute(area, 3, 2, 15, w % 2 == 0);
                let mut rects = vec![a.chat, a.input];
                rects.extend(a.inspector);
                rects.extend(a.summary);
                rects.extend(a.notice);
                rects.extend(a.status);
                rects.extend(a.legend);
                for r in rects {
                    assert!(
                        area.contains(r.as_position()) || r.area() == 0,
                        "{w}x{h}: {r:?}"
                    );
                    assert!(
                        r.right() <= area.right() && r.bottom() <= area.bottom(),
                        "{w}x{h}: {r:?}"
                    );
                }
                assert_eq!(a.chat.width, chat_width(w), "{w}x{h}");
            }
        }
    }

    #[test]
    fn wide_terminal_puts_inspector_on_the_side() {
        let a = compute(Rect::new(0, 0, 120, 40), 1, 0, 15, false);
        let i = a.inspector.unwrap();
        assert_eq!(i.x + i.width, 120);
        assert_eq!(a.chat.width, chat_width(120));
        assert_eq!(a.input.height, 3);
        assert_eq!(a.status.unwrap().y, 39);
    }

    #[test]
    fn small_terminal_collapses_inspector_to_a_line() {
        let a = compute(Rect::new(0, 0, 40, 12), 1, 0, 15, false);
        assert!(a.inspector.is_none());
        assert!(a.summary.is_some());
        assert!(a.chat.height >= 5);
    }
}
