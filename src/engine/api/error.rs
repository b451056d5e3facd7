//! Why a request failed, in words for the user: the engine's errors
//! ([`EngineError`]) and, among them, a remote server's ([`RemoteError`]).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::ids::{MAX_SLOTS, SlotId, TokenId};
use crate::engine::path_serde::path_bytes;
use crate::engine::report::CrashReport;
use crate::engine::sampler::InvalidParam;
use crate::i18n::{tr, tr_args};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
pub enum EngineError {
    /// Nothing is loaded in the slot asked for.
    NoModel { slot: SlotId },
    /// A slot number the engine does not have.
    BadSlot { slot: SlotId },
    /// The file is not a GGUF model tokenscope can load (our own check, before llama.cpp).
    BadFile(String),
    /// llama.cpp refused the file.
    LoadFailed {
        #[serde(with = "path_bytes")]
        path: PathBuf,
        reason: String,
    },
    /// A load or context setting out of range.
    InvalidSettings(String),
    /// The model would not fit in the memory available (checked before
    /// llama.cpp reads it): what it needs and what there is, in words.
    NotEnoughMemory(String),
    /// llama.cpp could not make a context of that size.
    Context { n_ctx: u32, reason: String },
    /// A request the engine cannot serve as asked (sampling settings, candidates, token ids).
    InvalidRequest(String),
    /// A request the engine refuses, in [`Words`] put into a language where
    /// they are read: the engine process's refusals, so that the parent shows
    /// them in its interface language and writes them in English into JSON.
    Refused(Words),
    /// The prompt is empty.
    EmptyPrompt,
    /// The prompt does not fit the context even with every old turn dropped.
    PromptTooLong { n_prompt: usize, n_ctx: usize },
    /// llama.cpp failed to evaluate tokens (`stage`: prefill or decode).
    Decode { stage: String, reason: String },
    /// The engine's code panicked: a bug in tokenscope.
    Panicked(String),
    /// The engine process ended under the request (llama.cpp aborted, a
    /// signal, out of memory): how, what it was doing, its last lines.
    Crashed(Box<CrashReport>),
    /// The engine process could not be started.
    Unavailable(String),
    /// A remote engine's server failed the request (unreachable, a wrong
    /// key, an unknown model, no log-probabilities, a connection dropped).
    Remote(#[from] RemoteError),
    /// This build's llama.cpp kernels need instructions the CPU lacks
    /// (built for a newer CPU): what it lacks and what to do.
    WrongCpu(String),
}

/// Words for a person put into a language where they are read, not where
/// they arose: a message id, its English and its arguments. The engine
/// process words its refusals this way ([`EngineError::Refused`]): its text
/// crosses the pipe as this, so the parent shows it in its interface language
/// and a JSON line made under `i18n::with_lang(Lang::En, ..)` says it in
/// English, whatever language the child runs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Words {
    /// The message id (`i18n/en.ftl`); empty: `english` is shown as it is.
    id: String,
    english: String,
    /// `{ $name }` → its words (plain text, or a message of its own).
    args: Vec<(String, Words)>,
}

impl Words {
    /// [`tr_args`] worded later: each argument is kept as its text (the same
    /// in every language: numbers, names, llama.cpp's words).
    pub fn tr_args(id: &str, english: &str, args: &[(&str, &dyn fmt::Display)]) -> Self {
        Self {
            id: id.to_owned(),
            english: english.to_owned(),
            args: args
                .iter()
                .map(|(name, value)| ((*name).to_owned(), Words::text(value.to_string())))
                .collect(),
        }
    }

    /// [`tr`] worded later.
    pub fn tr(id: &str, english: &str) -> Self {
        Self::tr_args(id, english, &[])
    }

    /// Text shown as it is in every language.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            id: String::new(),
            english: text.into(),
            args: Vec::new(),
        }
    }

    /// Adds (or replaces) the argument `name` with words of their own, put
    /// into the reader's language too (e.g. what a remote server cannot do).
    pub fn with(mut self, name: &str, value: Words) -> Self {
        self.args.retain(|(n, _)| n != name);
        self.args.push((name.to_owned(), value));
        self
    }
}

impl From<String> for Words {
    /// Text shown as it is ([`Words::text`]).
    fn from(text: String) -> Self {
        Words::text(text)
    }
}

impl From<&str> for Words {
    /// Text shown as it is ([`Words::text`]).
    fn from(text: &str) -> Self {
        Words::text(text)
    }
}

impl fmt::Display for Words {
    /// In the interface language of the thread that formats it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.id.is_empty() {
            return f.write_str(&self.english);
        }
        let values: Vec<(&str, String)> = self
            .args
            .iter()
            .map(|(name, w)| (name.as_str(), w.to_string()))
            .collect();
        let args: Vec<(&str, &dyn fmt::Display)> = values
            .iter()
            .map(|(name, v)| (*name, v as &dyn fmt::Display))
            .collect();
        f.write_str(&tr_args(&self.id, &self.english, &args))
    }
}

impl InvalidParam {
    /// What is wrong, worded where it is read (the engine process refuses a
    /// request with it: [`EngineError::Refused`]).
    pub fn words(&self) -> Words {
        Words::tr_args(
            "error-invalid-param",
            "invalid { $name } = { $value }: must be { $range }",
            &[("name", &self.name), ("value", &self.value)],
        )
        .with("range", range_words(self.range))
    }
}

/// The allowed values of a setting (`range`, the English of
/// [`InvalidParam::range`] or of a config key's check) worded where they are
/// read, so that "must be { $range }" is whole in every language; a range
/// this does not know is shown as it is.
pub fn range_words(range: &str) -> Words {
    match range {
        "between 0 and 5 (0 = greedy)" => {
            Words::tr("range-temperature", "between 0 and 5 (0 = greedy)")
        }
        "at most 1000000 (0 = off)" => Words::tr("range-top-k", "at most 1000000 (0 = off)"),
        "in (0, 1] (1 = off)" => Words::tr("range-top-p", "in (0, 1] (1 = off)"),
        "in [0, 1) (0 = off)" => Words::tr("range-min-p", "in [0, 1) (0 = off)"),
        "between 0.1 and 5 (1 = off)" => {
            Words::tr("range-repeat-penalty", "between 0.1 and 5 (1 = off)")
        }
        "at most 65536 (0 = off)" => Words::tr("range-repeat-last-n", "at most 65536 (0 = off)"),
        "a whole number from 0 to 4294967295" => {
            Words::tr("range-seed", "a whole number from 0 to 4294967295")
        }
        "\"en\" or \"zh\"" => Words::tr("range-lang", "\"en\" or \"zh\""),
        "between 64 and 1048576" => Words::tr("range-ctx", "between 64 and 1048576"),
        "between 1 and 8192" => Words::tr("range-batch", "between 1 and 8192"),
        "between 0 (auto) and 1024" => Words::tr("range-threads", "between 0 (auto) and 1024"),
        "at least 1" => Words::tr("range-at-least-1", "at least 1"),
        "between 1 and 256" => Words::tr("range-candidates", "between 1 and 256"),
        "a probability from 0 to 1" => Words::tr("range-probability", "a probability from 0 to 1"),
        "bits, 0 or more" => Words::tr("range-bits", "bits, 0 or more"),
        "ollama, huggingface, lmstudio or llama.cpp, comma-separated (empty: none)" => Words::tr(
            "range-sources",
            "ollama, huggingface, lmstudio or llama.cpp, comma-separated (empty: none)",
        ),
        _ => Words::text(range),
    }
}

impl fmt::Display for InvalidParam {
    /// In the interface language ([`tr_args`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.words().fmt(f)
    }
}

impl EngineError {
    /// The sampler chain left no token to draw (a bug or a degenerate chain).
    pub fn no_sampled_token() -> Self {
        EngineError::Refused(Words::tr(
            "engine-no-sampled-token",
            "the sampler chose no token",
        ))
    }

    /// llama.cpp gave no logits where a draw needed them.
    pub fn no_logits() -> Self {
        EngineError::Refused(Words::tr("engine-no-logits", "the model gave no logits"))
    }

    /// Refuses `id`, a token id outside a vocabulary of `n_vocab` tokens.
    pub fn bad_token_id(id: TokenId, n_vocab: usize) -> Self {
        EngineError::Refused(Words::tr_args(
            "engine-bad-token-id",
            "token id { $id } is not in this model's vocabulary (0 to { $last })",
            &[("id", &id), ("last", &n_vocab.saturating_sub(1))],
        ))
    }
}

/// Why a remote request failed, in words for the user.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
pub enum RemoteError {
    BadUrl {
        url: String,
        why: Words,
    },
    Unreachable {
        url: String,
        reason: Words,
    },
    Timeout {
        url: String,
        seconds: u64,
        what: String,
    },
    Unauthorized {
        url: String,
        status: u16,
        hint: Words,
        /// The body says the key itself was rejected (llama-server's
        /// `"type": "authentication_error"`), not only that this path is
        /// closed (a proxy or gateway answering 401/403 for routes it hides).
        key_rejected: bool,
    },
    UnknownModel {
        url: String,
        model: String,
        available: Vec<String>,
    },
    WhichModel {
        url: String,
        available: Vec<String>,
    },
    Status {
        url: String,
        what: String,
        status: u16,
        message: String,
    },
    NoLogprobs {
        url: String,
        hint: Words,
    },
    Dropped {
        url: String,
        tokens: usize,
        reason: String,
    },
    Protocol {
        url: String,
        what: String,
        detail: String,
    },
}

/// A decode `stage` of [`EngineError::Decode`] as a person reads it: the
/// stage travels between the processes and goes to the log in English; a
/// known one is shown in the interface language, any other as the engine
/// wrote it.
fn decode_stage(stage: &str) -> String {
    match stage {
        "prefill" => tr("decode-stage-prefill", "prefill"),
        "decode" => tr("decode-stage-decode", "decode"),
        "evaluating" => tr("decode-stage-evaluating", "evaluating"),
        "evaluating the context" => tr("decode-stage-evaluating-context", "evaluating the context"),
        "the warm-up decode" => tr("decode-stage-warm-up", "the warm-up decode"),
        "the layer lens" => tr("decode-stage-layer-lens", "the layer lens"),
        "clearing the KV cache" => tr("decode-stage-clearing-kv", "clearing the KV cache"),
        "asking about a text" => tr("decode-stage-asking", "asking about a text"),
        "comparing" => tr("decode-stage-comparing", "comparing"),
        "completing a character" => tr(
            "decode-stage-completing-character",
            "completing a character",
        ),
        "decoding rollouts" => tr("decode-stage-rollouts", "decoding rollouts"),
        "dropping a rollout's sequence" => tr(
            "decode-stage-dropping-rollout",
            "dropping a rollout's sequence",
        ),
        "forcing the text" => tr("decode-stage-forcing", "forcing the text"),
        "scoring" => tr("decode-stage-scoring", "scoring"),
        "scoring the prompt" => tr("decode-stage-scoring-prompt", "scoring the prompt"),
        "sharing the cached context" => {
            tr("decode-stage-sharing-context", "sharing the cached context")
        }
        "sharing the cached prompt" => {
            tr("decode-stage-sharing-prompt", "sharing the cached prompt")
        }
        "sharing the context with a rollout" => tr(
            "decode-stage-sharing-rollout",
            "sharing the context with a rollout",
        ),
        other => other.to_owned(),
    }
}

impl fmt::Display for EngineError {
    /// In the interface language ([`tr_args`]); the texts inside
    /// `BadFile`, `InvalidSettings`, `InvalidRequest` and the like were made
    /// where the error arose, in the language of that process (the engine
    /// process is started in its parent's: `process.rs`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            EngineError::NoModel { .. } => {
                tr("error-no-model", "no model is loaded: pick one first")
            }
            EngineError::BadSlot { slot } => tr_args(
                "error-bad-slot",
                "no model slot { $slot }: the engine has slots 0 to { $last }",
                &[("slot", slot), ("last", &(MAX_SLOTS - 1))],
            ),
            EngineError::BadFile(s)
            | EngineError::InvalidSettings(s)
            | EngineError::NotEnoughMemory(s)
            | EngineError::InvalidRequest(s)
            | EngineError::WrongCpu(s) => s.clone(),
            EngineError::LoadFailed { path, reason } => tr_args(
                "error-load-failed",
                "llama.cpp could not load { $path }: { $reason } (see the log file for details)",
                &[("path", &path.display()), ("reason", reason)],
            ),
            EngineError::Context { n_ctx, reason } => tr_args(
                "error-context",
                "could not create a context of { $n_ctx } tokens: { $reason } (try a smaller --ctx)",
                &[("n_ctx", n_ctx), ("reason", reason)],
            ),
            EngineError::EmptyPrompt => tr(
                "error-empty-prompt",
                "the prompt is empty: type a message first",
            ),
            EngineError::PromptTooLong { n_prompt, n_ctx } => tr_args(
                "error-prompt-too-long",
                "the prompt is { $n_prompt } tokens but the context holds { $n_ctx }: shorten the message or start with a larger --ctx",
                &[("n_prompt", n_prompt), ("n_ctx", n_ctx)],
            ),
            EngineError::Decode { stage, reason } => tr_args(
                "error-decode",
                "{ $stage } failed: { $reason }",
                &[("stage", &decode_stage(stage)), ("reason", reason)],
            ),
            EngineError::Panicked(why) => tr_args(
                "error-panicked",
                "the engine crashed: { $why }. This is a bug in tokenscope: please report it (details and a backtrace are in the log file, see `tokenscope paths`)",
                &[("why", why)],
            ),
            EngineError::Crashed(report) => report.localized(),
            EngineError::Unavailable(why) => tr_args(
                "error-unavailable",
                "could not start the engine process: { $why }",
                &[("why", why)],
            ),
            EngineError::Remote(e) => e.to_string(),
            EngineError::Refused(words) => words.to_string(),
        };
        f.write_str(&text)
    }
}

impl fmt::Display for RemoteError {
    /// In the interface language ([`tr_args`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            RemoteError::BadUrl { url, why } => tr_args(
                "error-remote-bad-url",
                "invalid server URL { $url }: { $why }",
                &[("url", &format!("{url:?}")), ("why", why)],
            ),
            RemoteError::Unreachable { url, reason } => tr_args(
                "error-remote-unreachable",
                "cannot reach the server at { $url }: { $reason } (is it running? check the host and port)",
                &[("url", url), ("reason", reason)],
            ),
            RemoteError::Timeout { url, seconds, what } => tr_args(
                "error-remote-timeout",
                "the server at { $url } did not answer within { $seconds } s ({ $what })",
                &[("url", url), ("seconds", seconds), ("what", what)],
            ),
            RemoteError::Unauthorized {
                url, status, hint, ..
            } => tr_args(
                "error-remote-unauthorized",
                "the server at { $url } refused the API key (HTTP { $status }): { $hint }",
                &[("url", url), ("status", status), ("hint", hint)],
            ),
            RemoteError::UnknownModel {
                url,
                model,
                available,
            } => tr_args(
                "error-remote-unknown-model",
                "the server at { $url } has no model { $model }: it serves { $available } (pick one with --model)",
                &[
                    ("url", url),
                    ("model", &format!("{model:?}")),
                    ("available", &available.join(", ")),
                ],
            ),
            RemoteError::WhichModel { url, available } => tr_args(
                "error-remote-which-model",
                "the server at { $url } serves { $n } models ({ $available }): pick one with --model",
                &[
                    ("url", url),
                    ("n", &available.len()),
                    ("available", &available.join(", ")),
                ],
            ),
            RemoteError::Status {
                url,
                what,
                status,
                message,
            } => tr_args(
                "error-remote-status",
                "the server at { $url } answered { $what } with HTTP { $status }: { $message }",
                &[
                    ("url", url),
                    ("what", what),
                    ("status", status),
                    ("message", message),
                ],
            ),
            RemoteError::NoLogprobs { url, hint } => tr_args(
                "error-remote-no-logprobs",
                "the server at { $url } sent text without log-probabilities, so the inspector has nothing to show: { $hint }",
                &[("url", url), ("hint", hint)],
            ),
            RemoteError::Dropped {
                url,
                tokens,
                reason,
            } => tr_args(
                "error-remote-dropped",
                "the connection to { $url } dropped mid-reply after { $tokens } token(s): { $reason }. The partial reply is kept",
                &[("url", url), ("tokens", tokens), ("reason", reason)],
            ),
            RemoteError::Protocol { url, what, detail } => tr_args(
                "error-remote-protocol",
                "the server at { $url } sent something tokenscope cannot read ({ $what }): { $detail }",
                &[("url", url), ("what", what), ("detail", detail)],
            ),
        };
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, with_lang};

    /// Every error, in English and in Chinese: the two differ (translated)
    /// and both carry the arguments (`needles`).
    fn both(e: &dyn std::fmt::Display, needles: &[&str]) {
        let en = with_lang(Lang::En, || e.to_string());
        let zh = with_lang(Lang::Zh, || e.to_string());
        assert_ne!(en, zh, "not translated: {en}");
        assert!(
            zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{zh}"
        );
        for n in needles {
            assert!(en.contains(n) && zh.contains(n), "{n:?} in\n{en}\n{zh}");
        }
    }

    #[test]
    fn every_engine_error_says_the_same_in_both_languages() {
        let path = PathBuf::from("/m/x.gguf");
        let cases: Vec<(EngineError, Vec<&str>)> = vec![
            (EngineError::NoModel { slot: 0 }, vec![]),
            (EngineError::BadSlot { slot: 7 }, vec!["7", "3"]),
            (
                EngineError::LoadFailed {
                    path: path.clone(),
                    reason: "why-1".into(),
                },
                vec!["/m/x.gguf", "why-1"],
            ),
            (
                EngineError::Context {
                    n_ctx: 4096,
                    reason: "why-2".into(),
                },
                vec!["4096", "why-2", "--ctx"],
            ),
            (EngineError::EmptyPrompt, vec![]),
            (
                EngineError::PromptTooLong {
                    n_prompt: 5000,
                    n_ctx: 4096,
                },
                vec!["5000", "4096", "--ctx"],
            ),
            (
                EngineError::Decode {
                    // A stage with no words of its own goes through as it
                    // is (known ones: `decode_stages_are_shown_...`).
                    stage: "stage-3".into(),
                    reason: "why-3".into(),
                },
                vec!["stage-3", "why-3"],
            ),
            (
                EngineError::Panicked("boom".into()),
                vec!["boom", "tokenscope paths"],
            ),
            (EngineError::Unavailable("why-4".into()), vec!["why-4"]),
        ];
        for (e, needles) in &cases {
            both(e, needles);
        }
        let url = "http://h:8080".to_string();
        let remote = vec![
            (
                RemoteError::BadUrl {
                    url: "x".into(),
                    why: "w1".into(),
                },
                vec!["\"x\"", "w1"],
            ),
            (
                RemoteError::Unreachable {
                    url: url.clone(),
                    reason: "w2".into(),
                },
                vec!["http://h:8080", "w2"],
            ),
            (
                RemoteError::Timeout {
                    url: url.clone(),
                    seconds: 30,
                    what: "w3".into(),
                },
                vec!["http://h:8080", "30", "w3"],
            ),
            (
                RemoteError::Unauthorized {
                    url: url.clone(),
                    status: 401,
                    hint: "w4".into(),
                    key_rejected: true,
                },
                vec!["401", "w4"],
            ),
            (
                RemoteError::UnknownModel {
                    url: url.clone(),
                    model: "m9".into(),
                    available: vec!["a1".into(), "a2".into()],
                },
                vec!["\"m9\"", "a1, a2", "--model"],
            ),
            (
                RemoteError::WhichModel {
                    url: url.clone(),
                    available: vec!["a1".into(), "a2".into()],
                },
                vec!["2", "a1, a2", "--model"],
            ),
            (
                RemoteError::Status {
                    url: url.clone(),
                    what: "w5".into(),
                    status: 500,
                    message: "w6".into(),
                },
                vec!["w5", "500", "w6"],
            ),
            (
                RemoteError::NoLogprobs {
                    url: url.clone(),
                    hint: "w7".into(),
                },
                vec!["http://h:8080", "w7"],
            ),
            (
                RemoteError::Dropped {
                    url: url.clone(),
                    tokens: 12,
                    reason: "w8".into(),
                },
                vec!["12", "w8"],
            ),
            (
                RemoteError::Protocol {
                    url,
                    what: "w9".into(),
                    detail: "w10".into(),
                },
                vec!["w9", "w10"],
            ),
        ];
        for (e, needles) in &remote {
            both(e, needles);
            // Wrapped in the engine's error it reads the same.
            let wrapped = EngineError::Remote(e.clone());
            assert_eq!(wrapped.to_string(), e.to_string());
        }
        // English stays what it was.
        assert_eq!(
            with_lang(Lang::En, || EngineError::PromptTooLong {
                n_prompt: 5000,
                n_ctx: 4096
            }
            .to_string()),
            "the prompt is 5000 tokens but the context holds 4096: shorten the message or start with a larger --ctx"
        );
    }

    /// A refusal made in a Chinese process (the engine child under `--lang
    /// zh`) crosses the pipe as its message, not its text: the parent shows
    /// it in its own language, and in English where JSON wants English.
    #[test]
    fn a_refusal_is_worded_where_it_is_read() {
        let made = with_lang(Lang::Zh, || EngineError::bad_token_id(99999, 49152));
        let json = serde_json::to_string(&made).expect("an error serializes");
        let read: EngineError = serde_json::from_str(&json).expect("and reads back");
        assert_eq!(read, made);
        assert_eq!(
            with_lang(Lang::En, || read.to_string()),
            "token id 99999 is not in this model's vocabulary (0 to 49151)"
        );
        assert_eq!(
            with_lang(Lang::Zh, || read.to_string()),
            "词元 id 99999 不在这个模型的词表中（0 到 49151）"
        );
        // Words of its own inside: each in the reader's language.
        let w = Words::tr_args(
            "engine-vocab-sizes",
            "{ $a } tokens vs { $b }",
            &[("a", &1), ("b", &2)],
        );
        let outer = Words::tr_args(
            "engine-vocabularies-differ",
            "{ $a } and { $b } have different vocabularies ({ $differ }): a token-by-token comparison needs the same tokens; compare variants of one model (e.g. made with `tokenscope quantize`)",
            &[("a", &"A"), ("b", &"B")],
        )
        .with("differ", w);
        let zh = with_lang(Lang::Zh, || outer.to_string());
        assert!(
            zh.starts_with("A 和 B 的词表不同（1 个词元对 2 个）"),
            "{zh}"
        );
        assert!(
            with_lang(Lang::En, || outer.to_string())
                .starts_with("A and B have different vocabularies (1 tokens vs 2)")
        );
        // Plain text is the same in every language.
        let t = Words::text("llama.cpp said no");
        assert_eq!(with_lang(Lang::Zh, || t.to_string()), "llama.cpp said no");
        for e in [EngineError::no_logits(), EngineError::no_sampled_token()] {
            both(&e, &[]);
        }
    }

    /// A decode stage is the engine's English in the error (what travels
    /// and is logged) and the interface language's words on screen.
    #[test]
    fn decode_stages_are_shown_in_the_interface_language() {
        let e = EngineError::Decode {
            stage: "the warm-up decode".into(),
            reason: "why".into(),
        };
        assert_eq!(
            with_lang(Lang::En, || e.to_string()),
            "the warm-up decode failed: why"
        );
        assert_eq!(with_lang(Lang::Zh, || e.to_string()), "预热解码 失败：why");
        for (stage, zh) in [
            ("prefill", "预填充"),
            ("evaluating the context", "计算上下文"),
        ] {
            let e = EngineError::Decode {
                stage: stage.into(),
                reason: "r".into(),
            };
            assert_eq!(
                with_lang(Lang::Zh, || e.to_string()),
                format!("{zh} 失败：r")
            );
            assert!(matches!(&e, EngineError::Decode { stage: s, .. } if s == stage));
        }
        // A stage it does not know is shown as the engine wrote it.
        let e = EngineError::Decode {
            stage: "something new".into(),
            reason: "r".into(),
        };
        assert_eq!(
            with_lang(Lang::Zh, || e.to_string()),
            "something new 失败：r"
        );
    }
}
