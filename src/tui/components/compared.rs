//! The inspector for a token of a compared reply: model A's top candidates
//! with bars and, next to each, model B's probability of the same token
//! (exact, over B's full vocabulary), B's own top-1 when it differs, and
//! KL(A‖B) at that position. Drawn from the comparison's row; no keys.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::inspector::{bar, pct};
use crate::conversation::Comparison;
use crate::engine::CompareRow;
use crate::text::{str_width, truncate, visible_piece};
use crate::tui::state::Message;
use crate::tui::theme;

/// Columns of a candidate's text.
const TOKEN_W: usize = 12;

/// The lines for reply token `row` of `m`, compared in `c`, `width` columns
/// wide; `heat`: probabilities and the KL in heatmap colours.
pub fn lines(
    m: &Message,
    c: &Comparison,
    row: &CompareRow,
    width: usize,
    heat: bool,
) -> Vec<Line<'static>> {
    let p = |ln: f64| ln.exp() as f32;
    let style = |pr: f32| {
        if heat {
            Style::default().fg(theme::heat(pr))
        } else {
            Style::default()
        }
    };
    let piece = |id| truncate(&visible_piece(&m.piece(id)), TOKEN_W);
    let kl = row.kl.first().copied().unwrap_or(0.0);
    let kl_style = if heat {
        Style::default().fg(theme::kl_heat(kl))
    } else {
        Style::default()
    }
    .add_modifier(Modifier::BOLD);
    let model = |label: &'static str, colour: Color, name: &str| {
        Line::from(vec![
            Span::styled(
                label,
                Style::default().fg(colour).add_modifier(Modifier::BOLD),
            ),
            Span::raw(truncate(name, width.saturating_sub(2))),
        ])
    };
    let mut out = vec![
        model("A ", theme::ASSISTANT, &c.model_a),
        model("B ", Color::Cyan, &c.model_b),
        Line::from(vec![
            Span::styled("token ", theme::dim()),
            Span::styled(piece(row.id), Style::default().add_modifier(Modifier::BOLD)),
            Span::styled(" · KL(A‖B) ", theme::dim()),
            Span::styled(format!("{kl:.4} nats"), kl_style),
        ]),
        Line::from(vec![
            Span::styled("p A ", theme::dim()),
            Span::styled(pct(p(row.ln_p[0])), style(p(row.ln_p[0]))),
            Span::styled(" · B ", theme::dim()),
            Span::styled(pct(p(row.ln_p[1])), style(p(row.ln_p[1]))),
        ]),
    ];
    // B's own most likely token, when it is not A's.
    if row.top1[0] != row.top1[1] {
        let b_top = row.top.get(1).and_then(|t| t.first());
        out.push(Line::from(vec![
            Span::styled("top-1 differs: A ", theme::dim()),
            Span::raw(piece(row.top1[0])),
            Span::styled(" · B ", theme::dim()),
            Span::raw(piece(row.top1[1])),
            Span::raw(b_top.map_or(String::new(), |&(_, ln)| format!(" {}", pct(p(ln))))),
        ]));
    } else {
        out.push(Line::styled(
            format!("top-1 agrees: {}", piece(row.top1[0])),
            theme::dim(),
        ));
    }
    out.push(Line::styled("─".repeat(width), theme::dim()));
    // Rows: rank, token, A's bar and p, B's bar and p of the same token.
    let bar_w = width.saturating_sub(3 + TOKEN_W + 2 * 8 + 2) / 2;
    let bar_w = bar_w.clamp(1, 16);
    let head = format!(
        "{:<3}{:<tw$} {:<bw$}{:>8} {:<bw$}{:>8}",
        "#",
        "candidate",
        "A",
        "",
        "B",
        "",
        tw = TOKEN_W,
        bw = bar_w
    );
    out.push(Line::styled(truncate(&head, width), theme::dim()));
    let a_top = row.top.first().map_or(&[][..], |t| t.as_slice());
    let b_of_a = row.ln_p_of_a_top.first().map_or(&[][..], |t| t.as_slice());
    for (i, (&(id, ln_a), &ln_b)) in a_top.iter().zip(b_of_a).enumerate() {
        let (pa, pb) = (p(ln_a), p(ln_b));
        let text = piece(id);
        let pad = TOKEN_W.saturating_sub(str_width(&text));
        let mark = if id == row.id { "▶" } else { " " };
        let line = Line::from(vec![
            Span::raw(format!("{:<2}{mark}", i + 1)),
            Span::styled(
                format!("{text}{} ", " ".repeat(pad)),
                if id == row.id {
                    Style::default().add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                },
            ),
            Span::styled(bar(pa, bar_w), style(pa).fg(theme::ASSISTANT)),
            Span::styled(format!("{:>8}", pct(pa)), style(pa)),
            Span::raw(" "),
            Span::styled(bar(pb, bar_w), Style::default().fg(Color::Cyan)),
            Span::styled(format!("{:>8}", pct(pb)), style(pb)),
        ]);
        out.push(line);
    }
    if a_top.is_empty() {
        out.push(Line::styled(
            "No candidates were reported for this comparison.",
            theme::dim(),
        ));
    }
    out
}
