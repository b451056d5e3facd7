//! Update-logic tests of the layer lens in the chat: what it asks the
//! engine (the exact ids the reply was generated from, the position before
//! the token), the grid it draws from the answer, the attention view's heat
//! on the chat, moving token by token, and refusals.

use crossterm::event::KeyCode;
use ratatui::style::Color;

use super::state::{Popup, TokenRef};
use super::tests::{H, find};
use crate::engine::{AttentionLayer, Event, LensCandidate, LensResult, LensRow};

fn row(layer: u32, top: &[(i32, f32)]) -> LensRow {
    LensRow {
        layer,
        top: top
            .iter()
            .map(|&(id, p)| LensCandidate {
                id,
                logit: p.ln(),
                p,
            })
            .collect(),
        entropy: 1.0,
    }
}

/// A chat with one reply; the token cursor on its third token; `l` pressed.
pub(super) fn lensed() -> H {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange(
        "q",
        &[(" the", 0.9), (" a", 0.5), (" time", 0.8), (" model", 0.4)],
    );
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 2 });
    h.key(KeyCode::Char('l'));
    h
}

/// The engine answers the lens of [`lensed`]: layer 0 guesses ' the',
/// ' time' tops layer 1 and stays; one attention layer (2) whose mean puts
/// 60% on the reply's second token and 40% on its first.
pub(super) fn answer(h: &mut H) {
    let (id, req) = h.host.lenses.last().cloned().unwrap();
    let time = h.s.msg(1).unwrap().steps[2].id;
    let the = h.s.msg(1).unwrap().steps[0].id;
    let n = req.position + 1;
    let mut mean = vec![0.0; n];
    mean[n - 1] = 0.6; // the reply's second token (' a')
    mean[42] = 0.4; // its first (' the')
    let result = LensResult {
        position: req.position,
        layers: vec![
            row(0, &[(the, 0.5), (time, 0.2)]),
            row(1, &[(time, 0.6), (the, 0.1)]),
            row(2, &[(time, 0.8), (the, 0.1)]),
        ],
        model: row(3, &[(time, 0.8), (the, 0.1)]),
        attention: vec![AttentionLayer {
            layer: 2,
            heads: vec![mean.clone(), mean.clone()],
            mean,
        }],
        n_evaluated: n,
        n_reused: 0,
        decode_ms: 1.0,
        head_ms: 1.0,
    };
    h.engine(Event::Lens {
        request: id,
        result: Box::new(result),
    });
    h.engine(Event::Done {
        request: id,
        stats: super::bench::fake_stats(0, crate::engine::StopReason::Eog),
    });
}

#[test]
fn l_asks_the_lens_of_the_position_before_the_token_in_the_exact_ids() {
    let h = lensed();
    let (_, req) = h.host.lenses.last().expect("a lens asked for");
    // The prompt as the engine built it (42 ids), then the reply's ids.
    let reply: Vec<i32> = h.s.msg(1).unwrap().steps.iter().map(|s| s.id).collect();
    assert_eq!(req.tokens.len(), 42 + reply.len());
    assert_eq!(&req.tokens[42..], reply.as_slice());
    assert_eq!(req.position, 42 + 2 - 1, "the prediction of reply token 3");
    assert!(req.attention);
    assert!(h.screen().contains("Running the model layer by layer"));
}

#[test]
fn the_grid_marks_where_the_top_1_appears_and_settles_and_the_attention_heats_the_chat() {
    let mut h = lensed();
    answer(&mut h);
    let screen = h.screen();
    assert!(
        screen.contains("top-1 first at layer 1") && screen.contains("from layer 1 (of 3 layers)"),
        "{screen}"
    );
    assert!(
        screen.contains("L0") && screen.contains("model"),
        "{screen}"
    );
    // The attention view: the chat's ' a' (60%) is hottest, ' the' (40%)
    // next; ' model', after the position, is not in the context.
    h.key(KeyCode::Char('a'));
    let b = h.buffer();
    let screen = h.screen();
    assert!(screen.contains("attention · L2 of 3 layers"), "{screen}");
    let (x, y) = find(&b, " the a time model").unwrap_or_else(|| panic!("{screen}"));
    let red = Color::Indexed(crate::heat::HEAT_PALETTE[4]);
    assert_eq!(b[(x + 5, y)].fg, red, "' a' is attended most");
    assert_eq!(b[(x + 1, y)].fg, red, "' the': 40% is in the top band too");
    assert_ne!(b[(x + 13, y)].fg, red, "' model' comes after the position");
    // h: one head, then the next, then the mean again.
    h.key(KeyCode::Char('h'));
    assert!(h.screen().contains("head 1 of 2"));
    // Esc closes.
    h.key(KeyCode::Esc);
    assert!(h.s.view.popup.is_none());
}

/// The grid and the attention view name a layer the same way: 0-based
/// `L<l>` of the lens's layer count. The fixture has 3 layers and one
/// attention layer (layer 2), so a title counting the attention list
/// ("layer 2/0") or from 1 ("layer 3") would disagree with the grid's L2.
#[test]
fn the_attention_view_names_its_layer_as_the_grid_does() {
    let mut h = lensed();
    answer(&mut h);
    let grid = h.screen();
    assert!(
        grid.contains("L2 ") && grid.contains("(of 3 layers)"),
        "{grid}"
    );
    h.key(KeyCode::Char('a'));
    let screen = h.screen();
    assert!(screen.contains("attention · L2 of 3 layers ·"), "{screen}");
    assert!(!screen.contains("layer 2/"), "{screen}");
    // In Chinese too: the same L2 and the same count.
    let zh = crate::i18n::with_lang(crate::i18n::Lang::Zh, || h.screen());
    assert!(zh.contains("注意力 · L2（共 3 层）"), "{zh}");
}

#[test]
fn arrows_move_the_lens_to_the_next_token_and_the_first_has_nothing_before_it_to_lens() {
    let mut h = lensed();
    h.key(KeyCode::Right);
    let (_, req) = h.host.lenses.last().unwrap();
    assert_eq!(req.position, 42 + 3 - 1);
    // Past the reply's last token (it ended): nothing more.
    h.key(KeyCode::Right);
    h.key(KeyCode::Right);
    assert_eq!(h.host.lenses.len(), 2);
    let Some(Popup::Lens(l)) = &h.s.view.popup else {
        panic!("the lens is open");
    };
    assert_eq!(l.at, TokenRef { msg: 1, step: 3 });
}

#[test]
fn a_remote_model_is_refused_in_words() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("q", &[(" the", 0.9), (" a", 0.5)]);
    if let Some(c) = h.s.model.caps.as_mut() {
        c.remote = Some("http://127.0.0.1:1".into());
    }
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('l'));
    assert!(h.host.lenses.is_empty());
    let screen = h.screen();
    assert!(screen.contains("remote"), "{screen}");
}

/// Step mode: a reply paused after two tokens, its next one undecided.
pub(super) fn paused_after_two() -> (H, crate::engine::RequestId) {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.key(KeyCode::F(7));
    let id = h.ask("q");
    h.started(id);
    h.stream(id, &[(" the", 0.9), (" a", 0.5)]);
    h.engine(Event::Paused {
        request: id,
        surprise: None,
        n_generated: 2,
        next: super::bench::fake_step(2, " time", 0.8, 8).dist,
    });
    (h, id)
}

#[test]
fn l_at_a_paused_step_lenses_the_undecided_next_token_in_the_pause() {
    let (mut h, id) = paused_after_two();
    assert_eq!(h.s.view.focus, super::state::Focus::Choose);
    h.key(KeyCode::Char('l'));
    let (_, req) = h.host.lenses.last().expect("a lens asked for in the pause");
    let reply: Vec<i32> = h.s.msg(1).unwrap().steps.iter().map(|s| s.id).collect();
    assert_eq!(req.tokens.len(), 42 + 2);
    assert_eq!(&req.tokens[42..], reply.as_slice());
    assert_eq!(
        req.position,
        42 + 2 - 1,
        "the prediction after the context's last token"
    );
    let screen = h.screen();
    assert!(
        screen.contains("layer lens · the next token (reply token 3"),
        "{screen}"
    );
    // The reply was not told anything: it stays paused.
    assert!(h.host.steers.is_empty());
    assert!(h.host.cancels.iter().all(|r| *r != id));
    // ← goes back to the reply's last token, → to the next one again, and no further.
    h.key(KeyCode::Left);
    assert_eq!(h.host.lenses.last().unwrap().1.position, 42 + 1 - 1);
    h.key(KeyCode::Right);
    h.key(KeyCode::Right);
    assert_eq!(h.host.lenses.len(), 3);
    assert_eq!(h.host.lenses.last().unwrap().1.position, 42 + 2 - 1);
    // Esc closes the lens; the chooser is still there, paused.
    h.key(KeyCode::Esc);
    assert!(h.s.view.popup.is_none());
    assert_eq!(h.s.view.focus, super::state::Focus::Choose);
}

#[test]
fn typed_on_l_is_text_to_force_and_a_running_reply_refuses_the_lens() {
    let (mut h, id) = paused_after_two();
    h.type_str("ol");
    assert!(h.host.lenses.is_empty());
    assert_eq!(h.s.view.chooser.as_ref().unwrap().text, "ol");
    // Drawn on: the reply runs, the token cursor's l is refused in words.
    h.key(KeyCode::Esc);
    h.key(KeyCode::Right);
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 1 });
    h.key(KeyCode::Char('l'));
    assert!(h.host.lenses.is_empty());
    let screen = h.screen();
    assert!(screen.contains("A reply is under way"), "{screen}");
    // Paused again: the token cursor's l is served in the pause.
    h.key(KeyCode::Esc);
    h.stream(id, &[(" time", 0.8)]);
    h.engine(Event::Paused {
        request: id,
        surprise: None,
        n_generated: 3,
        next: super::bench::fake_step(3, ",", 0.8, 8).dist,
    });
    // (The token cursor stays where the user left it.)
    assert_eq!(h.s.view.focus, super::state::Focus::Navigate);
    h.key(KeyCode::Char('l'));
    assert_eq!(h.host.lenses.last().expect("served").1.position, 42);
}

/// The lens's model row is this pass's numbers; where the reply drew its
/// token from another p (computed token by token), the popup shows both.
#[test]
fn a_model_row_that_differs_from_the_replys_own_p_says_so_with_both_numbers() {
    let mut h = lensed();
    answer(&mut h);
    assert!(
        !h.screen().contains("The reply drew from"),
        "equal numbers: no note\n{}",
        h.screen()
    );
    if let Some(crate::tui::state::Popup::Lens(l)) = h.s.view.popup.as_mut() {
        l.result.as_mut().expect("answered").model.top[0].p = 0.83;
    } else {
        panic!("the lens is open");
    }
    let screen = h.screen();
    assert!(
        screen.contains("The reply drew from 80.00% for ' time'"),
        "{screen}"
    );
    assert!(screen.contains("83.00%"), "{screen}");
}
