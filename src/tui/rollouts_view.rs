//! Rollouts in the chat (`o` in the token cursor, Ctrl-Y when choosing,
//! a paused reply's next step included, served inside the pause):
//! where each of the top candidates at a token's step leads
//! ([`crate::engine::Command::Rollouts`]), side by side, and one of them
//! kept as a branch of the reply, its tokens and their traces as the engine
//! drew them (nothing evaluated again). The context is the exact ids the
//! reply was generated from, up to the token ([`super::lens_view::context`]:
//! a prompt token is rolled out in the last reply's prompt, where its place
//! is known); the sampling is the reply's own, its seed included.

use super::effect::Effect;
use super::state::rollouts::RolloutsView;
use super::state::{Focus, Phase, Popup, State, TokenRef};
use crate::conversation::Writer;
use crate::engine::{Event, Role, Rollout, RolloutRequest};
use crate::i18n::{tr, tr_args};

/// Rollouts asked for: the top 5 candidates.
pub const ROLLOUT_N: usize = 5;
/// Tokens per rollout, the candidate included.
pub const ROLLOUT_M: usize = 24;

/// Whether `at` is the step a paused reply stands at (its next token, not
/// drawn yet): the engine serves rollouts from there inside the pause.
fn at_pause(s: &State, at: TokenRef) -> bool {
    s.session.generation.as_ref().is_some_and(|g| {
        matches!(g.phase, Phase::Paused { .. })
            && g.msg == at.msg
            && s.msg(at.msg).is_some_and(|m| m.steps.len() == at.step)
    })
}

/// Why rollouts of `at`'s step are refused outright: no model, a remote
/// one, the engine busy with a reply (running, or paused elsewhere than at
/// `at`: a request sent then would end the pause).
fn busy(s: &State, at: TokenRef) -> Option<String> {
    if s.model.info.is_none() {
        return Some(tr(
            "input-no-model",
            "No model is loaded: press Ctrl-O to choose one.",
        ));
    }
    // `what` starts the sentence: it comes back capitalized.
    if let Some(why) = s
        .model
        .caps
        .as_ref()
        .and_then(|c| c.refuses("Rolling out the top candidates"))
    {
        return Some(why + ".");
    }
    if s.session.generation.is_some() && !at_pause(s, at) {
        return Some(tr(
            "rollouts-reply-under-way",
            "A reply is under way (or paused in step mode): rollouts come from the step it is \
             paused at (Ctrl-Y there); for its other tokens finish or stop the reply first \
             (Shift-→ runs it on, Esc stops it).",
        ));
    }
    if s.session.load.is_some() {
        return Some(tr(
            "rollouts-model-loading",
            "A model is loading: wait for it to finish.",
        ));
    }
    None
}

/// The request for the step of chat token `at`, its label, and why a
/// rollout cannot be kept as a branch there (a prompt token); or why there
/// are none, in words.
fn request(s: &State, at: TokenRef) -> Result<(RolloutRequest, String, Option<String>), String> {
    let (tokens, position, _, label) = super::lens_view::context(s, at)?;
    let m = s.msg(at.msg).ok_or("no such message")?;
    let settings = s.request_settings();
    // The reply's own settings and seed; a prompt token: those of the next reply.
    let mut sampling = settings.sampling;
    let mut no_branch = None;
    if m.role == Role::Assistant {
        if let Some(own) = &m.sampling {
            sampling = own.clone();
        }
        if let Some(seed) = m.seed {
            sampling.seed = seed;
        }
    } else {
        no_branch = Some(tr(
            "rollouts-prompt-token",
            "rollouts from a prompt token are shown only: roll out from a reply token to keep one \
             as a branch",
        ));
    }
    let mut tokens = tokens;
    tokens.truncate(position + 1);
    let req = RolloutRequest {
        tokens,
        n: ROLLOUT_N,
        m: ROLLOUT_M,
        sampling,
        top_k_inspect: settings.top_k_inspect,
    };
    Ok((req, label, no_branch))
}

/// Opens the rollouts of chat token `at`'s step (a rollouts request in
/// flight is cancelled); an error in the popup says why there are none.
pub fn open(s: &mut State, at: TokenRef) -> Vec<Effect> {
    let mut fx = close(s);
    let mut view = RolloutsView {
        at,
        label: String::new(),
        n: ROLLOUT_N,
        m: ROLLOUT_M,
        request: None,
        result: None,
        error: None,
        selected: 0,
        no_branch: None,
        seed: 0,
    };
    match busy(s, at).map_or_else(|| request(s, at), Err) {
        Ok((req, label, no_branch)) => {
            let request = s.session.new_request();
            view.request = Some(request);
            view.label = label;
            view.no_branch = no_branch;
            view.seed = req.sampling.seed;
            fx.push(Effect::Rollouts(request, req));
        }
        Err(e) => view.error = Some(e),
    }
    s.view.popup = Some(Popup::Rollouts(Box::new(view)));
    fx
}

/// Closes the rollouts popup if open, cancelling its request in flight.
fn close(s: &mut State) -> Vec<Effect> {
    if let Some(Popup::Rollouts(r)) = &s.view.popup {
        let fx = r.request.map(Effect::Cancel).into_iter().collect();
        s.view.popup = None;
        return fx;
    }
    vec![]
}

/// Whether `ev` answers the rollouts in flight.
pub fn owns(s: &State, ev: &Event) -> bool {
    matches!(&s.view.popup, Some(Popup::Rollouts(r)) if r.request.is_some() && r.request == ev.request())
}

/// The rollouts' events: the rollouts; their end (a failure or a cancel in words).
pub fn on_event(s: &mut State, ev: Event) {
    let Some(Popup::Rollouts(r)) = &mut s.view.popup else {
        return;
    };
    match ev {
        Event::Rollouts { rollouts, .. } => {
            r.selected = 0;
            r.result = Some(rollouts);
        }
        Event::Done { .. } => r.request = None,
        Event::Failed { error, .. } => {
            r.request = None;
            r.error = Some(error.to_string());
        }
        Event::Cancelled { .. } => {
            r.request = None;
            if r.result.is_none() {
                r.error = Some(tr(
                    "rollouts-gave-way",
                    "the rollouts gave way to a request sent after them: press o again",
                ));
            }
        }
        _ => {}
    }
}

/// Rollout `rollout` of the step of reply token `at` kept as a branch of
/// the reply: the tokens before `at`, then the rollout's, with the traces
/// the engine sent (nothing evaluated again). Shown at once as the reply's
/// newest version (`[` / `]` switch), the token cursor on the fork; `c`
/// continues it. From a paused reply's step, the reply stops there (its
/// tokens stand) and the branch goes on from all of them.
pub fn branch(s: &mut State, at: TokenRef, rollout: &Rollout, seed: u32) -> Vec<Effect> {
    if let Some(why) = busy(s, at) {
        s.info(why);
        return vec![];
    }
    let mut fx = Vec::new();
    if at_pause(s, at) {
        fx = super::reply::drop_paused(s);
    }
    let Some(&id) = s.view.path.get(at.msg) else {
        return vec![];
    };
    if s.session.conv.node(id).role != Role::Assistant {
        return vec![];
    }
    let steps = rollout
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| t.step(at.step + i, i == 0))
        .collect();
    let by = Writer {
        model: s.model.name(),
        vocab: s.model.vocab.clone(),
        base_seed: s.config.sampling.seed,
    };
    let rank_seed = seed.wrapping_add(rollout.rank as u32 - 1);
    let new = s
        .session
        .conv
        .branch_with_steps(id, at.step, steps, rank_seed, &by);
    s.view.chooser = None;
    s.repath();
    s.view.cursor = Some(at);
    s.view.set_focus(Focus::Navigate);
    let (pos, n) = s.session.conv.sibling_pos(new);
    s.info(tr_args(
        "rollouts-kept",
        "Rollout #{ $rank } kept as version { $i } of { $n } of the reply ([ ] switch versions, c continues it).",
        &[("rank", &rollout.rank), ("i", &(pos + 1)), ("n", &n)],
    ));
    fx.push(Effect::Save);
    fx
}
