//! The model picker popup: the model files found, filtered as one types;
//! Enter loads one. Variants of one model (same architecture, parameters and
//! vocabulary: quantizations of it) are listed together, the original first
//! (see [`crate::tui::models::group_variants`]), each with its type as the
//! tensors really are, bits per weight and size.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::popup_block;
use crate::catalog::params_human;
use crate::i18n::{tr, tr_args};
use crate::tensor_map::{Kind, KindShare};
use crate::text::{pad_left, pad_right, truncate};
use crate::tui::action::{Action, Context, lookup};
use crate::tui::layout::centered;
use crate::tui::models::ModelEntry;
use crate::tui::outcome::Outcome;
use crate::tui::state::{Picker, Popup, State};
use crate::tui::theme;
use crate::tui::wrap::Tag;

/// A key in the picker ([`Context::Picker`]); returns the popup to keep
/// open (None closes it) and the model to load (or compare with).
pub fn on_key(s: &mut State, mut p: Picker, k: KeyEvent) -> (Option<Popup>, Outcome) {
    let visible = p.visible(&s.model.files.models);
    let n = visible.len();
    match lookup(Context::Picker, &k) {
        Some(Action::Close) => return (None, Outcome::Done),
        Some(Action::Confirm) => {
            let Some(&i) = visible.get(p.selected) else {
                return (Some(Popup::Picker(p)), Outcome::Done);
            };
            let entry = s.model.files.models[i].clone();
            if let Some(c) = p.compare.clone() {
                // Compare mode: a refusal keeps the picker open on the list.
                if let Some(why) = c.refusal(&entry) {
                    s.error(tr_args(
                        "picker-cannot-compare",
                        "{ $file } cannot be compared with this model: { $why }.",
                        &[("file", &entry.file_name), ("why", &why)],
                    ));
                    return (Some(Popup::Picker(p)), Outcome::Done);
                }
                return (None, Outcome::CompareWith(c, Box::new(entry)));
            }
            if s.model
                .info
                .as_ref()
                .is_some_and(|m| m.model == entry.model)
                && s.session.load.is_none()
            {
                s.info(tr_args(
                    "picker-already-loaded",
                    "{ $name } is already loaded.",
                    &[("name", &entry.name)],
                ));
                return (None, Outcome::Done);
            }
            return (None, Outcome::LoadModel(entry.model));
        }
        Some(Action::Up) => p.selected = p.selected.saturating_sub(1),
        Some(Action::Down) => p.selected = (p.selected + 1).min(n.saturating_sub(1)),
        Some(Action::PageUp) => p.selected = p.selected.saturating_sub(10),
        Some(Action::PageDown) => p.selected = (p.selected + 10).min(n.saturating_sub(1)),
        Some(Action::Home) => p.selected = 0,
        Some(Action::End) => p.selected = n.saturating_sub(1),
        Some(Action::Rescan) => return (Some(Popup::Picker(p)), Outcome::Rescan),
        Some(Action::ClearText) => {
            p.filter.clear();
            p.selected = 0;
        }
        Some(Action::DeleteBack) => {
            p.filter.pop();
            p.selected = 0;
        }
        Some(Action::EditText) => {
            if let KeyCode::Char(c) = k.code {
                p.filter.push(c);
                p.selected = 0;
            }
        }
        _ => {}
    }
    (Some(Popup::Picker(p)), Outcome::Done)
}

/// A paste: its first line goes to the filter.
pub fn paste(p: &mut Picker, first_line: &str) {
    p.filter.push_str(first_line);
    p.selected = 0;
}

/// The picker's tag on a model file that crashed the engine process this session.
pub fn crashed_tag() -> String {
    tr("picker-tag-crashed", "✗ crashed llama.cpp")
}

/// The picker's tag on a model file llama.cpp refused to load this session.
pub fn load_failed_tag() -> String {
    tr("picker-tag-load-failed", "✗ failed to load")
}

/// Compare mode with no other variant of the model in use among the files
/// found: how to make one.
fn compare_hint(s: &State, p: &Picker) -> Option<String> {
    let c = p.compare.as_ref()?;
    if s.model.files.scanning || s.model.files.models.iter().any(|m| c.rank(m) == 0) {
        return None;
    }
    Some(tr(
        "picker-compare-no-variant",
        "No other variant of this model was found in the models directory: make one with \
         `tokenscope quantize` (see the README's Quantization lab), or compare the model with \
         itself (KL 0: a check).",
    ))
}

/// Draws the picker over `area`.
pub fn render(s: &State, p: &Picker, buf: &mut Buffer, area: Rect) {
    let message = compare_hint(s, p).or_else(|| p.message.clone());
    let msg_rows = if message.is_some() { 3 } else { 0 };
    let visible = p.visible(&s.model.files.models);
    let map = visible
        .get(p.selected)
        .map(|&i| tensor_map_lines(&s.model.files.models[i]))
        .unwrap_or_default();
    let map_rows = map.len() as u16;
    let want = (s.model.files.models.len() as u16)
        .saturating_add(6 + msg_rows + map_rows)
        .clamp(10, 26 + map_rows);
    let r = centered(area, 104.min(area.width), want.min(area.height));
    super::clear_popup(r, buf);
    let what = if p.compare.is_some() {
        tr("picker-compare-with", "compare with…")
    } else {
        tr("picker-models", "models")
    };
    let title = if s.model.files.scanning {
        format!(" {what} · {} ", tr("picker-scanning", "scanning…"))
    } else {
        format!(
            " {what} · {} ",
            tr_args(
                "picker-found",
                "{ $n } found",
                &[("n", &s.model.files.models.len())],
            )
        )
    };
    let block = popup_block(title, r.width);
    let inner = block.inner(r);
    block.render(r, buf);
    if inner.area() == 0 {
        return;
    }
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if let Some(m) = &message {
        let mut b = crate::tui::wrap::Block::new(w);
        b.push_str(m, Tag::Text);
        for l in &b.lines {
            let text: String = l.iter().map(|c| c.text.as_str()).collect();
            lines.push(Line::styled(text, Style::default().fg(Color::Yellow)));
        }
    }
    lines.push(Line::from(vec![
        Span::styled(format!("{} ", tr("picker-filter", "filter:")), theme::dim()),
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
    let mut rows: Vec<Line> = Vec::new();
    // The type column as wide as the widest type shown ("Q2_K requested ·
    // mostly Q4_0" says what llama.cpp really wrote), within reason.
    let qw = visible
        .iter()
        .map(|&i| crate::text::str_width(s.model.files.models[i].quant_shown()))
        .max()
        .unwrap_or(0)
        .clamp(8, 30);
    // The source column ("tokenscope", "ollama", "huggingface"…) only as
    // wide as its widest entry: empty for a server's models.
    let cw = visible
        .iter()
        .map(|&i| crate::text::str_width(&s.model.files.models[i].source))
        .max()
        .unwrap_or(0)
        .clamp(6, 11);
    let (aw, pw, bw, sw) = (10, 6, 5, 10);
    // The type gives way before the name goes under 12 columns: a row
    // wider than the popup would lose its size (80 columns, a long type).
    let qw = qw.min(w.saturating_sub(2 + cw + aw + pw + bw + sw + 6 + 12).max(8));
    let name_w = w.saturating_sub(2 + cw + aw + pw + qw + bw + sw + 6).max(8);
    let fmt_row = |mark: &str,
                   name: &str,
                   source: &str,
                   arch: &str,
                   params: &str,
                   quant: &str,
                   bpw: &str,
                   size: &str| {
        // Padded by display width: a Chinese head (or name) is two
        // columns a character.
        let left = |t: &str, w: usize| pad_right(&truncate(t, w), w);
        let right = |t: &str, w: usize| pad_left(&truncate(t, w), w);
        format!(
            "{}{} {} {} {} {} {} {}",
            pad_right(mark, 2),
            left(name, name_w),
            left(source, cw),
            left(arch, aw),
            right(params, pw),
            left(quant, qw),
            right(bpw, bw),
            right(size, sw),
        )
    };
    rows.push(Line::styled(
        fmt_row(
            "",
            &tr("picker-col-name", "name"),
            &tr("picker-col-source", "source"),
            &tr("picker-col-arch", "arch"),
            &tr("picker-col-params", "params"),
            &tr("picker-col-quant", "quant"),
            &tr("picker-col-bpw", "bpw"),
            &tr("picker-col-size", "size"),
        ),
        theme::dim(),
    ));
    if visible.is_empty() {
        let text = if s.model.files.models.is_empty() {
            if s.model.files.scanning {
                tr("picker-looking", "Looking for models…")
            } else {
                tr_args(
                    "picker-no-files",
                    "No *.gguf files in { $dirs }. Run `tokenscope fetch-demos` for the demo models.",
                    &[("dirs", &s.places.searched())],
                )
            }
        } else {
            tr_args(
                "picker-no-match",
                "No model matches { $filter }.",
                &[("filter", &format!("{:?}", p.filter))],
            )
        };
        rows.push(Line::styled(text, theme::dim()));
    }
    // The selected model's tensor map under the list, when there is room
    // for it and at least three rows of the list.
    let map_h = if table.height >= map_rows + 5 {
        map_rows
    } else {
        0
    };
    let list_h = (table.height.saturating_sub(map_h) as usize)
        .saturating_sub(2)
        .max(1);
    let first = p.selected.saturating_sub(list_h.saturating_sub(1));
    for (vi, &i) in visible.iter().enumerate().skip(first).take(list_h) {
        let m = &s.model.files.models[i];
        let current = s
            .model
            .info
            .as_ref()
            .is_some_and(|cur| cur.model == m.model);
        let loading = s.session.load.as_ref().is_some_and(|l| l.model == m.model);
        let refusal = p.compare.as_ref().and_then(|c| c.refusal(m));
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
            format!(
                "{}{}",
                pad_right(mark, 2),
                truncate(&name, w.saturating_sub(2))
            )
        } else if let Some(why) = refusal {
            // Compare mode: a model that cannot be compared with the one in use.
            if vi != p.selected {
                style = style.fg(theme::DIM);
            }
            let name = format!("{} — ✗ {why}", m.file_name);
            format!(
                "{}{}",
                pad_right(mark, 2),
                truncate(&name, w.saturating_sub(2))
            )
        } else if s.model.files.crashed.contains_key(&m.model)
            || s.model.files.load_failed.contains_key(&m.model)
        {
            if vi != p.selected {
                style = style.fg(Color::Red);
            }
            let tag = if s.model.files.crashed.contains_key(&m.model) {
                crashed_tag()
            } else {
                load_failed_tag()
            };
            let name = format!("{} — {tag}", m.file_name);
            format!(
                "{}{}",
                pad_right(mark, 2),
                truncate(&name, w.saturating_sub(2))
            )
        } else {
            // A variant of the model in the row above it (same architecture,
            // parameters and vocabulary): drawn under it.
            let variant = m.group.is_some()
                && vi > 0
                && visible
                    .get(vi - 1)
                    .is_some_and(|&prev| s.model.files.models[prev].group == m.group);
            // Files whose headers give the same name (copies, variants
            // made elsewhere) are told apart by their file names.
            let shared = s
                .model
                .files
                .models
                .iter()
                .filter(|o| o.name == m.name)
                .nth(1)
                .is_some();
            let shown = if shared {
                format!("{} ({})", m.name, m.file_name)
            } else {
                m.name.clone()
            };
            let name = if variant {
                format!("└ {shown}")
            } else {
                shown
            };
            // Two decimals, as `quantize` and `info` print the same number.
            let bpw = m.bpw.map(|b| format!("{b:.2}")).unwrap_or_default();
            // A server's model has no architecture to show: it is remote.
            let arch = if m.model.is_remote() {
                tr("picker-arch-remote", "remote")
            } else {
                m.arch.clone()
            };
            fmt_row(
                mark,
                &name,
                &m.source,
                &arch,
                &m.params,
                m.quant_shown(),
                &bpw,
                &m.size,
            )
        };
        rows.push(Line::styled(line, style));
    }
    // The selected file crashed the engine: why, instead of the key hint.
    let crash = visible.get(p.selected).and_then(|&i| {
        let model = &s.model.files.models[i].model;
        s.model
            .files
            .crashed
            .get(model)
            .or_else(|| s.model.files.load_failed.get(model))
    });
    let (hint, hint_style) = match crash {
        Some(reason) => (format!("✗ {reason}"), theme::error()),
        None if p.compare.is_some() => (
            tr(
                "picker-compare-keys",
                "Enter compare (● the model in use: A) · ↑↓ select · type to filter · Esc close",
            ),
            theme::dim(),
        ),
        None => (
            tr(
                "picker-keys",
                "Enter load · ↑↓ select · type to filter · F5 rescan · Esc close",
            ),
            theme::dim(),
        ),
    };
    let body_h = table.height.saturating_sub(1 + map_h);
    Paragraph::new(rows).render(Rect::new(table.x, table.y, table.width, body_h), buf);
    if map_h > 0 {
        let at = Rect::new(table.x, table.y + body_h, table.width, map_h);
        Paragraph::new(map).render(at, buf);
    }
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

/// Columns of a tensor map row's bar: its share of the file.
const MAP_BAR: usize = 20;

/// The selected model's tensor map, a few rows (under 80 columns): where
/// its parameters live (embedding, attention, feed-forward, the norms
/// together, the output head), each kind's parameters, storage types and
/// share of the file as a bar. Empty for a model without one (a server's,
/// a file that could not be read).
fn tensor_map_lines(m: &ModelEntry) -> Vec<Line<'static>> {
    if m.kinds.is_empty() || m.error.is_some() {
        return Vec::new();
    }
    let file = m.file_bytes.max(1) as f64;
    let norms: Vec<&KindShare> = m
        .kinds
        .iter()
        .filter(|k| {
            matches!(
                k.kind,
                Kind::AttentionNorm | Kind::FeedForwardNorm | Kind::OtherNorms | Kind::FinalNorm
            )
        })
        .collect();
    let row = |label: &str, params: u64, types: &str, bytes: u64| {
        let share = bytes as f64 / file;
        let cols = ((share * MAP_BAR as f64).round() as usize).min(MAP_BAR);
        let pct = if share > 0.0 && share < 0.0005 {
            "<0.1%".to_string()
        } else {
            format!("{:.1}%", share * 100.0)
        };
        Line::from(vec![
            Span::raw(format!(
                "  {} {:>5}  {:<14} ",
                pad_right(&truncate(label, 17), 17),
                params_human(params),
                truncate(types, 14)
            )),
            Span::styled("█".repeat(cols), Style::default().fg(Color::Cyan)),
            Span::styled("░".repeat(MAP_BAR - cols), theme::dim()),
            Span::raw(format!(" {pct:>6}")),
        ])
    };
    let mut out = vec![Line::styled(
        tr_args(
            "picker-map-title",
            "tensor map of { $name } (share of the file):",
            &[("name", &m.name)],
        ),
        theme::dim(),
    )];
    for k in &m.kinds {
        if matches!(
            k.kind,
            Kind::Embedding | Kind::Attention | Kind::FeedForward | Kind::Output | Kind::Other
        ) {
            out.push(row(&kind_label(k.kind), k.params, &k.types_text(), k.bytes));
        }
        if k.kind == Kind::FeedForward && !norms.is_empty() {
            let params = norms.iter().map(|k| k.params).sum();
            let bytes = norms.iter().map(|k| k.bytes).sum();
            let types = norms.first().map(|k| k.types_text()).unwrap_or_default();
            out.push(row(&tr("picker-map-norms", "norms"), params, &types, bytes));
        }
    }
    if m.tied_output {
        out.push(Line::styled(
            format!(
                "  {} {}",
                pad_right(&kind_label(Kind::Output), 17),
                tr(
                    "picker-map-tied",
                    "tied to the embedding (its rows give the logits)"
                )
            ),
            theme::dim(),
        ));
    }
    out
}

/// A tensor map row's label in the interface's language (the English is
/// [`Kind::label`], which `info --tensors` prints).
fn kind_label(k: Kind) -> String {
    match k {
        Kind::Embedding => tr("picker-map-embedding", "embedding"),
        Kind::Attention => tr("picker-map-attention", "attention q/k/v/o"),
        Kind::FeedForward => tr("picker-map-feed-forward", "feed-forward"),
        Kind::Output => tr("picker-map-output", "output head"),
        Kind::Other => tr("picker-map-other", "other"),
        // The norms are one row of the map ("norms").
        k => k.label().to_owned(),
    }
}
