//! The parameter file's map (`info --tensors`) on the three demo models:
//! every group's parameters add up to the header's total, its bytes to the
//! tensor data, and each kind's parameters equal what the architecture's
//! hyperparameters (read from the metadata, not from the tensors) say it holds.

mod common;

use tokenscope::catalog;
use tokenscope::gguf::{self, GgufHeader};
use tokenscope::tensor_map::{Kind, TensorMap};

/// Parameters of each kind as the architecture's numbers give them: the
/// embedding is n_vocab rows of n_embd; attention q/k/v/o are
/// n_embd × (n_head·d_k), 2 × n_embd × (n_head_kv·d_k|d_v) and
/// (n_head·d_v) × n_embd per layer (Qwen2 adds the q/k/v biases); the
/// feed-forward is 3 × n_embd × n_ff per layer; each norm is n_embd wide
/// (Gemma 3's q/k norms d_k wide); the head, when not tied, n_vocab × n_embd.
fn expected(h: &GgufHeader) -> Vec<(Kind, u64)> {
    let arch = h
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .expect("architecture")
        .to_string();
    let get = |k: &str| h.get_u64(&format!("{arch}.{k}"));
    let n_embd = get("embedding_length").expect("n_embd");
    let n_layer = get("block_count").expect("n_layer");
    let n_ff = get("feed_forward_length").expect("n_ff");
    let n_head = get("attention.head_count").expect("n_head");
    let n_kv = get("attention.head_count_kv").expect("n_head_kv");
    let d_k = get("attention.key_length").unwrap_or(n_embd / n_head);
    let d_v = get("attention.value_length").unwrap_or(n_embd / n_head);
    let n_vocab = h
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.array_len())
        .expect("vocabulary");
    let mut attn =
        n_embd * n_head * d_k + n_embd * n_kv * d_k + n_embd * n_kv * d_v + n_head * d_v * n_embd;
    if arch == "qwen2" {
        attn += n_head * d_k + n_kv * d_k + n_kv * d_v;
    }
    let mut out = vec![
        (Kind::Embedding, n_vocab * n_embd),
        (Kind::AttentionNorm, n_layer * n_embd),
        (Kind::Attention, n_layer * attn),
        (Kind::FeedForwardNorm, n_layer * n_embd),
        (Kind::FeedForward, n_layer * 3 * n_embd * n_ff),
        (Kind::FinalNorm, n_embd),
    ];
    if arch == "gemma3" {
        out.push((Kind::OtherNorms, n_layer * (2 * n_embd + 2 * d_k)));
    }
    if arch == "qwen2" {
        out.push((Kind::Output, n_vocab * n_embd));
    }
    out.sort();
    out
}

fn check(file: &str, n_layer: usize, tied: bool) {
    let path = common::model(file);
    let h = gguf::read_header(&path).expect("header reads");
    let card = catalog::read_card(&path).expect("card reads");
    let map = TensorMap::of(&h);
    let kinds = map.kinds();
    // The groups add up to the header's totals.
    assert_eq!(kinds.iter().map(|k| k.params).sum::<u64>(), h.n_params());
    assert_eq!(map.params(), card.n_params);
    assert_eq!(kinds.iter().map(|k| k.bytes).sum::<u64>(), card.mix.bytes());
    assert_eq!(
        kinds.iter().map(|k| k.tensors).sum::<usize>(),
        h.tensors.len()
    );
    let layer_sum: u64 = map
        .layers()
        .iter()
        .flat_map(|(_, ts)| ts.iter().map(|t| t.params))
        .sum::<u64>()
        + map
            .tensors
            .iter()
            .filter(|t| t.layer.is_none())
            .map(|t| t.params)
            .sum::<u64>();
    assert_eq!(layer_sum, h.n_params());
    // The tensor data the header's layout ends at, less the padding between tensors.
    assert!(map.bytes() <= h.expected_file_size - h.data_offset);
    assert_eq!(map.bytes() + map.other_bytes(), h.file_size);
    assert_eq!(map.layers().len(), n_layer);
    assert_eq!(map.tied_output(), tied);
    assert!(!kinds.iter().any(|k| k.kind == Kind::Other), "{kinds:?}");
    // Each kind against the architecture's numbers.
    let mut got: Vec<(Kind, u64)> = kinds.iter().map(|k| (k.kind, k.params)).collect();
    got.sort();
    assert_eq!(got, expected(&h), "{file}");
    for k in &kinds {
        let per_layer = !matches!(k.kind, Kind::Embedding | Kind::FinalNorm | Kind::Output);
        assert_eq!(
            k.layers,
            if per_layer { n_layer } else { 0 },
            "{:?}",
            k.kind
        );
    }
    // The card carries the same summary.
    assert_eq!(card.mix.kinds, kinds);
    assert_eq!(card.mix.tied_output, tied);
}

#[test]
fn smollm2_map_adds_up_and_matches_its_architecture() {
    check(common::SMOL, 30, true);
}

#[test]
fn gemma3_map_adds_up_and_matches_its_architecture() {
    check(common::GEMMA, 18, true);
}

#[test]
fn qwen2_map_adds_up_and_matches_its_architecture() {
    check(common::QWEN, 24, false);
}

#[test]
fn info_tensors_jsonl_rows_add_up() {
    let dir = common::models_dir();
    for (file, n_layer) in [(common::SMOL, 30), (common::GEMMA, 18)] {
        let path = common::model(file);
        let h = gguf::read_header(&path).expect("header reads");
        let p = path.to_str().expect("utf-8 path");
        let (out, err, ok) =
            common::run_binary(&dir, &["info", p, "--tensors", "all", "--format", "jsonl"]);
        assert!(ok, "{err}");
        let rows: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON row"))
            .collect();
        let of = |ty: &'static str| rows.iter().filter(move |r| r["type"] == ty);
        let sum = |ty: &'static str, f: &str| {
            of(ty).map(|r| r[f].as_u64().expect("a count")).sum::<u64>()
        };
        let total = rows.last().expect("rows");
        assert_eq!(total["type"], "total");
        assert_eq!(total["params"].as_u64(), Some(h.n_params()));
        assert_eq!(sum("kind", "params"), h.n_params());
        assert_eq!(sum("tensor", "params"), h.n_params());
        assert_eq!(
            sum("kind", "bytes"),
            total["bytes"].as_u64().expect("bytes")
        );
        assert_eq!(of("layer").count(), n_layer);
        assert_eq!(of("tensor").count(), h.tensors.len());
        let shares: f64 = of("kind")
            .map(|r| r["share"].as_f64().expect("share"))
            .sum();
        let other = total["other_bytes"].as_f64().expect("other") / h.file_size as f64;
        assert!((shares + other - 1.0).abs() < 1e-9, "{shares} + {other}");
    }
}

#[test]
fn info_tensors_text_has_the_kinds_and_a_row_per_layer() {
    let dir = common::models_dir();
    let p = common::model(common::SMOL);
    let p = p.to_str().expect("utf-8 path");
    let (out, err, ok) = common::run_binary(&dir, &["info", "--model", p, "--tensors"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("SmolLM2"), "{out}");
    assert!(
        out.contains("134,515,008 parameters in 272 tensors"),
        "{out}"
    );
    for label in [
        "embedding",
        "attention q/k/v/o",
        "feed-forward",
        "final norm",
    ] {
        assert!(out.lines().any(|l| l.starts_with(label)), "{label}: {out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("output head") && l.contains("tied to the embedding")),
        "{out}"
    );
    let total = out
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("a total row");
    assert!(
        total.contains("135M") && total.contains("100.0%"),
        "{total}"
    );
    // One row per layer, 0 to 29, each with its attention and feed-forward types.
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("LAYER"))
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 30, "{out}");
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(cells[0], i.to_string(), "{r}");
        assert_eq!(cells.iter().filter(|c| **c == "Q4_1").count(), 7, "{r}");
    }
    // The kinds' view stops before the layers.
    let (out, _, ok) = common::run_binary(&dir, &["info", p, "--tensors", "kinds"]);
    assert!(ok && out.contains("shapes in layer 0"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("LAYER")), "{out}");
    // The card shows the kinds too.
    let (out, _, ok) = common::run_binary(&dir, &["info", p]);
    assert!(ok && out.contains("tensor map"), "{out}");
    // A server has no tensor table to read.
    let (_, err, ok) = common::run_binary(
        &dir,
        &["info", "--server", "http://127.0.0.1:9", "--tensors"],
    );
    assert!(!ok && err.contains("--tensors reads a model file"), "{err}");
}
