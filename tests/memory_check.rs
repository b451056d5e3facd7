//! A model larger than the memory available is refused before llama.cpp
//! reads it, with what it needs and what there is, and the model in use stays
//! usable. The large model is a fake: SmolLM2's cut-down header (the fuzz
//! corpus) with its last tensor grown past twice the machine's `MemAvailable`,
//! in a sparse file of that length, so nothing is really read or allocated.

mod common;

use std::path::PathBuf;

use tokenscope::engine::{EngineError, Event, ModelRef};

fn fake_in_tempdir() -> (tempfile::TempDir, PathBuf, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge-Q4_1.gguf");
    let size = common::fake_model::write_larger_than_memory(&path);
    (dir, path, size)
}

#[test]
fn a_model_larger_than_memory_is_refused_and_the_loaded_one_keeps_working() {
    let (_dir, big, size) = fake_in_tempdir();
    let mut e = common::engine(common::SMOL, common::config_with(512));
    let before = e
        .generate(common::user("Hi"), false, common::no_truncation(0.0), 4)
        .expect("the demo model replies");

    let id = e.next_request();
    e.handle
        .load(id, 0, ModelRef::Local(big), e.config.load_settings());
    let err = e.collect(id).expect_err("the load is refused");
    let text = err.to_string();
    assert!(matches!(err, EngineError::NotEnoughMemory(_)), "{err:?}");
    let needs = tokenscope::catalog::size_human(size);
    assert!(
        text.contains("not enough memory")
            && text.contains(&format!("{needs} of weights"))
            && text.contains("is available")
            && text.contains("--ctx"),
        "{text}"
    );

    // The model in slot 0 is still SmolLM2, and replies as before.
    let after = e
        .generate(common::user("Hi"), false, common::no_truncation(0.0), 4)
        .expect("the demo model still replies");
    assert_eq!(after.text, before.text);
    assert!(
        e.rx.try_iter()
            .all(|ev| !matches!(ev, Event::Loaded { .. }))
    );
}

#[test]
fn the_command_line_refuses_it_with_the_numbers() {
    let (dir, big, _) = fake_in_tempdir();
    let args = [
        "run",
        "--model",
        big.to_str().unwrap(),
        "--prompt",
        "hi",
        "--max-tokens",
        "2",
    ];
    let (stdout, stderr, ok) = common::run_binary(dir.path(), &args);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("not enough memory")
            && stderr.contains("TOKENSCOPE_NO_MEMORY_CHECK=1 skips this check"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The check turned off: llama.cpp gets the file, and says what is wrong
    // with it (its grown tensor has the wrong shape), without reading it.
    let (_, stderr, ok) = common::run_binary_with(
        &[
            ("TOKENSCOPE_MODELS_DIR", dir.path()),
            ("TOKENSCOPE_NO_MEMORY_CHECK", std::path::Path::new("1")),
        ],
        &args,
    );
    assert!(!ok);
    assert!(
        !stderr.contains("not enough memory") && stderr.contains("wrong shape"),
        "{stderr}"
    );
    // Its card still shows (the header is fine): `info` reads no weights.
    let (stdout, stderr, ok) = common::run_binary(dir.path(), &["info", big.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("huge-Q4_1"), "{stdout}");
}
