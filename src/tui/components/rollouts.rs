//! The rollouts popup: each of the top candidates at a token's step,
//! continued side by side (one block per rollout: its rank, the first token
//! with its p, the joint log-probability and mean p, then the continuation
//! coloured by each token's p as the chat's heat is); Enter keeps the one
//! selected as a branch of the reply.

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use super::popup_block;
use crate::engine::Rollout;
use crate::i18n::{tr, tr_args};
use crate::text::{escape_inline, pad_right, truncate, visible_piece};
use crate::tui::action::{Action, Context, lookup};
use crate::tui::effect::Effect;
use crate::tui::layout::centered;
use crate::tui::outcome::Outcome;
use crate::tui::state::rollouts::RolloutsView;
use crate::tui::state::{Popup, State};
use crate::tui::theme;
use crate::tui::wrap::wrap_plain;

/// A key in the rollouts ([`Context::Rollouts`]): the popup to keep open
/// (None closes it) and what should happen beyond it.
pub fn on_key(mut r: Box<RolloutsView>, k: KeyEvent) -> (Option<Popup>, Outcome) {
    let n = r.result.as_ref().map_or(0, Vec::len);
    match lookup(Context::Rollouts, &k) {
        Some(Action::Close) => {
            let fx: Vec<Effect> = r.request.map(Effect::Cancel).into_iter().collect();
            return (None, Outcome::Effects(fx));
        }
        Some(Action::Up) => r.selected = r.selected.saturating_sub(1),
        Some(Action::Down) if n > 0 => r.selected = (r.selected + 1).min(n - 1),
        Some(Action::Confirm) if r.no_branch.is_none() => {
            if let Some(chosen) = r.chosen() {
                let outcome = Outcome::BranchRollout {
                    at: r.at,
                    rollout: Box::new(chosen.clone()),
                    seed: r.seed,
                };
                return (None, outcome);
            }
        }
        _ => {}
    }
    (Some(Popup::Rollouts(r)), Outcome::Done)
}

/// One rollout's block: a header (the selection mark, rank, first token
/// with its p, joint log-probability, mean p, length), then its text, each
/// token coloured by its p.
fn block_lines(s: &State, r: &Rollout, selected: bool, width: usize) -> Vec<Line<'static>> {
    let color = s.view.display.color;
    let Some(first) = r.tokens.first() else {
        return vec![];
    };
    let mark = if selected { "▶" } else { " " };
    // A token that only begins a character writes nothing by itself (the
    // character is whole on the token that ends it): its bytes name it.
    let name = if first.text.is_empty() {
        s.model
            .vocab
            .as_ref()
            .map_or_else(|| visible_piece(""), |v| v.readable(first.id))
    } else {
        visible_piece(&first.text)
    };
    // Padded by display width so that the figures after it line up.
    let head = format!(
        "{mark} #{} {:>6.2}% {}  {}",
        r.rank,
        first.p * 100.0,
        pad_right(&truncate(&format!("'{name}'"), 14), 14),
        tr_args(
            "rollouts-row",
            "ln P { $ll } nats · mean p { $mean } · { $n } tokens",
            &[
                ("ll", &format!("{:.2}", r.log_likelihood)),
                ("mean", &format!("{:.2}", r.mean_p)),
                ("n", &r.tokens.len()),
            ],
        )
    );
    let head_style = if selected {
        theme::selected()
    } else {
        theme::title()
    };
    let mut lines = vec![Line::styled(truncate(&head, width), head_style)];
    let mut spans = vec![Span::raw("   ")];
    for t in &r.tokens {
        spans.push(Span::styled(
            escape_inline(&t.text),
            theme::heat_style(t.p, color),
        ));
    }
    lines.push(Line::from(spans));
    lines
}

/// Draws the rollouts over `area`.
pub fn render(s: &State, r: &RolloutsView, buf: &mut Buffer, area: Rect) {
    let w = area.width.min(110);
    let h = area.height.saturating_sub(2).max(3);
    let rect = centered(area, w, h);
    Clear.render(rect, buf);
    let block = popup_block(
        format!(
            " {} ",
            tr_args(
                "rollouts-title",
                "rollouts · { $label } · ↑↓ select · Enter branch · Esc",
                &[("label", &truncate(&r.label, 40))],
            )
        ),
        rect.width,
    );
    let inner = block.inner(rect);
    block.render(rect, buf);
    let width = inner.width as usize;
    let about = tr_args(
        "rollouts-about",
        "Each of the top { $n } candidates here, continued for up to { $m } tokens with the reply's \
         sampling (rank r draws with seed { $seed } + r − 1; temperature 0: greedy). ln P: the joint \
         log-probability, Σ ln p in nats (natural log); mean p: the tokens' mean probability; \
         colours: each token's p, as the chat's heat.",
        &[("n", &r.n), ("m", &r.m), ("seed", &r.seed)],
    );
    let mut lines: Vec<Line> = wrap_plain(&about, width)
        .into_iter()
        .map(|l| Line::styled(l, theme::dim()))
        .collect();
    lines.push(Line::from(""));
    let body: Vec<Line> = match (&r.result, &r.error, r.request) {
        (Some(rs), _, _) => {
            let mut body: Vec<Line> = rs
                .iter()
                .enumerate()
                .flat_map(|(i, ro)| block_lines(s, ro, i == r.selected, width))
                .collect();
            body.push(Line::from(""));
            let foot = match (&r.no_branch, r.chosen()) {
                (Some(why), _) => tr_args(
                    "rollouts-no-branch",
                    "No branch here: { $why }.",
                    &[("why", why)],
                ),
                (None, Some(c)) => tr_args(
                    "rollouts-enter-keeps",
                    "Enter keeps rollout #{ $rank } as a branch of the reply ([ ] switch versions).",
                    &[("rank", &c.rank)],
                ),
                (None, None) => String::new(),
            };
            body.push(Line::styled(foot, theme::dim()));
            body
        }
        (None, Some(e), _) => vec![Line::from(tr_args(
            "rollouts-none",
            "No rollouts: { $error }",
            &[("error", e)],
        ))],
        (None, None, Some(_)) => vec![Line::from(tr("rollouts-rolling-out", "rolling out…"))],
        (None, None, None) => vec![],
    };
    lines.extend(body);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}
