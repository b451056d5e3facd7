//! What the engine sends back: the [`Event`]s of each request (their order
//! is the contract, see [`Event`]), with each token's step and distribution
//! and a request's final stats.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ask::TextAnswer;
use super::error::{EngineError, Words};
use super::ids::{RequestId, SlotId, TokenId};
use super::lens::LensResult;
use super::model::{Capabilities, ChatMode, ModelInfo, Vocab};
use super::request::{Role, SurpriseStop};
use crate::engine::report::CrashReport;

/// One compared token ([`Event::Compared`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// Position of the token in the sequence evaluated (BOS or prompt included).
    pub index: usize,
    /// The token compared (the one at `index`, predicted from those before).
    pub id: TokenId,
    /// ln p of this token under each model, in request order (nats, ≤ 0).
    pub ln_p: Vec<f64>,
    /// Each model's most likely token at this position (ties: lower id).
    pub top1: Vec<TokenId>,
    /// KL(A‖B) in nats over the full vocabulary, for each other model B in
    /// request order (A itself left out): Σ_v p_A(v) (ln p_A(v) − ln p_B(v)),
    /// from both models' logits in f64. Rounding can make it slightly
    /// negative (≈ −1e-7) where the models agree.
    pub kl: Vec<f64>,
    /// Each model's [`CompareRequest::top_k`](super::CompareRequest::top_k) most likely tokens at this
    /// position, in request order: (id, ln p in nats), most likely first
    /// (ties: lower id). Empty when `top_k` is 0.
    #[serde(default)]
    pub top: Vec<Vec<(TokenId, f64)>>,
    /// For each other model B in request order (A left out): ln p_B (nats)
    /// of each of A's top tokens, in `top[0]`'s order — what B thinks of
    /// the tokens A considered, exact over B's full vocabulary. Empty when
    /// `top_k` is 0.
    #[serde(default)]
    pub ln_p_of_a_top: Vec<Vec<f64>>,
}

/// A prompt token and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptToken {
    pub id: TokenId,
    /// Index in [`GenerateRequest::messages`](super::GenerateRequest::messages) of the turn this token belongs
    /// to: template text before a message's content (this turn's header)
    /// counts as that message's, and so does its closing (an end-of-generation
    /// token right after the content, `<|im_end|>`, and the line break after
    /// it); `None` for what follows the last message's closing (the
    /// template's opening of the reply) and for a BOS added in front.
    pub message: Option<u32>,
    /// Role of that message.
    pub role: Option<Role>,
}

/// A candidate for a token: the model's logit, and the probability under the
/// distribution the sampler drew from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: TokenId,
    /// Raw logit; probability = `exp(logit - lse)` ([`Distribution::p`]).
    pub logit: f32,
    /// Probability after the sampler chain (penalties, top-k/top-p/min-p,
    /// temperature): 0 when cut off; `None` for a forced token (no draw).
    pub p_sampled: Option<f32>,
}

/// What the model predicted at one position: the top candidates by logit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// log Σ exp(logit) over the vocabulary (see [`Capabilities::full_distribution`]).
    pub lse: f32,
    /// Entropy of the model's distribution, in bits; `None` when the backend
    /// cannot compute it.
    pub entropy: Option<f32>,
    /// Largest logits first (ties by lower id); at most the request's `top_k_inspect`.
    pub top: Vec<Candidate>,
}

impl Distribution {
    /// Probability of a token with `logit`: `exp(logit - lse)`.
    pub fn p(&self, logit: f32) -> f32 {
        (logit - self.lse).exp()
    }
}

/// Why a reply running to the next surprise paused
/// ([`Steer::RunToSurprise`](super::Steer::RunToSurprise)): the draw it
/// stands before.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Surprise {
    /// The token the sampler will draw here (unless another is forced).
    pub id: TokenId,
    /// Its probability under the model.
    pub p: f32,
    /// The entropy of the model's distribution here, in bits.
    pub entropy: f32,
    /// The thresholds it crossed.
    pub stop: SurpriseStop,
}

/// One token of a rollout ([`Rollout`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutToken {
    pub id: TokenId,
    /// Its text in the rollout (a character split across tokens is whole on
    /// the token that ends it; an end-of-generation token writes nothing).
    pub text: String,
    /// Its probability under the model (softmax of the logits over the
    /// whole vocabulary, before any sampler), 0 to 1.
    pub p: f32,
    /// Its raw logit (`p = exp(logit - dist.lse)`).
    #[serde(default)]
    pub logit: f32,
    /// Its probability under the rollout's sampler chain (greedy: 1 for the
    /// token drawn, 0 for the others); `None` for the first token, the
    /// candidate, which is given rather than drawn. (Every field is always
    /// written: the engine's frames are postcard, which cannot skip one.)
    #[serde(default)]
    pub p_sampled: Option<f32>,
    /// The model's distribution where this token was drawn (its top
    /// [`RolloutRequest::top_k_inspect`](super::RolloutRequest::top_k_inspect)
    /// candidates, each with its sampled probability, the log-sum-exp and
    /// the entropy), as a reply's [`TokenStep::dist`]; `None` when the
    /// request asked for none (`top_k_inspect` 0).
    #[serde(default)]
    pub dist: Option<Distribution>,
}

impl RolloutToken {
    /// This token as the reply token at `index` would hold it: the
    /// candidate (`forced`: given, not drawn) or a token drawn after it,
    /// with its logit and, when the request asked for them, the
    /// distribution it was drawn from and its sampled p.
    pub fn step(&self, index: usize, forced: bool) -> TokenStep {
        TokenStep {
            index,
            id: self.id,
            forced,
            text: self.text.clone(),
            logit: Some(self.logit),
            p_sampled: self.p_sampled,
            dist: self.dist.clone(),
        }
    }
}

/// Where one of the top candidates leads: its first token, then what the
/// rollout drew after it, up to the request's `m` tokens or an
/// end-of-generation token (included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// 1 = the most likely candidate.
    pub rank: usize,
    /// The first is the candidate; never empty.
    pub tokens: Vec<RolloutToken>,
    /// Σ ln p over `tokens` (nats): the model's log-probability of the
    /// whole rollout given the context.
    pub log_likelihood: f64,
    /// Mean of `p` over `tokens`.
    pub mean_p: f64,
}

/// One token of the reply, with what the model considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenStep {
    /// Position in the reply, 0-based (forced tokens included).
    pub index: usize,
    pub id: TokenId,
    /// Given by the caller (reply prefix or [`Steer::Force`](super::Steer::Force)), not sampled.
    pub forced: bool,
    /// Text this token completes in the reply after UTF-8 assembly (may be empty
    /// when the token ends inside a multi-byte character; if the reply ends
    /// there, [`Event::Tail`] carries the rest); empty for an EOG token.
    pub text: String,
    /// This token's logit (the local engine always reports it; `None` when
    /// a backend does not).
    pub logit: Option<f32>,
    /// Probability of this token under the sampler's distribution; `None`
    /// when the inspector is off or the token was forced.
    pub p_sampled: Option<f32>,
    /// The model's distribution at this position; `None` when the inspector is off.
    pub dist: Option<Distribution>,
}

impl TokenStep {
    /// Probability of this token under the model, when known.
    pub fn p(&self) -> Option<f32> {
        Some(self.dist.as_ref()?.p(self.logit?))
    }

    /// Entropy of the model's distribution in bits, when known.
    pub fn entropy(&self) -> Option<f32> {
        self.dist.as_ref()?.entropy
    }

    /// The top candidates (empty when the inspector is off).
    pub fn top(&self) -> &[Candidate] {
        self.dist.as_ref().map_or(&[], |d| d.top.as_slice())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Eog,
    MaxTokens,
    Cancelled,
    ContextFull,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eog => "eog",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Cancelled => "cancelled",
            StopReason::ContextFull => "context_full",
        }
    }
}

/// How a generation went. Times in milliseconds, rates in tokens per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub stop: StopReason,
    /// Prompt tokens in total (evaluated + reused); an unscored reply prefix
    /// is part of the prompt, a scored one is not (its tokens are reply tokens).
    pub n_prompt: usize,
    pub n_prompt_evaluated: usize,
    pub n_prompt_reused: usize,
    /// Tokens of the reply sent as [`Event::Token`]s, forced ones included.
    pub n_generated: usize,
    /// Of those, forced (a scored reply prefix, [`Steer::Force`](super::Steer::Force)).
    pub n_forced: usize,
    /// From the request's start (building the prompt included) to its first
    /// reply token, time spent paused left out.
    pub ttft_ms: f64,
    pub prompt_tps: f64,
    pub gen_tps: f64,
    /// Oldest turns dropped because the conversation outgrew the context.
    pub dropped_messages: usize,
    /// Tokens in the KV cache when the reply ended.
    pub ctx_used: usize,
    /// Context size in tokens, as llama.cpp made it (see [`describe_ctx`](super::describe_ctx)).
    pub ctx_size: usize,
    /// Context size in tokens that was asked for (`--ctx`, `engine.ctx`).
    pub ctx_requested: usize,
    /// Mean time spent computing the inspector (top-k, entropy, p_sampled) per
    /// token, in microseconds.
    pub inspector_us_per_token: f64,
}

/// Which run of a [`Command::KvCost`](super::Command::KvCost) a
/// [`Event::KvStep`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvRun {
    /// With the KV cache: one decode of one position per token.
    Cached,
    /// Without it: the whole sequence evaluated from scratch per token.
    Recomputed,
}

/// What the engine reports.
///
/// The contract, per request:
/// - Every request ([`Command::Load`](super::Command::Load), [`Command::Generate`](super::Command::Generate),
///   [`Command::Score`](super::Command::Score)) gets exactly one final event ([`Event::is_final`]):
///   `Loaded` (loads only), `Done` (generations and scorings), `Cancelled`
///   (any, same shape) or `Failed` (any). Nothing of that request follows it.
/// - A load: any number of `LoadProgress`, then the final event.
/// - A generation: `Started` (prompt built and tokenized), `PrefillProgress`
///   per chunk, then `Token`s in reply order (each followed by `Paused` while
///   stepping), an optional `Tail` (a character left unfinished), then the
///   final event. A failure may come at any point; a `Tail` may precede it.
///   With [`GenerateRequest::score_prompt`](super::GenerateRequest::score_prompt), each prefill chunk's
///   `PrefillProgress` is preceded by a `PromptScores` with that chunk's
///   scores (before any `Token`).
/// - A prompt scoring ([`Command::ScorePrompt`](super::Command::ScorePrompt)): one `PromptScores`
///   per chunk of positions, in the order asked for, then `Done` (stats:
///   `n_prompt_evaluated` what had to be prefilled first, `n_generated` the
///   positions scored), or `Cancelled` when it gave way to a later request.
/// - A scoring ([`Command::Score`](super::Command::Score)): `Started` (the text's tokens as the
///   prompt, `prefix` empty, `mode` [`ChatMode::Plain`](super::ChatMode::Plain), `note` saying when
///   the text is longer than the context and scored in windows),
///   `PrefillProgress` per chunk (`total`: every position evaluated, windows
///   included), one `Token` per scored token in text order, an optional
///   `Tail`, then `Done` (stats: `n_prompt` = the text's tokens with the BOS,
///   `n_generated` = `n_forced` = scored tokens, `stop` [`StopReason::Eog`],
///   `prompt_tps` = positions evaluated per second and `gen_tps` = tokens
///   scored per second, scoring included; `inspector_us_per_token` the
///   top-k/entropy time per scored token; no `Paused`). Every token after the first is scored, the first too when a
///   BOS precedes it (the BOS itself never is); each scored token's
///   [`TokenStep`]: `index` = its position in `Started.prompt`, `forced`
///   true, `p_sampled` `None`, `logit` its logit, `dist` always `Some` (the
///   request's `top_k_inspect` candidates, `lse`, entropy): the distribution
///   the model had for that position, from the logits of the one before.
/// - Rollouts ([`Command::Rollouts`](super::Command::Rollouts)): one `Rollouts`
///   with every rollout by rank, then `Done` (`n_prompt` = the context's
///   tokens, `n_prompt_evaluated` those not in the cache, `n_generated` =
///   tokens of all rollouts).
/// - Asking about a text ([`Command::AskText`](super::Command::AskText)): one
///   `TextAnswer`, then `Done` (`n_prompt` = the context's tokens,
///   `n_prompt_evaluated` those evaluated again, `n_generated` = `n_forced`
///   = the text's tokens).
/// - A comparison ([`Command::Compare`](super::Command::Compare)): `Compared` per chunk of at most
///   [`COMPARE_CHUNK`](super::COMPARE_CHUNK) positions, its rows in text order, then `Done`
///   (`n_prompt` = tokens evaluated per model, `n_generated` = `n_forced` =
///   tokens compared, `prompt_tps` = positions forced per second and model).
/// - What the KV cache saves ([`Command::KvCost`](super::Command::KvCost)): one `KvStep`
///   per token of the cached run, then one per token of the run without
///   the cache (as many tokens as the cached run made, fewer if its own
///   reply ends first), then `Done` (`n_prompt` the prompt's tokens,
///   `n_generated` the cached run's tokens, `stop` `Eog` when its reply
///   ended before `max_tokens`), or `Cancelled` between tokens.
/// - [`Event::EngineExited`] belongs to no request: the engine process ended
///   (requests in flight have each had their `Failed` first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    LoadProgress {
        request: RequestId,
        /// 0 to 1.
        fraction: f32,
    },
    /// The model is loaded in `slot` (final).
    Loaded {
        request: RequestId,
        slot: SlotId,
        info: Box<ModelInfo>,
        /// The text of every token, once per loaded model.
        vocab: Arc<Vocab>,
        caps: Capabilities,
    },
    /// The prompt is built and tokenized; prefill starts.
    Started {
        request: RequestId,
        mode: ChatMode,
        /// The prompt's tokens (without the reply prefix), each with its message.
        prompt: Vec<PromptToken>,
        /// The reply prefix's tokens, as the engine tokenized them.
        prefix: Vec<TokenId>,
        /// Leading tokens (prompt then prefix) reused from the KV cache.
        n_reused: usize,
        dropped_messages: usize,
        /// What the user should know about how the prompt was built: the
        /// chat template refused the conversation and what was done instead
        /// (text from the model file already escaped), or a scored text
        /// longer than the context. `None` when all went as asked. [`Words`]:
        /// put into a language where it is read (English in a JSON line).
        note: Option<Words>,
    },
    PrefillProgress {
        request: RequestId,
        /// Tokens evaluated so far, of `total`.
        done: usize,
        total: usize,
    },
    Token {
        request: RequestId,
        step: Box<TokenStep>,
    },
    /// A remote server's count of the prompt it built (it applies the chat
    /// template and tokenizes; llama-server says so as it evaluates it):
    /// `n_prompt` tokens in all, `n_reused` of them from its cache. The local
    /// engine sends the prompt's tokens in [`Event::Started`] instead. Sent
    /// at most once per request, before the reply's first token when known.
    PromptCounted {
        request: RequestId,
        n_prompt: usize,
        n_reused: usize,
    },
    /// The prompt's own surprise: answering a [`Command::ScorePrompt`](super::Command::ScorePrompt), one event per
    /// chunk of positions (`index` a position of its `tokens`); or, during a
    /// generation with [`GenerateRequest::score_prompt`](super::GenerateRequest::score_prompt), one
    /// event per prefill chunk, in order, as follows. Each step scores the prompt token at
    /// position `index` of `Started.prompt` followed by `Started.prefix`
    /// (`forced` true, `p_sampled` `None`, `logit` and `dist` as for a token
    /// of the reply, from the logits of position `index - 1`).
    ///
    /// Scored are exactly the positions `n_reused + 1 ..` of the prompt and
    /// its prefilled prefix (`n_reused` from `Started`): every evaluated
    /// position but the first. When the first position to evaluate is a
    /// message's token, the engine reuses one position less from the KV
    /// cache than it could (that position's logits are needed to score the
    /// next one), so every message token not reused is scored; a template
    /// token or a reply prefix there is not stepped back for (it has no
    /// score to show, and a position evaluated again is not bit-identical,
    /// so a branch would not go on from the numbers it forked from). Scores
    /// of reused positions are not sent again (the caller keeps them from
    /// when they were evaluated). A prompt evaluated from position 0 has no
    /// score for that first token.
    PromptScores {
        request: RequestId,
        steps: Vec<TokenStep>,
    },
    /// The answer to a [`Command::AskText`](super::Command::AskText).
    TextAnswer {
        request: RequestId,
        answer: Box<TextAnswer>,
    },
    /// Every rollout of a [`Command::Rollouts`](super::Command::Rollouts), by rank.
    Rollouts {
        request: RequestId,
        rollouts: Vec<Rollout>,
    },
    /// Rows of a comparison ([`Command::Compare`](super::Command::Compare)), one chunk at a time.
    Compared {
        request: RequestId,
        rows: Vec<CompareRow>,
        /// Seconds this chunk spent in llama.cpp forcing the tokens through
        /// every model (decode).
        decode_s: f64,
        /// Seconds it spent on the rows: log-sum-exp, top-1 and KL over the
        /// full vocabulary.
        kl_s: f64,
    },
    /// The layer lens asked for by [`Command::Lens`](super::Command::Lens)
    /// (sent once, before `Done`).
    Lens {
        request: RequestId,
        result: Box<LensResult>,
    },
    /// One token of a [`Command::KvCost`](super::Command::KvCost) run.
    KvStep {
        request: RequestId,
        run: KvRun,
        /// Position in the reply, 0-based.
        index: usize,
        /// Position in the sequence: the prompt's length + `index` (the
        /// tokens the model attended over to predict this one).
        position: usize,
        /// The token picked (the argmax of the logits).
        id: TokenId,
        /// Wall-clock seconds from the start of its evaluation to its pick:
        /// token 0's is the prompt's prefill in both runs; after it, one
        /// decode of one position (cached) or a prefill of the whole
        /// sequence (recomputed).
        seconds: f64,
    },
    /// Step mode: the engine waits for a [`Command::Steer`](super::Command::Steer)
    /// or [`Command::Cancel`](super::Command::Cancel).
    Paused {
        request: RequestId,
        /// Reply tokens so far (forced ones included).
        n_generated: usize,
        /// The distribution the next token will be drawn from, before the
        /// draw: the model's, and each candidate's `p_sampled` under the
        /// sampler chain as it stands; `None` when the inspector is off.
        /// Sent again, unchanged, when forced text gave no tokens.
        next: Option<Distribution>,
        /// Running to the next surprise: why it paused here (`None` in
        /// step mode).
        #[serde(default)]
        surprise: Option<Surprise>,
    },
    /// The reply ended inside a multi-byte character: its bytes, as U+FFFD,
    /// end the reply's text (after the last token's [`TokenStep::text`]).
    /// Sent just before the final event, only when bytes were pending.
    Tail { request: RequestId, text: String },
    /// The generation ended (final).
    Done { request: RequestId, stats: Stats },
    /// The request was cancelled (final): a load keeps the model in use
    /// before it (`stats` is `None`); a generation's tokens so far stand.
    Cancelled {
        request: RequestId,
        stats: Option<Stats>,
    },
    /// The request failed (final).
    Failed {
        request: RequestId,
        error: EngineError,
    },
    /// The engine process ended when it was not asked to (an abort in
    /// llama.cpp, a signal, a crash): how, what it was doing and what it last
    /// wrote. Sent once per death, after the `Failed` of every request it had
    /// in flight, also when it died idle. The next command starts a fresh
    /// engine process, with no model loaded in it.
    EngineExited { report: Box<CrashReport> },
}

impl Event {
    /// The request this event answers (`None` for [`Event::EngineExited`]).
    pub fn request(&self) -> Option<RequestId> {
        match self {
            Event::LoadProgress { request, .. }
            | Event::Loaded { request, .. }
            | Event::Started { request, .. }
            | Event::PrefillProgress { request, .. }
            | Event::PromptCounted { request, .. }
            | Event::Token { request, .. }
            | Event::PromptScores { request, .. }
            | Event::Compared { request, .. }
            | Event::Lens { request, .. }
            | Event::KvStep { request, .. }
            | Event::Rollouts { request, .. }
            | Event::TextAnswer { request, .. }
            | Event::Paused { request, .. }
            | Event::Tail { request, .. }
            | Event::Done { request, .. }
            | Event::Cancelled { request, .. }
            | Event::Failed { request, .. } => Some(*request),
            Event::EngineExited { .. } => None,
        }
    }

    /// True for the one event that ends a request.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Event::Loaded { .. }
                | Event::Done { .. }
                | Event::Cancelled { .. }
                | Event::Failed { .. }
        )
    }
}
