//! `tokenscope bench`, comparing: teacher forcing a text through a model
//! (what `compare` does, [`COMPARE_CHUNK`] positions per batch) against
//! decoding the same tokens one at a time, and what the full-vocabulary KL
//! costs next to the forcing.
//!
//! Each model is loaded twice, into slots 0 and 1 of one engine process (a
//! model against itself costs the same as against a variant: the same
//! vocabulary, the same shapes). Targets (issue 10): forcing ≥ 5× faster
//! than one at a time; KL ≤ 10% of the forcing time on Gemma 3's 262,144
//! tokens.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

use super::table::{compare_cols, head, model_label};
use crate::catalog::ModelCard;
use crate::commands::headless::wait_for;
use crate::config::Config;
use crate::engine::{
    COMPARE_CHUNK, ChatMessage, Command, CompareInput, CompareRequest, EngineHandle, Event,
    GenerateRequest, ModelRef, Placement, ReplyPrefix, Role, SamplingParams, Stats, TokenId,
};
use crate::i18n::{tr, tr_args};
use crate::text::pad_right as pad;

/// A text of about 250 tokens; `run` changes its start.
fn text(run: usize) -> String {
    let mut t = format!("Entry {run}. ");
    for i in 0..8 {
        t += &format!(
            "Night {i}: the keeper trimmed the wick, wound the clockwork that turned the lens, and logged the ships that passed the reef before dawn. "
        );
    }
    t
}

/// What one comparison of a text cost: (token ids compared, engine seconds
/// forcing every model, engine seconds on KL, top-1 and log-sum-exp).
fn force(
    handle: &mut EngineHandle,
    rx: &std::sync::mpsc::Receiver<Event>,
    request: u64,
    text: String,
) -> Result<(Vec<TokenId>, f64, f64)> {
    handle.send(Command::Compare {
        request,
        req: CompareRequest {
            slots: vec![0, 1],
            input: CompareInput::Text { text, bos: true },
            top_k: 0,
        },
    });
    let (mut ids, mut dec, mut kl) = (Vec::new(), 0.0, 0.0);
    wait_for(rx, request, |e| {
        if let Event::Compared {
            rows,
            decode_s,
            kl_s,
            ..
        } = e
        {
            ids.extend(rows.iter().map(|r| r.id));
            dec += decode_s;
            kl += kl_s;
        }
        Ok(())
    })?;
    Ok((ids, dec, kl))
}

/// Seconds to decode `ids` one at a time in slot 0 (forced reply tokens of a
/// raw prompt, inspector off), wall clock as the caller sees it.
fn one_at_a_time(
    handle: &mut EngineHandle,
    rx: &std::sync::mpsc::Receiver<Event>,
    request: u64,
    ids: &[TokenId],
) -> Result<f64> {
    let mut req = GenerateRequest::new(
        vec![ChatMessage::new(Role::User, format!("Entry {request}."))],
        SamplingParams::greedy(),
        0,
        0,
    );
    req.raw = true;
    req.prefix = ReplyPrefix::Tokens(ids.to_vec());
    req.score_prefix = true;
    let t = Instant::now();
    handle.generate(request, 0, req);
    wait_for(rx, request, |_| Ok(()))?;
    Ok(t.elapsed().as_secs_f64())
}

/// Plain prefill of `text` in slot 0 (raw, no reply, logits of the last
/// position only): the ceiling for forcing, which also needs every
/// position's logits.
fn prefill(
    handle: &mut EngineHandle,
    rx: &std::sync::mpsc::Receiver<Event>,
    request: u64,
    text: String,
) -> Result<Stats> {
    let mut req = GenerateRequest::new(
        vec![ChatMessage::new(Role::User, text)],
        SamplingParams::greedy(),
        0,
        0,
    );
    req.raw = true;
    handle.generate(request, 0, req);
    match wait_for(rx, request, |_| Ok(()))? {
        Event::Done { stats, .. } => Ok(stats),
        other => anyhow::bail!("prefill ended without stats: {other:?}"),
    }
}

/// The section: per model, tokens forced per second and model against one at
/// a time, and the KL's share of the forcing time.
pub fn run(
    models: &[ModelCard],
    config: &Config,
    process: &Placement,
    out: &mut impl Write,
) -> Result<()> {
    writeln!(
        out,
        "\n{}",
        tr_args(
            "bench-compare-title",
            "teacher forcing ({ $chunk } positions per batch) vs decoding the same tokens one at a time, and the full-vocabulary KL's cost (engine process, each model in two slots); ceiling: plain prefill (logits of the last position only, strictly less work than forcing, which needs them at every position) over one at a time",
            &[("chunk", &COMPARE_CHUNK)],
        )
    )?;
    writeln!(out, "{}", head(&compare_cols()))?;
    for card in models {
        let (mut handle, rx) = EngineHandle::spawn_with_receiver_at(process);
        let mut name = String::new();
        for slot in 0..2u32 {
            let request = u64::from(slot) + 1;
            let model = ModelRef::Local(card.path.clone());
            handle.load(request, slot, model, config.load_settings());
            if let Event::Loaded { info, .. } = wait_for(&rx, request, |_| Ok(()))? {
                name = model_label(&info.name, &info.quant, info.n_vocab);
            }
        }
        // Warm-up (first decodes allocate buffers), then one measured run each.
        let (ids, _, _) = force(&mut handle, &rx, 10, text(0))?;
        one_at_a_time(&mut handle, &rx, 11, &ids[..ids.len().min(8)])?;
        prefill(&mut handle, &rx, 14, text(0))?;
        let (ids, dec, kl) = force(&mut handle, &rx, 12, text(1))?;
        let single = one_at_a_time(&mut handle, &rx, 13, &ids)?;
        let plain = prefill(&mut handle, &rx, 15, text(1))?.prompt_tps;
        // Forcing time per model: the engine forced both slots.
        let per_model = dec / 2.0;
        let n = ids.len() as f64;
        writeln!(
            out,
            "{} {:>7} {:>10.1} {:>10.1} {:>7.1}x {:>10.1} {:>7.1}x {:>10.1} {:>8.1} {:>8.1}%",
            pad(&name, 44),
            ids.len(),
            n / per_model.max(1e-9),
            n / single.max(1e-9),
            single / per_model.max(1e-9),
            plain,
            plain * single / n.max(1.0),
            dec * 1000.0,
            kl * 1000.0,
            kl / dec.max(1e-9) * 100.0
        )?;
        handle.shutdown();
    }
    writeln!(
        out,
        "{}",
        tr(
            "bench-compare-targets",
            "(targets: forcing ≥ 5x one at a time; KL ≤ 10% of the forcing time on Gemma 3's 262k vocabulary)"
        )
    )?;
    Ok(())
}
