//! The state changes that several parts ask for, in one place: stopping a
//! reply or a load, loading a model, a new chat, showing a conversation
//! (a saved one opened with its model: [`install_chat`]), opening a popup, entering and leaving the token cursor, choosing at a
//! token. Components and `update` call these; they change the state and
//! return what the loop must do ([`Effect`]). No I/O.

use super::effect::Effect;
use super::reply;
use super::state::{
    ChatList, ChatListMode, ChooseAt, Chooser, Focus, Loading, Phase, Picker, Popup, State,
    TokenRef, new_input, popup::settings_form,
};
use crate::conversation::Conversation;
use crate::engine::ModelRef;
use crate::store::{ConvId, StoredConversation};
use crate::text::escape_inline;

/// Stops the running generation (its final event still arrives); asked
/// again while that stop is pending, restarts the engine (one that hangs
/// never answers the stop).
pub fn cancel(s: &mut State) -> Vec<Effect> {
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
pub fn cancel_load(s: &mut State) -> Vec<Effect> {
    match &mut s.load {
        Some(l) if !l.cancelling => {
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
/// and the crash handling reloads the model in use (see `engine_events`).
fn restart_engine(s: &mut State) -> Vec<Effect> {
    s.info("Restarting the engine…");
    vec![Effect::RestartEngine]
}

/// Starts a new chat (the system prompt stays); stops a reply under way.
/// The chat shown is saved (what is left to save of it: it was saved
/// after every turn).
pub fn new_chat(s: &mut State) -> Vec<Effect> {
    if s.save_failed && !s.conv.is_empty() && !std::mem::take(&mut s.new_chat_armed) {
        s.new_chat_armed = true;
        s.error(
            "This conversation is not saved (saving failed): Ctrl-N again starts a new one \
             without it; anything else keeps it (the next message tries to save it again).",
        );
        return vec![];
    }
    let mut fx = Vec::new();
    if let Some(g) = s.generation.take() {
        fx.push(Effect::Cancel(g.request));
    }
    fx.extend(super::compare::on_conversation_replaced(s));
    let fresh = crate::conversation::Conversation::new(Some(&s.config.system_prompt));
    let (old_id, old) = show_conversation(s, fresh, None);
    if !old.is_empty() {
        fx.push(Effect::SaveAway(old_id, Box::new(old)));
    }
    s.info("New chat.");
    fx
}

/// Puts `conv` (saved as `id`) on screen from its start, typing; returns
/// the conversation it replaces, with its id.
pub fn show_conversation(
    s: &mut State,
    conv: crate::conversation::Conversation,
    id: Option<crate::store::ConvId>,
) -> (
    Option<crate::store::ConvId>,
    crate::conversation::Conversation,
) {
    let old = std::mem::replace(&mut s.conv, conv);
    let old_id = std::mem::replace(&mut s.conv_id, id);
    s.cursor = None;
    s.chooser = None;
    s.editing = None;
    s.last_stats = None;
    s.scroll.follow = true;
    s.scroll.top = 0;
    s.set_focus(Focus::Input);
    s.repath();
    (old_id, old)
}

/// Loads `model` (stopping a load or a reply under way).
pub fn load_model(s: &mut State, model: ModelRef) -> Vec<Effect> {
    // A second model loaded to compare goes with the first.
    let mut fx = super::compare::on_switch_model(s);
    if let Some(l) = &s.load {
        fx.push(Effect::Cancel(l.request));
    }
    if let Some(g) = &mut s.generation
        && g.phase != Phase::Cancelling
    {
        g.phase = Phase::Cancelling;
        fx.push(Effect::Cancel(g.request));
    }
    let request = s.new_request();
    s.load = Some(Loading {
        request,
        model: model.clone(),
        fraction: 0.0,
        restore: None,
        cancelling: false,
    });
    fx.push(Effect::Load(request, model));
    fx
}
/// Opens popup `p` (the input box's cursor hides behind it).
pub fn open_popup(s: &mut State, p: Popup) -> Vec<Effect> {
    s.popup = Some(p);
    s.set_focus(s.focus);
    vec![]
}

/// Opens the help.
pub fn open_help(s: &mut State) -> Vec<Effect> {
    open_popup(s, Popup::Help { scroll: 0 })
}

/// Opens the picker on the model in use, and rescans the model directories.
pub fn open_picker(s: &mut State) -> Vec<Effect> {
    let mut p = Picker::default();
    if let Some(m) = &s.model
        && let Some(i) = p
            .visible(&s.files.models)
            .iter()
            .position(|&i| s.files.models[i].model == m.model)
    {
        p.selected = i;
    }
    open_popup(s, Popup::Picker(p));
    s.files.scanning = true;
    vec![Effect::RefreshModels]
}

/// Opens the form on the sampling settings in use.
pub fn open_settings(s: &mut State) -> Vec<Effect> {
    let form = settings_form(&s.config.sampling, s.config.max_tokens);
    open_popup(s, Popup::Settings(form))
}

/// Opens the editor on the system prompt in use.
pub fn open_system_prompt(s: &mut State) -> Vec<Effect> {
    let mut t = new_input();
    t.set_placeholder_text(if s.template_system_prompt().is_some() {
        "No system prompt of yours; the template adds its own (below). Type one."
    } else {
        "No system prompt. Type one; Enter saves, Esc cancels."
    });
    t.insert_str(&s.config.system_prompt);
    open_popup(s, Popup::SystemPrompt(Box::new(t)))
}

/// Opens the list (the conversation shown is saved first, so it is listed).
pub fn open_chats(s: &mut State) -> Vec<Effect> {
    let l = ChatList {
        filter: String::new(),
        rows: Vec::new(),
        selected: 0,
        mode: ChatListMode::Browse,
        loading: true,
        error: None,
    };
    open_popup(s, Popup::Chats(l));
    vec![Effect::Save, Effect::ListChats]
}

/// Puts saved conversation `id` on screen in place of the one shown: its
/// model is loaded when `model_present` (its file exists) and it is not the
/// one loaded; without the file, the picker opens.
pub fn install_chat(
    s: &mut State,
    id: ConvId,
    mut conv: Conversation,
    meta: &StoredConversation,
    model_present: bool,
) -> Vec<Effect> {
    let mut fx = Vec::new();
    // The list refuses while a reply runs; a reply left over is stopped.
    if let Some(g) = s.generation.take()
        && g.phase != Phase::Cancelling
    {
        fx.push(Effect::Cancel(g.request));
    }
    if let (Some(name), Some(vocab)) = (s.model_name(), s.vocab.clone()) {
        conv.attach_vocab(&name, &vocab);
    }
    fx.extend(super::compare::on_conversation_replaced(s));
    s.config.system_prompt = conv.system().unwrap_or("").to_string();
    // The one shown was saved before (the list asks for that first).
    show_conversation(s, conv, Some(id));
    let title = escape_inline(&meta.title);
    let loaded = s.model.as_ref().map(|m| &m.model);
    match (&meta.model_path, model_present) {
        (Some(model), true)
            if loaded != Some(model) && s.load.as_ref().is_none_or(|l| &l.model != model) =>
        {
            s.info(format!("Opened “{title}”; loading its model."));
            fx.extend(load_model(s, model.clone()));
            fx
        }
        (Some(model), false) if loaded != Some(model) => {
            fx.extend(open_picker(s));
            if let Some(Popup::Picker(p)) = &mut s.popup {
                p.message = Some(format!(
                    "“{title}” was written with {model}, which is not there any more: choose a model to continue it."
                ));
            }
            fx
        }
        _ => {
            s.info(format!("Opened “{title}”."));
            fx
        }
    }
}

/// Opens the chooser on past token `t` (from the token cursor), the token
/// it has selected.
pub fn choose_at(s: &mut State, t: TokenRef) -> Vec<Effect> {
    if let Some(why) = reply::busy(s) {
        s.info(why);
        return vec![];
    }
    match s.msg(t.msg).map(|m| m.role) {
        Some(crate::engine::Role::User) => {
            s.info(
                "A token of your message: e edits the message; branching is from a reply's tokens.",
            );
            return vec![];
        }
        Some(crate::engine::Role::System) => {
            s.info("A token of the system prompt: e edits it; branching is from a reply's tokens.");
            return vec![];
        }
        _ => {}
    }
    let Some(step) = s.step(t) else {
        return vec![];
    };
    if step.top().is_empty() {
        s.info(
            "No candidates were recorded for this token (the inspector was off): r re-samples it.",
        );
        return vec![];
    }
    let selected = step.top().iter().position(|c| c.id == step.id).unwrap_or(0);
    s.chooser = Some(Chooser {
        at: ChooseAt::Token(t),
        selected,
        text: String::new(),
        typing: false,
    });
    s.set_focus(Focus::Choose);
    vec![]
}

/// Enters the token cursor (on the last token, or where it was), or leaves it.
pub fn toggle_navigation(s: &mut State) -> Vec<Effect> {
    if s.focus == Focus::Navigate {
        back_from_cursor(s);
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

/// Leaves the token cursor: back to choosing the next token when a reply
/// is paused (step mode), else to typing.
pub fn back_from_cursor(s: &mut State) {
    if s.generation
        .as_ref()
        .is_some_and(|g| matches!(g.phase, Phase::Paused { .. }))
    {
        s.set_focus(Focus::Input);
        reply::choose_next(s, true);
    } else {
        s.set_focus(Focus::Input);
    }
}

pub fn reveal_cursor(s: &mut State) {
    if let Some(c) = s.cursor
        && let Some((line, _)) = s.token_position(c)
    {
        s.ensure_visible(line);
    }
}
