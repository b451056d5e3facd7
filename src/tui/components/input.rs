//! The input box: typing, sending, the history of sent messages, pastes.

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::{Block, Widget};
use ratatui_textarea::Input;

use crate::i18n::{tr, tr_args};
use crate::tui::action::{Action, Context, lookup};
use crate::tui::input_view::{self, input_text};
use crate::tui::outcome::Outcome;
use crate::tui::state::{ChooseAt, Focus, Phase, State, lone_digit, new_input};
use crate::tui::theme;

/// A key while typing ([`Context::Input`]); keys the keymap does not
/// name go to the text area.
pub fn on_key(s: &mut State, k: KeyEvent) -> Outcome {
    match lookup(Context::Input, &k) {
        Some(Action::Send) => return send(s),
        Some(Action::NewLine) => s.view.input.insert_newline(),
        Some(Action::Cancel) => {
            if s.session.generation.is_some() {
                return Outcome::Cancel;
            }
            if s.compare.job.is_some() {
                return Outcome::CancelCompare;
            }
            if s.session.editing.take().is_some() {
                set_input_text(s, "");
                s.info(tr(
                    "input-edit-dropped",
                    "Edit dropped: the message stays as it was.",
                ));
                return Outcome::Done;
            }
            if s.session.load.is_some() {
                return Outcome::CancelLoad;
            }
            s.view.notice = None;
        }
        // Paused in step mode: Tab goes to choosing the next token.
        Some(Action::ToggleTokenCursor)
            if s.session
                .generation
                .as_ref()
                .is_some_and(|g| matches!(g.phase, Phase::Paused { .. })) =>
        {
            return Outcome::ChooseNext;
        }
        Some(Action::ToggleTokenCursor) => return Outcome::ToggleTokenCursor,
        Some(Action::HistoryPrev) if s.view.input.cursor().0 == 0 => history_prev(s),
        Some(Action::HistoryNext) if s.view.input.cursor().0 + 1 >= s.view.input.lines().len() => {
            history_next(s)
        }
        // Editing keys and typing: the text area's.
        _ => {
            s.view.input.input(Input::from(k));
        }
    }
    Outcome::Done
}

/// A paste outside popups: into the input box (typing again), at once.
pub fn paste(s: &mut State, text: &str) {
    // Choosing a token: the paste is text to force (its first line).
    if s.view.focus == Focus::Choose
        && let Some(c) = &mut s.view.chooser
    {
        c.text.push_str(text.lines().next().unwrap_or(""));
        return;
    }
    if s.view.focus != Focus::Input {
        s.view.set_focus(Focus::Input);
    }
    // One insertion, however long the paste.
    s.view.input.insert_str(text);
}

fn set_input_text(s: &mut State, text: &str) {
    s.view.input = new_input();
    s.view.input.insert_str(text);
    s.view.set_focus(s.view.focus);
}

fn history_prev(s: &mut State) {
    let h = &mut s.view.history;
    if h.entries.is_empty() {
        return;
    }
    let pos = match h.pos {
        None => {
            h.draft = input_text(&s.view.input);
            h.entries.len() - 1
        }
        Some(p) => p.saturating_sub(1),
    };
    h.pos = Some(pos);
    let text = h.entries[pos].clone();
    set_input_text(s, &text);
}

fn history_next(s: &mut State) {
    let h = &mut s.view.history;
    let Some(p) = h.pos else { return };
    let text = if p + 1 < h.entries.len() {
        h.pos = Some(p + 1);
        h.entries[p + 1].clone()
    } else {
        h.pos = None;
        std::mem::take(&mut h.draft)
    };
    set_input_text(s, &text);
}

/// Sends the message typed: a user turn, an empty reply, and the request.
fn send(s: &mut State) -> Outcome {
    let text = input_text(&s.view.input);
    if text.trim().is_empty() {
        return Outcome::Done;
    }
    if s.session
        .generation
        .as_ref()
        .is_some_and(|g| !matches!(g.phase, Phase::Paused { .. }))
    {
        s.info(tr(
            "input-still-generating",
            "Still generating: wait for the reply, or press Esc to stop it.",
        ));
        return Outcome::Done;
    }
    if s.model.info.is_none() && s.session.load.is_none() {
        s.error(tr(
            "input-no-model",
            "No model is loaded: press Ctrl-O to choose one.",
        ));
        return Outcome::Done;
    }
    if s.view.history.entries.last() != Some(&text) {
        s.view.history.entries.push(text.clone());
    }
    s.view.history.pos = None;
    s.view.history.draft.clear();
    set_input_text(s, "");
    s.view.notice = None;
    Outcome::Send(text)
}

// ---- drawing ------------------------------------------------------------

/// Draws the input box (with its border and title when `bordered`).
pub fn render(s: &State, buf: &mut Buffer, r: Rect, bordered: bool) {
    if r.area() == 0 {
        return;
    }
    let inner = if bordered {
        let (title, style) = match s.view.focus {
            Focus::Input if s.session.editing.is_some() => (
                format!(
                    " {} ",
                    tr(
                        "input-title-editing",
                        "editing an earlier message · Enter sends it as a new version · Esc drops the edit",
                    )
                ),
                Style::default().fg(theme::USER),
            ),
            Focus::Input => (
                format!(
                    " {} ",
                    tr("input-title", "message · Enter send · Alt-Enter newline")
                ),
                Style::default(),
            ),
            Focus::Navigate => (
                format!(
                    " {} ",
                    tr(
                        "input-title-cursor",
                        "token cursor · ←→↑↓ move · Enter branch · r re-sample · [ ] versions · Tab back to typing",
                    )
                ),
                theme::dim(),
            ),
            Focus::Choose => (choose_title(s), Style::default().fg(theme::ASSISTANT)),
        };
        let block = Block::bordered()
            .title(super::fit_title(&title, r.width))
            .border_style(style);
        let inner = block.inner(r);
        block.render(r, buf);
        inner
    } else {
        r
    };
    if s.view.focus == Focus::Choose
        && let Some(c) = &s.view.chooser
    {
        // The text to force, typed here instead of a message.
        let (text, style) = if c.text.is_empty() {
            (
                tr(
                    "input-choose-empty",
                    "type text to force it, or pick a candidate (↑↓ or 1-9, then Enter)",
                ),
                theme::dim(),
            )
        } else if let Some(i) = lone_digit(&c.text) {
            // Said at once: a digit no longer forces by itself.
            (
                format!(
                    "{}▏ {}",
                    c.text,
                    tr_args(
                        "input-choose-digit",
                        "Enter: candidate { $n } · type on: text",
                        &[("n", &(i + 1))],
                    )
                ),
                Style::default(),
            )
        } else {
            (format!("{}▏", c.text), Style::default())
        };
        // One column in, as the message box's text.
        buf.set_stringn(
            inner.x.saturating_add(1).min(inner.right()),
            inner.y,
            crate::text::escape_text(&text),
            inner.width.saturating_sub(1) as usize,
            style,
        );
        return;
    }
    input_view::draw(&s.view.input, inner, buf, true);
}

fn choose_title(s: &State) -> String {
    match s.view.chooser.as_ref().map(|c| c.at) {
        Some(ChooseAt::Token(t)) => format!(
            " {} ",
            tr_args(
                "input-title-branch",
                "branch at token { $n } · ↑↓ or 1-9, Enter: go on from another token · → re-sample · Esc close",
                &[("n", &(t.step + 1))],
            )
        ),
        _ => format!(
            " {} ",
            tr(
                "input-title-step",
                "step · → draw · ↑↓ or 1-9, Enter: force · or type text · Shift-→ to next surprise · Esc stop",
            )
        ),
    }
}
