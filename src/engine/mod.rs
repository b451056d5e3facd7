//! The engine: one worker owns llama.cpp; everything else talks to it
//! through [`EngineHandle`] with the protocol of [`api`] (commands in,
//! [`Event`]s out).

pub mod api;
pub mod crash;
mod generate;
pub mod probs;
mod prompt;
pub mod sampler;
pub mod session;
mod slot;
pub mod template;
mod worker;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

pub use api::*;
pub use slot::{describe_backend, physical_cores};

/// `threads`, or the number of physical cores when it is 0.
pub fn physical_cores_or(threads: u32) -> u32 {
    if threads == 0 {
        physical_cores()
    } else {
        threads
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

/// The rest of the program's handle on the engine worker. Request ids are
/// the caller's (unique among its requests in flight).
pub struct EngineHandle {
    commands: Sender<Command>,
    cancellations: Arc<Cancellations>,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Starts the worker; its events go to `events` wrapped by `wrap` (so the
    /// TUI can merge them into its own message channel). `wrap` runs on the
    /// worker thread.
    ///
    /// If the worker panics, the request it was serving fails with
    /// [`EngineError::Panicked`] (message and location), and the thread then
    /// ends by that panic: `wrap` and what it captured are dropped while
    /// unwinding, where [`crash::engine_panic_message`] gives the message.
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
            thread: Some(thread),
        }
    }

    /// Convenience for headless use: a handle plus the receiver of its events.
    pub fn spawn_with_receiver() -> (Self, Receiver<Event>) {
        let (tx, rx) = channel();
        (Self::spawn(tx, |e| e), rx)
    }

    /// Sends any command of the protocol. A cancel also sets the request's
    /// flag at once (checked between tokens, prefill chunks and while loading).
    pub fn send(&mut self, cmd: Command) {
        match &cmd {
            Command::Cancel { request } => self.cancellations.cancel(*request),
            Command::Shutdown => self.cancellations.cancel_all(),
            _ => {}
        }
        let _ = self.commands.send(cmd);
    }

    /// Loads `path` into `slot` as `request`.
    pub fn load(
        &mut self,
        request: RequestId,
        slot: SlotId,
        path: PathBuf,
        settings: LoadSettings,
    ) {
        self.send(Command::Load {
            request,
            slot,
            path,
            settings,
        });
    }

    /// Generates with the model in `slot` as `request`.
    pub fn generate(&mut self, request: RequestId, slot: SlotId, req: GenerateRequest) {
        self.send(Command::Generate { request, slot, req });
    }

    /// Cancels `request` (a load or a generation).
    pub fn cancel(&mut self, request: RequestId) {
        self.send(Command::Cancel { request });
    }

    /// Asks the worker to stop and waits for it.
    pub fn shutdown(&mut self) {
        self.send(Command::Shutdown);
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
