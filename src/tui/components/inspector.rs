//! The inspector: the inspected token's top candidates with their
//! probabilities, the reply's confidence; and its one-line stand-in (the
//! summary) on small terminals. It has no keys of its own.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph, Widget};

use super::{bar, pct, pct_opt};
use crate::engine::TokenStep;
use crate::engine::resample::Fate;
use crate::i18n::{tr, tr_args};
use crate::text::{pad_left, pad_right, str_width, truncate, visible_piece};
use crate::tui::state::{ChooseAt, Focus, Message, SamplerColumn, State, TokenRef};
use crate::tui::theme;
use crate::tui::wrap::{wrap_lines, wrap_plain};

/// Draws the inspector: the inspected token's candidates, then the reply's
/// confidence when there is room.
pub fn render(s: &State, buf: &mut Buffer, r: Rect) {
    if let Some((msg, step)) = s.preview() {
        return render_preview(s, msg, &step, buf, r);
    }
    let inspected = s.inspected();
    let title = match inspected {
        Some((t, _)) => inspector_title(s, t),
        None => format!(" {} ", tr("inspector-title", "inspector")),
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
        if s.newest_reply_is_empty() && !s.session.is_generating() {
            let text = tr(
                "inspector-reply-no-tokens",
                "The last reply ended before its first token: it has no token to inspect.",
            );
            Paragraph::new(
                wrap_plain(&text, inner.width as usize)
                    .into_iter()
                    .map(Line::from)
                    .collect::<Vec<_>>(),
            )
            .render(inner, buf);
            return;
        }
        let lines = [
            Line::from(tr(
                "inspector-empty",
                "The model's top candidates for each next token appear here while a reply streams in.",
            )),
            Line::from(""),
            Line::styled(
                tr(
                    "inspector-empty-tab",
                    "Tab: move over the tokens of a reply.",
                ),
                theme::dim(),
            ),
        ];
        Paragraph::new(wrap_lines(&lines, inner.width as usize)).render(inner, buf);
        return;
    };
    let max_rows = s.config.inspector_top_k;
    // Compact when the full header would not leave room for the candidates.
    let compact = (inner.height as usize) < step.top().len().min(max_rows) + 6;
    let Some(m) = s.msg(t.msg) else {
        return;
    };
    let choice = match s.view.chooser.as_ref() {
        Some(c) if c.at == ChooseAt::Token(t) && s.view.focus == Focus::Choose => Some(c.selected),
        _ => None,
    };
    // A token of a compared reply: both models side by side.
    if choice.is_none()
        && let Some(c) = m.comparison.as_ref()
        && let Some(row) = c.row(t.step)
    {
        let lines =
            super::compared::lines(m, c, row, inner.width as usize, s.view.display.heatmap());
        draw_scrolled(lines, None, 0, inner, buf);
        return;
    }
    let column = s.sampler_column(m, step);
    let view = View {
        width: inner.width as usize,
        heat: s.view.display.heatmap(),
        compact,
        shown: choice.map_or(Shown::Token, Shown::Choosing),
        max_rows,
        sampler: column.as_ref(),
        unscored: crate::tui::prompt_scoring::why_unscored(s),
    };
    let (mut lines, mut selected, mut footer) = inspector_lines(m, step, &view);
    if choice.is_some() {
        let (added, replaced) = with_asking(s, &mut lines, &view, inner.height);
        footer += added;
        if replaced {
            selected = None;
        }
    }
    let used = draw_scrolled(lines, selected, footer, inner, buf);
    // Below the candidates, when there is room: the whole reply's confidence.
    let free = inner.height.saturating_sub(used + 1);
    if free >= 4 && !compact {
        let rows = (free - 2).min(4);
        let area = Rect::new(inner.x, inner.bottom() - rows - 2, inner.width, rows + 2);
        if let Some(m) = s.msg(t.msg) {
            confidence(s, m, t, buf, area);
        }
    }
}

/// Step mode: the distribution the next token will be drawn from, before
/// the draw, with the candidate selected to force.
fn render_preview(s: &State, msg: usize, step: &TokenStep, buf: &mut Buffer, r: Rect) {
    let title = format!(
        " {} ",
        tr_args(
            "inspector-next-not-drawn",
            "next token #{ $i } · not drawn yet",
            &[("i", &(step.index + 1))],
        )
    );
    let block = Block::bordered()
        .title(Span::styled(title, theme::title()))
        .border_style(Style::default().fg(theme::ASSISTANT))
        .padding(Padding::horizontal(1));
    let inner = block.inner(r);
    block.render(r, buf);
    let Some(m) = s.msg(msg) else {
        return;
    };
    if inner.area() == 0 {
        return;
    }
    let max_rows = s.config.inspector_top_k;
    let compact = (inner.height as usize) < step.top().len().min(max_rows) + 6;
    let selected = s.view.chooser.as_ref().map_or(0, |c| c.selected);
    let column = s.sampler_column(m, step);
    let view = View {
        width: inner.width as usize,
        heat: s.view.display.heatmap(),
        compact,
        shown: Shown::Next(selected),
        max_rows,
        sampler: column.as_ref(),
        unscored: crate::tui::prompt_scoring::why_unscored(s),
    };
    let (mut lines, selected, mut footer) = inspector_lines(m, step, &view);
    let (added, replaced) = with_asking(s, &mut lines, &view, inner.height);
    footer += added;
    draw_scrolled(lines, selected.filter(|_| !replaced), footer, inner, buf);
}

/// Appends the chooser's preview of its text (or vocabulary search) under
/// the candidates, after a blank line; returns the lines added (kept in
/// view as a footer) and whether they replaced the candidates instead: a
/// vocabulary search (Ctrl-F) with no room under them in `height` rows
/// takes their place (at 80×24 the footer was dropped and the list did not
/// show), its first line saying how to leave it.
fn with_asking(
    s: &State,
    lines: &mut Vec<Line<'static>>,
    view: &View,
    height: u16,
) -> (usize, bool) {
    let ask = crate::tui::asking::lines(s, view.width, view.heat);
    if ask.is_empty() {
        return (0, false);
    }
    let searching = s.view.chooser.as_ref().is_some_and(|c| c.find);
    // `draw_scrolled` keeps a footer only with 3 rows of candidates above it.
    if searching && ask.len() + 1 + 3 > height as usize {
        *lines = ask;
        return (0, true);
    }
    lines.push(Line::from(""));
    let n = ask.len() + 1;
    lines.extend(ask);
    (n, false)
}

/// Choosing on a small terminal: the selected candidate in one line.
fn choosing_summary(s: &State) -> Option<(String, Style)> {
    let c = s
        .view
        .chooser
        .as_ref()
        .filter(|_| s.view.focus == Focus::Choose)?;
    let (msg, step, what) = match c.at {
        ChooseAt::Next => {
            let (msg, step) = s.preview()?;
            (msg, step, tr("inspector-choose-next", "next"))
        }
        ChooseAt::Token(t) => (
            t.msg,
            s.step(t)?.clone(),
            tr("inspector-choose-instead", "instead"),
        ),
    };
    let m = s.msg(msg)?;
    let d = step.dist.as_ref()?;
    let i = c.selected.min(d.top.len().checked_sub(1)?);
    let cand = d.top[i];
    let text = format!(
        "{what} {}/{} {} p={} · {}",
        i + 1,
        d.top.len(),
        visible_piece(&m.piece(cand.id)),
        pct(d.p(cand.logit)),
        tr("inspector-choose-keys", "↑↓ or 1-9, Enter · → draw"),
    );
    Some((text, theme::selected()))
}

/// Draws the one-line stand-in for the inspector (small terminals).
pub fn render_summary(s: &State, buf: &mut Buffer, r: Rect) {
    if let Some((text, style)) = choosing_summary(s) {
        let w = r.width as usize;
        buf.set_stringn(r.x, r.y, truncate(&text, w), w, style);
        return;
    }
    let Some((t, step)) = s.inspected() else {
        buf.set_stringn(
            r.x,
            r.y,
            tr("inspector-summary-empty", "Tab: inspect tokens · F1 help"),
            r.width as usize,
            theme::dim(),
        );
        return;
    };
    let Some(m) = s.msg(t.msg) else {
        return;
    };
    // A token of a compared reply: both models' p and the KL.
    if let Some(row) = m.comparison.as_ref().and_then(|c| c.row(t.step)) {
        let text = format!(
            "▶ {} A {} · B {} · KL(A‖B) {:.4}",
            visible_piece(&m.piece(step.id)),
            pct(row.ln_p[0].exp() as f32),
            pct(row.ln_p[1].exp() as f32),
            row.kl[0]
        );
        let w = r.width as usize;
        buf.set_stringn(r.x, r.y, truncate(&text, w), w, Style::default());
        return;
    }
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
            " · {} {} {}",
            tr("inspector-alt", "alt"),
            visible_piece(&m.piece(alt.id)),
            pct(d.p(alt.logit))
        ));
    }
    let style = match step.p() {
        Some(p) if s.view.display.heatmap() => Style::default().fg(theme::heat(p)),
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

fn inspector_title(s: &State, t: TokenRef) -> String {
    let title = inspector_title_base(s, t);
    match s.whatif_params() {
        Some(p) => format!(
            "{title}· {} T {} k {} p {} m {} ",
            tr("inspector-what-if", "what-if"),
            short(p.temperature),
            p.top_k,
            short(p.top_p),
            short(p.min_p)
        ),
        None => title,
    }
}

/// A setting for a title: at most 3 decimals, no trailing zeros (`0.9`, not `0.90000004`).
fn short(x: f32) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn inspector_title_base(s: &State, t: TokenRef) -> String {
    let n = s.msg(t.msg).map_or(0, |m| m.steps.len());
    if s.view.focus == Focus::Navigate
        && s.msg(t.msg)
            .and_then(|m| m.comparison.as_ref())
            .and_then(|c| c.row(t.step))
            .is_some()
    {
        return format!(
            " {} ",
            tr_args(
                "inspector-token-ab",
                "token { $i }/{ $n } · A vs B",
                &[("i", &(t.step + 1)), ("n", &n)],
            )
        );
    }
    if let Some(m) = s.msg(t.msg)
        && m.role != crate::engine::Role::Assistant
    {
        let what = if crate::tui::state::is_scaffolding(m, t.step) {
            tr("inspector-what-template", "template")
        } else if m.role == crate::engine::Role::System {
            tr("inspector-what-system", "system prompt")
        } else {
            tr("inspector-what-message", "your message")
        };
        return format!(
            " {} ",
            tr_args(
                "inspector-prompt-token",
                "prompt token { $i }/{ $n } · { $what }",
                &[("i", &(t.step + 1)), ("n", &n), ("what", &what)],
            )
        );
    }
    if s.view.focus == Focus::Choose {
        format!(
            " {} ",
            tr_args(
                "inspector-token-branch",
                "token { $i }/{ $n } · choose another to branch",
                &[("i", &(t.step + 1)), ("n", &n)],
            )
        )
    } else if s.view.focus == Focus::Navigate {
        // A token whose bytes only start a character: its glyph comes later.
        let partial = s
            .step(t)
            .zip(s.msg(t.msg))
            .is_some_and(|(st, m)| st.text.is_empty() && m.has_bytes(st.id));
        let part = if partial {
            format!("· {} ", tr("inspector-part-char", "part of a character"))
        } else {
            String::new()
        };
        format!(
            " {} {part}",
            tr_args(
                "inspector-token",
                "token { $i }/{ $n }",
                &[("i", &(t.step + 1)), ("n", &n)],
            )
        )
    } else if s.session.is_generating() {
        format!(
            " {} ",
            tr_args(
                "inspector-next-live",
                "next token · live #{ $i }",
                &[("i", &(t.step + 1))],
            )
        )
    } else {
        format!(
            " {} ",
            tr_args(
                "inspector-last",
                "last token #{ $i }",
                &[("i", &(t.step + 1))]
            )
        )
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
fn confidence(s: &State, m: &Message, t: TokenRef, buf: &mut Buffer, area: Rect) {
    let n = m.steps.len();
    let w = area.width as usize;
    if n == 0 || w == 0 {
        return;
    }
    let prompt = m.role != crate::engine::Role::Assistant;
    // A reply's tokens whose p is unknown (inspector off) count as certain; a
    // message's unscored tokens (its scaffolding, the first) are left out.
    let p_of = |st: &TokenStep| st.p().unwrap_or(1.0);
    let scored: Vec<f32> = if prompt {
        m.steps.iter().filter_map(TokenStep::p).collect()
    } else {
        m.steps.iter().map(p_of).collect()
    };
    if scored.is_empty() {
        return;
    }
    let mean = scored.iter().map(|&p| p as f64).sum::<f64>() / scored.len() as f64;
    let ppl = perplexity(scored.iter().copied()).unwrap_or(0.0);
    let (n, mean) = (scored.len(), pct(mean as f32));
    let ppl = format!("{ppl:.2}");
    let args: [(&str, &dyn std::fmt::Display); 3] = [("n", &n), ("mean", &mean), ("ppl", &ppl)];
    let head = if prompt {
        tr_args(
            "inspector-confidence-message",
            "message: { $n } tok · mean p { $mean } · ppl { $ppl }",
            &args,
        )
    } else {
        tr_args(
            "inspector-confidence-reply",
            "reply: { $n } tok · mean p { $mean } · ppl { $ppl }",
            &args,
        )
    };
    buf.set_stringn(area.x, area.y, truncate(&head, w), w, theme::dim());
    // The window: the last tokens, or centred on the cursor.
    let start = if s.view.focus == Focus::Navigate {
        t.step.saturating_sub(w / 2).min(n.saturating_sub(w))
    } else {
        n.saturating_sub(w)
    };
    let rows = area.height.saturating_sub(2) as usize;
    let levels = rows * 8;
    const TICKS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    for (i, st) in m.steps.iter().enumerate().skip(start).take(w) {
        let x = area.x + (i - start) as u16;
        // A message's unscored tokens (scaffolding, the first) get no bar.
        let p = match (prompt, st.p()) {
            (true, None) => continue,
            (true, Some(p)) => p,
            (false, _) => p_of(st),
        };
        let filled = ((p.clamp(0.0, 1.0) * levels as f32).round() as usize).max(1);
        let mut style = if s.view.display.heatmap() {
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
    h.map_or_else(
        || "–".to_string(),
        |h| {
            tr_args(
                "inspector-bits",
                "{ $h } bits",
                &[("h", &format!("{h:.2}"))],
            )
        },
    )
}

/// How the step's token came: the sampler's probability, or `forced`.
fn sampler_text(step: &TokenStep) -> String {
    if step.forced {
        tr("inspector-forced", "forced")
    } else {
        pct_opt(step.p_sampled)
    }
}

/// The sampler rule that cut a candidate, as its cell says it: the
/// rules' own names (top-k, top-p, min-p), greedy in words.
fn rule_text(rule: crate::engine::resample::Rule) -> String {
    match rule {
        crate::engine::resample::Rule::Greedy => tr("inspector-cut-greedy", "greedy"),
        other => other.as_str().to_owned(),
    }
}

/// How the inspector shows a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A token of a reply.
    Token,
    /// A past token while choosing another in its place: the selected row.
    Choosing(usize),
    /// The next token, not drawn yet: the selected row (the step's token).
    Next(usize),
}

/// How to draw one step's candidates.
pub struct View<'a> {
    /// Columns.
    pub width: usize,
    /// Heatmap colours.
    pub heat: bool,
    /// One header line instead of four.
    pub compact: bool,
    pub shown: Shown,
    /// Most candidate rows when not choosing (choosing shows them all).
    pub max_rows: usize,
    /// The sampler's side: rules for cut candidates, what-if probabilities.
    pub sampler: Option<&'a SamplerColumn>,
    /// What a prompt token with no score says (being scored, or why not).
    pub unscored: String,
}

/// The inspector's lines for one step of message `m`, the index of the
/// selected candidate's line when choosing, and how many lines at the end
/// are a remark to keep in view (why the what-if column reads `?`).
pub fn inspector_lines(
    m: &Message,
    step: &TokenStep,
    view: &View,
) -> (Vec<Line<'static>>, Option<usize>, usize) {
    let (w, heat, compact, shown) = (view.width, view.heat, view.compact, view.shown);
    let choice = match shown {
        Shown::Token => None,
        Shown::Choosing(i) | Shown::Next(i) => Some(i),
    };
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
            Span::styled(
                format!(" · {} ", tr("inspector-sampler", "sampler")),
                theme::dim(),
            ),
            Span::raw(sampler_text(step)),
            Span::styled(
                format!(" · {} ", tr("inspector-entropy", "entropy")),
                theme::dim(),
            ),
            Span::raw(bits(step.entropy())),
        ]));
    } else {
        let label = if matches!(shown, Shown::Next(_)) {
            tr("inspector-selected", "selected")
        } else if m.role != crate::engine::Role::Assistant {
            tr("inspector-head-token", "token")
        } else {
            tr("inspector-chosen", "chosen")
        };
        lines.extend(full_header(step, &label, &piece, w, chosen_style));
        if m.vocab.as_ref().is_some_and(|v| v.is_learned()) {
            lines.push(partial_line(step));
        }
    }
    let selected = candidate_rows(m, step, view, heat_style, choice, &mut lines);
    let before = lines.len();
    if let Some(u) = view
        .sampler
        .and_then(|c| c.resampled.unsure.filter(|_| c.whatif))
    {
        // Why the what-if column reads `?`: a sentence, wrapped under its `?`.
        for (i, l) in wrap_plain(&unsure_text(u), w.saturating_sub(4))
            .into_iter()
            .enumerate()
        {
            let lead = if i == 0 { "  ? " } else { "    " };
            lines.push(Line::styled(format!("{lead}{l}"), theme::dim()));
        }
    }
    let footer = lines.len() - before;
    (lines, selected, footer)
}

/// Why the what-if column reads `?`, in the interface's language: the
/// engine says which [`Unsure`](crate::engine::resample::Unsure) case it is,
/// the words are the TUI's.
pub(crate) fn unsure_text(u: crate::engine::resample::Unsure) -> String {
    use crate::engine::resample::Unsure;
    match u {
        Unsure::TopP => tr(
            "inspector-unsure-top-p",
            "top-p needs more of the distribution than the candidates kept",
        ),
        Unsure::TopK => tr(
            "inspector-unsure-top-k",
            "top-k keeps more tokens than the candidates kept",
        ),
        Unsure::MinP => tr(
            "inspector-unsure-min-p",
            "min-p keeps tokens beyond the candidates kept",
        ),
        Unsure::Temperature => tr(
            "inspector-unsure-temperature",
            "with nothing cut, this temperature gives weight to tokens beyond the candidates kept",
        ),
        Unsure::Penalty => tr(
            "inspector-unsure-penalty",
            "a repeat penalty below 1 may lift tokens beyond the candidates kept",
        ),
    }
}

/// Draws `lines` in `area`, scrolled so that line `keep` (the selected
/// candidate) is in view. When they do not all fit, the last `footer` lines
/// (a remark on the rest) stay at the bottom, as long as three lines are
/// left above them. Returns the lines drawn.
fn draw_scrolled(
    mut lines: Vec<Line<'static>>,
    keep: Option<usize>,
    footer: usize,
    area: Rect,
    buf: &mut Buffer,
) -> u16 {
    let h = area.height as usize;
    let footer = if lines.len() > h && h >= footer + 3 {
        footer
    } else {
        0
    };
    let foot = lines.split_off(lines.len() - footer);
    let body_h = h - footer;
    let top = keep.map_or(0, |k| (k + 1).saturating_sub(body_h));
    let used = lines.len().saturating_sub(top).min(body_h) + footer;
    let body = Rect {
        height: body_h as u16,
        ..area
    };
    Paragraph::new(lines)
        .scroll((top as u16, 0))
        .render(body, buf);
    let below = Rect {
        y: area.y + body_h as u16,
        height: footer as u16,
        ..area
    };
    Paragraph::new(foot).render(below, buf);
    used as u16
}

/// A remote server's step: the candidates are all that is known; what
/// they leave of the probability mass is the rest, spread over tokens not reported.
fn partial_line(step: &TokenStep) -> Line<'static> {
    let rest = step.dist.as_ref().map(|d| {
        let shown: f32 = d.top.iter().map(|c| d.p(c.logit)).sum();
        (1.0 - shown).max(0.0)
    });
    Line::styled(
        tr_args(
            "inspector-remote-partial",
            "remote: top { $n } only · rest { $rest } unreported",
            &[("n", &step.top().len()), ("rest", &pct_opt(rest))],
        ),
        theme::dim(),
    )
}

fn full_header(
    step: &TokenStep,
    label: &str,
    piece: &str,
    w: usize,
    chosen: Style,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let label = format!("{label} ");
    let piece_w = w.saturating_sub(str_width(&label));
    lines.push(Line::from(vec![
        Span::styled(label, theme::dim()),
        Span::styled(truncate(&visible_piece(piece), piece_w), chosen),
    ]));
    let sampler = if step.forced {
        String::new()
    } else {
        format!(" {}", tr("inspector-sampler", "sampler"))
    };
    lines.push(Line::from(vec![
        Span::styled(format!("p={}", pct_opt(step.p())), chosen),
        Span::styled(
            format!(" {} · ", tr("inspector-model", "model")),
            theme::dim(),
        ),
        Span::raw(sampler_text(step)),
        Span::styled(sampler, theme::dim()),
    ]));
    lines.push(Line::from(vec![
        Span::styled(
            format!("{} ", tr("inspector-entropy", "entropy")),
            theme::dim(),
        ),
        Span::raw(bits(step.entropy())),
        Span::styled(
            format!(" · {} ", tr("inspector-logit", "logit")),
            theme::dim(),
        ),
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
    view: &View,
    heat_style: impl Fn(f32) -> Style,
    choice: Option<usize>,
    lines: &mut Vec<Line<'static>>,
) -> Option<usize> {
    // Candidate rows: marker, text, bar, probability under the model, and
    // under the sampler (a bar too when there is room; a cut candidate
    // names the rule that cut it).
    let w = view.width;
    // A remote server reports no sampler probabilities: no column for them.
    let partial = m.vocab.as_ref().is_some_and(|v| v.is_learned());
    let show_sampled = w >= 44 && !partial;
    let sampler_bar_w = if w >= 60 { 6 } else { 0 };
    let pct_w = 7;
    let fixed = 2 + 1 + pct_w + if show_sampled { 1 + pct_w } else { 0 };
    let text_w = (w / 3).clamp(4, 16).min(w.saturating_sub(fixed + 3).max(1));
    let bar_w = w
        .saturating_sub(fixed + text_w + 1)
        .saturating_sub(if sampler_bar_w > 0 {
            sampler_bar_w + 1
        } else {
            0
        });
    let column = view.sampler;
    let unsure = column.is_some_and(|c| c.whatif && c.resampled.unsure.is_some());
    // The sampler cell of candidate `i`: its probability, or the rule that cut it.
    let sampler_cell = |i: Option<usize>, ps: Option<f32>| -> (Option<f32>, String) {
        let fate = column.and_then(|c| i.and_then(|i| c.resampled.fates.get(i).copied()));
        if column.is_some_and(|c| c.whatif) {
            return match fate {
                _ if unsure => (None, "?".into()),
                Some(Fate::Kept(p)) => (Some(p), pct(p)),
                Some(Fate::Cut(rule)) => (Some(0.0), rule_text(rule)),
                None => (None, "–".into()),
            };
        }
        match (ps, fate) {
            (Some(0.0), Some(Fate::Cut(rule))) => (Some(0.0), rule_text(rule)),
            (Some(p), _) => (Some(p), pct(p)),
            (None, _) => (None, "–".into()),
        }
    };
    let mut chosen_shown = false;
    // Choosing: rows are numbered (1-9 pick one) and the selection stands out.
    let row = |i: Option<usize>, c_text: &str, p: f32, ps: Option<f32>, chosen: bool| {
        let text = truncate(&visible_piece(c_text), text_w);
        let pad = text_w.saturating_sub(str_width(&text));
        let base = if chosen {
            Style::default()
                .bg(theme::CHOSEN_BG)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let selected = choice.is_some() && i == choice;
        let marker = match (choice, i) {
            (Some(_), Some(i)) if i < 9 => format!("{}{}", i + 1, if chosen { '▶' } else { ' ' }),
            _ if chosen => "▶ ".to_string(),
            _ => "  ".to_string(),
        };
        let text_style = if selected {
            base.patch(theme::selected())
        } else {
            base
        };
        let mut spans = vec![
            Span::styled(
                marker,
                if choice.is_some() {
                    theme::dim().patch(base)
                } else {
                    base
                },
            ),
            Span::styled(format!("{text}{}", " ".repeat(pad)), text_style),
            Span::styled(" ", base),
        ];
        if bar_w > 0 {
            spans.push(Span::styled(bar(p, bar_w), heat_style(p).bg(theme::BAR_BG)));
        }
        spans.push(Span::styled(format!(" {:>7}", pct(p)), base));
        if show_sampled {
            let (sp, cell) = sampler_cell(i, ps);
            if sampler_bar_w > 0 {
                spans.push(Span::styled(" ", base));
                spans.push(Span::styled(
                    bar(sp.unwrap_or(0.0), sampler_bar_w),
                    Style::default().fg(theme::SAMPLER).bg(theme::BAR_BG),
                ));
            }
            let cut = sp == Some(0.0) && cell.chars().any(|c| c.is_alphabetic());
            let style = if cut {
                base.fg(theme::DIM).add_modifier(Modifier::ITALIC)
            } else {
                base.fg(theme::SAMPLER)
            };
            spans.push(Span::styled(format!(" {}", pad_left(&cell, 7)), style));
        }
        Line::from(spans)
    };
    if show_sampled && !view.compact {
        let sampler_head = if column.is_some_and(|c| c.whatif) {
            tr("inspector-what-if", "what-if")
        } else {
            tr("inspector-sampler", "sampler")
        };
        // Each head ends where its column's numbers end (padded by display
        // width: a Chinese head is two columns a character): the model's
        // after the text and its bar, the sampler's after its own bar.
        let head = format!(
            "  {}{}{}",
            pad_right(&tr("inspector-candidate", "candidate"), text_w + 1 + bar_w),
            pad_left(&tr("inspector-model", "model"), 1 + pct_w),
            pad_left(
                &sampler_head,
                1 + pct_w
                    + if sampler_bar_w > 0 {
                        sampler_bar_w + 1
                    } else {
                        0
                    }
            ),
        );
        lines.push(Line::styled(head, theme::dim()));
    }
    let Some(dist) = &step.dist else {
        let why = if m.role == crate::engine::Role::Assistant {
            format!(
                "  {}",
                tr(
                    "inspector-no-candidates",
                    "(no candidates: the inspector is off, see inspector_top_k)"
                )
            )
        } else {
            view.unscored.clone()
        };
        lines.push(Line::styled(why, theme::dim()));
        return None;
    };
    let rows = if choice.is_some() {
        dist.top.len()
    } else {
        view.max_rows.min(dist.top.len())
    };
    let mut selected = None;
    for (i, c) in dist.top.iter().enumerate().take(rows) {
        let chosen = c.id == step.id;
        chosen_shown |= chosen;
        if choice == Some(i) {
            selected = Some(lines.len());
        }
        lines.push(row(
            Some(i),
            &m.piece(c.id),
            dist.p(c.logit),
            c.p_sampled,
            chosen,
        ));
    }
    if !chosen_shown && let Some(p) = step.p() {
        let i = dist.top.iter().position(|c| c.id == step.id);
        lines.push(Line::styled(
            match i {
                Some(i) => format!(
                    "  ⋯ {}",
                    tr_args(
                        "inspector-chosen-at",
                        "(chosen token: candidate { $i })",
                        &[("i", &(i + 1))],
                    )
                ),
                None => format!(
                    "  ⋯ {}",
                    tr(
                        "inspector-chosen-outside",
                        "(chosen token outside the top candidates)"
                    )
                ),
            },
            theme::dim(),
        ));
        lines.push(row(i, &m.piece(step.id), p, step.p_sampled, true));
    }
    selected
}
