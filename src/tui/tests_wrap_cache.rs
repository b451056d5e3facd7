//! The wrapped chat is kept turn by turn ([`super::state::ChatView`]: a
//! streamed token is appended to its turn's lines, a changed turn is wrapped
//! again, the others are kept): after every kind of change it must equal the
//! whole chat wrapped afresh ([`super::state::State::wrapped`]).

use crossterm::event::{Event as TermEvent, KeyCode};

use super::Msg;
use super::bench::{fake_stats, fake_step};
use super::state::ChatView;
use super::tests::{H, PARIS};
use crate::engine::{Event, StopReason};

/// Every line of every block, with each cell's text, tag and token span.
fn lines(v: &ChatView) -> Vec<Vec<Vec<super::wrap::Cell>>> {
    v.blocks.iter().map(|b| b.lines.clone()).collect()
}

#[track_caller]
fn same_as_fresh(h: &H, after: &str) {
    let fresh = h.s.wrapped();
    assert_eq!(h.s.view.chat.width, fresh.width, "width after {after}");
    assert_eq!(h.s.view.chat.has_system, fresh.has_system, "after {after}");
    let (kept, fresh) = (lines(&h.s.view.chat), lines(&fresh));
    assert_eq!(kept.len(), fresh.len(), "turns after {after}");
    for (i, (k, f)) in kept.iter().zip(&fresh).enumerate() {
        assert_eq!(k, f, "turn {i} after {after}");
    }
}

/// Tokens that test the wrap: words, line breaks, a line longer than the
/// pane, wide characters, marks and joiners written as tokens of their own.
const TRICKY: &[(&str, f32)] = &[
    ("Hello", 0.9),
    (",", 0.8),
    (" a fairly long line of words that wraps\n", 0.3),
    (" 中文", 0.5),
    ("巴黎", 0.4),
    ("是", 0.6),
    (" cafe", 0.7),
    ("\u{301}", 0.2),
    (" ", 0.5),
    ("👩", 0.5),
    ("\u{200d}", 0.5),
    ("👧", 0.5),
    (" word\n", 0.6),
    ("\n", 0.5),
    (" nai", 0.5),
    ("\u{308}", 0.5),
    ("ve ", 0.5),
    (" end", 0.5),
];

#[test]
fn the_kept_lines_equal_a_fresh_wrap_after_every_change() {
    let mut h = H::new(60, 30).loaded("gemma-3-270m-it", "Q8_0");
    same_as_fresh(&h, "loading");

    // Appends: each streamed token, then a tail and the end.
    let id = h.ask("What is the capital of France? Say it in a few languages.");
    same_as_fresh(&h, "sending");
    h.started(id);
    same_as_fresh(&h, "the prompt's tokens");
    for (i, (text, p)) in TRICKY.iter().enumerate() {
        h.engine(Event::Token {
            request: id,
            step: Box::new(fake_step(i, text, *p, 8)),
        });
        same_as_fresh(&h, &format!("token {i} {text:?}"));
    }
    h.engine(Event::Tail {
        request: id,
        text: "\u{fffd}".into(),
    });
    same_as_fresh(&h, "a tail");
    h.engine(Event::Done {
        request: id,
        stats: fake_stats(TRICKY.len(), StopReason::Eog),
    });
    same_as_fresh(&h, "the reply's end");
    h.exchange("And of Spain?", PARIS);
    same_as_fresh(&h, "a second exchange");

    // Resizes: narrower, wider, the height only, a tiny pane.
    for (w, ht) in [(41, 30), (120, 30), (120, 50), (12, 8), (80, 24)] {
        h.send(Msg::Input(TermEvent::Resize(w, ht)));
        same_as_fresh(&h, &format!("a resize to {w}x{ht}"));
    }

    // Branching at a token of the first reply, streaming the branch.
    h.key(KeyCode::Tab);
    h.key(KeyCode::Home);
    for _ in 0..3 {
        h.key(KeyCode::Right);
    }
    h.key(KeyCode::Enter);
    h.key(KeyCode::Down);
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("‹ 2/2 ›"), "{}", h.screen());
    same_as_fresh(&h, "a branch");
    let id = h.host.next;
    h.started(id);
    h.stream(id, &[(" the", 0.3), (" 中文", 0.3), (".", 0.3)]);
    same_as_fresh(&h, "the branch streaming");
    h.done(id, 3);
    same_as_fresh(&h, "the branch's end");

    // Versions: back to the first reply and forth.
    h.key(KeyCode::Char('['));
    same_as_fresh(&h, "the previous version");
    h.key(KeyCode::Char(']'));
    same_as_fresh(&h, "the next version");

    // Regenerating the last reply (a new version at the end).
    h.key(KeyCode::Esc);
    let versions = |h: &H| {
        h.s.session
            .conv
            .sibling_pos(*h.s.view.path.last().unwrap())
            .1
    };
    let before = versions(&h);
    h.key(KeyCode::F(8));
    let id = h.host.next;
    h.started(id);
    same_as_fresh(&h, "a regeneration starting");
    h.stream(id, &PARIS[..3]);
    h.done(id, 3);
    assert_eq!(versions(&h), before + 1, "{}", h.screen());
    same_as_fresh(&h, "a regeneration");

    // A new chat.
    h.ctrl('n');
    same_as_fresh(&h, "a new chat");
}

/// The check itself must catch a turn whose kept lines are stale.
#[test]
fn a_stale_turn_is_caught() {
    let mut h = H::new(60, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("Hi", PARIS);
    same_as_fresh(&h, "an exchange");
    let last = h.s.view.path.len() - 1;
    h.s.session
        .conv
        .node_mut(h.s.view.path[last])
        .push_step(fake_step(7, " end", 0.5, 8));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        same_as_fresh(&h, "a token added behind the view's back")
    }));
    assert!(caught.is_err(), "a stale turn went unnoticed");
}
