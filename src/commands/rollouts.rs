//! `tokenscope rollouts`: a reply up to one of its tokens, then where each
//! of the top candidates there leads ([`crate::engine::Command::Rollouts`]),
//! printed as one block per rollout or as JSONL rows.

use std::io::Write;

use serde_json::json;

use super::Ctx;
use super::headless::{
    RunError, done_json, error_line, one_turn, placement_and_model, start_engine_at, wait_for,
};
use crate::config::Config;
use crate::engine::{
    EngineError, Event, ModelRef, Placement, Rollout, RolloutRequest, Stats, StopReason, TokenId,
};
use crate::i18n::tr_args;

/// What `rollouts` is asked for besides the model and the config.
#[derive(Debug, Clone, Default)]
pub struct RolloutArgs {
    /// The user message (or the text to continue, `--raw`).
    pub prompt: String,
    /// Reply tokens generated before the rollouts start (0: at the first).
    pub at: usize,
    /// Rollouts (the top `n` candidates).
    pub n: usize,
    /// Tokens per rollout, the candidate included.
    pub m: usize,
    /// One JSON object per line instead of text.
    pub jsonl: bool,
}

/// `tokenscope rollouts`: the model from the flags (or `--server`'s, which
/// refuses rollouts with the reason), the rollouts printed as [`rollouts`]
/// does. Errors: a bad `--branches` or `--tokens` (before anything is
/// loaded), no model, the engine's.
pub fn rollouts_command(ctx: &Ctx, args: &RolloutArgs) -> anyhow::Result<()> {
    RolloutRequest::check_shape(args.n, args.m)
        .map_err(|e| anyhow::anyhow!("{e} (--branches N --tokens M)"))?;
    let config = ctx.config()?;
    let (placement, model) = placement_and_model(ctx, &config)?;
    rollouts(
        &placement,
        model,
        &config,
        ctx.flags.raw,
        args,
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

/// Generates the reply (the config's sampling) up to reply token `args.at`,
/// then rolls out the top `args.n` candidates there, `args.m` tokens each,
/// with the same sampling settings. Text: the reply so far, then one block
/// per rollout; JSONL: one `rollout` row each, then a `done` row (the
/// rollouts' stats). Errors: a reply that ends before `args.at`, the engine's.
pub(crate) fn rollouts(
    placement: &Placement,
    model: ModelRef,
    config: &Config,
    raw: bool,
    args: &RolloutArgs,
    out: &mut impl Write,
) -> Result<Vec<Rollout>, RunError> {
    let result = rollouts_streaming(placement, model, config, raw, args, out);
    error_line(args.jsonl, result, out)
}

fn rollouts_streaming(
    placement: &Placement,
    model: ModelRef,
    config: &Config,
    raw: bool,
    args: &RolloutArgs,
    out: &mut impl Write,
) -> Result<Vec<Rollout>, RunError> {
    let mut engine = start_engine_at(placement, model, config)?;
    let (conv, reply) = one_turn(config, &args.prompt);
    let mut req = conv.request(reply, &config.request_settings(raw));
    req.max_tokens = u32::try_from(args.at).unwrap_or(u32::MAX);
    req.top_k_inspect = 0;
    let sampling = req.sampling.clone();
    let id = engine.generate(req);
    let mut tokens: Vec<TokenId> = Vec::new();
    let mut reply_text = String::new();
    let done = wait_for(&engine.rx, id, |event| {
        match event {
            Event::Started { prompt, prefix, .. } => {
                tokens = prompt
                    .iter()
                    .map(|t| t.id)
                    .chain(prefix.iter().copied())
                    .collect();
            }
            Event::Token { step, .. } => {
                tokens.push(step.id);
                reply_text.push_str(&step.text);
            }
            Event::Tail { text, .. } => reply_text.push_str(text),
            _ => {}
        }
        Ok(())
    })?;
    match done {
        Event::Done { stats, .. } if stats.stop == StopReason::MaxTokens => {}
        Event::Done { stats, .. } => {
            return Err(RunError::Engine(EngineError::Refused(
                crate::engine::Words::tr_args(
                    "rollouts-reply-ended",
                    "the reply ended ({ $stop }) after { $n } tokens, before reply token { $at }: give --at { $last } or less",
                    &[
                        ("stop", &stats.stop.as_str()),
                        ("n", &stats.n_generated),
                        ("at", &args.at),
                        ("last", &stats.n_generated.saturating_sub(1)),
                    ],
                ),
            )));
        }
        _ => return Err(RunError::Cancelled),
    }
    let request = engine.next_request();
    engine.handle.rollouts(
        request,
        0,
        RolloutRequest {
            tokens,
            n: args.n,
            m: args.m,
            sampling,
            top_k_inspect: 0,
        },
    );
    let mut got = Vec::new();
    let done = wait_for(&engine.rx, request, |event| {
        if let Event::Rollouts { rollouts, .. } = event {
            got.clone_from(rollouts);
        }
        Ok(())
    })?;
    let stats = match done {
        Event::Done { stats, .. } => stats,
        _ => return Err(RunError::Cancelled),
    };
    if args.jsonl {
        for r in &got {
            let line = rollout_json(r).to_string();
            writeln!(out, "{}", crate::text::json_safe(&line))?;
        }
        writeln!(out, "{}", done_json(&stats))?;
    } else {
        write!(out, "{}", rollouts_text(&reply_text, args.at, &got, &stats))?;
    }
    Ok(got)
}

/// A rollout as a JSONL row: `{"type":"rollout","rank","tokens":[{"id",
/// "text","p"}…],"log_likelihood","mean_p"}`.
pub(crate) fn rollout_json(r: &Rollout) -> serde_json::Value {
    json!({
        "type": "rollout",
        "rank": r.rank,
        "tokens": r.tokens.iter().map(|t| json!({"id": t.id, "text": t.text, "p": t.p})).collect::<Vec<_>>(),
        "log_likelihood": r.log_likelihood,
        "mean_p": r.mean_p,
    })
}

/// The text output: the reply so far, then per rollout its rank, first
/// token with p, the continuation (escaped, on one line) and its numbers.
fn rollouts_text(reply: &str, at: usize, rollouts: &[Rollout], stats: &Stats) -> String {
    use crate::text::escape_text;
    let mut s = tr_args(
        "rollouts-reply-before",
        "reply before token { $at }: \"{ $reply }\"",
        &[
            ("at", &at),
            ("reply", &escape_text(reply).replace('\n', "\\n")),
        ],
    );
    s.push_str("\n\n");
    for r in rollouts {
        let Some(first) = r.tokens.first() else {
            continue;
        };
        let text: String = r.tokens.iter().map(|t| t.text.as_str()).collect();
        s.push_str(&format!(
            "#{} {:?} p {:.4}\n    {}\n    {}\n\n",
            r.rank,
            escape_text(&first.text),
            first.p,
            escape_text(&text).replace('\n', "\\n"),
            tr_args(
                "rollouts-numbers",
                "log-likelihood { $ll } nats · mean p { $mean } · { $n } tokens",
                &[
                    ("ll", &format!("{:.3}", r.log_likelihood)),
                    ("mean", &format!("{:.3}", r.mean_p)),
                    ("n", &r.tokens.len()),
                ],
            ),
        ));
    }
    s.push_str(&tr_args(
        "rollouts-summary",
        "{ $rollouts } rollouts, { $tokens } tokens in { $ms } ms",
        &[
            ("rollouts", &rollouts.len()),
            ("tokens", &stats.n_generated),
            ("ms", &format!("{:.0}", stats.ttft_ms)),
        ],
    ));
    s.push('\n');
    s
}
