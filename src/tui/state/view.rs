//! The view part of [`State`]: the chat wrapped for the terminal's width
//! ([`ChatView`], one block per turn shown), what of it is on screen
//! ([`Scroll`], [`ChatWindow`]), where each area goes. Wrapping happens when a
//! turn changes (or the width does), never while drawing.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};

use ratatui_textarea::TextArea;

use super::{Asking, Chooser, Focus, History, Message, MsgStatus, Notice, Popup, State, TokenRef};
use crate::conversation::{Conversation, NodeId};
use crate::engine::{Role, StopReason, TokenStep};
use crate::i18n::{tr, tr_args};
use crate::tui::layout::{self, Areas};
use crate::tui::wrap::{Block, Tag};

/// The view part of [`State`]: what is shown and where the keys go; the
/// popup open.
pub struct View {
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    /// The turns shown (the conversation's active path), by chat position.
    pub path: Vec<NodeId>,
    pub chat: ChatView,
    pub scroll: Scroll,
    pub input: TextArea<'static>,
    pub(crate) history: History,
    pub(crate) focus: Focus,
    pub cursor: Option<TokenRef>,
    /// Column the token cursor keeps while moving up and down.
    pub nav_col: Option<usize>,
    /// The token cursor was entered by a click: letters then go on typing
    /// instead of acting as commands (a click must not turn "quit" into `q`).
    pub nav_by_mouse: bool,
    /// Choosing a token (focus [`Focus::Choose`]).
    pub chooser: Option<Chooser>,
    /// What the chooser asked the engine about its text, and the answer.
    pub asking: Asking,
    /// How tokens are drawn: the heatmap, their boundaries, colours.
    pub display: Display,
    pub notice: Option<Notice>,
    pub popup: Option<Popup>,
}

impl View {
    pub(crate) fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        let cursor = if focus == Focus::Input && self.popup.is_none() {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        self.input.set_cursor_style(cursor);
    }

    pub fn screen(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    /// Rows the notice wants on a screen `width` columns wide.
    pub fn notice_rows(&self, width: u16) -> u16 {
        match &self.notice {
            None => 0,
            Some(n) => {
                // The rows the notice's renderer wraps it into (by display
                // width, between words or CJK characters).
                let w = (width as usize).max(1);
                crate::tui::wrap::wrap_plain(&n.text, w).len().clamp(1, 3) as u16
            }
        }
    }

    /// What a chat pane `height` rows high shows: the first line, how many
    /// rows hold chat text, and, when scrolled up with lines below, the count
    /// for the hint that takes the last row (render, clicks and the token
    /// cursor's scrolling all use this, so none of them puts anything under it).
    pub fn chat_window(&self, height: usize) -> ChatWindow {
        let top = self.chat_top(height);
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
    pub fn chat_top(&self, height: usize) -> usize {
        let max = self.chat.total_lines().saturating_sub(height);
        if self.scroll.follow {
            max
        } else {
            self.scroll.top.min(max)
        }
    }
}

/// How the chat's tokens are drawn (a part of the view); F3, F4 and the
/// terminal set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Display {
    /// What the heatmap colours tokens by; `None`: off.
    pub heat: Option<HeatScale>,
    /// Token boundaries marked.
    pub boundaries: bool,
    /// Colours are drawn (NO_COLOR is not set): without them the heatmap and
    /// the token boundaries are marked by style ([`crate::tui::theme::HEAT_CUES`]).
    pub color: bool,
}

impl Display {
    /// The heatmap is on (any scale).
    pub fn heatmap(&self) -> bool {
        self.heat.is_some()
    }
}

/// What the heatmap colours each token by (F3 cycles through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatScale {
    /// The token's probability given everything before it.
    Probability,
    /// The entropy (bits) of the distribution the token was chosen from.
    Entropy,
    /// KL(A‖B) between the compared models at the token (compared replies
    /// only; other tokens by probability).
    Kl,
}

/// The part of the chat on screen (see [`View::chat_window`]).
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

/// A chat line on screen: a line of a block, or the blank between blocks.
pub enum ChatLine<'a> {
    Blank,
    Cells {
        block: usize,
        cells: &'a [crate::tui::wrap::Cell],
    },
}

impl State {
    /// Rows a full inspector wants.
    pub fn inspector_rows(&self) -> u16 {
        (self.config.inspector_top_k as u16).saturating_add(6)
    }

    pub fn areas(&self, area: Rect) -> Areas {
        layout::compute(
            area,
            crate::tui::input_view::rows_needed(
                self.view.input.lines(),
                area.width.saturating_sub(2) as usize,
            ),
            self.view.notice_rows(area.width),
            self.inspector_rows(),
            self.view.display.heatmap(),
        )
    }

    /// The heatmap's scale as drawn: the KL scale with no compared reply
    /// shown colours by probability.
    pub fn heat_shown(&self) -> Option<HeatScale> {
        match self.view.display.heat {
            Some(HeatScale::Kl) if !self.msgs().any(|m| m.comparison.is_some()) => {
                Some(HeatScale::Probability)
            }
            h => h,
        }
    }

    pub fn chat_height(&self) -> usize {
        self.areas(self.view.screen()).chat.height as usize
    }

    /// Scrolls so that chat line `line` is visible.
    pub fn ensure_visible(&mut self, line: usize) {
        let h = self.chat_height().max(1);
        let win = self.view.chat_window(h);
        let (top, rows) = (win.top, win.rows.max(1));
        let max = self.view.chat.total_lines().saturating_sub(h);
        let new_top = if line < top {
            line
        } else if line >= top + rows {
            line + 1 - rows
        } else {
            return;
        };
        self.view.scroll.top = new_top.min(max);
        self.view.scroll.follow = self.view.scroll.top >= max;
    }

    /// Rewraps everything (new width, new chat).
    pub fn relayout(&mut self) {
        self.view.chat = self.wrapped();
    }

    /// The whole chat wrapped afresh for the current size: what
    /// [`View::chat`] must equal (it is kept up to date turn by turn instead).
    pub fn wrapped(&self) -> ChatView {
        let width = layout::chat_text_width(self.view.size.0);
        let blocks = self
            .view
            .path
            .iter()
            .map(|&id| message_block(&self.session.conv, id, width))
            .collect();
        ChatView {
            width,
            blocks,
            has_system: self.view.path.first() == Some(&crate::conversation::ROOT),
        }
    }

    /// Rewraps message `i` only.
    pub fn relayout_message(&mut self, i: usize) {
        let b = self.view.chat.block_of(i);
        let block = message_block(&self.session.conv, self.view.path[i], self.view.chat.width);
        if b < self.view.chat.blocks.len() {
            self.view.chat.blocks[b] = block;
        } else {
            self.view.chat.blocks.push(block);
        }
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
        meta.push_str(" · ");
        meta.push_str(&tr_args(
            "chat-reply-meta",
            "{ $tokens } tok · { $tps } tok/s",
            &[
                ("tokens", &m.steps.len()),
                ("tps", &format!("{:.1}", s.gen_tps)),
            ],
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
        Role::User => b.push_str(&tr("role-user", "you"), Tag::Label),
        Role::System => b.push_str(&tr("role-system", "system"), Tag::Label),
        Role::Assistant => b.push_str(&tr("role-assistant", "assistant"), Tag::Label),
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
                MsgStatus::Stopped => b.push_str(
                    &format!(" [{}]", crate::i18n::tr("reply-mark-stopped", "stopped")),
                    Tag::Note,
                ),
                // A reply the model did not end itself says so.
                MsgStatus::Done => match m.stats.as_ref().map(|st| st.stop) {
                    Some(StopReason::MaxTokens) => b.push_str(
                        &format!(
                            " [{}]",
                            crate::i18n::tr("reply-mark-max-tokens", "cut: max tokens reached")
                        ),
                        Tag::Note,
                    ),
                    Some(StopReason::ContextFull) => b.push_str(
                        &format!(
                            " [{}]",
                            crate::i18n::tr("reply-mark-context-full", "cut: context full")
                        ),
                        Tag::Note,
                    ),
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
pub(super) fn drawn_text<'a>(m: &Message, step: &'a TokenStep) -> std::borrow::Cow<'a, str> {
    if is_end_of_reply(m, step) {
        std::borrow::Cow::Owned(m.piece(step.id))
    } else {
        std::borrow::Cow::Borrowed(&step.text)
    }
}
