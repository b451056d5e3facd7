//! What `tokenscope quantize` says about the file it made: the type asked
//! for is only a request. llama.cpp chooses a type per tensor, and a tensor
//! whose rows do not divide into the chosen type's blocks (a k-quant's 256
//! weights; SmolLM2's rows are 576 wide) is written as another type. So the
//! report gives the tensor types the file really holds, the fallbacks and
//! why, and warns when the result is larger than its input or the same mix
//! as a variant already there.

use std::fmt::Write as _;
use std::path::Path;

use super::{Fallback, Outcome, QuantType};
use crate::catalog::ModelCard;
use crate::commands::listing::{bpw_text, types_table};
use crate::i18n::{tr, tr_args};

/// The report: `summary` for standard output, `warnings` (one line each,
/// without the `warning: ` prefix) for standard error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub summary: String,
    pub warnings: Vec<String>,
}

/// The report on `outcome`, made from `input` with the type `asked`;
/// `others` are the models found (the output among them or not): the
/// variants of the same model among them are checked for the same mix.
pub(crate) fn report(
    input: &ModelCard,
    asked: &QuantType,
    outcome: &Outcome,
    others: &[ModelCard],
) -> Report {
    let out = &outcome.card;
    let mut summary = tr_args(
        "quantize-result",
        "{ $path }: { $quant }, { $size }, { $bpw } bits per weight (from { $from_quant }, { $from_size }, { $from_bpw } bits per weight)",
        &[
            (
                "path",
                &crate::text::escape_inline(&outcome.output.display().to_string()),
            ),
            ("quant", &out.quant_label()),
            ("size", &out.size_human()),
            ("bpw", &bpw_text(out)),
            ("from_quant", &input.quant_label()),
            ("from_size", &input.size_human()),
            ("from_bpw", &bpw_text(input)),
        ],
    );
    summary.push('\n');
    summary.push_str(&types_table(out, &tr("info-tensor-types", "tensor types:")));
    summary.push_str(&fallback_text(
        &outcome.fallbacks,
        out.mix.types.iter().map(|t| t.tensors).sum(),
    ));
    let mut warnings = Vec::new();
    if let Some(w) = larger_warning(input, asked, out, !outcome.fallbacks.is_empty()) {
        warnings.push(w);
    }
    warnings.extend(same_mix(out, others).into_iter().map(|other| {
        tr_args(
            "quantize-same-mix",
            "{ $file } holds the same tensor types as { $other } ({ $quant }), already in { $dir }: on this model the two are the same quantization, and one of the files is enough",
            &[
                ("file", &out.file_name),
                ("other", &other.file_name),
                ("quant", &other.quant_label()),
                (
                    "dir",
                    &crate::text::escape_inline(
                        &other
                            .path
                            .parent()
                            .unwrap_or(Path::new("."))
                            .display()
                            .to_string(),
                    ),
                ),
            ],
        )
    }));
    Report { summary, warnings }
}

/// "llama.cpp fell back … on 181 of 272 tensors", then a line per group;
/// empty without fallbacks.
fn fallback_text(fallbacks: &[Fallback], total: usize) -> String {
    let n: usize = fallbacks.iter().map(|f| f.tensors).sum();
    if n == 0 {
        return String::new();
    }
    let mut out = tr_args(
        "quantize-fell-back",
        "llama.cpp fell back to another type on { $n } of { $total } tensors: their rows do not divide into the blocks of the type chosen for them",
        &[("n", &n), ("total", &total)],
    );
    out.push('\n');
    for f in fallbacks {
        let _ = writeln!(
            out,
            "  {:>4} × {} → {} {}",
            f.tensors,
            f.wanted,
            f.written,
            tr_args(
                "quantize-fell-back-row",
                "(rows of { $row } weights, { $wanted }'s blocks hold { $block })",
                &[("row", &f.row), ("wanted", &f.wanted), ("block", &f.block)],
            )
        );
    }
    out
}

/// A warning when the result is larger than its input although the type
/// asked for has fewer bits per weight than the input.
fn larger_warning(
    input: &ModelCard,
    asked: &QuantType,
    out: &ModelCard,
    fell_back: bool,
) -> Option<String> {
    let in_bpw = input.bits_per_weight()?;
    if out.file_size <= input.file_size || asked.bpw >= in_bpw {
        return None;
    }
    let why = if fell_back {
        tr(
            "quantize-larger-fallbacks",
            ": llama.cpp's fallbacks (above) are larger types",
        )
    } else {
        String::new()
    };
    Some(tr_args(
        "quantize-larger",
        "the result ({ $size }) is larger than its input { $input } ({ $input_size }), though { $ty } has fewer bits per weight ({ $bpw } against { $input_bpw }){ $why }: keep the input, or choose a type whose blocks fit this model's rows",
        &[
            ("size", &out.size_human()),
            ("input", &input.file_name),
            ("input_size", &input.size_human()),
            ("ty", &asked.name),
            ("bpw", &format!("{:.2}", asked.bpw)),
            ("input_bpw", &format!("{in_bpw:.2}")),
            ("why", &why),
        ],
    ))
}

/// The variants of `card`'s model among `others` (itself left out) that
/// hold the same tensor types.
pub(crate) fn same_mix<'a>(card: &ModelCard, others: &'a [ModelCard]) -> Vec<&'a ModelCard> {
    let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    others
        .iter()
        .filter(|o| {
            o.variant_key().is_some()
                && o.variant_key() == card.variant_key()
                && !same_file(&o.path, &card.path)
                && o.mix.same_as(&card.mix)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::quantize::parse_type;
    use crate::gguf::testutil::{T, Val, build, s};

    /// A small model file of declared type `ftype` whose three weight
    /// matrices have the ggml types `types` (two with rows of 576 weights,
    /// one of 512), as llama.cpp writes them.
    fn model(dir: &Path, file: &str, ftype: u32, types: [u32; 3]) -> ModelCard {
        let bytes = build(
            &[
                ("general.architecture", s("llama")),
                ("general.file_type", Val::U32(ftype)),
                (
                    "tokenizer.ggml.tokens",
                    Val::Strs((0..64).map(|i| format!("t{i}")).collect()),
                ),
            ],
            &[
                T("token_embd.weight", &[576, 64], types[0]),
                T("blk.0.attn_q.weight", &[576, 64], types[1]),
                T("blk.0.ffn_down.weight", &[512, 64], types[2]),
                T("blk.0.attn_norm.weight", &[576], 0),
            ],
            32,
        );
        let path = dir.join(file);
        std::fs::write(&path, bytes).unwrap();
        crate::catalog::read_card(&path).unwrap()
    }

    fn outcome(card: &ModelCard, fallbacks: Vec<Fallback>) -> Outcome {
        Outcome {
            output: card.path.clone(),
            card: card.clone(),
            sizes: None,
            fallbacks,
        }
    }

    const Q4_1: u32 = 3;
    const Q4_0: u32 = 2;
    const Q5_0: u32 = 6;
    const Q3_K: u32 = 11;
    const Q4_K: u32 = 12;

    #[test]
    fn the_report_gives_the_types_written_the_fallbacks_and_a_variant_with_the_same_mix() {
        let dir = tempfile::tempdir().unwrap();
        let input = model(dir.path(), "m.Q4_1.gguf", 3, [Q4_1; 3]);
        let q2 = model(dir.path(), "m.Q2_K.gguf", 10, [Q4_0, Q4_0, Q3_K]);
        let q3s = model(dir.path(), "m.Q3_K_S.gguf", 11, [Q4_0, Q4_0, Q3_K]);
        let fallbacks = vec![Fallback {
            wanted: "Q2_K".into(),
            written: "Q4_0".into(),
            row: 576,
            block: 256,
            tensors: 2,
        }];
        let others = [input.clone(), q2.clone(), q3s.clone()];
        let r = report(
            &input,
            parse_type("Q2_K").unwrap(),
            &outcome(&q2, fallbacks),
            &others,
        );
        let first = r.summary.lines().next().unwrap();
        assert!(
            first.contains("m.Q2_K.gguf: Q2_K requested · mostly Q4_0")
                && first.contains(&format!("{} bits per weight", bpw_text(&q2)))
                && first.contains(&format!("(from Q4_1, {}", input.size_human())),
            "{}",
            r.summary
        );
        for want in [
            "tensor types:    Q4_0       2 tensors",
            "                 Q3_K       1 tensors",
            "llama.cpp fell back to another type on 2 of 4 tensors",
            "     2 × Q2_K → Q4_0 (rows of 576 weights, Q2_K's blocks hold 256)",
        ] {
            assert!(
                r.summary.contains(want),
                "missing {want:?} in\n{}",
                r.summary
            );
        }
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(
            r.warnings[0].starts_with(
                "m.Q2_K.gguf holds the same tensor types as m.Q3_K_S.gguf (Q3_K_S requested · mostly Q4_0)"
            ),
            "{:?}",
            r.warnings
        );
        assert_eq!(
            same_mix(&q2, &others),
            [&q3s],
            "itself and the input left out"
        );
    }

    #[test]
    fn a_result_larger_than_its_input_is_a_warning_when_a_smaller_type_was_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let input = model(dir.path(), "m.Q4_1.gguf", 3, [Q4_1; 3]);
        let q4km = model(dir.path(), "m.Q4_K_M.gguf", 15, [Q5_0, Q5_0, Q4_K]);
        assert!(q4km.file_size > input.file_size);
        let r = report(
            &input,
            parse_type("Q4_K_M").unwrap(),
            &outcome(&q4km, Vec::new()),
            &[],
        );
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(
            r.warnings[0].starts_with(&format!(
                "the result ({}) is larger than its input m.Q4_1.gguf ({}), though Q4_K_M has fewer bits per weight (4.50 against {})",
                q4km.size_human(),
                input.size_human(),
                bpw_text(&input)
            )),
            "{:?}",
            r.warnings
        );
        // An F16 is larger than the Q4_1 it holds, as asked: no warning.
        let f16 = model(dir.path(), "m.F16.gguf", 1, [1; 3]);
        let r = report(
            &input,
            parse_type("F16").unwrap(),
            &outcome(&f16, Vec::new()),
            &[],
        );
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert!(!r.summary.contains("fell back"), "{}", r.summary);
    }
}
