//! `tokenscope lens`: the layer lens (logit lens) of one position of a
//! text, printed one row per layer (the prediction if the model stopped
//! after that layer), then the model's own row; with `--attention`, what
//! each layer's attention looked at from that position.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::headless::{LocalEngine, one_turn, start_engine_at, wait_for};
use super::{Ctx, engine_placement, read_text, remote_target, require_model};
use crate::cli::Format;
use crate::engine::{
    Event, LensRequest, LensResult, LensRow, MAX_CANDIDATES, ModelRef, TokenId, Vocab,
};
use crate::i18n::{tr, tr_args};

/// What `lens` is asked for besides the model.
pub struct LensArgs<'a> {
    pub text: Option<&'a str>,
    pub file: Option<&'a Path>,
    /// The position lensed (default: the last token).
    pub position: Option<usize>,
    pub top: usize,
    pub attention: bool,
    pub format: Format,
}

/// `tokenscope lens`. Errors in words: no text or an empty one, a remote
/// model, a position out of range, an architecture the lens refuses.
pub fn lens_command(ctx: &Ctx, args: &LensArgs) -> Result<()> {
    let config = ctx.config()?;
    if let Some(target) = remote_target(&config, &ctx.flags)? {
        bail!(tr_args(
            "lens-cli-remote",
            "the layer lens reads the residual stream and attention inside the model's \
             computation graph, which the server at { $url } does not expose over HTTP: pass a \
             local model file with --model",
            &[("url", &target.url)]
        ));
    }
    if !(1..=MAX_CANDIDATES).contains(&args.top) {
        bail!(tr_args(
            "lens-cli-top-range",
            "--top { $top } is out of range: 1 to { $max }",
            &[("top", &args.top), ("max", &MAX_CANDIDATES)]
        ));
    }
    let text = read_text(
        args.text,
        args.file,
        false,
        &tr("cli-text-to-lens", "to lens"),
    )?;
    let card = require_model(&config, &ctx.places(&config))?;
    let mut engine = start_engine_at(&engine_placement()?, ModelRef::Local(card.path), &config)?;
    let tokens = prompt_tokens(&mut engine, &config, &text, ctx.flags.raw)?;
    let position = match args.position {
        Some(p) if p >= tokens.len() => bail!(tr_args(
            "lens-cli-position-range",
            "--position { $position } is out of range: the text is { $n } tokens (positions 0 to { $last })",
            &[
                ("position", &p),
                ("n", &tokens.len()),
                ("last", &(tokens.len() - 1))
            ]
        )),
        Some(p) => p,
        None => tokens.len() - 1,
    };
    let result = lens_of(
        &mut engine,
        LensRequest {
            tokens: tokens.clone(),
            position,
            top_k: args.top,
            attention: args.attention,
        },
    )?;
    let vocab = engine.vocab.clone();
    let out = &mut std::io::stdout().lock();
    match args.format {
        Format::Jsonl => write_jsonl(out, &result, &tokens, &vocab)?,
        Format::Text => write!(out, "{}", text_table(&result, &tokens, &vocab))?,
    }
    Ok(())
}

/// The lens of `req` on `engine`'s model (slot 0), waited for.
pub(crate) fn lens_of(engine: &mut LocalEngine, req: LensRequest) -> Result<LensResult> {
    let id = engine.next_request();
    engine.handle.lens(id, 0, req);
    let mut result = None;
    wait_for(&engine.rx, id, |event| {
        if let Event::Lens { result: r, .. } = event {
            result = Some(r.clone());
        }
        Ok(())
    })?;
    Ok(*result.context("the engine ended the lens without its result")?)
}

/// The token ids the model is fed for `text`: the chat template around it
/// as `run` builds it (with the system prompt of the config), or the plain
/// text with `raw`. Asked of the engine by a generation of no tokens (its
/// `Started` event carries the prompt's ids).
pub(crate) fn prompt_tokens(
    engine: &mut LocalEngine,
    config: &crate::config::Config,
    text: &str,
    raw: bool,
) -> Result<Vec<TokenId>> {
    let (conv, reply) = one_turn(config, text);
    let mut req = conv.request(reply, &config.request_settings(raw));
    req.max_tokens = 0;
    req.top_k_inspect = 0;
    let id = engine.generate(req);
    let mut tokens = Vec::new();
    wait_for(&engine.rx, id, |event| {
        if let Event::Started { prompt, .. } = event {
            tokens = prompt.iter().map(|t| t.id).collect();
        }
        Ok(())
    })?;
    if tokens.is_empty() {
        bail!(tr("lens-cli-no-tokens", "the text gives no tokens to lens"));
    }
    Ok(tokens)
}

/// The first layer whose top-1 the model's top-1 is, and the layer from
/// which it stays top-1 ([`LensResult::top1_forms`]).
pub(crate) fn settles(result: &LensResult) -> (Option<u32>, Option<u32>) {
    let f = result.top1_forms();
    (f.first, f.stays_from)
}

/// The text output: a header, one row per layer (`layer  'tok' p …
/// entropy`, marks where the model's top-1 first leads and from where it
/// stays), the model's row, then the attention's most attended positions.
pub(crate) fn text_table(result: &LensResult, tokens: &[TokenId], vocab: &Vocab) -> String {
    let quoted = |id: TokenId| format!("'{}'", vocab.readable(id));
    let mut out = tr_args(
        "lens-cli-heading",
        "layer lens after position { $position } ({ $token }), { $layers } layers; p over the whole vocabulary, entropy in bits",
        &[
            ("position", &result.position),
            ("token", &quoted(tokens[result.position])),
            ("layers", &result.layers.len()),
        ],
    );
    out.push('\n');
    let (first, stays) = settles(result);
    let row = |label: String, r: &LensRow, mark: &str| {
        let cells: Vec<String> = r
            .top
            .iter()
            .map(|c| crate::text::pad_right(&format!("{} {:.3}", quoted(c.id), c.p), 18))
            .collect();
        // Padded by display width: the model row's label is two Chinese
        // characters, four columns.
        format!(
            "{}  {}  H {:5.2}{mark}\n",
            crate::text::pad_left(&label, 5),
            cells.join(" "),
            r.entropy
        )
    };
    for r in &result.layers {
        let mut mark = String::new();
        if first == Some(r.layer) {
            mark += "  ";
            mark += &tr("lens-cli-mark-first", "← top-1 first");
        }
        if stays == Some(r.layer) {
            mark += "  ";
            mark += &tr("lens-cli-mark-stays", "← top-1 from here on");
        }
        out += &row(r.layer.to_string(), r, &mark);
    }
    out += &row(tr("lens-cli-row-model", "model"), &result.model, "");
    for a in &result.attention {
        let mut best: Vec<(usize, f32)> = a.mean.iter().copied().enumerate().collect();
        best.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        let cells: Vec<String> = best
            .iter()
            .take(4)
            .map(|&(pos, w)| format!("{pos} {} {w:.2}", quoted(tokens[pos])))
            .collect();
        out += &format!(
            "{} {:>2}  {}\n",
            tr("lens-cli-row-attention", "attn"),
            a.layer,
            cells.join("  ")
        );
    }
    out
}

/// The JSONL output: `{"type":"layer",…}` per layer, `{"type":"model",…}`,
/// then `{"type":"attention",…}` per layer when asked for.
fn write_jsonl(
    out: &mut impl Write,
    result: &LensResult,
    tokens: &[TokenId],
    vocab: &Vocab,
) -> Result<()> {
    let top = |r: &LensRow| {
        r.top
            .iter()
            .map(|c| json!({"id": c.id, "text": vocab.readable(c.id), "p": c.p, "logit": c.logit}))
            .collect::<Vec<_>>()
    };
    let (first, stays) = settles(result);
    for r in &result.layers {
        let line = json!({"type": "layer", "layer": r.layer, "top": top(r), "entropy": r.entropy});
        writeln!(out, "{}", crate::text::json_safe(&line.to_string()))?;
    }
    let m = &result.model;
    let line = json!({
        "type": "model",
        "layer": m.layer,
        "position": result.position,
        "token": tokens[result.position],
        "top": top(m),
        "entropy": m.entropy,
        "top1_first_layer": first,
        "top1_stays_from_layer": stays,
    });
    writeln!(out, "{}", crate::text::json_safe(&line.to_string()))?;
    for a in &result.attention {
        let line =
            json!({"type": "attention", "layer": a.layer, "weights": a.mean, "heads": a.heads});
        writeln!(out, "{line}")?;
    }
    Ok(())
}
