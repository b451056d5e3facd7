//! The layer lens in the chat (`l` in the token cursor): the model's
//! prediction of the selected token after each of its layers
//! ([`crate::engine::Command::Lens`]), and what each layer's attention
//! looked at from there, drawn as a heat over the chat's tokens. The lensed
//! context is the exact ids the reply was generated from
//! ([`super::compare::sequence_of`]); a prompt token is lensed in the last
//! reply's prompt, where its place is known. A paused reply (step mode)
//! is lensed in its pause, the engine serving the lens there: its tokens so
//! far, and its undecided next token (`l` in the chooser, or → past the
//! last token), whose last row is the paused step's own distribution.

use super::effect::Effect;
use super::state::lens::{AttentionSel, LensView};
use super::state::{Phase, Popup, State, TokenRef};
use crate::conversation::NodeId;
use crate::engine::{Event, LensRequest, Role, TokenId};
use crate::i18n::{tr, tr_args};

/// Candidates per lens row: what the grid shows.
pub const LENS_TOP_K: usize = 5;

/// What the lens of chat token `at` needs: the context's ids, the position
/// whose prediction is lensed (the one before `at`), the chat token of each
/// position, and a label; or why it cannot be lensed, in words.
pub(crate) type Context = (Vec<TokenId>, usize, Vec<Option<TokenRef>>, String);

pub(crate) fn context(s: &State, at: TokenRef) -> Result<Context, String> {
    let no_message = || tr("lens-no-message", "no such message");
    let m = s.msg(at.msg).ok_or_else(no_message)?;
    let node = *s.view.path.get(at.msg).ok_or_else(no_message)?;
    let piece = |id: TokenId| {
        s.model.vocab.as_ref().map_or_else(
            || format!("#{id}"),
            |v| format!("'{}'", crate::text::readable_piece(v.bytes(id))),
        )
    };
    // The chat token of each prompt position of reply `reply`, as its
    // prompt placed them (`None`: scaffolding, or a reply of another session).
    let chat_places = |reply: NodeId, n: usize| -> Vec<Option<TokenRef>> {
        let places = s.session.prompt_places.get(&reply);
        (0..n)
            .map(|pos| {
                let (n, step) = (*places?.get(pos)?)?;
                Some(TokenRef {
                    msg: s.msg_index(n)?,
                    step,
                })
            })
            .collect()
    };
    if m.role == Role::Assistant {
        // Past the last token: only a paused reply's next one.
        if at.step > m.steps.len() || (at.step == m.steps.len() && paused_msg(s) != Some(at.msg)) {
            return Err(tr("lens-no-token-there", "the reply has no token there"));
        }
        let (tokens, start) = super::compare::sequence_of(s, node)?;
        let mut places = chat_places(node, start);
        places.extend((0..m.steps.len()).map(|step| Some(TokenRef { msg: at.msg, step })));
        let position = (start + at.step).checked_sub(1).ok_or_else(|| {
            tr(
                "lens-first-of-context",
                "the first token of the context has nothing before it to predict it",
            )
        })?;
        let label = match m.steps.get(at.step) {
            Some(st) => tr_args(
                "lens-label-reply",
                "{ $piece } (reply token { $i })",
                &[("piece", &piece(st.id)), ("i", &(at.step + 1))],
            ),
            None => tr_args(
                "lens-label-next",
                "the next token (reply token { $i }, not drawn yet)",
                &[("i", &(at.step + 1))],
            ),
        };
        return Ok((tokens, position, places, label));
    }
    // A prompt token: lensed in the prompt of a reply of this session that
    // holds it (the latest shown).
    let found = s.view.path.iter().rev().find_map(|&reply| {
        let pos = s
            .session
            .prompt_places
            .get(&reply)?
            .iter()
            .position(|p| *p == Some((node, at.step)))?;
        Some((reply, pos, s.compare.prompts.get(&reply)?))
    });
    let (reply, pos, prompt) = found.ok_or_else(|| {
        tr(
            "lens-prompt-unknown",
            "a prompt token is lensed in the prompt of a reply generated in this session: send a message (or regenerate the reply, F8) first",
        )
    })?;
    let position = pos.checked_sub(1).ok_or_else(|| {
        tr(
            "lens-first-of-prompt",
            "the first token of the prompt has nothing before it to predict it",
        )
    })?;
    let places = chat_places(reply, pos + 1);
    let label = tr_args(
        "lens-label-prompt",
        "{ $piece } (prompt token { $i })",
        &[("piece", &piece(prompt[pos])), ("i", &(at.step + 1))],
    );
    Ok((prompt[..=pos].to_vec(), position, places, label))
}

/// The chat message of the reply paused in step mode, if one is: the engine
/// serves a lens inside its pause.
pub fn paused_msg(s: &State) -> Option<usize> {
    s.session
        .generation
        .as_ref()
        .filter(|g| matches!(g.phase, Phase::Paused { .. }))
        .map(|g| g.msg)
}

/// Whether a lens is refused outright: no model, a remote one, the engine
/// busy with a reply that is not paused.
fn busy(s: &State) -> Option<String> {
    if s.model.info.is_none() {
        return Some(tr(
            "lens-no-model",
            "No model is loaded: press Ctrl-O to choose one.",
        ));
    }
    if let Some(url) = s.model.caps.as_ref().and_then(|c| c.remote.as_deref()) {
        return Some(tr_args(
            "lens-remote",
            "The layer lens reads the residual stream inside llama.cpp's graph, which the remote \
             server at { $url } does not expose: load a local model for it.",
            &[("url", &url)],
        ));
    }
    // The engine serves a lens between requests or inside a paused reply's
    // pause: one sent while a reply runs would wait for it.
    if s.session.generation.is_some() && paused_msg(s).is_none() {
        return Some(tr(
            "lens-reply-under-way",
            "A reply is under way: the lens runs once it has ended or paused (step mode, F7); Esc stops it.",
        ));
    }
    None
}

/// Opens (or moves) the lens to chat token `at`; an error in the popup says
/// why there is none.
pub fn open(s: &mut State, at: TokenRef) -> Vec<Effect> {
    let attention = match &s.view.popup {
        Some(Popup::Lens(l)) => l.attention,
        _ => None,
    };
    let mut fx = Vec::new();
    if let Some(Popup::Lens(l)) = &s.view.popup
        && let Some(r) = l.request
    {
        fx.push(Effect::Cancel(r));
    }
    let mut view = LensView {
        at,
        label: String::new(),
        request: None,
        result: None,
        error: None,
        scroll: 0,
        attention,
        places: Vec::new(),
    };
    match busy(s).map_or_else(|| context(s, at), Err) {
        Ok((tokens, position, places, label)) => {
            let request = s.session.new_request();
            view.request = Some(request);
            view.label = label;
            view.places = places;
            fx.push(Effect::Lens(
                request,
                LensRequest {
                    tokens,
                    position,
                    top_k: LENS_TOP_K,
                    attention: true,
                },
            ));
        }
        Err(e) => view.error = Some(e),
    }
    s.view.popup = Some(Popup::Lens(Box::new(view)));
    fx
}

/// The lens of the token before (`-1`) or after (`1`) the one shown, within
/// its message (a paused reply's: up to its undecided next token).
pub fn step(s: &mut State, by: isize) -> Vec<Effect> {
    let Some(Popup::Lens(l)) = &s.view.popup else {
        return vec![];
    };
    let at = l.at;
    let Some(m) = s.msg(at.msg) else {
        return vec![];
    };
    let end = m.steps.len() + usize::from(paused_msg(s) == Some(at.msg));
    let Some(next) = at.step.checked_add_signed(by).filter(|&n| n < end) else {
        return vec![];
    };
    open(
        s,
        TokenRef {
            msg: at.msg,
            step: next,
        },
    )
}

/// Whether `ev` answers the lens in flight.
pub fn owns(s: &State, ev: &Event) -> bool {
    matches!(&s.view.popup, Some(Popup::Lens(l)) if l.request.is_some() && l.request == ev.request())
}

/// The lens's events: its result; its end (a failure or a cancel in words).
pub fn on_event(s: &mut State, ev: Event) {
    let Some(Popup::Lens(l)) = &mut s.view.popup else {
        return;
    };
    match ev {
        Event::Lens { result, .. } => l.result = Some(result),
        Event::Done { .. } => l.request = None,
        Event::Failed { error, .. } => {
            l.request = None;
            l.error = Some(error.to_string());
        }
        Event::Cancelled { .. } => {
            l.request = None;
            if l.result.is_none() {
                l.error = Some(tr(
                    "lens-gave-way",
                    "the lens gave way to a request sent after it: press l again",
                ));
            }
        }
        _ => {}
    }
}

/// The attention view on or off (on: the last layer, the heads' mean).
pub fn toggle_attention(l: &mut LensView) {
    l.attention = match l.attention {
        Some(_) => None,
        None => {
            let n = l.result.as_ref().map_or(0, |r| r.attention.len());
            (n > 0).then(|| AttentionSel {
                layer: n - 1,
                head: None,
            })
        }
    };
}

/// The attention view's layer moved by `by` (clamped).
pub fn move_layer(l: &mut LensView, by: isize) {
    let n = l.result.as_ref().map_or(0, |r| r.attention.len());
    if let Some(sel) = &mut l.attention
        && n > 0
    {
        sel.layer = sel.layer.saturating_add_signed(by).min(n - 1);
    }
}

/// The attention view's next head: the mean, head 1, …, the last, the mean.
pub fn next_head(l: &mut LensView) {
    let heads = l
        .result
        .as_ref()
        .and_then(|r| r.attention.first())
        .map_or(0, |a| a.heads.len());
    if let Some(sel) = &mut l.attention {
        sel.head = match sel.head {
            None if heads > 0 => Some(0),
            Some(h) if h + 1 < heads => Some(h + 1),
            _ => None,
        };
    }
}
