//! The prompt's own surprise, scored after the reply: a reply's prompt is
//! prefilled as fast as llama.cpp can (no logits but the last), and its
//! message tokens are scored afterwards ([`crate::engine::Command::ScorePrompt`])
//! whenever the engine is idle: when a reply ends, and in step mode inside
//! its pause. A scoring gives way to whatever the user asks next (the engine
//! stops it between chunks); what it left unscored is asked for again the
//! next time the engine is idle. Recurrent and hybrid models, whose earlier
//! states cannot be shared, score during prefill as before
//! ([`crate::engine::GenerateRequest::score_prompt`]).

use super::effect::Effect;
use super::state::{Phase, State};
use crate::conversation::PromptPlaces;
use crate::engine::{Event, PromptScoreRequest, TokenId};
use crate::i18n::tr;

/// A reply's prompt, as the engine built it: what is scored when it is idle.
pub fn remember(s: &mut State, tokens: Vec<TokenId>, places: PromptPlaces) {
    s.session.prompt_scoring.last = Some((tokens, places));
}

/// Whether `ev` answers the scoring in flight.
pub fn owns(s: &State, ev: &Event) -> bool {
    let ours = s.session.prompt_scoring.in_flight.as_ref().map(|(r, _)| *r);
    ours.is_some() && ev.request() == ours
}

/// The scoring's events: scores onto the prompt turns' tokens (their heat
/// redrawn); its end. A scoring that ran to its end leaves nothing to ask
/// again (a score that does not fit its token any more never will).
pub fn on_event(s: &mut State, ev: Event) {
    match ev {
        Event::PromptScores { steps, .. } => {
            let Some((_, places)) = &s.session.prompt_scoring.in_flight else {
                return;
            };
            let touched = s.session.conv.apply_prompt_scores(places, steps);
            for node in touched {
                if let Some(i) = s.msg_index(node) {
                    s.relayout_message(i);
                }
            }
        }
        Event::Done { .. } => {
            s.session.prompt_scoring.in_flight = None;
            s.session.prompt_scoring.last = None;
        }
        Event::Failed { error, .. } => {
            tracing::warn!(%error, "scoring the prompt failed");
            s.session.prompt_scoring.in_flight = None;
            s.session.prompt_scoring.last = None;
        }
        // It gave way to a request: asked again when the engine is idle.
        Event::Cancelled { .. } => s.session.prompt_scoring.in_flight = None,
        _ => {}
    }
}

/// Asks for the last prompt's unscored message tokens when the engine is
/// idle (no load, no comparison, no reply or a paused one) and none is in
/// flight: the latest turn first. Called after every update.
pub fn reconcile(s: &mut State) -> Vec<Effect> {
    let paused_or_none = match &s.session.generation {
        None => true,
        Some(g) => matches!(g.phase, Phase::Paused { .. }),
    };
    let can = s.model.caps.as_ref().is_some_and(|c| c.score_after);
    if !paused_or_none
        || !can
        || s.session.load.is_some()
        || s.compare.job.is_some()
        || s.session.prompt_scoring.in_flight.is_some()
        || s.config.inspector_top_k == 0
    {
        return vec![];
    }
    let Some((tokens, places)) = &s.session.prompt_scoring.last else {
        return vec![];
    };
    let positions = unscored(s, places);
    if positions.is_empty() {
        s.session.prompt_scoring.last = None;
        return vec![];
    }
    let req = PromptScoreRequest {
        tokens: tokens.clone(),
        positions,
        top_k_inspect: crate::engine::MAX_CANDIDATES,
    };
    let places = places.clone();
    let id = s.session.new_request();
    s.session.prompt_scoring.in_flight = Some((id, places));
    vec![Effect::ScorePrompt(id, req)]
}

/// Positions of `places` whose token has no score yet, the latest turn
/// first (in prompt order within a turn): the one the user just sent is the
/// one they look at.
fn unscored(s: &State, places: &PromptPlaces) -> Vec<usize> {
    let mut by_turn: Vec<(crate::conversation::NodeId, Vec<usize>)> = Vec::new();
    for (pos, place) in places.iter().enumerate().skip(1) {
        let Some((node, i)) = *place else { continue };
        // A node of this conversation (a new one resets the scoring).
        if node >= s.session.conv.len() {
            continue;
        }
        let scored = s
            .session
            .conv
            .node(node)
            .steps
            .get(i)
            .is_none_or(|t| t.dist.is_some());
        if scored {
            continue;
        }
        match by_turn.last_mut() {
            Some((n, v)) if *n == node => v.push(pos),
            _ => by_turn.push((node, vec![pos])),
        }
    }
    by_turn.into_iter().rev().flat_map(|(_, v)| v).collect()
}

/// What the inspector says of a prompt token with no score.
pub fn why_unscored(s: &State) -> String {
    let why = if s.session.prompt_scoring.in_flight.is_some() {
        tr(
            "inspector-unscored-scoring",
            "(scoring… the prompt's surprise is scored after the reply)",
        )
    } else if s.session.generation.is_some() && s.session.prompt_scoring.last.is_some() {
        tr(
            "inspector-unscored-after-reply",
            "(scored once the reply is done)",
        )
    } else {
        tr(
            "inspector-unscored-never",
            "(not scored: the first token, or read before scoring was on)",
        )
    };
    format!("  {why}")
}
