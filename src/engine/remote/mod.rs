//! The remote engine: the protocol of [`crate::engine::api`] served by an
//! HTTP server that reports log-probabilities (llama-server, vLLM, other
//! OpenAI-compatible servers), on a thread of this process.
//!
//! - Load: `GET /v1/models` (the model asked for must be listed; none asked
//!   for is fine when the server serves one), then `GET /props` (answered by
//!   llama-server only: its build, the context).
//! - Chat: `POST /v1/chat/completions` with `stream`, `logprobs`,
//!   `top_logprobs` (the server applies its chat template). Raw (`--raw`):
//!   llama-server's native `POST /completion` with `n_probs` (token ids, the
//!   model's probabilities), else `POST /v1/completions` with `logprobs`.
//! - The prompt's size: llama-server is asked for `return_progress` (prefill
//!   progress, then [`Event::PromptCounted`] before the first token), OpenAI
//!   servers for `stream_options.include_usage` (the count at the end, in the
//!   stats). A stream ends at `[DONE]` (OpenAI) or `stop` (native); one that
//!   ends without it, and without a `finish_reason`, is a dropped reply.
//! - `post_sampling_probs` is not asked for: llama-server then sends the
//!   sampler's probabilities instead of the model's, not beside them, so no
//!   sampler probability is reported (`p_sampled` `None`).
//! - Each token's [`TokenStep`](crate::engine::TokenStep): `logit` = the
//!   server's log-probability and the distribution's `lse` = 0, so
//!   `p = exp(logit)` is the server's own probability; `entropy` `None`;
//!   `p_sampled` `None`; candidates as reported (at most
//!   [`MAX_REMOTE_CANDIDATES`](models::MAX_REMOTE_CANDIDATES)). Token texts
//!   come with the tokens ([`Vocab::learned`](crate::engine::Vocab::learned));
//!   ids are the model's where the server gives them, else made up per
//!   distinct text
//!   ([`Capabilities::token_ids`](crate::engine::Capabilities::token_ids)).
//!
//! Step mode, forcing tokens, exact-token prefixes and scoring need logits
//! the servers do not give: such requests fail with a message that says so.
//! The API key goes in the `Authorization` header only: it is never logged,
//! shown, or part of any event.
//!
//! The parts, bottom up: `target` (the URL and key), `client` (HTTP),
//! [`wire`], [`sse`] and [`stream_read`] (a streamed reply read, no network),
//! `models` (listing and loading a model), `body` (request bodies),
//! [`rebuild`] (tokens the server merged), `reply` (serving a generation),
//! then [`info`] and [`client_overhead`] (subcommands' helpers) and, here,
//! the worker loop (`run`).

mod body;
mod client;
pub mod info;
mod models;
mod overhead;
pub(crate) mod rebuild;
mod reply;
pub(crate) mod sse;
pub(crate) mod stream_read;
mod target;
pub(crate) mod wire;

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use super::api::{Command, EngineError, Event, ModelRef, Words};
use super::cancel::Cancellations;
use client::Client;
use models::{Flavor, Loaded, capabilities, load};
use reply::generate;

pub use crate::engine::api::RemoteError;
pub(crate) use models::{display_name, list_models};
pub(crate) use overhead::client_overhead;
pub use target::{ApiKey, RemoteTarget};

/// The remote worker: serves `rx` until [`Command::Shutdown`] or every
/// sender is gone, sending events through `emit` (false: nobody listens, stop).
pub(super) fn run(
    target: RemoteTarget,
    rx: Receiver<Command>,
    cancel: Arc<Cancellations>,
    emit: impl Fn(Event) -> bool,
) {
    let client = Client::new(target);
    let mut loaded: Option<Loaded> = None;
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Shutdown => return,
            Command::Load { request, model, .. } => {
                if cancel.is_cancelled(request) {
                    cancel.finish(request);
                    emit(Event::Cancelled {
                        request,
                        stats: None,
                    });
                    continue;
                }
                let loading =
                    asked(&client, &model).and_then(|m| load(&client, m).map_err(Into::into));
                let event = match loading {
                    Ok((l, event)) => {
                        loaded = Some(l);
                        event(request)
                    }
                    Err(error) => Event::Failed { request, error },
                };
                cancel.finish(request);
                if !emit(event) {
                    return;
                }
            }
            Command::Unload { .. } => loaded = None,
            Command::Generate { request, slot, req } => {
                let ok = match (&mut loaded, slot) {
                    (_, s) if s != 0 => emit(Event::Failed {
                        request,
                        error: EngineError::BadSlot { slot: s },
                    }),
                    (None, _) => emit(Event::Failed {
                        request,
                        error: EngineError::NoModel { slot },
                    }),
                    (Some(l), _) => generate(&client, l, request, &req, &cancel, &emit),
                };
                cancel.finish(request);
                if !ok {
                    return;
                }
            }
            Command::Lens { request, .. } => {
                cancel.finish(request);
                let reason = Words::tr_args(
                    "engine-remote-lens",
                    "the layer lens reads the model's residual stream and attention inside its \
                     computation graph, which the server at { $url } does not expose over HTTP: load a \
                     local model file for it",
                    &[("url", &client.target.url)],
                );
                if !emit(Event::Failed {
                    request,
                    error: EngineError::Refused(reason),
                }) {
                    return;
                }
            }
            Command::Score { request, .. }
            | Command::ScorePrompt { request, .. }
            | Command::AskText { request, .. }
            | Command::Rollouts { request, .. }
            | Command::Compare { request, .. } => {
                let caps = capabilities(&client.target, Flavor::OpenAi);
                cancel.finish(request);
                let what = match cmd {
                    Command::Score { .. } => "scoring a text",
                    Command::ScorePrompt { .. } => "scoring a prompt",
                    // The probability of any token needs the whole vocabulary's logits.
                    Command::AskText { .. } => "asking about a text",
                    // The server's API samples one continuation per
                    // request: its cache cannot be shared into sequences.
                    Command::Rollouts { .. } => "rolling out the top candidates",
                    _ => "comparing models",
                };
                if !emit(Event::Failed {
                    request,
                    error: EngineError::Refused(
                        caps.refusal(what).unwrap_or_else(|| Words::text(what)),
                    ),
                }) {
                    return;
                }
            }
            Command::KvCost { request, .. } => {
                cancel.finish(request);
                if !emit(Event::Failed {
                    request,
                    error: EngineError::Refused(Words::tr_args(
                        "engine-remote-kv",
                        "what the KV cache saves is measured on a model in this process: the \
                         server at { $url } keeps its cache to itself; load a local model for it",
                        &[("url", &client.target.url)],
                    )),
                }) {
                    return;
                }
            }
            // Nothing pauses on a remote engine (paused requests are refused).
            Command::Steer { .. } | Command::Cancel { .. } => {}
        }
    }
}

/// The model id a load of `model` asks the server for; a local file or
/// another server's model is refused in words.
fn asked<'a>(client: &Client, model: &'a ModelRef) -> Result<&'a str, EngineError> {
    match model {
        ModelRef::Remote { url, model } if *url == client.target.url => Ok(model),
        other => Err(EngineError::Refused(Words::tr_args(
            "engine-remote-not-its-model",
            "{ $model } is not a model of the server at { $url }: this engine loads that server's models",
            &[("model", other), ("url", &client.target.url)],
        ))),
    }
}
