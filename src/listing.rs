//! Text (and JSON) renderings of model cards for `tokenscope models` and `info`.
//!
//! The card's text is escaped where the card is built ([`ModelCard`]); what it
//! keeps raw is escaped here: paths, the chat template's preview, and JSON
//! (through [`json_safe`], so that the raw template in it reaches no terminal).

use std::fmt::Write as _;

use crate::catalog::{CatalogError, ModelCard};
use crate::text::{escape_inline, json_safe, pad_left, pad_right as pad, str_width};

/// A path for the terminal: on one line, nothing a terminal would act on.
fn path_text(p: &std::path::Path) -> String {
    escape_inline(&p.display().to_string())
}

/// Lines of the chat template shown by [`info_text`].
const TEMPLATE_PREVIEW_LINES: usize = 6;

/// An aligned table: NAME, ARCH, PARAMS, QUANT, SIZE, PATH; unreadable files are
/// listed with their error.
pub fn models_table(cards: &[Result<ModelCard, CatalogError>]) -> String {
    let header = ["NAME", "ARCH", "PARAMS", "QUANT", "SIZE", "PATH"].map(str::to_string);
    let mut rows: Vec<Vec<String>> = vec![header.to_vec()];
    let mut errors: Vec<(usize, String)> = Vec::new();
    for card in cards {
        match card {
            Ok(c) => rows.push(vec![
                c.name.clone(),
                c.arch.clone(),
                c.params_human(),
                c.quant.clone(),
                c.size_human(),
                path_text(&c.path),
            ]),
            Err(e) => {
                let name = e
                    .path()
                    .and_then(|p| p.file_name())
                    .map(|n| escape_inline(&n.to_string_lossy()))
                    .unwrap_or_else(|| "?".to_string());
                errors.push((rows.len(), error_line(e)));
                rows.push(vec![name]);
            }
        }
    }
    let n_cols = 6;
    let mut widths = vec![0usize; n_cols];
    for row in rows.iter().filter(|r| r.len() == n_cols) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(str_width(cell));
        }
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        if let Some((_, err)) = errors.iter().find(|(r, _)| *r == i) {
            let _ = write!(line, "{}  {err}", pad(&row[0], widths[0]));
        } else {
            for (j, cell) in row.iter().enumerate() {
                if j + 1 == row.len() {
                    line.push_str(cell);
                } else if j == 2 || j == 4 {
                    // numbers right-aligned
                    let _ = write!(line, "{}  ", pad_left(cell, widths[j]));
                } else {
                    let _ = write!(line, "{}  ", pad(cell, widths[j]));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One-line form of an error for the table: "error: …" without the path (it is in
/// the NAME column) and without the hint lines.
fn error_line(e: &CatalogError) -> String {
    let text = match e {
        CatalogError::Gguf { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    format!(
        "error: {}",
        escape_inline(text.lines().next().unwrap_or_default())
    )
}

/// The whole card, then every metadata key = value, sorted by key.
pub fn info_text(card: &ModelCard) -> String {
    let mut out = String::new();
    let mut field = |k: &str, v: String| {
        let _ = writeln!(out, "{:<16} {v}", format!("{k}:"));
    };
    field("name", card.name.clone());
    field("file", path_text(&card.path));
    field("architecture", card.arch.clone());
    field(
        "parameters",
        format!("{} ({})", card.params_human(), thousands(card.n_params)),
    );
    field("quantization", card.quant.clone());
    field(
        "file size",
        format!(
            "{} ({} bytes)",
            card.size_human(),
            thousands(card.file_size)
        ),
    );
    field("layers", card.n_layer.to_string());
    field(
        "trained context",
        format!("{} tokens", thousands(card.n_ctx_train as u64)),
    );
    field(
        "vocabulary",
        format!("{} tokens", thousands(card.n_vocab as u64)),
    );
    match card
        .chat_template
        .as_deref()
        .filter(|_| card.has_chat_template())
    {
        None => field(
            "chat template",
            "no (base model: prompts are used as raw text)".to_string(),
        ),
        Some(t) => {
            field("chat template", template_summary(t));
            out.push_str(&template_preview(t));
        }
    }
    let mut md: Vec<&(String, String)> = card.metadata.iter().collect();
    md.sort_by(|a, b| a.0.cmp(&b.0));
    let _ = writeln!(out, "\nmetadata ({} keys):", md.len());
    let w = md.iter().map(|(k, _)| str_width(k)).max().unwrap_or(0);
    for (k, v) in md {
        let _ = writeln!(out, "  {} = {v}", pad(k, w));
    }
    out
}

/// "yes (6 lines, 368 bytes)": a chat template in a few words.
pub fn template_summary(t: &str) -> String {
    format!(
        "yes ({}, {})",
        crate::text::count(t.lines().count(), "line"),
        crate::text::count(t.len(), "byte")
    )
}

/// The first lines of a chat template, escaped, each as `    | line`
/// (cut at 100 characters), then `    | …` if there are more.
pub fn template_preview(t: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = t.lines().collect();
    for l in lines.iter().take(TEMPLATE_PREVIEW_LINES) {
        let l: String = l.chars().take(100).collect();
        let _ = writeln!(out, "    | {}", escape_inline(&l));
    }
    if lines.len() > TEMPLATE_PREVIEW_LINES {
        let _ = writeln!(out, "    | …");
    }
    out
}

/// One JSON object per line: the card, or `{"path": …, "error": …}`. Text
/// fields hold the card's escaped text; the raw chat template (and any path)
/// is written with every unsafe character as a `\uXXXX` escape.
pub fn models_jsonl(cards: &[Result<ModelCard, CatalogError>]) -> String {
    let mut out = String::new();
    for c in cards {
        let line = match c {
            Ok(card) => serde_json::to_string(card).unwrap_or_default(),
            Err(e) => serde_json::json!({
                "path": e.path().map(|p| p.display().to_string()),
                "error": e.to_string(),
            })
            .to_string(),
        };
        out.push_str(&json_safe(&line));
        out.push('\n');
    }
    out
}

/// The card as pretty JSON (escaped as [`models_jsonl`] escapes it).
pub fn info_json(card: &ModelCard) -> String {
    json_safe(&serde_json::to_string_pretty(card).unwrap_or_default())
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::gguf::GgufError;

    #[test]
    fn a_one_line_template_is_one_line() {
        assert_eq!(template_summary("{{ x }}"), "yes (1 line, 7 bytes)");
        assert_eq!(template_summary("a\nb"), "yes (2 lines, 3 bytes)");
    }

    fn card(name: &str, path: &str) -> ModelCard {
        ModelCard {
            path: PathBuf::from(path),
            file_name: path.rsplit('/').next().unwrap().to_string(),
            name: name.to_string(),
            arch: "llama".to_string(),
            n_params: 134_515_008,
            file_size: 98_362_432,
            quant: "Q4_1".to_string(),
            n_layer: 30,
            n_ctx_train: 8192,
            n_vocab: 49152,
            chat_template: Some("line1\nline2".to_string()),
            metadata: vec![
                ("general.name".to_string(), name.to_string()),
                ("general.architecture".to_string(), "llama".to_string()),
            ],
        }
    }

    #[test]
    fn table_is_aligned_and_lists_errors() {
        let cards = vec![
            Ok(card(
                "SmolLM2 135M Instruct",
                "/m/SmolLM2-135M-Instruct.Q4_1.gguf",
            )),
            Err(CatalogError::Gguf {
                path: PathBuf::from("/m/broken.gguf"),
                source: GgufError::TruncatedData {
                    file_size: 10,
                    expected: 20,
                },
            }),
            Ok(card("x", "/m/x.gguf")),
        ];
        let t = models_table(&cards);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("NAME"));
        let col = |l: &str, w: &str| l.find(w).unwrap();
        assert_eq!(col(lines[0], "ARCH"), col(lines[1], "llama"));
        assert_eq!(col(lines[0], "PATH"), col(lines[3], "/m/x.gguf"));
        assert!(
            lines[1].contains("135M") && lines[1].contains("93.8 MiB") && lines[1].contains("Q4_1")
        );
        assert!(
            lines[2].starts_with("broken.gguf") && lines[2].contains("error: the file is 10 bytes"),
            "{t}"
        );
    }

    #[test]
    fn info_has_everything() {
        let t = info_text(&card("Smol", "/m/s.gguf"));
        for want in [
            "name:            Smol",
            "architecture:    llama",
            "parameters:      135M (134,515,008)",
            "quantization:    Q4_1",
            "file size:       93.8 MiB (98,362,432 bytes)",
            "layers:          30",
            "trained context: 8,192 tokens",
            "vocabulary:      49,152 tokens",
            "chat template:   yes (2 lines",
            "    | line1",
            "metadata (2 keys):",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        // sorted keys
        assert!(t.find("general.architecture").unwrap() < t.find("general.name").unwrap());
        let mut c = card("Base", "/m/b.gguf");
        c.chat_template = None;
        assert!(info_text(&c).contains("chat template:   no"));
    }

    #[test]
    fn raw_parts_of_the_card_are_escaped_when_shown() {
        let mut c = card("x", "/m/evil\u{1b}[2J\u{202e}.gguf");
        c.chat_template = Some("{{ '\u{1b}]0;title\u{7}' }}\u{202e}\nline2".to_string());
        let text = info_text(&c) + &models_table(&[Ok(c.clone())]);
        for ch in text.chars() {
            assert!(
                !crate::text::is_unsafe(ch) || ch == '\n',
                "{ch:?} left raw in\n{text}"
            );
        }
        assert!(text.contains("    | {{ '␛]0;title␇' }}<U+202E>"), "{text}");
        assert!(text.contains("/m/evil␛[2J<U+202E>.gguf"), "{text}");
        for json in [info_json(&c), models_jsonl(&[Ok(c.clone())])] {
            assert!(!json.chars().any(|ch| ch == '\u{202e}'), "{json}");
            let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
            assert_eq!(v["chat_template"], c.chat_template.as_deref().unwrap());
        }
    }

    #[test]
    fn json_variants() {
        let cards = vec![
            Ok(card("a", "/m/a.gguf")),
            Err(CatalogError::NotFound {
                path: PathBuf::from("/m/z.gguf"),
            }),
        ];
        let j = models_jsonl(&cards);
        let lines: Vec<serde_json::Value> = j
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["quant"], "Q4_1");
        assert_eq!(lines[1]["path"], "/m/z.gguf");
        assert!(info_json(&card("a", "/m/a.gguf")).contains("\"n_vocab\": 49152"));
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
