//! The parameter file's map: where a model's weights live. A GGUF file is the
//! model's parameters (its tensor table and their data) beside the code that
//! runs them (llama.cpp); this groups the tensor table, as the header reader
//! ([`crate::gguf`]) reads it, by layer (`blk.N.`) and by kind ([`Kind`]:
//! the embedding, attention, feed-forward, the norms, the output head), with
//! each group's parameters, bytes, storage types and bits per weight.
//!
//! Nothing is loaded: the numbers come from the tensor infos alone (element
//! counts from the shapes, bytes from the types' block layouts), so every
//! group's parameters add up to [`GgufHeader::n_params`] and its bytes to the
//! tensor data the file holds.

use crate::gguf::{GgufHeader, TensorInfo};

/// Bits per weight, the one definition used everywhere (the picker, `models`,
/// `info`, its tensor map, `quantize`): bytes of tensor data × 8 / number of
/// weights, as llama.cpp's quantizer reports it (`BPW`). The header and the
/// metadata are left out (they are a few MiB of vocabulary, whatever the
/// type). `None` for no weights.
pub fn bits_per_weight(tensor_bytes: u64, weights: u64) -> Option<f64> {
    (weights > 0).then(|| tensor_bytes as f64 * 8.0 / weights as f64)
}

/// What a tensor is for, by its name in llama.cpp's naming (`blk.3.attn_q.weight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `token_embd`: one row of `n_embd` weights per token of the vocabulary.
    Embedding,
    /// `attn_q`, `attn_k`, `attn_v`, `attn_output` (and a fused `attn_qkv`),
    /// their biases where the architecture has them (Qwen2's q/k/v).
    Attention,
    /// `attn_norm`: the norm before attention.
    AttentionNorm,
    /// `ffn_gate`, `ffn_up`, `ffn_down` (and their biases).
    FeedForward,
    /// `ffn_norm`: the norm before the feed-forward block.
    FeedForwardNorm,
    /// Other per-layer norms: Gemma 3's `post_attention_norm`,
    /// `post_ffw_norm` and the q/k norms `attn_q_norm`, `attn_k_norm`.
    OtherNorms,
    /// `output_norm`: the norm after the last layer, before the output head.
    FinalNorm,
    /// `output`: the matrix from the residual stream to the vocabulary's
    /// logits. Absent when the head is tied to the embedding.
    Output,
    /// Anything else (`rope_freqs`, a per-layer tensor of another kind).
    Other,
}

impl Kind {
    /// Every kind, in the order a model runs them.
    pub const ALL: [Kind; 9] = [
        Kind::Embedding,
        Kind::AttentionNorm,
        Kind::Attention,
        Kind::OtherNorms,
        Kind::FeedForwardNorm,
        Kind::FeedForward,
        Kind::FinalNorm,
        Kind::Output,
        Kind::Other,
    ];

    /// The kind's name in words ("attention q/k/v/o").
    pub fn label(self) -> &'static str {
        match self {
            Kind::Embedding => "embedding",
            Kind::Attention => "attention q/k/v/o",
            Kind::AttentionNorm => "attention norm",
            Kind::FeedForward => "feed-forward",
            Kind::FeedForwardNorm => "feed-forward norm",
            Kind::OtherNorms => "other norms",
            Kind::FinalNorm => "final norm",
            Kind::Output => "output head",
            Kind::Other => "other",
        }
    }

    /// The kind of the tensor named `name` and its layer (`blk.N.`), if any.
    pub fn of(name: &str) -> (Kind, Option<u32>) {
        let (layer, rest) = match name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
            Some((n, rest)) => match n.parse::<u32>() {
                Ok(n) => (Some(n), rest),
                Err(_) => (None, name),
            },
            None => (None, name),
        };
        // The tensor's role: its name without `.weight` / `.bias`.
        let role = rest.split('.').next().unwrap_or(rest);
        let kind = match (layer.is_some(), role) {
            (false, "token_embd") => Kind::Embedding,
            (false, "output_norm") => Kind::FinalNorm,
            (false, "output") => Kind::Output,
            (true, "attn_q" | "attn_k" | "attn_v" | "attn_output" | "attn_qkv") => Kind::Attention,
            (true, "attn_norm") => Kind::AttentionNorm,
            (true, "ffn_gate" | "ffn_up" | "ffn_down" | "ffn_gate_up") => Kind::FeedForward,
            (true, "ffn_norm") => Kind::FeedForwardNorm,
            (true, r) if r.ends_with("_norm") => Kind::OtherNorms,
            _ => Kind::Other,
        };
        (kind, layer)
    }
}

/// One tensor of the map.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MapTensor {
    /// Its name in the file (`blk.0.attn_q.weight`), escaped for a terminal.
    pub name: String,
    pub kind: Kind,
    /// `N` of `blk.N.`; `None` for a tensor outside the layers.
    pub layer: Option<u32>,
    /// Dimensions in ggml order: the row width (`ne0`, the input side of a
    /// weight matrix) first, so `token_embd` is `[n_embd, n_vocab]`.
    pub dims: Vec<u64>,
    /// Storage type ("Q4_K", "F32").
    pub ty: String,
    /// Parameters (elements).
    pub params: u64,
    /// Bytes of its data (0 for a type the reader does not know).
    pub bytes: u64,
}

/// The tensors of one kind, all layers together.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KindShare {
    pub kind: Kind,
    /// Distinct layers that hold a tensor of this kind (0 outside the layers).
    pub layers: usize,
    pub tensors: usize,
    pub params: u64,
    pub bytes: u64,
    /// Storage types, the one holding the most parameters first, each with its parameters.
    pub types: Vec<(String, u64)>,
}

impl KindShare {
    /// Bits per weight ([`bits_per_weight`]: bytes × 8 / parameters).
    pub fn bits_per_weight(&self) -> Option<f64> {
        bits_per_weight(self.bytes, self.params)
    }

    /// "Q4_K", or "Q4_K+Q6_K" when the kind mixes types (most parameters first).
    pub fn types_text(&self) -> String {
        self.types
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// The whole map of a file's tensors.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorMap {
    /// Every tensor, in file order.
    pub tensors: Vec<MapTensor>,
    /// The file's size in bytes (header, tensor data and padding).
    pub file_size: u64,
}

impl TensorMap {
    /// The map of `h`'s tensor table.
    pub fn of(h: &GgufHeader) -> TensorMap {
        TensorMap {
            tensors: h.tensors.iter().map(map_tensor).collect(),
            file_size: h.file_size,
        }
    }

    /// Parameters of every tensor: equal to [`GgufHeader::n_params`].
    pub fn params(&self) -> u64 {
        self.tensors.iter().map(|t| t.params).sum()
    }

    /// Bytes of every tensor's data (no header, no padding).
    pub fn bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Bytes of the file that are not tensor data: the header (metadata,
    /// the vocabulary's strings, the tensor table) and the alignment padding.
    pub fn other_bytes(&self) -> u64 {
        self.file_size.saturating_sub(self.bytes())
    }

    /// Share of the file's bytes, 0 to 1.
    pub fn share(&self, bytes: u64) -> f64 {
        bytes as f64 / self.file_size.max(1) as f64
    }

    /// Whether the file has no `output` tensor: llama.cpp then uses the
    /// embedding matrix as the output head (tied embeddings).
    pub fn tied_output(&self) -> bool {
        !self.tensors.iter().any(|t| t.kind == Kind::Output)
    }

    /// One [`KindShare`] per kind the file holds, in [`Kind::ALL`]'s order.
    pub fn kinds(&self) -> Vec<KindShare> {
        Kind::ALL
            .iter()
            .filter_map(|&k| share_of(k, self.tensors.iter().filter(|t| t.kind == k)))
            .collect()
    }

    /// The layers, in order: each layer's number and its tensors in file order.
    pub fn layers(&self) -> Vec<(u32, Vec<&MapTensor>)> {
        let mut out: Vec<(u32, Vec<&MapTensor>)> = Vec::new();
        for t in &self.tensors {
            let Some(l) = t.layer else { continue };
            match out.iter_mut().find(|(n, _)| *n == l) {
                Some((_, v)) => v.push(t),
                None => out.push((l, vec![t])),
            }
        }
        out.sort_by_key(|(n, _)| *n);
        out
    }
}

/// The share of kind `kind` held by `tensors`; `None` when there are none.
pub fn share_of<'a>(kind: Kind, tensors: impl Iterator<Item = &'a MapTensor>) -> Option<KindShare> {
    let mut s = KindShare {
        kind,
        layers: 0,
        tensors: 0,
        params: 0,
        bytes: 0,
        types: Vec::new(),
    };
    let mut layers: Vec<u32> = Vec::new();
    for t in tensors {
        s.tensors += 1;
        s.params += t.params;
        s.bytes += t.bytes;
        match s.types.iter_mut().find(|(ty, _)| *ty == t.ty) {
            Some((_, n)) => *n += t.params,
            None => s.types.push((t.ty.clone(), t.params)),
        }
        if let Some(l) = t.layer.filter(|l| !layers.contains(l)) {
            layers.push(l);
        }
    }
    s.layers = layers.len();
    s.types
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (s.tensors > 0).then_some(s)
}

fn map_tensor(t: &TensorInfo) -> MapTensor {
    let (kind, layer) = Kind::of(&t.name);
    MapTensor {
        name: crate::text::escape_inline(&t.name),
        kind,
        layer,
        dims: t.dims.clone(),
        ty: t.ggml_type.name(),
        params: t.n_elements,
        bytes: t.n_bytes.unwrap_or(0),
    }
}

/// `[576, 49152]` as "576×49152".
pub fn dims_text(dims: &[u64]) -> String {
    dims.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kinds_and_layers() {
        let cases = [
            ("token_embd.weight", Kind::Embedding, None),
            ("output_norm.weight", Kind::FinalNorm, None),
            ("output.weight", Kind::Output, None),
            ("blk.0.attn_q.weight", Kind::Attention, Some(0)),
            ("blk.12.attn_q.bias", Kind::Attention, Some(12)),
            ("blk.3.attn_qkv.weight", Kind::Attention, Some(3)),
            ("blk.3.attn_output.weight", Kind::Attention, Some(3)),
            ("blk.3.attn_norm.weight", Kind::AttentionNorm, Some(3)),
            ("blk.3.attn_q_norm.weight", Kind::OtherNorms, Some(3)),
            ("blk.3.post_ffw_norm.weight", Kind::OtherNorms, Some(3)),
            (
                "blk.3.post_attention_norm.weight",
                Kind::OtherNorms,
                Some(3),
            ),
            ("blk.3.ffn_down.weight", Kind::FeedForward, Some(3)),
            ("blk.3.ffn_norm.weight", Kind::FeedForwardNorm, Some(3)),
            ("blk.3.something.weight", Kind::Other, Some(3)),
            ("rope_freqs.weight", Kind::Other, None),
            ("blk.x.attn_q.weight", Kind::Other, None),
        ];
        for (name, kind, layer) in cases {
            assert_eq!(Kind::of(name), (kind, layer), "{name}");
        }
    }

    #[test]
    fn shares_sum_their_tensors_and_sort_types_by_weight() {
        let t = |name: &str, ty: &str, params: u64, bytes: u64| {
            let (kind, layer) = Kind::of(name);
            MapTensor {
                name: name.into(),
                kind,
                layer,
                dims: vec![params],
                ty: ty.into(),
                params,
                bytes,
            }
        };
        let map = TensorMap {
            tensors: vec![
                t("token_embd.weight", "Q8_0", 1000, 1063),
                t("blk.0.attn_q.weight", "Q4_K", 256, 144),
                t("blk.0.attn_v.weight", "Q6_K", 512, 420),
                t("blk.1.attn_q.weight", "Q4_K", 256, 144),
                t("blk.1.attn_norm.weight", "F32", 16, 64),
            ],
            file_size: 4000,
        };
        let kinds = map.kinds();
        let names: Vec<Kind> = kinds.iter().map(|k| k.kind).collect();
        assert_eq!(
            names,
            [Kind::Embedding, Kind::AttentionNorm, Kind::Attention]
        );
        let attn = &kinds[2];
        assert_eq!((attn.layers, attn.tensors), (2, 3));
        assert_eq!((attn.params, attn.bytes), (1024, 708));
        assert_eq!(attn.types_text(), "Q4_K+Q6_K");
        assert_eq!(kinds.iter().map(|k| k.params).sum::<u64>(), map.params());
        assert_eq!(map.other_bytes(), 4000 - 1835);
        assert!(map.tied_output());
        assert_eq!(map.layers().len(), 2);
        assert_eq!(dims_text(&[576, 49152]), "576×49152");
    }
}
