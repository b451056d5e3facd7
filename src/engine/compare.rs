//! Comparing models token by token ([`Command::Compare`](super::api::Command::Compare)):
//! the same token ids are forced through every model in batched prefills,
//! [`SCORE_CHUNK`] positions at a time, and each position's logits are
//! compared over the full vocabulary where they live, in this process.
//!
//! Memory stays bounded by the chunk: model A's logits for one chunk are
//! copied aside (≤ [`SCORE_CHUNK`] × vocabulary floats: 32 MiB for Gemma 3's
//! 262,144 tokens), then each other model decodes the same chunk and its
//! logits are compared with them in place. Nothing grows with the text but
//! the rows sent back.
//!
//! Per position, with `a`, `b` the two models' logits:
//! `lse = log Σ exp(logit)` (the max taken out first), `ln p = logit − lse`,
//! and `KL(A‖B) = Σ_v p_A(v) (ln p_A(v) − ln p_B(v))`, summed in f64. The
//! positions of a chunk are spread over the model's threads.

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use super::api::{
    CompareInput, CompareRequest, CompareRow, EngineError, Event, RequestId, SCORE_CHUNK,
    ScoreRequest, Stats, StopReason, TokenId,
};
use super::generate::{Outcome, batch_capacity, decode_error, keep_cache};
use super::probs::TopK;
use super::session::KvMirror;
use super::slot::{Slot, valid_id};
use super::worker::{Emit, Inbox};

/// Log-sum-exp and the index of the largest logit (ties: lower id) of `logits`.
pub(super) fn lse_top1(logits: &[f32]) -> (f64, TokenId) {
    let mut max = f32::NEG_INFINITY;
    let mut top = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > max {
            max = l;
            top = i;
        }
    }
    let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    (f64::from(max) + sum.ln(), top as TokenId)
}

/// KL(A‖B) in nats from both logit vectors and their log-sum-exps:
/// `Σ p_A (a − b) − lse_A + lse_B`, which is `Σ p_A (ln p_A − ln p_B)`.
pub(super) fn kl(a: &[f32], lse_a: f64, b: &[f32], lse_b: f64) -> f64 {
    // exp in f32 (fast; relative error ~1e-6 per probability), sums in f64.
    let lse_a32 = lse_a as f32;
    let mut s = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        let p = (x - lse_a32).exp();
        if p > 0.0 {
            s += f64::from(p) * (f64::from(x) - f64::from(y));
        }
    }
    s - lse_a + lse_b
}

/// For each position: B's log-sum-exp, top-1 and KL(A‖B), the positions
/// spread over `threads` threads.
fn compare_positions(
    a: &[&[f32]],
    lse_a: &[f64],
    b: &[&[f32]],
    threads: usize,
) -> Vec<(f64, TokenId, f64)> {
    let one = |i: usize| {
        let (lse_b, top) = lse_top1(b[i]);
        (lse_b, top, kl(a[i], lse_a[i], b[i], lse_b))
    };
    let n = a.len();
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(one).collect();
    }
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|start| {
                let one = &one;
                s.spawn(move || (start..(start + per).min(n)).map(one).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a KL thread panicked"))
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

/// Model B's part of the top-k report ([`CompareRequest::top_k`]) for rows
/// whose `ln_p` already ends with B's: B's own top `k`, and B's ln p of each
/// of A's top tokens (`row.top[0]`); `logits` are B's, one slice per row.
fn add_top_k(rows: &mut [CompareRow], logits: &[&[f32]], k: usize, topk: &mut TopK) {
    for (row, b) in rows.iter_mut().zip(logits) {
        // B's log-sum-exp, back from its ln p of the compared token.
        let ln_p_b = row.ln_p.last().copied().unwrap_or(0.0);
        let lse_b = f64::from(b[row.id as usize]) - ln_p_b;
        row.top.push(top_ln_p(topk, b, lse_b, k));
        let of_a = row.top[0]
            .iter()
            .map(|&(id, _)| f64::from(b[id as usize]) - lse_b)
            .collect();
        row.ln_p_of_a_top.push(of_a);
    }
}

/// The sequence and the first position compared, checked against model A.
fn tokens_of(slot: &Slot, input: &CompareInput) -> Result<(Vec<TokenId>, usize), EngineError> {
    match input {
        CompareInput::Text { text, bos } => {
            let req = ScoreRequest {
                text: text.clone(),
                bos: *bos,
                top_k_inspect: 0,
            };
            super::score::tokens_of(slot.model(), &req).map(|(t, _)| (t, 1))
        }
        CompareInput::Tokens { tokens, score_from } => {
            if *score_from == 0 || *score_from >= tokens.len() {
                return Err(EngineError::InvalidRequest(format!(
                    "nothing to compare: tokens from {score_from} of {} (a token is compared from the ones before it, so from 1 on)",
                    tokens.len()
                )));
            }
            if let Some(bad) = tokens.iter().find(|&&t| !valid_id(slot.model(), t)) {
                return Err(EngineError::InvalidRequest(format!(
                    "token id {bad} is not in the vocabulary of {} ({} tokens)",
                    slot.info.name, slot.info.n_vocab
                )));
            }
            Ok((tokens.clone(), *score_from))
        }
    }
}

/// Refuses models whose vocabularies differ from A's: KL needs the same tokens.
fn check_vocabularies(slots: &[Slot]) -> Result<(), EngineError> {
    let a = &slots[0];
    for b in &slots[1..] {
        if b.vocab.pieces != a.vocab.pieces {
            let differ = if a.vocab.len() != b.vocab.len() {
                format!("{} tokens vs {}", a.vocab.len(), b.vocab.len())
            } else {
                let first = (0..a.vocab.len())
                    .find(|&i| a.vocab.pieces[i] != b.vocab.pieces[i])
                    .unwrap_or(0);
                format!("token {first} differs")
            };
            return Err(EngineError::InvalidRequest(format!(
                "{} and {} have different vocabularies ({differ}): a token-by-token comparison needs the same tokens; compare variants of one model (e.g. made with `tokenscope quantize`)",
                a.info.name, b.info.name
            )));
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
        return Err(EngineError::InvalidRequest(
            "a comparison needs at least two models".into(),
        ));
    }
    check_vocabularies(slots)?;
    if req.top_k > super::api::MAX_CANDIDATES {
        return Err(EngineError::InvalidRequest(format!(
            "a comparison reports at most {} top tokens per model, not {}",
            super::api::MAX_CANDIDATES,
            req.top_k
        )));
    }
    let mut topk = TopK::default();
    let (tokens, score_from) = tokens_of(&slots[0], &req.input)?;
    for s in slots.iter_mut() {
        let n_ctx = s.with_context(|_, ctx, _| ctx.n_ctx() as usize);
        if tokens.len() > n_ctx {
            return Err(EngineError::PromptTooLong {
                n_prompt: tokens.len(),
                n_ctx,
            });
        }
    }
    let first = score_from - 1;
    let mut decode_s = 0.0;
    // A fresh cache, then the positions whose logits are not needed.
    for s in slots.iter_mut() {
        let t = Instant::now();
        s.with_context(|_, ctx, mirror| {
            keep_cache(ctx, mirror, 0)?;
            let mut batch = LlamaBatch::new(batch_capacity(ctx), 1);
            let n_batch = batch_capacity(ctx);
            decode(ctx, mirror, &mut batch, &tokens[..first], 0, false, n_batch)
        })?;
        decode_s += t.elapsed().as_secs_f64();
    }
    let threads = slots[0].info.threads as usize;
    let mut kl_s = 0.0;
    let mut n_rows = 0;
    let mut t_first = None;
    let mut a_buf: Vec<f32> = Vec::new();
    let last = tokens.len() - 1;
    let mut q = first;
    let stats = |n_rows: usize, decode_s: f64, kl_s: f64, t_first: Option<f64>, slot: &mut Slot| {
        let (ctx_used, ctx_size) =
            slot.with_context(|_, ctx, mirror| (mirror.tokens.len(), ctx.n_ctx() as usize));
        Stats {
            stop: StopReason::Eog,
            n_prompt: tokens.len(),
            n_prompt_evaluated: last,
            n_prompt_reused: 0,
            n_generated: n_rows,
            n_forced: n_rows,
            ttft_ms: t_first.unwrap_or_else(|| t_start.elapsed().as_secs_f64()) * 1000.0,
            prompt_tps: if decode_s > 0.0 {
                (last * req.slots.len()) as f64 / decode_s
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
    let mut chunk_len = SCORE_CHUNK;
    for s in slots.iter_mut() {
        s.with_context(|_, ctx, _| {
            chunk_len = chunk_len.min(super::generate::batch_capacity(ctx));
            Ok::<_, EngineError>(())
        })?;
    }
    while q < last {
        if inbox.is_cancelled(request) {
            return Ok(Outcome::Cancelled(stats(
                n_rows,
                decode_s,
                kl_s,
                t_first,
                &mut slots[0],
            )));
        }
        let end = (q + chunk_len).min(last);
        let chunk = &tokens[q..end];
        let len = chunk.len();
        let (mut chunk_decode, mut chunk_kl) = (0.0, 0.0);
        // Model A: decode, keep its logits aside, its rows' own part.
        let t = Instant::now();
        let (n_vocab, mut rows, lse_a) = slots[0].with_context(|_, ctx, mirror| {
            let mut batch = LlamaBatch::new(len, 1);
            decode(ctx, mirror, &mut batch, chunk, q, true, len)?;
            chunk_decode += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let n_vocab = ctx.get_logits_ith(0).len();
            a_buf.clear();
            let mut rows = Vec::with_capacity(len);
            let mut lse_a = Vec::with_capacity(len);
            for i in 0..len {
                let logits = ctx.get_logits_ith(i as i32);
                a_buf.extend_from_slice(logits);
                let (lse, top) = lse_top1(logits);
                let id = tokens[q + i + 1];
                rows.push(CompareRow {
                    index: q + i + 1,
                    id,
                    ln_p: vec![f64::from(logits[id as usize]) - lse],
                    top1: vec![top],
                    kl: Vec::with_capacity(req.slots.len() - 1),
                    ..Default::default()
                });
                if req.top_k > 0 {
                    let row = rows.last_mut().expect("just pushed");
                    row.top.push(top_ln_p(&mut topk, logits, lse, req.top_k));
                }
                lse_a.push(lse);
            }
            chunk_kl += t.elapsed().as_secs_f64();
            Ok::<_, EngineError>((n_vocab, rows, lse_a))
        })?;
        let a: Vec<&[f32]> = a_buf.chunks(n_vocab).collect();
        for s in slots[1..].iter_mut() {
            let t = Instant::now();
            s.with_context(|_, ctx, mirror| {
                let mut batch = LlamaBatch::new(len, 1);
                decode(ctx, mirror, &mut batch, chunk, q, true, len)?;
                chunk_decode += t.elapsed().as_secs_f64();
                let t = Instant::now();
                let b: Vec<&[f32]> = (0..len).map(|i| ctx.get_logits_ith(i as i32)).collect();
                let out = compare_positions(&a, &lse_a, &b, threads);
                for ((row, (lse_b, top, kl)), logits) in rows.iter_mut().zip(out).zip(&b) {
                    row.ln_p.push(f64::from(logits[row.id as usize]) - lse_b);
                    row.top1.push(top);
                    row.kl.push(kl);
                }
                if req.top_k > 0 {
                    add_top_k(&mut rows, &b, req.top_k, &mut topk);
                }
                chunk_kl += t.elapsed().as_secs_f64();
                Ok::<_, EngineError>(())
            })?;
        }
        decode_s += chunk_decode;
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
    Ok(Outcome::Done(stats(
        n_rows,
        decode_s,
        kl_s,
        t_first,
        &mut slots[0],
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook definitions in f64, to check the fast forms against.
    fn reference(a: &[f32], b: &[f32]) -> f64 {
        let lse = |v: &[f32]| {
            let m = v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
            m + v.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
        };
        let (la, lb) = (lse(a), lse(b));
        a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let pa = (x as f64 - la).exp();
                pa * ((x as f64 - la) - (y as f64 - lb))
            })
            .sum()
    }

    #[test]
    fn kl_matches_the_definition_and_is_zero_for_equal_logits() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) * 20.0 - 10.0
        };
        let a: Vec<f32> = (0..5000).map(|_| next()).collect();
        let b: Vec<f32> = a.iter().map(|x| x + next() * 0.1).collect();
        let (la, ta) = lse_top1(&a);
        let (lb, _) = lse_top1(&b);
        let fast = kl(&a, la, &b, lb);
        let exact = reference(&a, &b);
        assert!(fast > 0.0);
        assert!(
            (fast - exact).abs() < 1e-6 * exact.max(1e-9) + 1e-9,
            "{fast} vs {exact}"
        );
        assert_eq!(kl(&a, la, &a, la), 0.0);
        let argmax = a
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |m, (i, &x)| if x > m.1 { (i, x) } else { m });
        assert_eq!(ta as usize, argmax.0);
        // Threads give the same rows as one.
        let rows_a: Vec<&[f32]> = vec![&a, &b, &a];
        let rows_b: Vec<&[f32]> = vec![&b, &a, &a];
        let lses = [la, lb, la];
        assert_eq!(
            compare_positions(&rows_a, &lses, &rows_b, 1),
            compare_positions(&rows_a, &lses, &rows_b, 3)
        );
    }
}
