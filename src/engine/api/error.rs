//! Why a request failed, in words for the user: the engine's errors
//! ([`EngineError`]) and, among them, a remote server's ([`RemoteError`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::ids::{MAX_SLOTS, SlotId};
use crate::engine::path_serde::path_bytes;
use crate::engine::report::CrashReport;

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
    Remote(#[from] RemoteError),
    /// This build's llama.cpp kernels need instructions the CPU lacks
    /// (built for a newer CPU): what it lacks and what to do.
    #[error("{0}")]
    WrongCpu(String),
}

/// Why a remote request failed, in words for the user.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
pub enum RemoteError {
    #[error("invalid server URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("cannot reach the server at {url}: {reason} (is it running? check the host and port)")]
    Unreachable { url: String, reason: String },
    #[error("the server at {url} did not answer within {seconds} s ({what})")]
    Timeout {
        url: String,
        seconds: u64,
        what: String,
    },
    #[error("the server at {url} refused the API key (HTTP {status}): {hint}")]
    Unauthorized {
        url: String,
        status: u16,
        hint: String,
        /// The body says the key itself was rejected (llama-server's
        /// `"type": "authentication_error"`), not only that this path is
        /// closed (a proxy or gateway answering 401/403 for routes it hides).
        key_rejected: bool,
    },
    #[error(
        "the server at {url} has no model {model:?}: it serves {} (pick one with --model)",
        available.join(", ")
    )]
    UnknownModel {
        url: String,
        model: String,
        available: Vec<String>,
    },
    #[error(
        "the server at {url} serves {} models ({}): pick one with --model",
        available.len(),
        available.join(", ")
    )]
    WhichModel { url: String, available: Vec<String> },
    #[error("the server at {url} answered {what} with HTTP {status}: {message}")]
    Status {
        url: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "the server at {url} sent text without log-probabilities, so the inspector has nothing to show: {hint}"
    )]
    NoLogprobs { url: String, hint: String },
    #[error(
        "the connection to {url} dropped mid-reply after {tokens} token(s): {reason}. The partial reply is kept"
    )]
    Dropped {
        url: String,
        tokens: usize,
        reason: String,
    },
    #[error("the server at {url} sent something tokenscope cannot read ({what}): {detail}")]
    Protocol {
        url: String,
        what: String,
        detail: String,
    },
}
