//! `tokenscope models`, `info` and `paths`, and the text (and JSON)
//! renderings of model cards they print (also used by `quantize`'s report).
//!
//! The card's text is escaped where the card is built ([`ModelCard`]); what it
//! keeps raw is escaped here: paths, the chat template's preview, and JSON
//! (through [`json_safe`], so that the raw template in it reaches no terminal).

use std::fmt::Write as _;
use std::io::Write as _;

use super::tensor_view::{kinds_table, percent, tensors_jsonl, tensors_text, thousands};
use super::{Ctx, remote_target};
use crate::catalog::{self, CatalogError, ModelCard, template_preview, template_summary};
use crate::cli::{Format, GenFlags, TensorsView};
use crate::engine;
use crate::i18n::{tr, tr_args};
use crate::tensor_map::TensorMap;
use crate::text::{escape_inline, json_safe, pad_left, pad_right as pad, str_width};

/// `tokenscope models`: every model found, as a table or JSONL; with none,
/// where they were looked for and how to get the demo models. Errors: a
/// config that cannot be used, output that cannot be written.
pub fn models_command(ctx: &Ctx, format: Format) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let places = ctx.places(&config);
    let cards = places.discover();
    let mut out = std::io::stdout().lock();
    if format == Format::Jsonl {
        write!(out, "{}", models_jsonl(&cards))?;
    } else if cards.is_empty() {
        writeln!(
            out,
            "{}",
            tr_args(
                "models-none",
                "No models in { $searched }. Run `tokenscope fetch-demos` to get the demo models.",
                &[("searched", &places.searched())],
            )
        )?;
    } else {
        write!(out, "{}", models_table(&cards))?;
    }
    Ok(())
}

/// `tokenscope info`: one model's card (`model`, as `--model` takes it) and
/// where it would run; with `server` (and `api_key_env`), what that remote
/// server reports about `model` (none: its only one). Errors: no such model
/// or server, output that cannot be written.
pub fn info_command(
    ctx: &Ctx,
    model: Option<&str>,
    format: Format,
    tensors: Option<TensorsView>,
    server: Option<&str>,
    api_key_env: Option<&str>,
) -> anyhow::Result<()> {
    let config = ctx.config()?;
    if tensors.is_some() && server.is_some() {
        anyhow::bail!(tr(
            "info-tensors-remote",
            "--tensors reads a model file's tensor table, and a server does not send one: name a local model file instead of --server"
        ));
    }
    let server_flags = GenFlags {
        server: server.map(str::to_string),
        api_key_env: api_key_env.map(str::to_string),
        ..GenFlags::default()
    };
    let mut out = std::io::stdout().lock();
    if let Some(target) = remote_target(&config, &server_flags)? {
        let report = engine::remote::info::describe(&target, model.unwrap_or(""))?;
        if format == Format::Jsonl {
            let json = serde_json::to_string_pretty(&report)?;
            writeln!(out, "{}", json_safe(&json))?;
        } else {
            write!(out, "{}", engine::remote::info::report_text(&report))?;
        }
        return Ok(());
    }
    let card = ctx.places(&config).resolve(model.unwrap_or(""))?;
    if let Some(view) = tensors {
        let (header, _) = catalog::read_model(&card.path)?;
        let map = TensorMap::of(&header);
        if format == Format::Jsonl {
            write!(out, "{}", tensors_jsonl(&map, view))?;
        } else {
            write!(out, "{}", tensors_text(&card.name, &map, view))?;
        }
        return Ok(());
    }
    if format == Format::Jsonl {
        writeln!(out, "{}", info_json(&card))?;
    } else {
        write!(out, "{}", info_text(&card))?;
        let layers = config.engine.gpu_layers;
        writeln!(
            out,
            "\n{}",
            tr_args(
                "info-runs-on",
                "runs on: { $backend }",
                &[("backend", &engine::describe_backend(layers, card.n_layer))],
            )
        )?;
    }
    Ok(())
}

/// `tokenscope paths`: where the config file, the models, the logs and the
/// saved chats are. Errors: a config that cannot be used.
pub fn paths_command(ctx: &Ctx) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let paths = &ctx.paths;
    let config_file = ctx.cli.global.config.as_ref().unwrap_or(&paths.config_file);
    // Labels padded to 12 columns by display width (a Chinese character is
    // two), one space, the path.
    let line = |label: &str, path: &std::path::Path, note: &str| {
        println!("{} {}{note}", pad(label, 12), path.display());
    };
    line(&tr("paths-config", "config file:"), config_file, "");
    let places = ctx.places(&config);
    let models = tr("paths-models", "models:");
    for d in &places.dirs {
        line(&models, d, "");
    }
    // The other tools' stores (`sources`), read only.
    let none = format!(" {}", tr("paths-none", "(none)"));
    for s in &places.stores {
        let there = if s.root.exists() { "" } else { none.as_str() };
        line(&format!("{}:", s.store.label()), &s.root, there);
    }
    line(
        &tr("paths-logs", "logs:"),
        &crate::logging::log_path(&paths.log_dir),
        "",
    );
    line(&tr("paths-chats", "chats:"), &paths.conversations_db(), "");
    Ok(())
}

/// The width of `info`'s field names (with their colon), in columns.
const FIELD_WIDTH: usize = 16;

/// A path for the terminal: on one line, nothing a terminal would act on.
fn path_text(p: &std::path::Path) -> String {
    escape_inline(&p.display().to_string())
}

/// An aligned table: NAME, SOURCE ([`source_label`]), ARCH, PARAMS, QUANT
/// (as the tensors really are: [`ModelCard::quant_label`]), BPW
/// ([`ModelCard::bits_per_weight`]), SIZE, MODEL (what `--model` takes:
/// the path of a file in tokenscope's directories, the name its owner
/// calls it by in another tool's store); unreadable files and stores are
/// listed with their error.
pub fn models_table(cards: &[Result<ModelCard, CatalogError>]) -> String {
    let header = [
        tr("models-col-name", "NAME"),
        tr("models-col-source", "SOURCE"),
        tr("models-col-arch", "ARCH"),
        tr("models-col-params", "PARAMS"),
        tr("models-col-quant", "QUANT"),
        tr("models-col-bpw", "BPW"),
        tr("models-col-size", "SIZE"),
        tr("models-col-model", "MODEL"),
    ];
    let mut rows: Vec<Vec<String>> = vec![header.to_vec()];
    let mut errors: Vec<(usize, String)> = Vec::new();
    for card in cards {
        match card {
            Ok(c) => rows.push(vec![
                c.name.clone(),
                source_label(c).to_string(),
                c.arch.clone(),
                c.params_human(),
                c.quant_label(),
                bpw_text(c),
                c.size_human(),
                match c.source {
                    None => path_text(&c.path),
                    Some(_) => c.id.clone(),
                },
            ]),
            Err(e) => {
                errors.push((rows.len(), error_line(e)));
                rows.push(vec![e.row_name()]);
            }
        }
    }
    let n_cols = 8;
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
                } else if j == 3 || j == 5 || j == 6 {
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

/// Where a model was found, in a word: `tokenscope` (its own directories),
/// else the other tool's store (`ollama`, `huggingface`, …).
pub(crate) fn source_label(c: &ModelCard) -> &'static str {
    c.source.map_or("tokenscope", catalog::Store::label)
}

/// One-line form of an error for the table: "error: …" without the path (it is in
/// the NAME column) and without the hint lines.
fn error_line(e: &CatalogError) -> String {
    let text = match e {
        CatalogError::Gguf { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    format!(
        "{}: {}",
        tr("cli-error", "error"),
        escape_inline(text.lines().next().unwrap_or_default())
    )
}

/// The whole card, then every metadata key = value, sorted by key.
pub(crate) fn info_text(card: &ModelCard) -> String {
    let mut out = String::new();
    // The field's name with its colon, padded to 16 columns as displayed.
    let mut field = |k: String, v: String| {
        let _ = writeln!(out, "{} {v}", pad(&k, FIELD_WIDTH));
    };
    field(tr("info-name", "name:"), card.name.clone());
    if let Some(store) = card.source {
        field(
            tr("info-source", "source:"),
            tr_args(
                "info-source-value",
                "{ $id } ({ $store }, read only)",
                &[("id", &card.id), ("store", &store.label())],
            ),
        );
    }
    if card.parts > 1 {
        field(
            tr("info-file", "file:"),
            tr_args(
                "info-file-parts",
                "{ $path } (part 1 of { $parts })",
                &[("path", &path_text(&card.path)), ("parts", &card.parts)],
            ),
        );
    } else {
        field(tr("info-file", "file:"), path_text(&card.path));
    }
    field(tr("info-arch", "architecture:"), card.arch.clone());
    field(
        tr("info-params", "parameters:"),
        format!("{} ({})", card.params_human(), thousands(card.n_params)),
    );
    field(tr("info-quant", "quantization:"), card.quant_label());
    field(tr("info-bpw", "bits per weight:"), bpw_text(card));
    field(
        tr("info-file-size", "file size:"),
        tr_args(
            "info-file-size-value",
            "{ $size } ({ $bytes } bytes)",
            &[
                ("size", &card.size_human()),
                ("bytes", &thousands(card.file_size)),
            ],
        ),
    );
    field(tr("info-layers", "layers:"), card.n_layer.to_string());
    let tokens = |n: u64| tr_args("info-tokens", "{ $n } tokens", &[("n", &thousands(n))]);
    field(
        tr("info-trained-context", "trained context:"),
        tokens(card.n_ctx_train as u64),
    );
    field(
        tr("info-vocabulary", "vocabulary:"),
        tokens(card.n_vocab as u64),
    );
    match card
        .chat_template
        .as_deref()
        .filter(|_| card.has_chat_template())
    {
        None => field(
            tr("info-chat-template", "chat template:"),
            tr(
                "info-no-template",
                "no (base model: prompts are used as raw text)",
            ),
        ),
        Some(t) => {
            field(
                tr("info-chat-template", "chat template:"),
                template_summary(t),
            );
            out.push_str(&template_preview(t));
        }
    }
    out.push_str(&mix_text(card));
    if !card.mix.kinds.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            tr(
                "info-tensor-map",
                "tensor map (`info --tensors` for each layer and tensor):"
            )
        );
        out.push_str(&kinds_table(
            &card.mix.kinds,
            card.file_size,
            card.mix.tied_output,
            "  ",
        ));
    }
    let mut md: Vec<&(String, String)> = card.metadata.iter().collect();
    md.sort_by(|a, b| a.0.cmp(&b.0));
    let _ = writeln!(
        out,
        "\n{}",
        tr_args(
            "info-metadata",
            "metadata ({ $n } keys):",
            &[("n", &md.len())]
        )
    );
    let w = md.iter().map(|(k, _)| str_width(k)).max().unwrap_or(0);
    for (k, v) in md {
        let _ = writeln!(out, "  {} = {v}", pad(k, w));
    }
    out
}

/// Bits per weight with two decimals ("5.20"), "?" for a file without weights.
pub(crate) fn bpw_text(card: &ModelCard) -> String {
    card.bits_per_weight()
        .map(|b| format!("{b:.2}"))
        .unwrap_or_else(|| "?".into())
}

/// The tensor types the file holds, one a line: `label` (then blanks, the
/// width of `info`'s field names), the type, its tensor count, their size
/// and their share of the weights; most weights first.
pub(crate) fn types_table(card: &ModelCard, label: &str) -> String {
    let mut out = String::new();
    let weights = card.mix.weights().max(1) as f64;
    for (i, t) in card.mix.types.iter().enumerate() {
        let _ = writeln!(
            out,
            "{} {}",
            pad(if i == 0 { label } else { "" }, FIELD_WIDTH),
            tr_args(
                "info-type-row",
                "{ $ty } { $tensors } tensors { $size } { $share } of the weights",
                &[
                    ("ty", &format!("{:<7}", t.ty)),
                    ("tensors", &format!("{:>4}", t.tensors)),
                    (
                        "size",
                        &format!("{:>10}", crate::catalog::size_human(t.bytes))
                    ),
                    (
                        "share",
                        &format!("{:>6}", percent(t.weights as f64 / weights))
                    ),
                ],
            )
        );
    }
    out
}

/// What `info` says of the tensors: [`types_table`], then why llama.cpp
/// wrote other types than the declared one (rows that do not fit its
/// blocks), and the file it was made from when `tokenscope quantize`
/// recorded it.
pub(crate) fn mix_text(card: &ModelCard) -> String {
    let mut out = types_table(card, &tr("info-tensor-types", "tensor types:"));
    if let Some(m) = &card.mix.misfit {
        let widths = m
            .widths
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let mostly = card
            .mostly()
            .map(|t| {
                format!(
                    " {}",
                    tr_args("info-mostly", "(the file is mostly { $ty })", &[("ty", &t)])
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {}{mostly}",
            pad(&tr("info-fallback", "fallback:"), FIELD_WIDTH),
            tr_args(
                "info-fallback-value",
                "{ $n } of { $of } weight matrices have rows of { $widths } weights, not a multiple of the { $block }-weight blocks of { $main }: llama.cpp wrote another type for them",
                &[
                    ("n", &m.tensors),
                    ("of", &m.of),
                    ("widths", &widths),
                    ("block", &m.block),
                    ("main", &m.main),
                ],
            )
        );
    }
    if let Some(f) = &card.made_from {
        let _ = writeln!(
            out,
            "{} {}",
            pad(&tr("info-made-from", "made from:"), FIELD_WIDTH),
            tr_args(
                "info-made-from-value",
                "{ $file } ({ $quant }), by tokenscope quantize",
                &[("file", &f.file), ("quant", &f.quant)],
            )
        );
    }
    out
}

/// One JSON object per line: the card, or `{"path": …, "error": …}`. Text
/// fields hold the card's escaped text; the raw chat template (and any path)
/// is written with every unsafe character as a `\uXXXX` escape.
pub(crate) fn models_jsonl(cards: &[Result<ModelCard, CatalogError>]) -> String {
    let mut out = String::new();
    for c in cards {
        let line = match c {
            Ok(card) => serde_json::to_string(card).unwrap_or_default(),
            Err(e) => serde_json::json!({
                "path": e.path().map(|p| p.display().to_string()),
                // English whatever the interface language: scripts read JSON.
                "error": crate::i18n::with_lang(crate::i18n::Lang::En, || e.to_string()),
            })
            .to_string(),
        };
        out.push_str(&json_safe(&line));
        out.push('\n');
    }
    out
}

/// The card as pretty JSON (escaped as [`models_jsonl`] escapes it).
pub(crate) fn info_json(card: &ModelCard) -> String {
    json_safe(&serde_json::to_string_pretty(card).unwrap_or_default())
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
            source: None,
            former_name: String::new(),
            id: path.rsplit('/').next().unwrap().to_string(),
            parts: 1,
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
            mix: Default::default(),
            made_from: None,
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
        assert_eq!(col(lines[0], "MODEL"), col(lines[3], "/m/x.gguf"));
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

    /// A "Q2_K" card whose tensors are mostly Q4_0 (rows of 576 weights).
    fn fallen_back() -> ModelCard {
        use crate::catalog::{MadeFrom, Misfit, TensorMix, TypeShare};
        let share = |ty: &str, tensors, weights, bytes| TypeShare {
            ty: ty.into(),
            tensors,
            weights,
            bytes,
        };
        let mut c = card("Smol", "/m/s.Q2_K.gguf");
        c.quant = "Q2_K".into();
        c.mix = TensorMix {
            types: vec![
                share("Q4_0", 180, 3 << 20, (3 << 20) / 32 * 18),
                share("Q3_K", 30, 1 << 20, (1 << 20) / 256 * 110),
            ],
            misfit: Some(Misfit {
                main: "Q2_K".into(),
                block: 256,
                tensors: 180,
                of: 210,
                widths: vec![576],
            }),
            ..Default::default()
        };
        c.made_from = Some(MadeFrom {
            file: "s.Q4_1.gguf".into(),
            quant: "Q4_1".into(),
        });
        c
    }

    #[test]
    fn the_real_tensor_types_are_shown_not_only_the_requested_one() {
        let c = fallen_back();
        // (3 × 18/32 + 110/256) × 8 / 4 bits per weight.
        let bpw = format!("{:.2}", (3.0 * 18.0 / 32.0 + 110.0 / 256.0) * 8.0 / 4.0);
        let t = info_text(&c);
        for want in [
            "quantization:    Q2_K requested · mostly Q4_0".to_string(),
            format!("bits per weight: {bpw}"),
            "tensor types:    Q4_0     180 tensors    1.7 MiB  75.0% of the weights".into(),
            "                 Q3_K      30 tensors  440.0 KiB  25.0% of the weights".into(),
            "fallback:        180 of 210 weight matrices have rows of 576 weights, not a multiple \
             of the 256-weight blocks of Q2_K: llama.cpp wrote another type for them (the file \
             is mostly Q4_0)"
                .into(),
            "made from:       s.Q4_1.gguf (Q4_1), by tokenscope quantize".into(),
        ] {
            assert!(t.contains(&want), "missing {want:?} in\n{t}");
        }
        let table = models_table(&[Ok(c.clone()), Ok(card("x", "/m/x.gguf"))]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].contains("QUANT") && lines[0].contains("BPW"),
            "{table}"
        );
        assert!(
            lines[1].contains("Q2_K requested · mostly Q4_0") && lines[1].contains(&bpw),
            "{table}"
        );
        // Columns stay aligned with a wide type in one row.
        let col = |l: &str, w: &str| crate::text::str_width(&l[..l.find(w).unwrap()]);
        assert_eq!(
            col(lines[0], "SIZE"),
            col(lines[2], "93.8 MiB") + 4,
            "{table}"
        );
        assert_eq!(
            col(lines[0], "MODEL"),
            col(lines[2], "/m/x.gguf"),
            "{table}"
        );
        let json = info_json(&c);
        assert!(
            json.contains("\"ty\": \"Q4_0\"") && json.contains("\"made_from\""),
            "{json}"
        );
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
