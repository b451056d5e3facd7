//! `tokenscope bench`, the layer lens: what one position's lens costs on
//! each model, in time and in memory of the engine process (issue 22's
//! budget: one position on Gemma 3, 18 layers × 262,144 tokens, ≤ 1 s on
//! 2 cores; ≤ 256 MB above the loaded model).
//!
//! Measured in the engine's own process, as the app runs it: wall time at
//! the receiving end (the result's trip through the pipe included), and the
//! process's proportional set size (PSS, `/proc/PID/smaps_rollup`: a file
//! page mapped twice, by llama.cpp and by the lens's map of the output
//! matrix, counts once) and anonymous memory, before the first lens and
//! after.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

use crate::catalog::ModelCard;
use crate::commands::headless::{LocalEngine, start_engine_at};
use crate::commands::lens::{lens_of, prompt_tokens};
use crate::config::Config;
use crate::engine::{LensRequest, LensResult, ModelRef, Placement, TokenId};
use crate::i18n::tr_args;

const TEXT: &str = "The lighthouse keeper climbed the stairs every evening, lit the lamp, and wrote the weather in his logbook. One night in November the lamp would not light, and he went down to the village for oil, where the baker told him that a ship had been seen near the reef.";

/// (PSS, anonymous) of process `pid` in bytes, when readable.
fn memory(pid: Option<u32>) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", pid?)).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    Some((field("Pss:")?, field("Anonymous:")?))
}

/// One lens, timed at the receiving end (ms).
fn lens(
    engine: &mut LocalEngine,
    tokens: &[TokenId],
    position: usize,
    attention: bool,
) -> Result<(f64, LensResult)> {
    let sent = Instant::now();
    let result = lens_of(
        engine,
        LensRequest {
            tokens: tokens.to_vec(),
            position,
            top_k: 10,
            attention,
        },
    )?;
    Ok((sent.elapsed().as_secs_f64() * 1e3, result))
}

fn mib(bytes: i64) -> String {
    format!("{:+.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The lens lines of every model in `models`.
pub(crate) fn run(
    models: &[ModelCard],
    config: &Config,
    runs: u32,
    process: &Placement,
    out: &mut impl Write,
) -> Result<()> {
    for card in models {
        let mut engine = start_engine_at(process, ModelRef::Local(card.path.clone()), config)?;
        let info = engine.info.clone();
        let tokens = prompt_tokens(&mut engine, config, TEXT, true)?;
        let pid = engine.handle.child_pid();
        let before = memory(pid);
        let n = tokens.len() - 1;
        // The first lens makes the lens context and evaluates the whole text.
        let (first_ms, _) = lens(&mut engine, &tokens, n, false)?;
        // Then positions inside it: one token each from the lens's cache.
        let (mut wall, mut decode, mut head) = (0.0, 0.0, 0.0);
        let runs = runs.max(1) as usize;
        for r in 0..runs {
            let (ms, res) = lens(&mut engine, &tokens, n - 1 - r % (n - 1).max(1), false)?;
            wall += ms;
            decode += res.decode_ms;
            head += res.head_ms;
        }
        let rows = memory(pid);
        let (attn_first_ms, _) = lens(&mut engine, &tokens, n, true)?;
        let (attn_ms, _) = lens(&mut engine, &tokens, n - 1, true)?;
        let with_attention = memory(pid);
        let k = runs as f64;
        let ms = |v: f64| format!("{v:.0}");
        writeln!(
            out,
            "{}",
            tr_args(
                "bench-lens-time",
                "lens { $name } ({ $layers } layers × { $k }k vocab, { $threads } threads): one position { $ms } ms (decode { $decode } ms, head over every layer { $head } ms; mean of { $runs }); first lens { $first } ms (lens context made, { $tokens } tokens evaluated); with attention { $attn } ms (first { $attn_first } ms)",
                &[
                    ("name", &info.name),
                    ("layers", &info.n_layer),
                    ("k", &(info.n_vocab / 1000)),
                    ("threads", &info.threads),
                    ("ms", &ms(wall / k)),
                    ("decode", &ms(decode / k)),
                    ("head", &ms(head / k)),
                    ("runs", &runs),
                    ("first", &ms(first_ms)),
                    ("tokens", &(n + 1)),
                    ("attn", &ms(attn_ms)),
                    ("attn_first", &ms(attn_first_ms)),
                ],
            )
        )?;
        match (before, rows, with_attention) {
            (Some(b), Some(r), Some(a)) => writeln!(
                out,
                "{}",
                tr_args(
                    "bench-lens-memory",
                    "lens { $name } memory above the loaded model: { $pss } PSS ({ $anon } anonymous); with the attention context { $attn_pss } PSS ({ $attn_anon } anonymous); the lens contexts sized to the text (from 512 tokens), the model's { $ctx } tokens",
                    &[
                        ("name", &info.name),
                        ("pss", &mib(r.0 as i64 - b.0 as i64)),
                        ("anon", &mib(r.1 as i64 - b.1 as i64)),
                        ("attn_pss", &mib(a.0 as i64 - b.0 as i64)),
                        ("attn_anon", &mib(a.1 as i64 - b.1 as i64)),
                        ("ctx", &info.n_ctx),
                    ],
                )
            )?,
            _ => writeln!(
                out,
                "{}",
                tr_args(
                    "bench-lens-no-memory",
                    "lens { $name } memory: not measured (no /proc/PID/smaps_rollup)",
                    &[("name", &info.name)],
                )
            )?,
        }
    }
    Ok(())
}
