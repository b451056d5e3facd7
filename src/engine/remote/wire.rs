//! The JSON of the servers' streaming APIs, read into one shape: the tokens
//! a chunk carries, each with its log-probability and its top candidates.
//! Three dialects: llama-server's native `/completion` (`n_probs`), OpenAI's
//! chat (`logprobs.content[]`, also llama-server's and vLLM's) and OpenAI's
//! legacy completions (`tokens` / `token_logprobs` / `top_logprobs` maps, vLLM).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::engine::api::{StopReason, TokenId};

/// A candidate as a server reports it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Prob {
    /// The token id (llama-server gives it; OpenAI and vLLM do not).
    #[serde(default)]
    pub id: Option<TokenId>,
    #[serde(default)]
    pub token: Option<String>,
    /// The token's exact bytes (may be part of a UTF-8 character).
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    /// Natural log of the model's probability.
    #[serde(default)]
    pub logprob: Option<f32>,
    /// A probability (llama-server's native endpoint with `post_sampling_probs`).
    #[serde(default)]
    pub prob: Option<f32>,
}

impl Prob {
    /// The token's bytes: `bytes` when given, else the text's.
    pub fn token_bytes(&self) -> Vec<u8> {
        match (&self.bytes, &self.token) {
            (Some(b), _) => b.clone(),
            (None, Some(t)) => t.as_bytes().to_vec(),
            (None, None) => Vec::new(),
        }
    }

    /// The log-probability: `logprob`, else ln `prob`.
    pub fn ln_p(&self) -> Option<f32> {
        self.logprob.or_else(|| self.prob.map(f32::ln))
    }
}

/// One generated token with the candidates reported at its position.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TokenProbs {
    #[serde(flatten)]
    pub token: Prob,
    #[serde(default)]
    pub top_logprobs: Vec<Prob>,
    #[serde(default)]
    pub top_probs: Vec<Prob>,
}

impl TokenProbs {
    pub fn top(&self) -> &[Prob] {
        if self.top_logprobs.is_empty() {
            &self.top_probs
        } else {
            &self.top_logprobs
        }
    }
}

/// The server's timings (llama-server), in milliseconds and tokens per second.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Timings {
    #[serde(default)]
    pub cache_n: usize,
    #[serde(default)]
    pub prompt_n: usize,
    #[serde(default)]
    pub prompt_per_second: f64,
    #[serde(default)]
    pub predicted_n: usize,
    #[serde(default)]
    pub predicted_per_second: f64,
}

/// llama-server's progress through the prompt (`return_progress`), in tokens:
/// `total` in the prompt, `cache` of them reused, `processed` so far
/// (reused ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub total: usize,
    #[serde(default)]
    pub cache: usize,
    #[serde(default)]
    pub processed: usize,
}

/// OpenAI's `usage` (sent at the end with `stream_options.include_usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: usize,
    #[serde(default)]
    pub prompt_tokens_details: Option<UsageDetails>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct UsageDetails {
    #[serde(default)]
    pub cached_tokens: usize,
}

/// An error object in a stream or a response body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
struct Native {
    #[serde(default)]
    content: String,
    #[serde(default)]
    stop: bool,
    #[serde(default)]
    stop_type: Option<String>,
    #[serde(default)]
    completion_probabilities: Option<Vec<TokenProbs>>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    prompt_progress: Option<Progress>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
struct Oa {
    #[serde(default)]
    choices: Vec<OaChoice>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    prompt_progress: Option<Progress>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
struct OaChoice {
    #[serde(default)]
    delta: Option<OaDelta>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    logprobs: Option<OaLogprobs>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OaDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OaLogprobs {
    #[serde(default)]
    content: Option<Vec<TokenProbs>>,
    #[serde(default)]
    tokens: Option<Vec<String>>,
    #[serde(default)]
    token_logprobs: Option<Vec<Option<f32>>>,
    #[serde(default)]
    top_logprobs: Option<Vec<Option<BTreeMap<String, f32>>>>,
}

/// Which API a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// llama-server's `/completion`.
    Native,
    /// `/v1/chat/completions` or `/v1/completions`.
    OpenAi,
}

/// What one event of a stream carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// The tokens with their probabilities, in order.
    pub tokens: Vec<TokenProbs>,
    /// Text of the chunk (the tokens' text; text without tokens means the
    /// server sent no log-probabilities).
    pub text: String,
    /// The reply ended, and why.
    pub finish: Option<StopReason>,
    pub timings: Option<Timings>,
    /// How far the server is through the prompt (llama-server).
    pub progress: Option<Progress>,
    /// The request's token counts (OpenAI's last chunk).
    pub usage: Option<Usage>,
    /// The server reported an error inside the stream.
    pub error: Option<String>,
    /// `[DONE]`: the stream's end marker (OpenAI).
    pub done: bool,
}

/// The stop reason of llama-server's `stop_type` or OpenAI's `finish_reason`.
fn stop_reason(s: &str) -> StopReason {
    match s {
        "limit" | "length" => StopReason::MaxTokens,
        _ => StopReason::Eog,
    }
}

/// Parses one event's data.
///
/// # Errors
/// Data that is not JSON of the dialect: the parser's message.
pub fn parse_chunk(dialect: Dialect, data: &[u8]) -> Result<Chunk, String> {
    if data.trim_ascii() == b"[DONE]" {
        return Ok(Chunk {
            done: true,
            ..Chunk::default()
        });
    }
    match dialect {
        Dialect::Native => {
            let n: Native = serde_json::from_slice(data).map_err(|e| e.to_string())?;
            Ok(Chunk {
                tokens: n.completion_probabilities.unwrap_or_default(),
                text: n.content,
                finish: n
                    .stop
                    .then(|| stop_reason(n.stop_type.as_deref().unwrap_or(""))),
                timings: n.timings,
                progress: n.prompt_progress,
                usage: None,
                error: n.error.map(|e| e.message),
                done: false,
            })
        }
        Dialect::OpenAi => {
            let o: Oa = serde_json::from_slice(data).map_err(|e| e.to_string())?;
            let mut chunk = Chunk {
                timings: o.timings,
                progress: o.prompt_progress,
                usage: o.usage,
                error: o.error.map(|e| e.message),
                ..Chunk::default()
            };
            // One choice is asked for (n = 1).
            if let Some(c) = o.choices.into_iter().next() {
                chunk.text = c
                    .delta
                    .and_then(|d| d.content)
                    .or(c.text)
                    .unwrap_or_default();
                chunk.finish = c.finish_reason.as_deref().map(stop_reason);
                if let Some(lp) = c.logprobs {
                    chunk.tokens = match lp.content {
                        Some(content) => content,
                        None => legacy_tokens(lp),
                    };
                }
            }
            Ok(chunk)
        }
    }
}

/// The legacy completions shape: parallel arrays, candidates as a map.
fn legacy_tokens(lp: OaLogprobs) -> Vec<TokenProbs> {
    let tokens = lp.tokens.unwrap_or_default();
    let lps = lp.token_logprobs.unwrap_or_default();
    let tops = lp.top_logprobs.unwrap_or_default();
    tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| TokenProbs {
            token: Prob {
                token: Some(token),
                logprob: lps.get(i).copied().flatten(),
                ..Prob::default()
            },
            top_logprobs: tops
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_default()
                .into_iter()
                .map(|(token, logprob)| Prob {
                    token: Some(token),
                    logprob: Some(logprob),
                    ..Prob::default()
                })
                .collect(),
            top_probs: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_chunks_carry_ids_bytes_and_log_probabilities() {
        let data = br#"{"index":0,"content":" Paris","tokens":[7042],"stop":false,"completion_probabilities":[{"id":7042,"token":" Paris","bytes":[32,80,97,114,105,115],"logprob":-0.24,"top_logprobs":[{"id":7042,"token":" Paris","bytes":[32,80,97,114,105,115],"logprob":-0.24},{"id":260,"token":" the","bytes":[32,116,104,101],"logprob":-2.7}]}]}"#;
        let c = parse_chunk(Dialect::Native, data).unwrap();
        assert_eq!(c.text, " Paris");
        assert_eq!(c.tokens.len(), 1);
        let t = &c.tokens[0];
        assert_eq!(t.token.id, Some(7042));
        assert_eq!(t.token.token_bytes(), b" Paris");
        assert_eq!(t.top()[1].id, Some(260));
        assert_eq!(t.top()[1].ln_p(), Some(-2.7));
        assert_eq!(c.finish, None);
        let end = br#"{"content":"","stop":true,"stop_type":"limit","timings":{"cache_n":4,"prompt_n":1,"prompt_per_second":100.0,"predicted_n":2,"predicted_per_second":50.0}}"#;
        let c = parse_chunk(Dialect::Native, end).unwrap();
        assert_eq!(c.finish, Some(StopReason::MaxTokens));
        assert_eq!(c.timings.unwrap().cache_n, 4);
    }

    #[test]
    fn openai_chat_legacy_completions_and_done() {
        let chat = br#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hello"},"logprobs":{"content":[{"token":"Hello","bytes":[72,101,108,108,111],"logprob":-0.5,"top_logprobs":[{"token":"Hello","logprob":-0.5},{"token":"Hi","logprob":-2.5}]}]}}]}"#;
        let c = parse_chunk(Dialect::OpenAi, chat).unwrap();
        assert_eq!(c.text, "Hello");
        assert_eq!(c.tokens[0].token.id, None);
        assert_eq!(c.tokens[0].top()[1].token.as_deref(), Some("Hi"));
        let legacy = br#"{"choices":[{"text":" Paris","logprobs":{"tokens":[" Paris"],"token_logprobs":[-0.25],"top_logprobs":[{" Paris":-0.25," the":-2.75}]},"finish_reason":"length"}]}"#;
        let c = parse_chunk(Dialect::OpenAi, legacy).unwrap();
        assert_eq!(c.tokens[0].token.ln_p(), Some(-0.25));
        assert_eq!(c.tokens[0].top().len(), 2);
        assert_eq!(c.finish, Some(StopReason::MaxTokens));
        let none = br#"{"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        let c = parse_chunk(Dialect::OpenAi, none).unwrap();
        assert!(c.tokens.is_empty() && c.text == "Hi");
        assert!(parse_chunk(Dialect::OpenAi, b" [DONE]").unwrap().done);
        // llama-server's progress through the prompt, OpenAI's usage.
        let progress = br#"{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"prompt_progress":{"total":32,"cache":24,"processed":32,"time_ms":33}}"#;
        let c = parse_chunk(Dialect::OpenAi, progress).unwrap();
        assert_eq!(
            c.progress,
            Some(Progress {
                total: 32,
                cache: 24,
                processed: 32
            })
        );
        assert!(c.text.is_empty() && c.tokens.is_empty() && c.finish.is_none());
        let usage = br#"{"choices":[],"usage":{"completion_tokens":2,"prompt_tokens":32,"total_tokens":34,"prompt_tokens_details":{"cached_tokens":31}}}"#;
        let u = parse_chunk(Dialect::OpenAi, usage).unwrap().usage.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.prompt_tokens_details.unwrap().cached_tokens
            ),
            (32, 31)
        );
        assert!(parse_chunk(Dialect::OpenAi, b"{not json").is_err());
    }
}
