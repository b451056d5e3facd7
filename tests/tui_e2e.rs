//! End to end: the real binary in a real terminal (tmux) on the real demo
//! models: chat, token cursor, model switch, chat again, quit, terminal restored.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::{Tmux, flat, idle, status_line};

#[test]
fn chat_inspect_switch_model_chat_again_and_quit() {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for f in [common::SMOL, common::GEMMA] {
        std::os::unix::fs::symlink(common::model(f), models.join(f)).unwrap();
    }
    // A cut-off download: choosing it must leave the running model usable.
    let head = &std::fs::read(common::model(common::SMOL)).unwrap()[..1_000_000];
    std::fs::write(models.join("broken-download.gguf"), head).unwrap();
    let env = format!(
        "TOKENSCOPE_HOME='{}' TOKENSCOPE_CONFIG=/nonexistent.toml",
        home.path().display()
    );
    let t = Tmux::start(
        "e2e",
        &env,
        "--model smol --temp 0 --max-tokens 24",
        120,
        36,
    );

    // The model loads on the worker; the UI is there at once.
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));

    t.type_text("Hello! Who are you?");
    t.keys(&["Enter"]);
    // The reply's header (the load notice may name "assistant" too).
    t.wait("the reply to start", 60, |s| s.contains("assistant · "));
    let s = t.wait("the reply to finish", 120, idle);
    assert!(s.contains("Hello! Who are you?"), "{s}");
    assert!(s.contains("tok/s"), "status shows speed: {s}");

    // Token cursor: back over a few tokens; the inspector shows that token's distribution.
    t.keys(&["Tab"]);
    t.keys(&["Left", "Left", "Left"]);
    // The title " token N-3/N " proves the cursor moved (before the keys the
    // inspector already showed the last token's p=).
    let s = t.wait("the inspector on a past token", 10, |s| {
        matches!(cursor_at(s), Some((false, a, b)) if b >= 4 && a == b - 3) && s.contains("p=")
    });
    let p: f32 = s
        .split("p=")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no probability in the inspector:\n{s}"));
    assert!(p > 0.0 && p <= 100.0, "p={p}");
    t.keys(&["Escape"]);
    // Back to typing (the inspector follows the last token again) before F2:
    // an Escape and F2's escape sequence back to back may read as one.
    t.wait("the token cursor to close", 10, |s| {
        s.contains("last token #")
    });

    // A broken file fails to load with a readable error; the model stays.
    t.keys(&["F2"]);
    t.wait("the picker", 10, |s| s.contains("broken-download"));
    t.type_text("broken");
    t.keys(&["Enter"]);
    let s = t.wait("the load error", 30, |s| s.contains("Could not load"));
    assert!(s.contains("incomplete") && s.contains("Still using"), "{s}");
    assert!(status_line(&s).contains("Q4_1"), "{s}");

    // Switch to the other demo model without restarting.
    t.keys(&["F2"]);
    t.wait("the picker", 10, |s| {
        s.contains(common::GEMMA) || s.contains("Gemma")
    });
    t.type_text("gemma");
    t.keys(&["Enter"]);
    t.wait("gemma to load", 90, |s| {
        idle(s) && status_line(s).contains("Q4_K_M")
    });

    t.type_text("The capital of France is");
    t.keys(&["Enter"]);
    // The reply is headed by the model that wrote it; it may finish between polls.
    let s = t.wait("gemma's reply", 120, |s| {
        idle(s) && s.contains("assistant · Gemma")
    });
    assert!(s.contains("The capital of France is"), "{s}");
    assert!(
        s.contains("Hello! Who are you?") && s.contains("assistant · SmolLM2"),
        "the first exchange is kept: {s}"
    );

    // Quit: Ctrl-C twice when idle. The shell after us must find a sane terminal.
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    let s = t.assert_exited_sane(0);
    assert!(!s.contains("next token"), "alternate screen left:\n{s}");
}

#[test]
fn an_abort_inside_llama_cpp_still_restores_the_terminal() {
    // llama.cpp's fatal errors call abort(), which skips Rust's panic hooks; the
    // app's SIGABRT handler must put the terminal back. A test hook aborts right
    // after the terminal is set up.
    let t = Tmux::start(
        "abort",
        "TOKENSCOPE_TEST_ABORT=1 TOKENSCOPE_HOME=/nonexistent-home",
        "",
        100,
        30,
    );
    // 134 = 128 + SIGABRT.
    t.assert_exited_sane(134);
}

/// A signal to the running app, idle or mid-reply: it stops, restores the
/// terminal, and exits with the conventional status (128 + signal).
fn signal_restores_the_terminal(sig: &str, num: i32, mid_reply: bool) {
    let env = "TOKENSCOPE_CONFIG=/nonexistent.toml";
    let name = format!("sig{sig}{}", if mid_reply { "r" } else { "i" });
    let t = Tmux::start(
        &name,
        env,
        &format!(
            "--model '{}' --raw --temp 0 --max-tokens 4000",
            common::model(common::SMOL).display()
        ),
        100,
        30,
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    if mid_reply {
        // Greedy counting goes on until the token limit: still streaming when killed.
        t.type_text("1, 2, 3, 4, 5, 6, 7, 8, 9, 10,");
        t.keys(&["Enter"]);
        t.wait("the reply to stream", 60, |s| {
            status_line(s).contains("generating")
        });
    }
    let pid = t.app_pid();
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{sig} {pid}");
    t.assert_exited_sane(128 + num);
}

#[test]
fn sigterm_idle() {
    signal_restores_the_terminal("TERM", 15, false);
}

#[test]
fn sigterm_mid_reply() {
    signal_restores_the_terminal("TERM", 15, true);
}

#[test]
fn sighup_idle() {
    signal_restores_the_terminal("HUP", 1, false);
}

#[test]
fn sighup_mid_reply() {
    signal_restores_the_terminal("HUP", 1, true);
}

#[test]
fn sigint_idle() {
    signal_restores_the_terminal("INT", 2, false);
}

#[test]
fn sigint_mid_reply() {
    signal_restores_the_terminal("INT", 2, true);
}

#[test]
fn sigquit_idle() {
    signal_restores_the_terminal("QUIT", 3, false);
}

#[test]
fn sigquit_mid_reply() {
    signal_restores_the_terminal("QUIT", 3, true);
}

#[test]
fn combining_marks_generated_as_tokens_are_drawn() {
    // SmolLM2 continues "word: café naïve" (accents typed as combining marks)
    // with accents that are tokens of their own. The screen must show the
    // reply's text as `run` reports it, not "cafe naire".
    let word = "word: cafe\u{301} nai\u{308}ve";
    let model = common::model(common::SMOL);
    let out = Command::new(env!("CARGO_BIN_EXE_tokenscope"))
        .args([
            "run",
            "--raw",
            "--temp",
            "0",
            "--max-tokens",
            "12",
            "--format",
            "jsonl",
        ])
        .arg("--model")
        .arg(&model)
        .args(["--prompt", word])
        .env("TOKENSCOPE_CONFIG", "/nonexistent.toml")
        .output()
        .expect("run runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "token")
        .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        reply.chars().any(|c| ('\u{300}'..='\u{36f}').contains(&c)),
        "the reply holds combining marks, or this test proves nothing: {reply:?}"
    );

    let t = Tmux::start(
        "marks",
        "TOKENSCOPE_CONFIG=/nonexistent.toml",
        &format!(
            "--model '{}' --raw --temp 0 --max-tokens 12",
            model.display()
        ),
        100,
        30,
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    t.type_text(word);
    t.keys(&["Enter"]);
    // A finished reply has its stats in its header ("12 tok · 140.0 tok/s").
    let s = t.wait("the reply", 60, |s| idle(s) && s.contains(" tok · "));
    let shown = s.split("assistant").nth(1).unwrap_or_default();
    assert!(
        shown.contains(reply.trim()),
        "the screen shows the reply's text {reply:?}:\n{s}"
    );
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}

#[test]
fn a_panic_in_the_engine_is_shown_and_the_ui_goes_on() {
    // The worker's test hook panics at the start of a reply. The UI must show the
    // panic's message and location (not "it stopped"), keep the terminal, and
    // leave it sane on quit.
    let env = format!(
        "TOKENSCOPE_TEST_ENGINE_PANIC=generate TOKENSCOPE_HOME=/nonexistent-home \
         TOKENSCOPE_CONFIG=/nonexistent.toml TOKENSCOPE_MODELS_DIR='{}'",
        common::models_dir().display()
    );
    let t = Tmux::start("panic", &env, "--model smol", 200, 36);
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    t.type_text("hi");
    t.keys(&["Enter"]);
    // The reply fails with the panic, the engine process exits (code 101),
    // the UI says so with the panic's message and location, and reloads.
    let s = t.wait("the crash report", 30, |s| {
        flat(s).contains("loaded again") && idle(s)
    });
    let flat = flat(&s);
    assert!(
        flat.contains("engine thread panicked")
            && flat.contains("a test asked the engine to panic")
            && flat.contains("worker.rs:")
            && flat.contains("exited with code 101"),
        "{s}"
    );
    assert!(!flat.contains("it stopped"), "{s}");
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}

/// A private TOKENSCOPE_HOME whose models dir links SmolLM2 and holds `bad`
/// copies of it (file name, metadata key, value).
fn home_with_bad_copies(bad: &[(&str, &str, common::gguf_edit::Meta)]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let smol = common::model(common::SMOL);
    std::os::unix::fs::symlink(&smol, models.join(common::SMOL)).unwrap();
    for (name, key, value) in bad {
        common::gguf_edit::copy_with_metadata(
            &smol,
            &models.join(name),
            &[(key, value.clone())],
            &[],
        )
        .unwrap();
    }
    home
}

fn start_in(home: &tempfile::TempDir, name: &str) -> Tmux {
    start_with(
        home,
        name,
        "--model smol --temp 0 --max-tokens 16",
        (200, 40),
    )
}

/// The app in `home` (no config file) with `args`, in a `cols`×`rows` window.
fn start_with(home: &tempfile::TempDir, name: &str, args: &str, (cols, rows): (u16, u16)) -> Tmux {
    let env = format!(
        "TOKENSCOPE_HOME='{}' TOKENSCOPE_CONFIG=/nonexistent.toml",
        home.path().display()
    );
    Tmux::start(name, &env, args, cols, rows)
}

/// Sends `text` and waits for SmolLM2's reply to it; returns the screen.
fn exchange(t: &Tmux, text: &str) -> String {
    t.type_text(text);
    t.keys(&["Enter"]);
    // The reply to this message, ended (its header has its stats only then),
    // below the message: counting headers on screen before sending was
    // fooled by a notice that hid one (the app idle, the reply not started).
    t.wait("SmolLM2's reply", 120, |s| {
        // The chat column only: the inspector sits right of it.
        let chat: Vec<&str> = s
            .lines()
            .map(|l| l.split('│').next().unwrap_or(""))
            .collect();
        idle(s)
            && chat
                .iter()
                .rposition(|l| {
                    // The message's closing token ends its own line.
                    let l = l.trim();
                    l.strip_suffix("<|im_end|>").unwrap_or(l) == text
                })
                .is_some_and(|i| {
                    chat[i..]
                        .iter()
                        .any(|l| l.contains("assistant · SmolLM2") && l.contains(" tok · "))
                })
    })
}

#[test]
fn a_model_that_crashes_llama_cpp_is_reported_and_the_chat_goes_on() {
    use common::gguf_edit::Meta;
    // Two copies of SmolLM2 that trip llama.cpp's asserts: one while loading,
    // one at the first decode (which the load's warm-up decode runs).
    let bad = [
        (
            "zero-layers.gguf",
            "llama.block_count",
            Meta::U32(0),
            "GGML_ASSERT(hparams.n_layer_all > 0",
        ),
        (
            "negative-eps.gguf",
            "llama.attention.layer_norm_rms_epsilon",
            Meta::F32(-1e-5),
            "GGML_ASSERT(eps >= 0.0f) failed",
        ),
    ];
    let home = home_with_bad_copies(
        &bad.iter()
            .map(|(n, k, v, _)| (*n, *k, v.clone()))
            .collect::<Vec<_>>(),
    );
    let t = start_in(&home, "crash");
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    exchange(&t, "Hello! Who are you?");

    for (name, _, _, assertion) in &bad {
        let stem = name.trim_end_matches(".gguf");
        t.keys(&["F2"]);
        t.wait("the picker", 10, |s| picker_open(s) && s.contains(stem));
        t.type_text(stem);
        t.keys(&["Enter"]);
        // The app stays up, says what crashed, and loads SmolLM2 again.
        let crashed = format!("llama.cpp crashed while loading {name}");
        let s = t.wait("the crash notice", 60, |s| {
            let f = flat(s);
            f.contains(&crashed) && f.contains("loaded again") && idle(s)
        });
        let f = flat(&s);
        assert!(f.contains(assertion), "{s}");
        assert!(status_line(&s).contains("Q4_1"), "{s}");
        assert!(s.contains("Hello! Who are you?"), "the chat is kept: {s}");
        // The picker marks the file; selected, it says why.
        t.keys(&["F2"]);
        let tagged = format!("{name} — ✗ crashed llama.cpp");
        t.wait("the file marked in the picker", 10, |s| {
            picker_open(s) && s.contains(&tagged)
        });
        t.type_text(stem);
        // The hint line becomes "✗ <llama.cpp's assertion>".
        t.wait("the reason on selection", 10, |s| {
            picker_open(s)
                && s.lines()
                    .any(|l| l.split("✗ ").skip(1).any(|rest| rest.contains(assertion)))
        });
        t.keys(&["Escape"]);
        // Before the next key: an Escape and F2's escape sequence sent back to
        // back can reach the app as one read that parses otherwise.
        t.wait("the picker to close", 10, |s| !picker_open(s));
    }

    // The next message gets a reply from the model loaded before.
    let s = exchange(&t, "The capital of France is");
    assert!(s.contains("The capital of France is"), "{s}");
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}

/// The model picker is on screen (its title and filter line).
fn picker_open(screen: &str) -> bool {
    screen.contains(" models · ") && screen.contains("filter:")
}

/// Pid of the app's engine process (`pgrep -P APP`), once it runs.
fn engine_pid(t: &Tmux) -> i32 {
    let app = t.app_pid();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("pgrep")
            .args(["-P", &app.to_string()])
            .output()
            .expect("pgrep runs");
        if let Some(pid) = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
        {
            return pid.parse().expect("a pid");
        }
        assert!(Instant::now() < deadline, "no engine process under {app}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_of_the_engine_mid_reply_fails_the_reply_and_the_chat_goes_on() {
    let home = home_with_bad_copies(&[]);
    let env = format!(
        "TOKENSCOPE_HOME='{}' TOKENSCOPE_CONFIG=/nonexistent.toml",
        home.path().display()
    );
    let t = Tmux::start(
        "kill",
        &env,
        "--model smol --raw --temp 0 --max-tokens 4000",
        200,
        40,
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    // Greedy counting goes on until the token limit: still streaming when killed.
    t.type_text("1, 2, 3, 4, 5, 6, 7, 8, 9, 10,");
    t.keys(&["Enter"]);
    t.wait("the reply to stream", 60, |s| {
        status_line(s).contains("generating")
    });
    let engine = engine_pid(&t);
    let ok = Command::new("kill")
        .args(["-KILL", &engine.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -KILL {engine}");
    let s = t.wait("the kill reported and the model reloaded", 60, |s| {
        flat(s).contains("loaded again") && idle(s)
    });
    let f = flat(&s);
    assert!(
        f.contains("The engine process was killed by SIGKILL while generating with SmolLM2"),
        "{s}"
    );
    assert!(
        f.contains("[error: the engine process was killed by SIGKILL"),
        "the reply ends as failed, with the reason: {s}"
    );
    assert_ne!(engine_pid(&t), engine, "a new engine process");
    // The next message works on the reloaded model.
    let before = s.matches("assistant · SmolLM2").count();
    t.type_text("Once upon a time");
    t.keys(&["Enter"]);
    t.wait("a new reply", 60, |s| {
        s.matches("assistant · SmolLM2").count() > before && status_line(s).contains("generating")
    });
    t.keys(&["Escape"]);
    t.wait("the reply to stop", 30, idle);
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}

#[test]
fn a_terminal_that_goes_away_ends_the_app_and_its_engine() {
    // Closing the window (here: killing tmux) must not leave the app behind,
    // spinning on a terminal that is gone, nor its engine process.
    let t = Tmux::start(
        "gone",
        "TOKENSCOPE_CONFIG=/nonexistent.toml",
        "--model smol",
        100,
        30,
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    let (app, engine) = (t.app_pid(), engine_pid(&t));
    t.cmd(&["kill-server"]);
    for (what, pid) in [("the app", app), ("its engine process", engine)] {
        common::wait_until_ended(pid as u32, 30, what);
    }
}

/// The token cursor's place, from the inspector's title: whether it is on a
/// prompt token (a message's), the token's number, and how many tokens its
/// message or reply has (` token 3/16 `, ` prompt token 1/33 · template `).
fn cursor_at(screen: &str) -> Option<(bool, usize, usize)> {
    screen.lines().find_map(|l| {
        let title = l.split('┌').nth(1)?;
        let (prompt, rest) = match title.strip_prefix(" prompt token ") {
            Some(rest) => (true, rest),
            None => (false, title.strip_prefix(" token ")?),
        };
        let (a, rest) = rest.split_once('/')?;
        let b = rest.split(' ').next()?;
        Some((prompt, a.parse().ok()?, b.parse().ok()?))
    })
}

/// How many tokens the last reply on screen has, from its header
/// (`assistant · SmolLM2… · 13 tok · 27.4 tok/s`, an ended reply's).
fn last_reply_tokens(screen: &str) -> Option<usize> {
    let header = screen
        .lines()
        .map(|l| l.split('│').next().unwrap_or("").trim())
        .rfind(|l| l.starts_with("assistant"))?;
    header
        .split(" · ")
        .find_map(|part| part.strip_suffix(" tok")?.parse().ok())
}

/// Whether the status bar says the reply is paused before token `n` (1-based).
fn paused_at(screen: &str, n: usize) -> bool {
    status_line(screen).contains(&format!("‖ step {n} ·")) && screen.contains("not drawn yet")
}

/// SmolLM2 (greedy, 16 tokens at most) in step mode, asked the capital of
/// France: the reply paused before its first token.
fn paused_in_step_mode(home: &tempfile::TempDir, name: &str) -> Tmux {
    let t = start_with(
        home,
        name,
        "--model smol --temp 0 --max-tokens 16",
        (120, 40),
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    t.keys(&["F7"]);
    t.type_text("What is the capital of France?");
    t.keys(&["Enter"]);
    t.wait("the first pause", 60, |s| paused_at(s, 1));
    t
}

#[test]
fn step_force_branch_switch_continue_edit_and_quit() {
    let home = home_with_bad_copies(&[]);
    // Step mode: the reply waits before its first token, showing what it may be.
    let t = paused_in_step_mode(&home, "steps");
    // Five tokens, one per press.
    for n in 1..=5 {
        t.keys(&["Right"]);
        t.wait(&format!("the pause before token {}", n + 1), 30, |s| {
            paused_at(s, n + 1)
        });
    }
    // Force the second candidate (its digit selects it, Enter forces): it
    // is token 6, marked forced.
    t.keys(&["2"]);
    t.wait("candidate 2 selected", 10, |s| {
        s.contains("Enter: candidate 2")
    });
    t.keys(&["Enter"]);
    t.wait("the pause after the forced token", 30, |s| paused_at(s, 7));
    t.keys(&["Tab"]);
    let s = t.wait("the token cursor on the forced token", 10, |s| {
        cursor_at(s) == Some((false, 6, 6))
    });
    assert!(
        s.contains("forced"),
        "the inspector says it was forced:\n{s}"
    );
    t.keys(&["Tab"]);
    t.wait("back to the pause", 10, |s| paused_at(s, 7));
    // F7 twice (step mode → to the next surprise → free): the reply runs on to its end.
    t.keys(&["F7"]);
    t.keys(&["F7"]);
    let first = t.wait("the reply to finish", 60, idle);
    assert!(first.contains("What is the capital of France?"), "{first}");

    // Branch at token 3 with its second candidate: the old reply stays.
    t.keys(&["Tab"]);
    t.keys(&["Home"]);
    t.keys(&["Right", "Right"]);
    t.wait("the cursor on token 3", 10, |s| {
        matches!(cursor_at(s), Some((false, 3, _)))
    });
    t.keys(&["Enter"]);
    t.wait("the chooser", 10, |s| s.contains("branch at token 3"));
    t.keys(&["2", "Enter"]);
    let branched = t.wait("the branch to finish", 60, |s| {
        idle(s) && s.contains("‹ 2/2 ›")
    });
    // Switch between the versions.
    t.keys(&["["]);
    let old = t.wait("the first version", 10, |s| s.contains("‹ 1/2 ›"));
    t.keys(&["]"]);
    t.wait("the branch again", 10, |s| s.contains("‹ 2/2 ›"));
    assert_ne!(flat(&old), flat(&branched), "the versions differ on screen");

    // The chat goes on from the version shown.
    t.keys(&["Tab"]);
    t.wait("typing", 10, |s| s.contains("message · Enter send"));
    t.type_text("Thanks!");
    t.keys(&["Enter"]);
    // Its reply's header below it (not the word anywhere, nor the text still
    // in the input box): the reply to it has come.
    t.wait("the next pause (step mode is off: none)", 60, |s| {
        idle(s)
            && s.split("Thanks!")
                .nth(1)
                .is_some_and(|below| below.contains("assistant ·"))
    });

    // Edit the first message: a new version of that turn, without the later ones.
    t.keys(&["Tab"]);
    t.keys(&["Home"]);
    // Not " token 1/" alone: a message's first token is "prompt token 1/".
    t.wait("the cursor on the last reply's first token", 10, |s| {
        last_reply_tokens(s).is_some_and(|n| cursor_at(s) == Some((false, 1, n)))
    });
    // Back over "Thanks!" (its tokens are the cursor's too) to the first reply:
    // over its closing `<|im_end|>` and line break first.
    t.keys(&["Left", "Left", "Left"]);
    t.wait("the cursor on the second message", 10, |s| {
        matches!(cursor_at(s), Some((true, ..))) && s.contains("your message")
    });
    t.keys(&["Home"]);
    t.wait("the second message's first token", 10, |s| {
        matches!(cursor_at(s), Some((true, 1, _)))
    });
    t.keys(&["Left"]);
    t.wait(
        "the cursor on the first reply's last token",
        10,
        |s| matches!(cursor_at(s), Some((false, a, b)) if a == b && a != 1),
    );
    t.keys(&["e"]);
    t.wait("the message to edit", 10, |s| {
        s.contains("editing an earlier message")
    });
    t.type_text(" One word.");
    t.keys(&["Enter"]);
    // The new version heads the chat (the input box may still show the text).
    let edited = t.wait("the edited turn's reply", 60, |s| {
        idle(s) && s.contains("you ‹ 2/2 ›") && s.contains("France? One word.")
    });
    assert!(
        !edited.contains("Thanks!"),
        "later turns belong to the old version:\n{edited}"
    );
    // Back to the first version of that message: its later turns return.
    t.keys(&["Tab"]);
    t.keys(&["{"]);
    t.wait("the first version with its turns", 10, |s| {
        s.contains("Thanks!") && s.contains("you ‹ 1/2 ›")
    });

    t.keys(&["q"]);
    t.wait("the quit to be armed", 10, |s| s.contains("Press q again"));
    t.keys(&["q"]);
    t.assert_exited_sane(0);
}

#[test]
fn a_prompt_tokens_surprise_and_the_what_if_sampler() {
    let home = home_with_bad_copies(&[]);
    let t = start_with(
        &home,
        "whatif",
        "--model smol --temp 0.7 --max-tokens 8",
        (130, 36),
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    t.type_text("What is the capital of France? Answer in one word, please.");
    t.keys(&["Enter"]);
    t.wait("the reply", 60, |s| idle(s) && s.contains("assistant ·"));
    // From the reply's first token back onto the message's last tokens.
    t.keys(&["Tab"]);
    t.keys(&["Home"]);
    t.wait("the reply's first token", 10, |s| {
        matches!(cursor_at(s), Some((false, 1, _)))
    });
    // Over the message's closing (`<|im_end|>`, a line break) onto its text.
    t.keys(&["Left", "Left", "Left", "Left"]);
    t.wait("a prompt token", 10, |s| {
        matches!(cursor_at(s), Some((true, ..))) && s.contains("your message")
    });
    // Its surprise is scored after the reply, in the background: the
    // message's perplexity appears once it is.
    t.wait("the message's own surprise", 60, |s| {
        s.contains("your message") && s.contains("message:") && s.contains("ppl")
    });
    // What-if: temperature down to 0: one candidate takes the sampler column.
    for _ in 0..8 {
        t.keys(&["t"]);
    }
    let s = t.wait("the what-if view at temperature 0", 10, |s| {
        s.contains("what-if T 0 ") && s.contains("greedy")
    });
    assert!(s.contains("100.00%"), "{s}");
    // Up again: the greedy cut is gone.
    t.keys(&["T", "T", "T", "T", "T", "T", "T", "T", "T", "T"]);
    let s = t.wait("the what-if view at temperature 1", 10, |s| {
        s.contains("what-if T 1 ")
    });
    assert!(!s.contains("greedy"), "{s}");
    t.keys(&["0"]);
    t.wait("the what-if view gone", 10, |s| !s.contains("what-if"));
    t.keys(&["q"]);
    t.wait("the quit to be armed", 10, |s| s.contains("Press q again"));
    t.keys(&["q"]);
    t.assert_exited_sane(0);
}

/// A model file larger than the memory available (a sparse fake, see
/// `common::fake_model`) is refused with the numbers, before anything is
/// read; SmolLM2 stays loaded and the chat goes on with it.
#[test]
fn a_model_larger_than_memory_is_refused_and_the_chat_goes_on() {
    let home = home_with_bad_copies(&[]);
    common::fake_model::write_larger_than_memory(&home.path().join("models/huge-Q4_1.gguf"));
    let t = start_in(&home, "memory");
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    exchange(&t, "Hello! Who are you?");

    t.keys(&["F2"]);
    // The fake's header names it after SmolLM2: it is listed by that name
    // (the filter below finds it by its file name).
    t.wait("the picker", 10, |s| {
        picker_open(s) && s.contains(" 2 found ")
    });
    t.type_text("huge");
    t.keys(&["Enter"]);
    let s = t.wait("the refusal", 30, |s| {
        idle(s) && flat(s).contains("Still using")
    });
    let f = flat(&s);
    assert!(
        f.contains("Could not load huge-Q4_1.gguf: not enough memory for huge-Q4_1.gguf")
            && f.contains("is available"),
        "{s}"
    );
    assert!(s.contains("Hello! Who are you?"), "the chat is kept: {s}");

    let s = exchange(&t, "The capital of France is");
    assert!(s.contains("The capital of France is"), "{s}");
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}

/// The chat against a real llama-server (issue 12): a configured server's
/// model streams into the TUI with its candidates, the status bar says
/// remote and where, the picker lists the server's model next to the local
/// files and switching between them works, step mode is refused in words,
/// Esc stops a reply, and a server killed mid-reply leaves the partial reply
/// on screen, marked failed, with what happened.
#[test]
fn chat_with_a_remote_llama_server_switch_cancel_and_a_dying_server() {
    let mut server = common::server::LlamaServer::start(common::SMOL, &["--ignore-eos"]);
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(common::model(common::SMOL), models.join(common::SMOL)).unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[[servers]]\nname = \"lab\"\nurl = \"{}\"\n", server.url),
    )
    .unwrap();
    let env = format!(
        "TOKENSCOPE_HOME='{}' TOKENSCOPE_CONFIG='{}'",
        home.path().display(),
        config.display()
    );
    let t = Tmux::start(
        "remote",
        &env,
        "--server lab --temp 0 --max-tokens 300",
        120,
        36,
    );
    let remote = format!("remote 127.0.0.1:{}", server.port);
    let s = t.wait("the server's model", 60, |s| {
        idle(s) && status_line(s).contains(&remote)
    });
    assert!(flat(&s).contains("remote llama-server"), "{s}");

    t.type_text("Hello! Who are you?");
    t.keys(&["Enter"]);
    // 300 tokens (no end of generation): minutes on a loaded two-core machine.
    let s = t.wait("the remote reply", 400, |s| {
        idle(s) && s.contains("assistant · SmolLM2") && s.contains("tok/s")
    });
    // The server's probabilities, and no entropy invented.
    assert!(s.contains("p=") && s.contains("entropy –"), "{s}");

    // Step mode needs logits: refused, in words.
    t.keys(&["F7"]);
    let s = t.wait("step mode refused", 10, |s| {
        flat(s).contains("Step mode needs the model's logits")
    });
    assert!(!status_line(&s).contains("step"), "{s}");

    // The picker lists the local file and the server's model, marked
    // remote; switching goes both ways as between local files.
    t.keys(&["F2"]);
    t.wait("the picker with both", 30, |s| {
        s.contains("@ lab") && s.contains("llama        135M Q4_1")
    });
    t.type_text("135M");
    t.keys(&["Enter"]);
    t.wait("the local model", 60, |s| {
        idle(s) && status_line(s).contains("Q4_1") && !status_line(s).contains("remote")
    });
    t.keys(&["F2"]);
    t.wait("the picker", 10, |s| s.contains("@ lab"));
    t.type_text("@ lab");
    t.keys(&["Enter"]);
    t.wait("the server's model again", 60, |s| {
        idle(s) && status_line(s).contains(&remote)
    });

    // Esc stops a long reply; the server is free for the next one.
    t.type_text("Write a very long story about a dragon.");
    t.keys(&["Enter"]);
    t.wait("the story to stream", 60, |s| {
        status_line(s).contains("generating") && s.contains("tok")
    });
    t.keys(&["Escape"]);
    let s = t.wait("the reply to stop", 30, idle);
    assert!(s.contains("stopped") || s.contains("cancelled"), "{s}");

    // The server dies a few tokens into the next reply: the partial reply
    // stays, marked failed. The server runs with --ignore-eos, so that every
    // reply runs to --max-tokens and this one is surely still streaming when
    // the server dies (at temperature 0, this reply after the cancelled one
    // ends by itself after 41 tokens, about 0.5 s: a kill 0.3 s after
    // "generating" appeared came after its end, which is why it once read
    // as complete).
    t.type_text("Write another very long story about a knight.");
    t.keys(&["Enter"]);
    let generated = |s: &str| -> usize {
        let line = status_line(s);
        line.split("generating ")
            .nth(1)
            .and_then(|r| r.split(" tok").next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let ctx = |s: &str| -> usize {
        status_line(s)
            .split("ctx ")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a context count: {s}"))
    };
    let s = t.wait("the second story to stream", 60, |s| generated(s) >= 3);
    let (n1, ctx1) = (generated(&s), ctx(&s));
    let s = t.wait("more of it", 60, |s| generated(s) >= n1 + 5);
    let before = generated(&s);
    // The context count is the server's prompt count plus the tokens so far
    // (not 0, not the last reply's): it grows with the reply.
    assert_eq!(ctx(&s) - ctx1, before - n1, "{s}");
    assert!(ctx1 > n1 + 50, "the prompt holds three turns: {s}");
    server.kill();
    let s = t.wait("the dropped connection", 60, |s| {
        idle(s) && flat(s).contains("dropped mid-reply")
    });
    let text = flat(&s);
    assert!(text.contains("The partial reply is kept"), "{s}");
    let kept: usize = text
        .split("dropped mid-reply after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a token count: {s}"));
    assert!(
        (before..300).contains(&kept),
        "{before} tokens on screen before the kill, of 300: {s}"
    );
    assert!(s.contains("failed"), "{s}");
    assert!(s.contains("knight"), "the partial reply is on screen: {s}");

    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}

/// A remote reply in Chinese through llama-server, which merges characters
/// split over byte tokens into one stream entry: the TUI gets one step per
/// generated token, so the reply runs to its limit of 20 tokens (the
/// inspector's last token is #20), not to the number of characters.
#[test]
fn a_remote_chinese_reply_has_one_step_per_token() {
    let server = common::server::LlamaServer::start(common::SMOL, &[]);
    let home = tempfile::tempdir().unwrap();
    let env = format!(
        "TOKENSCOPE_HOME='{}' TOKENSCOPE_CONFIG=/nonexistent/tokenscope.toml",
        home.path().display()
    );
    let t = Tmux::start(
        "remote-zh",
        &env,
        &format!("--server {} --raw --temp 0 --max-tokens 20", server.url),
        120,
        36,
    );
    t.wait("the server's model", 60, |s| {
        idle(s) && status_line(s).contains("remote")
    });
    t.type_text("Chinese: 你好，世界！ Chinese: 你好，世界！ Chinese:");
    t.keys(&["Enter"]);
    let s = t.wait("the whole reply", 120, |s| {
        idle(s) && s.contains("[cut: max tokens reached]")
    });
    assert!(s.contains(" last token #20 "), "{s}");
    assert!(s.contains("你好"), "{s}");
}

/// The popup's text: each line's part between its first and last `│` (the
/// lens sits over the chat and under the inspector's column).
fn lens_text(screen: &str) -> String {
    screen
        .lines()
        .filter_map(|l| {
            let a = l.find('│')?;
            let b = l.rfind('│')?;
            (b > a).then(|| l[a + '│'.len_utf8()..b].trim_end().to_string())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn l_opens_the_layer_lens_of_a_reply_token_and_a_shows_its_attention_on_the_chat() {
    let home = home_with_bad_copies(&[]);
    let t = start_in(&home, "lens");
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    exchange(&t, "What is the capital of France?");
    // The token cursor on the reply's last token, then two back.
    t.keys(&["Tab"]);
    t.keys(&["Left", "Left"]);
    t.wait(
        "the cursor two tokens back",
        10,
        |s| matches!(cursor_at(s), Some((false, a, b)) if b >= 3 && a == b - 2),
    );
    t.keys(&["l"]);
    // Complete: the model's own row is the grid's last, drawn after every layer's.
    let s = t.wait("the lens of the token", 180, |s| {
        s.contains(" model ") && s.contains("L29") && flat(s).contains("top-1 first at")
    });
    let grid = lens_text(&s);
    assert!(s.contains("┌ layer lens · "), "{s}");
    for l in ["L0 ", "L15 ", "L29 "] {
        assert!(grid.contains(l), "row {l} of SmolLM2's 30 layers:\n{s}");
    }
    assert!(grid.contains("(of 30 layers)"), "{s}");
    // The attention view: the box names the layer as the grid does (L29 of
    // 30), the chat shows again.
    t.keys(&["a"]);
    let s = t.wait("the attention view", 10, |s| {
        s.contains("attention · L29 of 30 layers") && s.contains("the mean of its 9 heads")
    });
    assert!(
        s.contains("What is the capital of France?"),
        "the chat is in view:\n{s}"
    );
    t.keys(&["Up"]);
    t.wait("the layer above", 10, |s| {
        s.contains("attention · L28 of 30 layers")
    });
    t.keys(&["h"]);
    t.wait("one head", 10, |s| s.contains("head 1 of 9"));
    t.keys(&["Escape"]);
    t.wait("the lens closed", 10, |s| !s.contains("attention · L"));
    t.keys(&["q", "q"]);
    t.assert_exited_sane(0);
}

/// Step mode: at a pause, `l` lenses the undecided next token in the pause
/// (the engine serves it there); the lens's model row's top-1 is the
/// chooser's first candidate; Esc closes it and the reply steps on.
#[test]
fn l_at_a_paused_step_lenses_the_next_token_and_the_reply_steps_on() {
    let home = home_with_bad_copies(&[]);
    let t = paused_in_step_mode(&home, "steplens");
    t.keys(&["Right"]);
    let chooser = t.wait("the pause before token 2", 30, |s| paused_at(s, 2));
    // The chooser's first candidate's p (the model's, "40.96%").
    let first_p = |line: &str| -> f32 {
        line.split_whitespace()
            .find_map(|w| w.strip_suffix('%')?.parse().ok())
            .unwrap_or_else(|| panic!("a p in {line:?}"))
    };
    let chooser_p = first_p(
        chooser
            .lines()
            .find(|l| l.contains("1▶"))
            .unwrap_or_else(|| panic!("the first candidate:\n{chooser}")),
    );
    t.keys(&["l"]);
    let s = t.wait("the lens of the next token", 180, |s| {
        s.contains(" model ") && s.contains("L29") && flat(s).contains("top-1 first at")
    });
    // The lens's last row, the model's own: the paused step's candidates.
    let model_row = s
        .lines()
        .filter_map(|l| l.split('│').nth(1))
        .find(|l| l.trim_start().starts_with("model "))
        .unwrap_or_else(|| panic!("the model row:\n{s}"));
    let lens_p = first_p(model_row);
    assert!(
        (chooser_p - lens_p).abs() <= 0.5,
        "the lens's top-1 {lens_p}% is the chooser's {chooser_p}%:\n{chooser}\n{s}"
    );
    assert!(
        s.contains("layer lens · the next token (reply token 2"),
        "{s}"
    );
    t.keys(&["Escape"]);
    t.wait("the lens closed, still paused", 10, |s| {
        !s.contains("layer lens") && paused_at(s, 2)
    });
    t.keys(&["Right"]);
    t.wait("the pause before token 3", 30, |s| paused_at(s, 3));
    // Esc stops the paused reply; then Ctrl-C twice quits.
    t.keys(&["Escape"]);
    t.wait("the reply stopped", 30, idle);
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}

/// `w` in the token cursor: the reply's context generated again with and
/// without the KV cache (16 tokens at most), each run's tokens charted as
/// they come, then the totals; Esc closes.
#[test]
fn w_times_the_reply_with_and_without_the_kv_cache() {
    let home = home_with_bad_copies(&[]);
    let t = start_with(
        &home,
        "kvcost",
        "--model smol --temp 0 --max-tokens 16",
        (120, 40),
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    exchange(&t, "What is the capital of France?");
    t.keys(&["Tab"]);
    t.keys(&["w"]);
    // Complete: the totals line comes with the final event.
    let s = t.wait("both runs' totals", 120, |s| {
        flat(s).contains("× faster") && s.contains("Esc close")
    });
    let f = flat(&s);
    assert!(f.contains("totals: "), "{s}");
    assert!(
        f.contains("with the KV cache: 16 tokens") && f.matches("16 tokens,").count() == 2,
        "16 tokens each:\n{s}"
    );
    assert!(
        s.contains("with KV cache") && s.contains("without (recomputed)"),
        "the legend:\n{s}"
    );
    // The ratio is a number above 1: the cache saves time even at 16 tokens.
    let ratio: f64 = f
        .split("makes it ")
        .nth(1)
        .and_then(|r| r.split('×').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("a ratio:\n{s}"));
    assert!(ratio > 1.0, "{ratio}:\n{s}");
    t.keys(&["Escape"]);
    t.wait("the view closed", 10, |s| {
        !s.contains("what the KV cache saves")
    });
    t.keys(&["q", "q"]);
    t.assert_exited_sane(0);
}

#[test]
fn typing_in_the_chooser_previews_the_text_and_ctrl_f_searches_the_vocabulary() {
    let home = home_with_bad_copies(&[]);
    let t = start_with(
        &home,
        "ask",
        "--model smol --temp 0 --max-tokens 16",
        (140, 40),
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    t.keys(&["F7"]);
    t.type_text("What is the capital of France?");
    t.keys(&["Enter"]);
    t.wait("the first pause", 60, |s| paused_at(s, 1));
    // Typed text is previewed, nothing committed: its tokens with their p,
    // then the whole's p (drawn last, in the same frame: the marker).
    t.type_text("Paris");
    let s = t.wait("the preview of the text", 60, |s| {
        s.contains("Paris = [") && s.contains("whole p=")
    });
    assert!(paused_at(&s, 1), "still paused before token 1:\n{s}");
    // Ctrl-F: the same text searches the vocabulary instead.
    t.keys(&["C-f"]);
    let s = t.wait("the vocabulary search", 60, |s| {
        s.contains("containing \"Paris\"") && s.contains("rank ")
    });
    assert!(s.contains("Ctrl-F"), "how to go back is said:\n{s}");
    assert!(paused_at(&s, 1), "still paused:\n{s}");
    // Enter forces the most likely match: token 1 is drawn, forced.
    t.keys(&["Enter"]);
    t.wait("the pause after the forced token", 60, |s| paused_at(s, 2));
}
