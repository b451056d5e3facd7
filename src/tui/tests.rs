//! UI tests: scripted engine events through `update`, screens rendered into a
//! `TestBackend` and snapshotted, key styles asserted on buffer cells.

use std::path::PathBuf;

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use unicode_width::UnicodeWidthStr;

use super::bench::{NullHost, fake_loaded, fake_model, fake_partial_id, fake_stats, fake_step};
use super::models::ModelEntry;
use super::state::{Focus, HeatScale, MsgStatus, NoticeLevel, Phase, Popup, State, TokenRef};
use super::{Effect, Msg, execute, render, run_loop, update};
use crate::config::Config;
use crate::engine::{
    ChatMode, CrashReport, CrashStage, Event, ModelRef, RequestId, Role, StopReason,
};

pub(super) struct H {
    pub s: State,
    pub host: NullHost,
    pub effects: Vec<Effect>,
}

impl H {
    pub(super) fn new(w: u16, h: u16) -> Self {
        Self::with_config(Config::default(), w, h)
    }

    pub(super) fn with_config(config: Config, w: u16, h: u16) -> Self {
        let dirs = vec![PathBuf::from("/models")];
        Self {
            s: State::new(config, false, dirs, (w, h)),
            host: NullHost::default(),
            effects: Vec::new(),
        }
    }

    pub(super) fn send(&mut self, m: Msg) {
        let fx = update(&mut self.s, m);
        self.effects.extend(fx.iter().cloned());
        execute(&mut self.s, fx, &mut self.host);
    }

    pub(super) fn key_mod(&mut self, code: KeyCode, mods: KeyModifiers) {
        self.send(Msg::Input(TermEvent::Key(KeyEvent::new(code, mods))));
    }

    pub(super) fn key(&mut self, code: KeyCode) {
        self.key_mod(code, KeyModifiers::NONE);
    }

    pub(super) fn ctrl(&mut self, c: char) {
        self.key_mod(KeyCode::Char(c), KeyModifiers::CONTROL);
    }

    pub(super) fn type_str(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    /// Opens the model picker on [`entries`] and types `filter`.
    pub(super) fn pick(&mut self, filter: &str) {
        self.key(KeyCode::F(2));
        self.send(Msg::Models(entries()));
        self.type_str(filter);
    }

    pub(super) fn engine(&mut self, ev: Event) {
        self.send(Msg::Engine(ev));
    }

    /// Starts with `name` loaded.
    pub(super) fn loaded(mut self, name: &str, quant: &str) -> Self {
        let info = fake_model(name, quant);
        let fx = super::start(&mut self.s, Some(info.model.clone()));
        execute(&mut self.s, fx, &mut self.host);
        let id = self.host.next;
        self.engine(Event::LoadProgress {
            request: id,
            fraction: 0.5,
        });
        self.engine(fake_loaded(id, info));
        self.s.view.notice = None;
        self
    }

    /// Types and sends a message; returns the generation's request id.
    pub(super) fn ask(&mut self, text: &str) -> RequestId {
        self.type_str(text);
        self.key(KeyCode::Enter);
        self.host.next
    }

    pub(super) fn started(&mut self, id: RequestId) {
        self.engine(Event::Started {
            request: id,
            mode: ChatMode::Template,
            prompt: super::bench::fake_prompt(42),
            prefix: Vec::new(),
            n_reused: 12,
            dropped_messages: 0,
            note: None,
        });
    }

    pub(super) fn stream(&mut self, id: RequestId, tokens: &[(&str, f32)]) {
        for (text, p) in tokens {
            let index = self
                .s
                .session
                .generation
                .as_ref()
                .map_or(0, |g| self.s.msg(g.msg).unwrap().steps.len());
            self.engine(Event::Token {
                request: id,
                step: Box::new(fake_step(index, text, *p, 8)),
            });
        }
    }

    pub(super) fn done(&mut self, id: RequestId, n: usize) {
        self.engine(Event::Done {
            request: id,
            stats: fake_stats(n, StopReason::Eog),
        });
    }

    /// The engine ends the prompt scoring a reply left in flight (if any),
    /// with no scores: the engine is idle after it.
    pub(super) fn prompt_scored(&mut self) {
        if let Some((id, _)) = self.s.session.prompt_scoring.in_flight.clone() {
            self.engine(Event::Done {
                request: id,
                stats: fake_stats(0, StopReason::Eog),
            });
        }
        assert!(self.s.session.prompt_scoring.in_flight.is_none());
    }

    /// A whole exchange: ask, stream `tokens`, finish.
    pub(super) fn exchange(&mut self, question: &str, tokens: &[(&str, f32)]) -> RequestId {
        let id = self.ask(question);
        self.started(id);
        self.stream(id, tokens);
        self.done(id, tokens.len());
        id
    }

    pub(super) fn buffer(&self) -> Buffer {
        let (w, h) = self.s.view.size;
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| render(&self.s, f)).unwrap();
        t.backend().buffer().clone()
    }

    pub(super) fn screen(&self) -> String {
        buffer_text(&self.buffer())
    }
}

/// The buffer as text, one line per row (wide characters counted once).
pub(super) fn buffer_text(b: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..b.area.height {
        let mut x = 0;
        let mut line = String::new();
        while x < b.area.width {
            let sym = b[(x, y)].symbol();
            line.push_str(sym);
            x += UnicodeWidthStr::width(sym).max(1) as u16;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Position of the first cell starting `needle` on the screen.
pub(super) fn find(b: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let glyphs: Vec<&str> = crate::text::graphemes(needle).collect();
    let first = *glyphs.first()?;
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            if b[(x, y)].symbol() != first {
                continue;
            }
            let mut xx = x;
            let mut ok = true;
            for g in &glyphs {
                if xx >= b.area.width || b[(xx, y)].symbol() != *g {
                    ok = false;
                    break;
                }
                xx += UnicodeWidthStr::width(*g).max(1) as u16;
            }
            if ok {
                return Some((x, y));
            }
        }
    }
    None
}

pub(super) const PARIS: &[(&str, f32)] = &[
    ("The", 0.92),
    (" capital", 0.85),
    (" of", 0.97),
    (" France", 0.64),
    (" is", 0.88),
    (" Paris", 0.41),
    (".", 0.07),
];

pub(super) fn entries() -> Vec<ModelEntry> {
    let e = |name: &str, arch: &str, params: &str, quant: &str, size: &str| ModelEntry {
        model: ModelRef::Local(PathBuf::from(format!("/models/{name}-{quant}.gguf"))),
        file_name: format!("{name}-{quant}.gguf"),
        name: name.to_string(),
        arch: arch.to_string(),
        params: params.to_string(),
        quant: quant.to_string(),
        size: size.to_string(),
        chat_template: true,
        error: None,
        group: Some(crate::catalog::VariantKey {
            arch: arch.into(),
            // "268M"
            n_params: params.trim_end_matches('M').parse::<u64>().unwrap() * 1_000_000,
            n_vocab: match arch {
                "gemma3" => 262_144,
                "qwen2" => 151_936,
                _ => 49_152,
            },
        }),
        bpw: Some(if quant == "Q8_0" { 8.7 } else { 5.0 }),
        ..Default::default()
    };
    vec![
        e("gemma-3-270m-it", "gemma3", "268M", "Q8_0", "292 MB"),
        e("gemma-3-270m-it", "gemma3", "268M", "Q4_K_M", "253 MB"),
        e("qwen2.5-0.5b-instruct", "qwen2", "494M", "Q4_K_M", "398 MB"),
        e("SmolLM2-135M-Instruct", "llama", "135M", "Q4_K_M", "105 MB"),
        ModelEntry {
            model: ModelRef::Local(PathBuf::from("/models/broken.gguf")),
            file_name: "broken.gguf".into(),
            name: "broken".into(),
            error: Some("not a GGUF file (bad magic)".into()),
            ..Default::default()
        },
    ]
}

// ---- snapshots -----------------------------------------------------------

#[test]
fn snapshot_empty_chat() {
    let h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    insta::assert_snapshot!("empty_chat", h.screen());
}

#[test]
fn snapshot_mid_stream_with_live_inspector() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("What is the capital of France?");
    h.started(id);
    h.engine(Event::PrefillProgress {
        request: id,
        done: 30,
        total: 30,
    });
    h.stream(id, &PARIS[..6]);
    let screen = h.screen();
    assert!(screen.contains("p=41.00%"), "{screen}");
    assert!(screen.contains("generating 6 tok"), "{screen}");
    insta::assert_snapshot!("mid_stream", screen);

    // Heatmap colours on the chat text: sure tokens green, unsure ones not.
    let b = h.buffer();
    let (x, y) = find(&b, "The capital").unwrap();
    assert_eq!(b[(x, y)].fg, Color::Indexed(40));
    let (x, y) = find(&b, " Paris").map(|(x, y)| (x + 1, y)).unwrap();
    assert_eq!(b[(x, y)].fg, Color::Indexed(220));
    // The chosen row of the inspector is highlighted.
    let (x, y) = find(&b, "▶ ␣Paris").unwrap();
    assert!(b[(x, y)].modifier.contains(Modifier::BOLD));
    assert_eq!(b[(x, y)].bg, super::theme::CHOSEN_BG);
}

#[test]
fn snapshot_token_cursor_on_an_earlier_token() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("What is the capital of France?", PARIS);
    h.key(KeyCode::Tab);
    assert_eq!(h.s.view.focus, Focus::Navigate);
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 6 }));
    for _ in 0..3 {
        h.key(KeyCode::Left);
    }
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 3 }));
    let screen = h.screen();
    assert!(screen.contains("token 4/7"), "{screen}");
    assert!(screen.contains("p=64.00%"), "{screen}");
    insta::assert_snapshot!("token_cursor", screen);
    let b = h.buffer();
    let (x, y) = find(&b, "of France is").map(|(x, y)| (x + 2, y)).unwrap();
    assert_eq!(b[(x - 1, y)].symbol(), "f");
    assert!(!b[(x - 1, y)].modifier.contains(Modifier::REVERSED));
    for dx in 0..7 {
        assert!(
            b[(x + dx, y)].modifier.contains(Modifier::REVERSED),
            "France highlighted"
        );
    }
    let (x, y) = find(&b, " capital").unwrap();
    assert!(!b[(x, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn snapshot_picker_open_and_filtered() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.ctrl('o');
    h.send(Msg::Models(entries()));
    h.type_str("q4");
    let Some(Popup::Picker(p)) = &h.s.view.popup else {
        panic!("picker open")
    };
    assert_eq!(p.visible(&h.s.model.files.models), vec![1, 2, 3]);
    insta::assert_snapshot!("picker_filtered", h.screen());
}

#[test]
fn the_picker_draws_variants_of_one_model_under_it_with_bits_per_weight() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.ctrl('o');
    h.send(Msg::Models(entries()));
    let screen = h.screen();
    let row = |needle: &str| {
        screen
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} in {screen}"))
            .to_string()
    };
    let q8 = row("292 MB");
    assert!(
        q8.contains(" gemma-3-270m-it ") && q8.contains("Q8_0      8.70"),
        "{q8}"
    );
    let q4 = row("└ gemma-3-270m-it");
    assert!(q4.contains("Q4_K_M") && q4.contains("5.00"), "{q4}");
    // Another model is not drawn as a variant.
    assert!(!row("qwen2.5-0.5b-instruct").contains('└'), "{screen}");
}

#[test]
fn the_picker_shows_the_real_tensor_types_and_the_original_of_its_variants_first() {
    // As `quantize` leaves them: a Q8_0 and a "Q2_K" made from the Q4_1 (and
    // recorded so in them), the Q2_K mostly Q4_0; bits per weight as
    // `quantize` printed them.
    let e = |file: &str, quant: &str, label: &str, bpw: f64, derived: bool| ModelEntry {
        model: ModelRef::Local(PathBuf::from(format!("/models/{file}"))),
        file_name: file.into(),
        name: file.trim_end_matches(".gguf").into(),
        arch: "llama".into(),
        params: "135M".into(),
        quant: quant.into(),
        label: label.into(),
        size: "84.1 MiB".into(),
        group: Some(crate::catalog::VariantKey {
            arch: "llama".into(),
            n_params: 134_515_008,
            n_vocab: 49_152,
        }),
        bpw: Some(bpw),
        derived,
        ..Default::default()
    };
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.ctrl('o');
    h.send(Msg::Models(crate::tui::models::group_variants(vec![
        e("smol.Q8_0.gguf", "Q8_0", "Q8_0", 8.5, true),
        e(
            "smol.Q2_K.gguf",
            "Q2_K",
            "Q2_K requested · mostly Q4_0",
            5.14,
            true,
        ),
        e("smol.Q4_1.gguf", "Q4_1", "Q4_1", 5.74, false),
    ])));
    let screen = h.screen();
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains("smol.")).collect();
    assert_eq!(rows.len(), 3, "{screen}");
    assert!(
        rows[0].contains("smol.Q4_1") && !rows[0].contains('└') && rows[0].contains("5.74"),
        "the original first: {screen}"
    );
    assert!(
        rows[1].contains("└ smol.Q8_0") && rows[1].contains("8.50"),
        "{screen}"
    );
    assert!(
        rows[2].contains("Q2_K requested · mostly Q4_0") && rows[2].contains("5.14"),
        "{screen}"
    );
    // The filter finds the real type too.
    h.type_str("mostly q4_0");
    let Some(Popup::Picker(p)) = &h.s.view.popup else {
        panic!("picker open")
    };
    assert_eq!(p.visible(&h.s.model.files.models).len(), 1);
}

#[test]
fn snapshot_load_error_keeps_the_old_model() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("hi", &[("Hello", 0.9), ("!", 0.6)]);
    h.pick("qwen");
    h.key(KeyCode::Enter);
    let id = h.host.next;
    assert_eq!(
        h.host.loads.last().unwrap(),
        &ModelRef::Local(PathBuf::from("/models/qwen2.5-0.5b-instruct-Q4_K_M.gguf"))
    );
    h.engine(Event::LoadProgress {
        request: id,
        fraction: 0.3,
    });
    assert!(h.screen().contains("loading  30%"));
    h.engine(Event::Failed {
        request: id,
        error: crate::engine::EngineError::BadFile("unsupported model architecture 'qwen9'".into()),
    });
    assert!(h.s.session.load.is_none());
    assert_eq!(h.s.model.info.as_ref().unwrap().name, "gemma-3-270m-it");
    let screen = h.screen();
    assert!(
        screen.contains("Could not load qwen2.5-0.5b-instruct-Q4_K_M.gguf"),
        "{screen}"
    );
    insta::assert_snapshot!("load_error", screen);
    // The old model is still usable.
    let id = h.ask("again");
    assert!(
        h.s.session
            .generation
            .as_ref()
            .is_some_and(|g| g.request == id)
    );
}

#[test]
fn snapshot_sampling_settings_with_invalid_value() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.key(KeyCode::F(5));
    for _ in 0..5 {
        h.key(KeyCode::Backspace);
    }
    h.type_str("9");
    h.key(KeyCode::Enter);
    let Some(Popup::Settings(f)) = &h.s.view.popup else {
        panic!("settings stay open")
    };
    assert!(f.error.as_ref().unwrap().contains("temperature"));
    assert_eq!(
        h.s.config.sampling.temperature, 0.8,
        "invalid value not applied"
    );
    insta::assert_snapshot!("sampling_settings", h.screen());
    // Fixing it applies it.
    h.key(KeyCode::Backspace);
    h.type_str("0.2");
    h.key(KeyCode::Down);
    h.ctrl('u');
    h.type_str("7");
    h.key(KeyCode::Enter);
    assert!(h.s.view.popup.is_none());
    assert_eq!(h.s.config.sampling.temperature, 0.2);
    assert_eq!(h.s.config.sampling.top_k, 7);
    h.ask("x");
    assert_eq!(h.host.generates.last().unwrap().sampling.top_k, 7);
}

#[test]
fn snapshot_help() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.key(KeyCode::F(1));
    let screen = h.screen();
    assert!(screen.contains("new chat"));
    insta::assert_snapshot!("help", screen);
    h.key(KeyCode::Esc);
    assert!(h.s.view.popup.is_none());
}

#[test]
fn snapshot_small_terminal() {
    let mut h = H::new(40, 12).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("What is the capital of France?");
    h.started(id);
    h.stream(id, PARIS);
    let screen = h.screen();
    assert!(screen.contains("p=7.00%"), "{screen}");
    insta::assert_snapshot!("small_40x12", screen);
}

#[test]
fn snapshot_chinese_conversation() {
    let mut h = H::new(80, 24).loaded("qwen2.5-0.5b-instruct", "Q4_K_M");
    let reply: &[(&str, f32)] = &[
        ("法国", 0.81),
        ("的", 0.95),
        ("首都", 0.9),
        ("是", 0.97),
        ("巴黎", 0.76),
        ("。", 0.66),
        ("巴黎", 0.3),
        ("也", 0.2),
        ("被称为", 0.5),
        ("“", 0.4),
        ("光之城", 0.35),
        ("”", 0.9),
        ("🙂", 0.05),
        ("，", 0.5),
        ("是", 0.6),
        ("一座", 0.5),
        ("非常", 0.3),
        ("美丽", 0.6),
        ("的", 0.9),
        ("城市", 0.8),
        ("。", 0.9),
    ];
    h.exchange(
        "法国的首都是哪里？请详细介绍一下这座城市的历史和文化。",
        reply,
    );
    let screen = h.screen();
    assert!(screen.contains("法国的首都是巴黎。"), "{screen}");
    for line in screen.lines() {
        assert!(UnicodeWidthStr::width(line) <= 80, "{line:?}");
    }
    insta::assert_snapshot!("chinese", screen);
}

// ---- robustness ----------------------------------------------------------

#[test]
fn tiny_and_odd_sizes_never_panic() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("What is the capital of France? 中文 🙂", PARIS);
    h.s.view.notice = Some(super::state::Notice {
        level: super::state::NoticeLevel::Error,
        text: "a long error message ".repeat(20),
    });
    type Open = Box<dyn Fn(&mut H)>;
    let popups: Vec<Open> = vec![
        Box::new(|_| {}),
        Box::new(|h| h.key(KeyCode::F(1))),
        Box::new(|h| h.key(KeyCode::F(2))),
        Box::new(|h| h.key(KeyCode::F(5))),
        Box::new(|h| h.key(KeyCode::F(6))),
        Box::new(|h| h.key(KeyCode::Tab)),
    ];
    for open in &popups {
        open(&mut h);
        for w in (1..=45).chain([60, 89, 90, 91, 200]) {
            for ht in (1..=14).chain([23, 24, 25, 30, 60]) {
                h.send(Msg::Input(TermEvent::Resize(w, ht)));
                let _ = h.buffer();
            }
        }
        h.s.view.popup = None;
        h.s.view.set_focus(Focus::Input);
    }
    // Zero-sized too.
    h.send(Msg::Input(TermEvent::Resize(0, 0)));
    let _ = h.buffer();
}

/// Bytes written, kept in memory (a clone shares them).
#[derive(Clone, Default)]
struct Sink(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes a real terminal would receive for one frame of `h`'s state
/// (ratatui's crossterm backend writing into memory).
fn terminal_bytes(h: &H) -> Vec<u8> {
    let (w, hgt) = h.s.view.size;
    let sink = Sink::default();
    let backend = ratatui::backend::CrosstermBackend::new(sink.clone());
    let mut t = Terminal::with_options(
        backend,
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, w, hgt)),
        },
    )
    .unwrap();
    t.draw(|f| render(&h.s, f)).unwrap();
    drop(t);
    sink.0.take()
}

#[test]
fn model_output_escape_sequences_are_shown_not_sent() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange(
        "hack",
        &[
            ("\u{1b}[2J", 0.5),
            ("\u{1b}]0;pwned\u{7}", 0.5),
            ("ok\u{9b}1m\u{202e}evil", 0.5),
        ],
    );
    // What reaches the terminal: crossterm writes its own CSI sequences
    // (cursor moves, colours), but nothing of the model's: no OSC, no BEL,
    // no C1 CSI, no screen clear, no bidi override.
    let bytes = terminal_bytes(&h);
    let out = String::from_utf8_lossy(&bytes);
    for (bad, what) in [
        ("\u{1b}]", "OSC"),
        ("\u{7}", "BEL"),
        ("\u{9b}", "C1 CSI"),
        ("\u{1b}[2J", "clear screen"),
        ("\u{202e}", "bidi override"),
    ] {
        assert!(!out.contains(bad), "{what} reached the terminal: {out:?}");
    }
    for shown in ["␛[2J", "␛]0;pwned␇", "ok\\x9b1m", "<U+202E>evil"] {
        assert!(out.contains(shown), "{shown} not drawn: {out:?}");
    }
}

#[test]
fn combining_marks_and_emoji_sequences_written_as_separate_tokens_are_drawn() {
    // SmolLM2 writes " café naïve" (accents as combining marks) with each mark
    // a token of its own; emoji sequences come in pieces too.
    let tokens = [
        (" cafe", 0.5),
        ("\u{301}", 0.5),
        (" nai", 0.5),
        ("\u{308}", 0.5),
        ("ve ", 0.5),
        ("👩", 0.5),
        ("\u{200d}", 0.5),
        ("👧", 0.5),
        (" ", 0.5),
        ("❤", 0.5),
        ("\u{fe0f}", 0.5),
        (" end", 0.5),
    ];
    let reply: String = tokens.iter().map(|t| t.0).collect();
    let mut h = H::new(60, 20).loaded("smollm2", "Q4_1");
    h.exchange("word:", &tokens);
    let screen = h.screen();
    assert!(
        screen.contains(reply.trim_start()),
        "the displayed reply must equal the reply's text {reply:?}:\n{screen}"
    );
    // Widths by glyph: "end" starts where a terminal draws it.
    let b = h.buffer();
    let (x_cafe, y) = find(&b, "cafe\u{301}").expect("café drawn");
    let (x_end, y2) = find(&b, "end").expect("end drawn");
    assert_eq!(y, y2);
    // "café naïve 👩‍👧 ❤️ " = 4 + 1 + 5 + 1 + 2 + 1 + 2 + 1 columns.
    assert_eq!(x_end - x_cafe, 17, "{screen}");
}

#[test]
fn the_token_cursor_on_part_of_a_character_highlights_that_character() {
    let mut h = H::new(60, 20).loaded("smollm2", "Q4_1");
    // Token 1 holds the first bytes of 好 (no text yet), token 2 completes it.
    h.exchange("hi", &[("你", 0.5), ("", 0.5), ("好", 0.5), ("!", 0.5)]);
    let partial = &mut h.s.msg_mut(1).unwrap().steps[1];
    partial.id = fake_partial_id();
    h.key(KeyCode::Tab);
    h.key(KeyCode::Home);
    h.key(KeyCode::Right);
    assert_eq!(h.s.view.cursor.map(|c| c.step), Some(1));
    let b = h.buffer();
    let (x, y) = find(&b, "好").expect("好 drawn");
    let cell = &b[(x, y)];
    assert!(cell.modifier.contains(Modifier::REVERSED), "highlighted");
    assert!(
        cell.modifier.contains(Modifier::UNDERLINED),
        "marked as partial"
    );
    assert!(
        buffer_text(&b).contains("part of a character"),
        "the inspector says so"
    );
    let (x0, y0) = find(&b, "你").expect("你 drawn");
    assert!(
        !b[(x0, y0)].modifier.contains(Modifier::REVERSED),
        "only the character it belongs to"
    );
}

// ---- update logic --------------------------------------------------------

#[test]
fn stale_request_events_are_dropped() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    let old = h.ask("first");
    h.started(old);
    h.stream(old, &[("A", 0.5)]);
    h.ctrl('n');
    assert!(
        h.effects
            .iter()
            .any(|e| matches!(e, Effect::Cancel(id) if *id == old))
    );
    assert!(h.s.view.path.is_empty());
    // Late events of the old request change nothing.
    h.stream(old, &[("B", 0.5)]);
    h.done(old, 2);
    assert!(h.s.view.path.is_empty());
    assert!(h.s.session.last_stats.is_none());
    let new = h.ask("second");
    assert_ne!(new, old);
    h.engine(Event::Token {
        request: old,
        step: Box::new(fake_step(0, "X", 0.5, 3)),
    });
    h.engine(Event::Token {
        request: 999,
        step: Box::new(fake_step(0, "Y", 0.5, 3)),
    });
    h.stream(new, &[("Z", 0.5)]);
    assert_eq!(h.s.msg(1).unwrap().content, "Z");
}

#[test]
fn cancel_stops_and_marks_the_reply() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("count");
    h.started(id);
    h.stream(id, &[("1", 0.9), (" 2", 0.9)]);
    h.key(KeyCode::Esc);
    assert_eq!(h.host.cancels, vec![id]);
    assert_eq!(
        h.s.session.generation.as_ref().unwrap().phase,
        Phase::Cancelling
    );
    // Tokens already in flight are not shown.
    h.stream(id, &[(" 3", 0.9)]);
    assert_eq!(h.s.msg(1).unwrap().content, "1 2");
    h.engine(Event::Done {
        request: id,
        stats: fake_stats(3, StopReason::Cancelled),
    });
    assert!(h.s.session.generation.is_none());
    assert_eq!(h.s.msg(1).unwrap().status, MsgStatus::Stopped);
    assert!(h.screen().contains("1 2 [stopped]"));
    // Ctrl-C while generating cancels too, and does not quit.
    let first = id;
    let id = h.ask("again");
    h.ctrl('c');
    h.ctrl('c');
    assert_eq!(h.host.cancels, vec![first, id]);
    assert!(!h.effects.iter().any(|e| matches!(e, Effect::Quit)));
    // A stop that takes long (a slow prefill chunk) cannot trap the user.
    h.ctrl('c');
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Quit)));
}

#[test]
fn ctrl_c_twice_when_idle_quits() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.ctrl('c');
    assert!(!h.effects.iter().any(|e| matches!(e, Effect::Quit)));
    assert!(h.screen().contains("Ctrl-C again"));
    h.type_str("x");
    h.ctrl('c');
    assert!(
        !h.effects.iter().any(|e| matches!(e, Effect::Quit)),
        "another key disarms"
    );
    h.ctrl('c');
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Quit)));
}

#[test]
fn chat_follows_the_stream_and_stays_put_when_scrolled_up() {
    let mut h = H::new(100, 20).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("long");
    h.started(id);
    let line: Vec<(&str, f32)> = (0..40).map(|_| (" word\n", 0.5)).collect();
    h.stream(id, &line);
    let height = h.s.chat_height();
    let max = h.s.view.chat.total_lines() - height;
    assert!(h.s.view.scroll.follow);
    assert_eq!(h.s.view.chat_top(height), max);
    h.key(KeyCode::PageUp);
    assert!(!h.s.view.scroll.follow);
    let top = h.s.view.chat_top(height);
    assert_eq!(top, max - (height - 1));
    h.stream(id, &line[..10]);
    assert_eq!(
        h.s.view.chat_top(height),
        top,
        "stays put while tokens arrive"
    );
    assert!(h.screen().contains("more lines"));
    h.send(Msg::Input(TermEvent::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: 1,
        row: 1,
        modifiers: KeyModifiers::NONE,
    })));
    assert_eq!(h.s.view.chat_top(height), top - 3);
    for _ in 0..20 {
        h.key(KeyCode::PageDown);
    }
    assert!(h.s.view.scroll.follow, "back at the bottom: follows again");
    h.stream(id, &line[..5]);
    assert_eq!(
        h.s.view.chat_top(height),
        h.s.view.chat.total_lines() - height
    );
}

#[test]
fn history_recalls_sent_messages() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("first question", &[("a", 0.5)]);
    h.exchange("second\nquestion", &[("b", 0.5)]);
    h.type_str("draft");
    h.key(KeyCode::Up);
    assert_eq!(h.s.view.input.lines().join("\n"), "second\nquestion");
    // Cursor is on the last line: Up moves within the text first.
    h.key(KeyCode::Up);
    h.key(KeyCode::Up);
    assert_eq!(h.s.view.input.lines().join("\n"), "first question");
    h.key(KeyCode::Down);
    assert_eq!(h.s.view.input.lines().join("\n"), "second\nquestion");
    h.key(KeyCode::Down);
    assert_eq!(h.s.view.input.lines().join("\n"), "draft");
}

#[test]
fn newline_keys_and_send() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.type_str("a");
    h.key_mod(KeyCode::Enter, KeyModifiers::ALT);
    h.type_str("b");
    h.key_mod(KeyCode::Enter, KeyModifiers::SHIFT);
    h.type_str("c");
    h.ctrl('j');
    h.type_str("d");
    assert_eq!(h.s.view.input.lines(), ["a", "b", "c", "d"]);
    h.key(KeyCode::Enter);
    let req = h.host.generates.last().unwrap();
    assert_eq!(req.messages.last().unwrap().content, "a\nb\nc\nd");
    assert!(h.s.view.input.is_empty());
}

#[test]
fn request_carries_conversation_and_system_prompt() {
    let config = Config {
        system_prompt: "Be brief.".into(),
        ..Config::default()
    };
    let mut h = H::with_config(config, 100, 30).loaded("gemma-3-270m-it", "Q8_0");
    assert!(h.screen().contains("Be brief."));
    h.exchange("one", &[("1", 0.5)]);
    // A failed reply: its question is left out of the next request.
    let id = h.ask("boom");
    h.engine(Event::Failed {
        request: id,
        error: crate::engine::EngineError::Decode {
            stage: "decode".into(),
            reason: "failed".into(),
        },
    });
    assert!(h.screen().contains("decode failed"));
    h.ask("two");
    let req = h.host.generates.last().unwrap();
    let roles: Vec<_> = req
        .messages
        .iter()
        .map(|m| (m.role, m.content.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            (Role::System, "Be brief."),
            (Role::User, "one"),
            (Role::Assistant, "1"),
            (Role::User, "two")
        ]
    );
    assert_eq!(
        req.top_k_inspect,
        crate::engine::MAX_CANDIDATES,
        "all candidates are kept for the what-if view; the inspector shows 10"
    );
}

/// The messages `run` sends for `prompt`.
fn run_messages(config: &Config, prompt: &str) -> Vec<crate::engine::ChatMessage> {
    let (conv, reply) = crate::commands::headless::one_turn(config, prompt);
    conv.request(reply, &config.request_settings(false))
        .messages
}

#[test]
fn blank_system_prompt_is_no_system_message_in_the_tui_and_in_run() {
    for blank in ["", "   ", "\n\t"] {
        let config = Config {
            system_prompt: blank.into(),
            ..Config::default()
        };
        let headless = run_messages(&config, "hi");
        assert_eq!(
            headless.len(),
            1,
            "run sends no system message for {blank:?}"
        );
        let mut h = H::with_config(config, 100, 30).loaded("gemma-3-270m-it", "Q8_0");
        assert!(!h.s.view.chat.has_system, "no system block for {blank:?}");
        h.ask("hi");
        let req = h.host.generates.last().unwrap();
        assert_eq!(req.messages, headless, "TUI and run agree for {blank:?}");
    }
    let config = Config {
        system_prompt: "Be brief.".into(),
        ..Config::default()
    };
    let headless = run_messages(&config, "hi");
    let mut h = H::with_config(config, 100, 30).loaded("gemma-3-270m-it", "Q8_0");
    assert!(h.s.view.chat.has_system);
    h.ask("hi");
    assert_eq!(h.host.generates.last().unwrap().messages, headless);
}

#[test]
fn system_prompt_editor() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.ctrl('g');
    h.type_str("You are a pirate.");
    h.key(KeyCode::Enter);
    assert_eq!(h.s.config.system_prompt, "You are a pirate.");
    assert!(h.screen().contains("You are a pirate."));
    h.key(KeyCode::F(6));
    h.type_str(" Arr.");
    h.key(KeyCode::Esc);
    assert_eq!(
        h.s.config.system_prompt, "You are a pirate.",
        "Esc discards"
    );
}

#[test]
fn no_model_opens_the_picker_and_explains() {
    let mut h = H::new(120, 40);
    let fx = super::start(&mut h.s, None);
    execute(&mut h.s, fx, &mut h.host);
    h.send(Msg::Models(Vec::new()));
    let screen = h.screen();
    assert!(screen.contains("tokenscope fetch-demos"), "{screen}");
    assert!(screen.contains("/models"), "{screen}");
    h.key(KeyCode::Esc);
    h.ask("hello");
    assert!(h.host.generates.is_empty());
    assert!(h.screen().contains("No model is loaded"));
}

#[test]
fn a_reply_tail_ends_the_reply_even_after_stop() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("write");
    h.started(id);
    h.stream(id, &[("ok ", 0.9), ("", 0.8)]);
    h.key(KeyCode::Esc);
    assert_eq!(
        h.s.session.generation.as_ref().unwrap().phase,
        Phase::Cancelling
    );
    h.engine(Event::Tail {
        request: id,
        text: "\u{FFFD}".into(),
    });
    h.engine(Event::Done {
        request: id,
        stats: fake_stats(2, StopReason::Cancelled),
    });
    let m = h.s.msg(1).unwrap();
    assert_eq!(m.content, "ok \u{FFFD}");
    assert_eq!(
        m.tail, "\u{FFFD}",
        "shown after the cut token, not part of it"
    );
    assert_eq!(m.steps[1].text, "");
    assert!(h.screen().contains("ok \u{FFFD}"), "{}", h.screen());
}

#[test]
fn token_navigation_moves_by_token_and_line() {
    let mut h = H::new(60, 30).loaded("gemma-3-270m-it", "Q8_0");
    let words: Vec<(&str, f32)> = (0..30)
        .map(|i| {
            if i % 2 == 0 {
                (" alpha", 0.9)
            } else {
                (" beta", 0.2)
            }
        })
        .collect();
    h.exchange("q1", &words);
    h.exchange("q2", &[("x", 0.5), ("y", 0.5)]);
    h.key(KeyCode::Tab);
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 3, step: 1 }));
    h.key(KeyCode::Home);
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 3, step: 0 }));
    h.key(KeyCode::Left);
    assert_eq!(
        h.s.view.cursor,
        Some(TokenRef { msg: 1, step: 29 }),
        "crosses into the previous reply"
    );
    h.key(KeyCode::Right);
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 3, step: 0 }));
    h.key(KeyCode::Up);
    let c = h.s.view.cursor.unwrap();
    assert_eq!(c.msg, 1, "up skips the user message");
    let (line, _) = h.s.token_position(c).unwrap();
    h.key(KeyCode::Up);
    let (line2, _) = h.s.token_position(h.s.view.cursor.unwrap()).unwrap();
    assert_eq!(line2 + 1, line);
    h.key(KeyCode::Down);
    assert_eq!(h.s.view.cursor, Some(c));
    h.key(KeyCode::End);
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 29 }));
    // Typing a letter goes back to the input.
    h.type_str("z");
    assert_eq!(h.s.view.focus, Focus::Input);
    assert_eq!(h.s.view.input.lines(), ["z"]);
}

#[test]
fn heatmap_and_boundaries_toggle() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("q", &[("Sure", 0.95), ("ly", 0.05)]);
    let b = h.buffer();
    let (x, y) = find(&b, "Surely").unwrap();
    assert_eq!(b[(x, y)].fg, Color::Indexed(40));
    assert_eq!(b[(x + 4, y)].fg, Color::Indexed(196));
    h.key(KeyCode::F(3));
    h.key(KeyCode::F(3));
    h.key(KeyCode::F(4));
    let b = h.buffer();
    assert_eq!(b[(x, y)].fg, Color::Reset);
    assert_ne!(
        b[(x, y)].bg,
        b[(x + 4, y)].bg,
        "alternate backgrounds at a boundary"
    );
}

#[test]
fn f3_cycles_probability_entropy_off_with_a_legend_row_for_each() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("q", &[("Sure", 0.95), ("ly", 0.05)]);
    let (x, y) = find(&h.buffer(), "Surely").unwrap();
    // The legend row (in short: the chat pane is 60 columns wide here): the scale's name, then each band's swatch in its colour.
    let legend_row = |h: &H, title: &str| {
        let b = h.buffer();
        let (lx, ly) = find(&b, title).unwrap_or_else(|| panic!("{title}: {}", h.screen()));
        assert!(ly > y, "the legend is under the chat");
        let text = buffer_text(&b)
            .lines()
            .nth(ly as usize)
            .unwrap()
            .to_string();
        let swatches: Vec<Color> = (lx..b.area.width)
            .filter(|&x| b[(x, ly)].symbol() == "■")
            .map(|x| b[(x, ly)].fg)
            .collect();
        (text, swatches)
    };
    let palette: Vec<Color> = crate::heat::HEAT_PALETTE
        .iter()
        .map(|&i| Color::Indexed(i))
        .collect();
    let (text, swatches) = legend_row(&h, "heat p");
    assert!(text.contains("≥80%") && text.contains("<10%"), "{text}");
    assert_eq!(swatches, palette);

    // Entropy: each token by the entropy (bits) of the distribution it was
    // chosen from, recomputed here from the candidates' logits.
    h.key(KeyCode::F(3));
    assert_eq!(h.s.view.display.heat, Some(HeatScale::Entropy));
    let b = h.buffer();
    let reply = h.s.msgs().last().unwrap();
    for (i, dx) in [(0usize, 0u16), (1, 4)] {
        let step = &reply.steps[i];
        let d = step.dist.as_ref().unwrap();
        let bits: f32 = d
            .top
            .iter()
            .map(|c| d.p(c.logit))
            .filter(|&p| p > 0.0)
            .map(|p| -p * p.log2())
            .sum();
        assert!((bits - step.entropy().unwrap()).abs() < 0.05, "{bits}");
        let band = crate::heat::entropy_band(bits);
        assert_eq!(b[(x + dx, y)].fg, palette[band], "token {i}: {bits} bits");
    }
    assert_ne!(
        b[(x, y)].fg,
        b[(x + 4, y)].fg,
        "a sure token and an undecided one differ"
    );
    let (text, swatches) = legend_row(&h, "heat entropy");
    assert!(text.contains("<0.5") && text.contains("≥4 bits"), "{text}");
    assert_eq!(swatches, palette);

    // Off: plain tokens, no legend row, the chat takes the row back.
    let chat_rows = h.s.chat_height();
    h.key(KeyCode::F(3));
    assert!(!h.s.view.display.heatmap());
    let b = h.buffer();
    assert_eq!(b[(x, y)].fg, Color::Reset);
    assert!(!h.screen().contains("heat: "), "{}", h.screen());
    assert_eq!(h.s.chat_height(), chat_rows + 1);
    h.key(KeyCode::F(3));
    assert_eq!(h.s.view.display.heat, Some(HeatScale::Probability));
}

#[test]
fn huge_paste_is_inserted_at_once() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    let text = "line of pasted text\r\n".repeat(50_000);
    h.send(Msg::Input(TermEvent::Paste(text)));
    assert_eq!(h.s.view.input.lines().len(), 50_001);
    let _ = h.buffer();
    h.key(KeyCode::Enter);
    assert_eq!(h.host.generates.len(), 1);
}

#[test]
fn picker_loads_and_keeps_conversation() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("hi", &[("Hello", 0.9)]);
    h.ctrl('o');
    assert!(h.effects.iter().any(|e| matches!(e, Effect::RefreshModels)));
    h.send(Msg::Models(entries()));
    h.type_str("smol");
    h.key(KeyCode::Enter);
    let id = h.host.next;
    let mut info = fake_model("SmolLM2-135M-Instruct", "Q4_K_M");
    info.model = ModelRef::Local(PathBuf::from("/models/SmolLM2-135M-Instruct-Q4_K_M.gguf"));
    h.engine(fake_loaded(id, info));
    assert_eq!(
        h.s.model.info.as_ref().unwrap().name,
        "SmolLM2-135M-Instruct"
    );
    assert_eq!(h.s.view.path.len(), 2);
    h.ask("and now?");
    let req = h.host.generates.last().unwrap();
    assert_eq!(req.messages.len(), 3);
    assert!(h.screen().contains("SmolLM2-135M-Instruct"));
}

#[test]
fn run_loop_drains_messages_and_quits() {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut s = State::new(Config::default(), false, Vec::new(), (80, 24));
    let mut host = NullHost::default();
    let fx = super::start(&mut s, Some(ModelRef::Local(PathBuf::from("/m.gguf"))));
    execute(&mut s, fx, &mut host);
    let info = fake_model("loop-model", "Q8_0");
    tx.send(Msg::Engine(fake_loaded(1, info))).unwrap();
    for c in "hi".chars() {
        tx.send(Msg::Input(TermEvent::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        ))))
        .unwrap();
    }
    tx.send(Msg::Input(TermEvent::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    ))))
    .unwrap();
    tx.send(Msg::Engine(Event::Token {
        request: 2,
        step: Box::new(fake_step(0, "Hey", 0.9, 3)),
    }))
    .unwrap();
    tx.send(Msg::Engine(Event::Done {
        request: 2,
        stats: fake_stats(1, StopReason::Eog),
    }))
    .unwrap();
    // Quit later, from another thread, so that the loop draws in between.
    let quitter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let ctrl_c = || {
            Msg::Input(TermEvent::Key(KeyEvent::new(
                KeyCode::Char('c'),
                KeyModifiers::CONTROL,
            )))
        };
        tx.send(ctrl_c()).unwrap();
        tx.send(ctrl_c()).unwrap();
    });
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    run_loop(&mut terminal, &rx, &mut host, &mut s).unwrap();
    assert_eq!(host.generates.len(), 1);
    assert_eq!(s.msg(1).unwrap().content, "Hey");
    let screen = buffer_text(terminal.backend().buffer());
    assert!(screen.contains("loop-model"), "{screen}");
    assert!(screen.contains("Hey"), "{screen}");
    quitter.join().unwrap();
}

#[test]
fn ui_bench_runs() {
    let r = super::bench::bench_ui(200, 120, 40);
    assert_eq!(r.events, 200);
    assert!(r.times.frame_mean_us > 0.0);
    assert!(r.to_string().contains("frame"));
}

/// `cargo test --release --lib tui::tests::print_ui_bench -- --ignored --nocapture`
#[test]
#[ignore]
fn print_ui_bench() {
    println!("{}", super::bench::bench_ui(5000, 120, 40));
}

#[test]
fn clicking_a_token_selects_it() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("What is the capital of France?", PARIS);
    let b = h.buffer();
    let (x, y) = find(&b, "Paris.").unwrap();
    h.send(Msg::Input(TermEvent::Mouse(MouseEvent {
        kind: MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: x + 2,
        row: y,
        modifiers: KeyModifiers::NONE,
    })));
    assert_eq!(h.s.view.focus, Focus::Navigate);
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 5 }));
    // A click on the user's text selects nothing.
    let (x, y) = find(&b, "What is").unwrap();
    h.send(Msg::Input(TermEvent::Mouse(MouseEvent {
        kind: MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    })));
    assert_eq!(h.s.view.cursor, Some(TokenRef { msg: 1, step: 5 }));
    // After a click, letters are typing, not commands: "quit" must not quit.
    h.type_str("quit");
    assert!(!h.effects.iter().any(|e| matches!(e, Effect::Quit)));
    assert_eq!(h.s.view.focus, Focus::Input);
    assert_eq!(h.s.view.input.lines().join("\n"), "quit");
    // Entered from the keyboard, `q` is the quit command again.
    h.key(KeyCode::Tab);
    assert_eq!(h.s.view.focus, Focus::Navigate);
    h.key(KeyCode::Char('q'));
    assert!(
        !h.effects.iter().any(|e| matches!(e, Effect::Quit)),
        "once only arms it"
    );
    assert!(h.screen().contains("Press q again to quit."));
    h.key(KeyCode::Char('q'));
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Quit)));
}

#[test]
fn confidence_track_and_perplexity() {
    let ppl = super::components::inspector::perplexity([0.5f32, 0.5].into_iter()).unwrap();
    assert!((ppl - 2.0).abs() < 1e-6);
    assert!(super::components::inspector::perplexity(std::iter::empty()).is_none());
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("What is the capital of France?", PARIS);
    let screen = h.screen();
    assert!(screen.contains("reply: 7 tok"), "{screen}");
}

/// `cargo test --release --lib tui::tests::print_paste_cost -- --ignored --nocapture`
#[test]
#[ignore]
fn print_paste_cost() {
    for text in [
        "word ".repeat(200_000),
        "line of pasted text\n".repeat(50_000),
    ] {
        let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
        let t = std::time::Instant::now();
        h.send(Msg::Input(TermEvent::Paste(text.clone())));
        let insert = t.elapsed();
        let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..10 {
            term.draw(|f| render(&h.s, f)).unwrap();
        }
        let frame = t.elapsed() / 10;
        let t = std::time::Instant::now();
        h.type_str("x");
        let key = t.elapsed();
        println!(
            "{} bytes: insert {insert:?}, frame {frame:?}, key {key:?}",
            text.len()
        );
    }
}

#[test]
fn typing_and_sending_work_while_the_model_loads() {
    let mut h = H::new(100, 30);
    let fx = super::start(
        &mut h.s,
        Some(ModelRef::Local(PathBuf::from("/models/big.gguf"))),
    );
    execute(&mut h.s, fx, &mut h.host);
    let load = h.host.next;
    h.engine(Event::LoadProgress {
        request: load,
        fraction: 0.25,
    });
    let screen = h.screen();
    assert!(screen.contains("loading  25%"), "{screen}");
    h.type_str("hello while loading");
    assert_eq!(h.s.view.input.lines(), ["hello while loading"]);
    // Sent at once: the engine runs it after the load.
    let id = h.ask("");
    assert_eq!(h.host.generates.len(), 1);
    h.engine(fake_loaded(load, fake_model("big", "Q4_0")));
    h.started(id);
    h.stream(id, &[("Hi", 0.9)]);
    assert_eq!(h.s.msg(1).unwrap().content, "Hi");
}

#[test]
fn loaded_message_says_how_llama_cpp_changed_the_context() {
    let mut h = H::new(160, 30);
    let mut info = fake_model("smol", "Q4_1");
    let fx = super::start(&mut h.s, Some(info.model.clone()));
    execute(&mut h.s, fx, &mut h.host);
    (info.n_ctx_requested, info.n_ctx) = (300, 512);
    h.engine(fake_loaded(h.host.next, info));
    let notice = &h.s.view.notice.as_ref().unwrap().text;
    assert!(
        notice
            .contains("Context 512 tokens (asked 300: llama.cpp rounds up to a multiple of 256)."),
        "{notice}"
    );
    let m = h.s.model.info.as_ref().unwrap();
    assert_eq!((m.n_ctx, m.n_ctx_requested), (512, 300));
}

#[test]
fn switching_models_forgets_the_old_models_context_use() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("hi", &[("Hello", 0.9), ("!", 0.8)]);
    assert_eq!(h.s.ctx_used(), Some(44));
    h.ctrl('o');
    h.send(Msg::Models(entries()));
    h.type_str("smol");
    h.key(KeyCode::Enter);
    let mut info = fake_model("SmolLM2-135M-Instruct", "Q4_K_M");
    info.model = ModelRef::Local(PathBuf::from("/models/SmolLM2-135M-Instruct-Q4_K_M.gguf"));
    info.n_ctx = 8192;
    h.engine(fake_loaded(h.host.next, info));
    assert!(
        h.s.session.last_stats.is_none(),
        "the old model's stats are gone"
    );
    assert_eq!(
        h.s.ctx_used(),
        None,
        "nothing of the new context is used yet"
    );
    assert!(
        h.s.msg(1).unwrap().stats.is_some(),
        "the old reply keeps its own stats"
    );
    // The first reply on the new model brings its own numbers.
    h.exchange("again", &[("Hi", 0.9)]);
    assert_eq!(h.s.ctx_used(), Some(43));

    // A stale load finishing (the engine runs that model now) resets them too.
    h.ctrl('o');
    h.type_str("qwen");
    h.key(KeyCode::Enter);
    let stale = h.host.next;
    h.ctrl('o');
    h.type_str("gemma");
    h.key(KeyCode::Enter);
    h.engine(fake_loaded(stale, fake_model("qwen", "Q4_K_M")));
    assert_eq!(h.s.ctx_used(), None);
}

#[test]
fn a_full_context_says_that_the_chat_goes_on_without_its_oldest_turns() {
    let mut h = H::new(160, 40).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("count");
    h.started(id);
    h.stream(id, &[("1", 0.9)]);
    let mut stats = fake_stats(1, StopReason::ContextFull);
    (stats.ctx_used, stats.ctx_size) = (256, 256);
    h.engine(Event::Done { request: id, stats });
    let notice = &h.s.view.notice.as_ref().unwrap().text;
    assert!(notice.contains("256 of 256 tokens"), "{notice}");
    assert!(notice.contains("oldest turns are left out"), "{notice}");
    assert!(!notice.contains(": start a new chat"), "{notice}");
    // And going on does work: the next question is sent with the whole chat
    // (the engine leaves out what does not fit).
    h.ask("more");
    assert_eq!(h.host.generates.len(), 2);
    assert_eq!(h.host.generates[1].messages.len(), 3);
}

#[test]
fn a_replaced_load_is_stale() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.ctrl('o');
    h.send(Msg::Models(entries()));
    h.type_str("qwen");
    h.key(KeyCode::Enter);
    let first = h.host.next;
    h.ctrl('o');
    h.type_str("smol");
    h.key(KeyCode::Enter);
    let second = h.host.next;
    assert!(h.host.cancels.contains(&first));
    // The first load finished before its cancel reached the engine: the engine
    // runs that model now, so the status must say so, while the second load goes on.
    h.engine(fake_loaded(first, fake_model("qwen", "Q4_K_M")));
    assert_eq!(h.s.model.info.as_ref().unwrap().name, "qwen");
    assert!(h.s.session.load.is_some());
    h.engine(fake_loaded(second, fake_model("smol", "Q4_K_M")));
    assert_eq!(h.s.model.info.as_ref().unwrap().name, "smol");
    assert!(h.s.session.load.is_none());
}

#[test]
fn latency_bench_sees_every_key_through_the_real_loop() {
    // Timing is reported by `tokenscope bench`, not asserted; this checks the
    // measurement itself: every typed key is found on screen once.
    let b = super::bench::bench_latency(500, 5);
    assert_eq!(b.keys, 5);
    assert!(b.frames > 1);
    assert!(b.max_ms >= b.p50_ms);
}

#[test]
fn the_status_bar_keeps_whole_fields_and_drops_the_least_important() {
    let mut h = H::new(120, 30).loaded("SmolLM2-135M-Instruct.Q4_1", "Q4_1");
    h.exchange("hi", PARIS);
    // Idle: the prompt scoring after the reply done too.
    h.prompt_scored();
    h.s.model.chat_mode = Some(ChatMode::Template);
    let (full, _) = super::components::status::status_line_for(&h.s, 1000);
    let full: String = full.spans.iter().map(|s| s.content.as_ref()).collect();
    let fields: Vec<&str> = full.split(" │ ").map(str::trim).collect();
    assert!(fields.len() >= 5, "{full}");
    for w in [30u16, 50, 70, 90, 100, 120, 140, 200] {
        h.send(Msg::Input(TermEvent::Resize(w, 30)));
        let b = h.buffer();
        let row = buffer_text(&b)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        let shown: Vec<&str> = row
            .trim_end()
            .trim_end_matches("F1 help")
            .split(" │ ")
            .map(str::trim)
            .collect();
        // Every field shown is shown whole: none is cut at the edge (a field
        // may lose its details, "a · b" → "a"); only the model name may be cut,
        // when nothing else fits.
        for f in &shown {
            let whole = fields
                .iter()
                .any(|full| full == f || full.starts_with(&format!("{f} ")));
            let cut_name = f.ends_with('…') && f.len() > 4 && w < 40;
            assert!(whole || cut_name, "width {w}: {f:?} is cut in {row:?}");
        }
        assert!(
            shown[0].contains("idle"),
            "the state is always there: {row}"
        );
        if w >= 50 {
            assert!(shown.iter().any(|f| f.contains("ctx ")), "{w}: {row}");
        }
        if w >= 120 {
            assert!(shown.iter().any(|f| f.contains("tok/s")), "{w}: {row}");
        }
    }
}

#[test]
fn the_scroll_hint_has_a_row_of_its_own() {
    let mut h = H::new(60, 20).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("long");
    h.started(id);
    let line: Vec<(&str, f32)> = (0..40)
        .map(|_| (" a fairly long line of words that wraps\n", 0.5))
        .collect();
    h.stream(id, &line);
    h.key(KeyCode::PageUp);
    let b = h.buffer();
    let (hx, hy) = find(&b, "↓").expect("scroll hint shown");
    // Left of the hint on its row: nothing of the chat.
    let left: String = (0..hx).map(|x| b[(x, hy)].symbol()).collect();
    assert!(left.trim().is_empty(), "chat text under the hint: {left:?}");
    // And the line it hides is the next one to come into view: the count is right.
    let below: usize = buffer_text(&b)
        .lines()
        .nth(hy as usize)
        .and_then(|l| l.split('↓').nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    let height = h.s.chat_height();
    let top = h.s.view.chat_top(height);
    assert_eq!(below, h.s.view.chat.total_lines() - (top + height - 1));
}

#[test]
fn the_input_box_shows_controls_and_tabs_as_the_chat_does() {
    let mut h = H::new(80, 24).loaded("smollm2", "Q4_1");
    h.send(Msg::Input(TermEvent::Paste("x\u{1b}[1my\u{7}\tz".into())));
    let input_row = |h: &H| {
        buffer_text(&h.buffer())
            .lines()
            .find(|l| l.contains('x') && l.contains('z'))
            .map(str::to_string)
    };
    let typed = input_row(&h).expect("input shown");
    assert!(typed.contains("x␛[1my␇    z"), "{typed}");
    assert_eq!(
        h.s.view.input.lines()[0],
        "x\u{1b}[1my\u{7}\tz",
        "kept as typed"
    );
    h.key(KeyCode::Enter);
    let sent = h.s.msg(0).unwrap().content.clone();
    assert_eq!(sent, "x\u{1b}[1my\u{7}\tz");
    let screen = h.screen();
    assert!(
        screen.contains("x␛[1my␇    z"),
        "the chat shows it alike:\n{screen}"
    );
}

#[test]
fn the_status_bar_says_when_the_context_is_not_the_one_asked_for() {
    let mut h = H::new(120, 30);
    let mut info = super::bench::fake_model("smollm2", "Q4_1");
    info.n_ctx_requested = 300;
    info.n_ctx = 512;
    let fx = super::start(&mut h.s, Some(info.model.clone()));
    execute(&mut h.s, fx, &mut h.host);
    let id = h.host.next;
    h.engine(fake_loaded(id, info));
    let screen = h.screen();
    let status = screen.lines().last().unwrap_or_default();
    assert!(status.contains("ctx 0/512 (asked 300)"), "{status}");
}

#[test]
fn a_note_on_how_the_prompt_was_built_is_shown_as_information() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("hi");
    h.engine(Event::Started {
        request: id,
        mode: ChatMode::Template,
        prompt: super::bench::fake_prompt(42),
            prefix: Vec::new(),
        n_reused: 0,
        dropped_messages: 0,
        note: Some(
            "the chat template refuses a system prompt (\"System role not supported\"): it was put at the start of your first message instead"
                .into(),
        ),
    });
    let notice = h.s.view.notice.clone().expect("a notice");
    assert_eq!(notice.level, super::state::NoticeLevel::Info);
    assert!(
        notice.text.starts_with(
            "The chat template refuses a system prompt (\"System role not supported\")"
        ),
        "{}",
        notice.text
    );
    assert_eq!(h.s.model.chat_mode, Some(ChatMode::Template));
}

#[test]
fn halfwidth_katakana_with_sound_marks_is_drawn() {
    let mut h = H::new(60, 20).loaded("smollm2", "Q4_1");
    h.exchange("パン", &[(" \u{ff8a}\u{ff9f}", 0.5), ("\u{ff9d}!", 0.5)]);
    let screen = h.screen();
    assert!(screen.contains("\u{ff8a}\u{ff9f}"), "ﾊﾟ dropped:\n{screen}");
    assert!(screen.contains("\u{ff9d}!"), "{screen}");
}

#[test]
fn the_token_cursor_never_sits_under_the_scroll_hint() {
    let mut h = H::new(60, 20).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("long");
    h.started(id);
    let line: Vec<(&str, f32)> = (0..60)
        .map(|i| (if i % 2 == 0 { " word" } else { "\n" }, 0.5))
        .collect();
    h.stream(id, &line);
    h.done(id, line.len());
    for _ in 0..3 {
        h.key(KeyCode::PageUp);
    }
    h.key(KeyCode::Tab);
    h.key(KeyCode::Home);
    let height = h.s.chat_height();
    let mut seen_hint = false;
    for _ in 0..40 {
        h.key(KeyCode::Down);
        let t = h.s.view.cursor.expect("a token");
        let (line, _) = h.s.token_position(t).expect("on screen");
        let win = h.s.view.chat_window(height);
        seen_hint |= win.hint_below.is_some();
        assert!(
            line >= win.top && line < win.top + win.rows,
            "cursor line {line} outside rows {}..{} ({win:?})",
            win.top,
            win.top + win.rows
        );
    }
    assert!(seen_hint, "the test moved under a shown hint");
}

fn crash(stage: CrashStage, file: &str, signal: i32, lines: &[&str]) -> CrashReport {
    let tail: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    CrashReport::new(None, Some(signal), stage, Some(PathBuf::from(file)), &tail)
}

const ASSERT: &str =
    "/src/llama.cpp/src/llama-model.cpp:1330: GGML_ASSERT(hparams.n_layer_all > 0) failed";

#[test]
fn a_crash_while_loading_marks_the_file_and_reloads_the_previous_model() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("hi", &[("Hello", 0.9), ("!", 0.6)]);
    h.pick("qwen");
    h.key(KeyCode::Enter);
    let id = h.host.next;
    let qwen = "/models/qwen2.5-0.5b-instruct-Q4_K_M.gguf";
    let report = crash(CrashStage::Loading, qwen, libc::SIGABRT, &[ASSERT]);
    h.engine(Event::Failed {
        request: id,
        error: crate::engine::EngineError::Crashed(Box::new(report.clone())),
    });
    h.engine(Event::EngineExited {
        report: Box::new(report),
    });
    // Said, marked, and the model loaded before is loaded again.
    let notice = h.s.view.notice.clone().unwrap();
    assert_eq!(notice.level, NoticeLevel::Error);
    assert!(
        notice.text.starts_with(
            "llama.cpp crashed while loading qwen2.5-0.5b-instruct-Q4_K_M.gguf: \
             llama-model.cpp:1330: GGML_ASSERT(hparams.n_layer_all > 0) failed (aborted (SIGABRT))."
        ) && notice.text.contains("marked ✗ in the picker")
            && notice.text.ends_with("reloading gemma-3-270m-it…"),
        "{}",
        notice.text
    );
    assert_eq!(
        h.host.loads.last().unwrap(),
        &ModelRef::Local(PathBuf::from("/models/gemma-3-270m-it-Q8_0.gguf"))
    );
    assert!(
        h.s.session
            .load
            .as_ref()
            .is_some_and(|l| l.restore.is_some())
    );
    // Another notice meanwhile does not lose what crashed.
    h.s.info("something else");
    let reload = h.host.next;
    h.engine(fake_loaded(reload, fake_model("gemma-3-270m-it", "Q8_0")));
    let text = &h.s.view.notice.as_ref().unwrap().text;
    assert!(
        text.contains("GGML_ASSERT")
            && text.ends_with("restarted: gemma-3-270m-it is loaded again."),
        "{text}"
    );
    assert_eq!(h.s.view.path.len(), 2, "the conversation is untouched");

    // The picker marks the file in red and gives the reason when it is selected.
    h.key(KeyCode::F(2));
    h.send(Msg::Models(entries()));
    let b = h.buffer();
    let (x, y) = find(&b, &super::components::picker::crashed_tag()).expect("the tag");
    assert_eq!(b[(x, y)].fg, Color::Red);
    assert!(
        !h.screen().contains("✗ llama-model.cpp"),
        "reason on selection only"
    );
    h.type_str("qwen");
    assert!(
        h.screen()
            .contains("✗ llama-model.cpp:1330: GGML_ASSERT(hparams.n_layer_all > 0) failed"),
        "{}",
        h.screen()
    );
    h.key(KeyCode::Esc);
    let id = h.ask("again");
    assert!(
        h.s.session
            .generation
            .as_ref()
            .is_some_and(|g| g.request == id)
    );
}

#[test]
fn a_crash_mid_reply_fails_the_reply_with_the_reason_and_reloads_the_model() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("hi");
    h.started(id);
    h.stream(id, &[("Hel", 0.9)]);
    let path = "/models/gemma-3-270m-it-Q8_0.gguf";
    let report = crash(CrashStage::Generating, path, libc::SIGKILL, &[]);
    h.engine(Event::Failed {
        request: id,
        error: crate::engine::EngineError::Crashed(Box::new(report.clone())),
    });
    assert!(
        matches!(&h.s.msg(1).unwrap().status, MsgStatus::Failed(e) if e.contains("killed by SIGKILL")),
        "{:?}",
        h.s.msg(1).unwrap().status
    );
    let loads = h.host.loads.len();
    h.engine(Event::EngineExited {
        report: Box::new(report),
    });
    let text = h.s.view.notice.clone().unwrap().text;
    assert!(
        text.starts_with("The engine process was killed by SIGKILL while generating with gemma-3-270m-it-Q8_0.gguf")
            && !text.contains("marked"),
        "a kill is not the file's fault: {text}"
    );
    assert!(h.s.model.files.crashed.is_empty());
    assert_eq!(h.host.loads.len(), loads + 1);
    assert_eq!(
        h.host.loads.last().unwrap(),
        &ModelRef::Local(PathBuf::from(path))
    );
    // Sent while the model reloads: queued behind the load in the new engine.
    let id = h.ask("again");
    assert!(
        h.s.session
            .generation
            .as_ref()
            .is_some_and(|g| g.request == id)
    );
}

#[test]
fn a_crash_with_no_model_says_how_to_go_on() {
    let mut h = H::new(120, 40);
    h.engine(Event::EngineExited {
        report: Box::new(crash(
            CrashStage::Loading,
            "/models/x.gguf",
            libc::SIGABRT,
            &[ASSERT],
        )),
    });
    assert!(h.host.loads.is_empty());
    let text = &h.s.view.notice.as_ref().unwrap().text;
    assert!(text.ends_with("press Ctrl-O to choose a model."), "{text}");
    assert!(
        h.s.model
            .files
            .crashed
            .contains_key(&ModelRef::Local(PathBuf::from("/models/x.gguf")))
    );
}

#[test]
fn a_reply_sent_while_its_model_loads_shows_that_models_tokens() {
    let mut h = H::new(100, 30);
    let info = fake_model("gemma-3-270m-it", "Q8_0");
    let fx = super::start(&mut h.s, Some(info.model.clone()));
    execute(&mut h.s, fx, &mut h.host);
    let load = h.host.next;
    let id = h.ask("hi");
    assert_ne!(id, load, "premise: sent while the model loads");
    assert!(h.s.msgs().last().unwrap().vocab.is_none());
    h.engine(fake_loaded(load, info));
    h.started(id);
    h.stream(id, &[("Hi", 0.9)]);
    let reply = h.s.msgs().last().unwrap();
    let hi = super::bench::fake_id("Hi");
    assert_eq!(reply.piece(hi), "Hi", "token text, not #{hi}");
    assert_eq!(reply.model.as_deref(), Some("gemma-3-270m-it"));
}

#[test]
fn while_a_new_reply_prefills_the_inspector_shows_nothing_old_as_live() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("hi", &[("Hello", 0.9), ("!", 0.6)]);
    assert!(
        h.s.inspected().is_some(),
        "premise: the last token is shown"
    );
    let id = h.ask("again");
    h.started(id);
    assert!(h.s.inspected().is_none());
    let screen = h.screen();
    assert!(!screen.contains("live #"), "{screen}");
    assert!(screen.contains("while a reply streams in"), "{screen}");
    h.stream(id, &[("Hi", 0.9)]);
    assert!(h.s.inspected().is_some_and(|(t, _)| t.msg == 3));
}

/// A reply that ends at 0 tokens (its first draw the end of generation)
/// leaves the inspector with nothing of the reply before it: no "last
/// token" of the previous reply passing for this one's.
#[test]
fn after_a_reply_of_0_tokens_the_inspector_shows_nothing_stale() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.exchange("hi", &[("Hello", 0.9), ("!", 0.6)]);
    assert!(
        h.screen().contains("last token #2"),
        "premise: the reply's last token is shown"
    );
    let id = h.ask("again");
    h.started(id);
    h.done(id, 0);
    assert!(h.s.session.generation.is_none(), "premise: the reply ended");
    assert!(h.s.msgs().last().is_some_and(|m| m.steps.is_empty()));
    assert!(h.s.inspected().is_none());
    let screen = h.screen();
    assert!(!screen.contains("last token #"), "{screen}");
    assert!(screen.contains("ended before its first token"), "{screen}");
    // The small terminal's one-line inspector neither.
    h.send(Msg::Input(TermEvent::Resize(40, 12)));
    let small = h.screen();
    assert!(!small.contains("▶ ! p="), "{small}");
    // In Chinese at 80 columns: the same, whole.
    h.send(Msg::Input(TermEvent::Resize(80, 24)));
    let zh = crate::i18n::with_lang(crate::i18n::Lang::Zh, || h.screen());
    assert!(zh.contains("没有可查看的词元"), "{zh}");
    assert!(zh.lines().all(|l| l.width() <= 80), "{zh}");
}

#[test]
fn a_reply_cut_by_max_tokens_or_a_full_context_says_so() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    for (stop, note) in [
        (StopReason::MaxTokens, "[cut: max tokens reached]"),
        (StopReason::ContextFull, "[cut: context full]"),
    ] {
        let id = h.ask("count");
        h.started(id);
        h.stream(id, &[("1", 0.9), (" 2", 0.9)]);
        h.engine(Event::Done {
            request: id,
            stats: fake_stats(2, stop),
        });
        assert!(h.screen().contains(note), "{}", h.screen());
    }
    h.exchange("hi", &[("Hello", 0.9)]);
    assert_eq!(
        h.screen().matches("[cut:").count(),
        2,
        "an ended reply has no note"
    );
}

#[test]
fn esc_again_while_a_stop_is_pending_restarts_the_engine() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    let id = h.ask("hi");
    h.started(id);
    h.key(KeyCode::Esc);
    assert_eq!(h.host.cancels, vec![id]);
    assert!(h.screen().contains("Esc: restart engine"), "{}", h.screen());
    assert_eq!(h.host.restarts, 0);
    // The engine does not answer: Esc again restarts it.
    h.key(KeyCode::Esc);
    assert_eq!(h.host.restarts, 1);
    assert!(
        h.s.view
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("Restarting the engine")
    );

    // (The killed engine's report ends the reply.)
    h.engine(Event::Cancelled {
        request: id,
        stats: None,
    });
    assert!(h.s.session.generation.is_none());

    // A load too: the first Esc stops it, the second restarts a silent engine.
    h.pick("qwen");
    h.key(KeyCode::Enter);
    let load = h.host.next;
    h.key(KeyCode::Esc);
    assert!(h.host.cancels.contains(&load));
    h.key(KeyCode::Esc);
    assert_eq!(h.host.restarts, 2);
}

#[test]
fn a_file_that_fails_to_load_is_marked_until_it_loads() {
    let mut h = H::new(120, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.pick("qwen");
    h.key(KeyCode::Enter);
    let id = h.host.next;
    h.engine(Event::Failed {
        request: id,
        error: crate::engine::EngineError::LoadFailed {
            path: "/models/qwen2.5-0.5b-instruct-Q4_K_M.gguf".into(),
            reason: "error loading model: tensor 'blk.0.attn_q.weight' has wrong shape".into(),
        },
    });
    h.pick("qwen");
    let screen = h.screen();
    assert!(
        screen.contains(&format!(
            "qwen2.5-0.5b-instruct-Q4_K_M.gguf — {}",
            super::components::picker::load_failed_tag()
        )),
        "{screen}"
    );
    assert!(
        screen.contains("✗ llama.cpp could not load"),
        "the reason on selection: {screen}"
    );
    // Loaded after all (the file was fixed): no mark any more.
    h.key(KeyCode::Enter);
    let id = h.host.next;
    h.engine(fake_loaded(
        id,
        fake_model("qwen2.5-0.5b-instruct", "Q4_K_M"),
    ));
    h.pick("qwen");
    assert!(
        !h.screen()
            .contains(&super::components::picker::load_failed_tag()),
        "{}",
        h.screen()
    );
}

#[test]
fn help_reads_at_80_columns() {
    // The overlay on an 80-column terminal: 78 columns inside its border.
    let lines = super::components::help::help_lines(78, true);
    let text: Vec<String> = lines
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    for l in &text {
        assert!(UnicodeWidthStr::width(l.as_str()) <= 78, "{l:?}");
    }
    // Every binding's text is there whole (wrapped, never cut).
    let words: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.spans.get(1))
        .flat_map(|s| s.content.split_whitespace())
        .collect();
    for (_, rows) in super::action::help_rows() {
        for r in rows {
            let want: Vec<&str> = r.help.split_whitespace().collect();
            assert!(
                words.windows(want.len()).any(|w| w == want.as_slice()),
                "{:?} is not whole in the help",
                r.help
            );
        }
    }
}

/// Each frame reaches the terminal as one synchronized update and, with the
/// end-to-end tests' marks, with line wrap off while it is written: every
/// byte of it between the opening and the closing marks, none outside.
#[test]
fn a_frame_is_written_between_its_marks() {
    let mut h = H::new(60, 20).loaded("gemma-3-270m-it", "Q8_0");
    let (w, hgt) = h.s.view.size;
    let sink = Sink::default();
    let writer = super::FrameWriter::new(sink.clone(), true);
    let mut t = Terminal::with_options(
        ratatui::backend::CrosstermBackend::new(writer),
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, w, hgt)),
        },
    )
    .unwrap();
    t.draw(|f| render(&h.s, f)).unwrap();
    h.exchange("hi", &[("Hello", 0.5), ("!", 0.5)]);
    t.draw(|f| render(&h.s, f)).unwrap();
    let out = String::from_utf8(sink.0.take()).unwrap();
    let (open, close) = ("\u{1b}[?2026h\u{1b}[?7l", "\u{1b}[?7h\u{1b}[?2026l");
    assert!(out.starts_with(open) && out.ends_with(close), "{out:?}");
    // Balanced, one frame at a time, and the frames' text inside them.
    let mut rest = out.as_str();
    let mut frames = Vec::new();
    while let Some(body) = rest.strip_prefix(open) {
        let (frame, after) = body.split_once(close).expect("a frame is closed");
        assert!(!frame.contains("\u{1b}[?2026"), "{frame:?}");
        frames.push(frame);
        rest = after;
    }
    assert_eq!(rest, "", "nothing outside a frame");
    assert!(frames.iter().any(|f| f.contains("Hello")), "{frames:?}");
}

#[test]
fn the_picker_shows_the_selected_models_tensor_map_in_80_columns() {
    use crate::tensor_map::{Kind, KindShare};
    // SmolLM2-135M-Instruct Q4_1's kinds, as `info --tensors` reads them.
    let k = |kind, layers, tensors, params, bytes, ty: &str| KindShare {
        kind,
        layers,
        tensors,
        params,
        bytes,
        types: vec![(ty.to_string(), params)],
    };
    let mut models = entries();
    models[3].kinds = vec![
        k(Kind::Embedding, 0, 1, 28_311_552, 30_081_024, "Q8_0"),
        k(Kind::AttentionNorm, 30, 30, 17_280, 69_120, "F32"),
        k(Kind::Attention, 30, 120, 26_542_080, 16_588_800, "Q4_1"),
        k(Kind::FeedForwardNorm, 30, 30, 17_280, 69_120, "F32"),
        k(Kind::FeedForward, 30, 90, 79_626_240, 49_766_400, "Q4_1"),
        k(Kind::FinalNorm, 0, 1, 576, 2_304, "F32"),
    ];
    models[3].tied_output = true;
    models[3].file_bytes = 98_362_432;
    let mut h = H::new(80, 40).loaded("gemma-3-270m-it", "Q8_0");
    h.ctrl('o');
    h.send(Msg::Models(models));
    // A model without a map (these test rows have none) shows none.
    assert!(!h.screen().contains("tensor map"), "{}", h.screen());
    h.type_str("smol");
    let screen = h.screen();
    assert!(
        screen.contains("tensor map of SmolLM2-135M-Instruct"),
        "{screen}"
    );
    let row = |label: &str| {
        screen
            .lines()
            .find(|l| l.starts_with(&format!("│  {label}")))
            .unwrap_or_else(|| panic!("{label:?} in {screen}"))
            .to_string()
    };
    let ffn = row("feed-forward");
    assert!(
        ffn.contains("80M") && ffn.contains("Q4_1") && ffn.contains("50.6%"),
        "{ffn}"
    );
    // 50.6% of the 20-column bar.
    assert_eq!(ffn.matches('█').count(), 10, "{ffn}");
    let norms = row("norms");
    assert!(norms.contains("35K") && norms.contains("F32"), "{norms}");
    assert!(row("embedding").contains("30.6%"));
    assert!(row("output head").contains("tied to the embedding"));
}
