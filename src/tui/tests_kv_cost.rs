//! Update-logic tests of the KV-cache view (`w` in the token cursor): what
//! it asks the engine, the chart and totals it draws from scripted
//! `KvStep` events, Esc cancelling then closing, and refusals.

use crossterm::event::KeyCode;

use super::state::{Popup, TokenRef};
use super::tests::H;
use crate::engine::{Event, KvRun, RequestId, Role, StopReason};

/// A chat with one reply; the token cursor on it; `w` pressed.
fn opened() -> (H, RequestId) {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("q", &[(" the", 0.9), (" a", 0.5), (" time", 0.8)]);
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 1 });
    h.key(KeyCode::Char('w'));
    let id = h.host.kv_costs.last().expect("the runs asked for").0;
    (h, id)
}

fn step(id: RequestId, run: KvRun, index: usize, ms: f64) -> Event {
    Event::KvStep {
        request: id,
        run,
        index,
        position: 42 + index,
        id: 7 + index as i32,
        seconds: ms / 1e3,
    }
}

#[test]
fn w_asks_for_the_reply_s_context_and_streams_both_runs_into_the_chart_and_totals() {
    let (mut h, id) = opened();
    let (_, req) = h.host.kv_costs.last().unwrap();
    // The messages the reply answered: the user's question last.
    let last = req.messages.last().expect("messages");
    assert_eq!((last.role, last.content.as_str()), (Role::User, "q"));
    assert!(req.max_tokens >= 1 && req.max_tokens <= crate::engine::KV_COST_MAX_TOKENS);
    assert!(h.screen().contains("generating with the KV cache"));
    for i in 0..4 {
        h.engine(step(id, KvRun::Cached, i, if i == 0 { 50.0 } else { 10.0 }));
    }
    let screen = h.screen();
    assert!(screen.contains("with the KV cache: 4 tokens"), "{screen}");
    assert!(screen.contains("then 10.0 ms per token"), "{screen}");
    assert!(screen.contains("with KV cache"), "the legend:\n{screen}");
    for i in 0..4 {
        h.engine(step(id, KvRun::Recomputed, i, 50.0 + 20.0 * i as f64));
    }
    assert!(h.screen().contains("generating again without it"));
    h.engine(Event::Done {
        request: id,
        stats: super::bench::fake_stats(4, StopReason::MaxTokens),
    });
    let screen = h.screen();
    // 0.08 s with, 0.32 s without: 4.0×.
    assert!(
        screen.contains("totals: 0.08 s with the KV cache, 0.32 s without")
            && screen.contains("4.0× faster")
            && screen.contains("both runs wrote the same tokens"),
        "{screen}"
    );
    assert!(screen.contains("without (recomputed)"), "{screen}");
    assert!(screen.contains("the reply to message 2"), "{screen}");
    // The legend names the series in their colours.
    let b = h.buffer();
    let (x, y) = super::tests::find(&b, "with KV cache").expect("the legend");
    assert_eq!(b[(x, y)].fg, ratatui::style::Color::Green);
    let (x, y) = super::tests::find(&b, "without (recomputed)").expect("the legend");
    assert_eq!(b[(x, y)].fg, ratatui::style::Color::Red);
    // Done: Esc closes without a cancel.
    h.key(KeyCode::Esc);
    assert!(h.s.view.popup.is_none());
    assert!(h.host.cancels.is_empty());
}

#[test]
fn esc_cancels_the_runs_under_way_then_closes() {
    let (mut h, id) = opened();
    h.engine(step(id, KvRun::Cached, 0, 50.0));
    h.key(KeyCode::Esc);
    assert_eq!(h.host.cancels, vec![id]);
    assert!(matches!(h.s.view.popup, Some(Popup::KvCost(_))));
    h.engine(Event::Cancelled {
        request: id,
        stats: None,
    });
    assert!(h.screen().contains("cancelled (Esc closes)"));
    h.key(KeyCode::Esc);
    assert!(h.s.view.popup.is_none());
    assert_eq!(h.host.cancels, vec![id], "one cancel");
}

#[test]
fn a_reply_under_way_and_a_remote_model_are_refused_in_words() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("q", &[(" the", 0.9), (" a", 0.5)]);
    let id = h.ask("more");
    h.started(id);
    h.stream(id, &[(" a", 0.5)]);
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 0 });
    h.key(KeyCode::Char('w'));
    assert!(h.host.kv_costs.is_empty());
    let screen = h.screen();
    assert!(screen.contains("A reply is under way"), "{screen}");
    h.key(KeyCode::Esc);
    h.done(id, 1);
    if let Some(c) = h.s.model.caps.as_mut() {
        c.remote = Some("http://127.0.0.1:1".into());
    }
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 0 });
    h.key(KeyCode::Char('w'));
    assert!(h.host.kv_costs.is_empty());
    let screen = h.screen();
    assert!(screen.contains("remote server"), "{screen}");
}

#[test]
fn the_kv_cache_view_in_chinese_fits_80_columns_with_its_runs_aligned() {
    crate::i18n::with_lang(crate::i18n::Lang::Zh, || {
        let mut h = H::new(80, 30).loaded("qwen2.5-0.5b-instruct", "Q4_K_M");
        h.exchange("法国的首都是哪里？", &[("巴黎", 0.9), ("。", 0.8)]);
        h.key(KeyCode::Tab);
        h.s.view.cursor = Some(TokenRef { msg: 1, step: 1 });
        h.key(KeyCode::Char('w'));
        let id = h.host.kv_costs.last().expect("the runs asked for").0;
        assert!(h.screen().contains("正在使用 KV 缓存生成…（Esc 取消）"));
        for i in 0..4 {
            h.engine(step(id, KvRun::Cached, i, if i == 0 { 50.0 } else { 10.0 }));
        }
        for i in 0..4 {
            h.engine(step(id, KvRun::Recomputed, i, 50.0 + 20.0 * i as f64));
        }
        h.engine(Event::Done {
            request: id,
            stats: super::bench::fake_stats(4, StopReason::MaxTokens),
        });
        let screen = h.screen();
        for line in screen.lines() {
            assert!(crate::text::str_width(line) <= 80, "{line:?}");
        }
        for zh in [
            "KV 缓存省下多少 · 第 2 条消息的回复 · Esc 关闭",
            "合计：使用 KV 缓存 0.08 s，不用 0.32 s · 速度为不用缓存时的 4.0 倍",
            "两次运行写出的词元相同",
            "每词元 ms",
            "不用缓存（重新计算）",
        ] {
            assert!(screen.contains(zh), "{zh:?} in\n{screen}");
        }
        for en in ["totals", "tokens", "without", "per token", "position"] {
            assert!(!screen.contains(en), "{en:?} left in English:\n{screen}");
        }
        // The two runs' numbers start in one column: the labels are padded
        // by display width (a Chinese character is two columns).
        let column = |label: &str| {
            let line = screen
                .lines()
                .find(|l| l.contains(label))
                .unwrap_or_else(|| panic!("{label} in\n{screen}"));
            let at = line.find("4 词元").expect("the run's count");
            crate::text::str_width(&line[..at])
        };
        assert_eq!(column("使用 KV 缓存："), column("不用缓存："), "{screen}");
        insta::assert_snapshot!("kv_cost_zh", screen);
    });
}

/// The view at `w`×`h` with both runs' 4 tokens streamed, not done yet.
fn streamed(w: u16, h: u16) -> (H, RequestId) {
    let mut h = H::new(w, h).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("q", &[(" the", 0.9), (" a", 0.5), (" time", 0.8)]);
    h.key(KeyCode::Tab);
    h.s.view.cursor = Some(TokenRef { msg: 1, step: 1 });
    h.key(KeyCode::Char('w'));
    let id = h.host.kv_costs.last().expect("the runs asked for").0;
    for i in 0..4 {
        h.engine(step(id, KvRun::Cached, i, if i == 0 { 50.0 } else { 10.0 }));
    }
    for i in 0..4 {
        h.engine(step(id, KvRun::Recomputed, i, 50.0 + 20.0 * i as f64));
    }
    (h, id)
}

/// At 80×24 and at 50 columns the chart still says which series is which
/// (ratatui's legend box was hidden there) and its unit sits on its own row,
/// not on the plot's first row beside the axis's top label.
#[test]
fn a_small_chart_names_its_series_and_its_unit_stays_off_the_plot() {
    for (w, rows) in [(80, 24), (50, 24), (64, 32)] {
        let (h, _) = streamed(w, rows);
        let b = h.buffer();
        let screen = h.screen();
        for (name, colour) in [
            ("with KV cache", ratatui::style::Color::Green),
            ("without (recomputed)", ratatui::style::Color::Red),
        ] {
            let (x, y) = super::tests::find(&b, name)
                .unwrap_or_else(|| panic!("{w}x{rows}: no {name:?}:\n{screen}"));
            assert_eq!(b[(x, y)].fg, colour, "{w}x{rows}: {name}");
        }
        let unit = screen
            .lines()
            .find(|l| l.contains("ms per token"))
            .unwrap_or_else(|| panic!("{w}x{rows}: no unit:\n{screen}"));
        // Only the popup's two borders on the unit's row: no axis beside it.
        assert_eq!(
            unit.matches('│').count(),
            2,
            "{w}x{rows}: {unit:?}\n{screen}"
        );
        // The axis's top label is on a row of its own below it.
        let at = screen.lines().position(|l| l == unit).unwrap_or(0);
        let axis = screen
            .lines()
            .position(|l| l.matches('│').count() == 3)
            .unwrap_or_else(|| panic!("{w}x{rows}: no y axis:\n{screen}"));
        assert!(axis > at, "{w}x{rows}:\n{screen}");
    }
}

/// While the runs go the engine is busy: the status bar says so (it said
/// idle), with the tokens timed so far; once done, idle again.
#[test]
fn the_status_bar_says_the_kv_runs_are_going() {
    let (mut h, id) = streamed(120, 40);
    let status = |h: &H| h.screen().lines().last().unwrap_or("").to_owned();
    let going = status(&h);
    assert!(
        going.contains("● KV runs · with cache 4 tok · without 4 tok") && !going.contains("idle"),
        "{going}"
    );
    let zh = crate::i18n::with_lang(crate::i18n::Lang::Zh, || status(&h));
    assert!(zh.contains("KV 计时") && !zh.contains("空闲"), "{zh}");
    // Esc cancels: stopping until the engine's Done, then idle.
    h.key(KeyCode::Esc);
    let stopping = status(&h);
    assert!(stopping.contains("● stopping the KV runs…"), "{stopping}");
    h.engine(Event::Done {
        request: id,
        stats: super::bench::fake_stats(4, StopReason::MaxTokens),
    });
    // Then the prompt scoring the reply left, and the engine is idle.
    assert!(
        status(&h).contains("● scoring the prompt…"),
        "{}",
        status(&h)
    );
    h.prompt_scored();
    assert!(status(&h).contains("○ idle"), "{}", status(&h));
}
