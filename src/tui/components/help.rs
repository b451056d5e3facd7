//! The help overlay (F1): the keymap by context, from [`crate::tui::action`].

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::popup_block;
use crate::i18n::tr;
use crate::text::str_width;
use crate::tui::action::{Action, Context, help_rows, lookup};
use crate::tui::layout::centered;
use crate::tui::state::Popup;
use crate::tui::theme;
use crate::tui::wrap::wrap_plain;

/// A key in the help: scrolls it, or closes it (None).
pub fn on_key(scroll: u16, k: KeyEvent) -> Option<Popup> {
    let scroll = match lookup(Context::Help, &k)? {
        Action::Up => scroll.saturating_sub(1),
        Action::Down => scroll.saturating_add(1),
        Action::PageUp => scroll.saturating_sub(10),
        Action::PageDown => scroll.saturating_add(10),
        _ => return None,
    };
    Some(Popup::Help { scroll })
}

/// Widest the help overlay gets (it reads well at 80 columns).
const HELP_WIDTH: u16 = 80;

/// Width of the help's key column (longer keys wrap).
const HELP_KEYS_WIDTH: usize = 20;

/// The help's lines for `width` columns: the keymap by context, then the
/// heatmap's legend (its colours, or without `color` its styles).
pub fn help_lines(width: usize, color: bool) -> Vec<Line<'static>> {
    let key_style = Style::default().fg(Color::Yellow);
    // Indent, keys, gap; a column of margin on the right.
    let text_w = width.saturating_sub(HELP_KEYS_WIDTH + 5).max(10);
    let mut lines: Vec<Line> = Vec::new();
    for (context, rows) in help_rows() {
        if !lines.is_empty() {
            lines.push(Line::from(""));
        }
        lines.push(Line::styled(
            context.title_shown(),
            theme::title().fg(Color::Cyan),
        ));
        for row in rows {
            // A key's name does not break at its hyphen (`Shift-Enter`):
            // wrapped with non-breaking hyphens, shown with its own.
            let keys: Vec<String> = wrap_plain(&row.keys.replace('-', "\u{2011}"), HELP_KEYS_WIDTH)
                .into_iter()
                .map(|k| k.replace('\u{2011}', "-"))
                .collect();
            let text = wrap_plain(&row.help_shown(), text_w);
            for i in 0..keys.len().max(text.len()) {
                let k = keys.get(i).map_or("", String::as_str);
                let pad = HELP_KEYS_WIDTH.saturating_sub(str_width(k));
                lines.push(Line::from(vec![
                    Span::styled(format!("  {k}{}  ", " ".repeat(pad)), key_style),
                    Span::raw(text.get(i).cloned().unwrap_or_default()),
                ]));
            }
        }
    }
    lines.push(Line::from(""));
    // The legends: colour swatches, or without colour each band's style by name.
    let legend = |(band, label): (usize, String)| {
        let text = if color {
            format!("■ {label} ")
        } else {
            format!("{} {label} ", theme::HEAT_CUES[band].1)
        };
        (text, theme::band_style(band, color))
    };
    let bands = theme::HEAT_BANDS
        .iter()
        .map(|(_, l)| (*l).to_owned())
        .enumerate();
    lines.extend(legend_lines(
        &format!("{} ", tr("help-legend-p", "heatmap:")),
        bands.map(legend),
        width,
    ));
    // F3 again: the entropy of the distribution each token was chosen from.
    let bands = (0..theme::ENTROPY_BANDS.len()).map(|b| (b, theme::entropy_band_label(b)));
    lines.extend(legend_lines(
        &format!("{} ", tr("help-legend-entropy", "heatmap by entropy:")),
        bands.map(legend),
        width,
    ));
    // The KL scale of a compared reply (F3 cycles to it).
    let bands = (0..theme::KL_BANDS.len()).map(|b| (b, theme::kl_band_label(b)));
    lines.extend(legend_lines(
        &format!("{} ", tr("help-legend-kl", "heatmap by KL(A‖B):")),
        bands.map(legend),
        width,
    ));
    lines
}

/// A legend: `title` then its styled items, in lines of at most `width`
/// columns (a continuation indented under the title).
fn legend_lines(
    title: &str,
    items: impl Iterator<Item = (String, Style)>,
    width: usize,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut line = vec![Span::raw(format!("  {title}"))];
    let mut used = 2 + str_width(title);
    for (text, style) in items {
        let w = str_width(text.trim_end());
        if used + w > width && line.len() > 1 {
            lines.push(Line::from(std::mem::take(&mut line)));
            line.push(Span::raw("    "));
            used = 4;
        }
        used += str_width(&text);
        line.push(Span::styled(text, style));
    }
    lines.push(Line::from(line));
    lines
}

/// Draws the help over `area`, scrolled by `scroll` lines; `color`: the
/// heatmap legend's colours can be drawn (no NO_COLOR).
pub fn render(buf: &mut Buffer, area: Rect, scroll: u16, color: bool) {
    let w = HELP_WIDTH.min(area.width);
    let lines = help_lines(w.saturating_sub(2) as usize, color);
    let h = lines.len() as u16 + 2;
    let r = centered(area, w, h.min(area.height.saturating_sub(2).max(3)));
    super::clear_popup(r, buf);
    let block = popup_block(
        format!(
            " {} ",
            tr("help-title", "keys · ↑↓ scroll · any other key closes")
        ),
        r.width,
    );
    let inner = block.inner(r);
    block.render(r, buf);
    let max_scroll = (lines.len() as u16).saturating_sub(inner.height);
    Paragraph::new(lines)
        .scroll((scroll.min(max_scroll), 0))
        .render(inner, buf);
}
