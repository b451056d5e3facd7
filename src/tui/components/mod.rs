//! The TUI's components: the chat pane, the inspector, the input box, the
//! status bar, and the popups (model picker, sampling settings, system
//! prompt, help, saved conversations). Each handles its own actions (from
//! [`crate::tui::action`]'s keymap): it changes what is its own (its popup's
//! fields, the input box and its history, the token cursor, the chooser, the
//! what-if settings, a notice) on `&mut State`, and returns what should
//! happen beyond that ([`Outcome`]: a transition, or effects for the loop),
//! which `update` applies with the shared transitions. Components call no
//! transition themselves. Each draws itself from `&State`: drawing never
//! changes anything. Components do not import one another (the inspector
//! draws a comparison with [`compared`], its part) nor `update`; the drawing
//! helpers they share are here.

pub mod chat;
pub mod chats;
pub mod choose;
pub mod compared;
pub mod help;
pub mod input;
pub mod inspector;
pub mod kv_cost;
pub mod lens;
pub mod picker;
pub mod rollouts;
pub mod settings;
pub mod status;
pub mod system_prompt;

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Clear, Widget};

use super::outcome::Outcome;
use super::state::{Popup, State};
use super::theme;

/// Handles a key in a popup: the popup to keep open (None closes it) and
/// what should happen beyond it.
pub fn on_popup_key(s: &mut State, popup: Popup, k: KeyEvent) -> (Option<Popup>, Outcome) {
    match popup {
        Popup::Help { scroll } => (help::on_key(scroll, k), Outcome::Done),
        Popup::Picker(p) => picker::on_key(s, p, k),
        Popup::Settings(f) => settings::on_key(s, f, k),
        Popup::SystemPrompt(t) => system_prompt::on_key(s, t, k),
        Popup::Chats(l) => chats::on_key(s, l, k),
        Popup::Lens(l) => lens::on_key(l, k),
        Popup::Rollouts(r) => rollouts::on_key(r, k),
        Popup::KvCost(v) => kv_cost::on_key(v, k),
    }
}

/// Draws the open popup over `area`.
pub fn render_popup(s: &State, p: &Popup, buf: &mut Buffer, area: Rect) {
    match p {
        Popup::Help { scroll } => help::render(buf, area, *scroll, s.view.display.color),
        Popup::Picker(pk) => picker::render(s, pk, buf, area),
        Popup::Settings(f) => settings::render(f, buf, area),
        Popup::SystemPrompt(t) => system_prompt::render(s, t, buf, area),
        Popup::Chats(l) => chats::render(l, buf, area),
        Popup::Lens(l) => lens::render(s, l, buf, area),
        Popup::Rollouts(r) => rollouts::render(s, r, buf, area),
        Popup::KvCost(v) => kv_cost::render(v, s.view.display.color, buf, area),
    }
}

/// A popup's frame, titled.
/// Clears `r` for a popup. A wide character (Chinese) just left of it has
/// its right half under the popup's border; a terminal would still draw it
/// whole, over the border, so it is blanked too.
pub(crate) fn clear_popup(r: Rect, buf: &mut Buffer) {
    Clear.render(r, buf);
    if r.x > buf.area.x {
        for y in r.top()..r.bottom().min(buf.area.bottom()) {
            let cell = &mut buf[(r.x - 1, y)];
            if crate::text::str_width(cell.symbol()) > 1 {
                cell.set_symbol(" ");
            }
        }
    }
}

pub(crate) fn popup_block(title: String) -> Block<'static> {
    Block::bordered()
        .title(Span::styled(title, theme::title()))
        .border_style(Style::default().fg(Color::Cyan))
}

/// A probability as a percentage, or `–` when the backend did not report it.
pub fn pct_opt(p: Option<f32>) -> String {
    p.map_or_else(|| "–".to_string(), pct)
}

/// "45.12%" (always 2 decimals; tiny values as "<0.01%").
pub fn pct(p: f32) -> String {
    let v = p * 100.0;
    if p > 0.0 && v < 0.005 {
        "<0.01%".to_string()
    } else {
        format!("{v:.2}%")
    }
}

/// A horizontal bar `width` cells wide, filled to `frac` with eighth blocks.
pub fn bar(frac: f32, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (frac.clamp(0.0, 1.0) * width as f32 * 8.0).round() as usize;
    let full = eighths / 8;
    let mut out = "█".repeat(full.min(width));
    if full < width {
        let rem = eighths % 8;
        if rem > 0 {
            out.push(PARTS[rem]);
        }
    }
    let w = out.chars().count();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}
