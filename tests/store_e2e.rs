//! Saved conversations end to end: the real binary in tmux on SmolLM2,
//! killed with SIGKILL at random moments; the database keeps every
//! completed turn and always opens; `--resume` shows the last one, also
//! from a data directory mounted read-only (saving off, said).

mod common;

use std::path::Path;
use std::time::Duration;

use common::tmux::{Tmux, flat, idle};
use tokenscope::conversation::Status;
use tokenscope::engine::Role;
use tokenscope::store::Store;

/// A private home whose models dir links the demo models.
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(common::model(common::SMOL), models.join(common::SMOL)).unwrap();
    home
}

fn start(home: &Path, name: &str, args: &str) -> Tmux {
    let env = format!(
        "TOKENSCOPE_HOME='{}' TOKENSCOPE_CONFIG=/nonexistent.toml",
        home.display()
    );
    Tmux::start(name, &env, args, 120, 40)
}

/// The screen shows a user message holding `text` followed by a reply, and
/// the app is idle: that turn is complete. (A user message is drawn as its
/// prompt tokens, template scaffolding included, under a line `you`; the
/// inspector takes the right of the screen.)
fn answered(screen: &str, text: &str) -> bool {
    let lines: Vec<&str> = screen
        .lines()
        .map(|l| l.split(['│', '┌', '└', '├']).next().unwrap_or("").trim())
        .collect();
    // Message blocks: (is the user's, their lines), split at the headers.
    let mut blocks: Vec<(bool, Vec<&str>)> = Vec::new();
    for l in lines {
        if l == "you" || l.starts_with("assistant ·") {
            blocks.push((l == "you", Vec::new()));
        } else if let Some(b) = blocks.last_mut() {
            b.1.push(l);
        }
    }
    let asked = blocks
        .iter()
        .rposition(|(user, ls)| *user && ls.iter().any(|l| l.contains(text)));
    idle(screen) && asked.is_some_and(|i| blocks.get(i + 1).is_some_and(|(user, _)| !user))
}

/// Sends `text` and waits for its reply to end (long: after a restart the
/// whole chat is prefilled again, slow on a loaded two-core machine);
/// returns the screen that shows it ended.
fn exchange(t: &Tmux, text: &str) -> String {
    t.type_text(text);
    t.keys(&["Enter"]);
    t.wait(&format!("the reply to {text:?}"), 300, |s| {
        answered(s, text)
    })
}

/// The saved conversation (the most recent) as (user message, reply
/// status) pairs along the path shown; panics if the database does not open
/// or the tree does not load.
fn saved_turns(home: &Path) -> Vec<(String, Option<Status>)> {
    let mut store = Store::open(&home.join("conversations.sqlite3")).expect("the database opens");
    let check: String = store
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "SQLite's integrity check");
    let Some(id) = store.last().expect("it can be read") else {
        return Vec::new();
    };
    let (conv, _) = store.load(id).expect("the conversation loads");
    let path = conv.path();
    path.iter()
        .enumerate()
        .filter(|(_, n)| conv.node(**n).role == Role::User)
        .map(|(i, n)| {
            let reply = path.get(i + 1).map(|r| conv.node(*r).status.clone());
            (conv.node(*n).content.clone(), reply)
        })
        .collect()
}

/// A small deterministic generator (xorshift), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn sigkill(pid: i32) {
    // SAFETY: a plain kill(2) of the app this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
    common::wait_until_ended(pid as u32, 10, "the killed app");
}

#[test]
fn sigkill_at_random_moments_never_loses_a_completed_turn() {
    let home = home();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill test seed: {seed}");
    let mut rng = Rng(seed);
    // Rounds of chatting (TOKENSCOPE_KILL_ROUNDS for a shorter run).
    let rounds: usize = std::env::var("TOKENSCOPE_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    // Every turn seen complete on screen, in order.
    let mut completed: Vec<String> = Vec::new();
    let mut kills = 0;
    while completed.len() < rounds {
        // An app resumes the conversation, chats one to four rounds, and is
        // killed at a random moment of the next: before the message is read,
        // while the prompt is, while the reply is written, or after it.
        let t = start(
            home.path(),
            &format!("kill{kills}"),
            "--resume --model smol --temp 0 --max-tokens 4",
        );
        let pid = t.app_pid();
        t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
        for _ in 0..1 + rng.below(4) {
            let text = format!("round {} done", completed.len());
            // The app saves a turn when its reply ends, before it draws the
            // frame that shows it ended; a save that failed says so there
            // (the status bar then reads "idle ✖ error"), and the turn is
            // not in the database until a later save.
            let s = exchange(&t, &text);
            assert!(
                !flat(&s).contains("Not saved"),
                "{text:?} was not saved (seed {seed}):\n{s}"
            );
            completed.push(text);
        }
        t.type_text(&format!("killed {kills}"));
        t.keys(&["Enter"]);
        std::thread::sleep(Duration::from_millis(rng.below(2500)));
        sigkill(pid);
        drop(t);
        kills += 1;

        let saved = saved_turns(home.path());
        let mut at = 0;
        for want in &completed {
            // The completed turns are there, in order, each with its reply
            // done; killed ones may be there too (with or without a reply).
            let found = saved[at..].iter().position(|(text, _)| text == want);
            let Some(i) = found else {
                panic!("kill {kills}: {want:?} is not saved (seed {seed}); saved: {saved:?}");
            };
            let reply = &saved[at + i].1;
            assert!(
                matches!(reply, Some(Status::Done)),
                "kill {kills}: the reply to {want:?} is {reply:?} (seed {seed})"
            );
            at += i + 1;
        }
    }
    eprintln!("{kills} kills over {} rounds", completed.len());
}

#[test]
fn resume_after_sigkill_shows_the_last_completed_turn() {
    let home = home();
    let t = start(
        home.path(),
        "resume1",
        "--model smol --temp 0 --max-tokens 6",
    );
    let pid = t.app_pid();
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    exchange(&t, "the first question");
    exchange(&t, "the second question");
    t.type_text("the third question, never answered");
    t.keys(&["Enter"]);
    sigkill(pid);
    drop(t);

    let t = start(home.path(), "resume2", "--resume --temp 0 --max-tokens 6");
    // Its model (SmolLM2, the file is there) loads, and the chat is back.
    let s = t.wait("the conversation and its model", 60, |s| {
        idle(s) && s.contains("Q4_1") && answered(s, "the second question")
    });
    assert!(s.contains("the first question"), "{s}");
    // And it goes on.
    exchange(&t, "a fourth one");
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
    let saved = saved_turns(home.path());
    let texts: Vec<&str> = saved.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        texts.ends_with(&["the first question", "the second question", "a fourth one"])
            || texts.ends_with(&[
                "the first question",
                "the second question",
                "the third question, never answered",
                "a fourth one"
            ]),
        "{texts:?}"
    );
}

/// [`start`] with `home` bind-mounted read-only over itself in a mount
/// namespace of the app's own (`unshare`: nothing seen outside, nothing to
/// clean up): as a data directory on a read-only file system.
fn start_read_only(home: &Path, name: &str, args: &str) -> Tmux {
    let env = format!(
        "TOKENSCOPE_HOME='{h}' TOKENSCOPE_CONFIG=/nonexistent.toml unshare --map-root-user --mount \
         sh -c 'mount --bind \"$0\" \"$0\" && mount -o remount,ro,bind \"$0\" \"$0\" && exec \"$@\"' '{h}'",
        h = home.display()
    );
    Tmux::start(name, &env, args, 120, 40)
}

#[test]
fn resume_from_a_read_only_data_directory_shows_the_chat_and_says_saving_is_off() {
    let home = home();
    let t = start(home.path(), "ro1", "--model smol --temp 0 --max-tokens 6");
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    exchange(&t, "the first question");
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
    drop(t);
    let db = home.path().join("conversations.sqlite3");
    let before = std::fs::read(&db).unwrap();

    let t = start_read_only(home.path(), "ro2", "--resume --temp 0 --max-tokens 6");
    let s = t.wait("the conversation and its model, saving off", 60, |s| {
        idle(s) && s.contains("Q4_1") && answered(s, "the first question")
    });
    assert!(s.contains("saving off"), "{s}");
    // It goes on, in memory; the notice says why nothing is saved.
    exchange(&t, "a second question");
    let s = t.wait("the notice", 10, |s| s.contains("Not saved"));
    assert!(
        s.contains("can only be read") && s.contains("Read-only"),
        "{s}"
    );
    assert!(answered(&s, "a second question"), "{s}");
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
    let saved = saved_turns(home.path());
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0].0, "the first question");
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file untouched");
}
