//! Scoring a text ([`Command::Score`](super::api::Command::Score)): the
//! model's probability of each of its tokens given the ones before, from the
//! logits of every position, fetched [`SCORE_CHUNK`] positions at a time.
//! A text longer than the context is scored in overlapping windows, each
//! evaluated from scratch; every token is scored once, in the window that
//! gives it the most context.

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::api::{
    ChatMode, EngineError, Event, MAX_CANDIDATES, PromptToken, RequestId, Role, SCORE_CHUNK,
    ScoreRequest, Stats, StopReason, TokenId, Words,
};
use super::decode::{Outcome, batch_capacity, decode_error, keep_cache, piece, scored_step};
use super::inbox::{Emit, Inbox};
use super::probs::TopK;
use super::prompt;
use super::session::KvMirror;
use super::slot::{Slot, valid_token};
use crate::text::Utf8Assembler;

/// One evaluation of part of the token list: `[BOS] + tokens[begin..end]`
/// (the BOS, `tokens[0]`, only when `lead` is set), scoring the tokens at
/// `score_from..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Window {
    pub lead: bool,
    pub begin: usize,
    pub end: usize,
    pub score_from: usize,
}

impl Window {
    /// The tokens evaluated, position by position.
    pub(super) fn seq(&self, tokens: &[TokenId]) -> Vec<TokenId> {
        let lead = self.lead.then_some(tokens[0]);
        lead.into_iter()
            .chain(tokens[self.begin..self.end].iter().copied())
            .collect()
    }

    /// Position in the window of token `index` of the list.
    pub(super) fn local(&self, index: usize) -> usize {
        index - self.begin + usize::from(self.lead)
    }

    /// Index in the list of the token at position `q` of the window.
    pub(super) fn global(&self, q: usize) -> usize {
        if self.lead {
            if q == 0 { 0 } else { self.begin + q - 1 }
        } else {
            self.begin + q
        }
    }

    /// First position of the window whose logits are needed.
    fn first_logits(&self) -> usize {
        self.local(self.score_from - 1)
    }
}

/// How `n` tokens are scored in a context of `n_ctx`: one window when they
/// fit, else windows of `n_ctx` positions moving by `n_ctx / 2`, each after
/// the first starting with the BOS again when `bos` (the list starts with
/// one). Every token from index 1 on is scored by exactly one window, with
/// at least `n_ctx / 2 - 1` tokens before it in that window.
pub(super) fn windows(n: usize, n_ctx: usize, bos: bool) -> Vec<Window> {
    let n_ctx = n_ctx.max(4);
    let mut end = n.min(n_ctx);
    let mut out = vec![Window {
        lead: false,
        begin: 0,
        end,
        score_from: 1,
    }];
    let lead = usize::from(bos);
    let stride = n_ctx / 2;
    let mut begin = 0;
    while end < n {
        begin += stride;
        let next = (begin + n_ctx - lead).min(n);
        out.push(Window {
            lead: bos,
            begin,
            end: next,
            score_from: end,
        });
        end = next;
    }
    out
}

/// Serves a [`ScoreRequest`] on `slot` (see the contract on [`Event`]).
pub(super) fn score(
    slot: &mut Slot,
    request: RequestId,
    req: &ScoreRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Outcome {
    let t_start = Instant::now();
    let mut utf8 = Utf8Assembler::default();
    let outcome = match tokens_of(slot.model(), req) {
        Ok((tokens, bos)) => {
            let ctx_requested = slot.info.n_ctx_requested as usize;
            slot.with_context(|model, ctx, mirror| {
                Scoring {
                    model,
                    ctx,
                    mirror,
                    request,
                    k: req.top_k_inspect,
                    inbox,
                    emit,
                    utf8: &mut utf8,
                    t_start,
                    t_first: None,
                    inspector_s: 0.0,
                    n_scored: 0,
                    n_tokens: tokens.len(),
                    topk: TopK::default(),
                    evaluated: 0,
                    reused: 0,
                    ctx_requested,
                }
                .run(&tokens, bos)
            })
        }
        Err(e) => Outcome::Failed(e),
    };
    let text = utf8.finish();
    if !text.is_empty() {
        emit(Event::Tail { request, text });
    }
    outcome
}

/// The tokens to score (the BOS first when asked for and the model uses
/// one) and whether a BOS was put in front.
pub(super) fn tokens_of(
    model: &LlamaModel,
    req: &ScoreRequest,
) -> Result<(Vec<TokenId>, bool), EngineError> {
    if req.top_k_inspect > MAX_CANDIDATES {
        return Err(EngineError::Refused(Words::tr_args(
            "engine-too-many-candidates",
            "invalid number of candidates { $n }: must be at most { $max }",
            &[("n", &req.top_k_inspect), ("max", &MAX_CANDIDATES)],
        )));
    }
    let text = prompt::tokenize_plain(model, &req.text);
    if text.is_empty() {
        return Err(EngineError::Refused(Words::tr(
            "engine-score-empty",
            "the text to score is empty",
        )));
    }
    let vocab = model.vocab();
    let bos = req.bos && vocab.should_add_bos() && valid_token(model, vocab.bos());
    let mut tokens = Vec::with_capacity(text.len() + 1);
    if bos {
        tokens.push(vocab.bos().0);
    }
    tokens.extend(text);
    if tokens.len() < 2 {
        return Err(EngineError::Refused(Words::tr(
            "engine-score-one-token",
            "the text is a single token and there is no BOS before it: nothing to score (a token is scored from the ones before it)",
        )));
    }
    Ok((tokens, bos))
}

struct Scoring<'a, 'm> {
    model: &'m LlamaModel,
    ctx: &'a mut LlamaContext<'m>,
    mirror: &'a mut KvMirror,
    request: RequestId,
    k: usize,
    inbox: &'a mut Inbox,
    emit: &'a Emit,
    utf8: &'a mut Utf8Assembler,
    t_start: Instant,
    t_first: Option<f64>,
    inspector_s: f64,
    n_scored: usize,
    /// Tokens of the text, the BOS included.
    n_tokens: usize,
    topk: TopK,
    evaluated: usize,
    /// Positions of the first window reused from the KV cache.
    reused: usize,
    ctx_requested: usize,
}

impl Scoring<'_, '_> {
    fn run(&mut self, tokens: &[TokenId], bos: bool) -> Outcome {
        let n_ctx = self.ctx.n_ctx() as usize;
        let windows = windows(tokens.len(), n_ctx, bos);
        // What each window can reuse: the first from the cache as it is, the
        // others from the window before (the BOS, when it leads both).
        let mut keeps = Vec::with_capacity(windows.len());
        let mut cached = self.mirror.clone();
        for w in &windows {
            let seq = w.seq(tokens);
            keeps.push(cached.reusable(&seq).min(w.first_logits()));
            cached.tokens = seq;
        }
        let mut total: usize = windows
            .iter()
            .zip(&keeps)
            .map(|(w, k)| w.seq(tokens).len() - k)
            .sum();
        // Words, not text: the parent shows it in its language and writes
        // it in English into the JSONL summary.
        let note = (windows.len() > 1).then(|| {
            Words::tr_args(
                "engine-score-windows",
                "the text is { $n } tokens, more than the context of { $ctx }: scored in { $windows } overlapping windows of up to { $ctx } tokens, each evaluated from scratch; every token is scored once, with at least { $before } tokens before it",
                &[
                    ("n", &tokens.len()),
                    ("ctx", &n_ctx),
                    ("windows", &windows.len()),
                    ("before", &(n_ctx - n_ctx / 2)),
                ],
            )
        });
        let keep = match keep_cache(self.ctx, self.mirror, keeps[0]) {
            Ok(k) => k,
            Err(e) => return Outcome::Failed(e),
        };
        total += keeps[0] - keep;
        self.reused = keep;
        (self.emit)(Event::Started {
            request: self.request,
            mode: ChatMode::Plain,
            prompt: tokens
                .iter()
                .enumerate()
                .map(|(i, &id)| {
                    let bos_token = bos && i == 0;
                    PromptToken {
                        id,
                        message: (!bos_token).then_some(0),
                        role: (!bos_token).then_some(Role::User),
                    }
                })
                .collect(),
            prefix: Vec::new(),
            n_reused: keep,
            dropped_messages: 0,
            note,
        });
        if !bos {
            // The first token is not scored, but its bytes start the text.
            self.utf8.push(&piece(self.model, tokens[0]));
        }
        let t_eval = Instant::now();
        let mut done = 0;
        let mut batch = LlamaBatch::new(batch_capacity(self.ctx), 1);
        for (i, w) in windows.iter().enumerate() {
            let keep = if i == 0 {
                keep
            } else {
                let k = match keep_cache(self.ctx, self.mirror, keeps[i]) {
                    Ok(k) => k,
                    Err(e) => return Outcome::Failed(e),
                };
                total += keeps[i] - k;
                k
            };
            match self.window(tokens, w, keep, &mut batch, &mut done, total) {
                Ok(true) => {}
                Ok(false) => return Outcome::Cancelled(self.stats(t_eval)),
                Err(e) => return Outcome::Failed(e),
            }
        }
        Outcome::Done(self.stats(t_eval))
    }

    /// Evaluates window `w` from position `keep` (the cache holds the ones
    /// before): its context part in batches of n_batch without logits, then
    /// the positions whose logits score a token in batches of
    /// [`SCORE_CHUNK`], sending each chunk's tokens. False when cancelled.
    fn window(
        &mut self,
        tokens: &[TokenId],
        w: &Window,
        keep: usize,
        batch: &mut LlamaBatch,
        done: &mut usize,
        total: usize,
    ) -> Result<bool, EngineError> {
        let seq = w.seq(tokens);
        let first = w.first_logits();
        let n_batch = batch_capacity(self.ctx);
        let mut q = keep;
        while q < seq.len() {
            if self.inbox.is_cancelled(self.request) {
                return Ok(false);
            }
            let logits = q >= first;
            let len = if logits {
                SCORE_CHUNK.min(n_batch)
            } else {
                n_batch.min(first - q)
            };
            let chunk = &seq[q..(q + len).min(seq.len())];
            batch.clear();
            for (i, t) in chunk.iter().enumerate() {
                batch
                    .add(LlamaToken(*t), (q + i) as i32, &[0], logits)
                    .map_err(|e| decode_error("scoring", e))?;
            }
            if let Err(e) = self.ctx.decode(batch) {
                self.ctx.clear_kv_cache();
                self.mirror.clear();
                return Err(decode_error("scoring", e));
            }
            self.mirror.tokens.extend_from_slice(chunk);
            if logits {
                for (i, _) in chunk.iter().enumerate() {
                    let next = q + i + 1;
                    if next >= seq.len() {
                        break;
                    }
                    let index = w.global(next);
                    let id = seq[next];
                    let t0 = Instant::now();
                    let text = self.utf8.push(&piece(self.model, id));
                    let logits = self.ctx.get_logits_ith(i as i32);
                    let step = scored_step(&mut self.topk, logits, self.k, index, id, text);
                    self.inspector_s += t0.elapsed().as_secs_f64();
                    self.n_scored += 1;
                    if self.t_first.is_none() {
                        self.t_first = Some(self.t_start.elapsed().as_secs_f64());
                    }
                    (self.emit)(Event::Token {
                        request: self.request,
                        step: Box::new(step),
                    });
                }
            }
            q += chunk.len();
            *done += chunk.len();
            self.evaluated += chunk.len();
            (self.emit)(Event::PrefillProgress {
                request: self.request,
                done: *done,
                total,
            });
        }
        Ok(true)
    }

    fn stats(&self, t_eval: Instant) -> Stats {
        let s = t_eval.elapsed().as_secs_f64();
        let rate = |n: usize| if s > 0.0 { n as f64 / s } else { 0.0 };
        Stats {
            stop: StopReason::Eog,
            n_prompt: self.n_tokens,
            n_prompt_evaluated: self.evaluated,
            n_prompt_reused: self.reused,
            n_generated: self.n_scored,
            n_forced: self.n_scored,
            ttft_ms: self
                .t_first
                .unwrap_or_else(|| self.t_start.elapsed().as_secs_f64())
                * 1000.0,
            prompt_tps: rate(self.evaluated),
            gen_tps: rate(self.n_scored),
            dropped_messages: 0,
            ctx_used: self.mirror.tokens.len(),
            ctx_size: self.ctx.n_ctx() as usize,
            ctx_requested: self.ctx_requested,
            inspector_us_per_token: if self.n_scored > 0 {
                self.inspector_s * 1e6 / self.n_scored as f64
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which window scores each index, checking each is scored once, in order.
    fn coverage(n: usize, n_ctx: usize, bos: bool) -> Vec<Window> {
        let ws = windows(n, n_ctx, bos);
        let mut next = 1;
        for w in &ws {
            assert_eq!(w.score_from, next, "{ws:?}");
            assert!(w.end > w.score_from || n == 1, "{ws:?}");
            let len = w.end - w.begin + usize::from(w.lead);
            assert!(len <= n_ctx, "window larger than the context: {w:?}");
            assert!(
                w.score_from > w.begin,
                "the token before is in the window: {w:?}"
            );
            // Context before each scored token of a later window: half of it.
            let ctx = w.local(w.score_from);
            assert!(w.begin == 0 || ctx >= n_ctx / 2, "{w:?}: {ctx}");
            next = w.end;
        }
        assert_eq!(next, n, "every token scored");
        ws
    }

    #[test]
    fn a_text_that_fits_is_one_window() {
        let ws = coverage(100, 256, true);
        assert_eq!(
            ws,
            [Window {
                lead: false,
                begin: 0,
                end: 100,
                score_from: 1
            }]
        );
        assert_eq!(ws[0].first_logits(), 0);
        assert_eq!(coverage(256, 256, false).len(), 1);
    }

    #[test]
    fn a_longer_text_is_scored_once_per_token_in_overlapping_windows() {
        for bos in [false, true] {
            for n in [257, 300, 511, 512, 513, 1000, 2049] {
                let ws = coverage(n, 256, bos);
                assert!(ws.len() >= 2);
                assert!(ws.iter().skip(1).all(|w| w.lead == bos));
            }
        }
        let ws = windows(600, 256, true);
        assert_eq!(
            ws[1],
            Window {
                lead: true,
                begin: 128,
                end: 383,
                score_from: 256
            }
        );
        // [BOS] + tokens[128..383]: token 255 (the one before the first
        // scored) sits at position 128.
        assert_eq!(ws[1].first_logits(), 128);
        assert_eq!(ws[1].global(0), 0);
        assert_eq!(ws[1].global(128), 255);
        let seq = ws[1].seq(&(0..600).collect::<Vec<_>>());
        assert_eq!(seq.len(), 256);
        assert_eq!((seq[0], seq[1], seq[255]), (0, 128, 382));
    }
}
