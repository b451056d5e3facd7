//! `tokenscope bench --only ui`: what the UI costs per token, without a model.
//!
//! Fake token events go through `update` and each is drawn into a
//! `TestBackend`, as a stream would be with no frame coalescing (the worst case).

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use unicode_width::UnicodeWidthStr;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::state::State;
use super::{Host, Msg, execute, render, update};
use crate::config::Config;
use crate::i18n::{tr, tr_args};
use std::sync::Arc;

use crate::engine::{
    Candidate, Capabilities, ChatMode, Distribution, Event, GenerateRequest, LoadSettings,
    ModelInfo, ModelRef, PromptToken, RequestId, Role, TokenId, TokenStep, Vocab,
};

/// A host that only records what it is asked (for the bench and tests).
#[derive(Debug, Default)]
pub struct NullHost {
    /// The id of the last request sent (`update` draws them).
    pub next: RequestId,
    pub loads: Vec<ModelRef>,
    pub generates: Vec<GenerateRequest>,
    pub cancels: Vec<RequestId>,
    /// Prompt scorings sent, with their request.
    pub prompt_scorings: Vec<(RequestId, crate::engine::PromptScoreRequest)>,
    /// Saved conversations (tests of saving; `None`: nothing is saved).
    pub saver: Option<super::saving::Saver>,
    pub refreshes: usize,
    pub restarts: usize,
    /// Steps, forces and runs sent, with their request.
    pub steers: Vec<(RequestId, crate::tui::effect::Steer)>,
    pub lenses: Vec<(RequestId, crate::engine::LensRequest)>,
    pub rollouts: Vec<(RequestId, crate::engine::RolloutRequest)>,
    pub kv_costs: Vec<(RequestId, crate::engine::KvCostRequest)>,
    /// Comparison commands sent (load B, compare, unload B).
    pub compares: Vec<crate::tui::compare::CompareCmd>,
}

impl Host for NullHost {
    fn load(&mut self, id: RequestId, model: ModelRef, _settings: LoadSettings) {
        self.loads.push(model);
        self.next = id;
    }
    fn generate(&mut self, id: RequestId, req: GenerateRequest) {
        self.generates.push(req);
        self.next = id;
    }
    fn cancel(&mut self, request: RequestId) {
        self.cancels.push(request);
    }
    fn score_prompt(&mut self, id: RequestId, req: crate::engine::PromptScoreRequest) {
        self.prompt_scorings.push((id, req));
        self.next = id;
    }
    fn ask_text(&mut self, id: RequestId, _req: crate::engine::AskTextRequest) {
        self.next = id;
    }
    fn lens(&mut self, id: RequestId, req: crate::engine::LensRequest) {
        self.lenses.push((id, req));
        self.next = id;
    }
    fn rollouts(&mut self, id: RequestId, req: crate::engine::RolloutRequest) {
        self.rollouts.push((id, req));
        self.next = id;
    }
    fn kv_cost(&mut self, id: RequestId, req: crate::engine::KvCostRequest) {
        self.kv_costs.push((id, req));
        self.next = id;
    }
    fn refresh_models(&mut self, _places: crate::catalog::Places) {
        self.refreshes += 1;
    }
    fn restart_engine(&mut self) {
        self.restarts += 1;
    }
    fn steer(&mut self, request: RequestId, steer: crate::tui::effect::Steer) {
        self.steers.push((request, steer));
    }
    fn compare(&mut self, id: RequestId, cmd: crate::tui::compare::CompareCmd) {
        self.compares.push(cmd);
        self.next = id;
    }
    fn saver(&mut self) -> Option<&mut super::saving::Saver> {
        self.saver.as_mut()
    }
}

/// A made-up model, as the engine would describe it.
pub fn fake_model(name: &str, quant: &str) -> ModelInfo {
    ModelInfo {
        model: ModelRef::Local(PathBuf::from(format!("/models/{name}-{quant}.gguf"))),
        name: name.to_string(),
        arch: "gemma3".to_string(),
        n_params: 268_098_176,
        file_size: 291_545_632,
        quant: quant.to_string(),
        n_layer: 18,
        n_ctx_train: 32_768,
        n_ctx: 4096,
        n_ctx_requested: 4096,
        n_vocab: 262_144,
        chat_mode: ChatMode::Template,
        default_system: None,
        backend: "CPU".to_string(),
        cpu_kernels: String::new(),
        gpu_layers: 0,
        threads: 4,
        former_name: None,
    }
}

/// The vocabulary of the made-up model: every text a fake step may use
/// (the UI bench's words and the UI tests' tokens), by id.
pub const FAKE_WORDS: &[&str] = &[
    " word",
    "Hel",
    " the",
    " a",
    ",",
    ".",
    "\n",
    " and",
    " of",
    " to",
    " is",
    " in",
    " it",
    " that",
    " Once",
    " upon",
    " time",
    " there",
    " was",
    " model",
    " predicted",
    " 中文",
    " tokens",
    "",
    " ",
    " 2",
    " 3",
    " France",
    " Paris",
    " \u{ff8a}\u{ff9f}",
    " a fairly long line of words that wraps\n",
    " alpha",
    " beta",
    " cafe",
    " capital",
    " end",
    " nai",
    " word\n",
    "!",
    "1",
    "A",
    "B",
    "Hello",
    "Hey",
    "Hi",
    "Sure",
    "The",
    "X",
    "Y",
    "Z",
    "\u{1b}[2J",
    "\u{1b}]0;pwned\u{7}",
    "\u{200d}",
    "\u{301}",
    "\u{308}",
    "\u{fe0f}",
    "\u{ff9d}!",
    "a",
    "b",
    "ly",
    "ok ",
    "ok\u{9b}1m\u{202e}evil",
    "ve ",
    "x",
    "y",
    "“",
    "”",
    "❤",
    "。",
    "一座",
    "也",
    "你",
    "光之城",
    "城市",
    "好",
    "巴黎",
    "是",
    "法国",
    "的",
    "美丽",
    "被称为",
    "非常",
    "首都",
    "，",
    "👧",
    "👩",
    "🙂",
];

/// The made-up model's vocabulary: [`FAKE_WORDS`], then one token of the
/// first two bytes of 好 ([`fake_partial_id`]); no EOG token.
pub fn fake_vocab() -> Arc<Vocab> {
    let mut pieces: Vec<Vec<u8>> = FAKE_WORDS.iter().map(|w| w.as_bytes().to_vec()).collect();
    pieces.push(vec![0xE5, 0xA5]);
    Arc::new(Vocab {
        pieces,
        eog: Vec::new(),
        learned: Default::default(),
    })
}

/// The id of the fake token that is part of a character (bytes E5 A5).
#[cfg(test)]
pub fn fake_partial_id() -> TokenId {
    FAKE_WORDS.len() as TokenId
}

/// The id of `text` in [`fake_vocab`].
///
/// # Panics
/// When `text` is not in [`FAKE_WORDS`] (add it there).
pub fn fake_id(text: &str) -> TokenId {
    FAKE_WORDS
        .iter()
        .position(|w| *w == text)
        .unwrap_or_else(|| panic!("{text:?} is not in FAKE_WORDS: add it there")) as TokenId
}

/// A made-up token step: `text` chosen with probability `p`, and `k`
/// alternatives sharing the rest (ids of [`fake_vocab`]).
pub fn fake_step(index: usize, text: &str, p: f32, k: usize) -> TokenStep {
    let id = fake_id(text);
    let alts = [
        " the", " a", ",", ".", "\n", " and", " of", " to", " is", " in", " it", " that",
    ];
    // Logits around 20 with lse = 20: the probability of a token is exp(logit - 20).
    let mut top = vec![Candidate {
        id,
        logit: 20.0 + p.ln(),
        p_sampled: Some((p * 1.1).min(1.0)),
    }];
    let mut probs = vec![p];
    let mut rest = 1.0 - p;
    // Beyond those twelve (k > 12), the other words of the vocabulary.
    let more = FAKE_WORDS.iter().filter(|w| !alts.contains(w));
    for (j, a) in alts
        .iter()
        .chain(more)
        .filter(|a| **a != text)
        .take(k.saturating_sub(1))
        .enumerate()
    {
        let q = rest * 0.5;
        rest -= q;
        probs.push(q);
        top.push(Candidate {
            id: fake_id(a),
            logit: 20.0 + q.max(1e-9).ln(),
            p_sampled: Some(if j < 3 { q * 0.9 } else { 0.0 }),
        });
    }
    top.sort_by(|a, b| b.logit.total_cmp(&a.logit));
    let entropy = -probs.iter().map(|q| q * q.max(1e-12).log2()).sum::<f32>();
    TokenStep {
        index,
        id,
        forced: false,
        text: text.to_string(),
        logit: Some(20.0 + p.ln()),
        p_sampled: Some((p * 1.1).min(1.0)),
        dist: Some(Distribution {
            lse: 20.0,
            entropy: Some(entropy),
            top,
        }),
    }
}

/// A prompt of `n` tokens of the user's first message.
pub fn fake_prompt(n: usize) -> Vec<PromptToken> {
    let t = PromptToken {
        id: 0,
        message: Some(0),
        role: Some(Role::User),
    };
    vec![t; n]
}

/// The event of `info` loaded in slot 0 with [`fake_vocab`].
pub fn fake_loaded(request: RequestId, info: ModelInfo) -> Event {
    Event::Loaded {
        request,
        slot: 0,
        info: Box::new(info),
        vocab: fake_vocab(),
        caps: Capabilities::local(),
    }
}

/// Statistics of a finished fake reply.
#[cfg(test)]
pub fn fake_stats(n_generated: usize, stop: crate::engine::StopReason) -> crate::engine::Stats {
    crate::engine::Stats {
        stop,
        n_prompt: 42,
        n_prompt_evaluated: 30,
        n_prompt_reused: 12,
        n_generated,
        n_forced: 0,
        ttft_ms: 85.0,
        prompt_tps: 900.0,
        gen_tps: 48.3,
        dropped_messages: 0,
        ctx_used: 42 + n_generated,
        ctx_size: 4096,
        ctx_requested: 4096,
        inspector_us_per_token: 12.0,
    }
}

#[derive(Debug, Clone)]
pub struct UiBench {
    pub events: usize,
    pub width: u16,
    pub height: u16,
    pub times: StreamTimes,
    pub total_ms: f64,
}

impl fmt::Display for UiBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = tr_args(
            "bench-ui-head",
            "ui bench: { $events } token events, { $width }x{ $height } TestBackend, one frame per event",
            &[
                ("events", &self.events),
                ("width", &self.width),
                ("height", &self.height),
            ],
        );
        writeln!(f, "{head}")?;
        writeln!(f, "{}", self.times)?;
        let rate = format!("{:.0}", self.events as f64 / (self.total_ms / 1000.0));
        let total = tr_args(
            "bench-ui-total",
            "{ $ms } ms ({ $rate } events/s with a frame each)",
            &[("ms", &format!("{:.1}", self.total_ms)), ("rate", &rate)],
        );
        write!(f, "{}{total}", label(tr("bench-ui-total-label", "total")))
    }
}

/// `text` as the label of a UI bench line: indented two columns and padded
/// to eight by display width, so the numbers after it line up in both
/// languages.
pub(super) fn label(text: String) -> String {
    let pad = 8usize.saturating_sub(text.width());
    format!("  {text}{}", " ".repeat(pad))
}

pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(super) fn us(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A state with a model loaded and a reply started, as the benches need it;
/// returns the state, its host and the reply's request id.
fn streaming_state(width: u16, height: u16) -> (State, NullHost, RequestId) {
    streaming_state_after(width, height, None)
}

/// [`streaming_state`], the reply started after the turns of `conv` (opened
/// with [`super::bench_long::open_conversation`] once the model is loaded).
pub(super) fn streaming_state_after(
    width: u16,
    height: u16,
    conv: Option<crate::conversation::Conversation>,
) -> (State, NullHost, RequestId) {
    let mut host = NullHost::default();
    let mut s = State::new(Config::default(), false, Vec::new(), (width, height));
    let feed = |s: &mut State, host: &mut NullHost, m: Msg| {
        let fx = update(s, m);
        execute(s, fx, host);
    };
    let fx = super::start(
        &mut s,
        Some(ModelRef::Local(PathBuf::from("/models/bench.gguf"))),
    );
    execute(&mut s, fx, &mut host);
    let load_id = host.next;
    feed(
        &mut s,
        &mut host,
        Msg::Engine(fake_loaded(load_id, fake_model("bench-model", "Q4_K_M"))),
    );
    if let Some(conv) = conv {
        // As opening a saved conversation does (see `bench_long::open_conversation`).
        super::transitions::show_conversation(&mut s, conv, None);
    }
    for c in "Write a long story, please.".chars() {
        feed(&mut s, &mut host, key(KeyCode::Char(c)));
    }
    feed(&mut s, &mut host, key(KeyCode::Enter));
    let id = host.next;
    feed(
        &mut s,
        &mut host,
        Msg::Engine(Event::Started {
            request: id,
            mode: ChatMode::Template,
            prompt: fake_prompt(42),
            prefix: Vec::new(),
            n_reused: 12,
            dropped_messages: 0,
            note: None,
        }),
    );
    (s, host, id)
}

/// The words of the benches' made-up story (a line ends every 15 tokens).
const STORY: [&str; 15] = [
    " Once",
    " upon",
    " a",
    " time",
    ",",
    " there",
    " was",
    " a",
    " model",
    " that",
    " predicted",
    " 中文",
    " tokens",
    ".",
    "\n",
];

/// Fake steps `from..from + n` of the made-up story, each with `k`
/// candidates and a probability that varies from token to token.
pub(super) fn story_steps(from: usize, n: usize, k: usize) -> Vec<TokenStep> {
    (from..from + n)
        .map(|i| {
            let p = ((i * 37) % 100) as f32 / 100.0;
            fake_step(i - from, STORY[i % STORY.len()], p.max(0.01), k)
        })
        .collect()
}

/// Feeds `events` fake tokens through update + render at `width`×`height`.
pub fn bench_ui(events: usize, width: u16, height: u16) -> UiBench {
    let (mut s, mut host, id) = streaming_state(width, height);
    let start = Instant::now();
    let t = stream_frames(
        &mut s,
        &mut host,
        id,
        story_steps(0, events, 10),
        width,
        height,
    );
    let total_ms = start.elapsed().as_secs_f64() * 1e3;
    UiBench {
        events,
        width,
        height,
        times: t,
        total_ms,
    }
}

/// Times of a token stream fed through `update` with a frame drawn after
/// each token, in µs.
#[derive(Debug, Clone)]
pub struct StreamTimes {
    pub update_mean_us: f64,
    pub update_p99_us: f64,
    pub frame_mean_us: f64,
    pub frame_p50_us: f64,
    pub frame_p99_us: f64,
    pub frame_max_us: f64,
}

impl fmt::Display for StreamTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |v: f64| format!("{v:8.1}");
        let update = tr_args(
            "bench-ui-update",
            "mean { $mean } µs   p99 { $p99 } µs",
            &[
                ("mean", &us(self.update_mean_us)),
                ("p99", &us(self.update_p99_us)),
            ],
        );
        writeln!(
            f,
            "{}{update}",
            label(tr("bench-ui-update-label", "update"))
        )?;
        let frame = tr_args(
            "bench-ui-frame",
            "mean { $mean } µs   p50 { $p50 } µs   p99 { $p99 } µs   max { $max } µs",
            &[
                ("mean", &us(self.frame_mean_us)),
                ("p50", &us(self.frame_p50_us)),
                ("p99", &us(self.frame_p99_us)),
                ("max", &us(self.frame_max_us)),
            ],
        );
        write!(f, "{}{frame}", label(tr("bench-ui-frame-label", "frame")))
    }
}

/// Feeds `steps` as tokens of reply `id` through `update` and draws each
/// result into a `width`×`height` `TestBackend`.
pub(super) fn stream_frames(
    s: &mut State,
    host: &mut NullHost,
    id: RequestId,
    steps: Vec<TokenStep>,
    width: u16,
    height: u16,
) -> StreamTimes {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    let mut updates = Vec::with_capacity(steps.len());
    let mut frames = Vec::with_capacity(steps.len());
    for step in steps {
        let t = Instant::now();
        let fx = update(
            s,
            Msg::Engine(Event::Token {
                request: id,
                step: Box::new(step),
            }),
        );
        execute(s, fx, host);
        updates.push(us(t.elapsed()));
        let t = Instant::now();
        terminal.draw(|f| render(s, f)).expect("draw");
        frames.push(us(t.elapsed()));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (update_mean_us, frame_mean_us) = (mean(&updates), mean(&frames));
    updates.sort_by(f64::total_cmp);
    frames.sort_by(f64::total_cmp);
    StreamTimes {
        update_mean_us,
        update_p99_us: percentile(&updates, 0.99),
        frame_mean_us,
        frame_p50_us: percentile(&frames, 0.5),
        frame_p99_us: percentile(&frames, 0.99),
        frame_max_us: frames.last().copied().unwrap_or(0.0),
    }
}

fn key(code: KeyCode) -> Msg {
    Msg::Input(TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

/// Key-to-screen latency while a reply streams.
#[derive(Debug, Clone)]
pub struct LatencyBench {
    pub tokens_per_s: u32,
    pub keys: usize,
    pub frames: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl fmt::Display for LatencyBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |v: f64| format!("{v:.1}");
        let line = tr_args(
            "bench-ui-latency",
            "key-to-screen latency while { $rate } tokens/s stream in (real event loop, { $frames } frames): \
             p50 { $p50 } ms   p99 { $p99 } ms   max { $max } ms over { $keys } keys",
            &[
                ("rate", &self.tokens_per_s),
                ("frames", &self.frames),
                ("p50", &ms(self.p50_ms)),
                ("p99", &ms(self.p99_ms)),
                ("max", &ms(self.max_ms)),
                ("keys", &self.keys),
            ],
        );
        write!(f, "{line}")
    }
}

/// The character typed by the latency bench; no fake token or label contains it.
const MARK: char = 'Ж';

/// A `TestBackend` that notes, at each flush, when each typed mark first shows.
struct WatchBackend {
    inner: TestBackend,
    shown: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
    frames: usize,
}

impl ratatui::backend::Backend for WatchBackend {
    type Error = std::convert::Infallible;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<ratatui::layout::Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        position: P,
    ) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, t: ratatui::backend::ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(t)
    }
    fn size(&self) -> Result<ratatui::layout::Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<ratatui::backend::WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.frames += 1;
        let now = Instant::now();
        let marks = self
            .inner
            .buffer()
            .content()
            .iter()
            .filter(|c| c.symbol().starts_with(MARK))
            .count();
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        while shown.len() < marks {
            shown.push(now);
        }
        self.inner.flush()
    }
}

/// Runs the real event loop (with its frame coalescing) while a thread sends
/// fake tokens at `tokens_per_s` and a key every 40 ms; reports how long each
/// key took to appear on screen.
pub fn bench_latency(tokens_per_s: u32, keys: usize) -> LatencyBench {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    let (width, height) = (120, 40);
    let (mut s, mut host, id) = streaming_state(width, height);
    let shown = Arc::new(Mutex::new(Vec::new()));
    let backend = WatchBackend {
        inner: TestBackend::new(width, height),
        shown: shown.clone(),
        frames: 0,
    };
    let mut terminal = Terminal::new(backend).expect("test backend");
    let (tx, rx) = std::sync::mpsc::channel();
    let producer = std::thread::spawn(move || {
        let start = Instant::now();
        let token_every = Duration::from_secs_f64(1.0 / tokens_per_s.max(1) as f64);
        let key_every = Duration::from_millis(40);
        let (mut tokens, mut sent) = (0usize, Vec::with_capacity(keys));
        while sent.len() < keys {
            let now = start.elapsed();
            while token_every * tokens as u32 <= now {
                let p = ((tokens * 37) % 100) as f32 / 100.0;
                let step = fake_step(tokens, " word", p.max(0.01), 10);
                let ev = Event::Token {
                    request: id,
                    step: Box::new(step),
                };
                if tx.send(Msg::Engine(ev)).is_err() {
                    return sent;
                }
                tokens += 1;
            }
            if key_every * sent.len() as u32 <= now {
                sent.push(Instant::now());
                let _ = tx.send(key(KeyCode::Char(MARK)));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        // Let the last key be drawn, then end the loop by hanging up.
        std::thread::sleep(Duration::from_millis(100));
        sent
    });
    let _ = super::run_loop(&mut terminal, &rx, &mut host, &mut s);
    let sent = producer.join().unwrap_or_default();
    let shown = shown.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut lat: Vec<f64> = sent
        .iter()
        .zip(&shown)
        .map(|(a, b)| b.saturating_duration_since(*a).as_secs_f64() * 1e3)
        .collect();
    lat.sort_by(f64::total_cmp);
    LatencyBench {
        tokens_per_s,
        keys: lat.len(),
        frames: terminal.backend().frames,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
    }
}

/// What a what-if key costs: the sampler applied again to 256 stored
/// candidates, and the frame that shows it (120×40), in µs.
pub struct WhatIfBench {
    pub resample_us: f64,
    pub frame_us: f64,
}

impl fmt::Display for WhatIfBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = tr_args(
            "bench-ui-whatif",
            "what-if redraw (sampler on 256 stored candidates + a full frame): resample { $resample } µs, frame { $frame } µs",
            &[
                ("resample", &format!("{:.1}", self.resample_us)),
                ("frame", &format!("{:.1}", self.frame_us)),
            ],
        );
        write!(f, "{line}")
    }
}

/// Times the what-if view: `n` changes of the temperature on a reply of
/// made-up steps with 256 candidates each.
pub fn bench_whatif(n: usize) -> WhatIfBench {
    let (mut s, mut host, id) = streaming_state(120, 40);
    let mut step = fake_step(0, " word", 0.4, 12);
    // 256 candidates: the made-up vocabulary is small, so ids repeat past it.
    if let Some(d) = &mut step.dist {
        let base = d.top.clone();
        d.top = (0..crate::engine::MAX_CANDIDATES)
            .map(|i| Candidate {
                logit: base[i % base.len()].logit - (i / base.len()) as f32,
                ..base[i % base.len()]
            })
            .collect();
    }
    let fx = update(
        &mut s,
        Msg::Engine(Event::Token {
            request: id,
            step: Box::new(step.clone()),
        }),
    );
    execute(&mut s, fx, &mut host);
    let mut sampling = s.config.sampling.clone();
    let t0 = Instant::now();
    for i in 0..n {
        sampling.temperature = 0.5 + (i % 10) as f32 * 0.1;
        std::hint::black_box(crate::engine::resample::resample(
            &sampling,
            step.dist.as_ref().expect("candidates"),
            &[],
            262_144,
        ));
    }
    let resample_us = t0.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64;
    s.model.whatif = Some(sampling);
    s.view.focus = super::state::Focus::Navigate;
    s.view.cursor = s.last_token();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    let t0 = Instant::now();
    for i in 0..n {
        if let Some(w) = &mut s.model.whatif {
            w.temperature = 0.5 + (i % 10) as f32 * 0.1;
        }
        terminal.draw(|f| render(&s, f)).expect("draw");
    }
    WhatIfBench {
        resample_us,
        frame_us: t0.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64,
    }
}
