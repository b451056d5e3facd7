//! The sampling settings popup: a form of numbers, checked when applied.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::popup_block;
use crate::i18n::tr;
use crate::text::pad_right;
use crate::tui::action::{Action, Context, lookup};
use crate::tui::layout::centered;
use crate::tui::outcome::Outcome;
use crate::tui::state::popup::{field_help, field_label, parse_settings};
use crate::tui::state::{Popup, SettingsForm, State};
use crate::tui::theme;
use crate::tui::wrap::wrap_lines;

/// A key in the form ([`Context::Settings`]); returns the popup to keep
/// open (None closes it) and the settings to apply.
pub fn on_key(s: &State, mut f: SettingsForm, k: KeyEvent) -> (Option<Popup>, Outcome) {
    let n = f.fields.len();
    match lookup(Context::Settings, &k) {
        Some(Action::Close) => return (None, Outcome::Done),
        Some(Action::Confirm) => match parse_settings(&f, &s.config.sampling) {
            Ok(v) => return (None, Outcome::SetSampling(Box::new(v))),
            Err(e) => f.error = Some(e),
        },
        Some(Action::Up) => f.selected = (f.selected + n - 1) % n,
        Some(Action::Down) => f.selected = (f.selected + 1) % n,
        Some(Action::DeleteBack) => {
            f.fields[f.selected].value.pop();
        }
        Some(Action::ClearText) => f.fields[f.selected].value.clear(),
        Some(Action::EditText) => {
            if let KeyCode::Char(c) = k.code
                && !c.is_control()
            {
                f.fields[f.selected].value.push(c)
            }
        }
        _ => {}
    }
    (Some(Popup::Settings(f)), Outcome::Done)
}

/// A paste: its first line goes to the selected field.
pub fn paste(f: &mut SettingsForm, first_line: &str) {
    if let Some(field) = f.fields.get_mut(f.selected) {
        field.value.push_str(first_line);
    }
}

/// Draws the form over `area`.
pub fn render(f: &SettingsForm, buf: &mut Buffer, area: Rect) {
    let h = f.fields.len() as u16 + 6;
    let r = centered(area, 64, h);
    super::clear_popup(r, buf);
    let block = popup_block(
        format!(
            " {} ",
            tr(
                "settings-title",
                "sampling · Enter apply · ↑↓ field · Esc cancel"
            )
        ),
        r.width,
    );
    let inner = block.inner(r);
    block.render(r, buf);
    let mut lines = Vec::new();
    for (i, field) in f.fields.iter().enumerate() {
        let sel = i == f.selected;
        let value = if sel {
            format!("{}▏", field.value)
        } else {
            field.value.clone()
        };
        let vstyle = if sel {
            theme::selected()
        } else {
            Style::default()
        };
        // Padded by display width: a Chinese label is two columns a character.
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {}", pad_right(&field_label(field.label), 16)),
                if sel {
                    theme::title()
                } else {
                    Style::default()
                },
            ),
            Span::styled(pad_right(&value, 12), vstyle),
            Span::styled(
                format!("  {}", field_help(field.label, field.help)),
                theme::dim(),
            ),
        ]));
    }
    lines.push(Line::from(""));
    match &f.error {
        Some(e) => lines.push(Line::styled(format!(" {e}"), theme::error())),
        None => lines.push(Line::styled(
            format!(
                " {}",
                tr(
                    "settings-footer",
                    "Applies from the next reply. Ctrl-U clears a field."
                )
            ),
            theme::dim(),
        )),
    }
    Paragraph::new(wrap_lines(&lines, inner.width as usize)).render(inner, buf);
}
