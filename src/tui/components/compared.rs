//! The inspector for a token of a compared reply: model A's top candidates
//! with bars and, next to each, model B's probability of the same token
//! (exact, over B's full vocabulary), B's own top-1 when it differs, and
//! KL(A‖B) at that position. Drawn from the comparison's row; no keys.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::{bar, pct};
use crate::conversation::Comparison;
use crate::engine::{CompareRow, TokenId};
use crate::i18n::{tr, tr_args};
use crate::text::{pad_right, str_width, truncate, visible_piece};
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
            Span::styled(format!("{} ", tr("compared-token", "token")), theme::dim()),
            Span::styled(piece(row.id), Style::default().add_modifier(Modifier::BOLD)),
            Span::styled(" · KL(A‖B) ", theme::dim()),
            Span::styled(
                tr_args(
                    "compared-nats",
                    "{ $kl } nats",
                    &[("kl", &format!("{kl:.4}"))],
                ),
                kl_style,
            ),
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
            Span::styled(
                format!("{} A ", tr("compared-top1-differs", "top-1 differs:")),
                theme::dim(),
            ),
            Span::raw(piece(row.top1[0])),
            Span::styled(" · B ", theme::dim()),
            Span::raw(piece(row.top1[1])),
            Span::raw(b_top.map_or(String::new(), |&(_, ln)| format!(" {}", pct(p(ln))))),
        ]));
    } else {
        out.push(Line::styled(
            tr_args(
                "compared-top1-agrees",
                "top-1 agrees: { $piece }",
                &[("piece", &piece(row.top1[0]))],
            ),
            theme::dim(),
        ));
    }
    out.push(Line::styled("─".repeat(width), theme::dim()));
    // Rows: rank, token, A's bar and p, B's bar and p of the same token.
    let bar_w = width.saturating_sub(3 + TOKEN_W + 2 * 8 + 2) / 2;
    let bar_w = bar_w.clamp(1, 16);
    // Padded by display width: a Chinese head is two columns a character.
    let head = format!(
        "{:<3}{} {:<bw$}{:>8} {:<bw$}{:>8}",
        "#",
        pad_right(&tr("compared-candidate", "candidate"), TOKEN_W),
        "A",
        "",
        "B",
        "",
        bw = bar_w
    );
    out.push(Line::styled(truncate(&head, width), theme::dim()));
    let a_top = row.top.first().map_or(&[][..], |t| t.as_slice());
    let b_of_a = row.ln_p_of_a_top.first().map_or(&[][..], |t| t.as_slice());
    let cells = Cells {
        bar_w,
        heat,
        token: row.id,
    };
    for (i, (&(id, ln_a), &ln_b)) in a_top.iter().zip(b_of_a).enumerate() {
        out.push(cells.line(i + 1, id, &piece(id), Some(p(ln_a)), p(ln_b), 0.0));
    }
    // B's own most likely tokens, with A's p where A's list has them (else
    // below A's last one: not reported).
    let b_top = row.top.get(1).map_or(&[][..], |t| t.as_slice());
    if !b_top.is_empty() && b_top.iter().map(|t| t.0).ne(a_top.iter().map(|t| t.0)) {
        out.push(Line::styled(
            tr("compared-b-own-top", "B's own top:"),
            theme::dim(),
        ));
        let a_floor = a_top.last().map_or(0.0, |&(_, l)| p(l));
        for (i, &(id, ln_b)) in b_top.iter().enumerate() {
            let pa = a_top.iter().find(|t| t.0 == id).map(|&(_, l)| p(l));
            out.push(cells.line(i + 1, id, &piece(id), pa, p(ln_b), a_floor));
        }
    }
    if a_top.is_empty() {
        out.push(Line::styled(
            tr(
                "compared-no-candidates",
                "No candidates were reported for this comparison.",
            ),
            theme::dim(),
        ));
    }
    out
}

/// How candidate rows are drawn.
struct Cells {
    bar_w: usize,
    heat: bool,
    /// The compared token (marked ▶).
    token: TokenId,
}

impl Cells {
    /// Rank, token, A's bar and p (`None`: below `a_floor`, not reported),
    /// B's bar and p.
    fn line(
        &self,
        rank: usize,
        id: TokenId,
        text: &str,
        pa: Option<f32>,
        pb: f32,
        a_floor: f32,
    ) -> Line<'static> {
        let style = |pr: f32| {
            if self.heat {
                Style::default().fg(theme::heat(pr))
            } else {
                Style::default()
            }
        };
        let pad = TOKEN_W.saturating_sub(str_width(text));
        let mark = if id == self.token { "▶" } else { " " };
        let strong = if id == self.token {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let (a_bar, a_text) = match pa {
            Some(pa) => (bar(pa, self.bar_w), pct(pa)),
            // Below A's last reported candidate ("<0.01%" is already a bound).
            None => {
                let floor = pct(a_floor);
                let text = if floor.starts_with('<') {
                    floor
                } else {
                    format!("<{floor}")
                };
                (" ".repeat(self.bar_w), text)
            }
        };
        Line::from(vec![
            Span::raw(format!("{rank:<2}{mark}")),
            Span::styled(format!("{text}{} ", " ".repeat(pad)), strong),
            Span::styled(a_bar, Style::default().fg(theme::ASSISTANT)),
            Span::styled(format!("{a_text:>8}"), pa.map_or_else(theme::dim, style)),
            Span::raw(" "),
            Span::styled(bar(pb, self.bar_w), Style::default().fg(Color::Cyan)),
            Span::styled(format!("{:>8}", pct(pb)), style(pb)),
        ])
    }
}
