//! The command line in Chinese: the real binary, on a real demo model, with
//! `--lang zh` or `LANG=zh_CN.UTF-8`: `info`, `models`, `run --format text`
//! and errors (one worded in the parent, one in the engine process) are in
//! Chinese with no English label left, and JSONL is byte for byte the
//! English mode's.

mod common;

use common::lang::{assert_no_english, column};
use unicode_width::UnicodeWidthStr;

/// The binary with no locale variable but `lang_env` (e.g. `LANG`) and the
/// demo models: (stdout, stderr, success).
fn run(lang_env: Option<&str>, args: &[&str]) -> (String, String, bool) {
    common::lang::run_in(lang_env, &[], args)
}

#[test]
fn info_and_models_are_in_chinese_and_aligned_by_display_width() {
    let smol = common::model(common::SMOL);
    let smol = smol.to_str().unwrap();
    let (out, err, ok) = run(Some("zh_CN.UTF-8"), &["info", smol]);
    assert!(ok, "{err}");
    for label in [
        "名称：",
        "架构：",
        "参数量：",
        "每权重比特数：",
        "训练上下文：",
        "个词元",
        "聊天模板：",
        "张量类型：",
        "张量图",
        "元数据（",
        "运行于：",
        "注意力归一化",
    ] {
        assert!(out.contains(label), "{label:?} missing in:\n{out}");
    }
    assert_no_english(
        &out,
        &[
            "name:",
            "architecture:",
            "parameters:",
            "bits per weight:",
            "trained context:",
            " tokens",
            "chat template:",
            "tensor types:",
            "of the weights",
            "tensor map",
            "metadata (",
            "runs on:",
            "KIND",
            "attention norm",
            "threads",
        ],
    );
    // Values start at one column after the Chinese field names (padded by
    // width: a Chinese character is two columns).
    let lines: Vec<&str> = out.lines().collect();
    let value_col = |prefix: &str| {
        let l = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in:\n{out}"));
        let label_end = l.find('：').unwrap() + '：'.len_utf8();
        let rest = &l[label_end..];
        l[..label_end].width() + (rest.len() - rest.trim_start().len())
    };
    assert_eq!(value_col("名称："), 17);
    assert_eq!(value_col("每权重比特数："), 17);
    // The tensor map's head and its total end at one column (right-aligned).
    let head = lines.iter().find(|l| l.contains("类别")).unwrap();
    let total = lines.iter().find(|l| l.contains("合计")).unwrap();
    assert_eq!(head.width(), total.width(), "{head}\n{total}");

    let (out, err, ok) = run(None, &["--lang", "zh", "models"]);
    assert!(ok, "{err}");
    let head = out.lines().next().unwrap();
    assert!(
        head.starts_with("名称") && head.contains("来源") && head.contains("大小"),
        "{out}"
    );
    assert_no_english(&out, &["NAME", "SOURCE", "ARCH", "QUANT", "SIZE", "MODEL"]);
    let row = out.lines().find(|l| l.contains("SmolLM2")).unwrap();
    assert_eq!(column(head, "来源"), column(row, "tokenscope"), "{out}");
    assert_eq!(column(head, "模型"), column(row, "/"), "{out}");
}

#[test]
fn run_text_is_in_chinese_and_its_jsonl_is_the_english_modes() {
    let smol = common::model(common::SMOL);
    let smol = smol.to_str().unwrap();
    let args = |format: &'static str| {
        vec![
            "run",
            "--model",
            smol,
            "--max-tokens",
            "3",
            "--temp",
            "0",
            "--threads",
            "1",
            "--format",
            format,
            "--prompt",
            "Hi",
        ]
    };
    let (out, err, ok) = run(None, &[&["--lang", "zh"][..], &args("text")].concat());
    assert!(ok, "{err}");
    for label in [
        "提示词：",
        "个词元",
        "熵",
        "比特",
        "◀ 选中",
        "采样",
        "聊天（模型自带模板）",
        "停止：",
        "首词元延迟",
        "上下文",
    ] {
        assert!(out.contains(label), "{label:?} missing in:\n{out}");
    }
    assert_no_english(
        &out,
        &[
            "prompt:",
            "entropy",
            "bits",
            "chosen",
            "sampled",
            "stop:",
            "generated",
            "reused from cache",
            "tok/s",
            "model's template",
            "threads",
        ],
    );

    // JSONL: the same bytes in both languages, but for the timings.
    let (zh, err, ok) = run(Some("zh_CN.UTF-8"), &args("jsonl"));
    assert!(ok, "{err}");
    let (en, err, ok) = run(None, &args("jsonl"));
    assert!(ok, "{err}");
    let untimed = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                if v["type"] == "done" {
                    let o = v.as_object_mut().unwrap();
                    o.retain(|k, _| {
                        !k.ends_with("_ms") && !k.ends_with("tps") && k != "inspector_us_per_token"
                    });
                    return v.to_string();
                }
                l.to_owned()
            })
            .collect()
    };
    assert!(en.lines().count() >= 4, "{en}");
    assert_eq!(untimed(&zh), untimed(&en));
    assert!(
        !zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{zh}"
    );

    for args in [
        &["models", "--format", "jsonl"][..],
        &["info", smol, "--format", "jsonl"],
    ] {
        let (zh, _, ok_zh) = run(Some("zh_CN.UTF-8"), args);
        let (en, _, ok_en) = run(None, args);
        assert!(ok_zh && ok_en);
        assert_eq!(zh, en, "{args:?}");
    }
}

#[test]
fn errors_are_in_chinese_from_the_parent_and_from_the_engine_process() {
    // Worded in this process: a model that does not exist.
    let (_, err, ok) = run(
        None,
        &[
            "--lang",
            "zh",
            "run",
            "--model",
            "no-such-model-x",
            "--prompt",
            "hi",
        ],
    );
    assert!(!ok);
    assert!(
        err.starts_with("错误：没有模型匹配 \"no-such-model-x\"")
            && err.contains("已搜索：")
            && err.contains("fetch-demos"),
        "{err}"
    );
    assert_no_english(
        &err,
        &["error:", "no model matches", "searched:", "available:"],
    );
    let (_, err, _) = run(
        None,
        &["run", "--model", "no-such-model-x", "--prompt", "hi"],
    );
    assert!(
        err.starts_with("error: no model matches \"no-such-model-x\""),
        "{err}"
    );

    // Worded in the engine process, which sees no locale variable here: it
    // speaks Chinese only because the parent passed its `--lang` on.
    let smol = common::model(common::SMOL);
    let smol = smol.to_str().unwrap();
    let args = ["score", "--model", smol, "--raw", "--text", "a"];
    let (_, err, ok) = run(None, &[&["--lang", "zh"][..], &args].concat());
    assert!(!ok);
    assert!(
        err.contains("错误：这段文本只有一个词元，且前面没有 BOS"),
        "{err}"
    );
    assert_no_english(&err, &["single token", "error:"]);
    let (_, err, _) = run(None, &args);
    assert!(err.contains("error: the text is a single token"), "{err}");
}

/// clap's usage errors and its `[default: …]`/`[possible values: …]` hints
/// are in Chinese (exit status 2 as clap's), and in English as clap words them.
#[test]
fn usage_errors_and_value_hints_are_in_chinese() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["run", "--bogus"], &["未知参数 '--bogus'", "用法："]),
        (
            &["run", "--format", "xx"],
            &["'xx' 无效", "[可选值：text, jsonl]"],
        ),
        (
            &["run", "-p", "x", "--top-k", "abc"],
            &["'abc' 无效：不是整数"],
        ),
        (&["run", "-p", "x", "--temp", "abc"], &["不是数字"]),
        (&["frob"], &["未知子命令 'frob'"]),
        (&["run"], &["缺少以下必需的参数：", "--prompt <PROMPT>"]),
        (
            &["run", "-p", "x", "--formt", "text"],
            &["提示：有相近的：'--format'"],
        ),
    ];
    let english = [
        "error:",
        "unexpected",
        "invalid",
        "possible values",
        "Usage",
        "For more information",
        "required",
        "digit",
        "tip:",
    ];
    for (args, want) in cases {
        let mut zh_args = vec!["--lang", "zh"];
        zh_args.extend_from_slice(args);
        let (out, err, ok) = run(None, &zh_args);
        assert!(!ok && out.is_empty(), "{args:?} fails on stderr: {out}");
        for w in *want {
            assert!(err.contains(w), "{args:?}: {w:?} in:\n{err}");
        }
        assert!(err.contains("更多信息请运行 '--help'。"), "{err}");
        assert_no_english(&err, &english);
        // English: clap's own words, untouched.
        let (_, err, ok) = run(None, args);
        assert!(!ok && err.starts_with("error: "), "{args:?}:\n{err}");
    }
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"))
        .args(["--lang", "zh", "run", "--bogus"])
        .output()
        .expect("binary runs")
        .status;
    assert_eq!(status.code(), Some(2), "a usage error exits as clap's do");

    let (help, _, ok) = run(None, &["--lang", "zh", "run", "--help"]);
    assert!(ok, "{help}");
    assert!(
        help.contains("[默认：text] [可选值：text, jsonl]"),
        "{help}"
    );
    assert!(help.contains("[可选值：en, zh]"), "{help}");
    assert_no_english(&help, &["[default", "[possible values"]);
    let (help, _, _) = run(None, &["run", "--help"]);
    assert!(
        help.contains("[default: text] [possible values: text, jsonl]"),
        "{help}"
    );
}
