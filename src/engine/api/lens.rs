//! The layer lens (logit lens) and attention capture ([`Command::Lens`]):
//! what the model would predict after each layer at one position, and which
//! earlier positions each layer's attention looked at from there.
//!
//! [`Command::Lens`]: super::Command::Lens

use serde::{Deserialize, Serialize};

use super::ids::TokenId;

/// A lens of one position ([`Command::Lens`](super::Command::Lens)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LensRequest {
    /// The token ids as the model is fed them (BOS and chat template
    /// included, e.g. a generation's [`Event::Started`](super::Event::Started)
    /// `prompt` ids followed by its reply's).
    pub tokens: Vec<TokenId>,
    /// The position lensed, in `0..tokens.len()`: the rows are the
    /// prediction of the token *after* `tokens[position]` (given
    /// `tokens[..=position]`). Tokens after it are not evaluated.
    pub position: usize,
    /// Candidates per row: 1 to [`MAX_CANDIDATES`](super::MAX_CANDIDATES).
    pub top_k: usize,
    /// Also capture the attention weights from `position` ([`LensResult::attention`]).
    pub attention: bool,
}

/// A candidate of a lens row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LensCandidate {
    pub id: TokenId,
    /// The row's logit of this token (the output head applied to the residual stream).
    pub logit: f32,
    /// Its probability, softmax over the whole vocabulary.
    pub p: f32,
}

/// One row of a lens: a distribution over the whole vocabulary, summarized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LensRow {
    /// The layer, 0-based: the row is the residual stream after layer
    /// `layer`'s block (`l_out-<layer>` in llama.cpp's graph) put through the
    /// model's final norm and output head. The model's own row
    /// ([`LensResult::model`]) has `layer` = the number of layers.
    pub layer: u32,
    /// The most likely tokens, most likely first (ties: lower id).
    pub top: Vec<LensCandidate>,
    /// Entropy of the row's distribution, in bits.
    pub entropy: f32,
}

/// What one layer's attention looked at from the lensed position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionLayer {
    pub layer: u32,
    /// Per query head (`n_head` of them; heads sharing a key/value head
    /// under grouped-query attention are still separate rows): the attention
    /// weights after softmax (`kq_soft_max-<layer>`) over positions
    /// `0..=position`, each row summing to 1. Positions a sliding-window
    /// layer (Gemma 3) cannot see are 0.
    pub heads: Vec<Vec<f32>>,
    /// The heads' mean, position by position (sums to 1).
    pub mean: Vec<f32>,
}

/// The answer to a [`LensRequest`] ([`Event::Lens`](super::Event::Lens)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LensResult {
    pub position: usize,
    /// One row per layer, layer 0 first; the last layer's row is the model's
    /// own distribution recomputed by the lens (equal to [`LensResult::model`]
    /// within float rounding).
    pub layers: Vec<LensRow>,
    /// The model's own distribution at the position: llama.cpp's logits of
    /// the lens pass (which runs without flash attention, so its last digits
    /// can differ from a generation's).
    pub model: LensRow,
    /// One per layer when asked for ([`LensRequest::attention`]), else empty.
    pub attention: Vec<AttentionLayer>,
    /// Positions evaluated for this lens (the lensed one included) and
    /// positions reused from the lens's KV cache.
    pub n_evaluated: usize,
    pub n_reused: usize,
    /// Milliseconds in llama.cpp (prefill and the lensed token), and applying
    /// the head to every layer (norm, output matrix, softmax, top k).
    pub decode_ms: f64,
    pub head_ms: f64,
}

/// Where the model's own top-1 token forms across the layers
/// ([`LensResult::top1_forms`]); `None`: never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopOneForms {
    /// The first layer whose top-1 it is.
    pub first: Option<u32>,
    /// The layer from which it is every later layer's top-1 too.
    pub stays_from: Option<u32>,
    /// The first layer whose listed candidates include it.
    pub listed_from: Option<u32>,
}

impl LensResult {
    /// Where the model's own top-1 ([`LensResult::model`]'s first
    /// candidate) first leads a layer, from which layer it leads every
    /// later one, and the first layer that lists it.
    pub fn top1_forms(&self) -> TopOneForms {
        let Some(id) = self.model.top.first().map(|c| c.id) else {
            return TopOneForms {
                first: None,
                stays_from: None,
                listed_from: None,
            };
        };
        let top1 = |row: &&LensRow| row.top.first().is_some_and(|c| c.id == id);
        TopOneForms {
            first: self.layers.iter().find(top1).map(|r| r.layer),
            stays_from: self
                .layers
                .iter()
                .rev()
                .take_while(top1)
                .last()
                .map(|r| r.layer),
            listed_from: self
                .layers
                .iter()
                .find(|r| r.top.iter().any(|c| c.id == id))
                .map(|r| r.layer),
        }
    }
}
