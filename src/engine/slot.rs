//! A model slot: one loaded model with its context (KV cache) and a mirror of
//! the tokens in that cache, plus everything learnt at load (info, vocabulary,
//! chat template; the info's chat mode is the prompt builder's to fill in).
//! Loading checks the file ourselves first and warms the model up with one
//! decode, so that a file llama.cpp chokes on fails at load.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use super::api::{ChatMode, EngineError, LoadSettings, ModelInfo, ModelRef, TokenId, Vocab, Words};
use super::session::KvMirror;
use super::template::{ChatTemplate, TemplateError, TemplateTokens};
use crate::catalog;

/// llama.cpp's backend, initialised once per process (engines may come and go).
pub(super) fn backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        // Before init, so that nothing of llama.cpp reaches stderr.
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().expect("llama.cpp backend initialises once")
    })
}

/// `threads`, or the number of physical cores when it is 0.
pub fn physical_cores_or(threads: u32) -> u32 {
    if threads == 0 {
        physical_cores()
    } else {
        threads
    }
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

self_cell::self_cell!(
    /// A model and the context that borrows it, kept together (dropped context first).
    struct ModelCell {
        owner: LlamaModel,
        #[covariant]
        dependent: LlamaContext,
    }
);

/// One loaded model, ready to generate.
pub(super) struct Slot {
    cell: ModelCell,
    pub info: ModelInfo,
    pub vocab: Arc<Vocab>,
    /// Tokens in the context's KV cache, position by position.
    pub mirror: KvMirror,
    /// The GGUF's Jinja chat template, parsed; `Err` when it does not parse.
    pub template: Option<Result<ChatTemplate, TemplateError>>,
    pub special: TemplateTokens,
    /// The layer lens of this model, made at its first request (a second
    /// context with a KV cache of its own, [`super::lens`]).
    pub lens: Option<super::lens::Lens>,
}

impl Slot {
    pub fn model(&self) -> &LlamaModel {
        self.cell.borrow_owner()
    }

    /// Runs `f` with the model, its context and the KV mirror.
    pub fn with_context<R>(
        &mut self,
        f: impl for<'m> FnOnce(&'m LlamaModel, &mut LlamaContext<'m>, &mut KvMirror) -> R,
    ) -> R {
        let mirror = &mut self.mirror;
        self.cell
            .with_dependent_mut(|model, ctx| f(model, ctx, mirror))
    }
}

/// Loads `path` with `settings`. `progress(fraction)` is called as llama.cpp
/// reads the tensors; returning false cancels the load (then the error is
/// [`EngineError::InvalidRequest`] is never used: the caller checks its own flag).
/// The model card's chat mode and default system prompt are the prompt
/// builder's to fill in ([`super::prompt::describe_chat`]).
pub(super) fn load(
    path: &Path,
    settings: &LoadSettings,
    progress: impl FnMut(f32) -> bool + 'static,
) -> Result<Slot, EngineError> {
    // Check the file ourselves first: a corrupt GGUF makes llama.cpp abort the process.
    let (header, card) =
        catalog::read_model(path).map_err(|e| EngineError::BadFile(e.to_string()))?;
    validate_settings(settings)?;
    check_memory(path, &header, settings)?;
    // Before llama.cpp initialises: a build for a newer CPU would stop there
    // with an illegal instruction.
    if let Some(why) = super::kernels::cpu_mismatch() {
        return Err(EngineError::WrongCpu(why));
    }
    let backend = backend();
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(settings.gpu_layers)
        .with_progress_callback(progress);
    super::llama_log::clear();
    let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
        EngineError::LoadFailed {
            path: path.to_owned(),
            // llama.cpp's own reason, where it logged one.
            reason: super::llama_log::take().unwrap_or_else(|| e.to_string()),
        }
    })?;
    let template = model
        .chat_template(None)
        .ok()
        .and_then(|t| t.to_string().ok())
        .map(|source| ChatTemplate::new(&source));
    let (backend_name, gpu_layers) = offload(backend, settings.gpu_layers, model.n_layer());
    let threads = physical_cores_or(settings.threads);
    // No larger than trained (0: the GGUF does not say); llama.cpp then rounds
    // it up, which the context tells below.
    let trained = model.n_ctx_train();
    let n_ctx = if trained > 0 {
        settings.n_ctx.min(trained)
    } else {
        settings.n_ctx
    };
    let info = ModelInfo {
        model: ModelRef::Local(path.to_owned()),
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
        default_system: None,
        backend: backend_name,
        cpu_kernels: super::kernels::cpu_kernels(),
        gpu_layers,
        threads,
        former_name: Some(card.former_name.clone()).filter(|f| *f != card.name),
    };
    let special = template_tokens(&model);
    let t_vocab = std::time::Instant::now();
    let vocab = Arc::new(vocab_of(&model));
    tracing::debug!(
        n = vocab.len(),
        ms = t_vocab.elapsed().as_secs_f64() * 1e3,
        "vocabulary read"
    );
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(settings.n_batch)
        .with_n_ubatch(settings.n_batch)
        .with_n_threads(threads as i32)
        .with_n_threads_batch(threads as i32)
        // Sliding-window layers (Gemma 3) keep every position, not only the
        // window's (llama.cpp's default, said here because branching needs
        // it): a branch rewinds into positions a window-sized cache has
        // overwritten, and without them it would attend to less than the
        // original did.
        .with_swa_full(true)
        // More sequences on one shared cache: the prompt's surprise is
        // scored after the reply by sharing its cached positions into a
        // second one (`prompt_scores`), and rollouts share the context into
        // one each (`rollouts`), with no copy and no second cache of n_ctx:
        // a unified cache is n_ctx cells whatever n_seq_max (llama.cpp sizes
        // it by n_ctx_seq = n_ctx when unified). Measured from llama.cpp's
        // load log: SmolLM2's KV cache is 90.00 MiB at 4096 cells with 1, 2
        // or 9 sequences; only the output buffer, one row of logits per
        // sequence reserved, grows (Gemma 3: 2.00 to 9.00 MiB).
        .with_n_seq_max(1 + super::api::MAX_ROLLOUTS as u32)
        .with_kv_unified(true);
    super::llama_log::clear();
    let cell = ModelCell::try_new(model, |model| {
        model
            .new_context(backend, params)
            .map_err(|e| EngineError::Context {
                n_ctx,
                reason: super::llama_log::take().unwrap_or_else(|| e.to_string()),
            })
    })?;
    let mut slot = Slot {
        cell,
        info,
        vocab,
        mirror: KvMirror::default(),
        template,
        special,
        lens: None,
    };
    // llama.cpp may round the size up: show the real one.
    slot.info.n_ctx = slot.with_context(|_, ctx, _| ctx.n_ctx());
    warm_up(&mut slot)?;
    Ok(slot)
}

/// Refuses a model that would not fit in the memory available now, before
/// llama.cpp maps it (the model in use stays loaded meanwhile, so its memory
/// is rightly not available). Skipped when layers go to a GPU (its memory is
/// not counted here) or when the available memory cannot be read.
fn check_memory(
    path: &Path,
    header: &crate::gguf::GgufHeader,
    settings: &LoadSettings,
) -> Result<(), EngineError> {
    let gpu_build = cfg!(any(feature = "cuda", feature = "vulkan", feature = "metal"));
    if (gpu_build && settings.gpu_layers > 0) || super::memory::skipped() {
        return Ok(());
    }
    let Some(available) = super::memory::available() else {
        return Ok(());
    };
    let arch = header.get_str("general.architecture").unwrap_or("");
    let trained = header
        .get_u64(&format!("{arch}.context_length"))
        .and_then(|t| u32::try_from(t).ok())
        .filter(|&t| t > 0);
    let n_ctx = trained.map_or(settings.n_ctx, |t| settings.n_ctx.min(t));
    let need = super::memory::estimate(header, n_ctx);
    tracing::debug!(?need, available, "memory check before loading");
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    match super::memory::shortfall(&file, &need, available) {
        Some(text) => Err(EngineError::NotEnoughMemory(text)),
        None => Ok(()),
    }
}

/// One decode of one token, then an empty cache: some files pass loading and
/// trip llama.cpp only when first evaluated (a negative RMS epsilon); they
/// should fail here, as a load, not in the middle of someone's chat.
fn warm_up(slot: &mut Slot) -> Result<(), EngineError> {
    slot.with_context(|model, ctx, mirror| {
        let vocab = model.vocab();
        let token = [vocab.bos(), vocab.eos(), LlamaToken(0)]
            .into_iter()
            .find(|t| valid_token(model, *t))
            .unwrap_or(LlamaToken(0));
        let mut batch = LlamaBatch::new(1, 1);
        let fail = |e: String| EngineError::Decode {
            stage: "the warm-up decode".into(),
            reason: e,
        };
        batch
            .add(token, 0, &[0], true)
            .map_err(|e| fail(e.to_string()))?;
        ctx.decode(&mut batch).map_err(|e| fail(e.to_string()))?;
        ctx.clear_kv_cache();
        mirror.clear();
        Ok(())
    })
}

fn validate_settings(s: &LoadSettings) -> Result<(), EngineError> {
    if !(64..=1_048_576).contains(&s.n_ctx) {
        return Err(EngineError::Refused(Words::tr_args(
            "engine-bad-ctx",
            "invalid context size { $n }: must be between 64 and 1048576",
            &[("n", &s.n_ctx)],
        )));
    }
    if !(1..=8192).contains(&s.n_batch) {
        return Err(EngineError::Refused(Words::tr_args(
            "engine-bad-batch",
            "invalid batch size { $n }: must be between 1 and 8192",
            &[("n", &s.n_batch)],
        )));
    }
    Ok(())
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
    use crate::i18n::tr_args;
    if let Some(why) = super::kernels::cpu_mismatch() {
        return tr_args("backend-none", "none: { $why }", &[("why", &why)]);
    }
    let (name, layers) = offload(backend(), gpu_layers, n_layer);
    if layers > 0 {
        tr_args(
            "backend-offloaded",
            "{ $name }, { $layers } of { $total } layers offloaded",
            &[
                ("name", &name),
                ("layers", &layers),
                ("total", &(n_layer + 1)),
            ],
        )
    } else {
        tr_args(
            "backend-cpu",
            "{ $name } ({ $threads } threads, { $kernels } kernels)",
            &[
                ("name", &name),
                ("threads", &physical_cores()),
                ("kernels", &super::kernels::cpu_kernels()),
            ],
        )
    }
}

/// Whether `t` is a real token of `model` (BOS/EOS are -1 for some vocabularies,
/// and llama.cpp aborts on an out-of-range id).
pub(super) fn valid_token(model: &LlamaModel, t: LlamaToken) -> bool {
    (0..model.n_vocab()).contains(&t.0)
}

/// Whether `id` is in the vocabulary of `model`.
pub(super) fn valid_id(model: &LlamaModel, id: TokenId) -> bool {
    valid_token(model, LlamaToken(id))
}

/// Refuses the first of `ids` outside the vocabulary of `model`
/// ([`EngineError::bad_token_id`]).
pub(super) fn check_ids<'a>(
    model: &LlamaModel,
    ids: impl IntoIterator<Item = &'a TokenId>,
) -> Result<(), EngineError> {
    match ids.into_iter().find(|id| !valid_id(model, **id)) {
        Some(&id) => Err(EngineError::bad_token_id(
            id,
            usize::try_from(model.n_vocab()).unwrap_or(0),
        )),
        None => Ok(()),
    }
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

/// Every token's bytes (control tokens as their text) and the EOG ids.
fn vocab_of(model: &LlamaModel) -> Vocab {
    let v = model.vocab();
    let n = model.n_vocab().max(0);
    let mut pieces = Vec::with_capacity(n as usize);
    let mut eog = Vec::new();
    for id in 0..n {
        let t = LlamaToken(id);
        pieces.push(v.token_to_piece(t, true, None));
        if v.is_eog(t) {
            eog.push(id);
        }
    }
    Vocab::new(pieces, eog)
}
