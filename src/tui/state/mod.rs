//! Everything the TUI knows ([`State`]). `update` and the transitions change
//! it; `render` only reads it. The bottom of the TUI: it imports nothing of
//! the TUI but the keymap-free helpers (layout, wrapping, the input view,
//! live numbers, the model list). Its parts, each a struct in its own file
//! with its methods: the [`Session`] (`session.rs`: `s.session`), the
//! [`Model`] (`model.rs`: `s.model`), the [`View`] (`view.rs`: `s.view`; the
//! tokens and cursor in `tokens.rs`, the popups' data in `popup.rs`), the
//! compare mode (`compare.rs`: `s.compare`). What reads or changes several
//! parts at once is a method of [`State`], in the file of the part it is
//! mostly about.

use std::path::PathBuf;

use ratatui::style::Style;
use ratatui_textarea::{TextArea, WrapMode};

use crate::config::Config;
use crate::conversation::{Conversation, NodeId};
use crate::engine::Role;
use crate::i18n::tr;

pub(crate) mod compare;
pub(crate) mod kv_cost;
pub(crate) mod lens;
mod model;
pub(crate) mod popup;
pub(crate) mod rollouts;
mod session;
mod tokens;
mod view;

pub(crate) use model::{Model, SamplerColumn};
pub(crate) use popup::{ChatList, ChatListMode, Picker, Popup, SettingsForm};
pub(crate) use session::{Generation, Loading, Phase, PromptScoring, Session};
pub(crate) use tokens::{Asking, ChooseAt, Chooser, Question, TokenRef, lone_digit};
pub(crate) use view::{ChatLine, ChatView, Display, HeatScale, Scroll, View, is_scaffolding};

/// A turn of the chat: a node of the conversation tree.
pub use crate::conversation::Node as Message;
/// How a turn stands.
pub use crate::conversation::Status as MsgStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Focus {
    Input,
    /// Token cursor over the assistant messages.
    Navigate,
    /// Choosing a token in the inspector ([`View::chooser`]).
    Choose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeLevel {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub(crate) level: NoticeLevel,
    pub text: String,
}

/// Sent messages, recalled with Up/Down in the input box.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    pub entries: Vec<String>,
    /// Entry being shown, None = the draft.
    pub pos: Option<usize>,
    pub draft: String,
}

/// Everything the TUI knows, in parts (each part's methods are in its file):
/// the app (its settings and its life, here), the [`Session`], the
/// [`Model`], the [`View`] and the compare mode ([`compare::CompareState`]).
/// `update` and the transitions change it; drawing only reads it.
pub struct State {
    // ---- The app: its settings and its life
    pub config: Config,
    pub raw: bool,
    /// Where the picker looks for models (tokenscope's directories and
    /// the other tools' stores).
    pub places: crate::catalog::Places,
    /// Ctrl-C was pressed once while idle; a second press quits.
    pub quit_armed: bool,
    /// An error that ends the app (taken by the loop).
    pub fatal: Option<String>,
    /// A terminating signal arrived: the app quits and then exits by it.
    pub exit_signal: Option<i32>,

    /// The conversation, saving it, the reply under way and the load.
    pub session: Session,
    /// The model in use, the files known, the what-if settings.
    pub model: Model,
    /// What is shown and where the keys go; the popup open.
    pub view: View,
    /// Comparing replies under a second model (model B, its job).
    pub compare: compare::CompareState,
}

pub(crate) fn new_input() -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_wrap_mode(WrapMode::WordOrGlyph);
    t.set_cursor_line_style(Style::default());
    t.set_placeholder_text(tr(
        "input-placeholder",
        "Type a message · Enter sends · Alt-Enter newline · F1 help",
    ));
    t.set_max_histories(200);
    t
}

impl State {
    pub fn new(config: Config, raw: bool, model_dirs: Vec<PathBuf>, size: (u16, u16)) -> Self {
        let mut s = Self {
            config,
            raw,
            places: crate::catalog::Places::own(model_dirs),
            quit_armed: false,
            fatal: None,
            exit_signal: None,
            session: Session {
                conv: Conversation::default(),
                conv_id: None,
                save_failed: false,
                saving_off: None,
                new_chat_armed: false,
                editing: None,
                step_mode: false,
                to_surprise: false,
                load: None,
                generation: None,
                prompt_scoring: PromptScoring::default(),
                prompt_places: Default::default(),
                last_request: 0,
                last_stats: None,
                clock: std::time::Instant::now(),
            },
            model: Model::default(),
            view: View {
                size,
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
                chooser: None,
                asking: Default::default(),
                display: Display {
                    heat: Some(HeatScale::Probability),
                    boundaries: false,
                    color: true,
                },
                notice: None,
                popup: None,
            },
            compare: Default::default(),
        };
        s.session.conv.set_system(&s.config.system_prompt);
        s.repath();
        s.view.set_focus(Focus::Input);
        s
    }

    /// Turn `i` of the chat shown.
    pub fn msg(&self, i: usize) -> Option<&Message> {
        Some(self.session.conv.node(*self.view.path.get(i)?))
    }

    #[cfg(test)]
    pub(crate) fn msg_mut(&mut self, i: usize) -> Option<&mut Message> {
        Some(self.session.conv.node_mut(*self.view.path.get(i)?))
    }

    /// The turns shown, in order.
    pub fn msgs(&self) -> impl Iterator<Item = &Message> + '_ {
        self.view.path.iter().map(|&id| self.session.conv.node(id))
    }

    /// Chat position of node `id`, when it is shown.
    pub(crate) fn msg_index(&self, id: NodeId) -> Option<usize> {
        self.view.path.iter().position(|&x| x == id)
    }

    /// Sets the system prompt: a blank one hides the system turn, which
    /// moves the chat positions of the turns after it (a reply under way,
    /// the token cursor) by one.
    pub(crate) fn set_system_prompt(&mut self, text: &str) {
        let before = self.session.conv.system().is_some() as isize;
        self.session.conv.set_system(text);
        let delta = self.session.conv.system().is_some() as isize - before;
        if delta != 0 {
            let shift = |m: &mut usize| *m = (*m as isize + delta).max(0) as usize;
            if let Some(g) = self.session.generation.as_mut() {
                shift(&mut g.msg);
            }
            // A cursor on the system prompt's tokens has nothing left to show.
            self.view.cursor = self.view.cursor.filter(|c| delta > 0 || c.msg > 0);
            if let Some(c) = self.view.cursor.as_mut() {
                shift(&mut c.msg);
            }
            if let Some(ch) = self.view.chooser.as_mut()
                && let ChooseAt::Token(t) = &mut ch.at
            {
                shift(&mut t.msg);
            }
        }
        self.repath();
    }

    /// The tree changed which turns are shown: recomputes the path and
    /// rewraps the chat; a token cursor past the new turns moves back.
    pub(crate) fn repath(&mut self) {
        self.view.path = self.session.conv.shown();
        self.relayout();
        // A message being edited that is no longer shown: the edit goes.
        if let Some(id) = self.session.editing
            && self.msg_index(id).is_none()
        {
            self.session.editing = None;
            self.view.input = new_input();
            self.view.set_focus(self.view.focus);
            self.info(tr(
                "notice-edit-dropped",
                "The message being edited is no longer shown: the edit was dropped.",
            ));
        }
        if let Some(c) = self.view.cursor
            && self.step(c).is_none()
        {
            self.view.cursor = self
                .msg(c.msg)
                .filter(|m| m.role == Role::Assistant && !m.steps.is_empty())
                .map(|m| TokenRef {
                    msg: c.msg,
                    step: c.step.min(m.steps.len() - 1),
                })
                .or_else(|| self.last_token());
        }
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.view.notice = Some(Notice {
            level: NoticeLevel::Error,
            text: text.into(),
        });
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.view.notice = Some(Notice {
            level: NoticeLevel::Info,
            text: text.into(),
        });
    }
}
