//! What the screen says: the status bar on the reply under way, the load
//! notice and the system prompt editor on what the model is given, and where
//! a turn's end-of-turn token is drawn.

use std::time::Duration;

use std::sync::Arc;

use crossterm::event::KeyCode;
use ratatui::style::Modifier;

use super::bench::{fake_loaded, fake_model, fake_stats};
use super::tests::{H, PARIS, buffer_text, find};
use crate::engine::{ChatMode, Event, PromptToken, RequestId, Role, StopReason, TokenId};

/// The status bar's text, as wide as it gets.
fn status(h: &H) -> String {
    let (line, _) = super::components::status::status_line_for(&h.s, 1000);
    line.spans.iter().map(|s| s.content.as_ref()).collect()
}

/// Moves the loop's clock on by `ms` milliseconds.
fn wait(h: &mut H, ms: u64) {
    h.s.session.clock += Duration::from_millis(ms);
}

fn started(h: &mut H, id: RequestId, n_reused: usize) {
    h.engine(Event::Started {
        request: id,
        mode: ChatMode::Template,
        prompt: super::bench::fake_prompt(42),
        prefix: Vec::new(),
        n_reused,
        dropped_messages: 0,
        note: None,
    });
}

#[test]
fn the_status_bar_shows_the_reply_under_way_not_the_last_one() {
    let mut h = H::new(120, 30).loaded("smol", "Q4_1");
    h.exchange("hi", PARIS);
    // The engine's numbers for the reply that ended (fake_stats).
    assert!(
        status(&h).contains("48.3 tok/s · TTFT 85 ms · reused 12"),
        "{}",
        status(&h)
    );

    wait(&mut h, 10_000);
    let id = h.ask("again");
    let st = status(&h);
    assert!(st.contains("… tok/s · TTFT … · reused …"), "{st}");
    assert!(!st.contains("48.3") && !st.contains("85 ms"), "{st}");
    wait(&mut h, 100);
    started(&mut h, id, 40);
    assert!(status(&h).contains("TTFT … · reused 40"), "{}", status(&h));
    // Its first token, 343 ms after the message was sent.
    wait(&mut h, 243);
    h.stream(id, &[("The", 0.9)]);
    let st = status(&h);
    assert!(st.contains("… tok/s · TTFT 343 ms · reused 40"), "{st}");
    // Two more, 100 ms apart: 10 tokens a second.
    for t in [" capital", " of"] {
        wait(&mut h, 100);
        h.stream(id, &[(t, 0.9)]);
    }
    assert!(
        status(&h).contains("10.0 tok/s · TTFT 343 ms"),
        "{}",
        status(&h)
    );
    // It ends: the engine's own numbers.
    h.done(id, 3);
    assert!(status(&h).contains("48.3 tok/s · TTFT 85 ms · reused 12"));
}

#[test]
fn a_reply_stopped_before_its_first_token_has_no_ttft_nor_speed() {
    let mut h = H::new(120, 30).loaded("smol", "Q4_1");
    let id = h.ask("hi");
    started(&mut h, id, 12);
    h.key(KeyCode::Esc);
    h.engine(Event::Cancelled {
        request: id,
        stats: Some(fake_stats(0, StopReason::Cancelled)),
    });
    assert!(h.s.session.generation.is_none());
    let st = status(&h);
    assert!(!st.contains("TTFT") && !st.contains("tok/s"), "{st}");
    assert!(st.contains("│ reused 12 · cancelled"), "{st}");
}

#[test]
fn time_paused_in_step_mode_is_not_time_to_the_first_token() {
    let mut h = H::new(120, 30).loaded("smol", "Q4_1");
    h.key(KeyCode::F(7));
    let id = h.ask("hi");
    started(&mut h, id, 0);
    // Paused before the first token, 100 ms in; the user draws 5 s later,
    // the token comes 50 ms after.
    wait(&mut h, 100);
    h.engine(Event::Paused {
        request: id,
        surprise: None,
        n_generated: 0,
        next: super::bench::fake_step(0, "The", 0.5, 8).dist,
    });
    wait(&mut h, 5000);
    h.key(KeyCode::Right);
    wait(&mut h, 50);
    h.stream(id, &[("The", 0.9)]);
    assert!(status(&h).contains("TTFT 150 ms"), "{}", status(&h));
}

/// Loads `info` and returns the notice the load left.
fn load_notice(h: &mut H, info: crate::engine::ModelInfo) -> String {
    let fx = super::start(&mut h.s, Some(info.model.clone()));
    super::execute(&mut h.s, fx, &mut h.host);
    let id = h.host.next;
    h.engine(fake_loaded(id, info));
    h.s.view
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}

#[test]
fn with_raw_the_load_notice_says_plain_as_the_status_bar_does() {
    let mut h = H::new(120, 30);
    h.s.raw = true;
    let mut info = fake_model("smol", "Q4_1");
    info.default_system = Some("You are a helpful AI assistant named SmolLM".into());
    let notice = load_notice(&mut h, info);
    assert!(
        notice.contains("plain completion (no chat template)"),
        "{notice}"
    );
    assert!(!notice.contains("model's template"), "{notice}");
    // No template: nothing adds a system prompt.
    assert!(!notice.contains("SmolLM\""), "{notice}");
    assert!(status(&h).contains("│ plain"), "{}", status(&h));
}

#[test]
fn the_system_prompt_the_template_adds_is_said_where_none_is_set() {
    let own = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
    let mut h = H::new(100, 30);
    let mut info = fake_model("smol", "Q4_1");
    info.default_system = Some(own.into());
    let notice = load_notice(&mut h, info);
    assert!(notice.contains("chat (model's template)"), "{notice}");
    assert!(
        notice.contains(&format!("its template adds \"{own}\"")),
        "{notice}"
    );
    // The editor says what the model gets with no system prompt of yours.
    h.key(KeyCode::F(6));
    // The popup's text, its borders and line ends left out.
    let screen = h.screen().replace(['\n', '│'], " ");
    let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("No system prompt of yours"), "{screen}");
    assert!(
        flat.contains("the model's chat template adds its own: \"You are a helpful AI"),
        "{screen}"
    );
    assert!(flat.contains("trained by Hugging Face\""), "{screen}");
}

#[test]
fn a_turns_end_is_drawn_at_the_end_of_its_own_message_and_takes_the_cursor() {
    let mut h = H::new(100, 30);
    // The fake vocabulary, with a ChatML template's tokens.
    let mut vocab = (*super::bench::fake_vocab()).clone();
    let mut add = |piece: &str| {
        vocab.pieces.push(piece.as_bytes().to_vec());
        (vocab.pieces.len() - 1) as TokenId
    };
    let [start, user, hi, end, nl, assistant] = [
        "<|im_start|>",
        "user\n",
        "Hi",
        "<|im_end|>",
        "\n",
        "assistant\n",
    ]
    .map(&mut add);
    vocab.eog = vec![end];
    let info = fake_model("smol", "Q4_1");
    let fx = super::start(&mut h.s, Some(info.model.clone()));
    super::execute(&mut h.s, fx, &mut h.host);
    let load = h.host.next;
    h.engine(Event::Loaded {
        request: load,
        slot: 0,
        info: Box::new(info),
        vocab: Arc::new(vocab),
        caps: crate::engine::Capabilities::local(),
    });
    let id = h.ask("Hi");
    // As the engine attributes them: the turn's closing (`<|im_end|>` and the
    // line break) is the user's; the reply's opening is no one's.
    let tok = |id, message: Option<u32>| PromptToken {
        id,
        message,
        role: message.map(|_| Role::User),
    };
    h.engine(Event::Started {
        request: id,
        mode: ChatMode::Template,
        prompt: vec![
            tok(start, Some(0)),
            tok(user, Some(0)),
            tok(hi, Some(0)),
            tok(end, Some(0)),
            tok(nl, Some(0)),
            tok(start, None),
            tok(assistant, None),
        ],
        prefix: Vec::new(),
        n_reused: 0,
        dropped_messages: 0,
        note: None,
    });
    h.stream(id, &[("The", 0.9), (" capital", 0.8)]);
    // The reply ends with its end-of-generation token (no text of its own).
    let mut last = super::bench::fake_step(2, "The", 0.7, 8);
    (last.id, last.text) = (end, String::new());
    h.engine(Event::Token {
        request: id,
        step: Box::new(last),
    });
    h.done(id, 3);
    let screen = h.screen();
    // The chat pane: each row up to the inspector's frame.
    let rows: Vec<&str> = screen
        .lines()
        .map(|r| r.split(['│', '┌', '└']).next().unwrap_or_default().trim())
        .collect();
    let at = |text: &str| rows.iter().position(|r| r.starts_with(text));
    // Each end at the end of its own message; the user's turn has no blank
    // line of its own after it (one blank row between turns, as always).
    let you = at("you").expect("the user's turn");
    assert_eq!(rows[you + 1], "<|im_start|>user", "{screen}");
    assert_eq!(rows[you + 2], "Hi<|im_end|>", "{screen}");
    assert_eq!(rows[you + 3], "", "{screen}");
    assert!(rows[you + 4].starts_with("assistant"), "{screen}");
    assert_eq!(rows[you + 5], "The capital<|im_end|>", "{screen}");
    // The token cursor on the reply's last token: its end, highlighted.
    h.key(KeyCode::Tab);
    let b = h.buffer();
    let (x, y) = find(&b, "capital<|im_end|>").unwrap();
    let x = x + "capital".len() as u16;
    for dx in 0.."<|im_end|>".len() as u16 {
        assert!(
            b[(x + dx, y)].modifier.contains(Modifier::REVERSED),
            "{}",
            buffer_text(&b)
        );
    }
    assert!(!b[(x - 1, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn a_long_chinese_notice_is_cut_by_display_width_on_a_character_boundary() {
    crate::i18n::with_lang(crate::i18n::Lang::Zh, || {
        // A real notice, three times over: more than the notice's 3 rows.
        let text = crate::tui::engine_events::context_full_notice(4096, 4096).repeat(3);
        assert!(text.starts_with("上下文已满"), "{text}");
        let squeeze = |s: &str| -> String { s.chars().filter(|c| *c != ' ').collect() };
        // Odd widths too: a two-column character never straddles the edge.
        for width in [80, 79, 41] {
            let lines = super::components::status::notice_lines(&text, width, 3);
            assert_eq!(lines.len(), 3);
            let shown: Vec<String> = lines
                .iter()
                .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
                .collect();
            for l in &shown {
                assert!(crate::text::str_width(l) <= width, "{width}: {l:?}");
            }
            let last = shown.last().expect("3 lines");
            assert!(last.ends_with('…'), "a cut is marked: {last:?}");
            // Whole characters, in order: the lines are the notice's start.
            let all = squeeze(&shown.concat());
            let all = all.trim_end_matches('…');
            assert!(squeeze(&text).starts_with(all), "{width}: {all:?}");
            // Full rows: only the last two columns (a wide character that
            // did not fit, or the mark) may be left over.
            assert!(crate::text::str_width(&shown[0]) + 2 > width, "{shown:?}");
        }
        // On screen at 80 columns: three rows, the last one ending in the mark.
        let mut h = H::new(80, 24).loaded("qwen2.5-0.5b-instruct", "Q4_K_M");
        h.s.error(text.clone());
        let screen = h.screen();
        let rows: Vec<&str> = screen
            .lines()
            .skip_while(|l| !l.starts_with("上下文已满"))
            .take(3)
            .collect();
        assert_eq!(rows.len(), 3, "{screen}");
        assert!(rows[2].trim_end().ends_with('…'), "{screen}");
        for r in &rows {
            assert!(crate::text::str_width(r) <= 80, "{r:?}");
        }
        // A short one takes one row, unchanged.
        let short = super::components::status::notice_lines("已加载。", 80, 3);
        assert_eq!(short.len(), 1);
    });
}

/// The status bar while the engine works on something other than a reply:
/// it names the job (it said "idle"), in both languages, and stops
/// naming it once the job is answered or cancelled.
mod background_jobs {
    use super::*;
    use crate::i18n::{Lang, with_lang};
    use crate::tui::state::{Popup, TokenRef};

    fn both(h: &H) -> (String, String) {
        (status(h), with_lang(Lang::Zh, || status(h)))
    }

    #[test]
    fn the_layer_lens() {
        let mut h = super::super::tests_lens::lensed();
        let (en, zh) = both(&h);
        assert!(en.starts_with(" ● layer lens…"), "{en}");
        assert!(zh.starts_with(" ● 层透镜计算中…"), "{zh}");
        super::super::tests_lens::answer(&mut h);
        assert!(!status(&h).contains("layer lens"), "{}", status(&h));
    }

    #[test]
    fn rollouts() {
        let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
        h.exchange("q", &[(" the", 0.9), (" a", 0.5), (" time", 0.8)]);
        h.key(KeyCode::Tab);
        h.s.view.cursor = Some(TokenRef { msg: 1, step: 2 });
        h.key(KeyCode::Char('o'));
        let Some(Popup::Rollouts(v)) = &h.s.view.popup else {
            panic!("the rollouts popup is open")
        };
        let (n, m) = (v.n, v.m);
        let (en, zh) = both(&h);
        assert!(
            en.starts_with(&format!(" ● rollouts {n} × {m} tok")),
            "{en}"
        );
        assert!(
            zh.starts_with(&format!(" ● 展开 {n} 条 × {m} 词元")),
            "{zh}"
        );
        // Esc cancels them: they are no longer said.
        h.key(KeyCode::Esc);
        assert!(!status(&h).contains("rollouts"), "{}", status(&h));
    }

    #[test]
    fn asking_about_a_text_while_branching() {
        let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
        h.exchange("Hi", &[(" the", 0.5)]);
        h.key(KeyCode::Tab);
        h.key(KeyCode::Enter);
        h.type_str("xy");
        assert!(h.s.view.asking.in_flight.is_some(), "a question asked");
        let (en, zh) = both(&h);
        assert!(en.starts_with(" ● asking about the text…"), "{en}");
        assert!(zh.starts_with(" ● 正在询问这段文本…"), "{zh}");
        // The prompt scoring the reply left in flight is the job said next.
        h.s.view.asking.in_flight = None;
        assert!(
            status(&h).starts_with(" ● scoring the prompt…"),
            "{}",
            status(&h)
        );
        h.s.session.prompt_scoring.in_flight = None;
        assert!(status(&h).starts_with(" ○ idle"), "{}", status(&h));
    }

    #[test]
    fn scoring_the_prompt_after_the_reply() {
        let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
        let id = h.ask("Hi");
        started(&mut h, id, 0);
        h.stream(id, &[(" word", 0.5)]);
        assert!(status(&h).starts_with(" ● generating"), "{}", status(&h));
        h.done(id, 1);
        assert!(
            h.s.session.prompt_scoring.in_flight.is_some(),
            "the prompt scored after the reply"
        );
        let (en, zh) = both(&h);
        assert!(en.starts_with(" ● scoring the prompt…"), "{en}");
        assert!(zh.starts_with(" ● 正在为提示词打分…"), "{zh}");
    }
}
