//! `tokenscope run` and `score`: one reply, or the probability of every
//! token of a text, printed as aligned text or JSONL. Also the engine driven
//! from the command line for every command that needs one (`compare` and
//! `bench` too): [`start_engine_at`], [`wait_for`], [`RunError`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use serde_json::json;
use thiserror::Error;

use super::{Ctx, engine_placement, remote_target, require_model, text_to_score};
use crate::cli::Format;
use crate::config::Config;
use crate::conversation::{Conversation, Node, NodeId};
use crate::engine::{
    EngineError, EngineHandle, Event, GenerateRequest, ModelInfo, ModelRef, Placement, ReplyPrefix,
    RequestId, ScoreRequest, Stats, TokenId, TokenStep, Vocab,
};
use crate::heat::{HEAT_BANDS, HEAT_PALETTE, heat_band};
use crate::i18n::{tr, tr_args};
use crate::text::{pad_right, str_width};

#[derive(Debug, Error)]
pub enum RunError {
    Engine(#[from] EngineError),
    EngineExited(Box<crate::engine::CrashReport>),
    Disconnected,
    Cancelled,
    Io(#[from] std::io::Error),
}
impl std::fmt::Display for RunError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            RunError::Engine(v) => v.to_string(),
            RunError::EngineExited(v) => v.to_string(),
            RunError::Disconnected => {
                crate::i18n::tr("run-disconnected", "the engine stopped unexpectedly")
            }
            RunError::Cancelled => crate::i18n::tr("run-cancelled", "the request was cancelled"),
            RunError::Io(v) => {
                crate::i18n::tr_args("run-io", "writing output: { $v }", &[("v", &v)])
            }
        };
        f.write_str(&text)
    }
}

/// `tokenscope run PROMPT`: the model from the flags (or `--server`'s),
/// one reply printed as [`run`] does, warnings on stderr. Errors: no model,
/// a config or server that cannot be used, the engine's.
pub fn run_command(
    ctx: &Ctx,
    prompt: &str,
    format: Format,
    assistant_prefix: Option<&str>,
) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let (placement, model) = placement_and_model(ctx, &config)?;
    let args = RunArgs {
        prompt: prompt.to_string(),
        raw: ctx.flags.raw,
        jsonl: format == Format::Jsonl,
        assistant_prefix: assistant_prefix.map(str::to_string),
    };
    run(
        &placement,
        model,
        &config,
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )?;
    Ok(())
}

/// Where a headless command's engine runs and which model it loads: the
/// `--server`'s (a model it lists; none: its only one, a warning about the
/// server on stderr), else a local file from the flags in an engine process.
/// Errors: no model, a config or server that cannot be used.
pub(crate) fn placement_and_model(
    ctx: &Ctx,
    config: &Config,
) -> anyhow::Result<(Placement, ModelRef)> {
    let flags = &ctx.flags;
    Ok(match remote_target(config, flags)? {
        Some(target) => {
            if let Some(w) = target.warning() {
                eprintln!("{}: {w}", crate::i18n::tr("cli-warning", "warning"));
            }
            let model = ModelRef::Remote {
                url: target.url.clone(),
                model: flags.model.clone().unwrap_or_default(),
            };
            (Placement::Remote(target), model)
        }
        None => (
            engine_placement()?,
            ModelRef::Local(require_model(config, &ctx.places(config))?.path),
        ),
    })
}

/// `tokenscope score`: the text of `--text`, `--file` or standard input
/// scored as [`score`] does, heat-coloured on a terminal that allows
/// colour. With `--server` the remote engine refuses it (a server gives no
/// log-probabilities of a text it is sent), rather than a local model
/// scoring it under the server's name. Errors: no text, no model, the engine's.
pub fn score_command(
    ctx: &Ctx,
    text: Option<&str>,
    file: Option<&Path>,
    stdin: bool,
    format: Format,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let config = ctx.config()?;
    let text = text_to_score(text, file, stdin)?;
    let (placement, model) = placement_and_model(ctx, &config)?;
    let args = ScoreArgs {
        text,
        bos: !ctx.flags.raw,
        jsonl: format == Format::Jsonl,
        color: format == Format::Text
            && crate::terminal::Env::from_process().color(std::io::stdout().is_terminal()),
    };
    score(
        &placement,
        model,
        &config,
        &args,
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

/// Waits for the final event of `request`, passing every event of it to
/// `on_event`. A failure is an error; `Loaded`, `Done` and `Cancelled` are returned.
pub(crate) fn wait_for(
    rx: &Receiver<Event>,
    request: RequestId,
    mut on_event: impl FnMut(&Event) -> Result<(), RunError>,
) -> Result<Event, RunError> {
    loop {
        let event = rx.recv().map_err(|_| RunError::Disconnected)?;
        if let Event::EngineExited { report } = event {
            return Err(RunError::EngineExited(report));
        }
        if event.request() != Some(request) {
            continue;
        }
        if event.is_final() {
            if let Event::Failed { error, .. } = event {
                return Err(RunError::Engine(error));
            }
            return Ok(event);
        }
        on_event(&event)?;
    }
}

/// An engine with one model loaded in slot 0, for headless use.
pub struct LocalEngine {
    pub handle: EngineHandle,
    pub rx: Receiver<Event>,
    pub info: ModelInfo,
    pub vocab: Arc<Vocab>,
    next_request: RequestId,
}

impl LocalEngine {
    /// A request id not used before by this engine.
    pub fn next_request(&mut self) -> RequestId {
        self.next_request += 1;
        self.next_request
    }

    /// Starts `req` on the loaded model; returns its request id.
    pub fn generate(&mut self, req: GenerateRequest) -> RequestId {
        let id = self.next_request();
        self.handle.generate(id, 0, req);
        id
    }
}

/// Loads the file `path` on an engine thread and returns the engine ready to generate.
pub fn start_engine(path: PathBuf, config: &Config) -> Result<LocalEngine, RunError> {
    start_engine_at(&Placement::Thread, ModelRef::Local(path), config)
}

/// Loads `model` on an engine at `placement` and returns the engine ready to
/// generate. A crash of an engine process while loading is
/// [`RunError::Engine`] with its report in words (llama.cpp's assertion, the file).
pub(crate) fn start_engine_at(
    placement: &Placement,
    model: ModelRef,
    config: &Config,
) -> Result<LocalEngine, RunError> {
    let (mut handle, rx) = EngineHandle::spawn_with_receiver_at(placement);
    handle.load(1, 0, model, config.load_settings());
    match wait_for(&rx, 1, |_| Ok(()))? {
        Event::Loaded { info, vocab, .. } => Ok(LocalEngine {
            handle,
            rx,
            info: *info,
            vocab,
            next_request: 1,
        }),
        _ => Err(RunError::Disconnected),
    }
}

/// The conversation `run` sends (the system prompt, see
/// [`Config::system_prompt`], then `prompt`) and the reply to generate in it.
pub(crate) fn one_turn(config: &Config, prompt: &str) -> (Conversation, NodeId) {
    let mut conv = Conversation::new(config.system_prompt());
    conv.append(Node::user(prompt));
    let reply = conv.append(Node::assistant(None, None));
    (conv, reply)
}

/// The request for a one-turn conversation of `prompt` with no system prompt.
pub(crate) fn request_for(config: &Config, prompt: &str, raw: bool) -> GenerateRequest {
    let mut conv = Conversation::new(None);
    conv.append(Node::user(prompt));
    let reply = conv.append(Node::assistant(None, None));
    conv.request(reply, &config.request_settings(raw))
}

/// What `run` is asked for besides the model and the config.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunArgs {
    /// The user message (or the text to continue, `raw`).
    pub prompt: String,
    /// Plain completion, no chat template.
    pub raw: bool,
    /// One JSON object per line instead of text.
    pub jsonl: bool,
    /// Text the reply starts with (`--assistant-prefix`): tokenized as plain
    /// text, reported as forced tokens, and generation goes on from there.
    pub assistant_prefix: Option<String>,
}

/// `tokenscope run`: one reply, streamed, then the per-token table (text) or
/// one JSON object per token and a final `done` line (jsonl). What the user
/// should know about how the prompt was built (a chat template that refused the
/// conversation, a fallback) goes to `warn` as `warning: …` lines. The engine
/// runs at `placement` (the binary: a child process, so that an abort in
/// llama.cpp is an error here, never the end of this process).
///
/// In JSONL, an error after the output has started (an engine crash) also
/// ends stdout with `{"type":"error","error":…}`, so a reader of the stream
/// knows it ended badly.
pub(crate) fn run(
    placement: &Placement,
    model: ModelRef,
    config: &Config,
    args: &RunArgs,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<Stats, RunError> {
    let result = run_streaming(placement, model, config, args, out, warn);
    error_line(args.jsonl, result, out)
}

/// In JSONL, an error (but one writing the output) also ends stdout with
/// `{"type":"error","error":…}`, so a reader of the stream knows it ended badly.
pub(crate) fn error_line<T>(
    jsonl: bool,
    result: Result<T, RunError>,
    out: &mut impl Write,
) -> Result<T, RunError> {
    if jsonl
        && let Err(e) = &result
        && !matches!(e, RunError::Io(_))
    {
        // English whatever the interface language: scripts read JSON (the
        // words the engine process made in it stay as they came).
        let text = crate::i18n::with_lang(crate::i18n::Lang::En, || e.to_string());
        let line = json!({"type": "error", "error": text}).to_string();
        writeln!(out, "{}", crate::text::json_safe(&line))?;
    }
    result
}

fn run_streaming(
    placement: &Placement,
    model: ModelRef,
    config: &Config,
    args: &RunArgs,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<Stats, RunError> {
    let mut engine = start_engine_at(placement, model, config)?;
    let (conv, reply) = one_turn(config, &args.prompt);
    let mut req = conv.request(reply, &config.request_settings(args.raw));
    if let Some(prefix) = &args.assistant_prefix {
        req.prefix = ReplyPrefix::Text(prefix.clone());
        req.score_prefix = true;
    }
    let id = engine.generate(req);
    let vocab = engine.vocab.clone();
    let info = engine.info.clone();
    let jsonl = args.jsonl;
    let mut steps = Vec::new();
    let mut mode_line = None;
    let mut prompt_ids: Vec<TokenId> = Vec::new();
    let done = wait_for(&engine.rx, id, |event| {
        match event {
            Event::Started {
                mode, note, prompt, ..
            } => {
                mode_line = Some(mode.describe());
                prompt_ids = prompt.iter().map(|t| t.id).collect();
                // A remote server builds and tokenizes the prompt itself: no row.
                if jsonl && !prompt_ids.is_empty() {
                    let line = prompt_tokens_json(&prompt_ids, &vocab).to_string();
                    writeln!(out, "{}", crate::text::json_safe(&line))?;
                }
                if let Some(note) = note {
                    // The engine escaped the model file's text in it; escape_text
                    // changes nothing then, and keeps the promise here too.
                    writeln!(
                        warn,
                        "{}: {}",
                        crate::i18n::tr("cli-warning", "warning"),
                        crate::text::escape_text(&note.to_string())
                    )?;
                    warn.flush()?;
                }
            }
            Event::Token { step, .. } => {
                if jsonl {
                    let line = token_json(step, &vocab).to_string();
                    writeln!(out, "{}", crate::text::json_safe(&line))?;
                } else {
                    write!(out, "{}", crate::text::escape_text(&step.text))?;
                    out.flush()?;
                }
                steps.push((**step).clone());
            }
            Event::Tail { text, .. } => {
                if jsonl {
                    writeln!(out, "{}", json!({"type": "tail", "text": text}))?;
                } else {
                    write!(out, "{}", crate::text::escape_text(text))?;
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    let stats = match done {
        Event::Done { stats, .. }
        | Event::Cancelled {
            stats: Some(stats), ..
        } => stats,
        Event::Cancelled { stats: None, .. } => return Err(RunError::Cancelled),
        _ => return Err(RunError::Disconnected),
    };
    if jsonl {
        writeln!(out, "{}", done_json(&stats))?;
    } else {
        writeln!(out)?;
        writeln!(out)?;
        if !prompt_ids.is_empty() {
            writeln!(out, "{}\n", prompt_tokens_line(&prompt_ids, &vocab))?;
        }
        write!(out, "{}", token_table(&steps, &vocab))?;
        writeln!(
            out,
            "\n{} · {} · {} · {}",
            info.name,
            info.quant,
            mode_line.unwrap_or(info.chat_mode.describe()),
            info.backend_text()
        )?;
        writeln!(out, "{}", stats_line(&stats, info.n_ctx_train as usize))?;
    }
    Ok(stats)
}

/// What `score` is asked for besides the model and the config.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScoreArgs {
    /// The text to score.
    pub text: String,
    /// Put the model's BOS in front when it uses one (not `--raw`).
    pub bos: bool,
    /// One JSON object per line instead of text.
    pub jsonl: bool,
    /// Colour the text by surprise (ANSI 256 colours): stdout is a terminal,
    /// not a dumb one, and NO_COLOR is not set ([`crate::terminal::Env::color`]).
    pub color: bool,
}

/// The totals of a scored text. Log-likelihood in nats (natural log).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ScoreSummary {
    /// Tokens scored.
    pub n_tokens: usize,
    /// Σ ln p over the scored tokens, in nats (≤ 0).
    pub log_likelihood: f64,
    /// The windows note of [`Event::Started`] (a text longer than the
    /// context): the reader's language in the text, English in the JSON.
    pub note: Option<crate::engine::Words>,
}

impl ScoreSummary {
    /// Mean surprise in bits per token: -ll / n / ln 2 (`None` for no token).
    pub fn bits_per_token(&self) -> Option<f64> {
        (self.n_tokens > 0)
            .then(|| -self.log_likelihood / self.n_tokens as f64 / std::f64::consts::LN_2)
    }

    /// exp(-ll / n) (`None` for no token).
    pub fn perplexity(&self) -> Option<f64> {
        (self.n_tokens > 0).then(|| (-self.log_likelihood / self.n_tokens as f64).exp())
    }

    /// The `{"type":"summary",…}` line of `score --format jsonl`.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "type": "summary",
            "n_tokens": self.n_tokens,
            "log_likelihood": self.log_likelihood,
            "bits_per_token": self.bits_per_token(),
            "perplexity": self.perplexity(),
            "note": self.note.as_ref().map(|n| {
                crate::i18n::with_lang(crate::i18n::Lang::En, || n.to_string())
            }),
        })
    }

    /// The last line of `score`'s text output.
    pub fn line(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"));
        crate::i18n::tr_args(
            "score-summary",
            "{ $tokens } scored · log-likelihood { $ll } nats · { $bpt } bits per token · perplexity { $ppl }",
            &[
                ("tokens", &tokens_text(self.n_tokens)),
                ("ll", &format!("{:.3}", self.log_likelihood)),
                ("bpt", &f(self.bits_per_token())),
                ("ppl", &f(self.perplexity())),
            ],
        )
    }
}

/// ln p of a scored step, from its logit and the distribution's lse (exact
/// where `p` would underflow to 0); `None` when either is missing.
pub(crate) fn ln_p(step: &TokenStep) -> Option<f64> {
    Some(step.logit? as f64 - step.dist.as_ref()?.lse as f64)
}

/// One `score --format jsonl` token line: `p` the token's probability,
/// `rank` its 1-based place among the `top` candidates (`null` outside them),
/// `surprise_bits` = -log2 p.
pub(crate) fn score_token_json(step: &TokenStep, vocab: &Vocab) -> serde_json::Value {
    let dist = step.dist.as_ref();
    let rank = step
        .top()
        .iter()
        .position(|c| c.id == step.id)
        .map(|r| r + 1);
    json!({
        "type": "token",
        "index": step.index,
        "id": step.id,
        "text": step.text,
        "piece": vocab.readable(step.id),
        "p": step.p(),
        "rank": rank,
        "surprise_bits": ln_p(step).map(|l| -l / std::f64::consts::LN_2),
        "top": step.top().iter().map(|c| json!({
            "id": c.id,
            "text": vocab.readable(c.id),
            "p": dist.map(|d| d.p(c.logit)),
            "logit": c.logit,
        })).collect::<Vec<_>>(),
    })
}

/// `text` escaped for the terminal and, with `color`, in the heat colour of
/// probability `p` (the chat's bands, [`crate::heat`], as an ANSI
/// 256-colour foreground).
pub(crate) fn heat_text(text: &str, p: Option<f32>, color: bool) -> String {
    let text = crate::text::escape_text(text);
    match p.map(|p| HEAT_PALETTE[heat_band(p)]) {
        Some(n) if color && !text.is_empty() => format!("\x1b[38;5;{n}m{text}\x1b[0m"),
        _ => text,
    }
}

/// `tokenscope score`: the model's probability of each token of
/// `args.text` given the ones before. Text: the text (heat-coloured with
/// `args.color`), then the summary line and the windows note when the text
/// was longer than the context. JSONL: one `token` line per scored token
/// ([`score_token_json`]), then a `summary` line ([`ScoreSummary::json`]);
/// an error after the output started ends it with `{"type":"error",…}`.
pub(crate) fn score(
    placement: &Placement,
    model: ModelRef,
    config: &Config,
    args: &ScoreArgs,
    out: &mut impl Write,
) -> Result<ScoreSummary, RunError> {
    let result = score_streaming(placement, model, config, args, out);
    error_line(args.jsonl, result, out)
}

fn score_streaming(
    placement: &Placement,
    model: ModelRef,
    config: &Config,
    args: &ScoreArgs,
    out: &mut impl Write,
) -> Result<ScoreSummary, RunError> {
    let mut engine = start_engine_at(placement, model, config)?;
    let id = engine.next_request();
    engine.handle.score(
        id,
        0,
        ScoreRequest {
            text: args.text.clone(),
            bos: args.bos,
            top_k_inspect: config.inspector_top_k,
        },
    );
    let vocab = engine.vocab.clone();
    let mut summary = ScoreSummary::default();
    let done = wait_for(&engine.rx, id, |event| {
        match event {
            Event::Started { prompt, note, .. } => {
                summary.note = note.clone();
                // An unscored first token (no BOS) still starts the text.
                if !args.jsonl
                    && let Some(first) = prompt.first().filter(|t| t.message.is_some())
                {
                    let text = crate::text::Utf8Assembler::default().push(vocab.bytes(first.id));
                    write!(out, "{}", heat_text(&text, None, false))?;
                }
            }
            Event::Token { step, .. } => {
                summary.n_tokens += 1;
                summary.log_likelihood += ln_p(step).unwrap_or(0.0);
                if args.jsonl {
                    let line = score_token_json(step, &vocab).to_string();
                    writeln!(out, "{}", crate::text::json_safe(&line))?;
                } else {
                    write!(out, "{}", heat_text(&step.text, step.p(), args.color))?;
                }
            }
            Event::Tail { text, .. } if !args.jsonl => {
                write!(out, "{}", heat_text(text, None, false))?;
            }
            _ => {}
        }
        Ok(())
    })?;
    match done {
        Event::Done { .. } => {}
        Event::Cancelled { .. } => return Err(RunError::Cancelled),
        _ => return Err(RunError::Disconnected),
    }
    if args.jsonl {
        writeln!(out, "{}", summary.json())?;
    } else {
        writeln!(out)?;
        writeln!(out)?;
        if args.color {
            let legend: Vec<String> = HEAT_BANDS
                .iter()
                .map(|(p, label)| heat_text(label, Some(*p), true))
                .collect();
            writeln!(out, "p: {}", legend.join(" "))?;
        }
        writeln!(out, "{}", summary.line())?;
        if let Some(note) = &summary.note {
            writeln!(
                out,
                "{}: {}",
                crate::i18n::tr("cli-note", "note"),
                crate::text::escape_text(&note.to_string())
            )?;
        }
    }
    Ok(summary)
}

/// One `run --format jsonl` token line. Probabilities are `null` when the
/// inspector is off (`--candidates 0`); `forced` marks tokens given, not sampled.
pub(crate) fn token_json(step: &TokenStep, vocab: &Vocab) -> serde_json::Value {
    let dist = step.dist.as_ref();
    json!({
        "type": "token",
        "index": step.index,
        "id": step.id,
        "forced": step.forced,
        "text": step.text,
        "piece": vocab.readable(step.id),
        "bytes": vocab.bytes(step.id),
        "p": step.p(),
        "p_sampled": step.p_sampled,
        "logit": step.logit,
        "lse": dist.map(|d| d.lse),
        "entropy": step.entropy(),
        "top": step.top().iter().map(|c| json!({
            "id": c.id,
            "text": vocab.readable(c.id),
            "p": dist.map(|d| d.p(c.logit)),
            "p_sampled": c.p_sampled,
            "logit": c.logit,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) fn done_json(s: &Stats) -> serde_json::Value {
    // Uncounted (a remote server that does not say): null, not 0.
    let counted = |n: usize| (s.n_prompt > 0).then_some(n);
    json!({
        "type": "done",
        "stop": s.stop.as_str(),
        "n_prompt": counted(s.n_prompt),
        "n_prompt_evaluated": counted(s.n_prompt_evaluated),
        "n_prompt_reused": counted(s.n_prompt_reused),
        "n_generated": s.n_generated,
        "n_forced": s.n_forced,
        "ttft_ms": s.ttft_ms,
        "prompt_tps": s.prompt_tps,
        "gen_tps": s.gen_tps,
        "dropped_messages": s.dropped_messages,
        "ctx_used": counted(s.ctx_used),
        "ctx_size": (s.ctx_size > 0).then_some(s.ctx_size),
        "ctx_requested": s.ctx_requested,
        "inspector_us_per_token": s.inspector_us_per_token,
    })
}

/// The last line of `run`'s text output. `n_ctx_train` (tokens, 0 = unknown)
/// explains a context size other than the one asked for.
///
/// A prompt of 0 tokens is one nobody counted (a remote server that does not
/// say): its counts and the context used read `?`, as does a context size of 0.
pub(crate) fn stats_line(s: &Stats, n_ctx_train: usize) -> String {
    let known = |n: usize, counted: bool| {
        if counted {
            n.to_string()
        } else {
            "?".to_string()
        }
    };
    let counted = s.n_prompt > 0;
    let mut line = crate::i18n::tr_args(
        "run-stats",
        "stop: { $stop } · prompt { $prompt } ({ $evaluated } evaluated, { $reused } reused from cache) · { $generated } generated · TTFT { $ttft } ms · prompt { $prompt_tps } tok/s · generation { $gen_tps } tok/s · context { $used }/{ $size }",
        &[
            ("stop", &s.stop.as_str()),
            (
                "prompt",
                &if counted {
                    tokens_text(s.n_prompt)
                } else {
                    crate::i18n::tr("run-unknown-tokens", "? tokens")
                },
            ),
            ("evaluated", &known(s.n_prompt_evaluated, counted)),
            ("reused", &known(s.n_prompt_reused, counted)),
            ("generated", &s.n_generated),
            ("ttft", &format!("{:.0}", s.ttft_ms)),
            ("prompt_tps", &format!("{:.1}", s.prompt_tps)),
            ("gen_tps", &format!("{:.1}", s.gen_tps)),
            ("used", &known(s.ctx_used, counted)),
            ("size", &known(s.ctx_size, s.ctx_size > 0)),
        ],
    );
    if let Some(why) = crate::engine::describe_ctx(s.ctx_requested, s.ctx_size, n_ctx_train) {
        line += &format!(" ({why})");
    }
    if s.dropped_messages > 0 {
        line += &format!(
            " · {}",
            match s.dropped_messages {
                1 => crate::i18n::tr(
                    "run-dropped-one",
                    "1 oldest message dropped to fit the context"
                ),
                n => crate::i18n::tr_args(
                    "run-dropped",
                    "{ $n } oldest messages dropped to fit the context",
                    &[("n", &n)],
                ),
            }
        );
    }
    line
}

const BAR: usize = 24;

/// A bar of `BAR` cells with eighth-block precision.
pub(crate) fn bar(p: f32) -> String {
    let eighths = (p.clamp(0.0, 1.0) * (BAR * 8) as f32).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push([' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8]);
    }
    let width = s.chars().count();
    s + &"·".repeat(BAR - width)
}

/// A token piece in quotes, padded to `width` columns. The piece is already
/// escaped once (`\n`, `␛`, `<0xE4>`, see [`crate::text::readable_piece`]):
/// quoting it with `{:?}` would escape it a second time.
fn quoted(piece: &str, width: usize) -> String {
    crate::text::pad_right(&format!("\"{piece}\""), width)
}

/// A percentage with two decimals, or `–` when unknown.
fn pct(p: Option<f32>) -> String {
    p.map_or_else(|| "     –".to_string(), |p| format!("{:>6.2}%", p * 100.0))
}

/// The `{"type":"prompt_tokens",…}` line of `run --format jsonl`, before
/// the first token: how the prompt (chat template applied, BOS included)
/// was tokenized, `ids` in order with their `pieces` (readable: partial
/// UTF-8 as `<0xE4>`, see [`Vocab::readable`]) and their count `n`.
pub(crate) fn prompt_tokens_json(ids: &[TokenId], vocab: &Vocab) -> serde_json::Value {
    json!({
        "type": "prompt_tokens",
        "n": ids.len(),
        "ids": ids,
        "pieces": ids.iter().map(|&id| vocab.readable(id)).collect::<Vec<_>>(),
    })
}

/// The prompt's tokenization in one line of `run`'s text output:
/// `prompt: 3 tokens  [104 中华] [2 人民] [7 <0xE5>]`, each token's id and
/// its piece made visible (spaces as `␣`, line breaks as `\n`, partial
/// UTF-8 as `<0x..>`), so the user sees what the model was given.
pub(crate) fn prompt_tokens_line(ids: &[TokenId], vocab: &Vocab) -> String {
    let mut line = format!(
        "{} ",
        crate::i18n::tr_args(
            "run-prompt-tokens",
            "prompt: { $tokens }",
            &[("tokens", &tokens_text(ids.len()))],
        )
    );
    for &id in ids {
        line += &format!(
            " [{id} {}]",
            crate::text::visible_piece(&vocab.readable(id))
        );
    }
    line
}

/// "1 token", "12 tokens", in the interface language.
pub(crate) fn tokens_text(n: usize) -> String {
    match n {
        1 => tr("run-one-token", "1 token"),
        n => tr_args("run-tokens", "{ $n } tokens", &[("n", &n)]),
    }
}

/// The readable per-token table of `run`'s text output (token text from `vocab`).
pub(crate) fn token_table(steps: &[TokenStep], vocab: &Vocab) -> String {
    let mut out = String::new();
    for s in steps {
        let entropy = s.entropy().map_or_else(
            || "–".to_string(),
            |e| tr_args("run-bits", "{ $h } bits", &[("h", &format!("{e:.2}"))]),
        );
        // "forced " and "sampled" are one width; a translation is padded
        // to the wider of its two.
        let (forced, sampled) = (tr("run-forced", "forced"), tr("run-sampled", "sampled"));
        let how_width = str_width(&forced).max(str_width(&sampled));
        let how = pad_right(if s.forced { &forced } else { &sampled }, how_width);
        out += &format!(
            "#{:<4} {} p {}  {how} {}  {} {entropy}\n",
            s.index,
            quoted(&vocab.readable(s.id), 18),
            pct(s.p()),
            pct(s.p_sampled),
            tr("run-entropy", "entropy"),
        );
        if let Some(d) = &s.dist {
            let chosen = tr("run-chosen", "◀ chosen");
            for c in &d.top {
                let mark = if c.id == s.id { chosen.as_str() } else { "" };
                let p = d.p(c.logit);
                out += &format!(
                    "      {} {:>6.2}%  {} {}\n",
                    bar(p),
                    p * 100.0,
                    quoted(&vocab.readable(c.id), 18),
                    mark
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncounted_prompt_and_an_unknown_context_read_as_question_marks() {
        let mut s = Stats {
            stop: crate::engine::StopReason::Eog,
            n_prompt: 0,
            n_prompt_evaluated: 0,
            n_prompt_reused: 0,
            n_generated: 7,
            n_forced: 0,
            ttft_ms: 10.0,
            prompt_tps: 0.0,
            gen_tps: 50.0,
            dropped_messages: 0,
            ctx_used: 0,
            ctx_size: 0,
            ctx_requested: 0,
            inspector_us_per_token: 0.0,
        };
        let json = done_json(&s);
        assert!(
            json["n_prompt"].is_null() && json["ctx_used"].is_null() && json["ctx_size"].is_null()
        );
        assert_eq!(json["n_generated"], 7);
        let line = stats_line(&s, 0);
        assert!(
            line.contains("prompt ? tokens (? evaluated, ? reused from cache)")
                && line.contains("7 generated")
                && line.contains("context ?/?"),
            "{line}"
        );
        (s.n_prompt, s.n_prompt_evaluated, s.ctx_used, s.ctx_size) = (30, 30, 37, 2048);
        let line = stats_line(&s, 0);
        assert!(
            line.contains("prompt 30 tokens (30 evaluated, 0 reused")
                && line.contains("context 37/2048"),
            "{line}"
        );
        let json = done_json(&s);
        assert_eq!(
            (json["n_prompt_reused"].as_u64(), json["ctx_used"].as_u64()),
            (Some(0), Some(37))
        );
    }

    #[test]
    fn counts_of_one_are_singular_in_the_summary_lines() {
        let mut s = Stats {
            stop: crate::engine::StopReason::Eog,
            n_prompt: 1,
            n_prompt_evaluated: 1,
            n_prompt_reused: 0,
            n_generated: 1,
            n_forced: 0,
            ttft_ms: 10.0,
            prompt_tps: 0.0,
            gen_tps: 50.0,
            dropped_messages: 1,
            ctx_used: 2,
            ctx_size: 2048,
            ctx_requested: 0,
            inspector_us_per_token: 0.0,
        };
        let line = stats_line(&s, 0);
        assert!(
            line.contains("prompt 1 token (1 evaluated")
                && line.ends_with("1 oldest message dropped to fit the context"),
            "{line}"
        );
        (s.n_prompt, s.dropped_messages) = (2, 2);
        let line = stats_line(&s, 0);
        assert!(
            line.contains("prompt 2 tokens (") && line.contains("2 oldest messages dropped"),
            "{line}"
        );
        let one = ScoreSummary {
            n_tokens: 1,
            ..Default::default()
        };
        assert!(
            one.line().starts_with("1 token scored · "),
            "{}",
            one.line()
        );
    }

    #[test]
    fn bars_scale_with_probability() {
        assert_eq!(bar(0.0), "·".repeat(BAR));
        assert_eq!(bar(1.0), "█".repeat(BAR));
        assert_eq!(bar(0.5).chars().filter(|&c| c == '█').count(), BAR / 2);
        assert_eq!(bar(0.5).chars().count(), BAR);
        assert_eq!(bar(1.0 / 192.0).chars().next(), Some('▏'));
    }

    /// A vocabulary of `pieces` and a step choosing token 0 with the others as candidates.
    fn step(pieces: &[&str]) -> (TokenStep, Vocab) {
        let vocab = Vocab {
            pieces: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
            eog: vec![],
            learned: Default::default(),
        };
        let top = (0..pieces.len() as i32)
            .map(|id| crate::engine::Candidate {
                id,
                logit: -(id as f32),
                p_sampled: Some(0.5),
            })
            .collect();
        // Chosen: a token outside the candidates (no "◀ chosen" mark).
        let step = TokenStep {
            index: 0,
            id: pieces.len() as i32,
            forced: false,
            text: String::new(),
            logit: Some(0.0),
            p_sampled: Some(0.5),
            dist: Some(crate::engine::Distribution {
                lse: 0.5,
                entropy: Some(1.0),
                top,
            }),
        };
        (step, vocab)
    }

    #[test]
    fn the_table_escapes_once_and_aligns_by_width() {
        let (step, vocab) = step(&["\n", "你好", "ab"]);
        let t = token_table(&[step], &vocab);
        assert!(t.contains("\"\\n\""), "a newline reads \\n: {t}");
        assert!(!t.contains("\\\\n"), "no doubled backslash: {t}");
        // Candidate lines are padded by display width: equal widths even with
        // wide characters.
        let widths: Vec<usize> = t.lines().skip(1).map(crate::text::str_width).collect();
        assert_eq!(widths.len(), 3);
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{t}");
    }
}
