//! Choosing a token among the inspector's candidates ([`Context::Choose`]):
//! the next token of a paused reply (step mode: draw, force a candidate or
//! typed text), or another token in place of a past one (branching). The
//! inspector draws the candidates and the selection; this handles the keys.

use crossterm::event::{KeyCode, KeyEvent};

use crate::engine::TokenId;
use crate::i18n::{tr, tr_args};
use crate::tui::action::{Action, Context, lookup};
use crate::tui::effect::Steer;
use crate::tui::outcome::Outcome;
use crate::tui::state::{ChooseAt, Chooser, Focus, State, TokenRef, lone_digit};

/// The candidates being chosen from, best first.
pub fn candidates(s: &State, at: ChooseAt) -> Vec<TokenId> {
    match at {
        ChooseAt::Next => s
            .session
            .generation
            .as_ref()
            .and_then(|g| match &g.phase {
                crate::tui::state::Phase::Paused { next: Some(d) } => {
                    Some(d.top.iter().map(|c| c.id).collect())
                }
                _ => None,
            })
            .unwrap_or_default(),
        ChooseAt::Token(t) => s
            .step(t)
            .map(|st| st.top().iter().map(|c| c.id).collect())
            .unwrap_or_default(),
    }
}

/// Closes the chooser (branching), back to the token cursor.
fn close(s: &mut State) {
    s.view.chooser = None;
    s.view.set_focus(if s.view.cursor.is_some() {
        Focus::Navigate
    } else {
        Focus::Input
    });
}

/// A key while choosing.
pub fn on_key(s: &mut State, k: KeyEvent) -> Outcome {
    let Some(c) = s.view.chooser.clone() else {
        s.view.set_focus(Focus::Input);
        return Outcome::Done;
    };
    let n = candidates(s, c.at).len();
    // Text typed: a lone digit 1-9 also selects that candidate (Enter
    // forces it), anything longer is text to force, digits and all.
    let edited = |s: &mut State, edit: &dyn Fn(&mut String)| {
        if let Some(c) = &mut s.view.chooser {
            edit(&mut c.text);
            c.typing = true;
            if let Some(i) = lone_digit(&c.text).filter(|&i| i < n) {
                c.selected = i;
            }
        }
    };
    let Some(action) = lookup(Context::Choose, &k) else {
        return Outcome::Done;
    };
    match action {
        // The text has no cursor to move.
        Action::Draw if !c.text.is_empty() => {}
        // Only a paused reply runs on (branching has nothing to run).
        Action::RunToSurprise if c.at == ChooseAt::Next => {
            return Outcome::Steer(Steer::RunToSurprise(s.config.surprise));
        }
        Action::Draw => {
            return match c.at {
                ChooseAt::Next => Outcome::Steer(Steer::Step),
                ChooseAt::Token(t) => branch(t, None, None),
            };
        }
        // Step mode, nothing typed: the lens of the undecided next token
        // (typed on, `l` is text like any letter).
        Action::OpenLens if c.at == ChooseAt::Next && c.text.is_empty() => {
            if let Some(g) = &s.session.generation {
                let step = s.msg(g.msg).map_or(0, |m| m.steps.len());
                return Outcome::OpenLens(TokenRef { msg: g.msg, step });
            }
        }
        Action::OpenLens => {
            if let KeyCode::Char(ch) = k.code {
                edited(s, &|t| t.push(ch));
            }
        }
        Action::Up | Action::Down => {
            if let Some(ch) = &mut s.view.chooser {
                // A digit's pick gives way to the arrows'.
                if lone_digit(&ch.text).is_some() {
                    ch.text.clear();
                }
                ch.selected = if action == Action::Up {
                    ch.selected.saturating_sub(1)
                } else {
                    (ch.selected + 1).min(n.saturating_sub(1))
                };
            }
        }
        Action::FindVocab => {
            if let Some(ch) = &mut s.view.chooser {
                ch.find = !ch.find;
            }
        }
        Action::Confirm if c.find => return confirm_found(s, &c),
        Action::Confirm => return confirm(s, &c, c.selected),
        Action::OpenRollouts => {
            // A paused reply: the step not drawn yet, one past its last token.
            let at = match c.at {
                ChooseAt::Token(t) => Some(t),
                ChooseAt::Next => s.session.generation.as_ref().and_then(|g| {
                    let msg = s.msg_index(g.node)?;
                    let step = s.msg(msg)?.steps.len();
                    Some(TokenRef { msg, step })
                }),
            };
            if let Some(at) = at {
                return Outcome::OpenRollouts(at);
            }
        }
        Action::DeleteBack => edited(s, &|t| {
            t.pop();
        }),
        Action::PickNumber | Action::EditText => {
            if let KeyCode::Char(ch) = k.code {
                edited(s, &|t| t.push(ch));
            }
        }
        Action::ToggleTokenCursor => {
            if matches!(c.at, ChooseAt::Token(_)) {
                s.view.chooser = None;
            }
            return Outcome::ToggleTokenCursor;
        }
        // Typed text goes first; then Esc stops the reply or closes.
        Action::Cancel if c.typing => {
            if let Some(ch) = &mut s.view.chooser {
                ch.text.clear();
                ch.typing = false;
            }
        }
        Action::Cancel => match c.at {
            ChooseAt::Next => return Outcome::Cancel,
            ChooseAt::Token(_) => close(s),
        },
        _ => {}
    }
    Outcome::Done
}

/// Forces the typed text (a lone digit: that candidate), else candidate
/// `i`: the next token of a paused reply, or a branch at a past token.
fn confirm(s: &mut State, c: &Chooser, mut i: usize) -> Outcome {
    if let Some(d) = lone_digit(&c.text) {
        let n = candidates(s, c.at).len();
        if d >= n {
            s.info(tr_args(
                "choose-lone-digit",
                "There are { $n } candidates: a lone digit picks one (type more to force text).",
                &[("n", &n)],
            ));
            return Outcome::Done;
        }
        i = d;
    } else if !c.text.is_empty() {
        let text = c.text.clone();
        return match c.at {
            ChooseAt::Next => Outcome::Steer(Steer::ForceText(text)),
            ChooseAt::Token(t) => branch(t, None, Some(text)),
        };
    }
    let Some(&id) = candidates(s, c.at).get(i) else {
        return Outcome::Done;
    };
    match c.at {
        ChooseAt::Next => Outcome::Steer(Steer::Force(id)),
        ChooseAt::Token(t) => {
            if s.step(t).is_some_and(|st| st.id == id) {
                s.info(tr(
                    "choose-same-token",
                    "That is the token the reply has: choose another one, or r to re-sample it.",
                ));
                return Outcome::Done;
            }
            branch(t, Some(id), None)
        }
    }
}

/// Find mode: Enter forces the search's most likely token (as a candidate
/// picked); nothing while the answer is not in.
fn confirm_found(s: &mut State, c: &Chooser) -> Outcome {
    let best = s
        .view
        .asking
        .answer
        .as_ref()
        .filter(|(q, _)| q.typed == c.text)
        .and_then(|(_, a)| a.as_ref().ok())
        .and_then(|a| a.probe.iter().min_by_key(|t| (t.rank, t.id)))
        .map(|t| t.id);
    let Some(id) = best else {
        s.info(tr(
            "choose-none-found",
            "No token found yet: type part of a token's text (Ctrl-F: back to text).",
        ));
        return Outcome::Done;
    };
    match c.at {
        ChooseAt::Next => Outcome::Steer(Steer::Force(id)),
        ChooseAt::Token(t) => branch(t, Some(id), None),
    }
}

/// A branch at past token `at`.
fn branch(at: TokenRef, chosen: Option<TokenId>, text: Option<String>) -> Outcome {
    Outcome::Branch { at, chosen, text }
}
