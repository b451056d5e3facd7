//! One generation request on one slot, as a state machine over the slot's
//! context: fit the prompt, reuse the KV cache, prefill in chunks, then one
//! token at a time (sampled, or forced by the caller), reading the inbox
//! between tokens for steers ([`super::api::Steer`]) and cancels.

use std::collections::VecDeque;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;

use super::api::{
    Distribution, EngineError, Event, GenerateRequest, MAX_CANDIDATES, ReplyPrefix, RequestId,
    SCORE_CHUNK, SlotId, Stats, Steer, StopReason, Surprise, SurpriseStop, TokenId, TokenStep,
    Words,
};
use super::decode::{self, Outcome, batch_capacity, decode_error, keep_cache};
use super::inbox::{Control, Emit, Inbox};
use super::lens::Lens;
use super::lens_request;
use super::probs::TopK;
use super::prompt;
use super::prompt_scores;
use super::sampler::{p_in, sampler_chain, vocab_array};
use super::session::{KvMirror, PositionLogits};
use super::slot::{Slot, check_ids};
use super::text_answer;
use crate::text::Utf8Assembler;

/// Serves `req` on `slot`. However it ends, bytes of a character left
/// unfinished are sent as U+FFFD in an [`Event::Tail`] before the final event
/// (which the caller sends), so the reply's text never silently loses bytes.
pub(super) fn generate(
    slot: &mut Slot,
    slot_id: SlotId,
    request: RequestId,
    req: &GenerateRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Outcome {
    // From the request's start: building the prompt counts towards the TTFT.
    let t_start = Instant::now();
    let mut utf8 = Utf8Assembler::default();
    let outcome = match prepare(slot, req) {
        Ok(plan) => {
            let info_ctx_requested = slot.info.n_ctx_requested as usize;
            // The slot's lens, lent to the reply for a lens asked for in a
            // pause (the context borrows the rest of the slot); given back after.
            let mut lens = slot.lens.take();
            let info = slot.info.clone();
            let outcome = slot.with_context(|model, ctx, mirror| {
                let mut g = Generation {
                    model,
                    ctx,
                    mirror,
                    slot: slot_id,
                    request,
                    req,
                    inbox,
                    emit,
                    utf8: &mut utf8,
                    ctx_requested: info_ctx_requested,
                    t_start,
                    t_first: None,
                    paused_s: 0.0,
                    inspector_s: 0.0,
                    n_generated: 0,
                    n_forced: 0,
                    index_base: 0,
                    first_logits: None,
                    lens: (&mut lens, &info),
                };
                g.run(plan)
            });
            slot.lens = lens;
            outcome
        }
        Err(e) => Outcome::Failed(e),
    };
    let text = utf8.finish();
    if !text.is_empty() {
        emit(Event::Tail { request, text });
    }
    outcome
}

/// The prompt of a request, fitted to the context, and its reply prefix.
struct Plan {
    fitted: prompt::FittedPrompt,
    prefix: Vec<TokenId>,
}

fn prepare(slot: &Slot, req: &GenerateRequest) -> Result<Plan, EngineError> {
    req.sampling
        .validate()
        .map_err(|e| EngineError::Refused(e.words()))?;
    if req.top_k_inspect > MAX_CANDIDATES {
        return Err(EngineError::Refused(Words::tr_args(
            "engine-too-many-candidates",
            "invalid number of candidates { $n }: must be at most { $max }",
            &[("n", &req.top_k_inspect), ("max", &MAX_CANDIDATES)],
        )));
    }
    let model = slot.model();
    let prefix = match &req.prefix {
        ReplyPrefix::None => Vec::new(),
        ReplyPrefix::Text(text) => prompt::tokenize_plain(model, text),
        ReplyPrefix::Tokens(ids) => ids.clone(),
    };
    check_ids(model, &prefix)?;
    let n_ctx = slot.info.n_ctx as usize;
    // Room for the prefix and at least a short reply; drop the oldest turns until it fits.
    let reserve = prefix.len() + (req.max_tokens as usize).clamp(1, (n_ctx / 4).max(1));
    let fitted = prompt::fit(slot, &req.messages, req.raw, n_ctx, reserve)?;
    let n_all = fitted.tokens.len() + prefix.len();
    if n_all >= n_ctx {
        return Err(EngineError::PromptTooLong {
            n_prompt: n_all,
            n_ctx,
        });
    }
    if n_all == 0 {
        return Err(EngineError::EmptyPrompt);
    }
    Ok(Plan { fitted, prefix })
}

/// What comes next in the reply.
enum Next {
    Sample,
    Forced(TokenId),
}

struct Generation<'a, 'm> {
    model: &'m LlamaModel,
    ctx: &'a mut LlamaContext<'m>,
    mirror: &'a mut KvMirror,
    /// The slot it runs on: a prompt scoring for it is served in a pause.
    slot: SlotId,
    request: RequestId,
    req: &'a GenerateRequest,
    inbox: &'a mut Inbox,
    emit: &'a Emit,
    utf8: &'a mut Utf8Assembler,
    ctx_requested: usize,
    t_start: Instant,
    t_first: Option<f64>,
    /// Seconds spent waiting for the caller while paused (not generation time).
    paused_s: f64,
    inspector_s: f64,
    n_generated: usize,
    n_forced: usize,
    /// Reply tokens before the first reported one (an unscored prefix).
    index_base: usize,
    /// The logits the first token is drawn from when they were kept from an
    /// earlier request ([`KvMirror::prompt_end`]) instead of evaluated;
    /// `None` after the first decode (then the context's own are read).
    first_logits: Option<Vec<f32>>,
    /// The slot's lens and model, for a lens served in a pause.
    lens: (&'a mut Option<Lens>, &'a super::api::ModelInfo),
}

/// Reusable buffers of the per-token path.
struct Scratch {
    topk: TopK,
    buf: Vec<LlamaTokenData>,
}

impl Generation<'_, '_> {
    fn cancelled(&self) -> bool {
        self.inbox.is_cancelled(self.request)
    }

    fn run(&mut self, plan: Plan) -> Outcome {
        let Plan { fitted, prefix } = plan;
        let prompt_ids: Vec<TokenId> = fitted.tokens.iter().map(|t| t.id).collect();
        let all: Vec<TokenId> = prompt_ids.iter().chain(&prefix).copied().collect();
        // A scored prefix goes through the token loop as forced tokens, each
        // evaluated for its distribution; otherwise it is prefilled with the prompt.
        let (to_prefill, forced): (&[TokenId], VecDeque<TokenId>) =
            if self.req.score_prefix && !prompt_ids.is_empty() {
                (&prompt_ids, prefix.iter().copied().collect())
            } else {
                self.index_base = prefix.len();
                // Its bytes start the reply's text: a character it leaves
                // unfinished is completed by the first generated token.
                for t in &prefix {
                    if let Some(bytes) = self.reply_bytes(LlamaToken(*t)) {
                        self.utf8.push(&bytes);
                    }
                }
                (&all, VecDeque::new())
            };
        tracing::debug!(mode = ?fitted.mode, n = all.len(), ids = ?all, "prompt");
        // Positions whose score the caller shows: the tokens of a message.
        let scored: Vec<bool> = fitted.tokens.iter().map(|t| t.message.is_some()).collect();
        // A reply re-sampled from where the last one started: its first
        // distribution is the one kept, exactly, and nothing is evaluated.
        self.first_logits = self.mirror.logits_after(to_prefill).map(<[f32]>::to_vec);
        let keep = if self.first_logits.is_some() {
            keep_cache(self.ctx, self.mirror, to_prefill.len())
        } else {
            self.reuse(to_prefill, &scored)
        };
        let keep = match keep {
            Ok(k) => k,
            Err(e) => return Outcome::Failed(e),
        };
        (self.emit)(Event::Started {
            request: self.request,
            mode: fitted.mode,
            prompt: fitted.tokens,
            prefix,
            n_reused: keep,
            dropped_messages: fitted.dropped,
            note: fitted.note.map(Words::from),
        });
        let counts = Counts {
            n_prompt: to_prefill.len(),
            keep,
            dropped: fitted.dropped,
        };
        let t_prefill = Instant::now();
        let mut batch = LlamaBatch::new((self.ctx.n_batch() as usize).max(1), 1);
        match self.prefill(&to_prefill[keep..], keep, prompt_ids.len(), &mut batch) {
            Ok(Prefill::Done) => {}
            Ok(Prefill::Cancelled { evaluated }) => {
                let stats = self.stats(StopReason::Cancelled, &counts, evaluated, None);
                return Outcome::Cancelled(stats);
            }
            Err(e) => return Outcome::Failed(e),
        }
        let prefill_s = t_prefill.elapsed().as_secs_f64();
        let evaluated = to_prefill.len() - keep;
        let t_gen = Instant::now();
        match self.tokens(&all, forced, (batch.n_tokens() - 1).max(0)) {
            Ok(stop) => {
                let gen_s = (t_gen.elapsed().as_secs_f64() - self.paused_s).max(0.0);
                let stats = self.stats(stop, &counts, evaluated, Some((prefill_s, gen_s)));
                if stop == StopReason::Cancelled {
                    Outcome::Cancelled(stats)
                } else {
                    Outcome::Done(stats)
                }
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Drops what of the KV cache `tokens` cannot reuse; returns how many
    /// leading tokens are kept. With [`GenerateRequest::score_prompt`] one
    /// less when the first position to evaluate is `scored` (a message's
    /// token): the logits of the position before it are needed to score it.
    /// Never for a reply prefix or template text: a cached position evaluated
    /// again is not bit-identical (another batch split), and everything after
    /// it would shift (a branch would not continue from the numbers it forked from).
    fn reuse(&mut self, tokens: &[TokenId], scored: &[bool]) -> Result<usize, EngineError> {
        let mut keep = self.mirror.reusable(tokens);
        // A recurrent or hybrid model cannot drop a tail: shrinking would
        // clear its whole cache, so one position goes unscored instead.
        let can_trim = !(self.model.is_recurrent() || self.model.is_hybrid());
        if self.req.score_prompt && can_trim && scored.get(keep).copied().unwrap_or(false) {
            keep = keep.saturating_sub(1);
        }
        keep_cache(self.ctx, self.mirror, keep)
    }

    /// Evaluates `todo` from position `keep` in chunks of n_batch (logits for
    /// the last token only), checking for cancellation between chunks. With
    /// [`GenerateRequest::score_prompt`]: chunks of [`SCORE_CHUNK`] with the
    /// logits of every position, each chunk's scores sent as an
    /// [`Event::PromptScores`] before its progress. Positions from
    /// `n_prompt` on (a reply prefix) are evaluated one at a time, as they
    /// were when the reply was generated: a batch gives other last digits,
    /// and a branch would not go on from the numbers its fork had. The
    /// logits of the prompt's last position are kept ([`KvMirror::prompt_end`]).
    fn prefill(
        &mut self,
        todo: &[TokenId],
        keep: usize,
        n_prompt: usize,
        batch: &mut LlamaBatch,
    ) -> Result<Prefill, EngineError> {
        let scoring = self.req.score_prompt;
        let n_batch = batch_capacity(self.ctx);
        let chunk_len = if scoring {
            SCORE_CHUNK.min(n_batch)
        } else {
            n_batch
        };
        let mut done = 0;
        // The prompt's text as the scored tokens write it; the first
        // evaluated token is not scored, but its bytes start it.
        let mut text = Utf8Assembler::default();
        if scoring && let Some(&first) = todo.first() {
            text.push(&decode::piece(self.model, first));
        }
        let mut topk = TopK::default();
        let (prompt, prefix) = todo.split_at(n_prompt.saturating_sub(keep).min(todo.len()));
        for chunk in prompt.chunks(chunk_len).chain(prefix.chunks(1)) {
            if self.cancelled() {
                return Ok(Prefill::Cancelled { evaluated: done });
            }
            batch.clear();
            for (i, t) in chunk.iter().enumerate() {
                let pos = (keep + done + i) as i32;
                let last = done + i + 1 == todo.len() || pos as usize + 1 == n_prompt;
                batch
                    .add(LlamaToken(*t), pos, &[0], last || scoring)
                    .map_err(|e| decode_error("prefill", e))?;
            }
            if let Err(e) = self.ctx.decode(batch) {
                self.reset_cache();
                return Err(decode_error("prefill", e));
            }
            if scoring {
                // Logits at position p score the token at p + 1.
                let steps: Vec<TokenStep> = (0..chunk.len())
                    .filter_map(|i| {
                        let next = *todo.get(done + i + 1)?;
                        let logits = self.ctx.get_logits_ith(i as i32);
                        let piece = text.push(&decode::piece(self.model, next));
                        Some(decode::scored_step(
                            &mut topk,
                            logits,
                            self.req.top_k_inspect,
                            keep + done + i + 1,
                            next,
                            piece,
                        ))
                    })
                    .collect();
                if !steps.is_empty() {
                    (self.emit)(Event::PromptScores {
                        request: self.request,
                        steps,
                    });
                }
            }
            done += chunk.len();
            self.mirror.tokens.extend_from_slice(chunk);
            if keep + done == n_prompt {
                self.mirror.prompt_end = Some(PositionLogits {
                    pos: n_prompt - 1,
                    logits: self.ctx.get_logits_ith(batch.n_tokens() - 1).to_vec(),
                });
            }
            (self.emit)(Event::PrefillProgress {
                request: self.request,
                done,
                total: todo.len(),
            });
        }
        Ok(Prefill::Done)
    }

    /// The bytes `token` adds to the reply: a control token inside the reply
    /// (not EOG) as its text; `None` for EOG.
    fn reply_bytes(&self, token: LlamaToken) -> Option<Vec<u8>> {
        let vocab = self.model.vocab();
        (!vocab.is_eog(token)).then(|| vocab.token_to_piece(token, vocab.is_control(token), None))
    }

    /// The token loop. `context` is every token before the reply (for the
    /// repeat penalty's window), `forced` the scored prefix still to go.
    fn tokens(
        &mut self,
        context: &[TokenId],
        mut forced: VecDeque<TokenId>,
        mut logits_idx: i32,
    ) -> Result<StopReason, EngineError> {
        let req = self.req;
        let n_ctx = self.ctx.n_ctx() as usize;
        let n_vocab = self.model.n_vocab();
        let mut chain = sampler_chain(&req.sampling, n_vocab);
        if req.sampling.repeat_penalty != 1.0 {
            let window = context
                .len()
                .saturating_sub(forced.len())
                .saturating_sub(req.sampling.repeat_last_n as usize);
            for t in &context[window..context.len() - forced.len()] {
                chain.accept(LlamaToken(*t));
            }
        }
        let mut scratch = Scratch {
            topk: TopK::default(),
            buf: Vec::with_capacity(n_vocab as usize),
        };
        let mut batch = LlamaBatch::new(1, 1);
        let mut paused = req.paused;
        // Forced tokens (the prefix, and those forced by command) do not
        // count towards max_tokens: the caller asked for each of them.
        let mut budget = req.max_tokens as usize + forced.len();
        let mut pause_after = false;
        // Running to the next surprise: the thresholds (a pause's own draw,
        // the one the caller stood at when asking, goes unchecked: it is
        // made in the pause), and the surprise the next pause stands at.
        let mut surprise = req.stop_at_surprise;
        let mut hit: Option<Surprise> = None;
        loop {
            for c in self.inbox.poll(self.request) {
                match c {
                    Control::Stop => return Ok(StopReason::Cancelled),
                    // Only a paused reply is handed one (a running one queues it).
                    Control::ScorePrompt { .. }
                    | Control::Rollouts { .. }
                    | Control::Lens { .. }
                    | Control::AskText { .. } => {}
                    Control::Steer(Steer::Step) => pause_after = true,
                    // The forced tokens, then a pause (not one more sampled token).
                    Control::Steer(Steer::Force(t)) => {
                        forced.push_back(t);
                        budget += 1;
                        paused = true;
                        pause_after = false;
                    }
                    Control::Steer(Steer::ForceText(text)) => {
                        let ids = prompt::tokenize_plain(self.model, &text);
                        if !ids.is_empty() {
                            budget += ids.len();
                            forced.extend(ids);
                            paused = true;
                            pause_after = false;
                        }
                    }
                    Control::Steer(Steer::Run) => {
                        paused = false;
                        pause_after = false;
                        surprise = None;
                    }
                    Control::Steer(Steer::RunToSurprise(stop)) => {
                        paused = false;
                        pause_after = false;
                        surprise = Some(stop);
                    }
                }
            }
            if self.cancelled() {
                return Ok(StopReason::Cancelled);
            }
            if forced.is_empty() && self.n_generated >= budget {
                return Ok(StopReason::MaxTokens);
            }
            let next = if let Some(t) = forced.pop_front() {
                Next::Forced(t)
            } else if pause_after {
                pause_after = false;
                paused = true;
                Next::Sample
            } else if paused {
                let next = self.preview(&chain, &mut scratch, logits_idx);
                let t_wait = Instant::now();
                let paused_event = Event::Paused {
                    request: self.request,
                    n_generated: self.n_generated,
                    next,
                    surprise: hit.take(),
                };
                (self.emit)(paused_event.clone());
                let next = loop {
                    match self.inbox.wait(self.request, self.slot) {
                        Control::Stop => {
                            self.paused_s += t_wait.elapsed().as_secs_f64();
                            return Ok(StopReason::Cancelled);
                        }
                        Control::ScorePrompt { request, req } => {
                            // Scoring overwrites the context's logits: the
                            // next draw's are kept, as a re-sampled reply's are.
                            if self.first_logits.is_none() {
                                let kept = self.ctx.get_logits_ith(logits_idx).to_vec();
                                self.first_logits = Some(kept);
                            }
                            let event = prompt_scores::serve_in_pause(
                                (self.model, self.ctx, self.mirror),
                                (self.request, request),
                                &req,
                                self.ctx_requested,
                                self.inbox,
                                self.emit,
                            );
                            (self.emit)(event);
                            self.inbox.finish(request);
                            // A cancel that stopped the scoring was read there.
                            if self.cancelled() {
                                self.paused_s += t_wait.elapsed().as_secs_f64();
                                return Ok(StopReason::Cancelled);
                            }
                        }
                        Control::Rollouts { request, req } => {
                            // As a scoring: the next draw's logits are kept
                            // (the rollouts' batches overwrite the context's).
                            if self.first_logits.is_none() {
                                let kept = self.ctx.get_logits_ith(logits_idx).to_vec();
                                self.first_logits = Some(kept);
                            }
                            let logits = self.logits(logits_idx).to_vec();
                            let event = super::rollouts::serve_in_pause(
                                (self.model, &mut *self.ctx, &mut *self.mirror),
                                (self.request, request),
                                &req,
                                logits,
                                self.ctx_requested,
                                (&mut *self.inbox, self.emit),
                            );
                            (self.emit)(event);
                            self.inbox.finish(request);
                            if self.cancelled() {
                                self.paused_s += t_wait.elapsed().as_secs_f64();
                                return Ok(StopReason::Cancelled);
                            }
                        }
                        Control::Lens { request, req } => {
                            let (lens, info) = &mut self.lens;
                            let outcome = lens_request::serve_in_pause(
                                lens, info, request, &req, self.inbox, self.emit,
                            );
                            (self.emit)(outcome.into_event(request));
                            self.inbox.finish(request);
                        }
                        Control::AskText { request, req } => {
                            // As for a scoring: the next draw's logits are kept.
                            let next = match &self.first_logits {
                                Some(kept) => kept.clone(),
                                None => {
                                    let kept = self.ctx.get_logits_ith(logits_idx).to_vec();
                                    self.first_logits = Some(kept.clone());
                                    kept
                                }
                            };
                            let event = text_answer::serve_in_pause(
                                (self.model, self.ctx, self.mirror),
                                request,
                                &req,
                                &next,
                                self.ctx_requested,
                                self.emit,
                            );
                            (self.emit)(event);
                            self.inbox.finish(request);
                        }
                        Control::Steer(Steer::Step) => break Next::Sample,
                        Control::Steer(Steer::Force(t)) => {
                            budget += 1;
                            break Next::Forced(t);
                        }
                        Control::Steer(Steer::ForceText(text)) => {
                            let ids = prompt::tokenize_plain(self.model, &text);
                            budget += ids.len();
                            let mut ids = ids.into_iter();
                            if let Some(first) = ids.next() {
                                forced.extend(ids);
                                break Next::Forced(first);
                            }
                            // Text that gives no tokens: still paused, and says so.
                            (self.emit)(paused_event.clone());
                        }
                        Control::Steer(Steer::Run) => {
                            paused = false;
                            surprise = None;
                            break Next::Sample;
                        }
                        Control::Steer(Steer::RunToSurprise(stop)) => {
                            paused = false;
                            surprise = Some(stop);
                            break Next::Sample;
                        }
                    }
                };
                self.paused_s += t_wait.elapsed().as_secs_f64();
                next
            } else if let Some(stop) = surprise
                && let Some(s) = self.surprise_at(&chain, &mut scratch, logits_idx, stop)
            {
                // Paused before the draw: the loop comes round to the pause.
                hit = Some(s);
                paused = true;
                continue;
            } else {
                Next::Sample
            };
            if let Next::Forced(t) = next {
                check_ids(self.model, &[t])?;
            }
            let step = self.step(next, &mut chain, &mut scratch, logits_idx)?;
            let token = LlamaToken(step.id);
            let eog = self.model.vocab().is_eog(token);
            self.n_generated += 1;
            if step.forced {
                self.n_forced += 1;
            }
            if self.t_first.is_none() {
                self.t_first = Some(self.t_start.elapsed().as_secs_f64() - self.paused_s);
            }
            (self.emit)(Event::Token {
                request: self.request,
                step: Box::new(step),
            });
            if eog {
                return Ok(StopReason::Eog);
            }
            if self.mirror.tokens.len() >= n_ctx {
                return Ok(StopReason::ContextFull);
            }
            batch.clear();
            batch
                .add(token, self.mirror.tokens.len() as i32, &[0], true)
                .map_err(|e| decode_error("decode", e))?;
            if let Err(e) = self.ctx.decode(&mut batch) {
                self.reset_cache();
                return Err(decode_error("decode", e));
            }
            self.mirror.tokens.push(token.0);
            self.first_logits = None;
            logits_idx = 0;
        }
    }

    /// The distribution at `logits_idx` before anything is drawn (for
    /// [`Event::Paused`]): the model's, and the sampler's from a clone of
    /// `chain` (its random state cloned too, so the real draw is untouched);
    /// `None` when the inspector is off.
    fn preview(
        &mut self,
        chain: &LlamaSampler,
        scratch: &mut Scratch,
        logits_idx: i32,
    ) -> Option<Distribution> {
        let k = self.req.top_k_inspect;
        if k == 0 {
            return None;
        }
        let logits = self.logits(logits_idx);
        let summary = scratch.topk.summarize(logits, k);
        let arr = (!self.req.sampling.is_greedy()).then(|| {
            let mut a = vocab_array(logits, &mut scratch.buf);
            a.apply_sampler(&mut chain.clone());
            a
        });
        // Greedy takes the first candidate (ties go to the lower id, as sorted).
        let dist = summary.distribution(|i, id| {
            Some(match &arr {
                Some(a) => p_in(&a.data, id),
                None => (i == 0) as u8 as f32,
            })
        });
        if let Some(a) = arr {
            scratch.buf = a.data;
        }
        Some(dist)
    }

    /// The surprise at `logits_idx`, if the token the sampler would draw
    /// there is one under `stop`: the draw is made on a clone of `chain`
    /// (its random state cloned too), so the real draw after the pause is
    /// this token. Greedy takes the first candidate, as [`Self::step`] does.
    fn surprise_at(
        &mut self,
        chain: &LlamaSampler,
        scratch: &mut Scratch,
        logits_idx: i32,
        stop: SurpriseStop,
    ) -> Option<Surprise> {
        let logits = self.logits(logits_idx);
        let summary = scratch.topk.summarize(logits, 1);
        let id = if self.req.sampling.is_greedy() {
            summary.top.first()?.0
        } else {
            let mut arr = vocab_array(logits, &mut scratch.buf);
            arr.apply_sampler(&mut chain.clone());
            let id = arr.selected_token()?.0;
            scratch.buf = arr.data;
            id
        };
        let logits = self.logits(logits_idx);
        let p = (logits[id as usize] - summary.lse).exp();
        stop.is_surprise(p, summary.entropy_bits)
            .then_some(Surprise {
                id,
                p,
                entropy: summary.entropy_bits,
                stop,
            })
    }

    /// The next token (sampled or forced) with what the model predicted.
    fn step(
        &mut self,
        next: Next,
        chain: &mut LlamaSampler,
        scratch: &mut Scratch,
        logits_idx: i32,
    ) -> Result<TokenStep, EngineError> {
        let req = self.req;
        let k = req.top_k_inspect;
        let (token, p_sampled, dist) = if k == 0 {
            let token = match next {
                // Logits kept from an earlier request: the same chain on them.
                Next::Sample if self.first_logits.is_some() => {
                    let mut arr = vocab_array(self.logits(logits_idx), &mut scratch.buf);
                    arr.apply_sampler(chain);
                    let token = arr
                        .selected_token()
                        .ok_or_else(EngineError::no_sampled_token)?;
                    scratch.buf = arr.data;
                    chain.accept(token);
                    token
                }
                // llama.cpp's own sample (it accepts the token itself).
                Next::Sample => chain.sample(self.ctx, logits_idx),
                Next::Forced(t) => {
                    chain.accept(LlamaToken(t));
                    LlamaToken(t)
                }
            };
            (token, None, None)
        } else {
            let logits = self.logits(logits_idx);
            let t0 = Instant::now();
            let summary = scratch.topk.summarize(logits, k);
            let (token, p_sampled, dist) = match next {
                // No draw: nothing has a sampled probability.
                Next::Forced(t) => (LlamaToken(t), None, summary.distribution(|_, _| None)),
                Next::Sample => {
                    // The candidate array and the draw are not the inspector's
                    // cost: llama.cpp builds the same array and runs the same
                    // chain when the inspector is off.
                    let t_draw = Instant::now();
                    let mut arr = vocab_array(logits, &mut scratch.buf);
                    arr.apply_sampler(chain);
                    self.inspector_s -= t_draw.elapsed().as_secs_f64();
                    let token = arr
                        .selected_token()
                        .ok_or_else(EngineError::no_sampled_token)?;
                    let greedy = req.sampling.is_greedy();
                    let ps = |id: i32| {
                        Some(if greedy {
                            if id == token.0 { 1.0 } else { 0.0 }
                        } else {
                            p_in(&arr.data, id)
                        })
                    };
                    let dist = summary.distribution(|_, id| ps(id));
                    let p = ps(token.0);
                    scratch.buf = arr.data;
                    (token, p, dist)
                }
            };
            chain.accept(token);
            self.inspector_s += t0.elapsed().as_secs_f64();
            (token, p_sampled, Some(dist))
        };
        let logit = self.logits(logits_idx)[token.0 as usize];
        let text = match self.reply_bytes(token) {
            Some(bytes) => self.utf8.push(&bytes),
            None => String::new(),
        };
        Ok(TokenStep {
            index: self.index_base + self.n_generated,
            id: token.0,
            forced: matches!(next, Next::Forced(_)),
            text,
            logit: Some(logit),
            p_sampled,
            dist,
        })
    }

    /// The logits at batch index `idx` of the last decode, or those kept
    /// for the first token ([`Generation::first_logits`]).
    fn logits(&self, idx: i32) -> &[f32] {
        match &self.first_logits {
            Some(l) => l,
            None => self.ctx.get_logits_ith(idx),
        }
    }

    /// After a failed decode the cache holds an unknown state: empty it.
    fn reset_cache(&mut self) {
        self.ctx.clear_kv_cache();
        self.mirror.clear();
    }

    fn stats(
        &self,
        stop: StopReason,
        c: &Counts,
        evaluated: usize,
        times: Option<(f64, f64)>,
    ) -> Stats {
        let (prefill_s, gen_s) = times.unwrap_or((0.0, 0.0));
        let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        Stats {
            stop,
            n_prompt: c.n_prompt,
            n_prompt_evaluated: evaluated,
            n_prompt_reused: c.keep,
            n_generated: self.n_generated,
            n_forced: self.n_forced,
            ttft_ms: self
                .t_first
                .unwrap_or_else(|| self.t_start.elapsed().as_secs_f64() - self.paused_s)
                * 1000.0,
            prompt_tps: rate(evaluated, prefill_s),
            gen_tps: rate(self.n_generated, gen_s),
            dropped_messages: c.dropped,
            ctx_used: self.mirror.tokens.len(),
            ctx_size: self.ctx.n_ctx() as usize,
            ctx_requested: self.ctx_requested,
            inspector_us_per_token: if self.n_generated > 0 {
                self.inspector_s * 1e6 / self.n_generated as f64
            } else {
                0.0
            },
        }
    }
}

/// How a prefill ended.
enum Prefill {
    Done,
    Cancelled { evaluated: usize },
}

struct Counts {
    n_prompt: usize,
    keep: usize,
    dropped: usize,
}
