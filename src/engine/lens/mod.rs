//! The layer lens (logit lens) and attention capture ([`Command::Lens`]):
//! for one position of a token sequence, the residual stream after each
//! layer put through the model's own final norm and output head (what the
//! model would predict if it stopped there), and the attention weights
//! each layer gave the positions before.
//!
//! Two parts: [`context`] evaluates the tokens in a llama.cpp context of
//! its own whose graph callback copies `l_out-<l>` and `kq_soft_max-<l>`
//! at the lensed position; [`head`] applies the output head to every
//! layer's vector with ggml's CPU kernels, row block by row block.
//!
//! [`Command::Lens`]: super::api::Command::Lens

mod context;
mod head;

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::api::{
    AttentionLayer, EngineError, LensCandidate, LensRequest, LensResult, LensRow, MAX_CANDIDATES,
    Words,
};
use super::probs::TopK;
use context::LensContext;
use head::Head;

/// A model's lens, made at its first request and kept with the model (its
/// KV cache holds the sequence last lensed).
pub(crate) struct Lens {
    pub(crate) path: PathBuf,
    context: LensContext,
    head: Head,
    threads: usize,
    /// The model context's size: the most the lens's contexts grow to.
    n_ctx_max: u32,
}

/// The smallest context a lens's contexts are made with, in tokens.
const MIN_CTX: u32 = 512;

/// The context size for a sequence of `n` tokens: a power of two from
/// [`MIN_CTX`], at most `max`. The lens's KV caches (two with attention)
/// are sized to what is lensed, not to the model's context: at 4,096
/// tokens each would hold 75 MiB on Gemma 3, most of the lens's memory.
fn ctx_for(n: usize, max: u32) -> u32 {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    n.max(MIN_CTX)
        .checked_next_power_of_two()
        .unwrap_or(max)
        .min(max)
}

impl Lens {
    /// The lens of the model file at `path`, for sequences of up to `n_ctx`
    /// tokens (its contexts start smaller and grow, [`ctx_for`]), on
    /// `threads` threads.
    ///
    /// # Errors
    /// [`EngineError::InvalidRequest`] saying why, for an architecture or a
    /// head this does not reproduce, or a file llama.cpp will not load again.
    pub(crate) fn open(path: &Path, n_ctx: u32, threads: u32) -> Result<Lens, EngineError> {
        let header =
            crate::gguf::read_header(path).map_err(|e| EngineError::BadFile(e.to_string()))?;
        let refuse = |e: String| EngineError::InvalidRequest(e);
        let head = Head::open(path, &header).map_err(EngineError::Refused)?;
        let context = LensContext::new(path, ctx_for(0, n_ctx), threads as i32).map_err(refuse)?;
        if context.n_vocab != head.n_vocab {
            return Err(EngineError::Refused(Words::tr_args(
                "lens-engine-head-rows",
                "the output matrix has { $rows } rows for a vocabulary of { $n } tokens",
                &[("rows", &head.n_vocab), ("n", &context.n_vocab)],
            )));
        }
        Ok(Lens {
            path: path.to_owned(),
            context,
            head,
            threads: threads.max(1) as usize,
            n_ctx_max: n_ctx,
        })
    }

    /// The lens of `req` (validated here).
    ///
    /// # Errors
    /// [`EngineError::Refused`] for a request out of range, in words;
    /// [`EngineError::Decode`] when llama.cpp fails.
    pub(crate) fn run(&mut self, req: &LensRequest) -> Result<LensResult, EngineError> {
        self.validate(req)?;
        let t0 = Instant::now();
        if req.position >= self.context.n_ctx {
            // A longer sequence than the contexts hold: bigger ones (the
            // old ones go once the new ones are made).
            let n_ctx = ctx_for(req.position + 1, self.n_ctx_max);
            let threads = self.threads as i32;
            self.context = LensContext::new(&self.path, n_ctx, threads)
                .map_err(EngineError::InvalidRequest)?;
        }
        let captured = self
            .context
            .evaluate(&req.tokens, req.position, req.attention)
            .map_err(|reason| EngineError::Decode {
                stage: "the layer lens".into(),
                reason,
            })?;
        let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let logits = self.head.logits(&captured.residual, self.threads);
        let mut topk = TopK::default();
        let mut row = |layer: usize, logits: &[f32]| {
            let s = topk.summarize(logits, req.top_k);
            LensRow {
                layer: layer as u32,
                top: s
                    .top
                    .iter()
                    .map(|&(id, logit)| LensCandidate {
                        id,
                        logit,
                        p: (logit - s.lse).exp(),
                    })
                    .collect(),
                entropy: s.entropy_bits,
            }
        };
        let layers = logits.iter().enumerate().map(|(l, x)| row(l, x)).collect();
        let model = row(self.context.n_layer, &captured.logits);
        let head_ms = t1.elapsed().as_secs_f64() * 1e3;
        let attention = captured
            .attention
            .into_iter()
            .enumerate()
            .map(|(l, heads)| attention_layer(l, heads))
            .collect();
        Ok(LensResult {
            position: req.position,
            layers,
            model,
            attention,
            n_evaluated: captured.n_evaluated,
            n_reused: captured.n_reused,
            decode_ms,
            head_ms,
        })
    }

    fn validate(&self, req: &LensRequest) -> Result<(), EngineError> {
        let bad = |m: Words| Err(EngineError::Refused(m));
        let n = req.tokens.len();
        if n == 0 {
            return bad(Words::tr(
                "lens-engine-no-tokens",
                "no tokens to lens: give a text (or token ids) of at least one token",
            ));
        }
        if req.position >= n {
            return bad(Words::tr_args(
                "lens-engine-position-range",
                "position { $position } is out of range: the sequence has { $n } tokens (positions 0 to { $last })",
                &[("position", &req.position), ("n", &n), ("last", &(n - 1))],
            ));
        }
        if req.position >= self.n_ctx_max as usize {
            return bad(Words::tr_args(
                "lens-engine-position-context",
                "position { $position } does not fit the model's context of { $n_ctx } tokens",
                &[("position", &req.position), ("n_ctx", &self.n_ctx_max)],
            ));
        }
        if !(1..=MAX_CANDIDATES).contains(&req.top_k) {
            return bad(Words::tr_args(
                "lens-engine-top-range",
                "top_k { $top } is out of range: 1 to { $max }",
                &[("top", &req.top_k), ("max", &MAX_CANDIDATES)],
            ));
        }
        let n_vocab = self.context.n_vocab;
        if let Some(&id) = req.tokens[..=req.position]
            .iter()
            .find(|&&id| usize::try_from(id).map_or(true, |i| i >= n_vocab))
        {
            return Err(EngineError::bad_token_id(id, n_vocab));
        }
        Ok(())
    }
}

/// One layer's attention rows and their mean over heads.
fn attention_layer(layer: usize, heads: Vec<Vec<f32>>) -> AttentionLayer {
    let n = heads.first().map_or(0, Vec::len);
    let mut mean = vec![0f32; n];
    for h in &heads {
        mean.iter_mut().zip(h).for_each(|(m, &w)| *m += w);
    }
    let k = heads.len().max(1) as f32;
    mean.iter_mut().for_each(|m| *m /= k);
    AttentionLayer {
        layer: layer as u32,
        heads,
        mean,
    }
}

#[cfg(test)]
mod tests {
    use super::ctx_for;

    #[test]
    fn lens_contexts_grow_by_powers_of_two_up_to_the_models() {
        assert_eq!(ctx_for(0, 4096), 512);
        assert_eq!(ctx_for(512, 4096), 512);
        assert_eq!(ctx_for(513, 4096), 1024);
        assert_eq!(ctx_for(3000, 4096), 4096);
        assert_eq!(ctx_for(3000, 2048), 2048);
        assert_eq!(ctx_for(100, 300), 300);
    }
}
