//! The prompt's own surprise after the fact ([`Command::ScorePrompt`]): the
//! model's distribution before each asked-for prompt position, without
//! delaying the reply. A generation prefills with the logits of its last
//! position only (llama.cpp's fast path); the prompt is scored afterwards
//! from the KV cache: for each chunk of consecutive positions `a..b`, the
//! cached positions `0..a-1` are shared into a second sequence
//! (`llama_memory_seq_cp` on a unified cache: no copy, the cells are
//! tagged), tokens `a-1..b-1` are evaluated there with the logits of every
//! position, and the sequence is dropped. Sequence 0, the generation's
//! cache, is never changed by the scoring itself.
//!
//! The numbers are the model's distribution at each position given the
//! tokens before it, as in a prefill that scores (only the batch split
//! differs, which moves the last digits). Recurrent and hybrid models keep
//! only their latest state, so an earlier position cannot be shared: they
//! are refused ([`supported`]) and score during prefill instead
//! ([`GenerateRequest::score_prompt`](super::api::GenerateRequest::score_prompt)).
//!
//! [`Command::ScorePrompt`]: super::api::Command::ScorePrompt

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::api::{
    EngineError, Event, MAX_CANDIDATES, PromptScoreRequest, RequestId, SCORE_CHUNK, Stats,
    StopReason, TokenStep, Words,
};
use super::decode::{Outcome, batch_capacity, decode_error, keep_cache, piece, scored_step};
use super::inbox::{Emit, Inbox};
use super::probs::TopK;
use super::session::KvMirror;
use super::slot::{Slot, check_ids};
use crate::text::Utf8Assembler;

/// The second sequence: where chunks are evaluated again for their logits.
pub(super) const SCORING_SEQ: i32 = 1;

/// Whether `model`'s cache can be shared at an earlier position (not a
/// recurrent or hybrid model, whose state is only the latest one).
pub(super) fn supported(model: &LlamaModel) -> bool {
    !(model.is_recurrent() || model.is_hybrid())
}

/// Serves a [`PromptScoreRequest`] on `slot` as a request of its own: what
/// of `req.tokens` is not in the cache is prefilled into it first, then the
/// positions are scored; between chunks it gives way to a request sent
/// after it (ending `Cancelled`).
pub(super) fn serve(
    slot: &mut Slot,
    request: RequestId,
    req: &PromptScoreRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Outcome {
    let ctx_requested = slot.info.n_ctx_requested as usize;
    slot.with_context(|model, ctx, mirror| {
        let t_start = Instant::now();
        if let Err(e) = validate(model, ctx, req) {
            return Outcome::Failed(e);
        }
        // Sequence 0 must hold every token before the last position scored.
        let need = req.positions.iter().max().copied().unwrap_or(1) - 1;
        let (evaluated, reused) = match fill(ctx, mirror, &req.tokens[..need], || {
            inbox.gives_way(request)
        }) {
            Ok(Some(n)) => n,
            Ok(None) => {
                return Outcome::Cancelled(stats(ctx, mirror, ctx_requested, 0, (0, 0), t_start));
            }
            Err(e) => return Outcome::Failed(e),
        };
        let mut scorer = Scorer::new(model, request, req.top_k_inspect);
        let stop = || inbox.gives_way(request);
        let result = scorer.run(ctx, mirror, req, emit, stop);
        let counts = (evaluated, reused);
        let st = stats(ctx, mirror, ctx_requested, scorer.n_scored, counts, t_start);
        match result {
            Ok(true) => Outcome::Done(st),
            Ok(false) => Outcome::Cancelled(st),
            Err(e) => Outcome::Failed(e),
        }
    })
}

/// Serves a [`PromptScoreRequest`] inside the pause of generation `paused`:
/// on its cache as it is (which must hold the tokens); between chunks it
/// stops for anything sent to the worker (a steer of the reply, a cancel, a
/// request), which the pause then answers. The caller keeps the logits its
/// next draw needs: scoring overwrites the context's.
pub(super) fn serve_in_pause(
    (model, ctx, mirror): (&LlamaModel, &mut LlamaContext, &KvMirror),
    (paused, request): (RequestId, RequestId),
    req: &PromptScoreRequest,
    ctx_requested: usize,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Event {
    let t_start = Instant::now();
    let need = req.positions.iter().max().copied().unwrap_or(1) - 1;
    let outcome = match validate(model, ctx, req) {
        Err(e) => Outcome::Failed(e),
        Ok(()) if mirror.tokens.get(..need) != req.tokens.get(..need) => {
            Outcome::Failed(EngineError::Refused(Words::tr(
                "engine-prompt-scores-paused",
                "the prompt to score is not the paused reply's: score it once the reply ends",
            )))
        }
        Ok(()) => {
            let mut scorer = Scorer::new(model, request, req.top_k_inspect);
            let stop = || inbox.interrupts_pause(paused, request);
            let result = scorer.run(ctx, mirror, req, emit, stop);
            let st = stats(
                ctx,
                mirror,
                ctx_requested,
                scorer.n_scored,
                (0, need),
                t_start,
            );
            match result {
                Ok(true) => Outcome::Done(st),
                Ok(false) => Outcome::Cancelled(st),
                Err(e) => Outcome::Failed(e),
            }
        }
    };
    outcome.into_event(request)
}

fn validate(
    model: &LlamaModel,
    ctx: &LlamaContext,
    req: &PromptScoreRequest,
) -> Result<(), EngineError> {
    let bad = |m: Words| Err(EngineError::Refused(m));
    if !supported(model) {
        return bad(Words::tr(
            "engine-prompt-scores-recurrent",
            "this model (recurrent or hybrid) keeps only its latest state: its prompt is scored \
             during prefill (`score_prompt`), not afterwards",
        ));
    }
    if req.top_k_inspect > MAX_CANDIDATES {
        return bad(Words::tr_args(
            "engine-prompt-scores-top-k",
            "top_k_inspect { $top } is over { $max }",
            &[("top", &req.top_k_inspect), ("max", &MAX_CANDIDATES)],
        ));
    }
    let n = req.tokens.len();
    if n > ctx.n_ctx() as usize {
        return bad(Words::tr_args(
            "engine-prompt-scores-too-long",
            "{ $n } tokens do not fit the context ({ $n_ctx } tokens)",
            &[("n", &n), ("n_ctx", &ctx.n_ctx())],
        ));
    }
    if let Some(p) = req.positions.iter().find(|&&p| p == 0 || p >= n) {
        return bad(Words::tr_args(
            "engine-prompt-scores-position",
            "position { $position } cannot be scored: positions go from 1 to { $last } (the tokens before one predict it)",
            &[("position", p), ("last", &n.saturating_sub(1))],
        ));
    }
    check_ids(model, &req.tokens)
}

/// Makes sequence 0 hold `tokens` (at least): keeps the cached prefix, drops
/// the rest of the cache, prefills what is missing (logits of no position).
/// Returns (evaluated, reused), or `None` when `stop` said so between batches.
pub(super) fn fill(
    ctx: &mut LlamaContext,
    mirror: &mut KvMirror,
    tokens: &[i32],
    mut stop: impl FnMut() -> bool,
) -> Result<Option<(usize, usize)>, EngineError> {
    let common = mirror
        .tokens
        .iter()
        .zip(tokens)
        .take_while(|(a, b)| a == b)
        .count();
    if common == tokens.len() {
        return Ok(Some((0, common)));
    }
    let keep = keep_cache(ctx, mirror, common)?;
    let n_batch = batch_capacity(ctx);
    let mut batch = LlamaBatch::new(n_batch, 1);
    for (c, chunk) in tokens[keep..].chunks(n_batch).enumerate() {
        if stop() {
            return Ok(None);
        }
        batch.clear();
        for (i, t) in chunk.iter().enumerate() {
            let pos = (keep + c * n_batch + i) as i32;
            batch
                .add(LlamaToken(*t), pos, &[0], false)
                .map_err(|e| decode_error("prefill", e))?;
        }
        if let Err(e) = ctx.decode(&mut batch) {
            ctx.clear_kv_cache();
            mirror.clear();
            return Err(decode_error("prefill", e));
        }
        mirror.tokens.extend_from_slice(chunk);
    }
    Ok(Some((tokens.len() - keep, keep)))
}

struct Scorer<'m> {
    model: &'m LlamaModel,
    request: RequestId,
    k: usize,
    topk: TopK,
    n_scored: usize,
}

impl<'m> Scorer<'m> {
    fn new(model: &'m LlamaModel, request: RequestId, k: usize) -> Self {
        Scorer {
            model,
            request,
            k,
            topk: TopK::default(),
            n_scored: 0,
        }
    }

    /// Scores `req.positions` chunk by chunk, sending each chunk's
    /// [`Event::PromptScores`]. `Ok(false)` when `stop` said so between chunks.
    fn run(
        &mut self,
        ctx: &mut LlamaContext,
        mirror: &KvMirror,
        req: &PromptScoreRequest,
        emit: &Emit,
        mut stop: impl FnMut() -> bool,
    ) -> Result<bool, EngineError> {
        let chunk_len = SCORE_CHUNK.min(batch_capacity(ctx)).max(1);
        let mut batch = LlamaBatch::new(chunk_len, 1);
        for run in runs(&req.positions, chunk_len) {
            if stop() {
                return Ok(false);
            }
            debug_assert!(mirror.tokens.len() >= run.end - 1);
            let steps = self.chunk(ctx, &mut batch, &req.tokens, run)?;
            self.n_scored += steps.len();
            emit(Event::PromptScores {
                request: self.request,
                steps,
            });
        }
        Ok(true)
    }

    /// Scores positions `run` (consecutive): tokens `run.start - 1 ..
    /// run.end - 1` evaluated in [`SCORING_SEQ`] on the cached positions
    /// before them, the sequence dropped after.
    fn chunk(
        &mut self,
        ctx: &mut LlamaContext,
        batch: &mut LlamaBatch,
        tokens: &[i32],
        run: std::ops::Range<usize>,
    ) -> Result<Vec<TokenStep>, EngineError> {
        let first = run.start - 1;
        let clear =
            |ctx: &mut LlamaContext| ctx.clear_kv_cache_seq(Some(SCORING_SEQ as u32), None, None);
        clear(ctx).map_err(|e| decode_error("scoring the prompt", e))?;
        if first > 0 {
            ctx.copy_kv_cache_seq(0, SCORING_SEQ, None, Some(first as u32))
                .map_err(|e| decode_error("sharing the cached prompt", e))?;
        }
        batch.clear();
        for (i, t) in tokens[first..run.end - 1].iter().enumerate() {
            batch
                .add(LlamaToken(*t), (first + i) as i32, &[SCORING_SEQ], true)
                .map_err(|e| decode_error("scoring the prompt", e))?;
        }
        let decoded = ctx.decode(batch);
        let steps = decoded.map(|()| {
            // The text of each scored token as the prompt writes it: the
            // token before the chunk starts it (a character split across
            // tokens is whole on the token that ends it).
            let mut text = Utf8Assembler::default();
            text.push(&piece(self.model, tokens[first]));
            run.clone()
                .enumerate()
                .map(|(i, pos)| {
                    let id = tokens[pos];
                    let logits = ctx.get_logits_ith(i as i32);
                    let t = text.push(&piece(self.model, id));
                    scored_step(&mut self.topk, logits, self.k, pos, id, t)
                })
                .collect()
        });
        // Sequence 0 is untouched either way; the shared cells lose the tag.
        let cleared = clear(ctx);
        let steps = steps.map_err(|e| decode_error("scoring the prompt", e))?;
        cleared.map_err(|e| decode_error("scoring the prompt", e))?;
        Ok(steps)
    }
}

/// `positions` cut into runs of consecutive positions, at most `max` long,
/// in the order given (a position already in an earlier run is skipped).
fn runs(positions: &[usize], max: usize) -> Vec<std::ops::Range<usize>> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for &p in positions {
        if !seen.insert(p) {
            continue;
        }
        match out.last_mut() {
            Some(r) if r.end == p && r.len() < max => r.end += 1,
            _ => out.push(p..p + 1),
        }
    }
    out
}

fn stats(
    ctx: &LlamaContext,
    mirror: &KvMirror,
    ctx_requested: usize,
    n_scored: usize,
    (evaluated, reused): (usize, usize),
    t_start: Instant,
) -> Stats {
    let s = t_start.elapsed().as_secs_f64();
    let rate = |n: usize| if s > 0.0 { n as f64 / s } else { 0.0 };
    Stats {
        stop: StopReason::Eog,
        n_prompt: evaluated + reused,
        n_prompt_evaluated: evaluated,
        n_prompt_reused: reused,
        n_generated: n_scored,
        n_forced: n_scored,
        ttft_ms: s * 1000.0,
        prompt_tps: rate(evaluated),
        gen_tps: rate(n_scored),
        dropped_messages: 0,
        ctx_used: mirror.tokens.len(),
        ctx_size: ctx.n_ctx() as usize,
        ctx_requested,
        inspector_us_per_token: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn positions_go_in_runs_of_consecutive_ones_in_the_order_given() {
        assert_eq!(runs(&[5, 6, 7, 1, 2, 9], 32), vec![5..8, 1..3, 9..10]);
        assert_eq!(runs(&[1, 2, 3, 4, 5], 2), vec![1..3, 3..5, 5..6]);
        assert_eq!(runs(&[3, 3, 4, 3], 8), vec![3..5]);
        assert!(runs(&[], 4).is_empty());
    }
}
