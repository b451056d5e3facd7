//! The engine: one worker thread owns llama.cpp; everything else talks to it
//! through [`EngineHandle`] (commands in, [`Event`]s out).

pub mod crash;
pub mod probs;
pub mod sampler;
pub mod session;
pub mod template;
mod worker;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use serde::Serialize;

pub use sampler::SamplingParams;
pub use worker::{describe_backend, physical_cores};

/// `threads`, or the number of physical cores when it is 0.
pub fn physical_cores_or(threads: u32) -> u32 {
    if threads == 0 {
        physical_cores()
    } else {
        threads
    }
}

/// Most candidates a request may ask to be reported per token
/// ([`GenerateRequest::top_k_inspect`], `--candidates`, `inspector_top_k`).
pub const MAX_CANDIDATES: usize = 256;

/// Identifies one request; every event names the request it answers.
pub type RequestId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// How a model is loaded: context size, threads, GPU offload.
#[derive(Debug, Clone, PartialEq)]
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

/// One generation request: the whole conversation so far; the worker reuses
/// whatever prefix of it is already in the KV cache.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub messages: Vec<ChatMessage>,
    /// Skip the chat template: the messages' contents are concatenated as plain text.
    pub raw: bool,
    pub sampling: SamplingParams,
    pub max_tokens: u32,
    /// Number of candidates reported per token: 0 (inspector off) to
    /// [`MAX_CANDIDATES`]; more fails the request.
    pub top_k_inspect: usize,
}

#[derive(Debug)]
pub enum Command {
    Load {
        request: RequestId,
        path: PathBuf,
        settings: LoadSettings,
    },
    Generate {
        request: RequestId,
        req: GenerateRequest,
    },
    Shutdown,
}

/// How the prompt is built from the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatMode {
    /// The GGUF's own `tokenizer.chat_template`, rendered with minijinja.
    Template,
    /// llama.cpp's built-in template matching (the Jinja template failed to
    /// render; [`Event::Started`] carries the reason).
    Builtin,
    /// No template: plain completion.
    Plain,
}

impl ChatMode {
    pub fn describe(self) -> &'static str {
        match self {
            ChatMode::Template => "chat (model's template)",
            ChatMode::Builtin => "chat (llama.cpp built-in template)",
            ChatMode::Plain => "plain completion (no chat template)",
        }
    }
}

/// A candidate for the next token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub id: i32,
    /// Readable rendering of this token alone (escaped; partial UTF-8 as `<0xE4>`).
    pub text: String,
    /// Probability under the model (softmax of raw logits).
    pub p: f32,
    /// Probability under the distribution the sampler drew from (0 if cut off).
    pub p_sampled: f32,
    pub logit: f32,
}

/// One generated token with what the model considered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenStep {
    pub index: usize,
    pub id: i32,
    pub bytes: Vec<u8>,
    /// Text this token completes in the reply after UTF-8 assembly (may be empty
    /// when the token ends inside a multi-byte character; if the reply ends
    /// there, [`Event::Tail`] carries the rest).
    pub text: String,
    /// This token alone, readable (see [`Candidate::text`]).
    pub piece: String,
    pub p: f32,
    pub p_sampled: f32,
    pub logit: f32,
    /// Entropy of the model's distribution, in bits.
    pub entropy: f32,
    /// log-sum-exp of the raw logits: with `logit` this recovers any probability.
    pub lse: f32,
    pub top: Vec<Candidate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub stop: StopReason,
    /// Prompt tokens in total (evaluated + reused).
    pub n_prompt: usize,
    pub n_prompt_evaluated: usize,
    pub n_prompt_reused: usize,
    pub n_generated: usize,
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
    /// Mean time spent computing the inspector (top-k, entropy, p_sampled) per token.
    pub inspector_us_per_token: f64,
}

/// What a loaded model is, for the status bar and `info`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
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

    /// "CPU, 2 threads" or "CUDA (…), 19 layers on the GPU".
    pub fn backend_text(&self) -> String {
        if self.gpu_layers > 0 {
            format!("{}, {} layers on the GPU", self.backend, self.gpu_layers)
        } else {
            format!("{}, {} threads", self.backend, self.threads)
        }
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

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    LoadProgress {
        request: RequestId,
        fraction: f32,
    },
    Loaded {
        request: RequestId,
        info: Box<ModelInfo>,
    },
    /// The prompt is built and tokenized; prefill starts.
    Started {
        request: RequestId,
        mode: ChatMode,
        n_prompt: usize,
        n_reused: usize,
        dropped_messages: usize,
        /// What the user should know about how the prompt was built: the
        /// chat template refused the conversation and what was done instead
        /// (text from the model file already escaped). `None` when all went as asked.
        note: Option<String>,
    },
    PrefillProgress {
        request: RequestId,
        done: usize,
        total: usize,
    },
    Token {
        request: RequestId,
        step: Box<TokenStep>,
    },
    /// The reply ended inside a multi-byte character: its bytes, as U+FFFD,
    /// end the reply's text (after the last token's [`TokenStep::text`]).
    /// Sent just before `Done` or `Failed`, only when bytes were pending.
    Tail {
        request: RequestId,
        text: String,
    },
    Done {
        request: RequestId,
        stats: Stats,
    },
    Failed {
        request: RequestId,
        error: String,
    },
}

impl Event {
    pub fn request(&self) -> RequestId {
        match self {
            Event::LoadProgress { request, .. }
            | Event::Loaded { request, .. }
            | Event::Started { request, .. }
            | Event::PrefillProgress { request, .. }
            | Event::Token { request, .. }
            | Event::Tail { request, .. }
            | Event::Done { request, .. }
            | Event::Failed { request, .. } => *request,
        }
    }

    /// True for the one event that ends a request.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Event::Loaded { .. } | Event::Done { .. } | Event::Failed { .. }
        )
    }
}

/// Requests cancelled so far, shared by the handle and the worker. Exact ids, so
/// stopping a reply never cancels the model load queued before it.
#[derive(Debug, Default)]
pub struct Cancellations {
    ids: Mutex<HashSet<RequestId>>,
    all: AtomicBool,
}

impl Cancellations {
    pub fn cancel(&self, request: RequestId) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request);
    }

    pub fn cancel_all(&self) {
        self.all.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self, request: RequestId) -> bool {
        self.all.load(Ordering::SeqCst)
            || self
                .ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&request)
    }

    /// Forgets a finished request.
    pub fn finish(&self, request: RequestId) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&request);
    }
}

/// The rest of the program's handle on the engine worker.
pub struct EngineHandle {
    commands: Sender<Command>,
    cancellations: Arc<Cancellations>,
    next_request: RequestId,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Starts the worker; its events go to `events` wrapped by `wrap` (so the
    /// TUI can merge them into its own message channel). `wrap` runs on the
    /// worker thread.
    ///
    /// If the worker panics, the request it was serving fails with the panic's
    /// message and location ("the engine crashed: … (src/…:line)"), and the
    /// thread then ends by that panic: `wrap` and what it captured are dropped
    /// while unwinding, where [`crash::engine_panic_message`] gives the message.
    /// The first spawn installs the panic hook of [`crash`].
    pub fn spawn<M: Send + 'static>(
        events: Sender<M>,
        wrap: impl Fn(Event) -> M + Send + 'static,
    ) -> Self {
        let (tx, rx) = channel();
        let cancellations = Arc::new(Cancellations::default());
        let flag = cancellations.clone();
        crash::install_panic_hook();
        let thread = std::thread::Builder::new()
            .name(crash::ENGINE_THREAD.into())
            .spawn(move || worker::run(rx, flag, move |e| events.send(wrap(e)).is_ok()))
            .expect("spawning the engine thread");
        Self {
            commands: tx,
            cancellations,
            next_request: 1,
            thread: Some(thread),
        }
    }

    /// Convenience for headless use: a handle plus the receiver of its events.
    pub fn spawn_with_receiver() -> (Self, Receiver<Event>) {
        let (tx, rx) = channel();
        (Self::spawn(tx, |e| e), rx)
    }

    fn next_id(&mut self) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    pub fn load(&mut self, path: PathBuf, settings: LoadSettings) -> RequestId {
        let request = self.next_id();
        let _ = self.commands.send(Command::Load {
            request,
            path,
            settings,
        });
        request
    }

    pub fn generate(&mut self, req: GenerateRequest) -> RequestId {
        let request = self.next_id();
        let _ = self.commands.send(Command::Generate { request, req });
        request
    }

    /// Cancels `request` (checked between tokens, prefill chunks and while loading).
    pub fn cancel(&self, request: RequestId) {
        self.cancellations.cancel(request);
    }

    /// Asks the worker to stop and waits for it.
    pub fn shutdown(&mut self) {
        self.cancellations.cancel_all();
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
