//! `tokenscope bench`: generation speed with the inspector on and off, and
//! what the inspector costs per token, measured on real models.

use std::io::Write;

use anyhow::Result;

use crate::catalog::ModelCard;
use crate::config::Config;
use crate::engine::{ChatMessage, EngineHandle, Event, Role, Stats};
use crate::headless::{request_for, start_engine, wait_for};

const PROMPT: &str =
    "Write a long story about a lighthouse keeper who finds a message in a bottle.";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn generate(
    engine: &mut EngineHandle,
    rx: &std::sync::mpsc::Receiver<Event>,
    config: &Config,
    k: usize,
) -> Result<Stats> {
    let mut c = config.clone();
    c.inspector_top_k = k;
    let id = engine.generate(request_for(
        &c,
        vec![ChatMessage::new(Role::User, PROMPT)],
        true,
    ));
    match wait_for(rx, id, |_| Ok(()))? {
        Event::Done { stats, .. } => Ok(stats),
        _ => anyhow::bail!("generation ended without stats"),
    }
}

/// The inspector's pure math alone (log-sum-exp, entropy, top-k) on random
/// logits of a vocabulary of `n_vocab` tokens: mean µs per token.
pub fn inspector_micro(n_vocab: usize, k: usize, iterations: u32) -> f64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let logits: Vec<f32> = (0..n_vocab)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_000) as f32 / 1000.0 - 10.0
        })
        .collect();
    let mut topk = crate::engine::probs::TopK::default();
    let start = std::time::Instant::now();
    let mut sink = 0.0f32;
    for _ in 0..iterations {
        let s = topk.summarize(std::hint::black_box(&logits), k);
        sink += s.lse;
    }
    std::hint::black_box(sink);
    start.elapsed().as_secs_f64() * 1e6 / iterations as f64
}

pub fn run(
    models: &[ModelCard],
    config: &Config,
    tokens: u32,
    runs: u32,
    out: &mut impl Write,
) -> Result<()> {
    let mut config = config.clone();
    config.max_tokens = tokens;
    writeln!(
        out,
        "machine: {} logical CPUs, {} threads used · {} tokens per run, median of {} runs",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::engine::physical_cores_or(config.engine.threads),
        tokens,
        runs.max(1)
    )?;
    writeln!(
        out,
        "{:<34} {:>9} {:>12} {:>12} {:>13} {:>10}",
        "model", "prompt/s", "gen/s insp.", "gen/s off", "inspector µs", "overhead"
    )?;
    for n in [49_152usize, 262_144] {
        writeln!(
            out,
            "inspector math alone, {n} logits, top {}: {:.1} µs per token",
            config.inspector_top_k,
            inspector_micro(n, config.inspector_top_k, 300)
        )?;
    }
    for card in models {
        let (mut engine, rx, info) = start_engine(card.path.clone(), &config)?;
        let k = config.inspector_top_k.max(1);
        // Warm-up (first decode allocates buffers).
        generate(&mut engine, &rx, &config, k)?;
        let (mut on, mut off, mut insp, mut prompt) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs.max(1) {
            let s = generate(&mut engine, &rx, &config, k)?;
            on.push(s.gen_tps);
            insp.push(s.inspector_us_per_token);
            let s = generate(&mut engine, &rx, &config, 0)?;
            off.push(s.gen_tps);
            prompt.push(s.prompt_tps);
        }
        let (on, off, insp) = (median(on), median(off), median(insp));
        // Inspector time as a share of the time per token with the inspector on.
        let overhead = if on > 0.0 {
            insp * on / 1e6 * 100.0
        } else {
            0.0
        };
        writeln!(
            out,
            "{:<34} {:>9.1} {:>12.1} {:>12.1} {:>13.1} {:>9.2}%",
            format!(
                "{} ({}, {}k vocab)",
                info.name,
                info.quant,
                info.n_vocab / 1000
            ),
            median(prompt),
            on,
            off,
            insp,
            overhead
        )?;
    }
    Ok(())
}
