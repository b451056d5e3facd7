//! Scoring a text on the real demo models: `Command::Score` agrees with the
//! same tokens forced one at a time through generation, sees a repetition
//! coming, scores a text longer than the context in windows; `score`'s JSONL;
//! and a generation's prompt scores (`score_prompt`).

mod common;

use common::*;
use tokenscope::engine::{
    ChatMessage, Event, GenerateRequest, PromptToken, ReplyPrefix, Role, SamplingParams,
    ScoreRequest, Stats, TokenStep,
};

/// What a scoring sent: its prompt, note, steps and stats.
struct Scored {
    prompt: Vec<PromptToken>,
    note: Option<String>,
    n_reused: usize,
    steps: Vec<TokenStep>,
    stats: Stats,
}

fn score(e: &mut Engine, text: &str, bos: bool, k: usize) -> Scored {
    let id = e.next_request();
    e.handle.score(
        id,
        0,
        ScoreRequest {
            text: text.into(),
            bos,
            top_k_inspect: k,
        },
    );
    let out = e.collect(id).expect("scoring works");
    let (prompt, note, n_reused) = out
        .events
        .iter()
        .find_map(|ev| match ev {
            Event::Started {
                prompt,
                note,
                n_reused,
                ..
            } => Some((
                prompt.clone(),
                note.as_ref().map(ToString::to_string),
                *n_reused,
            )),
            _ => None,
        })
        .expect("Started");
    Scored {
        prompt,
        note,
        n_reused,
        steps: out.steps,
        stats: out.stats.expect("stats"),
    }
}

/// ln p of a step (from its logit and lse, exact where p underflows).
fn ln_p(s: &TokenStep) -> f64 {
    s.logit.unwrap() as f64 - s.dist.as_ref().unwrap().lse as f64
}

const TEXT: &str = "The lighthouse keeper climbed the stairs every evening, lit the lamp, and wrote the weather in his logbook.";

#[test]
fn scores_every_token_after_the_first_with_the_bos_scored_from() {
    let mut e = engine(GEMMA, config_with(1024));
    let s = score(&mut e, TEXT, true, 5);
    assert_eq!(s.prompt[0].message, None, "Gemma's BOS in front");
    assert!(s.prompt[1..].iter().all(|t| t.message == Some(0)));
    let n = s.prompt.len();
    let idx: Vec<usize> = s.steps.iter().map(|s| s.index).collect();
    assert_eq!(idx, (1..n).collect::<Vec<_>>(), "every token after the BOS");
    let text: String = s.steps.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(text, TEXT, "the steps write the text");
    for st in &s.steps {
        assert!(st.forced && st.p_sampled.is_none());
        assert_eq!(st.id, s.prompt[st.index].id);
        let d = st.dist.as_ref().unwrap();
        assert_eq!(d.top.len(), 5);
        assert!(d.entropy.is_some());
    }
    assert_eq!(s.stats.n_prompt, n);
    assert_eq!(s.stats.n_generated, n - 1);
    assert_eq!(s.stats.n_prompt_evaluated, n);
    assert!(s.note.is_none());
    // Again: the logits of cached positions are gone, so nothing is reused.
    let again = score(&mut e, TEXT, true, 5);
    assert_eq!(again.n_reused, 0);
    assert_eq!(again.stats.n_prompt_evaluated, n);
    assert_eq!(again.steps.len(), n - 1);

    // Without the BOS (raw), the first token opens the text unscored.
    let raw = score(&mut e, TEXT, false, 0);
    assert_eq!(raw.prompt.len(), n - 1);
    assert_eq!(raw.steps.first().unwrap().index, 1);
    assert_eq!(raw.steps.len(), n - 2);
    assert!(
        raw.steps
            .iter()
            .all(|s| s.top().is_empty() && s.p().is_some())
    );
}

#[test]
fn the_log_likelihood_is_the_sum_over_the_same_tokens_forced_one_at_a_time() {
    let mut e = engine(GEMMA, config_with(1024));
    let s = score(&mut e, TEXT, true, 10);
    let ids: Vec<i32> = s.prompt[1..].iter().map(|t| t.id).collect();
    // The same tokens as a scored reply prefix after a prompt of the BOS alone.
    let id = e.start(GenerateRequest {
        raw: true,
        prefix: ReplyPrefix::Tokens(ids.clone()),
        score_prefix: true,
        ..GenerateRequest::new(
            vec![ChatMessage::new(Role::User, "")],
            SamplingParams::greedy(),
            0,
            10,
        )
    });
    let forced = e.collect(id).unwrap().steps;
    let forced: Vec<&TokenStep> = forced.iter().filter(|s| s.forced).collect();
    assert_eq!(forced.len(), ids.len());
    let (mut ll_score, mut ll_forced) = (0.0, 0.0);
    for (a, b) in s.steps.iter().zip(&forced) {
        assert_eq!(a.id, b.id);
        // Batches of 32 against one token at a time: CPU numerics move a
        // little (Gemma 3: up to ~0.2 nats on a token, seen).
        assert!(
            (ln_p(a) - ln_p(b)).abs() < 0.35,
            "token {} ({:?}): ln p {} vs {}",
            a.index,
            a.text,
            ln_p(a),
            ln_p(b)
        );
        ll_score += ln_p(a);
        ll_forced += ln_p(b);
    }
    assert!(
        (ll_score - ll_forced).abs() < 0.02 * ll_forced.abs() + 0.1,
        "log-likelihood {ll_score} vs {ll_forced}"
    );
}

#[test]
fn a_repeated_sentence_costs_fewer_bits_the_second_time() {
    let mut e = engine(SMOL, config_with(1024));
    let sentence = "Seven purple owls negotiated a treaty with the stubborn river.";
    let s = score(&mut e, &format!("{sentence} {sentence}"), true, 0);
    // Split the steps where their text passes the first sentence.
    let mut written = 0;
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for st in &s.steps {
        if written < sentence.len() {
            first.push(-ln_p(st));
        } else {
            second.push(-ln_p(st));
        }
        written += st.text.len();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (a, b) = (mean(&first), mean(&second));
    assert!(
        b < a / 2.0,
        "second time {b:.2} nats per token, first {a:.2}"
    );
}

#[test]
fn a_text_longer_than_the_context_is_scored_in_windows_every_token_once() {
    let mut e = engine(SMOL, config_with(256));
    let text = (0..40)
        .map(|i| format!("Line {i}: the keeper wrote down the wind and the waves."))
        .collect::<Vec<_>>()
        .join("\n");
    let s = score(&mut e, &text, true, 3);
    let n = s.prompt.len();
    assert!(n > 600, "{n} tokens");
    let idx: Vec<usize> = s.steps.iter().map(|s| s.index).collect();
    let first = usize::from(s.prompt[0].message.is_some());
    assert_eq!(
        idx,
        (first.max(1)..n).collect::<Vec<_>>(),
        "every token after the first scored once, in order"
    );
    let written: String = s.steps.iter().map(|s| s.text.as_str()).collect();
    assert!(text.ends_with(&written), "the text, after its first token");
    let note = s.note.expect("a note says the text was scored in windows");
    assert!(note.contains("windows") && note.contains("256"), "{note}");
    assert!(s.stats.n_prompt_evaluated > n, "windows overlap");
    assert!(s.stats.ctx_used <= 256);
    // A token deep in the text is predicted from its window as well as by a
    // context holding just that window.
    let last = s.steps.last().unwrap();
    assert!(last.p().unwrap() > 0.0);
}

#[test]
fn score_jsonl_has_a_row_per_scored_token_and_a_summary() {
    let (stdout, stderr, ok) = run_binary(
        &models_dir(),
        &[
            "score",
            "--model",
            "gemma",
            "--text",
            "The capital of France is Paris.",
            "--format",
            "jsonl",
            "--candidates",
            "4",
        ],
    );
    assert!(ok, "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let (summary, tokens) = rows.split_last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["n_tokens"].as_u64().unwrap() as usize, tokens.len());
    let mut ll = 0.0;
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t["type"], "token");
        assert_eq!(t["index"].as_u64().unwrap() as usize, i + 1);
        for key in ["id", "text", "piece", "p", "surprise_bits"] {
            assert!(!t[key].is_null(), "{key} missing in {t}");
        }
        let p = t["p"].as_f64().unwrap();
        let bits = t["surprise_bits"].as_f64().unwrap();
        assert!((bits + p.log2()).abs() < 1e-3, "{t}");
        ll += p.ln();
        let top = t["top"].as_array().unwrap();
        assert_eq!(top.len(), 4);
        for c in top {
            for key in ["id", "text", "p", "logit"] {
                assert!(!c[key].is_null(), "{key} missing in {c}");
            }
        }
        match t["rank"].as_u64() {
            Some(r) => assert_eq!(top[r as usize - 1]["id"], t["id"]),
            None => assert!(top.iter().all(|c| c["id"] != t["id"])),
        }
    }
    let got = summary["log_likelihood"].as_f64().unwrap();
    assert!((got - ll).abs() < 1e-3, "{got} vs {ll}");
    let ppl = summary["perplexity"].as_f64().unwrap();
    assert!((ppl - (-ll / tokens.len() as f64).exp()).abs() < 1e-3 * ppl);
    let bpt = summary["bits_per_token"].as_f64().unwrap();
    assert!((bpt - (-ll / tokens.len() as f64 / std::f64::consts::LN_2)).abs() < 1e-6);
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn score_text_prints_the_text_then_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("text.txt");
    std::fs::write(
        &file,
        "Twinkle, twinkle, little star,\nhow I wonder\u{1b}[31m what you are.",
    )
    .unwrap();
    let (stdout, stderr, ok) = run_binary(
        &models_dir(),
        &["score", "-m", "smol", "--file", file.to_str().unwrap()],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("Twinkle, twinkle, little star,\nhow I wonder␛[31m what you are."),
        "the text, control characters escaped, no colours off a terminal: {stdout:?}"
    );
    assert!(
        stdout.contains("tokens scored · log-likelihood"),
        "{stdout}"
    );
    assert!(stdout.contains("perplexity"), "{stdout}");
}

#[test]
fn score_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let (_, stderr, ok) = run_binary(
        &models_dir(),
        &["score", "-m", "smol", "--file", missing.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        stderr.contains("cannot read the text to score from") && stderr.contains("missing.txt"),
        "{stderr}"
    );
    let (_, stderr, ok) = run_binary(&models_dir(), &["score", "-m", "smol", "--text", ""]);
    assert!(!ok);
    assert!(stderr.contains("the text to score is empty"), "{stderr}");
    let (_, stderr, ok) = run_binary(
        &models_dir(),
        &["score", "-m", "no-such-model", "--text", "hi there"],
    );
    assert!(!ok);
    assert!(stderr.contains("no-such-model"), "{stderr}");
}

/// A generation's prompt scores, in order, and its `Started` fields.
struct Generated {
    prompt: Vec<PromptToken>,
    n_reused: usize,
    scores: Vec<TokenStep>,
    steps: Vec<TokenStep>,
    /// Whether every `PromptScores` came before the first `Token`.
    scores_first: bool,
}

fn generate_scored(e: &mut Engine, req: GenerateRequest) -> Generated {
    let id = e.start(GenerateRequest {
        score_prompt: true,
        ..req
    });
    let mut g = Generated {
        prompt: Vec::new(),
        n_reused: 0,
        scores: Vec::new(),
        steps: Vec::new(),
        scores_first: true,
    };
    loop {
        match e.rx.recv().expect("engine alive") {
            ev if ev.request() != Some(id) => {}
            Event::Started {
                prompt, n_reused, ..
            } => {
                g.prompt = prompt;
                g.n_reused = n_reused;
            }
            Event::PromptScores { steps, .. } => {
                assert!(steps.len() <= tokenscope::engine::SCORE_CHUNK);
                g.scores_first &= g.steps.is_empty();
                g.scores.extend(steps);
            }
            Event::Token { step, .. } => g.steps.push(*step),
            Event::Done { .. } => return g,
            ev if ev.is_final() => panic!("{ev:?}"),
            _ => {}
        }
    }
}

fn raw(text: &str, max_tokens: u32) -> GenerateRequest {
    raw_greedy(text, max_tokens, 5)
}

#[test]
fn prompt_scores_cover_every_evaluated_position_and_match_score() {
    let mut e = engine(GEMMA, config_with(1024));
    let g = generate_scored(&mut e, raw(TEXT, 3));
    assert!(g.scores_first);
    assert_eq!(g.n_reused, 0);
    let n = g.prompt.len();
    let idx: Vec<usize> = g.scores.iter().map(|s| s.index).collect();
    assert_eq!(
        idx,
        (1..n).collect::<Vec<_>>(),
        "every position after the first"
    );
    assert_eq!(g.steps.len(), 3, "the reply goes on as without scores");
    let text: String = g.scores.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(text, TEXT);

    let s = score(&mut e, TEXT, true, 5);
    assert_eq!(
        s.prompt.iter().map(|t| t.id).collect::<Vec<_>>(),
        g.prompt.iter().map(|t| t.id).collect::<Vec<_>>(),
        "a raw prompt is the text's tokens after the BOS"
    );
    for (a, b) in g.scores.iter().zip(&s.steps) {
        assert_eq!((a.index, a.id), (b.index, b.id));
        assert!(a.forced && a.p_sampled.is_none());
        assert!(
            (ln_p(a) - ln_p(b)).abs() < 0.05,
            "token {}: ln p {} vs {}",
            a.index,
            ln_p(a),
            ln_p(b)
        );
        assert_eq!(a.top().len(), 5);
    }
    // Without score_prompt: the same reply, no scores.
    let id = e.start(raw(TEXT, 3));
    let plain = e.collect(id).unwrap();
    assert!(
        !plain
            .events
            .iter()
            .any(|ev| matches!(ev, Event::PromptScores { .. }))
    );
    let ids = |v: &[TokenStep]| v.iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(&plain.steps), ids(&g.steps));
}

#[test]
fn with_kv_reuse_only_the_positions_not_reused_are_scored() {
    let mut e = engine(GEMMA, config_with(1024));
    let first = generate_scored(&mut e, raw(TEXT, 2));
    assert_eq!(first.scores.len(), first.prompt.len() - 1);
    let longer = format!("{TEXT} The next morning a ship came into the bay.");
    let second = generate_scored(&mut e, raw(&longer, 2));
    let n = second.prompt.len();
    // The first prompt is in the cache; one position less is reused than
    // could be, so that the first new position is scored.
    let common = first
        .prompt
        .iter()
        .zip(&second.prompt)
        .take_while(|(a, b)| a.id == b.id)
        .count();
    assert!(common > 10, "{common}");
    assert_eq!(second.n_reused, common - 1);
    let idx: Vec<usize> = second.scores.iter().map(|s| s.index).collect();
    assert_eq!(
        idx,
        (common..n).collect::<Vec<_>>(),
        "only the new positions"
    );
    // They agree with scoring the whole text from scratch.
    let s = score(&mut e, &longer, true, 5);
    for a in &second.scores {
        let b = &s.steps[a.index - 1];
        assert_eq!((a.index, a.id), (b.index, b.id));
        assert!(
            (ln_p(a) - ln_p(b)).abs() < 0.35,
            "token {}: ln p {} vs {}",
            a.index,
            ln_p(a),
            ln_p(b)
        );
    }
}

/// The bench's bound for scoring against prefill: the output layer it adds
/// per position is vocabulary × hidden (tied to the token embedding in both
/// demo models), read here from the metadata, not the tensors.
#[test]
fn the_score_bound_weighs_the_output_layer_against_the_body() {
    for (file, arch) in [(GEMMA, "gemma3"), (SMOL, "llama")] {
        let h = tokenscope::gguf::read_header(&model(file)).unwrap();
        let hidden = h.get_u64(&format!("{arch}.embedding_length")).unwrap();
        let vocab = h
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.array_len())
            .unwrap();
        let head = (hidden * vocab) as f64;
        let bound = tokenscope::commands::bench::score_bound(&h);
        // body / (body + head) = bound, so body = head · bound / (1 − bound):
        // the body is every matrix but the (tied) embedding.
        let body = head * bound / (1.0 - bound);
        let matrices: u64 = h
            .tensors
            .iter()
            .filter(|t| t.dims.len() >= 2 && t.name != "token_embd.weight")
            .map(|t| t.n_elements)
            .sum();
        assert!(
            (body - matrices as f64).abs() < 1.0,
            "{file}: body {body} vs {matrices}"
        );
        assert!(bound > 0.0 && bound < 1.0, "{file}: {bound}");
        eprintln!("{file}: scoring can reach at most {bound:.2}x of prefill");
    }
}
