//! Rollouts in the TUI end to end: the real binary in tmux on SmolLM2 at
//! temperature 0. `o` on a reply token opens the rollouts of its step; one
//! is kept as a branch (Enter); the saved branch holds the reply's tokens
//! before that token, then exactly the rollout's tokens as the `rollouts`
//! command computes them independently (a fresh process), each with its
//! distribution.

mod common;

use common::tmux::{Tmux, flat, idle};
use tokenscope::engine::{Role, TokenId};
use tokenscope::store::Store;

const PROMPT: &str = "What is the capital of France?";

/// The token cursor's place from the inspector's title (` token 3/16 `):
/// the token's number and the reply's length.
fn cursor_at(screen: &str) -> Option<(usize, usize)> {
    screen.lines().find_map(|l| {
        let rest = l.split('┌').nth(1)?.strip_prefix(" token ")?;
        let (a, rest) = rest.split_once('/')?;
        Some((a.parse().ok()?, rest.split(' ').next()?.parse().ok()?))
    })
}

/// Rank `rank`'s token ids from `tokenscope rollouts … --format jsonl` at
/// reply token `at`.
fn cli_rollout(at: usize, rank: u64) -> Vec<TokenId> {
    let at = at.to_string();
    let (out, err, ok) = common::run_binary(
        &common::models_dir(),
        &[
            "rollouts",
            "-m",
            common::SMOL,
            "-p",
            PROMPT,
            "--temp",
            "0",
            "--at",
            &at,
            "--branches",
            "5",
            "--tokens",
            "24",
            "--format",
            "jsonl",
        ],
    );
    assert!(ok, "{err}");
    let row = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON row"))
        .find(|v| v["type"] == "rollout" && v["rank"] == rank)
        .unwrap_or_else(|| panic!("no rollout of rank {rank}:\n{out}"));
    row["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["id"].as_i64().expect("an id") as TokenId)
        .collect()
}

#[test]
fn o_rolls_out_a_reply_token_and_enter_keeps_the_rollout_as_a_branch() {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(common::model(common::SMOL), models.join(common::SMOL)).unwrap();
    let env = format!(
        "TOKENSCOPE_HOME='{}' TOKENSCOPE_CONFIG=/nonexistent.toml",
        home.path().display()
    );
    let t = Tmux::start(
        "rollouts",
        &env,
        "--model smol --temp 0 --max-tokens 16",
        120,
        40,
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    t.type_text(PROMPT);
    t.keys(&["Enter"]);
    t.wait("the reply to start", 60, |s| s.contains("assistant · "));
    t.wait("the reply to finish", 180, idle);
    // The token cursor on the reply's third token.
    t.keys(&["Tab", "Home", "Right", "Right"]);
    t.wait(
        "the cursor on token 3",
        10,
        |s| matches!(cursor_at(s), Some((3, n)) if n >= 4),
    );
    t.keys(&["o"]);
    // Complete: the footer is drawn with the rows, once they came.
    let s = t.wait("the rollouts", 180, |s| {
        flat(s).contains("Enter keeps rollout #1 as a branch")
    });
    assert!(s.contains("┌ rollouts · "), "{s}");
    for rank in 1..=5 {
        assert!(s.contains(&format!(" #{rank} ")), "row {rank}:\n{s}");
    }
    assert_eq!(s.matches("ln P ").count(), 5, "{s}");
    t.keys(&["Down"]);
    t.wait("rollout 2 selected", 10, |s| {
        flat(s).contains("Enter keeps rollout #2")
    });
    t.keys(&["Enter"]);
    let s = t.wait("the branch", 10, |s| {
        flat(s).contains("Rollout #2 kept as version 2 of 2")
    });
    assert!(!s.contains("┌ rollouts · "), "closed:\n{s}");
    t.keys(&["q", "q"]);
    t.assert_exited_sane(0);

    // The saved branch: the reply's first two tokens, then rank 2's.
    let mut store =
        Store::open(&home.path().join("conversations.sqlite3")).expect("the database opens");
    let id = store.last().expect("read").expect("a saved conversation");
    let (conv, _) = store.load(id).expect("the conversation loads");
    let path = conv.path();
    let reply = *path.last().expect("a reply");
    let branch = conv.node(reply);
    assert_eq!(branch.role, Role::Assistant);
    let fork = branch.fork.expect("the branch says where it forked");
    assert_eq!(fork.at, 2);
    let orig = conv.node(fork.from);
    let ids = |steps: &[tokenscope::engine::TokenStep]| -> Vec<TokenId> {
        steps.iter().map(|s| s.id).collect()
    };
    assert_eq!(ids(&branch.steps[..2]), ids(&orig.steps[..2]));
    let want = cli_rollout(2, 2);
    assert_eq!(ids(&branch.steps[2..]), want, "the rollout's tokens");
    // Each kept with what the model considered there (the inspector's).
    for st in &branch.steps[2..] {
        let d = st.dist.as_ref().expect("a distribution");
        assert!(
            d.top.len() > 1 && d.top.iter().any(|c| c.id == st.id),
            "{st:?}"
        );
    }
    assert_ne!(
        ids(&orig.steps[2..3]),
        want[..1],
        "another candidate than the reply's"
    );
}
