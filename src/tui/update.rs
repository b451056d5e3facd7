//! `update`: the TUI's whole behaviour, as a function from a message to state
//! changes plus effects for the loop to carry out. No I/O here.

use std::path::PathBuf;

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ratatui_textarea::{Input, TextArea};

use super::action::{Action, Context, lookup, lookup_mouse};
use super::models::ModelEntry;
use super::state::{
    Field, Focus, Generation, Loading, Message, MsgStatus, NoticeLevel, PENDING, Phase, Picker,
    Popup, SettingsForm, State, TokenRef, new_input,
};
use super::wrap::Tag;
use crate::engine::{
    CrashReport, CrashStage, Event, GenerateRequest, RequestId, Role, SamplingParams, StopReason,
};

/// Everything that reaches the main loop.
#[derive(Debug)]
pub enum Msg {
    Input(TermEvent),
    Engine(Event),
    /// The model directories were scanned.
    Models(Vec<ModelEntry>),
    /// Something the UI cannot go on without failed (reading the terminal).
    Fatal(String),
    /// The process got a terminating signal (SIGTERM, SIGHUP, SIGINT, SIGQUIT):
    /// stop generating and quit; the loop then exits by that signal.
    Signal(i32),
    Tick,
}

/// What `update` asks the loop to do.
#[derive(Debug, Clone)]
pub enum Effect {
    Generate(GenerateRequest),
    Load(PathBuf),
    Cancel(RequestId),
    RefreshModels,
    /// Kill the engine process and start a new one (it did not stop when asked).
    RestartEngine,
    Quit,
}

/// Lines a mouse wheel notch scrolls.
const WHEEL_LINES: isize = 3;

/// Effects for the first frame: load the initial model, or open the picker.
pub fn start(s: &mut State, initial_model: Option<PathBuf>) -> Vec<Effect> {
    let mut fx = vec![Effect::RefreshModels];
    s.models_scanning = true;
    match initial_model {
        Some(path) => fx.extend(load_model(s, path)),
        None => {
            let dirs: Vec<String> = s
                .model_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            let dirs = if dirs.is_empty() {
                "(no model directory configured)".to_string()
            } else {
                dirs.join(", ")
            };
            s.popup = Some(Popup::Picker(Picker {
                message: Some(format!(
                    "No model chosen. Models (*.gguf) are looked for in: {dirs}. \
                     Run `tokenscope fetch-demos` to download the small demo models."
                )),
                ..Picker::default()
            }));
            s.set_focus(s.focus);
        }
    }
    fx
}

pub fn update(s: &mut State, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Input(ev) => on_term_event(s, ev),
        Msg::Engine(ev) => on_engine(s, ev),
        Msg::Models(list) => {
            s.models = list;
            s.models_scanning = false;
            if let Some(Popup::Picker(p)) = &mut s.popup {
                let n = p.visible(&s.models).len();
                p.selected = p.selected.min(n.saturating_sub(1));
            }
            vec![]
        }
        Msg::Fatal(e) => {
            s.fatal = Some(e);
            vec![]
        }
        Msg::Signal(sig) => {
            s.exit_signal = Some(sig);
            let mut fx = Vec::new();
            if let Some(g) = &s.generation
                && g.request != PENDING
            {
                fx.push(Effect::Cancel(g.request));
            }
            fx.push(Effect::Quit);
            fx
        }
        Msg::Tick => vec![],
    }
}

// ---- engine events -------------------------------------------------------

fn on_engine(s: &mut State, ev: Event) -> Vec<Effect> {
    if let Event::EngineExited { report } = ev {
        return on_engine_exited(s, &report);
    }
    let Some(id) = ev.request() else {
        return vec![];
    };
    if id == PENDING {
        return vec![];
    }
    if s.load.as_ref().is_some_and(|l| l.request == id) {
        on_load_event(s, ev);
    } else if let Event::Loaded { info, vocab, .. } = ev {
        // A load we had moved on from finished anyway: the engine runs that model now.
        s.set_model(*info, vocab);
    } else if s.generation.as_ref().is_some_and(|g| g.request == id) {
        on_gen_event(s, ev);
    }
    // Anything else answers a request we no longer care about.
    vec![]
}

/// The engine process died (what it was doing has already failed, each
/// request by its own `Failed`): say what happened, mark the file that
/// crashed it, and reload the model it held (the one loaded before a load
/// that crashed) in the new engine process. The conversation is untouched.
fn on_engine_exited(s: &mut State, report: &CrashReport) -> Vec<Effect> {
    let reason = report.reason();
    let file = report.file_name();
    let mut text = match report.stage {
        CrashStage::Loading if report.blames_file() => {
            format!("llama.cpp crashed while loading {file}: {reason}")
        }
        CrashStage::Generating if report.blames_file() => {
            format!("llama.cpp crashed while generating with {file}: {reason}")
        }
        _ => format!(
            "The engine process {} while {}: {reason}",
            report.ended,
            report.doing()
        ),
    };
    if report.blames_file() {
        text += &format!(" ({}).", report.ended);
        if let Some(path) = &report.file {
            s.crashed.insert(path.clone(), reason.clone());
            text += " The file is marked ✗ in the picker.";
        }
    } else {
        text += ".";
    }
    let mut fx = Vec::new();
    // A load already sent to the new engine process wins over the reload.
    match s.model.take() {
        Some(m) if s.load.is_none() => {
            let crash = text.clone();
            text += &format!(" The engine was restarted: reloading {}…", m.name);
            fx = load_model(s, m.path);
            if let Some(l) = &mut s.load {
                l.restore = Some(crash);
            }
        }
        Some(_) => text += " The engine was restarted.",
        None => text += " The engine was restarted: press Ctrl-O to choose a model.",
    }
    s.error(text);
    fx
}

fn on_load_event(s: &mut State, ev: Event) {
    match ev {
        Event::LoadProgress { fraction, .. } => {
            if let Some(l) = &mut s.load {
                l.fraction = fraction.clamp(0.0, 1.0);
            }
        }
        Event::Loaded { info, vocab, .. } => {
            // It loads now: whatever failed before (a fixed file) is forgotten.
            s.load_failed.remove(&info.path);
            s.crashed.remove(&info.path);
            if let Some(crash) = s.load.take().and_then(|l| l.restore) {
                // What crashed stays on screen (whatever came meanwhile); it now ends well.
                s.error(format!(
                    "{crash} The engine was restarted: {} is loaded again.",
                    info.name
                ));
                s.set_model(*info, vocab);
                return;
            }
            s.info(format!(
                "Loaded {} ({} {}, {}, {}). Context {}.",
                info.name,
                info.arch,
                info.quant,
                info.chat_mode.describe(),
                info.backend_text(),
                info.ctx_text(),
            ));
            s.set_model(*info, vocab);
        }
        Event::Cancelled { .. } => {
            s.load = None;
        }
        Event::Failed { error, .. } => {
            let path = s.load.take().map(|l| l.path).unwrap_or_default();
            // A crash is marked by `on_engine_exited`, with llama.cpp's assertion.
            if !matches!(error, crate::engine::EngineError::Crashed(_)) {
                s.load_failed.insert(path.clone(), error.to_string());
            }
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            let keep = match &s.model {
                Some(m) => format!(" Still using {}.", m.name),
                None => " No model is loaded: press Ctrl-O to choose another.".to_string(),
            };
            s.error(format!("Could not load {file}: {error}.{keep}"));
        }
        _ => {}
    }
}

fn on_gen_event(s: &mut State, ev: Event) {
    let Some(g) = s.generation.as_mut() else {
        return;
    };
    match ev {
        Event::Started {
            mode,
            prompt,
            prefix,
            n_reused,
            dropped_messages,
            note,
            ..
        } => {
            let n_prompt = prompt.len() + prefix.len();
            if g.phase != Phase::Cancelling {
                g.phase = Phase::Prefill {
                    done: 0,
                    total: n_prompt.saturating_sub(n_reused),
                };
            }
            g.n_prompt = n_prompt;
            g.n_reused = n_reused;
            let msg = g.msg;
            s.chat_mode = Some(mode);
            // The engine serves in order: the model loaded last (perhaps after
            // the message was sent) writes this reply, with its vocabulary.
            let (model, vocab) = (s.model_name(), s.vocab.clone());
            if let Some(m) = s.messages.get_mut(msg) {
                m.vocab = vocab;
                if m.model != model {
                    m.model = model;
                    s.relayout_message(msg);
                }
            }
            if dropped_messages > 0 {
                s.info(format!(
                    "The conversation outgrew the context: the {dropped_messages} oldest message(s) were left out."
                ));
            }
            // How the prompt was built when the chat template refused it (the
            // engine escaped the template's text).
            if let Some(note) = note {
                s.info(capitalize(&note));
            }
        }
        Event::PrefillProgress { done, total, .. } => {
            if g.phase != Phase::Cancelling {
                g.phase = Phase::Prefill { done, total };
            }
        }
        Event::Token { step, .. } => {
            if g.phase == Phase::Cancelling {
                return;
            }
            g.phase = Phase::Generating;
            let msg = g.msg;
            s.push_step(msg, *step);
        }
        Event::Tail { text, .. } => {
            // Even while cancelling: the bytes belong to tokens already shown.
            let msg = g.msg;
            s.push_tail(msg, &text);
        }
        Event::Cancelled { stats, .. } => {
            let msg = g.msg;
            s.generation = None;
            if let Some(stats) = stats {
                if let Some(m) = s.messages.get_mut(msg) {
                    m.stats = Some(stats.clone());
                }
                s.last_stats = Some(stats);
            }
            finish_message(s, msg, MsgStatus::Stopped);
        }
        Event::Done { stats, .. } => {
            let msg = g.msg;
            s.generation = None;
            let status = if stats.stop == StopReason::Cancelled {
                MsgStatus::Stopped
            } else {
                MsgStatus::Done
            };
            if stats.stop == StopReason::ContextFull {
                s.error(context_full_notice(stats.ctx_used, stats.ctx_size));
            }
            if let Some(m) = s.messages.get_mut(msg) {
                m.stats = Some(stats.clone());
            }
            s.last_stats = Some(stats);
            finish_message(s, msg, status);
        }
        Event::Failed { error, .. } => {
            let msg = g.msg;
            s.generation = None;
            s.error(format!("Generation failed: {error}"));
            finish_message(s, msg, MsgStatus::Failed(error.to_string()));
        }
        Event::LoadProgress { .. }
        | Event::Loaded { .. }
        | Event::Paused { .. }
        | Event::EngineExited { .. } => {}
    }
}

/// What the user reads when a reply filled the context (sizes in tokens): the
/// reply stopped, and the chat goes on, without its oldest turns.
pub fn context_full_notice(used: usize, size: usize) -> String {
    format!(
        "The context is full ({used} of {size} tokens): the reply stopped here. You can go on: \
         to make room, the oldest turns are left out of what the model sees (Ctrl-N starts a new chat)."
    )
}

fn finish_message(s: &mut State, msg: usize, status: MsgStatus) {
    if let Some(m) = s.messages.get_mut(msg) {
        m.status = status;
        s.relayout_message(msg);
    }
}

// ---- terminal events -----------------------------------------------------

fn on_term_event(s: &mut State, ev: TermEvent) -> Vec<Effect> {
    match ev {
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => on_key(s, k),
        TermEvent::Key(_) => vec![],
        TermEvent::Paste(text) => {
            on_paste(s, &text);
            vec![]
        }
        TermEvent::Mouse(m) => {
            let action = lookup_mouse(Context::Anywhere, &m).or_else(|| {
                s.popup
                    .is_none()
                    .then(|| lookup_mouse(Context::Main, &m))
                    .flatten()
            });
            match action {
                Some(Action::ScrollWheel) if m.kind == MouseEventKind::ScrollUp => {
                    scroll_by(s, -WHEEL_LINES)
                }
                Some(Action::ScrollWheel) => scroll_by(s, WHEEL_LINES),
                Some(Action::ClickToken) => click(s, m.column, m.row),
                _ => {}
            }
            vec![]
        }
        TermEvent::Resize(w, h) => {
            s.size = (w, h);
            s.relayout();
            vec![]
        }
        TermEvent::FocusGained | TermEvent::FocusLost => vec![],
    }
}

fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn on_paste(s: &mut State, text: &str) {
    let text = normalize_newlines(text);
    let first_line = text.lines().next().unwrap_or("").trim().to_string();
    match &mut s.popup {
        Some(Popup::SystemPrompt(t)) => {
            t.insert_str(&text);
        }
        Some(Popup::Picker(p)) => {
            p.filter.push_str(&first_line);
            p.selected = 0;
        }
        Some(Popup::Settings(f)) => {
            if let Some(field) = f.fields.get_mut(f.selected) {
                field.value.push_str(&first_line);
            }
        }
        Some(Popup::Help { .. }) => {}
        None => {
            if s.focus != Focus::Input {
                s.set_focus(Focus::Input);
            }
            // One insertion, however long the paste.
            s.input.insert_str(&text);
        }
    }
}

/// `text` with its first letter upper-cased, for a notice.
fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn on_key(s: &mut State, k: KeyEvent) -> Vec<Effect> {
    if lookup(Context::Anywhere, &k) == Some(Action::Interrupt) {
        return ctrl_c(s);
    }
    s.quit_armed = false;
    // Information lasts until the next key; errors until Esc or the next message.
    if s.notice
        .as_ref()
        .is_some_and(|n| n.level == NoticeLevel::Info)
    {
        s.notice = None;
    }
    if let Some(popup) = s.popup.take() {
        let mut fx = Vec::new();
        s.popup = popup_key(s, popup, k, &mut fx);
        s.set_focus(s.focus);
        return fx;
    }
    if let Some(action) = lookup(Context::Main, &k) {
        return main_action(s, action);
    }
    match s.focus {
        Focus::Input => input_key(s, k),
        Focus::Navigate => nav_key(s, k),
    }
}

/// The actions of [`Context::Main`] (outside popups, whatever has the focus).
fn main_action(s: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::OpenHelp => return open(s, Popup::Help { scroll: 0 }),
        Action::OpenPicker => return open_picker(s),
        Action::OpenSettings => return open_settings(s),
        Action::OpenSystemPrompt => return open_system_prompt(s),
        Action::ToggleHeatmap => s.heatmap = !s.heatmap,
        Action::ToggleBoundaries => s.boundaries = !s.boundaries,
        Action::NewChat => return new_chat(s),
        Action::ToggleTokenCursor => return toggle_navigation(s),
        Action::ScrollUp => scroll_by(s, -page(s)),
        Action::ScrollDown => scroll_by(s, page(s)),
        _ => {}
    }
    vec![]
}

fn open(s: &mut State, p: Popup) -> Vec<Effect> {
    s.popup = Some(p);
    s.set_focus(s.focus);
    vec![]
}

fn open_picker(s: &mut State) -> Vec<Effect> {
    let mut p = Picker::default();
    if let Some(m) = &s.model
        && let Some(i) = p
            .visible(&s.models)
            .iter()
            .position(|&i| s.models[i].path == m.path)
    {
        p.selected = i;
    }
    open(s, Popup::Picker(p));
    s.models_scanning = true;
    vec![Effect::RefreshModels]
}

fn open_settings(s: &mut State) -> Vec<Effect> {
    let form = settings_form(&s.config.sampling, s.config.max_tokens);
    open(s, Popup::Settings(form))
}

fn open_system_prompt(s: &mut State) -> Vec<Effect> {
    let mut t = new_input();
    t.set_placeholder_text("No system prompt. Type one; Enter saves, Esc cancels.");
    t.insert_str(&s.config.system_prompt);
    open(s, Popup::SystemPrompt(Box::new(t)))
}

fn ctrl_c(s: &mut State) -> Vec<Effect> {
    // While a stop is pending (a long prefill chunk), Ctrl-C works as when idle:
    // twice quits, so the app can always be left.
    if s.generation
        .as_ref()
        .is_some_and(|g| g.phase != Phase::Cancelling)
    {
        s.quit_armed = false;
        return cancel(s);
    }
    if s.popup.take().is_some() {
        s.set_focus(s.focus);
        return vec![];
    }
    if s.quit_armed {
        return vec![Effect::Quit];
    }
    s.quit_armed = true;
    s.info("Press Ctrl-C again to quit.");
    vec![]
}

/// Stops the running generation (its final event still arrives); asked
/// again while that stop is pending, restarts the engine (one that hangs
/// never answers the stop).
fn cancel(s: &mut State) -> Vec<Effect> {
    match &mut s.generation {
        Some(g) if g.phase != Phase::Cancelling => {
            g.phase = Phase::Cancelling;
            vec![Effect::Cancel(g.request)]
        }
        Some(_) => restart_engine(s),
        None => vec![],
    }
}

/// Gives up the model being loaded (the one before stays); asked again while
/// that is pending, restarts the engine.
fn cancel_load(s: &mut State) -> Vec<Effect> {
    match &mut s.load {
        Some(l) if !l.cancelling && l.request != PENDING => {
            l.cancelling = true;
            let request = l.request;
            s.info("Stopping the load (Esc again restarts the engine if it does not answer).");
            vec![Effect::Cancel(request)]
        }
        Some(_) => restart_engine(s),
        None => vec![],
    }
}

/// Kills the engine process and starts a new one: what it was doing fails,
/// and the crash handling reloads the model in use ([`on_engine_exited`]).
fn restart_engine(s: &mut State) -> Vec<Effect> {
    s.info("Restarting the engine…");
    vec![Effect::RestartEngine]
}

fn new_chat(s: &mut State) -> Vec<Effect> {
    let mut fx = Vec::new();
    if let Some(g) = s.generation.take() {
        fx.push(Effect::Cancel(g.request));
    }
    s.messages.clear();
    s.cursor = None;
    s.last_stats = None;
    s.scroll.follow = true;
    s.scroll.top = 0;
    s.set_focus(Focus::Input);
    s.relayout();
    s.info("New chat.");
    fx
}

fn load_model(s: &mut State, path: PathBuf) -> Vec<Effect> {
    let mut fx = Vec::new();
    if let Some(l) = &s.load {
        fx.push(Effect::Cancel(l.request));
    }
    if let Some(g) = &mut s.generation
        && g.phase != Phase::Cancelling
    {
        g.phase = Phase::Cancelling;
        fx.push(Effect::Cancel(g.request));
    }
    s.load = Some(Loading {
        request: PENDING,
        path: path.clone(),
        fraction: 0.0,
        restore: None,
        cancelling: false,
    });
    fx.push(Effect::Load(path));
    fx
}

fn page(s: &State) -> isize {
    (s.chat_height() as isize - 1).max(1)
}

pub(crate) fn scroll_by(s: &mut State, delta: isize) {
    let h = s.chat_height();
    let max = s.chat.total_lines().saturating_sub(h) as isize;
    let top = (s.view_top(h) as isize + delta).clamp(0, max);
    s.scroll.top = top as usize;
    s.scroll.follow = top >= max;
}

/// Scrolls so that chat line `line` is visible.
fn ensure_visible(s: &mut State, line: usize) {
    let h = s.chat_height().max(1);
    let win = s.chat_window(h);
    let (top, rows) = (win.top, win.rows.max(1));
    let max = s.chat.total_lines().saturating_sub(h);
    let new_top = if line < top {
        line
    } else if line >= top + rows {
        line + 1 - rows
    } else {
        return;
    };
    s.scroll.top = new_top.min(max);
    s.scroll.follow = s.scroll.top >= max;
}

// ---- input box -----------------------------------------------------------

fn input_key(s: &mut State, k: KeyEvent) -> Vec<Effect> {
    match lookup(Context::Input, &k) {
        Some(Action::Send) => return send(s),
        Some(Action::NewLine) => s.input.insert_newline(),
        Some(Action::Cancel) => {
            if s.generation.is_some() {
                return cancel(s);
            }
            if s.load.is_some() {
                return cancel_load(s);
            }
            s.notice = None;
        }
        Some(Action::ToggleTokenCursor) => return toggle_navigation(s),
        Some(Action::HistoryPrev) if s.input.cursor().0 == 0 => history_prev(s),
        Some(Action::HistoryNext) if s.input.cursor().0 + 1 >= s.input.lines().len() => {
            history_next(s)
        }
        // Editing keys and typing: the text area's.
        _ => {
            s.input.input(Input::from(k));
        }
    }
    vec![]
}

fn set_input_text(s: &mut State, text: &str) {
    s.input = new_input();
    s.input.insert_str(text);
    s.set_focus(s.focus);
}

fn input_text(t: &TextArea) -> String {
    t.lines().join("\n")
}

fn history_prev(s: &mut State) {
    let h = &mut s.history;
    if h.entries.is_empty() {
        return;
    }
    let pos = match h.pos {
        None => {
            h.draft = input_text(&s.input);
            h.entries.len() - 1
        }
        Some(p) => p.saturating_sub(1),
    };
    h.pos = Some(pos);
    let text = h.entries[pos].clone();
    set_input_text(s, &text);
}

fn history_next(s: &mut State) {
    let h = &mut s.history;
    let Some(p) = h.pos else { return };
    let text = if p + 1 < h.entries.len() {
        h.pos = Some(p + 1);
        h.entries[p + 1].clone()
    } else {
        h.pos = None;
        std::mem::take(&mut h.draft)
    };
    set_input_text(s, &text);
}

fn send(s: &mut State) -> Vec<Effect> {
    let text = input_text(&s.input);
    if text.trim().is_empty() {
        return vec![];
    }
    if s.generation.is_some() {
        s.info("Still generating: wait for the reply, or press Esc to stop it.");
        return vec![];
    }
    if s.model.is_none() && s.load.is_none() {
        s.error("No model is loaded: press Ctrl-O to choose one.");
        return vec![];
    }
    if s.history.entries.last() != Some(&text) {
        s.history.entries.push(text.clone());
    }
    s.history.pos = None;
    s.history.draft.clear();
    set_input_text(s, "");
    s.notice = None;
    s.push_message(Message::user(text));
    let req = s.generate_request();
    let msg = s.push_message(Message::assistant(s.model_name(), s.vocab.clone()));
    s.generation = Some(Generation {
        request: PENDING,
        msg,
        phase: Phase::Waiting,
        n_prompt: 0,
        n_reused: 0,
    });
    s.scroll.follow = true;
    vec![Effect::Generate(req)]
}

// ---- token navigation ----------------------------------------------------

fn toggle_navigation(s: &mut State) -> Vec<Effect> {
    if s.focus == Focus::Navigate {
        s.set_focus(Focus::Input);
        return vec![];
    }
    let valid = s.cursor.filter(|c| s.step(*c).is_some());
    let Some(c) = valid.or_else(|| s.last_token()) else {
        s.info("No reply to inspect yet.");
        return vec![];
    };
    s.cursor = Some(c);
    s.nav_by_mouse = false;
    s.set_focus(Focus::Navigate);
    reveal_cursor(s);
    vec![]
}

fn reveal_cursor(s: &mut State) {
    if let Some(c) = s.cursor
        && let Some((line, _)) = s.token_position(c)
    {
        ensure_visible(s, line);
    }
}

fn nav_key(s: &mut State, k: KeyEvent) -> Vec<Effect> {
    let Some(cur) = s
        .cursor
        .filter(|c| s.step(*c).is_some())
        .or_else(|| s.last_token())
    else {
        s.set_focus(Focus::Input);
        return vec![];
    };
    let plain_char = matches!(k.code, KeyCode::Char(_))
        && !k
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    if s.nav_by_mouse && plain_char {
        s.set_focus(Focus::Input);
        s.input.input(Input::from(k));
        return vec![];
    }
    let Some(action) = lookup(Context::TokenCursor, &k) else {
        return vec![];
    };
    let next = match action {
        Action::Cancel if s.generation.is_some() => return cancel(s),
        Action::Cancel | Action::BackToTyping => {
            s.set_focus(Focus::Input);
            return vec![];
        }
        Action::Quit => return vec![Effect::Quit],
        Action::TokenLeft => neighbour(s, cur, false),
        Action::TokenRight => neighbour(s, cur, true),
        Action::TokenUp | Action::TokenDown => {
            let goal = s.nav_col.or_else(|| s.token_position(cur).map(|p| p.1));
            if let Some(n) = vertical(s, cur, action == Action::TokenDown, goal) {
                s.cursor = Some(n);
                s.nav_col = goal;
                reveal_cursor(s);
            }
            return vec![];
        }
        Action::TokenHome => Some(TokenRef {
            msg: cur.msg,
            step: 0,
        }),
        Action::TokenEnd => s.messages.get(cur.msg).map(|m| TokenRef {
            msg: cur.msg,
            step: m.steps.len().saturating_sub(1),
        }),
        Action::EditText => {
            // Typing goes to the input box.
            s.set_focus(Focus::Input);
            s.input.input(Input::from(k));
            return vec![];
        }
        // Help, heatmap, boundaries: as outside the token cursor.
        other => return main_action(s, other),
    };
    if let Some(n) = next {
        s.cursor = Some(n);
        s.nav_col = None;
        reveal_cursor(s);
    }
    vec![]
}

/// The next (or previous) assistant token, across messages.
fn neighbour(s: &State, cur: TokenRef, forward: bool) -> Option<TokenRef> {
    if forward {
        if cur.step + 1 < s.messages.get(cur.msg)?.steps.len() {
            return Some(TokenRef {
                msg: cur.msg,
                step: cur.step + 1,
            });
        }
        s.token_refs().find(|t| t.msg > cur.msg)
    } else {
        if cur.step > 0 {
            return Some(TokenRef {
                msg: cur.msg,
                step: cur.step - 1,
            });
        }
        s.token_refs().filter(|t| t.msg < cur.msg).last()
    }
}

/// The token on the nearest line above (or below) with tokens, closest to
/// the cursor's column.
fn vertical(s: &State, cur: TokenRef, down: bool, goal: Option<usize>) -> Option<TokenRef> {
    let (line, col) = s.token_position(cur)?;
    let col = goal.unwrap_or(col);
    let total = s.chat.total_lines();
    let mut l = line;
    loop {
        l = if down {
            if l + 1 >= total {
                return None;
            }
            l + 1
        } else {
            l.checked_sub(1)?
        };
        if let Some(t) = token_at(s, l, col) {
            return Some(t);
        }
    }
}

/// A click on a token of a reply selects it (token cursor).
fn click(s: &mut State, x: u16, y: u16) {
    let chat = s.areas(s.screen()).chat;
    if !chat.contains(ratatui::layout::Position::new(x, y)) || x == chat.x {
        return;
    }
    let win = s.chat_window(chat.height as usize);
    if (y - chat.y) as usize >= win.rows {
        return; // the scroll hint's row
    }
    let line = win.top + (y - chat.y) as usize;
    let col = (x - chat.x - 1) as usize;
    if let Some(t) = token_under(s, line, col) {
        s.cursor = Some(t);
        s.nav_col = None;
        if s.focus != Focus::Navigate {
            s.nav_by_mouse = true;
        }
        s.set_focus(Focus::Navigate);
    }
}

/// The token whose text covers column `col` of chat line `line`.
fn token_under(s: &State, line: usize, col: usize) -> Option<TokenRef> {
    let mut start = 0;
    for (b, block) in s.chat.blocks.iter().enumerate() {
        let n = block.lines.len();
        if line < start + n {
            if line < start {
                return None;
            }
            let msg = b.checked_sub(s.chat.has_system as usize)?;
            let mut x = 0;
            for c in &block.lines[line - start] {
                let w = (c.width as usize).max(1);
                if col < x + w {
                    return match c.tag {
                        Tag::Token(i) => Some(TokenRef {
                            msg,
                            step: i as usize,
                        }),
                        _ => None,
                    };
                }
                x += c.width as usize;
            }
            return None;
        }
        start += n + 1;
    }
    None
}

/// The token at column `col` of chat line `line` (or the nearest on that line).
fn token_at(s: &State, line: usize, col: usize) -> Option<TokenRef> {
    let mut start = 0;
    for (b, block) in s.chat.blocks.iter().enumerate() {
        let n = block.lines.len();
        if line < start {
            return None; // the blank line between blocks
        }
        if line < start + n {
            let msg = b.checked_sub(s.chat.has_system as usize)?;
            if s.messages.get(msg)?.role != Role::Assistant {
                return None;
            }
            let mut x = 0;
            let mut best = None;
            for c in &block.lines[line - start] {
                if let Tag::Token(i) = c.tag {
                    if best.is_none() || x <= col {
                        best = Some(i as usize);
                    }
                    if x >= col {
                        break;
                    }
                }
                x += c.width as usize;
            }
            return best.map(|step| TokenRef { msg, step });
        }
        start += n + 1;
    }
    None
}

// ---- popups --------------------------------------------------------------

/// Handles a key in a popup; returns the popup to keep open (None closes it).
fn popup_key(s: &mut State, popup: Popup, k: KeyEvent, fx: &mut Vec<Effect>) -> Option<Popup> {
    match popup {
        Popup::Help { scroll } => {
            let scroll = match lookup(Context::Help, &k)? {
                Action::Up => scroll.saturating_sub(1),
                Action::Down => scroll.saturating_add(1),
                Action::PageUp => scroll.saturating_sub(10),
                Action::PageDown => scroll.saturating_add(10),
                _ => return None,
            };
            Some(Popup::Help { scroll })
        }
        Popup::Picker(p) => picker_key(s, p, k, fx),
        Popup::Settings(f) => settings_key(s, f, k),
        Popup::SystemPrompt(t) => system_prompt_key(s, t, k),
    }
}

fn picker_key(s: &mut State, mut p: Picker, k: KeyEvent, fx: &mut Vec<Effect>) -> Option<Popup> {
    let visible = p.visible(&s.models);
    let n = visible.len();
    match lookup(Context::Picker, &k) {
        Some(Action::Close) => return None,
        Some(Action::Confirm) => {
            let Some(&i) = visible.get(p.selected) else {
                return Some(Popup::Picker(p));
            };
            let entry = s.models[i].clone();
            if s.model.as_ref().is_some_and(|m| m.path == entry.path) && s.load.is_none() {
                s.info(format!("{} is already loaded.", entry.name));
                return None;
            }
            fx.extend(load_model(s, entry.path));
            return None;
        }
        Some(Action::Up) => p.selected = p.selected.saturating_sub(1),
        Some(Action::Down) => p.selected = (p.selected + 1).min(n.saturating_sub(1)),
        Some(Action::PageUp) => p.selected = p.selected.saturating_sub(10),
        Some(Action::PageDown) => p.selected = (p.selected + 10).min(n.saturating_sub(1)),
        Some(Action::Home) => p.selected = 0,
        Some(Action::End) => p.selected = n.saturating_sub(1),
        Some(Action::Rescan) => {
            s.models_scanning = true;
            fx.push(Effect::RefreshModels);
        }
        Some(Action::ClearText) => {
            p.filter.clear();
            p.selected = 0;
        }
        Some(Action::DeleteBack) => {
            p.filter.pop();
            p.selected = 0;
        }
        Some(Action::EditText) => {
            if let KeyCode::Char(c) = k.code {
                p.filter.push(c);
                p.selected = 0;
            }
        }
        _ => {}
    }
    Some(Popup::Picker(p))
}

pub fn settings_form(p: &SamplingParams, max_tokens: u32) -> SettingsForm {
    let f = |label, value: String, help| Field { label, value, help };
    SettingsForm {
        fields: vec![
            f(
                "temperature",
                p.temperature.to_string(),
                "0 = greedy, up to 5",
            ),
            f("top_k", p.top_k.to_string(), "0 = off"),
            f("top_p", p.top_p.to_string(), "(0, 1], 1 = off"),
            f("min_p", p.min_p.to_string(), "[0, 1), 0 = off"),
            f(
                "repeat_penalty",
                p.repeat_penalty.to_string(),
                "0.1 to 5, 1 = off",
            ),
            f("seed", p.seed.to_string(), "random seed"),
            f("max_tokens", max_tokens.to_string(), "reply length limit"),
        ],
        selected: 0,
        error: None,
    }
}

/// Reads the form back; errors name the field.
pub fn parse_settings(
    form: &SettingsForm,
    base: &SamplingParams,
) -> Result<(SamplingParams, u32), String> {
    fn num<T: std::str::FromStr>(f: &Field) -> Result<T, String> {
        f.value
            .trim()
            .parse()
            .map_err(|_| format!("invalid {} = {:?}: not a number", f.label, f.value.trim()))
    }
    let mut p = base.clone();
    let mut max_tokens = 0;
    for f in &form.fields {
        match f.label {
            "temperature" => p.temperature = num(f)?,
            "top_k" => p.top_k = num(f)?,
            "top_p" => p.top_p = num(f)?,
            "min_p" => p.min_p = num(f)?,
            "repeat_penalty" => p.repeat_penalty = num(f)?,
            "seed" => p.seed = num(f)?,
            "max_tokens" => max_tokens = num(f)?,
            _ => {}
        }
    }
    p.validate().map_err(|e| e.to_string())?;
    if max_tokens == 0 {
        return Err("invalid max_tokens = 0: must be at least 1".into());
    }
    Ok((p, max_tokens))
}

fn settings_key(s: &mut State, mut f: SettingsForm, k: KeyEvent) -> Option<Popup> {
    let n = f.fields.len();
    match lookup(Context::Settings, &k) {
        Some(Action::Close) => return None,
        Some(Action::Confirm) => match parse_settings(&f, &s.config.sampling) {
            Ok((p, max_tokens)) => {
                s.info(format!(
                    "Sampling: temperature {}, top_k {}, top_p {}, min_p {}, repeat_penalty {}, seed {}, max_tokens {}.",
                    p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty, p.seed, max_tokens
                ));
                s.config.sampling = p;
                s.config.max_tokens = max_tokens;
                return None;
            }
            Err(e) => f.error = Some(e),
        },
        Some(Action::Up) => f.selected = (f.selected + n - 1) % n,
        Some(Action::Down) => f.selected = (f.selected + 1) % n,
        Some(Action::DeleteBack) => {
            f.fields[f.selected].value.pop();
        }
        Some(Action::ClearText) => f.fields[f.selected].value.clear(),
        Some(Action::EditText) => {
            if let KeyCode::Char(c) = k.code
                && !c.is_control()
            {
                f.fields[f.selected].value.push(c)
            }
        }
        _ => {}
    }
    Some(Popup::Settings(f))
}

fn system_prompt_key(s: &mut State, mut t: Box<TextArea<'static>>, k: KeyEvent) -> Option<Popup> {
    match lookup(Context::SystemPrompt, &k) {
        Some(Action::Close) => return None,
        Some(Action::Confirm) => {
            let text = input_text(&t).trim().to_string();
            if text != s.config.system_prompt {
                s.config.system_prompt = text;
                s.relayout();
                s.info(if s.config.system_prompt.is_empty() {
                    "System prompt removed."
                } else {
                    "System prompt set: it applies to the whole conversation from the next reply."
                });
            }
            return None;
        }
        Some(Action::NewLine) => t.insert_newline(),
        _ => {
            t.input(Input::from(k));
        }
    }
    Some(Popup::SystemPrompt(t))
}
