//! Serving one generation: the reply streamed in segments (the first
//! request, then one per character whose tokens the server merged and
//! [`super::rebuild`] rebuilt), each streamed token turned into a
//! [`TokenStep`], the reply's stats.

use std::io::BufReader;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::body::{request_body, resume_body};
use super::client::Client;
use super::models::{Flavor, Loaded, MAX_REMOTE_CANDIDATES, capabilities, logprobs_hint};
use super::rebuild::{self, completion_prompt, merged_missing, rebuild_missing, rebuild_tail};
use super::stream_read::{self, Fault, Item, ReplyReader};
use super::wire::{self, Dialect, TokenProbs};
use crate::engine::api::{
    Candidate, Capabilities, ChatMode, Distribution, EngineError, Event, GenerateRequest,
    RemoteError, ReplyPrefix, RequestId, Stats, StopReason, TokenId, TokenStep, Words,
};
use crate::engine::cancel::Cancellations;
use crate::text::Utf8Assembler;

/// Why a request cannot be served remotely, if so.
fn refusal(caps: &Capabilities, req: &GenerateRequest) -> Option<EngineError> {
    if req.paused {
        return caps.refusal("step mode").map(EngineError::Refused);
    }
    if matches!(&req.prefix, ReplyPrefix::Tokens(t) if !t.is_empty()) {
        return caps
            .refusal("continuing a reply from exact tokens (a branch)")
            .map(EngineError::Refused);
    }
    if !req.raw && !matches!(req.prefix, ReplyPrefix::None) {
        return Some(EngineError::Refused(Words::tr(
            "engine-remote-prefix-raw",
            "starting the reply with given text works with --raw only on a remote engine (its chat endpoint starts replies itself)",
        )));
    }
    if req.messages.iter().all(|m| m.content.is_empty()) {
        return Some(EngineError::EmptyPrompt);
    }
    None
}

/// Serves one generation; false when nobody listens any more.
pub(super) fn generate(
    client: &Client,
    l: &mut Loaded,
    request: RequestId,
    req: &GenerateRequest,
    cancel: &Cancellations,
    emit: &impl Fn(Event) -> bool,
) -> bool {
    let caps = capabilities(&client.target, l.flavor);
    if let Some(error) = refusal(&caps, req) {
        return emit(Event::Failed { request, error });
    }
    // Fewer than asked for is no news: `Capabilities::max_candidates` says so.
    let k = req.top_k_inspect.min(MAX_REMOTE_CANDIDATES);
    let start = Instant::now();
    let (path, dialect, body) = request_body(l, req, k);
    if !emit(Event::Started {
        request,
        mode: if req.raw {
            ChatMode::Plain
        } else {
            ChatMode::Server
        },
        prompt: Vec::new(),
        prefix: Vec::new(),
        n_reused: 0,
        dropped_messages: 0,
        note: None,
    }) {
        return false;
    }
    let mut seg = Segment {
        path,
        dialect,
        body,
    };
    let mut st = Stream::default();
    // The prompt as llama-server's `/completion` takes it, once needed.
    let mut resume_prompt: Option<String> = None;
    let finish = loop {
        let seg_start = st.index;
        let outcome = match client.post_stream(seg.path, &seg.body) {
            Ok(stream) => read_segment(
                client, l, request, &seg, stream, &mut st, k, cancel, start, emit,
            ),
            Err(e) if st.index == 0 => {
                return emit(Event::Failed {
                    request,
                    error: e.into(),
                });
            }
            Err(e) => SegmentEnd::Done(Err(e)),
        };
        let (entry, missing) = match outcome {
            SegmentEnd::Gone => return false,
            SegmentEnd::Done(Ok(StopReason::MaxTokens))
                if l.flavor == Flavor::LlamaServer && k > 0 =>
            {
                // A reply cut by the limit inside a character: the server
                // decoded its last tokens but never sent them.
                let decoded = st.timings.as_ref().map_or(0, |t| t.predicted_n);
                let unsent = decoded
                    .saturating_sub(st.index - seg_start)
                    .min((req.max_tokens as usize).saturating_sub(st.index));
                if unsent == 0 {
                    break Ok(StopReason::MaxTokens);
                }
                let prompt = match resume_prompt.take() {
                    Some(p) => Ok(p),
                    None => completion_prompt(client, req),
                };
                let tail = prompt.and_then(|p| rebuild_tail(client, &p, &st.ids, unsent, k, req));
                match tail {
                    Ok(tail) => {
                        for t in &tail {
                            let step = token_step(l, &mut st, t, start);
                            if !emit(Event::Token {
                                request,
                                step: Box::new(step),
                            }) {
                                return false;
                            }
                        }
                        break Ok(StopReason::MaxTokens);
                    }
                    Err(e) => break Err(e),
                }
            }
            SegmentEnd::Done(result) => break result,
            SegmentEnd::Merged { entry, missing } => (entry, missing),
        };
        if cancel.is_cancelled(request) {
            break Ok(StopReason::Cancelled);
        }
        // A character whose first tokens the server did not stream: its
        // tokens asked for one by one, then the reply goes on from there.
        let prompt = match &resume_prompt {
            Some(p) => p.clone(),
            None => match completion_prompt(client, req) {
                Ok(p) => resume_prompt.insert(p).clone(),
                Err(e) => break Err(e),
            },
        };
        let lost = match rebuild_missing(client, &prompt, &st.ids, &missing, k, req) {
            Ok(lost) => lost,
            Err(e) => break Err(e),
        };
        let own = rebuild::own_piece(&entry).unwrap_or_default();
        let last = TokenProbs {
            token: wire::Prob {
                bytes: Some(own),
                token: None,
                ..entry.token.clone()
            },
            ..entry
        };
        for t in lost.iter().chain(std::iter::once(&last)) {
            let step = token_step(l, &mut st, t, start);
            if !emit(Event::Token {
                request,
                step: Box::new(step),
            }) {
                return false;
            }
        }
        st.resumed = true;
        let left = (req.max_tokens as usize).saturating_sub(st.index);
        if left == 0 {
            break Ok(StopReason::MaxTokens);
        }
        seg = Segment {
            path: "/completion",
            dialect: Dialect::Native,
            body: resume_body(req, &prompt, &st.ids, left, k),
        };
    };
    let tail = st.utf8.finish();
    if !tail.is_empty()
        && !emit(Event::Tail {
            request,
            text: tail,
        })
    {
        return false;
    }
    let stats = st.stats(
        finish.as_ref().copied().unwrap_or(StopReason::Cancelled),
        start,
        l.n_ctx,
    );
    match finish {
        Ok(StopReason::Cancelled) => emit(Event::Cancelled {
            request,
            stats: Some(stats),
        }),
        Ok(_) => emit(Event::Done { request, stats }),
        Err(e) => emit(Event::Failed {
            request,
            error: e.into(),
        }),
    }
}

/// One streamed request of a reply: the first one, or one that goes on after
/// a character whose tokens were rebuilt.
struct Segment {
    pub(super) path: &'static str,
    pub(super) dialect: Dialect,
    pub(super) body: Value,
}

/// How reading a [`Segment`] ended.
enum SegmentEnd {
    /// The reply ended (or failed).
    Done(Result<StopReason, RemoteError>),
    /// An entry merged tokens the server did not stream (`missing`: their
    /// bytes); the segment's stream is closed there, the entry not yet shown.
    Merged { entry: TokenProbs, missing: Vec<u8> },
    /// Nobody listens any more.
    Gone,
}

/// Reads one segment's stream, emitting its tokens, until the reply ends or
/// an entry merges unstreamed tokens (llama-server, candidates asked for).
#[allow(clippy::too_many_arguments)]
fn read_segment(
    client: &Client,
    l: &mut Loaded,
    request: RequestId,
    seg: &Segment,
    stream: ureq::Body,
    st: &mut Stream,
    k: usize,
    cancel: &Cancellations,
    start: Instant,
    emit: &impl Fn(Event) -> bool,
) -> SegmentEnd {
    let (path, dialect) = (seg.path, seg.dialect);
    // Read on a thread of its own, so that a cancel is seen while the server
    // is silent (a long prefill); dropping the receiver ends the reader at
    // its next event, which closes the connection.
    let (tx, chunks) = channel::<Item>();
    let reader = std::thread::Builder::new()
        .name("tokenscope-remote-read".into())
        .spawn(move || {
            let body = BufReader::with_capacity(1 << 14, stream.into_reader());
            let mut items = ReplyReader::new(dialect, body);
            for item in items.by_ref() {
                if tx.send(item).is_err() {
                    return;
                }
            }
            items.drain();
        });
    if let Err(e) = reader {
        return SegmentEnd::Done(Err(RemoteError::Dropped {
            url: client.url(),
            tokens: st.index,
            reason: format!("cannot start a reader thread: {e}"),
        }));
    }
    let rebuilds = l.flavor == Flavor::LlamaServer && k > 0;
    let end = loop {
        if cancel.is_cancelled(request) {
            break Ok(StopReason::Cancelled);
        }
        let chunk = match chunks.recv_timeout(Duration::from_millis(20)) {
            Ok(Item::Chunk(c)) => c,
            Ok(Item::End(end)) => {
                break end.map_err(|f| fault_error(client, path, st.index, f));
            }
            Err(RecvTimeoutError::Timeout) => continue,
            // The reader always sends an end: gone without it, it failed.
            Err(RecvTimeoutError::Disconnected) => {
                break Err(fault_error(
                    client,
                    path,
                    st.index,
                    Fault::Dropped(stream_read::CLOSED_EARLY.into()),
                ));
            }
        };
        if chunk.timings.is_some() {
            st.timings = chunk.timings.clone();
        }
        if let Some(p) = chunk.progress
            && !st.on_progress(request, p, emit)
        {
            return SegmentEnd::Gone;
        }
        if let Some(u) = chunk.usage {
            let cached = u.prompt_tokens_details.map_or(0, |d| d.cached_tokens);
            st.counted.get_or_insert((u.prompt_tokens, cached));
        }
        if k > 0 && chunk.tokens.is_empty() && !chunk.text.is_empty() {
            break Err(RemoteError::NoLogprobs {
                url: client.url(),
                hint: logprobs_hint(l.flavor),
            });
        }
        if k == 0 && !chunk.text.is_empty() {
            // The inspector is off: the text is all there is (one step).
            let step = st.step(None, chunk.text.as_bytes(), None, Vec::new(), start);
            if !emit(Event::Token {
                request,
                step: Box::new(step),
            }) {
                return SegmentEnd::Gone;
            }
        }
        for t in &chunk.tokens {
            if rebuilds && let Some(missing) = merged_missing(t) {
                // Closing the stream here cancels the server's task: the
                // slot is free for the requests that rebuild the character.
                return SegmentEnd::Merged {
                    entry: t.clone(),
                    missing,
                };
            }
            let step = token_step(l, st, t, start);
            if !emit(Event::Token {
                request,
                step: Box::new(step),
            }) {
                return SegmentEnd::Gone;
            }
        }
    };
    SegmentEnd::Done(end)
}

/// A reply's fault as the error shown: `path` was posted, `tokens` shown.
fn fault_error(client: &Client, path: &str, tokens: usize, fault: Fault) -> RemoteError {
    let url = client.url();
    match fault {
        Fault::Dropped(reason) => RemoteError::Dropped {
            url,
            tokens,
            reason,
        },
        Fault::Server(message) => RemoteError::Status {
            url,
            what: format!("POST {path}"),
            status: 200,
            message: crate::text::escape_inline(&message),
        },
        Fault::Protocol(detail) => RemoteError::Protocol {
            url,
            what: format!("the reply to POST {path}"),
            detail,
        },
    }
}

/// The state of a reply being streamed.
#[derive(Default)]
pub(super) struct Stream {
    utf8: Utf8Assembler,
    index: usize,
    /// The reply's token ids so far (where the server gave them).
    pub(super) ids: Vec<TokenId>,
    /// The reply went on in a second request after rebuilt tokens: the
    /// server's timings describe the last request only.
    resumed: bool,
    ttft: Option<Duration>,
    pub(super) timings: Option<wire::Timings>,
    /// The prompt's size and the part reused, once the server said.
    counted: Option<(usize, usize)>,
}

impl Stream {
    /// llama-server's progress through the prompt: prefill progress as the
    /// local engine reports it (tokens to evaluate, the reused ones left
    /// out), then, once it is all in, the prompt's count. False when nobody
    /// listens any more.
    fn on_progress(
        &mut self,
        request: RequestId,
        p: wire::Progress,
        emit: &impl Fn(Event) -> bool,
    ) -> bool {
        if self.counted.is_some() {
            return true;
        }
        let total = p.total.saturating_sub(p.cache);
        let done = p.processed.saturating_sub(p.cache).min(total);
        if !emit(Event::PrefillProgress {
            request,
            done,
            total,
        }) {
            return false;
        }
        if p.processed < p.total {
            return true;
        }
        self.counted = Some((p.total, p.cache));
        emit(Event::PromptCounted {
            request,
            n_prompt: p.total,
            n_reused: p.cache,
        })
    }

    pub(super) fn step(
        &mut self,
        id: Option<TokenId>,
        bytes: &[u8],
        logit: Option<f32>,
        top: Vec<Candidate>,
        start: Instant,
    ) -> TokenStep {
        self.ttft.get_or_insert_with(|| start.elapsed());
        if let Some(id) = id {
            self.ids.push(id);
        }
        let step = TokenStep {
            index: self.index,
            id: id.unwrap_or(-1),
            forced: false,
            text: self.utf8.push(bytes),
            logit,
            p_sampled: None,
            dist: (!top.is_empty()).then_some(Distribution {
                lse: 0.0,
                entropy: None,
                top,
            }),
        };
        self.index += 1;
        step
    }

    pub(super) fn stats(&self, stop: StopReason, start: Instant, n_ctx: usize) -> Stats {
        let t = self.timings.clone().unwrap_or_default();
        let elapsed = start.elapsed().as_secs_f64();
        let ttft = self.ttft.map_or(0.0, |d| d.as_secs_f64());
        let gen_tps = if t.predicted_per_second > 0.0 && !self.resumed {
            t.predicted_per_second
        } else if elapsed > ttft && self.index > 1 {
            (self.index - 1) as f64 / (elapsed - ttft)
        } else {
            0.0
        };
        // The server's timings, else its count (usage, progress); 0: unknown.
        let (n_prompt, n_reused) = match (&self.timings, self.counted) {
            (_, Some(c)) if self.resumed => c,
            (Some(t), _) => (t.prompt_n + t.cache_n, t.cache_n),
            (None, Some(c)) => c,
            (None, None) => (0, 0),
        };
        Stats {
            stop,
            n_prompt,
            n_prompt_evaluated: n_prompt.saturating_sub(n_reused),
            n_prompt_reused: n_reused,
            n_generated: self.index,
            n_forced: 0,
            ttft_ms: ttft * 1000.0,
            prompt_tps: t.prompt_per_second,
            gen_tps,
            dropped_messages: 0,
            // Unknown (0) when the prompt's size is.
            ctx_used: if n_prompt > 0 {
                n_prompt + self.index
            } else {
                0
            },
            ctx_size: n_ctx,
            ctx_requested: n_ctx,
            inspector_us_per_token: 0.0,
        }
    }
}

/// The id of a reported token: the server's, else one made up for its text.
fn id_of(l: &mut Loaded, p: &wire::Prob, bytes: &[u8]) -> TokenId {
    if let Some(id) = p.id {
        return id;
    }
    let next = l.made_up.len() as TokenId;
    *l.made_up.entry(bytes.to_vec()).or_insert(next)
}

/// One streamed token as a [`TokenStep`] (texts learned into the vocabulary first).
pub(super) fn token_step(
    l: &mut Loaded,
    st: &mut Stream,
    t: &TokenProbs,
    start: Instant,
) -> TokenStep {
    let bytes = t.token.token_bytes();
    let id = id_of(l, &t.token, &bytes);
    // A token's own bytes, from its candidates where they list it: the
    // entry's text can be more (a merged character) or less (text held back).
    let own = rebuild::own_piece(t);
    l.vocab.learned.learn(id, own.as_deref().unwrap_or(&bytes));
    let mut top: Vec<Candidate> = t
        .top()
        .iter()
        .filter_map(|c| {
            let b = c.token_bytes();
            let cid = id_of(l, c, &b);
            l.vocab.learned.learn(cid, &b);
            Some(Candidate {
                id: cid,
                logit: c.ln_p()?,
                p_sampled: None,
            })
        })
        .collect();
    top.sort_by(|a, b| b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id)));
    top.truncate(MAX_REMOTE_CANDIDATES);
    st.step(Some(id), &bytes, t.token.ln_p(), top, start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    use crate::engine::api::Vocab;
    use crate::engine::remote::models::MADE_UP_IDS;

    #[test]
    fn a_server_without_ids_gets_ids_made_up_per_text_and_their_texts_learned() {
        let mut l = Loaded {
            model: "m".into(),
            flavor: Flavor::OpenAi,
            n_ctx: 0,
            vocab: Arc::new(Vocab::learned(MADE_UP_IDS)),
            made_up: HashMap::new(),
        };
        let data = br#"{"choices":[{"delta":{"content":" Paris"},"logprobs":{"content":[{"token":" Paris","logprob":-0.1,"top_logprobs":[{"token":" the","logprob":-3.0},{"token":" Paris","logprob":-0.1}]}]}}]}"#;
        let chunk = wire::parse_chunk(Dialect::OpenAi, data).unwrap();
        let mut st = Stream::default();
        let a = token_step(&mut l, &mut st, &chunk.tokens[0], Instant::now());
        let b = token_step(&mut l, &mut st, &chunk.tokens[0], Instant::now());
        assert_eq!(a.id, b.id, "one text, one id");
        let d = a.dist.as_ref().unwrap();
        // Sorted by probability; the chosen text has the chosen id.
        assert_eq!(d.top[0].id, a.id);
        assert_ne!(d.top[1].id, a.id);
        assert_eq!(l.vocab.bytes(a.id), b" Paris");
        assert_eq!(l.vocab.bytes(d.top[1].id), b" the");
        assert!((a.p().unwrap() - (-0.1f32).exp()).abs() < 1e-6);
        assert_eq!((a.index, b.index, a.text.as_str()), (0, 1, " Paris"));
        assert!(a.entropy().is_none() && a.p_sampled.is_none());
    }
}
