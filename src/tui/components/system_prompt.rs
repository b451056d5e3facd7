//! The system prompt popup: a text box; Enter saves.

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Widget, Wrap};
use ratatui_textarea::{Input, TextArea};

use super::popup_block;
use crate::i18n::{tr, tr_args};
use crate::text::escape_inline;
use crate::tui::action::{Action, Context, lookup};
use crate::tui::input_view::{self, input_text};
use crate::tui::layout::centered;
use crate::tui::outcome::Outcome;
use crate::tui::state::{Popup, State};
use crate::tui::theme;

/// A key in the editor ([`Context::SystemPrompt`]); returns the popup to
/// keep open (None closes it) and the prompt set.
pub fn on_key(s: &State, mut t: Box<TextArea<'static>>, k: KeyEvent) -> (Option<Popup>, Outcome) {
    match lookup(Context::SystemPrompt, &k) {
        Some(Action::Close) => return (None, Outcome::Done),
        Some(Action::Confirm) => {
            let text = input_text(&t).trim().to_string();
            if text != s.config.system_prompt {
                return (None, Outcome::SetSystemPrompt(text));
            }
            return (None, Outcome::Done);
        }
        Some(Action::NewLine) => t.insert_newline(),
        _ => {
            t.input(Input::from(k));
        }
    }
    (Some(Popup::SystemPrompt(t)), Outcome::Done)
}

/// Draws the popup over `area`; below the text, the system prompt the
/// model's template adds when the user sets none (what the model gets then).
pub fn render(s: &State, t: &TextArea<'static>, buf: &mut Buffer, area: Rect) {
    let r = centered(area, 76.min(area.width.saturating_sub(2)).max(20), 14);
    super::clear_popup(r, buf);
    let block = popup_block(
        format!(
            " {} ",
            tr(
                "system-prompt-title",
                "system prompt · Enter save · Alt-Enter newline · Esc cancel",
            )
        ),
        r.width,
    );
    let mut inner = block.inner(r);
    block.render(r, buf);
    if let Some(own) = s.template_system_prompt() {
        let note = tr_args(
            "system-prompt-template-own",
            "With no system prompt of yours, the model's chat template adds its own: \"{ $prompt }\"",
            &[("prompt", &escape_inline(own))],
        );
        let rows = 4.min(inner.height / 2);
        // One column in, as the text above.
        let at = Rect {
            x: inner.x.saturating_add(1).min(inner.right()),
            y: inner.bottom() - rows,
            width: inner.width.saturating_sub(1),
            height: rows,
        };
        inner.height -= rows;
        Paragraph::new(note)
            .style(theme::dim())
            .wrap(Wrap { trim: false })
            .render(at, buf);
    }
    input_view::draw(t, inner, buf, true);
}

/// A paste: into the text, at once.
pub fn paste(t: &mut TextArea<'static>, text: &str) {
    t.insert_str(text);
}
