//! Terminals without colour: NO_COLOR (set and not empty) and TERM=dumb give
//! plain output from every command, on a terminal (tmux) and off one; the
//! chat refuses a dumb terminal with a clear message and leaves it sane.

mod common;

use common::tmux::Tmux;

/// Runs `tokenscope ARGS` under `env` in a terminal (tmux, 200 columns) and
/// returns the screen with its styles as escape sequences (`capture-pane -e`)
/// once it exited with `code` (waits long: the tests run commands side by side).
fn on_terminal(name: &str, env: &str, args: &str, code: i32) -> String {
    let env = format!("TOKENSCOPE_CONFIG=/nonexistent.toml {env}");
    let t = Tmux::start(name, &env, args, 200, 50);
    let marker = format!("EXITED:{code}");
    let plain = t.wait("the command to exit", 300, |s| s.contains("EXITED:"));
    assert!(plain.contains(&marker), "expected {marker}:\n{plain}");
    t.cmd(&["capture-pane", "-e", "-p", "-t", "e2e"])
}

/// Whether `screen` (from `capture-pane -e`) holds a colour: an SGR
/// foreground or background (30–38, 40–48, 90–107; 39 and 49, the
/// defaults, that tmux writes after any styled cell, are none).
fn has_colour(screen: &str) -> bool {
    screen.split('\u{1b}').skip(1).any(|seq| {
        let Some(params) = seq.strip_prefix('[').and_then(|s| s.split_once('m')) else {
            return false;
        };
        params.0.split(';').any(|p| {
            p.parse::<u32>()
                .is_ok_and(|n| ((30..=48).contains(&n) && n != 39) || (90..=107).contains(&n))
        })
    })
}

fn smol() -> String {
    format!("'{}'", common::model(common::SMOL).display())
}

#[test]
fn score_colours_a_terminal_unless_no_color_or_a_dumb_terminal() {
    let args = format!(
        "score -m {} --text 'The capital of France is Paris.'",
        smol()
    );
    let coloured = on_terminal("heat", "", &args, 0);
    assert!(
        has_colour(&coloured),
        "the control: heat colours on a terminal, or this test proves nothing:\n{coloured}"
    );
    for (name, env) in [("nocolor", "NO_COLOR=1"), ("dumb", "TERM=dumb")] {
        let screen = on_terminal(name, env, &args, 0);
        assert!(!has_colour(&screen), "{env}: colour on screen:\n{screen:?}");
        assert!(
            screen.contains("Paris") && screen.contains("tokens scored"),
            "{screen}"
        );
    }
    // NO_COLOR set but empty turns nothing off (the convention).
    assert!(has_colour(&on_terminal("empty", "NO_COLOR=", &args, 0)));
}

#[test]
fn every_command_is_plain_under_no_color_and_a_dumb_terminal() {
    let m = smol();
    let commands = [
        format!("run -m {m} --raw --temp 0 --max-tokens 4 --prompt 'One, two,'"),
        format!("score -m {m} --text 'One, two, three.'"),
        format!("compare -m {m} -m {m} --text 'One, two, three.'"),
        format!("info {m}"),
        "models".to_string(),
        "paths".to_string(),
        "chats".to_string(),
        "--help".to_string(),
    ];
    // Each command under each variable at once (most of the time is waiting).
    std::thread::scope(|scope| {
        for (e, env) in ["NO_COLOR=1", "TERM=dumb"].into_iter().enumerate() {
            for (i, args) in commands.iter().enumerate() {
                scope.spawn(move || plain_on_a_terminal_and_a_pipe(&format!("c{e}{i}"), env, args));
            }
            // A command-line error (clap's, coloured on a terminal) too, with
            // CI set as CI machines do (clap's own "auto" colours a dumb
            // terminal then).
            scope.spawn(move || {
                let screen =
                    on_terminal(&format!("bad{e}"), &format!("CI=true {env}"), "--bogus", 2);
                assert!(
                    !has_colour(&screen) && screen.contains("--bogus"),
                    "{env}: {screen:?}"
                );
            });
        }
    });
}

/// `env tokenscope args` succeeds with no colour on a terminal and not one
/// escape byte through a pipe.
fn plain_on_a_terminal_and_a_pipe(name: &str, env: &str, args: &str) {
    let screen = on_terminal(name, env, args, 0);
    assert!(
        !has_colour(&screen),
        "{env} tokenscope {args}: colour on screen:\n{screen:?}"
    );
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{env} '{}' {args}",
            env!("CARGO_BIN_EXE_tokenscope")
        ))
        .env("TOKENSCOPE_CONFIG", "/nonexistent.toml")
        .env("TOKENSCOPE_MODELS_DIR", common::models_dir())
        .env("TOKENSCOPE_HOME", home.path())
        .output()
        .expect("the command runs");
    assert!(out.status.success(), "{env} tokenscope {args}: {out:?}");
    for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !bytes.contains(&0x1b),
            "{env} tokenscope {args}: an escape on {what}: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn the_chat_refuses_a_dumb_terminal_and_leaves_it_sane() {
    let t = Tmux::start(
        "dumbtui",
        "TERM=dumb TOKENSCOPE_CONFIG=/nonexistent.toml",
        "",
        100,
        30,
    );
    let s = t.assert_exited_sane(1);
    // The message wraps at the window's edge, inside words: compared without spaces.
    let squeezed: String = s.split_whitespace().collect();
    for needle in ["error:", "TERM=dumb", "tokenscope run --prompt"] {
        assert!(
            squeezed.contains(&needle.replace(' ', "")),
            "a message that says why and what to use instead ({needle}):\n{s}"
        );
    }
    assert!(!s.contains("next token"), "the chat never drew:\n{s}");
}
