//! A reply's body read into what the remote engine shows: chunks (tokens,
//! text, progress, timings, usage), then one end: how the reply finished,
//! or why it did not. Pure reading, no network and no engine state, so that
//! any byte stream can be fed to it (the property test below does).
//!
//! - Events ([`sse`](super::sse)) are parsed by [`wire::parse_chunk`];
//!   events without a value (`data: null`) are skipped.
//! - OpenAI streams end at `[DONE]`; a stream that stops after a
//!   `finish_reason` (usage and `[DONE]` missing) is still a whole reply.
//!   llama-server's native stream ends at its `stop`.
//! - A body that is one JSON object instead of events (a server that
//!   answered without streaming) is one whole reply ([`wire::parse_whole`]).
//! - An `error` in the stream ends the reply with the server's message.
//! - A stream that stops early, even in the middle of an event, is a
//!   dropped reply; the chunks read before stay read.

use std::io::{self, BufRead};

use super::sse::SseReader;
use super::wire::{self, Chunk, Dialect};
use crate::engine::api::StopReason;

/// Why a reply did not finish.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fault {
    /// The stream broke, or ended before the reply did: why, in words.
    Dropped(String),
    /// The server reported an error: its message, as sent.
    Server(String),
    /// Data that cannot be read: what is wrong (the parser's message).
    Protocol(String),
}

/// One item of a reply's body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// Something to show; never an empty chunk.
    Chunk(Chunk),
    /// How the reply ended: the last item.
    End(Result<StopReason, Fault>),
}

/// What a stream that ends too early says.
pub(crate) const CLOSED_EARLY: &str = "the server closed the stream before the reply ended";

/// Reads a reply's body: an [`Iterator`] of [`Item`]s that always ends with
/// one [`Item::End`] (a read error included), then `None`.
pub(crate) struct ReplyReader<R> {
    dialect: Dialect,
    sse: SseReader<R>,
    started: bool,
    /// The finish reason seen (OpenAI servers send usage and `[DONE]` after it).
    finished: Option<StopReason>,
    /// The end to report after the chunk just reported.
    end: Option<Result<StopReason, Fault>>,
    over: bool,
}

impl<R: BufRead> ReplyReader<R> {
    /// A reader of `body`, a reply in `dialect`.
    pub fn new(dialect: Dialect, body: R) -> Self {
        Self {
            dialect,
            sse: SseReader::new(body),
            started: false,
            finished: None,
            end: None,
            over: false,
        }
    }

    /// Reads what is left of the body after its end (the chunked body's
    /// last bytes after `[DONE]`), 64 KiB at most, ignoring errors: a body
    /// read to its end lets the HTTP client keep the connection.
    pub(crate) fn drain(self) {
        let _ = io::copy(&mut self.sse.into_inner().take(64 << 10), &mut io::sink());
    }

    /// The item to report for `end`; nothing is read after it.
    fn stop(&mut self, end: Result<StopReason, Fault>) -> Item {
        self.over = true;
        Item::End(end)
    }

    /// The end where the stream stops for `why`: after a finish reason the
    /// reply is whole (only the usage and `[DONE]` are missing).
    fn cut(&mut self, why: Fault) -> Item {
        let end = self.finished.ok_or(why);
        self.stop(end)
    }

    /// What `chunk` means: an item to report, or none (an empty chunk).
    fn take(&mut self, chunk: Chunk) -> Option<Item> {
        if let Some(message) = chunk.error {
            return Some(self.stop(Err(Fault::Server(message))));
        }
        if chunk.done {
            let end = Ok(self.finished.unwrap_or(StopReason::Eog));
            return Some(self.stop(end));
        }
        if let Some(f) = chunk.finish {
            match self.dialect {
                Dialect::Native => self.end = Some(Ok(f)),
                Dialect::OpenAi => self.finished = Some(f),
            }
        }
        (chunk != Chunk::default()).then_some(Item::Chunk(chunk))
    }

    /// A body that is one JSON object: the whole reply (then the stream's
    /// end ends it).
    fn whole(&mut self) -> Option<Item> {
        let body = match self.sse.read_rest() {
            Ok(b) => b,
            Err(e) => return Some(self.stop(Err(Fault::Dropped(e.to_string())))),
        };
        match wire::parse_whole(self.dialect, &body) {
            Ok(chunk) => self.take(chunk),
            Err(detail) => Some(self.stop(Err(Fault::Protocol(detail)))),
        }
    }
}

impl<R: BufRead> Iterator for ReplyReader<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.over {
            return None;
        }
        if let Some(end) = self.end.take() {
            return Some(self.stop(end));
        }
        if !self.started {
            self.started = true;
            match self.sse.starts_with_json() {
                Ok(true) => {
                    if let Some(item) = self.whole() {
                        return Some(item);
                    }
                }
                Ok(false) => {}
                Err(e) => return Some(self.cut(Fault::Dropped(e.to_string()))),
            }
        }
        loop {
            let data = match self.sse.next_event() {
                Ok(Some(data)) => data,
                Ok(None) => return Some(self.cut(Fault::Dropped(CLOSED_EARLY.into()))),
                Err(e) => return Some(self.cut(Fault::Dropped(e.to_string()))),
            };
            let chunk = match wire::parse_chunk(self.dialect, &data) {
                Ok(c) => c,
                // The connection closed in the middle of the event.
                Err(_) if self.sse.was_cut() => {
                    return Some(self.cut(Fault::Dropped(CLOSED_EARLY.into())));
                }
                Err(detail) => return Some(self.cut(Fault::Protocol(detail))),
            };
            if let Some(item) = self.take(chunk) {
                return Some(item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, BufReader, Read};

    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::engine::remote::wire::TokenProbs;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/streams/",
                $name
            ))
        };
    }

    /// Streams in the formats of the pinned llama-server (its chat and its
    /// native `/completion`, SmolLM2 at temperature 0) and of vLLM's legacy
    /// completions. Written out rather than recorded: the pinned server's
    /// CPU backend needs AVX-VNNI, which the machine they were made on lacks.
    const FIXTURES: [(&str, Dialect, &str); 3] = [
        (
            "llama-server chat",
            Dialect::OpenAi,
            fixture!("llama-server-chat.sse"),
        ),
        (
            "llama-server native",
            Dialect::Native,
            fixture!("llama-server-native.sse"),
        ),
        (
            "vLLM completions",
            Dialect::OpenAi,
            fixture!("vllm-completions.sse"),
        ),
    ];

    /// A body that hands out its bytes a few at a time (`sizes`, cycling)
    /// and fails with a reset connection at byte `fail_at`, if given.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        sizes: Vec<usize>,
        reads: usize,
        fail_at: Option<usize>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at == Some(self.pos) {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
            let size = self.sizes[self.reads % self.sizes.len()];
            self.reads += 1;
            let until = self.fail_at.unwrap_or(usize::MAX).min(self.data.len());
            let n = size.min(buf.len()).min(until - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// What reading a body gave.
    #[derive(Debug)]
    struct Outcome {
        tokens: Vec<TokenProbs>,
        end: Result<StopReason, Fault>,
    }

    /// Reads `body` through `sizes`-sized reads into a `cap`-byte buffer,
    /// checking the reader's contract: chunks are never empty, exactly one
    /// end comes, last, and nothing after it.
    fn read(
        dialect: Dialect,
        body: &[u8],
        sizes: &[usize],
        cap: usize,
        fail_at: Option<usize>,
    ) -> Outcome {
        let trickle = Trickle {
            data: body.to_vec(),
            pos: 0,
            sizes: sizes.to_vec(),
            reads: 0,
            fail_at,
        };
        let mut reader = ReplyReader::new(dialect, BufReader::with_capacity(cap, trickle));
        let mut tokens = Vec::new();
        let end = loop {
            match reader.next().expect("an end before the items stop") {
                Item::Chunk(c) => {
                    assert_ne!(c, Chunk::default(), "an empty chunk");
                    tokens.extend(c.tokens);
                }
                Item::End(end) => break end,
            }
        };
        assert_eq!(reader.next(), None, "an item after the end");
        Outcome { tokens, end }
    }

    fn clean(dialect: Dialect, body: &[u8]) -> Outcome {
        read(dialect, body, &[1 << 20], 1 << 14, None)
    }

    fn texts(tokens: &[TokenProbs]) -> Vec<Vec<u8>> {
        tokens.iter().map(|t| t.token.token_bytes()).collect()
    }

    /// The events of a fixture (their text, `data: …`).
    fn events(text: &str) -> Vec<String> {
        text.split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    fn join(events: &[String]) -> Vec<u8> {
        let mut body = events.join("\n\n");
        body.push_str("\n\n");
        body.into_bytes()
    }

    /// How many tokens event `i` carries.
    fn tokens_of(dialect: Dialect, event: &str) -> usize {
        let data = event.strip_prefix("data: ").unwrap_or("");
        wire::parse_chunk(dialect, data.as_bytes()).map_or(0, |c| c.tokens.len())
    }

    /// The tokens of the events that end (blank line included) before byte `at`.
    fn tokens_before(dialect: Dialect, events: &[String], at: usize) -> usize {
        let mut end = 0;
        let mut n = 0;
        for e in events {
            end += e.len() + 2;
            if end > at {
                break;
            }
            n += tokens_of(dialect, e);
        }
        n
    }

    /// Calls `f` on every log-probability or probability in `v` (under
    /// `key`): chat and native `logprob`/`prob`, legacy `token_logprobs`
    /// and the values of legacy `top_logprobs` maps.
    fn each_logprob(v: &mut Value, key: &str, f: &mut dyn FnMut(&mut Value)) {
        match v {
            Value::Number(_)
                if matches!(key, "logprob" | "prob" | "token_logprobs" | "legacy map") =>
            {
                f(v)
            }
            Value::Array(a) => a.iter_mut().for_each(|x| each_logprob(x, key, f)),
            Value::Object(o) => {
                let legacy = key == "top_logprobs" && !o.contains_key("token");
                for (k, x) in o.iter_mut() {
                    each_logprob(x, if legacy { "legacy map" } else { k }, f);
                }
            }
            _ => {}
        }
    }

    /// Sets every `key` in `v` to null; whether there was one.
    fn null_every(v: &mut Value, keys: &[&str]) -> bool {
        let mut any = false;
        match v {
            Value::Array(a) => a.iter_mut().for_each(|x| any |= null_every(x, keys)),
            Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if keys.contains(&k.as_str()) && !x.is_null() {
                        *x = Value::Null;
                        any = true;
                    } else {
                        any |= null_every(x, keys);
                    }
                }
            }
            _ => {}
        }
        any
    }

    /// Event `e`'s JSON changed by `change` (false: nothing to change), or `None`.
    fn edit(e: &str, change: impl FnOnce(&mut Value) -> bool) -> Option<String> {
        let mut v: Value = serde_json::from_str(e.strip_prefix("data: ")?).ok()?;
        change(&mut v).then(|| format!("data: {v}"))
    }

    /// Position `x` among `len` (any `x`: proptest draws it).
    fn pick(x: usize, len: usize) -> usize {
        x % len.max(1)
    }

    const NON_FINITE: &str = "\"@non-finite@\"";

    /// A change to a recorded stream.
    #[derive(Debug, Clone)]
    enum Mutation {
        None,
        /// `data: null` (or, false, `data:` alone) before an event.
        NullEvent(usize, bool),
        /// An event's `choices` / `completion_probabilities` made null.
        NullList(usize),
        /// An event's candidate lists made null.
        NullCandidates(usize),
        /// One log-probability written as a non-finite number.
        NonFinite(usize, usize, &'static str),
        /// An event replaced by an error given as a string (or, false, as
        /// the `error:` line of older llama-server builds).
        ErrorString(usize, bool),
        /// The stream cut at a byte (the connection closed).
        Cut(usize),
        /// The connection reset at a byte.
        Reset(usize),
        /// A byte changed to any other.
        Flip(usize, u8),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let word = prop::sample::select(vec!["-Infinity", "Infinity", "NaN", "null"]);
        prop_oneof![
            Just(Mutation::None),
            (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Mutation::NullEvent(i, b)),
            any::<usize>().prop_map(Mutation::NullList),
            any::<usize>().prop_map(Mutation::NullCandidates),
            (any::<usize>(), any::<usize>(), word)
                .prop_map(|(i, j, w)| Mutation::NonFinite(i, j, w)),
            (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Mutation::ErrorString(i, b)),
            any::<usize>().prop_map(Mutation::Cut),
            any::<usize>().prop_map(Mutation::Reset),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        ]
    }

    /// What a mutated stream must give, beside the reader's contract.
    enum Expect {
        /// The clean stream's tokens (log-probabilities and candidates
        /// aside, when `probs`) and its end.
        Same { probs: bool },
        /// The clean tokens without those of event `.0`, and a finished reply.
        Without(usize),
        /// The tokens of the events before event `.0`, then the server's message.
        ServerError(usize),
        /// A prefix of the clean tokens, at least `.0` of them; the clean end
        /// or a dropped reply.
        Cut(usize),
        /// The clean tokens of the events wholly before the damage (`.0`),
        /// then anything; any end.
        Damaged(usize),
    }

    fn apply(
        dialect: Dialect,
        events: &[String],
        m: &Mutation,
    ) -> (Vec<u8>, Expect, Option<usize>) {
        let mut ev = events.to_vec();
        let body_len = join(events).len();
        let same = (join(events), Expect::Same { probs: false }, None);
        let list = match dialect {
            Dialect::OpenAi => "choices",
            Dialect::Native => "completion_probabilities",
        };
        match m {
            Mutation::None => same,
            Mutation::NullEvent(i, null) => {
                let at = pick(*i, ev.len() + 1);
                ev.insert(at, if *null { "data: null" } else { "data:" }.into());
                (join(&ev), Expect::Same { probs: false }, None)
            }
            Mutation::NullList(i) => {
                let i = pick(*i, ev.len());
                match edit(&ev[i], |v| null_every(v, &[list])) {
                    Some(e) => {
                        ev[i] = e;
                        (join(&ev), Expect::Without(i), None)
                    }
                    None => same,
                }
            }
            Mutation::NullCandidates(i) => {
                let i = pick(*i, ev.len());
                match edit(&ev[i], |v| null_every(v, &["top_logprobs", "top_probs"])) {
                    Some(e) => {
                        ev[i] = e;
                        (join(&ev), Expect::Same { probs: true }, None)
                    }
                    None => same,
                }
            }
            Mutation::NonFinite(i, j, word) => {
                let i = pick(*i, ev.len());
                let edited = edit(&ev[i], |v| {
                    let mut n = 0;
                    each_logprob(v, "", &mut |_| n += 1);
                    let chosen = (n > 0).then(|| pick(*j, n));
                    let mut k = 0;
                    each_logprob(v, "", &mut |x| {
                        if Some(k) == chosen {
                            *x = Value::String(NON_FINITE.trim_matches('"').into());
                        }
                        k += 1;
                    });
                    n > 0
                });
                match edited {
                    Some(e) => {
                        ev[i] = e.replace(NON_FINITE, word);
                        (join(&ev), Expect::Same { probs: true }, None)
                    }
                    None => same,
                }
            }
            Mutation::ErrorString(i, string) => {
                let i = pick(*i, ev.len());
                ev[i] = if *string {
                    r#"data: {"error":"the server gave up"}"#
                } else {
                    r#"error: {"code":500,"message":"the server gave up","type":"server_error"}"#
                }
                .into();
                (join(&ev), Expect::ServerError(i), None)
            }
            Mutation::Cut(b) => {
                let at = pick(*b, body_len + 1);
                let mut body = join(events);
                body.truncate(at);
                (body, Expect::Cut(tokens_before(dialect, events, at)), None)
            }
            Mutation::Reset(b) => {
                let at = pick(*b, body_len + 1);
                let expect = Expect::Cut(tokens_before(dialect, events, at));
                (join(events), expect, Some(at))
            }
            Mutation::Flip(b, to) => {
                let at = pick(*b, body_len);
                let mut body = join(events);
                body[at] = *to;
                (
                    body,
                    Expect::Damaged(tokens_before(dialect, events, at)),
                    None,
                )
            }
        }
    }

    fn check(name: &str, dialect: Dialect, m: &Mutation, sizes: &[usize], cap: usize) {
        let (_, _, text) = FIXTURES.iter().find(|f| f.0 == name).unwrap();
        let events = events(text);
        let want = clean(dialect, &join(&events));
        let (body, expect, fail_at) = apply(dialect, &events, m);
        let got = read(dialect, &body, sizes, cap, fail_at);
        let n = got.tokens.len();
        match expect {
            Expect::Same { probs: false } => {
                assert_eq!(got.tokens, want.tokens);
                assert_eq!(got.end, want.end);
            }
            Expect::Same { probs: true } => {
                assert_eq!(texts(&got.tokens), texts(&want.tokens));
                for (g, w) in got.tokens.iter().zip(&want.tokens) {
                    let p = g.token.ln_p();
                    assert!(p.is_none() || p == w.token.ln_p(), "{p:?} for {w:?}");
                }
                assert_eq!(got.end, want.end);
            }
            Expect::Without(i) => {
                let before: usize = events[..i].iter().map(|e| tokens_of(dialect, e)).sum();
                let lost = tokens_of(dialect, &events[i]);
                let mut kept = want.tokens.clone();
                kept.drain(before..before + lost);
                assert_eq!(got.tokens, kept);
                assert!(got.end.is_ok(), "{:?}", got.end);
            }
            Expect::ServerError(i) => {
                let before: usize = events[..i].iter().map(|e| tokens_of(dialect, e)).sum();
                assert_eq!(got.tokens, want.tokens[..before]);
                assert_eq!(got.end, Err(Fault::Server("the server gave up".into())));
            }
            Expect::Cut(at_least) => {
                assert!(n >= at_least, "{n} < {at_least} tokens");
                assert_eq!(got.tokens, want.tokens[..n]);
                assert!(
                    got.end == want.end || matches!(got.end, Err(Fault::Dropped(_))),
                    "{:?}",
                    got.end
                );
            }
            Expect::Damaged(at_least) => {
                assert!(n >= at_least, "{n} < {at_least} tokens");
                assert_eq!(got.tokens[..at_least], want.tokens[..at_least]);
            }
        }
    }

    #[test]
    fn the_recorded_streams_read_whole() {
        for (name, dialect, text) in FIXTURES {
            let got = clean(dialect, text.as_bytes());
            assert!(got.tokens.len() >= 5, "{name}: {got:?}");
            assert!(got.end.is_ok(), "{name}: {:?}", got.end);
            assert!(
                got.tokens
                    .iter()
                    .all(|t| t.token.ln_p().is_some() && !t.top().is_empty()),
                "{name}"
            );
            // Any split of the bytes reads the same.
            let split = read(dialect, text.as_bytes(), &[1, 7, 2], 3, None);
            assert_eq!(
                (&split.tokens, &split.end),
                (&got.tokens, &got.end),
                "{name}"
            );
        }
    }

    /// Issue 19: each oddity on its own, in each recorded stream.
    #[test]
    fn each_oddity_ends_the_reply_cleanly() {
        for (name, dialect, _) in FIXTURES {
            for m in [
                Mutation::NullEvent(1, true),
                Mutation::NullEvent(0, false),
                Mutation::NullList(3),
                Mutation::NullCandidates(1),
                Mutation::NonFinite(1, 0, "-Infinity"),
                Mutation::NonFinite(1, 3, "NaN"),
                Mutation::ErrorString(3, true),
                Mutation::ErrorString(2, false),
                Mutation::Cut(3),
            ] {
                eprintln!("{name}: {m:?}");
                check(name, dialect, &m, &[1 << 20], 1 << 14);
            }
        }
    }

    #[test]
    fn after_its_end_the_body_is_read_to_its_end() {
        let body = b"data: [DONE]\n\n: the server's last bytes\n";
        let mut trickle = Trickle {
            data: body.to_vec(),
            pos: 0,
            sizes: vec![4],
            reads: 0,
            fail_at: None,
        };
        let mut items = ReplyReader::new(Dialect::OpenAi, BufReader::new(&mut trickle));
        assert_eq!(items.next(), Some(Item::End(Ok(StopReason::Eog))));
        assert_eq!(items.next(), None);
        items.drain();
        assert_eq!(trickle.pos, body.len());
    }

    #[test]
    fn a_whole_json_body_is_one_reply() {
        let chat = br#"
            {"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},
             "logprobs":{"content":[{"token":"Hi","logprob":-0.5,"top_logprobs":[{"token":"Hi","logprob":-0.5}]},
                                    {"token":"!","logprob":-Infinity,"top_logprobs":null}]},
             "finish_reason":"stop"}],"usage":{"prompt_tokens":9}}
        "#;
        let got = read(Dialect::OpenAi, chat, &[5], 4, None);
        assert_eq!(texts(&got.tokens), [b"Hi".to_vec(), b"!".to_vec()]);
        assert_eq!(got.end, Ok(StopReason::Eog));
        let native = br#"{"content":"a","stop":true,"stop_type":"limit","completion_probabilities":[{"id":1,"token":"a","logprob":-1.0,"top_logprobs":[]}]}"#;
        let got = read(Dialect::Native, native, &[3], 2, None);
        assert_eq!((got.tokens.len(), got.end), (1, Ok(StopReason::MaxTokens)));
        let error = br#"{"error":{"message":"context too long","code":400}}"#;
        let got = read(Dialect::OpenAi, error, &[64], 64, None);
        assert_eq!(got.end, Err(Fault::Server("context too long".into())));
        let got = read(Dialect::OpenAi, b"{\"choices\":[", &[64], 64, None);
        assert!(matches!(got.end, Err(Fault::Protocol(_))), "{:?}", got.end);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any split of a recorded stream into reads, with any one mutation
        /// (nulls, non-finite numbers, an error, a cut, a reset, a changed
        /// byte): the reader never panics, keeps every token it read before
        /// the damage, and ends the reply with exactly one end.
        #[test]
        fn any_split_and_mutation_of_a_recorded_stream_ends_cleanly(
            fixture in 0..FIXTURES.len(),
            m in mutation(),
            sizes in prop::collection::vec(1usize..48, 1..8),
            cap in 1usize..64,
        ) {
            let (name, dialect, _) = FIXTURES[fixture];
            check(name, dialect, &m, &sizes, cap);
        }
    }
}
