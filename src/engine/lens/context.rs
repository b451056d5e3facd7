//! The lens context: a second llama.cpp context on the same model file,
//! made through `llama-cpp-sys-2` directly, whose graph evaluation callback
//! (`cb_eval`) copies the tensors the lens reads out of the graph.
//!
//! Why contexts of their own, on a model handle of its own:
//! - llama-cpp-2 0.1.160 no longer exposes `cb_eval` (its context params
//!   and model pointer are crate-private), and a patched copy of that crate
//!   would have to follow every upgrade. llama.h is the stable surface.
//! - The rows must be the model's own numbers: the rows pass runs with the
//!   model context's settings (flash attention as llama.cpp picks it,
//!   repacked weights) and splits a fresh sequence into batches as a
//!   prefill does, so the last layer's row is bit-identical to a
//!   generation's distribution (tests/lens.rs). A context without flash
//!   attention differs by up to 3% in p on Gemma 3 (CPU flash attention
//!   accumulates in f16).
//! - The attention probabilities (`kq_soft_max-<l>`) exist only without
//!   flash attention, which never forms them: a second context with it off,
//!   made at the first request for attention, on the same model handle.
//! - Each keeps its own KV cache (the sequence last lensed), so lensing
//!   another position of the same text re-evaluates one token, and the
//!   model's cache (a paused reply, a branch) is never touched.
//!
//! The model is loaded a second time with `use_mmap` (llama.cpp's default):
//! the weights stay in the page cache the first handle already maps, so the
//! second handle costs its tensor metadata and the weights llama.cpp
//! repacks for this CPU (a copy of their own, as in the first handle), not
//! the whole file.

use std::ffi::{CStr, CString, c_void};
use std::path::Path;
use std::ptr::NonNull;

use llama_cpp_sys_2 as sys;

use super::super::api::TokenId;

/// Positions per batch of the lens context's prefill; also its
/// micro-batch. Small because without flash attention the compute buffer
/// holds `n_ctx × n_ubatch × n_head` attention scores (4,096 × 128 × 9
/// heads × 4 bytes = 18 MiB on SmolLM2; 512 would be 75 MiB).
const N_BATCH: u32 = 128;

/// What the evaluation callback copies, and where. Boxed: llama.cpp keeps
/// a pointer to it as the callback's user data.
#[derive(Default)]
struct Capture {
    /// Copy anything at all (off during a prefill).
    armed: bool,
    attention: bool,
    /// Positions attended to, `0..=position`: the attention row's length.
    n_attend: usize,
    /// Per layer, the residual stream's row of the last token (n_embd).
    residual: Vec<Option<Vec<f32>>>,
    /// Per layer, per head, the attention row of the last token (n_attend).
    attention_rows: Vec<Option<Vec<Vec<f32>>>>,
    /// The first thing that did not look as expected.
    error: Option<String>,
}

/// `name-<layer>` → layer, for the two names the lens reads.
fn parse_name(name: &str) -> Option<(bool, usize)> {
    let (kind, layer) = name.rsplit_once('-')?;
    let layer = layer.parse().ok()?;
    match kind {
        "l_out" => Some((false, layer)),
        "kq_soft_max" => Some((true, layer)),
        _ => None,
    }
}

/// llama.cpp's graph callback: asked first whether a tensor is wanted
/// (`ask`), then called with it computed. Returning false in the second
/// phase would stop the evaluation, so it returns true there.
unsafe extern "C" fn on_tensor(t: *mut sys::ggml_tensor, ask: bool, user: *mut c_void) -> bool {
    // SAFETY: `user` is the boxed `Capture` of the context being evaluated,
    // alive and not otherwise borrowed during `llama_decode`; `t` is a
    // valid tensor for the call.
    let (cap, t) = unsafe { (&mut *(user as *mut Capture), &*t) };
    if !cap.armed {
        return !ask;
    }
    // SAFETY: ggml tensor names are NUL-terminated within their 64 bytes.
    let name = unsafe { CStr::from_ptr(t.name.as_ptr()) }.to_string_lossy();
    let Some((is_attention, layer)) = parse_name(&name) else {
        return !ask;
    };
    if layer >= cap.residual.len() || (is_attention && !cap.attention) {
        return !ask;
    }
    if ask {
        return true;
    }
    if let Err(e) = copy(cap, t, is_attention, layer) {
        cap.error.get_or_insert(format!("{name}: {e}"));
    }
    true
}

/// Copies the last token's row of `t` (the lensed position is the last
/// token of its batch, and the last layer keeps only output rows).
fn copy(
    cap: &mut Capture,
    t: &sys::ggml_tensor,
    attention: bool,
    layer: usize,
) -> Result<(), String> {
    if t.type_ != sys::GGML_TYPE_F32 || t.nb[0] != 4 {
        return Err(format!(
            "type {} with stride {}, not contiguous f32 rows",
            t.type_, t.nb[0]
        ));
    }
    let last = usize::try_from(t.ne[1] - 1).map_err(|_| "no rows")?;
    let get = |offset: usize, n: usize| {
        let mut row = vec![0f32; n];
        // SAFETY: `offset + 4n` is inside the tensor (checked by the
        // callers against `ne`/`nb`); `row` holds n floats.
        unsafe {
            sys::ggml_backend_tensor_get(
                t as *const _ as *mut _,
                row.as_mut_ptr().cast(),
                offset,
                4 * n,
            )
        };
        row
    };
    if attention {
        // [n_kv, n_tokens, n_head, n_stream]: cells in position order (the
        // lens cache only ever grows from its end), so cell i is position i.
        let n_kv = t.ne[0] as usize;
        if n_kv < cap.n_attend || t.ne[3] != 1 {
            return Err(format!(
                "shape {:?}, expected ≥ {} cells and one stream",
                t.ne, cap.n_attend
            ));
        }
        let heads = (0..t.ne[2] as usize)
            .map(|h| get(last * t.nb[1] + h * t.nb[2], cap.n_attend))
            .collect();
        cap.attention_rows[layer] = Some(heads);
    } else {
        let n_embd = t.ne[0] as usize;
        cap.residual[layer] = Some(get(last * t.nb[1], n_embd));
    }
    Ok(())
}

/// What one lensed evaluation captured.
pub(super) struct Captured {
    /// Per layer, the residual stream after it at the lensed position.
    pub residual: Vec<Vec<f32>>,
    /// Per layer, per head, attention weights over `0..=position` (empty
    /// unless asked for).
    pub attention: Vec<Vec<Vec<f32>>>,
    /// The model's own logits at the position (n_vocab).
    pub logits: Vec<f32>,
    pub n_evaluated: usize,
    pub n_reused: usize,
}

/// The lens's model handle and its contexts (see the module's documentation).
pub(super) struct LensContext {
    /// Flash attention as the model's own context has it: the rows.
    rows: Pass,
    /// Flash attention off, made at the first request for attention.
    attention: Option<Pass>,
    n_ctx_asked: u32,
    threads: i32,
    pub n_layer: usize,
    pub n_vocab: usize,
    pub n_ctx: usize,
    /// Last: dropped after the contexts.
    model: ModelHandle,
}

/// One llama.cpp context of the lens: its KV cache (the tokens in it) and
/// what its graph callback copies.
struct Pass {
    ctx: NonNull<sys::llama_context>,
    capture: Box<Capture>,
    /// Token ids in the KV cache, position by position.
    cached: Vec<TokenId>,
}

impl LensContext {
    /// Loads `path` again (see the module's documentation) with a context
    /// of `n_ctx` tokens on `threads` threads.
    ///
    /// # Errors
    /// llama.cpp's failure to load the model or make the context, in words.
    pub fn new(path: &Path, n_ctx: u32, threads: i32) -> Result<LensContext, String> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| "the model path has a NUL byte".to_string())?;
        // SAFETY: plain llama.h calls with default params; the model is
        // checked for null and freed in `Drop` (or below).
        unsafe {
            let mut mp = sys::llama_model_default_params();
            mp.n_gpu_layers = 0;
            let model = NonNull::new(sys::llama_model_load_from_file(c_path.as_ptr(), mp))
                .ok_or_else(|| {
                    format!("llama.cpp could not load {} for the lens", path.display())
                })?;
            let n_layer = sys::llama_model_n_layer(model.as_ptr()).max(0) as usize;
            let vocab = sys::llama_model_get_vocab(model.as_ptr());
            let n_vocab = sys::llama_vocab_n_tokens(vocab).max(0) as usize;
            let rows = match Pass::new(model, n_ctx, threads, n_layer, true) {
                Ok(p) => p,
                Err(e) => {
                    sys::llama_model_free(model.as_ptr());
                    return Err(e);
                }
            };
            let n_ctx_made = sys::llama_n_ctx(rows.ctx.as_ptr()) as usize;
            Ok(LensContext {
                model: ModelHandle(model),
                rows,
                attention: None,
                n_ctx_asked: n_ctx,
                threads,
                n_layer,
                n_vocab,
                n_ctx: n_ctx_made,
            })
        }
    }

    /// Evaluates `tokens[..=position]`, capturing the residual stream after
    /// every layer at `position` and the model's logits there (and, when
    /// `attention`, the attention rows from it, in the second pass without
    /// flash attention). What of `tokens[..position]` is already in a
    /// pass's KV cache is kept; positions from the first difference (at
    /// most `position`) are removed and evaluated again, so a position
    /// inside a sequence lensed before costs one token.
    ///
    /// # Errors
    /// A failed decode, or a graph that did not look as the lens expects.
    pub fn evaluate(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        attention: bool,
    ) -> Result<Captured, String> {
        let (n_reused, residual) = self.rows.evaluate(tokens, position, false)?;
        let attention = if attention {
            if self.attention.is_none() {
                let pass = Pass::new(
                    self.model.0,
                    self.n_ctx_asked,
                    self.threads,
                    self.n_layer,
                    false,
                )?;
                self.attention = Some(pass);
            }
            let pass = self.attention.as_mut().expect("made just above");
            pass.evaluate(tokens, position, true)?.1
        } else {
            Vec::new()
        };
        // SAFETY: the rows pass's last decode asked for the logits of the
        // lensed position (its batch's last output).
        let logits = unsafe {
            let p = sys::llama_get_logits_ith(self.rows.ctx.as_ptr(), -1);
            if p.is_null() {
                return Err("llama.cpp gave no logits for the lensed position".into());
            }
            std::slice::from_raw_parts(p, self.n_vocab).to_vec()
        };
        Ok(Captured {
            residual,
            attention,
            logits,
            n_evaluated: position + 1 - n_reused,
            n_reused,
        })
    }
}

impl Pass {
    /// A context on `model`; `flash_attention`: llama.cpp's choice (as the
    /// model's own context), else off (attention probabilities formed).
    fn new(
        model: NonNull<sys::llama_model>,
        n_ctx: u32,
        threads: i32,
        n_layer: usize,
        flash_attention: bool,
    ) -> Result<Pass, String> {
        let mut capture = Box::new(Capture {
            residual: vec![None; n_layer],
            attention_rows: vec![None; n_layer],
            ..Capture::default()
        });
        // SAFETY: plain llama.h calls; the context is checked for null and
        // freed in `Drop`; the capture is boxed, so its address (the
        // callback's user data) is stable for the context's life.
        unsafe {
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = n_ctx;
            cp.n_batch = N_BATCH;
            cp.n_ubatch = N_BATCH;
            cp.n_seq_max = 1;
            // One thread for a one-token evaluation (a position inside a
            // cached sequence), all of them for a batch. The graph callback
            // splits an evaluation into a computation per tensor read (two
            // per layer), each with its own thread start and a barrier per
            // node; on 2 busy cores, 2 threads took 3 to 5 s per lensed
            // token on SmolLM2 and 1 thread 0.1 s (2026-12-06). Results do
            // not depend on the thread count (each thread owns its rows).
            cp.n_threads = 1;
            cp.n_threads_batch = threads;
            cp.flash_attn_type = if flash_attention {
                sys::LLAMA_FLASH_ATTN_TYPE_AUTO
            } else {
                sys::LLAMA_FLASH_ATTN_TYPE_DISABLED
            };
            // Every position of a sliding-window layer kept, so that
            // removing the positions after a lensed one never needs ones
            // the window dropped (the model's own context does the same).
            cp.swa_full = true;
            cp.no_perf = true;
            cp.cb_eval = Some(on_tensor);
            cp.cb_eval_user_data = (&mut *capture as *mut Capture).cast();
            let ctx =
                NonNull::new(sys::llama_init_from_model(model.as_ptr(), cp)).ok_or_else(|| {
                    format!("llama.cpp could not make the lens context ({n_ctx} tokens)")
                })?;
            Ok(Pass {
                ctx,
                capture,
                cached: Vec::new(),
            })
        }
    }

    /// Evaluates `tokens[..=position]` reusing this pass's cache; returns
    /// the positions reused and, per layer, the residual row (`attention`
    /// false) or the attention rows per head (`attention` true).
    fn evaluate<T: Clone>(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        attention: bool,
    ) -> Result<(usize, Vec<T>), String>
    where
        Capture: Rows<T>,
    {
        let common = self
            .cached
            .iter()
            .zip(&tokens[..position])
            .take_while(|(a, b)| a == b)
            .count();
        // SAFETY: the context is alive; sequence 0 is the only one.
        let removed = unsafe {
            sys::llama_memory_seq_rm(
                sys::llama_get_memory(self.ctx.as_ptr()),
                0,
                common as i32,
                -1,
            )
        };
        let common = if removed {
            common
        } else {
            // SAFETY: as above; clearing always succeeds.
            unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ctx.as_ptr()), true) };
            0
        };
        self.cached.truncate(common);
        // The batches split as a generation's prefill does (from the first
        // position not cached, the lensed one in the last batch), so that a
        // fresh lens of a prompt's last position is computed exactly as the
        // model's own prefill computed it.
        let chunks: Vec<&[TokenId]> = tokens[common..=position].chunks(N_BATCH as usize).collect();
        let (last_chunk, before) = chunks.split_last().expect("at least the lensed token");
        self.capture.armed = false;
        for chunk in before {
            let start = self.cached.len();
            self.decode(chunk, start, false)?;
            self.cached.extend_from_slice(chunk);
        }
        let cap = &mut self.capture;
        cap.armed = true;
        cap.attention = attention;
        cap.n_attend = position + 1;
        cap.error = None;
        cap.residual.iter_mut().for_each(|r| *r = None);
        cap.attention_rows.iter_mut().for_each(|r| *r = None);
        let start = self.cached.len();
        let result = self.decode(last_chunk, start, true);
        self.capture.armed = false;
        result?;
        self.cached.extend_from_slice(last_chunk);
        if let Some(e) = self.capture.error.take() {
            return Err(format!("the lens could not read llama.cpp's graph: {e}"));
        }
        Ok((common, self.capture.take_rows()?))
    }

    /// One `llama_decode` of `tokens` at positions `start..`, with the
    /// logits of the last one when `output`.
    fn decode(&mut self, tokens: &[TokenId], start: usize, output: bool) -> Result<(), String> {
        // SAFETY: a batch of `tokens.len()` slots, filled within bounds,
        // freed after the decode; the context is alive.
        unsafe {
            let n = tokens.len();
            let batch = sys::llama_batch_init(n as i32, 0, 1);
            for (i, &id) in tokens.iter().enumerate() {
                *batch.token.add(i) = id;
                *batch.pos.add(i) = (start + i) as i32;
                *batch.n_seq_id.add(i) = 1;
                **batch.seq_id.add(i) = 0;
                *batch.logits.add(i) = i8::from(output && i + 1 == n);
            }
            let mut b = batch;
            b.n_tokens = n as i32;
            let rc = sys::llama_decode(self.ctx.as_ptr(), b);
            sys::llama_batch_free(batch);
            if rc != 0 {
                return Err(format!("llama.cpp's decode failed (code {rc})"));
            }
        }
        Ok(())
    }
}

/// The rows a pass captured, taken out per layer (each layer must have one).
trait Rows<T> {
    fn take_rows(&mut self) -> Result<Vec<T>, String>;
}

impl Rows<Vec<f32>> for Capture {
    fn take_rows(&mut self) -> Result<Vec<Vec<f32>>, String> {
        take_layers(&mut self.residual, "l_out")
    }
}

impl Rows<Vec<Vec<f32>>> for Capture {
    fn take_rows(&mut self) -> Result<Vec<Vec<Vec<f32>>>, String> {
        take_layers(&mut self.attention_rows, "kq_soft_max")
    }
}

/// Every layer's capture, leaving `None`s for the next evaluation.
fn take_layers<T>(slots: &mut [Option<T>], name: &str) -> Result<Vec<T>, String> {
    slots
        .iter_mut()
        .enumerate()
        .map(|(l, r)| {
            r.take()
                .ok_or(format!("llama.cpp's graph had no {name}-{l}"))
        })
        .collect()
}

impl Drop for Pass {
    fn drop(&mut self) {
        // SAFETY: made in `Pass::new`, freed once, before the model
        // (`LensContext::model` is its last field).
        unsafe { sys::llama_free(self.ctx.as_ptr()) };
    }
}

/// The lens's own model handle, freed after its contexts (the last field
/// of [`LensContext`]: fields drop in order).
struct ModelHandle(NonNull<sys::llama_model>);

impl Drop for ModelHandle {
    fn drop(&mut self) {
        // SAFETY: loaded in `LensContext::new`, freed once, after the
        // contexts made on it (dropped before this field).
        unsafe { sys::llama_model_free(self.0.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::parse_name;

    #[test]
    fn names_of_the_graph_tensors_read() {
        assert_eq!(parse_name("l_out-0"), Some((false, 0)));
        assert_eq!(parse_name("kq_soft_max-17"), Some((true, 17)));
        assert_eq!(parse_name("kq-3"), None);
        assert_eq!(parse_name("result_norm"), None);
        assert_eq!(parse_name("l_out-x"), None);
    }
}
