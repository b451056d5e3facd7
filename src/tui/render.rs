//! `render`: draws the state. Reads, never changes.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Widget, Wrap};

use super::action::help_rows;
use super::layout::centered;
use super::state::{
    ChatLine, Focus, Message, MsgStatus, NoticeLevel, Phase, Picker, Popup, SettingsForm, State,
    TokenRef,
};
use super::theme;
use super::wrap::{Cell, Tag};
use crate::engine::{ChatMode, Role, TokenStep};
use crate::text::{str_width, truncate, visible_piece};

pub fn render(s: &State, f: &mut Frame) {
    let area = f.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let a = s.areas(area);
    let buf = f.buffer_mut();
    chat(s, buf, a.chat);
    if let Some(r) = a.inspector {
        inspector(s, buf, r);
    }
    if let Some(r) = a.summary {
        summary(s, buf, r);
    }
    if let Some(r) = a.notice {
        notice(s, buf, r);
    }
    input(s, buf, a.input, a.input_bordered);
    if let Some(r) = a.status {
        status(s, buf, r);
    }
    if let Some(p) = &s.popup {
        popup(s, p, buf, area);
    }
}

// ---- chat ----------------------------------------------------------------

fn role_of_block(s: &State, block: usize) -> Role {
    if s.chat.has_system && block == 0 {
        return Role::System;
    }
    let msg = block - s.chat.has_system as usize;
    s.messages.get(msg).map_or(Role::User, |m| m.role)
}

fn msg_of_block(s: &State, block: usize) -> Option<usize> {
    block.checked_sub(s.chat.has_system as usize)
}

/// Style of one chat cell.
pub fn cell_style(s: &State, block: usize, cell: &Cell) -> Style {
    let role = role_of_block(s, block);
    match cell.tag {
        Tag::Label => {
            let c = match role {
                Role::User => theme::USER,
                Role::Assistant => theme::ASSISTANT,
                Role::System => theme::SYSTEM,
            };
            Style::default().fg(c).add_modifier(Modifier::BOLD)
        }
        Tag::Meta | Tag::Placeholder => theme::dim(),
        Tag::Note => Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::ITALIC),
        Tag::Text => match role {
            Role::System => Style::default()
                .fg(theme::SYSTEM)
                .add_modifier(Modifier::ITALIC),
            _ => Style::default(),
        },
        Tag::Token(i) => {
            let msg = msg_of_block(s, block);
            let step = msg
                .and_then(|m| s.messages.get(m))
                .and_then(|m| m.steps.get(i as usize));
            let mut st = Style::default();
            if s.heatmap
                && let Some(p) = step.and_then(TokenStep::p)
            {
                st = st.fg(theme::heat(p));
            }
            if s.boundaries {
                st = st.bg(theme::BOUNDARY_BG[i as usize % 2]);
            }
            if s.focus == Focus::Navigate
                && let (Some(c), Some(m)) = (s.cursor, msg)
                && c.msg == m
                && cell.covers(c.step as u32)
            {
                st = st.patch(theme::selected());
                if cell.is_partial_for(c.step as u32) {
                    // The token is only part of this glyph: say so.
                    st = st.add_modifier(Modifier::UNDERLINED);
                }
            }
            st
        }
    }
}

/// Draws one wrapped line cell by cell (each cell is one grapheme cluster).
fn draw_cells(s: &State, buf: &mut Buffer, block: usize, cells: &[Cell], x: u16, y: u16, w: u16) {
    let end = x.saturating_add(w);
    let mut cx = x;
    for c in cells {
        let cw = c.width as u16;
        if cx + cw > end {
            break;
        }
        buf.set_stringn(cx, y, &c.text, cw as usize, cell_style(s, block, c));
        cx += cw;
    }
}

fn chat(s: &State, buf: &mut Buffer, r: Rect) {
    if r.area() == 0 {
        return;
    }
    let height = r.height as usize;
    if s.messages.is_empty() {
        welcome(s, buf, r);
    }
    let win = s.chat_window(height);
    let x = r.x + 1.min(r.width);
    let w = r.width.saturating_sub(1);
    for (dy, line) in s.chat.visible(win.top, win.rows).into_iter().enumerate() {
        if let ChatLine::Cells { block, cells } = line {
            draw_cells(s, buf, block, cells, x, r.y + dy as u16, w);
        }
    }
    // Scrolled up with more below: the last row holds the hint, not chat text.
    if let Some(below) = win.hint_below {
        let text = truncate(&format!(" ↓ {below} more lines · PgDn "), r.width as usize);
        let tw = str_width(&text) as u16;
        buf.set_string(
            r.x + r.width - tw,
            r.y + r.height - 1,
            text,
            Style::default().fg(Color::Black).bg(Color::Yellow),
        );
    }
}

fn welcome(s: &State, buf: &mut Buffer, r: Rect) {
    let model_line = match (&s.model, &s.load) {
        (_, Some(l)) => format!(
            "Loading {}…",
            l.path
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        ),
        (Some(m), None) => format!("Model: {}", m.name),
        (None, None) => "No model loaded: press Ctrl-O to choose one.".to_string(),
    };
    let lines = vec![
        Line::styled("tokenscope", theme::title()),
        Line::from("Chat with a local model and watch it predict every next token."),
        Line::from(""),
        Line::from(model_line),
        Line::styled(
            "Enter send · Tab inspect tokens · Ctrl-O models · F1 help",
            theme::dim(),
        ),
    ];
    let h = (lines.len() as u16).min(r.height);
    let top = r.y + r.height.saturating_sub(h) / 2;
    Paragraph::new(lines)
        .centered()
        .wrap(Wrap { trim: true })
        .render(Rect::new(r.x, top, r.width, r.height - (top - r.y)), buf);
}

// ---- inspector -----------------------------------------------------------

/// "45.12%" (always 2 decimals; tiny values as "<0.01%").
/// A probability as a percentage, or `–` when the backend did not report it.
pub fn pct_opt(p: Option<f32>) -> String {
    p.map_or_else(|| "–".to_string(), pct)
}

pub fn pct(p: f32) -> String {
    let v = p * 100.0;
    if p > 0.0 && v < 0.005 {
        "<0.01%".to_string()
    } else {
        format!("{v:.2}%")
    }
}

/// A horizontal bar `width` cells wide, filled to `frac` with eighth blocks.
fn bar(frac: f32, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (frac.clamp(0.0, 1.0) * width as f32 * 8.0).round() as usize;
    let full = eighths / 8;
    let mut out = "█".repeat(full.min(width));
    if full < width {
        let rem = eighths % 8;
        if rem > 0 {
            out.push(PARTS[rem]);
        }
    }
    let w = out.chars().count();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

fn inspector_title(s: &State, t: TokenRef) -> String {
    let n = s.messages.get(t.msg).map_or(0, |m| m.steps.len());
    if s.focus == Focus::Navigate {
        // A token whose bytes only start a character: its glyph comes later.
        let partial = s
            .step(t)
            .zip(s.messages.get(t.msg))
            .is_some_and(|(st, m)| st.text.is_empty() && m.has_bytes(st.id));
        let part = if partial {
            "· part of a character "
        } else {
            ""
        };
        format!(" token {}/{} {part}", t.step + 1, n)
    } else if s.is_generating() {
        format!(" next token · live #{} ", t.step + 1)
    } else {
        format!(" last token #{} ", t.step + 1)
    }
}

fn inspector(s: &State, buf: &mut Buffer, r: Rect) {
    let inspected = s.inspected();
    let title = match inspected {
        Some((t, _)) => inspector_title(s, t),
        None => " inspector ".to_string(),
    };
    let block = Block::bordered()
        .title(Span::styled(title, theme::title()))
        .border_style(theme::dim())
        .padding(Padding::horizontal(1));
    let inner = block.inner(r);
    block.render(r, buf);
    if inner.area() == 0 {
        return;
    }
    let Some((t, step)) = inspected else {
        Paragraph::new(vec![
            Line::from("The model's top candidates for each next token appear here while a reply streams in."),
            Line::from(""),
            Line::styled("Tab: move over the tokens of a reply.", theme::dim()),
        ])
        .wrap(Wrap { trim: true })
        .render(inner, buf);
        return;
    };
    // Compact when the full header would not leave room for the candidates.
    let compact = (inner.height as usize) < step.top().len() + 6;
    let Some(m) = s.messages.get(t.msg) else {
        return;
    };
    let lines = inspector_lines(m, step, inner.width as usize, s.heatmap, compact);
    let used = lines.len() as u16;
    Paragraph::new(lines).render(inner, buf);
    // Below the candidates, when there is room: the whole reply's confidence.
    let free = inner.height.saturating_sub(used + 1);
    if free >= 4 && !compact {
        let rows = (free - 2).min(4);
        let area = Rect::new(inner.x, inner.bottom() - rows - 2, inner.width, rows + 2);
        if let Some(m) = s.messages.get(t.msg) {
            confidence(s, m, t, buf, area);
        }
    }
}

/// Perplexity of a run of token probabilities: exp of the mean surprise.
pub fn perplexity(ps: impl Iterator<Item = f32>) -> Option<f64> {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for p in ps {
        sum += -(p.max(1e-12) as f64).ln();
        n += 1;
    }
    (n > 0).then(|| (sum / n as f64).exp())
}

/// A sparkline of p for the reply's tokens around `t` (`area.height - 2` rows
/// high), with a summary line above it.
fn confidence(s: &State, m: &super::state::Message, t: TokenRef, buf: &mut Buffer, area: Rect) {
    let n = m.steps.len();
    let w = area.width as usize;
    if n == 0 || w == 0 {
        return;
    }
    // Tokens whose p is unknown (inspector off) count as certain.
    let p_of = |st: &TokenStep| st.p().unwrap_or(1.0);
    let mean = m.steps.iter().map(|st| p_of(st) as f64).sum::<f64>() / n as f64;
    let ppl = perplexity(m.steps.iter().map(p_of)).unwrap_or(0.0);
    let head = format!(
        "reply: {n} tok · mean p {} · ppl {ppl:.2}",
        pct(mean as f32)
    );
    buf.set_stringn(area.x, area.y, truncate(&head, w), w, theme::dim());
    // The window: the last tokens, or centred on the cursor.
    let start = if s.focus == Focus::Navigate {
        t.step.saturating_sub(w / 2).min(n.saturating_sub(w))
    } else {
        n.saturating_sub(w)
    };
    let rows = area.height.saturating_sub(2) as usize;
    let levels = rows * 8;
    const TICKS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    for (i, st) in m.steps.iter().enumerate().skip(start).take(w) {
        let x = area.x + (i - start) as u16;
        let p = p_of(st);
        let filled = ((p.clamp(0.0, 1.0) * levels as f32).round() as usize).max(1);
        let mut style = if s.heatmap {
            Style::default().fg(theme::heat(p))
        } else {
            Style::default()
        };
        if i == t.step {
            style = style.bg(theme::CHOSEN_BG);
        }
        for r in 0..rows {
            // r = 0 is the bottom row.
            let in_row = filled.saturating_sub(r * 8).min(8);
            let y = area.y + 1 + (rows - 1 - r) as u16;
            buf[(x, y)].set_char(TICKS[in_row]).set_style(style);
        }
        if i == t.step {
            buf[(x, area.y + area.height - 1)]
                .set_char('▲')
                .set_style(style.bg(Color::Reset));
        }
    }
}

/// "1.23 bits", or `–` when unknown.
fn bits(h: Option<f32>) -> String {
    h.map_or_else(|| "–".to_string(), |h| format!("{h:.2} bits"))
}

/// How the step's token came: the sampler's probability, or `forced`.
fn sampler_text(step: &TokenStep) -> String {
    if step.forced {
        "forced".to_string()
    } else {
        pct_opt(step.p_sampled)
    }
}

/// The inspector's lines for one step of message `m`, `w` columns wide.
pub fn inspector_lines(
    m: &Message,
    step: &TokenStep,
    w: usize,
    heat: bool,
    compact: bool,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let heat_style = |p: f32| {
        if heat {
            Style::default().fg(theme::heat(p))
        } else {
            Style::default()
        }
    };
    let chosen_style = step
        .p()
        .map_or_else(Style::default, heat_style)
        .add_modifier(Modifier::BOLD);
    let piece = m.piece(step.id);
    if compact {
        lines.push(Line::from(vec![
            Span::styled(truncate(&visible_piece(&piece), 16), chosen_style),
            Span::styled(format!(" p={}", pct_opt(step.p())), chosen_style),
            Span::styled(" · sampler ", theme::dim()),
            Span::raw(sampler_text(step)),
            Span::styled(" · entropy ", theme::dim()),
            Span::raw(bits(step.entropy())),
        ]));
    } else {
        lines.extend(full_header(step, &piece, w, chosen_style));
    }
    candidate_rows(m, step, w, heat_style, !compact, &mut lines);
    lines
}

fn full_header(step: &TokenStep, piece: &str, w: usize, chosen: Style) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    lines.push(Line::from(vec![
        Span::styled("chosen ", theme::dim()),
        Span::styled(truncate(&visible_piece(piece), w.saturating_sub(7)), chosen),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("p={}", pct_opt(step.p())), chosen),
        Span::styled(" model · ", theme::dim()),
        Span::raw(sampler_text(step)),
        Span::styled(if step.forced { "" } else { " sampler" }, theme::dim()),
    ]));
    lines.push(Line::from(vec![
        Span::styled("entropy ", theme::dim()),
        Span::raw(bits(step.entropy())),
        Span::styled(" · logit ", theme::dim()),
        Span::raw(
            step.logit
                .map_or_else(|| "–".to_string(), |l| format!("{l:.2}")),
        ),
    ]));
    lines.push(Line::styled("─".repeat(w), theme::dim()));
    lines
}

fn candidate_rows(
    m: &Message,
    step: &TokenStep,
    w: usize,
    heat_style: impl Fn(f32) -> Style,
    column_heads: bool,
    lines: &mut Vec<Line<'static>>,
) {
    // Candidate rows: marker, text, bar, probability under the model, and
    // under the sampler when there is room.
    let show_sampled = w >= 44;
    let pct_w = 7;
    let fixed = 2 + 1 + pct_w + if show_sampled { 1 + pct_w } else { 0 };
    let text_w = (w / 3).clamp(4, 16).min(w.saturating_sub(fixed + 3).max(1));
    let bar_w = w.saturating_sub(fixed + text_w + 1);
    let mut chosen_shown = false;
    let row = |c_text: &str, p: f32, ps: Option<f32>, chosen: bool| -> Line<'static> {
        let text = truncate(&visible_piece(c_text), text_w);
        let pad = text_w.saturating_sub(str_width(&text));
        let base = if chosen {
            Style::default()
                .bg(theme::CHOSEN_BG)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let mut spans = vec![
            Span::styled(if chosen { "▶ " } else { "  " }, base),
            Span::styled(format!("{text}{}", " ".repeat(pad)), base),
            Span::styled(" ", base),
        ];
        if bar_w > 0 {
            spans.push(Span::styled(bar(p, bar_w), heat_style(p).bg(theme::BAR_BG)));
        }
        spans.push(Span::styled(format!(" {:>7}", pct(p)), base));
        if show_sampled {
            spans.push(Span::styled(
                format!(" {:>7}", pct_opt(ps)),
                base.fg(theme::DIM),
            ));
        }
        Line::from(spans)
    };
    if show_sampled && column_heads {
        let head = format!(
            "{:<w$}{:>8}{:>8}",
            "  candidate",
            "model",
            "sampler",
            w = w.saturating_sub(16)
        );
        lines.push(Line::styled(head, theme::dim()));
    }
    let Some(dist) = &step.dist else {
        lines.push(Line::styled(
            "  (no candidates: the inspector is off, see inspector_top_k)",
            theme::dim(),
        ));
        return;
    };
    for c in &dist.top {
        let chosen = c.id == step.id;
        chosen_shown |= chosen;
        lines.push(row(&m.piece(c.id), dist.p(c.logit), c.p_sampled, chosen));
    }
    if !chosen_shown && let Some(p) = step.p() {
        lines.push(Line::styled(
            "  ⋯ (chosen token outside the top candidates)",
            theme::dim(),
        ));
        lines.push(row(&m.piece(step.id), p, step.p_sampled, true));
    }
}

fn summary(s: &State, buf: &mut Buffer, r: Rect) {
    let Some((t, step)) = s.inspected() else {
        buf.set_stringn(
            r.x,
            r.y,
            "Tab: inspect tokens · F1 help",
            r.width as usize,
            theme::dim(),
        );
        return;
    };
    let Some(m) = s.messages.get(t.msg) else {
        return;
    };
    let mut text = format!(
        "▶ {} p={} · H {}",
        visible_piece(&m.piece(step.id)),
        pct_opt(step.p()),
        bits(step.entropy())
    );
    if let Some(d) = &step.dist
        && let Some(alt) = d.top.iter().find(|c| c.id != step.id)
    {
        text.push_str(&format!(
            " · alt {} {}",
            visible_piece(&m.piece(alt.id)),
            pct(d.p(alt.logit))
        ));
    }
    let style = match step.p() {
        Some(p) if s.heatmap => Style::default().fg(theme::heat(p)),
        _ => Style::default(),
    };
    buf.set_stringn(
        r.x,
        r.y,
        truncate(&text, r.width as usize),
        r.width as usize,
        style,
    );
}

// ---- notice, input, status -------------------------------------------------

fn notice(s: &State, buf: &mut Buffer, r: Rect) {
    let Some(n) = &s.notice else { return };
    let style = match n.level {
        NoticeLevel::Error => theme::error(),
        NoticeLevel::Info => theme::info(),
    };
    Paragraph::new(n.text.as_str())
        .style(style)
        .wrap(Wrap { trim: false })
        .render(r, buf);
}

fn input(s: &State, buf: &mut Buffer, r: Rect, bordered: bool) {
    if r.area() == 0 {
        return;
    }
    let inner = if bordered {
        let (title, style) = match s.focus {
            Focus::Input => (
                " message · Enter send · Alt-Enter newline ".to_string(),
                Style::default(),
            ),
            Focus::Navigate => (
                " token cursor · ←→↑↓ move · Tab back to typing ".to_string(),
                theme::dim(),
            ),
        };
        let block = Block::bordered().title(title).border_style(style);
        let inner = block.inner(r);
        block.render(r, buf);
        inner
    } else {
        r
    };
    super::input_view::draw(&s.input, inner, buf, true);
}

fn phase_text(s: &State) -> (String, Style) {
    if let Some(l) = &s.load {
        let pctv = (l.fraction * 100.0).round() as u32;
        return (
            format!("loading {pctv:>3}% {}", bar_ascii(l.fraction, 10)),
            Style::default().fg(Color::Yellow),
        );
    }
    match &s.generation {
        Some(g) => {
            let n = s.messages.get(g.msg).map_or(0, |m| m.steps.len());
            let t = match g.phase {
                Phase::Waiting => "● waiting".to_string(),
                Phase::Prefill { done, total } => format!("● prefill {done}/{total}"),
                Phase::Generating => format!("● generating {n} tok"),
                Phase::Cancelling => "● stopping… (Esc: restart engine)".to_string(),
            };
            (
                t,
                Style::default()
                    .fg(Color::Green)
                    .add_modifier(Modifier::BOLD),
            )
        }
        None if s.model.is_none() => ("○ no model".into(), theme::dim()),
        None if s
            .notice
            .as_ref()
            .is_some_and(|n| n.level == NoticeLevel::Error) =>
        {
            ("○ idle ✖ error".into(), theme::error())
        }
        None => ("○ idle".into(), Style::default()),
    }
}

fn bar_ascii(frac: f32, w: usize) -> String {
    let filled = ((frac.clamp(0.0, 1.0) * w as f32).round() as usize).min(w);
    format!("▕{}{}▏", "█".repeat(filled), "░".repeat(w - filled))
}

/// One field of the status bar: its spans and how much it matters (0 = the
/// most; fields are dropped from the highest number down when space is short).
struct Field {
    rank: u8,
    /// What separates it from the field before: " │ ", or " · " / " " for a
    /// detail of the field before.
    sep: &'static str,
    spans: Vec<Span<'static>>,
}

impl Field {
    fn new(rank: u8, spans: Vec<Span<'static>>) -> Self {
        Self {
            rank,
            sep: STATUS_SEP,
            spans,
        }
    }

    fn after(mut self, sep: &'static str) -> Self {
        self.sep = sep;
        self
    }

    fn width(&self) -> usize {
        str_width(self.sep)
            + self
                .spans
                .iter()
                .map(|s| str_width(&s.content))
                .sum::<usize>()
    }
}

/// The status bar's fields in display order.
fn status_fields(s: &State) -> Vec<Field> {
    let (phase, pstyle) = phase_text(s);
    let mut f = vec![Field::new(
        0,
        vec![Span::styled(format!(" {phase}"), pstyle)],
    )];
    match &s.model {
        Some(m) => {
            f.push(Field::new(
                1,
                vec![Span::styled(m.name.clone(), theme::title())],
            ));
            let mut quant = m.quant.clone();
            if m.n_params > 0 {
                quant.push(' ');
                quant.push_str(&crate::catalog::params_human(m.n_params));
            }
            f.push(Field::new(5, vec![Span::raw(quant)]).after(" "));
        }
        None => f.push(Field::new(1, vec![Span::styled("no model", theme::dim())])),
    }
    if let Some(m) = &s.model {
        f.push(Field::new(
            2,
            vec![Span::raw(format!(
                "ctx {}/{}",
                s.ctx_used().unwrap_or(0),
                m.n_ctx
            ))],
        ));
        // llama.cpp rounded or capped the context asked for: say so.
        if m.n_ctx_requested != m.n_ctx {
            f.push(
                Field::new(
                    4,
                    vec![Span::styled(
                        format!("(asked {})", m.n_ctx_requested),
                        Style::default().fg(Color::Yellow),
                    )],
                )
                .after(" "),
            );
        }
    }
    if let Some(st) = &s.last_stats {
        f.push(Field::new(
            3,
            vec![Span::raw(format!("{:.1} tok/s", st.gen_tps))],
        ));
        f.push(Field::new(6, vec![Span::raw(format!("TTFT {:.0} ms", st.ttft_ms))]).after(" · "));
        f.push(
            Field::new(8, vec![Span::raw(format!("reused {}", st.n_prompt_reused))]).after(" · "),
        );
        if st.stop != crate::engine::StopReason::Eog {
            f.push(Field::new(4, vec![Span::styled(st.stop.as_str(), theme::dim())]).after(" · "));
        }
    }
    let mode = if s.raw {
        Some(ChatMode::Plain)
    } else {
        s.chat_mode
    };
    if let Some(mode) = mode {
        f.push(Field::new(
            7,
            vec![Span::raw(match mode {
                ChatMode::Template => "chat template",
                ChatMode::Builtin => "built-in template",
                ChatMode::Plain => "plain",
            })],
        ));
    }
    let mut flags = Vec::new();
    if s.heatmap {
        flags.push("heat");
    }
    if s.boundaries {
        flags.push("bounds");
    }
    if !flags.is_empty() {
        f.push(Field::new(
            9,
            vec![Span::styled(flags.join(" "), theme::dim())],
        ));
    }
    f
}

const STATUS_SEP: &str = " │ ";
const STATUS_HELP: &str = " F1 help ";

/// The status bar for a row `width` columns wide: every field that fits,
/// whole, dropping the least important first; the help hint only when room
/// is left. Returns the line and whether the hint fits after it.
pub fn status_line_for(s: &State, width: usize) -> (Line<'static>, bool) {
    let mut fields = status_fields(s);
    // The first field has no separator before it.
    let total = |fs: &[Field]| {
        fs.iter().map(Field::width).sum::<usize>() - fs.first().map_or(0, |f| str_width(f.sep))
    };
    while total(&fields) > width && fields.len() > 2 {
        let worst = fields
            .iter()
            .enumerate()
            .max_by_key(|(_, f)| f.rank)
            .map(|(i, _)| i)
            .unwrap_or(0);
        fields.remove(worst);
    }
    let used = total(&fields);
    let mut spans = Vec::new();
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(f.sep, theme::dim()));
        }
        spans.extend(f.spans);
    }
    // The model name is cut only when the phase and the name alone do not fit.
    let mut line = Line::from(spans);
    if used > width {
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        line = Line::from(truncate(&text, width));
    }
    (line, used + STATUS_HELP.len() <= width)
}

fn status(s: &State, buf: &mut Buffer, r: Rect) {
    let bg = Style::default().bg(theme::STATUS_BG);
    buf.set_style(r, bg);
    let (line, help) = status_line_for(s, r.width as usize);
    buf.set_line(r.x, r.y, &line, r.width);
    if help {
        let hw = STATUS_HELP.len() as u16;
        buf.set_string(
            r.x + r.width - hw,
            r.y,
            STATUS_HELP,
            theme::dim().bg(theme::STATUS_BG),
        );
    }
}

// ---- popups --------------------------------------------------------------

fn popup_block(title: String) -> Block<'static> {
    Block::bordered()
        .title(Span::styled(title, theme::title()))
        .border_style(Style::default().fg(Color::Cyan))
}

fn popup(s: &State, p: &Popup, buf: &mut Buffer, area: Rect) {
    match p {
        Popup::Help { scroll } => help(buf, area, *scroll),
        Popup::Picker(pk) => picker(s, pk, buf, area),
        Popup::Settings(f) => settings(f, buf, area),
        Popup::SystemPrompt(t) => {
            let r = centered(area, 76.min(area.width.saturating_sub(2)).max(20), 14);
            Clear.render(r, buf);
            let block =
                popup_block(" system prompt · Enter save · Alt-Enter newline · Esc cancel ".into());
            let inner = block.inner(r);
            block.render(r, buf);
            super::input_view::draw(t.as_ref(), inner, buf, true);
        }
    }
}

/// Widest the help overlay gets (it reads well at 80 columns).
const HELP_WIDTH: u16 = 80;
/// Width of the help's key column (longer keys wrap).
const HELP_KEYS_WIDTH: usize = 20;

/// The help's lines for `width` columns: the keymap by context, then the
/// heatmap's legend.
pub fn help_lines(width: usize) -> Vec<Line<'static>> {
    let key_style = Style::default().fg(Color::Yellow);
    // Indent, keys, gap; a column of margin on the right.
    let text_w = width.saturating_sub(HELP_KEYS_WIDTH + 5).max(10);
    let mut lines: Vec<Line> = Vec::new();
    for (context, rows) in help_rows() {
        if !lines.is_empty() {
            lines.push(Line::from(""));
        }
        lines.push(Line::styled(
            context.title().to_string(),
            theme::title().fg(Color::Cyan),
        ));
        for row in rows {
            let keys = wrap_words(&row.keys, HELP_KEYS_WIDTH);
            let text = wrap_words(row.help, text_w);
            for i in 0..keys.len().max(text.len()) {
                let k = keys.get(i).map_or("", String::as_str);
                let pad = HELP_KEYS_WIDTH.saturating_sub(str_width(k));
                lines.push(Line::from(vec![
                    Span::styled(format!("  {k}{}  ", " ".repeat(pad)), key_style),
                    Span::raw(text.get(i).cloned().unwrap_or_default()),
                ]));
            }
        }
    }
    let mut legend = vec![Span::raw("  heatmap: ")];
    for (p, label) in theme::HEAT_BANDS {
        legend.push(Span::styled(
            format!("■ {label} "),
            Style::default().fg(theme::heat(p.max(0.01))),
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(legend));
    lines
}

/// `text` in lines of at most `width` columns, broken at spaces (a word
/// wider than that is cut).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let w = str_width(word);
        if !line.is_empty() && str_width(&line) + 1 + w > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&truncate(word, width));
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn help(buf: &mut Buffer, area: Rect, scroll: u16) {
    let w = HELP_WIDTH.min(area.width);
    let lines = help_lines(w.saturating_sub(2) as usize);
    let h = lines.len() as u16 + 2;
    let r = centered(area, w, h.min(area.height.saturating_sub(2).max(3)));
    Clear.render(r, buf);
    let block = popup_block(" keys · ↑↓ scroll · any other key closes ".into());
    let inner = block.inner(r);
    block.render(r, buf);
    let max_scroll = (lines.len() as u16).saturating_sub(inner.height);
    Paragraph::new(lines)
        .scroll((scroll.min(max_scroll), 0))
        .render(inner, buf);
}

/// The picker's tag on a model file that crashed the engine process this session.
pub const CRASHED_TAG: &str = "✗ crashed llama.cpp";

/// The picker's tag on a model file llama.cpp refused to load this session.
pub const LOAD_FAILED_TAG: &str = "✗ failed to load";

fn picker(s: &State, p: &Picker, buf: &mut Buffer, area: Rect) {
    let msg_rows = if p.message.is_some() { 3 } else { 0 };
    let want = (s.models.len() as u16)
        .saturating_add(6 + msg_rows)
        .clamp(10, 26);
    let r = centered(area, 104.min(area.width), want.min(area.height));
    Clear.render(r, buf);
    let title = if s.models_scanning {
        " models · scanning… ".to_string()
    } else {
        format!(" models · {} found ", s.models.len())
    };
    let block = popup_block(title);
    let inner = block.inner(r);
    block.render(r, buf);
    if inner.area() == 0 {
        return;
    }
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if let Some(m) = &p.message {
        let mut b = super::wrap::Block::new(w);
        b.push_str(m, Tag::Text);
        for l in &b.lines {
            let text: String = l.iter().map(|c| c.text.as_str()).collect();
            lines.push(Line::styled(text, Style::default().fg(Color::Yellow)));
        }
    }
    lines.push(Line::from(vec![
        Span::styled("filter: ", theme::dim()),
        Span::raw(p.filter.clone()),
        Span::styled("▏", Style::default().add_modifier(Modifier::SLOW_BLINK)),
    ]));
    // Top part (message + filter), then the table.
    let top_h = (lines.len() as u16).min(inner.height);
    Paragraph::new(lines).render(Rect::new(inner.x, inner.y, inner.width, top_h), buf);
    let table = Rect::new(inner.x, inner.y + top_h, inner.width, inner.height - top_h);
    if table.height == 0 {
        return;
    }
    let visible = p.visible(&s.models);
    let mut rows: Vec<Line> = Vec::new();
    let (aw, pw, qw, sw) = (10, 6, 8, 10);
    let name_w = w.saturating_sub(2 + aw + pw + qw + sw + 4).max(8);
    let fmt_row = |mark: &str, name: &str, arch: &str, params: &str, quant: &str, size: &str| {
        format!(
            "{mark:<2}{:<name_w$} {:<aw$} {:>pw$} {:<qw$} {:>sw$}",
            truncate(name, name_w),
            truncate(arch, aw),
            truncate(params, pw),
            truncate(quant, qw),
            truncate(size, sw),
        )
    };
    rows.push(Line::styled(
        fmt_row("", "name", "arch", "params", "quant", "size"),
        theme::dim(),
    ));
    if visible.is_empty() {
        let text = if s.models.is_empty() {
            if s.models_scanning {
                "Looking for models…".to_string()
            } else {
                let dirs: Vec<String> = s
                    .model_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                format!(
                    "No *.gguf files in {}. Run `tokenscope fetch-demos` for the demo models.",
                    if dirs.is_empty() {
                        "(no directory)".to_string()
                    } else {
                        dirs.join(", ")
                    }
                )
            }
        } else {
            format!("No model matches {:?}.", p.filter)
        };
        rows.push(Line::styled(text, theme::dim()));
    }
    let list_h = (table.height as usize).saturating_sub(2).max(1);
    let first = p.selected.saturating_sub(list_h.saturating_sub(1));
    for (vi, &i) in visible.iter().enumerate().skip(first).take(list_h) {
        let m = &s.models[i];
        let current = s.model.as_ref().is_some_and(|cur| cur.path == m.path);
        let loading = s.load.as_ref().is_some_and(|l| l.path == m.path);
        let mark = if vi == p.selected {
            "▶"
        } else if loading {
            "…"
        } else if current {
            "●"
        } else {
            ""
        };
        let mut style = if vi == p.selected {
            theme::selected()
        } else {
            Style::default()
        };
        let line = if let Some(err) = &m.error {
            if vi != p.selected {
                style = style.fg(Color::Red);
            }
            let name = format!("{} — {}", m.file_name, err);
            format!("{mark:<2}{}", truncate(&name, w.saturating_sub(2)))
        } else if s.crashed.contains_key(&m.path) || s.load_failed.contains_key(&m.path) {
            if vi != p.selected {
                style = style.fg(Color::Red);
            }
            let tag = if s.crashed.contains_key(&m.path) {
                CRASHED_TAG
            } else {
                LOAD_FAILED_TAG
            };
            let name = format!("{} — {tag}", m.file_name);
            format!("{mark:<2}{}", truncate(&name, w.saturating_sub(2)))
        } else {
            fmt_row(mark, &m.name, &m.arch, &m.params, &m.quant, &m.size)
        };
        rows.push(Line::styled(line, style));
    }
    // The selected file crashed the engine: why, instead of the key hint.
    let crash = visible.get(p.selected).and_then(|&i| {
        let path = &s.models[i].path;
        s.crashed.get(path).or_else(|| s.load_failed.get(path))
    });
    let (hint, hint_style) = match crash {
        Some(reason) => (format!("✗ {reason}"), theme::error()),
        None => (
            "Enter load · ↑↓ select · type to filter · F5 rescan · Esc close".to_string(),
            theme::dim(),
        ),
    };
    let body_h = table.height.saturating_sub(1);
    Paragraph::new(rows).render(Rect::new(table.x, table.y, table.width, body_h), buf);
    if table.height >= 2 {
        buf.set_stringn(
            table.x,
            table.y + table.height - 1,
            truncate(&hint, w),
            w,
            hint_style,
        );
    }
}

fn settings(f: &SettingsForm, buf: &mut Buffer, area: Rect) {
    let h = f.fields.len() as u16 + 6;
    let r = centered(area, 64, h);
    Clear.render(r, buf);
    let block = popup_block(" sampling · Enter apply · ↑↓ field · Esc cancel ".into());
    let inner = block.inner(r);
    block.render(r, buf);
    let mut lines = Vec::new();
    for (i, field) in f.fields.iter().enumerate() {
        let sel = i == f.selected;
        let value = if sel {
            format!("{}▏", field.value)
        } else {
            field.value.clone()
        };
        let vstyle = if sel {
            theme::selected()
        } else {
            Style::default()
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {:<16}", field.label),
                if sel {
                    theme::title()
                } else {
                    Style::default()
                },
            ),
            Span::styled(format!("{value:<12}"), vstyle),
            Span::styled(format!("  {}", field.help), theme::dim()),
        ]));
    }
    lines.push(Line::from(""));
    match &f.error {
        Some(e) => lines.push(Line::styled(format!(" {e}"), theme::error())),
        None => lines.push(Line::styled(
            " Applies from the next reply. Ctrl-U clears a field.",
            theme::dim(),
        )),
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

/// For the status of a message in plain text (used by tests and the bench).
pub fn describe_status(st: &MsgStatus) -> &'static str {
    match st {
        MsgStatus::Done => "done",
        MsgStatus::Streaming => "streaming",
        MsgStatus::Stopped => "stopped",
        MsgStatus::Failed(_) => "failed",
    }
}
