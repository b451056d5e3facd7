//! `tokenscope bench --kv`: what the KV cache saves. The engine generates
//! the same greedy reply with the cache and without it
//! ([`Command::KvCost`](crate::engine::Command::KvCost)); this prints the
//! totals, whether both runs wrote the same tokens (else the first
//! difference), and the time per token against position as a text chart.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::{Result, bail};

use super::super::headless::{request_for, start_engine_at, wait_for};
use crate::catalog::ModelCard;
use crate::config::Config;
use crate::engine::{
    Event, KV_COST_MAX_TOKENS, KvCostRequest, KvCostRuns as KvCost, KvTimed as Timed, ModelRef,
    Placement, Vocab, kv_total as total,
};
use crate::i18n::{tr, tr_args};
use crate::text::{pad_left, pad_right as pad, str_width};

/// The time per token against position, as rows of text: positions in at
/// most `rows` buckets of equal width, each with the mean time per token
/// with the cache (`█`) drawn over the one without (`░`), scaled to `width`
/// columns for the largest mean, then both in milliseconds.
pub(crate) fn chart(cost: &KvCost, rows: usize, width: usize) -> String {
    let n = cost.cached.len().max(cost.recomputed.len());
    let mut out = String::new();
    if n == 0 {
        return out;
    }
    let per = n.div_ceil(rows.max(1));
    let mean = |run: &[Timed], range: std::ops::Range<usize>| {
        let part = &run[range.start.min(run.len())..range.end.min(run.len())];
        (!part.is_empty()).then(|| total(part) / part.len() as f64)
    };
    let buckets: Vec<(std::ops::Range<usize>, Option<f64>, Option<f64>)> = (0..n)
        .step_by(per)
        .map(|a| {
            let r = a..(a + per).min(n);
            (
                r.clone(),
                mean(&cost.cached, r.clone()),
                mean(&cost.recomputed, r),
            )
        })
        .collect();
    let top = buckets
        .iter()
        .flat_map(|(_, a, b)| [*a, *b])
        .flatten()
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let first = cost
        .cached
        .first()
        .or(cost.recomputed.first())
        .map_or(0, |t| t.position);
    let _ = writeln!(
        out,
        "{}  {}  {} {}",
        pad_left(&tr("bench-kv-col-position", "position"), 9),
        pad(
            &tr(
                "bench-kv-col-chart",
                "ms per token: █ with KV cache, ░ without"
            ),
            width
        ),
        pad_left(&tr("bench-kv-col-with", "with"), 9),
        pad_left(&tr("bench-kv-col-without", "without"), 9)
    );
    for (r, a, b) in buckets {
        let cols = |s: Option<f64>| s.map_or(0, |s| ((s / top) * width as f64).round() as usize);
        let (ca, cb) = (cols(a), cols(b));
        let mut bar = String::new();
        for i in 0..width {
            bar.push(if i < ca.max(1).min(width) && a.is_some() {
                '█'
            } else if i < cb {
                '░'
            } else {
                ' '
            });
        }
        let ms = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{:.1}", s * 1e3));
        let _ = writeln!(
            out,
            "{:>9}  {bar}  {:>9} {:>9}",
            format!("{}-{}", first + r.start, first + r.end - 1),
            ms(a),
            ms(b)
        );
    }
    out
}

/// The report of one model's run: the totals and ratio, the agreement, the chart.
pub(crate) fn report(card: &ModelCard, cost: &KvCost, vocab: &Vocab) -> String {
    let mut out = String::new();
    let n_prompt = cost.cached.first().map_or(0, |t| t.position);
    let (with, without) = (total(&cost.cached), total(&cost.recomputed));
    let _ = writeln!(
        out,
        "{}",
        tr_args(
            "bench-kv-title",
            "what the KV cache saves: { $name } ({ $quant }), a prompt of { $prompt } tokens, { $n } tokens generated greedily",
            &[
                ("name", &card.name),
                ("quant", &card.quant_label()),
                ("prompt", &n_prompt),
                ("n", &cost.cached.len()),
            ],
        )
    );
    let per = |run: &[Timed]| {
        let rest = run.get(1..).unwrap_or_default();
        if rest.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1} ms", total(rest) / rest.len() as f64 * 1e3)
        }
    };
    let first = |run: &[Timed]| run.first().map_or(0.0, |t| t.seconds * 1e3);
    // The two labels padded to one width as displayed (a Chinese
    // character is two columns), so that the totals line up.
    let (with_label, without_label) = (
        tr("bench-kv-with", "with the KV cache:"),
        tr("bench-kv-without", "without it:"),
    );
    let label_w = str_width(&with_label).max(str_width(&without_label)) + 2;
    let _ = writeln!(
        out,
        "  {}{}",
        pad(&with_label, label_w),
        tr_args(
            "bench-kv-with-totals",
            "{ $s } s in all · token 0 (the prompt's prefill) { $first } ms · then { $per } per token",
            &[
                ("s", &format!("{with:>8.2}")),
                ("first", &format!("{:.1}", first(&cost.cached))),
                ("per", &per(&cost.cached)),
            ],
        )
    );
    let _ = writeln!(
        out,
        "  {}{}",
        pad(&without_label, label_w),
        tr_args(
            "bench-kv-without-totals",
            "{ $s } s in all · token 0 { $first } ms · then { $per } per token (the whole sequence again each time)",
            &[
                ("s", &format!("{without:>8.2}")),
                ("first", &format!("{:.1}", first(&cost.recomputed))),
                ("per", &per(&cost.recomputed)),
            ],
        )
    );
    if with > 0.0 {
        let _ = writeln!(
            out,
            "  {}",
            tr_args(
                "bench-kv-faster",
                "the cache makes it { $x }× faster",
                &[("x", &format!("{:.1}", without / with))],
            )
        );
    }
    match cost.first_difference() {
        None if cost.cached.len() == cost.recomputed.len() => {
            let _ = writeln!(
                out,
                "  {}",
                tr_args(
                    "bench-kv-same",
                    "both runs wrote the same { $n } tokens",
                    &[("n", &cost.cached.len())],
                )
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  {}",
                tr_args(
                    "bench-kv-agree",
                    "the runs agree as far as both went ({ $a } and { $b } tokens)",
                    &[("a", &cost.cached.len()), ("b", &cost.recomputed.len())],
                )
            );
        }
        Some((i, a, b)) => {
            let _ = writeln!(
                out,
                "  {}",
                tr_args(
                    "bench-kv-differ",
                    "the runs differ from reply token { $i } on: { $a } with the cache, { $b } without (a batch of many positions rounds differently from a decode of one; a near tie flipped)",
                    &[
                        ("i", &i),
                        ("a", &format!("{:?}", vocab.readable(a))),
                        ("b", &format!("{:?}", vocab.readable(b))),
                    ],
                )
            );
        }
    }
    out.push_str(&chart(cost, 16, 40));
    out
}

/// Runs the comparison on each of `models` for `tokens` tokens (capped at
/// [`KV_COST_MAX_TOKENS`]) and prints each report to `out`. Errors: a
/// model that does not load, a run that fails.
pub(crate) fn run(
    models: &[ModelCard],
    config: &Config,
    tokens: u32,
    placement: &Placement,
    out: &mut impl Write,
) -> Result<()> {
    if tokens == 0 {
        bail!(tr_args(
            "bench-kv-zero-tokens",
            "--tokens 0: ask for 1 to { $max } tokens",
            &[("max", &KV_COST_MAX_TOKENS)],
        ));
    }
    let tokens = tokens.min(KV_COST_MAX_TOKENS);
    for card in models {
        let mut engine = start_engine_at(placement, ModelRef::Local(card.path.clone()), config)?;
        let messages = request_for(config, super::PROMPT, false).messages;
        let id = engine.next_request();
        engine.handle.kv_cost(
            id,
            0,
            KvCostRequest {
                messages,
                raw: false,
                max_tokens: tokens,
            },
        );
        let mut cost = KvCost::default();
        let end = wait_for(&engine.rx, id, |ev| {
            cost.push(ev);
            Ok(())
        })?;
        if !matches!(end, Event::Done { .. }) {
            bail!("the KV-cache comparison on {} was cancelled", card.name);
        }
        writeln!(out, "{}", report(card, &cost, &engine.vocab))?;
        engine.handle.shutdown();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(position: usize, id: crate::engine::TokenId, ms: f64) -> Timed {
        Timed {
            position,
            id,
            seconds: ms / 1e3,
        }
    }

    #[test]
    fn the_chart_has_a_row_per_bucket_scaled_to_the_slowest() {
        let cost = KvCost {
            cached: (0..8).map(|i| timed(10 + i, 1, 1.0)).collect(),
            recomputed: (0..8).map(|i| timed(10 + i, 1, 2.0 + i as f64)).collect(),
        };
        let c = chart(&cost, 4, 10);
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 5, "{c}");
        assert!(lines[1].trim_start().starts_with("10-11"), "{c}");
        assert!(lines[4].trim_start().starts_with("16-17"), "{c}");
        // The slowest bucket fills the width; the cached bar is its share.
        assert!(lines[4].contains("█░░░░░░░░░"), "{c}");
        assert!(lines[4].ends_with("1.0       8.5"), "{c}");
        assert_eq!(cost.first_difference(), None);
        assert!((total(&cost.recomputed) - 0.044).abs() < 1e-12);
    }

    #[test]
    fn the_first_difference_is_found() {
        let cost = KvCost {
            cached: vec![timed(3, 1, 1.0), timed(4, 2, 1.0), timed(5, 3, 1.0)],
            recomputed: vec![timed(3, 1, 1.0), timed(4, 7, 1.0)],
        };
        assert_eq!(cost.first_difference(), Some((1, 2, 7)));
    }
}
