//! Comparing models token by token ([`Command::Compare`](super::api::Command::Compare)):
//! the same token ids are forced through every model in batched prefills,
//! [`COMPARE_CHUNK`] positions at a time, and each position's logits are
//! compared over the full vocabulary where they live, in this process.
//!
//! Memory stays bounded by the chunk: model A decodes a chunk, and its
//! logits stay in its context's output buffer (≤ [`COMPARE_CHUNK`] ×
//! vocabulary floats: 64 MiB for Gemma 3's 262,144 tokens) while each other
//! model decodes the same chunk and is compared with them in place, no copy.
//! Nothing grows with the text but the rows sent back.
//!
//! Per position, [`super::divergence::pair`]: both log-sum-exps, both top-1s
//! and KL(A‖B) in one vectorized pass over the two logit vectors. The
//! positions of a chunk are spread over the model's threads.

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use super::api::{
    COMPARE_CHUNK, CompareInput, CompareRequest, CompareRow, EngineError, Event, RequestId,
    ScoreRequest, Stats, StopReason, TokenId, Words,
};
use super::decode::{Outcome, batch_capacity, decode_error, keep_cache};
use super::divergence::{Pair, pair};
use super::inbox::{Emit, Inbox};
use super::probs::TopK;
use super::session::KvMirror;
use super::slot::{Slot, valid_id};

/// `f(i)` for `i` in `0..n`, the indices spread over `threads` scoped
/// threads in contiguous runs; results in index order.
fn par_map<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let per = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|start| s.spawn(move || (start..(start + per).min(n)).map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a comparison thread panicked"))
            .collect()
    })
}

/// The `k` most likely tokens of `logits` (ties: lower id) as (id, ln p),
/// ln p = logit − `lse` in nats; a bounded selection, never a full sort.
fn top_ln_p(topk: &mut TopK, logits: &[f32], lse: f64, k: usize) -> Vec<(TokenId, f64)> {
    topk.summarize(logits, k)
        .top
        .into_iter()
        .map(|(id, l)| (id, f64::from(l) - lse))
        .collect()
}

/// Model B's part of `row`'s top-k report ([`CompareRequest::top_k`]): B's
/// own `k` most likely tokens, and B's ln p of each of A's (`row.top[0]`,
/// already there); `b` is B's logits at the row's position, `lse_b` their
/// log-sum-exp.
fn add_top_k(row: &mut CompareRow, b: &[f32], lse_b: f64, k: usize, topk: &mut TopK) {
    row.top.push(top_ln_p(topk, b, lse_b, k));
    let of_a = row.top[0]
        .iter()
        .map(|&(id, _)| f64::from(b[id as usize]) - lse_b)
        .collect();
    row.ln_p_of_a_top.push(of_a);
}

/// For each position `i`: [`pair`] of `a[i]` and `b[i]` (both models'
/// log-sum-exp and top-1, KL(A‖B)), the positions spread over `threads`
/// threads.
fn compare_positions(a: &[&[f32]], b: &[&[f32]], threads: usize) -> Vec<Pair> {
    par_map(a.len(), threads, |i| pair(a[i], b[i]))
}

/// The sequence, the first position compared, and whether the sequence
/// starts with the model's BOS (windows then start with it again), checked
/// against model A.
fn tokens_of(
    slot: &Slot,
    input: &CompareInput,
) -> Result<(Vec<TokenId>, usize, bool), EngineError> {
    match input {
        CompareInput::Text { text, bos } => {
            let req = ScoreRequest {
                text: text.clone(),
                bos: *bos,
                top_k_inspect: 0,
            };
            super::score::tokens_of(slot.model(), &req).map(|(t, bos)| (t, 1, bos))
        }
        CompareInput::Tokens { tokens, score_from } => {
            if *score_from == 0 || *score_from >= tokens.len() {
                return Err(EngineError::Refused(Words::tr_args(
                    "engine-compare-nothing",
                    "nothing to compare: tokens from { $from } of { $n } (a token is compared from the ones before it, so from 1 on)",
                    &[("from", score_from), ("n", &tokens.len())],
                )));
            }
            if let Some(bad) = tokens.iter().find(|&&t| !valid_id(slot.model(), t)) {
                return Err(EngineError::Refused(Words::tr_args(
                    "engine-compare-bad-token-id",
                    "token id { $id } is not in the vocabulary of { $model } ({ $n } tokens)",
                    &[
                        ("id", bad),
                        ("model", &slot.info.name),
                        ("n", &slot.info.n_vocab),
                    ],
                )));
            }
            let bos = tokens.first() == Some(&slot.model().vocab().bos().0);
            Ok((tokens.clone(), *score_from, bos))
        }
    }
}

/// Refuses models whose vocabularies differ from A's: KL needs the same tokens.
fn check_vocabularies(slots: &[Slot]) -> Result<(), EngineError> {
    let a = &slots[0];
    for b in &slots[1..] {
        if b.vocab.pieces != a.vocab.pieces {
            let differ = if a.vocab.len() != b.vocab.len() {
                Words::tr_args(
                    "engine-vocab-sizes",
                    "{ $a } tokens vs { $b }",
                    &[("a", &a.vocab.len()), ("b", &b.vocab.len())],
                )
            } else {
                let first = (0..a.vocab.len())
                    .find(|&i| a.vocab.pieces[i] != b.vocab.pieces[i])
                    .unwrap_or(0);
                Words::tr_args(
                    "engine-vocab-token-differs",
                    "token { $id } differs",
                    &[("id", &first)],
                )
            };
            return Err(EngineError::Refused(
                Words::tr_args(
                    "engine-vocabularies-differ",
                    "{ $a } and { $b } have different vocabularies ({ $differ }): a token-by-token comparison needs the same tokens; compare variants of one model (e.g. made with `tokenscope quantize`)",
                    &[("a", &a.info.name), ("b", &b.info.name)],
                )
                .with("differ", differ),
            ));
        }
    }
    Ok(())
}

/// Decodes `tokens` at positions `pos..` into the cache, in batches of at
/// most `max` (logits for every one when `logits`).
fn decode(
    ctx: &mut LlamaContext,
    mirror: &mut KvMirror,
    batch: &mut LlamaBatch,
    tokens: &[TokenId],
    pos: usize,
    logits: bool,
    max: usize,
) -> Result<(), EngineError> {
    for (k, chunk) in tokens.chunks(max.max(1)).enumerate() {
        batch.clear();
        let start = pos + k * max;
        for (i, t) in chunk.iter().enumerate() {
            batch
                .add(LlamaToken(*t), (start + i) as i32, &[0], logits)
                .map_err(|e| decode_error("comparing", e))?;
        }
        if let Err(e) = ctx.decode(batch) {
            ctx.clear_kv_cache();
            mirror.clear();
            return Err(decode_error("comparing", e));
        }
        mirror.tokens.extend_from_slice(chunk);
    }
    Ok(())
}

/// Serves a [`CompareRequest`] on `slots` (the request's slots, in its order).
pub(super) fn compare(
    slots: &mut [Slot],
    request: RequestId,
    req: &CompareRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Outcome {
    match run(slots, request, req, inbox, emit) {
        Ok(o) => o,
        Err(e) => Outcome::Failed(e),
    }
}

fn run(
    slots: &mut [Slot],
    request: RequestId,
    req: &CompareRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Result<Outcome, EngineError> {
    let t_start = Instant::now();
    if slots.len() < 2 {
        return Err(EngineError::Refused(Words::tr(
            "engine-compare-two-models",
            "a comparison needs at least two models",
        )));
    }
    check_vocabularies(slots)?;
    if req.top_k > super::api::MAX_CANDIDATES {
        return Err(EngineError::Refused(Words::tr_args(
            "engine-compare-top-k",
            "a comparison reports at most { $max } top tokens per model, not { $top }",
            &[("max", &super::api::MAX_CANDIDATES), ("top", &req.top_k)],
        )));
    }
    let mut topk = TopK::default();
    let (tokens, score_from, bos) = tokens_of(&slots[0], &req.input)?;
    // A text longer than the smallest context: overlapping windows, as
    // `score` does (each from scratch, every token compared once, with at
    // least half a context before it).
    let mut n_ctx = usize::MAX;
    for s in slots.iter_mut() {
        n_ctx = n_ctx.min(s.with_context(|_, ctx, _| ctx.n_ctx() as usize));
    }
    let windows = super::score::windows(tokens.len(), n_ctx, bos);
    let mut decode_s = 0.0;
    let threads = slots[0].info.threads as usize;
    let mut kl_s = 0.0;
    let mut n_rows = 0;
    // Positions evaluated per model.
    let mut evaluated = 0;
    let mut t_first = None;
    let stats = |n_rows: usize,
                 evaluated: usize,
                 decode_s: f64,
                 kl_s: f64,
                 t_first: Option<f64>,
                 slot: &mut Slot| {
        let (ctx_used, ctx_size) =
            slot.with_context(|_, ctx, mirror| (mirror.tokens.len(), ctx.n_ctx() as usize));
        Stats {
            stop: StopReason::Eog,
            n_prompt: tokens.len(),
            n_prompt_evaluated: evaluated,
            n_prompt_reused: 0,
            n_generated: n_rows,
            n_forced: n_rows,
            ttft_ms: t_first.unwrap_or_else(|| t_start.elapsed().as_secs_f64()) * 1000.0,
            prompt_tps: if decode_s > 0.0 {
                (evaluated * req.slots.len()) as f64 / decode_s
            } else {
                0.0
            },
            gen_tps: 0.0,
            dropped_messages: 0,
            ctx_used,
            ctx_size,
            ctx_requested: slot.info.n_ctx_requested as usize,
            inspector_us_per_token: if n_rows > 0 {
                kl_s * 1e6 / n_rows as f64
            } else {
                0.0
            },
        }
    };
    // A batch larger than a context's n_batch aborts llama.cpp.
    let mut chunk_len = COMPARE_CHUNK;
    for s in slots.iter_mut() {
        s.with_context(|_, ctx, _| {
            chunk_len = chunk_len.min(batch_capacity(ctx));
            Ok::<_, EngineError>(())
        })?;
    }
    let mut cancelled = false;
    'windows: for w in &windows {
        let seq = w.seq(&tokens);
        let from = w.score_from.max(score_from);
        if from >= w.end {
            continue;
        }
        // A fresh cache, then the positions whose logits are not needed.
        let first = w.local(from - 1);
        for s in slots.iter_mut() {
            let t = Instant::now();
            s.with_context(|_, ctx, mirror| {
                keep_cache(ctx, mirror, 0)?;
                let n_batch = batch_capacity(ctx);
                let mut batch = LlamaBatch::new(n_batch, 1);
                decode(ctx, mirror, &mut batch, &seq[..first], 0, false, n_batch)
            })?;
            decode_s += t.elapsed().as_secs_f64();
        }
        evaluated += first;
        let last = seq.len() - 1;
        let mut q = first;
        while q < last {
            if inbox.is_cancelled(request) {
                cancelled = true;
                break 'windows;
            }
            let end = (q + chunk_len).min(last);
            let chunk = &seq[q..end];
            let len = chunk.len();
            let (mut chunk_decode, mut chunk_kl) = (0.0, 0.0);
            // Model A decodes first. Its logits stay where llama.cpp wrote them
            // (valid until A's next decode) while every other model decodes the
            // same positions and is compared against them in place: no copy.
            let (slot_a, others) = slots.split_first_mut().expect("two slots or more");
            let t = Instant::now();
            let rows = slot_a.with_context(|_, ctx_a, mirror_a| {
                let mut batch = LlamaBatch::new(len, 1);
                decode(ctx_a, mirror_a, &mut batch, chunk, q, true, len)?;
                chunk_decode += t.elapsed().as_secs_f64();
                let a: Vec<&[f32]> = (0..len).map(|i| ctx_a.get_logits_ith(i as i32)).collect();
                let n_models = others.len() + 1;
                let mut rows: Vec<CompareRow> = (0..len)
                    .map(|i| CompareRow {
                        index: w.global(q + i + 1),
                        id: seq[q + i + 1],
                        ln_p: Vec::with_capacity(n_models),
                        top1: Vec::with_capacity(n_models),
                        kl: Vec::with_capacity(n_models - 1),
                        ..Default::default()
                    })
                    .collect();
                for (k, s) in others.iter_mut().enumerate() {
                    let t = Instant::now();
                    s.with_context(|_, ctx, mirror| {
                        decode(ctx, mirror, &mut batch, chunk, q, true, len)?;
                        chunk_decode += t.elapsed().as_secs_f64();
                        let t = Instant::now();
                        let b: Vec<&[f32]> =
                            (0..len).map(|i| ctx.get_logits_ith(i as i32)).collect();
                        let out = compare_positions(&a, &b, threads);
                        for ((row, p), (la, lb)) in rows.iter_mut().zip(out).zip(a.iter().zip(&b)) {
                            let id = row.id as usize;
                            if k == 0 {
                                // A's own numbers: the same from every pair.
                                row.ln_p.push(f64::from(la[id]) - p.lse_a);
                                row.top1.push(p.top_a);
                                if req.top_k > 0 {
                                    row.top.push(top_ln_p(&mut topk, la, p.lse_a, req.top_k));
                                }
                            }
                            row.ln_p.push(f64::from(lb[id]) - p.lse_b);
                            row.top1.push(p.top_b);
                            row.kl.push(p.kl);
                            if req.top_k > 0 {
                                add_top_k(row, lb, p.lse_b, req.top_k, &mut topk);
                            }
                        }
                        chunk_kl += t.elapsed().as_secs_f64();
                        Ok::<_, EngineError>(())
                    })?;
                }
                Ok::<_, EngineError>(rows)
            })?;
            decode_s += chunk_decode;
            evaluated += len;
            kl_s += chunk_kl;
            n_rows += rows.len();
            t_first.get_or_insert_with(|| t_start.elapsed().as_secs_f64());
            emit(Event::Compared {
                request,
                rows,
                decode_s: chunk_decode,
                kl_s: chunk_kl,
            });
            q = end;
        }
    }
    let stats = stats(n_rows, evaluated, decode_s, kl_s, t_first, &mut slots[0]);
    Ok(if cancelled {
        Outcome::Cancelled(stats)
    } else {
        Outcome::Done(stats)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_give_the_same_rows_as_one() {
        let a: Vec<f32> = (0..5000).map(|i| ((i * 7919) % 113) as f32 * 0.1).collect();
        let b: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x + (i % 5) as f32 * 0.05)
            .collect();
        let rows_a: Vec<&[f32]> = vec![&a, &b, &a];
        let rows_b: Vec<&[f32]> = vec![&b, &a, &a];
        let one = compare_positions(&rows_a, &rows_b, 1);
        assert_eq!(one, compare_positions(&rows_a, &rows_b, 3));
        assert!(one[0].kl > 0.0 && one[1].kl > 0.0);
        assert_eq!(one[2].kl, 0.0);
    }
}
