//! The KV-cache view popup: the time per token against position of the
//! same greedy reply generated with the KV cache and without it, as a live
//! chart (two series, a legend), with both runs' totals and their ratio.

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Chart, Clear, Dataset, GraphType, Paragraph, Widget, Wrap};

use super::popup_block;
use crate::engine::{KvTimed, kv_total};
use crate::text::truncate;
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
        format!(
            "The greedy reply to the context (at most {} tokens) with the KV cache (one decode per token), then without it (the whole sequence evaluated again before every token).",
            v.max_tokens
        ),
        theme::dim(),
    )];
    if let Some(e) = &v.error {
        lines.push(Line::from(format!("No timing: {e}")));
        return lines;
    }
    let (c, r) = (&v.runs.cached, &v.runs.recomputed);
    let prefill = |run: &[KvTimed]| run.first().map_or(0.0, |t| t.seconds * 1e3);
    lines.push(Line::styled(
        format!(
            "with the KV cache: {} tokens, {:.2} s · token 0 (the prompt's prefill) {:.1} ms · then {} per token",
            c.len(),
            kv_total(c),
            prefill(c),
            per_token(c)
        ),
        Style::new().fg(CACHED),
    ));
    lines.push(Line::styled(
        format!(
            "without it:        {} tokens, {:.2} s · token 0 {:.1} ms · then {} per token",
            r.len(),
            kv_total(r),
            prefill(r),
            per_token(r)
        ),
        Style::new().fg(RECOMPUTED),
    ));
    let (with, without) = (kv_total(c), kv_total(r));
    let status = if v.done.is_some() && with > 0.0 {
        let same = match v.runs.first_difference() {
            None => "both runs wrote the same tokens".to_string(),
            Some((i, ..)) => format!(
                "the runs differ from reply token {i} on (a batch of many positions rounds differently from a decode of one: a near tie flipped)"
            ),
        };
        lines.push(Line::from(format!(
            "totals: {with:.2} s with the KV cache, {without:.2} s without · the cache makes it {:.1}× faster",
            without / with
        )));
        same
    } else if v.cancelled {
        "cancelled (Esc closes)".to_string()
    } else if v.done.is_some() {
        "done: no tokens".to_string()
    } else if r.is_empty() {
        "generating with the KV cache… (Esc cancels)".to_string()
    } else {
        "generating again without it… (Esc cancels)".to_string()
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
    let title = if v.request.is_some() && !v.cancelled {
        " what the KV cache saves · {} · Esc cancel "
    } else {
        " what the KV cache saves · {} · Esc close "
    };
    let block = popup_block(title.replace("{}", &truncate(&v.label, 40)));
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
    let datasets = vec![
        Dataset::default()
            .name("with KV cache")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(style(CACHED))
            .data(&c),
        Dataset::default()
            .name("without (recomputed)")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(style(RECOMPUTED))
            .data(&rc),
    ];
    let label = |x: f64| format!("{x:.0}");
    Chart::new(datasets)
        .x_axis(
            Axis::default()
                .title("position (token 0, the prefill, left out)")
                .style(theme::dim())
                .bounds([x0, x1])
                .labels([label(x0), label((x0 + x1) / 2.0), label(x1)]),
        )
        .y_axis(
            Axis::default()
                .title("ms per token")
                .style(theme::dim())
                .bounds([0.0, y1])
                .labels([
                    "0".to_string(),
                    format!("{:.1}", y1 / 2.0),
                    format!("{y1:.1}"),
                ]),
        )
        .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft))
        .render(chart_area, buf);
}
