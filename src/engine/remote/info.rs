//! `tokenscope info --server URL|NAME`: what a server says about a model it
//! serves — where it runs, its context and vocabulary, its chat template —
//! and whether it gives log-probabilities, found out by asking for one token
//! with the most candidates tokenscope asks for ([`MAX_REMOTE_CANDIDATES`]).

use std::cell::RefCell;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::client::Client;
use super::models::{Flavor, MAX_REMOTE_CANDIDATES, load};
use super::target::RemoteTarget;
use crate::engine::api::RemoteError;
use crate::engine::api::{
    ChatMessage, EngineError, Event, GenerateRequest, ModelInfo, Role, SamplingParams,
};
use crate::engine::cancel::Cancellations;
use crate::text::escape_inline;

/// What `info --server` reports. Numbers are `None` where the server does not
/// say (an OpenAI-compatible server other than llama-server says little).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ServerReport {
    /// The server's base URL (no credentials).
    pub url: String,
    /// `llama-server` or `openai-compatible`.
    pub server: String,
    /// llama-server's build (`/props` `build_info`).
    pub build: Option<String>,
    /// The model's id as the server lists it (`/v1/models`).
    pub model: String,
    /// Every model the server lists.
    pub models: Vec<String>,
    /// The model file on the server's machine (llama-server's `/props`).
    pub model_path: Option<String>,
    pub quantization: Option<String>,
    pub parameters: Option<u64>,
    /// Bytes of the model's tensors.
    pub size: Option<u64>,
    /// The context the server runs with, in tokens (per slot).
    pub n_ctx: Option<u64>,
    /// The context the model was trained with, in tokens.
    pub n_ctx_train: Option<u64>,
    /// Tokens in the model's vocabulary.
    pub n_vocab: Option<u64>,
    /// Requests the server serves at once (llama-server's slots).
    pub slots: Option<u64>,
    /// The chat template the server applies (llama-server's `/props`).
    pub chat_template: Option<String>,
    /// Whether a one-token reply came with log-probabilities.
    pub logprobs: bool,
    /// Candidates per token the server gave when asked for
    /// [`MAX_REMOTE_CANDIDATES`] (its cap, when lower).
    pub candidates: Option<usize>,
    /// Why there are no log-probabilities, or what the probe met.
    pub logprobs_note: Option<String>,
    /// Plain http to another machine.
    pub warning: Option<String>,
}

/// Asks the server at `target` about `model` (one it lists; empty: its only
/// one): `GET /v1/models`, `GET /props`, then a one-token chat reply with
/// [`MAX_REMOTE_CANDIDATES`] candidates asked for.
///
/// # Errors
/// The server unreachable or silent, a refused key (401/403), a model it
/// does not list (or several and none named). A failed probe is not an
/// error: the report says what it met.
pub(crate) fn describe(target: &RemoteTarget, model: &str) -> Result<ServerReport, RemoteError> {
    let client = Client::new(target.clone());
    let (mut loaded, event) = load(&client, model)?;
    let Event::Loaded { info, .. } = event(0) else {
        unreachable!("load makes a Loaded event");
    };
    let (models, _) = super::models::list(&client)?;
    let props = client
        .get_json("/props")
        .ok()
        .flatten()
        .unwrap_or(Value::Null);
    let text = |k: &str| props.get(k).and_then(Value::as_str).map(str::to_string);
    let known = |n: u64| (n > 0).then_some(n);
    let ModelInfo {
        quant,
        n_params,
        file_size,
        n_ctx,
        n_ctx_train,
        n_vocab,
        ..
    } = *info;
    let (logprobs, candidates, logprobs_note) = probe(&client, &mut loaded);
    Ok(ServerReport {
        url: target.url.clone(),
        server: match loaded.flavor {
            Flavor::LlamaServer => "llama-server".into(),
            Flavor::OpenAi => "openai-compatible".into(),
        },
        build: text("build_info"),
        model: loaded.model.clone(),
        models,
        model_path: text("model_path"),
        quantization: (!quant.is_empty()).then_some(quant),
        parameters: known(n_params),
        size: known(file_size),
        n_ctx: known(n_ctx.into()),
        n_ctx_train: known(n_ctx_train.into()),
        n_vocab: known(n_vocab.into()),
        slots: props.get("total_slots").and_then(Value::as_u64),
        chat_template: text("chat_template").filter(|t| !t.is_empty()),
        logprobs,
        candidates,
        logprobs_note,
        warning: target.warning(),
    })
}

/// One token of a chat reply with the most candidates asked for: (log-
/// probabilities given, candidates given, a note on what went wrong).
fn probe(client: &Client, l: &mut super::models::Loaded) -> (bool, Option<usize>, Option<String>) {
    let req = GenerateRequest::new(
        vec![ChatMessage::new(Role::User, "Hello")],
        SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        1,
        MAX_REMOTE_CANDIDATES,
    );
    let events = RefCell::new(Vec::new());
    super::reply::generate(
        client,
        l,
        1,
        &req,
        &Cancellations::default(),
        &|e: Event| {
            events.borrow_mut().push(e);
            true
        },
    );
    let events = events.into_inner();
    let first = events.iter().find_map(|e| match e {
        Event::Token { step, .. } => Some(step.top().len()),
        _ => None,
    });
    let failed = events.iter().find_map(|e| match e {
        Event::Failed { error, .. } => Some(error),
        _ => None,
    });
    match (first, failed) {
        (Some(n), None) if n > 0 => (true, Some(n), None),
        (_, Some(EngineError::Remote(e @ RemoteError::NoLogprobs { .. }))) => {
            (false, None, Some(e.to_string()))
        }
        (_, Some(e)) => (
            false,
            None,
            Some(format!("a one-token reply to test it failed: {e}")),
        ),
        _ => (
            false,
            None,
            Some("a one-token reply to test it came without candidates".into()),
        ),
    }
}

/// The report as `key: value` lines, like `tokenscope info` on a file.
pub(crate) fn report_text(r: &ServerReport) -> String {
    let mut out = String::new();
    let mut field = |k: &str, v: String| {
        let _ = writeln!(out, "{:<18} {v}", format!("{k}:"));
    };
    let unknown = || "not reported".to_string();
    let num = |n: Option<u64>, unit: &str| n.map_or_else(unknown, |n| format!("{n} {unit}"));
    field("name", super::models::display_name(&r.model));
    field("model id", escape_inline(&r.model));
    field(
        "remote",
        format!(
            "{}{} at {}",
            r.server,
            r.build
                .as_deref()
                .map_or(String::new(), |b| format!(" {}", escape_inline(b))),
            r.url
        ),
    );
    if let Some(p) = &r.model_path {
        field("file (server)", escape_inline(p));
    }
    field(
        "quantization",
        r.quantization
            .as_deref()
            .map_or_else(unknown, escape_inline),
    );
    field(
        "parameters",
        r.parameters
            .map_or_else(unknown, crate::catalog::params_human),
    );
    field("context", num(r.n_ctx, "tokens (per request)"));
    field("trained context", num(r.n_ctx_train, "tokens"));
    field("vocabulary", num(r.n_vocab, "tokens"));
    if let Some(n) = r.slots {
        field("slots", format!("{n} (requests served at once)"));
    }
    field(
        "log-probabilities",
        match (r.logprobs, r.candidates) {
            (true, Some(n)) if n < MAX_REMOTE_CANDIDATES => format!(
                "yes, top {n} per token (asked for {MAX_REMOTE_CANDIDATES}: the server's cap)"
            ),
            (true, Some(n)) => format!("yes, top {n} per token (the most tokenscope asks for)"),
            _ => format!(
                "no: {}",
                r.logprobs_note.as_deref().unwrap_or("none were sent")
            ),
        },
    );
    field(
        "entropy",
        "not reported (needs the whole distribution; servers give the top few)".into(),
    );
    field(
        "sampler column",
        if r.server == "llama-server" {
            "none (its post_sampling_probs sends the sampler's probabilities instead of the model's, not beside them: tokenscope shows the model's)"
        } else {
            "none (the OpenAI API reports the model's log-probabilities only)"
        }
        .into(),
    );
    if r.models.len() > 1 {
        field(
            "also served",
            r.models
                .iter()
                .filter(|m| **m != r.model)
                .map(|m| escape_inline(m))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    match &r.chat_template {
        None => field("chat template", unknown()),
        Some(t) => {
            field("chat template", crate::catalog::template_summary(t));
            out.push_str(&crate::catalog::template_preview(t));
        }
    }
    if let Some(w) = &r.warning {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}
