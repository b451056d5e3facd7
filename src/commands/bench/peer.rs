//! `tokenscope bench --only peer`: tokenscope side by side with llama.cpp's
//! own llama-server on the same GGUF files, in the same run: prompt tokens
//! per second on a ~500- and a ~1,600-token prompt, decode tokens per second
//! with 10 candidates per token, printed as ratios (tokenscope / server);
//! then the chat's time to first token on a ~1,500-token message with the
//! prompt's surprise on (scored after the reply, [`Command::ScorePrompt`])
//! and off, and with it scored during prefill as it was before.
//!
//! Both sides measure inside their engine: tokenscope's [`Stats`] (prefill
//! and decode timed by the worker), the server's `timings` (its
//! `prompt_per_second` and `predicted_per_second`). Each run starts from an
//! empty cache (the server is asked not to reuse one, tokenscope's prompt
//! starts with the run's number), the two interleaved, best of `runs`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::super::headless::{LocalEngine, start_engine_at, wait_for};
use super::table::peer_head;
use crate::catalog::ModelCard;
use crate::config::Config;
use crate::engine::{
    ChatMessage, Command, Event, GenerateRequest, ModelRef, Placement, PromptScoreRequest, Role,
    SamplingParams, Stats,
};
use crate::i18n::tr_args;
use crate::llama_server::LlamaServer;
use crate::text::pad_right as pad;

/// Candidates per token on both sides (the server's `n_probs`).
const CANDIDATES: usize = 10;
/// Tokens decoded per run.
const DECODE: u32 = 64;

/// One paragraph of the prompts: varied enough that no two runs share a
/// cached prefix once the run's number leads.
fn paragraph(i: usize) -> String {
    const WORDS: [&str; 12] = [
        "harbour", "lantern", "granite", "ferry", "storm", "compass", "gull", "rope", "tide",
        "beacon", "anchor", "fog",
    ];
    format!(
        "On day {i} the keeper checked the {} and the {}, wrote down the {} at noon, and watched the {} until the {} came in over the {}. ",
        WORDS[i % 12],
        WORDS[(i * 5 + 1) % 12],
        WORDS[(i * 7 + 2) % 12],
        WORDS[(i * 3 + 3) % 12],
        WORDS[(i * 11 + 4) % 12],
        WORDS[(i + 5) % 12]
    )
}

/// A text of about `tokens` tokens (English prose: ~4.3 bytes a token in
/// the demo models' vocabularies; the table prints the count), led by `run`.
fn text_of(run: usize, tokens: usize) -> String {
    let mut t = format!("Logbook {run}. ");
    let mut i = 0;
    while t.len() * 10 < tokens * 43 {
        t += &paragraph(i);
        i += 1;
    }
    t
}

/// Prompt and decode speed of one side, best of its runs.
#[derive(Default, Clone, Copy)]
struct Best {
    prompt_tps: f64,
    decode_tps: f64,
}

impl Best {
    fn add(&mut self, prompt_tps: f64, decode_tps: f64) {
        self.prompt_tps = self.prompt_tps.max(prompt_tps);
        self.decode_tps = self.decode_tps.max(decode_tps);
    }
}

fn raw_request(text: &str, max_tokens: u32, k: usize) -> GenerateRequest {
    GenerateRequest {
        raw: true,
        ..GenerateRequest::new(
            vec![ChatMessage::new(Role::User, text)],
            SamplingParams::greedy(),
            max_tokens,
            k,
        )
    }
}

/// Runs `req` to its end; its stats, and the wall time to its first token (ms).
fn run_request(engine: &mut LocalEngine, req: GenerateRequest) -> Result<(Stats, f64)> {
    let sent = Instant::now();
    let id = engine.generate(req);
    let mut first = None;
    let end = wait_for(&engine.rx, id, |e| {
        if matches!(e, Event::Token { .. }) && first.is_none() {
            first = Some(sent.elapsed().as_secs_f64() * 1e3);
        }
        Ok(())
    })?;
    match end {
        Event::Done { stats, .. } => Ok((stats, first.unwrap_or(f64::NAN))),
        other => bail!("the bench's reply ended with {other:?}"),
    }
}

/// The server's timings for a completion of `text`: (prompt tok/s, decode tok/s).
fn server_completion(
    agent: &ureq::Agent,
    url: &str,
    text: &str,
    n_predict: u32,
) -> Result<(f64, f64)> {
    let body = serde_json::json!({
        "prompt": text,
        "n_predict": n_predict,
        "cache_prompt": false,
        "n_probs": CANDIDATES,
        "temperature": 0.0,
        "ignore_eos": true,
    });
    let text = agent
        .post(format!("{url}/completion"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .context("asking llama-server for a completion")?
        .into_body()
        .read_to_string()
        .context("reading llama-server's completion")?;
    let reply: serde_json::Value =
        serde_json::from_str(&text).context("llama-server's completion is not JSON")?;
    let t = &reply["timings"];
    let (p, d) = (
        t["prompt_per_second"].as_f64(),
        t["predicted_per_second"].as_f64(),
    );
    match (p, d) {
        (Some(p), Some(d)) => Ok((p, d)),
        _ => bail!("llama-server's reply has no timings: {reply}"),
    }
}

/// The peer section: every model against llama-server at `exe`, then the
/// chat's time to first token with the prompt's surprise on and off.
pub(crate) fn run(
    models: &[ModelCard],
    config: &Config,
    runs: u32,
    process: &Placement,
    exe: &Path,
    log_dir: &Path,
    out: &mut impl Write,
) -> Result<()> {
    let threads = crate::engine::physical_cores_or(config.engine.threads);
    writeln!(
        out,
        "\n{}",
        tr_args(
            "bench-peer-title",
            "tokenscope vs llama-server ({ $exe }), same GGUF files, { $threads } threads each, empty caches, best of { $runs } (ratio > 1: tokenscope faster)",
            &[
                ("exe", &exe.display()),
                ("threads", &threads),
                ("runs", &runs.max(1)),
            ],
        )
    )?;
    writeln!(out, "{}", peer_head())?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    for card in models {
        let mut engine = start_engine_at(process, ModelRef::Local(card.path.clone()), config)?;
        let server = LlamaServer::start(
            exe,
            &card.path,
            &[
                "-c",
                &config.engine.ctx.max(4096).to_string(),
                "-np",
                "1",
                "-t",
                &threads.to_string(),
                "--no-webui",
            ],
            log_dir,
            Duration::from_secs(120),
        )
        .context("starting llama-server for the side-by-side bench")?;
        // Warm-up on both sides (first decodes allocate).
        run_request(&mut engine, raw_request(&text_of(0, 64), 4, CANDIDATES))?;
        server_completion(&agent, &server.url, &text_of(0, 64), 4)?;
        for size in [500usize, 1600] {
            let (mut ours, mut theirs) = (Best::default(), Best::default());
            let mut n_prompt = 0;
            for r in 1..=runs.max(1) as usize {
                let text = text_of(r + size, size);
                let (s, _) = run_request(&mut engine, raw_request(&text, DECODE, CANDIDATES))?;
                n_prompt = s.n_prompt_evaluated;
                ours.add(s.prompt_tps, s.gen_tps);
                let (p, d) = server_completion(&agent, &server.url, &text, DECODE)?;
                theirs.add(p, d);
            }
            writeln!(
                out,
                "{} {:>7} {:>10.1} {:>10.1} {:>6.2}x   {:>10.1} {:>10.1} {:>6.2}x",
                pad(&format!("{} ({})", engine.info.name, engine.info.quant), 40),
                n_prompt,
                ours.prompt_tps,
                theirs.prompt_tps,
                ours.prompt_tps / theirs.prompt_tps.max(1e-9),
                ours.decode_tps,
                theirs.decode_tps,
                ours.decode_tps / theirs.decode_tps.max(1e-9),
            )?;
        }
        drop(server);
        ttft(&mut engine, runs, out)?;
    }
    Ok(())
}

/// The chat's time to first token on a ~1,500-token message (as the chat
/// asks: its template, 10 candidates): with the prompt's surprise off; on
/// (scored after the reply: the next message's reply waits at most for the
/// chunk being scored); and scored during prefill, as before.
fn ttft(engine: &mut LocalEngine, runs: u32, out: &mut impl Write) -> Result<()> {
    let chat = |text: &str, score_prompt: bool| GenerateRequest {
        score_prompt,
        ..GenerateRequest::new(
            vec![ChatMessage::new(Role::User, text)],
            SamplingParams::greedy(),
            8,
            CANDIDATES,
        )
    };
    let (mut off, mut after, mut during) = (f64::MAX, f64::MAX, f64::MAX);
    let mut second_after = f64::MAX;
    for r in 1..=runs.max(1) as usize {
        let text = text_of(9000 + r, 1500);
        off = off.min(run_request(engine, chat(&text, false))?.1);
        let text = text_of(9100 + r, 1500);
        during = during.min(run_request(engine, chat(&text, true))?.1);
        // On: the reply, then its prompt scored in the background, and the
        // next message sent while that scoring runs.
        let text = text_of(9200 + r, 1500);
        let (prompt, t) = {
            let id = engine.generate(chat(&text, false));
            let sent = Instant::now();
            let (mut first, mut prompt) = (None, Vec::new());
            wait_for(&engine.rx, id, |e| {
                match e {
                    Event::Started { prompt: p, .. } => prompt = p.iter().map(|t| t.id).collect(),
                    Event::Token { .. } if first.is_none() => {
                        first = Some(sent.elapsed().as_secs_f64() * 1e3)
                    }
                    _ => {}
                }
                Ok(())
            })?;
            (prompt, first.unwrap_or(f64::NAN))
        };
        after = after.min(t);
        let scoring = engine.next_request();
        let positions = (1..prompt.len()).rev().collect();
        engine.handle.send(Command::ScorePrompt {
            request: scoring,
            slot: 0,
            req: PromptScoreRequest {
                tokens: prompt,
                positions,
                top_k_inspect: CANDIDATES,
            },
        });
        std::thread::sleep(Duration::from_millis(200));
        let text = text_of(9300 + r, 1500);
        // The scoring gives way to it (its final event goes by unread).
        second_after = second_after.min(run_request(engine, chat(&text, false))?.1);
    }
    writeln!(
        out,
        "  {}",
        tr_args(
            "bench-peer-ttft",
            "chat, time to first token on a ~1,500-token message: surprise off { $off } ms · on (scored after) { $after } ms ({ $after_ratio }x), the next message while it scores { $second } ms ({ $second_ratio }x) · scored during prefill (before) { $during } ms ({ $during_ratio }x)",
            &[
                ("off", &format!("{off:.0}")),
                ("after", &format!("{after:.0}")),
                ("after_ratio", &format!("{:.2}", after / off)),
                ("second", &format!("{second_after:.0}")),
                ("second_ratio", &format!("{:.2}", second_after / off)),
                ("during", &format!("{during:.0}")),
                ("during_ratio", &format!("{:.2}", during / off)),
            ],
        )
    )?;
    Ok(())
}
