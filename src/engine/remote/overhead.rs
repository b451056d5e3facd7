//! What the client itself costs per streamed token, measured without the
//! network or the server (`tokenscope bench --server`).

use std::io::BufReader;
use std::sync::mpsc::channel;
use std::time::Instant;

use super::body::request_body;
use super::client::Client;
use super::models::{MAX_REMOTE_CANDIDATES, load, logprobs_hint};
use super::reply::{Stream, token_step};
use super::stream_read::{Item, ReplyReader};
use super::target::RemoteTarget;
use crate::engine::api::{Event, GenerateRequest, RemoteError};

/// What the client costs per streamed token ([`client_overhead`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Overhead {
    /// Tokens in the recorded stream.
    pub tokens: usize,
    /// Bytes of the recorded stream.
    pub bytes: usize,
    /// Candidates per token.
    pub candidates: usize,
    /// Mean client time per token, in microseconds: SSE framing, JSON
    /// parsing, the [`TokenStep`] and its event sent over a channel.
    pub us_per_token: f64,
}

/// Measures the client's own cost per streamed token: one chat reply of
/// `tokens` tokens with `k` candidates each is recorded from the server at
/// `target` (model `model`, empty: its only one), then read `runs` times
/// exactly as a live stream is (SSE, JSON, steps, events over a channel),
/// with the network and the server out of the timing.
///
/// # Errors
/// The server unreachable, refusing, or sending no tokens.
pub fn client_overhead(
    target: &RemoteTarget,
    model: &str,
    tokens: u32,
    k: usize,
    runs: u32,
) -> Result<Overhead, RemoteError> {
    use std::io::Read;
    let client = Client::new(target.clone());
    let (mut l, _) = load(&client, model)?;
    let req = GenerateRequest::new(
        vec![crate::engine::api::ChatMessage::new(
            crate::engine::api::Role::User,
            "Write a long story about a dragon.",
        )],
        crate::engine::api::SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        tokens,
        k,
    );
    let k = k.min(MAX_REMOTE_CANDIDATES);
    let (path, dialect, body) = request_body(&l, &req, k);
    let mut raw = Vec::new();
    client
        .post_stream(path, &body)?
        .into_reader()
        .read_to_end(&mut raw)
        .map_err(|e| RemoteError::Dropped {
            url: client.url(),
            tokens: 0,
            reason: e.to_string(),
        })?;
    let (tx, rx) = channel();
    let mut n = 0;
    let start = Instant::now();
    for _ in 0..runs.max(1) {
        let mut st = Stream::default();
        for item in ReplyReader::new(dialect, BufReader::new(raw.as_slice())) {
            let Item::Chunk(chunk) = item else {
                continue;
            };
            for t in &chunk.tokens {
                let step = token_step(&mut l, &mut st, t, start);
                let _ = tx.send(Event::Token {
                    request: 1,
                    step: Box::new(step),
                });
                n += 1;
            }
        }
        while rx.try_recv().is_ok() {}
    }
    let elapsed = start.elapsed();
    if n == 0 {
        return Err(RemoteError::NoLogprobs {
            url: client.url(),
            hint: logprobs_hint(l.flavor),
        });
    }
    Ok(Overhead {
        tokens: n / runs.max(1) as usize,
        bytes: raw.len(),
        candidates: k,
        us_per_token: elapsed.as_secs_f64() * 1e6 / n as f64,
    })
}
