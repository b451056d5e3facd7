//! The request bodies of a reply: the first request (chat, OpenAI
//! completion or llama-server's native `/completion`, by flavour and
//! `--raw`) and the one that goes on after rebuilt tokens.

use serde_json::{Value, json};

use super::models::{Flavor, Loaded};
use super::wire::Dialect;
use crate::engine::api::{GenerateRequest, ReplyPrefix, TokenId};

/// The request body and its endpoint.
pub(super) fn request_body(
    l: &Loaded,
    req: &GenerateRequest,
    k: usize,
) -> (&'static str, Dialect, Value) {
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

/// llama-server's prompt of text then token ids.
pub(super) fn prompt_with_ids(prompt: &str, ids: &[TokenId]) -> Value {
    let mut parts = vec![json!(prompt)];
    parts.extend(ids.iter().map(|id| json!(id)));
    Value::Array(parts)
}

/// The sampling settings of `req` as llama-server's fields.
pub(super) fn sampling_fields(body: &mut Value, req: &GenerateRequest) {
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
pub(super) fn resume_body(
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
