//! `tokenscope bench`: generation speed with the inspector on and off, and
//! what the inspector costs per token, measured on real models.

use std::io::Write;

use anyhow::Result;

use crate::catalog::ModelCard;
use crate::config::Config;
use crate::engine::{ChatMessage, Event, Role, Stats};
use crate::headless::{LocalEngine, request_for, start_engine, wait_for};

const PROMPT: &str =
    "Write a long story about a lighthouse keeper who finds a message in a bottle.";

/// Generated tokens and generation seconds, summed over runs.
#[derive(Default)]
struct Totals {
    tokens: f64,
    seconds: f64,
}

impl Totals {
    fn add(&mut self, s: &Stats) {
        if s.gen_tps > 0.0 {
            self.tokens += s.n_generated as f64;
            self.seconds += s.n_generated as f64 / s.gen_tps;
        }
    }

    fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.tokens / self.seconds
        } else {
            0.0
        }
    }
}

/// One reply; `run` makes each prompt different so nothing is reused from the KV
/// cache and prompt speed is measured on the whole prompt.
fn generate(engine: &mut LocalEngine, config: &Config, k: usize, run: usize) -> Result<Stats> {
    let mut c = config.clone();
    c.inspector_top_k = k;
    let prompt = format!("Story {run}. {PROMPT}");
    let id = engine.generate(request_for(
        &c,
        vec![ChatMessage::new(Role::User, prompt)],
        true,
    ));
    match wait_for(&engine.rx, id, |_| Ok(()))? {
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
        "machine: {} logical CPUs, {} threads used · {} tokens per run, {} runs each",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::engine::physical_cores_or(config.engine.threads),
        tokens,
        runs.max(1)
    )?;
    for n in [49_152usize, 262_144] {
        writeln!(
            out,
            "inspector math alone, {n} logits, top {}: {:.1} µs per token",
            config.inspector_top_k,
            inspector_micro(n, config.inspector_top_k, 300)
        )?;
    }
    writeln!(
        out,
        "{:<44} {:>9} {:>12} {:>12} {:>13} {:>10}",
        "model", "prompt/s", "gen/s insp.", "gen/s off", "inspector µs", "overhead"
    )?;
    for card in models {
        let mut engine = start_engine(card.path.clone(), &config)?;
        let info = engine.info.clone();
        let k = config.inspector_top_k.max(1);
        // Warm-up (first decode allocates buffers).
        generate(&mut engine, &config, k, 0)?;
        // Totals over all runs, so a reply that ends early (end-of-generation
        // token) weighs by its length instead of skewing a median.
        let (mut on, mut off) = (Totals::default(), Totals::default());
        let (mut insp_us, mut prompt_tokens, mut prompt_s) = (0.0, 0.0, 0.0);
        for run in 0..runs.max(1) as usize {
            let s = generate(&mut engine, &config, k, 2 * run + 1)?;
            on.add(&s);
            insp_us += s.inspector_us_per_token * s.n_generated as f64;
            let s = generate(&mut engine, &config, 0, 2 * run + 2)?;
            off.add(&s);
            prompt_tokens += s.n_prompt_evaluated as f64;
            prompt_s += s.n_prompt_evaluated as f64 / s.prompt_tps.max(1e-9);
        }
        let insp = insp_us / on.tokens.max(1.0);
        let (on, off) = (on.rate(), off.rate());
        // Inspector time as a share of the time per token with the inspector on.
        let overhead = if on > 0.0 {
            insp * on / 1e6 * 100.0
        } else {
            0.0
        };
        writeln!(
            out,
            "{:<44} {:>9.1} {:>12.1} {:>12.1} {:>13.1} {:>9.2}%",
            format!(
                "{} ({}, {}k vocab)",
                info.name,
                info.quant,
                info.n_vocab / 1000
            ),
            prompt_tokens / prompt_s.max(1e-9),
            on,
            off,
            insp,
            overhead
        )?;
    }
    Ok(())
}
