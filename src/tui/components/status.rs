//! The status bar (what runs, the model, the context, speed) and the notice
//! above the input box.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::engine::ChatMode;
use crate::i18n::{tr, tr_args};
use crate::text::{str_width, truncate};
use crate::tui::state::{HeatScale, NoticeLevel, Phase, State};
use crate::tui::theme;
use crate::tui::wrap::wrap_lines;

/// Draws the status bar.
pub fn render(s: &State, buf: &mut Buffer, r: Rect) {
    let bg = Style::default().bg(theme::STATUS_BG);
    buf.set_style(r, bg);
    let (line, help) = status_line_for(s, r.width as usize);
    buf.set_line(r.x, r.y, &line, r.width);
    if help {
        let help_text = status_help();
        let hw = str_width(&help_text) as u16;
        buf.set_string(
            r.x + r.width - hw,
            r.y,
            help_text,
            theme::dim().bg(theme::STATUS_BG),
        );
    }
}

/// Draws the notice (information or error).
pub fn render_notice(s: &State, buf: &mut Buffer, r: Rect) {
    let Some(n) = &s.view.notice else { return };
    let style = match n.level {
        NoticeLevel::Error => theme::error(),
        NoticeLevel::Info => theme::info(),
    };
    let lines = notice_lines(&n.text, r.width as usize, r.height as usize);
    Paragraph::new(lines).style(style).render(r, buf);
}

/// The notice's lines: `text` wrapped to `width` columns by display width
/// (Chinese is two columns a character; lines break between characters,
/// never inside one), at most `rows` of them; a notice longer than that ends
/// its last line with `…`, so a cut is seen.
pub(crate) fn notice_lines(text: &str, width: usize, rows: usize) -> Vec<Line<'static>> {
    let mut lines = wrap_lines(&[Line::from(text)], width);
    if lines.len() > rows {
        lines.truncate(rows);
        if let Some(last) = lines.last_mut() {
            let shown: String = last.spans.iter().map(|s| s.content.as_ref()).collect();
            *last = Line::from(truncate(&format!("{shown}…"), width));
        }
    }
    lines
}

/// The KV-cache view's runs while they go (the engine is busy with them,
/// not idle): the tokens timed so far with the cache and without it.
fn kv_runs_text(s: &State) -> Option<String> {
    let Some(crate::tui::state::Popup::KvCost(v)) = &s.view.popup else {
        return None;
    };
    v.request?;
    Some(if v.cancelled {
        tr("status-kv-stopping", "● stopping the KV runs…")
    } else {
        tr_args(
            "status-kv-runs",
            "● KV runs · with cache { $cached } tok · without { $recomputed } tok",
            &[
                ("cached", &v.runs.cached.len()),
                ("recomputed", &v.runs.recomputed.len()),
            ],
        )
    })
}

/// Another background job of the engine while it runs and no reply does
/// (the layer lens, rollouts, asking about a text, scoring the prompt): the
/// engine is busy with it, so the status bar must not say idle.
fn background_job_text(s: &State) -> Option<String> {
    use crate::tui::state::Popup;
    match &s.view.popup {
        Some(Popup::Lens(v)) if v.request.is_some() => {
            return Some(tr("status-lens", "● layer lens…"));
        }
        Some(Popup::Rollouts(v)) if v.request.is_some() => {
            return Some(tr_args(
                "status-rollouts",
                "● rollouts { $n } × { $m } tok",
                &[("n", &v.n), ("m", &v.m)],
            ));
        }
        _ => {}
    }
    if s.view.asking.in_flight.is_some() {
        return Some(tr("status-asking", "● asking about the text…"));
    }
    if s.session.prompt_scoring.in_flight.is_some() {
        return Some(tr("status-scoring-prompt", "● scoring the prompt…"));
    }
    None
}

fn phase_text(s: &State) -> (String, Style) {
    if let Some(l) = &s.session.load {
        let pctv = (l.fraction * 100.0).round() as u32;
        return (
            tr_args(
                "status-loading",
                "loading { $pct }% { $bar }",
                &[
                    ("pct", &format!("{pctv:>3}")),
                    ("bar", &bar_ascii(l.fraction, 10)),
                ],
            ),
            Style::default().fg(Color::Yellow),
        );
    }
    if s.session.generation.is_none()
        && let Some(t) = crate::tui::compare::status_text(s)
    {
        return (
            t,
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        );
    }
    if s.session.generation.is_none()
        && let Some(t) = kv_runs_text(s).or_else(|| background_job_text(s))
    {
        return (
            t,
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD),
        );
    }
    match &s.session.generation {
        Some(g) => {
            let n = s.msg(g.msg).map_or(0, |m| m.steps.len());
            let t = match g.phase {
                Phase::Waiting => tr("status-waiting", "● waiting").to_string(),
                Phase::Prefill { done, total } => tr_args(
                    "status-prefill",
                    "● prefill { $done }/{ $total }",
                    &[("done", &done), ("total", &total)],
                ),
                Phase::Paused { .. } => format!(
                    "{}{}",
                    tr_args(
                        "status-paused",
                        "‖ step { $n } · { $fed } tok fed",
                        &[("n", &(n + 1)), ("fed", &s.ctx_used().unwrap_or(0))],
                    ),
                    // Paused while the user does something else: how to get back.
                    if s.view.focus == crate::tui::state::Focus::Choose
                        && s.view.chooser.as_ref().map(|c| c.at)
                            == Some(crate::tui::state::ChooseAt::Next)
                    {
                        String::new()
                    } else {
                        format!(" · {}", tr("status-tab-choose", "Tab: choose"))
                    }
                ),
                Phase::Generating if s.session.step_mode => {
                    tr_args("status-step", "● step { $n } tok", &[("n", &n)])
                }
                Phase::Generating if s.session.to_surprise => tr_args(
                    "status-to-surprise",
                    "● to next surprise { $n } tok",
                    &[("n", &n)],
                ),
                Phase::Generating => {
                    tr_args("status-generating", "● generating { $n } tok", &[("n", &n)])
                }
                Phase::Cancelling => {
                    tr("status-stopping", "● stopping… (Esc: restart engine)").to_string()
                }
            };
            (
                t,
                Style::default()
                    .fg(Color::Green)
                    .add_modifier(Modifier::BOLD),
            )
        }
        None if s.model.info.is_none() => (tr("status-no-model", "○ no model"), theme::dim()),
        None if s
            .view
            .notice
            .as_ref()
            .is_some_and(|n| n.level == NoticeLevel::Error) =>
        {
            (tr("status-idle-error", "○ idle ✖ error"), theme::error())
        }
        None => (tr("status-idle", "○ idle"), Style::default()),
    }
}

/// The context used, for the status bar: `?` while a remote server has not
/// counted the prompt (never a wrong 0); 0 before anything was sent.
fn ctx_used_text(s: &State) -> String {
    match s.ctx_used() {
        Some(n) => n.to_string(),
        None if s.model.is_remote() && !s.session.conv.is_empty() => "?".into(),
        None => "0".into(),
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
    match &s.model.info {
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
            if let Some(url) = s.model.caps.as_ref().and_then(|c| c.remote.as_deref()) {
                let host = url.split_once("://").map_or(url, |(_, h)| h);
                f.push(
                    Field::new(
                        2,
                        vec![Span::styled(
                            tr_args("status-remote", "remote { $host }", &[("host", &host)]),
                            Style::default().fg(Color::Cyan),
                        )],
                    )
                    .after(" "),
                );
            }
        }
        None => f.push(Field::new(
            1,
            vec![Span::styled(
                tr("status-no-model-name", "no model"),
                theme::dim(),
            )],
        )),
    }
    if let Some(m) = &s.model.info {
        // A server that does not say its context: unknown, not 0.
        let size = match m.n_ctx {
            0 => "?".to_string(),
            n => n.to_string(),
        };
        f.push(Field::new(
            2,
            vec![Span::raw(tr_args(
                "status-ctx",
                "ctx { $used }/{ $size }",
                &[("used", &ctx_used_text(s)), ("size", &size)],
            ))],
        ));
        // llama.cpp rounded or capped the context asked for: say so.
        if m.n_ctx_requested != m.n_ctx {
            f.push(
                Field::new(
                    4,
                    vec![Span::styled(
                        tr_args(
                            "status-ctx-asked",
                            "(asked { $n })",
                            &[("n", &m.n_ctx_requested)],
                        ),
                        Style::default().fg(Color::Yellow),
                    )],
                )
                .after(" "),
            );
        }
    }
    f.extend(reply_fields(s));
    if let Some(mode) = s.prompt_mode(s.model.chat_mode) {
        f.push(Field::new(
            7,
            vec![Span::raw(match mode {
                ChatMode::Template => tr("status-chat-template", "chat template"),
                ChatMode::Builtin => tr("status-builtin-template", "built-in template"),
                ChatMode::Plain => tr("status-plain", "plain"),
                ChatMode::Server => tr("status-server-template", "server template"),
            })],
        ));
    }
    // Compare mode: model B, loaded beside A, and what it takes.
    if let Some(b) = &s.compare.b {
        let memory = s
            .compare
            .b_memory
            .map_or(b.file_size, |m| b.file_size + m.kv_cache + m.logits);
        f.push(Field::new(
            3,
            vec![Span::styled(
                format!("B {} +{}", b.quant, crate::catalog::size_human(memory)),
                Style::default().fg(Color::Cyan),
            )],
        ));
    }
    // Said once in a notice; kept in sight while it lasts.
    if s.session.saving_off.is_some() {
        f.push(Field::new(
            2,
            vec![Span::styled(
                tr("status-saving-off", "saving off"),
                theme::error(),
            )],
        ));
    }
    let mut flags = Vec::new();
    let kl_heat = s.heat_shown() == Some(HeatScale::Kl);
    match s.heat_shown() {
        Some(HeatScale::Probability) => flags.push(tr("status-heat-p", "heat p")),
        Some(HeatScale::Entropy) => flags.push(tr("status-heat-h", "heat H")),
        Some(HeatScale::Kl) => flags.push(tr("status-heat-kl", "heat KL")),
        None => {}
    }
    if s.view.display.boundaries {
        flags.push(tr("status-bounds", "bounds"));
    }
    if !flags.is_empty() {
        // The KL scale must not pass for the probability one: kept longer.
        f.push(Field::new(
            if kl_heat { 3 } else { 9 },
            vec![Span::styled(flags.join(" "), theme::dim())],
        ));
    }
    f
}

/// Draws the heatmap's legend row: what the colours (or without colour, the
/// styles) mean on the scale shown, cut to the row's width.
pub fn render_legend(s: &State, buf: &mut Buffer, r: Rect) {
    let Some(scale) = s.heat_shown() else {
        return;
    };
    let mut x = r.x + 1.min(r.width);
    let end = r.x + r.width;
    let color = s.view.display.color;
    let width = |items: &[(String, Style)]| items.iter().map(|(t, _)| str_width(t)).sum::<usize>();
    let long = theme::heat_legend(scale, color, true);
    let items = if width(&long) < r.width as usize {
        long
    } else {
        theme::heat_legend(scale, color, false)
    };
    for (text, style) in items {
        let room = end.saturating_sub(x) as usize;
        if room == 0 {
            break;
        }
        x = buf.set_stringn(x, r.y, &text, room, style).0;
    }
}

/// Speed, time to the first token and prompt tokens reused: the reply under
/// way's as they become known ("…" before), else the last reply's (a reply
/// that ended before its first token has neither speed nor TTFT).
fn reply_fields(s: &State) -> Vec<Field> {
    let known = |v: Option<String>| v.unwrap_or_else(|| "…".into());
    let (tps, ttft, reused, stop) = match (&s.session.generation, &s.session.last_stats) {
        (Some(g), _) => (
            Some(known(g.live.tokens_per_s().map(|v| format!("{v:.1}")))),
            Some(known(g.live.ttft_ms().map(|v| format!("{v:.0} ms")))),
            // `Started` (or a server's `PromptCounted`) counted the prompt.
            known((g.n_prompt > 0).then(|| g.n_reused.to_string())),
            None,
        ),
        (None, Some(st)) => {
            let any = st.n_generated > 0;
            (
                any.then(|| format!("{:.1}", st.gen_tps)),
                any.then(|| format!("{:.0} ms", st.ttft_ms)),
                st.n_prompt_reused.to_string(),
                (st.stop != crate::engine::StopReason::Eog).then_some(st.stop),
            )
        }
        (None, None) => return Vec::new(),
    };
    let mut f = Vec::new();
    if let Some(tps) = tps {
        let tps = tr_args("status-tps", "{ $tps } tok/s", &[("tps", &tps)]);
        f.push(Field::new(3, vec![Span::raw(tps)]));
    }
    if let Some(ttft) = ttft {
        let ttft = tr_args("status-ttft", "TTFT { $ttft }", &[("ttft", &ttft)]);
        f.push(Field::new(6, vec![Span::raw(ttft)]).after(" · "));
    }
    f.push(
        Field::new(
            8,
            vec![Span::raw(tr_args(
                "status-reused",
                "reused { $n }",
                &[("n", &reused)],
            ))],
        )
        .after(" · "),
    );
    if let Some(stop) = stop {
        f.push(Field::new(4, vec![Span::styled(stop_text(stop), theme::dim())]).after(" · "));
    }
    // The first of them starts a field of its own.
    if let Some(first) = f.first_mut() {
        first.sep = STATUS_SEP;
    }
    f
}

const STATUS_SEP: &str = " │ ";

/// The help hint at the status bar's right end.
fn status_help() -> String {
    format!(" {} ", tr("status-help", "F1 help"))
}

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
    (line, used + str_width(&status_help()) <= width)
}

/// How a reply ended, as the status bar says it (the JSON keeps
/// [`StopReason::as_str`]'s identifiers).
fn stop_text(stop: crate::engine::StopReason) -> String {
    use crate::engine::StopReason;
    match stop {
        StopReason::Eog => tr("stop-eog", "eog"),
        StopReason::MaxTokens => tr("stop-max-tokens", "max_tokens"),
        StopReason::Cancelled => tr("stop-cancelled", "cancelled"),
        StopReason::ContextFull => tr("stop-context-full", "context_full"),
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::StopReason;
    use crate::i18n::{Lang, with_lang};
    use crate::tui::action::Trigger;

    /// The status bar's stop reason and help's trigger names follow the
    /// interface's language; English keeps the identifiers and names the
    /// README uses.
    #[test]
    fn stop_reasons_and_trigger_names_are_in_the_interface_language() {
        assert_eq!(super::stop_text(StopReason::Cancelled), "cancelled");
        assert_eq!(
            with_lang(Lang::Zh, || super::stop_text(StopReason::Cancelled)),
            "已取消"
        );
        assert_eq!(Trigger::Wheel.name(), "mouse wheel");
        assert_eq!(with_lang(Lang::Zh, || Trigger::Wheel.name()), "鼠标滚轮");
        assert_eq!(StopReason::Cancelled.as_str(), "cancelled", "JSON's word");
    }
}
