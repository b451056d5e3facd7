//! The KV-cache view in the chat (`w` in the token cursor): the greedy
//! reply to the context at the cursor's message generated twice by the
//! engine, with the KV cache and without it
//! ([`crate::engine::Command::KvCost`]), each token's time streaming into
//! the popup's chart as it comes. Esc cancels the runs.

use super::effect::Effect;
use super::state::kv_cost::KvCostView;
use super::state::{Popup, State, TokenRef};
use crate::engine::{ChatMessage, Event, KV_COST_MAX_TOKENS, KvCostRequest, Role};
use crate::i18n::{tr, tr_args};

/// The messages the runs answer and a label: those before the reply at
/// `at` (a user message: before its reply, the message included); or why
/// there are none, in words.
fn context(s: &State, at: TokenRef) -> Result<(Vec<ChatMessage>, String), String> {
    let m = s
        .msg(at.msg)
        .ok_or_else(|| tr("popup-no-such-message", "no such message"))?;
    let reply = if m.role == Role::Assistant {
        at.msg
    } else {
        at.msg + 1
    };
    match s.view.path.get(reply) {
        Some(&node) if s.session.conv.node(node).role == Role::Assistant => Ok((
            s.session.conv.messages_before(node),
            tr_args(
                "kv-label",
                "the reply to message { $n }",
                &[("n", &(reply + 1))],
            ),
        )),
        _ => Err(tr(
            "kv-no-reply",
            "this message has no reply yet to time: send it first",
        )),
    }
}

/// Why the view is refused outright: no model, a remote one, a reply under way.
fn busy(s: &State) -> Option<String> {
    if s.model.info.is_none() {
        return Some(tr(
            "input-no-model",
            "No model is loaded: press Ctrl-O to choose one.",
        ));
    }
    if let Some(why) = s
        .model
        .caps
        .as_ref()
        .and_then(|c| c.refuses("Timing the KV cache"))
    {
        return Some(why);
    }
    if s.session.generation.is_some() {
        return Some(tr(
            "kv-reply-under-way",
            "A reply is under way: the KV-cache view runs the model twice on its own, once the reply has ended (Esc stops it).",
        ));
    }
    None
}

/// Opens the view on the context of the message at `at` and asks for the
/// runs (at most the reply length setting, capped at [`KV_COST_MAX_TOKENS`]);
/// an error in the popup says why there are none.
pub fn open(s: &mut State, at: TokenRef) -> Vec<Effect> {
    let max_tokens = s.request_settings().max_tokens.clamp(1, KV_COST_MAX_TOKENS);
    let mut view = KvCostView {
        label: String::new(),
        request: None,
        max_tokens,
        runs: Default::default(),
        done: None,
        cancelled: false,
        error: None,
    };
    let mut fx = Vec::new();
    match busy(s).map_or_else(|| context(s, at), Err) {
        Ok((messages, label)) => {
            let request = s.session.new_request();
            view.request = Some(request);
            view.label = label;
            fx.push(Effect::KvCost(
                request,
                KvCostRequest {
                    messages,
                    raw: s.raw,
                    max_tokens,
                },
            ));
        }
        Err(e) => view.error = Some(e),
    }
    s.view.popup = Some(Popup::KvCost(Box::new(view)));
    fx
}

/// Whether `ev` answers the runs in flight.
pub fn owns(s: &State, ev: &Event) -> bool {
    matches!(&s.view.popup, Some(Popup::KvCost(v)) if v.request.is_some() && v.request == ev.request())
}

/// The runs' events: a timed token; their end (the totals, a failure or a
/// cancel in words).
pub fn on_event(s: &mut State, ev: Event) {
    let Some(Popup::KvCost(v)) = &mut s.view.popup else {
        return;
    };
    match ev {
        Event::KvStep { .. } => v.runs.push(&ev),
        Event::Done { stats, .. } => {
            v.request = None;
            v.done = Some(stats);
        }
        Event::Failed { error, .. } => {
            v.request = None;
            v.error = Some(error.to_string());
        }
        Event::Cancelled { .. } => {
            v.request = None;
            v.cancelled = true;
        }
        _ => {}
    }
}
