//! The store on real SQLite files (in temporary directories).

use super::*;
use crate::conversation::test_support::{self, vocab};
use crate::conversation::{Conversation, Node, Status};
use crate::engine::{SamplingParams, TokenStep};

/// A step whose numbers do not round to short decimals (the export must keep them exactly).
fn step(index: usize, id: crate::engine::TokenId, text: &str) -> TokenStep {
    let mut s = test_support::step(index, id, text);
    s.logit = Some(1.25 + index as f32 / 3.0);
    if let Some(d) = &mut s.dist {
        d.lse = 2.0 + index as f32 / 7.0;
        d.entropy = Some(1.0 / 3.0);
        d.top[1].logit = 1.0 / 3.0;
        d.top[1].p_sampled = None;
    }
    s
}

/// A reply of `n` tokens with traces and stats.
fn reply(n: usize) -> Node {
    let mut a = Node::assistant(Some("smol".into()), Some(vocab()));
    for i in 0..n {
        a.push_step(step(i, [1, 2, 3][i % 3], [" Paris", " London", "x"][i % 3]));
    }
    a.status = Status::Done;
    // Times and rates whose shortest decimal needs all 17 digits.
    let mut stats = crate::tui::bench::fake_stats(n, crate::engine::StopReason::MaxTokens);
    stats.gen_tps = 1.708_072_850_257_606_1;
    stats.ttft_ms = 0.1 + 0.2;
    a.stats = Some(stats);
    a.seed = Some(99);
    a.sampling = Some(SamplingParams::default());
    a.system = Some("be brief".into());
    a.context_tail = vec![3, 1];
    a
}

/// system → user → reply, a branched sibling reply, an edited user message.
fn chat() -> Conversation {
    let mut c = Conversation::new(Some("be brief"));
    let u = c.append(Node::user("capital of France?"));
    c.set_prompt_tokens(u, &[3, 1], &vocab());
    let a = c.append(reply(4));
    let b = c.branch(a, 2, Some(2));
    c.node_mut(b).status = Status::Done;
    c.show(a);
    let u2 = c.append(Node::user("and Italy?"));
    c.append(reply(3));
    c.add_sibling(u2, Node::user("and Spain?"));
    c.show(u2);
    c
}

fn json(c: &Conversation) -> String {
    serde_json::to_string(c).unwrap()
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("c.sqlite3")).unwrap()
}

#[test]
fn a_saved_conversation_loads_back_with_its_branches_and_traces() {
    let dir = tempfile::tempdir().unwrap();
    let c = chat();
    let id = {
        let mut s = open(&dir);
        s.save(None, &c, None).unwrap().unwrap().id
    };
    let mut s = open(&dir);
    let (back, meta) = s.load(id).unwrap();
    assert_eq!(json(&back), json(&c), "every node, branch and step");
    assert_eq!(back.path(), c.path());
    assert_eq!(meta.title, "capital of France?");
    assert_eq!(meta.turns, 2);
    let list = s.list("").unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].model.as_deref(), Some("smol"));
}

#[test]
fn an_empty_chat_is_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    assert_eq!(
        s.save(None, &Conversation::new(Some("sys")), None).unwrap(),
        None
    );
    assert!(s.list("").unwrap().is_empty());
}

#[test]
fn saves_write_only_the_nodes_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut c = Conversation::new(None);
    for i in 0..50 {
        c.append(Node::user(format!("message {i}")));
        c.append(reply(200));
    }
    let id = s.save(None, &c, None).unwrap().unwrap().id;
    assert_eq!(s.save(Some(id), &c, None).unwrap().unwrap().written, 0);
    c.append(Node::user("one more"));
    let r = c.append(reply(5));
    // The new turn, its reply, and the reply before it (its child shown changed).
    assert_eq!(s.save(Some(id), &c, None).unwrap().unwrap().written, 3);
    // A reply being generated is left out until it is done.
    c.node_mut(r).status = Status::Streaming;
    c.node_mut(r).push_step(step(5, 1, " Paris"));
    assert_eq!(s.save(Some(id), &c, None).unwrap().unwrap().written, 0);
    c.node_mut(r).status = Status::Done;
    assert_eq!(s.save(Some(id), &c, None).unwrap().unwrap().written, 1);
    // Loaded again, nothing needs writing.
    let mut s = open(&dir);
    let (back, _) = s.load(id).unwrap();
    assert_eq!(json(&back), json(&c));
    assert_eq!(s.save(Some(id), &back, None).unwrap().unwrap().written, 0);
}

#[test]
fn a_reply_that_was_being_generated_is_dropped_and_the_rest_renumbered() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut c = Conversation::new(None);
    let u = c.append(Node::user("hi"));
    let a = c.append(reply(2));
    let streaming = c.add_sibling(a, Node::assistant(None, None));
    c.show(a);
    c.append(Node::user("next"));
    let id = s.save(None, &c, None).unwrap().unwrap().id;
    assert_eq!(c.node(streaming).status, Status::Streaming);
    let (mut back, _) = s.load(id).unwrap();
    assert_eq!(back.len(), c.len() - 1);
    assert_eq!(
        back.node(u).children().len(),
        1,
        "the unfinished reply is gone"
    );
    assert_eq!(back.path().len(), 3);
    // Saved again under the new numbering, it loads the same.
    back.append(reply(1));
    s.save(Some(id), &back, None).unwrap();
    let (again, _) = open(&dir).load(id).unwrap();
    assert_eq!(json(&again), json(&back));
}

/// A copy in `dir` of the database a schema 1 tokenscope wrote.
fn schema_1_copy(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("old.sqlite3");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/conversations-schema1.sqlite3"
        ),
        &path,
    )
    .unwrap();
    path
}

#[test]
fn the_schema_1_fixture_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = schema_1_copy(&dir);
    let mut s = Store::open(&path).unwrap();
    let v: i64 = s
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, schema::VERSION);
    let list = s.list("").unwrap();
    assert_eq!(list.iter().map(|c| c.id).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(list[1].turns, 2);
    let (c, meta) = s.load(1).unwrap();
    assert_eq!(meta.title, "Capital of France");
    assert_eq!(c.system(), Some("Be brief."));
    let texts: Vec<&str> = c
        .path()
        .iter()
        .map(|&n| c.node(n).content.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "What is the capital of France?",
            "Paris.",
            "And of Italy?",
            "Rome."
        ]
    );
    let (c2, _) = s.load(2).unwrap();
    assert_eq!(c2.system(), None);
    assert_eq!(c2.node(c2.path()[0]).content, "hello 中文");
    // And it goes on like any other.
    let mut c = c;
    c.append(Node::user("And of Spain?"));
    s.save(Some(1), &c, None).unwrap();
    assert_eq!(
        json(&Store::open(&path).unwrap().load(1).unwrap().0),
        json(&c)
    );
    assert_eq!(s.list("spain").unwrap().len(), 1);
}

/// Takes the database at `path` back to schema `to` (2 or 3), the form an
/// earlier tokenscope wrote: without the columns added since.
fn downgrade(path: &Path, to: i64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("ALTER TABLE nodes DROP COLUMN system;")
        .unwrap();
    if to < 3 {
        conn.execute_batch("ALTER TABLE conversations DROP COLUMN revision;")
            .unwrap();
    }
    conn.pragma_update(None, "user_version", to).unwrap();
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// `c` as saved by a tokenscope that did not record system prompts.
fn without_system(c: &Conversation) -> Conversation {
    let mut c = c.clone();
    for i in 0..c.len() {
        c.node_mut(i).system = None;
    }
    c
}

#[test]
fn a_schema_3_database_is_migrated_and_its_replies_have_no_system_prompt_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite3");
    let id = open(&dir).save(None, &chat(), None).unwrap().unwrap().id;
    downgrade(&path, 3);
    let mut s = Store::open(&path).unwrap();
    assert_eq!(user_version(&path), schema::VERSION);
    let (mut c, _) = s.load(id).unwrap();
    assert_eq!(json(&c), json(&without_system(&chat())), "not known");
    // It goes on, and what is generated now records its system prompt.
    c.append(Node::user("and Spain?"));
    let r = c.append(reply(2));
    s.save(Some(id), &c, None).unwrap();
    let (back, _) = open(&dir).load(id).unwrap();
    assert_eq!(back.node(r).system.as_deref(), Some("be brief"));
    assert_eq!(json(&back), json(&c));
}

#[test]
fn a_reply_keeps_the_system_prompt_it_was_generated_under() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut c = chat();
    let id = s.save(None, &c, None).unwrap().unwrap().id;
    c.set_system("be verbose");
    let r = c.path()[1];
    assert_eq!(s.save(Some(id), &c, None).unwrap().unwrap().written, 1);
    let (back, _) = open(&dir).load(id).unwrap();
    assert_eq!(back.system(), Some("be verbose"));
    assert_eq!(back.node(r).system.as_deref(), Some("be brief"));
    // Generated again under the new one: a change to save.
    c.node_mut(r).system = Some("be verbose".into());
    assert_eq!(s.save(Some(id), &c, None).unwrap().unwrap().written, 1);
    let (back, _) = open(&dir).load(id).unwrap();
    assert_eq!(back.node(r).system.as_deref(), Some("be verbose"));
}

#[test]
fn a_store_opened_read_only_reads_schemas_2_to_now_and_refuses_writes_saying_why() {
    let why = "cannot write in /data: Read-only file system (os error 30)";
    for version in [2, 3, schema::VERSION] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite3");
        let c = chat();
        let id = open(&dir).save(None, &c, None).unwrap().unwrap().id;
        let expected = if version < 4 { without_system(&c) } else { c };
        if version < schema::VERSION {
            downgrade(&path, version);
        }
        let mut s = Store::open_read_only(&path, why.into()).unwrap();
        assert_eq!(s.read_only(), Some(why));
        assert_eq!(ids(&s, "france"), vec![id], "schema {version}");
        assert_eq!(s.last().unwrap(), Some(id));
        let (mut back, meta) = s.load(id).unwrap();
        assert_eq!(json(&back), json(&expected), "schema {version}");
        assert_eq!(meta.title, "capital of France?");
        let mut md = Vec::new();
        export::write_markdown(&s.read(id).unwrap(), 10, &mut md).unwrap();
        // Nothing new: nothing to write, no error; anything else says why not.
        assert_eq!(s.save(Some(id), &back, None).unwrap().unwrap().written, 0);
        back.append(Node::user("more"));
        let stored = s.read(id).unwrap();
        for err in [
            s.save(Some(id), &back, None).unwrap_err(),
            s.save(None, &back, None).unwrap_err(),
            s.rename(id, "x").unwrap_err(),
            s.delete(id).unwrap_err(),
            s.insert(&stored).unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::CannotWrite(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("the conversations database can only be read: {why}")
            );
        }
        drop(s);
        assert_eq!(user_version(&path), version, "left as it was");
        assert_eq!(ids(&open(&dir), ""), vec![id]);
    }
}

#[test]
fn a_store_opened_read_only_on_nothing_is_empty_and_on_schema_1_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none/c.sqlite3");
    let s = Store::open_read_only(&missing, "why".into()).unwrap();
    assert!(s.list("").unwrap().is_empty());
    assert!(matches!(s.read(1), Err(StoreError::NotFound(1))));
    assert!(!missing.exists() && !missing.parent().unwrap().exists());
    let empty = dir.path().join("empty.sqlite3");
    std::fs::write(&empty, "").unwrap();
    let s = Store::open_read_only(&empty, "why".into()).unwrap();
    assert!(s.list("").unwrap().is_empty());

    let old = schema_1_copy(&dir);
    let err = Store::open_read_only(&old, "why".into()).unwrap_err();
    assert!(matches!(err, StoreError::TooOld(1)), "{err:?}");
    assert!(
        err.to_string().contains("where the file can be written"),
        "{err}"
    );
    let newer = dir.path().join("newer.sqlite3");
    let s = Store::open(&newer).unwrap();
    s.conn().pragma_update(None, "user_version", 99).unwrap();
    drop(s);
    let err = Store::open_read_only(&newer, "why".into()).unwrap_err();
    assert!(
        matches!(err, StoreError::Newer { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite3");
    let mut s = Store::open(&path).unwrap();
    s.save(None, &chat(), None).unwrap();
    s.conn()
        .pragma_update(None, "user_version", schema::VERSION + 1)
        .unwrap();
    drop(s);
    let err = Store::open(&path).expect_err("refused");
    assert!(matches!(
        err,
        StoreError::Newer { found, supported }
            if found == schema::VERSION + 1 && supported == schema::VERSION
    ));
    assert!(
        err.to_string().contains("newer than this tokenscope"),
        "{err}"
    );
    let conn = Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM nodes", [], |r| r.get(0))
        .unwrap();
    assert!(n > 0, "nothing was dropped");
}

#[test]
fn a_file_that_is_not_a_database_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite3");
    std::fs::write(&path, vec![7u8; 8192]).unwrap();
    let err = Store::open(&path).expect_err("refused");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("move the file away"), "{err}");
}

/// A save that fails changes nothing, and the next one that can writes
/// everything the failed one could not.
fn fails_then_recovers(inject: &str, heal: &str, expected: fn(&StoreError) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut c = chat();
    let id = s.save(None, &c, None).unwrap().unwrap().id;
    let before = json(&s.load(id).unwrap().0);
    s.conn().execute_batch(inject).unwrap();
    for i in 0..20 {
        c.append(Node::user(format!("long message {i} {}", "x".repeat(2000))));
        c.append(reply(300));
    }
    let err = s.save(Some(id), &c, None).unwrap_err();
    assert!(expected(&err), "{err:?}");
    // The database opens and holds what was saved before.
    assert_eq!(json(&open(&dir).load(id).unwrap().0), before);
    s.conn().execute_batch(heal).unwrap();
    s.save(Some(id), &c, None).unwrap();
    assert_eq!(json(&open(&dir).load(id).unwrap().0), json(&c));
}

#[test]
fn a_full_disk_fails_the_save_and_the_next_one_catches_up() {
    // SQLite's own limit on the file's pages: the same error as a full disk.
    fails_then_recovers(
        "PRAGMA max_page_count = 1;",
        "PRAGMA max_page_count = 1073741823;",
        |e| matches!(e, StoreError::Full),
    );
}

#[test]
fn a_read_only_database_fails_the_save_and_the_next_one_catches_up() {
    fails_then_recovers("PRAGMA query_only = 1;", "PRAGMA query_only = 0;", |e| {
        matches!(e, StoreError::ReadOnly)
    });
}

#[test]
fn a_locked_database_fails_the_save_and_the_next_one_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut c = chat();
    let id = s.save(None, &c, None).unwrap().unwrap().id;
    // Another process holding the write lock.
    let other = Connection::open(dir.path().join("c.sqlite3")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE;").unwrap();
    c.append(Node::user("while locked"));
    let err = s.save(Some(id), &c, None).unwrap_err();
    assert!(matches!(err, StoreError::Locked), "{err:?}");
    assert!(err.to_string().contains("another tokenscope"));
    other.execute_batch("COMMIT;").unwrap();
    s.save(Some(id), &c, None).unwrap();
    assert_eq!(json(&open(&dir).load(id).unwrap().0), json(&c));
}

#[test]
fn two_windows_on_one_conversation_lose_nothing() {
    // Both open conversation `id`; each adds its own turn. The first save
    // goes in place; the second finds the conversation saved by another
    // writer since it read it, and goes to a new conversation.
    let dir = tempfile::tempdir().unwrap();
    let id = open(&dir).save(None, &chat(), None).unwrap().unwrap().id;
    let (mut w1, mut w2) = (open(&dir), open(&dir));
    let (mut c1, _) = w1.load(id).unwrap();
    let (mut c2, _) = w2.load(id).unwrap();
    c1.append(Node::user("from the first window"));
    c2.append(Node::user("from the second window"));
    let s1 = w1.save(Some(id), &c1, None).unwrap().unwrap();
    assert_eq!((s1.id, s1.forked_from), (id, None));
    let s2 = w2.save(Some(id), &c2, None).unwrap().unwrap();
    assert_eq!(s2.forked_from, Some(id));
    assert_ne!(s2.id, id);
    let mut check = open(&dir);
    assert_eq!(json(&check.load(id).unwrap().0), json(&c1));
    assert_eq!(json(&check.load(s2.id).unwrap().0), json(&c2));
    // Each window goes on saving its own without a further fork.
    c2.append(Node::user("more"));
    let again = w2.save(Some(s2.id), &c2, None).unwrap().unwrap();
    assert_eq!((again.id, again.forked_from), (s2.id, None));
    c1.append(Node::user("more"));
    let again = w1.save(Some(id), &c1, None).unwrap().unwrap();
    assert_eq!((again.id, again.forked_from), (id, None));
    // A rename by another window is not a change of the turns: no fork.
    open(&dir).rename(id, "Renamed elsewhere").unwrap();
    c1.append(Node::user("after the rename"));
    let again = w1.save(Some(id), &c1, None).unwrap().unwrap();
    assert_eq!((again.id, again.forked_from), (id, None));
}

#[test]
fn a_save_with_nothing_new_neither_forks_nor_counts_as_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let id = open(&dir).save(None, &chat(), None).unwrap().unwrap().id;
    let (mut w1, mut w2) = (open(&dir), open(&dir));
    let (mut c1, _) = w1.load(id).unwrap();
    let (mut c2, _) = w2.load(id).unwrap();
    // W2 only looks (the TUI saves before listing): nothing written, no fork.
    let looked = w2.save(Some(id), &c2, None).unwrap().unwrap();
    assert_eq!(
        (looked.id, looked.written, looked.forked_from),
        (id, 0, None)
    );
    // So W1's real save is no conflict …
    c1.append(Node::user("from the first window"));
    assert_eq!(
        w1.save(Some(id), &c1, None).unwrap().unwrap().forked_from,
        None
    );
    // … and W2 looking again after it is none either, but W2's own change is.
    assert_eq!(
        w2.save(Some(id), &c2, None).unwrap().unwrap().forked_from,
        None
    );
    c2.append(Node::user("from the second window"));
    assert_eq!(
        w2.save(Some(id), &c2, None).unwrap().unwrap().forked_from,
        Some(id)
    );
}

#[test]
fn a_reused_id_is_not_taken_for_the_conversation_a_window_holds() {
    // SQLite gives the largest id again after it is deleted: the window that
    // still holds the old conversation must not write into the new one.
    let dir = tempfile::tempdir().unwrap();
    let id = open(&dir).save(None, &chat(), None).unwrap().unwrap().id;
    let mut w = open(&dir);
    let (mut held, _) = w.load(id).unwrap();
    let mut other = open(&dir);
    other.delete(id).unwrap();
    let mut fresh = Conversation::new(None);
    fresh.append(Node::user("a new chat"));
    let again = other.save(None, &fresh, None).unwrap().unwrap().id;
    assert_eq!(again, id, "the id is reused");
    held.append(Node::user("more of the old one"));
    let saved = w.save(Some(id), &held, None).unwrap().unwrap();
    assert_eq!(saved.forked_from, Some(id));
    assert_eq!(json(&open(&dir).load(id).unwrap().0), json(&fresh));
    assert_eq!(json(&open(&dir).load(saved.id).unwrap().0), json(&held));
}

fn ids(s: &Store, f: &str) -> Vec<ConvId> {
    s.list(f).unwrap().iter().map(|x| x.id).collect()
}

#[test]
fn the_list_searches_titles_and_text_renames_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let a = s.save(None, &chat(), None).unwrap().unwrap().id;
    let mut other = Conversation::new(None);
    other.append(Node::user("100% sure_thing"));
    let b = s.save(None, &other, None).unwrap().unwrap().id;
    assert_eq!(s.last().unwrap(), Some(b));
    assert_eq!(ids(&s, ""), vec![b, a]);
    assert_eq!(ids(&s, "FRANCE"), vec![a], "title, any case");
    assert_eq!(ids(&s, "london"), vec![a], "a reply's text");
    assert_eq!(ids(&s, "0% s"), vec![b], "% is literal");
    assert_eq!(ids(&s, "e_t"), vec![b], "_ is literal");
    assert!(ids(&s, "e%t").is_empty());
    s.rename(a, "Geography").unwrap();
    s.save(Some(a), &chat(), None).unwrap();
    assert_eq!(
        s.list("geo").unwrap()[0].title,
        "Geography",
        "a save keeps the new name"
    );
    s.delete(b).unwrap();
    assert_eq!(ids(&s, ""), vec![a]);
    assert!(matches!(s.delete(b), Err(StoreError::NotFound(_))));
    assert!(matches!(s.rename(b, "x"), Err(StoreError::NotFound(_))));
}

#[test]
fn export_and_import_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let c = chat();
    let id = s.save(None, &c, None).unwrap().unwrap().id;
    let stored = s.read(id).unwrap();
    assert!(
        !stored.nodes[2].pieces.is_empty(),
        "token texts kept with the trace"
    );
    let mut out = Vec::new();
    export::write_jsonl(&stored, &mut out).unwrap();
    let back = export::read_jsonl(&out[..]).unwrap();
    assert_eq!(back, stored);
    let id2 = s.insert(&back).unwrap();
    assert_ne!(id2, id);
    assert_eq!(s.read(id2).unwrap(), stored, "every column");
    assert_eq!(json(&s.load(id2).unwrap().0), json(&c));
    let mut md = Vec::new();
    export::write_markdown(&stored, 100, &mut md).unwrap();
    let md = String::from_utf8(md).unwrap();
    assert!(md.contains("## User\n\ncapital of France?"), "{md}");
    assert!(md.contains("| 0 | ` Paris` |"), "{md}");
    assert!(
        md.contains("` London` 0."),
        "runners-up with their probability: {md}"
    );
}

#[test]
fn an_import_that_does_not_hold_together_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let id = s.save(None, &chat(), None).unwrap().unwrap().id;
    let mut stored = s.read(id).unwrap();
    stored.nodes[1].parent = Some(1);
    let err = s.insert(&stored).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert_eq!(s.list("").unwrap().len(), 1, "nothing written");
}

#[test]
fn a_conversation_deleted_elsewhere_is_saved_again_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let mut c = chat();
    let id = s.save(None, &c, None).unwrap().unwrap().id;
    // Another window deletes it; this one goes on.
    open(&dir).delete(id).unwrap();
    c.append(Node::user("still here"));
    s.save(Some(id), &c, None).unwrap();
    assert_eq!(json(&open(&dir).load(id).unwrap().0), json(&c));
}

#[test]
fn the_jsonl_export_writes_model_paths_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let model = crate::tui::bench::fake_model("smol", "Q4_1");
    let id = s.save(None, &chat(), Some(&model)).unwrap().unwrap().id;
    let stored = s.read(id).unwrap();
    assert!(stored.model_card.is_some());
    let mut out = Vec::new();
    export::write_jsonl(&stored, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(r#""path":"/models/smol-Q4_1.gguf""#) && !out.contains(r#""path":["#),
        "{out}"
    );
    assert_eq!(export::read_jsonl(out.as_bytes()).unwrap(), stored);
}

/// A model saved as text (the `model_path` column, the model card's JSON)
/// reads back as the kind it was: `URL#MODEL` after an http(s) URL is a
/// server's model (as earlier versions wrote it), anything else a file, a
/// `#` in its name included.
#[test]
fn saved_models_read_back_as_files_or_servers_models() {
    let remote = |url: &str, model: &str| ModelRef::Remote {
        url: url.into(),
        model: model.into(),
    };
    for (model, text) in [
        (ModelRef::Local("/m/a.gguf".into()), "/m/a.gguf"),
        (ModelRef::Local("/m/a#b.gguf".into()), "/m/a#b.gguf"),
        (
            ModelRef::Local("models/http#x.gguf".into()),
            "models/http#x.gguf",
        ),
        (
            remote("http://h:8080", "/m/a#b.gguf"),
            "http://h:8080#/m/a#b.gguf",
        ),
        (remote("https://h", ""), "https://h#"),
    ] {
        assert_eq!(model_text(&model), text);
        assert_eq!(model_of_text(text), model, "{text}");
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(&dir);
        let mut card = crate::tui::bench::fake_model("smol", "Q4_1");
        card.model = model.clone();
        let id = s.save(None, &chat(), Some(&card)).unwrap().unwrap().id;
        let (column, card_json): (String, String) = s
            .conn
            .query_row(
                "SELECT model_path, model_card FROM conversations WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(column, text);
        let quoted = serde_json::to_string(text).unwrap();
        assert!(
            card_json.contains(&format!(r#""path":{quoted}"#)),
            "{card_json}"
        );
        let s = open(&dir);
        let stored = s.read(id).unwrap();
        assert_eq!(stored.model_path.as_ref(), Some(&model));
        assert_eq!(stored.model_card.map(|c| c.model), Some(model.clone()));
        assert_eq!(s.list("").unwrap()[0].model_path.as_ref(), Some(&model));
    }
}

/// The Markdown export of `c` as saved.
fn markdown(c: &Conversation) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let id = s.save(None, c, None).unwrap().unwrap().id;
    let mut md = Vec::new();
    export::write_markdown(&s.read(id).unwrap(), 0, &mut md).unwrap();
    String::from_utf8(md).unwrap()
}

/// Asserts that `parts` come in this order in `md`, each once.
fn in_order(md: &str, parts: &[&str]) {
    let mut at = 0;
    for p in parts {
        assert_eq!(md.matches(p).count(), 1, "{p:?} once in:\n{md}");
        let i = md.find(p).unwrap();
        assert!(i >= at, "{p:?} out of order in:\n{md}");
        at = i;
    }
}

#[test]
fn the_markdown_shows_the_system_prompt_each_reply_was_generated_under() {
    let mut c = Conversation::new(Some("be brief"));
    let answer = |c: &mut Conversation, q: &str, system: &str| {
        c.append(Node::user(q));
        let mut r = reply(1);
        r.system = Some(system.into());
        c.append(r);
    };
    answer(&mut c, "q1", "be brief");
    c.set_system("be verbose");
    answer(&mut c, "q2", "be verbose");
    answer(&mut c, "q3", "be verbose");
    c.set_system("");
    answer(&mut c, "q4", "");
    c.set_system("talk like a pirate");
    in_order(
        &markdown(&c),
        &[
            "## System\n\nbe brief\n",
            "## User\n\nq1",
            // Above the first reply generated under it, after its question.
            "## User\n\nq2",
            "## System (changed)\n\nbe verbose\n",
            "## User\n\nq3",
            "## User\n\nq4",
            "## System (changed)\n\n*(none)*\n",
            "## System (set after the last reply)\n\ntalk like a pirate\n",
        ],
    );
}

#[test]
fn the_markdown_says_when_the_system_prompt_of_replies_is_not_known() {
    let c = without_system(&chat());
    let md = markdown(&c);
    in_order(
        &md,
        &[
            "## System\n\nbe brief\n",
            "saved without the system prompt they were generated under",
            "## User\n\ncapital of France?",
        ],
    );
    assert!(!md.contains("(changed)"), "{md}");
    // Recorded and unchanged: no note.
    let md = markdown(&chat());
    assert!(
        !md.contains("saved without") && !md.contains("(changed)"),
        "{md}"
    );
}

/// The Markdown export is written in the interface language: the headings,
/// the table's head, the notes; the conversation's own text as it is.
#[test]
fn the_markdown_is_in_the_interface_language() {
    use crate::i18n::{Lang, with_lang};
    let mut c = without_system(&chat());
    c.set_system("");
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let id = s.save(None, &c, None).unwrap().unwrap().id;
    let stored = s.read(id).unwrap();
    let render = |lang| {
        with_lang(lang, || {
            let mut md = Vec::new();
            export::write_markdown(&stored, 2, &mut md).unwrap();
            String::from_utf8(md).unwrap()
        })
    };
    let en = render(Lang::En);
    let zh = render(Lang::Zh);
    for word in [
        "## User",
        "## Assistant",
        "Saved:",
        "Model:",
        "| token |",
        "entropy",
        "more token",
        "saved without",
    ] {
        assert!(en.contains(word), "{word:?} in:\n{en}");
        assert!(!zh.contains(word), "{word:?} in:\n{zh}");
    }
    in_order(
        &zh,
        &[
            "模型：`smol`",
            "保存于：",
            "没有记录生成它们时的系统提示",
            "## 用户\n\ncapital of France?",
        ],
    );
    let head = "| # | 词元 | p | 熵（比特） | 其他候选 |\n|---:|---|---:|---:|---|\n";
    for (part, n) in [
        ("## 助手 (smol)", 2),
        (head, 2),
        ("还有 2 个词元", 1),
        ("还有 1 个词元", 1),
    ] {
        assert_eq!(zh.matches(part).count(), n, "{part:?} in:\n{zh}");
    }
    // The numbers are the same in both.
    let cells = |md: &str| -> Vec<String> {
        md.lines()
            .filter(|l| l.starts_with("| 0 ") || l.starts_with("| 1 "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(cells(&en), cells(&zh));
}
