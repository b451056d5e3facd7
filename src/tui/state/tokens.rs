//! The tokens part of [`State`]: a token of the chat ([`TokenRef`]), the
//! token cursor's moves over them, the one inspected, and the chooser that
//! picks a candidate at a token.

use super::{Focus, Phase, State};
use crate::engine::{Role, TokenStep};

/// A token of an assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenRef {
    pub msg: usize,
    pub step: usize,
}

/// Which token a [`Chooser`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChooseAt {
    /// The next token of the paused reply (step mode).
    Next,
    /// Another token in place of this one: the reply branches there.
    Token(TokenRef),
}

/// Choosing a token among the inspector's candidates, or typing text to force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chooser {
    pub at: ChooseAt,
    /// Index of the selected candidate.
    pub selected: usize,
    /// Text typed to force instead of a candidate.
    pub text: String,
    /// Text was typed (even if deleted since): digits and Space type, so
    /// forced text may start with a digit.
    pub typing: bool,
    /// Ctrl-F: the typed text searches the vocabulary (tokens containing
    /// it, with their p and rank here) instead of being previewed as text.
    pub find: bool,
}

/// What the chooser asks the engine ([`crate::engine::AskTextRequest`]),
/// kept to tell whether an answer is still the one for what is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The token ids before the step.
    pub context: Vec<crate::engine::TokenId>,
    /// The text to preview (empty in find mode).
    pub text: String,
    /// Find mode: the vocabulary's tokens containing the typed text, the
    /// first [`crate::engine::ASK_MAX_PROBE`] by id.
    pub probe: Vec<crate::engine::TokenId>,
    /// Find mode: how many tokens contain the text (may exceed `probe`).
    pub matches: usize,
    /// The typed text (find mode: what was searched).
    pub typed: String,
    /// Nothing typed, a byte-token candidate selected: the token whose
    /// character to complete ([`crate::engine::AskTextRequest::complete`]).
    pub complete: Option<crate::engine::TokenId>,
}

/// The chooser's questions to the engine ([`crate::tui::asking`]): one in
/// flight at a time (typing faster than the engine answers asks only for
/// the latest text once the answer is back), and the latest answer.
#[derive(Debug, Clone, Default)]
pub struct Asking {
    pub in_flight: Option<(crate::engine::RequestId, Question)>,
    /// The latest answer (or why there is none) and what it answers.
    pub answer: Option<(Question, Result<crate::engine::TextAnswer, String>)>,
}

/// The candidate (0-based) a chooser's text of one digit 1-9 names; `None`
/// for any other text (a year, "1949", is text to force).
pub fn lone_digit(text: &str) -> Option<usize> {
    match text.as_bytes() {
        [d @ b'1'..=b'9'] => Some((d - b'1') as usize),
        _ => None,
    }
}

impl State {
    /// Every assistant token, in order.
    pub fn token_refs(&self) -> impl Iterator<Item = TokenRef> + '_ {
        self.msgs()
            .enumerate()
            .filter(|(_, m)| m.role == Role::Assistant || m.content_span.is_some())
            .flat_map(|(msg, m)| (0..m.steps.len()).map(move |step| TokenRef { msg, step }))
    }

    /// Whether token `t` is a surprise under `config.surprise`: its
    /// probability below `below_p`, or the distribution it was chosen from
    /// above `above_entropy` bits (a remote reply without the entropy: by
    /// probability alone). Template scaffolding and tokens with no numbers
    /// (not scored yet, inspector off) are not.
    pub fn is_surprising(&self, t: TokenRef) -> bool {
        let Some(m) = self.msg(t.msg) else {
            return false;
        };
        if super::is_scaffolding(m, t.step) {
            return false;
        }
        let Some(step) = m.steps.get(t.step) else {
            return false;
        };
        step.p().is_some_and(|p| {
            self.config
                .surprise
                .is_surprise(p, step.entropy().unwrap_or(0.0))
        })
    }

    /// The first surprising token after `cur` (`forward`) or the last one
    /// before it ([`Self::is_surprising`]).
    pub fn surprise_from(&self, cur: TokenRef, forward: bool) -> Option<TokenRef> {
        let mut refs = self.token_refs().filter(|&t| self.is_surprising(t));
        if forward {
            refs.find(|&t| t > cur)
        } else {
            refs.filter(|&t| t < cur).last()
        }
    }

    pub fn last_token(&self) -> Option<TokenRef> {
        self.msgs()
            .enumerate()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .find(|(_, m)| m.role == Role::Assistant && !m.steps.is_empty())
            .map(|(msg, m)| TokenRef {
                msg,
                step: m.steps.len() - 1,
            })
    }

    /// Whether the chat's last turn is a reply with no token (under way
    /// before its first, or ended at 0 tokens: an end of generation drawn
    /// first, a stop, `max_tokens` 0).
    pub fn newest_reply_is_empty(&self) -> bool {
        self.msgs()
            .last()
            .is_some_and(|m| m.role == Role::Assistant && m.steps.is_empty())
    }

    pub fn step(&self, t: TokenRef) -> Option<&TokenStep> {
        self.msg(t.msg)?.steps.get(t.step)
    }

    /// The token the inspector shows: the cursor's in navigation, else the newest.
    pub fn inspected(&self) -> Option<(TokenRef, &TokenStep)> {
        let t = match (self.view.focus, self.view.cursor) {
            (Focus::Navigate, Some(c)) => c,
            (Focus::Choose, _)
                if let Some(ChooseAt::Token(c)) = self.view.chooser.as_ref().map(|c| c.at) =>
            {
                c
            }
            // A reply under way with no token yet, or one that ended before
            // its first: nothing to show (not the previous reply's last
            // token, which would pass for this one's).
            _ if self.newest_reply_is_empty()
                || self
                    .session
                    .generation
                    .as_ref()
                    .and_then(|g| self.msg(g.msg))
                    .is_some_and(|m| m.steps.is_empty()) =>
            {
                return None;
            }
            _ => self.last_token()?,
        };
        Some((t, self.step(t)?))
    }

    /// Step mode: the paused reply's next token, not drawn yet, as a step to
    /// show (the selected candidate as its token): its chat position and the step.
    pub fn preview(&self) -> Option<(usize, TokenStep)> {
        // Only while choosing it (not in the token cursor, nor while
        // choosing another token in place of a past one).
        if self.view.focus != Focus::Choose
            || self.view.chooser.as_ref().map(|c| c.at) != Some(ChooseAt::Next)
        {
            return None;
        }
        let g = self.session.generation.as_ref()?;
        let Phase::Paused { next: Some(next) } = &g.phase else {
            return None;
        };
        let selected = self
            .view
            .chooser
            .as_ref()
            .filter(|c| c.at == ChooseAt::Next)
            .map_or(0, |c| c.selected);
        let c = next
            .top
            .get(selected.min(next.top.len().saturating_sub(1)))?;
        let index = self.msg(g.msg)?.steps.len();
        Some((
            g.msg,
            TokenStep {
                index,
                id: c.id,
                forced: false,
                text: String::new(),
                logit: Some(c.logit),
                // The sampler's p of the selected candidate, as its row says:
                // the header names the same number (`None` would read "–").
                p_sampled: c.p_sampled,
                dist: Some((**next).clone()),
            },
        ))
    }

    /// Absolute chat line and column of a token (or of the nearest token
    /// with visible text, for tokens that end inside a character).
    pub fn token_position(&self, t: TokenRef) -> Option<(usize, usize)> {
        let b = self.view.chat.block_of(t.msg);
        let block = self.view.chat.blocks.get(b)?;
        let n = self.msg(t.msg)?.steps.len();
        let found = (t.step..n)
            .chain((0..t.step).rev())
            .find_map(|s| block.find_token(s as u32))?;
        Some((self.view.chat.block_start(b) + found.0, found.1))
    }

    /// Scrolls the chat so that the token cursor is on screen.
    pub fn reveal_cursor(&mut self) {
        if let Some(c) = self.view.cursor
            && let Some((line, _)) = self.token_position(c)
        {
            self.ensure_visible(line);
        }
    }
}
