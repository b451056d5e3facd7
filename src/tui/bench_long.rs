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

use super::bench::{
    StreamTimes, fake_vocab, label, story_steps, stream_frames, streaming_state_after,
};
use super::state::State;
use crate::config::Config;
use crate::conversation::{Conversation, Node, Status};
use crate::i18n::{tr, tr_args};

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
        let line = tr_args(
            "bench-ui-open",
            "load { $load } ms ({ $source })   UI state { $ui } ms   ({ $tokens } tokens, { $lines } wrapped lines; best of { $runs })",
            &[
                ("load", &format!("{:8.1}", self.load_ms)),
                ("source", &self.source),
                ("ui", &format!("{:8.1}", self.ui_ms)),
                ("tokens", &self.tokens),
                ("lines", &self.lines),
                ("runs", &self.runs),
            ],
        );
        write!(f, "{}{line}", label(tr("bench-ui-open-label", "open")))
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
        let head = tr_args(
            "bench-ui-long-head",
            "long chat: { $tokens } tokens with traces, then { $events } streamed, { $width }x{ $height } TestBackend, one frame per token",
            &[
                ("tokens", &self.tokens),
                ("events", &self.events),
                ("width", &self.width),
                ("height", &self.height),
            ],
        );
        writeln!(f, "{head}")?;
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
    use crate::i18n::{Lang, with_lang};
    use crate::tui::bench::UiBench;
    use unicode_width::UnicodeWidthStr;

    /// The README's UI bench lines are pasted from the English: it is
    /// byte for byte what it was; the Chinese has no English word left and
    /// its numbers start at the same display column.
    #[test]
    fn the_ui_bench_report_is_the_same_english_and_aligned_chinese() {
        let times = StreamTimes {
            update_mean_us: 0.6,
            update_p99_us: 2.0,
            frame_mean_us: 98.7,
            frame_p50_us: 95.1,
            frame_p99_us: 151.0,
            frame_max_us: 402.3,
        };
        let b = LongChatBench {
            tokens: 50_000,
            events: 1000,
            width: 120,
            height: 40,
            open: OpenBench {
                source: "SQLite",
                runs: 3,
                tokens: 50_000,
                lines: 3675,
                load_ms: 67.8,
                ui_ms: 11.4,
            },
            times,
        };
        let en = with_lang(Lang::En, || b.to_string());
        assert_eq!(
            en,
            "long chat: 50000 tokens with traces, then 1000 streamed, 120x40 TestBackend, one frame per token\n\
             \x20 open    load     67.8 ms (SQLite)   UI state     11.4 ms   (50000 tokens, 3675 wrapped lines; best of 3)\n\
             \x20 update  mean      0.6 µs   p99      2.0 µs\n\
             \x20 frame   mean     98.7 µs   p50     95.1 µs   p99    151.0 µs   max    402.3 µs"
        );
        let zh = with_lang(Lang::Zh, || b.to_string());
        for word in [
            "long chat",
            "tokens",
            "open",
            "load",
            "update",
            "mean",
            "frame",
            "max",
        ] {
            assert!(!zh.contains(word), "{word:?} in:\n{zh}");
        }
        let lines: Vec<&str> = zh.lines().collect();
        let col = |l: &str| {
            let at = l.find(|c: char| c.is_ascii_digit()).expect("a number");
            l[..at].trim_end().width()
        };
        // The label column is eight wide in both: each number's label ends
        // (its first word after the label starts) at the same column.
        let label_end = |l: &str| l[..l.find("  ").map_or(0, |i| i + 2)].width();
        assert!(
            lines[1..].iter().all(|l| label_end(l.trim_start()) <= 8),
            "{zh}"
        );
        assert!(lines[1..].iter().all(|l| col(l) > 8), "{zh}");
        let ui = UiBench {
            events: 5000,
            width: 120,
            height: 40,
            times: b.times.clone(),
            total_ms: 512.0,
        };
        let en = with_lang(Lang::En, || ui.to_string());
        assert!(
            en.starts_with(
                "ui bench: 5000 token events, 120x40 TestBackend, one frame per event\n"
            ) && en.ends_with("\n  total   512.0 ms (9766 events/s with a frame each)"),
            "{en}"
        );
        let zh = with_lang(Lang::Zh, || ui.to_string());
        assert!(
            zh.starts_with("界面基准：5000 个词元事件") && zh.contains("  合计    512.0 ms"),
            "{zh}"
        );
    }

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
