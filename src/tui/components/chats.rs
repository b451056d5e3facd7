//! The saved conversations popup: the list (title, date, model, turns),
//! filtered as one types (titles and message text); Enter opens one to
//! continue, F2 renames, Delete deletes (after a `y`).
//!
//! Reading the database is the host's work: keys here return
//! [`Effect::ListChats`] and the others, and [`super::super::saving`] fills
//! the list in.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::popup_block;
use crate::i18n::{tr, tr_args};
use crate::store::export::format_time;
use crate::text::{escape_inline, pad_left, pad_right, truncate};
use crate::tui::action::{Action, Context, lookup};
use crate::tui::effect::Effect;
use crate::tui::layout::centered;
use crate::tui::outcome::Outcome;
use crate::tui::state::{ChatList, ChatListMode as Mode, Popup, State};
use crate::tui::theme;

/// A key in the list ([`Context::Chats`]); returns the popup to keep open
/// and the effects asked for (reading or changing the database).
pub fn on_key(s: &State, mut l: ChatList, k: KeyEvent) -> (Option<Popup>, Outcome) {
    let mut fx = Vec::new();
    let action = lookup(Context::Chats, &k);
    let typed = match k.code {
        KeyCode::Char(c) if action == Some(Action::EditText) => Some(c),
        _ => None,
    };
    match std::mem::replace(&mut l.mode, Mode::Browse) {
        Mode::ConfirmDelete => {
            if (action == Some(Action::Confirm) || typed == Some('y'))
                && let Some(r) = l.selected_row()
            {
                fx.push(Effect::DeleteChat(r.id));
            }
            return (Some(Popup::Chats(l)), Outcome::Effects(fx));
        }
        Mode::Rename(mut title) => {
            match action {
                Some(Action::Confirm) => {
                    let title = title.trim().to_string();
                    if let (Some(r), false) = (l.selected_row(), title.is_empty()) {
                        fx.push(Effect::RenameChat(r.id, title));
                    }
                    return (Some(Popup::Chats(l)), Outcome::Effects(fx));
                }
                Some(Action::Close) => return (Some(Popup::Chats(l)), Outcome::Effects(fx)),
                Some(Action::DeleteBack) => {
                    title.pop();
                }
                Some(Action::ClearText) => title.clear(),
                _ => title.extend(typed),
            }
            l.mode = Mode::Rename(title);
            return (Some(Popup::Chats(l)), Outcome::Effects(fx));
        }
        Mode::Browse => {}
    }
    let n = l.rows.len();
    match action {
        Some(Action::Close) => return (None, Outcome::Effects(fx)),
        Some(Action::Confirm) => {
            let Some(r) = l.selected_row() else {
                return (Some(Popup::Chats(l)), Outcome::Effects(fx));
            };
            if s.session.generation.is_some() {
                l.error = Some(tr(
                    "chats-reply-under-way",
                    "A reply is under way: stop it (Esc) before opening another conversation.",
                ));
                return (Some(Popup::Chats(l)), Outcome::Effects(fx));
            }
            fx.push(Effect::Save);
            fx.push(Effect::OpenChat(r.id));
            return (None, Outcome::Effects(fx));
        }
        Some(Action::RenameChat) => {
            if let Some(r) = l.selected_row() {
                l.mode = Mode::Rename(r.title.clone());
            }
        }
        Some(Action::DeleteChat) if l.selected_row().is_some() => l.mode = Mode::ConfirmDelete,
        Some(Action::Up) => l.selected = l.selected.saturating_sub(1),
        Some(Action::Down) => l.selected = (l.selected + 1).min(n.saturating_sub(1)),
        Some(Action::PageUp) => l.selected = l.selected.saturating_sub(10),
        Some(Action::PageDown) => l.selected = (l.selected + 10).min(n.saturating_sub(1)),
        Some(Action::Home) => l.selected = 0,
        Some(Action::End) => l.selected = n.saturating_sub(1),
        Some(Action::ClearText) | Some(Action::DeleteBack) | Some(Action::EditText) => {
            match action {
                Some(Action::ClearText) => l.filter.clear(),
                Some(Action::DeleteBack) => {
                    l.filter.pop();
                }
                _ => l.filter.extend(typed),
            }
            l.selected = 0;
            l.loading = true;
            fx.push(Effect::ListChats);
        }
        _ => {}
    }
    (Some(Popup::Chats(l)), Outcome::Effects(fx))
}

/// A paste: its first line goes to the filter (or the new title).
pub fn paste(l: &mut ChatList, first_line: &str) -> Outcome {
    match &mut l.mode {
        Mode::Rename(t) => t.push_str(first_line),
        Mode::ConfirmDelete => {}
        Mode::Browse => {
            l.filter.push_str(first_line);
            l.selected = 0;
            l.loading = true;
            return Outcome::Effects(vec![Effect::ListChats]);
        }
    }
    Outcome::Done
}

/// Draws the list over `area`.
pub fn render(l: &ChatList, buf: &mut Buffer, area: Rect) {
    let want = (l.rows.len() as u16).saturating_add(6).clamp(10, 26);
    let r = centered(area, 104.min(area.width), want.min(area.height));
    super::clear_popup(r, buf);
    let title = if l.loading {
        format!(
            " {} ",
            tr("chats-title-reading", "saved conversations · reading…")
        )
    } else {
        format!(
            " {} ",
            tr_args(
                "chats-title",
                "saved conversations · { $n }",
                &[("n", &l.rows.len())],
            )
        )
    };
    let block = popup_block(title, r.width);
    let inner = block.inner(r);
    block.render(r, buf);
    if inner.height < 3 {
        return;
    }
    let w = inner.width as usize;
    let cursor = Span::styled("▏", Style::default().add_modifier(Modifier::SLOW_BLINK));
    let top = match &l.mode {
        Mode::Rename(t) => Line::from(vec![
            Span::styled(
                format!("{} ", tr("chats-new-title", "new title:")),
                theme::info(),
            ),
            Span::raw(escape_inline(t)),
            cursor,
        ]),
        _ => Line::from(vec![
            Span::styled(format!("{} ", tr("chats-search", "search:")), theme::dim()),
            Span::raw(escape_inline(&l.filter)),
            cursor,
        ]),
    };
    let mut lines = vec![top];
    let (dw, mw, tw) = (20, 22, 5);
    let title_w = w.saturating_sub(2 + dw + mw + tw + 3).max(8);
    // Padded by display width: a title in Chinese is two columns a character.
    let row = |mark: &str, title: &str, date: &str, model: &str, turns: &str| {
        format!(
            "{}{} {} {} {}",
            pad_right(mark, 2),
            pad_right(&truncate(title, title_w), title_w),
            pad_right(&truncate(date, dw), dw),
            pad_right(&truncate(model, mw), mw),
            pad_left(&truncate(turns, tw), tw)
        )
    };
    lines.push(Line::styled(
        row(
            "",
            &tr("chats-col-title", "title"),
            &tr("chats-col-saved", "saved"),
            &tr("chats-col-model", "model"),
            &tr("chats-col-turns", "turns"),
        ),
        theme::dim(),
    ));
    if l.rows.is_empty() && !l.loading {
        let text = if l.filter.is_empty() {
            tr(
                "chats-none",
                "No saved conversations yet: each one is saved as you chat.",
            )
        } else {
            tr_args(
                "chats-no-match",
                "No conversation matches { $filter }.",
                &[("filter", &format!("{:?}", l.filter))],
            )
        };
        lines.push(Line::styled(text, theme::dim()));
    }
    let list_h = (inner.height as usize).saturating_sub(3).max(1);
    let first = l.selected.saturating_sub(list_h.saturating_sub(1));
    for (i, c) in l.rows.iter().enumerate().skip(first).take(list_h) {
        let mark = if i == l.selected { "▶" } else { "" };
        let style = if i == l.selected {
            theme::selected()
        } else {
            Style::default()
        };
        let model = c.model.as_deref().map(escape_inline).unwrap_or_default();
        lines.push(Line::styled(
            row(
                mark,
                &escape_inline(&c.title),
                &format_time(c.updated_at),
                &model,
                &c.turns.to_string(),
            ),
            style,
        ));
    }
    let body = Rect::new(inner.x, inner.y, inner.width, inner.height - 1);
    Paragraph::new(lines).render(body, buf);
    let (hint, style) = match (&l.error, &l.mode) {
        (Some(e), _) => (e.clone(), theme::error()),
        (None, Mode::ConfirmDelete) => (
            tr_args(
                "chats-confirm-delete",
                "Delete “{ $title }”? y deletes · any other key keeps it",
                &[(
                    "title",
                    &l.selected_row()
                        .map(|r| escape_inline(&r.title))
                        .unwrap_or_default(),
                )],
            ),
            theme::error(),
        ),
        (None, Mode::Rename(_)) => (
            tr("chats-rename-keys", "Enter renames · Esc keeps the title"),
            theme::dim(),
        ),
        (None, Mode::Browse) => (
            tr(
                "chats-keys",
                "Enter open · ↑↓ select · type to search · F2 rename · Del delete · Esc close",
            ),
            theme::dim(),
        ),
    };
    buf.set_stringn(
        inner.x,
        inner.y + inner.height - 1,
        truncate(&hint, w),
        w,
        style,
    );
}
