//! The sampler column and the what-if view: rules for cut candidates,
//! settings changed in the token cursor redraw it from the stored candidates.

use crossterm::event::KeyCode;

use super::tests::{H, PARIS};
use crate::engine::SamplingParams;

fn h() -> H {
    H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0")
}

/// The inspector's row of candidate `text` (as the inspector writes it).
fn row<'a>(screen: &'a str, text: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(&format!("│   {text} ")) || l.contains(&format!("│ ▶ {text} ")))
        .unwrap_or_else(|| panic!("no row for {text:?}:\n{screen}"))
}

#[test]
fn cut_candidates_say_which_rule_cut_them() {
    let mut h = h();
    h.s.config.sampling = SamplingParams {
        temperature: 0.8,
        top_k: 3,
        top_p: 1.0,
        min_p: 0.0,
        ..SamplingParams::default()
    };
    h.exchange("What is the capital of France?", PARIS);
    h.key(KeyCode::Tab);
    let screen = h.screen();
    assert!(row(&screen, "\\n").ends_with("top-k │"), "{screen}");
}

#[test]
fn what_if_keys_redraw_the_sampler_column_without_decoding() {
    let mut h = h();
    h.exchange("What is the capital of France?", PARIS);
    let n = h.host.generates.len();
    h.key(KeyCode::Tab);
    // Down to temperature 0: greedy, one candidate takes it all.
    for _ in 0..10 {
        h.key(KeyCode::Char('t'));
    }
    let p = h.s.model.whatif.clone().unwrap();
    assert_eq!(p.temperature, 0.0);
    let screen = h.screen();
    assert!(screen.contains("what-if T 0 "), "{screen}");
    assert!(row(&screen, "␣the").contains("100.00%"), "{screen}");
    assert!(row(&screen, ".").ends_with("greedy │"), "{screen}");
    // Up to 1 with nothing cut: the sampler column is the model's.
    for _ in 0..10 {
        h.key(KeyCode::Char('T'));
    }
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char('k'));
    while h.s.model.whatif.as_ref().unwrap().top_p < 1.0 {
        h.key(KeyCode::Char('P'));
    }
    while h.s.model.whatif.as_ref().unwrap().min_p > 0.0 {
        h.key(KeyCode::Char('m'));
    }
    let p = h.s.model.whatif.clone().unwrap();
    assert_eq!(
        (p.temperature, p.top_k, p.top_p, p.min_p),
        (1.0, 0, 1.0, 0.0)
    );
    let screen = h.screen();
    for r in [row(&screen, "."), row(&screen, "␣the")] {
        let cells: Vec<&str> = r.split_whitespace().collect();
        let n = cells.len();
        assert_eq!(cells[n - 3], cells[n - 2], "model = sampler: {r}");
    }
    assert_eq!(h.host.generates.len(), n, "nothing was decoded");
    // Applied to the next reply; reset goes back to the reply's own settings.
    h.key(KeyCode::Char('a'));
    assert_eq!(h.s.config.sampling.temperature, 1.0);
    h.key(KeyCode::Char('0'));
    assert!(h.s.model.whatif.is_none());
    assert!(!h.screen().contains("what-if"));
}

#[test]
fn the_what_if_bench_draws_the_what_if_view() {
    let b = super::bench::bench_whatif(200);
    eprintln!("{b}");
    assert!(b.resample_us > 0.0 && b.frame_us > 0.0);
    assert!(b.to_string().contains("resample"));
}

/// A prompt for "Hel the" as a template would feed it: "\n" scaffolding
/// before the content, and "," opening the reply (no message).
fn prompt_of_hel_the() -> Vec<crate::engine::PromptToken> {
    use super::bench::fake_id;
    let t = |w: &str, m: Option<u32>| crate::engine::PromptToken {
        id: fake_id(w),
        message: m,
        role: m.map(|_| crate::engine::Role::User),
    };
    vec![
        t("\n", Some(0)),
        t("Hel", Some(0)),
        t(" the", Some(0)),
        t(",", None),
    ]
}

#[test]
fn a_user_message_is_drawn_as_its_prompt_tokens_and_the_cursor_reaches_them() {
    use crate::engine::Event;
    let mut h = h();
    let id = h.ask("Hel the");
    h.engine(Event::Started {
        request: id,
        mode: crate::engine::ChatMode::Template,
        prompt: prompt_of_hel_the(),
        prefix: Vec::new(),
        n_reused: 0,
        dropped_messages: 0,
        note: None,
    });
    h.stream(id, &[(" word", 0.5)]);
    h.done(id, 1);
    let m = h.s.msg(0).unwrap();
    assert_eq!(m.steps.len(), 3);
    assert_eq!(
        m.content_span,
        Some((1, 3)),
        "the \\n before it is scaffolding"
    );
    // The cursor goes from the reply back onto the message's tokens.
    h.key(KeyCode::Tab);
    h.key(KeyCode::Left);
    assert_eq!(
        h.s.view.cursor,
        Some(super::state::TokenRef { msg: 0, step: 2 })
    );
    let screen = h.screen();
    assert!(
        screen.contains("prompt token 3/3 · your message"),
        "{screen}"
    );
    h.key(KeyCode::Left);
    h.key(KeyCode::Left);
    assert!(h.screen().contains("prompt token 1/3 · template"));
    // Enter does not branch on a prompt token.
    let n = h.host.generates.len();
    h.key(KeyCode::Enter);
    assert_eq!(h.host.generates.len(), n);
    assert_eq!(h.s.view.focus, super::state::Focus::Navigate);
}

#[test]
fn the_settings_popup_previews_its_values_in_the_sampler_column() {
    let mut h = h();
    h.exchange("What is the capital of France?", PARIS);
    h.key(KeyCode::Tab);
    h.key(KeyCode::F(5));
    // The temperature field: cleared and set to 0 (greedy), not applied yet.
    h.ctrl('u');
    h.type_str("0");
    assert_eq!(h.s.whatif_params().map(|p| p.temperature), Some(0.0));
    assert_eq!(h.s.config.sampling.temperature, 0.8, "nothing applied yet");
    let (m, t) = (h.s.msg(1).unwrap(), h.s.view.cursor.unwrap());
    let column = h.s.sampler_column(m, h.s.step(t).unwrap()).unwrap();
    assert!(column.whatif);
    assert_eq!(
        column
            .resampled
            .fates
            .iter()
            .filter(|f| f.p() == 1.0)
            .count(),
        1,
        "greedy: one candidate takes it all"
    );
    // An invalid value previews nothing; Esc leaves no what-if behind.
    h.type_str("x");
    assert!(h.s.whatif_params().is_none());
    h.key(KeyCode::Esc);
    assert!(h.s.whatif_params().is_none());
}

#[test]
fn snapshot_prompt_surprise() {
    use super::bench::{fake_id, fake_step};
    use crate::engine::{Event, PromptToken, Role};
    let mut h = h();
    let id = h.ask("Hel the");
    let t = |w: &str, m: Option<u32>| PromptToken {
        id: fake_id(w),
        message: m,
        role: m.map(|_| Role::User),
    };
    h.engine(Event::Started {
        request: id,
        mode: crate::engine::ChatMode::Template,
        prompt: vec![
            t(",", Some(0)),
            t("Hel", Some(0)),
            t(" the", Some(0)),
            t(".", None),
        ],
        prefix: Vec::new(),
        n_reused: 0,
        dropped_messages: 0,
        note: None,
    });
    // Scores of positions 1 and 2: "Hel" unlikely, " the" likely.
    // As the engine scores a prompt: forced, no draw, no sampler probabilities.
    let scored = |i, w, p| {
        let mut st = fake_step(i, w, p, 8);
        st.forced = true;
        st.p_sampled = None;
        for c in &mut st.dist.as_mut().unwrap().top {
            c.p_sampled = None;
        }
        st
    };
    let (hel, the) = (scored(1, "Hel", 0.05), scored(2, " the", 0.9));
    h.engine(Event::PromptScores {
        request: id,
        steps: vec![hel, the],
    });
    h.stream(id, &[(" word", 0.5)]);
    h.done(id, 1);
    h.key(KeyCode::Tab);
    h.key(KeyCode::Left);
    h.key(KeyCode::Left);
    let screen = h.screen();
    assert!(
        screen.contains("prompt token 2/3 · your message"),
        "{screen}"
    );
    assert!(screen.contains("message: 2 tok"), "{screen}");
    insta::assert_snapshot!("prompt_surprise", screen);
    // Heat on the content, dim on the scaffolding.
    let b = h.buffer();
    let (x, y) = super::tests::find(&b, ",Hel").unwrap();
    assert_eq!(b[(x, y)].fg, super::theme::DIM, "scaffolding is dimmed");
    let (x, y) = super::tests::find(&b, "Hel the").unwrap();
    assert_eq!(
        b[(x + 4, y)].fg,
        super::theme::heat(0.9),
        "' the' is likely"
    );
}

#[test]
fn a_scored_system_prompt_is_drawn_as_its_tokens_with_heat() {
    use super::bench::{fake_id, fake_step};
    use crate::engine::{Event, PromptToken, Role};
    let config = crate::config::Config {
        system_prompt: "Hel".into(),
        ..crate::config::Config::default()
    };
    let mut h = H::with_config(config, 120, 40).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask(" word");
    let t = |w: &str, m: Option<u32>, r: Option<Role>| PromptToken {
        id: fake_id(w),
        message: m,
        role: r,
    };
    let (sys, user) = (Some(Role::System), Some(Role::User));
    h.engine(Event::Started {
        request: id,
        mode: crate::engine::ChatMode::Template,
        prompt: vec![
            t(",", Some(0), sys),
            t("Hel", Some(0), sys),
            t("\n", Some(1), user),
            t(" word", Some(1), user),
            t(".", None, None),
        ],
        prefix: Vec::new(),
        n_reused: 0,
        dropped_messages: 0,
        note: None,
    });
    let mut hel = fake_step(1, "Hel", 0.05, 8);
    hel.forced = true;
    h.engine(Event::PromptScores {
        request: id,
        steps: vec![hel],
    });
    assert_eq!(h.s.session.conv.node(0).content_span, Some((1, 2)));
    let b = h.buffer();
    let (x, y) = super::tests::find(&b, ",Hel").expect("the system prompt's tokens");
    assert_eq!(b[(x, y)].fg, super::theme::DIM, "scaffolding");
    assert_eq!(
        b[(x + 1, y)].fg,
        super::theme::heat(0.05),
        "scored: unlikely"
    );
    // What came before each prompt turn is its repeat-penalty history.
    assert!(h.s.session.conv.node(0).context_tail.is_empty());
    let user = h.s.view.path[1];
    assert_eq!(
        h.s.session.conv.node(user).context_tail,
        vec![fake_id(","), fake_id("Hel")]
    );

    // The token cursor goes back from the reply over the user message onto
    // the system prompt's tokens, and the inspector says what it is.
    h.stream(id, &[(" word", 0.5)]);
    h.done(id, 1);
    h.key(KeyCode::Tab);
    for _ in 0..3 {
        h.key(KeyCode::Left);
    }
    assert_eq!(
        h.s.view.cursor,
        Some(super::state::TokenRef { msg: 0, step: 1 })
    );
    let screen = h.screen();
    assert!(
        screen.contains("prompt token 2/2 · system prompt"),
        "{screen}"
    );
    // Enter does not branch there; e opens the system prompt's editor.
    let n = h.host.generates.len();
    h.key(KeyCode::Enter);
    assert_eq!(h.host.generates.len(), n);
    h.key(KeyCode::Char('e'));
    assert!(matches!(
        h.s.view.popup,
        Some(super::state::Popup::SystemPrompt(_))
    ));
    // A new text drops the old one's tokens (they are drawn no more).
    h.key(KeyCode::Char('!'));
    h.key(KeyCode::Enter);
    assert_eq!(h.s.session.conv.system(), Some("Hel!"));
    assert!(h.s.session.conv.node(0).steps.is_empty());
    assert!(h.screen().contains("Hel!"));
    // Removing it shifts the chat: the cursor stays on the same token.
    let at = h.s.view.cursor.unwrap();
    assert_eq!(h.s.msg(at.msg).unwrap().role, Role::Assistant);
    h.s.set_system_prompt("");
    assert_eq!(h.s.view.path.len(), 2);
    assert_eq!(
        h.s.view.cursor,
        Some(super::state::TokenRef {
            msg: at.msg - 1,
            step: at.step
        })
    );
}

#[test]
fn removing_the_system_prompt_mid_reply_keeps_the_reply_in_place() {
    let config = crate::config::Config {
        system_prompt: "Be brief.".into(),
        ..crate::config::Config::default()
    };
    let mut h = H::with_config(config, 100, 30).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("Hi");
    h.stream(id, &[("Hello", 0.5)]);
    assert_eq!(h.s.session.generation.as_ref().unwrap().msg, 2);
    h.s.set_system_prompt("");
    assert_eq!(h.s.session.generation.as_ref().unwrap().msg, 1);
    h.stream(id, &[(" there", 0.5)]);
    h.done(id, 2);
    assert_eq!(h.s.msg(1).unwrap().content, "Hello there");
    assert!(!h.screen().contains("Be brief."));
    h.s.set_system_prompt("Be terse.");
    assert_eq!(h.s.msg(2).unwrap().content, "Hello there");
    assert!(h.screen().contains("Be terse."));
}

/// The inspector's remark under the candidates that says why the what-if
/// column reads `?`: its lines joined, read from the box it is drawn in.
fn question_remark(screen: &str) -> Option<String> {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let (first, col) = lines.iter().enumerate().find_map(|(i, l)| {
        let s: String = l.iter().collect();
        let at = s.find("│   ? ")?;
        Some((i, s[..at].chars().count() + 2))
    })?;
    let mut parts = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(first) {
        let seg: String = l[col.min(l.len())..]
            .iter()
            .take_while(|&&c| c != '│')
            .collect();
        if (i > first && !seg.starts_with("    ")) || seg.trim().is_empty() {
            break;
        }
        parts.push(seg.trim().to_string());
    }
    Some(parts.join(" "))
}

/// A `width`×`height` screen inspecting a reply's token under a what-if
/// that cuts nothing at a temperature above 1 (the sampler would give weight
/// to tokens outside the candidates kept), and why its column reads `?`.
fn unsure_what_if(width: u16, height: u16) -> (H, crate::engine::resample::Unsure) {
    let mut h = H::new(width, height).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("What is the capital of France?", PARIS);
    h.key(KeyCode::Tab);
    h.key(KeyCode::Char('T'));
    while h.s.model.whatif.as_ref().unwrap().top_k > 0 {
        h.key(KeyCode::Char('k'));
    }
    while h.s.model.whatif.as_ref().unwrap().top_p < 1.0 {
        h.key(KeyCode::Char('P'));
    }
    while h.s.model.whatif.as_ref().unwrap().min_p > 0.0 {
        h.key(KeyCode::Char('m'));
    }
    for _ in 0..5 {
        h.key(KeyCode::Char('T'));
    }
    let (t, step) = h.s.inspected().expect("a token inspected");
    let m = h.s.msg(t.msg).expect("its message");
    let column = h.s.sampler_column(m, step).expect("a sampler column");
    let why = column.resampled.unsure.expect("probabilities unsure");
    (h, why)
}

#[test]
fn the_what_if_question_mark_is_explained_in_full_at_every_width() {
    for width in [80, 100, 120, 160, 200] {
        let (h, why) = unsure_what_if(width, 40);
        let screen = h.screen();
        assert_eq!(
            question_remark(&screen).as_deref(),
            Some(format!("? {}", super::components::inspector::unsure_text(why)).as_str()),
            "at {width} columns:\n{screen}"
        );
    }
}

/// Step mode: at a pause the inspector's header names the selected
/// candidate's numbers, the model's p and the sampler's, as its row does
/// (the header said "– sampler" while the row said 88.00%).
#[test]
fn at_a_pause_the_header_shows_the_samplers_p_of_the_selected_candidate() {
    // ' time' at p 0.8, its sampler p 0.88; ' the' next at 0.1 / 0.09.
    let (mut h, _) = super::tests_lens::paused_after_two();
    let screen = h.screen();
    assert!(
        screen.contains("not drawn yet"),
        "premise: the pause\n{screen}"
    );
    // Choosing, rows are numbered: the selected one is "1▶".
    let time = screen.lines().find(|l| l.contains("1▶␣time"));
    assert!(time.is_some_and(|l| l.contains("88.00%")), "{screen}");
    assert!(
        screen.contains("p=80.00% model · 88.00% sampler"),
        "{screen}"
    );
    assert!(!screen.contains("– sampler"), "{screen}");
    // The selection moved: the header follows it.
    h.key(KeyCode::Down);
    let screen = h.screen();
    assert!(
        screen.contains("p=10.00% model · 9.00% sampler"),
        "{screen}"
    );
}

/// Under `--lang zh` the `?` remark is Chinese (it was the engine's English),
/// whole at 80×24, its lines wrapped by display width inside the border.
#[test]
fn snapshot_zh_what_if_question_mark_explained_in_chinese() {
    use crate::i18n::{Lang, with_lang};
    let (screen, why) = with_lang(Lang::Zh, || {
        let (h, why) = unsure_what_if(80, 24);
        (h.screen(), why)
    });
    let zh = with_lang(Lang::Zh, || super::components::inspector::unsure_text(why));
    assert_ne!(zh, super::components::inspector::unsure_text(why));
    // The remark's lines, from its `?` to the first line not indented under it.
    let mut remark = String::new();
    let mut lines = screen.lines().skip_while(|l| !l.contains("│   ? "));
    let first = lines.next().expect("a ? remark");
    remark.push_str(
        first
            .split("│   ? ")
            .nth(1)
            .unwrap()
            .trim_end_matches(['│', ' ']),
    );
    for l in lines.take_while(|l| l.starts_with("│    ") && !l.trim_matches(['│', ' ']).is_empty())
    {
        remark.push_str(l.trim_matches(['│', ' ']));
    }
    assert_eq!(remark, zh, "{screen}");
    for line in screen.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(line) <= 80,
            "{line:?}"
        );
    }
    insta::assert_snapshot!("zh_what_if_question_mark", screen);
}
