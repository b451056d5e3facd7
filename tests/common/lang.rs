//! Running the binary in a chosen language, and reading its text output
//! by display width (Chinese is two columns a character).

use std::path::Path;

use unicode_width::UnicodeWidthStr;

/// The binary with no locale variable but `LANG=lang` when given, the demo
/// models, no other model store, no config file, and the variables `env`:
/// (stdout, stderr, success).
pub fn run_in(lang: Option<&str>, env: &[(&str, &Path)], args: &[&str]) -> (String, String, bool) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"));
    for k in ["LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"] {
        c.env_remove(k);
    }
    if let Some(v) = lang {
        c.env("LANG", v);
    }
    let out = c
        .args(args)
        .env("TOKENSCOPE_SOURCES", "")
        .env("TOKENSCOPE_MODELS_DIR", super::models_dir())
        .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
        .envs(env.iter().copied())
        .output()
        .expect("binary runs");
    (
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// None of `labels` is in `text`.
pub fn assert_no_english(text: &str, labels: &[&str]) {
    for l in labels {
        assert!(!text.contains(l), "English label {l:?} left in:\n{text}");
    }
}

/// The display column where `needle` starts in `line`.
pub fn column(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in {line:?}"));
    line[..at].width()
}
