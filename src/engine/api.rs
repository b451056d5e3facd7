//! The engine's protocol: the commands a caller sends and the events it gets
//! back, the same whether the engine runs in a thread, in a child process
//! (framed over pipes) or, later, behind a remote server. Every type here is
//! plain data with serde both ways.
//!
//! Token ids are first class ([`TokenId`]): prompts are reported as ids, a
//! request can continue from an exact token prefix, and a step carries ids and
//! logits only; the text of every token comes once per model in [`Vocab`].

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::path_serde::path_bytes;
pub use super::report::CrashReport;
pub use super::sampler::SamplingParams;
use crate::text::readable_piece;

/// A token of a model's vocabulary (llama.cpp's `llama_token`).
pub type TokenId = i32;

/// Identifies one request; chosen by the caller, unique among the requests it
/// has in flight. Every event names the request it answers.
pub type RequestId = u64;

/// A model slot of the engine: the engine holds one loaded model per slot
/// (the TUI uses slot 0; comparing quantizations loads two).
pub type SlotId = u32;

/// Most candidates a request may ask to be reported per token
/// ([`GenerateRequest::top_k_inspect`], `--candidates`, `inspector_top_k`).
pub const MAX_CANDIDATES: usize = 256;

/// Most model slots the local engine holds at once.
pub const MAX_SLOTS: SlotId = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name in chat templates and JSON: `system`, `user`, `assistant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// An assistant turn's own token ids, as it was generated (sampled,
    /// forced, branched): the prompt feeds these instead of tokenizing
    /// `content` again, which could give other ids (a forced "Hel" + "lo"
    /// is not the canonical "Hello"), so the model sees what it wrote and
    /// the KV cache stays valid past it. Used only when their bytes are
    /// `content` in the engine's vocabulary and the template writes the
    /// content as it is; otherwise the text is tokenized.
    #[serde(default)]
    pub tokens: Option<Vec<TokenId>>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tokens: None,
        }
    }

    /// An assistant turn with the token ids it was generated as.
    pub fn with_tokens(mut self, tokens: Vec<TokenId>) -> Self {
        self.tokens = Some(tokens);
        self
    }
}
/// How a model is loaded: context size, threads, GPU offload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSettings {
    pub n_ctx: u32,
    /// 0 = physical cores.
    pub threads: u32,
    pub gpu_layers: u32,
    pub n_batch: u32,
}

impl Default for LoadSettings {
    fn default() -> Self {
        Self {
            n_ctx: 4096,
            threads: 0,
            gpu_layers: 0,
            n_batch: 512,
        }
    }
}

/// How the reply starts before the model's first own token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum ReplyPrefix {
    /// The model starts the reply.
    #[default]
    None,
    /// Exact token ids, e.g. the tokens already sampled on a branch: the reply
    /// continues from them (re-tokenizing their text would not give them back:
    /// `" Par"` + `"is"` re-tokenizes as `" Paris"`).
    Tokens(Vec<TokenId>),
    /// Text tokenized by the engine as plain text (never as control tokens),
    /// e.g. `run --assistant-prefix`.
    Text(String),
}

/// One generation request: the conversation so far (the engine reuses
/// whatever prefix of its tokens is already in the slot's KV cache), plus how
/// the reply starts and how it goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub messages: Vec<ChatMessage>,
    /// Skip the chat template: the messages' contents are concatenated as plain text.
    pub raw: bool,
    /// Tokens that start the reply (teacher forcing). Those not in the KV
    /// cache are evaluated one at a time, as a reply's tokens are when
    /// generated, so that a branch goes on from the same numbers as its
    /// original (a batch gives other last digits); slower than a prefill
    /// (a decode step per token).
    pub prefix: ReplyPrefix,
    /// Report each prefix token as a forced [`Event::Token`] with the model's
    /// distribution at its position (costs one evaluation per prefix token;
    /// off for a branch whose tokens the caller already has).
    pub score_prefix: bool,
    /// Sampling settings, with the seed of this request's draws.
    pub sampling: SamplingParams,
    /// Most tokens to sample after the reply prefix (forced tokens, of the
    /// prefix or by [`Command::Force`] and [`Command::ForceText`], do not count).
    pub max_tokens: u32,
    /// Number of candidates reported per token: 0 (inspector off) to
    /// [`MAX_CANDIDATES`]; more fails the request.
    pub top_k_inspect: usize,
    /// Start paused (step mode): after the prompt (and a scored prefix) the
    /// engine sends [`Event::Paused`] and waits for [`Command::Step`],
    /// [`Command::Force`] or [`Command::Run`].
    pub paused: bool,
    /// Report the prompt's own surprise: prefill asks for the logits of every
    /// evaluated position (in chunks of at most [`SCORE_CHUNK`] positions) and
    /// sends [`Event::PromptScores`] per chunk. May cost one reused position
    /// (see [`Event::PromptScores`]) and the vocabulary projection of every
    /// prompt position. Off by default.
    #[serde(default)]
    pub score_prompt: bool,
}

impl GenerateRequest {
    /// A request for `messages` with the given settings, the model starting
    /// the reply and running freely.
    pub fn new(
        messages: Vec<ChatMessage>,
        sampling: SamplingParams,
        max_tokens: u32,
        top_k_inspect: usize,
    ) -> Self {
        Self {
            messages,
            raw: false,
            prefix: ReplyPrefix::None,
            score_prefix: false,
            sampling,
            max_tokens,
            top_k_inspect,
            paused: false,
            score_prompt: false,
        }
    }
}

/// Most positions whose logits are alive at once when every position is
/// scored ([`Command::Score`], [`GenerateRequest::score_prompt`]): llama.cpp
/// keeps positions × vocabulary floats (Gemma 3: 262,144 × 4 bytes = 1 MiB
/// per position), so such positions are decoded in batches of at most this many.
pub const SCORE_CHUNK: usize = 32;

/// Positions per batch of a comparison ([`Command::Compare`]): every model
/// keeps this many positions of logits (Gemma 3: 64 MiB per model), compared
/// where llama.cpp wrote them. Twice [`SCORE_CHUNK`]: measured ~5-7% faster
/// forcing on Gemma 3 than 32 (`tokenscope bench --only compare`); 128 was
/// no faster.
pub const COMPARE_CHUNK: usize = 64;

/// A text to score: the model's surprise at each of its tokens
/// ([`Command::Score`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRequest {
    /// The text, tokenized as plain text (never as control tokens).
    pub text: String,
    /// Put the model's BOS in front when the model uses one (then the text's
    /// first token is scored too, as the prediction after the BOS).
    pub bos: bool,
    /// Candidates reported per scored token: 0 to [`MAX_CANDIDATES`]; more
    /// fails the request. With 0 each token still gets its probability
    /// (`lse`, entropy), with no candidates.
    pub top_k_inspect: usize,
}

/// Models to compare token by token on the same token ids
/// ([`Command::Compare`]): every model is teacher-forced the whole sequence
/// in batched prefills, and each token gets every model's probability and
/// top-1, and KL(A‖B) over the full vocabulary for each other model B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRequest {
    /// The models' slots, the reference A first: at least two, all
    /// different, all loaded with the same vocabulary (else the request fails
    /// with [`EngineError::InvalidRequest`] saying which differ).
    pub slots: Vec<SlotId>,
    /// The token ids to force through every model.
    pub input: CompareInput,
    /// Most likely tokens reported per model and position
    /// ([`CompareRow::top`], [`CompareRow::ln_p_of_a_top`]): 0 (none: the
    /// rows carry only the compared token) to [`MAX_CANDIDATES`]; more fails
    /// the request.
    #[serde(default)]
    pub top_k: usize,
}

/// The token ids a comparison runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CompareInput {
    /// Text tokenized as plain text (never control tokens) by model A, its
    /// BOS in front when `bos` and the model uses one; every token after the
    /// first is compared (the first too when a BOS precedes it).
    Text { text: String, bos: bool },
    /// Exact ids (e.g. a prompt and the reply model A generated); the tokens
    /// at `score_from..` are compared (`score_from` ≥ 1: a token is predicted
    /// from the ones before it).
    Tokens {
        tokens: Vec<TokenId>,
        score_from: usize,
    },
}

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
    /// Each model's [`CompareRequest::top_k`] most likely tokens at this
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

/// What a caller asks of the engine. Requests ([`Command::Load`],
/// [`Command::Generate`], [`Command::Score`]) are served one at a time in the order sent; the
/// others act on the request being served and are read between tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Load `path` into `slot`; the model there before stays in use until the
    /// new one is ready (and stays if loading fails or is cancelled).
    Load {
        request: RequestId,
        slot: SlotId,
        #[serde(with = "path_bytes")]
        path: PathBuf,
        settings: LoadSettings,
    },
    /// Frees `slot` (no event answers it).
    Unload { slot: SlotId },
    /// Generate with the model in `slot`.
    Generate {
        request: RequestId,
        slot: SlotId,
        req: GenerateRequest,
    },
    /// One sampled token, then pause.
    Step { request: RequestId },
    /// Append `token` as the next token (teacher forcing; reported with the
    /// model's distribution at that position and `forced: true`), then pause.
    Force { request: RequestId, token: TokenId },
    /// Append `text`, tokenized as plain text (never control tokens, no BOS),
    /// as forced tokens, each reported like [`Command::Force`]'s, then pause.
    /// Text that gives no tokens changes nothing (the request stays paused).
    ForceText { request: RequestId, text: String },
    /// Run freely until the end (EOG, max tokens, context full).
    Run { request: RequestId },
    /// Score `req.text` with the model in `slot`: every token's probability
    /// under the model given the text before it (see [`Event`] for what
    /// comes back). A request, served in order like [`Command::Generate`].
    Score {
        request: RequestId,
        slot: SlotId,
        req: ScoreRequest,
    },
    /// Compare the models in `req.slots` on the same token ids (see
    /// [`CompareRequest`] and, for what comes back, [`Event`]). A request,
    /// served in order like [`Command::Score`].
    Compare {
        request: RequestId,
        req: CompareRequest,
    },
    /// Stop `request` (a load, a generation or a scoring) as soon as possible.
    Cancel { request: RequestId },
    /// Stop serving; the engine ends.
    Shutdown,
}

/// How the prompt is built from the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatMode {
    /// The GGUF's own `tokenizer.chat_template`, rendered with minijinja.
    Template,
    /// llama.cpp's built-in template matching (the Jinja template failed to
    /// render; [`Event::Started`] carries the reason).
    Builtin,
    /// No template: plain completion.
    Plain,
    /// A remote server's chat endpoint: the server applies its own template.
    Server,
}

impl ChatMode {
    pub fn describe(self) -> &'static str {
        match self {
            ChatMode::Template => "chat (model's template)",
            ChatMode::Builtin => "chat (llama.cpp built-in template)",
            ChatMode::Plain => "plain completion (no chat template)",
            ChatMode::Server => "chat (the server applies its template)",
        }
    }
}

/// The text of every token of a loaded model, sent once with
/// [`Event::Loaded`] so that steps carry ids only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    /// Bytes of each token, by id (control tokens rendered as their text,
    /// e.g. `<|im_end|>`); may be part of a UTF-8 character.
    pub pieces: Vec<Vec<u8>>,
    /// Ids of the end-of-generation tokens.
    pub eog: Vec<TokenId>,
    /// Pieces learned while generating, for a backend that cannot list its
    /// vocabulary up front (a remote server reports a token's text with the
    /// token): empty `pieces`, and each id's text set once, by the engine,
    /// before the event that first names it. Not serialized (a remote engine
    /// runs in this process).
    #[serde(skip)]
    pub learned: LearnedPieces,
}

/// Token texts set once each, by id, while other threads read them (see
/// [`Vocab::learned`]). Clones share the same pieces.
#[derive(Clone, Default)]
pub struct LearnedPieces(Arc<[std::sync::OnceLock<Box<[u8]>>]>);

impl LearnedPieces {
    /// Room for ids `0..n`.
    pub fn with_capacity(n: usize) -> Self {
        Self((0..n).map(|_| std::sync::OnceLock::new()).collect())
    }

    /// Ids it has room for.
    pub fn capacity(&self) -> usize {
        self.0.len()
    }

    /// Sets the text of `id` unless it is known (or outside the capacity).
    pub fn learn(&self, id: TokenId, bytes: &[u8]) {
        if let Some(cell) = usize::try_from(id).ok().and_then(|i| self.0.get(i)) {
            let _ = cell.set(bytes.into());
        }
    }

    /// The text of `id`, once learned.
    pub fn get(&self, id: TokenId) -> Option<&[u8]> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.0.get(i))
            .and_then(|c| c.get())
            .map(|b| &**b)
    }
}

impl std::fmt::Debug for LearnedPieces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LearnedPieces({} ids)", self.capacity())
    }
}

/// Learned pieces are a cache of what the engine reported: never part of equality.
impl PartialEq for LearnedPieces {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Vocab {
    /// A vocabulary of `pieces` (by id) with the end-of-generation ids `eog`.
    pub fn new(pieces: Vec<Vec<u8>>, eog: Vec<TokenId>) -> Self {
        Self {
            pieces,
            eog,
            learned: LearnedPieces::default(),
        }
    }

    /// A vocabulary of `n` tokens whose texts are learned as they are
    /// reported (a remote server; see [`Vocab::learned`]).
    pub fn learned(n: usize) -> Self {
        Self {
            pieces: Vec::new(),
            eog: Vec::new(),
            learned: LearnedPieces::with_capacity(n),
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.pieces.len().max(self.learned.capacity())
    }

    /// Its texts are learned as a remote engine reports them ([`Vocab::learned`]):
    /// nothing is known of the tokens it did not report.
    pub fn is_learned(&self) -> bool {
        self.pieces.is_empty() && self.learned.capacity() > 0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of `id` (empty for an id outside the vocabulary, or one
    /// whose text a remote engine has not reported).
    pub fn bytes(&self, id: TokenId) -> &[u8] {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.pieces.get(i))
            .map(|p| p.as_slice())
            .or_else(|| self.learned.get(id))
            .unwrap_or(&[])
    }

    /// `id` alone, readable: escaped, partial UTF-8 as `<0xE4>` (see
    /// [`crate::text::readable_piece`]).
    pub fn readable(&self, id: TokenId) -> String {
        readable_piece(self.bytes(id))
    }

    pub fn is_eog(&self, id: TokenId) -> bool {
        self.eog.contains(&id)
    }
}

/// What a backend can report. The local engine reports everything; a remote
/// server reports what its API gives (log-probabilities of a few candidates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// [`Distribution::entropy`] is filled in (needs the whole distribution).
    pub entropy: bool,
    /// [`Distribution::lse`] is the log-sum-exp over the whole vocabulary, so
    /// probabilities are exact; otherwise it normalizes the reported candidates only.
    pub full_distribution: bool,
    /// Most candidates per token.
    pub max_candidates: usize,
    /// [`Command::Step`], [`Command::Force`] and paused requests work.
    pub step: bool,
    /// [`ReplyPrefix::Tokens`] works.
    pub token_prefix: bool,
    /// How many models can be loaded at once.
    pub slots: SlotId,
    /// Token ids are the model's own (a server that reports text only gets
    /// ids made up per distinct text, valid for this engine only).
    #[serde(default = "yes")]
    pub token_ids: bool,
    /// The sampler's probabilities ([`Candidate::p_sampled`]) are reported.
    #[serde(default = "yes")]
    pub sampler_probs: bool,
    /// Prompt scoring ([`Command::Score`], [`GenerateRequest::score_prompt`]) works.
    #[serde(default = "yes")]
    pub score: bool,
    /// Where a remote engine runs (its URL, no credentials); `None` for the local engine.
    #[serde(default)]
    pub remote: Option<String>,
}

fn yes() -> bool {
    true
}

impl Capabilities {
    /// What the local llama.cpp engine reports.
    pub fn local() -> Self {
        Self {
            entropy: true,
            full_distribution: true,
            max_candidates: MAX_CANDIDATES,
            step: true,
            token_prefix: true,
            slots: MAX_SLOTS,
            token_ids: true,
            sampler_probs: true,
            score: true,
            remote: None,
        }
    }

    /// Why `what` (e.g. "step mode") cannot be done on this backend, in
    /// words for the user; `None` when it can.
    pub fn refuses(&self, what: &str) -> Option<String> {
        let where_ = self.remote.as_deref()?;
        Some(format!(
            "{what} needs the model's logits at every step, which the remote server at {where_} does not give (it reports the log-probabilities of a few candidates per token): load a local model for it"
        ))
    }
}

/// A prompt token and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptToken {
    pub id: TokenId,
    /// Index in [`GenerateRequest::messages`] of the turn this token belongs
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

/// One token of the reply, with what the model considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenStep {
    /// Position in the reply, 0-based (forced tokens included).
    pub index: usize,
    pub id: TokenId,
    /// Given by the caller (reply prefix or [`Command::Force`]), not sampled.
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
    /// Of those, forced (a scored reply prefix, [`Command::Force`]).
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
    /// Context size in tokens, as llama.cpp made it (see [`describe_ctx`]).
    pub ctx_size: usize,
    /// Context size in tokens that was asked for (`--ctx`, `engine.ctx`).
    pub ctx_requested: usize,
    /// Mean time spent computing the inspector (top-k, entropy, p_sampled) per
    /// token, in microseconds.
    pub inspector_us_per_token: f64,
}
/// What a loaded model is, for the status bar and `info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    #[serde(with = "path_bytes")]
    pub path: PathBuf,
    pub name: String,
    pub arch: String,
    pub n_params: u64,
    pub file_size: u64,
    pub quant: String,
    pub n_layer: u32,
    /// Context size the model was trained with, in tokens.
    pub n_ctx_train: u32,
    /// Context size in use, in tokens: what llama.cpp made of [`Self::n_ctx_requested`]
    /// (rounded up to a multiple of 256, capped at the trained size).
    pub n_ctx: u32,
    /// Context size asked for (`--ctx`, `engine.ctx`), in tokens.
    pub n_ctx_requested: u32,
    pub n_vocab: u32,
    pub chat_mode: ChatMode,
    /// The system prompt the model's chat template writes when the
    /// conversation has none (see [`super::template::ChatTemplate::default_system_prompt`]);
    /// `None` when it writes none or is not known (a remote server's).
    #[serde(default)]
    pub default_system: Option<String>,
    /// "CPU", or the GPU backend when layers are offloaded.
    pub backend: String,
    pub gpu_layers: u32,
    pub threads: u32,
}

/// Why the context size in use differs from the one asked for, e.g. `asked 300:
/// llama.cpp rounds up to a multiple of 256` or `asked 16384: capped at the
/// trained 8192`; `None` when they are equal. All sizes in tokens; `trained`
/// 0 means unknown.
pub fn describe_ctx(requested: usize, actual: usize, trained: usize) -> Option<String> {
    if requested == actual {
        return None;
    }
    Some(if trained > 0 && requested > trained {
        if actual == trained {
            format!("asked {requested}: capped at the trained {trained}")
        } else {
            format!(
                "asked {requested}: capped at the trained {trained}, which llama.cpp makes {actual}"
            )
        }
    } else if actual > requested {
        format!("asked {requested}: llama.cpp rounds up to a multiple of 256")
    } else {
        format!("asked {requested}: llama.cpp made it {actual}")
    })
}

impl ModelInfo {
    /// The context size in use, and why it differs from the one asked for:
    /// `512 tokens` or `512 tokens (asked 300: llama.cpp rounds up to a multiple of 256)`.
    pub fn ctx_text(&self) -> String {
        let n = self.n_ctx as usize;
        match describe_ctx(self.n_ctx_requested as usize, n, self.n_ctx_train as usize) {
            Some(why) => format!("{n} tokens ({why})"),
            None => format!("{n} tokens"),
        }
    }

    /// "CPU, 2 threads" or "CUDA (…), 19 layers on the GPU"; a remote
    /// engine's backend alone ("remote llama-server … at URL").
    pub fn backend_text(&self) -> String {
        if self.threads == 0 && self.gpu_layers == 0 {
            self.backend.clone()
        } else if self.gpu_layers > 0 {
            format!("{}, {} layers on the GPU", self.backend, self.gpu_layers)
        } else {
            format!("{}, {} threads", self.backend, self.threads)
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
pub enum EngineError {
    /// Nothing is loaded in the slot asked for.
    #[error("no model is loaded: pick one first")]
    NoModel { slot: SlotId },
    /// A slot number the engine does not have.
    #[error("no model slot {slot}: the engine has slots 0 to {}", MAX_SLOTS - 1)]
    BadSlot { slot: SlotId },
    /// The file is not a GGUF model tokenscope can load (our own check, before llama.cpp).
    #[error("{0}")]
    BadFile(String),
    /// llama.cpp refused the file.
    #[error("llama.cpp could not load {}: {reason} (see the log file for details)", path.display())]
    LoadFailed {
        #[serde(with = "path_bytes")]
        path: PathBuf,
        reason: String,
    },
    /// A load or context setting out of range.
    #[error("{0}")]
    InvalidSettings(String),
    /// The model would not fit in the memory available (checked before
    /// llama.cpp reads it): what it needs and what there is, in words.
    #[error("{0}")]
    NotEnoughMemory(String),
    /// llama.cpp could not make a context of that size.
    #[error("could not create a context of {n_ctx} tokens: {reason} (try a smaller --ctx)")]
    Context { n_ctx: u32, reason: String },
    /// A request the engine cannot serve as asked (sampling settings, candidates, token ids).
    #[error("{0}")]
    InvalidRequest(String),
    /// The prompt is empty.
    #[error("the prompt is empty: type a message first")]
    EmptyPrompt,
    /// The prompt does not fit the context even with every old turn dropped.
    #[error(
        "the prompt is {n_prompt} tokens but the context holds {n_ctx}: shorten the message or start with a larger --ctx"
    )]
    PromptTooLong { n_prompt: usize, n_ctx: usize },
    /// llama.cpp failed to evaluate tokens (`stage`: prefill or decode).
    #[error("{stage} failed: {reason}")]
    Decode { stage: String, reason: String },
    /// The engine's code panicked: a bug in tokenscope.
    #[error(
        "the engine crashed: {0}. This is a bug in tokenscope: please report it (details and a backtrace are in the log file, see `tokenscope paths`)"
    )]
    Panicked(String),
    /// The engine process ended under the request (llama.cpp aborted, a
    /// signal, out of memory): how, what it was doing, its last lines.
    #[error("{0}")]
    Crashed(Box<CrashReport>),
    /// The engine process could not be started.
    #[error("could not start the engine process: {0}")]
    Unavailable(String),
    /// A remote engine's server failed the request (unreachable, a wrong
    /// key, an unknown model, no log-probabilities, a connection dropped).
    #[error("{0}")]
    Remote(#[from] super::remote::RemoteError),
}
/// What the engine reports.
///
/// The contract, per request:
/// - Every request ([`Command::Load`], [`Command::Generate`],
///   [`Command::Score`]) gets exactly one final event ([`Event::is_final`]):
///   `Loaded` (loads only), `Done` (generations and scorings), `Cancelled`
///   (any, same shape) or `Failed` (any). Nothing of that request follows it.
/// - A load: any number of `LoadProgress`, then the final event.
/// - A generation: `Started` (prompt built and tokenized), `PrefillProgress`
///   per chunk, then `Token`s in reply order (each followed by `Paused` while
///   stepping), an optional `Tail` (a character left unfinished), then the
///   final event. A failure may come at any point; a `Tail` may precede it.
///   With [`GenerateRequest::score_prompt`], each prefill chunk's
///   `PrefillProgress` is preceded by a `PromptScores` with that chunk's
///   scores (before any `Token`).
/// - A scoring ([`Command::Score`]): `Started` (the text's tokens as the
///   prompt, `prefix` empty, `mode` [`ChatMode::Plain`], `note` saying when
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
/// - A comparison ([`Command::Compare`]): `Compared` per chunk of at most
///   [`COMPARE_CHUNK`] positions, its rows in text order, then `Done`
///   (`n_prompt` = tokens evaluated per model, `n_generated` = `n_forced` =
///   tokens compared, `prompt_tps` = positions forced per second and model).
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
        /// (text from the model file already escaped). `None` when all went as asked.
        note: Option<String>,
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
    /// The prompt's own surprise ([`GenerateRequest::score_prompt`]), one
    /// event per prefill chunk, in order. Each step scores the prompt token at
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
    /// Rows of a comparison ([`Command::Compare`]), one chunk at a time.
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
    /// Step mode: the engine waits for [`Command::Step`], [`Command::Force`],
    /// [`Command::ForceText`], [`Command::Run`] or [`Command::Cancel`].
    Paused {
        request: RequestId,
        /// Reply tokens so far (forced ones included).
        n_generated: usize,
        /// The distribution the next token will be drawn from, before the
        /// draw: the model's, and each candidate's `p_sampled` under the
        /// sampler chain as it stands; `None` when the inspector is off.
        /// Sent again, unchanged, when forced text gave no tokens.
        next: Option<Distribution>,
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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctx_changes_are_explained() {
        assert_eq!(describe_ctx(512, 512, 8192), None);
        assert_eq!(
            describe_ctx(300, 512, 8192).unwrap(),
            "asked 300: llama.cpp rounds up to a multiple of 256"
        );
        assert_eq!(
            describe_ctx(16384, 8192, 8192).unwrap(),
            "asked 16384: capped at the trained 8192"
        );
        assert_eq!(
            describe_ctx(4096, 2048, 2000).unwrap(),
            "asked 4096: capped at the trained 2000, which llama.cpp makes 2048"
        );
        assert_eq!(
            describe_ctx(300, 512, 0).unwrap(),
            "asked 300: llama.cpp rounds up to a multiple of 256"
        );
    }
}
