//! Text from a model file never reaches the terminal raw: `models`, `info` and
//! `run`'s footer on GGUF files whose name, architecture, keys and chat
//! template hold escape sequences, C1 controls and bidi overrides.

mod common;

use std::path::Path;

use common::gguf_edit::{Meta, copy_with_metadata, header_only, str};

/// `general.name`: a colour, a window-title sequence, a right-to-left override.
const NAME: &str = "\x1b[31mX\x1b]0;t\x07\u{202e}Y";

fn tokenscope(models_dir: &Path, args: &[&str]) -> (String, String, bool) {
    common::run_binary(models_dir, args)
}

/// Nothing a terminal would act on: ESC, BEL, C1 controls, bidi controls.
fn assert_safe(what: &str, out: &str) {
    for c in out.chars() {
        assert!(
            !tokenscope::text::is_unsafe(c) || c == '\n',
            "{what}: {c:?} reached the terminal in\n{out}"
        );
    }
}

fn hostile_header() -> Vec<u8> {
    header_only(&[
        ("general.architecture", str("ll\x1b[2Jama\u{202e}")),
        ("general.name", str(NAME)),
        ("general.file_type", Meta::U32(3)),
        ("x.\x1b[1mkey\u{202e}", str("v\u{9b}31m\x1b[0m")),
        (
            "tokenizer.chat_template",
            str("{{ '\x1b[31m' }}\u{202e}\n{% for m in messages %}{{ m.content }}{% endfor %}"),
        ),
    ])
}

#[test]
fn models_and_info_escape_the_files_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.gguf");
    std::fs::write(&file, hostile_header()).unwrap();
    let path = file.to_str().unwrap();

    let (stdout, stderr, ok) = tokenscope(dir.path(), &["models"]);
    assert!(ok, "{stderr}");
    assert_safe("models", &stdout);
    assert!(
        stdout.contains("␛[31mX␛]0;t␇<U+202E>Y") && stdout.contains("ll␛[2Jama<U+202E>"),
        "the text is shown escaped, not dropped: {stdout}"
    );

    // JSON: the card's text is the escaped text; the raw template is exact
    // data, with what a terminal would act on written as \u escapes.
    let (stdout, stderr, ok) = tokenscope(dir.path(), &["models", "--format", "jsonl"]);
    assert!(ok, "{stderr}");
    assert_safe("models --format jsonl", &stdout);
    let card: serde_json::Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|c| c["file_name"] == "hostile.gguf")
        .expect("the hostile file is listed");
    assert_eq!(card["name"], "␛[31mX␛]0;t␇<U+202E>Y");
    assert_eq!(card["arch"], "ll␛[2Jama<U+202E>");
    assert!(
        card["chat_template"]
            .as_str()
            .unwrap()
            .starts_with("{{ '\x1b[31m' }}\u{202e}"),
        "the template itself is kept: {card}"
    );

    let (stdout, stderr, ok) = tokenscope(dir.path(), &["info", path]);
    assert!(ok, "{stderr}");
    assert_safe("info", &stdout);
    for want in [
        "name:            ␛[31mX␛]0;t␇<U+202E>Y",
        "architecture:    ll␛[2Jama<U+202E>",
        "    | {{ '␛[31m' }}<U+202E>",
    ] {
        assert!(stdout.contains(want), "{want:?} missing in\n{stdout}");
    }
    let key_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("x.␛[1mkey<U+202E> "))
        .unwrap_or_else(|| panic!("the key is listed escaped:\n{stdout}"));
    assert!(key_line.ends_with("= v\\x9b31m␛[0m"), "{key_line}");

    let (stdout, stderr, ok) = tokenscope(dir.path(), &["info", path, "--format", "jsonl"]);
    assert!(ok, "{stderr}");
    assert_safe("info --format jsonl", &stdout);
    let card: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(card["name"], "␛[31mX␛]0;t␇<U+202E>Y");
}

#[test]
fn run_footer_escapes_the_model_name() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("smol-hostile-name.gguf");
    copy_with_metadata(
        &common::model(common::SMOL),
        &copy,
        // The name is built from the base name (then the size label) when
        // the header has one, as SmolLM2's does.
        &[("general.name", str(NAME)), ("general.basename", str(NAME))],
        &[],
    )
    .unwrap();
    let (stdout, stderr, ok) = tokenscope(
        dir.path(),
        &[
            "run",
            "--model",
            copy.to_str().unwrap(),
            "-p",
            "hi",
            "--temp",
            "0",
            "--max-tokens",
            "2",
        ],
    );
    assert!(ok, "{stderr}");
    assert_safe("run", &stdout);
    assert!(
        stdout.contains("␛[31mX␛]0;t␇<U+202E>Y 135M · Q4_1"),
        "footer: {stdout}"
    );
}
