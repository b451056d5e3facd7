//! Asking the model about any text at a step ([`Command::AskText`]): the
//! text tokenized as a forced text is, each of its tokens teacher-forced
//! through a second sequence of the KV cache ([`SCORING_SEQ`]), which is
//! dropped after; sequence 0, the conversation's cache, is never changed.
//!
//! The distribution at the step itself comes from the logits kept for it
//! when there are some (a paused reply's next draw, the prompt's last
//! position: the very numbers a generation draws from); otherwise the
//! context's last token (and whatever of the context is not cached) is
//! evaluated again in the second sequence. Each text token after the first
//! is evaluated alone, one decode per token, as a generation forcing the
//! text evaluates it, so the text's probabilities are the ones forcing it
//! gives (within the last digits: see the engine tests).
//!
//! [`Command::AskText`]: super::api::Command::AskText

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::api::{
    ASK_MAX_PROBE, ASK_MAX_TEXT_TOKENS, AskTextRequest, EngineError, Event, RequestId, Stats,
    StopReason, TextAnswer, TokenId, Words, standing,
};
use super::char_completion;
use super::decode::{Outcome, batch_capacity, decode_error};
use super::inbox::Emit;
use super::probs::TopK;
use super::prompt::tokenize_plain;
use super::prompt_scores::SCORING_SEQ;
use super::session::KvMirror;
use super::slot::{Slot, check_ids};

/// Serves `req` on `slot` as a request of its own (the engine idle).
pub(super) fn serve(
    slot: &mut Slot,
    request: RequestId,
    req: &AskTextRequest,
    emit: &Emit,
) -> Outcome {
    let ctx_requested = slot.info.n_ctx_requested as usize;
    slot.with_context(|model, ctx, mirror| {
        let t_start = Instant::now();
        // The prompt's last position's logits, kept: the numbers its reply drew from.
        let known = mirror.logits_after(&req.context).map(<[f32]>::to_vec);
        let result = answer(model, ctx, mirror, req, known.as_deref());
        finish(result, request, (ctx, mirror, ctx_requested), t_start, emit)
    })
}

/// Serves `req` inside the pause of a reply whose cache is `mirror`:
/// `next` are the logits its next draw will use (the caller keeps them:
/// evaluating here overwrites the context's). A context other than the
/// paused reply's is evaluated as when idle; sequence 0 is untouched either way.
pub(super) fn serve_in_pause(
    (model, ctx, mirror): (&LlamaModel, &mut LlamaContext, &KvMirror),
    request: RequestId,
    req: &AskTextRequest,
    next: &[f32],
    ctx_requested: usize,
    emit: &Emit,
) -> Event {
    let t_start = Instant::now();
    let known = (mirror.tokens == req.context).then_some(next);
    let result = answer(model, ctx, mirror, req, known);
    finish(result, request, (ctx, mirror, ctx_requested), t_start, emit).into_event(request)
}

/// Sends the answer; the request's final outcome with its counts.
fn finish(
    result: Result<(TextAnswer, usize), EngineError>,
    request: RequestId,
    (ctx, mirror, ctx_requested): (&LlamaContext, &KvMirror, usize),
    t_start: Instant,
    emit: &Emit,
) -> Outcome {
    let (answer, evaluated) = match result {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e),
    };
    let n_context = mirror.tokens.len().max(evaluated);
    let n_text = answer.tokens.len();
    emit(Event::TextAnswer {
        request,
        answer: Box::new(answer),
    });
    let s = t_start.elapsed().as_secs_f64();
    let rate = |n: usize| if s > 0.0 { n as f64 / s } else { 0.0 };
    Outcome::Done(Stats {
        stop: StopReason::Eog,
        n_prompt: n_context,
        n_prompt_evaluated: evaluated,
        n_prompt_reused: n_context - evaluated,
        n_generated: n_text,
        n_forced: n_text,
        ttft_ms: s * 1000.0,
        prompt_tps: rate(evaluated),
        gen_tps: rate(n_text),
        dropped_messages: 0,
        ctx_used: mirror.tokens.len(),
        ctx_size: ctx.n_ctx() as usize,
        ctx_requested,
        inspector_us_per_token: 0.0,
    })
}

fn validate(
    model: &LlamaModel,
    ctx: &LlamaContext,
    req: &AskTextRequest,
    text: &[TokenId],
) -> Result<(), EngineError> {
    let bad = |m: Words| Err(EngineError::Refused(m));
    if !super::prompt_scores::supported(model) {
        return bad(Words::tr(
            "engine-ask-recurrent",
            "this model (recurrent or hybrid) keeps only its latest state: a text cannot be \
             forced beside the conversation without changing it",
        ));
    }
    if req.context.is_empty() {
        return bad(Words::tr(
            "engine-ask-no-context",
            "asking about a text needs a context of at least one token (the step's)",
        ));
    }
    if text.len() > ASK_MAX_TEXT_TOKENS {
        return bad(Words::tr_args(
            "engine-ask-text-long",
            "the text is { $n } tokens; ask about at most { $max } at once",
            &[("n", &text.len()), ("max", &ASK_MAX_TEXT_TOKENS)],
        ));
    }
    if req.probe.len() > ASK_MAX_PROBE {
        return bad(Words::tr_args(
            "engine-ask-probe-many",
            "{ $n } tokens to probe; at most { $max } at once",
            &[("n", &req.probe.len()), ("max", &ASK_MAX_PROBE)],
        ));
    }
    let n = req.context.len() + text.len();
    if n > ctx.n_ctx() as usize {
        return bad(Words::tr_args(
            "engine-ask-too-long",
            "the context and the text ({ $n } tokens) do not fit the context ({ $n_ctx } tokens)",
            &[("n", &n), ("n_ctx", &ctx.n_ctx())],
        ));
    }
    check_ids(
        model,
        req.context.iter().chain(&req.probe).chain(&req.complete),
    )
}

/// The answer and how many context tokens were evaluated again. `known`:
/// the logits after the whole context, when the caller has them and the
/// cache holds the context.
fn answer(
    model: &LlamaModel,
    ctx: &mut LlamaContext,
    mirror: &KvMirror,
    req: &AskTextRequest,
    known: Option<&[f32]>,
) -> Result<(TextAnswer, usize), EngineError> {
    let text = tokenize_plain(model, &req.text);
    validate(model, ctx, req, &text)?;
    let clear = |ctx: &mut LlamaContext| {
        ctx.clear_kv_cache_seq(Some(SCORING_SEQ as u32), None, None)
            .map_err(|e| decode_error("asking about a text", e))
    };
    clear(ctx)?;
    let result = force(ctx, mirror, req, &text, known).and_then(|(mut answer, evaluated)| {
        if let Some(of) = req.complete {
            // The text's tokens go; the incomplete token is put right after the context.
            let n = req.context.len();
            ctx.clear_kv_cache_seq(Some(SCORING_SEQ as u32), Some(n as u32), None)
                .map_err(|e| decode_error("asking about a text", e))?;
            answer.completion = Some(char_completion::follow(model, ctx, SCORING_SEQ, n, of)?);
        }
        Ok((answer, evaluated))
    });
    // Sequence 0 is untouched either way; the shared cells lose the tag.
    let cleared = clear(ctx);
    let answer = result?;
    cleared?;
    Ok(answer)
}

/// The work of [`answer`] in [`SCORING_SEQ`], which starts empty.
fn force(
    ctx: &mut LlamaContext,
    mirror: &KvMirror,
    req: &AskTextRequest,
    text: &[TokenId],
    known: Option<&[f32]>,
) -> Result<(TextAnswer, usize), EngineError> {
    let context = &req.context;
    let share = |ctx: &mut LlamaContext, n: usize| {
        if n == 0 {
            return Ok(());
        }
        ctx.copy_kv_cache_seq(0, SCORING_SEQ, None, Some(n as u32))
            .map_err(|e| decode_error("sharing the cached context", e))
    };
    let (mut logits, evaluated) = match known {
        Some(l) => {
            share(ctx, context.len())?;
            (l.to_vec(), 0)
        }
        None => {
            let cached = mirror
                .tokens
                .iter()
                .zip(context)
                .take_while(|(a, b)| a == b)
                .count();
            // At least the last token is evaluated: its logits are the step's.
            let keep = cached.min(context.len() - 1);
            share(ctx, keep)?;
            let rest = &context[keep..];
            let n_batch = batch_capacity(ctx);
            let mut batch = LlamaBatch::new(n_batch, 1);
            for (c, chunk) in rest.chunks(n_batch).enumerate() {
                batch.clear();
                let last_chunk = (c + 1) * n_batch >= rest.len();
                for (i, &t) in chunk.iter().enumerate() {
                    let pos = keep + c * n_batch + i;
                    let wants = last_chunk && i + 1 == chunk.len();
                    batch
                        .add(LlamaToken(t), pos as i32, &[SCORING_SEQ], wants)
                        .map_err(|e| decode_error("evaluating the context", e))?;
                }
                ctx.decode(&mut batch)
                    .map_err(|e| decode_error("evaluating the context", e))?;
            }
            // The last token's place in the last batch.
            let last = (rest.len() - 1) % n_batch;
            (ctx.get_logits_ith(last as i32).to_vec(), rest.len())
        }
    };
    let mut topk = TopK::default();
    let lse = topk.summarize(&logits, 0).lse;
    let probe = req
        .probe
        .iter()
        .filter_map(|&id| standing(&logits, lse, id))
        .collect();
    let mut tokens = Vec::with_capacity(text.len());
    let mut batch = LlamaBatch::new(1, 1);
    for (i, &t) in text.iter().enumerate() {
        let lse = if i == 0 {
            lse
        } else {
            topk.summarize(&logits, 0).lse
        };
        let s = standing(&logits, lse, t).ok_or_else(|| {
            EngineError::Refused(Words::tr_args(
                "engine-ask-text-token",
                "the text gave token id { $id }, outside the vocabulary",
                &[("id", &t)],
            ))
        })?;
        tokens.push(s);
        if i + 1 < text.len() {
            batch.clear();
            let pos = (context.len() + i) as i32;
            batch
                .add(LlamaToken(t), pos, &[SCORING_SEQ], true)
                .map_err(|e| decode_error("forcing the text", e))?;
            ctx.decode(&mut batch)
                .map_err(|e| decode_error("forcing the text", e))?;
            logits = ctx.get_logits_ith(0).to_vec();
        }
    }
    let ln_p = tokens.iter().map(|s| s.ln_p).sum();
    Ok((
        TextAnswer {
            tokens,
            ln_p,
            probe,
            completion: None,
        },
        evaluated,
    ))
}
