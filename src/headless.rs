//! `run` and `bench`: the engine driven from the command line, output as
//! aligned text or JSONL.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use serde_json::json;
use thiserror::Error;

use crate::config::Config;
use crate::conversation::{Conversation, Node, NodeId};
use crate::engine::{
    EngineError, EngineHandle, Event, GenerateRequest, ModelInfo, Placement, ReplyPrefix,
    RequestId, Stats, TokenStep, Vocab,
};

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    EngineExited(Box<crate::engine::CrashReport>),
    #[error("the engine stopped unexpectedly")]
    Disconnected,
    #[error("the request was cancelled")]
    Cancelled,
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Waits for the final event of `request`, passing every event of it to
/// `on_event`. A failure is an error; `Loaded`, `Done` and `Cancelled` are returned.
pub fn wait_for(
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

/// Loads `path` on an engine thread and returns the engine ready to generate.
pub fn start_engine(path: PathBuf, config: &Config) -> Result<LocalEngine, RunError> {
    start_engine_at(&Placement::Thread, path, config)
}

/// Loads `path` on an engine at `placement` and returns the engine ready to
/// generate. A crash of an engine process while loading is
/// [`RunError::Engine`] with its report in words (llama.cpp's assertion, the file).
pub fn start_engine_at(
    placement: &Placement,
    path: PathBuf,
    config: &Config,
) -> Result<LocalEngine, RunError> {
    let (mut handle, rx) = EngineHandle::spawn_with_receiver_at(placement);
    handle.load(1, 0, path, config.load_settings());
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
pub fn one_turn(config: &Config, prompt: &str) -> (Conversation, NodeId) {
    let mut conv = Conversation::new(config.system_prompt());
    conv.append(Node::user(prompt));
    let reply = conv.append(Node::assistant(None, None));
    (conv, reply)
}

/// The request for a one-turn conversation of `prompt` with no system prompt.
pub fn request_for(config: &Config, prompt: &str, raw: bool) -> GenerateRequest {
    let mut conv = Conversation::new(None);
    conv.append(Node::user(prompt));
    let reply = conv.append(Node::assistant(None, None));
    conv.request(reply, &config.request_settings(raw))
}

/// What `run` is asked for besides the model and the config.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
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
pub fn run(
    placement: &Placement,
    path: PathBuf,
    config: &Config,
    args: &RunArgs,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<Stats, RunError> {
    let result = run_streaming(placement, path, config, args, out, warn);
    if args.jsonl
        && let Err(e) = &result
        && !matches!(e, RunError::Io(_))
    {
        let line = json!({"type": "error", "error": e.to_string()}).to_string();
        writeln!(out, "{}", crate::text::json_safe(&line))?;
    }
    result
}

fn run_streaming(
    placement: &Placement,
    path: PathBuf,
    config: &Config,
    args: &RunArgs,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<Stats, RunError> {
    let mut engine = start_engine_at(placement, path, config)?;
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
    let done = wait_for(&engine.rx, id, |event| {
        match event {
            Event::Started { mode, note, .. } => {
                mode_line = Some(mode.describe());
                if let Some(note) = note {
                    // The engine escaped the model file's text in it; escape_text
                    // changes nothing then, and keeps the promise here too.
                    writeln!(warn, "warning: {}", crate::text::escape_text(note))?;
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

/// One `run --format jsonl` token line. Probabilities are `null` when the
/// inspector is off (`--candidates 0`); `forced` marks tokens given, not sampled.
pub fn token_json(step: &TokenStep, vocab: &Vocab) -> serde_json::Value {
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

pub fn done_json(s: &Stats) -> serde_json::Value {
    json!({
        "type": "done",
        "stop": s.stop.as_str(),
        "n_prompt": s.n_prompt,
        "n_prompt_evaluated": s.n_prompt_evaluated,
        "n_prompt_reused": s.n_prompt_reused,
        "n_generated": s.n_generated,
        "n_forced": s.n_forced,
        "ttft_ms": s.ttft_ms,
        "prompt_tps": s.prompt_tps,
        "gen_tps": s.gen_tps,
        "dropped_messages": s.dropped_messages,
        "ctx_used": s.ctx_used,
        "ctx_size": s.ctx_size,
        "ctx_requested": s.ctx_requested,
        "inspector_us_per_token": s.inspector_us_per_token,
    })
}

/// The last line of `run`'s text output. `n_ctx_train` (tokens, 0 = unknown)
/// explains a context size other than the one asked for.
pub fn stats_line(s: &Stats, n_ctx_train: usize) -> String {
    let mut line = format!(
        "stop: {} · prompt {} tokens ({} evaluated, {} reused from cache) · {} generated · TTFT {:.0} ms · prompt {:.1} tok/s · generation {:.1} tok/s · context {}/{}",
        s.stop.as_str(),
        s.n_prompt,
        s.n_prompt_evaluated,
        s.n_prompt_reused,
        s.n_generated,
        s.ttft_ms,
        s.prompt_tps,
        s.gen_tps,
        s.ctx_used,
        s.ctx_size
    );
    if let Some(why) = crate::engine::describe_ctx(s.ctx_requested, s.ctx_size, n_ctx_train) {
        line += &format!(" ({why})");
    }
    if s.dropped_messages > 0 {
        line += &format!(
            " · {} oldest messages dropped to fit the context",
            s.dropped_messages
        );
    }
    line
}

const BAR: usize = 24;

/// A bar of `BAR` cells with eighth-block precision.
pub fn bar(p: f32) -> String {
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

/// The readable per-token table of `run`'s text output (token text from `vocab`).
pub fn token_table(steps: &[TokenStep], vocab: &Vocab) -> String {
    let mut out = String::new();
    for s in steps {
        let entropy = s
            .entropy()
            .map_or_else(|| "–".to_string(), |e| format!("{e:.2} bits"));
        let how = if s.forced { "forced " } else { "sampled" };
        out += &format!(
            "#{:<4} {} p {}  {how} {}  entropy {entropy}\n",
            s.index,
            quoted(&vocab.readable(s.id), 18),
            pct(s.p()),
            pct(s.p_sampled),
        );
        if let Some(d) = &s.dist {
            for c in &d.top {
                let mark = if c.id == s.id { "◀ chosen" } else { "" };
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
