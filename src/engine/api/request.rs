//! What a caller sends: the [`Command`]s and the requests they carry (a
//! conversation to reply to, a text to score, token ids to compare).

use serde::{Deserialize, Serialize};

use super::ids::{RequestId, SlotId, TokenId};
use super::model_ref::ModelRef;
use crate::engine::sampler::SamplingParams;

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
    pub(crate) fn with_tokens(mut self, tokens: Vec<TokenId>) -> Self {
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
    /// Report each prefix token as a forced [`Event::Token`](super::Event::Token) with the model's
    /// distribution at its position (costs one evaluation per prefix token;
    /// off for a branch whose tokens the caller already has).
    pub score_prefix: bool,
    /// Sampling settings, with the seed of this request's draws.
    pub sampling: SamplingParams,
    /// Most tokens to sample after the reply prefix (forced tokens, of the
    /// prefix or by [`Steer::Force`] and [`Steer::ForceText`], do not count).
    pub max_tokens: u32,
    /// Number of candidates reported per token: 0 (inspector off) to
    /// [`MAX_CANDIDATES`](super::MAX_CANDIDATES); more fails the request.
    pub top_k_inspect: usize,
    /// Start paused (step mode): after the prompt (and a scored prefix) the
    /// engine sends [`Event::Paused`](super::Event::Paused) and waits for a [`Command::Steer`].
    pub paused: bool,
    /// Report the prompt's own surprise *during* prefill: prefill asks for the
    /// logits of every evaluated position (in chunks of at most [`SCORE_CHUNK`]
    /// positions) and sends [`Event::PromptScores`](super::Event::PromptScores) per chunk, delaying the
    /// first token by the vocabulary projection of every prompt position (1.35x
    /// the prefill on SmolLM2, 2.7x on Gemma 3). May cost one reused position
    /// (see [`Event::PromptScores`](super::Event::PromptScores)). Off by default: ask with
    /// [`Command::ScorePrompt`] after the reply instead, which never delays it;
    /// only recurrent and hybrid models, whose earlier states cannot be
    /// shared, need this.
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
pub(crate) const COMPARE_CHUNK: usize = 64;

/// A text to score: the model's surprise at each of its tokens
/// ([`Command::Score`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRequest {
    /// The text, tokenized as plain text (never as control tokens).
    pub text: String,
    /// Put the model's BOS in front when the model uses one (then the text's
    /// first token is scored too, as the prediction after the BOS).
    pub bos: bool,
    /// Candidates reported per scored token: 0 to [`MAX_CANDIDATES`](super::MAX_CANDIDATES); more
    /// fails the request. With 0 each token still gets its probability
    /// (`lse`, entropy), with no candidates.
    pub top_k_inspect: usize,
}

/// The prompt's own surprise, asked for after the reply instead of during
/// its prefill ([`Command::ScorePrompt`]): the model's distribution before
/// each of `positions` of `tokens`, so the first token of a reply never
/// waits for it. Served from the KV cache: the tokens before each chunk of
/// positions are taken from the cache (what is missing of `tokens` is
/// evaluated first), and each chunk is evaluated again in a second
/// sequence with the logits of every position, then dropped; the cache
/// (sequence 0) is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptScoreRequest {
    /// The token ids as the model was fed them: a generation's
    /// [`Event::Started`](super::Event::Started) `prompt` ids, then its `prefix`.
    pub tokens: Vec<TokenId>,
    /// Positions to score, each in `1..tokens.len()` (position 0 has no
    /// prediction before it), most wanted first: scored in that order, in
    /// chunks of at most [`SCORE_CHUNK`] consecutive positions. Anything else
    /// fails the request with [`EngineError::InvalidRequest`](super::EngineError::InvalidRequest).
    pub positions: Vec<usize>,
    /// Candidates reported per position: 0 to [`MAX_CANDIDATES`](super::MAX_CANDIDATES).
    pub top_k_inspect: usize,
}

/// Most tokens a [`Command::KvCost`] generates: without the KV cache the
/// work per token grows with its position, and the whole run with the
/// square of the reply's length.
pub const KV_COST_MAX_TOKENS: u32 = 256;

/// What the KV cache saves ([`Command::KvCost`]): the greedy reply to
/// `messages` generated with the cache, then again without it (the whole
/// sequence evaluated from scratch before every token), each token timed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvCostRequest {
    /// The conversation, built into a prompt as a generation's is.
    pub messages: Vec<ChatMessage>,
    /// Skip the chat template (see [`GenerateRequest::raw`]).
    pub raw: bool,
    /// Most tokens to generate: 1 to [`KV_COST_MAX_TOKENS`] (more fails
    /// the request); fewer when the reply ends first or the context is full.
    pub max_tokens: u32,
}

/// Models to compare token by token on the same token ids
/// ([`Command::Compare`]): every model is teacher-forced the whole sequence
/// in batched prefills, and each token gets every model's probability and
/// top-1, and KL(A‖B) over the full vocabulary for each other model B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRequest {
    /// The models' slots, the reference A first: at least two, all
    /// different, all loaded with the same vocabulary (else the request fails
    /// with [`EngineError::InvalidRequest`](super::EngineError::InvalidRequest) saying which differ).
    pub slots: Vec<SlotId>,
    /// The token ids to force through every model.
    pub input: CompareInput,
    /// Most likely tokens reported per model and position
    /// ([`CompareRow::top`](super::CompareRow::top), [`CompareRow::ln_p_of_a_top`](super::CompareRow::ln_p_of_a_top)): 0 (none: the
    /// rows carry only the compared token) to [`MAX_CANDIDATES`](super::MAX_CANDIDATES); more fails
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

/// What a caller asks of the engine. Requests ([`Command::Load`],
/// [`Command::Generate`], [`Command::Score`]) are served one at a time in the order sent; the
/// others act on the request being served and are read between tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Load `model` into `slot`; the model there before stays in use until the
    /// new one is ready (and stays if loading fails or is cancelled). The
    /// local engine loads files, a remote one its server's models.
    Load {
        request: RequestId,
        slot: SlotId,
        model: ModelRef,
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
    /// Tell the generation `request` what to do next ([`Steer`]): read
    /// between tokens, and what a paused one waits for.
    Steer { request: RequestId, steer: Steer },
    /// Score `req.text` with the model in `slot`: every token's probability
    /// under the model given the text before it (see [`Event`](super::Event) for what
    /// comes back). A request, served in order like [`Command::Generate`].
    Score {
        request: RequestId,
        slot: SlotId,
        req: ScoreRequest,
    },
    /// Score positions of a prompt already (or partly) in `slot`'s KV cache
    /// ([`PromptScoreRequest`]). A request of low priority: served in order,
    /// it gives way between chunks to any request sent after it (it ends
    /// `Cancelled`, the positions not sent left for a later one); sent while
    /// a generation is paused, it is served inside the pause, on the
    /// paused reply's cache, leaving the reply as it was (then it fails when
    /// `tokens` are not all in that cache).
    ScorePrompt {
        request: RequestId,
        slot: SlotId,
        req: PromptScoreRequest,
    },
    /// Compare the models in `req.slots` on the same token ids (see
    /// [`CompareRequest`] and, for what comes back, [`Event`](super::Event)). A request,
    /// served in order like [`Command::Score`].
    Compare {
        request: RequestId,
        req: CompareRequest,
    },
    /// Generate the greedy reply to `req.messages` with `slot`'s model
    /// twice, with the KV cache and without it, timing every token
    /// ([`KvCostRequest`]; see [`Event`](super::Event) for what comes back). A
    /// request, served in order like [`Command::Score`]; it leaves the KV
    /// cache empty.
    KvCost {
        request: RequestId,
        slot: SlotId,
        req: KvCostRequest,
    },
    /// Stop `request` (a load, a generation or a scoring) as soon as possible.
    Cancel { request: RequestId },
    /// Stop serving; the engine ends.
    Shutdown,
}

impl Command {
    /// The request this command is about: the one it starts (a load, a
    /// generation, a scoring, a comparison) or acts on (a steer, a cancel);
    /// `None` for [`Command::Unload`] and [`Command::Shutdown`].
    pub fn request(&self) -> Option<RequestId> {
        match self {
            Command::Load { request, .. }
            | Command::Generate { request, .. }
            | Command::Score { request, .. }
            | Command::ScorePrompt { request, .. }
            | Command::Compare { request, .. }
            | Command::KvCost { request, .. }
            | Command::Steer { request, .. }
            | Command::Cancel { request } => Some(*request),
            Command::Unload { .. } | Command::Shutdown => None,
        }
    }
}

/// What a generation does next, told by [`Command::Steer`]: the one
/// spelling of it, from the caller's keys to the worker's loop. A generation
/// running freely reads it between tokens; a paused one waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Steer {
    /// One sampled token, then pause.
    Step,
    /// Append this token as the next token (teacher forcing; reported with
    /// the model's distribution at that position and `forced: true`), then
    /// pause.
    Force(TokenId),
    /// Append this text, tokenized as plain text (never control tokens, no
    /// BOS), as forced tokens, each reported like [`Steer::Force`]'s, then
    /// pause. Text that gives no tokens changes nothing (the request stays
    /// paused).
    ForceText(String),
    /// Run freely until the end (EOG, max tokens, context full).
    Run,
}
