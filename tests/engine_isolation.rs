//! The engine in a child process of the binary: a model file that trips an
//! assert in llama.cpp, or a SIGKILL of the engine, ends only the child. The
//! requests it took with it fail with a report naming what happened
//! (llama.cpp's assertion, the file), `EngineExited` follows, and the same
//! handle then works again in a fresh child. `run` on such a file exits 1
//! with that report, and an engine process whose parent died does not linger.
//!
//! The bad files are copies of SmolLM2 with one metadata field changed:
//! `llama.block_count = 0` fails `GGML_ASSERT(hparams.n_layer_all > 0 …)` while
//! llama.cpp loads it; a negative `llama.attention.layer_norm_rms_epsilon`
//! passes llama.cpp's loader and trips `GGML_ASSERT(eps >= 0.0f)` at the first
//! decode, which the load's one-token warm-up decode makes part of loading.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use common::gguf_edit::{Meta, copy_with_metadata};
use tokenscope::engine::{
    CrashReport, CrashStage, EngineHandle, Event, GenerateRequest, ModelRef, Placement, RequestId,
    SamplingParams,
};

const EXE: &str = env!("CARGO_BIN_EXE_tokenscope");

/// A bad copy of SmolLM2: its file name, and the assertion it trips.
struct Bad {
    name: &'static str,
    key: &'static str,
    value: Meta,
    assertion: &'static str,
}

fn bad_files() -> [Bad; 2] {
    [
        Bad {
            name: "zero-layers.gguf",
            key: "llama.block_count",
            value: Meta::U32(0),
            assertion: "GGML_ASSERT(hparams.n_layer_all > 0",
        },
        Bad {
            name: "negative-eps.gguf",
            key: "llama.attention.layer_norm_rms_epsilon",
            value: Meta::F32(-1e-5),
            assertion: "GGML_ASSERT(eps >= 0.0f) failed",
        },
    ]
}

fn make(dir: &Path, bad: &Bad) -> PathBuf {
    let path = dir.join(bad.name);
    copy_with_metadata(
        &common::model(common::SMOL),
        &path,
        &[(bad.key, bad.value.clone())],
        &[],
    )
    .unwrap();
    path
}

fn process_engine() -> (EngineHandle, Receiver<Event>) {
    EngineHandle::spawn_with_receiver_at(&Placement::Process(EXE.into()))
}

fn next(rx: &Receiver<Event>) -> Event {
    rx.recv_timeout(Duration::from_secs(120))
        .expect("an event from the engine")
}

/// The final event of `request` (events of other requests are skipped).
fn final_of(rx: &Receiver<Event>, request: RequestId) -> Event {
    loop {
        let e = next(rx);
        if e.request() == Some(request) && e.is_final() {
            return e;
        }
    }
}

/// The next `EngineExited`; any final event on the way fails the test.
fn exited(rx: &Receiver<Event>) -> CrashReport {
    loop {
        match next(rx) {
            Event::EngineExited { report } => return *report,
            e if e.is_final() => panic!("unexpected {e:?}"),
            _ => {}
        }
    }
}

/// A request id not used before in this test binary.
fn new_id() -> RequestId {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Loads `path` into slot 0; returns the request id.
fn load(handle: &mut EngineHandle, path: PathBuf) -> RequestId {
    let id = new_id();
    let model = ModelRef::Local(path);
    handle.load(id, 0, model, common::config_with(512).load_settings());
    id
}

/// Generates on slot 0; returns the request id.
fn generate(handle: &mut EngineHandle, req: GenerateRequest) -> RequestId {
    let id = new_id();
    handle.generate(id, 0, req);
    id
}

fn loads(handle: &mut EngineHandle, rx: &Receiver<Event>, path: PathBuf) {
    let id = load(handle, path);
    match final_of(rx, id) {
        Event::Loaded { .. } => {}
        e => panic!("the model should load: {e:?}"),
    }
}

fn request(text: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        raw: true,
        ..GenerateRequest::new(common::user(text), SamplingParams::greedy(), max_tokens, 5)
    }
}

/// A short reply on the handle comes back whole.
fn replies(handle: &mut EngineHandle, rx: &Receiver<Event>) {
    let id = generate(handle, request("The capital of France is", 4));
    match final_of(rx, id) {
        Event::Done { stats, .. } => assert_eq!(stats.n_generated, 4, "{stats:?}"),
        e => panic!("the reply should work: {e:?}"),
    }
}

#[test]
fn an_assert_while_loading_fails_the_load_then_the_engine_works_again() {
    let dir = tempfile::tempdir().unwrap();
    let smol = common::model(common::SMOL);
    let (mut handle, rx) = process_engine();
    assert_eq!(handle.child_pid(), None, "started at the first command");
    for bad in bad_files() {
        let path = make(dir.path(), &bad);
        loads(&mut handle, &rx, smol.clone());
        let first = handle.child_pid().expect("a child runs");
        let id = load(&mut handle, path.clone());
        let Event::Failed { error, .. } = final_of(&rx, id) else {
            panic!("{}: the load must fail", bad.name);
        };
        let error = error.to_string();
        assert!(
            error.contains(bad.assertion)
                && error.contains("aborted (SIGABRT)")
                && error.contains(&format!("while loading {}", bad.name)),
            "{error}"
        );
        let report = exited(&rx);
        assert_eq!(report.stage, CrashStage::Loading);
        assert_eq!(report.file.as_deref(), Some(path.as_path()));
        assert!(report.blames_file());
        assert_eq!(report.lines.len(), 1, "{report:?}");
        assert!(report.lines[0].contains(bad.assertion), "{report:?}");
        assert!(
            !report.lines[0].starts_with('/'),
            "the source directory is cut: {report:?}"
        );
        assert_eq!(handle.child_pid(), None, "the dead child is forgotten");

        // The next command starts a fresh child.
        loads(&mut handle, &rx, smol.clone());
        assert_ne!(handle.child_pid(), Some(first));
        replies(&mut handle, &rx);
    }
}

#[test]
fn sigkill_mid_reply_fails_the_reply_and_the_next_request_works() {
    let (mut handle, rx) = process_engine();
    loads(&mut handle, &rx, common::model(common::SMOL));
    // Greedy counting goes on until the token limit: still streaming when killed.
    let id = generate(&mut handle, request("1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", 4000));
    loop {
        match next(&rx) {
            Event::Token { request, .. } if request == id => break,
            e if e.is_final() => panic!("ended before it was killed: {e:?}"),
            _ => {}
        }
    }
    let pid = handle.child_pid().expect("a child runs");
    // SAFETY: a signal to the engine child this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let Event::Failed { error, .. } = final_of(&rx, id) else {
        panic!("the reply must fail");
    };
    let error = error.to_string();
    assert!(
        error.contains("killed by SIGKILL") && error.contains("generating with SmolLM2"),
        "{error}"
    );
    let report = exited(&rx);
    assert_eq!(report.stage, CrashStage::Generating);
    assert!(!report.blames_file(), "a kill is not the file's fault");
    loads(&mut handle, &rx, common::model(common::SMOL));
    replies(&mut handle, &rx);
}

#[test]
fn a_child_killed_while_idle_is_reported_and_replaced() {
    let (mut handle, rx) = process_engine();
    loads(&mut handle, &rx, common::model(common::SMOL));
    let pid = handle.child_pid().expect("a child runs");
    // SAFETY: a signal to the engine child this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let report = exited(&rx);
    assert_eq!(report.stage, CrashStage::Idle);
    assert_eq!(report.ended, "was killed by SIGTERM");
    assert!(report.file.is_some_and(|f| f.ends_with(common::SMOL)));
    // No model in the new child until one is loaded.
    let id = generate(&mut handle, request("hi", 2));
    let Event::Failed { error, .. } = final_of(&rx, id) else {
        panic!("no model is loaded in the new child");
    };
    let error = error.to_string();
    assert!(error.contains("no model is loaded"), "{error}");
    loads(&mut handle, &rx, common::model(common::SMOL));
    replies(&mut handle, &rx);
}

#[test]
fn run_on_a_file_that_trips_an_assert_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for bad in bad_files() {
        let path = make(dir.path(), &bad);
        let out = Command::new(EXE)
            .args(["run", "--prompt", "hi", "--max-tokens", "3", "--model"])
            .arg(&path)
            .env("TOKENSCOPE_HOME", dir.path())
            .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", bad.name);
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // One line of ours: nothing llama.cpp printed reaches the terminal.
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: the engine process aborted (SIGABRT) while loading ")
                && stderr.contains(bad.name)
                && stderr.contains(bad.assertion),
            "{stderr}"
        );
        // llama.cpp's own words are in the log.
        let log = std::fs::read_to_string(dir.path().join("logs/tokenscope.log")).unwrap();
        assert!(log.contains(bad.assertion), "{log}");
        // In JSONL the stream itself says how it ended.
        let out = Command::new(EXE)
            .args(["run", "-p", "hi", "--format", "jsonl", "--model"])
            .arg(&path)
            .env("TOKENSCOPE_HOME", dir.path())
            .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last: serde_json::Value =
            serde_json::from_str(stdout.lines().last().expect("an error line")).unwrap();
        assert_eq!(last["type"], "error", "{stdout}");
        assert!(
            last["error"].as_str().unwrap().contains(bad.assertion),
            "{stdout}"
        );
    }
}

#[test]
fn an_engine_process_whose_parent_died_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut parent = Command::new(EXE)
        .args(["run", "--raw", "--temp", "0", "--max-tokens", "4000"])
        .args(["--prompt", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "--model"])
        .arg(common::model(common::SMOL))
        .env("TOKENSCOPE_HOME", dir.path())
        .env("TOKENSCOPE_CONFIG", "/nonexistent/tokenscope-test.toml")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The reply streams: the engine child is generating.
    let mut out = parent.stdout.take().unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut out, &mut first).expect("the reply starts");
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", parent.id())).unwrap();
    let child: u32 = children
        .split_whitespace()
        .next()
        .expect("the engine child")
        .parse()
        .unwrap();
    parent.kill().unwrap();
    parent.wait().unwrap();
    common::wait_until_ended(child, 30, "the engine process whose parent died");
}

#[test]
fn a_file_llama_cpp_refuses_gives_llama_cpps_reason() {
    // Zero attention heads: llama.cpp's loader refuses the tensor shapes (no
    // assert); the error says so, not the binding's "null result".
    let dir = tempfile::tempdir().unwrap();
    let bad = Bad {
        name: "zero-heads.gguf",
        key: "llama.attention.head_count",
        value: Meta::U32(0),
        assertion: "",
    };
    let path = make(dir.path(), &bad);
    // The engine process installs the layer that keeps llama.cpp's error
    // (the app's own log subscriber too; this test binary has none).
    let (mut handle, rx) = process_engine();
    let id = load(&mut handle, path.clone());
    let Event::Failed { error, .. } = final_of(&rx, id) else {
        panic!("the load must fail");
    };
    let error = error.to_string();
    assert!(
        error.contains("error loading model") && error.contains("wrong shape"),
        "{error}"
    );
    assert!(!error.contains("null result"), "{error}");
    // The engine is still usable.
    loads(&mut handle, &rx, common::model(common::SMOL));
}

#[test]
fn an_engine_that_hangs_is_restarted_on_request() {
    let (mut handle, rx) = process_engine();
    loads(&mut handle, &rx, common::model(common::SMOL));
    let pid = handle.child_pid().expect("a child runs");
    // SAFETY: a signal to the engine child this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
    // The signal is delivered asynchronously: the request goes out only once
    // the kernel reports every thread of the child stopped (else one may
    // still start it).
    let stopped = || {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|st| st.rsplit(") ").next().map(|rest| rest.starts_with('T')))
                .unwrap_or(false)
        })
    };
    let t = std::time::Instant::now();
    while !stopped() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the child never stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // It takes the request and never answers. (No cancel here: one sent
    // before the request reaches the stopped child is answered by the
    // handle itself, rightly, which made this check racy.)
    let id = generate(&mut handle, request("1, 2, 3,", 50));
    if let Ok(ev) = rx.recv_timeout(Duration::from_millis(500)) {
        panic!("a stopped engine says nothing, yet came: {ev:?}");
    }
    handle.restart();
    let Event::Failed { error, .. } = final_of(&rx, id) else {
        panic!("the request fails");
    };
    assert!(error.to_string().contains("restarted"), "{error}");
    let report = exited(&rx);
    assert!(!report.blames_file(), "a restart is not the file's fault");
    assert!(common::process_ended(pid), "the old child is gone");
    loads(&mut handle, &rx, common::model(common::SMOL));
    replies(&mut handle, &rx);
}
