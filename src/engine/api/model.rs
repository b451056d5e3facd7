//! What the engine says of a loaded model: its card ([`ModelInfo`]), its
//! vocabulary's texts ([`Vocab`]), the prompt mode of its template
//! ([`ChatMode`]) and what its backend can report ([`Capabilities`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::Words;
use super::ids::{MAX_CANDIDATES, MAX_SLOTS, SlotId, TokenId};
use super::model_ref::ModelRef;
use crate::catalog::VariantKey;
use crate::text::readable_piece;

/// How the prompt is built from the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatMode {
    /// The GGUF's own `tokenizer.chat_template`, rendered with minijinja.
    Template,
    /// llama.cpp's built-in template matching (the Jinja template failed to
    /// render; [`Event::Started`](super::Event::Started) carries the reason).
    Builtin,
    /// No template: plain completion.
    Plain,
    /// A remote server's chat endpoint: the server applies its own template.
    Server,
}

impl ChatMode {
    pub(crate) fn describe(self) -> String {
        use crate::i18n::tr;
        match self {
            ChatMode::Template => tr("mode-template", "chat (model's template)"),
            ChatMode::Builtin => tr("mode-builtin", "chat (llama.cpp built-in template)"),
            ChatMode::Plain => tr("mode-plain", "plain completion (no chat template)"),
            ChatMode::Server => tr("mode-server", "chat (the server applies its template)"),
        }
    }
}

/// The text of every token of a loaded model, sent once with
/// [`Event::Loaded`](super::Event::Loaded) so that steps carry ids only.
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
    pub(crate) fn capacity(&self) -> usize {
        self.0.len()
    }

    /// Sets the text of `id` unless it is known (or outside the capacity).
    pub(crate) fn learn(&self, id: TokenId, bytes: &[u8]) {
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
    pub(crate) fn learned(n: usize) -> Self {
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
    pub(crate) fn is_learned(&self) -> bool {
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
    /// [`Distribution::entropy`](super::Distribution::entropy) is filled in (needs the whole distribution).
    pub entropy: bool,
    /// [`Distribution::lse`](super::Distribution::lse) is the log-sum-exp over the whole vocabulary, so
    /// probabilities are exact; otherwise it normalizes the reported candidates only.
    pub full_distribution: bool,
    /// Most candidates per token.
    pub max_candidates: usize,
    /// [`Steer::Step`](super::Steer::Step), [`Steer::Force`](super::Steer::Force) and paused requests work.
    pub step: bool,
    /// [`ReplyPrefix::Tokens`](super::ReplyPrefix::Tokens) works.
    pub token_prefix: bool,
    /// How many models can be loaded at once.
    pub slots: SlotId,
    /// Token ids are the model's own (a server that reports text only gets
    /// ids made up per distinct text, valid for this engine only).
    #[serde(default = "yes")]
    pub token_ids: bool,
    /// The sampler's probabilities ([`Candidate::p_sampled`](super::Candidate::p_sampled)) are reported.
    #[serde(default = "yes")]
    pub sampler_probs: bool,
    /// Prompt scoring ([`Command::Score`](super::Command::Score), [`GenerateRequest::score_prompt`](super::GenerateRequest::score_prompt)) works.
    #[serde(default = "yes")]
    pub score: bool,
    /// The prompt's surprise can be scored after the reply
    /// ([`Command::ScorePrompt`](super::Command::ScorePrompt)); false for a recurrent or hybrid
    /// model (scored during prefill, [`GenerateRequest::score_prompt`](super::GenerateRequest::score_prompt)) and a
    /// remote engine.
    #[serde(default)]
    pub score_after: bool,
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
            score_after: true,
            remote: None,
        }
    }

    /// Why `what` (e.g. "step mode") cannot be done on this backend, in
    /// words for the user in the interface language; `None` when it can.
    pub fn refuses(&self, what: &str) -> Option<String> {
        self.refusal(what).map(|w| w.to_string())
    }

    /// [`Self::refuses`] worded where it is read: `what` in English, shown in
    /// the reader's language when it is one of the actions this knows
    /// ([`what_words`]), else as it is.
    pub fn refusal(&self, what: &str) -> Option<Words> {
        let where_ = self.remote.as_deref()?;
        Some(
            Words::tr_args(
                "engine-remote-refuses",
                "{ $what } needs the model's logits at every step, which the remote server at { $where } does not give (it reports the log-probabilities of a few candidates per token): load a local model for it",
                &[("where", &where_)],
            )
            .with("what", what_words(what)),
        )
    }
}

/// What a remote server cannot do ([`Capabilities::refusal`]'s `what`), in
/// the reader's language: the actions the engine and the chat name, each its
/// own message (Chinese puts them in its own word order); any other as it is.
fn what_words(what: &str) -> Words {
    match what {
        "step mode" => Words::tr("engine-what-step-mode", "step mode"),
        "continuing a reply from exact tokens (a branch)" => Words::tr(
            "engine-what-branch-tokens",
            "continuing a reply from exact tokens (a branch)",
        ),
        "scoring a text" => Words::tr("engine-what-score-text", "scoring a text"),
        "scoring a prompt" => Words::tr("engine-what-score-prompt", "scoring a prompt"),
        "asking about a text" => Words::tr("engine-what-ask-text", "asking about a text"),
        "asking the model about a text" => Words::tr(
            "engine-what-ask-model-text",
            "asking the model about a text",
        ),
        "rolling out the top candidates" => {
            Words::tr("engine-what-rollouts", "rolling out the top candidates")
        }
        "Rolling out the top candidates" => Words::tr(
            "engine-what-rollouts-capital",
            "Rolling out the top candidates",
        ),
        "comparing models" => Words::tr("engine-what-compare", "comparing models"),
        "Comparing with another model" => {
            Words::tr("engine-what-compare-other", "Comparing with another model")
        }
        "Timing the KV cache" => Words::tr("engine-what-kv-timing", "Timing the KV cache"),
        "choosing another token here (a branch)" => Words::tr(
            "engine-what-choose-token",
            "choosing another token here (a branch)",
        ),
        "re-sampling a token (a branch)" => {
            Words::tr("engine-what-resample", "re-sampling a token (a branch)")
        }
        "continuing a reply from its tokens" => {
            Words::tr("engine-what-continue", "continuing a reply from its tokens")
        }
        other => Words::text(other),
    }
}

/// What a loaded model is, for the status bar and `info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Which model: its file, or a server's model (written `path`, as before
    /// it could be a server's).
    #[serde(rename = "path")]
    pub model: ModelRef,
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
    /// conversation has none (see [`crate::engine::template::ChatTemplate::default_system_prompt`]);
    /// `None` when it writes none or is not known (a remote server's).
    #[serde(default)]
    pub default_system: Option<String>,
    /// "CPU", or the GPU backend when layers are offloaded.
    pub backend: String,
    /// The instruction sets of llama.cpp's CPU kernels in this build
    /// ([`crate::engine::kernels::cpu_kernels`]), e.g. `AVX-512 (VBMI, VNNI,
    /// BF16)`; empty for a remote engine.
    #[serde(default)]
    pub cpu_kernels: String,
    pub gpu_layers: u32,
    pub threads: u32,
    /// What tokenscope called this file before names were built from the
    /// header's base name (see [`crate::catalog::ModelCard::former_name`]),
    /// when that differs from `name`: replies saved under it still find
    /// their model's vocabulary. `None` for a server's model.
    #[serde(default)]
    pub former_name: Option<String>,
}

/// Why the context size in use differs from the one asked for, e.g. `asked 300:
/// llama.cpp rounds up to a multiple of 256` or `asked 16384: capped at the
/// trained 8192`; `None` when they are equal. All sizes in tokens; `trained`
/// 0 means unknown.
pub(crate) fn describe_ctx(requested: usize, actual: usize, trained: usize) -> Option<String> {
    if requested == actual {
        return None;
    }
    use crate::i18n::tr_args;
    let args: [(&str, &dyn std::fmt::Display); 3] = [
        ("requested", &requested),
        ("trained", &trained),
        ("actual", &actual),
    ];
    Some(if trained > 0 && requested > trained {
        if actual == trained {
            tr_args(
                "context-capped",
                "asked { $requested }: capped at the trained { $trained }",
                &args[..2],
            )
        } else {
            tr_args(
                "context-capped-made",
                "asked { $requested }: capped at the trained { $trained }, which llama.cpp makes { $actual }",
                &args,
            )
        }
    } else if actual > requested {
        tr_args(
            "context-rounded",
            "asked { $requested }: llama.cpp rounds up to a multiple of 256",
            &args[..1],
        )
    } else {
        tr_args(
            "context-made",
            "asked { $requested }: llama.cpp made it { $actual }",
            &[args[0], args[2]],
        )
    })
}

impl ModelInfo {
    /// The context size in use, and why it differs from the one asked for:
    /// `512 tokens` or `512 tokens (asked 300: llama.cpp rounds up to a multiple of 256)`.
    pub fn ctx_text(&self) -> String {
        let n = self.n_ctx as usize;
        let tokens = crate::i18n::tr_args("context-tokens", "{ $n } tokens", &[("n", &n)]);
        match describe_ctx(self.n_ctx_requested as usize, n, self.n_ctx_train as usize) {
            Some(why) => format!("{tokens} ({why})"),
            None => tokens,
        }
    }

    /// "CPU with AVX2 kernels, 2 threads" or "CUDA (…), 19 layers on the GPU"; a remote
    /// engine's backend alone ("remote llama-server … at URL").
    pub fn backend_text(&self) -> String {
        use crate::i18n::tr_args;
        let args: [(&str, &dyn std::fmt::Display); 4] = [
            ("backend", &self.backend),
            ("layers", &self.gpu_layers),
            ("threads", &self.threads),
            ("kernels", &self.cpu_kernels),
        ];
        if self.threads == 0 && self.gpu_layers == 0 {
            self.backend.clone()
        } else if self.gpu_layers > 0 {
            tr_args(
                "backend-gpu-layers",
                "{ $backend }, { $layers } layers on the GPU",
                &args[..2],
            )
        } else if self.cpu_kernels.is_empty() {
            tr_args(
                "backend-threads",
                "{ $backend }, { $threads } threads",
                &[args[0], args[2]],
            )
        } else {
            tr_args(
                "backend-kernels-threads",
                "{ $backend } with { $kernels } kernels, { $threads } threads",
                &[args[0], args[3], args[2]],
            )
        }
    }

    /// The key the variants of this model (quantizations of it) share, as
    /// [`ModelCard::variant_key`](crate::catalog::ModelCard::variant_key)
    /// gives it for a file; `None` when the parameter count or the
    /// vocabulary is unknown.
    pub(crate) fn variant_key(&self) -> Option<VariantKey> {
        VariantKey::of(&self.arch, self.n_params, self.n_vocab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, with_lang};

    /// A remote server's refusal names what it cannot do in the reader's
    /// language, in Chinese word order; a local model refuses nothing.
    #[test]
    fn a_remote_refusal_names_the_action_in_the_readers_language() {
        let caps = Capabilities {
            remote: Some("http://h:8080".into()),
            ..Capabilities::local()
        };
        assert_eq!(Capabilities::local().refuses("step mode"), None);
        let en = with_lang(Lang::En, || caps.refuses("step mode")).expect("remote refuses");
        assert!(
            en.starts_with("step mode needs the model's logits at every step, which the remote server at http://h:8080"),
            "{en}"
        );
        let zh = with_lang(Lang::Zh, || caps.refuses("step mode")).expect("remote refuses");
        assert!(zh.starts_with("单步模式需要模型在每一步的 logits"), "{zh}");
        assert!(zh.contains("http://h:8080"), "{zh}");
        // Every action the engine and the chat name has its Chinese.
        for what in [
            "continuing a reply from exact tokens (a branch)",
            "scoring a text",
            "scoring a prompt",
            "asking about a text",
            "asking the model about a text",
            "rolling out the top candidates",
            "Rolling out the top candidates",
            "comparing models",
            "Comparing with another model",
            "Timing the KV cache",
            "choosing another token here (a branch)",
            "re-sampling a token (a branch)",
            "continuing a reply from its tokens",
        ] {
            let zh = with_lang(Lang::Zh, || what_words(what).to_string());
            assert!(!zh.is_ascii() && !zh.contains(what), "{what}: {zh}");
            assert_eq!(with_lang(Lang::En, || what_words(what).to_string()), what);
        }
        // One it does not know is shown as it is.
        let zh = with_lang(Lang::Zh, || caps.refuses("x-ray")).expect("remote refuses");
        assert!(zh.starts_with("x-ray需要"), "{zh}");
    }

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
