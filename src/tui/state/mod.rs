//! Everything the TUI knows ([`State`]). `update` and the transitions change
//! it; `render` only reads it. The bottom of the TUI: it imports nothing of
//! the TUI but the keymap-free helpers (layout, wrapping, the input view,
//! live numbers, the model list). Its parts, each with its methods: the
//! session (`session.rs`), the model (`model.rs`), the view (`view.rs`, the
//! tokens and cursor in `tokens.rs`), the popups' data (`popup.rs`), the
//! compare mode's data (`compare.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use ratatui::style::{Modifier, Style};
use ratatui_textarea::{TextArea, WrapMode};

use crate::config::Config;
use crate::conversation::{Conversation, NodeId};
use crate::engine::{ChatMode, ModelInfo, RequestId, Role, SamplingParams, Stats, Vocab};

pub mod compare;
mod model;
pub mod popup;
mod session;
mod tokens;
mod view;

pub use model::{ModelFiles, SamplerColumn};
pub use popup::{ChatList, ChatListMode, Field, Picker, Popup, SettingsForm};
pub use session::{Generation, Loading, Phase, PromptScoring};
pub use tokens::{ChooseAt, Chooser, TokenRef, lone_digit};
pub use view::{
    ChatLine, ChatView, ChatWindow, Display, Scroll, is_scaffolding, message_block, sibling_mark,
};

/// A turn of the chat: a node of the conversation tree.
pub use crate::conversation::Node as Message;
/// How a turn stands.
pub use crate::conversation::Status as MsgStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Input,
    /// Token cursor over the assistant messages.
    Navigate,
    /// Choosing a token in the inspector ([`State::chooser`]).
    Choose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub level: NoticeLevel,
    pub text: String,
}

/// Sent messages, recalled with Up/Down in the input box.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub entries: Vec<String>,
    /// Entry being shown, None = the draft.
    pub pos: Option<usize>,
    pub draft: String,
}

/// Everything the TUI knows, in four parts (each part's methods are in the
/// file named): the app, the session, the model, the view. `update` and the
/// transitions change it; drawing only reads it.
pub struct State {
    // ---- The app: its settings and its life
    pub config: Config,
    pub raw: bool,
    pub model_dirs: Vec<PathBuf>,
    /// Ctrl-C was pressed once while idle; a second press quits.
    pub quit_armed: bool,
    /// An error that ends the app (taken by the loop).
    pub fatal: Option<String>,
    /// A terminating signal arrived: the app quits and then exits by it.
    pub exit_signal: Option<i32>,

    // ---- The session (`session.rs`): the conversation, saving it, the
    // reply under way and the load
    /// Every turn ever written, alternatives included.
    pub conv: Conversation,
    /// Its id in the conversations database, once saved.
    pub conv_id: Option<crate::store::ConvId>,
    /// The last save failed (a notice said so); the next one that works says so too.
    pub save_failed: bool,
    /// Why saving is off for this session (the database can only be read:
    /// a read-only data directory); the status bar says "saving off".
    pub saving_off: Option<String>,
    /// Ctrl-N was pressed once on a conversation not saved: a second press drops it.
    pub new_chat_armed: bool,
    /// The user message being edited in the input box (sent as a new version of it).
    pub editing: Option<NodeId>,
    /// Step mode: replies start paused and go one token per key.
    pub step_mode: bool,
    pub load: Option<Loading>,
    pub generation: Option<Generation>,
    /// The prompt's surprise, scored after each reply.
    pub prompt_scoring: PromptScoring,
    /// The last engine request id drawn ([`State::new_request`]; ids start at 1).
    pub last_request: RequestId,
    /// The engine's numbers for the last reply that ended.
    pub last_stats: Option<Stats>,
    /// When the message being handled arrived: the loop sets it before each
    /// `update` (tests set it to scripted times). The reply under way's live
    /// numbers ([`Generation::live`]) are measured with it, so that `update`
    /// reads no clock.
    pub clock: std::time::Instant,

    // ---- The model (`model.rs`): the one in use, the files known, the
    // what-if settings, model B
    /// The model the engine has loaded.
    pub model: Option<ModelInfo>,
    /// Its vocabulary (sent once with the load).
    pub vocab: Option<Arc<Vocab>>,
    /// What the engine that runs the model can do (a remote server: no step
    /// mode, no entropy); `None` before the first load.
    pub caps: Option<crate::engine::Capabilities>,
    pub chat_mode: Option<ChatMode>,
    /// The model files known (the picker's list) and how each fared.
    pub files: ModelFiles,
    /// What-if sampling settings: the inspector's sampler column shows what
    /// they would do to the inspected step (from its stored candidates).
    pub whatif: Option<SamplingParams>,
    /// Comparing replies under a second model (model B, its job).
    pub compare: compare::CompareState,

    // ---- The view (`view.rs`, `tokens.rs`): what is shown and where the
    // keys go; the popup open (`popup.rs`)
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    /// The turns shown (the conversation's active path), by chat position.
    pub path: Vec<NodeId>,
    pub chat: ChatView,
    pub scroll: Scroll,
    pub input: TextArea<'static>,
    pub history: History,
    pub focus: Focus,
    pub cursor: Option<TokenRef>,
    /// Column the token cursor keeps while moving up and down.
    pub nav_col: Option<usize>,
    /// The token cursor was entered by a click: letters then go on typing
    /// instead of acting as commands (a click must not turn "quit" into `q`).
    pub nav_by_mouse: bool,
    /// Choosing a token (focus [`Focus::Choose`]).
    pub chooser: Option<Chooser>,
    /// How tokens are drawn: the heatmap, their boundaries, colours.
    pub display: Display,
    pub notice: Option<Notice>,
    pub popup: Option<Popup>,
}

pub fn new_input() -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_wrap_mode(WrapMode::WordOrGlyph);
    t.set_cursor_line_style(Style::default());
    t.set_placeholder_text("Type a message · Enter sends · Alt-Enter newline · F1 help");
    t.set_max_histories(200);
    t
}

impl State {
    pub fn new(config: Config, raw: bool, model_dirs: Vec<PathBuf>, size: (u16, u16)) -> Self {
        let mut s = Self {
            config,
            raw,
            model_dirs,
            size,
            conv: Conversation::default(),
            conv_id: None,
            save_failed: false,
            saving_off: None,
            new_chat_armed: false,
            path: Vec::new(),
            chat: ChatView {
                width: 1,
                blocks: Vec::new(),
                has_system: false,
            },
            scroll: Scroll {
                follow: true,
                top: 0,
            },
            input: new_input(),
            history: History::default(),
            focus: Focus::Input,
            cursor: None,
            nav_col: None,
            nav_by_mouse: false,
            display: Display {
                heatmap: true,
                boundaries: false,
                color: true,
            },
            step_mode: false,
            caps: None,
            chooser: None,
            editing: None,
            whatif: None,
            popup: None,
            model: None,
            vocab: None,
            load: None,
            last_request: 0,
            generation: None,
            prompt_scoring: PromptScoring::default(),
            last_stats: None,
            clock: std::time::Instant::now(),
            chat_mode: None,
            notice: None,
            files: ModelFiles::default(),
            quit_armed: false,
            fatal: None,
            exit_signal: None,
            compare: Default::default(),
        };
        s.conv.set_system(&s.config.system_prompt);
        s.repath();
        s.set_focus(Focus::Input);
        s
    }

    /// Turn `i` of the chat shown.
    pub fn msg(&self, i: usize) -> Option<&Message> {
        Some(self.conv.node(*self.path.get(i)?))
    }

    pub fn msg_mut(&mut self, i: usize) -> Option<&mut Message> {
        Some(self.conv.node_mut(*self.path.get(i)?))
    }

    /// The turns shown, in order.
    pub fn msgs(&self) -> impl Iterator<Item = &Message> + '_ {
        self.path.iter().map(|&id| self.conv.node(id))
    }

    /// Chat position of node `id`, when it is shown.
    pub fn msg_index(&self, id: NodeId) -> Option<usize> {
        self.path.iter().position(|&x| x == id)
    }

    /// Sets the system prompt: a blank one hides the system turn, which
    /// moves the chat positions of the turns after it (a reply under way,
    /// the token cursor) by one.
    pub fn set_system_prompt(&mut self, text: &str) {
        let before = self.conv.system().is_some() as isize;
        self.conv.set_system(text);
        let delta = self.conv.system().is_some() as isize - before;
        if delta != 0 {
            let shift = |m: &mut usize| *m = (*m as isize + delta).max(0) as usize;
            if let Some(g) = self.generation.as_mut() {
                shift(&mut g.msg);
            }
            // A cursor on the system prompt's tokens has nothing left to show.
            self.cursor = self.cursor.filter(|c| delta > 0 || c.msg > 0);
            if let Some(c) = self.cursor.as_mut() {
                shift(&mut c.msg);
            }
            if let Some(ch) = self.chooser.as_mut()
                && let ChooseAt::Token(t) = &mut ch.at
            {
                shift(&mut t.msg);
            }
        }
        self.repath();
    }

    /// The tree changed which turns are shown: recomputes the path and
    /// rewraps the chat; a token cursor past the new turns moves back.
    pub fn repath(&mut self) {
        self.path = self.conv.shown();
        self.relayout();
        // A message being edited that is no longer shown: the edit goes.
        if let Some(id) = self.editing
            && self.msg_index(id).is_none()
        {
            self.editing = None;
            self.input = new_input();
            self.set_focus(self.focus);
            self.info("The message being edited is no longer shown: the edit was dropped.");
        }
        if let Some(c) = self.cursor
            && self.step(c).is_none()
        {
            self.cursor = self
                .msg(c.msg)
                .filter(|m| m.role == Role::Assistant && !m.steps.is_empty())
                .map(|m| TokenRef {
                    msg: c.msg,
                    step: c.step.min(m.steps.len() - 1),
                })
                .or_else(|| self.last_token());
        }
    }

    pub fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        let cursor = if focus == Focus::Input && self.popup.is_none() {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        self.input.set_cursor_style(cursor);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            level: NoticeLevel::Error,
            text: text.into(),
        });
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            level: NoticeLevel::Info,
            text: text.into(),
        });
    }
}
