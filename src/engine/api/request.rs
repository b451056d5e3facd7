//! What a caller sends: the [`Command`]s and the requests they carry (a
//! conversation to reply to, a text to score, token ids to compare).

use serde::{Deserialize, Serialize};

use super::ask::AskTextRequest;
use super::error::Words;
use super::ids::{RequestId, SlotId, TokenId};
use super::lens::LensRequest;
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
    /// Run to the next surprise from the start: the reply pauses, as in
    /// step mode, before the first token that is one ([`Steer::RunToSurprise`]).
    #[serde(default)]
    pub stop_at_surprise: Option<SurpriseStop>,
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
            stop_at_surprise: None,
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
    /// fails the request with [`EngineError::Refused`](super::EngineError::Refused).
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

/// Most rollouts of one request ([`RolloutRequest::n`]): the context has
/// one sequence for the reply and one per rollout (`n_seq_max` = 1 + this;
/// with a unified KV cache the cache's size does not depend on it).
pub const MAX_ROLLOUTS: usize = 8;

/// Where each of the top candidates leads ([`Command::Rollouts`]): at the
/// step after `tokens`, the `n` most likely tokens of the model's
/// distribution each start a rollout, continued for up to `m` tokens in
/// all (the first included) as `n` llama.cpp sequences of one context
/// sharing `tokens` in the KV cache, one token per sequence per decode batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRequest {
    /// The context as the model was fed it: a generation's
    /// [`Event::Started`](super::Event::Started) `prompt` ids, then its
    /// `prefix` and reply tokens up to the step. What of it is not in the
    /// slot's KV cache is evaluated first; sequence 0 holds it afterwards.
    pub tokens: Vec<TokenId>,
    /// Rollouts: 2 to [`MAX_ROLLOUTS`].
    pub n: usize,
    /// Tokens per rollout, its first (the candidate) included: at least 1.
    pub m: usize,
    /// How each rollout draws after its first token; rollout of rank `r`
    /// (1-based) draws with seed `sampling.seed + r - 1`, so a rerun is the
    /// same. Temperature 0: greedy rollouts.
    pub sampling: SamplingParams,
    /// Candidates kept in each rollout token's
    /// [`RolloutToken::dist`](super::RolloutToken::dist) (0: none, the
    /// tokens carry only their p), so that a rollout can become a reply
    /// whose every token the inspector shows.
    #[serde(default)]
    pub top_k_inspect: usize,
}

impl RolloutRequest {
    /// Checks `n` and `m` (what a caller can check before any model is
    /// loaded). Errors: what is wrong and what to ask for instead.
    pub fn check_shape(n: usize, m: usize) -> Result<(), Words> {
        if !(2..=MAX_ROLLOUTS).contains(&n) {
            return Err(Words::tr_args(
                "rollouts-engine-count",
                "{ $n } rollouts asked for: ask for 2 to { $max } (one alone is the reply itself)",
                &[("n", &n), ("max", &MAX_ROLLOUTS)],
            ));
        }
        if m == 0 {
            return Err(Words::tr(
                "rollouts-engine-no-tokens",
                "rollouts of 0 tokens asked for: ask for at least 1 token per rollout",
            ));
        }
        Ok(())
    }
}

/// Models to compare token by token on the same token ids
/// ([`Command::Compare`]): every model is teacher-forced the whole sequence
/// in batched prefills, and each token gets every model's probability and
/// top-1, and KL(A‖B) over the full vocabulary for each other model B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRequest {
    /// The models' slots, the reference A first: at least two, all
    /// different, all loaded with the same vocabulary (else the request fails
    /// with [`EngineError::Refused`](super::EngineError::Refused) saying which differ).
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
    /// The layer lens of one position ([`LensRequest`]): the prediction
    /// after every layer, and the attention weights when asked; answered by
    /// one [`Event::Lens`](super::Event::Lens) then `Done`. Runs in a lens
    /// context of its own (without flash attention), so `slot`'s KV cache is
    /// untouched. A request of low priority like [`Command::ScorePrompt`]: it
    /// gives way (ends `Cancelled`) to any request sent after it before its
    /// evaluation starts. A remote model refuses it (no access to the graph).
    Lens {
        request: RequestId,
        slot: SlotId,
        req: LensRequest,
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
    /// Ask the model in `slot` about a text at a step ([`AskTextRequest`]):
    /// one [`Event::TextAnswer`](super::Event::TextAnswer), then `Done`. A
    /// request, served in order like [`Command::Score`], and, like
    /// [`Command::ScorePrompt`], served inside a paused reply's pause on its
    /// slot, leaving the reply as it was. A remote model refuses it (it needs
    /// the logits of the whole vocabulary).
    AskText {
        request: RequestId,
        slot: SlotId,
        req: AskTextRequest,
    },
    /// Roll out the top candidates after `req.tokens` with the model in
    /// `slot` ([`RolloutRequest`]): one [`Event::Rollouts`](super::Event::Rollouts),
    /// then `Done`. A request, served in order like [`Command::Score`];
    /// sequence 0 of the slot's cache holds `req.tokens` afterwards.
    Rollouts {
        request: RequestId,
        slot: SlotId,
        req: RolloutRequest,
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
            | Command::Lens { request, .. }
            | Command::KvCost { request, .. }
            | Command::Rollouts { request, .. }
            | Command::AskText { request, .. }
            | Command::Steer { request, .. }
            | Command::Cancel { request } => Some(*request),
            Command::Unload { .. } | Command::Shutdown => None,
        }
    }
}

/// What a generation does next, told by [`Command::Steer`]: the one
/// spelling of it, from the caller's keys to the worker's loop. A generation
/// running freely reads it between tokens; a paused one waits for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Run until the next surprise ([`SurpriseStop`]): the next token is
    /// drawn whatever it is (the caller stands at it), then each step is
    /// checked before its draw, and the reply pauses at the first one that
    /// is surprising, with [`Event::Paused`](super::Event::Paused)'s
    /// `surprise` saying why.
    RunToSurprise(SurpriseStop),
}

/// When a reply running to the next surprise pauses: at a step where the
/// token the sampler would draw has a probability under the model below
/// `below_p`, or where the model's distribution has more than
/// `above_entropy` bits of entropy (the model is undecided, whatever it
/// draws). Checked before the draw, on a copy of the sampler chain (its
/// random state copied too), so that the draw made after the pause is the
/// one that was checked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SurpriseStop {
    /// Probability under the model, 0 to 1 (0: never by probability).
    pub below_p: f32,
    /// Entropy in bits (infinite or above log2 of the vocabulary: never by
    /// entropy).
    pub above_entropy: f32,
}

impl Default for SurpriseStop {
    /// Below 10%, or above 3 bits (as spread as a choice among 8 equally
    /// likely tokens).
    fn default() -> Self {
        Self {
            below_p: 0.1,
            above_entropy: 3.0,
        }
    }
}

impl SurpriseStop {
    /// Whether a token of probability `p` drawn from a distribution of
    /// `entropy` bits is a surprise.
    pub fn is_surprise(&self, p: f32, entropy: f32) -> bool {
        p < self.below_p || entropy > self.above_entropy
    }

    /// Errors: a threshold that is not a number, or `below_p` outside 0..=1,
    /// or a negative entropy, in words naming the setting as the settings
    /// form does (`surprise_p`, `surprise_bits`).
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.below_p) {
            return Err(format!(
                "invalid surprise_p = {}: a probability from 0 to 1",
                self.below_p
            ));
        }
        if self.above_entropy.is_nan() || self.above_entropy < 0.0 {
            return Err(format!(
                "invalid surprise_bits = {}: bits, 0 or more",
                self.above_entropy
            ));
        }
        Ok(())
    }
}
