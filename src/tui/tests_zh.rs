//! The Chinese interface of the views, at 80 columns: each view rendered
//! under `i18n::with_lang(Lang::Zh, ..)` and snapshotted (nothing cut,
//! nothing wider than the terminal), and the inspector's columns aligned
//! under their heads in both languages, measured by display width.

use crossterm::event::{Event as TermEvent, KeyCode};
use unicode_width::UnicodeWidthStr;

use super::components::inspector::{Shown, View, inspector_lines};
use super::state::popup::{ChatList, ChatListMode, field_help, field_label, settings_form};
use super::state::{Popup, TokenRef};
use super::tests::{H, PARIS, entries};
use super::update::Msg;
use crate::engine::{SamplingParams, SurpriseStop, sampler};
use crate::i18n::{Lang, with_lang};

/// Every line of `screen` fits in 80 columns; returns it for the snapshot.
fn fits(screen: String) -> String {
    for line in screen.lines() {
        assert!(UnicodeWidthStr::width(line) <= 80, "{line:?}\n{screen}");
    }
    screen
}

/// The text of a rendered line.
fn text(l: &ratatui::text::Line) -> String {
    l.spans.iter().map(|s| s.content.as_ref()).collect()
}

/// The display column where the first `needle` in `line` ends.
fn end_of(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in {line:?}"));
    UnicodeWidthStr::width(&line[..at + needle.len()])
}

#[test]
fn the_inspectors_numbers_end_under_their_heads_in_both_languages() {
    for lang in [Lang::En, Lang::Zh] {
        with_lang(lang, || {
            let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
            h.exchange("What is the capital of France?", PARIS);
            let t = TokenRef { msg: 1, step: 5 };
            let m = h.s.msg(t.msg).unwrap();
            let step = h.s.step(t).unwrap().clone();
            let (model, sampler) = match lang {
                Lang::En => ("model", "sampler"),
                Lang::Zh => ("模型", "采样器"),
            };
            // 44: no sampler bars (the side panel); 76: with them (80 columns).
            for width in [44, 60, 76] {
                let view = View {
                    width,
                    heat: false,
                    compact: false,
                    shown: Shown::Token,
                    max_rows: 8,
                    sampler: None,
                    unscored: String::new(),
                };
                let (lines, _, _) = inspector_lines(m, &step, &view);
                let lines: Vec<String> = lines.iter().map(text).collect();
                let head = lines
                    .iter()
                    .find(|l| l.contains(sampler) && l.contains(model) && !l.contains('%'))
                    .unwrap_or_else(|| panic!("a head line in {lines:#?}"));
                let rows: Vec<&String> = lines.iter().filter(|l| l.ends_with('%')).collect();
                assert!(rows.len() >= 3, "{lines:#?}");
                for row in rows {
                    // The model's p: the first percentage of the row.
                    let first = row.split_whitespace().find(|w| w.ends_with('%')).unwrap();
                    assert_eq!(
                        end_of(row, first),
                        end_of(head, model),
                        "{lang:?} at {width}: the model's p under its head\n{head}\n{row}"
                    );
                    assert_eq!(
                        UnicodeWidthStr::width(row.as_str()),
                        UnicodeWidthStr::width(head.as_str()),
                        "{lang:?} at {width}: the sampler's p under its head\n{head}\n{row}"
                    );
                    assert_eq!(UnicodeWidthStr::width(row.as_str()), width);
                }
            }
        });
    }
}

#[test]
fn snapshot_zh_inspector() {
    let screen = with_lang(Lang::Zh, || {
        let mut h = H::new(80, 40).loaded("gemma-3-270m-it", "Q8_0");
        h.exchange("What is the capital of France?", PARIS);
        h.key(KeyCode::Tab);
        h.key(KeyCode::Left);
        h.screen()
    });
    for english in [
        "candidate",
        "sampler",
        "entropy",
        "chosen",
        "bits",
        "reply:",
    ] {
        assert!(!screen.contains(english), "{english:?} left in\n{screen}");
    }
    assert!(screen.contains("候选"), "{screen}");
    insta::assert_snapshot!("zh_inspector", fits(screen));
    // The reply's confidence under the candidates, where there is room.
    let side = with_lang(Lang::Zh, || {
        let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
        h.exchange("What is the capital of France?", PARIS);
        h.screen()
    });
    assert!(
        side.contains("回复：7 词元 · 平均 p") && side.contains("困惑度"),
        "{side}"
    );
}

#[test]
fn snapshot_zh_settings_with_an_invalid_value() {
    let screen = with_lang(Lang::Zh, || {
        let mut h = H::new(80, 24).loaded("gemma-3-270m-it", "Q8_0");
        h.key(KeyCode::F(5));
        for _ in 0..5 {
            h.key(KeyCode::Backspace);
        }
        h.type_str("9");
        h.key(KeyCode::Enter);
        h.screen()
    });
    assert!(
        screen.contains("温度 = 9 无效：必须在 0 到 5 之间（0 = 贪心）"),
        "{screen}"
    );
    insta::assert_snapshot!("zh_settings", fits(screen));
}

#[test]
fn the_settings_form_says_in_english_what_the_sampler_table_says() {
    // The form's words in English are the sampler table's (its labels the
    // config keys); in Chinese every help is translated and every label fits.
    let form = settings_form(&SamplingParams::default(), 512, SurpriseStop::default());
    for f in &form.fields {
        with_lang(Lang::En, || {
            assert_eq!(field_label(f.label), f.label);
            assert_eq!(field_help(f.label, f.help), f.help);
        });
        with_lang(Lang::Zh, || {
            assert_ne!(field_help(f.label, f.help), f.help, "{}", f.label);
            assert!(UnicodeWidthStr::width(field_label(f.label).as_str()) <= 16);
        });
    }
    for p in sampler::PARAMS {
        with_lang(Lang::En, || {
            assert_eq!(super::state::popup::range_text(p), p.range, "{}", p.name)
        });
        with_lang(Lang::Zh, || {
            assert_ne!(super::state::popup::range_text(p), p.range, "{}", p.name)
        });
    }
}

#[test]
fn snapshot_zh_picker() {
    let screen = with_lang(Lang::Zh, || {
        let mut h = H::new(80, 24).loaded("gemma-3-270m-it", "Q8_0");
        h.ctrl('o');
        h.send(Msg::Models(entries()));
        h.screen()
    });
    // The heads over their columns: the size's right edge over the sizes.
    let head = screen.lines().find(|l| l.contains("名称")).unwrap();
    let row = screen.lines().find(|l| l.contains("292 MB")).unwrap();
    assert_eq!(end_of(head, "大小"), end_of(row, "292 MB"), "{screen}");
    assert_eq!(end_of(head, "参数"), end_of(row, "268M"), "{screen}");
    insta::assert_snapshot!("zh_picker", fits(screen));
}

#[test]
fn snapshot_zh_picker_empty() {
    let screen = with_lang(Lang::Zh, || {
        let mut h = H::new(80, 24).loaded("gemma-3-270m-it", "Q8_0");
        h.ctrl('o');
        h.send(Msg::Models(entries()));
        h.type_str("zzz");
        h.screen()
    });
    assert!(screen.contains("没有模型匹配 \"zzz\"。"), "{screen}");
    insta::assert_snapshot!("zh_picker_empty", fits(screen));
}

/// The saved conversations popup on two rows, in `mode`.
fn chats(mode: ChatListMode) -> String {
    with_lang(Lang::Zh, || {
        let mut h = H::new(80, 24).loaded("gemma-3-270m-it", "Q8_0");
        let row = |id: i64, title: &str, turns: i64| crate::store::Summary {
            id,
            title: title.into(),
            updated_at: 1_760_000_000_000 + id,
            model: Some("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf".into()),
            model_path: None,
            turns,
        };
        h.s.view.popup = Some(Popup::Chats(ChatList {
            filter: "巴黎".into(),
            rows: vec![row(2, "法国的首都是哪里？", 3), row(1, "猫爱吃什么", 1)],
            selected: 0,
            mode,
            loading: false,
            error: None,
        }));
        h.screen()
    })
}

#[test]
fn snapshot_zh_chats_search_rename_delete() {
    let browse = chats(ChatListMode::Browse);
    assert!(
        browse.contains("搜索： 巴黎") && browse.contains("Enter 打开"),
        "{browse}"
    );
    insta::assert_snapshot!("zh_chats", fits(browse));
    let rename = chats(ChatListMode::Rename("新的标题".into()));
    assert!(rename.contains("新标题： 新的标题"), "{rename}");
    assert!(rename.contains("Enter 重命名"), "{rename}");
    let delete = chats(ChatListMode::ConfirmDelete);
    assert!(
        delete.contains("删除“法国的首都是哪里？”？y 删除"),
        "{delete}"
    );
    fits(rename);
    fits(delete);
}

#[test]
fn snapshot_zh_lens_and_its_attention() {
    let (grid, attention) = with_lang(Lang::Zh, || {
        let mut h = super::tests_lens::lensed();
        h.send(Msg::Input(TermEvent::Resize(80, 24)));
        let running = h.screen();
        assert!(running.contains("正在逐层运行模型"), "{running}");
        super::tests_lens::answer(&mut h);
        let grid = h.screen();
        h.key(KeyCode::Char('a'));
        (grid, h.screen())
    });
    assert!(
        grid.contains("首次成为首选：第 1 层") && grid.contains("模型 "),
        "{grid}"
    );
    insta::assert_snapshot!("zh_lens", fits(grid));
    assert!(attention.contains("注意力权重"), "{attention}");
    insta::assert_snapshot!("zh_lens_attention", fits(attention));
}

#[test]
fn snapshot_zh_compared_reply() {
    let screen = with_lang(Lang::Zh, || {
        let mut h = super::tests_compare::chatted();
        let run = super::tests_compare::comparing(&mut h);
        super::tests_compare::rows_arrive(&mut h, run, 0, PARIS.len());
        h.send(Msg::Input(TermEvent::Resize(80, 40)));
        h.key(KeyCode::Left);
        h.key(KeyCode::Left);
        h.screen()
    });
    assert!(
        screen.contains("首选不同") || screen.contains("首选相同"),
        "{screen}"
    );
    assert!(screen.contains("奈特"), "{screen}");
    insta::assert_snapshot!("zh_compared", fits(screen));
}

/// The title on the top border of the frame whose top-left corner is on
/// the line holding `mark` (the text between `┌` and the border's `─`).
fn title_on(screen: &str, mark: &str) -> String {
    let line = screen
        .lines()
        .find(|l| l.contains(mark))
        .unwrap_or_else(|| panic!("{mark:?}:\n{screen}"));
    let after = &line[line.find('┌').expect("a frame's corner") + '┌'.len_utf8()..];
    after.split('─').next().unwrap_or("").trim().to_owned()
}

/// Titles too wide for 80 columns (the input box's at a step-mode pause
/// and in the token cursor) lose whole key hints, never half of one (the
/// step's was cut to `… · Shift-→ to next surp`, its `Esc stop` gone):
/// each part left is a whole part of the title, an `Esc` hint last stays,
/// in both languages (a title that fits is whole).
#[test]
fn titles_cut_at_80_columns_keep_each_key_hint_whole() {
    let cases = [
        (
            Lang::En,
            "step · → draw · ↑↓ or 1-9, Enter: force · or type text · Shift-→ to next surprise · Esc stop",
            "token cursor · ←→↑↓ move · Enter branch · r re-sample · [ ] versions · Tab back to typing",
        ),
        (
            Lang::Zh,
            "单步 · → 抽取 · ↑↓ 或 1-9，Enter：强制 · 或输入文本 · Shift-→ 到下一意外 · Esc 停止",
            "词元光标 · ←→↑↓ 移动 · Enter 分支 · r 重新采样 · [ ] 版本 · Tab 返回输入",
        ),
    ];
    for (lang, step, cursor) in cases {
        let (paused, navigating) = with_lang(lang, || {
            let (mut h, id) = super::tests_lens::paused_after_two();
            h.send(Msg::Input(TermEvent::Resize(80, 24)));
            let paused = h.screen();
            h.key(KeyCode::Esc);
            h.done(id, 2);
            h.key(KeyCode::Tab);
            (paused, h.screen())
        });
        for (screen, whole) in [(paused, step), (navigating, cursor)] {
            let screen = fits(screen);
            let parts: Vec<&str> = whole.split(" · ").collect();
            let title = title_on(&screen, &format!("┌ {}", parts[0]));
            if UnicodeWidthStr::width(whole) <= 78 {
                assert_eq!(title, whole, "{lang:?}: it fits, whole");
                continue;
            }
            let shown: Vec<&str> = title.split(" · ").collect();
            assert!(shown.len() >= 2, "{lang:?}: {title:?}\n{screen}");
            for p in &shown {
                assert!(
                    parts.contains(p),
                    "{lang:?}: {p:?} is not a whole part of {whole:?}\n{screen}"
                );
            }
            // An `Esc` hint last (how to leave) stays; else parts go from the right.
            if whole.contains(" · Esc") {
                assert_eq!(shown.last(), parts.last(), "{lang:?}: {title:?}");
            } else {
                assert_eq!(shown, parts[..shown.len()], "{lang:?}: {title:?}");
            }
        }
    }
}

/// The help's lines in Chinese as drawn inside its border at `width`
/// columns, the whole of them (the popup scrolls through these).
fn zh_help_text(width: usize) -> String {
    with_lang(Lang::Zh, || {
        super::components::help::help_lines(width - 2, true)
            .iter()
            .map(|l| text(l).trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Help (F1) in Chinese, every line of it at 80 and 120 columns: nothing
/// wider than the popup.
#[test]
fn snapshot_zh_help_every_line() {
    for width in [80, 120] {
        let help = zh_help_text(width);
        for line in help.lines() {
            assert!(UnicodeWidthStr::width(line) <= width - 2, "{line:?}");
        }
        insta::assert_snapshot!(format!("zh_help_{width}"), help);
    }
}

/// The prose quotes of the Chinese views, popups and keymap help are
/// Chinese quotes (“…”), not ASCII ones; code in `backticks` keeps its own.
#[test]
fn chinese_prose_quotes_are_chinese_quotes() {
    let files = [
        ("zh-views.ftl", include_str!("../../i18n/zh-views.ftl")),
        ("zh-popups.ftl", include_str!("../../i18n/zh-popups.ftl")),
        ("zh.ftl", include_str!("../../i18n/zh.ftl")),
    ];
    for (name, text) in files {
        for (i, line) in text.lines().enumerate() {
            // What lies between backticks is code: every other piece is prose.
            let prose: String = line.split('`').step_by(2).collect();
            assert!(
                !prose.contains('"'),
                "{name}:{}: an ASCII quote in Chinese prose: {line}",
                i + 1
            );
        }
    }
}

/// The welcome screen's hint to try Qwen for Chinese shows while another
/// model (or none) is loaded, not while a Qwen is the model in use.
#[test]
fn the_welcome_screens_qwen_hint_shows_only_when_it_helps() {
    let hint = "Ctrl-O，输入 qwen";
    with_lang(Lang::Zh, || {
        let none = H::new(80, 24);
        assert!(none.screen().contains(hint), "{}", none.screen());
        let smol = H::new(80, 24).loaded("SmolLM2 135M Instruct", "Q4_1");
        assert!(smol.screen().contains(hint), "{}", smol.screen());
        let mut qwen = H::new(80, 24).loaded("Qwen2.5 Coder 0.5B Instruct", "Q4_K_M");
        assert!(!qwen.screen().contains(hint), "{}", qwen.screen());
        // By its architecture too, whatever the file calls it.
        if let Some(m) = qwen.s.model.info.as_mut() {
            m.name = "my model".into();
            m.arch = "qwen2".into();
        }
        assert!(!qwen.screen().contains(hint), "{}", qwen.screen());
    });
}
