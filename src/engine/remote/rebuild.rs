//! Rebuilding the tokens llama-server merges into one stream entry.
//!
//! llama-server sends nothing for a generated token whose bytes end inside a
//! UTF-8 character (`validate_utf8` in its `process_token`): the token is
//! neither streamed nor kept with its probabilities. The token that completes
//! the character then comes as one entry carrying *its* id and distribution
//! with the *whole* character's bytes (`text_to_send`). A Chinese character
//! split over three byte tokens thus arrives as one entry: two tokens, their
//! ids and their distributions are gone from the stream (and from the
//! non-streamed `completion_probabilities` too).
//!
//! The server can still tell them: evaluated again from the same tokens (a
//! `/completion` whose prompt is the reply's prompt followed by the ids so
//! far, `cache_prompt` reusing its KV cache), it reports the model's
//! distribution at that position. To make it report it at all, the one token
//! it samples there is kept to ASCII by a grammar: grammars act on the
//! sampler, not on the model's probabilities it reports (`n_probs` without
//! `post_sampling_probs` reads the logits before sampling). The lost token is
//! then the candidate whose bytes begin the character's missing bytes: the
//! most probable such candidate (at temperature 0 it must be the top one,
//! which is what greedy decoding chose).

use serde_json::{Value, json};

use super::body::{prompt_with_ids, sampling_fields};
use super::client::Client;
use super::wire::Prob;
use super::wire::{self, TokenProbs};
use crate::engine::api::{GenerateRequest, RemoteError, ReplyPrefix, TokenId};

/// A grammar that lets the sampler pick any ASCII text, or end: the one token
/// sampled in a rebuilding request is then a whole character, which
/// llama-server reports with the distribution it was drawn from.
pub(crate) const ANY_ASCII: &str = "root ::= [ -~]*";

/// The bytes of `t`'s own token, as its own candidate list gives them
/// (llama-server's candidates carry each token's exact bytes); `None` when the
/// token is not among its candidates.
pub(crate) fn own_piece(t: &TokenProbs) -> Option<Vec<u8>> {
    let id = t.token.id?;
    t.top()
        .iter()
        .find(|c| c.id == Some(id))
        .map(Prob::token_bytes)
}

/// The bytes an entry carries before its own token's piece `own`: the
/// tokens the server did not stream. Empty when the entry is its token alone;
/// `None` when the entry's bytes do not end with `own` (then they are not a
/// merged character, e.g. text held back for a stop string and sent later).
pub(crate) fn missing_prefix<'a>(entry: &'a [u8], own: &[u8]) -> Option<&'a [u8]> {
    entry.strip_suffix(own)
}

/// The candidate that stands for the next unstreamed token: among those
/// whose bytes are a non-empty prefix of `remaining`, the most probable (ties:
/// the lower id, as llama.cpp's greedy sampler breaks them). At temperature 0
/// this is the top candidate itself; a sampled token is the likeliest that
/// fits (two candidates can fit, e.g. a one-byte and a two-byte token, and
/// the server does not say which one was drawn).
pub(crate) fn choose_lost<'a>(candidates: &'a [Prob], remaining: &[u8]) -> Option<&'a Prob> {
    candidates
        .iter()
        .filter(|c| {
            let b = c.token_bytes();
            c.id.is_some() && !b.is_empty() && remaining.starts_with(&b)
        })
        .max_by(|a, b| {
            let key = |c: &Prob| {
                c.ln_p()
                    .filter(|x| !x.is_nan())
                    .unwrap_or(f32::NEG_INFINITY)
            };
            key(a).total_cmp(&key(b)).then(b.id.cmp(&a.id))
        })
}

/// The bytes of the tokens llama-server merged into entry `t` without
/// streaming them (see the module's docs); `None` when `t` is one token (or its
/// own piece is unknown: not among its candidates).
pub(super) fn merged_missing(t: &TokenProbs) -> Option<Vec<u8>> {
    let own = own_piece(t)?;
    let entry = t.token.token_bytes();
    let missing = missing_prefix(&entry, &own)?;
    (!missing.is_empty()).then(|| missing.to_vec())
}

/// The reply's prompt as text for llama-server's `/completion` (which takes
/// it followed by token ids): the raw prompt as sent, or the chat rendered
/// by the server's own template (`POST /apply-template`, exactly what its
/// chat endpoint evaluates).
pub(super) fn completion_prompt(
    client: &Client,
    req: &GenerateRequest,
) -> Result<String, RemoteError> {
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

/// The model's distribution at the position after `ids` (the prompt's text
/// `prompt`, then the reply's ids), as llama-server reports it with one
/// ASCII token sampled (see the module's docs): its top `k` candidates.
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
        "grammar": ANY_ASCII,
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
pub(super) fn rebuild_tail(
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
/// time from the prompt and the reply's ids (`ids`) so far (see the module's docs).
///
/// # Errors
/// The server failing, or no candidate that fits the missing bytes (the
/// token drawn was not among the `k` reported).
pub(super) fn rebuild_missing(
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
        let lost = choose_lost(cands, rest).ok_or_else(|| RemoteError::Protocol {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn prob(id: i32, bytes: &[u8], logprob: f32) -> Prob {
        Prob {
            id: Some(id),
            token: None,
            bytes: Some(bytes.to_vec()),
            logprob: Some(logprob),
            prob: None,
        }
    }

    #[test]
    fn a_merged_entry_is_its_own_piece_after_the_missing_bytes() {
        // "你" = E4 BD A0 sent as one entry of the token A0 (id 3).
        let t = TokenProbs {
            token: prob(3, "你".as_bytes(), -0.1),
            top_logprobs: vec![prob(3, &[0xA0], -0.1), prob(9, &[0xA1], -2.0)],
            top_probs: Vec::new(),
        };
        let own = own_piece(&t).unwrap();
        assert_eq!(own, [0xA0]);
        assert_eq!(
            missing_prefix("你".as_bytes(), &own),
            Some(&[0xE4, 0xBD][..])
        );
        assert_eq!(missing_prefix(b" Paris", b" Paris"), Some(&[][..]));
        assert_eq!(missing_prefix(b"", b" Paris"), None);
    }

    #[test]
    fn the_lost_token_is_the_top_candidate_that_begins_the_missing_bytes() {
        let missing = [0xE4, 0xBD];
        let cands = [
            prob(1, b"Hello", -3.0),
            prob(2, &[0xE4], -0.5),
            prob(4, &[0xE4, 0xBD], -0.9),
        ];
        assert_eq!(choose_lost(&cands, &missing).unwrap().id, Some(2));
        let top_misfits = [prob(1, b"Hello", -0.1), prob(2, &[0xE4], -0.5)];
        assert_eq!(choose_lost(&top_misfits, &missing).unwrap().id, Some(2));
        assert!(choose_lost(&[prob(1, b"x", -0.1)], &missing).is_none());
        // A tie goes to the lower id.
        let tie = [prob(7, &[0xE4], -0.5), prob(5, &[0xE4], -0.5)];
        assert_eq!(choose_lost(&tie, &missing).unwrap().id, Some(5));
    }
}
