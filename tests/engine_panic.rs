//! A panic on the engine worker thread reaches the user with its message and
//! location, through the real worker (its test hook, `TOKENSCOPE_TEST_ENGINE_PANIC`)
//! and the real event path: the `EngineHandle`'s events (worker thread), and
//! the TUI's own engine wiring (engine process) driven through `update`.
//! (`run` is checked in tests/cli_errors.rs.)
//!
//! One test only: it sets the hook's environment variable for this whole process.

mod common;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tokenscope::engine::crash::TEST_PANIC_ENV;
use tokenscope::engine::{EngineHandle, Event, GenerateRequest, LoadSettings, ModelRef, RequestId};
use tokenscope::tui::state::MsgStatus;
use tokenscope::tui::{Host, Msg, State, execute, start, update};

/// What the panic must be reported with: its message and where it happened.
const MESSAGE: &str = "TOKENSCOPE_TEST_ENGINE_PANIC=generate: a test asked the engine to panic";
const LOCATION: &str = "src/engine/worker.rs:";

struct EngineHost(EngineHandle);

impl Host for EngineHost {
    fn load(&mut self, id: RequestId, model: ModelRef, settings: LoadSettings) {
        self.0.load(id, 0, model, settings);
    }
    fn generate(&mut self, id: RequestId, req: GenerateRequest) {
        self.0.generate(id, 0, req);
    }
    fn cancel(&mut self, request: RequestId) {
        self.0.cancel(request)
    }
    fn score_prompt(&mut self, id: RequestId, req: tokenscope::engine::PromptScoreRequest) {
        self.0.score_prompt(id, 0, req);
    }
    fn lens(&mut self, request: RequestId, req: tokenscope::engine::LensRequest) {
        self.0.send(tokenscope::engine::Command::Lens {
            request,
            slot: 0,
            req,
        });
    }
    fn rollouts(&mut self, request: RequestId, req: tokenscope::engine::RolloutRequest) {
        self.0.rollouts(request, 0, req);
    }
    fn kv_cost(&mut self, request: RequestId, req: tokenscope::engine::KvCostRequest) {
        self.0.send(tokenscope::engine::Command::KvCost {
            request,
            slot: 0,
            req,
        });
    }
    fn ask_text(&mut self, request: RequestId, req: tokenscope::engine::AskTextRequest) {
        self.0.ask_text(request, 0, req);
    }
    fn refresh_models(&mut self, _places: tokenscope::catalog::Places) {}
    fn restart_engine(&mut self) {
        self.0.restart()
    }
    fn steer(&mut self, request: RequestId, steer: tokenscope::tui::effect::Steer) {
        self.0
            .send(tokenscope::engine::Command::Steer { request, steer })
    }
    fn compare(&mut self, id: RequestId, cmd: tokenscope::tui::compare::CompareCmd) {
        self.0.send(cmd.command(id));
    }
}

fn next(rx: &Receiver<Msg>) -> Msg {
    rx.recv_timeout(Duration::from_secs(120))
        .expect("a message from the engine")
}

#[test]
fn a_worker_panic_reaches_the_ui_with_its_message_and_location() {
    // SAFETY: the only test of this binary, before it starts any thread.
    unsafe { std::env::set_var(TEST_PANIC_ENV, "generate") };

    // 1. The handle's events: the request being served fails with the panic.
    let (mut handle, rx) = EngineHandle::spawn_with_receiver();
    let (load, id) = (1, 2);
    let file = ModelRef::Local(model());
    handle.load(load, 0, file, common::config_with(512).load_settings());
    let greedy = tokenscope::engine::SamplingParams::greedy();
    handle.generate(
        id,
        0,
        GenerateRequest::new(common::user("hi"), greedy, 4, 3),
    );
    let error = loop {
        match rx
            .recv()
            .expect("the failure arrives before the engine goes")
        {
            Event::Failed { request, error } if request == id => break error.to_string(),
            Event::Failed { error, .. } => panic!("{error}"),
            Event::Loaded { request, .. } => assert_eq!(request, load),
            _ => {}
        }
    };
    assert!(error.contains("the engine crashed"), "{error}");
    assert!(
        error.contains(MESSAGE) && error.contains(LOCATION),
        "{error}"
    );
    assert!(rx.recv().is_err(), "the worker is gone");
    drop(handle);

    // 2. The TUI's wiring (the engine in a child process of the binary): the
    // reply fails with the panic, the engine process exits non-zero, the UI
    // says so with the panic's message and location, and reloads the model
    // in a new engine process: nothing is a dead end.
    let (tx, rx) = channel();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tokenscope"));
    let mut host = EngineHost(tokenscope::tui::spawn_engine(tx, exe));
    let mut s = State::new(common::config_with(512), false, Vec::new(), (120, 30));
    let fx = start(&mut s, Some(ModelRef::Local(model())));
    execute(&mut s, fx, &mut host);
    while s.model.info.is_none() {
        let fx = update(&mut s, next(&rx));
        execute(&mut s, fx, &mut host);
    }
    send(&mut s, &mut host, "hi");
    assert!(s.session.generation.is_some(), "the question was sent");
    let mut failed = None;
    let report = loop {
        let msg = next(&rx);
        match &msg {
            Msg::Engine(Event::Failed { error, .. }) => failed = Some(error.to_string()),
            Msg::Engine(Event::EngineExited { report }) => break report.clone(),
            _ => {}
        }
        let fx = update(&mut s, msg);
        execute(&mut s, fx, &mut host);
    };
    let failed = failed.expect("the reply fails before the engine process goes");
    assert!(
        failed.contains("the engine crashed")
            && failed.contains(MESSAGE)
            && failed.contains(LOCATION),
        "{failed}"
    );
    assert!(
        matches!(&s.msg(1).unwrap().status, MsgStatus::Failed(_)),
        "{:?}",
        s.msg(1).unwrap().status
    );
    assert_eq!(report.ended, "exited with code 101", "{report:?}");
    assert_eq!(
        report.doing(),
        format!("generating with {}", common::SMOL),
        "the request it failed last"
    );
    assert!(
        !report.blames_file(),
        "a panic is tokenscope's bug, not the file's"
    );
    let fx = update(&mut s, Msg::Engine(Event::EngineExited { report }));
    let notice = s.view.notice.as_ref().expect("a notice").text.clone();
    assert!(
        notice.contains("exited with code 101")
            && notice.contains(MESSAGE)
            && notice.contains(LOCATION),
        "{notice}"
    );
    assert!(notice.contains("reloading SmolLM2"), "{notice}");
    assert!(
        s.model.files.crashed.is_empty(),
        "{:?}",
        s.model.files.crashed
    );
    execute(&mut s, fx, &mut host);
    while s.model.info.is_none() || s.session.load.is_some() {
        let fx = update(&mut s, next(&rx));
        execute(&mut s, fx, &mut host);
    }
    let notice = &s.view.notice.as_ref().unwrap().text;
    let again = format!("{} is loaded again.", s.model.info.as_ref().unwrap().name);
    assert!(
        notice.contains(MESSAGE) && notice.ends_with(&again),
        "the crash stays on screen, and ends well: {notice}"
    );
    // The next message goes to the new engine process (after the save of
    // the message sent).
    let fx = type_and_enter(&mut s, "again");
    assert!(
        matches!(
            fx.as_slice(),
            [
                tokenscope::tui::Effect::Save,
                tokenscope::tui::Effect::Generate(..)
            ]
        ),
        "{fx:?}"
    );
}

fn type_and_enter(s: &mut State, text: &str) -> Vec<tokenscope::tui::Effect> {
    let mut fx = Vec::new();
    for code in text.chars().map(KeyCode::Char).chain([KeyCode::Enter]) {
        let key = TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE));
        fx = update(s, Msg::Input(key));
    }
    fx
}

fn send(s: &mut State, host: &mut EngineHost, text: &str) {
    let fx = type_and_enter(s, text);
    execute(s, fx, host);
}

fn model() -> PathBuf {
    common::model(common::SMOL)
}
