//! Update-logic tests of the rollouts popup: what `o` asks the engine (the
//! exact ids before the token, the reply's sampling and seed, the
//! inspector's candidates), the rows it draws from the answer (coloured by
//! p), keeping one as a branch (its tokens and traces, nothing generated),
//! continuing that branch, cancelling, and refusals.

use crossterm::event::{KeyCode, KeyModifiers};
use ratatui::style::Color;

use super::bench::{fake_id, fake_stats, fake_step};
use super::rollouts_view::{ROLLOUT_M, ROLLOUT_N};
use super::state::{Focus, Popup, TokenRef};
use super::tests::{H, find};
use crate::engine::{
    Event, ReplyPrefix, RequestId, Rollout, RolloutRequest, RolloutToken, StopReason,
};

/// A chat with one reply; the token cursor on its third token; `o` pressed.
fn rolled() -> H {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange(
        "q",
        &[(" the", 0.9), (" a", 0.5), (" time", 0.8), (" model", 0.4)],
    );
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 2 });
    h.key(KeyCode::Char('o'));
    h
}

fn asked(h: &H) -> (RequestId, RolloutRequest) {
    h.host.rollouts.last().cloned().expect("rollouts asked for")
}

/// A rollout of rank `rank` from the fake vocabulary, each token with the
/// trace a reply's step has (its distribution, its p).
fn rollout(rank: usize, words: &[(&str, f32)]) -> Rollout {
    let tokens: Vec<RolloutToken> = words
        .iter()
        .enumerate()
        .map(|(i, &(w, p))| {
            let st = fake_step(i, w, p, 8);
            RolloutToken {
                id: fake_id(w),
                text: w.to_string(),
                p,
                logit: st.logit.unwrap(),
                p_sampled: (i > 0).then_some(1.0),
                dist: st.dist,
            }
        })
        .collect();
    let log_likelihood = words.iter().map(|(_, p)| f64::from(*p).ln()).sum();
    let mean_p = words.iter().map(|(_, p)| f64::from(*p)).sum::<f64>() / words.len() as f64;
    Rollout {
        rank,
        tokens,
        log_likelihood,
        mean_p,
    }
}

/// `rolled()` answered: three rollouts, then Done.
fn answered() -> (H, Vec<Rollout>) {
    let mut h = rolled();
    let (id, _) = asked(&h);
    let rs = vec![
        rollout(1, &[(" time", 0.8), (" there", 0.9), (" was", 0.95)]),
        rollout(
            2,
            &[(" model", 0.1), (" predicted", 0.3), (" tokens", 0.05)],
        ),
        rollout(3, &[(" word", 0.05), (".", 0.6)]),
    ];
    h.engine(Event::Rollouts {
        request: id,
        rollouts: rs.clone(),
    });
    h.engine(Event::Done {
        request: id,
        stats: fake_stats(8, StopReason::MaxTokens),
    });
    (h, rs)
}

#[test]
fn o_asks_rollouts_of_the_context_before_the_token_with_the_replys_sampling() {
    let h = rolled();
    let (_, req) = asked(&h);
    let m = h.s.msg(1).unwrap();
    let reply: Vec<i32> = m.steps.iter().map(|s| s.id).collect();
    // The prompt as the engine built it (42 ids), then the reply before token 3.
    assert_eq!(req.tokens.len(), 42 + 2);
    assert_eq!(&req.tokens[42..], &reply[..2]);
    assert_eq!((req.n, req.m), (ROLLOUT_N, ROLLOUT_M));
    assert_eq!(req.top_k_inspect, crate::engine::MAX_CANDIDATES);
    let own = m.sampling.clone().expect("the reply's settings");
    assert_eq!(req.sampling.temperature, own.temperature);
    assert_eq!(Some(req.sampling.seed), m.seed, "the reply's own seed");
    let screen = h.screen();
    assert!(screen.contains("rolling out…"), "{screen}");
    assert!(screen.contains("' time' (reply token 3)"), "{screen}");
}

#[test]
fn the_rows_show_rank_first_token_p_joint_log_probability_and_heat() {
    let (h, rs) = answered();
    let screen = h.screen();
    assert!(
        screen.contains("#1  80.00% '␣time'") && screen.contains("#3   5.00% '␣word'"),
        "{screen}"
    );
    let ll = format!(
        "ln P {:.2} nats · mean p {:.2}",
        rs[1].log_likelihood, rs[1].mean_p
    );
    assert!(screen.contains(&ll), "{screen}");
    assert!(
        screen.contains("Enter keeps rollout #1 as a branch"),
        "{screen}"
    );
    // The continuation coloured by each token's p, as the chat's heat.
    let b = h.buffer();
    let (x, y) = find(&b, " model predicted tokens").unwrap_or_else(|| panic!("{screen}"));
    let style = |p: f32| {
        crate::tui::theme::heat_style(p, true)
            .fg
            .expect("a heat colour")
    };
    assert_eq!(b[(x + 1, y)].fg, style(0.1));
    assert_eq!(b[(x + 8, y)].fg, style(0.3));
    assert_ne!(style(0.1), style(0.3), "different bands");
    assert_ne!(b[(x + 1, y)].fg, Color::Reset);
}

#[test]
fn enter_keeps_the_selected_rollout_as_a_branch_with_its_traces_and_c_continues_it() {
    let (mut h, rs) = answered();
    let generates = h.host.generates.len();
    let orig: Vec<i32> = h.s.msg(1).unwrap().steps.iter().map(|s| s.id).collect();
    h.key(KeyCode::Down);
    assert!(h.screen().contains("Enter keeps rollout #2"));
    h.key(KeyCode::Enter);
    assert!(h.s.view.popup.is_none());
    assert_eq!(h.host.generates.len(), generates, "nothing generated");
    let m = h.s.msg(1).unwrap();
    let ids: Vec<i32> = m.steps.iter().map(|s| s.id).collect();
    let want: Vec<i32> = orig[..2]
        .iter()
        .copied()
        .chain(rs[1].tokens.iter().map(|t| t.id))
        .collect();
    assert_eq!(ids, want);
    // Each of the rollout's tokens keeps its trace: the distribution, p.
    for (i, t) in rs[1].tokens.iter().enumerate() {
        let st = &m.steps[2 + i];
        assert_eq!(st.index, 2 + i);
        assert_eq!(st.dist, t.dist);
        assert!((st.p().unwrap() - t.p).abs() < 1e-6);
        assert_eq!(st.forced, i == 0, "the candidate is given, the rest drawn");
    }
    assert_eq!(m.content, " the a model predicted tokens");
    let seed = asked(&h).1.sampling.seed;
    assert_eq!(m.seed, Some(seed + 1), "rank 2 drew with seed + 1");
    // A version of the reply: [ shows the one it branched from.
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 2 }));
    assert_eq!(h.s.view.focus, Focus::Navigate);
    let screen = h.screen();
    assert!(screen.contains("version 2 of 2"), "{screen}");
    // c continues the branch from its tokens.
    h.key(KeyCode::Char('c'));
    let req = h.host.generates.last().expect("a continuation");
    assert_eq!(h.host.generates.len(), generates + 1);
    assert_eq!(req.prefix, ReplyPrefix::Tokens(want));
    // [ shows the original again.
    let mut h2 = answered().0;
    h2.key(KeyCode::Enter);
    h2.key(KeyCode::Char('['));
    let back: Vec<i32> = h2.s.msg(1).unwrap().steps.iter().map(|s| s.id).collect();
    assert_eq!(back, orig);
}

#[test]
fn esc_cancels_the_rollouts_in_flight() {
    let mut h = rolled();
    let (id, _) = asked(&h);
    h.key(KeyCode::Esc);
    assert!(h.s.view.popup.is_none());
    assert!(h.host.cancels.contains(&id));
    // A late answer changes nothing.
    h.engine(Event::Rollouts {
        request: id,
        rollouts: vec![rollout(1, &[(" the", 0.5)])],
    });
    assert!(h.s.view.popup.is_none());
}

#[test]
fn a_failure_is_said_in_the_popup() {
    let mut h = rolled();
    let (id, _) = asked(&h);
    h.engine(Event::Failed {
        request: id,
        error: crate::engine::EngineError::InvalidRequest("too long for the context".into()),
    });
    let screen = h.screen();
    assert!(
        screen.contains("No rollouts:") && screen.contains("too long for the context"),
        "{screen}"
    );
}

/// Step mode, paused before the reply's second token (" the" drawn).
fn paused() -> (H, RequestId) {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.key(KeyCode::F(7));
    let id = h.ask("Hi");
    h.started(id);
    h.stream(id, &[(" the", 0.9)]);
    h.engine(Event::Paused {
        request: id,
        surprise: None,
        n_generated: 1,
        next: fake_step(1, " a", 0.5, 8).dist,
    });
    assert_eq!(h.s.view.focus, Focus::Choose);
    (h, id)
}

#[test]
fn ctrl_y_at_a_pause_rolls_out_its_next_step_and_a_rollout_kept_stops_the_reply_there() {
    let (mut h, reply) = paused();
    h.key_mod(KeyCode::Char('y'), KeyModifiers::CONTROL);
    let (id, req) = asked(&h);
    // The context the reply stands at: the prompt and its one token.
    let the = fake_id(" the");
    assert_eq!(req.tokens.len(), 42 + 1);
    assert_eq!(req.tokens[42], the);
    let Some(Popup::Rollouts(r)) = &h.s.view.popup else {
        panic!("the popup is open");
    };
    assert_eq!(r.at, TokenRef { msg: 1, step: 1 }, "the step not drawn yet");
    assert!(h.screen().contains("not drawn yet"));
    // The reply stays paused while the rollouts are served in its pause.
    h.engine(Event::Rollouts {
        request: id,
        rollouts: vec![
            rollout(1, &[(" a", 0.5), (" time", 0.9)]),
            rollout(2, &[(" model", 0.2), (" predicted", 0.7)]),
        ],
    });
    h.engine(Event::Done {
        request: id,
        stats: fake_stats(4, StopReason::MaxTokens),
    });
    assert!(h.s.session.generation.is_some(), "still paused");
    h.key(KeyCode::Down);
    h.key(KeyCode::Enter);
    // The paused reply stops at its token; the branch goes on from it.
    assert!(h.s.session.generation.is_none());
    assert!(h.host.cancels.contains(&reply));
    let ids: Vec<i32> = h.s.msg(1).unwrap().steps.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![the, fake_id(" model"), fake_id(" predicted")]);
    assert!(h.screen().contains("version 2 of 2"));
}

#[test]
fn an_earlier_token_of_a_paused_reply_and_a_remote_model_are_refused_in_words() {
    let (mut h, _) = paused();
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 0 });
    h.key(KeyCode::Char('o'));
    assert!(h.host.rollouts.is_empty());
    let screen = h.screen();
    assert!(
        screen.contains("finish or stop the reply first"),
        "{screen}"
    );

    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("q", &[(" the", 0.9), (" a", 0.5)]);
    if let Some(c) = h.s.model.caps.as_mut() {
        c.remote = Some("http://127.0.0.1:1".into());
    }
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('o'));
    assert!(h.host.rollouts.is_empty());
    let screen = h.screen();
    assert!(screen.contains("remote"), "{screen}");
}

/// Every line of `screen` fits `w` columns (display width).
fn fits(screen: &str, w: usize) {
    for line in screen.lines() {
        assert!(
            crate::text::str_width(line) <= w,
            "wider than {w}: {line:?}"
        );
    }
}

#[test]
fn the_rollouts_popup_in_chinese_fits_80_columns() {
    crate::i18n::with_lang(crate::i18n::Lang::Zh, || {
        let mut h = H::new(80, 30).loaded("qwen2.5-0.5b-instruct", "Q4_K_M");
        h.exchange(
            "法国的首都是哪里？",
            &[("法国", 0.8), ("的", 0.9), ("首都", 0.7), ("是", 0.9)],
        );
        h.key(KeyCode::Tab);
        h.s.view.cursor = Some(TokenRef { msg: 1, step: 2 });
        h.key(KeyCode::Char('o'));
        let screen = h.screen();
        assert!(screen.contains("展开中…"), "{screen}");
        let (id, _) = asked(&h);
        let rs = vec![
            rollout(
                1,
                &[("首都", 0.7), ("是", 0.95), ("巴黎", 0.8), ("。", 0.9)],
            ),
            rollout(
                2,
                &[("城市", 0.1), ("，", 0.3), ("非常", 0.2), ("美丽", 0.4)],
            ),
            rollout(3, &[("光之城", 0.03), ("也", 0.5)]),
        ];
        h.engine(Event::Rollouts {
            request: id,
            rollouts: rs,
        });
        h.engine(Event::Done {
            request: id,
            stats: fake_stats(8, StopReason::MaxTokens),
        });
        let screen = h.screen();
        fits(&screen, 80);
        for zh in [
            "展开 · ",
            "↑↓ 选择 · Enter 分支",
            "排名前 5 的候选",
            "奈特 · 平均 p 0.84 · 4 词元",
            "Enter 把第 1 条展开保留为回复的分支",
        ] {
            assert!(screen.contains(zh), "{zh:?} in\n{screen}");
        }
        for en in [
            "rollouts ·",
            "Each of the top",
            "nats",
            "mean p",
            "Enter keeps",
        ] {
            assert!(!screen.contains(en), "{en:?} left in English:\n{screen}");
        }
        insta::assert_snapshot!("rollouts_zh", screen);
        // Kept as a branch: the notice in Chinese.
        h.key(KeyCode::Enter);
        let screen = h.screen();
        assert!(
            screen.contains("第 1 条展开已保留为回复的第 2 个版本，共 2 个"),
            "{screen}"
        );
    });
}

/// A first token that only begins a character (its text is empty: the
/// character is whole on the token after it) is named by its bytes, and
/// every row's figures start in the same column.
#[test]
fn a_byte_token_rollout_is_named_by_its_bytes_and_the_figures_line_up() {
    let mut h = rolled();
    let (id, _) = asked(&h);
    let mut byte = rollout(2, &[("好", 0.3), ("的", 0.5)]);
    byte.tokens[0].id = super::bench::fake_partial_id();
    byte.tokens[0].text = String::new();
    let rs = vec![rollout(1, &[(" time", 0.8), (" there", 0.9)]), byte];
    h.engine(Event::Rollouts {
        request: id,
        rollouts: rs,
    });
    let screen = h.screen();
    assert!(screen.contains("30.00% '<0xE5><0xA5>'"), "{screen}");
    assert!(!screen.contains('∅'), "{screen}");
    let cols: Vec<usize> = screen
        .lines()
        .filter(|l| l.contains(" #"))
        .filter_map(|l| l.find("ln P").map(|i| crate::text::str_width(&l[..i])))
        .collect();
    assert_eq!(cols.len(), 2, "{screen}");
    assert_eq!(cols[0], cols[1], "{screen}");
}
