//! Everything the TUI knows. `update` changes it; `render` only reads it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui_textarea::{TextArea, WrapMode};

use super::layout::{self, Areas};
use super::models::ModelEntry;
use super::wrap::{Block, Tag};
use crate::config::Config;
use crate::conversation::{Conversation, NodeId};
use crate::engine::{
    ChatMode, Distribution, GenerateRequest, ModelInfo, RequestId, Role, SamplingParams, Stats,
    StopReason, TokenStep, Vocab,
};
use crate::text::str_width;

pub mod compare;
pub mod popup;

pub use popup::{ChatList, ChatListMode, Field, Picker, Popup, SettingsForm};

/// Request id of a request the loop has not sent yet (engine ids start at 1).
pub const PENDING: RequestId = 0;

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

/// The sampler's side of a step's candidates (see [`State::sampler_column`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerColumn {
    pub resampled: crate::engine::resample::Resampled,
    /// From what-if settings (else the reply's own).
    pub whatif: bool,
}

/// Which token a [`Chooser`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChooseAt {
    /// The next token of the paused reply (step mode).
    Next,
    /// Another token in place of this one: the reply branches there.
    Token(TokenRef),
}

/// Choosing a token among the inspector's candidates, or typing text to force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chooser {
    pub at: ChooseAt,
    /// Index of the selected candidate.
    pub selected: usize,
    /// Text typed to force instead of a candidate.
    pub text: String,
    /// Text was typed (even if deleted since): digits and Space type, so
    /// forced text may start with a digit.
    pub typing: bool,
}

/// The candidate (0-based) a chooser's text of one digit 1-9 names; `None`
/// for any other text (a year, "1949", is text to force).
pub fn lone_digit(text: &str) -> Option<usize> {
    match text.as_bytes() {
        [d @ b'1'..=b'9'] => Some((d - b'1') as usize),
        _ => None,
    }
}

/// A token of an assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenRef {
    pub msg: usize,
    pub step: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Sent; the engine has not started it (it may be loading a model).
    Waiting,
    Prefill {
        done: usize,
        total: usize,
    },
    Generating,
    /// Step mode: waiting for the user to draw, force or run. `next` is the
    /// model's distribution for the next token (`None` with the inspector off).
    Paused {
        next: Option<Box<Distribution>>,
    },
    /// Stop requested; waiting for the engine's final event.
    Cancelling,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub request: RequestId,
    /// Chat position of the reply being written (the chat cannot switch
    /// branches while it is).
    pub msg: usize,
    /// Its node.
    pub node: NodeId,
    /// Steps asked for while one was under way (each press is one token).
    pub steps_queued: u32,
    /// The node of each message of the request (the root for the system prompt).
    pub turns: Vec<NodeId>,
    /// For each prompt position, the prompt turn and token it is (None for
    /// replies' tokens and what follows the last message): where the
    /// prompt's scores go.
    pub positions: Vec<Option<(NodeId, usize)>>,
    pub phase: Phase,
    pub n_prompt: usize,
    pub n_reused: usize,
    /// Of the prompt, the reply's own tokens given back (a branch, a
    /// continued reply): they are among its steps already.
    pub n_prefix: usize,
    /// Its time to the first token and speed so far, for the status bar.
    pub live: super::live::LiveStats,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Loading {
    pub request: RequestId,
    pub path: PathBuf,
    pub fraction: f32,
    /// Reloading the model a crashed engine process held: what crashed, said
    /// again (ending well) when the load ends.
    pub restore: Option<String>,
    /// The user asked to stop it (Esc); a second Esc restarts the engine.
    pub cancelling: bool,
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

/// The part of the chat on screen (see [`State::chat_window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatWindow {
    /// First chat line shown.
    pub top: usize,
    /// Rows holding chat lines.
    pub rows: usize,
    /// Lines below the last one shown, when the scroll hint takes the last row.
    pub hint_below: Option<usize>,
}

/// Chat scrolling: either following the newest line or fixed at a top line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scroll {
    pub follow: bool,
    pub top: usize,
}

/// The chat wrapped for the current width: one block for the system prompt
/// (when there is one), then one per message, separated by blank lines.
#[derive(Debug, Clone)]
pub struct ChatView {
    pub width: usize,
    pub blocks: Vec<Block>,
    pub has_system: bool,
}

impl ChatView {
    pub fn total_lines(&self) -> usize {
        let n: usize = self.blocks.iter().map(|b| b.lines.len()).sum();
        n + self.blocks.len().saturating_sub(1)
    }

    /// Block index of message `msg` (the system prompt, when shown, is
    /// message 0 like any turn).
    pub fn block_of(&self, msg: usize) -> usize {
        msg
    }

    /// First absolute line of block `b`.
    pub fn block_start(&self, b: usize) -> usize {
        self.blocks[..b.min(self.blocks.len())]
            .iter()
            .map(|x| x.lines.len() + 1)
            .sum()
    }
}

/// Sent messages, recalled with Up/Down in the input box.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub entries: Vec<String>,
    /// Entry being shown, None = the draft.
    pub pos: Option<usize>,
    pub draft: String,
}

pub struct State {
    pub config: Config,
    pub raw: bool,
    pub model_dirs: Vec<PathBuf>,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
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
    pub heatmap: bool,
    pub boundaries: bool,
    /// Colours are drawn (NO_COLOR is not set): without them the heatmap and
    /// the token boundaries are marked by style ([`super::theme::HEAT_CUES`]).
    pub color: bool,
    /// Step mode: replies start paused and go one token per key.
    pub step_mode: bool,
    /// What the engine that runs the model can do (a remote server: no step
    /// mode, no entropy); `None` before the first load.
    pub caps: Option<crate::engine::Capabilities>,
    /// Choosing a token (focus [`Focus::Choose`]).
    pub chooser: Option<Chooser>,
    /// The user message being edited in the input box (sent as a new version of it).
    pub editing: Option<NodeId>,
    /// What-if sampling settings: the inspector's sampler column shows what
    /// they would do to the inspected step (from its stored candidates).
    pub whatif: Option<SamplingParams>,
    pub popup: Option<Popup>,
    /// The model the engine has loaded.
    pub model: Option<ModelInfo>,
    /// Its vocabulary (sent once with the load).
    pub vocab: Option<Arc<Vocab>>,
    pub load: Option<Loading>,
    pub generation: Option<Generation>,
    /// The engine's numbers for the last reply that ended.
    pub last_stats: Option<Stats>,
    /// When the message being handled arrived: the loop sets it before each
    /// `update` (tests set it to scripted times). The reply under way's live
    /// numbers ([`Generation::live`]) are measured with it, so that `update`
    /// reads no clock.
    pub clock: std::time::Instant,
    pub chat_mode: Option<ChatMode>,
    pub notice: Option<Notice>,
    pub models: Vec<ModelEntry>,
    pub models_scanning: bool,
    /// Ctrl-C was pressed once while idle; a second press quits.
    pub quit_armed: bool,
    /// Model files that crashed the engine process this session, with
    /// llama.cpp's reason (marked `✗ crashed llama.cpp` in the picker).
    pub crashed: BTreeMap<PathBuf, String>,
    /// Model files llama.cpp refused to load this session (without crashing),
    /// with the reason (marked `✗ failed to load` in the picker).
    pub load_failed: BTreeMap<PathBuf, String>,
    /// An error that ends the app (taken by the loop).
    pub fatal: Option<String>,
    /// A terminating signal arrived: the app quits and then exits by it.
    pub exit_signal: Option<i32>,
    /// Comparing replies under a second model (model B, its job).
    pub compare: compare::CompareState,
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
            heatmap: true,
            boundaries: false,
            color: true,
            step_mode: false,
            caps: None,
            chooser: None,
            editing: None,
            whatif: None,
            popup: None,
            model: None,
            vocab: None,
            load: None,
            generation: None,
            last_stats: None,
            clock: std::time::Instant::now(),
            chat_mode: None,
            notice: None,
            models: Vec::new(),
            models_scanning: false,
            quit_armed: false,
            crashed: BTreeMap::new(),
            load_failed: BTreeMap::new(),
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

    pub fn screen(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    /// Rows the notice wants on a screen `width` columns wide.
    pub fn notice_rows(&self, width: u16) -> u16 {
        match &self.notice {
            None => 0,
            Some(n) => {
                let w = (width as usize).max(1);
                let lines: usize = n
                    .text
                    .lines()
                    .map(|l| str_width(l).div_ceil(w).max(1))
                    .sum();
                lines.clamp(1, 3) as u16
            }
        }
    }

    /// Rows a full inspector wants.
    pub fn inspector_rows(&self) -> u16 {
        (self.config.inspector_top_k as u16).saturating_add(6)
    }

    pub fn areas(&self, area: Rect) -> Areas {
        layout::compute(
            area,
            super::input_view::rows_needed(
                self.input.lines(),
                area.width.saturating_sub(2) as usize,
            ),
            self.notice_rows(area.width),
            self.inspector_rows(),
        )
    }

    pub fn chat_height(&self) -> usize {
        self.areas(self.screen()).chat.height as usize
    }

    /// What a chat pane `height` rows high shows: the first line, how many
    /// rows hold chat text, and, when scrolled up with lines below, the count
    /// for the hint that takes the last row (render, clicks and the token
    /// cursor's scrolling all use this, so none of them puts anything under it).
    pub fn chat_window(&self, height: usize) -> ChatWindow {
        let top = self.view_top(height);
        let total = self.chat.total_lines();
        let hint = !self.scroll.follow && total > top + height && height >= 2;
        let rows = height - hint as usize;
        ChatWindow {
            top,
            rows,
            hint_below: hint.then(|| total - (top + rows)),
        }
    }

    /// First chat line shown in a chat pane `height` rows high.
    pub fn view_top(&self, height: usize) -> usize {
        let max = self.chat.total_lines().saturating_sub(height);
        if self.scroll.follow {
            max
        } else {
            self.scroll.top.min(max)
        }
    }

    /// Scrolls so that chat line `line` is visible.
    pub fn ensure_visible(&mut self, line: usize) {
        let h = self.chat_height().max(1);
        let win = self.chat_window(h);
        let (top, rows) = (win.top, win.rows.max(1));
        let max = self.chat.total_lines().saturating_sub(h);
        let new_top = if line < top {
            line
        } else if line >= top + rows {
            line + 1 - rows
        } else {
            return;
        };
        self.scroll.top = new_top.min(max);
        self.scroll.follow = self.scroll.top >= max;
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

    pub fn is_generating(&self) -> bool {
        self.generation.is_some()
    }

    pub fn model_name(&self) -> Option<String> {
        self.model.as_ref().map(|m| m.name.clone())
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

    // ---- chat layout -------------------------------------------------

    /// Rewraps everything (new width, new chat).
    pub fn relayout(&mut self) {
        self.chat = self.wrapped();
    }

    /// The whole chat wrapped afresh for the current size: what
    /// [`State::chat`] must equal (it is kept up to date turn by turn instead).
    pub fn wrapped(&self) -> ChatView {
        let width = layout::chat_text_width(self.size.0);
        let blocks = self
            .path
            .iter()
            .map(|&id| message_block(&self.conv, id, width))
            .collect();
        ChatView {
            width,
            blocks,
            has_system: self.path.first() == Some(&crate::conversation::ROOT),
        }
    }

    /// Rewraps message `i` only.
    pub fn relayout_message(&mut self, i: usize) {
        let b = self.chat.block_of(i);
        let block = message_block(&self.conv, self.path[i], self.chat.width);
        if b < self.chat.blocks.len() {
            self.chat.blocks[b] = block;
        } else {
            self.chat.blocks.push(block);
        }
    }

    /// Adds a turn after the last one shown.
    pub fn push_message(&mut self, m: Message) -> usize {
        let id = self.conv.append(m);
        self.path.push(id);
        let i = self.path.len() - 1;
        self.chat
            .blocks
            .push(message_block(&self.conv, id, self.chat.width));
        i
    }

    /// Appends a generated token to node `id` (rewrapping it when shown at `i`).
    pub fn push_step(&mut self, id: NodeId, step: TokenStep) {
        let m = self.conv.node_mut(id);
        let n = m.steps.len() as u32;
        let text = drawn_text(m, &step).into_owned();
        m.push_step(step);
        let Some(i) = self.msg_index(id) else {
            return;
        };
        if n == 0 {
            self.relayout_message(i);
        } else {
            let b = self.chat.block_of(i);
            self.chat.blocks[b].push_str(&text, Tag::Token(n));
        }
    }

    /// Ends node `id` with `text` (see [`crate::engine::Event::Tail`]).
    pub fn push_tail(&mut self, id: NodeId, text: &str) {
        self.conv.node_mut(id).push_tail(text);
        if let Some(i) = self.msg_index(id) {
            self.relayout_message(i);
        }
    }

    // ---- requests ----------------------------------------------------

    /// What requests take from the settings (`paused` in step mode).
    /// Candidates are kept for the what-if view and branching: all
    /// [`crate::engine::MAX_CANDIDATES`] of them (the inspector shows
    /// `inspector_top_k`), none with the inspector off.
    pub fn request_settings(&self) -> crate::conversation::RequestSettings {
        let keep = if self.config.inspector_top_k > 0 {
            crate::engine::MAX_CANDIDATES
        } else {
            0
        };
        crate::conversation::RequestSettings {
            paused: self.step_mode,
            top_k_inspect: keep,
            // The prompt's own surprise, shown on the user's messages.
            score_prompt: keep > 0,
            ..self.config.request_settings(self.raw)
        }
    }

    /// The sampling settings the what-if view applies: the settings popup's
    /// values while it is open and valid, else [`State::whatif`].
    pub fn whatif_params(&self) -> Option<SamplingParams> {
        if let Some(Popup::Settings(form)) = &self.popup
            && let Ok((p, _)) = popup::parse_settings(form, &self.config.sampling)
        {
            return Some(p);
        }
        self.whatif.clone()
    }

    /// The sampler column for `step` of reply `m`: each candidate's fate
    /// under the what-if settings, else under the settings the reply ran
    /// with; `None` when neither is known or the step has no candidates.
    pub fn sampler_column(&self, m: &Message, step: &TokenStep) -> Option<SamplerColumn> {
        let whatif = self.whatif_params();
        let params = whatif.clone().or_else(|| m.sampling.clone())?;
        let dist = step.dist.as_ref()?;
        let before = step.index.min(m.steps.len());
        let history: Vec<crate::engine::TokenId> = m
            .context_tail
            .iter()
            .copied()
            .chain(m.steps[..before].iter().map(|s| s.id))
            .collect();
        // Without the vocabulary's size nothing can be said of the tokens not
        // kept; a remote server's few candidates say nothing of the sampler.
        let vocab = m.vocab.as_ref()?;
        if vocab.is_learned() {
            return None;
        }
        let n_vocab = vocab.len();
        Some(SamplerColumn {
            resampled: crate::engine::resample::resample(&params, dist, &history, n_vocab),
            whatif: whatif.is_some(),
        })
    }

    /// The request that generates (the rest of) reply `id`.
    pub fn generate_request(&self, id: NodeId) -> GenerateRequest {
        self.conv.request(id, &self.request_settings())
    }

    // ---- token cursor ------------------------------------------------

    /// Every assistant token, in order.
    pub fn token_refs(&self) -> impl Iterator<Item = TokenRef> + '_ {
        self.msgs()
            .enumerate()
            .filter(|(_, m)| m.role == Role::Assistant || m.content_span.is_some())
            .flat_map(|(msg, m)| (0..m.steps.len()).map(move |step| TokenRef { msg, step }))
    }

    pub fn last_token(&self) -> Option<TokenRef> {
        self.msgs()
            .enumerate()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .find(|(_, m)| m.role == Role::Assistant && !m.steps.is_empty())
            .map(|(msg, m)| TokenRef {
                msg,
                step: m.steps.len() - 1,
            })
    }

    pub fn step(&self, t: TokenRef) -> Option<&TokenStep> {
        self.msg(t.msg)?.steps.get(t.step)
    }

    /// The token the inspector shows: the cursor's in navigation, else the newest.
    pub fn inspected(&self) -> Option<(TokenRef, &TokenStep)> {
        let t = match (self.focus, self.cursor) {
            (Focus::Navigate, Some(c)) => c,
            (Focus::Choose, _)
                if let Some(ChooseAt::Token(c)) = self.chooser.as_ref().map(|c| c.at) =>
            {
                c
            }
            // A reply under way with no token yet: nothing is live (not the
            // previous reply's last token).
            _ if self
                .generation
                .as_ref()
                .and_then(|g| self.msg(g.msg))
                .is_some_and(|m| m.steps.is_empty()) =>
            {
                return None;
            }
            _ => self.last_token()?,
        };
        Some((t, self.step(t)?))
    }

    /// Step mode: the paused reply's next token, not drawn yet, as a step to
    /// show (the selected candidate as its token): its chat position and the step.
    pub fn preview(&self) -> Option<(usize, TokenStep)> {
        // Only while choosing it (not in the token cursor, nor while
        // choosing another token in place of a past one).
        if self.focus != Focus::Choose
            || self.chooser.as_ref().map(|c| c.at) != Some(ChooseAt::Next)
        {
            return None;
        }
        let g = self.generation.as_ref()?;
        let Phase::Paused { next: Some(next) } = &g.phase else {
            return None;
        };
        let selected = self
            .chooser
            .as_ref()
            .filter(|c| c.at == ChooseAt::Next)
            .map_or(0, |c| c.selected);
        let c = next
            .top
            .get(selected.min(next.top.len().saturating_sub(1)))?;
        let index = self.msg(g.msg)?.steps.len();
        Some((
            g.msg,
            TokenStep {
                index,
                id: c.id,
                forced: false,
                text: String::new(),
                logit: Some(c.logit),
                p_sampled: None,
                dist: Some((**next).clone()),
            },
        ))
    }

    /// Absolute chat line and column of a token (or of the nearest token
    /// with visible text, for tokens that end inside a character).
    pub fn token_position(&self, t: TokenRef) -> Option<(usize, usize)> {
        let b = self.chat.block_of(t.msg);
        let block = self.chat.blocks.get(b)?;
        let n = self.msg(t.msg)?.steps.len();
        let found = (t.step..n)
            .chain((0..t.step).rev())
            .find_map(|s| block.find_token(s as u32))?;
        Some((self.chat.block_start(b) + found.0, found.1))
    }
}

fn header_meta(m: &Message) -> String {
    let mut meta = String::new();
    if let Some(model) = &m.model {
        meta.push_str(" · ");
        meta.push_str(model);
    }
    if let Some(s) = &m.stats {
        // All its tokens (a branch's shared ones too); the speed is the last run's.
        meta.push_str(&format!(
            " · {} tok · {:.1} tok/s",
            m.steps.len(),
            s.gen_tps
        ));
    }
    meta
}

/// `‹ 2/3 ›` for a turn with siblings (alternatives), else nothing.
pub fn sibling_mark(conv: &Conversation, id: NodeId) -> Option<String> {
    let (pos, n) = conv.sibling_pos(id);
    (n > 1).then(|| format!("‹ {}/{n} ›", pos + 1))
}

/// Wraps turn `id`: a header line, then its text.
pub fn message_block(conv: &Conversation, id: NodeId, width: usize) -> Block {
    let m = conv.node(id);
    let mut b = Block::new(width);
    match m.role {
        Role::User => b.push_str("you", Tag::Label),
        Role::System => b.push_str("system", Tag::Label),
        Role::Assistant => b.push_str("assistant", Tag::Label),
    }
    if let Some(mark) = sibling_mark(conv, id) {
        b.push_str(" ", Tag::Meta);
        b.push_str(&mark, Tag::Siblings);
    }
    if m.role == Role::Assistant {
        b.push_str(&header_meta(m), Tag::Meta);
    }
    b.newline();
    match m.role {
        Role::Assistant => {
            if m.steps.is_empty() {
                if m.status == MsgStatus::Streaming {
                    b.push_str("…", Tag::Placeholder);
                } else if !m.content.is_empty() {
                    b.push_str(&m.content, Tag::Text);
                }
            }
            for (i, s) in m.steps.iter().enumerate() {
                b.push_str(&drawn_text(m, s), Tag::Token(i as u32));
            }
            // Bytes the last token left unfinished (shown as U+FFFD).
            if let Some(last) = m.steps.len().checked_sub(1)
                && !m.tail.is_empty()
            {
                b.push_str(&m.tail, Tag::Token(last as u32));
            }
            match &m.status {
                MsgStatus::Stopped => b.push_str(" [stopped]", Tag::Note),
                // A reply the model did not end itself says so.
                MsgStatus::Done => match m.stats.as_ref().map(|st| st.stop) {
                    Some(StopReason::MaxTokens) => {
                        b.push_str(" [cut: max tokens reached]", Tag::Note)
                    }
                    Some(StopReason::ContextFull) => b.push_str(" [cut: context full]", Tag::Note),
                    _ => {}
                },
                MsgStatus::Failed(e) => {
                    if !m.content.is_empty() {
                        b.newline();
                    }
                    b.push_str(&format!("[error: {e}]"), Tag::Note)
                }
                _ => {}
            }
            // Compared under a second model: the summary, on a line of its own.
            if let Some(c) = &m.comparison {
                b.newline();
                b.push_str(&c.line(), Tag::Meta);
            }
        }
        // A prompt turn whose tokens are known: drawn token by token (the
        // template's scaffolding too, dimmed), so its surprise shows.
        _ if m.content_span.is_some() => {
            // The line break that closes the turn (after `<|im_end|>`) ends
            // the block: no empty line of its own.
            let drawn = m
                .steps
                .iter()
                .rposition(|s| s.text.chars().any(|c| c != '\n'))
                .map_or(0, |i| i + 1);
            for (i, s) in m.steps[..drawn].iter().enumerate() {
                b.push_str(&s.text, Tag::Token(i as u32));
            }
        }
        _ => b.push_str(&m.content, Tag::Text),
    }
    b
}

/// Whether token `i` of turn `m` is the template's scaffolding (a role
/// marker, a turn end), not the turn's content: in a prompt turn, what lies
/// outside its content; in a reply, its end-of-generation token.
pub fn is_scaffolding(m: &Message, i: usize) -> bool {
    if m.role == Role::Assistant {
        return m.steps.get(i).is_some_and(|s| is_end_of_reply(m, s));
    }
    m.content_span
        .is_some_and(|(from, to)| i < from as usize || i >= to as usize)
}

/// Whether `step` of reply `m` is an end-of-generation token (it has no
/// text of its own).
fn is_end_of_reply(m: &Message, step: &TokenStep) -> bool {
    step.text.is_empty() && m.vocab.as_ref().is_some_and(|v| v.is_eog(step.id))
}

/// What `step` of reply `m` shows in the chat: its text, or, for the token
/// that ends the reply (no text of its own), its piece (`<|im_end|>`), so that
/// the end can be seen and put under the token cursor.
fn drawn_text<'a>(m: &Message, step: &'a TokenStep) -> std::borrow::Cow<'a, str> {
    if is_end_of_reply(m, step) {
        std::borrow::Cow::Owned(m.piece(step.id))
    } else {
        std::borrow::Cow::Borrowed(&step.text)
    }
}

impl State {
    /// Records the id the engine gave the generation just sent.
    pub fn attach_generate(&mut self, id: RequestId) {
        if let Some(g) = &mut self.generation
            && g.request == PENDING
        {
            g.request = id;
        }
    }

    /// Records the id the engine gave the load just sent.
    pub fn attach_load(&mut self, id: RequestId) {
        if let Some(l) = &mut self.load
            && l.request == PENDING
        {
            l.request = id;
        }
    }

    /// The engine runs `info` now. What described the previous model's
    /// context (the last reply's stats: its tokens in use and context size)
    /// goes: the new model starts with an empty cache.
    pub fn set_model(&mut self, info: ModelInfo, vocab: Arc<Vocab>) {
        if self.model.as_ref() != Some(&info) {
            self.last_stats = None;
        }
        self.chat_mode = Some(info.chat_mode);
        // Saved turns of this model (a conversation opened) get its token texts.
        if self.conv.attach_vocab(&info.name, &vocab) {
            self.relayout();
        }
        self.model = Some(info);
        self.vocab = Some(vocab);
    }

    /// Context tokens in use: during a reply, prompt + tokens so far.
    pub fn ctx_used(&self) -> Option<usize> {
        if let Some(g) = &self.generation {
            if g.n_prompt > 0 {
                let n = self.msg(g.msg).map_or(0, |m| m.steps.len());
                return Some(g.n_prompt + n.saturating_sub(g.n_prefix));
            }
            // A remote server counts the prompt it builds: unknown until it
            // says (`Event::PromptCounted`), not the last reply's count.
            if self.is_remote() {
                return None;
            }
        }
        // A reply whose prompt nobody counted (a server that does not say).
        self.last_stats
            .as_ref()
            .filter(|s| s.n_prompt > 0)
            .map(|s| s.ctx_used)
    }

    /// How prompts are built for model `loaded` (as it loaded): plain
    /// completion with `--raw`, whatever template the model has.
    pub fn prompt_mode(&self, loaded: Option<ChatMode>) -> Option<ChatMode> {
        if self.raw {
            Some(ChatMode::Plain)
        } else {
            loaded
        }
    }

    /// The system prompt the model in use gets when the user sets none: the
    /// one its chat template writes; `None` when it writes none, or with
    /// `--raw` (no template).
    pub fn template_system_prompt(&self) -> Option<&str> {
        if self.raw {
            return None;
        }
        self.model.as_ref()?.default_system.as_deref()
    }

    /// The model in use runs on a remote server.
    pub fn is_remote(&self) -> bool {
        self.caps.as_ref().is_some_and(|c| c.remote.is_some())
    }
}

/// A chat line on screen: a line of a block, or the blank between blocks.
pub enum ChatLine<'a> {
    Blank,
    Cells {
        block: usize,
        cells: &'a [super::wrap::Cell],
    },
}

impl ChatView {
    /// Up to `height` lines from line `top`.
    pub fn visible(&self, top: usize, height: usize) -> Vec<ChatLine<'_>> {
        let mut out = Vec::with_capacity(height);
        let mut start = 0;
        for (b, block) in self.blocks.iter().enumerate() {
            if out.len() >= height {
                break;
            }
            let n = block.lines.len();
            if top < start + n + 1 {
                let from = top.saturating_sub(start);
                for line in block.lines.iter().skip(from) {
                    if out.len() >= height {
                        break;
                    }
                    out.push(ChatLine::Cells {
                        block: b,
                        cells: line,
                    });
                }
                if b + 1 < self.blocks.len() && out.len() < height && top <= start + n {
                    out.push(ChatLine::Blank);
                }
            }
            start += n + 1;
        }
        out
    }
}
