//! The bench's tables in the interface language: a model's row label and
//! a head padded by display width, so that a Chinese head (two columns a
//! character) stays over its column while the English stays byte for byte
//! what it was (the README's speed tables are pasted from it).

use crate::i18n::{tr, tr_args};
use crate::text::{pad_left, pad_right as pad};

/// A model's label in the bench's tables: its name, quantization and
/// vocabulary in thousands of tokens ("SmolLM2 135M Instruct (Q4_1, 49k
/// vocab)"), in the interface language.
pub(crate) fn model_label(name: &str, quant: &str, n_vocab: u32) -> String {
    tr_args(
        "bench-model-label",
        "{ $name } ({ $quant }, { $k }k vocab)",
        &[("name", &name), ("quant", &quant), ("k", &(n_vocab / 1000))],
    )
}

/// A bench table's head: the first column left-aligned, the others right-
/// aligned, each padded to its width by display width (a Chinese character
/// is two columns), one space between; `cols` are (text, width).
pub(crate) fn head(cols: &[(String, usize)]) -> String {
    cols.iter()
        .enumerate()
        .map(|(i, (text, w))| {
            if i == 0 {
                pad(text, *w)
            } else {
                pad_left(text, *w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A row of the generation table: the model's label, prompt tokens per
/// second, generated tokens per second with the inspector on and off, the
/// inspector's µs per token and its share of a token's time (%).
pub(crate) fn generation_row(
    label: &str,
    prompt_tps: f64,
    on_tps: f64,
    off_tps: f64,
    inspector_us: f64,
    overhead: f64,
) -> String {
    format!(
        "{} {prompt_tps:>9.1} {on_tps:>12.1} {off_tps:>12.1} {inspector_us:>13.1} {overhead:>9.2}%",
        pad(label, 44)
    )
}

/// The generation table's columns (head, width): prompt and generation
/// speed with the inspector on and off, and the inspector's cost.
pub(crate) fn generation_cols() -> Vec<(String, usize)> {
    vec![
        (tr("bench-col-model", "model"), 44),
        (tr("bench-col-prompt-rate", "prompt/s"), 9),
        (tr("bench-col-gen-insp", "gen/s insp."), 12),
        (tr("bench-col-gen-off", "gen/s off"), 12),
        (tr("bench-col-inspector-us", "inspector µs"), 13),
        (tr("bench-col-overhead", "overhead"), 10),
    ]
}

/// The columns (head, width) of the engine on a thread against the engine
/// in its process: load, time to first token, generation speed.
pub(crate) fn process_cols() -> Vec<(String, usize)> {
    vec![
        (tr("bench-col-model", "model"), 44),
        (tr("bench-col-load-thread", "load thr"), 9),
        (tr("bench-col-load-process", "load proc"), 9),
        (tr("bench-col-ttft-thread", "TTFT thr"), 9),
        (tr("bench-col-ttft-process", "TTFT proc"), 9),
        (tr("bench-col-gen-thread", "gen/s thr"), 11),
        (tr("bench-col-gen-process", "gen/s proc"), 11),
        (tr("bench-col-ratio", "ratio"), 7),
    ]
}

/// The columns (head, width) of step mode and branching: the decode step,
/// a step to its token, a branch to its first token, tokens re-evaluated.
pub(crate) fn step_cols() -> Vec<(String, usize)> {
    vec![
        (tr("bench-col-model", "model"), 44),
        (tr("bench-col-decode-ms", "decode ms"), 10),
        (tr("bench-col-step-ms", "step→token ms"), 13),
        (tr("bench-col-branch-ms", "branch→1st ms"), 13),
        (tr("bench-col-reevaluated", "re-eval. before"), 15),
    ]
}

/// The columns (head, width) of scoring a text against prefilling it, and
/// of the inspector's cost per decoded token.
pub(crate) fn score_cols() -> Vec<(String, usize)> {
    vec![
        (tr("bench-col-model", "model"), 44),
        (tr("bench-col-tokens", "tokens"), 7),
        (tr("bench-col-prefill-rate", "prefill/s"), 10),
        (tr("bench-col-score-rate", "score/s"), 10),
        (tr("bench-col-ratio", "ratio"), 6),
        (tr("bench-col-bound", "bound"), 6),
        (tr("bench-col-decode-ms", "decode ms"), 9),
        (tr("bench-col-top10-us", "top10 µs"), 10),
        (tr("bench-col-top256-us", "top256 µs"), 10),
        (tr("bench-col-decode-share", "+% dec."), 8),
    ]
}

/// The columns (head, width) of teacher forcing against one token at a
/// time, and of the full-vocabulary KL's cost.
pub(crate) fn compare_cols() -> Vec<(String, usize)> {
    vec![
        (tr("bench-col-model", "model"), 44),
        (tr("bench-col-tokens", "tokens"), 7),
        (tr("bench-col-forced-rate", "forced/s"), 10),
        (tr("bench-col-one-by-one-rate", "1-by-1/s"), 10),
        (tr("bench-col-speedup", "speedup"), 8),
        (tr("bench-col-prefill-rate", "prefill/s"), 10),
        (tr("bench-col-ceiling", "ceiling"), 8),
        (tr("bench-col-forcing-ms", "forcing ms"), 10),
        (tr("bench-col-kl-ms", "KL ms"), 8),
        (tr("bench-col-kl-share", "KL/force"), 9),
    ]
}

/// The columns (head, width) of `n` rollouts of `m` tokens against one
/// greedy reply (the first column names the section).
pub(crate) fn rollouts_cols(n: usize, m: usize) -> Vec<(String, usize)> {
    vec![
        (
            tr_args(
                "bench-rollouts-head",
                "rollouts ({ $n } × { $m } tokens, greedy)",
                &[("n", &n), ("m", &m)],
            ),
            44,
        ),
        (tr("bench-col-one-reply-ms", "one reply ms"), 14),
        (tr("bench-col-all-rollouts-ms", "all rollouts ms"), 16),
        (tr("bench-col-ratio", "ratio"), 7),
        (tr("bench-col-step-rows-ms", "ms per step: 1 / 5 rows"), 22),
    ]
}

/// The columns (head, width) of tokenscope against llama-server: the
/// prompt's size, prompt speed on each side and their ratio, then decode
/// speed on each side and their ratio.
pub(crate) fn peer_cols() -> Vec<(String, usize)> {
    let (server, ratio) = (
        tr("bench-col-server", "server"),
        tr("bench-col-ratio", "ratio"),
    );
    vec![
        (tr("bench-col-model", "model"), 40),
        (tr("bench-col-prompt", "prompt"), 7),
        (tr("bench-col-prompt-rate", "prompt/s"), 10),
        (server.clone(), 10),
        (ratio.clone(), 7),
        (tr("bench-col-decode-rate", "decode/s"), 10),
        (server, 10),
        (ratio, 7),
    ]
}

/// The head of [`peer_cols`]: the prompt's group and the decode's (right-
/// aligned, as its numbers are), three spaces between them.
pub(crate) fn peer_head() -> String {
    let cols = peer_cols();
    let (prompt, decode) = cols.split_at(5);
    let decode: Vec<String> = decode.iter().map(|(t, w)| pad_left(t, *w)).collect();
    format!("{}   {}", head(prompt), decode.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, with_lang};
    use crate::text::str_width;

    /// Every table's columns in the language in use.
    fn all_cols() -> Vec<Vec<(String, usize)>> {
        vec![
            generation_cols(),
            process_cols(),
            step_cols(),
            score_cols(),
            compare_cols(),
            rollouts_cols(5, 24),
            peer_cols(),
        ]
    }

    /// The character of `line` that covers display column `col` (from 0).
    fn at_col(line: &str, col: usize) -> Option<char> {
        let mut c = 0;
        for ch in line.chars() {
            let w = str_width(&ch.to_string());
            if col < c + w {
                return Some(ch);
            }
            c += w;
        }
        None
    }

    /// Whether `line` has a field ending at each right-aligned column's
    /// end: text in the column's last display cell, a space or the end of
    /// the line after it.
    fn ends_at_columns(line: &str, cols: &[(String, usize)]) -> bool {
        let mut end = cols[0].1;
        cols[1..].iter().all(|(_, w)| {
            end += 1 + w;
            at_col(line, end - 1).is_some_and(|c| c != ' ')
                && at_col(line, end).is_none_or(|c| c == ' ')
        })
    }

    #[test]
    fn the_english_heads_are_what_they_were() {
        let heads: Vec<String> =
            with_lang(Lang::En, || all_cols().iter().map(|c| head(c)).collect());
        assert_eq!(
            heads[0],
            format!(
                "{:<44} {:>9} {:>12} {:>12} {:>13} {:>10}",
                "model", "prompt/s", "gen/s insp.", "gen/s off", "inspector µs", "overhead"
            )
        );
        assert_eq!(
            heads[1],
            format!(
                "{:<44} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>7}",
                "model",
                "load thr",
                "load proc",
                "TTFT thr",
                "TTFT proc",
                "gen/s thr",
                "gen/s proc",
                "ratio"
            )
        );
        assert_eq!(
            heads[2],
            format!(
                "{:<44} {:>10} {:>13} {:>13} {:>15}",
                "model", "decode ms", "step→token ms", "branch→1st ms", "re-eval. before"
            )
        );
        assert_eq!(
            heads[3],
            format!(
                "{:<44} {:>7} {:>10} {:>10} {:>6} {:>6} {:>9} {:>10} {:>10} {:>8}",
                "model",
                "tokens",
                "prefill/s",
                "score/s",
                "ratio",
                "bound",
                "decode ms",
                "top10 µs",
                "top256 µs",
                "+% dec."
            )
        );
        assert_eq!(
            heads[4],
            format!(
                "{:<44} {:>7} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>9}",
                "model",
                "tokens",
                "forced/s",
                "1-by-1/s",
                "speedup",
                "prefill/s",
                "ceiling",
                "forcing ms",
                "KL ms",
                "KL/force"
            )
        );
        assert_eq!(
            heads[5],
            format!(
                "{:<44} {:>14} {:>16} {:>7} {:>22}",
                "rollouts (5 × 24 tokens, greedy)",
                "one reply ms",
                "all rollouts ms",
                "ratio",
                "ms per step: 1 / 5 rows"
            )
        );
    }

    #[test]
    fn the_peer_head_is_what_it_was_in_english_and_fits_in_chinese() {
        assert_eq!(
            with_lang(Lang::En, peer_head),
            format!(
                "{:<40} {:>7} {:>10} {:>10} {:>7}   {:>10} {:>10} {:>7}",
                "model", "prompt", "prompt/s", "server", "ratio", "decode/s", "server", "ratio"
            )
        );
        // Same width in both: every Chinese head fits its column.
        assert_eq!(
            str_width(&with_lang(Lang::Zh, peer_head)),
            str_width(&with_lang(Lang::En, peer_head))
        );
    }

    #[test]
    fn every_chinese_head_fits_its_column_and_is_chinese() {
        let (zh, en) = (with_lang(Lang::Zh, all_cols), with_lang(Lang::En, all_cols));
        for (z, e) in zh.iter().zip(&en) {
            for ((text, w), (english, _)) in z.iter().zip(e) {
                // Wider than its column, a head would push the ones after it
                // off the numbers below them.
                assert!(str_width(text) <= *w, "{text:?} is wider than {w} columns");
                // Symbols stay (KL ms is the same in both).
                if english != "KL ms" {
                    assert_ne!(text, english, "{english:?} is not translated");
                }
            }
        }
    }

    #[test]
    fn the_generation_table_s_heads_end_over_their_numbers_in_both_languages() {
        for lang in [Lang::En, Lang::Zh] {
            let (h, row) = with_lang(lang, || {
                (
                    head(&generation_cols()),
                    generation_row(
                        &model_label("SmolLM2 135M Instruct", "Q4_1", 49_152),
                        1234.5,
                        98.7,
                        101.2,
                        12.3,
                        0.12,
                    ),
                )
            });
            // The heads and the numbers end at the end of their columns
            // (counted from the widths, not from the head's own padding).
            let cols = with_lang(lang, generation_cols);
            assert!(ends_at_columns(&h, &cols), "{lang:?}: {h}");
            assert!(ends_at_columns(&row, &cols), "{lang:?}:\n{h}\n{row}");
            assert_eq!(str_width(&h), str_width(&row), "{lang:?}:\n{h}\n{row}");
            if lang == Lang::Zh {
                assert!(
                    row.starts_with("SmolLM2 135M Instruct（Q4_1，词表 49k）"),
                    "{row}"
                );
            } else {
                assert_eq!(
                    row,
                    format!(
                        "{:<44} {:>9.1} {:>12.1} {:>12.1} {:>13.1} {:>9.2}%",
                        "SmolLM2 135M Instruct (Q4_1, 49k vocab)", 1234.5, 98.7, 101.2, 12.3, 0.12
                    )
                );
            }
        }
    }
}
