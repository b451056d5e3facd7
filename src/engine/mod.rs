//! The engine: one worker owns llama.cpp; everything else talks to it
//! through [`EngineHandle`] (commands in, [`Event`]s out). The worker runs on
//! a thread of this process or, so that an abort in llama.cpp ends only the
//! engine, in a child process of the same binary ([`serve`], [`Placement`]).

pub mod crash;
mod frame;
pub mod probs;
mod process;
pub mod report;
pub mod sampler;
pub mod serve;
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

use serde::{Deserialize, Serialize};

pub use report::{CrashReport, CrashStage};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// One generation request: the whole conversation so far; the worker reuses
/// whatever prefix of it is already in the KV cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// What the engine is asked to do. Every variant crosses the pipe to the
/// engine process (serde), so all of it derives `Serialize + Deserialize`.
#[derive(Debug, Serialize, Deserialize)]
pub enum Command {
    Load {
        request: RequestId,
        #[serde(with = "path_bytes")]
        path: PathBuf,
        settings: LoadSettings,
    },
    Generate {
        request: RequestId,
        req: GenerateRequest,
    },
    /// Stop `request` (checked between tokens, prefill chunks and while
    /// loading). Applied at once by whoever receives it (the handle, or the
    /// engine process's stdin reader), never queued behind other commands.
    Cancel {
        request: RequestId,
    },
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What the engine reports. Every event but [`Event::EngineExited`] answers
/// one request, named by `request`; a request gets zero or more progress
/// events and then exactly one final event ([`Event::is_final`]: `Loaded`,
/// `Done` or `Failed`), also when the engine process dies under it (then a
/// `Failed` carrying the [`CrashReport`] in words, sent before
/// [`Event::EngineExited`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The engine process ended when it was not asked to (an abort in
    /// llama.cpp, a signal, a crash): how, what it was doing and what it last
    /// wrote. Sent once per death, after the `Failed` of every request it had
    /// in flight, also when it died idle. Answers no request
    /// ([`Event::request`] is 0). The handle starts a fresh engine process at
    /// the next command; no model is loaded in it.
    EngineExited {
        report: Box<CrashReport>,
    },
}

impl Event {
    /// The request this event answers; 0 (never a request id) for
    /// [`Event::EngineExited`].
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
            Event::EngineExited { .. } => 0,
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

/// Where the engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A worker thread of this process: an abort in llama.cpp ends the process.
    Thread,
    /// A child process running this executable's hidden `engine-serve`
    /// subcommand (the path is the executable: `std::env::current_exe()`, or
    /// `env!("CARGO_BIN_EXE_tokenscope")` in integration tests).
    Process(PathBuf),
}

/// The rest of the program's handle on the engine: commands in, [`Event`]s
/// out, the same methods whether the engine runs on a thread or in a child
/// process ([`Placement`]).
pub struct EngineHandle {
    transport: Transport,
    next_request: RequestId,
}

enum Transport {
    Thread {
        commands: Sender<Command>,
        cancellations: Arc<Cancellations>,
        thread: Option<JoinHandle<()>>,
    },
    Process(process::ProcessEngine),
}

impl EngineHandle {
    /// Starts the worker thread; its events go to `events` wrapped by `wrap`
    /// (so the TUI can merge them into its own message channel). `wrap` runs
    /// on the worker thread.
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
            transport: Transport::Thread {
                commands: tx,
                cancellations,
                thread: Some(thread),
            },
            next_request: 1,
        }
    }

    /// The engine in a child process of `exe` (see [`Placement::Process`]);
    /// its events go to `events` wrapped by `wrap`, which runs on a reader
    /// thread of this process.
    ///
    /// The child starts at the first command. When it dies (an abort in
    /// llama.cpp, a signal), every request it had in flight fails with a
    /// [`CrashReport`] in words, then [`Event::EngineExited`] follows; the
    /// next command starts a fresh child (restart is lazy: a dead child costs
    /// nothing until the engine is used again). Nothing the child prints
    /// reaches this process's stdout or stderr: its stderr goes to the log
    /// (target `engine`).
    pub fn spawn_process<M: Send + 'static>(
        exe: PathBuf,
        events: Sender<M>,
        wrap: impl Fn(Event) -> M + Send + 'static,
    ) -> Self {
        let emit: process::Emit = Arc::new(Mutex::new(Box::new(move |e| {
            let _ = events.send(wrap(e));
        })));
        Self {
            transport: Transport::Process(process::ProcessEngine::new(exe, emit)),
            next_request: 1,
        }
    }

    /// The engine at `placement`, events wrapped by `wrap` (see [`Self::spawn`]
    /// and [`Self::spawn_process`]).
    pub fn spawn_at<M: Send + 'static>(
        placement: &Placement,
        events: Sender<M>,
        wrap: impl Fn(Event) -> M + Send + 'static,
    ) -> Self {
        match placement {
            Placement::Thread => Self::spawn(events, wrap),
            Placement::Process(exe) => Self::spawn_process(exe.clone(), events, wrap),
        }
    }

    /// Convenience for headless use: a worker thread plus the receiver of its events.
    pub fn spawn_with_receiver() -> (Self, Receiver<Event>) {
        Self::spawn_with_receiver_at(&Placement::Thread)
    }

    /// Convenience for headless use: the engine at `placement` plus the
    /// receiver of its events.
    pub fn spawn_with_receiver_at(placement: &Placement) -> (Self, Receiver<Event>) {
        let (tx, rx) = channel();
        (Self::spawn_at(placement, tx, |e| e), rx)
    }

    /// Process id of the engine's child process while one runs; `None` for a
    /// worker thread, or before the first command and after a death.
    pub fn child_pid(&self) -> Option<u32> {
        match &self.transport {
            Transport::Thread { .. } => None,
            Transport::Process(p) => p.pid(),
        }
    }

    fn next_id(&mut self) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    /// Every command goes through here, whatever the transport.
    fn send(&mut self, cmd: Command) {
        match &mut self.transport {
            Transport::Thread {
                commands,
                cancellations,
                ..
            } => match cmd {
                Command::Cancel { request } => cancellations.cancel(request),
                Command::Shutdown => {
                    cancellations.cancel_all();
                    let _ = commands.send(Command::Shutdown);
                }
                cmd => {
                    let _ = commands.send(cmd);
                }
            },
            Transport::Process(p) => p.send(cmd),
        }
    }

    pub fn load(&mut self, path: PathBuf, settings: LoadSettings) -> RequestId {
        let request = self.next_id();
        self.send(Command::Load {
            request,
            path,
            settings,
        });
        request
    }

    pub fn generate(&mut self, req: GenerateRequest) -> RequestId {
        let request = self.next_id();
        self.send(Command::Generate { request, req });
        request
    }

    /// Cancels `request` (checked between tokens, prefill chunks and while loading).
    pub fn cancel(&mut self, request: RequestId) {
        self.send(Command::Cancel { request });
    }

    /// Asks the engine to stop and waits for it (a child process that does
    /// not stop within a few seconds is killed).
    pub fn shutdown(&mut self) {
        self.send(Command::Shutdown);
        match &mut self.transport {
            Transport::Thread { thread, .. } => {
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
            Transport::Process(p) => p.wait_stopped(),
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Paths as their raw bytes on the wire (serde's own `PathBuf` refuses
/// non-UTF-8 names, which Unix file names may be).
mod path_bytes {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(p.as_os_str().as_bytes())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        let bytes: serde_bytes_vec::Bytes = Deserialize::deserialize(d)?;
        Ok(PathBuf::from(OsString::from_vec(bytes.0)))
    }

    /// A byte vector read from either bytes or a sequence of u8.
    mod serde_bytes_vec {
        pub struct Bytes(pub Vec<u8>);

        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a path as bytes")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(v.to_vec()))
                    }
                    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                        Ok(Bytes(v))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Bytes, E> {
                        Ok(Bytes(v.as_bytes().to_vec()))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Bytes, A::Error> {
                        let mut v = Vec::new();
                        while let Some(b) = seq.next_element::<u8>()? {
                            v.push(b);
                        }
                        Ok(Bytes(v))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }
}

/// An optional path as raw bytes (see `path_bytes`).
mod path_bytes_opt {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "super::path_bytes")] PathBuf);

    pub fn serialize<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        p.as_ref().map(|p| Wrap(p.clone())).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}
