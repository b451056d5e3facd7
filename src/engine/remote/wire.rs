//! The JSON of the servers' streaming APIs, read into one shape: the tokens
//! a chunk carries, each with its log-probability and its top candidates.
//! Three dialects: llama-server's native `/completion` (`n_probs`), OpenAI's
//! chat (`logprobs.content[]`, also llama-server's and vLLM's) and OpenAI's
//! legacy completions (`tokens` / `token_logprobs` / `top_logprobs` maps, vLLM).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::engine::api::{StopReason, TokenId};

/// A candidate as a server reports it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct Prob {
    /// The token id (llama-server gives it; OpenAI and vLLM do not).
    #[serde(default)]
    pub id: Option<TokenId>,
    #[serde(default)]
    pub token: Option<String>,
    /// The token's exact bytes (may be part of a UTF-8 character).
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    /// Natural log of the model's probability; `None` when not given or not
    /// a finite number (`-Infinity`, `NaN`, `null`): unknown.
    #[serde(default, deserialize_with = "finite")]
    pub logprob: Option<f32>,
    /// A probability (llama-server's native endpoint with `post_sampling_probs`).
    #[serde(default, deserialize_with = "finite")]
    pub prob: Option<f32>,
}

impl Prob {
    /// The token's bytes: `bytes` when given, else the text's.
    pub(crate) fn token_bytes(&self) -> Vec<u8> {
        match (&self.bytes, &self.token) {
            (Some(b), _) => b.clone(),
            (None, Some(t)) => t.as_bytes().to_vec(),
            (None, None) => Vec::new(),
        }
    }

    /// The log-probability: `logprob`, else ln `prob`; `None` when unknown
    /// (neither given, or a probability of 0, whose log is not finite).
    pub fn ln_p(&self) -> Option<f32> {
        self.logprob
            .or_else(|| self.prob.map(f32::ln))
            .filter(|x| x.is_finite())
    }
}

/// One generated token with the candidates reported at its position.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct TokenProbs {
    #[serde(flatten)]
    pub token: Prob,
    /// The candidates (a `null` list or entry counts as none).
    #[serde(default, deserialize_with = "lenient_list")]
    pub top_logprobs: Vec<Prob>,
    /// The candidates as probabilities (llama-server's `post_sampling_probs`).
    #[serde(default, deserialize_with = "lenient_list")]
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

/// The server's timings (llama-server), in milliseconds and tokens per second
/// (`null`, which llama-server writes for a rate that is not finite: 0).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct Timings {
    #[serde(default, deserialize_with = "nullable")]
    pub cache_n: usize,
    #[serde(default, deserialize_with = "nullable")]
    pub prompt_n: usize,
    #[serde(default, deserialize_with = "nullable")]
    pub prompt_per_second: f64,
    #[serde(default, deserialize_with = "nullable")]
    pub predicted_n: usize,
    #[serde(default, deserialize_with = "nullable")]
    pub predicted_per_second: f64,
}

/// llama-server's progress through the prompt (`return_progress`), in tokens:
/// `total` in the prompt, `cache` of them reused, `processed` so far
/// (reused ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub(crate) struct Progress {
    #[serde(default, deserialize_with = "nullable")]
    pub total: usize,
    #[serde(default, deserialize_with = "nullable")]
    pub cache: usize,
    #[serde(default, deserialize_with = "nullable")]
    pub processed: usize,
}

/// OpenAI's `usage` (sent at the end with `stream_options.include_usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub(crate) struct Usage {
    #[serde(default, deserialize_with = "nullable")]
    pub prompt_tokens: usize,
    #[serde(default)]
    pub prompt_tokens_details: Option<UsageDetails>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub(crate) struct UsageDetails {
    #[serde(default, deserialize_with = "nullable")]
    pub cached_tokens: usize,
}

/// An error a server reports in a stream or a response body: an object
/// with a `message` (OpenAI, llama-server) or a plain string (some servers
/// and proxies); any other value is kept as its JSON text. `false` and `""`
/// read as an empty message: no error.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ApiError {
    pub message: String,
}

impl<'de> Deserialize<'de> for ApiError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        let v = Value::deserialize(d)?;
        let message = match &v {
            Value::String(s) => s.clone(),
            Value::Bool(false) | Value::Null => String::new(),
            Value::Object(o) => match o.get("message") {
                Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
                _ => v.to_string(),
            },
            other => other.to_string(),
        };
        Ok(Self { message })
    }
}

/// `null` read as the type's default: servers write `null` for absent
/// values, and llama-server for numbers that are not finite.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A list where `null` stands for an empty one and `null` entries are skipped.
fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let list: Option<Vec<Option<T>>> = Option::deserialize(d)?;
    Ok(list.unwrap_or_default().into_iter().flatten().collect())
}

/// A number, `None` when it is absent, `null` or not finite (a value too
/// large for an `f32`, or a non-finite one replaced by [`non_finite_as_null`]).
fn finite<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
    // Read as f64: serde_json refuses an f32 out of range instead.
    Ok(finite_f32(Option::<f64>::deserialize(d)?))
}

/// `x` as an `f32` if it is one that is finite.
fn finite_f32(x: Option<f64>) -> Option<f32> {
    x.map(|x| x as f32).filter(|x| x.is_finite())
}

#[derive(Debug, Deserialize)]
struct Native {
    #[serde(default, deserialize_with = "nullable")]
    content: String,
    #[serde(default, deserialize_with = "nullable")]
    stop: bool,
    #[serde(default)]
    stop_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    completion_probabilities: Vec<TokenProbs>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    prompt_progress: Option<Progress>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
struct Oa {
    #[serde(default, deserialize_with = "lenient_list")]
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
    /// The whole reply's message (a body that is not streamed).
    #[serde(default)]
    message: Option<OaDelta>,
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
    /// Chat's tokens (empty: the legacy arrays below, if any).
    #[serde(default, deserialize_with = "lenient_list")]
    content: Vec<TokenProbs>,
    #[serde(default, deserialize_with = "nullable")]
    tokens: Vec<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    token_logprobs: Vec<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    top_logprobs: Vec<Option<BTreeMap<String, Option<f64>>>>,
}

/// Which API a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// llama-server's `/completion`.
    Native,
    /// `/v1/chat/completions` or `/v1/completions`.
    OpenAi,
}

/// What one event of a stream carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Chunk {
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
    /// The server reported an error inside the stream (its message, not empty).
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

/// Parses one event's data. An event without a value (`data:` alone,
/// `data: null`) is an empty chunk, skipped as other clients skip it; the
/// non-JSON words `NaN`, `Infinity` and `-Infinity` that some servers write
/// for log-probabilities read as unknown ones.
///
/// # Errors
/// Data that is not JSON of the dialect: the parser's message.
pub(crate) fn parse_chunk(dialect: Dialect, data: &[u8]) -> Result<Chunk, String> {
    let data = data.trim_ascii();
    if data == b"[DONE]" {
        return Ok(Chunk {
            done: true,
            ..Chunk::default()
        });
    }
    if data.is_empty() || data == b"null" {
        return Ok(Chunk::default());
    }
    // Valid JSON first (the usual case, no copy); the words only on failure.
    parse_json(dialect, data).or_else(|e| match non_finite_as_null(data) {
        Some(fixed) => parse_json(dialect, &fixed),
        None => Err(e),
    })
}

/// Parses a whole reply sent as one JSON body (a server that answered a
/// streamed request without streaming): its tokens, text and end. A whole
/// reply has ended even when the body names no finish reason.
///
/// # Errors
/// A body that is not JSON of the dialect, or that holds neither a reply nor
/// an error: what is wrong, with the start of the body.
pub(crate) fn parse_whole(dialect: Dialect, body: &[u8]) -> Result<Chunk, String> {
    let mut c = parse_chunk(dialect, body)?;
    if c.error.is_none() && c.finish.is_none() && c.text.is_empty() && c.tokens.is_empty() {
        return Err(format!(
            "a JSON body that holds no reply: {}",
            crate::text::truncate(String::from_utf8_lossy(body).trim(), 200)
        ));
    }
    if c.error.is_none() {
        c.finish.get_or_insert(StopReason::Eog);
    }
    Ok(c)
}

fn parse_json(dialect: Dialect, data: &[u8]) -> Result<Chunk, String> {
    let error = |e: Option<ApiError>| e.map(|e| e.message).filter(|m| !m.is_empty());
    match dialect {
        Dialect::Native => {
            let n: Native = serde_json::from_slice(data).map_err(|e| e.to_string())?;
            Ok(Chunk {
                tokens: n.completion_probabilities,
                text: n.content,
                finish: n
                    .stop
                    .then(|| stop_reason(n.stop_type.as_deref().unwrap_or(""))),
                timings: n.timings,
                progress: n.prompt_progress,
                usage: None,
                error: error(n.error),
                done: false,
            })
        }
        Dialect::OpenAi => {
            let o: Oa = serde_json::from_slice(data).map_err(|e| e.to_string())?;
            let mut chunk = Chunk {
                timings: o.timings,
                progress: o.prompt_progress,
                usage: o.usage,
                error: error(o.error),
                ..Chunk::default()
            };
            // One choice is asked for (n = 1).
            if let Some(c) = o.choices.into_iter().next() {
                chunk.text = c
                    .delta
                    .and_then(|d| d.content)
                    .or_else(|| c.message.and_then(|m| m.content))
                    .or(c.text)
                    .unwrap_or_default();
                chunk.finish = c.finish_reason.as_deref().map(stop_reason);
                if let Some(lp) = c.logprobs {
                    chunk.tokens = if lp.content.is_empty() {
                        legacy_tokens(lp)
                    } else {
                        lp.content
                    };
                }
            }
            Ok(chunk)
        }
    }
}

/// `data` with the bare words `NaN`, `Infinity` and `-Infinity` outside
/// strings (JavaScript's and Python's spellings of numbers JSON lacks)
/// replaced by `null`; `None` when it has none. Outside strings, valid JSON
/// has no capital letters, so any such word is one of these.
fn non_finite_as_null(data: &[u8]) -> Option<Vec<u8>> {
    const WORDS: [&[u8]; 5] = [b"-Infinity", b"+Infinity", b"Infinity", b"-NaN", b"NaN"];
    let mut out = Vec::with_capacity(data.len());
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if let Some(w) = WORDS.iter().find(|w| data[i..].starts_with(w)) {
            out.extend_from_slice(b"null");
            i += w.len();
            changed = true;
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// The legacy completions shape: parallel arrays, candidates as a map.
fn legacy_tokens(lp: OaLogprobs) -> Vec<TokenProbs> {
    let lps = lp.token_logprobs;
    let tops = lp.top_logprobs;
    lp.tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| TokenProbs {
            token: Prob {
                token: Some(token.unwrap_or_default()),
                logprob: finite_f32(lps.get(i).copied().flatten()),
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
                    logprob: finite_f32(logprob),
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

    /// Issue 19: each oddity some servers send reads as what it means, never
    /// as a parser's "invalid type: null".
    #[test]
    fn nulls_are_skipped_and_non_finite_log_probabilities_are_unknown() {
        for empty in [&b"null"[..], b" null ", b"", b"  "] {
            for dialect in [Dialect::OpenAi, Dialect::Native] {
                assert_eq!(parse_chunk(dialect, empty), Ok(Chunk::default()));
            }
        }
        let c = parse_chunk(Dialect::OpenAi, br#"{"choices":null,"usage":null}"#).unwrap();
        assert_eq!(c, Chunk::default());
        let c = parse_chunk(
            Dialect::OpenAi,
            br#"{"choices":[null,{"delta":{"content":"A"}}],"timings":{"prompt_n":3,"prompt_per_second":null,"predicted_n":null}}"#,
        )
        .unwrap();
        assert_eq!(c.text, "A");
        assert_eq!(c.timings.unwrap().prompt_n, 3);
        // A null candidate list, a null entry in one, a null chat list.
        let chat = br#"{"choices":[{"delta":{"content":"Hi"},"logprobs":{"content":[{"token":"Hi","logprob":-0.5,"top_logprobs":null},null,{"token":"!","logprob":-0.1,"top_logprobs":[null,{"token":"!","logprob":-0.1}]}]}}]}"#;
        let c = parse_chunk(Dialect::OpenAi, chat).unwrap();
        assert_eq!(c.tokens.len(), 2);
        assert!(c.tokens[0].top().is_empty());
        assert_eq!(c.tokens[1].top().len(), 1);
        let c = parse_chunk(
            Dialect::OpenAi,
            br#"{"choices":[{"delta":{"content":"Hi"},"logprobs":{"content":null}}]}"#,
        )
        .unwrap();
        assert!(c.tokens.is_empty() && c.text == "Hi");
        // Non-finite numbers, bare or null: the step keeps its token and the
        // other candidates; the texts that spell those words stay as they are.
        for lp in ["-Infinity", "NaN", "Infinity", "null", "-1e300"] {
            let data = format!(
                r#"{{"choices":[{{"delta":{{"content":"NaN -Infinity"}},"logprobs":{{"content":[{{"token":"NaN -Infinity","logprob":{lp},"top_logprobs":[{{"token":"Infinity\"NaN","logprob":{lp}}},{{"token":"x","logprob":-2.0}}]}}]}}}}]}}"#
            );
            let c = parse_chunk(Dialect::OpenAi, data.as_bytes())
                .unwrap_or_else(|e| panic!("{lp}: {e}"));
            let t = &c.tokens[0];
            assert_eq!(c.text, "NaN -Infinity", "{lp}");
            assert_eq!(t.token.token.as_deref(), Some("NaN -Infinity"));
            assert_eq!(t.token.ln_p(), None, "{lp}");
            assert_eq!(t.top()[0].token.as_deref(), Some("Infinity\"NaN"));
            assert_eq!(t.top()[0].ln_p(), None);
            assert_eq!(t.top()[1].ln_p(), Some(-2.0));
        }
        // The native dialect: nulls, a probability of 0, a non-finite one.
        let native = br#"{"content":null,"stop":null,"completion_probabilities":[{"id":5,"token":"a","prob":0.0,"top_probs":[{"id":5,"token":"a","prob":NaN},{"id":6,"token":"b","prob":0.5}]}],"timings":null}"#;
        let c = parse_chunk(Dialect::Native, native).unwrap();
        assert_eq!((c.text.as_str(), c.finish), ("", None));
        assert_eq!(c.tokens[0].token.ln_p(), None);
        assert_eq!(c.tokens[0].top()[1].ln_p(), Some(0.5f32.ln()));
        // The legacy arrays with nulls and non-finite numbers.
        let legacy = br#"{"choices":[{"text":"ab","logprobs":{"tokens":["a",null],"token_logprobs":[-Infinity,-0.5],"top_logprobs":[null,{"b":-0.5,"c":-Infinity}]}}]}"#;
        let c = parse_chunk(Dialect::OpenAi, legacy).unwrap();
        assert_eq!(c.tokens.len(), 2);
        assert_eq!(c.tokens[0].token.ln_p(), None);
        assert!(c.tokens[0].top().is_empty());
        assert_eq!(c.tokens[1].token.ln_p(), Some(-0.5));
        assert_eq!(c.tokens[1].top().len(), 2);
        assert!(parse_chunk(Dialect::OpenAi, b"{\"choices\":[NaNa]}").is_err());
    }

    #[test]
    fn an_error_as_a_string_or_an_object_is_the_servers_message() {
        for dialect in [Dialect::OpenAi, Dialect::Native] {
            for (data, message) in [
                (
                    &br#"{"error":"model overloaded"}"#[..],
                    Some("model overloaded"),
                ),
                (
                    br#"{"error":{"code":500,"message":"out of memory","type":"server_error"}}"#,
                    Some("out of memory"),
                ),
                (br#"{"error":{"code":500}}"#, Some(r#"{"code":500}"#)),
                (br#"{"error":null}"#, None),
                (br#"{"error":""}"#, None),
            ] {
                let c = parse_chunk(dialect, data).unwrap();
                assert_eq!(c.error.as_deref(), message, "{dialect:?}");
            }
        }
    }

    #[test]
    fn a_whole_body_is_a_finished_reply() {
        let chat = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"logprobs":{"content":[{"token":"Hi","logprob":-0.5,"top_logprobs":[]},{"token":"!","logprob":-0.1,"top_logprobs":[]}]},"finish_reason":"length"}],"usage":{"prompt_tokens":9}}"#;
        let c = parse_whole(Dialect::OpenAi, chat).unwrap();
        assert_eq!((c.text.as_str(), c.tokens.len()), ("Hi!", 2));
        assert_eq!(c.finish, Some(StopReason::MaxTokens));
        assert_eq!(c.usage.unwrap().prompt_tokens, 9);
        // No finish reason named: a whole reply ended all the same.
        let legacy = br#"{"choices":[{"text":" Paris","logprobs":{"tokens":[" Paris"],"token_logprobs":[-0.25],"top_logprobs":[{" Paris":-0.25}]}}]}"#;
        let c = parse_whole(Dialect::OpenAi, legacy).unwrap();
        assert_eq!((c.tokens.len(), c.finish), (1, Some(StopReason::Eog)));
        let native = br#"{"content":" Paris","stop":true,"stop_type":"limit","completion_probabilities":[{"id":7,"token":" Paris","logprob":-0.2,"top_logprobs":[]}]}"#;
        let c = parse_whole(Dialect::Native, native).unwrap();
        assert_eq!((c.tokens.len(), c.finish), (1, Some(StopReason::MaxTokens)));
        let c = parse_whole(Dialect::OpenAi, br#"{"error":"no such model"}"#).unwrap();
        assert_eq!(
            (c.error.as_deref(), c.finish),
            (Some("no such model"), None)
        );
        let e = parse_whole(Dialect::OpenAi, br#"{"object":"list"}"#).unwrap_err();
        assert!(e.contains("no reply") && e.contains("list"), "{e}");
    }
}
