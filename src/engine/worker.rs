//! The worker loop: the only owner of llama.cpp objects (backend, model,
//! context, sampler). Commands come in over a channel; events go out through `emit`.

use std::num::NonZeroU32;
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;

use super::probs::TopK;
use super::session::{KvMirror, drop_oldest_turn};
use super::template::{self, ChatTemplate, Contents, PromptPiece, TemplateError, TemplateTokens};
use super::{
    Cancellations, Candidate, ChatMode, Command, Event, GenerateRequest, LoadSettings, ModelInfo,
    RequestId, Stats, StopReason, TokenStep,
};
use crate::catalog;
use crate::text::{Utf8Assembler, readable_piece};

type Emit = Rc<dyn Fn(Event) -> bool>;

/// llama.cpp's backend, initialised once per process (engines may come and go).
fn backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        // Before init, so that nothing of llama.cpp reaches stderr.
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().expect("llama.cpp backend initialises once")
    })
}

/// Physical cores (llama.cpp gains nothing from hyper-threads), else logical ones.
pub fn physical_cores() -> u32 {
    let logical = std::thread::available_parallelism().map_or(4, |n| n.get() as u32);
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::HashSet::new();
    let mut physical = "";
    for line in info.lines() {
        let (key, value) = line.split_once(':').unwrap_or((line, ""));
        match key.trim() {
            "physical id" => physical = value.trim(),
            "core id" => {
                cores.insert((physical.to_string(), value.trim().to_string()));
            }
            _ => {}
        }
    }
    if cores.is_empty() {
        logical
    } else {
        (cores.len() as u32).min(logical)
    }
}

struct Loaded {
    model: LlamaModel,
    info: ModelInfo,
    settings: LoadSettings,
    /// The GGUF's Jinja chat template, parsed; `Err` when it does not parse.
    template: Option<Result<ChatTemplate, TemplateError>>,
    special: TemplateTokens,
}

pub(super) fn run(
    rx: Receiver<Command>,
    cancel: Arc<Cancellations>,
    emit: impl Fn(Event) -> bool + 'static,
) {
    let emit: Emit = Rc::new(emit);
    let current = Rc::new(std::cell::Cell::new(0));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve(&rx, &cancel, &emit, &current)
    }));
    if let Err(panic) = result {
        let msg = super::crash::engine_panic_message().unwrap_or_else(|| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into())
        });
        emit(Event::Failed {
            request: current.get(),
            error: format!(
                "the engine crashed: {msg}. This is a bug in tokenscope: please report it \
                 (details and a backtrace are in the log file, see `tokenscope paths`)"
            ),
        });
        // End the thread by the same panic: `emit` (and what the event wrapper
        // captured, such as the TUI's stop guard) is dropped while unwinding, so
        // whoever watches the thread sees a crash, not a normal stop. The panic
        // hook does not run again.
        std::panic::resume_unwind(panic);
    }
}

fn serve(
    rx: &Receiver<Command>,
    cancel: &Arc<Cancellations>,
    emit: &Emit,
    current: &std::cell::Cell<RequestId>,
) {
    let mut loaded: Option<Loaded> = None;
    let mut next: Option<Command> = None;
    loop {
        let Some(cmd) = next.take().or_else(|| rx.recv().ok()) else {
            return;
        };
        match cmd {
            Command::Shutdown => return,
            // Both transports apply cancels on arrival; one that gets here
            // still counts.
            Command::Cancel { request } => cancel.cancel(request),
            Command::Load {
                request,
                path,
                settings,
            } => {
                current.set(request);
                match load(&path, &settings, request, cancel, emit) {
                    // Given up on while it finished: keep the model in use.
                    Ok(_) if cancel.is_cancelled(request) => {
                        emit(Event::Failed {
                            request,
                            error: "loading was cancelled".into(),
                        });
                    }
                    Ok(new) => {
                        let info = Box::new(new.info.clone());
                        // The old model goes only once the new one is usable.
                        loaded = Some(new);
                        emit(Event::Loaded { request, info });
                    }
                    Err(error) => {
                        emit(Event::Failed { request, error });
                    }
                }
                cancel.finish(request);
            }
            Command::Generate { request, req } => {
                current.set(request);
                super::crash::test_panic("generate");
                let Some(l) = loaded.as_ref() else {
                    emit(Event::Failed {
                        request,
                        error: "no model is loaded: pick one first".into(),
                    });
                    cancel.finish(request);
                    continue;
                };
                let mut ctx = match new_context(l) {
                    Ok(ctx) => ctx,
                    Err(error) => {
                        emit(Event::Failed { request, error });
                        cancel.finish(request);
                        continue;
                    }
                };
                let mut mirror = KvMirror::default();
                let mut job = Some((request, req));
                // Keep the context (and its KV cache) while generate requests follow.
                while let Some((request, req)) = job.take() {
                    current.set(request);
                    let mut g = Generation {
                        loaded: l,
                        ctx: &mut ctx,
                        mirror: &mut mirror,
                        request,
                        cancel,
                        emit,
                    };
                    match g.generate(&req) {
                        Ok(stats) => emit(Event::Done { request, stats }),
                        Err(error) => emit(Event::Failed { request, error }),
                    };
                    cancel.finish(request);
                    match rx.recv() {
                        Ok(Command::Generate { request, req }) => job = Some((request, req)),
                        Ok(other) => next = Some(other),
                        Err(_) => return,
                    }
                }
            }
        }
    }
}

fn load(
    path: &Path,
    settings: &LoadSettings,
    request: RequestId,
    cancel: &Arc<Cancellations>,
    emit: &Emit,
) -> Result<Loaded, String> {
    // Check the file ourselves first: a corrupt GGUF makes llama.cpp abort the process.
    let card = catalog::read_card(path).map_err(|e| e.to_string())?;
    validate_settings(settings)?;
    let backend = backend();
    let progress_emit = emit.clone();
    let mut last = -1i32;
    let load_cancel = cancel.clone();
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(settings.gpu_layers)
        .with_progress_callback(move |f| {
            let pct = (f * 100.0) as i32;
            if pct != last {
                last = pct;
                progress_emit(Event::LoadProgress {
                    request,
                    fraction: f,
                });
            }
            // Returning false aborts the load.
            !load_cancel.is_cancelled(request)
        });
    let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
        if cancel.is_cancelled(request) {
            "loading was cancelled".to_string()
        } else {
            format!(
                "llama.cpp could not load {}: {e} (see the log file for details)",
                path.display()
            )
        }
    })?;
    let template = model
        .chat_template(None)
        .ok()
        .and_then(|t| t.to_string().ok())
        .map(|source| ChatTemplate::new(&source));
    let (backend_name, gpu_layers) = offload(backend, settings.gpu_layers, model.n_layer());
    let threads = effective_threads(settings);
    // No larger than trained (0: the GGUF does not say); llama.cpp then rounds
    // it up, which `new_context` below finds out.
    let trained = model.n_ctx_train();
    let n_ctx = if trained > 0 {
        settings.n_ctx.min(trained)
    } else {
        settings.n_ctx
    };
    let mut info = ModelInfo {
        path: path.to_owned(),
        name: card.name.clone(),
        arch: card.arch.clone(),
        n_params: model.n_params(),
        file_size: card.file_size,
        quant: card.quant.clone(),
        n_layer: model.n_layer(),
        n_ctx_train: model.n_ctx_train(),
        n_ctx,
        n_ctx_requested: settings.n_ctx,
        n_vocab: model.n_vocab() as u32,
        chat_mode: ChatMode::Plain,
        backend: backend_name,
        gpu_layers,
        threads,
    };
    let special = template_tokens(&model);
    let mut l = Loaded {
        model,
        info: info.clone(),
        settings: settings.clone(),
        template,
        special,
    };
    info.chat_mode = probe_chat_mode(&l);
    l.info = info;
    // Create a context once now: a size that does not fit fails here, at load,
    // and llama.cpp may round the size up, which the status bar should show.
    let n_ctx = {
        let mut ctx = new_context(&l)?;
        warm_up(&l, &mut ctx)?;
        ctx.n_ctx()
    };
    l.info.n_ctx = n_ctx;
    Ok(l)
}

/// Decodes one token (BOS, else token 0) in a fresh context: some bad
/// hyperparameters pass loading and trip an assert only at the first decode
/// (a negative `layer_norm_rms_epsilon`); this makes such a file fail (or, in
/// the engine process, abort) while loading, not at the first message.
/// Costs one single-token decode per load.
fn warm_up(l: &Loaded, ctx: &mut LlamaContext<'_>) -> Result<(), String> {
    let bos = l.model.vocab().bos();
    let token = if valid_token(&l.model, bos) {
        bos
    } else {
        LlamaToken(0)
    };
    let mut batch = LlamaBatch::new(1, 1);
    batch.add(token, 0, &[0], true).map_err(|e| e.to_string())?;
    ctx.decode(&mut batch)
        .map_err(|e| format!("llama.cpp could not run the model: {e}"))
}

fn validate_settings(s: &LoadSettings) -> Result<(), String> {
    if !(64..=1_048_576).contains(&s.n_ctx) {
        return Err(format!(
            "invalid context size {}: must be between 64 and 1048576",
            s.n_ctx
        ));
    }
    if !(1..=8192).contains(&s.n_batch) {
        return Err(format!(
            "invalid batch size {}: must be between 1 and 8192",
            s.n_batch
        ));
    }
    Ok(())
}

fn effective_threads(s: &LoadSettings) -> u32 {
    super::physical_cores_or(s.threads)
}

/// Which backend runs the model, and how many layers it holds.
fn offload(backend: &LlamaBackend, requested: u32, n_layer: u32) -> (String, u32) {
    if requested == 0 {
        return ("CPU".into(), 0);
    }
    if !backend.supports_gpu_offload() {
        return (
            "CPU (no GPU support in this build; --gpu-layers ignored)".into(),
            0,
        );
    }
    let gpu = llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .find(|d| d.backend != "CPU")
        .map_or_else(
            || "GPU".to_string(),
            |d| format!("{} ({})", d.backend, d.description),
        );
    // llama.cpp offloads the output layer too: n_layer + 1 is "everything".
    (gpu, requested.min(n_layer + 1))
}

/// Which backend would run a model of `n_layer` layers with `gpu_layers` offloaded.
pub fn describe_backend(gpu_layers: u32, n_layer: u32) -> String {
    let (name, layers) = offload(backend(), gpu_layers, n_layer);
    if layers > 0 {
        format!("{name}, {layers} of {} layers offloaded", n_layer + 1)
    } else {
        format!("{name} ({} threads)", physical_cores())
    }
}

fn probe_chat_mode(l: &Loaded) -> ChatMode {
    let probe = [super::ChatMessage::new(super::Role::User, "hi")];
    build_pieces(l, &probe, false).mode
}

/// Whether `t` is a real token of `model` (BOS/EOS are -1 for some vocabularies,
/// and llama.cpp aborts on an out-of-range id).
fn valid_token(model: &LlamaModel, t: LlamaToken) -> bool {
    (0..model.n_vocab()).contains(&t.0)
}

fn template_tokens(model: &LlamaModel) -> TemplateTokens {
    let piece = |t: LlamaToken| {
        if valid_token(model, t) {
            String::from_utf8_lossy(&model.vocab().token_to_piece(t, true, None)).into_owned()
        } else {
            String::new()
        }
    };
    TemplateTokens {
        bos: piece(model.vocab().bos()),
        eos: piece(model.vocab().eos()),
    }
}

/// A prompt built for a request: how, the pieces, and what the user should be
/// told about it (a template that refused the conversation, a fallback).
struct Prompt {
    mode: ChatMode,
    pieces: Vec<PromptPiece>,
    note: Option<String>,
}

/// The prompt for `messages`: the model's Jinja template (rendered again with
/// the system prompt folded into the first message when the template refuses
/// one), else llama.cpp's built-in one, else plain completion; every fallback
/// says why in [`Prompt::note`].
fn build_pieces(l: &Loaded, messages: &[super::ChatMessage], raw: bool) -> Prompt {
    let plain = |note| Prompt {
        mode: ChatMode::Plain,
        pieces: template::plain(messages),
        note,
    };
    if raw {
        return plain(None);
    }
    let Some(tmpl) = l.template.as_ref() else {
        return plain(None);
    };
    let contents = if messages.iter().all(|m| is_plain_text(&l.model, &m.content)) {
        Contents::Literal
    } else {
        Contents::Guarded
    };
    let err = match tmpl {
        Ok(t) => match t.render_or_fold(messages, &l.special, contents) {
            Ok(r) => {
                return Prompt {
                    mode: ChatMode::Template,
                    pieces: r.pieces,
                    note: r.note,
                };
            }
            Err(e) => e,
        },
        Err(e) => e.clone(),
    };
    tracing::warn!("jinja chat template failed, trying llama.cpp's: {err}");
    match builtin_template(l, messages) {
        Some(pieces) => Prompt {
            mode: ChatMode::Builtin,
            pieces,
            note: Some(format!(
                "{}: llama.cpp's built-in template for this model was used instead",
                err.summary()
            )),
        },
        None => plain(Some(format!(
            "{}: the conversation was given to the model as plain text",
            err.summary()
        ))),
    }
}

/// True when `text` holds no control-token text (`<|im_end|>` typed by a user):
/// then the whole prompt can be tokenized in one go, exactly as the model saw
/// it in training; otherwise contents are tokenized apart, as plain text.
fn is_plain_text(model: &LlamaModel, text: &str) -> bool {
    let vocab = model.vocab();
    vocab.tokenize(text.as_bytes(), false, true) == vocab.tokenize(text.as_bytes(), false, false)
}

fn builtin_template(l: &Loaded, messages: &[super::ChatMessage]) -> Option<Vec<PromptPiece>> {
    let tmpl = l.model.chat_template(None).ok()?;
    let chat: Vec<LlamaChatMessage> = template::sentinel_messages(messages)
        .into_iter()
        .map(|(role, content)| LlamaChatMessage::new(role, content))
        .collect::<Result<_, _>>()
        .ok()?;
    let rendered = l.model.apply_chat_template(&tmpl, &chat, true).ok()?;
    template::split_sentinels(&rendered, messages).ok()
}

fn tokenize(l: &Loaded, pieces: &[PromptPiece]) -> Vec<LlamaToken> {
    let vocab = l.model.vocab();
    let bos_text = &l.special.bos;
    let starts_with_bos = !bos_text.is_empty()
        && pieces
            .first()
            .is_some_and(|p| p.special && p.text.starts_with(bos_text.as_str()));
    let mut tokens = Vec::new();
    if vocab.should_add_bos() && !starts_with_bos && valid_token(&l.model, vocab.bos()) {
        tokens.push(vocab.bos());
    }
    // Neighbouring pieces of the same kind are one text: tokenizing them apart
    // would change merges at the seam.
    let mut i = 0;
    while i < pieces.len() {
        let special = pieces[i].special;
        let mut text = String::new();
        while i < pieces.len() && pieces[i].special == special {
            text.push_str(&pieces[i].text);
            i += 1;
        }
        tokens.extend(vocab.tokenize(text.as_bytes(), false, special));
    }
    tokens
}

fn new_context(l: &Loaded) -> Result<LlamaContext<'_>, String> {
    let threads = effective_threads(&l.settings) as i32;
    let n_ctx = l.info.n_ctx;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(l.settings.n_batch)
        .with_n_ubatch(l.settings.n_batch)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    l.model.new_context(backend(), params).map_err(|e| {
        format!("could not create a context of {n_ctx} tokens: {e} (try a smaller --ctx)")
    })
}

struct Generation<'a, 'm> {
    loaded: &'a Loaded,
    ctx: &'a mut LlamaContext<'m>,
    mirror: &'a mut KvMirror,
    request: RequestId,
    cancel: &'a Cancellations,
    emit: &'a Emit,
}

/// Builds the sampler chain for `p`; llama.cpp's order: penalties, truncation, temperature, draw.
fn sampler_chain(p: &super::SamplingParams, n_vocab: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    if p.repeat_penalty != 1.0 {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            p.repeat_last_n as i32,
            p.repeat_penalty,
            0.0,
            0.0,
        ));
    }
    if p.is_greedy() {
        chain.push(LlamaSampler::greedy());
    } else {
        if p.top_k > 0 {
            chain.push(LlamaSampler::top_k(p.top_k as i32));
        }
        if p.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(p.top_p, 1));
        }
        if p.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(p.min_p, 1));
        }
        chain.push(LlamaSampler::temp(p.temperature));
        chain.push(LlamaSampler::dist(p.seed));
    }
    LlamaSampler::chain_simple(chain)
}

/// Probability of `id` in the sampler's final candidates (0 when cut off).
/// The array is in vocabulary order when nothing truncated it.
fn p_in(arr: &[LlamaTokenData], id: i32) -> f32 {
    if let Some(d) = arr.get(id as usize)
        && d.id().0 == id
    {
        return d.p();
    }
    arr.iter().find(|d| d.id().0 == id).map_or(0.0, |d| d.p())
}

impl Generation<'_, '_> {
    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled(self.request)
    }

    /// Generates one reply. However it ends (end of generation, max tokens,
    /// cancel, context full, error), bytes of a character left unfinished are
    /// sent as U+FFFD in an [`Event::Tail`] before the final event, so the
    /// reply's text never silently loses bytes.
    fn generate(&mut self, req: &GenerateRequest) -> Result<Stats, String> {
        let mut utf8 = Utf8Assembler::default();
        let result = self.generate_into(req, &mut utf8);
        let text = utf8.finish();
        if !text.is_empty() {
            (self.emit)(Event::Tail {
                request: self.request,
                text,
            });
        }
        result
    }

    fn generate_into(
        &mut self,
        req: &GenerateRequest,
        utf8: &mut Utf8Assembler,
    ) -> Result<Stats, String> {
        req.sampling.validate().map_err(|e| e.to_string())?;
        if req.top_k_inspect > super::MAX_CANDIDATES {
            return Err(format!(
                "invalid number of candidates {}: must be at most {}",
                req.top_k_inspect,
                super::MAX_CANDIDATES
            ));
        }
        let t_start = Instant::now();
        let model = &self.loaded.model;
        let n_ctx = self.ctx.n_ctx() as usize;
        // Room for at least a short reply; drop the oldest turns until it fits.
        let reserve = (req.max_tokens as usize).clamp(1, (n_ctx / 4).max(1));
        let mut messages = req.messages.clone();
        let mut dropped = 0;
        let (prompt, tokens) = loop {
            let prompt = build_pieces(self.loaded, &messages, req.raw);
            let tokens = tokenize(self.loaded, &prompt.pieces);
            if tokens.len() + reserve <= n_ctx {
                break (prompt, tokens);
            }
            match drop_oldest_turn(&mut messages) {
                0 if tokens.len() < n_ctx => break (prompt, tokens),
                0 => {
                    return Err(format!(
                        "the prompt is {} tokens but the context holds {n_ctx}: shorten the message or start with a larger --ctx",
                        tokens.len()
                    ));
                }
                n => dropped += n,
            }
        };
        let Prompt { mode, note, .. } = prompt;
        tracing::debug!(?mode, n = tokens.len(), ids = ?tokens.iter().map(|t| t.0).collect::<Vec<_>>(), "prompt");
        if tokens.is_empty() {
            return Err("the prompt is empty: type a message first".into());
        }
        let ids: Vec<i32> = tokens.iter().map(|t| t.0).collect();
        let mut keep = self.mirror.reusable(&ids);
        if keep < self.mirror.tokens.len() {
            let removed = self
                .ctx
                .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
                .map_err(|e| e.to_string())?;
            if removed {
                self.mirror.truncate(keep);
            } else {
                // Recurrent models cannot drop a tail: start from an empty cache.
                self.ctx.clear_kv_cache();
                self.mirror.clear();
                keep = 0;
            }
        }
        (self.emit)(Event::Started {
            request: self.request,
            mode,
            n_prompt: tokens.len(),
            n_reused: keep,
            dropped_messages: dropped,
            note,
        });

        // Prefill in chunks of n_batch, checking for cancellation between chunks.
        let t_prefill = Instant::now();
        let n_batch = self.ctx.n_batch() as usize;
        let mut batch = LlamaBatch::new(n_batch.max(1), 1);
        let todo = &tokens[keep..];
        let mut done = 0;
        for chunk in todo.chunks(n_batch) {
            if self.cancelled() {
                return Ok(self.stats(
                    StopReason::Cancelled,
                    &tokens,
                    (keep, done),
                    0,
                    t_start,
                    None,
                    None,
                    dropped,
                    0.0,
                ));
            }
            batch.clear();
            for (i, t) in chunk.iter().enumerate() {
                let pos = (keep + done + i) as i32;
                let last = done + i + 1 == todo.len();
                batch.add(*t, pos, &[0], last).map_err(|e| e.to_string())?;
            }
            if let Err(e) = self.ctx.decode(&mut batch) {
                self.reset_cache();
                return Err(format!("prefill failed: {e}"));
            }
            done += chunk.len();
            self.mirror.tokens.extend(chunk.iter().map(|t| t.0));
            (self.emit)(Event::PrefillProgress {
                request: self.request,
                done,
                total: todo.len(),
            });
        }
        let prefill_s = t_prefill.elapsed().as_secs_f64();

        let n_vocab = model.n_vocab();
        let mut chain = sampler_chain(&req.sampling, n_vocab);
        if req.sampling.repeat_penalty != 1.0 {
            let window = tokens
                .len()
                .saturating_sub(req.sampling.repeat_last_n as usize);
            for t in &tokens[window..] {
                chain.accept(*t);
            }
        }
        let vocab = model.vocab();
        let inspect = req.top_k_inspect > 0;
        let mut topk = TopK::default();
        let mut buf: Vec<LlamaTokenData> = Vec::with_capacity(n_vocab as usize);
        let mut logits_idx = batch.n_tokens() - 1;
        let t_gen = Instant::now();
        let mut t_first: Option<f64> = None;
        let mut inspector_s = 0.0;
        let mut n_generated = 0usize;
        let stop = loop {
            if self.cancelled() {
                break StopReason::Cancelled;
            }
            if n_generated >= req.max_tokens as usize {
                break StopReason::MaxTokens;
            }
            let step = if inspect {
                let logits = self.ctx.get_logits_ith(logits_idx);
                let t0 = Instant::now();
                let summary = topk.summarize(logits, req.top_k_inspect);
                inspector_s += t0.elapsed().as_secs_f64();
                buf.clear();
                buf.extend(
                    logits
                        .iter()
                        .enumerate()
                        .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
                );
                let mut arr = LlamaTokenDataArray::new(std::mem::take(&mut buf), false);
                arr.apply_sampler(&mut chain);
                let token = arr
                    .selected_token()
                    .ok_or_else(|| "the sampler chose no token".to_string())?;
                let t1 = Instant::now();
                let greedy = req.sampling.is_greedy();
                let ps = |id: i32| {
                    if greedy {
                        if id == token.0 { 1.0 } else { 0.0 }
                    } else {
                        p_in(&arr.data, id)
                    }
                };
                let logit = logits[token.0 as usize];
                let top = summary
                    .top
                    .iter()
                    .map(|&(id, l)| Candidate {
                        id,
                        text: readable_piece(&vocab.token_to_piece(LlamaToken(id), true, None)),
                        p: summary.prob(l),
                        p_sampled: ps(id),
                        logit: l,
                    })
                    .collect();
                let p_sampled = ps(token.0);
                inspector_s += t1.elapsed().as_secs_f64();
                buf = arr.data;
                chain.accept(token);
                (
                    token,
                    summary.prob(logit),
                    p_sampled,
                    logit,
                    summary.entropy_bits,
                    summary.lse,
                    top,
                )
            } else {
                // Inspector off: llama.cpp's own sample (it accepts the token itself).
                let token = chain.sample(self.ctx, logits_idx);
                let nan = f32::NAN;
                (token, nan, nan, nan, nan, nan, Vec::new())
            };
            let (token, p, p_sampled, logit, entropy, lse, top) = step;
            let eog = vocab.is_eog(token);
            let bytes = vocab.token_to_piece(token, !eog && vocab.is_control(token), None);
            // A character left incomplete when the reply ends is flushed by `generate`.
            let text = if eog {
                String::new()
            } else {
                utf8.push(&bytes)
            };
            let piece_bytes = if eog {
                vocab.token_to_piece(token, true, None)
            } else {
                bytes.clone()
            };
            let step = TokenStep {
                index: n_generated,
                id: token.0,
                piece: readable_piece(&piece_bytes),
                bytes: if eog { piece_bytes } else { bytes },
                text,
                p,
                p_sampled,
                logit,
                entropy,
                lse,
                top,
            };
            n_generated += 1;
            if t_first.is_none() {
                t_first = Some(t_start.elapsed().as_secs_f64());
            }
            (self.emit)(Event::Token {
                request: self.request,
                step: Box::new(step),
            });
            if eog {
                break StopReason::Eog;
            }
            if self.mirror.tokens.len() >= n_ctx {
                break StopReason::ContextFull;
            }
            batch.clear();
            batch
                .add(token, self.mirror.tokens.len() as i32, &[0], true)
                .map_err(|e| e.to_string())?;
            if let Err(e) = self.ctx.decode(&mut batch) {
                self.reset_cache();
                return Err(format!("decode failed: {e}"));
            }
            self.mirror.tokens.push(token.0);
            logits_idx = 0;
        };
        let gen_s = t_gen.elapsed().as_secs_f64();
        Ok(self.stats(
            stop,
            &tokens,
            (keep, tokens.len() - keep),
            n_generated,
            t_start,
            t_first,
            Some((prefill_s, gen_s)),
            dropped,
            inspector_s,
        ))
    }

    /// After a failed decode the cache holds an unknown state: empty it.
    fn reset_cache(&mut self) {
        self.ctx.clear_kv_cache();
        self.mirror.clear();
    }

    #[allow(clippy::too_many_arguments)]
    fn stats(
        &self,
        stop: StopReason,
        tokens: &[LlamaToken],
        (keep, evaluated): (usize, usize),
        n_generated: usize,
        t_start: Instant,
        t_first: Option<f64>,
        times: Option<(f64, f64)>,
        dropped: usize,
        inspector_s: f64,
    ) -> Stats {
        let (prefill_s, gen_s) = times.unwrap_or((0.0, 0.0));
        let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        Stats {
            stop,
            n_prompt: tokens.len(),
            n_prompt_evaluated: evaluated,
            n_prompt_reused: keep,
            n_generated,
            ttft_ms: t_first.unwrap_or_else(|| t_start.elapsed().as_secs_f64()) * 1000.0,
            prompt_tps: rate(evaluated, prefill_s),
            gen_tps: rate(n_generated, gen_s),
            dropped_messages: dropped,
            ctx_used: self.mirror.tokens.len(),
            ctx_size: self.ctx.n_ctx() as usize,
            ctx_requested: self.loaded.info.n_ctx_requested as usize,
            inspector_us_per_token: if n_generated > 0 {
                inspector_s * 1e6 / n_generated as f64
            } else {
                0.0
            },
        }
    }
}
