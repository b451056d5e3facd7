//! `tokenscope info --tensors`: the parameter file's map ([`TensorMap`]) as
//! text (a table of kinds, the shapes of one layer, a row per layer, every
//! tensor) or as JSONL rows; and the kinds' table that `info`'s card shows.

use std::fmt::Write as _;

use crate::catalog::{params_human, size_human};
use crate::cli::TensorsView;
use crate::i18n::{tr, tr_args};
use crate::tensor_map::{Kind, KindShare, MapTensor, TensorMap, dims_text, share_of};
use crate::text::{json_safe, pad_left, pad_right as pad, str_width};

/// "31.2%", "<0.1%" for a share (0 to 1) that would read 0.0%.
pub(crate) fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 0.05 {
        "<0.1%".into()
    } else {
        format!("{p:.1}%")
    }
}

fn bpw_text(bpw: Option<f64>) -> String {
    bpw.map(|b| format!("{b:.2}")).unwrap_or_else(|| "?".into())
}

/// The table of kinds: one row per kind (layers, tensors, parameters,
/// types, bits per weight, bytes, share of the file), then the file's
/// non-tensor bytes and the total; each line starts with `indent`.
pub(crate) fn kinds_table(kinds: &[KindShare], file_size: u64, tied: bool, indent: &str) -> String {
    let mut out = String::new();
    let share = |b: u64| percent(b as f64 / file_size.max(1) as f64);
    // Padded by displayed width: a translated head or kind may be Chinese.
    let row = |out: &mut String, c: [&str; 8]| {
        let _ = writeln!(
            out,
            "{indent}{} {} {} {}  {} {} {} {}",
            pad(c[0], 17),
            pad_left(c[1], 6),
            pad_left(c[2], 7),
            pad_left(c[3], 7),
            pad(c[4], 14),
            pad_left(c[5], 5),
            pad_left(c[6], 9),
            pad_left(c[7], 6)
        );
    };
    row(
        &mut out,
        [
            &tr("tensors-col-kind", "KIND"),
            &tr("tensors-col-layers", "LAYERS"),
            &tr("tensors-col-tensors", "TENSORS"),
            &tr("tensors-col-params", "PARAMS"),
            &tr("tensors-col-types", "TYPES"),
            &tr("tensors-col-bpw", "BPW"),
            &tr("tensors-col-bytes", "BYTES"),
            &tr("tensors-col-file", "FILE"),
        ],
    );
    for s in kinds {
        let layers = if s.layers > 0 {
            s.layers.to_string()
        } else {
            "-".into()
        };
        row(
            &mut out,
            [
                &kind_words(s.kind),
                &layers,
                &s.tensors.to_string(),
                &params_human(s.params),
                &s.types_text(),
                &bpw_text(s.bits_per_weight()),
                &size_human(s.bytes),
                &share(s.bytes),
            ],
        );
    }
    if tied {
        let _ = writeln!(
            out,
            "{indent}{} {}",
            pad(&kind_words(Kind::Output), 17),
            tr(
                "tensors-tied",
                "tied to the embedding (no `output` tensor: the logits use token_embd's rows)"
            )
        );
    }
    let params: u64 = kinds.iter().map(|s| s.params).sum();
    let bytes: u64 = kinds.iter().map(|s| s.bytes).sum();
    let tensors: usize = kinds.iter().map(|s| s.tensors).sum();
    let other = file_size.saturating_sub(bytes);
    row(
        &mut out,
        [
            &tr("tensors-header-padding", "header, padding"),
            "",
            "",
            "",
            "",
            "",
            &size_human(other),
            &share(other),
        ],
    );
    row(
        &mut out,
        [
            &tr("tensors-total", "total"),
            "",
            &tensors.to_string(),
            &params_human(params),
            "",
            &bpw_text(crate::tensor_map::bits_per_weight(bytes, params)),
            &size_human(file_size),
            &share(file_size),
        ],
    );
    out
}

/// A kind of tensor in the interface language, for text tables
/// ([`Kind::label`] stays the JSONL's English).
pub(crate) fn kind_words(kind: Kind) -> String {
    match kind {
        Kind::Embedding => tr("tensors-kind-embedding", "embedding"),
        Kind::Attention => tr("tensors-kind-attention", "attention q/k/v/o"),
        Kind::AttentionNorm => tr("tensors-kind-attention-norm", "attention norm"),
        Kind::FeedForward => tr("tensors-kind-feed-forward", "feed-forward"),
        Kind::FeedForwardNorm => tr("tensors-kind-feed-forward-norm", "feed-forward norm"),
        Kind::OtherNorms => tr("tensors-kind-other-norms", "other norms"),
        Kind::FinalNorm => tr("tensors-kind-final-norm", "final norm"),
        Kind::Output => tr("tensors-kind-output", "output head"),
        Kind::Other => tr("tensors-kind-other", "other"),
    }
}

/// The order a layer's weight matrices are listed in: as the layer runs
/// them (a fused `attn_qkv` first); others after these.
const ROLE_ORDER: [&str; 9] = [
    "attn_qkv",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate_up",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// Where a tensor comes in [`ROLE_ORDER`] (a bias with its matrix).
fn rank(t: &MapTensor) -> usize {
    let r = role(t);
    let base = r.split('.').next().unwrap_or(&r);
    ROLE_ORDER
        .iter()
        .position(|x| *x == base)
        .unwrap_or(ROLE_ORDER.len())
}

/// The role of a tensor in its layer: its name without `blk.N.` and
/// `.weight` (`attn_q`, `attn_q.bias`).
fn role(t: &MapTensor) -> String {
    let rest = match t.layer {
        Some(l) => t.name.strip_prefix(&format!("blk.{l}.")).unwrap_or(&t.name),
        None => &t.name,
    };
    rest.strip_suffix(".weight").unwrap_or(rest).to_string()
}

/// The map as text: a title, the kinds, the first layer's shapes, then (by
/// `view`) a row per layer and every tensor.
pub(crate) fn tensors_text(name: &str, map: &TensorMap, view: TensorsView) -> String {
    let mut out = String::new();
    let kinds = map.kinds();
    let _ = writeln!(
        out,
        "{}",
        tr_args(
            "tensors-title",
            "{ $name }: { $params } parameters in { $tensors } tensors, { $bytes } of tensor data in a file of { $size }",
            &[
                ("name", &name),
                ("params", &thousands(map.params())),
                ("tensors", &map.tensors.len()),
                ("bytes", &size_human(map.bytes())),
                ("size", &size_human(map.file_size)),
            ],
        )
    );
    let _ = writeln!(
        out,
        "{}\n",
        tr(
            "tensors-legend",
            "(bpw = bytes × 8 / parameters; shapes in ggml order, a row's width first)"
        )
    );
    out.push_str(&kinds_table(&kinds, map.file_size, map.tied_output(), ""));
    let layers = map.layers();
    if let Some((first, tensors)) = layers.first() {
        let _ = writeln!(
            out,
            "\n{}",
            tr_args(
                "tensors-shapes-in-layer",
                "shapes in layer { $layer }:",
                &[("layer", first)]
            )
        );
        for kind in Kind::ALL {
            let mut of_kind: Vec<&&MapTensor> = tensors.iter().filter(|t| t.kind == kind).collect();
            of_kind.sort_by_key(|t| (rank(t), role(t)));
            let parts: Vec<String> = of_kind
                .iter()
                .map(|t| format!("{} {}", role(t), dims_text(&t.dims)))
                .collect();
            if !parts.is_empty() {
                // Padded by displayed width: the kind's words may be Chinese.
                let _ = writeln!(
                    out,
                    "  {} {}",
                    pad(&kind_words(kind), 18),
                    parts.join(" · ")
                );
            }
        }
        let outside: Vec<String> = map
            .tensors
            .iter()
            .filter(|t| t.layer.is_none())
            .map(|t| format!("{} {}", role(t), dims_text(&t.dims)))
            .collect();
        let _ = writeln!(
            out,
            "  {} {}",
            pad(&tr("tensors-outside-layers", "outside the layers"), 18),
            outside.join(" · ")
        );
    }
    if view == TensorsView::Kinds {
        return out;
    }
    // Heads padded by displayed width (a Chinese character is two columns);
    // the types' columns widen to a head wider than their English one.
    let attention = tr("tensors-col-attention", "ATTENTION q k v o");
    let ffn = tr("tensors-col-ffn", "FFN gate up down");
    let (attention_w, ffn_w) = (str_width(&attention).max(24), str_width(&ffn).max(16));
    let _ = writeln!(
        out,
        "\n{} {} {} {}  {} {} {}",
        pad_left(&tr("tensors-col-layer", "LAYER"), 5),
        pad_left(&tr("tensors-col-params", "PARAMS"), 7),
        pad_left(&tr("tensors-col-bytes", "BYTES"), 10),
        pad_left(&tr("tensors-col-bpw", "BPW"), 5),
        pad(&attention, attention_w),
        pad(&ffn, ffn_w),
        tr("tensors-col-norms", "NORMS")
    );
    for (l, tensors) in &layers {
        let all = share_of(Kind::Other, tensors.iter().copied());
        let (params, bytes) = all.map(|s| (s.params, s.bytes)).unwrap_or((0, 0));
        // Types of the weight matrices (biases and norms are vectors).
        let types = |kind: Kind| {
            let mut m: Vec<&&MapTensor> = tensors
                .iter()
                .filter(|t| t.kind == kind && t.dims.len() >= 2)
                .collect();
            m.sort_by_key(|t| rank(t));
            m.iter()
                .map(|t| t.ty.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let norms: Vec<&&MapTensor> = tensors
            .iter()
            .filter(|t| {
                matches!(
                    t.kind,
                    Kind::AttentionNorm | Kind::FeedForwardNorm | Kind::OtherNorms
                )
            })
            .collect();
        let norm_types = share_of(Kind::OtherNorms, norms.iter().map(|t| **t))
            .map(|s| format!("{} ×{}", s.types_text(), s.tensors))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{l:>5} {:>7} {:>10} {:>5}  {} {} {norm_types}",
            params_human(params),
            size_human(bytes),
            bpw_text(crate::tensor_map::bits_per_weight(bytes, params)),
            pad(&types(Kind::Attention), attention_w),
            pad(&types(Kind::FeedForward), ffn_w),
        );
    }
    if view == TensorsView::All {
        let w = map.tensors.iter().map(|t| t.name.len()).max().unwrap_or(4);
        let _ = writeln!(
            out,
            "\n{} {} {} {} {}",
            pad(&tr("tensors-col-tensor", "TENSOR"), w),
            pad(&tr("tensors-col-shape", "SHAPE"), 14),
            pad(&tr("tensors-col-type", "TYPE"), 7),
            pad_left(&tr("tensors-col-params", "PARAMS"), 11),
            pad_left(&tr("tensors-col-bytes", "BYTES"), 10)
        );
        for t in &map.tensors {
            let _ = writeln!(
                out,
                "{} {:<14} {:<7} {:>11} {:>10}",
                pad(&t.name, w),
                dims_text(&t.dims),
                t.ty,
                thousands(t.params),
                size_human(t.bytes)
            );
        }
    }
    out
}

/// The map as JSONL: a `kind` row per kind, a `layer` row per layer
/// (`views` layers and all), a `tensor` row per tensor (`all`), then one
/// `total` row: parameters, tensor bytes, the other bytes and the file size.
pub(crate) fn tensors_jsonl(map: &TensorMap, view: TensorsView) -> String {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for s in map.kinds() {
        rows.push(serde_json::json!({
            "type": "kind",
            "kind": s.kind,
            "label": s.kind.label(),
            "layers": s.layers,
            "tensors": s.tensors,
            "params": s.params,
            "bytes": s.bytes,
            "types": s.types.iter().map(|(t, p)| serde_json::json!({"type": t, "params": p})).collect::<Vec<_>>(),
            "bpw": s.bits_per_weight(),
            "share": map.share(s.bytes),
        }));
    }
    if view != TensorsView::Kinds {
        for (l, tensors) in map.layers() {
            let kinds: Vec<serde_json::Value> = Kind::ALL
                .iter()
                .filter_map(|&k| share_of(k, tensors.iter().copied().filter(|t| t.kind == k)))
                .map(|s| {
                    serde_json::json!({
                        "kind": s.kind,
                        "params": s.params,
                        "bytes": s.bytes,
                        "types": s.types_text(),
                    })
                })
                .collect();
            let params: u64 = tensors.iter().map(|t| t.params).sum();
            let bytes: u64 = tensors.iter().map(|t| t.bytes).sum();
            rows.push(serde_json::json!({
                "type": "layer",
                "layer": l,
                "params": params,
                "bytes": bytes,
                "bpw": crate::tensor_map::bits_per_weight(bytes, params),
                "kinds": kinds,
            }));
        }
    }
    if view == TensorsView::All {
        for t in &map.tensors {
            let mut v = serde_json::to_value(t).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "tensor".into());
                o.insert("storage".into(), t.ty.clone().into());
                o.remove("ty");
            }
            rows.push(v);
        }
    }
    rows.push(serde_json::json!({
        "type": "total",
        "tensors": map.tensors.len(),
        "params": map.params(),
        "bytes": map.bytes(),
        "other_bytes": map.other_bytes(),
        "file_size": map.file_size,
        "tied_output": map.tied_output(),
    }));
    let mut out = String::new();
    for r in rows {
        out.push_str(&json_safe(&r.to_string()));
        out.push('\n');
    }
    out
}

/// 1234567 -> "1,234,567".
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
