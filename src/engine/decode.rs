//! Helpers of every request that evaluates tokens on a slot (a generation, a
//! scoring, a comparison): how it ends ([`Outcome`]), the KV cache kept,
//! the batch size, decode errors, a forced token's step, a token's bytes.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::api::{EngineError, Event, RequestId, Stats, TokenId, TokenStep};
use super::probs::TopK;
use super::session::KvMirror;

/// How a generation ended: the request's final event.
pub(super) enum Outcome {
    Done(Stats),
    Cancelled(Stats),
    Failed(EngineError),
}

impl Outcome {
    pub fn into_event(self, request: RequestId) -> Event {
        match self {
            Outcome::Done(stats) => Event::Done { request, stats },
            Outcome::Cancelled(stats) => Event::Cancelled {
                request,
                stats: Some(stats),
            },
            Outcome::Failed(error) => Event::Failed { request, error },
        }
    }
}

/// The step of a token forced at `index`, scored from `logits` (the
/// vocabulary's logits at the position before): its logit, and the model's
/// distribution there with the `k` best candidates.
pub(super) fn scored_step(
    topk: &mut TopK,
    logits: &[f32],
    k: usize,
    index: usize,
    id: TokenId,
    text: String,
) -> TokenStep {
    let summary = topk.summarize(logits, k);
    TokenStep {
        index,
        id,
        forced: true,
        text,
        logit: logits.get(id as usize).copied(),
        p_sampled: None,
        dist: Some(summary.distribution(|_, _| None)),
    }
}

/// The bytes a token writes into the text: its piece, control tokens as their text.
pub(super) fn piece(model: &LlamaModel, id: TokenId) -> Vec<u8> {
    model.vocab().token_to_piece(LlamaToken(id), true, None)
}

/// Drops the KV cache after its first `keep` tokens; returns how many are
/// kept (0 for a recurrent model, which cannot drop a tail: its cache is emptied).
pub(super) fn keep_cache(
    ctx: &mut LlamaContext,
    mirror: &mut KvMirror,
    mut keep: usize,
) -> Result<usize, EngineError> {
    if keep < mirror.tokens.len() {
        let removed = ctx
            .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
            .map_err(|e| EngineError::Decode {
                stage: "clearing the KV cache".into(),
                reason: e.to_string(),
            })?;
        if removed {
            mirror.truncate(keep);
        } else {
            // Recurrent models cannot drop a tail: start from an empty cache.
            ctx.clear_kv_cache();
            mirror.clear();
            keep = 0;
        }
    }
    Ok(keep)
}

/// Tokens per prefill batch: the context's n_batch (a larger batch aborts llama.cpp).
pub(super) fn batch_capacity(ctx: &LlamaContext) -> usize {
    (ctx.n_batch() as usize).max(1)
}

pub(super) fn decode_error(stage: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Decode {
        stage: stage.into(),
        reason: e.to_string(),
    }
}
