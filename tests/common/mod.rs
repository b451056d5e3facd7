//! Shared helpers for tests on the real demo models.
#![allow(dead_code)]

pub mod gguf_edit;

use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use tokenscope::config::Config;
use tokenscope::engine::{
    ChatMessage, EngineHandle, Event, GenerateRequest, ModelInfo, Role, SamplingParams, Stats,
    TokenStep,
};

pub const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";

/// Where the demo models are: `TOKENSCOPE_TEST_MODELS`, else the app's models dir.
pub fn models_dir() -> PathBuf {
    std::env::var_os("TOKENSCOPE_TEST_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| tokenscope::paths::Paths::resolve().models_dir)
}

/// Runs the real binary on the models in `models_dir` with no config file:
/// (stdout, stderr, success).
pub fn run_binary(models_dir: &std::path::Path, args: &[&str]) -> (String, String, bool) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"))
        .args(args)
        .env("TOKENSCOPE_MODELS_DIR", models_dir)
        .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
        .output()
        .expect("binary runs");
    (
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

pub fn model(file: &str) -> PathBuf {
    let p = models_dir().join(file);
    assert!(
        p.exists(),
        "demo model {} missing: run `make models` (or `tokenscope fetch-demos`) first",
        p.display()
    );
    p
}

pub struct Engine {
    pub handle: EngineHandle,
    pub rx: Receiver<Event>,
    pub info: ModelInfo,
    pub config: Config,
}

pub fn config_with(ctx: u32) -> Config {
    let mut c = Config::default();
    c.engine.ctx = ctx;
    c
}

pub fn engine(file: &str, config: Config) -> Engine {
    let (handle, rx, info) =
        tokenscope::headless::start_engine(model(file), &config).expect("model loads");
    Engine {
        handle,
        rx,
        info,
        config,
    }
}

#[derive(Debug)]
pub struct Reply {
    pub steps: Vec<TokenStep>,
    pub stats: Stats,
    /// The whole reply: every token's text, then the tail.
    pub text: String,
    /// What [`Event::Tail`] added (U+FFFD for a character cut off), else empty.
    pub tail: String,
}

impl Engine {
    pub fn generate(
        &mut self,
        messages: Vec<ChatMessage>,
        raw: bool,
        sampling: SamplingParams,
        max_tokens: u32,
    ) -> Result<Reply, String> {
        let id = self.handle.generate(GenerateRequest {
            messages,
            raw,
            sampling,
            max_tokens,
            top_k_inspect: self.config.inspector_top_k,
        });
        let mut steps = Vec::new();
        let mut tail = String::new();
        loop {
            match self.rx.recv().expect("engine alive") {
                e if e.request() != id => continue,
                Event::Token { step, .. } => steps.push(*step),
                Event::Tail { text, .. } => tail = text,
                Event::Done { stats, .. } => {
                    let text = steps.iter().map(|s| s.text.as_str()).collect::<String>() + &tail;
                    return Ok(Reply {
                        steps,
                        stats,
                        text,
                        tail,
                    });
                }
                Event::Failed { error, .. } => return Err(error),
                _ => {}
            }
        }
    }
}

pub fn user(text: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new(Role::User, text)]
}

pub fn no_truncation(temperature: f32) -> SamplingParams {
    SamplingParams {
        temperature,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        ..SamplingParams::default()
    }
}
