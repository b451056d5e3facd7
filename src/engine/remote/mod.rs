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
//! - Each token's [`TokenStep`]: `logit` = the server's log-probability and
//!   the distribution's `lse` = 0, so `p = exp(logit)` is the server's own
//!   probability; `entropy` `None`; `p_sampled` `None`; candidates as
//!   reported (at most [`MAX_REMOTE_CANDIDATES`]). Token texts come with
//!   the tokens ([`Vocab::learned`]); ids are the model's where the server
//!   gives them, else made up per distinct text ([`Capabilities::token_ids`]).
//!
//! Step mode, forcing tokens, exact-token prefixes and scoring need logits
//! the servers do not give: such requests fail with a message that says so.
//! The API key goes in the `Authorization` header only: it is never logged,
//! shown, or part of any event.

pub mod info;
pub mod rebuild;
pub mod sse;
pub mod stream_read;
pub mod wire;

use std::collections::HashMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::api::{
    Candidate, Capabilities, ChatMode, Command, Distribution, EngineError, Event, GenerateRequest,
    ModelInfo, ReplyPrefix, RequestId, SlotId, Stats, StopReason, TokenId, TokenStep, Vocab,
};
use super::cancel::Cancellations;
pub use crate::engine::api::RemoteError;
use crate::text::Utf8Assembler;
use stream_read::{Fault, Item, ReplyReader};
use wire::{Dialect, TokenProbs};

/// Most candidates per token a remote engine asks for (OpenAI's `top_logprobs` cap).
pub const MAX_REMOTE_CANDIDATES: usize = 20;

/// Ids made up for a server that gives text only (room for this many texts).
const MADE_UP_IDS: usize = 1 << 18;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence of a server while it answers (a long prompt's prefill on
/// a busy server comes first): then the request fails as timed out
/// ([`RemoteTarget::timeout`]).
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// An API key, never printed (its `Debug` says `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// A server to talk to: its base URL (scheme, host, port, optional path
/// prefix; no trailing slash) and the key to send, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTarget {
    pub url: String,
    pub api_key: Option<ApiKey>,
    /// Longest silence of the server while it answers ([`READ_TIMEOUT`] by default).
    pub timeout: Duration,
}

impl RemoteTarget {
    /// A target for `url` (`http://` or `https://`, with a host); a
    /// trailing `/` and a trailing `/v1` are dropped (both spellings are common).
    ///
    /// # Errors
    /// [`RemoteError::BadUrl`] for anything else, saying what is expected.
    pub fn new(url: &str, api_key: Option<ApiKey>) -> Result<Self, RemoteError> {
        let bad = |why: &str| RemoteError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let trimmed = url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
        let uri: ureq::http::Uri = trimmed.parse().map_err(|_| bad("not a URL"))?;
        // A user:password@ in the URL would be shown, logged and saved with
        // it: refused, without repeating it.
        if let Some(a) = uri.authority()
            && let Some((_, host)) = a.as_str().rsplit_once('@')
        {
            return Err(RemoteError::BadUrl {
                url: format!("{}://…@{host}", uri.scheme_str().unwrap_or("http")),
                why: "it holds a user name or password: give the key with --api-key-env NAME (or api_key_env in [[servers]])".into(),
            });
        }
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            Some(s) => return Err(bad(&format!("the scheme is {s}, not http or https"))),
            None => return Err(bad("it has no scheme: write http://HOST:PORT")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        if uri.query().is_some() {
            return Err(bad("it has a query (?…): give the server's base URL"));
        }
        Ok(Self {
            url: trimmed.to_string(),
            api_key,
            timeout: READ_TIMEOUT,
        })
    }

    /// The host, without brackets for IPv6.
    fn host(&self) -> String {
        let uri: ureq::http::Uri = self.url.parse().expect("checked in new");
        uri.host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    }

    /// A warning for plain http to a host that is not this machine: the
    /// conversation (and the key, if any) cross the network unencrypted.
    pub fn warning(&self) -> Option<String> {
        if !self.url.starts_with("http://") {
            return None;
        }
        let host = self.host();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (!loopback).then(|| {
            format!(
                "{} is plain http to another machine: the conversation{} crosses the network unencrypted (use https, or an SSH tunnel to a loopback port)",
                self.url,
                if self.api_key.is_some() { " and the API key" } else { "" }
            )
        })
    }
}

/// What kind of server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// llama.cpp's llama-server (answers `/props`).
    LlamaServer,
    /// Any other OpenAI-compatible server (vLLM, …).
    OpenAi,
}

/// The model loaded: what the server said about it.
struct Loaded {
    model: String,
    flavor: Flavor,
    n_ctx: usize,
    vocab: Arc<Vocab>,
    /// Ids made up for texts, when the server gives no ids.
    made_up: HashMap<Vec<u8>, TokenId>,
}

/// The HTTP side: one agent (keeps connections alive) for a target.
struct Client {
    target: RemoteTarget,
    agent: ureq::Agent,
}

/// Whether a 401/403 body says the key itself was rejected: llama-server's
/// (and OpenAI's) `{"error": {"type": "authentication_error", …}}`.
fn key_rejected(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| {
        v.pointer("/error/type").and_then(Value::as_str) == Some("authentication_error")
    })
}

impl Client {
    fn new(target: RemoteTarget) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(target.timeout))
            .timeout_per_read(Some(target.timeout))
            .user_agent(concat!("tokenscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { target, agent }
    }

    fn url(&self) -> String {
        self.target.url.clone()
    }

    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.target.api_key {
            Some(ApiKey(k)) => req.header("Authorization", format!("Bearer {k}")),
            None => req,
        }
    }

    /// A transport error in words (`what`: the request, for a timeout).
    fn transport(&self, e: ureq::Error, what: &str) -> RemoteError {
        let url = self.url();
        match e {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                RemoteError::Unreachable {
                    url,
                    reason: format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                }
            }
            ureq::Error::Timeout(_) => RemoteError::Timeout {
                url,
                seconds: self.target.timeout.as_secs(),
                what: what.to_string(),
            },
            ureq::Error::HostNotFound => RemoteError::Unreachable {
                url,
                reason: "the host name does not resolve".into(),
            },
            ureq::Error::ConnectionFailed => RemoteError::Unreachable {
                url,
                reason: "the connection was refused".into(),
            },
            ureq::Error::Io(io) => RemoteError::Unreachable {
                url,
                reason: io.to_string(),
            },
            other => RemoteError::Unreachable {
                url,
                reason: other.to_string(),
            },
        }
    }

    /// An error status in words: 401/403 name the key, others quote the body.
    fn status(&self, status: u16, body: &str, what: &str) -> RemoteError {
        let url = self.url();
        if status == 401 || status == 403 {
            let hint = if self.target.api_key.is_some() {
                "the key is wrong or not allowed here; check the variable named by --api-key-env (or api_key_env in the config)"
            } else {
                "the server wants an API key: put it in an environment variable and name it with --api-key-env NAME (or api_key_env in the config)"
            };
            return RemoteError::Unauthorized {
                url,
                status,
                hint: hint.into(),
                key_rejected: key_rejected(body),
            };
        }
        let message = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .or_else(|| v.get("message"))
                    .or_else(|| v.get("detail"))
                    .and_then(|m| m.as_str().map(str::to_string))
            })
            .unwrap_or_else(|| crate::text::truncate(body.trim(), 300));
        RemoteError::Status {
            url,
            what: what.into(),
            status,
            message: crate::text::escape_inline(&message),
        }
    }

    /// `GET path` as JSON; `Ok(None)` for a 404 (an endpoint this server lacks).
    fn get_json(&self, path: &str) -> Result<Option<Value>, RemoteError> {
        let what = format!("GET {path}");
        let resp = self
            .auth(self.agent.get(format!("{}{path}", self.target.url)))
            .call()
            .map_err(|e| self.transport(e, &what))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .read_to_string()
            .map_err(|e| self.transport(e, &what))?;
        match status {
            200..=299 => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| RemoteError::Protocol {
                    url: self.url(),
                    what,
                    detail: e.to_string(),
                }),
            404 => Ok(None),
            _ => Err(self.status(status, &body, &what)),
        }
    }

    /// `POST path` with `body`, answered as JSON (not streamed).
    fn post_json(&self, path: &str, body: &Value) -> Result<Value, RemoteError> {
        let what = format!("POST {path}");
        let resp = self
            .auth(self.agent.post(format!("{}{path}", self.target.url)))
            .content_type("application/json")
            .send(body.to_string())
            .map_err(|e| self.transport(e, &what))?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| self.transport(e, &what))?;
        if !(200..300).contains(&status) {
            return Err(self.status(status, &text, &what));
        }
        serde_json::from_str(&text).map_err(|e| RemoteError::Protocol {
            url: self.url(),
            what,
            detail: e.to_string(),
        })
    }

    /// `POST path` with `body`, streamed: the response's body on success.
    fn post_stream(&self, path: &str, body: &Value) -> Result<ureq::Body, RemoteError> {
        let what = format!("POST {path}");
        let resp = self
            .auth(self.agent.post(format!("{}{path}", self.target.url)))
            .header("Accept", "text/event-stream")
            .content_type("application/json")
            .send(body.to_string())
            .map_err(|e| self.transport(e, &what))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp.into_body());
        }
        let text = resp.into_body().read_to_string().unwrap_or_default();
        Err(self.status(status, &text, &what))
    }
}

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
            Command::Load { request, path, .. } => {
                if cancel.is_cancelled(request) {
                    cancel.finish(request);
                    emit(Event::Cancelled {
                        request,
                        stats: None,
                    });
                    continue;
                }
                let event = match load(&client, &path) {
                    Ok((l, event)) => {
                        loaded = Some(l);
                        event(request)
                    }
                    Err(error) => Event::Failed {
                        request,
                        error: error.into(),
                    },
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
            Command::Score { request, .. } | Command::Compare { request, .. } => {
                let caps = capabilities(&client.target, Flavor::OpenAi);
                cancel.finish(request);
                let what = if matches!(cmd, Command::Score { .. }) {
                    "scoring a text"
                } else {
                    "comparing models"
                };
                if !emit(Event::Failed {
                    request,
                    error: EngineError::InvalidRequest(caps.refuses(what).unwrap_or_default()),
                }) {
                    return;
                }
            }
            // Nothing pauses on a remote engine (paused requests are refused).
            Command::Step { .. }
            | Command::Force { .. }
            | Command::ForceText { .. }
            | Command::Run { .. }
            | Command::Cancel { .. } => {}
        }
    }
}

/// What a remote engine reports it can do.
fn capabilities(target: &RemoteTarget, flavor: Flavor) -> Capabilities {
    Capabilities {
        entropy: false,
        full_distribution: false,
        max_candidates: MAX_REMOTE_CANDIDATES,
        step: false,
        token_prefix: false,
        slots: 1,
        token_ids: flavor == Flavor::LlamaServer,
        sampler_probs: false,
        score: false,
        remote: Some(target.url.clone()),
    }
}

/// The name a server's model id reads as: its last `/` part, without `.gguf`.
pub fn display_name(id: &str) -> String {
    let file = id.rsplit('/').next().unwrap_or(id);
    let stem = file.strip_suffix(".gguf").unwrap_or(file);
    // The server chose this text: made safe for a terminal here, once.
    crate::text::escape_inline(if stem.is_empty() { id } else { stem })
}

/// Picks the model `asked` (empty: the only one) among `available`: an exact
/// id, else the one id that contains it.
fn choose_model(url: &str, asked: &str, available: &[String]) -> Result<String, RemoteError> {
    if asked.is_empty() {
        return match available {
            [one] => Ok(one.clone()),
            _ => Err(RemoteError::WhichModel {
                url: url.into(),
                available: available.to_vec(),
            }),
        };
    }
    if let Some(m) = available.iter().find(|m| *m == asked) {
        return Ok(m.clone());
    }
    // A part of the id, in any case (as local files are found by a part of their name).
    let asked_lower = asked.to_lowercase();
    let partial: Vec<&String> = available
        .iter()
        .filter(|m| m.to_lowercase().contains(&asked_lower))
        .collect();
    match partial.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(RemoteError::UnknownModel {
            url: url.into(),
            model: asked.into(),
            available: available.to_vec(),
        }),
    }
}

/// The models a server lists (`GET /v1/models`): their ids.
///
/// # Errors
/// The server unreachable, a refused key, an answer that is not a list.
pub fn list_models(target: &RemoteTarget) -> Result<Vec<String>, RemoteError> {
    list(&Client::new(target.clone())).map(|(ids, _)| ids)
}

/// A path that names model `model` of the server at `url` (`URL#MODEL`),
/// for callers that name models by path (the TUI's picker and loads).
pub fn model_ref(url: &str, model: &str) -> PathBuf {
    PathBuf::from(format!("{url}#{model}"))
}

/// The server URL and model of a [`model_ref`] path; `None` for a local file.
pub fn split_ref(path: &std::path::Path) -> Option<(&str, &str)> {
    let s = path.to_str()?;
    if !(s.starts_with("http://") || s.starts_with("https://")) {
        return None;
    }
    s.split_once('#')
}

/// The ids of `GET /v1/models` and each entry's JSON.
fn list(client: &Client) -> Result<(Vec<String>, Vec<Value>), RemoteError> {
    let body = client.get_json("/v1/models")?.ok_or_else(|| RemoteError::Status {
        url: client.url(),
        what: "GET /v1/models".into(),
        status: 404,
        message: "no such endpoint: is this an OpenAI-compatible server? (give its base URL, e.g. http://HOST:8080)".into(),
    })?;
    let entries = body
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ids: Vec<String> = entries
        .iter()
        .filter_map(|e| e.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    if ids.is_empty() {
        return Err(RemoteError::Protocol {
            url: client.url(),
            what: "GET /v1/models".into(),
            detail: "it lists no model".into(),
        });
    }
    Ok((ids, entries))
}

type LoadedEvent = Box<dyn FnOnce(RequestId) -> Event>;

/// Loads `path` (a model id of the server; empty: its only model).
fn load(client: &Client, path: &std::path::Path) -> Result<(Loaded, LoadedEvent), RemoteError> {
    // A model ref (`URL#MODEL`) of this server, or the model alone.
    let by_ref = split_ref(path).filter(|(url, _)| *url == client.target.url);
    let asked = match by_ref {
        Some((_, model)) => model.to_string(),
        None => path.to_string_lossy().into_owned(),
    };
    let (ids, entries) = list(client)?;
    let model = choose_model(&client.target.url, &asked, &ids)?;
    let meta = entries
        .iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(model.as_str()))
        .and_then(|e| e.get("meta"))
        .cloned()
        .unwrap_or(Value::Null);
    // llama-server answers /props; other servers 404 (or refuse it). A
    // llama-server started with --api-key lists its models to anyone but
    // answers /props (and replies) only with the key: a key it rejects in
    // words is said now, not taken for another kind of server. A 401/403
    // without those words (a proxy that exposes /v1 only) means no /props.
    let props = match client.get_json("/props") {
        Ok(p) => p,
        Err(
            e @ RemoteError::Unauthorized {
                key_rejected: true, ..
            },
        ) => return Err(e),
        Err(_) => None,
    };
    let flavor = if props
        .as_ref()
        .is_some_and(|p| p.get("build_info").is_some() || p.get("model_path").is_some())
    {
        Flavor::LlamaServer
    } else {
        Flavor::OpenAi
    };
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let props = props.unwrap_or(Value::Null);
    let n_ctx = match num(&meta, "n_ctx") {
        0 => num(&props["default_generation_settings"], "n_ctx"),
        n => n,
    };
    let n_vocab = num(&meta, "n_vocab");
    let backend = match flavor {
        Flavor::LlamaServer => format!(
            "remote llama-server {} at {}",
            props
                .get("build_info")
                .and_then(Value::as_str)
                .unwrap_or("(build unknown)"),
            client.target.url
        ),
        Flavor::OpenAi => format!("remote OpenAI-compatible server at {}", client.target.url),
    } + if client.target.warning().is_some() {
        " (plain http to another machine: unencrypted)"
    } else {
        ""
    };
    let info = ModelInfo {
        path: match by_ref {
            Some(_) => model_ref(&client.target.url, &model),
            None => PathBuf::from(&model),
        },
        name: display_name(&model),
        arch: "remote".into(),
        n_params: num(&meta, "n_params"),
        file_size: num(&meta, "size"),
        quant: meta
            .get("ftype")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        n_layer: 0,
        n_ctx_train: num(&meta, "n_ctx_train") as u32,
        n_ctx: n_ctx as u32,
        n_ctx_requested: n_ctx as u32,
        n_vocab: n_vocab as u32,
        chat_mode: ChatMode::Server,
        default_system: None,
        backend,
        gpu_layers: 0,
        threads: 0,
    };
    let capacity = if flavor == Flavor::LlamaServer && n_vocab > 0 {
        n_vocab as usize
    } else {
        MADE_UP_IDS
    };
    let vocab = Arc::new(Vocab::learned(capacity));
    let caps = capabilities(&client.target, flavor);
    tracing::info!(target: "engine", "remote model {model} at {} ({flavor:?})", client.target.url);
    let event_vocab = vocab.clone();
    let loaded = Loaded {
        model,
        flavor,
        n_ctx: n_ctx as usize,
        vocab,
        made_up: HashMap::new(),
    };
    Ok((
        loaded,
        Box::new(move |request| Event::Loaded {
            request,
            slot: 0 as SlotId,
            info: Box::new(info),
            vocab: event_vocab,
            caps,
        }),
    ))
}

/// The request body and its endpoint.
fn request_body(l: &Loaded, req: &GenerateRequest, k: usize) -> (&'static str, Dialect, Value) {
    let s = &req.sampling;
    let mut prompt_text: String = req.messages.iter().map(|m| m.content.as_str()).collect();
    if let ReplyPrefix::Text(t) = &req.prefix {
        prompt_text.push_str(t);
    }
    if req.raw && l.flavor == Flavor::LlamaServer {
        let body = json!({
            "prompt": prompt_text,
            "n_predict": req.max_tokens,
            "n_probs": k,
            "post_sampling_probs": false,
            "temperature": s.temperature,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "min_p": s.min_p,
            "repeat_penalty": s.repeat_penalty,
            "repeat_last_n": s.repeat_last_n,
            "seed": s.seed,
            "stream": true,
            "cache_prompt": true,
            "return_progress": true,
        });
        return ("/completion", Dialect::Native, body);
    }
    let mut body = if req.raw {
        let mut b = json!({
            "model": l.model,
            "prompt": prompt_text,
            "max_tokens": req.max_tokens,
            "stream": true,
        });
        if k > 0 {
            b["logprobs"] = json!(k);
        }
        b
    } else {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let mut b = json!({
            "model": l.model,
            "messages": messages,
            "max_tokens": req.max_tokens,
            "stream": true,
        });
        if k > 0 {
            b["logprobs"] = json!(true);
            b["top_logprobs"] = json!(k);
        }
        b
    };
    body["temperature"] = json!(s.temperature);
    body["top_p"] = json!(s.top_p);
    body["seed"] = json!(s.seed);
    // The prompt's token count in the last chunk (the context used).
    body["stream_options"] = json!({"include_usage": true});
    if l.flavor == Flavor::LlamaServer {
        // Progress through the prompt as it is evaluated: its size early.
        body["return_progress"] = json!(true);
        // Its own sampler settings, accepted on the OpenAI endpoints too.
        body["top_k"] = json!(s.top_k);
        body["min_p"] = json!(s.min_p);
        body["repeat_penalty"] = json!(s.repeat_penalty);
        body["repeat_last_n"] = json!(s.repeat_last_n);
    }
    (
        if req.raw {
            "/v1/completions"
        } else {
            "/v1/chat/completions"
        },
        Dialect::OpenAi,
        body,
    )
}

/// What the server option is that turns on log-probabilities.
fn logprobs_hint(flavor: Flavor) -> String {
    match flavor {
        Flavor::LlamaServer => "this llama-server ignores `logprobs`; use a recent build (it reports them since 2024)".into(),
        Flavor::OpenAi => "start the server with log-probabilities allowed (vLLM: `--max-logprobs 20`; other servers: see their docs for `logprobs` / `top_logprobs`)".into(),
    }
}

/// Why a request cannot be served remotely, if so.
fn refusal(caps: &Capabilities, req: &GenerateRequest) -> Option<String> {
    if req.paused {
        return caps.refuses("step mode");
    }
    if matches!(&req.prefix, ReplyPrefix::Tokens(t) if !t.is_empty()) {
        return caps.refuses("continuing a reply from exact tokens (a branch)");
    }
    if !req.raw && !matches!(req.prefix, ReplyPrefix::None) {
        return Some(
            "starting the reply with given text works with --raw only on a remote engine (its chat endpoint starts replies itself)"
                .into(),
        );
    }
    if req.messages.iter().all(|m| m.content.is_empty()) {
        return Some(EngineError::EmptyPrompt.to_string());
    }
    None
}

/// Serves one generation; false when nobody listens any more.
fn generate(
    client: &Client,
    l: &mut Loaded,
    request: RequestId,
    req: &GenerateRequest,
    cancel: &Cancellations,
    emit: &impl Fn(Event) -> bool,
) -> bool {
    let caps = capabilities(&client.target, l.flavor);
    if let Some(why) = refusal(&caps, req) {
        return emit(Event::Failed {
            request,
            error: EngineError::InvalidRequest(why),
        });
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
    path: &'static str,
    dialect: Dialect,
    body: Value,
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

/// The bytes of the tokens llama-server merged into entry `t` without
/// streaming them (see [`rebuild`]); `None` when `t` is one token (or its
/// own piece is unknown: not among its candidates).
fn merged_missing(t: &TokenProbs) -> Option<Vec<u8>> {
    let own = rebuild::own_piece(t)?;
    let entry = t.token.token_bytes();
    let missing = rebuild::missing_prefix(&entry, &own)?;
    (!missing.is_empty()).then(|| missing.to_vec())
}

/// The reply's prompt as text for llama-server's `/completion` (which takes
/// it followed by token ids): the raw prompt as sent, or the chat rendered
/// by the server's own template (`POST /apply-template`, exactly what its
/// chat endpoint evaluates).
fn completion_prompt(client: &Client, req: &GenerateRequest) -> Result<String, RemoteError> {
    if req.raw {
        let mut text: String = req.messages.iter().map(|m| m.content.as_str()).collect();
        if let ReplyPrefix::Text(t) = &req.prefix {
            text.push_str(t);
        }
        return Ok(text);
    }
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let v = client.post_json("/apply-template", &json!({ "messages": messages }))?;
    v.get("prompt")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| RemoteError::Protocol {
            url: client.url(),
            what: "POST /apply-template".into(),
            detail: "no prompt in the answer".into(),
        })
}

/// llama-server's prompt of text then token ids.
fn prompt_with_ids(prompt: &str, ids: &[TokenId]) -> Value {
    let mut parts = vec![json!(prompt)];
    parts.extend(ids.iter().map(|id| json!(id)));
    Value::Array(parts)
}

/// The sampling settings of `req` as llama-server's fields.
fn sampling_fields(body: &mut Value, req: &GenerateRequest) {
    let s = &req.sampling;
    for (key, value) in [
        ("temperature", json!(s.temperature)),
        ("top_k", json!(s.top_k)),
        ("top_p", json!(s.top_p)),
        ("min_p", json!(s.min_p)),
        ("repeat_penalty", json!(s.repeat_penalty)),
        ("repeat_last_n", json!(s.repeat_last_n)),
        ("seed", json!(s.seed)),
    ] {
        body[key] = value;
    }
}

/// The request that goes on with a reply after rebuilt tokens: `/completion`
/// from the prompt and the reply's ids so far, `left` tokens at most.
fn resume_body(
    req: &GenerateRequest,
    prompt: &str,
    ids: &[TokenId],
    left: usize,
    k: usize,
) -> Value {
    let mut body = json!({
        "prompt": prompt_with_ids(prompt, ids),
        "n_predict": left,
        "n_probs": k,
        "post_sampling_probs": false,
        "stream": true,
        "cache_prompt": true,
    });
    sampling_fields(&mut body, req);
    body
}

/// The model's distribution at the position after `ids` (the prompt's text
/// `prompt`, then the reply's ids), as llama-server reports it with one
/// ASCII token sampled (see [`rebuild`]): its top `k` candidates.
fn distribution_after(
    client: &Client,
    prompt: &str,
    ids: &[TokenId],
    k: usize,
    req: &GenerateRequest,
) -> Result<Vec<wire::Prob>, RemoteError> {
    let mut body = json!({
        "prompt": prompt_with_ids(prompt, ids),
        "n_predict": 1,
        "n_probs": k.max(1),
        "post_sampling_probs": false,
        "grammar": rebuild::ANY_ASCII,
        "stream": false,
        "cache_prompt": true,
    });
    sampling_fields(&mut body, req);
    let v = client.post_json("/completion", &body)?;
    let probs: Vec<TokenProbs> = v
        .get("completion_probabilities")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| RemoteError::Protocol {
            url: client.url(),
            what: "POST /completion".into(),
            detail: e.to_string(),
        })?
        .unwrap_or_default();
    Ok(probs
        .into_iter()
        .next()
        .map(|p| p.top().to_vec())
        .unwrap_or_default())
}

/// The last `count` tokens of a reply cut by its limit inside a character,
/// which llama-server decoded but never sent: drawn again from the same
/// point (`return_tokens` names every token drawn, complete or not; at
/// temperature 0 the same ones), each with its distribution.
///
/// # Errors
/// The server failing, or a drawn token not among the candidates reported.
fn rebuild_tail(
    client: &Client,
    prompt: &str,
    ids: &[TokenId],
    count: usize,
    k: usize,
    req: &GenerateRequest,
) -> Result<Vec<TokenProbs>, RemoteError> {
    let mut body = json!({
        "prompt": prompt_with_ids(prompt, ids),
        "n_predict": count,
        "n_probs": 0,
        "return_tokens": true,
        "stream": false,
        "cache_prompt": true,
    });
    sampling_fields(&mut body, req);
    let v = client.post_json("/completion", &body)?;
    let drawn: Vec<TokenId> = v
        .get("tokens")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_i64())
                .map(|t| t as TokenId)
                .collect()
        })
        .unwrap_or_default();
    let mut ctx = ids.to_vec();
    let mut out = Vec::new();
    for id in drawn.into_iter().take(count) {
        let cands = distribution_after(client, prompt, &ctx, k, req)?;
        let Some(token) = cands.iter().find(|c| c.id == Some(id)).cloned() else {
            return Err(RemoteError::Protocol {
                url: client.url(),
                what: "rebuilding the reply's last tokens".into(),
                detail: format!(
                    "token {id} is not among the {} candidates reported",
                    cands.len()
                ),
            });
        };
        out.push(TokenProbs {
            token,
            top_logprobs: cands,
            top_probs: Vec::new(),
        });
        ctx.push(id);
    }
    Ok(out)
}

/// The tokens whose bytes are `missing`, which llama-server did not stream,
/// each with the model's distribution at its position: asked for one at a
/// time from the prompt and the reply's ids (`ids`) so far (see [`rebuild`]).
///
/// # Errors
/// The server failing, or no candidate that fits the missing bytes (the
/// token drawn was not among the `k` reported).
fn rebuild_missing(
    client: &Client,
    prompt: &str,
    ids: &[TokenId],
    missing: &[u8],
    k: usize,
    req: &GenerateRequest,
) -> Result<Vec<TokenProbs>, RemoteError> {
    let mut ctx = ids.to_vec();
    let mut rest = missing;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let cands = distribution_after(client, prompt, &ctx, k, req)?;
        let cands = cands.as_slice();
        let lost = rebuild::choose_lost(cands, rest).ok_or_else(|| RemoteError::Protocol {
            url: client.url(),
            what: "rebuilding a character's tokens".into(),
            detail: format!(
                "none of the {} candidates reported begins its missing bytes {:02X?}",
                cands.len(),
                rest
            ),
        })?;
        let (Some(id), n) = (lost.id, lost.token_bytes().len()) else {
            break;
        };
        out.push(TokenProbs {
            token: lost.clone(),
            top_logprobs: cands.to_vec(),
            top_probs: Vec::new(),
        });
        ctx.push(id);
        rest = &rest[n..];
    }
    Ok(out)
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
struct Stream {
    utf8: Utf8Assembler,
    index: usize,
    /// The reply's token ids so far (where the server gave them).
    ids: Vec<TokenId>,
    /// The reply went on in a second request after rebuilt tokens: the
    /// server's timings describe the last request only.
    resumed: bool,
    ttft: Option<Duration>,
    timings: Option<wire::Timings>,
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

    fn step(
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

    fn stats(&self, stop: StopReason, start: Instant, n_ctx: usize) -> Stats {
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
fn token_step(l: &mut Loaded, st: &mut Stream, t: &TokenProbs, start: Instant) -> TokenStep {
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
    let (mut l, _) = load(&client, std::path::Path::new(model))?;
    let req = GenerateRequest::new(
        vec![super::api::ChatMessage::new(
            super::api::Role::User,
            "Write a long story about a dragon.",
        )],
        super::api::SamplingParams {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_rejected_in_words_is_told_from_a_closed_path() {
        assert!(key_rejected(
            r#"{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}"#
        ));
        assert!(!key_rejected("<html>403 Forbidden</html>"));
        assert!(!key_rejected(
            r#"{"error":{"message":"not here","type":"forbidden"}}"#
        ));
    }

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

    #[test]
    fn urls_are_checked_and_plain_http_elsewhere_warns() {
        let t = RemoteTarget::new("http://127.0.0.1:8080/v1/", None).unwrap();
        assert_eq!(t.url, "http://127.0.0.1:8080");
        assert!(t.warning().is_none());
        assert!(
            RemoteTarget::new("http://localhost:1", None)
                .unwrap()
                .warning()
                .is_none()
        );
        assert!(
            RemoteTarget::new("http://[::1]:1", None)
                .unwrap()
                .warning()
                .is_none()
        );
        let far = RemoteTarget::new("http://gpu-box:8000", Some(ApiKey::new("sk-secret"))).unwrap();
        let w = far.warning().unwrap();
        assert!(w.contains("unencrypted") && w.contains("API key"), "{w}");
        assert!(!w.contains("sk-secret"));
        assert!(!format!("{far:?}").contains("sk-secret"));
        assert!(
            RemoteTarget::new("https://gpu-box", None)
                .unwrap()
                .warning()
                .is_none()
        );
        for bad in ["gpu-box:8000", "ftp://x", "http://", "http://x/?a=1"] {
            let e = RemoteTarget::new(bad, None).unwrap_err();
            assert!(matches!(e, RemoteError::BadUrl { .. }), "{bad}: {e}");
        }
        // A password in the URL is refused and not repeated.
        let e = RemoteTarget::new("https://me:hunter2@gpu-box:8000", None).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RemoteError::BadUrl { .. }), "{text}");
        assert!(
            !text.contains("hunter2") && text.contains("--api-key-env"),
            "{text}"
        );
    }

    #[test]
    fn a_model_is_picked_exactly_by_unique_part_or_as_the_only_one() {
        let ids = vec!["/m/SmolLM2.gguf".to_string(), "/m/gemma.gguf".to_string()];
        assert_eq!(choose_model("u", "gemma", &ids).unwrap(), "/m/gemma.gguf");
        assert_eq!(choose_model("u", "smol", &ids).unwrap(), "/m/SmolLM2.gguf");
        assert_eq!(
            choose_model("u", "/m/SmolLM2.gguf", &ids).unwrap(),
            "/m/SmolLM2.gguf"
        );
        assert!(matches!(
            choose_model("u", "", &ids),
            Err(RemoteError::WhichModel { .. })
        ));
        let e = choose_model("u", "llama", &ids).unwrap_err();
        assert!(e.to_string().contains("/m/gemma.gguf"), "{e}");
        assert!(matches!(
            choose_model("u", ".gguf", &ids),
            Err(RemoteError::UnknownModel { .. })
        ));
        assert_eq!(choose_model("u", "", &ids[..1]).unwrap(), "/m/SmolLM2.gguf");
        assert_eq!(display_name("/m/SmolLM2.gguf"), "SmolLM2");
        assert_eq!(display_name("meta-llama/Llama-3.1-70B"), "Llama-3.1-70B");
        assert_eq!(display_name("evil\u{1b}[2J.gguf"), "evil␛[2J");
        let r = model_ref("http://h:1", "/m/a.gguf");
        assert_eq!(split_ref(&r), Some(("http://h:1", "/m/a.gguf")));
        assert_eq!(split_ref(std::path::Path::new("/m/a.gguf")), None);
    }
}
