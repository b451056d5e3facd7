//! `tokenscope chats`, `export` and `import` on a conversation with real
//! traces (SmolLM2 through the engine), branches included: export → import
//! round-trips every stored field; the Markdown shows the tokens; `-o -` is
//! standard output; a data directory mounted read-only is read.

mod common;

use std::path::Path;

use tokenscope::conversation::{Conversation, Node, Status};
use tokenscope::store::Store;

/// Runs the binary with `home` as TOKENSCOPE_HOME: (stdout, stderr, success).
fn run(home: &std::path::Path, args: &[&str]) -> (String, String, bool) {
    common::run_binary_with(&[("TOKENSCOPE_HOME", home)], args)
}

/// A conversation of real replies: a question, two sampled replies to it
/// (siblings), and a follow-up under the first.
fn real_conversation() -> Conversation {
    let mut e = common::engine(common::SMOL, common::config_with(512));
    let vocab = e.vocab.clone();
    let mut c = Conversation::new(Some("Be brief."));
    let u = c.append(Node::user("What is the capital of France?"));
    let mut replies = Vec::new();
    for seed in [1, 2] {
        let sampling = tokenscope::engine::SamplingParams {
            seed,
            ..common::no_truncation(1.0)
        };
        let r = e
            .generate(
                common::user("What is the capital of France?"),
                false,
                sampling.clone(),
                8,
            )
            .unwrap();
        let mut n = Node::assistant(Some(e.info.name.clone()), Some(vocab.clone()));
        for s in r.steps {
            n.push_step(s);
        }
        n.stats = Some(r.stats);
        n.sampling = Some(sampling);
        n.seed = Some(seed);
        n.status = Status::Done;
        replies.push(c.add_child(u, n));
    }
    c.show(replies[0]);
    c.append(Node::user("And of Italy?"));
    c
}

#[test]
fn export_import_round_trips_a_conversation_with_branches_and_traces() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("conversations.sqlite3");
    let conv = real_conversation();
    let id = Store::open(&db)
        .unwrap()
        .save(None, &conv, None)
        .unwrap()
        .unwrap()
        .id;

    let (out, err, ok) = run(home.path(), &["chats"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("What is the capital of France?") && out.contains("SmolLM2"),
        "{out}"
    );

    let file = home.path().join("c.jsonl");
    let (_, err, ok) = run(
        home.path(),
        &["export", &id.to_string(), "-o", file.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let (out, err, ok) = run(home.path(), &["import", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let new_id: i64 = out
        .split("as conversation ")
        .nth(1)
        .and_then(|r| r.trim().trim_end_matches('.').parse().ok())
        .unwrap_or_else(|| panic!("the new id: {out}"));
    assert_ne!(new_id, id);

    let store = Store::open(&db).unwrap();
    let (a, b) = (store.read(id).unwrap(), store.read(new_id).unwrap());
    assert_eq!(a, b, "every node, branch, trace and time, exactly");
    assert_eq!(a.nodes.len(), 5, "root, question, two replies, follow-up");
    assert!(
        a.nodes[2].steps.iter().all(|s| s.dist.is_some()),
        "traces kept"
    );

    // Exported again, the same bytes.
    let again = home.path().join("again.jsonl");
    run(
        home.path(),
        &["export", &new_id.to_string(), "-o", again.to_str().unwrap()],
    );
    let (x, y) = (
        std::fs::read_to_string(&file).unwrap(),
        std::fs::read_to_string(&again).unwrap(),
    );
    assert_eq!(x, y);

    let (md, err, ok) = run(home.path(), &["export", &id.to_string(), "--format", "md"]);
    assert!(ok, "{err}");
    assert!(
        md.contains("## User\n\nWhat is the capital of France?"),
        "{md}"
    );
    assert!(
        md.contains("| # | token | p | entropy (bits) | other candidates |"),
        "{md}"
    );
    // The first reply's first token, with its text, in the table.
    let first = &a.nodes[2].steps[0];
    let text = tokenscope::text::readable_piece(
        &a.nodes[2]
            .pieces
            .iter()
            .find(|(id, _)| *id == first.id)
            .unwrap()
            .1,
    );
    assert!(
        md.contains(&format!("| 0 | `{text}` |")),
        "{text:?} in {md}"
    );
}

#[test]
fn bad_ids_files_and_newer_databases_get_clear_errors() {
    let home = tempfile::tempdir().unwrap();
    let (_, err, ok) = run(home.path(), &["export", "42"]);
    assert!(!ok);
    assert!(
        err.contains("no saved conversation has id 42") && err.contains("tokenscope chats"),
        "{err}"
    );

    let junk = home.path().join("junk.jsonl");
    std::fs::write(&junk, "not json\n").unwrap();
    let (_, err, ok) = run(home.path(), &["import", junk.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a tokenscope export header"), "{err}");

    let (_, err, ok) = run(home.path(), &["import", "/nonexistent/x.jsonl"]);
    assert!(!ok);
    assert!(err.contains("cannot open /nonexistent/x.jsonl"), "{err}");

    let store = Store::open(&home.path().join("conversations.sqlite3")).unwrap();
    store
        .conn()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    drop(store);
    let (_, err, ok) = run(home.path(), &["chats"]);
    assert!(!ok);
    assert!(
        err.contains("schema version 99") && err.contains("upgrade tokenscope"),
        "{err}"
    );
}

/// A conversation of one user message `text`, saved in `home`'s database: its id.
fn saved_with_one_message(home: &std::path::Path, text: impl Into<String>) -> i64 {
    let mut conv = Conversation::new(None);
    conv.append(Node::user(text));
    Store::open(&home.join("conversations.sqlite3"))
        .unwrap()
        .save(None, &conv, None)
        .unwrap()
        .unwrap()
        .id
}

#[test]
fn an_export_that_cannot_be_written_whole_leaves_the_old_file_as_it_was() {
    // A file-size limit (as `ulimit -f`, or a disk that fills up) stops the
    // export part way. The message is 12,000 control characters: 12 KB in
    // the database (which the export must still be able to read under the
    // limit), 72 KB as JSON escapes (`\u0001`), past the 48 KiB limit.
    let home = tempfile::tempdir().unwrap();
    let id = saved_with_one_message(home.path(), "\u{1}".repeat(12_000));
    let file = home.path().join("c.jsonl");
    std::fs::write(&file, "an earlier export\n").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"));
    cmd.args(["export", &id.to_string(), "-o", file.to_str().unwrap()])
        .env("TOKENSCOPE_HOME", home.path())
        .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml");
    common::limit_file_size(&mut cmd, 48 << 10);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("error: cannot write") && err.contains("File too large"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "an earlier export\n"
    );
    let left: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("conversations.sqlite3") && n != "logs")
        .collect();
    assert_eq!(left, ["c.jsonl"], "no temporary file left");
}

#[test]
fn an_export_keeps_the_files_mode_follows_links_and_writes_to_devices() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let id = saved_with_one_message(home.path(), "What is a lighthouse?");
    let id = id.to_string();
    let (expected, err, ok) = run(home.path(), &["export", &id]);
    assert!(ok && expected.contains("What is a lighthouse?"), "{err}");
    // An existing file keeps its mode; a link keeps pointing at it.
    let file = home.path().join("c.jsonl");
    std::fs::write(&file, "old").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = home.path().join("link.jsonl");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let (_, err, ok) = run(home.path(), &["export", &id, "-o", link.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    // A device is written directly (no temporary file next to it).
    let (out, err, ok) = run(home.path(), &["export", &id, "-o", "/dev/stdout"]);
    assert!(ok, "{err}");
    assert_eq!(out, expected);
}

#[test]
fn export_to_dash_writes_standard_output() {
    let home = tempfile::tempdir().unwrap();
    let id = saved_with_one_message(home.path(), "What is a lighthouse?").to_string();
    let (expected, err, ok) = run(home.path(), &["export", &id]);
    assert!(ok, "{err}");
    // Run where a file named `-` would land, so that one would be seen.
    let cwd = tempfile::tempdir().unwrap();
    for format in ["jsonl", "md"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"))
            .args(["export", &id, "--format", format, "-o", "-"])
            .current_dir(cwd.path())
            .env("TOKENSCOPE_HOME", home.path())
            .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.contains("What is a lighthouse?"),
            "{format}: {out} {err}"
        );
        if format == "jsonl" {
            assert_eq!(out, expected);
        }
        assert!(!err.contains("Wrote"), "{err}");
    }
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "no file `-`"
    );
}

/// Runs the binary with `home` as TOKENSCOPE_HOME, `mount` (a directory or
/// a file) bind-mounted read-only over itself in a mount namespace of its
/// own (`unshare`: nothing to clean up, nothing seen outside).
fn run_read_only(home: &Path, mount: &Path, args: &[&str]) -> (String, String, bool) {
    let script =
        r#"m=$1; shift; mount --bind "$m" "$m" && mount -o remount,ro,bind "$m" "$m" && exec "$@""#;
    let out = std::process::Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(mount)
        .arg(env!("CARGO_BIN_EXE_tokenscope"))
        .args(args)
        .env("TOKENSCOPE_HOME", home)
        .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
        .output()
        .expect("unshare (util-linux) runs: this test needs it to mount read-only");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains("unshare:") && !err.contains("mount:"),
        "this test needs user and mount namespaces (unshare -rm): {err}"
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        err,
        out.status.success(),
    )
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn chats_and_export_read_a_database_on_a_read_only_mount() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let id = saved_with_one_message(h, "What is a lighthouse?").to_string();
    let (jsonl, err, ok) = run(h, &["export", &id]);
    assert!(ok, "{err}");
    let db = h.join("conversations.sqlite3");
    let before = names(h);
    assert!(!before.iter().any(|n| n.ends_with("-shm")), "{before:?}");

    // The whole data directory read-only: SQLite cannot make its -shm file.
    let (out, err, ok) = run_read_only(h, h, &["chats"]);
    assert!(ok && out.contains("What is a lighthouse?"), "{out} {err}");
    let (out, err, ok) = run_read_only(h, h, &["chats", "--search", "lighthouse"]);
    assert!(ok && out.contains("What is a lighthouse?"), "{out} {err}");
    let (out, err, ok) = run_read_only(h, h, &["export", &id]);
    assert!(ok, "{err}");
    assert_eq!(out, jsonl, "the same export");
    let (out, err, ok) = run_read_only(h, h, &["export", &id, "--format", "md"]);
    assert!(
        ok && out.contains("## User\n\nWhat is a lighthouse?"),
        "{out} {err}"
    );
    let file = h.join("c.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let (_, err, ok) = run_read_only(h, h, &["import", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("can only be read") && err.contains("Read-only file system"),
        "{err}"
    );
    let mut expected = [&before[..], &["c.jsonl".to_string()]].concat();
    expected.sort();
    assert_eq!(names(h), expected, "nothing written");

    // The file alone read-only (its directory writable): SQLite opens it
    // for reading only.
    let (out, err, ok) = run_read_only(h, &db, &["chats"]);
    assert!(ok && out.contains("What is a lighthouse?"), "{out} {err}");
    let (_, err, ok) = run_read_only(h, &db, &["import", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "cannot write {}: Read-only file system",
            db.display()
        )),
        "{err}"
    );
    let (out, _, _) = run(h, &["chats"]);
    assert_eq!(out.matches("lighthouse").count(), 1, "not imported: {out}");

    // Nothing saved yet, in a directory that cannot be written.
    let empty = tempfile::tempdir().unwrap();
    let (out, err, ok) = run_read_only(empty.path(), empty.path(), &["chats"]);
    assert!(
        ok && out.contains("No saved conversations yet"),
        "{out} {err}"
    );
}
