//! The KV-cache view popup: the time per token against position of the
//! same greedy reply generated with the KV cache and without it, as a live
//! chart (two series, named above it), with both runs' totals and their ratio.

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Clear, Dataset, GraphType, Paragraph, Widget, Wrap};

use super::popup_block;
use crate::engine::{KvTimed, kv_total};
use crate::i18n::{tr, tr_args};
use crate::text::{pad_right, str_width, truncate};
use crate::tui::action::{Action, Context, lookup};
use crate::tui::effect::Effect;
use crate::tui::layout::centered;
use crate::tui::outcome::Outcome;
use crate::tui::state::Popup;
use crate::tui::state::kv_cost::KvCostView;
use crate::tui::theme;

/// A key in the view ([`Context::KvCost`]): Esc cancels the runs under way
/// (the view stays, saying so), else closes.
pub fn on_key(mut v: Box<KvCostView>, k: KeyEvent) -> (Option<Popup>, Outcome) {
    match lookup(Context::KvCost, &k) {
        Some(Action::Close) => match v.request {
            Some(r) if !v.cancelled => {
                v.cancelled = true;
                (
                    Some(Popup::KvCost(v)),
                    Outcome::Effects(vec![Effect::Cancel(r)]),
                )
            }
            _ => (None, Outcome::Done),
        },
        _ => (Some(Popup::KvCost(v)), Outcome::Done),
    }
}

/// The series' colours: with the cache, without it.
const CACHED: Color = Color::Green;
const RECOMPUTED: Color = Color::Red;

/// Milliseconds per token after token 0 (the prompt's prefill), or `-`.
fn per_token(run: &[KvTimed]) -> String {
    let rest = run.get(1..).unwrap_or_default();
    if rest.is_empty() {
        "-".into()
    } else {
        format!("{:.1} ms", kv_total(rest) / rest.len() as f64 * 1e3)
    }
}

/// The lines above the chart: what runs, each run's progress, the totals.
fn summary(v: &KvCostView) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        tr_args(
            "kv-about",
            "The greedy reply to the context (at most { $n } tokens) with the KV cache (one decode per token), then without it (the whole sequence evaluated again before every token).",
            &[("n", &v.max_tokens)],
        ),
        theme::dim(),
    )];
    if let Some(e) = &v.error {
        lines.push(Line::from(tr_args(
            "kv-no-timing",
            "No timing: { $error }",
            &[("error", e)],
        )));
        return lines;
    }
    let (c, r) = (&v.runs.cached, &v.runs.recomputed);
    let prefill = |run: &[KvTimed]| format!("{:.1}", run.first().map_or(0.0, |t| t.seconds * 1e3));
    // The two runs' labels padded to one width (by display width: Chinese
    // is two columns a character), so their numbers line up.
    let (with_label, without_label) = (
        tr("kv-with-label", "with the KV cache:"),
        tr("kv-without-label", "without it:"),
    );
    let label_w = str_width(&with_label).max(str_width(&without_label)) + 1;
    lines.push(Line::styled(
        format!(
            "{}{}",
            pad_right(&with_label, label_w),
            tr_args(
                "kv-with-run",
                "{ $n } tokens, { $s } s · token 0 (the prompt's prefill) { $prefill } ms · then { $per } per token",
                &[
                    ("n", &c.len()),
                    ("s", &format!("{:.2}", kv_total(c))),
                    ("prefill", &prefill(c)),
                    ("per", &per_token(c)),
                ],
            )
        ),
        Style::new().fg(CACHED),
    ));
    lines.push(Line::styled(
        format!(
            "{}{}",
            pad_right(&without_label, label_w),
            tr_args(
                "kv-without-run",
                "{ $n } tokens, { $s } s · token 0 { $prefill } ms · then { $per } per token",
                &[
                    ("n", &r.len()),
                    ("s", &format!("{:.2}", kv_total(r))),
                    ("prefill", &prefill(r)),
                    ("per", &per_token(r)),
                ],
            )
        ),
        Style::new().fg(RECOMPUTED),
    ));
    let (with, without) = (kv_total(c), kv_total(r));
    let status = if v.done.is_some() && with > 0.0 {
        let same = match v.runs.first_difference() {
            None => tr("kv-same-tokens", "both runs wrote the same tokens"),
            Some((i, ..)) => tr_args(
                "kv-differ",
                "the runs differ from reply token { $i } on (a batch of many positions rounds differently from a decode of one: a near tie flipped)",
                &[("i", &i)],
            ),
        };
        lines.push(Line::from(tr_args(
            "kv-totals",
            "totals: { $with } s with the KV cache, { $without } s without · the cache makes it { $ratio }× faster",
            &[
                ("with", &format!("{with:.2}")),
                ("without", &format!("{without:.2}")),
                ("ratio", &format!("{:.1}", without / with)),
            ],
        )));
        same
    } else if v.cancelled {
        tr("kv-cancelled", "cancelled (Esc closes)")
    } else if v.done.is_some() {
        tr("kv-no-tokens", "done: no tokens")
    } else if r.is_empty() {
        tr(
            "kv-generating-cached",
            "generating with the KV cache… (Esc cancels)",
        )
    } else {
        tr(
            "kv-generating-recomputed",
            "generating again without it… (Esc cancels)",
        )
    };
    lines.push(Line::from(status));
    lines
}

/// The points of a run for the chart: (position, ms), token 0 (the
/// prompt's prefill, off the scale) left out.
fn points(run: &[KvTimed]) -> Vec<(f64, f64)> {
    run.iter()
        .skip(1)
        .map(|t| (t.position as f64, t.seconds * 1e3))
        .collect()
}

pub fn render(v: &KvCostView, color: bool, buf: &mut Buffer, area: Rect) {
    let r = centered(
        area,
        area.width.min(110),
        area.height.saturating_sub(2).max(8),
    );
    Clear.render(r, buf);
    let label = truncate(&v.label, 40);
    let title = if v.request.is_some() && !v.cancelled {
        tr_args(
            "kv-title-running",
            "what the KV cache saves · { $label } · Esc cancel",
            &[("label", &label)],
        )
    } else {
        tr_args(
            "kv-title-done",
            "what the KV cache saves · { $label } · Esc close",
            &[("label", &label)],
        )
    };
    let block = popup_block(format!(" {title} "), r.width);
    let inner = block.inner(r);
    block.render(r, buf);
    let [top, chart_area] =
        Layout::vertical([Constraint::Length(7), Constraint::Min(3)]).areas(inner);
    Paragraph::new(summary(v))
        .wrap(Wrap { trim: false })
        .render(top, buf);
    let (c, rc) = (points(&v.runs.cached), points(&v.runs.recomputed));
    if c.is_empty() && rc.is_empty() {
        return;
    }
    let xs = c.iter().chain(&rc).map(|p| p.0);
    let x0 = xs.clone().fold(f64::INFINITY, f64::min);
    let x1 = xs.fold(0.0, f64::max).max(x0 + 1.0);
    let y1 = c
        .iter()
        .chain(&rc)
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(0.1)
        * 1.05;
    // Without colours the series still differ: dots against braille.
    let style = |c: Color| {
        if color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    };
    // The unit and which series is which on their own rows above the plot:
    // the axis title ran into the plot at its top left, and ratatui's
    // legend box, hidden when it is wider than a share of the chart, left
    // a narrow chart without one.
    let caption = caption_lines(chart_area.width as usize, style(CACHED), style(RECOMPUTED));
    let [caption_area, chart_area] =
        Layout::vertical([Constraint::Length(caption.len() as u16), Constraint::Min(3)])
            .areas(chart_area);
    Paragraph::new(caption).render(caption_area, buf);
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(style(CACHED))
            .data(&c),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(style(RECOMPUTED))
            .data(&rc),
    ];
    let label = |x: f64| format!("{x:.0}");
    Chart::new(datasets)
        .x_axis(
            Axis::default()
                .title(tr(
                    "kv-axis-position",
                    "position (token 0, the prefill, left out)",
                ))
                .style(theme::dim())
                .bounds([x0, x1])
                .labels([label(x0), label((x0 + x1) / 2.0), label(x1)]),
        )
        .y_axis(
            Axis::default()
                .style(theme::dim())
                .bounds([0.0, y1])
                .labels([
                    "0".to_string(),
                    format!("{:.1}", y1 / 2.0),
                    format!("{y1:.1}"),
                ]),
        )
        .legend_position(None)
        .render(chart_area, buf);
}

/// The rows above the chart, `width` columns wide: the y axis's unit, then
/// each series' mark and name in its style (braille line: with the cache;
/// dots: without), on one row when they fit, else each on its own.
fn caption_lines(width: usize, cached: Style, recomputed: Style) -> Vec<Line<'static>> {
    let unit = Span::styled(
        format!("↑ {}", tr("kv-axis-ms", "ms per token")),
        theme::dim(),
    );
    let with = Span::styled(
        format!("⠒⠒ {}", tr("kv-legend-cached", "with KV cache")),
        cached,
    );
    let without = Span::styled(
        format!("• {}", tr("kv-legend-recomputed", "without (recomputed)")),
        recomputed,
    );
    let gap = || Span::raw("   ");
    let one = Line::from(vec![
        unit.clone(),
        gap(),
        with.clone(),
        gap(),
        without.clone(),
    ]);
    if one.width() <= width {
        return vec![one];
    }
    [unit, with, without]
        .into_iter()
        .map(|s| Line::from(Span::styled(truncate(&s.content, width), s.style)))
        .collect()
}
