//! Shared helpers for tests on the real demo models.
#![allow(dead_code)]

pub mod fake_model;
pub mod gguf_edit;
pub mod lang;
pub mod server;
pub mod tmux;

use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use std::sync::Arc;
use tokenscope::config::Config;

use tokenscope::engine::{
    ChatMessage, EngineError, EngineHandle, Event, GenerateRequest, ModelInfo, RequestId, Role,
    SamplingParams, Stats, TokenStep, Vocab,
};

pub const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";
/// The demo model that knows Chinese (qwen2 architecture, 152k vocabulary, no BOS).
pub const QWEN: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

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
    run_binary_with(&[("TOKENSCOPE_MODELS_DIR", models_dir)], args)
}

/// Runs the real binary with no config file, no other tool's model store
/// (`TOKENSCOPE_SOURCES` empty, unless `env` sets it) and the environment
/// variables `env`: (stdout, stderr, success).
pub fn run_binary_with(env: &[(&str, &std::path::Path)], args: &[&str]) -> (String, String, bool) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokenscope"))
        .args(args)
        .env("TOKENSCOPE_SOURCES", "")
        .envs(env.iter().copied())
        .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
        .output()
        .expect("binary runs");
    (
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// A private TOKENSCOPE_HOME whose models dir links the two demo models.
pub fn demo_home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for f in [SMOL, GEMMA] {
        std::os::unix::fs::symlink(model(f), models.join(f)).unwrap();
    }
    dir
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
    pub vocab: Arc<Vocab>,
    pub config: Config,
    last_request: RequestId,
}

pub fn config_with(ctx: u32) -> Config {
    let mut c = Config::default();
    c.engine.ctx = ctx;
    c
}

pub fn engine(file: &str, config: Config) -> Engine {
    let e =
        tokenscope::commands::headless::start_engine(model(file), &config).expect("model loads");
    Engine {
        handle: e.handle,
        rx: e.rx,
        info: e.info,
        vocab: e.vocab,
        config,
        last_request: 100,
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

/// What a request produced: its steps, the final event's stats (`None` for a
/// request cancelled before it started), and everything else it sent.
#[derive(Debug)]
pub struct Outcome {
    pub steps: Vec<TokenStep>,
    pub stats: Option<Stats>,
    pub cancelled: bool,
    pub events: Vec<Event>,
}

impl Engine {
    /// A request id not used before.
    pub fn next_request(&mut self) -> RequestId {
        self.last_request += 1;
        self.last_request
    }

    /// Sends `req` to slot 0; returns its id.
    pub fn start(&mut self, req: GenerateRequest) -> RequestId {
        let id = self.next_request();
        self.handle.generate(id, 0, req);
        id
    }

    /// Collects the events of `id` until its final one; a failure is an error.
    pub fn collect(&mut self, id: RequestId) -> Result<Outcome, EngineError> {
        let mut out = Outcome {
            steps: Vec::new(),
            stats: None,
            cancelled: false,
            events: Vec::new(),
        };
        loop {
            match self.rx.recv().expect("engine alive") {
                e if e.request() != Some(id) => continue,
                Event::Token { step, .. } => out.steps.push(*step),
                Event::Done { stats, .. } => {
                    out.stats = Some(stats);
                    return Ok(out);
                }
                Event::Cancelled { stats, .. } => {
                    out.stats = stats;
                    out.cancelled = true;
                    return Ok(out);
                }
                Event::Failed { error, .. } => return Err(error),
                e => out.events.push(e),
            }
        }
    }

    pub fn generate(
        &mut self,
        messages: Vec<ChatMessage>,
        raw: bool,
        sampling: SamplingParams,
        max_tokens: u32,
    ) -> Result<Reply, EngineError> {
        let k = self.config.inspector_top_k;
        let id = self.start(GenerateRequest {
            raw,
            ..GenerateRequest::new(messages, sampling, max_tokens, k)
        });
        let mut steps = Vec::new();
        let mut tail = String::new();
        loop {
            match self.rx.recv().expect("engine alive") {
                e if e.request() != Some(id) => continue,
                Event::Token { step, .. } => steps.push(*step),
                Event::Tail { text, .. } => tail = text,
                Event::Done { stats, .. }
                | Event::Cancelled {
                    stats: Some(stats), ..
                } => {
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

/// A greedy request on `text` as the raw prompt (no chat template), with
/// `top_k` inspector candidates per token.
pub fn raw_greedy(text: &str, max_tokens: u32, top_k: usize) -> GenerateRequest {
    GenerateRequest {
        raw: true,
        ..GenerateRequest::new(user(text), SamplingParams::greedy(), max_tokens, top_k)
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

/// A candidate with its probability computed (see [`View`]).
#[derive(Debug, Clone)]
pub struct CandView {
    pub id: i32,
    pub p: f32,
    pub p_sampled: f32,
    pub logit: f32,
}

/// A step with the inspector on, its optional parts unwrapped, for asserts.
#[derive(Debug, Clone)]
pub struct View {
    pub index: usize,
    pub id: i32,
    pub forced: bool,
    pub p: f32,
    pub p_sampled: f32,
    pub logit: f32,
    pub entropy: f32,
    pub lse: f32,
    pub top: Vec<CandView>,
}

/// `s` with every optional part unwrapped (panics when the inspector was off;
/// a forced token's sampled probabilities read as NaN).
pub fn view(s: &TokenStep) -> View {
    let d = s.dist.as_ref().expect("the inspector was on");
    View {
        index: s.index,
        id: s.id,
        forced: s.forced,
        p: s.p().expect("p"),
        p_sampled: s.p_sampled.unwrap_or(f32::NAN),
        logit: s.logit.expect("logit"),
        entropy: s.entropy().expect("entropy"),
        lse: d.lse,
        top: d
            .top
            .iter()
            .map(|c| CandView {
                id: c.id,
                p: d.p(c.logit),
                p_sampled: c.p_sampled.unwrap_or(f32::NAN),
                logit: c.logit,
            })
            .collect(),
    }
}

impl Reply {
    /// Every step as a [`View`].
    pub fn views(&self) -> Vec<View> {
        self.steps.iter().map(view).collect()
    }
}

/// The bytes the reply's tokens write (EOG tokens write none).
pub fn bytes_of(vocab: &Vocab, steps: &[TokenStep]) -> Vec<u8> {
    steps
        .iter()
        .filter(|s| !vocab.is_eog(s.id))
        .flat_map(|s| vocab.bytes(s.id).to_vec())
        .collect()
}

/// True once process `pid` has ended (gone from /proc, or a zombie).
pub fn process_ended(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The state is the first field after the command name in parentheses.
    stat.rsplit(')')
        .next()
        .and_then(|rest| rest.trim().chars().next())
        .is_none_or(|state| state == 'Z')
}

/// Waits up to `secs` for process `pid` to end; panics naming `what` if it does not.
pub fn wait_until_ended(pid: u32, secs: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !process_ended(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} ({pid}) is still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// SmolLM2 Q2_K made from the demo Q4_1 by `tokenscope quantize`, once per
/// target dir (a file left by an interrupted run is never used: the quantizer
/// writes to a temporary name and renames at the end).
pub fn smol_q2k() -> PathBuf {
    static MADE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("SmolLM2-135M-Instruct.Q2_K.gguf");
        if !out.exists() {
            let (_, err, ok) = run_binary(
                &models_dir(),
                &[
                    "quantize",
                    model(SMOL).to_str().unwrap(),
                    out.to_str().unwrap(),
                    "--type",
                    "Q2_K",
                    "--allow-requantize",
                ],
            );
            assert!(ok, "quantize: {err}");
        }
        out
    })
    .clone()
}

/// Makes `cmd`'s process unable to write past `bytes` in any file, as
/// `ulimit -f` does (and a disk that fills up, as far as the writer sees):
/// writes beyond fail with EFBIG ("File too large") where the process
/// ignores SIGXFSZ (tokenscope does), else SIGXFSZ kills it.
#[allow(dead_code)]
pub fn limit_file_size(cmd: &mut std::process::Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
