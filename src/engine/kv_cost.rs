//! What the KV cache saves ([`Command::KvCost`]): the same greedy reply
//! generated twice, timed token by token.
//!
//! - **With the KV cache** (how every reply is generated): the prompt is
//!   prefilled once, then each new token is one decode of one position that
//!   attends to the keys and values cached for all the positions before it.
//! - **Without it** (the textbook's naive loop): before every new token the
//!   cache is cleared and the whole sequence, prompt and the reply so far, is
//!   evaluated again from scratch (in batches of n_batch, the logits of the
//!   last position only), so the work per token grows with its position.
//!
//! Both runs pick the most likely token (argmax of the logits, ties to the
//! lower id), so they write the same reply as long as the numbers agree: a
//! batch of many positions and a decode of one may round differently in the
//! last digits, which can flip a near tie; each run then goes on with its own
//! tokens and the client reports the first position where they differ. The
//! no-cache run generates as many tokens as the cached one did. An untimed
//! prefill of the prompt comes first (a warm-up). After both runs the cache
//! keeps the prompt (the no-cache run's last evaluation began with it) and
//! the logits its prefill gave at the last prompt position, as after an
//! ordinary reply: the next reply to the same prompt, or one that goes on
//! from it, reuses it instead of prefilling again. A cancelled or failed
//! run leaves the cache empty.
//!
//! [`Command::KvCost`]: super::api::Command::KvCost

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::api::{
    EngineError, Event, KV_COST_MAX_TOKENS, KvCostRequest, KvRun, RequestId, Stats, StopReason,
    TokenId, Words,
};
use super::decode::{Outcome, batch_capacity, decode_error};
use super::inbox::{Emit, Inbox};
use super::prompt;
use super::session::PositionLogits;
use super::slot::Slot;

/// Serves a [`KvCostRequest`] on `slot`: the cached run, then the one
/// without the cache, each sending a [`Event::KvStep`] per token; cancelled
/// between tokens.
pub(super) fn serve(
    slot: &mut Slot,
    request: RequestId,
    req: &KvCostRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Outcome {
    let t_start = Instant::now();
    if req.max_tokens == 0 || req.max_tokens > KV_COST_MAX_TOKENS {
        return Outcome::Failed(EngineError::Refused(Words::tr_args(
            "engine-kv-tokens",
            "{ $n } tokens asked for: the comparison without the KV cache evaluates the whole \
             sequence again for every token, so it takes 1 to { $max } tokens",
            &[("n", &req.max_tokens), ("max", &KV_COST_MAX_TOKENS)],
        )));
    }
    let n_ctx = slot.info.n_ctx as usize;
    let fitted = match prompt::fit(slot, &req.messages, req.raw, n_ctx, req.max_tokens as usize) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(e),
    };
    let prompt: Vec<TokenId> = fitted.tokens.iter().map(|t| t.id).collect();
    if prompt.is_empty() {
        return Outcome::Failed(EngineError::EmptyPrompt);
    }
    let ctx_requested = slot.info.n_ctx_requested as usize;
    let max = (req.max_tokens as usize).min(n_ctx.saturating_sub(prompt.len()));
    slot.with_context(|model, ctx, mirror| {
        // Both runs start from an empty cache; the cache is left empty after.
        ctx.clear_kv_cache();
        mirror.clear();
        let mut run = Runs {
            model,
            ctx,
            request,
            prompt: &prompt,
            inbox,
            emit,
            prompt_end: None,
        };
        // An untimed prefill first: the first evaluation after a load pays
        // for the weights' pages coming in from the file and for llama.cpp's
        // buffers; without it the cached run, which goes first, would.
        let warm = run.evaluate(&prompt, 0);
        run.ctx.clear_kv_cache();
        let result = warm
            .and_then(|_| run.cached(max))
            .and_then(|reply| match reply {
                Some(reply) => run.recomputed(reply.len()).map(|r| r.map(|_| reply)),
                None => Ok(None),
            });
        let keep = matches!(result, Ok(Some(_))) && run.prompt_end.is_some();
        let kept = keep
            && run
                .ctx
                .clear_kv_cache_seq(Some(0), Some(prompt.len() as u32), None)
                .is_ok_and(|done| done);
        if kept {
            mirror.tokens = prompt.clone();
            mirror.prompt_end = run.prompt_end.take().map(|logits| PositionLogits {
                pos: prompt.len() - 1,
                logits,
            });
        } else {
            run.ctx.clear_kv_cache();
        }
        let n_generated = match &result {
            Ok(Some(reply)) => reply.len(),
            _ => 0,
        };
        let s = t_start.elapsed().as_secs_f64();
        let stats = Stats {
            stop: if n_generated < max {
                StopReason::Eog
            } else {
                StopReason::MaxTokens
            },
            n_prompt: prompt.len(),
            n_prompt_evaluated: prompt.len(),
            n_prompt_reused: 0,
            n_generated,
            n_forced: 0,
            ttft_ms: 0.0,
            prompt_tps: 0.0,
            gen_tps: if s > 0.0 { n_generated as f64 / s } else { 0.0 },
            dropped_messages: fitted.dropped,
            ctx_used: mirror.tokens.len(),
            ctx_size: run.ctx.n_ctx() as usize,
            ctx_requested,
            inspector_us_per_token: 0.0,
        };
        match result {
            Ok(Some(_)) => Outcome::Done(stats),
            Ok(None) => Outcome::Cancelled(Stats {
                stop: StopReason::Cancelled,
                ..stats
            }),
            Err(e) => Outcome::Failed(e),
        }
    })
}

/// The two runs' shared state.
struct Runs<'a, 'm> {
    model: &'m LlamaModel,
    ctx: &'a mut LlamaContext<'m>,
    request: RequestId,
    prompt: &'a [TokenId],
    inbox: &'a mut Inbox,
    emit: &'a Emit,
    /// The logits the cached run's prefill gave at the last prompt position.
    prompt_end: Option<Vec<f32>>,
}

impl Runs<'_, '_> {
    /// With the cache: prefill, then one decode per token, up to `max`
    /// tokens or the end of the reply (an end-of-generation token, sent as
    /// the last). `None` when cancelled.
    fn cached(&mut self, max: usize) -> Result<Option<Vec<TokenId>>, EngineError> {
        let mut reply: Vec<TokenId> = Vec::new();
        while reply.len() < max {
            if self.inbox.is_cancelled(self.request) {
                return Ok(None);
            }
            let t = Instant::now();
            let last = if reply.is_empty() {
                let last = self.evaluate(self.prompt, 0)?;
                self.prompt_end = Some(self.ctx.get_logits_ith(last).to_vec());
                last
            } else {
                let pos = self.prompt.len() + reply.len() - 1;
                self.evaluate(&reply[reply.len() - 1..], pos)?
            };
            let id = argmax(self.ctx.get_logits_ith(last));
            if self.step(KvRun::Cached, reply.len(), id, t) {
                reply.push(id);
                break;
            }
            reply.push(id);
        }
        Ok(Some(reply))
    }

    /// Without the cache: `n` tokens, each after clearing the cache and
    /// evaluating the prompt and the reply so far from position 0. `None`
    /// when cancelled.
    fn recomputed(&mut self, n: usize) -> Result<Option<Vec<TokenId>>, EngineError> {
        let mut seq: Vec<TokenId> = self.prompt.to_vec();
        for i in 0..n {
            if self.inbox.is_cancelled(self.request) {
                return Ok(None);
            }
            let t = Instant::now();
            self.ctx.clear_kv_cache();
            let last = self.evaluate(&seq, 0)?;
            let id = argmax(self.ctx.get_logits_ith(last));
            seq.push(id);
            if self.step(KvRun::Recomputed, i, id, t) {
                break;
            }
        }
        Ok(Some(seq.split_off(self.prompt.len())))
    }

    /// Evaluates `tokens` at positions `from..`, in batches of n_batch, with
    /// the logits of the last one only; returns that position's index in
    /// the last batch (where its logits are).
    fn evaluate(&mut self, tokens: &[TokenId], from: usize) -> Result<i32, EngineError> {
        let n_batch = batch_capacity(self.ctx);
        let mut batch = LlamaBatch::new(n_batch.min(tokens.len()).max(1), 1);
        let n_chunks = tokens.len().div_ceil(n_batch);
        for (c, chunk) in tokens.chunks(n_batch).enumerate() {
            batch.clear();
            for (i, t) in chunk.iter().enumerate() {
                let last = c + 1 == n_chunks && i + 1 == chunk.len();
                batch
                    .add(LlamaToken(*t), (from + c * n_batch + i) as i32, &[0], last)
                    .map_err(|e| decode_error("evaluating", e))?;
            }
            if let Err(e) = self.ctx.decode(&mut batch) {
                self.ctx.clear_kv_cache();
                return Err(decode_error("evaluating", e));
            }
        }
        Ok(batch.n_tokens() - 1)
    }

    /// Sends the step of token `index` of `run`, timed from `t`; true when
    /// it ends the reply (an end-of-generation token).
    fn step(&self, run: KvRun, index: usize, id: TokenId, t: Instant) -> bool {
        let seconds = t.elapsed().as_secs_f64();
        (self.emit)(Event::KvStep {
            request: self.request,
            run,
            index,
            position: self.prompt.len() + index,
            id,
            seconds,
        });
        self.model.vocab().is_eog(LlamaToken(id))
    }
}

/// The most likely token: the largest logit, ties to the lower id.
pub(super) fn argmax(logits: &[f32]) -> TokenId {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as TokenId
}

#[cfg(test)]
mod tests {
    #[test]
    fn argmax_takes_the_first_of_equal_logits() {
        assert_eq!(super::argmax(&[0.5, 2.0, 2.0, -1.0]), 1);
        assert_eq!(super::argmax(&[3.0]), 0);
    }
}
