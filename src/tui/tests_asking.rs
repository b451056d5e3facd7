//! Update and rendering tests for asking the model about the chooser's
//! text (issue 23): what is asked, when (one question in flight), and what
//! the preview and the vocabulary search show. Scripted engine events.

use crossterm::event::KeyCode;

use super::bench::fake_id;
use super::effect::Effect;
use super::tests::H;
use crate::engine::{AskTextRequest, Event, RequestId, TextAnswer, TokenStanding};

fn h() -> H {
    H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0")
}

/// A reply in step mode, paused before its first token.
fn paused() -> (H, RequestId) {
    paused_at(h(), "Hi", " the")
}

/// `h`'s reply to `question` in step mode, paused before its first token
/// (`next` the most likely candidate).
fn paused_at(mut h: H, question: &str, next: &str) -> (H, RequestId) {
    h.key(KeyCode::F(7));
    let id = h.ask(question);
    h.started(id);
    h.engine(Event::Paused {
        request: id,
        surprise: None,
        n_generated: 0,
        next: super::bench::fake_step(0, next, 0.5, 8).dist,
    });
    (h, id)
}

/// The questions asked so far, in order.
fn asked(h: &H) -> Vec<(RequestId, AskTextRequest)> {
    h.effects
        .iter()
        .filter_map(|e| match e {
            Effect::AskText(id, req) => Some((*id, req.clone())),
            _ => None,
        })
        .collect()
}

/// Where `text` starts in `buf` (one cell per character).
fn find_text(buf: &ratatui::buffer::Buffer, text: &str) -> Option<(u16, u16)> {
    let chars: Vec<String> = text.chars().map(String::from).collect();
    let a = buf.area;
    for y in a.y..a.bottom() {
        for x in a.x..a.right().saturating_sub(chars.len() as u16) {
            if chars
                .iter()
                .enumerate()
                .all(|(i, c)| buf[(x + i as u16, y)].symbol() == c)
            {
                return Some((x, y));
            }
        }
    }
    None
}

fn standing(id: i32, ln_p: f64, rank: u32) -> TokenStanding {
    TokenStanding { id, ln_p, rank }
}

fn answer(h: &mut H, request: RequestId, answer: TextAnswer) {
    h.engine(Event::TextAnswer {
        request,
        answer: Box::new(answer),
    });
    h.done(request, 0);
}

/// The engine's answer to a vocabulary search: the probe's standings only.
fn answer_probe(h: &mut H, request: RequestId, probe: Vec<TokenStanding>) {
    let a = TextAnswer {
        tokens: vec![],
        ln_p: 0.0,
        probe,
        completion: None,
    };
    answer(h, request, a);
}

#[test]
fn typing_asks_once_at_a_time_for_the_latest_text_and_shows_the_preview() {
    let (mut h, _) = paused();
    h.type_str(" the");
    let q = asked(&h);
    assert_eq!(q.len(), 1, "one question in flight: {q:?}");
    let (first, req) = &q[0];
    assert_eq!(req.text, " ", "the first key's text");
    assert_eq!(req.context, vec![0; 42], "the prompt the engine built");
    assert!(req.probe.is_empty());
    // Its answer is for a text since changed: the latest text is asked next.
    answer(
        &mut h,
        *first,
        TextAnswer {
            tokens: vec![],
            ln_p: 0.0,
            probe: vec![],
            completion: None,
        },
    );
    let q = asked(&h);
    assert_eq!(q.len(), 2);
    assert_eq!(q[1].1.text, " the");
    let (p_the, p_a) = (0.5f64, 0.25f64);
    answer(
        &mut h,
        q[1].0,
        TextAnswer {
            tokens: vec![
                standing(fake_id(" the"), p_the.ln(), 1),
                standing(fake_id(" a"), p_a.ln(), 3),
            ],
            ln_p: (p_the * p_a).ln(),
            probe: vec![],
            completion: None,
        },
    );
    assert_eq!(asked(&h).len(), 2, "answered: nothing more to ask");
    let screen = h.screen();
    assert!(
        screen.contains("␣the = [␣the 50.0%] [␣a 25.0%]"),
        "{screen}"
    );
    assert!(screen.contains("whole p=12.5%"), "{screen}");
    // The preview is coloured by p (the heat of 12.5% on "whole").
    let buf = h.buffer();
    let pos = find_text(&buf, "whole p=12.5%").expect("drawn");
    assert_eq!(
        buf[pos].fg,
        super::theme::heat(0.125),
        "heat-coloured by the whole's p"
    );
    // Esc clears the text: the preview goes.
    h.key(KeyCode::Esc);
    assert!(!h.screen().contains("whole p="));
}

#[test]
fn ctrl_f_searches_the_vocabulary_and_enter_forces_the_most_likely_match() {
    let (mut h, id) = paused();
    h.ctrl('f');
    h.type_str("th");
    // "t" was asked at the first key; once answered, "th" is.
    let q = asked(&h);
    assert_eq!(q.len(), 1);
    answer_probe(&mut h, q[0].0, vec![]);
    let q = asked(&h)[1..].to_vec();
    assert_eq!(q.len(), 1);
    let req = &q[0].1;
    assert!(req.text.is_empty(), "find mode forces no text");
    // Every token of the made-up vocabulary containing "th", by id.
    let want: Vec<i32> = super::bench::FAKE_WORDS
        .iter()
        .enumerate()
        .filter(|(_, w)| w.contains("th"))
        .map(|(i, _)| i as i32)
        .collect();
    assert!(want.len() >= 2, "premise: {want:?}");
    assert_eq!(req.probe, want);
    let probe = want
        .iter()
        .enumerate()
        .map(|(i, &t)| standing(t, -(i as f64 + 1.0), i as u32 * 10 + 2))
        .rev()
        .collect();
    answer_probe(&mut h, q[0].0, probe);
    let screen = h.screen();
    assert!(
        screen.contains(&format!(
            "vocabulary: {} tokens containing \"th\"",
            want.len()
        )),
        "{screen}"
    );
    assert!(screen.contains("rank 2"), "{screen}");
    // Best first: the rank-2 row above the rank-12 one.
    let row = |r: &str| {
        screen
            .find(&format!("rank {r}\n"))
            .or(screen.find(&format!("rank {r} ")))
    };
    assert!(row("2") < row("12"), "{screen}");
    h.key(KeyCode::Enter);
    let last = h.host.steers.last().expect("a steer");
    assert_eq!(last.0, id);
    assert_eq!(
        last.1,
        super::effect::Steer::Force(want[0]),
        "the most likely match is forced"
    );
}

#[test]
fn a_lone_digit_asks_nothing_and_a_branch_asks_with_the_context_before_its_token() {
    let (mut h, _) = paused();
    h.type_str("2");
    assert!(asked(&h).is_empty(), "a digit picks a candidate");
    h.key(KeyCode::Backspace);
    // Branching at the first token of a finished reply (the engine idle).
    let mut h2 = self::h();
    let id = h2.ask("Hi");
    h2.started(id);
    h2.stream(id, &[(" the", 0.5)]);
    h2.done(id, 1);
    h2.key(KeyCode::Tab);
    h2.key(KeyCode::Enter);
    assert_eq!(
        h2.s.view.focus,
        super::state::Focus::Choose,
        "branching at the token"
    );
    h2.type_str("xy");
    let q = asked(&h2);
    assert_eq!(q.len(), 1, "idle: asked");
    assert_eq!(
        q[0].1.context,
        vec![0; 42],
        "the context before the first token"
    );
}

#[test]
fn a_selected_byte_candidate_says_which_characters_it_can_begin() {
    let mut h = h();
    h.key(KeyCode::F(7));
    let id = h.ask("Hi");
    h.started(id);
    let partial = super::bench::fake_partial_id();
    let mut next = super::bench::fake_step(0, " the", 0.5, 8).dist.unwrap();
    next.top[0].id = partial;
    h.engine(Event::Paused {
        request: id,
        surprise: None,
        n_generated: 0,
        next: Some(next),
    });
    let screen = h.screen();
    // 好 is E5 A5 BD: E5 A5 begins U+5940..U+597F (好 is U+597D).
    assert!(
        screen.contains("<0xE5><0xA5> begins a 3-byte character:"),
        "{screen}"
    );
    assert!(screen.contains("U+5940"), "{screen}");
    assert!(screen.contains("U+597F"), "{screen}");
    // The model is asked which character it completes (nothing typed).
    let q = asked(&h);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].1.complete, Some(partial));
    assert_eq!(q[0].1.text, "");
    assert!(
        h.screen().contains("asking the model which character"),
        "{}",
        h.screen()
    );
    let completion = crate::engine::Completion {
        of: partial,
        chars: vec![
            crate::engine::CompletedChar {
                ch: '好',
                p: 0.9,
                tokens: vec![7],
            },
            crate::engine::CompletedChar {
                ch: '奶',
                p: 0.05,
                tokens: vec![8],
            },
        ],
        p_not_char: 0.01,
        p_unexplored: 0.04,
        decodes: 3,
    };
    answer(
        &mut h,
        q[0].0,
        TextAnswer {
            tokens: vec![],
            ln_p: 0.0,
            probe: vec![],
            completion: Some(completion),
        },
    );
    let screen = h.screen();
    assert!(
        screen.contains("the model completes it: 好 90.0%"),
        "{screen}"
    );
    assert!(screen.contains("奶 5.0%"), "{screen}");
    assert!(screen.contains("not followed 4.0%"), "{screen}");
    assert_eq!(asked(&h).len(), 1, "answered: not asked again");
    // Another candidate that is a whole token: nothing more to ask.
    h.key(KeyCode::Down);
    assert_eq!(asked(&h).len(), 1, "{:?}", asked(&h));
}

#[test]
fn the_preview_and_the_vocabulary_search_in_chinese_fit_80_columns() {
    crate::i18n::with_lang(crate::i18n::Lang::Zh, || {
        let qwen = H::new(80, 30).loaded("qwen2.5-0.5b-instruct", "Q4_K_M");
        let (mut h, _) = paused_at(qwen, "法国的首都是哪里？", "法国");
        h.type_str("巴黎");
        let q = asked(&h);
        assert_eq!(q.len(), 1);
        let screen = h.screen();
        assert!(screen.contains("正在询问模型…"), "{screen}");
        // The answer to "巴" arrives after "黎" was typed: it is stale.
        answer(
            &mut h,
            q[0].0,
            TextAnswer {
                tokens: vec![],
                ln_p: 0.0,
                probe: vec![],
                completion: None,
            },
        );
        let q = asked(&h);
        let (p, rank) = (0.25f64, 2);
        answer(
            &mut h,
            q[1].0,
            TextAnswer {
                tokens: vec![standing(fake_id("巴黎"), p.ln(), rank)],
                ln_p: p.ln(),
                probe: vec![],
                completion: None,
            },
        );
        let screen = h.screen();
        for zh in ["巴黎 = [巴黎 25.0%]", "整体 p=25.0%", "不提交任何内容"] {
            assert!(screen.contains(zh), "{zh:?} in\n{screen}");
        }
        assert!(!screen.contains("whole p") && !screen.contains("each token"));
        for line in screen.lines() {
            assert!(crate::text::str_width(line) <= 80, "{line:?}");
        }
        insta::assert_snapshot!("asking_preview_zh", screen);

        // Ctrl-F: the tokens containing 城, their rows aligned by display width.
        h.key(KeyCode::Esc);
        h.ctrl('f');
        h.type_str("城");
        let q = asked(&h);
        let (qid, req) = q.last().cloned().expect("the search asked");
        let want = vec![fake_id("光之城"), fake_id("城市")];
        assert_eq!(req.probe, want);
        answer(
            &mut h,
            qid,
            TextAnswer {
                tokens: vec![],
                ln_p: 0.0,
                probe: vec![standing(want[0], -3.0, 40), standing(want[1], -1.0, 7)],
                completion: None,
            },
        );
        let screen = h.screen();
        assert!(
            screen.contains("词表：2 个词元包含“城” · Ctrl-F：回到文本"),
            "{screen}"
        );
        assert!(
            screen.contains("排名 7") && screen.contains("排名 40"),
            "{screen}"
        );
        let p_column: Vec<usize> = screen
            .lines()
            .filter(|l| l.contains("排名"))
            .map(|l| crate::text::str_width(&l[..l.find(" p=").expect("a row's p")]))
            .collect();
        assert_eq!(p_column.len(), 2, "{screen}");
        assert_eq!(p_column[0], p_column[1], "rows aligned:\n{screen}");
        for line in screen.lines() {
            assert!(crate::text::str_width(line) <= 80, "{line:?}");
        }
        insta::assert_snapshot!("asking_find_zh", screen);
    });
}

/// At 80×24 the inspector has no room under its candidates for the
/// vocabulary search: the list takes their place while searching (it did
/// not show at all), in both languages, and Ctrl-F again brings the
/// candidates back.
#[test]
fn at_80x24_the_vocabulary_search_list_shows_in_place_of_the_candidates() {
    for lang in [crate::i18n::Lang::En, crate::i18n::Lang::Zh] {
        crate::i18n::with_lang(lang, || {
            let (mut h, _) = paused_at(
                H::new(80, 24).loaded("gemma-3-270m-it", "Q8_0"),
                "Hi",
                " the",
            );
            let before = h.screen();
            h.ctrl('f');
            h.type_str("th");
            let q = asked(&h);
            answer_probe(&mut h, q[0].0, vec![]);
            let (qid, req) = asked(&h).last().cloned().expect("the search asked");
            assert!(req.probe.len() >= 3, "premise: {:?}", req.probe);
            let probe = req
                .probe
                .iter()
                .enumerate()
                .map(|(i, &t)| standing(t, -(i as f64 + 1.0), i as u32 * 10 + 2))
                .collect();
            answer_probe(&mut h, qid, probe);
            let screen = h.screen();
            let (head, rank) = match lang {
                crate::i18n::Lang::En => ("containing \"th\"", "rank "),
                crate::i18n::Lang::Zh => ("包含“th”", "排名 "),
            };
            assert!(screen.contains(head), "{lang:?}: the list's head\n{screen}");
            let rows = screen.lines().filter(|l| l.contains(rank)).count();
            assert!(rows >= 3, "{lang:?}: {rows} rows of the list\n{screen}");
            for line in screen.lines() {
                assert!(crate::text::str_width(line) <= 80, "{line:?}");
            }
            assert!(
                !screen.contains("2 ␣a "),
                "{lang:?}: the list in their place\n{screen}"
            );
            // Back to the text: the candidates again.
            assert!(before.contains("2 ␣a "), "premise: candidate 2\n{before}");
            h.ctrl('f');
            let back = h.screen();
            assert!(
                back.contains("2 ␣a "),
                "{lang:?}: the candidates again\n{back}"
            );
        });
    }
}
