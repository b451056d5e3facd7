//! The command line in Chinese, part two: `lens`, `rollouts`, `compare` and
//! `chats` through the real binary on SmolLM2 under `LANG=zh_CN.UTF-8`:
//! Chinese labels, no English label left, columns aligned by display width;
//! JSONL byte for byte the English mode's; refusals (worded in the parent
//! and in the engine process) in Chinese.

mod common;

use common::lang::{assert_no_english, column};
use unicode_width::UnicodeWidthStr;

/// The binary with no locale variable but `LANG=lang` when given, the demo
/// models and `home` as TOKENSCOPE_HOME: (stdout, stderr, success).
fn run(lang: Option<&str>, home: &std::path::Path, args: &[&str]) -> (String, String, bool) {
    common::lang::run_in(lang, &[("TOKENSCOPE_HOME", home)], args)
}

const ZH: Option<&str> = Some("zh_CN.UTF-8");

/// `args` with `--format jsonl` gives the same bytes in English and Chinese
/// (`timing` keys, wall-clock times, dropped from each line first).
fn assert_jsonl_same(home: &std::path::Path, args: &[&str], timing: &[&str]) {
    let args = [args, &["--format", "jsonl"]].concat();
    let strip = |out: &str| -> Vec<String> {
        out.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                if let Some(o) = v.as_object_mut() {
                    for k in timing {
                        o.remove(*k);
                    }
                }
                v.to_string()
            })
            .collect()
    };
    let (en, err, ok) = run(None, home, &args);
    assert!(ok, "{err}");
    let (zh, err, ok) = run(ZH, home, &args);
    assert!(ok, "{err}");
    if timing.is_empty() {
        assert_eq!(en, zh, "{args:?}");
    } else {
        assert_eq!(strip(&en), strip(&zh), "{args:?}");
    }
    assert!(!en.is_empty());
}

#[test]
fn lens_is_in_chinese_aligned_and_its_jsonl_is_the_english_one() {
    let home = tempfile::tempdir().unwrap();
    let smol = common::model(common::SMOL);
    let smol = smol.to_str().unwrap();
    let args = [
        "lens",
        "-m",
        smol,
        "--raw",
        "-t",
        "The capital of France is",
    ];
    let (out, err, ok) = run(ZH, home.path(), &args);
    assert!(ok, "{err}");
    assert!(out.starts_with("位置 "), "{out}");
    for label in [
        "之后的层透镜",
        "熵以比特为单位",
        "← 从此一直是首选",
        "\n 模型  ",
    ] {
        assert!(out.contains(label), "{label:?} missing in:\n{out}");
    }
    assert_no_english(
        &out,
        &["layer lens", "entropy in bits", "top-1", "model", "layers;"],
    );
    // Every row's entropy column starts at one display column, the model's
    // row (a Chinese label) included.
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(rows.len() > 10, "{out}");
    let h = column(rows[0], "  H ");
    for r in &rows {
        assert_eq!(column(r, "  H "), h, "{r:?} in:\n{out}");
    }
    assert_jsonl_same(home.path(), &args, &[]);

    // Refusals worded in the parent.
    let (_, err, ok) = run(
        ZH,
        home.path(),
        &[&args[..], &["--position", "999"]].concat(),
    );
    assert!(!ok);
    assert!(err.contains("--position 999 超出范围：文本有 "), "{err}");
    assert_no_english(&err, &["out of range"]);
    let (_, err, ok) = run(ZH, home.path(), &[&args[..], &["--top", "0"]].concat());
    assert!(!ok);
    assert!(err.contains("--top 0 超出范围：应为 1 到 "), "{err}");
}

#[test]
fn rollouts_are_in_chinese_and_their_jsonl_is_the_english_one() {
    let home = tempfile::tempdir().unwrap();
    let base = [
        "rollouts",
        "-m",
        common::SMOL,
        "-p",
        "What is the capital of France?",
        "--temp",
        "0",
        "--branches",
        "2",
        "--tokens",
        "3",
    ];
    let (out, err, ok) = run(ZH, home.path(), &base);
    assert!(ok, "{err}");
    assert!(out.starts_with("词元 0 之前的回复：\"\""), "{out}");
    assert_eq!(out.matches("对数似然 ").count(), 2, "{out}");
    assert_eq!(out.matches(" 奈特 · 平均 p ").count(), 2, "{out}");
    assert!(out.contains("2 条展开，"), "{out}");
    assert_no_english(
        &out,
        &[
            "reply before",
            "log-likelihood",
            "nats",
            "mean p",
            "rollouts,",
        ],
    );
    // The done row's wall-clock times differ from run to run.
    assert_jsonl_same(
        home.path(),
        &base,
        &["ttft_ms", "prompt_tps", "gen_tps", "inspector_us_per_token"],
    );

    // Worded in the engine process: more KV cache cells than the context.
    let (_, err, ok) = run(
        ZH,
        home.path(),
        &[
            "rollouts",
            "-m",
            common::SMOL,
            "-p",
            "Hi",
            "--temp",
            "0",
            "--branches",
            "8",
            "--tokens",
            "200",
            "--ctx",
            "256",
        ],
    );
    assert!(!ok);
    assert!(err.contains("个 KV 缓存单元，超过上下文的 256"), "{err}");
    assert_no_english(&err, &["cells of the KV cache"]);
    // Worded in the parent: the reply ends before --at.
    let (_, err, ok) = run(
        ZH,
        home.path(),
        &[
            "rollouts",
            "-m",
            common::SMOL,
            "-p",
            "Say OK.",
            "--temp",
            "0",
            "--at",
            "500",
        ],
    );
    assert!(!ok);
    assert!(err.contains("或更小的值"), "{err}");
}

#[test]
fn compare_is_in_chinese_with_aligned_columns_and_the_english_jsonl() {
    let home = tempfile::tempdir().unwrap();
    let smol = common::model(common::SMOL);
    let smol = smol.to_str().unwrap();
    let args = [
        "compare",
        "-m",
        smol,
        "-m",
        smol,
        "--text",
        "The old lighthouse keeper climbed the stairs.",
    ];
    let (out, err, ok) = run(ZH, home.path(), &args);
    assert!(ok, "{err}");
    for label in [
        "个词元",
        "类型",
        "平均 KL",
        "KL 中位数",
        "同首选",
        "困惑度 A",
        "KL 以奈特为单位",
        "与 A 分歧最大的",
    ] {
        assert!(out.contains(label), "{label:?} missing in:\n{out}");
    }
    assert_no_english(
        &out,
        &[
            "compared",
            "mean KL",
            "median",
            "PPL",
            "type",
            "disagrees",
            "weights",
        ],
    );
    // The column heads end where the numbers below them end.
    let lines: Vec<&str> = out.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.contains("平均 KL"))
        .expect("the head line");
    let (h, row) = (lines[head], lines[head + 1]);
    assert_eq!(h.width(), row.width(), "{h:?}\n{row:?}");
    assert_eq!(
        column(h, "平均 KL") + "平均 KL".width(),
        column(row, "0.0000") + 6,
        "a model against itself: KL 0\n{h}\n{row}"
    );
    assert_jsonl_same(home.path(), &args, &[]);

    // Worded in the parent.
    let (_, err, ok) = run(ZH, home.path(), &["compare", "-m", smol, "--text", "Hi"]);
    assert!(!ok);
    assert!(err.contains("compare 至少需要两个模型"), "{err}");
}

#[test]
fn chats_are_listed_in_chinese_aligned_by_display_width() {
    use tokenscope::conversation::{Conversation, Node};
    let home = tempfile::tempdir().unwrap();
    let (out, err, ok) = run(ZH, home.path(), &["chats"]);
    assert!(ok, "{err}");
    assert_eq!(out, "还没有保存的对话（每次聊天都会随时保存）。\n");

    let db = home.path().join("conversations.sqlite3");
    let mut c = Conversation::new(None);
    c.append(Node::user("灯塔看守人每晚都点亮灯。"));
    tokenscope::store::Store::open(&db)
        .unwrap()
        .save(None, &c, None)
        .unwrap();
    let (out, err, ok) = run(ZH, home.path(), &["chats"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for label in ["编号", "保存时间", "轮数", "模型", "标题"] {
        assert!(lines[0].contains(label), "{label:?} missing in:\n{out}");
    }
    assert_no_english(&out, &["saved", "turns", "title"]);
    assert_eq!(
        column(lines[0], "标题"),
        column(lines[1], "灯塔"),
        "title column:\n{out}"
    );
    assert_jsonl_same(home.path(), &["chats"], &[]);

    let (out, err, ok) = run(ZH, home.path(), &["chats", "--search", "nothing-like-it"]);
    assert!(ok, "{err}");
    assert_eq!(out, "没有与 \"nothing-like-it\" 匹配的已保存对话。\n");
}
