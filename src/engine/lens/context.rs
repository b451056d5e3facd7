//! The lens context: a second llama.cpp context on the same model file,
//! made through `llama-cpp-sys-2` directly, whose graph evaluation callback
//! (`cb_eval`) copies the tensors the lens reads out of the graph.
//!
//! Why a context of its own, on a model handle of its own:
//! - llama-cpp-2 0.1.160 no longer exposes `cb_eval` (its context params
//!   and model pointer are crate-private), and a patched copy of that crate
//!   would have to follow every upgrade. llama.h is the stable surface.
//! - The lens needs the attention probabilities (`kq_soft_max-<l>`), which
//!   flash attention never forms: this context runs with flash attention
//!   off, the model's own context keeps it (faster, and a reply's numbers
//!   stay those of a normal run).
//! - It keeps its own KV cache (the sequence last lensed), so lensing
//!   another position of the same text re-evaluates one token, and the
//!   model's cache (a paused reply, a branch) is never touched.
//!
//! The model is loaded a second time with `use_mmap` (llama.cpp's default):
//! the weights stay in the page cache the first handle already maps, so the
//! second handle costs its tensor metadata, not the weights. Weight
//! repacking (`use_extra_bufts`) is off for it, since repacking would copy
//! the repackable weights into memory of its own.

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

/// The lens's model handle and context (see the module's documentation).
pub(super) struct LensContext {
    model: NonNull<sys::llama_model>,
    ctx: NonNull<sys::llama_context>,
    capture: Box<Capture>,
    /// Token ids in the KV cache, position by position.
    cached: Vec<TokenId>,
    pub n_layer: usize,
    pub n_vocab: usize,
    pub n_ctx: usize,
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
        // SAFETY: plain llama.h calls with default params; every pointer
        // returned is checked for null and freed in `Drop` (or below).
        unsafe {
            let mut mp = sys::llama_model_default_params();
            mp.use_extra_bufts = false;
            mp.n_gpu_layers = 0;
            let model = NonNull::new(sys::llama_model_load_from_file(c_path.as_ptr(), mp))
                .ok_or_else(|| {
                    format!("llama.cpp could not load {} for the lens", path.display())
                })?;
            let n_layer = sys::llama_model_n_layer(model.as_ptr()).max(0) as usize;
            let vocab = sys::llama_model_get_vocab(model.as_ptr());
            let n_vocab = sys::llama_vocab_n_tokens(vocab).max(0) as usize;
            let mut capture = Box::new(Capture {
                residual: vec![None; n_layer],
                attention_rows: vec![None; n_layer],
                ..Capture::default()
            });
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = n_ctx;
            cp.n_batch = N_BATCH;
            cp.n_ubatch = N_BATCH;
            cp.n_seq_max = 1;
            cp.n_threads = threads;
            cp.n_threads_batch = threads;
            cp.flash_attn_type = sys::LLAMA_FLASH_ATTN_TYPE_DISABLED;
            // Every position of a sliding-window layer kept, so that
            // removing the positions after a lensed one never needs ones
            // the window dropped (and the model context does the same).
            cp.swa_full = true;
            cp.no_perf = true;
            cp.cb_eval = Some(on_tensor);
            cp.cb_eval_user_data = (&mut *capture as *mut Capture).cast();
            let Some(ctx) = NonNull::new(sys::llama_init_from_model(model.as_ptr(), cp)) else {
                sys::llama_model_free(model.as_ptr());
                return Err(format!(
                    "llama.cpp could not make the lens context ({n_ctx} tokens)"
                ));
            };
            let n_ctx = sys::llama_n_ctx(ctx.as_ptr()) as usize;
            Ok(LensContext {
                model,
                ctx,
                capture,
                cached: Vec::new(),
                n_layer,
                n_vocab,
                n_ctx,
            })
        }
    }

    /// Evaluates `tokens[..=position]`, capturing the residual stream after
    /// every layer at `position` (and the attention rows from it when
    /// `attention`). What of `tokens[..position]` is already in this
    /// context's KV cache is kept; positions from the first difference (at
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
        self.capture.armed = false;
        for chunk in tokens[common..position].chunks(N_BATCH as usize) {
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
        let result = self.decode(&tokens[position..=position], position, true);
        self.capture.armed = false;
        result?;
        self.cached.push(tokens[position]);
        if let Some(e) = self.capture.error.take() {
            return Err(format!("the lens could not read llama.cpp's graph: {e}"));
        }
        let residual = std::mem::take(&mut self.capture.residual)
            .into_iter()
            .enumerate()
            .map(|(l, r)| r.ok_or(format!("llama.cpp's graph had no l_out-{l}")))
            .collect::<Result<Vec<_>, _>>();
        self.capture.residual = vec![None; self.n_layer];
        let attention = if attention {
            let rows = std::mem::take(&mut self.capture.attention_rows);
            self.capture.attention_rows = vec![None; self.n_layer];
            rows.into_iter()
                .enumerate()
                .map(|(l, r)| r.ok_or(format!("llama.cpp's graph had no kq_soft_max-{l}")))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        // SAFETY: the last decode asked for the logits of its one token.
        let logits = unsafe {
            let p = sys::llama_get_logits_ith(self.ctx.as_ptr(), -1);
            if p.is_null() {
                return Err("llama.cpp gave no logits for the lensed position".into());
            }
            std::slice::from_raw_parts(p, self.n_vocab).to_vec()
        };
        Ok(Captured {
            residual: residual?,
            attention,
            logits,
            n_evaluated: position + 1 - common,
            n_reused: common,
        })
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

impl Drop for LensContext {
    fn drop(&mut self) {
        // SAFETY: made in `new`, freed once, the context before its model.
        unsafe {
            sys::llama_free(self.ctx.as_ptr());
            sys::llama_model_free(self.model.as_ptr());
        }
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
