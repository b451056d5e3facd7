//! Every bad input gets one clear message on stderr and a non-zero exit:
//! no panic, no abort, no core dump.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::demo_home as home;

fn tokenscope(home: &Path, args: &[&str]) -> Output {
    tokenscope_env(home, args, &[])
}

fn tokenscope_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokenscope"))
        .args(args)
        .envs(env.iter().copied())
        .env("TOKENSCOPE_HOME", home)
        .env("TOKENSCOPE_CONFIG", home.join("no-config.toml"))
        .env_remove("TOKENSCOPE_MODEL")
        .env_remove("TOKENSCOPE_MODELS_DIR")
        .output()
        .expect("binary runs")
}

/// Fails cleanly (exit code 1, not a signal) with a message containing all of `needles`.
fn assert_clean_failure(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status {:?}, stderr: {stderr}",
        out.status
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in: {stderr}");
    }
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn run_args<'a>(model: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "--model",
        model,
        "--prompt",
        "hi",
        "--max-tokens",
        "2",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn missing_file() {
    let h = home();
    let out = tokenscope(h.path(), &run_args("/nonexistent/model.gguf", &[]));
    assert_clean_failure(&out, &["/nonexistent/model.gguf"]);
}

#[test]
fn file_that_is_not_gguf() {
    let h = home();
    let bad = h.path().join("notes.gguf");
    std::fs::write(&bad, "these are my notes, not a model\n").unwrap();
    let out = tokenscope(h.path(), &run_args(bad.to_str().unwrap(), &[]));
    assert_clean_failure(&out, &["not a GGUF"]);
}

#[test]
fn truncated_gguf_is_caught_before_llama_cpp() {
    let h = home();
    let full = std::fs::read(common::model(common::SMOL)).unwrap();
    for cut in [10usize, 4096, full.len() / 2, full.len() - 1] {
        let bad: PathBuf = h.path().join(format!("cut-{cut}.gguf"));
        std::fs::write(&bad, &full[..cut]).unwrap();
        let out = tokenscope(h.path(), &run_args(bad.to_str().unwrap(), &[]));
        assert_clean_failure(&out, &["incomplete"]);
    }
}

#[test]
fn name_matching_no_model_lists_what_exists() {
    let h = home();
    let out = tokenscope(h.path(), &run_args("llama-70b", &[]));
    assert_clean_failure(&out, &["llama-70b", common::SMOL, common::GEMMA]);
}

#[test]
fn name_matching_several_models_lists_them() {
    let h = home();
    let out = tokenscope(h.path(), &run_args("gguf", &[]));
    assert_clean_failure(&out, &[common::SMOL, common::GEMMA]);
}

#[test]
fn invalid_flag_values_name_the_flag_the_value_and_range() {
    let h = home();
    for (flag, value, range) in [
        ("--temp", "-1", "between 0 and 5"),
        ("--top-p", "1.5", "(0, 1]"),
        ("--min-p", "2", "[0, 1)"),
        ("--repeat-penalty", "0", "between 0.1 and 5"),
        ("--ctx", "8", "between 64 and"),
        ("--threads", "5000", "1024"),
        ("--top-k", "2000000", "at most"),
    ] {
        let out = tokenscope(h.path(), &run_args("smol", &[flag, value]));
        let err = assert_clean_failure(&out, &[&format!("invalid {flag} {value}"), range]);
        assert!(!err.contains("command line:"), "{err}");
    }
}

#[test]
fn candidates_are_checked_as_typed_not_wrapped() {
    let h = home();
    // 4294967297 = 2^32 + 1 once passed as 1 (a cast to u32 before the check);
    // 2^32 + 100 passed as 100 and made the worker report every token of the vocabulary.
    for value in [
        "4294967297",
        "4294967396",
        "0",
        "257",
        "18446744073709551615",
    ] {
        let out = tokenscope(h.path(), &run_args("smol", &["--candidates", value]));
        let err = assert_clean_failure(
            &out,
            &[
                &format!("invalid --candidates {value}"),
                "between 1 and 256",
            ],
        );
        assert!(!err.contains("inspector_top_k"), "names the flag: {err}");
    }
    let out = tokenscope(h.path(), &run_args("smol", &["--candidates", "256"]));
    assert!(
        out.status.success(),
        "256 is allowed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_inspector_top_k_in_the_config_file_names_the_key_and_the_file() {
    let h = home();
    let cfg = h.path().join("mine.toml");
    std::fs::write(&cfg, "inspector_top_k = 4294967297\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokenscope"))
        .args(run_args("smol", &[]))
        .env("TOKENSCOPE_HOME", h.path())
        .env("TOKENSCOPE_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_clean_failure(
        &out,
        &[
            "mine.toml",
            "inspector_top_k = 4294967297",
            "between 1 and 256",
        ],
    );
}

#[test]
fn bad_config_file_is_reported_with_its_path() {
    let h = home();
    let cfg = h.path().join("bad.toml");
    std::fs::write(&cfg, "[sampling]\ntemprature = 0.5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokenscope"))
        .args(["run", "--model", "smol", "--prompt", "hi"])
        .env("TOKENSCOPE_HOME", h.path())
        .env("TOKENSCOPE_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_clean_failure(&out, &["bad.toml", "temprature"]);
}

#[test]
fn prompt_longer_than_the_context() {
    let h = home();
    let long = "word ".repeat(600);
    let out = tokenscope(
        h.path(),
        &[
            "run", "--model", "gemma", "--raw", "--ctx", "256", "--prompt", &long,
        ],
    );
    assert_clean_failure(&out, &["context holds 256", "--ctx"]);
}

#[test]
fn a_panic_in_the_engine_is_an_error_with_its_message_and_location() {
    let h = home();
    let out = tokenscope_env(
        h.path(),
        &run_args("smol", &[]),
        &[("TOKENSCOPE_TEST_ENGINE_PANIC", "generate")],
    );
    // Exit code 1, one "error: " line, no Rust panic report on the terminal.
    assert_clean_failure(
        &out,
        &[
            "the engine crashed",
            "TOKENSCOPE_TEST_ENGINE_PANIC=generate: a test asked the engine to panic",
            "src/engine/worker.rs:",
        ],
    );
    // The details (with a backtrace) are in the log file.
    let log = std::fs::read_to_string(h.path().join("logs/tokenscope.log")).unwrap();
    assert!(log.contains("engine thread panicked"), "{log}");
}
