//! The terminal UI: chat with a model while watching its next-token
//! predictions.
//!
//! Plain threads, one channel: an input thread sends terminal events, the
//! engines (the local one a child process read by a thread, a remote one a
//! thread of its own) send [`crate::engine::Event`]s, both as [`Msg`]. The main
//! loop drains every pending message through [`update()`] (no I/O), carries out
//! the [`Effect`]s it returns through a [`Host`], and redraws with [`render()`]
//! at most ~60 times a second.
//!
//! Layers, bottom up (`scripts/imports.py` checks that no import points up
//! or goes round a circle): the data ([`state`] and its parts, the keymap
//! [`action`], the [`effect`]s, layout, wrapping and theme); the shared
//! transitions ([`transitions`], [`reply`], [`compare`], the engine's events);
//! the [`components`], which draw themselves and handle their own keys,
//! returning effects; the app ([`update`](mod@update), [`render`](mod@render),
//! the run loop with its `execute` and [`saving`], the benches).

mod abort_guard;
pub(crate) mod action;
pub(crate) mod asking;
pub(crate) mod bench;
pub(crate) mod bench_long;
pub mod compare;
pub(crate) mod components;
pub mod effect;
mod engine_events;
pub(crate) mod heat_scale;
pub(crate) mod input_view;
pub(crate) mod kv_view;
pub(crate) mod layout;
pub(crate) mod lens_view;
pub(crate) mod live;
pub mod models;
pub(crate) mod outcome;
pub(crate) mod prompt_scoring;
pub(crate) mod render;
pub(crate) mod reply;
pub(crate) mod rollouts_view;
pub(crate) mod saving;
mod signals;
pub mod state;
pub(crate) mod theme;
pub(crate) mod transitions;
pub(crate) mod update;
pub(crate) mod wrap;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_asking;
#[cfg(test)]
mod tests_branching;
#[cfg(test)]
mod tests_color;
#[cfg(test)]
mod tests_compare;
#[cfg(test)]
mod tests_kv_cost;
#[cfg(test)]
mod tests_lens;
#[cfg(test)]
mod tests_linebreak;
#[cfg(test)]
mod tests_names;
#[cfg(test)]
mod tests_prompt_scoring;
#[cfg(test)]
mod tests_rollouts;
#[cfg(test)]
mod tests_sampler;
#[cfg(test)]
mod tests_status;
#[cfg(test)]
mod tests_store;
#[cfg(test)]
mod tests_wrap_cache;
#[cfg(test)]
mod tests_zh;

use std::io::{Write, stdout};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};

use crate::engine::{
    EngineHandle, GenerateRequest, LoadSettings, ModelRef, RequestId, crash, remote,
};
use crate::store;

pub use effect::Effect;
pub use render::render;
pub use state::State;
pub use update::{Msg, start, update};

/// What `tokenscope` (the chat TUI) starts with.
pub struct TuiOptions {
    /// The executable the engine process runs (`std::env::current_exe()`).
    pub engine_exe: PathBuf,
    /// Already merged: file < env < flags.
    pub config: crate::config::Config,
    /// Model to load at start; None opens the picker.
    pub initial_model: Option<ModelRef>,
    /// Where the picker looks for models.
    pub places: crate::catalog::Places,
    /// Plain completion, no chat template.
    pub raw: bool,
    /// The saved conversations' database (`None`: nothing is saved).
    pub conversations_db: Option<PathBuf>,
    /// Reopen the last saved conversation (`--resume`); its model is loaded
    /// when `initial_model` is `None` and its file is there, else
    /// `fallback_model` (as when there is none to resume).
    pub resume: bool,
    pub fallback_model: Option<ModelRef>,
    /// Remote servers whose models the picker lists next to local files
    /// (`[[servers]]`, `--server`): a name and the server, or why it cannot
    /// be used (an API key variable not set).
    pub servers: Vec<(String, Result<crate::engine::remote::RemoteTarget, String>)>,
}

/// What the loop does for `update`'s effects (the engine and the model scan);
/// tests substitute a fake.
pub trait Host {
    /// Loads `model` as request `request` (drawn by `update`).
    fn load(&mut self, request: RequestId, model: ModelRef, settings: LoadSettings);
    /// Generates as request `request` (drawn by `update`).
    fn generate(&mut self, request: RequestId, req: GenerateRequest);
    fn cancel(&mut self, request: RequestId);
    /// Scores prompt positions as request `request` (drawn by `update`), on
    /// the engine that wrote the last reply.
    fn score_prompt(&mut self, request: RequestId, req: crate::engine::PromptScoreRequest);
    /// The layer lens as request `request` (drawn by `update`), on the
    /// engine in use.
    fn lens(&mut self, request: RequestId, req: crate::engine::LensRequest);
    /// Rollouts of the top candidates as request `request` (drawn by
    /// `update`), on the engine in use.
    fn rollouts(&mut self, request: RequestId, req: crate::engine::RolloutRequest);
    /// What the KV cache saves, as request `request` (drawn by `update`),
    /// on the engine in use.
    fn kv_cost(&mut self, request: RequestId, req: crate::engine::KvCostRequest);
    /// Asks about a text at a step as request `request` (drawn by
    /// `update`), on the engine in use ([`crate::tui::asking`]).
    fn ask_text(&mut self, request: RequestId, req: crate::engine::AskTextRequest);
    /// Steps, forces or runs `request` (a generation in step mode).
    fn steer(&mut self, request: RequestId, steer: effect::Steer);
    /// Scans `places` and sends the result as [`Msg::Models`], without blocking.
    fn refresh_models(&mut self, places: crate::catalog::Places);
    /// Comparing: loads model B into the local engine's slot
    /// [`compare::SLOT_B`], compares, or frees that slot, as request
    /// `request` (drawn by `update`; unused by an unload).
    fn compare(&mut self, request: RequestId, cmd: compare::CompareCmd);
    /// Kills and restarts an engine that does not respond (see
    /// [`EngineHandle::restart`]).
    fn restart_engine(&mut self);
    /// The saved conversations, when this host keeps them (by default it
    /// does not: nothing is saved).
    fn saver(&mut self) -> Option<&mut saving::Saver> {
        None
    }
}

/// Carries out `effects`; returns true when the app should quit.
pub fn execute(s: &mut State, effects: Vec<Effect>, host: &mut impl Host) -> bool {
    let mut quit = false;
    let mut queue = std::collections::VecDeque::from(effects);
    while let Some(e) = queue.pop_front() {
        match e {
            Effect::Generate(id, req) => host.generate(id, req),
            Effect::Load(id, model) => host.load(id, model, s.config.load_settings()),
            Effect::Cancel(id) => host.cancel(id),
            Effect::ScorePrompt(id, req) => host.score_prompt(id, req),
            Effect::Lens(id, req) => host.lens(id, req),
            Effect::Rollouts(id, req) => host.rollouts(id, req),
            Effect::KvCost(id, req) => host.kv_cost(id, req),
            Effect::AskText(id, req) => host.ask_text(id, req),
            Effect::Compare(id, cmd) => {
                if let compare::CompareCmd::LoadB(path, settings) = &cmd {
                    s.compare.b_memory = compare::memory_need(path, settings);
                }
                host.compare(id, cmd);
            }
            Effect::Steer(steer) => {
                if let Some(g) = &s.session.generation {
                    host.steer(g.request, steer);
                }
            }
            Effect::RefreshModels => host.refresh_models(s.places.clone()),
            Effect::RestartEngine => host.restart_engine(),
            Effect::Save => saving::save(s, host, None),
            Effect::SaveAway(id, conv) => saving::save(s, host, Some((id, conv))),
            Effect::ListChats => saving::list(s, host),
            Effect::OpenChat(id) => queue.extend(saving::open(s, host, id)),
            Effect::RenameChat(id, title) => {
                queue.extend(saving::change(s, host, id, Some(&title)))
            }
            Effect::DeleteChat(id) => queue.extend(saving::change(s, host, id, None)),
            Effect::Quit => quit = true,
        }
    }
    quit
}

/// Shortest time between two frames (~60 frames/s).
pub const FRAME: Duration = Duration::from_millis(16);

/// The main loop: until an effect says quit (or every sender is gone),
/// drains pending messages, updates, and redraws when something changed.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    rx: &Receiver<Msg>,
    host: &mut impl Host,
    s: &mut State,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    loop {
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            terminal.draw(|f| render(s, f))?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        let first = if dirty {
            let wait = last_draw.map_or(Duration::ZERO, |t| FRAME.saturating_sub(t.elapsed()));
            match rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => return Ok(()),
            }
        };
        let mut next = Some(first);
        // Drain what is pending (bounded, so a flood cannot starve drawing).
        let mut n = 0;
        while let Some(m) = next.take() {
            s.session.clock = Instant::now();
            let fx = update(s, m);
            if execute(s, fx, host) {
                return Ok(());
            }
            n += 1;
            if n < 100_000 {
                next = rx.try_recv().ok();
            }
        }
        if let Some(err) = s.fatal.take() {
            anyhow::bail!(err);
        }
        dirty = true;
    }
}

/// The real host: the local engine (a child process), one remote engine per
/// server used, and a model scanner thread. A load goes to the engine its
/// [`ModelRef`] names (a local file: the local engine; a server's model: that
/// server's); replies go to the engine whose model loaded last.
struct RealHost {
    /// `engines[0]` is the local engine; the others are remote, by URL.
    engines: Vec<(Option<String>, EngineHandle)>,
    /// Index in `engines` of the one whose model loaded last (set by its
    /// events' wrapper, on its engine thread).
    active: Arc<std::sync::atomic::AtomicUsize>,
    /// Which engine serves each request sent (for cancel and steering).
    routes: std::collections::HashMap<RequestId, usize>,
    servers: Vec<(String, Result<remote::RemoteTarget, String>)>,
    /// The saved conversations (None: nothing is saved).
    saver: Option<saving::Saver>,
    tx: Sender<Msg>,
}

impl RealHost {
    fn new(
        local: EngineHandle,
        tx: Sender<Msg>,
        servers: Vec<(String, Result<remote::RemoteTarget, String>)>,
    ) -> Self {
        Self {
            engines: vec![(None, local)],
            active: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            routes: Default::default(),
            servers,
            saver: None,
            tx,
        }
    }

    /// The engine for a load of `model`, started for a server not used before.
    fn engine_for(&mut self, model: &ModelRef) -> usize {
        let Some(url) = model.server() else {
            return 0;
        };
        if let Some(i) = self
            .engines
            .iter()
            .position(|(u, _)| u.as_deref() == Some(url))
        {
            return i;
        }
        let target = self
            .servers
            .iter()
            .filter_map(|(_, t)| t.as_ref().ok())
            .find(|t| t.url == url)
            .cloned()
            .or_else(|| remote::RemoteTarget::new(url, None).ok());
        let Some(target) = target else {
            return 0;
        };
        let i = self.engines.len();
        let active = self.active.clone();
        let handle = EngineHandle::spawn_remote(target, self.tx.clone(), move |e| {
            if let crate::engine::Event::Loaded { .. } = &e {
                active.store(i, Ordering::SeqCst);
            }
            Msg::Engine(e)
        });
        self.engines.push((Some(url.to_string()), handle));
        i
    }

    fn route(&self, request: RequestId) -> usize {
        self.routes
            .get(&request)
            .copied()
            .unwrap_or_else(|| self.active.load(Ordering::SeqCst))
    }
}

impl Host for RealHost {
    fn load(&mut self, id: RequestId, model: ModelRef, settings: LoadSettings) {
        let i = self.engine_for(&model);
        self.routes.insert(id, i);
        self.engines[i].1.load(id, 0, model, settings);
    }

    fn generate(&mut self, id: RequestId, req: GenerateRequest) {
        let i = self.active.load(Ordering::SeqCst);
        self.routes.insert(id, i);
        self.engines[i].1.generate(id, 0, req);
    }

    fn cancel(&mut self, request: RequestId) {
        let i = self.route(request);
        self.engines[i].1.cancel(request)
    }

    fn score_prompt(&mut self, id: RequestId, req: crate::engine::PromptScoreRequest) {
        let i = self.active.load(Ordering::SeqCst);
        self.routes.insert(id, i);
        self.engines[i].1.score_prompt(id, 0, req);
    }

    fn ask_text(&mut self, id: RequestId, req: crate::engine::AskTextRequest) {
        let i = self.active.load(Ordering::SeqCst);
        self.routes.insert(id, i);
        self.engines[i].1.ask_text(id, 0, req);
    }

    fn lens(&mut self, id: RequestId, req: crate::engine::LensRequest) {
        let i = self.active.load(Ordering::SeqCst);
        self.routes.insert(id, i);
        self.engines[i].1.send(crate::engine::Command::Lens {
            request: id,
            slot: 0,
            req,
        });
    }

    fn rollouts(&mut self, id: RequestId, req: crate::engine::RolloutRequest) {
        let i = self.active.load(Ordering::SeqCst);
        self.routes.insert(id, i);
        self.engines[i].1.rollouts(id, 0, req);
    }

    fn kv_cost(&mut self, id: RequestId, req: crate::engine::KvCostRequest) {
        let i = self.active.load(Ordering::SeqCst);
        self.routes.insert(id, i);
        self.engines[i].1.send(crate::engine::Command::KvCost {
            request: id,
            slot: 0,
            req,
        });
    }

    fn compare(&mut self, id: RequestId, cmd: compare::CompareCmd) {
        // Only the local engine compares (a remote one is refused before).
        self.routes.insert(id, 0);
        self.engines[0].1.send(cmd.command(id));
    }

    fn restart_engine(&mut self) {
        self.engines[0].1.restart()
    }

    fn steer(&mut self, request: RequestId, steer: effect::Steer) {
        let i = self.route(request);
        self.engines[i]
            .1
            .send(crate::engine::Command::Steer { request, steer });
    }

    fn saver(&mut self) -> Option<&mut saving::Saver> {
        self.saver.as_mut()
    }

    fn refresh_models(&mut self, places: crate::catalog::Places) {
        let tx = self.tx.clone();
        let servers = self.servers.clone();
        let _ = std::thread::Builder::new()
            .name("tokenscope-scan".into())
            .spawn(move || {
                let mut list = models::discover(&places);
                list.extend(models::remote_entries(&servers));
                let _ = tx.send(Msg::Models(list));
            });
    }
}

/// Starts the engine for the TUI, in a child process of `exe` (this
/// executable): its events arrive as [`Msg::Engine`] on `tx`, its death as
/// [`crate::engine::Event::EngineExited`] after the failure of what it was
/// doing; the next command starts a new one.
pub fn spawn_engine(tx: Sender<Msg>, exe: PathBuf) -> EngineHandle {
    EngineHandle::spawn_process(exe, tx, Msg::Engine)
}

static HOOK: Once = Once::new();

/// Wraps the panic hook installed by `ratatui::init` (which restores the
/// terminal): a panic of the engine thread is recorded for the UI instead
/// (the UI keeps running and shows it); any other panic also turns off mouse
/// capture and bracketed paste, and ends a frame it cut short, before the
/// terminal is restored.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if crash::record_engine_panic(info) {
                return;
            }
            let _ = crossterm::execute!(
                stdout(),
                DisableBracketedPaste,
                DisableMouseCapture,
                crossterm::terminal::EnableLineWrap,
                crossterm::terminal::EndSynchronizedUpdate
            );
            prev(info);
        }));
    });
}

/// Set (to anything) by the end-to-end tests: [`FrameWriter`] marks each
/// frame in a mode that tmux reports (tests/common/tmux.rs).
const TEST_FRAMES_ENV: &str = "TOKENSCOPE_TEST_FRAMES";

/// The chat's output: each frame (what ratatui writes between two flushes:
/// the changed cells, then the cursor) is one synchronized update
/// (`CSI ?2026h` … `CSI ?2026l`), which a terminal that knows the mode shows
/// whole, never half drawn however slowly the frame is written (on a loaded
/// machine), and any other terminal ignores. With `test_marks`, line wrap is
/// also off while a frame is written (`CSI ?7l` … `CSI ?7h`): tmux reports
/// that mode (`#{wrap_flag}`) with the screen in one command, so a test reads
/// the screen only between frames, never a new top over an old bottom.
struct FrameWriter<W: Write> {
    out: W,
    /// A frame's opening marks are written and its closing ones are not.
    open: bool,
    test_marks: bool,
}

/// A synchronized update's start and end; line wrap off and on.
const SYNC_BEGIN: &[u8] = b"\x1b[?2026h";
const SYNC_END: &[u8] = b"\x1b[?2026l";
const WRAP_OFF: &[u8] = b"\x1b[?7l";
const WRAP_ON: &[u8] = b"\x1b[?7h";

impl<W: Write> FrameWriter<W> {
    fn new(out: W, test_marks: bool) -> Self {
        Self {
            out,
            open: false,
            test_marks,
        }
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.open {
            self.out.write_all(SYNC_BEGIN)?;
            if self.test_marks {
                self.out.write_all(WRAP_OFF)?;
            }
            self.open = true;
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.open) {
            if self.test_marks {
                self.out.write_all(WRAP_ON)?;
            }
            self.out.write_all(SYNC_END)?;
        }
        self.out.flush()
    }
}

/// Restores the terminal when dropped (normal exit, error or panic unwind).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = crossterm::execute!(
            stdout(),
            DisableBracketedPaste,
            DisableMouseCapture,
            crossterm::cursor::Show,
            // A frame cut short (a panic while drawing) ends here.
            crossterm::terminal::EnableLineWrap,
            crossterm::terminal::EndSynchronizedUpdate
        );
        ratatui::restore();
    }
}

fn spawn_input_thread(tx: Sender<Msg>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tokenscope-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let ev = match crossterm::event::poll(Duration::from_millis(50)) {
                    Ok(true) => crossterm::event::read(),
                    Ok(false) => continue,
                    Err(e) => Err(e),
                };
                let msg = match ev {
                    Ok(ev) => Msg::Input(ev),
                    Err(e) => Msg::Fatal(format!("cannot read the terminal: {e}")),
                };
                let fatal = matches!(msg, Msg::Fatal(_));
                if tx.send(msg).is_err() || fatal {
                    break;
                }
            }
        })
}

/// Runs the chat TUI until the user quits.
/// Errors: a terminal that cannot draw it (`TERM=dumb`), said before
/// anything touches the terminal; a terminal that cannot be set up.
pub fn run(opts: TuiOptions) -> anyhow::Result<()> {
    let term_env = crate::terminal::Env::from_process();
    if let Some(why) = term_env.tui_refusal() {
        anyhow::bail!(why);
    }
    let (tx, rx) = channel();
    let engine = spawn_engine(tx.clone(), opts.engine_exe.clone());
    let (saver, store_error) = match &opts.conversations_db {
        Some(path) => {
            let (saver, err) = saving::Saver::new(path.clone());
            (Some(saver), err)
        }
        None => (None, None),
    };
    let mut host = RealHost::new(engine, tx.clone(), opts.servers.clone());
    host.saver = saver;

    abort_guard::install();
    // ratatui's setup (raw mode, the alternate screen, its panic hook), then
    // the terminal the chat draws on: its frames through a `FrameWriter`.
    let frames = FrameWriter::new(stdout(), std::env::var_os(TEST_FRAMES_ENV).is_some());
    let mut terminal =
        match ratatui::try_init().and_then(|_| Terminal::new(CrosstermBackend::new(frames))) {
            Ok(t) => t,
            Err(e) => {
                // Raw mode may be on already.
                ratatui::restore();
                return Err(e).context("cannot set up the terminal");
            }
        };
    install_panic_hook();
    let term_guard = TerminalGuard;
    crossterm::execute!(stdout(), EnableBracketedPaste, EnableMouseCapture)
        .context("cannot set up the terminal")?;
    let size = terminal.size().context("cannot read the terminal size")?;
    // Test hook: proves the SIGABRT handler restores the terminal (tests/tui_e2e.rs).
    if std::env::var_os("TOKENSCOPE_TEST_ABORT").is_some() {
        std::process::abort();
    }

    let mut state = State::new(opts.config, opts.raw, Vec::new(), (size.width, size.height));
    state.places = opts.places;
    state.view.display.color = !term_env.no_color;
    // Plain http to another machine: said where it is seen, in the TUI.
    for (_, t) in &opts.servers {
        if let Some(w) = t.as_ref().ok().and_then(|t| t.warning()) {
            transitions::warn(&mut state, &w);
        }
    }
    let signal_thread = signals::spawn(tx.clone()).context("cannot handle signals")?;
    signals::watch_hangup(tx.clone()).context("cannot watch the terminal")?;
    let stop = Arc::new(AtomicBool::new(false));
    let input =
        spawn_input_thread(tx.clone(), stop.clone()).context("cannot start the input thread")?;
    drop(tx);

    let mut fx = Vec::new();
    let explicit_model = opts.initial_model.is_some();
    let mut initial = opts.initial_model;
    let mut resumed = None;
    if let Some(e) = &store_error {
        state.error(saving::store_failed(e));
        state.session.save_failed = true;
    } else if opts.resume {
        match host.saver.as_mut().map(saving::last) {
            Some(Ok(Some(r))) => {
                if initial.is_none() && r.model_present {
                    initial = r.meta.model_path.clone();
                }
                resumed = Some(r);
            }
            Some(Ok(None)) | None => state.info(saving::nothing_to_resume()),
            Some(Err(e)) => {
                state.session.save_failed = true;
                state.error(saving::cannot_resume(&e))
            }
        }
    }
    if resumed.is_none() && initial.is_none() {
        initial = opts.fallback_model;
    }
    fx.extend(start(&mut state, initial.clone()));
    if let Some(r) = resumed {
        // A model asked for (`--model`) wins over the conversation's.
        let meta = if explicit_model {
            store::StoredConversation {
                model_path: None,
                ..r.meta
            }
        } else {
            r.meta
        };
        fx.extend(transitions::install_chat(
            &mut state,
            r.id,
            r.conv,
            &meta,
            r.model_present,
        ));
    }
    if let Some(why) = host.saver.as_ref().and_then(saving::Saver::read_only) {
        // Said last, with what the start said before it, so no startup
        // notice hides it; the status bar keeps it once others come.
        let before = state.view.notice.take().map(|n| n.text + " ");
        state.error(before.unwrap_or_default() + &saving::saving_off(why));
        state.session.saving_off = Some(why.to_string());
    }
    let result = if execute(&mut state, fx, &mut host) {
        Ok(())
    } else {
        run_loop(&mut terminal, &rx, &mut host, &mut state)
    };

    stop.store(true, Ordering::Relaxed);
    // crossterm's poll spins for ever on a terminal that has hung up (its read
    // sees end of file and tries again): never wait long for that thread.
    let deadline = Instant::now() + Duration::from_millis(300);
    while !input.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if input.is_finished() {
        let _ = input.join();
    } else {
        tracing::warn!("the input thread did not stop (the terminal is gone?): leaving it");
    }
    drop(term_guard);
    // Stops the engine (cancels what runs) after the terminal is back.
    drop(host);
    if let Some(sig) = state.exit_signal {
        signals::exit_by(sig);
    }
    signal_thread.close();
    result
}
