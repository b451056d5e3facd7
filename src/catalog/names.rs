//! A model's name as people say it, from its GGUF header: "Qwen2.5 Coder
//! 0.5B Instruct" rather than the file stem `qwen2.5-coder-0.5b-instruct-q4_k_m`
//! or the converter's training-run name "Smollm2 135M 8k Lc100K Mix1 Ep2".
//!
//! The parts are those of the GGUF naming convention (llama.cpp's
//! `docs/gguf.md`, "GGUF Naming Convention": `<BaseName>-<SizeLabel>-<FineTune>-…`),
//! which converters also write as `general.basename`, `general.size_label`
//! and `general.finetune`.

use crate::gguf::GgufHeader;

/// Longest `general.name` used as the name on its own (longer ones are
/// training-run names: "Smollm2 135M 8k Lc100K Mix1 Ep2").
const MAX_NAME: usize = 24;

/// Words of a fine-tune label that name how the weights were quantized
/// before conversion, not the model ("Instruct-AWQ"): the QUANT column says
/// what the GGUF file holds.
const QUANT_METHODS: [&str; 10] = [
    "awq", "gptq", "gguf", "exl2", "fp8", "int4", "int8", "bnb", "mlx", "hqq",
];

/// The name of the model whose header is `h`, in the file named `stem`
/// (without `.gguf`):
/// - with `general.basename`: the base name spelled as the file name spells
///   it where it does ("smollm2" in `SmolLM2-135M-Instruct.Q4_1`: "SmolLM2"),
///   its dashes as spaces, capitalized when all lower case; then
///   `general.size_label`; then the fine-tune's leading words (from
///   `general.finetune`, else the file name's word after the size label)
///   that are words, not run labels with digits ("8k", "ep2") nor
///   quantization methods ("AWQ");
/// - without it: `general.name` when at most 24 characters;
/// - else `None` (the caller names the file).
///
/// Raw text from the file: escape it before showing it.
pub(crate) fn display_name(h: &GgufHeader, stem: &str) -> Option<String> {
    let nonempty = |k: &str| h.get_str(k).map(str::trim).filter(|v| !v.is_empty());
    let Some(base) = nonempty("general.basename") else {
        return former_name(h).map(str::to_string);
    };
    let mut words: Vec<String> = vec![spelled_as_in(base, stem)];
    let has = |words: &[String], w: &str| {
        words
            .iter()
            .flat_map(|x| x.split(' '))
            .any(|x| x.eq_ignore_ascii_case(w))
    };
    let size = nonempty("general.size_label");
    if let Some(size) = size.filter(|s| !has(&words, s)) {
        words.push(size.to_string());
    }
    let mut finetune = nonempty("general.finetune")
        .map(name_words)
        .unwrap_or_default();
    if finetune.is_empty() {
        finetune = size.map(|s| after_in(stem, s)).unwrap_or_default();
    }
    for w in finetune {
        if !has(&words, &w) {
            words.push(w);
        }
    }
    Some(words.join(" "))
}

/// The short `general.name` by which tokenscope named models before
/// [`display_name`] (the file stem without it): what saved replies recorded.
pub(crate) fn former_name(h: &GgufHeader) -> Option<&str> {
    h.get_str("general.name")
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.chars().count() <= MAX_NAME)
}

/// `base` as `stem` spells it (case-insensitively found there), dashes and
/// underscores as spaces, the first letter capitalized when none is; a
/// base name with capitals of its own is kept as it is.
fn spelled_as_in(base: &str, stem: &str) -> String {
    let lower_stem = stem.to_ascii_lowercase();
    let has_case = base.chars().any(char::is_uppercase);
    let spelled = match lower_stem.find(&base.to_ascii_lowercase()) {
        // The header's own capitals win over a lower-case file name.
        _ if has_case => base,
        // ASCII lower-casing keeps byte offsets.
        Some(at) if stem.is_char_boundary(at) && stem.is_char_boundary(at + base.len()) => {
            &stem[at..at + base.len()]
        }
        _ => base,
    };
    let spaced = spelled.replace(['-', '_'], " ");
    if spaced.chars().any(char::is_uppercase) {
        spaced
    } else {
        capitalized(&spaced)
    }
}

/// "instruct" → "Instruct".
fn capitalized(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The leading words of a fine-tune label ("Instruct-AWQ": "Instruct";
/// "8k-lc100k-mix1-ep2": none): letters only, up to the first word that is
/// not one or is a quantization method; capitalized.
fn name_words(label: &str) -> Vec<String> {
    label
        .split(['-', '_', '.', ' '])
        .take_while(|w| {
            !w.is_empty()
                && w.chars().all(char::is_alphabetic)
                && !QUANT_METHODS.contains(&w.to_ascii_lowercase().as_str())
        })
        .map(capitalized)
        .collect()
}

/// The fine-tune words of a file name that follows the naming convention:
/// those right after `size` ("SmolLM2-135M-Instruct.Q4_1": "Instruct").
fn after_in(stem: &str, size: &str) -> Vec<String> {
    let lower = stem.to_ascii_lowercase();
    match lower.find(&size.to_ascii_lowercase()) {
        Some(at) if stem.is_char_boundary(at + size.len()) => {
            let rest = stem[at + size.len()..].trim_start_matches(['-', '_', '.']);
            name_words(rest)
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::testutil::{Val, build, s};

    fn name(kvs: &[(&'static str, &str)], stem: &str) -> Option<String> {
        let kvs: Vec<(&'static str, Val)> = kvs.iter().map(|(k, v)| (*k, s(v))).collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        std::fs::write(&p, build(&kvs, &[], 32)).unwrap();
        let h = crate::gguf::read_header(&p).unwrap();
        display_name(&h, stem)
    }

    #[test]
    fn names_are_built_from_base_size_and_finetune() {
        // The three demo models' headers (see tests/catalog_real.rs for the files).
        let qwen = [
            ("general.name", "Qwen2.5 Coder 0.5B Instruct AWQ"),
            ("general.basename", "Qwen2.5-Coder"),
            ("general.size_label", "0.5B"),
            ("general.finetune", "Instruct-AWQ"),
        ];
        assert_eq!(
            name(&qwen, "qwen2.5-coder-0.5b-instruct-q4_k_m").as_deref(),
            Some("Qwen2.5 Coder 0.5B Instruct")
        );
        assert_eq!(
            name(&qwen, "sha256-6f2c").as_deref(),
            Some("Qwen2.5 Coder 0.5B Instruct"),
            "an Ollama blob's name says nothing, the header does"
        );
        let smol = [
            ("general.name", "Smollm2 135M 8k Lc100K Mix1 Ep2"),
            ("general.basename", "smollm2"),
            ("general.size_label", "135M"),
            ("general.finetune", "8k-lc100k-mix1-ep2"),
        ];
        assert_eq!(
            name(&smol, "SmolLM2-135M-Instruct.Q4_1").as_deref(),
            Some("SmolLM2 135M Instruct")
        );
        assert_eq!(name(&smol, "x").as_deref(), Some("Smollm2 135M"));
        let gemma = [
            ("general.name", "Gemma 3 270m"),
            ("general.basename", "gemma-3"),
            ("general.size_label", "270M"),
        ];
        assert_eq!(
            name(&gemma, "gemma-3-270m-q4_k_m").as_deref(),
            Some("Gemma 3 270M")
        );
    }

    #[test]
    fn without_a_base_name_a_short_general_name_or_nothing() {
        assert_eq!(
            name(&[("general.name", "Tiny")], "t").as_deref(),
            Some("Tiny")
        );
        assert_eq!(
            name(&[("general.name", "A Very Long Training Run Name 8k")], "t"),
            None
        );
        assert_eq!(name(&[], "t"), None);
        // The size label already in the base name is not said twice.
        assert_eq!(
            name(
                &[
                    ("general.basename", "Llama-3.2-1B"),
                    ("general.size_label", "1B"),
                    ("general.finetune", "Instruct")
                ],
                "x"
            )
            .as_deref(),
            Some("Llama 3.2 1B Instruct")
        );
    }
}
