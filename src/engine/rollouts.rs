//! Where each of the top candidates leads ([`Command::Rollouts`]): at one
//! step, the `n` most likely tokens each start a rollout of up to `m`
//! tokens, all continued at once as llama.cpp sequences of one context. The
//! context is in sequence 0 (evaluated once, or already cached); it is
//! shared into sequences `1..=n` (`llama_memory_seq_cp` on a unified cache:
//! no copy, the cells are tagged), and each decode batch then holds one
//! token per live rollout, each with its logits. Every rollout draws with
//! its own sampler chain (the reply's settings, seed + rank - 1), stops at
//! an end-of-generation token, and its sequence is dropped afterwards:
//! sequence 0, the slot's cache, is left holding the context.
//!
//! The numbers are the model's, as a single-sequence generation forced onto
//! the same first token would get them, but for the batch split (n tokens
//! per decode instead of one), which moves the last digits.
//!
//! [`Command::Rollouts`]: super::api::Command::Rollouts

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;

use super::api::{
    Distribution, EngineError, Event, RequestId, Rollout, RolloutRequest, RolloutToken, Stats,
    StopReason, TokenId, Words,
};
use super::decode::{Outcome, decode_error, keep_cache};
use super::inbox::{Emit, Inbox};
use super::probs::TopK;
use super::prompt_scores;
use super::sampler::sampler_chain;
use super::session::KvMirror;
use super::slot::{Slot, check_ids};
use crate::text::Utf8Assembler;

/// Serves a [`RolloutRequest`] on `slot`: one [`Event::Rollouts`], then the
/// final outcome. A cancel is read between decode batches.
pub(super) fn serve(
    slot: &mut Slot,
    request: RequestId,
    req: &RolloutRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Outcome {
    let ctx_requested = slot.info.n_ctx_requested as usize;
    slot.with_context(|model, ctx, mirror| {
        let t_start = Instant::now();
        if let Err(e) = validate(model, ctx, req) {
            return Outcome::Failed(e);
        }
        let cancelled = || inbox.is_cancelled(request);
        let (logits, evaluated) = match context_logits(ctx, mirror, &req.tokens) {
            Ok(l) => l,
            Err(e) => return Outcome::Failed(e),
        };
        let result = run(model, ctx, req, logits, cancelled);
        let done = Done {
            request,
            t_start,
            evaluated,
            ctx_requested,
            paused: false,
        };
        done.finish((ctx, mirror), req, result, emit)
    })
}

/// Serves a [`RolloutRequest`] inside the pause of reply `paused` (sent as
/// `request` for the paused reply's slot): the rollouts start at the step
/// not drawn yet, from `logits` (that step's), on the context the reply
/// stands at, which sequence 0 holds and the request's tokens must be
/// exactly. Emits [`Event::Rollouts`] and returns the final event; the
/// reply's sequence is untouched. Stopped between decode batches by a
/// cancel of either request.
pub(super) fn serve_in_pause(
    (model, ctx, mirror): (&LlamaModel, &mut LlamaContext, &mut KvMirror),
    (paused, request): (RequestId, RequestId),
    req: &RolloutRequest,
    logits: Vec<f32>,
    ctx_requested: usize,
    (inbox, emit): (&mut Inbox, &Emit),
) -> Event {
    let t_start = Instant::now();
    let outcome = match validate(model, ctx, req) {
        Err(e) => Outcome::Failed(e),
        Ok(()) if mirror.tokens != req.tokens => Outcome::Failed(EngineError::Refused(Words::tr(
            "rollouts-engine-paused",
            "rollouts inside a paused reply start at its next step, from the context it stands \
             at: roll out earlier tokens once the reply ends",
        ))),
        Ok(()) => {
            let cancelled = || inbox.is_cancelled(request) || inbox.is_cancelled(paused);
            let result = run(model, ctx, req, logits, cancelled);
            let done = Done {
                request,
                t_start,
                evaluated: 0,
                ctx_requested,
                paused: true,
            };
            done.finish((ctx, mirror), req, result, emit)
        }
    };
    outcome.into_event(request)
}

/// What the end of a rollouts request reports besides the rollouts.
struct Done {
    request: RequestId,
    t_start: Instant,
    /// Context tokens evaluated for it (the rest were in the cache).
    evaluated: usize,
    ctx_requested: usize,
    /// Served inside a paused reply, whose cache must stay as it is.
    paused: bool,
}

impl Done {
    /// Drops the rollouts' sequences, emits the rollouts (when they ran to
    /// their end) and returns the outcome with its stats; after a failure
    /// the cache is emptied (its state is not known), but for a paused
    /// reply's: the rollouts never write its sequence 0.
    fn finish(
        self,
        (ctx, mirror): (&mut LlamaContext, &mut KvMirror),
        req: &RolloutRequest,
        result: Result<Option<Vec<Rollout>>, EngineError>,
        emit: &Emit,
    ) -> Outcome {
        // Sequence 0 is untouched either way; the rollouts' cells go.
        let cleared = drop_rollout_seqs(ctx, req.n);
        let n_ctx_tokens = req.tokens.len();
        let stats = |n_generated| {
            let s = self.t_start.elapsed().as_secs_f64();
            let rate = |n: usize| if s > 0.0 { n as f64 / s } else { 0.0 };
            Stats {
                stop: StopReason::MaxTokens,
                n_prompt: n_ctx_tokens,
                n_prompt_evaluated: self.evaluated,
                n_prompt_reused: n_ctx_tokens - self.evaluated,
                n_generated,
                n_forced: 0,
                ttft_ms: s * 1000.0,
                prompt_tps: rate(self.evaluated),
                gen_tps: rate(n_generated),
                dropped_messages: 0,
                ctx_used: mirror.tokens.len(),
                ctx_size: ctx.n_ctx() as usize,
                ctx_requested: self.ctx_requested,
                inspector_us_per_token: 0.0,
            }
        };
        match (result, cleared) {
            (Err(e), _) | (Ok(_), Err(e)) => {
                // An unknown state: start again from an empty cache.
                if !self.paused {
                    ctx.clear_kv_cache();
                    mirror.clear();
                }
                Outcome::Failed(e)
            }
            (Ok(None), Ok(())) => Outcome::Cancelled(stats(0)),
            (Ok(Some(rollouts)), Ok(())) => {
                let n: usize = rollouts.iter().map(|r| r.tokens.len()).sum();
                emit(Event::Rollouts {
                    request: self.request,
                    rollouts,
                });
                Outcome::Done(stats(n))
            }
        }
    }
}

fn validate(
    model: &LlamaModel,
    ctx: &LlamaContext,
    req: &RolloutRequest,
) -> Result<(), EngineError> {
    let bad = |m: Words| Err(EngineError::Refused(m));
    if !prompt_scores::supported(model) {
        return bad(Words::tr(
            "rollouts-recurrent",
            "this model (recurrent or hybrid) keeps only its latest state: its cache cannot be \
             shared into rollouts",
        ));
    }
    RolloutRequest::check_shape(req.n, req.m).map_err(EngineError::Refused)?;
    req.sampling
        .validate()
        .map_err(|e| EngineError::Refused(e.words()))?;
    if req.tokens.is_empty() {
        return bad(Words::tr(
            "rollouts-no-context",
            "no context to roll out from: give at least one token",
        ));
    }
    check_ids(model, &req.tokens)?;
    // The context once, then each rollout's own cells (its last token is
    // drawn, never evaluated).
    let need = req.tokens.len() + req.n * (req.m - 1);
    let n_ctx = ctx.n_ctx() as usize;
    if need > n_ctx {
        return bad(Words::tr_args(
            "rollouts-context-small",
            "{ $context } context tokens + { $n } rollouts of { $m } tokens need { $need } cells of the KV cache, \
             more than the context's { $n_ctx }: ask for fewer or shorter rollouts, or load with a \
             larger context",
            &[
                ("context", &req.tokens.len()),
                ("n", &req.n),
                ("m", &req.m),
                ("need", &need),
                ("n_ctx", &n_ctx),
            ],
        ));
    }
    Ok(())
}

/// Makes sequence 0 hold exactly `tokens` and returns the logits after the
/// last one, with how many tokens were evaluated: the kept logits of a
/// prefilled prompt when the cache ends there, else the last token is
/// evaluated again alone (as a generation's reply token is).
fn context_logits(
    ctx: &mut LlamaContext,
    mirror: &mut KvMirror,
    tokens: &[TokenId],
) -> Result<(Vec<f32>, usize), EngineError> {
    if let Some(l) = mirror.logits_after(tokens) {
        let l = l.to_vec();
        keep_cache(ctx, mirror, tokens.len())?;
        return Ok((l, 0));
    }
    let (last, before) = tokens.split_last().ok_or(EngineError::EmptyPrompt)?;
    let (evaluated, _) = prompt_scores::fill(ctx, mirror, before, || false)?
        .ok_or_else(|| decode_error("prefill", "stopped"))?;
    keep_cache(ctx, mirror, before.len())?;
    let mut batch = LlamaBatch::new(1, 1);
    batch
        .add(LlamaToken(*last), before.len() as i32, &[0], true)
        .map_err(|e| decode_error("prefill", e))?;
    if let Err(e) = ctx.decode(&mut batch) {
        ctx.clear_kv_cache();
        mirror.clear();
        return Err(decode_error("prefill", e));
    }
    mirror.tokens.push(*last);
    Ok((ctx.get_logits_ith(0).to_vec(), evaluated + 1))
}

/// Sequence of the rollout at index `i` (rank `i + 1`): sequence 0 is the slot's.
fn seq_of(i: usize) -> i32 {
    i as i32 + 1
}

fn drop_rollout_seqs(ctx: &mut LlamaContext, n: usize) -> Result<(), EngineError> {
    for i in 0..n {
        ctx.clear_kv_cache_seq(Some(seq_of(i) as u32), None, None)
            .map_err(|e| decode_error("dropping a rollout's sequence", e))?;
    }
    Ok(())
}

/// One rollout in progress.
struct Lane {
    chain: Option<LlamaSampler>,
    text: Utf8Assembler,
    out: Rollout,
    done: bool,
}

impl Lane {
    /// Appends token `id` with its logit, its p under the model, its p
    /// under the lane's sampler (`None`: the candidate, not drawn) and the
    /// distribution it was drawn from (when asked for).
    fn push(
        &mut self,
        model: &LlamaModel,
        id: TokenId,
        (logit, p): (f32, f32),
        p_sampled: Option<f32>,
        dist: Option<Distribution>,
    ) {
        let vocab = model.vocab();
        let t = LlamaToken(id);
        let text = if vocab.is_eog(t) {
            self.done = true;
            String::new()
        } else {
            self.text
                .push(&vocab.token_to_piece(t, vocab.is_control(t), None))
        };
        self.out.tokens.push(RolloutToken {
            id,
            text,
            p,
            logit,
            p_sampled,
            dist,
        });
        self.out.log_likelihood += f64::from(p).ln();
    }
}

/// The rollouts from `logits` (after the context in sequence 0); `None`
/// when cancelled between batches.
fn run(
    model: &LlamaModel,
    ctx: &mut LlamaContext,
    req: &RolloutRequest,
    logits: Vec<f32>,
    mut cancelled: impl FnMut() -> bool,
) -> Result<Option<Vec<Rollout>>, EngineError> {
    let n_vocab = model.n_vocab();
    let mut topk = TopK::default();
    // The candidates to roll out, and those the inspector keeps.
    let k = req.top_k_inspect;
    let first = topk.summarize(&logits, req.n.max(k));
    let first_dist = (k > 0).then(|| {
        let mut d = first.distribution(|_, _| None);
        d.top.truncate(k);
        d
    });
    // Greedy with no penalty is the top candidate: no sampler pass over the
    // vocabulary (the greedy sampler takes the first maximum, as `top` does).
    let plain_greedy = req.sampling.is_greedy() && req.sampling.repeat_penalty == 1.0;
    let mut lanes: Vec<Lane> = Vec::with_capacity(first.top.len());
    for (i, &(id, logit)) in first.top.iter().take(req.n).enumerate() {
        let chain = (!plain_greedy).then(|| {
            let mut s = req.sampling.clone();
            s.seed = s.seed.wrapping_add(i as u32);
            let mut chain = sampler_chain(&s, n_vocab);
            // The repeat penalty's window, as a generation's chain sees it.
            if s.repeat_penalty != 1.0 {
                let from = req.tokens.len().saturating_sub(s.repeat_last_n as usize);
                for t in &req.tokens[from..] {
                    chain.accept(LlamaToken(*t));
                }
            }
            chain.accept(LlamaToken(id));
            chain
        });
        let mut lane = Lane {
            chain,
            text: Utf8Assembler::default(),
            out: Rollout {
                rank: i + 1,
                tokens: Vec::with_capacity(req.m),
                log_likelihood: 0.0,
                mean_p: 0.0,
            },
            done: false,
        };
        let p = (logit - first.lse).exp();
        lane.push(model, id, (logit, p), None, first_dist.clone());
        lanes.push(lane);
    }
    let n_ctx_tokens = req.tokens.len();
    for i in 0..lanes.len() {
        ctx.copy_kv_cache_seq(0, seq_of(i), None, Some(n_ctx_tokens as u32))
            .map_err(|e| decode_error("sharing the context with a rollout", e))?;
    }
    let mut batch = LlamaBatch::new(lanes.len(), 1);
    let mut buf: Vec<LlamaTokenData> = Vec::with_capacity(n_vocab as usize);
    for step in 1..req.m {
        if cancelled() {
            return Ok(None);
        }
        batch.clear();
        let mut live = Vec::with_capacity(lanes.len());
        for (i, lane) in lanes.iter().enumerate() {
            if lane.done {
                continue;
            }
            let last = lane.out.tokens.last().map_or(0, |t| t.id);
            let pos = (n_ctx_tokens + step - 1) as i32;
            batch
                .add(LlamaToken(last), pos, &[seq_of(i)], true)
                .map_err(|e| decode_error("decoding rollouts", e))?;
            live.push(i);
        }
        if live.is_empty() {
            break;
        }
        let t = Instant::now();
        ctx.decode(&mut batch)
            .map_err(|e| decode_error("decoding rollouts", e))?;
        tracing::debug!(
            step,
            n = live.len(),
            ms = t.elapsed().as_secs_f64() * 1e3,
            "rollout batch"
        );
        for (b, &i) in live.iter().enumerate() {
            let logits = ctx.get_logits_ith(b as i32);
            let summary = topk.summarize(logits, k.max(1));
            let lane = &mut lanes[i];
            let (id, p_sampled, dist) = match &mut lane.chain {
                None => {
                    let id = summary
                        .top
                        .first()
                        .map(|t| t.0)
                        .ok_or_else(EngineError::no_logits)?;
                    // Greedy: all of the sampler's mass on the token drawn.
                    let dist = (k > 0)
                        .then(|| summary.distribution(|_, c| Some(f32::from(u8::from(c == id)))));
                    (id, (k > 0).then_some(1.0), dist)
                }
                Some(chain) => {
                    let mut arr = super::sampler::vocab_array(logits, &mut buf);
                    arr.apply_sampler(chain);
                    let t = arr
                        .selected_token()
                        .ok_or_else(EngineError::no_sampled_token)?;
                    // The sampler's probabilities only for the inspector
                    // (a truncated array is searched for them).
                    let p_in = |c| Some(super::sampler::p_in(&arr.data, c));
                    let dist = (k > 0).then(|| summary.distribution(|_, c| p_in(c)));
                    let p_sampled = if k > 0 { p_in(t.0) } else { None };
                    buf = arr.data;
                    chain.accept(t);
                    (t.0, p_sampled, dist)
                }
            };
            let logit = logits[id as usize];
            let p = (logit - summary.lse).exp();
            lane.push(model, id, (logit, p), p_sampled, dist);
        }
    }
    Ok(Some(
        lanes
            .into_iter()
            .map(|mut lane| {
                let tail = lane.text.finish();
                if let Some(t) = lane.out.tokens.last_mut() {
                    t.text.push_str(&tail);
                }
                let n = lane.out.tokens.len().max(1) as f64;
                lane.out.mean_p = lane.out.tokens.iter().map(|t| f64::from(t.p)).sum::<f64>() / n;
                lane.out
            })
            .collect(),
    ))
}
