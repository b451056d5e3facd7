//! `tokenscope bench --only rollouts`: all the rollouts of the top
//! candidates ([`crate::engine::Command::Rollouts`], 5 × 24 tokens) against
//! one greedy reply of 24 tokens from the same cached prompt, each timed
//! whole (request sent to final event, as the caller waits for it). A reply
//! or a rollout may end at an end-of-generation token before 24, so the
//! tokens each made are printed too, and the time per decode step of each:
//! one token per step for the reply, one per live rollout for the rollouts.

use std::io::Write;
use std::time::Instant;

use anyhow::{Result, bail};

use super::super::headless::{LocalEngine, request_for, start_engine_at, wait_for};
use super::table::{head, rollouts_cols};
use crate::catalog::ModelCard;
use crate::config::Config;
use crate::engine::{Event, ModelRef, Placement, RolloutRequest, SamplingParams, TokenId};
use crate::text::pad_right as pad;

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
    writeln!(out, "{}", head(&rollouts_cols(N, M)))?;
    for card in models {
        let mut engine = start_engine_at(process, ModelRef::Local(card.path.clone()), config)?;
        // Warm-up, and the prompt's tokens (cached from now on).
        let (_, tokens, _) = reply(&mut engine, config)?;
        rollouts(&mut engine, &tokens)?;
        let (mut one, mut all) = (Vec::new(), Vec::new());
        let (mut reply_len, mut steps) = (0, 0);
        for _ in 0..runs.max(1) {
            let (ms, _, n) = reply(&mut engine, config)?;
            one.push(ms);
            reply_len = n;
            let (ms, longest) = rollouts(&mut engine, &tokens)?;
            all.push(ms);
            steps = longest;
        }
        let (one, all) = (median(&mut one), median(&mut all));
        writeln!(
            out,
            "{} {:>8.0} ({:>2}) {:>10.0} ({:>2}) {:>6.2}x {:>14.1} / {:<5.1}",
            pad(&engine.info.name, 44),
            one,
            reply_len,
            all,
            steps,
            all / one.max(1e-9),
            one / reply_len.max(1) as f64,
            all / steps.max(1) as f64,
        )?;
    }
    Ok(())
}

/// One greedy reply of at most `M` tokens (inspector on, as the app runs
/// it): its whole time in ms, the prompt's token ids and the tokens made.
fn reply(engine: &mut LocalEngine, config: &Config) -> Result<(f64, Vec<TokenId>, usize)> {
    let mut req = request_for(config, PROMPT, false);
    req.sampling = SamplingParams::greedy();
    req.max_tokens = M as u32;
    let t = Instant::now();
    let id = engine.generate(req);
    let (mut tokens, mut made) = (Vec::new(), 0);
    let done = wait_for(&engine.rx, id, |e| {
        match e {
            Event::Started { prompt, .. } => tokens = prompt.iter().map(|t| t.id).collect(),
            Event::Token { .. } => made += 1,
            _ => {}
        }
        Ok(())
    })?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    match done {
        Event::Done { .. } => Ok((ms, tokens, made)),
        _ => bail!("the reply ended without stats"),
    }
}

/// All `N` rollouts of at most `M` tokens after `tokens`: whole time in ms
/// and the longest rollout's length (the decode steps taken).
fn rollouts(engine: &mut LocalEngine, tokens: &[TokenId]) -> Result<(f64, usize)> {
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
    let mut longest = 0;
    let done = wait_for(&engine.rx, id, |e| {
        if let Event::Rollouts { rollouts, .. } = e {
            longest = rollouts.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        }
        Ok(())
    })?;
    match done {
        Event::Done { .. } => Ok((t.elapsed().as_secs_f64() * 1e3, longest)),
        _ => bail!("the rollouts ended without stats"),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
