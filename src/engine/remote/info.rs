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
use crate::i18n::{Lang, tr, tr_args, with_lang};
use crate::text::{escape_inline, pad_right};

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
    /// Why there are no log-probabilities, or what the probe met (English:
    /// the JSON is the same whatever the interface language).
    pub logprobs_note: Option<String>,
    /// [`Self::logprobs_note`] in the interface language, for the text.
    #[serde(skip)]
    pub logprobs_note_text: Option<String>,
    /// Plain http to another machine (English: the JSON is the same
    /// whatever the interface language).
    pub warning: Option<String>,
    /// [`Self::warning`] in the interface language, for the text.
    #[serde(skip)]
    pub warning_text: Option<String>,
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
    let (logprobs, candidates, note) = probe(&client, &mut loaded);
    // The note twice: English for the JSON, the interface's for the text.
    let logprobs_note = note.as_ref().map(|n| with_lang(Lang::En, n));
    let logprobs_note_text = note.as_ref().map(|n| n());
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
        logprobs_note_text,
        warning: with_lang(Lang::En, || target.warning()),
        warning_text: target.warning(),
    })
}

/// A note on what a probe met, worded in the language in use when called.
type Note = Box<dyn Fn() -> String>;

/// One token of a chat reply with the most candidates asked for: (log-
/// probabilities given, candidates given, a note on what went wrong).
fn probe(client: &Client, l: &mut super::models::Loaded) -> (bool, Option<usize>, Option<Note>) {
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
    let failed = events.into_iter().find_map(|e| match e {
        Event::Failed { error, .. } => Some(error),
        _ => None,
    });
    match (first, failed) {
        (Some(n), None) if n > 0 => (true, Some(n), None),
        (_, Some(EngineError::Remote(e @ RemoteError::NoLogprobs { .. }))) => {
            (false, None, Some(Box::new(move || e.to_string())))
        }
        (_, Some(e)) => (
            false,
            None,
            Some(Box::new(move || {
                tr_args(
                    "server-info-probe-failed",
                    "a one-token reply to test it failed: { $e }",
                    &[("e", &e)],
                )
            })),
        ),
        _ => (
            false,
            None,
            Some(Box::new(|| {
                tr(
                    "server-info-probe-empty",
                    "a one-token reply to test it came without candidates",
                )
            })),
        ),
    }
}

/// The report as `key: value` lines, like `tokenscope info` on a file.
pub(crate) fn report_text(r: &ServerReport) -> String {
    let mut out = String::new();
    // The field's name with its colon, padded to 18 columns as displayed
    // (a Chinese character is two).
    let mut field = |k: String, v: String| {
        let _ = writeln!(out, "{} {v}", pad_right(&k, 18));
    };
    let unknown = || tr("server-info-not-reported", "not reported");
    let tokens = |n: Option<u64>| {
        n.map_or_else(unknown, |n| {
            tr_args("server-info-tokens", "{ $n } tokens", &[("n", &n)])
        })
    };
    field(
        tr("server-info-name", "name:"),
        super::models::display_name(&r.model),
    );
    field(
        tr("server-info-model-id", "model id:"),
        escape_inline(&r.model),
    );
    field(
        tr("server-info-remote", "remote:"),
        tr_args(
            "server-info-remote-value",
            "{ $server }{ $build } at { $url }",
            &[
                ("server", &r.server),
                (
                    "build",
                    &r.build
                        .as_deref()
                        .map_or(String::new(), |b| format!(" {}", escape_inline(b))),
                ),
                ("url", &r.url),
            ],
        ),
    );
    if let Some(p) = &r.model_path {
        field(tr("server-info-file", "file (server):"), escape_inline(p));
    }
    field(
        tr("server-info-quantization", "quantization:"),
        r.quantization
            .as_deref()
            .map_or_else(unknown, escape_inline),
    );
    field(
        tr("server-info-parameters", "parameters:"),
        r.parameters
            .map_or_else(unknown, crate::catalog::params_human),
    );
    field(
        tr("server-info-context", "context:"),
        r.n_ctx.map_or_else(unknown, |n| {
            tr_args(
                "server-info-context-value",
                "{ $n } tokens (per request)",
                &[("n", &n)],
            )
        }),
    );
    field(
        tr("server-info-trained-context", "trained context:"),
        tokens(r.n_ctx_train),
    );
    field(
        tr("server-info-vocabulary", "vocabulary:"),
        tokens(r.n_vocab),
    );
    if let Some(n) = r.slots {
        field(
            tr("server-info-slots", "slots:"),
            tr_args(
                "server-info-slots-value",
                "{ $n } (requests served at once)",
                &[("n", &n)],
            ),
        );
    }
    field(
        tr("server-info-logprobs", "log-probabilities:"),
        match (r.logprobs, r.candidates) {
            (true, Some(n)) if n < MAX_REMOTE_CANDIDATES => tr_args(
                "server-info-logprobs-capped",
                "yes, top { $n } per token (asked for { $asked }: the server's cap)",
                &[("n", &n), ("asked", &MAX_REMOTE_CANDIDATES)],
            ),
            (true, Some(n)) => tr_args(
                "server-info-logprobs-yes",
                "yes, top { $n } per token (the most tokenscope asks for)",
                &[("n", &n)],
            ),
            _ => tr_args(
                "server-info-logprobs-no",
                "no: { $why }",
                &[(
                    "why",
                    &r.logprobs_note_text
                        .clone()
                        .unwrap_or_else(|| tr("server-info-none-sent", "none were sent")),
                )],
            ),
        },
    );
    field(
        tr("server-info-entropy", "entropy:"),
        tr(
            "server-info-entropy-value",
            "not reported (needs the whole distribution; servers give the top few)",
        ),
    );
    field(
        tr("server-info-sampler-column", "sampler column:"),
        if r.server == "llama-server" {
            tr(
                "server-info-sampler-llama",
                "none (its post_sampling_probs sends the sampler's probabilities instead of the model's, not beside them: tokenscope shows the model's)",
            )
        } else {
            tr(
                "server-info-sampler-openai",
                "none (the OpenAI API reports the model's log-probabilities only)",
            )
        },
    );
    if r.models.len() > 1 {
        field(
            tr("server-info-also-served", "also served:"),
            r.models
                .iter()
                .filter(|m| **m != r.model)
                .map(|m| escape_inline(m))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    match &r.chat_template {
        None => field(tr("server-info-chat-template", "chat template:"), unknown()),
        Some(t) => {
            field(
                tr("server-info-chat-template", "chat template:"),
                crate::catalog::template_summary(t),
            );
            out.push_str(&crate::catalog::template_preview(t));
        }
    }
    if let Some(w) = &r.warning_text {
        let _ = writeln!(
            out,
            "{}",
            tr_args("server-info-warning", "warning: { $w }", &[("w", w)])
        );
    }
    out
}
