//! The interface in Chinese: the real binary under `LANG=zh_CN.UTF-8` in
//! tmux at 80×24 (welcome, status bar, help, a reply), and the command line's
//! `--help` chosen by `--lang`, the config's `lang` and the locale.

mod common;

use std::process::Command;

use common::tmux::{Tmux, flat, status_line};
use unicode_width::UnicodeWidthStr;

/// The real binary's `--help` (stdout) and whether it succeeded, under the
/// locale `env` (other locale variables removed) and config `config`.
fn help(args: &[&str], env: &[(&str, &str)], config: &std::path::Path) -> (String, String, bool) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokenscope"));
    for k in ["LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"] {
        c.env_remove(k);
    }
    let out = c
        .args(args)
        .envs(env.iter().copied())
        .env("TOKENSCOPE_CONFIG", config)
        .output()
        .expect("binary runs");
    (
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn help_is_in_the_language_of_lang_the_config_or_the_locale() {
    let none = std::path::Path::new("/nonexistent/tokenscope-test.toml");
    let chinese = |out: &str| out.contains("用法") && out.contains("与本地 GGUF 模型对话");
    let english = |out: &str| out.contains("Usage:") && out.contains("Chat with local GGUF models");

    let (out, _, ok) = help(&["--lang", "zh", "--help"], &[], none);
    assert!(ok && chinese(&out), "--lang zh:\n{out}");
    assert!(out.contains("选项") && out.contains("显示帮助"), "{out}");
    let (out, _, _) = help(&["--help"], &[("LANG", "zh_CN.UTF-8")], none);
    assert!(chinese(&out), "LANG=zh_CN.UTF-8:\n{out}");
    // LC_ALL before LANG; --lang before the locale.
    let (out, _, _) = help(
        &["--help"],
        &[("LC_ALL", "en_US.UTF-8"), ("LANG", "zh_CN.UTF-8")],
        none,
    );
    assert!(english(&out), "LC_ALL=en_US wins:\n{out}");
    let (out, _, _) = help(&["--lang=en", "--help"], &[("LANG", "zh_CN.UTF-8")], none);
    assert!(english(&out), "--lang=en wins:\n{out}");
    let (out, _, _) = help(&["--help"], &[], none);
    assert!(english(&out), "English by default:\n{out}");
    // A subcommand's help: its about and its flags.
    let (out, _, _) = help(&["run", "--help"], &[("LANG", "zh_CN.UTF-8")], none);
    assert!(
        out.contains("无界面生成一条回复") && out.contains("温度（0 = 贪心）"),
        "{out}"
    );

    // The config's `lang`, under an English locale.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "lang = \"zh\"\n").unwrap();
    let (out, _, _) = help(&["--help"], &[("LANG", "en_US.UTF-8")], &config);
    assert!(chinese(&out), "config lang = zh:\n{out}");
    // A language it does not speak: a clear error naming the key.
    std::fs::write(&config, "lang = \"fr\"\n").unwrap();
    let (_, err, ok) = help(&["paths"], &[], &config);
    assert!(!ok, "lang = fr must be refused");
    assert!(
        err.contains("lang") && err.contains("\"en\" or \"zh\""),
        "{err}"
    );
    let (_, err, ok) = help(&["--lang", "fr", "paths"], &[], none);
    assert!(!ok && err.contains("--lang") && err.contains("zh"), "{err}");
}

/// Display columns of a captured screen line (a wide character is one char
/// in the capture and two cells on the screen).
fn columns(line: &str) -> usize {
    line.trim_end().width()
}

#[test]
fn the_tui_speaks_chinese_under_a_chinese_locale_at_80_columns() {
    let env = "TOKENSCOPE_CONFIG=/nonexistent.toml LC_ALL= LC_MESSAGES= LANG=zh_CN.UTF-8";
    let t = Tmux::start(
        "zh",
        env,
        &format!(
            "--model '{}' --temp 0 --max-tokens 12",
            common::model(common::SMOL).display()
        ),
        80,
        24,
    );
    // Loaded and idle: the welcome screen and the status bar in Chinese.
    let s = t.wait("the model to load, in Chinese", 60, |s| {
        status_line(s).contains("空闲") && s.contains("Q4_1")
    });
    assert!(
        s.contains("与本地模型对话") && s.contains("模型："),
        "welcome screen:\n{s}"
    );
    assert!(s.contains("Enter 发送"), "welcome keys:\n{s}");
    assert!(s.contains("消息 · Enter 发送"), "input box title:\n{s}");
    assert!(status_line(&s).contains("上下文"), "status bar:\n{s}");
    for line in s.lines() {
        assert!(
            columns(line) <= 80,
            "a line wider than 80 columns: {line:?}"
        );
    }
    assert!(
        !s.contains("idle") && !s.contains("No model") && !s.contains("Chat with"),
        "English left on the screen:\n{s}"
    );

    // The help popup: section titles and key descriptions in Chinese.
    t.keys(&["F1"]);
    let s = t.wait("the help, in Chinese", 10, |s| s.contains("任何地方"));
    let f = flat(&s);
    assert!(
        f.contains("弹窗之外") && f.contains("本帮助"),
        "help popup:\n{s}"
    );
    for line in s.lines() {
        assert!(columns(line) <= 80, "a help line wider than 80: {line:?}");
    }
    t.keys(&["Escape"]);
    t.wait("the help to close", 10, |s| !s.contains("任何地方"));

    // A reply: the status bar with every field it has then still fits.
    t.type_text("Hi");
    t.keys(&["Enter"]);
    let s = t.wait("the reply to finish", 60, |s| {
        status_line(s).contains("空闲") && status_line(s).contains("词元/秒")
    });
    let status = status_line(&s);
    assert!(columns(status) <= 80, "status bar overflows: {status:?}");

    // The views: the inspector, the sampling settings and the model picker,
    // each complete (its last row drawn) before it is read, in 80 columns.
    let fits = |s: &str| {
        for line in s.lines() {
            assert!(columns(line) <= 80, "wider than 80 columns: {line:?}\n{s}");
        }
    };
    t.keys(&["Tab"]);
    let s = t.wait("the inspector, in Chinese", 10, |s| {
        s.contains("词元光标") && s.contains("采样器") && s.contains("比特")
    });
    assert!(s.contains("贪心") && !s.contains("greedy"), "{s}");
    fits(&s);
    t.keys(&["Tab", "F5"]);
    let s = t.wait("the settings, in Chinese", 10, |s| {
        s.contains("从下一条回复起生效")
    });
    assert!(s.contains("温度") && s.contains("0 = 贪心"), "{s}");
    fits(&s);
    t.keys(&["Escape"]);
    t.wait("the settings to close", 10, |s| {
        !s.contains("从下一条回复起生效")
    });
    t.keys(&["C-o"]);
    let s = t.wait("the model picker, in Chinese", 30, |s| {
        s.contains("Enter 加载") && s.contains("找到")
    });
    assert!(s.contains("名称") && s.contains("大小"), "{s}");
    assert!(!s.contains("filter:") && !s.contains("Enter load"), "{s}");
    fits(&s);
    t.keys(&["Escape"]);
    t.wait("the picker to close", 10, |s| !s.contains("Enter 加载"));

    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}

#[test]
fn the_kv_cache_view_and_the_rollouts_speak_chinese_at_80_columns() {
    let env = "TOKENSCOPE_CONFIG=/nonexistent.toml LC_ALL= LC_MESSAGES= LANG=zh_CN.UTF-8";
    let t = Tmux::start(
        "zh-popups",
        env,
        &format!(
            "--model '{}' --temp 0 --max-tokens 8",
            common::model(common::SMOL).display()
        ),
        80,
        30,
    );
    t.wait("the model to load, in Chinese", 60, |s| {
        status_line(s).contains("空闲") && s.contains("Q4_1")
    });
    t.type_text("Hi");
    t.keys(&["Enter"]);
    t.wait("the reply to finish", 60, |s| {
        status_line(s).contains("空闲") && status_line(s).contains("词元/秒")
    });
    let fits = |s: &str| {
        for line in s.lines() {
            assert!(columns(line) <= 80, "a line wider than 80: {line:?}\n{s}");
        }
    };
    // The KV-cache view: both runs timed by the real engine; the totals
    // line is the last thing it writes.
    t.keys(&["Tab", "w"]);
    let s = t.wait("both KV runs, in Chinese", 120, |s| s.contains("合计："));
    let f = flat(&s);
    assert!(
        f.contains("KV 缓存省下多少") && f.contains("使用 KV 缓存：") && f.contains("不用缓存："),
        "{s}"
    );
    assert!(f.contains("速度为不用缓存时的"), "{s}");
    for en in ["totals", "with the KV cache", "without it", "per token"] {
        assert!(!f.contains(en), "{en:?} left in English:\n{s}");
    }
    fits(&s);
    t.keys(&["Escape"]);
    t.wait("the KV-cache view to close", 10, |s| !s.contains("合计："));
    // The rollouts of the token under the cursor: the footer comes with the answer.
    t.keys(&["o"]);
    let s = t.wait("the rollouts, in Chinese", 120, |s| {
        flat(s).contains("保留为回复的分支（[ ] 切换版本）")
    });
    let f = flat(&s);
    assert!(f.contains("奈特 · 平均 p") && f.contains("↑↓ 选择"), "{s}");
    for en in ["nats", "mean p", "Enter keeps", "Each of the top"] {
        assert!(!f.contains(en), "{en:?} left in English:\n{s}");
    }
    fits(&s);
    t.keys(&["Escape"]);
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}
