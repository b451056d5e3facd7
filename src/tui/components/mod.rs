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

/// A popup's frame `width` columns wide (its borders included), titled
/// with `title` fitted to it by [`fit_title`].
pub(crate) fn popup_block(title: String, width: u16) -> Block<'static> {
    Block::bordered()
        .title(Span::styled(fit_title(&title, width), theme::title()))
        .border_style(Style::default().fg(Color::Cyan))
}

/// `title` (parts joined by ` · `: a name, what it shows, key hints such
/// as `Esc close`) fitted to a frame `width` columns wide, borders
/// included, measured in display columns (a Chinese character is two).
/// A part stays whole or goes whole: parts go from the right, except a
/// last hint saying how to leave (`Esc …`), which stays with the first
/// part (the name) longest; a first part still too wide is cut with `…`.
/// The frame would
/// otherwise cut the title at its border, mid-hint (`… · Esc` without what
/// Esc does). The title's padding spaces are kept.
pub(crate) fn fit_title(title: &str, width: u16) -> String {
    const SEP: &str = " · ";
    let room = (width as usize).saturating_sub(2);
    if crate::text::str_width(title) <= room {
        return title.to_owned();
    }
    let (lead, trail) = (title.starts_with(' '), title.ends_with(' '));
    let pad = usize::from(lead) + usize::from(trail);
    let mut parts: Vec<&str> = title.trim().split(SEP).collect();
    let padded = |body: String| {
        format!(
            "{}{body}{}",
            if lead { " " } else { "" },
            if trail { " " } else { "" }
        )
    };
    let fits = |parts: &[&str]| crate::text::str_width(&parts.join(SEP)) + pad <= room;
    let keep_last = parts.len() > 1 && parts.last().is_some_and(|p| p.starts_with("Esc"));
    while parts.len() > 2 && !fits(&parts) {
        let at = parts.len() - if keep_last { 2 } else { 1 };
        parts.remove(at);
    }
    if parts.len() == 2 && !fits(&parts) {
        parts.pop();
    }
    padded(crate::text::truncate(
        &parts.join(SEP),
        room.saturating_sub(pad),
    ))
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

#[cfg(test)]
mod tests {
    use super::fit_title;
    use crate::text::str_width;

    #[test]
    fn a_title_too_wide_loses_whole_middle_parts_by_display_width() {
        let t = " 层透镜 · ␣the · ←→ 词元 · ↑↓ 滚动 · a 注意力 · Esc ";
        assert_eq!(fit_title(t, 80), t, "fits: unchanged");
        // 28 columns: the frame's two borders leave 26.
        let fitted = fit_title(t, 28);
        assert_eq!(fitted, " 层透镜 · ␣the · Esc ");
        assert!(str_width(&fitted) <= 26);
        // Room for the name alone: the last hint goes too, then the name is cut.
        assert_eq!(fit_title(t, 12), " 层透镜 ");
        assert_eq!(fit_title(t, 7), " 层… ");
        assert_eq!(fit_title(" keys · Esc close ", 14), " keys ");
        // No `Esc` hint last: parts go from the right.
        let t = " message · Enter send · Alt-Enter newline ";
        assert_eq!(fit_title(t, 40), " message · Enter send ");
    }
}
