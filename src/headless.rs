//! `run` and `bench`: the engine driven from the command line, output as
//! aligned text or JSONL.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use serde_json::json;
use thiserror::Error;

use crate::config::Config;
use crate::engine::{
    ChatMessage, EngineHandle, Event, GenerateRequest, ModelInfo, Placement, RequestId, Role,
    Stats, TokenStep,
};

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{0}")]
    Engine(String),
    #[error("the engine stopped unexpectedly")]
    Disconnected,
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Waits for the final event of `request`, passing every event of it to `on_event`.
pub fn wait_for(
    rx: &Receiver<Event>,
    request: RequestId,
    mut on_event: impl FnMut(&Event) -> Result<(), RunError>,
) -> Result<Event, RunError> {
    loop {
        let event = rx.recv().map_err(|_| RunError::Disconnected)?;
        if event.request() != request {
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

/// Loads `path` on an engine thread and returns the engine ready to generate.
pub fn start_engine(
    path: PathBuf,
    config: &Config,
) -> Result<(EngineHandle, Receiver<Event>, ModelInfo), RunError> {
    start_engine_at(&Placement::Thread, path, config)
}

/// Loads `path` on an engine at `placement` and returns the engine ready to
/// generate. A crash of an engine process while loading is
/// [`RunError::Engine`] with its report in words (llama.cpp's assertion, the file).
pub fn start_engine_at(
    placement: &Placement,
    path: PathBuf,
    config: &Config,
) -> Result<(EngineHandle, Receiver<Event>, ModelInfo), RunError> {
    let (mut engine, rx) = EngineHandle::spawn_with_receiver_at(placement);
    let id = engine.load(path, config.load_settings());
    match wait_for(&rx, id, |_| Ok(()))? {
        Event::Loaded { info, .. } => Ok((engine, rx, *info)),
        _ => Err(RunError::Disconnected),
    }
}

/// The conversation `run` sends: the system prompt (see [`Config::system_prompt`]), then `prompt`.
pub fn messages_for(config: &Config, prompt: &str) -> Vec<ChatMessage> {
    let mut messages = Vec::new();
    if let Some(system) = config.system_prompt() {
        messages.push(ChatMessage::new(Role::System, system));
    }
    messages.push(ChatMessage::new(Role::User, prompt));
    messages
}

pub fn request_for(config: &Config, messages: Vec<ChatMessage>, raw: bool) -> GenerateRequest {
    GenerateRequest {
        messages,
        raw,
        sampling: config.sampling.clone(),
        max_tokens: config.max_tokens,
        top_k_inspect: config.inspector_top_k,
    }
}

/// `tokenscope run`: one reply, streamed, then the per-token table (text) or
/// one JSON object per token and a final `done` line (jsonl). What the user
/// should know about how the prompt was built (a chat template that refused the
/// conversation, a fallback) goes to `warn` as `warning: …` lines. The engine
/// runs at `placement` (the binary: a child process, so that an abort in
/// llama.cpp is an error here, never the end of this process).
#[allow(clippy::too_many_arguments)]
pub fn run(
    placement: &Placement,
    path: PathBuf,
    config: &Config,
    prompt: &str,
    raw: bool,
    jsonl: bool,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<Stats, RunError> {
    let (mut engine, rx, info) = start_engine_at(placement, path, config)?;
    let id = engine.generate(request_for(config, messages_for(config, prompt), raw));
    let mut steps = Vec::new();
    let mut mode_line = None;
    let done = wait_for(&rx, id, |event| {
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
                    let line = token_json(step).to_string();
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
    let Event::Done { stats, .. } = done else {
        return Err(RunError::Disconnected);
    };
    if jsonl {
        writeln!(out, "{}", done_json(&stats))?;
    } else {
        writeln!(out)?;
        writeln!(out)?;
        write!(out, "{}", token_table(&steps))?;
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

pub fn token_json(step: &TokenStep) -> serde_json::Value {
    json!({
        "type": "token",
        "index": step.index,
        "id": step.id,
        "text": step.text,
        "piece": step.piece,
        "bytes": step.bytes,
        "p": step.p,
        "p_sampled": step.p_sampled,
        "logit": step.logit,
        "lse": step.lse,
        "entropy": step.entropy,
        "top": step.top.iter().map(|c| json!({
            "id": c.id, "text": c.text, "p": c.p, "p_sampled": c.p_sampled, "logit": c.logit,
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

/// The readable per-token table of `run`'s text output.
pub fn token_table(steps: &[TokenStep]) -> String {
    let mut out = String::new();
    for s in steps {
        out += &format!(
            "#{:<4} {} p {:>6.2}%  sampled {:>6.2}%  entropy {:.2} bits\n",
            s.index,
            quoted(&s.piece, 18),
            s.p * 100.0,
            s.p_sampled * 100.0,
            s.entropy
        );
        for c in &s.top {
            let mark = if c.id == s.id { "◀ chosen" } else { "" };
            out += &format!(
                "      {} {:>6.2}%  {} {}\n",
                bar(c.p),
                c.p * 100.0,
                quoted(&c.text, 18),
                mark
            );
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

    fn step(piece: &str, top: &[&str]) -> TokenStep {
        TokenStep {
            index: 0,
            id: 1,
            bytes: vec![],
            text: String::new(),
            piece: piece.into(),
            p: 0.5,
            p_sampled: 0.5,
            logit: 0.0,
            entropy: 1.0,
            lse: 0.0,
            top: top
                .iter()
                .map(|t| crate::engine::Candidate {
                    id: 2,
                    text: t.to_string(),
                    p: 0.5,
                    p_sampled: 0.5,
                    logit: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn the_table_escapes_once_and_aligns_by_width() {
        let t = token_table(&[step("\\n", &["\\n", "你好", "ab"])]);
        assert!(t.contains("\"\\n\""), "a newline reads \\n: {t}");
        assert!(!t.contains("\\\\n"), "no doubled backslash: {t}");
        // Candidate lines are padded by display width: equal widths even with
        // wide characters.
        let widths: Vec<usize> = t.lines().skip(1).map(crate::text::str_width).collect();
        assert_eq!(widths.len(), 3);
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{t}");
    }
}
