//! `tokenscope compare` on the real demo models: a model against itself
//! agrees exactly; SmolLM2 Q4_1 against a Q2_K made from it (by `tokenscope
//! quantize`, kept in the target dir) disagrees, and its mean KL equals an
//! independent f64 computation from both models' logits at every position;
//! different vocabularies are refused; a generated reply is compared.

mod common;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use serde_json::Value;

/// A text of about 70 SmolLM2 tokens: more than one chunk of 32 positions.
const TEXT: &str = "The old lighthouse keeper climbed the stairs every evening to light the lamp. \
Ships passing the rocky coast relied on its beam to find the harbour safely. One stormy night \
the power failed, and he lit the backup oil lamp by hand while the wind howled outside.";

/// `compare --format jsonl` on `models` with `extra` args: (token rows, summaries).
fn compare(models: &[&Path], extra: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let mut args = vec!["compare".to_string()];
    for m in models {
        args.push("--model".into());
        args.push(m.to_str().unwrap().into());
    }
    args.extend(["--format", "jsonl"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, err, ok) = common::run_binary(&common::models_dir(), &argv);
    assert!(ok, "compare failed: {err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let (tokens, summaries): (Vec<Value>, Vec<Value>) =
        lines.into_iter().partition(|v| v["type"] == "token");
    assert!(summaries.iter().all(|s| s["type"] == "summary"));
    (tokens, summaries)
}

#[test]
fn a_model_against_itself_agrees_exactly() {
    let smol = common::model(common::SMOL);
    let (rows, summaries) = compare(&[&smol, &smol], &["--text", TEXT]);
    assert!(rows.len() > 40, "{} rows", rows.len());
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!(s["n_tokens"].as_u64().unwrap() as usize, rows.len());
    assert!(s["mean_kl"].as_f64().unwrap().abs() < 1e-6, "{s}");
    assert_eq!(s["top1_agreement"].as_f64().unwrap(), 1.0, "{s}");
    assert_eq!(s["ppl_a"], s["ppl_b"]);
    for r in &rows {
        let p = r["p"].as_array().unwrap();
        assert_eq!(p[0], p[1], "{r}");
        assert!(p[0].as_f64().unwrap() > 0.0);
    }
}

/// llama.cpp's backend, once for this test process.
fn backend() -> &'static LlamaBackend {
    static B: OnceLock<LlamaBackend> = OnceLock::new();
    B.get_or_init(|| {
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().unwrap()
    })
}

/// Every position's logits for `tokens` under `model`, in one batch, as f64.
fn all_logits(model: &LlamaModel, tokens: &[i32]) -> Vec<Vec<f64>> {
    let n = tokens.len() as u32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(512))
        .with_n_batch(512)
        .with_n_ubatch(512);
    let mut ctx = model.new_context(backend(), params).unwrap();
    let mut batch = LlamaBatch::new(n as usize, 1);
    for (i, t) in tokens.iter().enumerate() {
        batch.add(LlamaToken(*t), i as i32, &[0], true).unwrap();
    }
    ctx.decode(&mut batch).unwrap();
    (0..n as i32)
        .map(|i| ctx.get_logits_ith(i).iter().map(|&x| x as f64).collect())
        .collect()
}

/// `TEXT`'s token ids and every position's logits under models `a` and `b`,
/// evaluated here (not by tokenscope's engine), all positions in one batch.
type Logits = Vec<Vec<f64>>;
fn independent_logits(a: &Path, b: &Path) -> (Vec<i32>, Logits, Logits) {
    let params = LlamaModelParams::default();
    let a = LlamaModel::load_from_file(backend(), a, &params).unwrap();
    let b = LlamaModel::load_from_file(backend(), b, &params).unwrap();
    let tokens: Vec<i32> = a
        .vocab()
        .tokenize(TEXT.as_bytes(), false, false)
        .into_iter()
        .map(|t| t.0)
        .collect();
    let la = all_logits(&a, &tokens);
    let lb = all_logits(&b, &tokens);
    (tokens, la, lb)
}

/// log-softmax in f64.
fn log_softmax(l: &[f64]) -> Vec<f64> {
    let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + l.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    l.iter().map(|x| x - lse).collect()
}

#[test]
fn q4_1_against_its_q2_k_disagrees_by_the_kl_an_independent_computation_gives() {
    let smol = common::model(common::SMOL);
    let q2 = common::smol_q2k();
    let (rows, summaries) = compare(&[&smol, &q2], &["--text", TEXT]);
    let s = &summaries[0];
    let mean_kl = s["mean_kl"].as_f64().unwrap();
    let agreement = s["top1_agreement"].as_f64().unwrap();
    assert!(mean_kl > 0.01, "{s}");
    assert!(agreement < 1.0 && agreement > 0.0, "{s}");
    assert!(s["p99_kl"].as_f64().unwrap() <= s["max_kl"].as_f64().unwrap());
    assert!(
        s["ppl_b"].as_f64().unwrap() > s["ppl_a"].as_f64().unwrap(),
        "{s}"
    );

    // Independently: tokenize the text, evaluate both models on all of it in
    // one batch, full softmax in f64 at every position.
    let (tokens, la, lb) = independent_logits(&smol, &q2);
    // SmolLM2 adds no BOS: every token after the first is compared.
    assert_eq!(rows.len(), tokens.len() - 1);
    for (r, (i, id)) in rows.iter().zip(tokens.iter().enumerate().skip(1)) {
        assert_eq!(r["index"].as_u64().unwrap() as usize, i);
        assert_eq!(r["id"].as_i64().unwrap() as i32, *id);
    }
    let mut total = 0.0;
    let mut agree = 0usize;
    for q in 0..tokens.len() - 1 {
        let pa = log_softmax(&la[q]);
        let pb = log_softmax(&lb[q]);
        total += pa
            .iter()
            .zip(&pb)
            .map(|(x, y)| x.exp() * (x - y))
            .sum::<f64>();
        let argmax = |v: &[f64]| {
            v.iter()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |m, (i, &x)| if x > m.1 { (i, x) } else { m },
                )
                .0
        };
        agree += usize::from(argmax(&pa) == argmax(&pb));
    }
    let independent = total / (tokens.len() - 1) as f64;
    assert!(
        (mean_kl - independent).abs() <= 0.05 * independent,
        "compare's mean KL {mean_kl} vs independent {independent}"
    );
    let independent_agreement = agree as f64 / (tokens.len() - 1) as f64;
    assert!(
        (agreement - independent_agreement).abs() <= 0.1,
        "{agreement} vs {independent_agreement}"
    );
}

#[test]
fn different_vocabularies_are_refused() {
    let (_, err, ok) = common::run_binary(
        &common::models_dir(),
        &[
            "compare",
            "-m",
            common::model(common::SMOL).to_str().unwrap(),
            "-m",
            common::model(common::GEMMA).to_str().unwrap(),
            "--text",
            "Hello there",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("different vocabularies") && err.contains("49152 tokens vs 262144"),
        "{err}"
    );
    let (_, err, ok) = common::run_binary(
        &common::models_dir(),
        &[
            "compare",
            "-m",
            common::model(common::SMOL).to_str().unwrap(),
            "--text",
            "Hello",
        ],
    );
    assert!(!ok);
    assert!(err.contains("at least two models"), "{err}");
}

#[test]
fn a_reply_generated_by_a_is_compared_and_reported_as_text() {
    let smol = common::model(common::SMOL);
    let q2 = common::smol_q2k();
    let (rows, summaries) = compare(
        &[&smol, &q2],
        &["--prompt", "Name three colours.", "--max-tokens", "12"],
    );
    assert!(!rows.is_empty() && rows.len() <= 12, "{} rows", rows.len());
    assert_eq!(
        summaries[0]["n_tokens"].as_u64().unwrap() as usize,
        rows.len()
    );
    // The rows follow one another from the end of the prompt.
    let first = rows[0]["index"].as_u64().unwrap();
    assert!(first > 3, "after the chat-templated prompt");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["index"].as_u64().unwrap(), first + i as u64);
    }
    let (out, err, ok) = common::run_binary(
        &common::models_dir(),
        &[
            "compare",
            "-m",
            smol.to_str().unwrap(),
            "-m",
            q2.to_str().unwrap(),
            "--text",
            TEXT,
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("mean KL") && out.contains("Q2_K"), "{out}");
    // B's type as its tensors really are: SmolLM2's rows do not fit Q2_K's blocks.
    let b_row = out
        .lines()
        .find(|l| l.starts_with("SmolLM2-135M-Instruct.Q2_K"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(b_row.contains("Q2_K requested · mostly Q4_0"), "{out}");
    assert!(out.contains("The 10 tokens where"), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count(),
        10,
        "{out}"
    );
}

#[test]
fn bad_compare_requests_are_clear_errors() {
    let smol = common::model(common::SMOL);
    let s = smol.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut v = vec!["compare"];
        v.extend_from_slice(args);
        let (out, err, ok) = common::run_binary(&common::models_dir(), &v);
        assert!(!ok, "{out}");
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{err}"
        );
        err
    };
    let five = [
        "-m", s, "-m", s, "-m", s, "-m", s, "-m", s, "--text", "hi there",
    ];
    assert!(run(&five).contains("at most 4 models"));
    assert!(run(&["-m", s, "-m", s, "--text", ""]).contains("empty"));
}

#[test]
fn a_text_longer_than_the_context_is_compared_in_windows() {
    // About 370 tokens in a context of 256: every token compared once, in
    // order; the first window's rows as a text that fits gives them, where
    // both runs decode the same batches (positions 0-127: two batches of
    // 64; a batch of another length, or a cache of another size, rounds
    // differently, up to ~1% of p on this repetitive text).
    let smol = common::model(common::SMOL);
    let s = smol.to_str().unwrap();
    let sentence = "The keeper lit the lamp again, and the ships passed the reef.";
    let rows = |text: &str| {
        let args = [
            "compare", "-m", s, "-m", s, "--ctx", "256", "--format", "jsonl", "--text", text,
        ];
        let (out, err, ok) = common::run_binary(&common::models_dir(), &args);
        assert!(ok, "{err}");
        let rows: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &Value| v["type"] == "token")
            .collect();
        (rows, err)
    };
    let (long, note) = rows(&[sentence; 25].join(" "));
    let (short, quiet) = rows(&[sentence; 12].join(" "));
    assert!(
        long.len() > 300 && short.len() < 200,
        "{} {}",
        long.len(),
        short.len()
    );
    assert!(note.contains("overlapping windows"), "{note}");
    assert!(!quiet.contains("overlapping windows"), "{quiet}");
    let index = |r: &Value| r["index"].as_u64().unwrap();
    let indices: Vec<u64> = long.iter().map(index).collect();
    assert_eq!(indices, (1..=long.len() as u64).collect::<Vec<_>>());
    assert!(
        long.iter().all(|r| r["kl"][0].as_f64() == Some(0.0)),
        "a model against itself, in every window"
    );
    for (a, b) in long.iter().zip(&short) {
        assert_eq!((index(a), &a["id"]), (index(b), &b["id"]));
        if index(a) <= 128 {
            assert_eq!(a["p"], b["p"], "token {}", index(a));
        }
    }
}

/// Every row of an engine comparison of `a` (slot 0) and `b` (slot 1) on
/// `TEXT`, with `top_k` top tokens per model.
fn engine_rows(a: &Path, b: &Path, top_k: usize) -> Vec<tokenscope::engine::CompareRow> {
    use tokenscope::engine::{
        Command, CompareInput, CompareRequest, EngineHandle, Event, ModelRef, Placement,
    };
    // In a child process: this test process has llama.cpp's backend for the
    // independent computation.
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tokenscope"));
    let (mut handle, rx) = EngineHandle::spawn_with_receiver_at(&Placement::Process(exe));
    let settings = common::config_with(512).load_settings();
    handle.load(1, 0, ModelRef::Local(a.to_path_buf()), settings.clone());
    handle.load(2, 1, ModelRef::Local(b.to_path_buf()), settings);
    handle.send(Command::Compare {
        request: 3,
        req: CompareRequest {
            slots: vec![0, 1],
            input: CompareInput::Text {
                text: TEXT.into(),
                bos: true,
            },
            top_k,
        },
    });
    let mut rows = Vec::new();
    loop {
        match rx.recv().unwrap() {
            Event::Compared { rows: chunk, .. } => rows.extend(chunk),
            Event::Done { request: 3, .. } => break,
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    handle.shutdown();
    rows
}

#[test]
fn compare_rows_carry_each_models_top_k_and_bs_view_of_as_top() {
    let smol = common::model(common::SMOL);
    // A model against itself: B's top-k is A's, B's p of A's tokens is A's, KL 0.
    let rows = engine_rows(&smol, &smol, 8);
    assert!(rows.len() > 40, "{} rows", rows.len());
    for r in &rows {
        assert_eq!(r.top.len(), 2);
        assert_eq!(r.top[0].len(), 8);
        assert_eq!(r.top[0], r.top[1], "row {}", r.index);
        let a_ln_p: Vec<f64> = r.top[0].iter().map(|&(_, l)| l).collect();
        assert_eq!(r.ln_p_of_a_top, vec![a_ln_p.clone()]);
        assert_eq!(r.top[0][0].0, r.top1[0]);
        assert!(a_ln_p.windows(2).all(|w| w[0] >= w[1]), "most likely first");
        assert!(r.kl[0].abs() < 1e-6);
    }

    // Against its Q2_K: checked against the full softmax of both models' logits in f64.
    let q2 = common::smol_q2k();
    let rows = engine_rows(&smol, &q2, 5);
    let (_, la, lb) = independent_logits(&smol, &q2);
    let mut differ = 0;
    for r in &rows {
        let (pa, pb) = (log_softmax(&la[r.index - 1]), log_softmax(&lb[r.index - 1]));
        assert_eq!(r.top[1][0].0, r.top1[1]);
        for (&(id, ln_a), &ln_b) in r.top[0].iter().zip(&r.ln_p_of_a_top[0]) {
            // Batch splits move CPU numerics a little: a tolerance, not bits.
            assert!(
                (ln_a - pa[id as usize]).abs() < 0.05,
                "A {id} at {}",
                r.index
            );
            assert!(
                (ln_b - pb[id as usize]).abs() < 0.05,
                "B {id} at {}",
                r.index
            );
            // B's own top-k holds its most likely tokens: none of A's beats its first.
            assert!(ln_b <= r.top[1][0].1 + 1e-9);
        }
        for &(id, ln_b) in &r.top[1] {
            assert!(
                (ln_b - pb[id as usize]).abs() < 0.05,
                "B top {id} at {}",
                r.index
            );
        }
        differ += usize::from(r.top[0] != r.top[1]);
    }
    assert!(differ > 0, "a Q2_K ranks some candidates differently");
}

#[test]
fn chinese_split_over_tokens_reads_whole_in_the_jsonl_text() {
    let smol = common::model(common::SMOL);
    let (rows, _) = compare(
        &[&smol, &smol],
        &["--text", "The capital is 巴黎是法国的首都。"],
    );
    let text: String = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert!(text.ends_with(" capital is 巴黎是法国的首都。"), "{text:?}");
    // The pieces are the tokens themselves: some are lone bytes.
    assert!(
        rows.iter()
            .any(|r| r["piece"].as_str().unwrap().starts_with("<0x")),
        "{rows:?}"
    );
}
