//! `tokenscope bench --only rollouts`: all the rollouts of the top
//! candidates ([`crate::engine::Command::Rollouts`], 5 × 24 tokens) against
//! one greedy reply of 24 tokens from the same cached prompt, each timed
//! whole (request sent to final event, as the caller waits for it).

use std::io::Write;
use std::time::Instant;

use anyhow::{Result, bail};

use super::super::headless::{LocalEngine, request_for, start_engine_at, wait_for};
use crate::catalog::ModelCard;
use crate::config::Config;
use crate::engine::{Event, ModelRef, Placement, RolloutRequest, SamplingParams, TokenId};

/// Rollouts per request and tokens per rollout (the defaults).
const N: usize = 5;
const M: usize = 24;
const PROMPT: &str = "What is the capital of France?";

/// Per model: the median whole time of the rollouts and of the greedy
/// reply over `runs` alternating runs, and their ratio (target ≤ 2).
pub(crate) fn run(
    models: &[ModelCard],
    config: &Config,
    runs: u32,
    process: &Placement,
    out: &mut impl Write,
) -> Result<()> {
    writeln!(
        out,
        "{:<44} {:>14} {:>16} {:>7}",
        "rollouts (5 × 24 tokens, greedy)", "one reply ms", "all rollouts ms", "ratio"
    )?;
    for card in models {
        let mut engine = start_engine_at(process, ModelRef::Local(card.path.clone()), config)?;
        // Warm-up, and the prompt's tokens (cached from now on).
        let (_, tokens) = reply(&mut engine, config)?;
        rollouts(&mut engine, &tokens)?;
        let (mut one, mut all) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            one.push(reply(&mut engine, config)?.0);
            all.push(rollouts(&mut engine, &tokens)?);
        }
        let (one, all) = (median(&mut one), median(&mut all));
        writeln!(
            out,
            "{:<44} {:>14.0} {:>16.0} {:>6.2}x",
            engine.info.name,
            one,
            all,
            all / one.max(1e-9)
        )?;
    }
    Ok(())
}

/// One greedy reply of `M` tokens (inspector on, as the app runs it): its
/// whole time in ms and the prompt's token ids.
fn reply(engine: &mut LocalEngine, config: &Config) -> Result<(f64, Vec<TokenId>)> {
    let mut req = request_for(config, PROMPT, false);
    req.sampling = SamplingParams::greedy();
    req.max_tokens = M as u32;
    let t = Instant::now();
    let id = engine.generate(req);
    let mut tokens = Vec::new();
    let done = wait_for(&engine.rx, id, |e| {
        if let Event::Started { prompt, .. } = e {
            tokens = prompt.iter().map(|t| t.id).collect();
        }
        Ok(())
    })?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    match done {
        Event::Done { .. } => Ok((ms, tokens)),
        _ => bail!("the reply ended without stats"),
    }
}

/// All `N` rollouts of `M` tokens after `tokens`: whole time in ms.
fn rollouts(engine: &mut LocalEngine, tokens: &[TokenId]) -> Result<f64> {
    let t = Instant::now();
    let id = engine.next_request();
    engine.handle.rollouts(
        id,
        0,
        RolloutRequest {
            tokens: tokens.to_vec(),
            n: N,
            m: M,
            sampling: SamplingParams::greedy(),
            top_k_inspect: 0,
        },
    );
    match wait_for(&engine.rx, id, |_| Ok(()))? {
        Event::Done { .. } => Ok(t.elapsed().as_secs_f64() * 1e3),
        _ => bail!("the rollouts ended without stats"),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
