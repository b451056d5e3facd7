//! The model a server serves: listing them (`GET /v1/models`), choosing the
//! one asked for, loading it (`GET /props` on llama-server: its build, the
//! context) into what the remote engine holds ([`Loaded`]) and what it can
//! report ([`capabilities`]).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::client::Client;
use super::target::RemoteTarget;
use crate::engine::api::{
    Capabilities, ChatMode, Event, ModelInfo, ModelRef, RemoteError, RequestId, SlotId, TokenId,
    Vocab, Words,
};

/// Most candidates per token a remote engine asks for (OpenAI's `top_logprobs` cap).
pub const MAX_REMOTE_CANDIDATES: usize = 20;

/// Ids made up for a server that gives text only (room for this many texts).
pub(super) const MADE_UP_IDS: usize = 1 << 18;

/// What kind of server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    /// llama.cpp's llama-server (answers `/props`).
    LlamaServer,
    /// Any other OpenAI-compatible server (vLLM, …).
    OpenAi,
}

/// The model loaded: what the server said about it.
pub(super) struct Loaded {
    pub(super) model: String,
    pub(super) flavor: Flavor,
    pub(super) n_ctx: usize,
    pub(super) vocab: Arc<Vocab>,
    /// Ids made up for texts, when the server gives no ids.
    pub(super) made_up: HashMap<Vec<u8>, TokenId>,
}

/// What a remote engine reports it can do.
pub(super) fn capabilities(target: &RemoteTarget, flavor: Flavor) -> Capabilities {
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
        score_after: false,
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

/// The ids of `GET /v1/models` and each entry's JSON.
pub(super) fn list(client: &Client) -> Result<(Vec<String>, Vec<Value>), RemoteError> {
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

/// Loads `asked` (a model id of the server, or a unique part of one; empty:
/// its only model).
pub(super) fn load(client: &Client, asked: &str) -> Result<(Loaded, LoadedEvent), RemoteError> {
    let (ids, entries) = list(client)?;
    let model = choose_model(&client.target.url, asked, &ids)?;
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
        model: ModelRef::Remote {
            url: client.target.url.clone(),
            model: model.clone(),
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
        cpu_kernels: String::new(),
        gpu_layers: 0,
        threads: 0,
        former_name: None,
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

/// What the server option is that turns on log-probabilities.
pub(super) fn logprobs_hint(flavor: Flavor) -> Words {
    match flavor {
        Flavor::LlamaServer => Words::tr(
            "remote-hint-llama-server",
            "this llama-server ignores `logprobs`; use a recent build (it reports them since 2024)",
        ),
        Flavor::OpenAi => Words::tr(
            "remote-hint-openai",
            "start the server with log-probabilities allowed (vLLM: `--max-logprobs 20`; other servers: see their docs for `logprobs` / `top_logprobs`)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
