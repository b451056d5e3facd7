//! Update-logic tests for acting on predictions: step mode, forcing,
//! branching, alternatives, regenerating, continuing, editing an earlier
//! message. Scripted engine events; the requests and steers are checked.

use crossterm::event::{KeyCode, KeyModifiers};

use super::bench::{fake_id, fake_stats, fake_step};
use super::effect::Steer;
use super::state::{ChooseAt, Focus, MsgStatus, TokenRef};
use super::tests::{H, PARIS};
use crate::engine::{
    Distribution, Event, ReplyPrefix, RequestId, Role, StopReason, Surprise, SurpriseStop,
};

fn h() -> H {
    H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0")
}

/// The distribution shown before the next token: `text` first.
fn next(text: &str) -> Option<Distribution> {
    fake_step(0, text, 0.5, 8).dist
}

fn paused(h: &mut H, id: RequestId, top: &str) {
    let n =
        h.s.session
            .generation
            .as_ref()
            .map_or(0, |g| h.s.msg(g.msg).unwrap().steps.len());
    h.engine(Event::Paused {
        request: id,
        surprise: None,
        n_generated: n,
        next: next(top),
    });
}

fn steers(h: &H) -> Vec<Steer> {
    h.host.steers.iter().map(|(_, s)| s.clone()).collect()
}

fn last_request(h: &H) -> &crate::engine::GenerateRequest {
    h.host.generates.last().unwrap()
}

#[test]
fn step_mode_starts_paused_and_each_press_is_one_token() {
    let mut h = h();
    h.key(KeyCode::F(7));
    assert!(h.s.session.step_mode);
    let id = h.ask("Hi");
    assert!(
        last_request(&h).paused,
        "a reply in step mode starts paused"
    );
    h.started(id);
    paused(&mut h, id, " the");
    assert_eq!(h.s.view.focus, Focus::Choose);
    let screen = h.screen();
    assert!(screen.contains("not drawn yet"), "{screen}");
    assert!(screen.contains("‖ step 1"), "{screen}");
    // → draws; two more presses while that token is under way wait.
    h.key(KeyCode::Right);
    h.key(KeyCode::Right);
    h.key(KeyCode::Right);
    assert_eq!(steers(&h), [Steer::Step]);
    assert!(h.host.steers.iter().all(|(r, _)| *r == id));
    h.stream(id, &[(" the", 0.5)]);
    paused(&mut h, id, " a");
    assert_eq!(steers(&h), [Steer::Step, Steer::Step], "a queued press");
    h.stream(id, &[(" a", 0.5)]);
    paused(&mut h, id, ",");
    h.stream(id, &[(",", 0.5)]);
    paused(&mut h, id, ".");
    assert_eq!(steers(&h).len(), 3, "three presses, three tokens");
    assert_eq!(h.s.msg(1).unwrap().content, " the a,");
    // The newest token stands out in the chat.
    let b = h.buffer();
    let (x, y) = super::tests::find(&b, "a,").unwrap();
    assert!(
        b[(x + 1, y)]
            .modifier
            .contains(ratatui::style::Modifier::UNDERLINED)
    );
    assert!(
        !b[(x, y)]
            .modifier
            .contains(ratatui::style::Modifier::UNDERLINED)
    );
    // F7 again: to the next surprise, still at this pause; once more:
    // free, the reply runs on.
    h.key(KeyCode::F(7));
    assert!(h.s.session.to_surprise && !h.s.session.step_mode);
    assert_eq!(steers(&h).len(), 3, "a pause stays a pause");
    h.key(KeyCode::F(7));
    assert!(!h.s.session.to_surprise && !h.s.session.step_mode);
    assert_eq!(steers(&h).last(), Some(&Steer::Run));
    assert_eq!(h.s.view.chooser, None);
    assert_eq!(h.s.view.focus, Focus::Input);
}

#[test]
fn a_candidate_is_forced_by_its_number_or_by_selecting_it() {
    let mut h = h();
    h.key(KeyCode::F(7));
    let id = h.ask("Hi");
    h.started(id);
    paused(&mut h, id, " the");
    let top: Vec<i32> = next(" the").unwrap().top.iter().map(|c| c.id).collect();
    // A digit selects (the box says what Enter does); Enter forces.
    h.key(KeyCode::Char('3'));
    assert!(steers(&h).is_empty(), "a digit alone forces nothing");
    let screen = h.screen();
    assert!(screen.contains("3▶"), "candidate 3 selected:\n{screen}");
    assert!(screen.contains("3▏ Enter: candidate 3"), "{screen}");
    h.key(KeyCode::Enter);
    assert_eq!(steers(&h), [Steer::Force(top[2])]);
    let mut forced = fake_step(0, " a", 0.2, 8);
    forced.forced = true;
    forced.id = top[2];
    h.engine(Event::Token {
        request: id,
        step: Box::new(forced),
    });
    paused(&mut h, id, " the");
    h.key(KeyCode::Down);
    h.key(KeyCode::Down);
    h.key(KeyCode::Up);
    let screen = h.screen();
    assert!(
        screen.contains("2▶"),
        "the selection is what Enter forces:\n{screen}"
    );
    h.key(KeyCode::Enter);
    assert_eq!(steers(&h)[1], Steer::Force(top[1]));
}

#[test]
fn a_year_typed_in_step_mode_is_text_not_a_candidate_number() {
    let mut h = h();
    h.key(KeyCode::F(7));
    let id = h.ask("Hi");
    h.started(id);
    paused(&mut h, id, " the");
    h.type_str("1949");
    assert!(steers(&h).is_empty(), "nothing forced while typing");
    assert!(h.screen().contains("1949▏"));
    h.key(KeyCode::Enter);
    assert_eq!(steers(&h), [Steer::ForceText("1949".into())]);
    // The hint line says how digits work.
    paused(&mut h, id, " the");
    let screen = h.screen();
    assert!(
        screen.contains("1-9, Enter: force · or type text"),
        "{screen}"
    );
}

#[test]
fn typed_text_is_forced_with_its_spaces_and_digits() {
    let mut h = h();
    h.key(KeyCode::F(7));
    let id = h.ask("Hi");
    h.started(id);
    paused(&mut h, id, " the");
    h.type_str("x 42");
    assert!(h.screen().contains("x 42▏"));
    h.key(KeyCode::Backspace);
    h.key(KeyCode::Enter);
    assert_eq!(steers(&h), [Steer::ForceText("x 4".into())]);
    assert_eq!(
        h.s.view.chooser.as_ref().unwrap().text,
        "",
        "the text goes with it"
    );
}

#[test]
fn esc_while_paused_stops_the_reply() {
    let mut h = h();
    h.key(KeyCode::F(7));
    let id = h.ask("Hi");
    h.started(id);
    paused(&mut h, id, " the");
    h.key(KeyCode::Esc);
    assert_eq!(h.host.cancels, [id]);
    h.engine(Event::Cancelled {
        request: id,
        stats: None,
    });
    assert_eq!(h.s.view.focus, Focus::Input);
    assert_eq!(h.s.view.chooser, None);
}

/// A finished reply to "What is the capital of France?", token cursor on token `k`.
fn paris_at(k: usize) -> H {
    let mut h = h();
    h.exchange("What is the capital of France?", PARIS);
    h.key(KeyCode::Tab);
    h.key(KeyCode::Home);
    for _ in 0..k {
        h.key(KeyCode::Right);
    }
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: k }));
    h
}

#[test]
fn branching_at_a_token_keeps_the_tokens_before_it_and_the_old_reply() {
    let mut h = paris_at(5);
    let orig: Vec<i32> = h.s.msg(1).unwrap().ids();
    h.key(KeyCode::Enter);
    assert_eq!(h.s.view.focus, Focus::Choose);
    assert_eq!(
        h.s.view.chooser.as_ref().map(|c| c.at),
        Some(ChooseAt::Token(TokenRef { msg: 1, step: 5 }))
    );
    // The row of the token the reply has is selected; take the next one.
    h.key(KeyCode::Down);
    let chosen = h.s.step(TokenRef { msg: 1, step: 5 }).unwrap().top()[1].id;
    assert_ne!(chosen, orig[5]);
    h.key(KeyCode::Enter);
    let req = last_request(&h).clone();
    let mut want = orig[..5].to_vec();
    want.push(chosen);
    assert_eq!(
        req.prefix,
        ReplyPrefix::Tokens(want),
        "exact ids up to the fork"
    );
    assert_eq!(req.messages.last().unwrap().role, Role::User);
    assert_eq!(h.s.session.conv.sibling_pos(h.s.view.path[1]), (1, 2));
    assert!(h.screen().contains("‹ 2/2 ›"), "{}", h.screen());
    let id = h.host.next;
    h.started(id);
    h.stream(id, &[(" the", 0.3)]);
    // Switching versions waits for the reply.
    h.key(KeyCode::Char('['));
    assert_eq!(h.s.session.conv.sibling_pos(h.s.view.path[1]), (1, 2));
    h.done(id, 1);
    let branch = h.s.msg(1).unwrap();
    assert_eq!(branch.steps.len(), 7);
    assert!(branch.steps[5].forced);
    let old_text =
        h.s.session
            .conv
            .node(h.s.session.conv.node(h.s.view.path[1]).fork.unwrap().from)
            .content
            .clone();
    assert_eq!(old_text, "The capital of France is Paris.");
    // Both versions are kept and switchable.
    h.key(KeyCode::Char('['));
    assert_eq!(h.s.msg(1).unwrap().content, old_text);
    assert!(h.screen().contains("‹ 1/2 ›"));
    h.key(KeyCode::Char(']'));
    assert_eq!(h.s.msg(1).unwrap().ids()[5], chosen);
}

#[test]
fn the_next_turn_is_built_from_the_version_shown() {
    let mut h = paris_at(4);
    h.key(KeyCode::Char('r'));
    let id = h.host.next;
    h.started(id);
    h.stream(id, &[(" the", 0.3), (".", 0.3)]);
    h.done(id, 2);
    let branch_text = h.s.msg(1).unwrap().content.clone();
    assert_eq!(branch_text, "The capital of France the.");
    h.key(KeyCode::Char('['));
    h.key(KeyCode::Tab);
    h.ask("And Spain?");
    let req = last_request(&h);
    assert_eq!(req.messages[1].content, "The capital of France is Paris.");
    assert_eq!(req.messages.len(), 3);
    // The other version keeps its own (no) continuation.
    let id = h.host.next;
    h.done(id, 0);
    h.key(KeyCode::Tab);
    h.key(KeyCode::Up);
    h.key(KeyCode::Up);
    assert_eq!(h.s.view.cursor.map(|c| c.msg), Some(1));
    h.key(KeyCode::Char(']'));
    assert_eq!(h.s.view.path.len(), 2, "the branch has no later turns");
    assert_eq!(h.s.msg(1).unwrap().content, branch_text);
}

#[test]
fn regenerate_is_a_new_sibling_with_its_own_seed() {
    let mut h = h();
    h.exchange("Hi", &[("Hel", 0.5)]);
    let first = last_request(&h).sampling.seed;
    h.key(KeyCode::F(8));
    let req = last_request(&h);
    assert_eq!(req.prefix, ReplyPrefix::None);
    assert_ne!(
        req.sampling.seed, first,
        "each branch draws its own numbers"
    );
    assert_eq!(req.messages.len(), 1);
    assert_eq!(h.s.session.conv.sibling_pos(h.s.view.path[1]), (1, 2));
    assert!(h.s.msg(1).unwrap().steps.is_empty());
}

#[test]
fn editing_an_earlier_message_makes_a_new_version_of_that_turn() {
    let mut h = h();
    h.exchange("Hi", &[("Hel", 0.5)]);
    h.exchange("Bye", &[(" word", 0.5)]);
    h.key(KeyCode::Tab);
    h.key(KeyCode::Home);
    h.key(KeyCode::Left);
    assert_eq!(h.s.view.cursor.map(|c| c.msg), Some(1));
    h.key(KeyCode::Char('e'));
    assert_eq!(h.s.view.focus, Focus::Input);
    assert_eq!(h.s.view.input.lines().join("\n"), "Hi");
    assert!(h.screen().contains("editing an earlier message"));
    h.type_str(" there");
    h.key(KeyCode::Enter);
    let req = last_request(&h);
    assert_eq!(req.messages.len(), 1, "later turns are not part of it");
    assert_eq!(req.messages[0].content, "Hi there");
    assert_eq!(h.s.view.path.len(), 2);
    assert_eq!(h.s.session.conv.sibling_pos(h.s.view.path[0]), (1, 2));
    assert!(h.screen().contains("‹ 2/2 ›"));
    let id = h.host.next;
    h.started(id);
    h.stream(id, &[(" a", 0.5)]);
    h.done(id, 1);
    // Back to the first version: its whole conversation returns.
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('{'));
    assert_eq!(h.s.view.path.len(), 4);
    assert_eq!(h.s.msg(0).unwrap().content, "Hi");
    assert_eq!(h.s.msg(3).unwrap().content, " word");
}

#[test]
fn a_stopped_reply_continues_from_its_exact_tokens() {
    let mut h = h();
    let id = h.ask("Hi");
    h.started(id);
    h.stream(id, &[("Hel", 0.5), (" word", 0.5)]);
    h.key(KeyCode::Esc);
    h.engine(Event::Cancelled {
        request: id,
        stats: Some(fake_stats(2, StopReason::Cancelled)),
    });
    assert_eq!(h.s.msg(1).unwrap().status, MsgStatus::Stopped);
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('c'));
    let req = last_request(&h);
    assert_eq!(
        req.prefix,
        ReplyPrefix::Tokens(vec![fake_id("Hel"), fake_id(" word")])
    );
    assert_eq!(h.s.msg(1).unwrap().status, MsgStatus::Streaming);
    let id = h.host.next;
    h.started(id);
    h.stream(id, &[(".", 0.5)]);
    h.done(id, 1);
    assert_eq!(h.s.msg(1).unwrap().content, "Hel word.");
    // A reply the model ended itself has nothing to continue.
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('c'));
    assert_eq!(h.host.generates.len(), 2);
}

#[test]
fn branching_with_typed_text_forces_it_then_runs_on() {
    let mut h = paris_at(3);
    h.key(KeyCode::Enter);
    h.type_str(" Spain");
    h.key(KeyCode::Enter);
    let req = last_request(&h);
    assert!(req.paused, "paused, so the text goes in before any draw");
    assert_eq!(
        req.prefix,
        ReplyPrefix::Tokens(h.s.msg(1).unwrap().ids()[..3].to_vec())
    );
    assert_eq!(
        steers(&h),
        [Steer::ForceText(" Spain".into()), Steer::Run],
        "then it runs on (step mode is off)"
    );
}

#[test]
fn a_branch_keeps_the_tree_through_serde() {
    let mut h = paris_at(2);
    h.key(KeyCode::Char('r'));
    let id = h.host.next;
    h.done(id, 0);
    let json = serde_json::to_string(&h.s.session.conv).unwrap();
    let back: crate::conversation::Conversation = serde_json::from_str(&json).unwrap();
    assert_eq!(back.path(), h.s.view.path);
    assert_eq!(back.node(h.s.view.path[1]).ids(), h.s.msg(1).unwrap().ids());
    let (pos, n) = back.sibling_pos(h.s.view.path[1]);
    assert_eq!((pos, n), (1, 2));
    assert!(h.s.session.generation.is_none());
    assert_ne!(h.s.msg(1).unwrap().status, MsgStatus::Streaming);
}

// ---- interleavings (from review) ---------------------------------------

#[test]
fn an_edit_whose_message_is_switched_away_is_dropped_not_lost_in_the_tree() {
    let mut h = h();
    h.exchange("Hi", &[("Hel", 0.5)]);
    h.key(KeyCode::F(8));
    let id = h.host.next;
    h.stream(id, &[(" word", 0.5)]);
    h.done(id, 1);
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('['));
    h.key(KeyCode::Tab);
    h.exchange("Bye", &[(" the", 0.5)]);
    assert_eq!(h.s.view.path.len(), 4);
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 3, step: 0 });
    h.key(KeyCode::Char('e'));
    assert!(h.s.session.editing.is_some());
    // The reply above "Bye" switches to its other version: "Bye" is hidden.
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 0 });
    h.key(KeyCode::Char(']'));
    assert_eq!(h.s.view.path.len(), 2);
    assert_eq!(h.s.session.editing, None, "the edit goes with its message");
    assert!(h.s.view.input.is_empty());
    let n = h.host.generates.len();
    h.key(KeyCode::Tab);
    h.key(KeyCode::Enter);
    assert_eq!(h.host.generates.len(), n);
    for id in 0..h.s.session.conv.len() {
        assert_ne!(
            h.s.session.conv.node(id).status,
            MsgStatus::Streaming,
            "no reply left waiting"
        );
    }
}

#[test]
fn no_token_ids_go_to_a_model_still_loading() {
    let mut h = h();
    h.exchange("What is the capital of France?", PARIS);
    h.pick("qwen");
    h.key(KeyCode::Enter);
    assert!(h.s.session.load.is_some());
    let n = h.host.generates.len();
    h.key(KeyCode::Tab);
    h.key(KeyCode::Home);
    h.key(KeyCode::Right);
    h.key(KeyCode::Enter);
    assert!(h.s.view.notice.as_ref().unwrap().text.contains("loading"));
    assert_eq!(h.s.view.focus, Focus::Navigate, "no chooser opens");
    h.key(KeyCode::Char('r'));
    assert!(h.s.view.notice.as_ref().unwrap().text.contains("loading"));
    h.key(KeyCode::Char('c'));
    assert!(h.s.view.notice.as_ref().unwrap().text.contains("loading"));
    assert_eq!(h.host.generates.len(), n, "refused while loading");
}

#[test]
fn choosing_at_a_past_token_while_paused_shows_that_tokens_candidates() {
    let mut h = h();
    h.exchange("What is the capital of France?", PARIS);
    h.key(KeyCode::F(7));
    let id = h.ask("And Spain?");
    h.started(id);
    paused(&mut h, id, " the");
    h.key(KeyCode::Tab);
    assert_eq!(h.s.view.focus, Focus::Navigate);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 5 });
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(!screen.contains("not drawn yet"), "{screen}");
    assert!(screen.contains("branch at token 6"), "{screen}");
}

#[test]
fn a_pause_does_not_take_over_a_branch_chooser_or_an_edit() {
    let mut h = h();
    h.exchange("What is the capital of France?", PARIS);
    h.key(KeyCode::F(7));
    let id = h.ask("And Spain?");
    h.started(id);
    paused(&mut h, id, " the");
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 2 });
    h.key(KeyCode::Enter);
    h.type_str("xyz");
    // The same pause said again (forced text that gave no tokens).
    paused(&mut h, id, " the");
    let c = h.s.view.chooser.clone().unwrap();
    assert_eq!(c.at, ChooseAt::Token(TokenRef { msg: 1, step: 2 }));
    assert_eq!(c.text, "xyz");
    assert!(
        h.screen().contains("Tab: choose"),
        "the status says how to get back"
    );
    // Esc clears the text first, then closes.
    h.key(KeyCode::Esc);
    assert_eq!(h.s.view.chooser.as_ref().unwrap().text, "");
    h.key(KeyCode::Esc);
    assert_eq!(h.s.view.focus, Focus::Navigate);
    // An edit in progress keeps the keys too.
    h.key(KeyCode::Char('e'));
    assert_eq!(h.s.view.focus, Focus::Input);
    h.type_str(" please");
    paused(&mut h, id, " the");
    assert_eq!(h.s.view.focus, Focus::Input);
    h.type_str("!");
    assert!(h.s.view.input.lines().join("").ends_with("please!"));
    assert!(h.host.steers.is_empty());
    // Tab goes to the pause when asked.
    h.key(KeyCode::Tab);
    assert_eq!(h.s.view.focus, Focus::Choose);
    assert_eq!(
        h.s.view.chooser.as_ref().map(|c| c.at),
        Some(ChooseAt::Next)
    );
}

#[test]
fn continuing_a_reply_cut_inside_a_character_drops_the_shown_replacement() {
    let mut h = h();
    let id = h.ask("Hi");
    h.started(id);
    h.stream(id, &[("Hel", 0.5)]);
    let mut st = fake_step(1, "Hel", 0.5, 8);
    st.id = super::bench::fake_partial_id();
    st.text = String::new();
    h.engine(Event::Token {
        request: id,
        step: Box::new(st),
    });
    h.engine(Event::Tail {
        request: id,
        text: "\u{FFFD}".into(),
    });
    h.engine(Event::Done {
        request: id,
        stats: fake_stats(2, StopReason::MaxTokens),
    });
    assert_eq!(h.s.msg(1).unwrap().content, "Hel\u{FFFD}");
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('c'));
    assert_eq!(h.s.msg(1).unwrap().content, "Hel");
    let id = h.host.next;
    h.started(id);
    // The engine completes the character from the prefix's bytes.
    let mut st = fake_step(2, "Hel", 0.5, 8);
    st.text = "好".into();
    h.engine(Event::Token {
        request: id,
        step: Box::new(st),
    });
    assert_eq!(h.s.msg(1).unwrap().content, "Hel好");
}

#[test]
fn a_reply_to_an_edited_message_draws_with_another_seed() {
    let mut h = h();
    h.exchange("Hi", &[("Hel", 0.5)]);
    let s0 = last_request(&h).sampling.seed;
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('e'));
    h.type_str("!");
    h.key(KeyCode::Enter);
    assert_ne!(last_request(&h).sampling.seed, s0);
}

#[test]
fn a_paste_while_choosing_is_text_to_force() {
    let mut h = h();
    h.key(KeyCode::F(7));
    let id = h.ask("Hi");
    h.started(id);
    paused(&mut h, id, " the");
    h.send(super::Msg::Input(crossterm::event::Event::Paste(
        " Paris\nand more".into(),
    )));
    h.key(KeyCode::Enter);
    assert!(h.host.cancels.is_empty());
    assert_eq!(steers(&h), [Steer::ForceText(" Paris".into())]);
}

#[test]
fn a_version_stopped_before_its_first_token_goes_and_the_one_before_returns() {
    let mut h = h();
    h.exchange("Hi", &[("Hel", 0.5)]);
    h.key(KeyCode::F(8));
    let id = h.host.next;
    assert_eq!(h.s.session.conv.sibling_pos(h.s.view.path[1]), (1, 2));
    h.key(KeyCode::Esc);
    h.engine(Event::Cancelled {
        request: id,
        stats: None,
    });
    assert_eq!(h.s.session.conv.sibling_pos(h.s.view.path[1]), (0, 1));
    assert_eq!(h.s.msg(1).unwrap().content, "Hel");
    assert!(h.screen().contains("dropped"));
}

#[test]
fn forced_text_may_start_with_a_digit_and_presses_during_prefill_count() {
    let mut h = h();
    h.key(KeyCode::F(7));
    let id = h.ask("Hi");
    assert_eq!(h.s.view.focus, Focus::Choose, "choosing from the start");
    h.started(id);
    // Two presses while the prompt is read: two tokens once it pauses.
    h.key(KeyCode::Right);
    h.key(KeyCode::Right);
    assert!(h.host.steers.is_empty());
    paused(&mut h, id, " the");
    assert_eq!(steers(&h), [Steer::Step]);
    h.stream(id, &[(" the", 0.5)]);
    paused(&mut h, id, " a");
    assert_eq!(steers(&h), [Steer::Step, Steer::Step]);
    h.stream(id, &[(" a", 0.5)]);
    paused(&mut h, id, ",");
    // A letter typed and deleted: digits are text from then on.
    h.type_str("x");
    h.key(KeyCode::Backspace);
    h.type_str("2024 was");
    h.key(KeyCode::Enter);
    assert_eq!(steers(&h)[2], Steer::ForceText("2024 was".into()));
}

/// What a llama-server reports it can do (see `engine::remote`).
fn remote_caps() -> crate::engine::Capabilities {
    crate::engine::Capabilities {
        entropy: false,
        full_distribution: false,
        max_candidates: 20,
        step: false,
        token_prefix: false,
        slots: 1,
        token_ids: true,
        sampler_probs: false,
        score: false,
        score_after: false,
        remote: Some("http://gpu-box:8080".into()),
    }
}

/// The Paris exchange on a remote model (its capabilities, a vocabulary
/// learned from the stream), the token cursor on token `k`.
fn remote_paris_at(k: usize) -> H {
    let mut h = h();
    h.s.model.caps = Some(remote_caps());
    let info = super::bench::fake_model("SmolLM2 @ lab", "Q4_1");
    h.s.set_model(
        info,
        std::sync::Arc::new(crate::engine::Vocab::learned(1 << 16)),
    );
    h.exchange("What is the capital of France?", PARIS);
    h.key(KeyCode::Tab);
    h.key(KeyCode::Home);
    for _ in 0..k {
        h.key(KeyCode::Right);
    }
    h
}

#[test]
fn branch_resample_continue_and_what_if_keys_are_refused_up_front_on_a_remote_model() {
    for (key, says) in [
        (
            KeyCode::Enter,
            "Choosing another token here (a branch) needs the model's logits",
        ),
        (
            KeyCode::Char('r'),
            "Re-sampling a token (a branch) needs the model's logits",
        ),
        (
            KeyCode::Char('c'),
            "Continuing a reply from its tokens needs the model's logits",
        ),
        (
            KeyCode::Char('t'),
            "What-if re-sampling needs the model's whole distribution",
        ),
        (
            KeyCode::Char('K'),
            "What-if re-sampling needs the model's whole distribution",
        ),
    ] {
        let mut h = remote_paris_at(3);
        let (sent, effects) = (h.host.generates.len(), h.effects.len());
        h.key(key);
        let notice =
            h.s.view
                .notice
                .as_ref()
                .map(|n| n.text.clone())
                .unwrap_or_default();
        assert!(notice.starts_with(says), "{key:?}: {notice}");
        if !says.starts_with("What-if") {
            assert!(notice.contains("http://gpu-box:8080"), "{notice}");
        }
        assert_eq!(h.effects.len(), effects, "{key:?}: nothing started");
        assert_eq!(h.host.generates.len(), sent);
        assert_eq!(h.s.view.focus, Focus::Navigate, "{key:?}: no chooser");
        assert!(
            h.s.view.chooser.is_none() && h.s.model.whatif.is_none(),
            "{key:?}"
        );
        assert_eq!(
            h.s.msg(1).unwrap().content,
            "The capital of France is Paris."
        );
        // The status line says why.
        assert!(h.screen().contains(&says[..30]), "{key:?}: {}", h.screen());
    }
    // The same keys on a local model act (r re-samples: a request goes out).
    let mut h = paris_at(3);
    let sent = h.host.generates.len();
    h.key(KeyCode::Char('r'));
    assert_eq!(h.host.generates.len(), sent + 1);
    // A remote reply reopened under a local model (no learned vocabulary):
    // its trace, top candidates without an entropy, still refuses what-if.
    let mut h = paris_at(3);
    for st in &mut h.s.msg_mut(1).unwrap().steps {
        if let Some(d) = &mut st.dist {
            d.entropy = None;
        }
    }
    h.key(KeyCode::Char('t'));
    let notice =
        h.s.view
            .notice
            .as_ref()
            .map(|n| n.text.clone())
            .unwrap_or_default();
    assert!(notice.starts_with("What-if re-sampling needs"), "{notice}");
    assert!(h.s.model.whatif.is_none());
}

/// The status bar's context count during a remote reply: `?` until the
/// server counts the prompt (never 0, never the last reply's count), then
/// its count plus the tokens so far; `?` again after a reply whose prompt
/// the server did not count.
#[test]
fn a_remote_reply_shows_the_servers_context_count_or_a_question_mark() {
    let status = |h: &H| h.screen().lines().last().unwrap_or_default().to_string();
    let mut h = remote_paris_at(0);
    h.key(KeyCode::Esc);
    let after = format!(
        "ctx {}/4096",
        h.s.session.last_stats.as_ref().unwrap().ctx_used
    );
    assert!(status(&h).contains(&after), "{}", status(&h));
    let id = h.ask("And Spain?");
    h.engine(Event::Started {
        request: id,
        mode: crate::engine::ChatMode::Server,
        prompt: Vec::new(),
        prefix: Vec::new(),
        n_reused: 0,
        dropped_messages: 0,
        note: None,
    });
    h.stream(id, &[(" the", 0.9)]);
    assert!(status(&h).contains("ctx ?/4096"), "{}", status(&h));
    h.engine(Event::PromptCounted {
        request: id,
        n_prompt: 60,
        n_reused: 50,
    });
    h.stream(id, &[(".", 0.9)]);
    assert!(status(&h).contains("ctx 62/4096"), "{}", status(&h));
    h.done(id, 2);
    // A server that counted nothing: unknown after the reply too.
    let id = h.ask("And Italy?");
    h.stream(id, &[(" a", 0.9)]);
    let mut stats = super::bench::fake_stats(1, StopReason::Eog);
    (stats.n_prompt, stats.ctx_used) = (0, 0);
    h.engine(Event::Done { request: id, stats });
    assert!(status(&h).contains("ctx ?/4096"), "{}", status(&h));
}

#[test]
fn f7s_third_mode_runs_to_the_next_surprise_and_says_why_it_paused() {
    let mut h = h();
    h.s.config.surprise = SurpriseStop {
        below_p: 0.1,
        above_entropy: 3.0,
    };
    h.key(KeyCode::F(7));
    h.key(KeyCode::F(7));
    assert!(h.s.session.to_surprise);
    let id = h.ask("Hi");
    let req = last_request(&h);
    assert!(!req.paused, "it runs from the start");
    assert_eq!(req.stop_at_surprise, Some(h.s.config.surprise));
    h.started(id);
    h.stream(id, &[(" the", 0.9)]);
    assert!(
        h.screen().contains("to next surprise 1 tok"),
        "{}",
        h.screen()
    );
    // The engine stops before a surprising draw and says which.
    let paris = fake_id(" Paris");
    h.engine(Event::Paused {
        request: id,
        n_generated: 1,
        next: next(" Paris"),
        surprise: Some(Surprise {
            id: paris,
            p: 0.05,
            entropy: 3.5,
            stop: h.s.config.surprise,
        }),
    });
    assert_eq!(h.s.view.focus, Focus::Choose);
    let notice = &h.s.view.notice.as_ref().expect("a notice").text;
    assert!(
        notice.contains("p 5% < 10%") && notice.contains("entropy 3.50 bits > 3"),
        "{notice}"
    );
    // Shift-→ runs on to the next one; → would draw one token.
    h.key_mod(KeyCode::Right, KeyModifiers::SHIFT);
    assert_eq!(steers(&h), [Steer::RunToSurprise(h.s.config.surprise)]);
    // A step-mode pause can run to the next surprise too.
    h.stream(id, &[(" Paris", 0.05)]);
    paused(&mut h, id, ".");
    h.key_mod(KeyCode::Right, KeyModifiers::SHIFT);
    assert_eq!(steers(&h).len(), 2);
    // Off: a running reply runs freely.
    h.key(KeyCode::F(7));
    assert_eq!(steers(&h).last(), Some(&Steer::Run));
}

#[test]
fn n_and_shift_n_jump_between_surprising_tokens() {
    let mut h = h();
    h.s.config.surprise = SurpriseStop {
        below_p: 0.1,
        above_entropy: 99.0,
    };
    h.exchange(
        "q",
        &[
            (" the", 0.9),
            (" a", 0.05),
            (" time", 0.8),
            (" model", 0.02),
            (" is", 0.7),
        ],
    );
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 0 });
    h.key(KeyCode::Char('n'));
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 1 }));
    h.key(KeyCode::Char('n'));
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 3 }));
    h.key(KeyCode::Char('n'));
    assert_eq!(
        h.s.view.cursor,
        Some(TokenRef { msg: 1, step: 3 }),
        "none after"
    );
    assert!(
        h.s.view
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("No surprising token after")
    );
    h.key(KeyCode::Char('N'));
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 1 }));
    // By entropy: every token here is drawn from more than 0.2 bits.
    h.s.config.surprise.above_entropy = 0.2;
    h.key(KeyCode::Char('n'));
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 2 }));
}

#[test]
fn the_settings_form_sets_what_a_surprise_is_and_refuses_nonsense() {
    use super::state::popup::{parse_settings, settings_form};
    let base = crate::engine::SamplingParams::default();
    let mut f = settings_form(&base, 64, SurpriseStop::default());
    fn field<'a>(f: &'a mut super::state::SettingsForm, label: &str) -> &'a mut String {
        let i = f.fields.iter().position(|x| x.label == label).unwrap();
        &mut f.fields[i].value
    }
    *field(&mut f, "surprise_p") = "0.25".into();
    *field(&mut f, "surprise_bits") = "4".into();
    let v = parse_settings(&f, &base).unwrap();
    assert_eq!(
        v.surprise,
        SurpriseStop {
            below_p: 0.25,
            above_entropy: 4.0
        }
    );
    *field(&mut f, "surprise_p") = "1.5".into();
    let e = parse_settings(&f, &base).unwrap_err();
    assert!(e.contains("surprise_p") && e.contains("from 0 to 1"), "{e}");
    *field(&mut f, "surprise_p") = "x".into();
    assert!(
        parse_settings(&f, &base)
            .unwrap_err()
            .contains("not a number")
    );
}
