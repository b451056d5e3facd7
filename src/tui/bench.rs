//! `tokenscope bench --ui`: what the UI costs per token, without a model.
//!
//! Fake token events go through `update` and each is drawn into a
//! `TestBackend`, as a stream would be with no frame coalescing (the worst case).

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::state::State;
use super::{Host, Msg, execute, render, update};
use crate::config::Config;
use crate::engine::{
    Candidate, ChatMode, Event, GenerateRequest, LoadSettings, ModelInfo, RequestId, Stats,
    StopReason, TokenStep,
};

/// A host that only hands out request ids (for the bench and tests).
#[derive(Debug, Default)]
pub struct NullHost {
    pub next: RequestId,
    pub loads: Vec<PathBuf>,
    pub generates: Vec<GenerateRequest>,
    pub cancels: Vec<RequestId>,
    pub refreshes: usize,
}

impl NullHost {
    fn id(&mut self) -> RequestId {
        self.next += 1;
        self.next
    }
}

impl Host for NullHost {
    fn load(&mut self, path: PathBuf, _settings: LoadSettings) -> RequestId {
        self.loads.push(path);
        self.id()
    }
    fn generate(&mut self, req: GenerateRequest) -> RequestId {
        self.generates.push(req);
        self.id()
    }
    fn cancel(&mut self, request: RequestId) {
        self.cancels.push(request);
    }
    fn refresh_models(&mut self, _dirs: Vec<PathBuf>) {
        self.refreshes += 1;
    }
}

/// A made-up model, as the engine would describe it.
pub fn fake_model(name: &str, quant: &str) -> ModelInfo {
    ModelInfo {
        path: PathBuf::from(format!("/models/{name}-{quant}.gguf")),
        name: name.to_string(),
        arch: "gemma3".to_string(),
        n_params: 268_098_176,
        file_size: 291_545_632,
        quant: quant.to_string(),
        n_layer: 18,
        n_ctx_train: 32_768,
        n_ctx: 4096,
        n_vocab: 262_144,
        chat_mode: ChatMode::Template,
        backend: "CPU".to_string(),
        gpu_layers: 0,
        threads: 4,
    }
}

/// A made-up token step: `text` chosen with probability `p`, and `k`
/// alternatives sharing the rest.
pub fn fake_step(index: usize, text: &str, p: f32, k: usize) -> TokenStep {
    let id = 1000 + index as i32;
    let alts = [
        " the", " a", ",", ".", "\n", " and", " of", " to", " is", " in", " it", " that",
    ];
    let mut top = vec![Candidate {
        id,
        text: text.to_string(),
        p,
        p_sampled: (p * 1.1).min(1.0),
        logit: 20.0 + p.ln(),
    }];
    let mut rest = 1.0 - p;
    for (j, a) in alts
        .iter()
        .filter(|a| **a != text)
        .take(k.saturating_sub(1))
        .enumerate()
    {
        let q = rest * 0.5;
        rest -= q;
        top.push(Candidate {
            id: 10 + j as i32,
            text: a.to_string(),
            p: q,
            p_sampled: if j < 3 { q * 0.9 } else { 0.0 },
            logit: 20.0 + q.max(1e-9).ln(),
        });
    }
    top.sort_by(|a, b| b.p.total_cmp(&a.p));
    let entropy = -top.iter().map(|c| c.p * c.p.max(1e-12).log2()).sum::<f32>();
    TokenStep {
        index,
        id,
        bytes: text.as_bytes().to_vec(),
        text: text.to_string(),
        piece: text.to_string(),
        p,
        p_sampled: (p * 1.1).min(1.0),
        logit: 20.0 + p.ln(),
        entropy,
        lse: 20.0,
        top,
    }
}

/// Statistics of a finished fake reply.
pub fn fake_stats(n_generated: usize, stop: StopReason) -> Stats {
    Stats {
        stop,
        n_prompt: 42,
        n_prompt_evaluated: 30,
        n_prompt_reused: 12,
        n_generated,
        ttft_ms: 85.0,
        prompt_tps: 900.0,
        gen_tps: 48.3,
        dropped_messages: 0,
        ctx_used: 42 + n_generated,
        ctx_size: 4096,
        inspector_us_per_token: 12.0,
    }
}

#[derive(Debug, Clone)]
pub struct UiBench {
    pub events: usize,
    pub width: u16,
    pub height: u16,
    pub update_mean_us: f64,
    pub update_p99_us: f64,
    pub frame_mean_us: f64,
    pub frame_p50_us: f64,
    pub frame_p99_us: f64,
    pub frame_max_us: f64,
    pub total_ms: f64,
}

impl fmt::Display for UiBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ui bench: {} token events, {}x{} TestBackend, one frame per event",
            self.events, self.width, self.height
        )?;
        writeln!(
            f,
            "  update  mean {:8.1} µs   p99 {:8.1} µs",
            self.update_mean_us, self.update_p99_us
        )?;
        writeln!(
            f,
            "  frame   mean {:8.1} µs   p50 {:8.1} µs   p99 {:8.1} µs   max {:8.1} µs",
            self.frame_mean_us, self.frame_p50_us, self.frame_p99_us, self.frame_max_us
        )?;
        write!(
            f,
            "  total   {:.1} ms ({:.0} events/s with a frame each)",
            self.total_ms,
            self.events as f64 / (self.total_ms / 1000.0)
        )
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Feeds `events` fake tokens through update + render at `width`×`height`.
pub fn bench_ui(events: usize, width: u16, height: u16) -> UiBench {
    let mut host = NullHost::default();
    let mut s = State::new(Config::default(), false, Vec::new(), (width, height));
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    let feed = |s: &mut State, host: &mut NullHost, m: Msg| {
        let fx = update(s, m);
        execute(s, fx, host);
    };
    let fx = super::start(&mut s, Some(PathBuf::from("/models/bench.gguf")));
    execute(&mut s, fx, &mut host);
    let load_id = host.next;
    feed(
        &mut s,
        &mut host,
        Msg::Engine(Event::Loaded {
            request: load_id,
            info: Box::new(fake_model("bench-model", "Q4_K_M")),
        }),
    );
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
            n_prompt: 42,
            n_reused: 12,
            dropped_messages: 0,
        }),
    );
    let words = [
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
    let steps: Vec<TokenStep> = (0..events)
        .map(|i| {
            let p = ((i * 37) % 100) as f32 / 100.0;
            fake_step(i, words[i % words.len()], p.max(0.01), 10)
        })
        .collect();
    let mut updates = Vec::with_capacity(events);
    let mut frames = Vec::with_capacity(events);
    let start = Instant::now();
    for step in steps {
        let t = Instant::now();
        feed(
            &mut s,
            &mut host,
            Msg::Engine(Event::Token {
                request: id,
                step: Box::new(step),
            }),
        );
        updates.push(us(t.elapsed()));
        let t = Instant::now();
        terminal.draw(|f| render(&s, f)).expect("draw");
        frames.push(us(t.elapsed()));
    }
    let total_ms = start.elapsed().as_secs_f64() * 1e3;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let update_mean_us = mean(&updates);
    let frame_mean_us = mean(&frames);
    updates.sort_by(f64::total_cmp);
    frames.sort_by(f64::total_cmp);
    UiBench {
        events,
        width,
        height,
        update_mean_us,
        update_p99_us: percentile(&updates, 0.99),
        frame_mean_us,
        frame_p50_us: percentile(&frames, 0.5),
        frame_p99_us: percentile(&frames, 0.99),
        frame_max_us: frames.last().copied().unwrap_or(0.0),
        total_ms,
    }
}

fn key(code: KeyCode) -> Msg {
    Msg::Input(TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}
