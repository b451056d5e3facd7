//! `tokenscope compare`: models (quantized variants of one model) side by
//! side on the same tokens. Model A generates the reply (`--prompt`) or the
//! text is taken as it is (`--text`, `--file`); every model is then
//! teacher-forced the same token ids in one engine ([`Command::Compare`]),
//! which computes KL(A‖B) over the full vocabulary where the logits live.
//!
//! The summary statistics are those llama.cpp's `llama-perplexity
//! --kl-divergence` reports, with A as its base: mean, median, 99th
//! percentile and max of KL(A‖B); top-1 agreement ("same top p") as a
//! fraction; Δp = p_B(token) − p_A(token) as its mean and root mean square
//! (fractions, where llama.cpp prints percent); and each model's perplexity
//! `exp(−mean ln p(token))` over the compared tokens. (llama-perplexity
//! scores only the second half of each context window; this compares every
//! token given.)
//!
//! [`Command::Compare`]: crate::engine::Command::Compare

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::headless::{RunError, error_line, request_for, tokens_text, wait_for};
use super::{Ctx, engine_placement, text_to_score};
use crate::cli::Format;
use crate::config::Config;
use crate::engine::{
    CompareInput, CompareRequest, CompareRow, EngineHandle, Event, ModelInfo, ModelRef, Placement,
    SlotId, TokenId, Vocab,
};
use crate::i18n::{tr, tr_args};

/// `tokenscope compare`: `models` (as `--model` takes them, A first)
/// compared on the reply to `prompt`, or on `text` / the text of `file`
/// (`-`: standard input), printed as [`compare`] does; `--max-tokens`,
/// `--ctx` and `--threads` come in `ctx.flags`. Errors: fewer than two
/// models, a model not found, no text, the engine's.
pub fn compare_command(
    ctx: &Ctx,
    models: &[String],
    prompt: Option<&str>,
    text: Option<&str>,
    file: Option<&Path>,
    raw: bool,
    format: Format,
) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let places = ctx.places(&config);
    if models.len() < 2 {
        anyhow::bail!(tr(
            "compare-two-models-cli",
            "compare needs at least two models: --model A --model B [--model C …]"
        ));
    }
    let paths_of = models
        .iter()
        .map(|m| places.resolve(m).map(|c| c.path))
        .collect::<Result<Vec<_>, _>>()?;
    let source = match prompt {
        Some(p) => Source::Prompt(p.to_string()),
        None => Source::Text(text_to_score(text, file, false)?),
    };
    let args = CompareArgs {
        models: paths_of,
        source,
        raw,
        jsonl: format == Format::Jsonl,
    };
    compare(
        &engine_placement()?,
        &config,
        &args,
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

// The statistics live with the conversation (a reply compared in the TUI
// shows them too); `compare` reports them.
pub(crate) use crate::conversation::compare_stats::{Summary, summarize};

/// Where the compared tokens come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// Model A answers this prompt (chat template unless `raw`); its reply is compared.
    Prompt(String),
    /// This text is compared as it is (a BOS in front unless `raw`).
    Text(String),
}

/// What `compare` is asked for besides the config.
#[derive(Debug, Clone)]
pub(crate) struct CompareArgs {
    /// The models, the reference A first (at least two).
    pub models: Vec<PathBuf>,
    /// What is compared.
    pub source: Source,
    /// `--raw`: no chat template for a prompt, no BOS before a text.
    pub raw: bool,
    /// `--format jsonl`.
    pub jsonl: bool,
}

/// A `{"type":"token",…}` JSONL line, keys in this order: `type`, `index`,
/// `id`, `text` (what the token adds to the text: UTF-8 assembled across
/// tokens, as `run` writes it, so empty for the first bytes of a character
/// split over tokens), `piece` (the token's own piece, bytes shown as
/// `<0xE5>`), `p` per model, `top1` ids per model (`top1_text` their
/// pieces), `kl` per other model (nats).
pub(crate) fn row_json(row: &CompareRow, vocab: &Vocab, text: &str) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        r#type: &'static str,
        index: usize,
        id: TokenId,
        text: &'a str,
        piece: String,
        p: Vec<f64>,
        top1: &'a [TokenId],
        top1_text: Vec<String>,
        kl: &'a [f64],
    }
    serde_json::to_string(&Line {
        r#type: "token",
        index: row.index,
        id: row.id,
        text,
        piece: vocab.readable(row.id),
        p: row.ln_p.iter().map(|l| l.exp()).collect(),
        top1: &row.top1,
        top1_text: row.top1.iter().map(|t| vocab.readable(*t)).collect(),
        kl: &row.kl,
    })
    .expect("a row serializes")
}

/// The text format: a summary table, then for each other model (B) the ten
/// tokens with the largest KL(A‖B), each with up to eight tokens before it
/// from `tokens` (the sequence compared, known from `known_from` on).
pub(crate) fn text_report(
    rows: &[CompareRow],
    tokens: &[TokenId],
    known_from: usize,
    vocab: &Vocab,
    models: &[ModelInfo],
    summaries: &[Summary],
) -> String {
    let name = |i: &ModelInfo| {
        i.model
            .local_path()
            .and_then(|p| p.file_name())
            .map(|n| crate::text::escape_inline(&n.to_string_lossy()))
            .unwrap_or_default()
    };
    // The type column as wide as the widest type ("Q2_K requested · mostly Q4_0").
    let tw = models[1..]
        .iter()
        .map(|m| crate::text::str_width(&m.quant))
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = tr_args(
        "compare-heading",
        "A = { $name } ({ $quant }, { $size }); { $tokens } compared",
        &[
            ("name", &name(&models[0])),
            ("quant", &models[0].quant),
            ("size", &crate::catalog::size_human(models[0].file_size)),
            ("tokens", &tokens_text(rows.len())),
        ],
    );
    out.push_str("\n\n");
    // Column heads padded by display width (a Chinese character is two
    // columns), to the widths of the number columns below.
    let heads = [
        (tr("compare-col-model", "B"), 36, false),
        (tr("compare-col-type", "type"), tw, false),
        (tr("compare-col-mean-kl", "mean KL"), 8, true),
        (tr("compare-col-median-kl", "median KL"), 9, true),
        (tr("compare-col-p99-kl", "p99 KL"), 8, true),
        (tr("compare-col-max-kl", "max KL"), 8, true),
        (tr("compare-col-top1", "top-1"), 7, true),
        (tr("compare-col-mean-dp", "mean Δp"), 8, true),
        (tr("compare-col-rms-dp", "RMS Δp"), 7, true),
        (tr("compare-col-ppl-a", "PPL A"), 8, true),
        (tr("compare-col-ppl-b", "PPL B"), 8, true),
    ];
    let heads: Vec<String> = heads
        .iter()
        .map(|(h, w, right)| {
            if *right {
                crate::text::pad_left(h, *w)
            } else {
                crate::text::pad_right(h, *w)
            }
        })
        .collect();
    out.push_str(&heads.join(" "));
    out.push('\n');
    for (s, m) in summaries.iter().zip(&models[1..]) {
        out.push_str(&format!(
            "{:<36.36} {:<tw$} {:>8.4} {:>9.4} {:>8.4} {:>8.4} {:>6.1}% {:>7.2}% {:>6.2}% {:>8.3} {:>8.3}\n",
            s.model,
            m.quant,
            s.mean_kl,
            s.median_kl,
            s.p99_kl,
            s.max_kl,
            s.top1_agreement * 100.0,
            s.mean_delta_p * 100.0,
            s.rms_delta_p * 100.0,
            s.ppl_a,
            s.ppl_b
        ));
    }
    let memory: u64 = models.iter().map(|m| m.file_size).sum();
    out.push_str(&tr_args(
        "compare-legend",
        "(KL in nats over the full vocabulary; Δp = p_B − p_A of each token; all models loaded at once: { $memory } of weights)",
        &[("memory", &crate::catalog::size_human(memory))],
    ));
    out.push('\n');
    // One list per B: each pair disagrees at its own tokens.
    for (b, s) in summaries.iter().enumerate().map(|(i, s)| (i + 1, s)) {
        let mut worst: Vec<&CompareRow> = rows.iter().collect();
        worst.sort_by(|x, y| y.kl[b - 1].total_cmp(&x.kl[b - 1]));
        worst.truncate(WORST);
        out.push('\n');
        out.push_str(&tr_args(
            "compare-worst",
            "The { $tokens } where { $model } disagrees most with A:",
            &[("tokens", &tokens_text(worst.len())), ("model", &s.model)],
        ));
        out.push('\n');
        for r in worst {
            let from = r.index.saturating_sub(8).max(known_from).min(r.index);
            let bytes: Vec<u8> = tokens[from..r.index]
                .iter()
                .flat_map(|t| vocab.bytes(*t).iter().copied())
                .collect();
            let context = crate::text::escape_inline(&String::from_utf8_lossy(&bytes));
            out.push_str(&format!(
                "  #{:<4} KL {:>7.4}  p {} → {}  top-1 \"{}\" / \"{}\"  …{}[{}]\n",
                r.index,
                r.kl[b - 1],
                p_text(r.ln_p[0].exp()),
                p_text(r.ln_p[b].exp()),
                vocab.readable(r.top1[0]),
                vocab.readable(r.top1[b]),
                context,
                vocab.readable(r.id)
            ));
        }
    }
    out
}

/// How many of the tokens where a B disagrees most with A the text lists.
const WORST: usize = 10;

fn p_text(p: f64) -> String {
    if p >= 1e-3 || p == 0.0 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// `tokenscope compare`: loads every model into its own slot of one engine
/// at `placement`, makes the tokens (A's reply, or the text), compares, and
/// writes the report (`args.jsonl`: a `token` line per compared token, then
/// a `summary` line per other model; an error after the output started
/// ends it with an `error` line). Returns the summaries.
///
/// # Errors
/// Fewer than two models, a model that does not load, different
/// vocabularies, a text longer than the context, an engine crash.
pub(crate) fn compare(
    placement: &Placement,
    config: &Config,
    args: &CompareArgs,
    out: &mut impl Write,
) -> Result<Vec<Summary>, RunError> {
    let result = compare_streaming(placement, config, args, out);
    error_line(args.jsonl, result, out)
}

fn compare_streaming(
    placement: &Placement,
    config: &Config,
    args: &CompareArgs,
    out: &mut impl Write,
) -> Result<Vec<Summary>, RunError> {
    if args.models.len() < 2 {
        return Err(RunError::Engine(crate::engine::EngineError::Refused(
            crate::engine::Words::tr(
                "compare-two-models",
                "compare needs at least two models: --model A --model B",
            ),
        )));
    }
    if args.models.len() > crate::engine::MAX_SLOTS as usize {
        return Err(RunError::Engine(crate::engine::EngineError::Refused(
            crate::engine::Words::tr_args(
                "compare-too-many",
                "compare takes at most { $max } models at once (the engine's model slots): compare the others in another run",
                &[("max", &crate::engine::MAX_SLOTS)],
            ),
        )));
    }
    let (mut handle, rx) = EngineHandle::spawn_with_receiver_at(placement);
    let mut infos = Vec::new();
    let mut vocab: Option<Arc<Vocab>> = None;
    for (i, path) in args.models.iter().enumerate() {
        let request = i as u64 + 1;
        handle.load(
            request,
            i as SlotId,
            ModelRef::Local(path.clone()),
            config.load_settings(),
        );
        if let Event::Loaded { info, vocab: v, .. } = wait_for(&rx, request, |_| Ok(()))? {
            infos.push(*info);
            vocab.get_or_insert(v);
        }
    }
    let vocab = vocab.ok_or(RunError::Disconnected)?;
    let mut next = args.models.len() as u64 + 1;
    // The sequence, when known before the comparison (A's prompt and reply).
    let mut known: Option<Vec<TokenId>> = None;
    let input = match &args.source {
        Source::Text(text) => CompareInput::Text {
            text: text.clone(),
            bos: !args.raw,
        },
        Source::Prompt(prompt) => {
            let req = request_for(config, prompt, args.raw);
            handle.generate(next, 0, req);
            let mut tokens = Vec::new();
            let mut score_from = 0;
            wait_for(&rx, next, |e| {
                match e {
                    Event::Started { prompt, prefix, .. } => {
                        tokens.extend(prompt.iter().map(|t| t.id));
                        tokens.extend(prefix);
                        score_from = tokens.len();
                    }
                    Event::Token { step, .. } => tokens.push(step.id),
                    _ => {}
                }
                Ok(())
            })?;
            next += 1;
            known = Some(tokens.clone());
            CompareInput::Tokens { tokens, score_from }
        }
    };
    let slots = (0..args.models.len() as SlotId).collect();
    handle.send(crate::engine::Command::Compare {
        request: next,
        req: CompareRequest {
            slots,
            input,
            top_k: 0,
        },
    });
    let mut rows: Vec<CompareRow> = Vec::new();
    let mut utf8 = crate::text::Utf8Assembler::default();
    let end = wait_for(&rx, next, |e| {
        if let Event::Compared { rows: chunk, .. } = e {
            for r in chunk {
                if args.jsonl {
                    let line = row_json(r, &vocab, &utf8.push(vocab.bytes(r.id)));
                    writeln!(out, "{}", crate::text::json_safe(&line))?;
                }
            }
            rows.extend(chunk.iter().cloned());
        }
        Ok(())
    })?;
    // More positions evaluated than tokens: the text did not fit the context.
    if let Event::Done { stats, .. } = &end
        && stats.n_prompt_evaluated > stats.n_prompt
    {
        eprintln!(
            "{}",
            tr_args(
                "compare-windows",
                "note: the text is { $n } tokens, more than the context of { $n_ctx }: compared in overlapping windows of the context's size, each evaluated from scratch; every token is compared once, with at least half a context before it (--ctx sets the context)",
                &[("n", &stats.n_prompt), ("n_ctx", &stats.ctx_size)],
            )
        );
    }
    let summaries: Vec<Summary> = (1..args.models.len())
        .map(|b| {
            let name = infos[b]
                .model
                .local_path()
                .and_then(|p| p.file_name())
                .map(|n| crate::text::escape_inline(&n.to_string_lossy()))
                .unwrap_or_default();
            summarize(&rows, b, name)
        })
        .collect();
    if args.jsonl {
        for s in &summaries {
            writeln!(out, "{}", crate::text::json_safe(&s.json()))?;
        }
    } else {
        // The sequence compared, for the context of each token (for a
        // text: its compared tokens, the leading BOS left out).
        let (tokens, known_from) = match known {
            Some(t) => (t, 0),
            None => {
                let first = rows.first().map_or(0, |r| r.index);
                let mut t = vec![0; first];
                t.extend(rows.iter().map(|r| r.id));
                (t, first)
            }
        };
        // Each type as the tensors really are ("Q2_K requested · mostly Q4_0"),
        // from the file's tensor table; the engine's name where it cannot be read.
        for (info, path) in infos.iter_mut().zip(&args.models) {
            if let Ok(card) = crate::catalog::read_card(path) {
                info.quant = card.quant_label();
            }
        }
        write!(
            out,
            "{}",
            text_report(&rows, &tokens, known_from, &vocab, &infos, &summaries)
        )?;
    }
    handle.shutdown();
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::compare_stats::quantile;

    fn row(ln_a: f64, ln_b: f64, top: (TokenId, TokenId), kl: f64) -> CompareRow {
        CompareRow {
            index: 1,
            id: 5,
            ln_p: vec![ln_a, ln_b],
            top1: vec![top.0, top.1],
            kl: vec![kl],
            ..Default::default()
        }
    }

    #[test]
    fn summaries_follow_llama_perplexity() {
        let rows = [
            row(0.5f64.ln(), 0.25f64.ln(), (1, 1), 0.1),
            row(0.5f64.ln(), 0.5f64.ln(), (1, 2), 0.3),
            row(0.25f64.ln(), 0.5f64.ln(), (3, 3), 0.2),
            row(1.0f64.ln(), 1.0f64.ln(), (4, 4), 0.0),
        ];
        let s = summarize(&rows, 1, "b".into());
        assert!((s.mean_kl - 0.15).abs() < 1e-12);
        assert!((s.median_kl - 0.15).abs() < 1e-12, "mean of the middle two");
        assert!((s.max_kl - 0.3).abs() < 1e-12);
        assert!((s.p99_kl - (0.2 + 0.97 * 0.1)).abs() < 1e-12);
        assert_eq!(s.top1_agreement, 0.75);
        // Δp: −0.25, 0, +0.25, 0.
        assert!(s.mean_delta_p.abs() < 1e-12);
        assert!((s.rms_delta_p - (0.125f64 / 4.0 * 1.0).sqrt()).abs() < 1e-12);
        let ppl_a = (-(0.5f64.ln() * 2.0 + 0.25f64.ln()) / 4.0).exp();
        assert!((s.ppl_a - ppl_a).abs() < 1e-12);
        assert!(
            (s.ppl_b - ppl_a).abs() < 1e-12,
            "the same probabilities, reordered"
        );
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(quantile(&[2.0], 0.99), 2.0);
    }

    /// The top-level keys of a JSON object line, in the order written.
    fn keys(line: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut keys: Vec<(usize, String)> = v
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k.clone()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
    }

    /// A row of three models (A, B1, B2) at `index`, with KL(A‖B1) = `kl1`
    /// and KL(A‖B2) = `kl2`.
    fn row3(index: usize, kl1: f64, kl2: f64) -> CompareRow {
        CompareRow {
            index,
            id: index as TokenId,
            ln_p: vec![0.5f64.ln(), 0.25f64.ln(), 0.125f64.ln()],
            top1: vec![1, 2, 3],
            kl: vec![kl1, kl2],
            ..Default::default()
        }
    }

    /// The `#index` of each worst-token line under the heading that names `b`.
    fn worst_of(report: &str, b: &str) -> Vec<usize> {
        let list = report
            .split(&format!("where {b} disagrees most"))
            .nth(1)
            .unwrap_or_else(|| panic!("no list for {b}:\n{report}"));
        list.lines()
            .skip(1)
            .take_while(|l| l.starts_with("  #"))
            .map(|l| l[3..].split_whitespace().next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn every_b_gets_its_own_worst_tokens() {
        let vocab = Vocab::new((0..8).map(|i| vec![b'a' + i]).collect(), vec![]);
        let fake = crate::tui::bench::fake_model;
        let models = [fake("a", "Q8_0"), fake("b1", "Q4_0"), fake("b2", "Q2_K")];
        // B1 differs most at 2, B2 at 4.
        let rows = [
            row3(1, 0.1, 0.1),
            row3(2, 0.9, 0.2),
            row3(3, 0.3, 0.3),
            row3(4, 0.2, 0.8),
        ];
        let summaries: Vec<Summary> = ["b1", "b2"]
            .iter()
            .enumerate()
            .map(|(i, n)| summarize(&rows, i + 1, n.to_string()))
            .collect();
        let tokens: Vec<TokenId> = (0..5).collect();
        let report = text_report(&rows, &tokens, 0, &vocab, &models, &summaries);
        assert!(report.contains("; 4 tokens compared"), "{report}");
        assert_eq!(worst_of(&report, "b1"), [2, 3, 4, 1], "{report}");
        assert_eq!(worst_of(&report, "b2"), [4, 3, 2, 1], "{report}");
        // Each list prints its own B's probability and top-1.
        let b2 = report.split("where b2").nth(1).unwrap();
        assert!(
            b2.contains("KL  0.8000  p 0.500 → 0.125  top-1 \"b\" / \"d\""),
            "{report}"
        );

        // One token: singular.
        let one = text_report(
            &rows[..1],
            &tokens,
            0,
            &vocab,
            &models[..2],
            &summaries[..1],
        );
        assert!(one.contains("; 1 token compared"), "{one}");
        assert!(one.contains("The 1 token where b1"), "{one}");
    }

    #[test]
    fn small_probabilities_are_not_printed_as_zero() {
        assert_eq!(p_text(0.5), "0.500");
        assert_eq!(p_text(1.07e-5), "1.1e-5");
        assert_eq!(p_text(0.0), "0.000");
    }

    #[test]
    fn jsonl_keys_come_in_the_documented_order() {
        let vocab = Vocab::new((0..8).map(|i| vec![b'a' + i]).collect(), vec![]);
        let line = row_json(&row(0.5f64.ln(), 0.25f64.ln(), (1, 2), 0.1), &vocab, "f");
        assert_eq!(
            keys(&line),
            [
                "type",
                "index",
                "id",
                "text",
                "piece",
                "p",
                "top1",
                "top1_text",
                "kl"
            ]
        );
        assert!(
            line.starts_with(
                r#"{"type":"token","index":1,"id":5,"text":"f","piece":"f","p":[0.5,0.25]"#
            ),
            "{line}"
        );
        let s = summarize(
            &[row(0.5f64.ln(), 0.25f64.ln(), (1, 2), 0.1)],
            1,
            "b".into(),
        );
        assert_eq!(
            keys(&s.json()),
            [
                "type",
                "model",
                "n_tokens",
                "mean_kl",
                "median_kl",
                "p99_kl",
                "max_kl",
                "top1_agreement",
                "mean_delta_p",
                "rms_delta_p",
                "ppl_a",
                "ppl_b"
            ]
        );
    }
}
