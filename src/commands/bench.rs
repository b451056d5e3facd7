//! `tokenscope bench`: generation speed with the inspector on and off, what
//! the inspector costs per token, the engine thread against its process,
//! step mode and branching, and scoring a text against prefilling it,
//! measured on real models ([`run`]); teacher forcing and KL ([`compare`]);
//! then the UI's frame cost and key latency, the remote client, and a long
//! chat ([`bench_command`]). `--only` picks one ([`BenchSection`]).

pub mod compare;
pub(crate) mod kv;
mod lens;
pub(crate) mod peer;
mod rollouts;
mod table;

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::headless::{LocalEngine, request_for, start_engine_at, wait_for};
use super::{Ctx, engine_placement, remote_target};
use crate::catalog::ModelCard;
use crate::cli::BenchSection;
use crate::config::Config;
use crate::engine::remote::RemoteTarget;
use crate::engine::{
    Command, Event, GenerateRequest, ModelRef, Placement, ReplyPrefix, SCORE_CHUNK, ScoreRequest,
    Stats, Steer, TokenStep,
};
use crate::i18n::{tr, tr_args};
use crate::text::pad_right as pad;
use table::{
    generation_cols, generation_row, head, model_label, process_cols, score_cols, step_cols,
};

/// `tokenscope bench`: on the configured model (else every model found),
/// the sections of [`run`], then the UI under a token stream, the remote
/// client against a local llama-server (when `fetch-server` fetched one) and
/// a long chat; `only` picks one section. With `--server`: only the remote
/// client's cost per streamed token against that server. With `kv`, only
/// what the KV cache saves ([`kv`]). Errors: no model, a model that does
/// not load, output that cannot be written.
pub fn bench_command(
    ctx: &Ctx,
    tokens: u32,
    runs: u32,
    only: Option<BenchSection>,
    kv: bool,
) -> Result<()> {
    let config = ctx.config()?;
    if kv && remote_target(&config, &ctx.flags)?.is_some() {
        bail!(tr(
            "bench-kv-remote",
            "bench --kv measures a model in this process (a server keeps its KV cache to itself): leave out --server"
        ));
    }
    // Against a server: the client's own cost per streamed token.
    if let Some(target) = remote_target(&config, &ctx.flags)? {
        let model = ctx.flags.model.clone().unwrap_or_default();
        println!("{}", remote_bench_line(&target, &model, tokens, runs)?);
        return Ok(());
    }
    let places = ctx.places(&config);
    let models = match &config.default_model {
        Some(name) => vec![places.resolve(name)?],
        None => {
            let cards: Vec<ModelCard> = places.discover().into_iter().flatten().collect();
            if cards.is_empty() {
                bail!(tr(
                    "bench-no-models",
                    "no models to benchmark: run `tokenscope fetch-demos` first"
                ));
            }
            cards
        }
    };
    let mut out = std::io::stdout().lock();
    if kv {
        return kv::run(&models, &config, tokens, &engine_placement()?, &mut out);
    }
    run(
        &models,
        &config,
        tokens,
        runs,
        only,
        &engine_placement()?,
        &mut out,
    )?;
    // The UI under a token stream: update + full redraw per token.
    if wanted(only, BenchSection::Ui) {
        writeln!(out, "{}", crate::tui::bench::bench_ui(5000, 120, 40))?;
        writeln!(out, "{}", crate::tui::bench::bench_latency(200, 100))?;
        writeln!(out, "{}", crate::tui::bench::bench_whatif(500))?;
    }
    // The remote client against a local llama-server, when one was fetched.
    let paths = &ctx.paths;
    let exe = crate::llama_server::server_exe(&paths.data_dir);
    if !wanted(only, BenchSection::Remote) {
    } else if exe.is_file() {
        let server = crate::llama_server::LlamaServer::start(
            &exe,
            &models[0].path,
            &["-c", "2048", "-np", "1", "--no-webui"],
            &paths.log_dir,
            std::time::Duration::from_secs(120),
        )
        .context("starting llama-server for the remote client's bench")?;
        let target = RemoteTarget::new(&server.url, None)?;
        writeln!(out, "{}", remote_bench_line(&target, "", tokens, runs)?)?;
    } else {
        writeln!(
            out,
            "{}",
            tr(
                "bench-remote-not-measured",
                "remote client: not measured (`tokenscope fetch-server` fetches a llama-server to measure it against)"
            )
        )?;
    }
    // Side by side with llama-server, when one was fetched.
    if !wanted(only, BenchSection::Peer) {
    } else if exe.is_file() {
        peer::run(
            &models,
            &config,
            runs,
            &engine_placement()?,
            &exe,
            &paths.log_dir,
            &mut out,
        )?;
    } else {
        writeln!(
            out,
            "{}",
            tr(
                "bench-peer-not-measured",
                "tokenscope vs llama-server: not measured (`tokenscope fetch-server` fetches a llama-server to measure against)"
            )
        )?;
    }
    // A long chat: 50,000 tokens with traces (64 candidates each), opened, then streamed into.
    if wanted(only, BenchSection::Long) {
        writeln!(
            out,
            "{}",
            crate::tui::bench_long::bench_long_chat(50_000, 64, 1000, 120, 40)
        )?;
    }
    Ok(())
}

/// The bench line of the remote client's cost per streamed token.
fn remote_bench_line(target: &RemoteTarget, model: &str, tokens: u32, runs: u32) -> Result<String> {
    let o = crate::engine::remote::client_overhead(target, model, tokens, 20, runs)?;
    Ok(tr_args(
        "bench-remote-line",
        "remote client at { $url }: { $us } µs per streamed token (SSE + JSON + step + event; { $tokens } tokens × { $candidates } candidates, { $bytes } bytes of stream, { $runs } runs; target ≤ 500 µs)",
        &[
            ("url", &target.url),
            ("us", &format!("{:.1}", o.us_per_token)),
            ("tokens", &o.tokens),
            ("candidates", &o.candidates),
            ("bytes", &o.bytes),
            ("runs", &runs.max(1)),
        ],
    ))
}

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
    let id = engine.generate(request_for(&c, &prompt, true));
    match wait_for(&engine.rx, id, |_| Ok(()))? {
        Event::Done { stats, .. } => Ok(stats),
        _ => anyhow::bail!("generation ended without stats"),
    }
}

/// The inspector's pure math alone (log-sum-exp, entropy, top-k) on random
/// logits of a vocabulary of `n_vocab` tokens: mean µs per token.
pub(crate) fn inspector_micro(n_vocab: usize, k: usize, iterations: u32) -> f64 {
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

/// Whether `section` runs under `--only` (`None`: all of them).
pub(crate) fn wanted(only: Option<BenchSection>, section: BenchSection) -> bool {
    only.is_none_or(|o| o == section)
}

/// The bench: the table of generation speeds (engine on a thread), then the
/// engine thread against the engine process at `process` (load time, time to
/// first token, decode speed with the inspector on, as the caller receives
/// the tokens).
pub(crate) fn run(
    models: &[ModelCard],
    config: &Config,
    tokens: u32,
    runs: u32,
    only: Option<BenchSection>,
    process: &Placement,
    out: &mut impl Write,
) -> Result<()> {
    let mut config = config.clone();
    config.max_tokens = tokens;
    writeln!(
        out,
        "{}",
        tr_args(
            "bench-machine",
            "machine: { $cpus } logical CPUs, { $threads } threads used · { $tokens } tokens per run, { $runs } runs each",
            &[
                (
                    "cpus",
                    &std::thread::available_parallelism().map_or(0, |n| n.get())
                ),
                (
                    "threads",
                    &crate::engine::physical_cores_or(config.engine.threads)
                ),
                ("tokens", &tokens),
                ("runs", &runs.max(1)),
            ],
        )
    )?;
    if wanted(only, BenchSection::Generation) {
        for n in [49_152usize, 262_144] {
            writeln!(
                out,
                "{}",
                tr_args(
                    "bench-inspector-math",
                    "inspector math alone, { $n } logits, top { $k }: { $us } µs per token",
                    &[
                        ("n", &n),
                        ("k", &config.inspector_top_k),
                        (
                            "us",
                            &format!("{:.1}", inspector_micro(n, config.inspector_top_k, 300))
                        ),
                    ],
                )
            )?;
        }
        writeln!(out, "{}", head(&generation_cols()))?;
        for card in models {
            // In its own process, as the app runs it: a model that crashes
            // llama.cpp is an error here, not the end of the bench.
            let mut engine = start_engine_at(process, ModelRef::Local(card.path.clone()), &config)?;
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
                "{}",
                generation_row(
                    &model_label(&info.name, &info.quant, info.n_vocab),
                    prompt_tokens / prompt_s.max(1e-9),
                    on,
                    off,
                    insp,
                    overhead
                )
            )?;
        }
    }
    if wanted(only, BenchSection::Process) {
        placements(models, &config, runs, process, out)?;
    }
    if wanted(only, BenchSection::Step) {
        step_and_branch(models, &config, process, out)?;
    }
    if wanted(only, BenchSection::Score) {
        scoring(models, &config, runs, process, out)?;
    }
    if wanted(only, BenchSection::Compare) {
        compare::run(models, &config, process, out)?;
    }
    if wanted(only, BenchSection::Lens) {
        lens::run(models, &config, runs, process, out)?;
    }
    if wanted(only, BenchSection::Rollouts) {
        rollouts::run(models, &config, runs, process, out)?;
    }
    Ok(())
}

/// What the caller of an engine sees of one reply: wall times measured at
/// the receiving end, so that the pipe's cost is in them.
struct Seen {
    /// Time to first token, ms (from sending the request).
    ttft_ms: f64,
    /// Tokens after the first, and the seconds they took to arrive.
    tokens: f64,
    seconds: f64,
}

fn generate_seen(engine: &mut LocalEngine, config: &Config, run: usize) -> Result<Seen> {
    let prompt = format!("Story {run}. {PROMPT}");
    let sent = Instant::now();
    let id = engine.generate(request_for(config, &prompt, true));
    let (mut first, mut last, mut n) = (None, sent, 0usize);
    wait_for(&engine.rx, id, |e| {
        if let Event::Token { .. } = e {
            last = Instant::now();
            first.get_or_insert(last);
            n += 1;
        }
        Ok(())
    })?;
    let first = first.unwrap_or(last);
    Ok(Seen {
        ttft_ms: (first - sent).as_secs_f64() * 1000.0,
        tokens: n.saturating_sub(1) as f64,
        seconds: (last - first).as_secs_f64(),
    })
}

/// The engine on a thread against the engine in a child process, both loaded
/// at once and their runs interleaved (so that a drift of the machine's speed
/// hits both alike).
fn placements(
    models: &[ModelCard],
    config: &Config,
    runs: u32,
    process: &Placement,
    out: &mut impl Write,
) -> Result<()> {
    let mut config = config.clone();
    config.inspector_top_k = config.inspector_top_k.max(1);
    writeln!(
        out,
        "\n{}",
        tr_args(
            "bench-process-title",
            "engine on a thread vs in a child process (inspector on, top { $k }; as received by the caller)",
            &[("k", &config.inspector_top_k)],
        )
    )?;
    writeln!(out, "{}", head(&process_cols()))?;
    for card in models {
        let mut engines = Vec::new();
        for placement in [Placement::Thread, process.clone()] {
            let t = Instant::now();
            let engine = start_engine_at(&placement, ModelRef::Local(card.path.clone()), &config)?;
            engines.push((engine, t.elapsed().as_secs_f64() * 1000.0));
        }
        let mut seen = [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)];
        for (engine, _) in &mut engines {
            // Warm-up (first decode allocates buffers).
            generate_seen(engine, &config, 0)?;
        }
        let n = runs.max(1) as usize;
        for run in 1..=n {
            for (i, (engine, _)) in engines.iter_mut().enumerate() {
                let s = generate_seen(engine, &config, run)?;
                seen[i].0 += s.ttft_ms / n as f64;
                seen[i].1 += s.tokens;
                seen[i].2 += s.seconds;
            }
        }
        let rate = |i: usize| seen[i].1 / seen[i].2.max(1e-9);
        let info = &engines[0].0.info;
        writeln!(
            out,
            "{} {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>11.1} {:>11.1} {:>6.3}x",
            pad(&model_label(&info.name, &info.quant, info.n_vocab), 44),
            engines[0].1,
            engines[1].1,
            seen[0].0,
            seen[1].0,
            rate(0),
            rate(1),
            rate(1) / rate(0).max(1e-9)
        )?;
    }
    Ok(())
}

/// Step mode and branching as the caller (the TUI) sees them, engine in its
/// process, inspector on: the time from a `Step` command to its token, from a
/// branch request to its first token, against the mean decode step of free
/// generation; and the prompt tokens a branch re-evaluates before its fork
/// (the chosen token is the only one evaluated: 0 before the fork). A paused
/// request has its next token's logits ready (they were shown as the
/// preview), so a step is a draw; the decode that follows it is done before
/// the next pause. The TUI draws a token at most one frame
/// ([`crate::tui::FRAME`]) after it arrives.
fn step_and_branch(
    models: &[ModelCard],
    config: &Config,
    process: &Placement,
    out: &mut impl Write,
) -> Result<()> {
    let mut config = config.clone();
    config.inspector_top_k = config.inspector_top_k.max(1);
    config.sampling = crate::engine::SamplingParams::greedy();
    writeln!(
        out,
        "\n{}",
        tr_args(
            "bench-step-title",
            "step mode and branching (engine process, inspector on; the TUI draws within one frame, { $ms } ms, after)",
            &[("ms", &crate::tui::FRAME.as_millis())],
        )
    )?;
    writeln!(out, "{}", head(&step_cols()))?;
    const STEPS: usize = 16;
    const REPLY: u32 = 40;
    let prompt = "Write a short story about a lighthouse keeper.";
    for card in models {
        let mut engine = start_engine_at(process, ModelRef::Local(card.path.clone()), &config)?;
        let chat = |config: &Config, max: u32| {
            let mut c = config.clone();
            c.max_tokens = max;
            request_for(&c, prompt, false)
        };
        // The reply to branch from; its free decoding gives the decode step.
        generate_seen(&mut engine, &config, 0)?;
        let id = engine.generate(chat(&config, REPLY));
        let (mut steps, mut times): (Vec<TokenStep>, Vec<Instant>) = (Vec::new(), Vec::new());
        let done = wait_for(&engine.rx, id, |e| {
            if let Event::Token { step, .. } = e {
                times.push(Instant::now());
                steps.push((**step).clone());
            }
            Ok(())
        })?;
        let Event::Done { stats, .. } = done else {
            anyhow::bail!("the reply to branch from did not finish");
        };
        let n_prompt = stats.n_prompt;
        let decode_ms = match (times.get(1), times.last()) {
            (Some(a), Some(b)) if times.len() > 2 => {
                b.duration_since(*a).as_secs_f64() * 1000.0 / (times.len() - 2) as f64
            }
            _ => 0.0,
        };
        // Branches from late to early tokens, each from the original reply
        // (a later fork's cache still holds every token before an earlier one).
        let (mut branch_ms, mut before, mut n_branch) = (0.0, 0usize, 0usize);
        for k in (1..4).rev().map(|q| steps.len() * q / 4) {
            let Some(alt) = steps[k].top().iter().find(|c| c.id != steps[k].id) else {
                continue;
            };
            let mut prefix: Vec<i32> = steps[..k].iter().map(|s| s.id).collect();
            prefix.push(alt.id);
            let sent = Instant::now();
            let id = engine.generate(GenerateRequest {
                prefix: ReplyPrefix::Tokens(prefix),
                ..chat(&config, 2)
            });
            let mut first = None;
            let done = wait_for(&engine.rx, id, |e| {
                if let Event::Token { .. } = e {
                    first.get_or_insert_with(|| sent.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(())
            })?;
            if let (Event::Done { stats, .. }, Some(ms)) = (done, first) {
                branch_ms += ms;
                // Reused: the prompt and the tokens before the fork, unless not all were.
                before += (n_prompt + k).saturating_sub(stats.n_prompt_reused);
                n_branch += 1;
            }
        }
        // Step mode: Step → the token's event.
        let id = engine.generate(GenerateRequest {
            paused: true,
            ..chat(&config, STEPS as u32 + 1)
        });
        let (mut step_ms, mut n_steps, mut sent) = (0.0, 0usize, None::<Instant>);
        wait_for(&engine.rx, id, |e| {
            match e {
                Event::Paused { .. } if n_steps < STEPS => {
                    sent = Some(Instant::now());
                    engine.handle.send(Command::Steer {
                        request: id,
                        steer: Steer::Step,
                    });
                }
                Event::Paused { .. } => engine.handle.send(Command::Cancel { request: id }),
                Event::Token { .. } => {
                    if let Some(t) = sent.take() {
                        step_ms += t.elapsed().as_secs_f64() * 1000.0;
                        n_steps += 1;
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        let info = &engine.info;
        writeln!(
            out,
            "{} {:>10.1} {:>13.1} {:>13.1} {:>15}",
            pad(&model_label(&info.name, &info.quant, info.n_vocab), 44),
            decode_ms,
            step_ms / n_steps.max(1) as f64,
            branch_ms / n_branch.max(1) as f64,
            before
        )?;
    }
    Ok(())
}

/// A text of a few hundred tokens; `run` changes its start so that nothing
/// is reused from the KV cache.
fn score_text(run: usize) -> String {
    let mut t = format!("Log {run}. ");
    for i in 0..12 {
        t += &format!(
            "Day {i}: the keeper of the lighthouse climbed the stairs, lit the lamp and wrote down the wind, the waves and the ships that passed. "
        );
    }
    t
}

/// The best `score` can do against prefill when matrix products dominate,
/// as a fraction of prefill speed: per prompt token, prefill multiplies by
/// the model's body (every weight matrix but the token embedding, a lookup,
/// and the output layer, run for the last position only); scoring also
/// multiplies by the output layer (`output.weight`, or the token embedding
/// when the model ties them: vocabulary × hidden) at every position. So the
/// bound is body / (body + output layer), in weights (multiply-adds) per token.
pub fn score_bound(h: &crate::gguf::GgufHeader) -> f64 {
    let size = |name: &str| {
        h.tensors
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.n_elements)
    };
    let (embd, out) = (size("token_embd.weight"), size("output.weight"));
    let head = if out > 0 { out } else { embd };
    let matrices: u64 = h
        .tensors
        .iter()
        .filter(|t| t.dims.len() >= 2)
        .map(|t| t.n_elements)
        .sum();
    let body = matrices.saturating_sub(embd + out);
    body as f64 / (body + head).max(1) as f64
}

/// `score`'s stats for `text` with `k` candidates per token.
fn score_stats(engine: &mut LocalEngine, text: &str, k: usize) -> Result<Stats> {
    let id = engine.next_request();
    let req = ScoreRequest {
        text: text.into(),
        bos: true,
        top_k_inspect: k,
    };
    engine.handle.score(id, 0, req);
    match wait_for(&engine.rx, id, |_| Ok(()))? {
        Event::Done { stats, .. } => Ok(stats),
        _ => anyhow::bail!("scoring ended without stats"),
    }
}

/// Scoring a text against prefilling it (the same text as a raw prompt,
/// nothing generated): positions per second, both evaluated from scratch,
/// runs interleaved; scoring fetches the logits of every position,
/// [`SCORE_CHUNK`] at a time (measured on 2 CPU cores, 2026-11-30: chunks
/// of 8, 16, 32 and 64 gave 0.62x, 0.71x, 0.72x, 0.80x of prefill on
/// SmolLM2 and 0.28x, 0.34x, 0.37x, 0.41x on Gemma 3, whose 262k-token
/// output layer outweighs the rest of the model once every position needs
/// it; 32 is the memory cap). Then what the inspector's candidates cost per
/// decoded token, 256 against 10 (µs, and as a share of the decode step of
/// a generation with 10).
fn scoring(
    models: &[ModelCard],
    config: &Config,
    runs: u32,
    process: &Placement,
    out: &mut impl Write,
) -> Result<()> {
    let mut config = config.clone();
    config.sampling = crate::engine::SamplingParams::greedy();
    writeln!(
        out,
        "\n{}",
        tr_args(
            "bench-score-title",
            "scoring a text vs prefilling it (engine process; logits of every position, { $chunk } at a time), and the inspector's cost per decoded token, top 256 vs top 10",
            &[("chunk", &SCORE_CHUNK)],
        )
    )?;
    writeln!(out, "{}", head(&score_cols()))?;
    let n = runs.max(1) as usize;
    for card in models {
        let mut engine = start_engine_at(process, ModelRef::Local(card.path.clone()), &config)?;
        let prefill = |engine: &mut LocalEngine, run: usize| -> Result<Stats> {
            let mut c = config.clone();
            c.max_tokens = 0;
            let id = engine.generate(request_for(&c, &score_text(run), true));
            match wait_for(&engine.rx, id, |_| Ok(()))? {
                Event::Done { stats, .. } => Ok(stats),
                _ => anyhow::bail!("prefill ended without stats"),
            }
        };
        // Warm-up (first decodes allocate buffers).
        prefill(&mut engine, 0)?;
        score_stats(&mut engine, &score_text(0), 10)?;
        let (mut p_tok, mut p_s, mut s_tok, mut s_s) = (0.0, 0.0, 0.0, 0.0);
        let mut n_tokens = 0;
        for run in 1..=n {
            let p = prefill(&mut engine, 2 * run)?;
            p_tok += p.n_prompt_evaluated as f64;
            p_s += p.n_prompt_evaluated as f64 / p.prompt_tps.max(1e-9);
            let s = score_stats(&mut engine, &score_text(2 * run + 1), 10)?;
            s_tok += s.n_prompt_evaluated as f64;
            s_s += s.n_prompt_evaluated as f64 / s.prompt_tps.max(1e-9);
            n_tokens = s.n_prompt;
        }
        // The candidates' cost per decoded token: generations with 10 and 256.
        let (mut us10, mut us256, mut dec_s, mut dec_n) = (0.0, 0.0, 0.0, 0.0);
        for run in 1..=n {
            let mut c = config.clone();
            c.max_tokens = 32;
            for k in [10, 256] {
                c.inspector_top_k = k;
                let prompt = format!("Story {run} ({k}). {PROMPT}");
                let id = engine.generate(request_for(&c, &prompt, true));
                let Event::Done { stats, .. } = wait_for(&engine.rx, id, |_| Ok(()))? else {
                    anyhow::bail!("generation ended without stats");
                };
                if k == 10 {
                    us10 += stats.inspector_us_per_token / n as f64;
                    dec_n += stats.n_generated as f64;
                    dec_s += stats.n_generated as f64 / stats.gen_tps.max(1e-9);
                } else {
                    us256 += stats.inspector_us_per_token / n as f64;
                }
            }
        }
        let (prefill_tps, score_tps) = (p_tok / p_s.max(1e-9), s_tok / s_s.max(1e-9));
        let decode_us = dec_s / dec_n.max(1.0) * 1e6;
        let info = &engine.info;
        writeln!(
            out,
            "{} {:>7} {:>10.1} {:>10.1} {:>5.2}x {:>5.2}x {:>9.2} {:>10.1} {:>10.1} {:>7.1}%",
            pad(&model_label(&info.name, &info.quant, info.n_vocab), 44),
            n_tokens,
            prefill_tps,
            score_tps,
            score_tps / prefill_tps.max(1e-9),
            crate::gguf::read_header(&card.path)
                .map(|h| score_bound(&h))
                .unwrap_or(f64::NAN),
            decode_us / 1000.0,
            us10,
            us256,
            (us256 - us10) / decode_us.max(1e-9) * 100.0
        )?;
    }
    Ok(())
}
