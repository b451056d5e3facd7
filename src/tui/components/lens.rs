//! The layer lens popup: a grid of layers × the top candidates after each
//! layer (heat by probability, the model's own top-1 marked), where that
//! top-1 first appears and from which layer it stays; and the attention
//! view, a small box over the chat whose tokens are then coloured by how
//! much the selected layer's attention weighed each of them.

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::popup_block;
use crate::engine::LensRow;
use crate::i18n::{tr, tr_args};
use crate::text::{readable_piece, truncate};
use crate::tui::action::{Action, Context, lookup};
use crate::tui::layout::centered;
use crate::tui::outcome::Outcome;
use crate::tui::state::lens::LensView;
use crate::tui::state::{Popup, State};
use crate::tui::theme;
use crate::tui::wrap::wrap_plain;

/// A key in the lens ([`Context::Lens`]): the popup to keep open (None
/// closes it) and what should happen beyond it.
pub fn on_key(mut l: Box<LensView>, k: KeyEvent) -> (Option<Popup>, Outcome) {
    match lookup(Context::Lens, &k) {
        Some(Action::Close) => return (None, Outcome::Done),
        Some(Action::TokenLeft) => return (Some(Popup::Lens(l)), Outcome::LensStep(-1)),
        Some(Action::TokenRight) => return (Some(Popup::Lens(l)), Outcome::LensStep(1)),
        Some(Action::Up) if l.attention.is_some() => crate::tui::lens_view::move_layer(&mut l, -1),
        Some(Action::Down) if l.attention.is_some() => crate::tui::lens_view::move_layer(&mut l, 1),
        Some(Action::Up) => l.scroll = l.scroll.saturating_sub(1),
        Some(Action::Down) => l.scroll = l.scroll.saturating_add(1),
        Some(Action::ToggleAttention) => crate::tui::lens_view::toggle_attention(&mut l),
        Some(Action::NextHead) => crate::tui::lens_view::next_head(&mut l),
        _ => {}
    }
    (Some(Popup::Lens(l)), Outcome::Done)
}

/// The token's text as the grid shows it (quoted, escapes visible).
fn piece(s: &State, id: i32) -> String {
    s.model.vocab.as_ref().map_or_else(
        || format!("#{id}"),
        |v| format!("'{}'", readable_piece(v.bytes(id))),
    )
}

/// One grid row: the layer, each candidate with its p (heat by p; the
/// model's top-1 bold and underlined), the entropy.
fn row_line(
    s: &State,
    name: String,
    row: &LensRow,
    top1: Option<i32>,
    cell: usize,
) -> Line<'static> {
    let color = s.view.display.color;
    // Padded by display width: the model's row is named in Chinese too.
    let mut spans = vec![Span::styled(
        format!("{} ", crate::text::pad_left(&name, 6)),
        theme::dim(),
    )];
    for c in &row.top {
        let text = truncate(
            &format!("{:>3.0}% {}", c.p * 100.0, piece(s, c.id)),
            cell - 1,
        );
        let mut st = theme::heat_style(c.p, color);
        if Some(c.id) == top1 {
            st = st.add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
        }
        let pad = cell.saturating_sub(crate::text::str_width(&text));
        spans.push(Span::styled(text, st));
        spans.push(Span::raw(" ".repeat(pad)));
    }
    spans.push(Span::styled(format!("H {:.2}", row.entropy), theme::dim()));
    Line::from(spans)
}

/// Draws the lens over `area`: the grid, or the attention view's box.
pub fn render(s: &State, l: &LensView, buf: &mut Buffer, area: Rect) {
    if l.attention.is_some() {
        return render_attention(s, l, buf, area);
    }
    let w = area.width.min(100);
    let h = area.height.saturating_sub(2).max(3);
    let r = centered(area, w, h);
    super::clear_popup(r, buf);
    let block = popup_block(
        format!(
            " {} ",
            tr_args(
                "lens-title",
                "layer lens · { $token } · ←→ token · ↑↓ scroll · a attention · Esc",
                &[("token", &truncate(&l.label, 40))],
            )
        ),
        r.width,
    );
    let inner = block.inner(r);
    block.render(r, buf);
    let width = inner.width as usize;
    let mut lines: Vec<Line> = wrap_plain(
        &tr(
            "lens-explain",
            "The prediction after each layer: the residual stream there through the final norm and the output head; p over the whole vocabulary, H the entropy in bits.",
        ),
        width,
    )
    .into_iter()
    .map(|l| Line::styled(l, theme::dim()))
    .collect();
    let Some(res) = &l.result else {
        let text = match (&l.error, l.request) {
            (Some(e), _) => tr_args("lens-error", "No lens: { $error }", &[("error", e)]),
            (None, Some(_)) => tr("lens-running", "Running the model layer by layer…"),
            (None, None) => String::new(),
        };
        lines.push(Line::from(text));
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .render(inner, buf);
        return;
    };
    let top1 = res.model.top.first().map(|c| c.id);
    if let Some(id) = top1 {
        let f = res.top1_forms();
        let (first, from, listed) = (f.first, f.stays_from, f.listed_from);
        let n = res.layers.len();
        let at = |l: Option<u32>| {
            l.map_or_else(
                || tr("lens-never", "never"),
                |l| tr_args("lens-at-layer", "layer { $l }", &[("l", &l)]),
            )
        };
        let p = format!("{:.0}", res.model.top.first().map_or(0.0, |c| c.p) * 100.0);
        let summary = tr_args(
            "lens-summary",
            "The model's top-1 { $piece } ({ $p }%): in the top { $k } from { $listed }, top-1 first at { $first }, top-1 for good from { $from } (of { $n } layers).",
            &[
                ("piece", &piece(s, id)),
                ("p", &p),
                ("k", &crate::tui::lens_view::LENS_TOP_K),
                ("listed", &at(listed)),
                ("first", &at(first)),
                ("from", &at(from)),
                ("n", &n),
            ],
        );
        lines.extend(wrap_plain(&summary, width).into_iter().map(Line::from));
        if let Some(note) = drawn_from_note(s, l, res, id) {
            lines.extend(
                wrap_plain(&note, width)
                    .into_iter()
                    .map(|l| Line::styled(l, theme::dim())),
            );
        }
    }
    let cell =
        ((inner.width as usize).saturating_sub(15) / crate::tui::lens_view::LENS_TOP_K).max(8);
    let mut rows: Vec<Line> = res
        .layers
        .iter()
        .map(|row| row_line(s, format!("L{}", row.layer), row, top1, cell))
        .collect();
    rows.push(row_line(
        s,
        tr("lens-row-model", "model"),
        &res.model,
        top1,
        cell,
    ));
    let head = lines.len() as u16;
    let room = inner.height.saturating_sub(head) as usize;
    let max_scroll = rows.len().saturating_sub(room);
    let scroll = (l.scroll as usize).min(max_scroll);
    Paragraph::new(lines).render(
        Rect {
            height: head.min(inner.height),
            ..inner
        },
        buf,
    );
    let body = Rect {
        y: inner.y + head,
        height: inner.height.saturating_sub(head),
        ..inner
    };
    let shown: Vec<Line> = rows.into_iter().skip(scroll).take(room).collect();
    Paragraph::new(shown).render(body, buf);
    if scroll < max_scroll && body.height > 0 {
        buf.set_string(
            body.x + body.width.saturating_sub(10),
            body.y + body.height - 1,
            format!(" ↓ {} ", tr("lens-more", "more")),
            theme::dim(),
        );
    }
}

/// When the reply's own distribution at the lensed step (what the inspector
/// shows, computed as the reply was generated: one token at a time after a
/// prefill) gives the model's top-1 another p than this pass (the whole
/// text evaluated at once, in the lens's own batches), both numbers and why:
/// the float sums run in another order. `None` when they agree to 0.01
/// points or the step has no distribution kept.
fn drawn_from_note(
    s: &State,
    l: &LensView,
    res: &crate::engine::LensResult,
    id: i32,
) -> Option<String> {
    let dist = s.step(l.at)?.dist.as_ref()?;
    let drawn = dist.p(dist.top.iter().find(|c| c.id == id)?.logit);
    let here = res.model.top.first()?.p;
    ((drawn - here).abs() >= 1e-4).then(|| {
        tr_args(
            "lens-drawn-from",
            "The reply drew from { $drawn }% for { $piece } (computed token by token as it was written); this pass evaluates the text at once, which sums the same floats in another order: { $here }%.",
            &[
                ("drawn", &format!("{:.2}", drawn * 100.0)),
                ("piece", &piece(s, id)),
                ("here", &format!("{:.2}", here * 100.0)),
            ],
        )
    })
}

/// The attention view: a box at the bottom of the chat saying which layer
/// and head the chat's heat shows, and the tokens weighed most.
fn render_attention(s: &State, l: &LensView, buf: &mut Buffer, area: Rect) {
    let (Some(res), Some(sel)) = (&l.result, l.attention) else {
        return;
    };
    let Some(layer) = res.attention.get(sel.layer) else {
        return;
    };
    let w = area.width.min(100);
    let r = Rect::new(
        area.x,
        area.y + area.height.saturating_sub(9),
        w,
        5.min(area.height),
    );
    super::clear_popup(r, buf);
    let head = match sel.head {
        None => tr_args(
            "lens-heads-mean",
            "the mean of its { $n } heads",
            &[("n", &layer.heads.len())],
        ),
        Some(h) => tr_args(
            "lens-head",
            "head { $i } of { $n }",
            &[("i", &(h + 1)), ("n", &layer.heads.len())],
        ),
    };
    let block = popup_block(
        format!(
            " {} ",
            // Layers named as the grid names them (0-based `L<l>`, "of <n>
            // layers"), not by the attention list's length: a model may have
            // fewer attention layers than layers.
            tr_args(
                "lens-attention-title-layer",
                "attention · L{ $layer } of { $n } layers · { $head } · ↑↓ layer · h head · a grid · Esc",
                &[
                    ("layer", &layer.layer),
                    ("n", &res.layers.len()),
                    ("head", &head),
                ],
            )
        ),
        r.width,
    );
    let inner = block.inner(r);
    block.render(r, buf);
    let weights: &[f32] = match sel.head {
        None => &layer.mean,
        Some(h) => layer.heads.get(h).map_or(&[], Vec::as_slice),
    };
    let mut top: Vec<(usize, f32)> = weights.iter().copied().enumerate().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let ids = lensed_ids(s, l);
    let most: Vec<String> = top
        .iter()
        .take(4)
        .map(|&(pos, w)| {
            let t = ids.get(pos).filter(|&&id| id >= 0).map_or_else(
                || tr("lens-bos-or-template", "(BOS or template)"),
                |&id| piece(s, id),
            );
            format!("{t} @{pos} {:.0}%", w * 100.0)
        })
        .collect();
    let legend: Vec<Span> = theme::attention_legend(s.view.display.color)
        .into_iter()
        .map(|(t, st)| Span::styled(t, st))
        .collect();
    let from = tr_args(
        "lens-attention-from",
        "From { $label }'s position, the weight on each earlier token (the chat's colours): most on { $most }",
        &[("label", &l.label), ("most", &most.join(", "))],
    );
    // Broken where the text allows (Chinese between any two characters),
    // the legend kept on the last row.
    let room = (inner.height as usize).saturating_sub(1);
    let mut lines: Vec<Line> = wrap_plain(&from, inner.width as usize)
        .into_iter()
        .take(room)
        .map(Line::from)
        .collect();
    lines.push(Line::from(legend));
    Paragraph::new(lines).render(inner, buf);
}

/// The ids of the lensed context, position by position, from the chat's
/// tokens it maps to (template scaffolding has none: `#pos` is shown).
fn lensed_ids(s: &State, l: &LensView) -> Vec<i32> {
    l.places
        .iter()
        .map(|p| {
            p.and_then(|t| s.msg(t.msg)?.steps.get(t.step).map(|st| st.id))
                .unwrap_or(-1)
        })
        .collect()
}
