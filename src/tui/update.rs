//! `update`: the TUI's whole behaviour, as a function from a message to state
//! changes plus effects for the loop to carry out. No I/O here.
//!
//! It dispatches: terminal events through the keymap ([`super::action`]) to
//! the components ([`super::components`]), engine events to
//! `engine_events`. A component returns what should happen beyond its own
//! data ([`Outcome`]); [`apply`] carries it out with the transitions that
//! reach across the app (stop a reply, load a model, a new chat, open a
//! popup: [`super::transitions`], `reply`, `compare`).

use crossterm::event::{Event as TermEvent, KeyEvent, KeyEventKind};

use super::action::{Action, Context, lookup};
use super::components::{self, chat, chats, choose, input, picker, settings, system_prompt};
use super::engine_events::on_engine;
use super::models::ModelEntry;
use super::outcome::Outcome;
use super::reply;
use super::state::{Focus, NoticeLevel, Phase, Picker, Popup, State};
use super::transitions::{
    self, cancel, load_model, new_chat, open_chats, open_help, open_picker, open_settings,
    open_system_prompt,
};
use crate::engine::{Event, ModelRef};
use crate::i18n::{tr, tr_args};

pub use super::effect::Effect;

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

/// Effects for the first frame: load the initial model, or open the picker.
pub fn start(s: &mut State, initial_model: Option<ModelRef>) -> Vec<Effect> {
    let mut fx = vec![Effect::RefreshModels];
    s.model.files.scanning = true;
    match initial_model {
        Some(model) => fx.extend(load_model(s, model)),
        None => {
            let dirs = if s.places.dirs.is_empty() && s.places.stores.is_empty() {
                tr("notice-no-model-dir", "(no model directory configured)")
            } else {
                s.places.searched()
            };
            s.view.popup = Some(Popup::Picker(Picker {
                message: Some(tr_args(
                    "notice-no-model-chosen",
                    "No model chosen. Models (*.gguf) are looked for in: { $dirs }. \
                     Run `tokenscope fetch-demos` to download the small demo models.",
                    &[("dirs", &dirs)],
                )),
                ..Picker::default()
            }));
            s.view.set_focus(s.view.focus);
        }
    }
    fx
}

/// Handles one message: changes `s`, and returns what the loop must do.
pub fn update(s: &mut State, msg: Msg) -> Vec<Effect> {
    let mut fx = dispatch(s, msg);
    // Whatever happened, an idle engine scores what of the prompt is unscored.
    fx.extend(super::prompt_scoring::reconcile(s));
    // The chooser's text previewed (or searched) as it is typed.
    fx.extend(super::asking::reconcile(s));
    fx
}

fn dispatch(s: &mut State, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Input(ev) => on_term_event(s, ev),
        Msg::Engine(ev) => on_engine(s, ev),
        Msg::Models(list) => {
            s.model.files.models = list;
            s.model.files.scanning = false;
            if let Some(Popup::Picker(p)) = &mut s.view.popup {
                let n = p.visible(&s.model.files.models).len();
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
            if let Some(g) = &s.session.generation {
                fx.push(Effect::Cancel(g.request));
            }
            fx.push(Effect::Quit);
            fx
        }
        Msg::Tick => vec![],
    }
}

// ---- terminal events -----------------------------------------------------

fn on_term_event(s: &mut State, ev: TermEvent) -> Vec<Effect> {
    match ev {
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => on_key(s, k),
        TermEvent::Key(_) => vec![],
        TermEvent::Paste(text) => on_paste(s, &text),
        TermEvent::Mouse(m) => {
            chat::on_mouse(s, m);
            vec![]
        }
        TermEvent::Resize(w, h) => {
            s.view.size = (w, h);
            // The chat's lines depend on its width only: a change of height
            // (or a resize that leaves the chat pane as wide) keeps them.
            if super::layout::chat_text_width(w) != s.view.chat.width {
                s.relayout();
            }
            vec![]
        }
        TermEvent::FocusGained | TermEvent::FocusLost => vec![],
    }
}

fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn on_paste(s: &mut State, text: &str) -> Vec<Effect> {
    let text = normalize_newlines(text);
    let first_line = text.lines().next().unwrap_or("").trim().to_string();
    match &mut s.view.popup {
        Some(Popup::SystemPrompt(t)) => system_prompt::paste(t, &text),
        Some(Popup::Picker(p)) => picker::paste(p, &first_line),
        Some(Popup::Settings(f)) => settings::paste(f, &first_line),
        Some(Popup::Help { .. })
        | Some(Popup::Lens(_))
        | Some(Popup::Rollouts(_))
        | Some(Popup::KvCost(_)) => {}
        Some(Popup::Chats(l)) => {
            let outcome = chats::paste(l, &first_line);
            return apply(s, outcome);
        }
        None => input::paste(s, &text),
    }
    vec![]
}

fn on_key(s: &mut State, k: KeyEvent) -> Vec<Effect> {
    if lookup(Context::Anywhere, &k) == Some(Action::Interrupt) {
        return ctrl_c(s);
    }
    // Armed by the key before (Ctrl-C, or q in the token cursor): this one may quit.
    let quit_armed = std::mem::take(&mut s.quit_armed);
    // Armed by a Ctrl-N on a conversation not saved: only a second Ctrl-N drops it.
    let new_chat_armed = std::mem::take(&mut s.session.new_chat_armed);
    // Information lasts until the next key; errors until Esc or the next message.
    if s.view
        .notice
        .as_ref()
        .is_some_and(|n| n.level == NoticeLevel::Info)
    {
        s.view.notice = None;
    }
    if let Some(popup) = s.view.popup.take() {
        let (popup, outcome) = components::on_popup_key(s, popup, k);
        s.view.popup = popup;
        s.view.set_focus(s.view.focus);
        return apply(s, outcome);
    }
    if let Some(action) = lookup(Context::Main, &k) {
        if action == Action::NewChat {
            s.session.new_chat_armed = new_chat_armed;
        }
        return main_action(s, action);
    }
    let outcome = match s.view.focus {
        Focus::Input => input::on_key(s, k),
        Focus::Navigate => chat::on_key(s, k, quit_armed),
        Focus::Choose => choose::on_key(s, k),
    };
    apply(s, outcome)
}

/// Carries out what a component's key asked for ([`Outcome`]) with the
/// shared transitions; returns what the loop must do.
fn apply(s: &mut State, outcome: Outcome) -> Vec<Effect> {
    match outcome {
        Outcome::Done => vec![],
        Outcome::Effects(fx) => fx,
        Outcome::Cancel => cancel(s),
        Outcome::CancelLoad => transitions::cancel_load(s),
        Outcome::LoadModel(model) => load_model(s, model),
        Outcome::ToggleTokenCursor => transitions::toggle_navigation(s),
        Outcome::BackFromCursor => {
            transitions::back_from_cursor(s);
            vec![]
        }
        Outcome::ChooseAt(t) => transitions::choose_at(s, t),
        Outcome::ChooseNext => {
            reply::choose_next(s, true);
            vec![]
        }
        Outcome::Send(text) => reply::send_text(s, text),
        Outcome::Steer(steer) => reply::steer(s, steer),
        Outcome::Branch { at, chosen, text } => reply::branch(s, at, chosen, text),
        Outcome::ContinueReply(msg) => reply::continue_reply(s, msg),
        Outcome::SwitchSibling(msg, delta) => reply::switch_sibling(s, msg, delta),
        Outcome::EditMessage(msg) => reply::edit_message(s, msg),
        Outcome::SetSampling(v) => transitions::set_sampling(s, *v),
        Outcome::ApplyWhatIf => transitions::apply_whatif(s),
        Outcome::SetSystemPrompt(text) => transitions::change_system_prompt(s, text),
        Outcome::OpenHelp => open_help(s),
        Outcome::OpenSystemPrompt => open_system_prompt(s),
        Outcome::Rescan => transitions::rescan(s),
        Outcome::OpenCompare => super::compare::open(s),
        Outcome::CompareWith(for_, entry) => super::compare::choose(s, &for_, &entry),
        Outcome::CancelCompare => super::compare::cancel(s),
        Outcome::EndCompare => super::compare::unload(s),
        Outcome::OpenLens(at) => super::lens_view::open(s, at),
        Outcome::OpenKvCost(at) => super::kv_view::open(s, at),
        Outcome::LensStep(by) => super::lens_view::step(s, by),
        Outcome::OpenRollouts(at) => super::rollouts_view::open(s, at),
        Outcome::BranchRollout { at, rollout, seed } => {
            super::rollouts_view::branch(s, at, &rollout, seed)
        }
        Outcome::ToggleHeatmap => {
            super::heat_scale::cycle(s);
            vec![]
        }
    }
}

/// The actions of [`Context::Main`] (outside popups, whatever has the focus).
fn main_action(s: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::OpenHelp => open_help(s),
        Action::OpenPicker => open_picker(s),
        Action::OpenSettings => open_settings(s),
        Action::OpenSystemPrompt => open_system_prompt(s),
        Action::NewChat => new_chat(s),
        Action::OpenChats => open_chats(s),
        Action::ToggleStepMode => reply::toggle_step_mode(s),
        Action::Regenerate => reply::regenerate(s),
        Action::CompareReply => super::compare::open(s),
        // The token cursor, toggles, scrolling.
        other => {
            let outcome = chat::on_action(s, other);
            apply(s, outcome)
        }
    }
}

/// Ctrl-C: stops the reply; else closes the popup; else, pressed twice, quits.
fn ctrl_c(s: &mut State) -> Vec<Effect> {
    // While a stop is pending (a long prefill chunk), Ctrl-C works as when idle:
    // twice quits, so the app can always be left.
    if s.session
        .generation
        .as_ref()
        .is_some_and(|g| g.phase != Phase::Cancelling)
    {
        s.quit_armed = false;
        return cancel(s);
    }
    // A comparison under way stops like a reply (once: a second Ctrl-C quits).
    if s.compare
        .job
        .as_ref()
        .is_some_and(|j| j.phase != super::compare::JobPhase::Cancelling)
        && s.view.popup.is_none()
    {
        s.quit_armed = false;
        return super::compare::cancel(s);
    }
    if s.view.popup.take().is_some() {
        s.view.set_focus(s.view.focus);
        return vec![];
    }
    if s.quit_armed {
        return vec![Effect::Quit];
    }
    s.quit_armed = true;
    s.info(tr("notice-ctrl-c-again", "Press Ctrl-C again to quit."));
    vec![]
}
