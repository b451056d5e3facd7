//! The engine: one worker owns llama.cpp; everything else talks to it
//! through [`EngineHandle`] with the protocol of [`api`] (commands in,
//! [`Event`]s out). The worker runs on a thread of this process or, so that
//! an abort in llama.cpp ends only the engine, in a child process of the same
//! binary ([`serve`]); or a server that reports log-probabilities answers
//! the same protocol ([`remote`]). [`Placement`] chooses.
//!
//! Inside, bottom up: the protocol ([`api`]; framed over a pipe by `frame`,
//! paths as raw bytes by [`path_serde`]), pure maths ([`probs`],
//! `divergence`, [`sampler`], [`resample`], [`memory`], [`template`]) and
//! failures in words ([`report`]: a dead engine process, [`crash`]: a
//! panic, [`llama_log`]: llama.cpp's logged error); the workers' parts: a
//! loaded model (`slot`), its KV cache ([`session`]), the prompt (`prompt`),
//! the inbox (`inbox`) and cancellations (`cancel`), one file per kind of
//! request (`generate`, `score`, `compare`, over `decode`), and the remote
//! worker ([`remote`]); then the worker loop (`worker`) and the entry
//! points: this handle, [`serve`] (the child's side) and `process` (the
//! parent's).

pub mod api;
mod cancel;
mod char_completion;
mod compare;
pub mod crash;
mod decode;
mod divergence;
mod frame;
mod generate;
mod inbox;
pub(crate) mod kernels;
mod kv_cost;
mod lens;
mod lens_request;
pub(crate) mod llama_log;
pub mod memory;
pub(crate) mod path_serde;
pub(crate) mod probs;
mod process;
mod prompt;
mod prompt_scores;
pub mod remote;
pub mod report;
pub mod resample;
mod rollouts;
pub mod sampler;
mod score;
pub mod serve;
pub mod session;
mod slot;
pub mod template;
mod text_answer;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

pub use api::*;
pub(crate) use cancel::Cancellations;
pub use report::{CrashReport, CrashStage};
pub(crate) use slot::{describe_backend, physical_cores_or};

/// Where the engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A worker thread of this process: an abort in llama.cpp ends the process.
    Thread,
    /// A child process running this executable's hidden `engine-serve`
    /// subcommand (the path is the executable: `std::env::current_exe()`, or
    /// `env!("CARGO_BIN_EXE_tokenscope")` in integration tests).
    Process(PathBuf),
    /// A remote server that reports log-probabilities, spoken to from a
    /// thread of this process ([`remote`]).
    Remote(remote::RemoteTarget),
}

/// The rest of the program's handle on the engine: commands in, [`Event`]s
/// out, the same methods whether the engine runs on a thread or in a child
/// process ([`Placement`]).
pub struct EngineHandle {
    transport: Transport,
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
    pub(crate) fn spawn_process<M: Send + 'static>(
        exe: PathBuf,
        events: Sender<M>,
        wrap: impl Fn(Event) -> M + Send + 'static,
    ) -> Self {
        let emit: process::Emit = Arc::new(Mutex::new(Box::new(move |e| {
            let _ = events.send(wrap(e));
        })));
        Self {
            transport: Transport::Process(process::ProcessEngine::new(exe, emit)),
        }
    }

    /// The remote engine for `target` on a thread of this process (see
    /// [`remote`]); its events go to `events` wrapped by `wrap`. A cancel is
    /// seen within ~20 ms, also while the server is silent.
    pub fn spawn_remote<M: Send + 'static>(
        target: remote::RemoteTarget,
        events: Sender<M>,
        wrap: impl Fn(Event) -> M + Send + 'static,
    ) -> Self {
        let (tx, rx) = channel();
        let cancellations = Arc::new(Cancellations::default());
        let flag = cancellations.clone();
        let thread = std::thread::Builder::new()
            .name("tokenscope-remote".into())
            .spawn(move || remote::run(target, rx, flag, move |e| events.send(wrap(e)).is_ok()))
            .expect("spawning the remote engine thread");
        Self {
            transport: Transport::Thread {
                commands: tx,
                cancellations,
                thread: Some(thread),
            },
        }
    }

    /// The engine at `placement`, events wrapped by `wrap` (see [`Self::spawn`],
    /// [`Self::spawn_process`] and [`Self::spawn_remote`]).
    pub(crate) fn spawn_at<M: Send + 'static>(
        placement: &Placement,
        events: Sender<M>,
        wrap: impl Fn(Event) -> M + Send + 'static,
    ) -> Self {
        match placement {
            Placement::Thread => Self::spawn(events, wrap),
            Placement::Process(exe) => Self::spawn_process(exe.clone(), events, wrap),
            Placement::Remote(target) => Self::spawn_remote(target.clone(), events, wrap),
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

    /// Restarts an engine that hangs: its child process is killed (what it had
    /// in flight fails, [`Event::EngineExited`] follows) and the next command
    /// starts a new one, with no model loaded. Nothing for a worker thread,
    /// which cannot be stopped from outside.
    pub fn restart(&mut self) {
        if let Transport::Process(p) = &mut self.transport {
            p.restart();
        }
    }

    /// Process id of the engine's child process while one runs; `None` for a
    /// worker thread, or before the first command and after a death.
    pub fn child_pid(&self) -> Option<u32> {
        match &self.transport {
            Transport::Thread { .. } => None,
            Transport::Process(p) => p.pid(),
        }
    }

    /// Sends any command of the protocol, whatever the transport. A cancel
    /// also sets the request's flag at once (checked between tokens, prefill
    /// chunks and while loading) and wakes a paused request.
    pub fn send(&mut self, cmd: Command) {
        match &mut self.transport {
            Transport::Thread {
                commands,
                cancellations,
                ..
            } => {
                match &cmd {
                    Command::Cancel { request } => cancellations.cancel(*request),
                    Command::Shutdown => cancellations.cancel_all(),
                    _ => {}
                }
                let _ = commands.send(cmd);
            }
            Transport::Process(p) => p.send(cmd),
        }
    }

    /// Loads `model` into `slot` as `request` (an id of the caller's choosing).
    pub fn load(
        &mut self,
        request: RequestId,
        slot: SlotId,
        model: ModelRef,
        settings: LoadSettings,
    ) {
        self.send(Command::Load {
            request,
            slot,
            model,
            settings,
        });
    }

    /// Generates with the model in `slot` as `request` (an id of the caller's choosing).
    pub fn generate(&mut self, request: RequestId, slot: SlotId, req: GenerateRequest) {
        self.send(Command::Generate { request, slot, req });
    }

    /// Scores `req.text` with the model in `slot` as `request` (an id of the
    /// caller's choosing); see [`Command::Score`].
    pub fn score(&mut self, request: RequestId, slot: SlotId, req: ScoreRequest) {
        self.send(Command::Score { request, slot, req });
    }

    /// Scores positions of a prompt in `slot`'s KV cache as `request`, after
    /// the reply instead of during its prefill; see [`Command::ScorePrompt`].
    pub fn score_prompt(&mut self, request: RequestId, slot: SlotId, req: PromptScoreRequest) {
        self.send(Command::ScorePrompt { request, slot, req });
    }

    /// Asks the model in `slot` about a text at a step as `request`; see
    /// [`Command::AskText`] (served inside a paused reply's pause too).
    pub fn ask_text(&mut self, request: RequestId, slot: SlotId, req: api::AskTextRequest) {
        self.send(Command::AskText { request, slot, req });
    }

    /// The layer lens of one position as `request`; see [`Command::Lens`].
    pub fn lens(&mut self, request: RequestId, slot: SlotId, req: api::LensRequest) {
        self.send(Command::Lens { request, slot, req });
    }

    /// Measures what the KV cache saves with the model in `slot` as
    /// `request`; see [`Command::KvCost`].
    pub fn kv_cost(&mut self, request: RequestId, slot: SlotId, req: KvCostRequest) {
        self.send(Command::KvCost { request, slot, req });
    }

    /// Rolls out the top candidates after `req.tokens` with the model in
    /// `slot` as `request`; see [`Command::Rollouts`].
    pub fn rollouts(&mut self, request: RequestId, slot: SlotId, req: RolloutRequest) {
        self.send(Command::Rollouts { request, slot, req });
    }

    /// Cancels `request` (a load, a generation or a scoring).
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
