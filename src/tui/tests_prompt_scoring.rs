//! The prompt's surprise scored after the reply (`prompt_scoring`): asked
//! for when the engine is idle, latest turn first; applied; asked again
//! after giving way; inside a step-mode pause; never while a reply runs.

use crossterm::event::KeyCode;

use super::bench::{fake_id, fake_stats, fake_step};
use super::tests::H;
use crate::engine::{ChatMode, Event, PromptToken, RequestId, Role, StopReason, TokenStep};

fn h() -> H {
    H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0")
}

fn t(w: &str, m: Option<u32>) -> PromptToken {
    PromptToken {
        id: fake_id(w),
        message: m,
        role: m.map(|m| {
            if m % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            }
        }),
    }
}

fn started(h: &mut H, id: RequestId, prompt: Vec<PromptToken>) {
    h.engine(Event::Started {
        request: id,
        mode: ChatMode::Template,
        prompt,
        prefix: Vec::new(),
        n_reused: 0,
        dropped_messages: 0,
        note: None,
    });
}

/// A prompt token's score, as the engine sends it.
fn scored(i: usize, w: &str, p: f32) -> TokenStep {
    let mut st = fake_step(i, w, p, 8);
    st.forced = true;
    st.p_sampled = None;
    st
}

#[test]
fn after_the_reply_the_prompt_is_scored_latest_turn_first_and_shown() {
    let mut h = h();
    // The reply asks for no scores during its prefill.
    let first = h.ask("Hel the");
    assert!(!h.host.generates[0].score_prompt, "prefill is not slowed");
    started(
        &mut h,
        first,
        vec![
            t(",", None),
            t("Hel", Some(0)),
            t(" the", Some(0)),
            t(".", None),
        ],
    );
    h.stream(first, &[(" word", 0.5)]);
    // While it runs, nothing is scored, and the inspector says when it will be.
    assert!(h.host.prompt_scorings.is_empty());
    h.done(first, 1);
    let (id, req) = h
        .host
        .prompt_scorings
        .last()
        .cloned()
        .expect("scored after");
    assert_eq!(req.positions, vec![1, 2]);
    assert_eq!(req.tokens.len(), 4);
    // On a prompt token: "scoring…" until its score comes.
    h.key(KeyCode::Tab);
    h.key(KeyCode::Left);
    let screen = h.screen();
    assert!(screen.contains("prompt token 2/2"), "{screen}");
    assert!(screen.contains("(scoring…"), "{screen}");
    h.engine(Event::PromptScores {
        request: id,
        steps: vec![scored(1, "Hel", 0.05), scored(2, " the", 0.9)],
    });
    h.engine(Event::Done {
        request: id,
        stats: fake_stats(2, StopReason::Eog),
    });
    let user = h.s.view.path[0];
    let steps = &h.s.session.conv.node(user).steps;
    assert!(steps.iter().all(|s| s.dist.is_some()), "both scored");
    assert!(!h.screen().contains("scoring…"));
    // Everything asked was answered: nothing more is sent.
    h.send(super::Msg::Tick);
    assert_eq!(h.host.prompt_scorings.len(), 1);

    // The next turn: its prompt holds the first turn again (scored) and the
    // new message; only the new message is asked for.
    h.key(KeyCode::Esc);
    let second = h.ask(" of");
    started(
        &mut h,
        second,
        vec![
            t(",", None),
            t("Hel", Some(0)),
            t(" the", Some(0)),
            t(".", None),
            t(" word", Some(1)),
            t(".", None),
            t(" of", Some(2)),
            t(".", None),
        ],
    );
    h.stream(second, &[(" in", 0.5)]);
    h.done(second, 1);
    let (_, req) = h.host.prompt_scorings.last().cloned().unwrap();
    assert_eq!(req.positions, vec![6], "the new message only");
}

#[test]
fn a_scoring_that_gave_way_is_asked_again_when_the_engine_is_idle() {
    let mut h = h();
    let first = h.ask(" a and to");
    started(
        &mut h,
        first,
        vec![
            t(",", None),
            t(" a", Some(0)),
            t(" and", Some(0)),
            t(" to", Some(0)),
        ],
    );
    h.stream(first, &[(" word", 0.5)]);
    h.done(first, 1);
    let (id, req) = h.host.prompt_scorings.last().cloned().unwrap();
    assert_eq!(req.positions, vec![1, 2, 3]);
    h.engine(Event::PromptScores {
        request: id,
        steps: vec![scored(1, " a", 0.5)],
    });
    // The user sent something: the engine stopped the scoring for it.
    let next = h.ask(" is");
    h.engine(Event::Cancelled {
        request: id,
        stats: None,
    });
    assert_eq!(h.host.prompt_scorings.len(), 1, "not while a reply runs");
    started(
        &mut h,
        next,
        vec![
            t(",", None),
            t(" a", Some(0)),
            t(" and", Some(0)),
            t(" to", Some(0)),
            t(" word", Some(1)),
            t(" is", Some(2)),
        ],
    );
    h.done(next, 0);
    let (_, req) = h.host.prompt_scorings.last().cloned().unwrap();
    assert_eq!(h.host.prompt_scorings.len(), 2);
    assert_eq!(
        req.positions,
        vec![5, 2, 3],
        "latest turn first, then what was left"
    );
}

#[test]
fn in_step_mode_the_prompt_is_scored_in_the_first_pause() {
    let mut h = h();
    h.s.session.step_mode = true;
    let id = h.ask(" in the");
    started(
        &mut h,
        id,
        vec![t(",", None), t(" in", Some(0)), t(" the", Some(0))],
    );
    assert!(h.host.prompt_scorings.is_empty(), "not before the pause");
    h.engine(Event::Paused {
        request: id,
        surprise: None,
        n_generated: 0,
        next: Some(fake_step(0, " word", 0.5, 8).dist.unwrap()),
    });
    let (_, req) = h
        .host
        .prompt_scorings
        .last()
        .cloned()
        .expect("in the pause");
    assert_eq!(req.positions, vec![1, 2]);
}

#[test]
fn a_recurrent_model_scores_during_prefill_and_a_remote_one_not_at_all() {
    let mut h = h();
    let caps = h.s.model.caps.clone().unwrap();
    h.s.model.caps = Some(crate::engine::Capabilities {
        score_after: false,
        ..caps.clone()
    });
    let id = h.ask(" a");
    assert!(
        h.host.generates[0].score_prompt,
        "recurrent: during prefill"
    );
    h.done(id, 0);
    h.s.model.caps = Some(crate::engine::Capabilities {
        score: false,
        score_after: false,
        ..caps
    });
    h.ask(" and");
    assert!(!h.host.generates.last().unwrap().score_prompt);
}
