//! The state changes that reach across the app, in one place: stopping a
//! reply or a load, loading a model, a new chat, showing a conversation
//! (a saved one opened with its model: [`install_chat`]), opening a popup,
//! entering and leaving the token cursor, choosing at a token, the settings
//! and the system prompt changed. `update` calls these (for the components,
//! applying the [`super::outcome::Outcome`] a key returned); they change the
//! state and return what the loop must do ([`Effect`]). No I/O.

use super::effect::Effect;
use super::reply;
use super::state::{
    ChatList, ChatListMode, ChooseAt, Chooser, Focus, Loading, Phase, Picker, Popup, State,
    TokenRef, new_input,
    popup::{SettingsValues, settings_form},
};
use crate::conversation::Conversation;
use crate::engine::ModelRef;
use crate::i18n::{tr, tr_args};
use crate::store::{ConvId, StoredConversation};
use crate::text::escape_inline;

/// Stops the running generation (its final event still arrives); asked
/// again while that stop is pending, restarts the engine (one that hangs
/// never answers the stop).
pub fn cancel(s: &mut State) -> Vec<Effect> {
    match &mut s.session.generation {
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
    match &mut s.session.load {
        Some(l) if !l.cancelling => {
            l.cancelling = true;
            let request = l.request;
            s.info(tr(
                "notice-stopping-load",
                "Stopping the load (Esc again restarts the engine if it does not answer).",
            ));
            vec![Effect::Cancel(request)]
        }
        Some(_) => restart_engine(s),
        None => vec![],
    }
}

/// Kills the engine process and starts a new one: what it was doing fails,
/// and the crash handling reloads the model in use (see `engine_events`).
fn restart_engine(s: &mut State) -> Vec<Effect> {
    s.info(tr("notice-restarting-engine", "Restarting the engine…"));
    vec![Effect::RestartEngine]
}

/// A warning of the setup (plain http to another machine) said where it is
/// seen: in the notice line.
pub fn warn(s: &mut State, warning: &str) {
    s.error(tr_args(
        "notice-warning",
        "Warning: { $warning }.",
        &[("warning", &warning)],
    ));
}

/// Starts a new chat (the system prompt stays); stops a reply under way.
/// The chat shown is saved (what is left to save of it: it was saved
/// after every turn).
pub fn new_chat(s: &mut State) -> Vec<Effect> {
    if s.session.save_failed
        && !s.session.conv.is_empty()
        && !std::mem::take(&mut s.session.new_chat_armed)
    {
        s.session.new_chat_armed = true;
        s.error(tr(
            "notice-new-chat-unsaved",
            "This conversation is not saved (saving failed): Ctrl-N again starts a new one \
             without it; anything else keeps it (the next message tries to save it again).",
        ));
        return vec![];
    }
    let mut fx = Vec::new();
    if let Some(g) = s.session.generation.take() {
        fx.push(Effect::Cancel(g.request));
    }
    fx.extend(super::compare::on_conversation_replaced(s));
    let fresh = crate::conversation::Conversation::new(Some(&s.config.system_prompt));
    let (old_id, old) = show_conversation(s, fresh, None);
    if !old.is_empty() {
        fx.push(Effect::SaveAway(old_id, Box::new(old)));
    }
    s.info(tr("notice-new-chat", "New chat."));
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
    let old = std::mem::replace(&mut s.session.conv, conv);
    let old_id = std::mem::replace(&mut s.session.conv_id, id);
    s.view.cursor = None;
    s.view.chooser = None;
    s.session.editing = None;
    s.session.last_stats = None;
    // Its prompt's places are the old conversation's (a scoring still in
    // flight goes on unheard, and gives way to the next request).
    s.session.prompt_scoring = Default::default();
    s.view.scroll.follow = true;
    s.view.scroll.top = 0;
    s.view.set_focus(Focus::Input);
    s.repath();
    (old_id, old)
}

/// Loads `model` (stopping a load or a reply under way).
pub fn load_model(s: &mut State, model: ModelRef) -> Vec<Effect> {
    // A second model loaded to compare goes with the first.
    let mut fx = super::compare::on_switch_model(s);
    if let Some(l) = &s.session.load {
        fx.push(Effect::Cancel(l.request));
    }
    if let Some(g) = &mut s.session.generation
        && g.phase != Phase::Cancelling
    {
        g.phase = Phase::Cancelling;
        fx.push(Effect::Cancel(g.request));
    }
    let request = s.session.new_request();
    s.session.load = Some(Loading {
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
    s.view.popup = Some(p);
    s.view.set_focus(s.view.focus);
    vec![]
}

/// Opens the help.
pub fn open_help(s: &mut State) -> Vec<Effect> {
    open_popup(s, Popup::Help { scroll: 0 })
}

/// Opens the picker on the model in use, and rescans the model directories.
pub fn open_picker(s: &mut State) -> Vec<Effect> {
    let mut p = Picker::default();
    if let Some(m) = &s.model.info
        && let Some(i) = p
            .visible(&s.model.files.models)
            .iter()
            .position(|&i| s.model.files.models[i].model == m.model)
    {
        p.selected = i;
    }
    open_popup(s, Popup::Picker(p));
    s.model.files.scanning = true;
    vec![Effect::RefreshModels]
}

/// Opens the form on the sampling settings in use.
pub fn open_settings(s: &mut State) -> Vec<Effect> {
    let form = settings_form(&s.config.sampling, s.config.max_tokens, s.config.surprise);
    open_popup(s, Popup::Settings(form))
}

/// Opens the editor on the system prompt in use.
pub fn open_system_prompt(s: &mut State) -> Vec<Effect> {
    let mut t = new_input();
    t.set_placeholder_text(if s.template_system_prompt().is_some() {
        tr(
            "notice-system-prompt-template",
            "No system prompt of yours; the template adds its own (below). Type one.",
        )
    } else {
        tr(
            "notice-system-prompt-none",
            "No system prompt. Type one; Enter saves, Esc cancels.",
        )
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
    if let Some(g) = s.session.generation.take()
        && g.phase != Phase::Cancelling
    {
        fx.push(Effect::Cancel(g.request));
    }
    s.model.attach_vocab_to(&mut conv);
    fx.extend(super::compare::on_conversation_replaced(s));
    s.config.system_prompt = conv.system().unwrap_or("").to_string();
    // The one shown was saved before (the list asks for that first).
    show_conversation(s, conv, Some(id));
    let title = escape_inline(&meta.title);
    let loaded = s.model.info.as_ref().map(|m| &m.model);
    match (&meta.model_path, model_present) {
        (Some(model), true)
            if loaded != Some(model)
                && s.session.load.as_ref().is_none_or(|l| &l.model != model) =>
        {
            s.info(tr_args(
                "notice-opened-loading",
                "Opened “{ $title }”; loading its model.",
                &[("title", &title)],
            ));
            fx.extend(load_model(s, model.clone()));
            fx
        }
        (Some(model), false) if loaded != Some(model) => {
            fx.extend(open_picker(s));
            if let Some(Popup::Picker(p)) = &mut s.view.popup {
                p.message = Some(tr_args(
                    "notice-chat-model-gone",
                    "“{ $title }” was written with { $model }, which is not there any more: choose a model to continue it.",
                    &[("title", &title), ("model", model)],
                ));
            }
            fx
        }
        _ => {
            s.info(tr_args(
                "notice-opened",
                "Opened “{ $title }”.",
                &[("title", &title)],
            ));
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
            s.info(tr(
                "notice-branch-on-prompt",
                "A token of your message: e edits the message; branching is from a reply's tokens.",
            ));
            return vec![];
        }
        Some(crate::engine::Role::System) => {
            s.info(tr(
                "notice-branch-on-system",
                "A token of the system prompt: e edits it; branching is from a reply's tokens.",
            ));
            return vec![];
        }
        _ => {}
    }
    let Some(step) = s.step(t) else {
        return vec![];
    };
    if step.top().is_empty() {
        s.info(tr(
            "notice-no-candidates",
            "No candidates were recorded for this token (the inspector was off): r re-samples it.",
        ));
        return vec![];
    }
    let selected = step.top().iter().position(|c| c.id == step.id).unwrap_or(0);
    s.view.chooser = Some(Chooser {
        at: ChooseAt::Token(t),
        selected,
        text: String::new(),
        typing: false,
        find: false,
    });
    s.view.set_focus(Focus::Choose);
    vec![]
}

/// Enters the token cursor (on the last token, or where it was), or leaves it.
pub fn toggle_navigation(s: &mut State) -> Vec<Effect> {
    if s.view.focus == Focus::Navigate {
        back_from_cursor(s);
        return vec![];
    }
    let valid = s.view.cursor.filter(|c| s.step(*c).is_some());
    let Some(c) = valid.or_else(|| s.last_token()) else {
        s.info(tr("notice-no-reply-to-inspect", "No reply to inspect yet."));
        return vec![];
    };
    s.view.cursor = Some(c);
    s.view.nav_by_mouse = false;
    s.view.set_focus(Focus::Navigate);
    s.reveal_cursor();
    vec![]
}

/// Leaves the token cursor: back to choosing the next token when a reply
/// is paused (step mode), else to typing.
pub fn back_from_cursor(s: &mut State) {
    if s.session
        .generation
        .as_ref()
        .is_some_and(|g| matches!(g.phase, Phase::Paused { .. }))
    {
        s.view.set_focus(Focus::Input);
        reply::choose_next(s, true);
    } else {
        s.view.set_focus(Focus::Input);
    }
}

/// Rescans the model directories (the picker's list).
pub fn rescan(s: &mut State) -> Vec<Effect> {
    s.model.files.scanning = true;
    vec![Effect::RefreshModels]
}

/// The sampling settings (and the most tokens a reply gets) from now on,
/// from the settings form.
pub fn set_sampling(s: &mut State, v: SettingsValues) -> Vec<Effect> {
    let (p, stop) = (&v.sampling, v.surprise);
    s.info(tr_args(
        "notice-sampling",
        "Sampling: temperature { $temperature }, top_k { $top_k }, top_p { $top_p }, min_p { $min_p }, repeat_penalty { $repeat_penalty }, seed { $seed }, max_tokens { $max_tokens }; a surprise: p < { $below_p } or entropy > { $above_entropy } bits.",
        &[
            ("temperature", &p.temperature),
            ("top_k", &p.top_k),
            ("top_p", &p.top_p),
            ("min_p", &p.min_p),
            ("repeat_penalty", &p.repeat_penalty),
            ("seed", &p.seed),
            ("max_tokens", &v.max_tokens),
            ("below_p", &stop.below_p),
            ("above_entropy", &stop.above_entropy),
        ],
    ));
    s.config.sampling = v.sampling;
    s.config.max_tokens = v.max_tokens;
    s.config.surprise = stop;
    vec![]
}

/// The what-if settings become the ones the next reply samples with.
pub fn apply_whatif(s: &mut State) -> Vec<Effect> {
    match s.model.whatif.clone() {
        Some(p) => {
            s.info(tr_args(
                "notice-whatif-applied",
                "The next reply samples with temperature { $temperature }, top_k { $top_k }, top_p { $top_p }, min_p { $min_p }.",
                &[
                    ("temperature", &format!("{:.2}", p.temperature)),
                    ("top_k", &p.top_k),
                    ("top_p", &format!("{:.2}", p.top_p)),
                    ("min_p", &format!("{:.3}", p.min_p)),
                ],
            ));
            // The four what-if settings only: the seed (a reply's own,
            // derived one) and the penalty stay as configured.
            let c = &mut s.config.sampling;
            (c.temperature, c.top_k, c.top_p, c.min_p) = (p.temperature, p.top_k, p.top_p, p.min_p);
        }
        None => s.info(tr(
            "notice-no-whatif",
            "No what-if settings yet: t/T, k/K, p/P, m/M change them.",
        )),
    }
    vec![]
}

/// The system prompt changed (the editor's Enter): the conversation gets it,
/// and is saved now, not only with the next turn.
pub fn change_system_prompt(s: &mut State, text: String) -> Vec<Effect> {
    s.config.system_prompt = text;
    let text = s.config.system_prompt.clone();
    s.set_system_prompt(&text);
    s.info(if s.config.system_prompt.is_empty() {
        tr("notice-system-prompt-removed", "System prompt removed.")
    } else {
        tr(
            "notice-system-prompt-set",
            "System prompt set: it applies to the whole conversation from the next reply.",
        )
    });
    vec![Effect::Save]
}
