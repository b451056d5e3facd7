//! The TUI's components: the chat pane, the inspector, the input box, the
//! status bar, and the popups (model picker, sampling settings, system
//! prompt, help). Each handles its own actions (from
//! [`crate::tui::action`]'s keymap) on `&mut State` and draws itself from
//! `&State`: drawing never changes anything.

pub mod chat;
pub mod chats;
pub mod choose;
pub mod compared;
pub mod help;
pub mod input;
pub mod inspector;
pub mod picker;
pub mod settings;
pub mod status;
pub mod system_prompt;

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Span;
use ratatui::widgets::Block;

use super::state::{Popup, State};
use super::theme;
use super::update::Effect;

/// Opens popup `p` (the input box's cursor hides behind it).
pub(crate) fn open(s: &mut State, p: Popup) -> Vec<Effect> {
    s.popup = Some(p);
    s.set_focus(s.focus);
    vec![]
}

/// Handles a key in a popup; returns the popup to keep open (None closes it).
pub fn on_popup_key(
    s: &mut State,
    popup: Popup,
    k: KeyEvent,
    fx: &mut Vec<Effect>,
) -> Option<Popup> {
    match popup {
        Popup::Help { scroll } => help::on_key(scroll, k),
        Popup::Picker(p) => picker::on_key(s, p, k, fx),
        Popup::Settings(f) => settings::on_key(s, f, k),
        Popup::SystemPrompt(t) => system_prompt::on_key(s, t, k, fx),
        Popup::Chats(l) => chats::on_key(s, l, k, fx),
    }
}

/// Draws the open popup over `area`.
pub fn render_popup(s: &State, p: &Popup, buf: &mut Buffer, area: Rect) {
    match p {
        Popup::Help { scroll } => help::render(buf, area, *scroll, s.color),
        Popup::Picker(pk) => picker::render(s, pk, buf, area),
        Popup::Settings(f) => settings::render(f, buf, area),
        Popup::SystemPrompt(t) => system_prompt::render(s, t, buf, area),
        Popup::Chats(l) => chats::render(l, buf, area),
    }
}

/// A popup's frame, titled.
pub(crate) fn popup_block(title: String) -> Block<'static> {
    Block::bordered()
        .title(Span::styled(title, theme::title()))
        .border_style(Style::default().fg(Color::Cyan))
}
