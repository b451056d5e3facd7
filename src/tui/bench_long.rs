//! `tokenscope bench`: long chats. A generated conversation of many tokens
//! (made-up replies with their traces, built with the conversation API) is
//! opened in the UI, then a reply streams into it with a frame drawn per
//! token, as [`super::bench::bench_ui`] does for a short chat.
//!
//! Each turn is wrapped once, when it is opened or changes ([`ChatView`]
//! keeps the wrapped lines of every turn; a streamed token is appended to its
//! turn's lines): a frame draws only the lines on screen, so its cost does not
//! grow with the conversation.
//!
//! [`ChatView`]: super::state::ChatView

use std::fmt;
use std::time::{Duration, Instant};

use super::bench::{StreamTimes, fake_vocab, story_steps, stream_frames, streaming_state_after};
use super::state::State;
use crate::config::Config;
use crate::conversation::{Conversation, Node, Status};

/// Tokens per generated reply.
const REPLY_TOKENS: usize = 1000;

/// A conversation of `n_tokens` assistant tokens: turns of a user question
/// and a reply of up to [`REPLY_TOKENS`] made-up tokens, each token with `k`
/// candidates (ids of [`fake_vocab`]), its logit, log-sum-exp and entropy.
pub fn long_conversation(n_tokens: usize, k: usize) -> Conversation {
    let vocab = fake_vocab();
    let mut conv = Conversation::new(Some("You are a helpful assistant."));
    let mut done = 0;
    let mut turn = 0;
    while done < n_tokens {
        conv.append(Node::user(format!(
            "Question {turn}: tell me more of the story, with the part about the tokens."
        )));
        let id = conv.append(Node::assistant(
            Some("bench-model".into()),
            Some(vocab.clone()),
        ));
        let n = REPLY_TOKENS.min(n_tokens - done);
        let node = conv.node_mut(id);
        for step in story_steps(done, n, k) {
            node.push_step(step);
        }
        node.status = Status::Done;
        done += n;
        turn += 1;
    }
    conv
}

/// What opening a saved conversation does to the UI (the conversation
/// list's own path, [`crate::tui::transitions::show_conversation`]): `conv`
/// becomes the chat, its active path is shown and every shown turn is wrapped.
pub fn open_conversation(s: &mut State, conv: Conversation) {
    crate::tui::transitions::show_conversation(s, conv, None);
}

/// Opening a conversation: the load (whatever `load` does: a clone here, a
/// database read when the store is there) and building the UI's state from it.
#[derive(Debug, Clone)]
pub struct OpenBench {
    /// Where the conversation was loaded from ("SQLite", "memory").
    pub source: &'static str,
    pub runs: usize,
    pub tokens: usize,
    pub lines: usize,
    pub load_ms: f64,
    pub ui_ms: f64,
}

impl fmt::Display for OpenBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  open    load {:8.1} ms ({})   UI state {:8.1} ms   ({} tokens, {} wrapped lines; best of {})",
            self.load_ms, self.source, self.ui_ms, self.tokens, self.lines, self.runs
        )
    }
}

/// Opens the conversation `load` returns `runs` times in a fresh
/// `width`×`height` UI: the best time of the load and of the UI state built
/// from it ([`open_conversation`]).
pub fn bench_open(
    mut load: impl FnMut() -> Conversation,
    runs: usize,
    width: u16,
    height: u16,
) -> OpenBench {
    let mut best = (Duration::MAX, Duration::MAX);
    let mut tokens = 0;
    let mut lines = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let conv = load();
        let load_time = t.elapsed();
        let mut s = State::new(Config::default(), false, Vec::new(), (width, height));
        let t = Instant::now();
        open_conversation(&mut s, conv);
        let ui_time = t.elapsed();
        best = (best.0.min(load_time), best.1.min(ui_time));
        tokens = s
            .view
            .path
            .iter()
            .map(|&id| s.session.conv.node(id).steps.len())
            .sum();
        lines = s.view.chat.total_lines();
    }
    OpenBench {
        source: "memory",
        runs: runs.max(1),
        tokens,
        lines,
        load_ms: best.0.as_secs_f64() * 1e3,
        ui_ms: best.1.as_secs_f64() * 1e3,
    }
}

/// A reply streaming at the end of a long conversation.
#[derive(Debug, Clone)]
pub struct LongChatBench {
    pub tokens: usize,
    pub events: usize,
    pub width: u16,
    pub height: u16,
    pub open: OpenBench,
    pub times: StreamTimes,
}

impl fmt::Display for LongChatBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "long chat: {} tokens with traces, then {} streamed, {}x{} TestBackend, one frame per token",
            self.tokens, self.events, self.width, self.height
        )?;
        writeln!(f, "{}", self.open)?;
        write!(f, "{}", self.times)
    }
}

/// A conversation of `tokens` tokens (traces of `k` candidates) opened in a
/// `width`×`height` UI, then `events` tokens of a new reply streamed into it,
/// each through `update` and drawn.
/// [`bench_open`] from a real store: `conv` saved into a SQLite database in
/// a temporary file (removed after), then loaded back for each run.
///
/// # Errors
/// The store's, as text (a temporary directory that cannot be written).
pub fn bench_open_from_store(
    conv: &Conversation,
    runs: usize,
    width: u16,
    height: u16,
) -> Result<OpenBench, String> {
    let dir = std::env::temp_dir().join(format!("tokenscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = (|| {
        let mut store =
            crate::store::Store::open(&dir.join("bench.sqlite3")).map_err(|e| e.to_string())?;
        let id = store
            .save(None, conv, None)
            .map_err(|e| e.to_string())?
            .ok_or("an empty conversation is not saved")?
            .id;
        let mut failed = None;
        let b = bench_open(
            || match store.load(id) {
                Ok((c, _)) => c,
                Err(e) => {
                    failed = Some(e.to_string());
                    Conversation::default()
                }
            },
            runs,
            width,
            height,
        );
        failed.map_or(
            Ok(OpenBench {
                source: "SQLite",
                ..b
            }),
            Err,
        )
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

pub fn bench_long_chat(
    tokens: usize,
    k: usize,
    events: usize,
    width: u16,
    height: u16,
) -> LongChatBench {
    let conv = long_conversation(tokens, k);
    // From the store when it can be written, else from memory.
    let open = bench_open_from_store(&conv, 3, width, height)
        .unwrap_or_else(|_| bench_open(|| conv.clone(), 3, width, height));
    let (mut s, mut host, id) = streaming_state_after(width, height, Some(conv));
    let times = stream_frames(
        &mut s,
        &mut host,
        id,
        story_steps(tokens, events, k),
        width,
        height,
    );
    LongChatBench {
        tokens,
        events,
        width,
        height,
        open,
        times,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_conversation_has_the_tokens_asked_with_traces() {
        let conv = long_conversation(2_500, 16);
        let path = conv.path();
        assert_eq!(path.len(), 6, "three questions, three replies");
        let steps: Vec<_> = path.iter().flat_map(|&id| &conv.node(id).steps).collect();
        assert_eq!(steps.len(), 2_500);
        assert!(
            steps
                .iter()
                .all(|s| s.dist.as_ref().is_some_and(|d| d.top.len() == 16))
        );
        assert_eq!(conv.node(path[5]).steps.len(), 500);
    }

    #[test]
    fn opening_from_a_store_loads_every_token_back() {
        let conv = long_conversation(1_500, 8);
        let b = bench_open_from_store(&conv, 1, 100, 30).unwrap();
        assert_eq!((b.source, b.tokens), ("SQLite", 1_500));
        let fresh = bench_open(|| conv.clone(), 1, 100, 30);
        assert_eq!(b.lines, fresh.lines, "the same chat, wrapped the same");
    }

    #[test]
    fn the_bench_opens_and_streams_into_the_long_chat() {
        let b = bench_long_chat(3_000, 8, 20, 100, 30);
        assert_eq!((b.open.tokens, b.events), (3_000, 20));
        assert!(b.open.lines > 3_000 / 15, "{b}");
        assert!(
            b.times.frame_max_us > 0.0 && b.times.frame_mean_us <= b.times.frame_max_us,
            "{b}"
        );
    }
}
