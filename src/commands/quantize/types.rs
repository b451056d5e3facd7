//! The quantization types `quantize` offers ([`TYPES`], with their bits per
//! weight), llama.cpp's aliases for them, the ones it refuses and why, and
//! the `--type` parser and `--type help` text built from those tables.

use super::QuantizeError;

/// A quantization type llama.cpp can write without an importance matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantType {
    /// The name as llama.cpp's `llama-quantize` spells it (`Q4_K_M`).
    pub name: &'static str,
    /// llama.cpp's `llama_ftype` value.
    pub ftype: u32,
    /// Bits per weight of the main tensor type (block scales included).
    /// Mixes (`_S`, `_M`, `_L`, and `Q2_K`) keep some tensors at a larger
    /// type, and a tensor whose rows do not divide into the type's blocks is
    /// written as another type (llama.cpp's fallback), so the file's average
    /// ([`crate::catalog::bits_per_weight`]) differs: see [`report`].
    pub bpw: f64,
}

impl QuantType {
    /// What it is, in a few words, in the interface language.
    pub fn about(&self) -> String {
        use crate::i18n::tr;
        match self.name {
            "F32" => tr("quant-about-f32", "32-bit float, no loss (large)"),
            "F16" => tr("quant-about-f16", "16-bit float"),
            "BF16" => tr("quant-about-bf16", "bfloat16"),
            "Q8_0" => tr("quant-about-q8-0", "8-bit, nearly lossless"),
            "Q6_K" => tr("quant-about-q6-k", "6-bit k-quant"),
            "Q5_K_M" => tr(
                "quant-about-q5-k-m",
                "5-bit k-quant mix (some tensors Q6_K)",
            ),
            "Q5_K_S" => tr("quant-about-q5-k-s", "5-bit k-quant"),
            "Q5_1" => tr("quant-about-q5-1", "5-bit, legacy, with offsets"),
            "Q5_0" => tr("quant-about-q5-0", "5-bit, legacy"),
            "Q4_K_M" => tr(
                "quant-about-q4-k-m",
                "4-bit k-quant mix (some tensors Q6_K): the usual choice",
            ),
            "Q4_K_S" => tr("quant-about-q4-k-s", "4-bit k-quant"),
            "Q4_1" => tr("quant-about-q4-1", "4-bit, legacy, with offsets"),
            "Q4_0" => tr("quant-about-q4-0", "4-bit, legacy"),
            "IQ4_NL" => tr("quant-about-iq4-nl", "4-bit, non-linear levels"),
            "IQ4_XS" => tr(
                "quant-about-iq4-xs",
                "4-bit, non-linear levels, smaller scales",
            ),
            "Q3_K_L" => tr(
                "quant-about-q3-k-l",
                "3-bit k-quant mix (some tensors Q5_K)",
            ),
            "Q3_K_M" => tr(
                "quant-about-q3-k-m",
                "3-bit k-quant mix (some tensors Q4_K/Q5_K)",
            ),
            "Q3_K_S" => tr("quant-about-q3-k-s", "3-bit k-quant"),
            "Q2_K" => tr(
                "quant-about-q2-k",
                "2-bit k-quant mix (some tensors Q3_K/Q4_K): large loss",
            ),
            _ => String::new(),
        }
    }
}

/// The types offered, largest first. Types that need an importance matrix
/// (IQ1/IQ2/IQ3, Q2_K_S) are left out: `tokenscope` has no way to make one
/// ([`NOT_OFFERED`] says why each is refused).
pub const TYPES: &[QuantType] = &[
    QuantType {
        name: "F32",
        ftype: 0,
        bpw: 32.0,
    },
    QuantType {
        name: "F16",
        ftype: 1,
        bpw: 16.0,
    },
    QuantType {
        name: "BF16",
        ftype: 32,
        bpw: 16.0,
    },
    QuantType {
        name: "Q8_0",
        ftype: 7,
        bpw: 8.5,
    },
    QuantType {
        name: "Q6_K",
        ftype: 18,
        bpw: 6.5625,
    },
    QuantType {
        name: "Q5_K_M",
        ftype: 17,
        bpw: 5.5,
    },
    QuantType {
        name: "Q5_K_S",
        ftype: 16,
        bpw: 5.5,
    },
    QuantType {
        name: "Q5_1",
        ftype: 9,
        bpw: 6.0,
    },
    QuantType {
        name: "Q5_0",
        ftype: 8,
        bpw: 5.5,
    },
    QuantType {
        name: "Q4_K_M",
        ftype: 15,
        bpw: 4.5,
    },
    QuantType {
        name: "Q4_K_S",
        ftype: 14,
        bpw: 4.5,
    },
    QuantType {
        name: "Q4_1",
        ftype: 3,
        bpw: 5.0,
    },
    QuantType {
        name: "Q4_0",
        ftype: 2,
        bpw: 4.5,
    },
    QuantType {
        name: "IQ4_NL",
        ftype: 25,
        bpw: 4.5,
    },
    QuantType {
        name: "IQ4_XS",
        ftype: 30,
        bpw: 4.25,
    },
    QuantType {
        name: "Q3_K_L",
        ftype: 13,
        bpw: 3.4375,
    },
    QuantType {
        name: "Q3_K_M",
        ftype: 12,
        bpw: 3.4375,
    },
    QuantType {
        name: "Q3_K_S",
        ftype: 11,
        bpw: 3.4375,
    },
    QuantType {
        name: "Q2_K",
        ftype: 10,
        bpw: 2.625,
    },
];

/// llama.cpp's other names for offered types, as its `llama-quantize` takes
/// them: (alias, type).
pub const ALIASES: &[(&str, &str)] = &[("Q3_K", "Q3_K_M"), ("Q4_K", "Q4_K_M"), ("Q5_K", "Q5_K_M")];

/// Why a type llama.cpp knows is not offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// It needs an importance matrix, which tokenscope cannot make.
    NeedsImatrix,
    /// A ternary type, only for models trained with ternary weights.
    Ternary,
    /// Not offered here (not tried with tokenscope).
    NotOffered,
}

/// llama.cpp's types that `quantize` refuses, and why.
pub const NOT_OFFERED: &[(&str, Refusal)] = &[
    ("IQ1_S", Refusal::NeedsImatrix),
    ("IQ1_M", Refusal::NeedsImatrix),
    ("IQ2_XXS", Refusal::NeedsImatrix),
    ("IQ2_XS", Refusal::NeedsImatrix),
    ("IQ2_S", Refusal::NeedsImatrix),
    ("IQ2_M", Refusal::NeedsImatrix),
    ("IQ3_XXS", Refusal::NeedsImatrix),
    // Its attention and feed-forward tensors are IQ3_XXS.
    ("IQ3_XS", Refusal::NeedsImatrix),
    ("Q2_K_S", Refusal::NeedsImatrix),
    ("TQ1_0", Refusal::Ternary),
    ("TQ2_0", Refusal::Ternary),
    ("IQ3_S", Refusal::NotOffered),
    ("IQ3_M", Refusal::NotOffered),
    ("MXFP4_MOE", Refusal::NotOffered),
    ("COPY", Refusal::NotOffered),
];

/// The type named `name` (case-insensitive), or by one of llama.cpp's
/// [`ALIASES`] (`Q4_K` is Q4_K_M).
///
/// # Errors
/// [`QuantizeError::NeedsImatrix`], [`QuantizeError::Ternary`] or
/// [`QuantizeError::NotOffered`] for a llama.cpp type refused here (see
/// [`NOT_OFFERED`]), [`QuantizeError::UnknownType`] for any other name;
/// each lists the types offered.
pub fn parse_type(name: &str) -> Result<&'static QuantType, QuantizeError> {
    let want = name.trim();
    let by_name = |n: &str| TYPES.iter().find(|t| t.name.eq_ignore_ascii_case(n));
    let alias = ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(want))
        .map(|(_, t)| *t);
    if let Some(t) = by_name(want).or_else(|| alias.and_then(by_name)) {
        return Ok(t);
    }
    let known = known_types();
    Err(
        match NOT_OFFERED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(want))
        {
            Some((n, Refusal::NeedsImatrix)) => QuantizeError::NeedsImatrix {
                given: n.to_string(),
                known,
            },
            Some((n, Refusal::Ternary)) => QuantizeError::Ternary {
                given: n.to_string(),
                known,
            },
            Some((n, Refusal::NotOffered)) => QuantizeError::NotOffered {
                given: n.to_string(),
                known,
            },
            None => QuantizeError::UnknownType {
                given: name.to_string(),
                known,
            },
        },
    )
}

/// The offered types, then the aliases: "F32, F16, …, Q2_K (also Q3_K =
/// Q3_K_M, Q4_K = Q4_K_M, Q5_K = Q5_K_M)".
fn known_types() -> String {
    format!(
        "{} (also {})",
        TYPES.iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
        aliases_text()
    )
}

/// "Q3_K = Q3_K_M, Q4_K = Q4_K_M, Q5_K = Q5_K_M".
fn aliases_text() -> String {
    ALIASES
        .iter()
        .map(|(a, t)| format!("{a} = {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--type help`: the types with their bits per weight, one a line.
pub(crate) fn types_help() -> String {
    use crate::i18n::{tr, tr_args};
    let mut out = tr(
        "quant-help-head",
        "Quantization types (bits per weight of the main tensor type; mixes keep some tensors larger):",
    );
    out.push('\n');
    for t in TYPES {
        out.push_str(&format!(
            "  {:<7} {:>6.2} bpw  {}\n",
            t.name,
            t.bpw,
            t.about()
        ));
    }
    out.push('\n');
    out.push_str(&tr_args(
        "quant-help-aliases",
        "Aliases (as llama.cpp's llama-quantize takes them): { $aliases }.",
        &[("aliases", &aliases_text())],
    ));
    let refused = |r: Refusal| {
        NOT_OFFERED
            .iter()
            .filter(|(_, why)| *why == r)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push('\n');
    out.push_str(&tr("quant-help-not-offered", "Not offered:"));
    for line in [
        tr_args(
            "quant-help-needs-imatrix",
            "{ $types }: they need an importance matrix, which tokenscope cannot make",
            &[("types", &refused(Refusal::NeedsImatrix))],
        ),
        tr_args(
            "quant-help-ternary",
            "{ $types }: ternary, only for models trained with ternary weights",
            &[("types", &refused(Refusal::Ternary))],
        ),
        tr_args(
            "quant-help-use-llama-quantize",
            "{ $types }: use llama.cpp's llama-quantize",
            &[("types", &refused(Refusal::NotOffered))],
        ),
    ] {
        out.push_str("\n  ");
        out.push_str(&line);
    }
    out.push_str("\n\n");
    // One message a line: a message holds no new line (Fluent's rule).
    let blocks = [
        tr(
            "quant-help-blocks-1",
            "The k-quants (Q2_K … Q6_K and their mixes) and IQ4_XS store a row in blocks of 256",
        ),
        tr(
            "quant-help-blocks-2",
            "weights: a tensor whose rows are not a multiple of 256 (SmolLM2's are 576 wide) cannot",
        ),
        tr(
            "quant-help-blocks-3",
            "take them, and llama.cpp writes it as another type instead (Q2_K, Q3_K → Q4_0; Q4_K →",
        ),
        tr(
            "quant-help-blocks-4",
            "Q5_0; Q5_K → Q5_1; Q6_K → Q8_0; IQ4_XS → IQ4_NL). `quantize` prints the types the file",
        ),
        tr("quant-help-blocks-5", "really holds."),
    ];
    let requantize = [
        tr(
            "quant-help-requantize-1",
            "A quantized input (the demo models are) needs --allow-requantize: the result is made",
        ),
        tr(
            "quant-help-requantize-2",
            "from its quantized values and can only lose against it. For a ladder of variants, make",
        ),
        tr(
            "quant-help-requantize-3",
            "an F16 first (it holds exactly the input's values), then quantize that.",
        ),
    ];
    out.push_str(&blocks.join("\n"));
    out.push_str("\n\n");
    out.push_str(&requantize.join("\n"));
    out.push('\n');
    out
}
