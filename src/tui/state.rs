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
use crate::engine::{
    ChatMessage, ChatMode, GenerateRequest, ModelInfo, RequestId, Role, Stats, StopReason, TokenId,
    TokenStep, Vocab,
};
use crate::text::str_width;

/// Request id of a request the loop has not sent yet (engine ids start at 1).
pub const PENDING: RequestId = 0;

#[derive(Debug, Clone, PartialEq)]
pub enum MsgStatus {
    Done,
    Streaming,
    Stopped,
    Failed(String),
}

/// One turn of the conversation. Assistant turns keep every generated token
/// with what the model considered, so any token can be inspected (and, later,
/// branched from).
#[derive(Debug, Clone)]
pub struct Message {
    pub role: Role,
    pub content: String,
    pub steps: Vec<TokenStep>,
    pub status: MsgStatus,
    pub stats: Option<Stats>,
    /// The model that wrote this (assistant turns).
    pub model: Option<String>,
    /// That model's vocabulary: the text of the token ids in `steps`.
    pub vocab: Option<Arc<Vocab>>,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
            steps: Vec::new(),
            status: MsgStatus::Done,
            stats: None,
            model: None,
            vocab: None,
        }
    }

    pub fn assistant(model: Option<String>, vocab: Option<Arc<Vocab>>) -> Self {
        Self {
            role: Role::Assistant,
            content: String::new(),
            steps: Vec::new(),
            status: MsgStatus::Streaming,
            stats: None,
            model,
            vocab,
        }
    }

    /// Token `id` of this message's model, readable (escaped, partial UTF-8
    /// as `<0xE4>`); `#id` when the vocabulary is unknown.
    pub fn piece(&self, id: TokenId) -> String {
        match &self.vocab {
            Some(v) if (id as usize) < v.len() => v.readable(id),
            _ => format!("#{id}"),
        }
    }

    /// True when token `id` writes bytes (part of a character counts).
    pub fn has_bytes(&self, id: TokenId) -> bool {
        self.vocab
            .as_ref()
            .is_some_and(|v| !v.bytes(id).is_empty() && !v.is_eog(id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Input,
    /// Token cursor over the assistant messages.
    Navigate,
}

/// A token of an assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenRef {
    pub msg: usize,
    pub step: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Sent; the engine has not started it (it may be loading a model).
    Waiting,
    Prefill {
        done: usize,
        total: usize,
    },
    Generating,
    /// Stop requested; waiting for the engine's final event.
    Cancelling,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub request: RequestId,
    /// Index of the assistant message being written.
    pub msg: usize,
    pub phase: Phase,
    pub n_prompt: usize,
    pub n_reused: usize,
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

/// The model picker popup.
#[derive(Debug, Clone, Default)]
pub struct Picker {
    pub filter: String,
    /// Index into the filtered list.
    pub selected: usize,
    /// Shown above the list (e.g. "no model loaded yet…").
    pub message: Option<String>,
}

impl Picker {
    /// Indices into `models` of the rows matching the filter.
    pub fn visible(&self, models: &[ModelEntry]) -> Vec<usize> {
        models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.matches(&self.filter))
            .map(|(i, _)| i)
            .collect()
    }
}

/// One editable value of the sampling settings popup.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub label: &'static str,
    pub value: String,
    pub help: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SettingsForm {
    pub fields: Vec<Field>,
    pub selected: usize,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Popup {
    Help { scroll: u16 },
    Picker(Picker),
    Settings(SettingsForm),
    SystemPrompt(Box<TextArea<'static>>),
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

    /// Block index of message `msg`.
    pub fn block_of(&self, msg: usize) -> usize {
        msg + self.has_system as usize
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
    pub messages: Vec<Message>,
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
    pub popup: Option<Popup>,
    /// The model the engine has loaded.
    pub model: Option<ModelInfo>,
    /// Its vocabulary (sent once with the load).
    pub vocab: Option<Arc<Vocab>>,
    pub load: Option<Loading>,
    pub generation: Option<Generation>,
    pub last_stats: Option<Stats>,
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
            messages: Vec::new(),
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
            popup: None,
            model: None,
            vocab: None,
            load: None,
            generation: None,
            last_stats: None,
            chat_mode: None,
            notice: None,
            models: Vec::new(),
            models_scanning: false,
            quit_armed: false,
            crashed: BTreeMap::new(),
            load_failed: BTreeMap::new(),
            fatal: None,
            exit_signal: None,
        };
        s.relayout();
        s.set_focus(Focus::Input);
        s
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

    /// Rewraps everything (new width, new system prompt, new chat).
    pub fn relayout(&mut self) {
        let width = layout::chat_text_width(self.size.0);
        let mut blocks = Vec::with_capacity(self.messages.len() + 1);
        let system = self.config.system_prompt();
        let has_system = system.is_some();
        if let Some(system) = system {
            let mut b = Block::new(width);
            b.push_str("system", Tag::Label);
            b.newline();
            b.push_str(system, Tag::Text);
            blocks.push(b);
        }
        for m in &self.messages {
            blocks.push(message_block(m, width));
        }
        self.chat = ChatView {
            width,
            blocks,
            has_system,
        };
    }

    /// Rewraps message `i` only.
    pub fn relayout_message(&mut self, i: usize) {
        let b = self.chat.block_of(i);
        let block = message_block(&self.messages[i], self.chat.width);
        if b < self.chat.blocks.len() {
            self.chat.blocks[b] = block;
        } else {
            self.chat.blocks.push(block);
        }
    }

    /// Adds a message at the end of the chat.
    pub fn push_message(&mut self, m: Message) -> usize {
        self.messages.push(m);
        let i = self.messages.len() - 1;
        self.chat
            .blocks
            .push(message_block(&self.messages[i], self.chat.width));
        i
    }

    /// Appends a generated token to message `i`.
    pub fn push_step(&mut self, i: usize, step: TokenStep) {
        let m = &mut self.messages[i];
        m.content.push_str(&step.text);
        let n = m.steps.len() as u32;
        let text = step.text.clone();
        m.steps.push(step);
        if n == 0 {
            self.relayout_message(i);
        } else {
            let b = self.chat.block_of(i);
            self.chat.blocks[b].push_str(&text, Tag::Token(n));
        }
    }

    /// Ends message `i` with `text` (see [`crate::engine::Event::Tail`]): it
    /// belongs to the last token, whose bytes it finishes.
    pub fn push_tail(&mut self, i: usize, text: &str) {
        let Some(m) = self.messages.get_mut(i) else {
            return;
        };
        m.content.push_str(text);
        if let Some(last) = m.steps.last_mut() {
            last.text.push_str(text);
        }
        self.relayout_message(i);
    }

    // ---- requests ----------------------------------------------------

    /// The conversation as sent to the engine: the system prompt, then each
    /// turn; a user turn whose reply produced nothing (failed or stopped at
    /// once) is left out together with that reply.
    pub fn conversation(&self) -> Vec<ChatMessage> {
        let mut out = Vec::new();
        if let Some(system) = self.config.system_prompt() {
            out.push(ChatMessage::new(Role::System, system));
        }
        let n = self.messages.len();
        for (i, m) in self.messages.iter().enumerate() {
            match m.role {
                Role::Assistant if m.content.is_empty() => continue,
                Role::User => {
                    let reply = self.messages.get(i + 1);
                    if reply.is_some_and(|r| {
                        r.role == Role::Assistant
                            && r.content.is_empty()
                            && r.status != MsgStatus::Streaming
                    }) {
                        continue;
                    }
                }
                _ => {}
            }
            if m.status == MsgStatus::Streaming && i + 1 == n && m.role == Role::Assistant {
                continue;
            }
            out.push(ChatMessage::new(m.role, m.content.clone()));
        }
        out
    }

    pub fn generate_request(&self) -> GenerateRequest {
        GenerateRequest {
            raw: self.raw,
            ..GenerateRequest::new(
                self.conversation(),
                self.config.sampling.clone(),
                self.config.max_tokens,
                self.config.inspector_top_k,
            )
        }
    }

    // ---- token cursor ------------------------------------------------

    /// Every assistant token, in order.
    pub fn token_refs(&self) -> impl Iterator<Item = TokenRef> + '_ {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.role == Role::Assistant)
            .flat_map(|(msg, m)| (0..m.steps.len()).map(move |step| TokenRef { msg, step }))
    }

    pub fn last_token(&self) -> Option<TokenRef> {
        self.messages
            .iter()
            .enumerate()
            .rev()
            .find(|(_, m)| m.role == Role::Assistant && !m.steps.is_empty())
            .map(|(msg, m)| TokenRef {
                msg,
                step: m.steps.len() - 1,
            })
    }

    pub fn step(&self, t: TokenRef) -> Option<&TokenStep> {
        self.messages.get(t.msg)?.steps.get(t.step)
    }

    /// The token the inspector shows: the cursor's in navigation, else the newest.
    pub fn inspected(&self) -> Option<(TokenRef, &TokenStep)> {
        let t = match (self.focus, self.cursor) {
            (Focus::Navigate, Some(c)) => c,
            // A reply under way with no token yet: nothing is live (not the
            // previous reply's last token).
            _ if self
                .generation
                .as_ref()
                .and_then(|g| self.messages.get(g.msg))
                .is_some_and(|m| m.steps.is_empty()) =>
            {
                return None;
            }
            _ => self.last_token()?,
        };
        Some((t, self.step(t)?))
    }

    /// Absolute chat line and column of a token (or of the nearest token
    /// with visible text, for tokens that end inside a character).
    pub fn token_position(&self, t: TokenRef) -> Option<(usize, usize)> {
        let b = self.chat.block_of(t.msg);
        let block = self.chat.blocks.get(b)?;
        let n = self.messages.get(t.msg)?.steps.len();
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
        meta.push_str(&format!(
            " · {} tok · {:.1} tok/s",
            s.n_generated, s.gen_tps
        ));
    }
    meta
}

/// Wraps one message: a header line, then its text.
pub fn message_block(m: &Message, width: usize) -> Block {
    let mut b = Block::new(width);
    match m.role {
        Role::User => b.push_str("you", Tag::Label),
        Role::System => b.push_str("system", Tag::Label),
        Role::Assistant => {
            b.push_str("assistant", Tag::Label);
            b.push_str(&header_meta(m), Tag::Meta);
        }
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
                b.push_str(&s.text, Tag::Token(i as u32));
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
        }
        _ => b.push_str(&m.content, Tag::Text),
    }
    b
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
        self.model = Some(info);
        self.vocab = Some(vocab);
    }

    /// Context tokens in use: during a reply, prompt + tokens so far.
    pub fn ctx_used(&self) -> Option<usize> {
        if let Some(g) = &self.generation
            && g.n_prompt > 0
        {
            let n = self.messages.get(g.msg).map_or(0, |m| m.steps.len());
            return Some(g.n_prompt + n);
        }
        self.last_stats.as_ref().map(|s| s.ctx_used)
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
