//! The parent side of the engine process: starts `tokenscope engine-serve`
//! (see [`super::serve`]), writes commands to its stdin and reads events from
//! its stdout ([`super::frame`]), logs its stderr, and when it dies turns its
//! exit status and last stderr lines into a [`CrashReport`]: every request it
//! had in flight fails with the report in words, then
//! [`Event::EngineExited`] follows. The next command starts a new child.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::api::{Command, EngineError, Event, RequestId, SlotId};
use super::frame;
use super::report::{CrashReport, CrashStage, KEEP_LINES};

/// Where the engine's events go: the owner's wrapped channel.
pub(super) type Emit = Arc<Mutex<Box<dyn FnMut(Event) + Send>>>;

/// The hidden subcommand the child runs.
pub const SERVE_SUBCOMMAND: &str = "engine-serve";

/// How long a child asked to stop may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a request in flight is doing, for the crash report.
#[derive(Debug, Clone)]
enum Activity {
    Loading(PathBuf),
    Generating(SlotId),
}

/// The one place that knows which commands start a request, and what it does.
fn activity(cmd: &Command) -> Option<(RequestId, Activity)> {
    match cmd {
        Command::Load { request, model, .. } => Some((
            *request,
            // The engine process loads files (a server's model is refused).
            Activity::Loading(
                model
                    .local_path()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            ),
        )),
        // A scoring evaluates like a generation: the same crash report.
        Command::Generate { request, slot, .. }
        | Command::Score { request, slot, .. }
        | Command::ScorePrompt { request, slot, .. }
        | Command::AskText { request, slot, .. }
        | Command::Lens { request, slot, .. } => Some((*request, Activity::Generating(*slot))),
        Command::KvCost { request, slot, .. } => Some((*request, Activity::Generating(*slot))),
        Command::Rollouts { request, slot, .. } => Some((*request, Activity::Generating(*slot))),
        Command::Compare { request, req } => Some((
            *request,
            Activity::Generating(req.slots.first().copied().unwrap_or(0)),
        )),
        Command::Unload { .. }
        | Command::Steer { .. }
        | Command::Cancel { .. }
        | Command::Shutdown => None,
    }
}

/// State shared by the handle and a child's reader thread.
#[derive(Debug, Default)]
struct Shared {
    /// False once the child's stdout has ended.
    alive: bool,
    /// The handle asked it to stop: a clean exit is no news.
    stopping: bool,
    /// The handle killed it to restart it ([`ProcessEngine::restart`]).
    restarting: bool,
    /// Requests sent without a final event yet, in the order sent (the
    /// worker serves them in that order: the first is the one running).
    in_flight: Vec<(RequestId, Activity)>,
    /// The models the child holds, by slot (its `Loaded` events).
    loaded: std::collections::BTreeMap<SlotId, PathBuf>,
    /// What the request whose `Failed` was the child's last event was doing
    /// (a worker panic fails its request, then the child exits).
    last_failed: Option<Activity>,
}

/// The engine as a child process, restarted at the first command after a death.
pub(super) struct ProcessEngine {
    exe: PathBuf,
    emit: Emit,
    child: Option<Running>,
}

struct Running {
    pid: u32,
    /// Shared with the reader thread, which reaps it: killing through it
    /// never signals a recycled pid (std's `kill` does nothing once reaped).
    child: Arc<Mutex<Child>>,
    stdin: Option<BufWriter<ChildStdin>>,
    buf: Vec<u8>,
    shared: Arc<Mutex<Shared>>,
    reader: Option<JoinHandle<()>>,
    /// Signalled when the reader thread has reported the child's end.
    ended: Receiver<()>,
}

impl ProcessEngine {
    pub(super) fn new(exe: PathBuf, emit: Emit) -> Self {
        Self {
            exe,
            emit,
            child: None,
        }
    }

    fn alive(&self) -> Option<&Running> {
        self.child.as_ref().filter(|r| lock(&r.shared).alive)
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.alive().map(|r| r.pid)
    }

    /// Kills the child (one that hangs, or does not stop when asked): what it
    /// had in flight fails and [`Event::EngineExited`] follows, as for any
    /// death, with "was restarted" as how it ended; the next command starts a
    /// new child.
    pub(super) fn restart(&mut self) {
        if let Some(r) = self.alive() {
            tracing::warn!(target: "engine", "engine process {}: restarting it", r.pid);
            lock(&r.shared).restarting = true;
            let _ = lock(&r.child).kill();
        }
    }

    /// Sends `cmd` to the child, starting one first if none runs.
    pub(super) fn send(&mut self, cmd: Command) {
        match cmd {
            Command::Shutdown => return self.stop(),
            // Nothing to act on in a child that is gone: its requests failed,
            // its models went with it.
            Command::Cancel { .. } | Command::Steer { .. } | Command::Unload { .. }
                if self.alive().is_none() =>
            {
                return;
            }
            _ => {}
        }
        // Twice at most: the child may die between the check and the write.
        for _ in 0..2 {
            if self.alive().is_none() {
                self.reap();
                if let Err(e) = self.start() {
                    let error = EngineError::Unavailable(format!(
                        "{} {SERVE_SUBCOMMAND}: {e}",
                        self.exe.display()
                    ));
                    tracing::error!(target: "engine", "{error}");
                    if let Some((request, _)) = activity(&cmd) {
                        (lock(&self.emit))(Event::Failed { request, error });
                    }
                    return;
                }
            }
            let r = self.child.as_mut().expect("a child was just started");
            {
                let mut shared = lock(&r.shared);
                if !shared.alive {
                    continue;
                }
                // Recorded before the write: if the child dies now, the reader
                // fails this request too.
                if let Some(a) = activity(&cmd) {
                    shared.in_flight.push(a);
                }
                if let Command::Unload { slot } = &cmd {
                    shared.loaded.remove(slot);
                }
            }
            if let Some(stdin) = r.stdin.as_mut()
                && let Err(e) = frame::write(stdin, &mut r.buf, &cmd)
            {
                // The reader sees the end of its stdout and reports the death.
                tracing::warn!(target: "engine", "writing to the engine process: {e}");
            }
            return;
        }
        // Two children in a row died before they could take it.
        if let Some((request, _)) = activity(&cmd) {
            let error = EngineError::Unavailable(
                "the engine process ended as soon as it started (see the log file)".into(),
            );
            (lock(&self.emit))(Event::Failed { request, error });
        }
    }

    fn start(&mut self) -> std::io::Result<()> {
        let child = std::process::Command::new(&self.exe)
            .arg(SERVE_SUBCOMMAND)
            // The errors it words (a file it cannot load, a request it
            // refuses) reach the user as its text: in the parent's language,
            // which may come from a `--lang` or config the child does not see.
            .args(["--lang", crate::i18n::lang().code()])
            // Else llama.cpp may try to attach gdb for a backtrace on abort.
            .env("GGML_NO_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut child = child;
        let pid = child.id();
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let child = Arc::new(Mutex::new(child));
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(KEEP_LINES)));
        let stderr_thread = {
            let tail = tail.clone();
            std::thread::Builder::new()
                .name("tokenscope-engine-stderr".into())
                .spawn(move || pump_stderr(stderr, pid, &tail))?
        };
        let shared = Arc::new(Mutex::new(Shared {
            alive: true,
            ..Shared::default()
        }));
        let (ended_tx, ended) = channel();
        let reader = {
            let (shared, emit, child) = (shared.clone(), self.emit.clone(), child.clone());
            std::thread::Builder::new()
                .name("tokenscope-engine-reader".into())
                .spawn(move || {
                    read_events(stdout, &shared, &emit, &child);
                    report_end(&child, stderr_thread, &tail, &shared, &emit);
                    let _ = ended_tx.send(());
                })?
        };
        tracing::info!(target: "engine", "engine process {pid} started");
        self.child = Some(Running {
            pid,
            child,
            stdin: Some(BufWriter::new(stdin)),
            buf: Vec::new(),
            shared,
            reader: Some(reader),
            ended,
        });
        Ok(())
    }

    /// Forgets a dead child once its reader thread has reported it.
    fn reap(&mut self) {
        if let Some(mut r) = self.child.take()
            && let Some(t) = r.reader.take()
        {
            let _ = t.join();
        }
    }

    /// Asks the child to stop: `Shutdown`, then its stdin closed.
    fn stop(&mut self) {
        if let Some(r) = self.child.as_mut() {
            lock(&r.shared).stopping = true;
            if let Some(mut stdin) = r.stdin.take() {
                let _ = frame::write(&mut stdin, &mut r.buf, &Command::Shutdown);
            }
        }
    }

    /// After [`Self::stop`]: waits for the child to end (killing it after
    /// [`STOP_GRACE`]) and for its reader thread.
    pub(super) fn wait_stopped(&mut self) {
        if let Some(r) = self.child.as_ref()
            && r.ended.recv_timeout(STOP_GRACE).is_err()
        {
            tracing::warn!(target: "engine", "engine process {} did not stop: killing it", r.pid);
            let _ = lock(&r.child).kill();
        }
        self.reap();
    }
}

/// Passes the child's events on until its stdout ends (or a frame is bad:
/// then the child is killed, as it can no longer be understood).
fn read_events(stdout: ChildStdout, shared: &Mutex<Shared>, emit: &Emit, child: &Mutex<Child>) {
    let mut r = BufReader::with_capacity(1 << 16, stdout);
    let mut buf = Vec::new();
    loop {
        match frame::read::<Event, _>(&mut r, &mut buf) {
            Ok(Some(event)) => {
                {
                    let mut s = lock(shared);
                    s.last_failed = None;
                    if event.is_final()
                        && let Some(id) = event.request()
                        && let Some(i) = s.in_flight.iter().position(|(r, _)| *r == id)
                    {
                        let (_, activity) = s.in_flight.remove(i);
                        if matches!(event, Event::Failed { .. }) {
                            s.last_failed = Some(activity);
                        }
                    }
                    if let Event::Loaded { info, slot, .. } = &event
                        && let Some(path) = info.model.local_path()
                    {
                        s.loaded.insert(*slot, path.to_path_buf());
                    }
                }
                (lock(emit))(event);
            }
            Ok(None) => return,
            Err(e) => {
                let mut child = lock(child);
                tracing::error!(target: "engine", "engine process {}: {e}: killing it", child.id());
                let _ = child.kill();
                return;
            }
        }
    }
}

/// The child's stdout has ended: waits for it, and unless it was asked to
/// stop and did, reports its death (see the module's doc).
fn report_end(
    child: &Mutex<Child>,
    stderr_thread: JoinHandle<()>,
    tail: &Mutex<VecDeque<String>>,
    shared: &Mutex<Shared>,
    emit: &Emit,
) {
    let pid = lock(child).id();
    // Polled, not `wait`ed, so that the handle can take the lock to kill it.
    let status = loop {
        match lock(child).try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => break Err(e),
        }
    };
    // Its stderr ends with it.
    let _ = stderr_thread.join();
    let tail: Vec<String> = lock(tail).iter().cloned().collect();
    let (in_flight, stopping, loaded, last_failed) = {
        let mut s = lock(shared);
        s.alive = false;
        (
            std::mem::take(&mut s.in_flight),
            s.stopping,
            s.loaded.clone(),
            s.last_failed.take(),
        )
    };
    let (code, signal) = match &status {
        Ok(st) => (st.code(), st.signal()),
        Err(_) => (None, None),
    };
    let clean = stopping && code == Some(0);
    if clean && in_flight.is_empty() {
        tracing::info!(target: "engine", "engine process {pid} stopped");
        return;
    }
    // What it was doing: the request it was serving, else the one it failed
    // just before it ended.
    let doing = in_flight.first().map(|(_, a)| a).or(last_failed.as_ref());
    let (stage, file) = match doing {
        Some(Activity::Loading(p)) => (CrashStage::Loading, Some(p.clone())),
        Some(Activity::Generating(slot)) => (CrashStage::Generating, loaded.get(slot).cloned()),
        // Idle: the model of the first slot (the TUI's).
        None => (CrashStage::Idle, loaded.into_values().next()),
    };
    let mut report = CrashReport::new(code, signal, stage, file, &tail);
    if lock(shared).restarting {
        report.ended = "was restarted (it was not responding)".into();
    }
    tracing::error!(target: "engine", "engine process {pid}: {report}");
    let mut emit = lock(emit);
    for (request, _) in in_flight {
        emit(Event::Failed {
            request,
            error: EngineError::Crashed(Box::new(report.clone())),
        });
    }
    if !clean {
        emit(Event::EngineExited {
            report: Box::new(report),
        });
    }
}

/// Logs each line of the child's stderr (target `engine`) and keeps the last
/// [`KEEP_LINES`] for a crash report.
fn pump_stderr(stderr: ChildStderr, pid: u32, tail: &Mutex<VecDeque<String>>) {
    let mut r = BufReader::new(stderr);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match r.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("ERROR") || line.contains("GGML_ASSERT") {
            tracing::error!(target: "engine", "[{pid}] {line}");
        } else if line.starts_with("WARN") {
            tracing::warn!(target: "engine", "[{pid}] {line}");
        } else {
            tracing::info!(target: "engine", "[{pid}] {line}");
        }
        let mut t = lock(tail);
        if t.len() == KEEP_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}
