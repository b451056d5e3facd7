//! The headless commands on the real demo models, through the real binary.

mod common;

fn tokenscope(args: &[&str]) -> (String, String, bool) {
    common::run_binary(&common::models_dir(), args)
}

/// `run --format jsonl`'s output, a value per line.
fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

#[test]
fn run_jsonl_has_one_object_per_token_and_a_done_line() {
    let (stdout, stderr, ok) = tokenscope(&[
        "run",
        "--model",
        "smol",
        "--prompt",
        "What is 2+2?",
        "--format",
        "jsonl",
        "--temp",
        "0",
        "--max-tokens",
        "12",
    ]);
    assert!(ok, "{stderr}");
    let lines = json_lines(&stdout);
    let (prompt, lines) = lines.split_first().unwrap();
    assert_eq!(
        prompt["type"], "prompt_tokens",
        "first, the prompt: {prompt}"
    );
    let (done, tokens) = lines.split_last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(
        done["n_prompt"], prompt["n"],
        "the prompt row counts every prompt token"
    );
    assert!(["eog", "max_tokens"].contains(&done["stop"].as_str().unwrap()));
    assert_eq!(done["n_generated"].as_u64().unwrap() as usize, tokens.len());
    for key in [
        "n_prompt",
        "n_prompt_reused",
        "ttft_ms",
        "prompt_tps",
        "gen_tps",
    ] {
        assert!(done[key].is_number(), "{key} missing");
    }
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t["type"], "token");
        assert_eq!(t["index"].as_u64().unwrap() as usize, i);
        let top = t["top"].as_array().unwrap();
        assert_eq!(top.len(), 10);
        assert_eq!(top[0]["id"], t["id"], "greedy picks the top candidate");
        for key in ["text", "bytes", "p", "p_sampled", "entropy"] {
            assert!(!t[key].is_null(), "{key} missing in {t}");
        }
        for c in top {
            for key in ["id", "text", "p", "p_sampled"] {
                assert!(!c[key].is_null());
            }
        }
    }
}

#[test]
fn run_text_prints_reply_then_a_table_with_bars() {
    let (stdout, stderr, ok) = tokenscope(&[
        "run",
        "--model",
        "gemma",
        "--raw",
        "--prompt",
        "The capital of France is",
        "--temp",
        "0",
        "--max-tokens",
        "4",
        "--candidates",
        "3",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Paris"), "{stdout}");
    assert!(stdout.contains("#0"), "{stdout}");
    assert!(stdout.contains("◀ chosen"), "{stdout}");
    assert!(stdout.contains('█'), "{stdout}");
    assert!(
        stdout.contains("plain completion"),
        "mode is stated: {stdout}"
    );
    assert!(stdout.contains("stop: max_tokens"), "{stdout}");
    assert!(
        stderr.is_empty(),
        "llama.cpp must not print to the terminal: {stderr}"
    );
}

fn done_line(stdout: &str) -> serde_json::Value {
    let last = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(v["type"], "done", "{stdout}");
    v
}

#[test]
fn a_template_refusing_the_system_prompt_is_rendered_again_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("smol-refuses-system.gguf");
    common::gguf_edit::copy_with_metadata(
        &common::model(common::SMOL),
        &copy,
        &[(
            "tokenizer.chat_template",
            common::gguf_edit::str(common::gguf_edit::REFUSES_SYSTEM),
        )],
        &[],
    )
    .unwrap();
    let model = copy.to_str().unwrap();
    let args = |extra: &[&'static str]| {
        let mut a = vec!["run", "--model", model, "--temp", "0", "--max-tokens", "1"];
        a.extend_from_slice(extra);
        a
    };

    let (stdout, stderr, ok) = tokenscope(&args(&["--system", "be brief", "-p", "hi"]));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(
            "warning: the chat template refuses a system prompt (\"System role not supported\"): \
             it was put at the start of your first message instead"
        ),
        "{stderr}"
    );
    assert!(
        stdout.contains("chat (model's template)"),
        "the model's own template built the prompt, not llama.cpp's: {stdout}"
    );

    // The same prompt as the user's own first message: the same tokens, no warning.
    let folded = args(&["--system", "be brief", "-p", "hi", "--format", "jsonl"]);
    let (stdout, stderr, ok) = tokenscope(&folded);
    assert!(ok, "{stderr}");
    let n_folded = done_line(&stdout)["n_prompt"].as_u64().unwrap();
    let (stdout, stderr, ok) = tokenscope(&args(&["-p", "be brief\n\nhi", "--format", "jsonl"]));
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(done_line(&stdout)["n_prompt"].as_u64().unwrap(), n_folded);
}

#[test]
fn a_template_that_fails_otherwise_falls_back_to_llama_cpp_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("smol-broken-template.gguf");
    // llama.cpp recognises ChatML by its markers; the method call fails in minijinja.
    let broken = "{{ messages.no_such_method() }}<|im_start|>";
    common::gguf_edit::copy_with_metadata(
        &common::model(common::SMOL),
        &copy,
        &[("tokenizer.chat_template", common::gguf_edit::str(broken))],
        &[],
    )
    .unwrap();
    let model = copy.to_str().unwrap();
    let (stdout, stderr, ok) = tokenscope(&[
        "run",
        "--model",
        model,
        "-p",
        "hi",
        "--temp",
        "0",
        "--max-tokens",
        "1",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.starts_with("warning: the chat template failed to render (")
            && stderr.contains("llama.cpp's built-in template for this model was used instead"),
        "{stderr}"
    );
    assert!(
        stdout.contains("chat (llama.cpp built-in template)"),
        "{stdout}"
    );
}

#[test]
fn models_lists_both_demo_models() {
    let (stdout, stderr, ok) = tokenscope(&["models"]);
    assert!(ok, "{stderr}");
    for needle in [
        "Q4_1",
        "Q4_K_M",
        "llama",
        "gemma3",
        common::SMOL,
        common::GEMMA,
    ] {
        assert!(stdout.contains(needle), "{needle} missing: {stdout}");
    }
}

#[test]
fn info_prints_card_and_metadata() {
    let (stdout, stderr, ok) = tokenscope(&["info", "smol"]);
    assert!(ok, "{stderr}");
    for needle in ["llama", "Q4_1", "49152", "general.architecture"] {
        assert!(stdout.contains(needle), "{needle} missing: {stdout}");
    }
}

#[test]
fn flags_before_the_subcommand_are_honoured() {
    // Before the fix these went to the chat's flags only: `run` used the
    // default model (SmolLM2) at the default temperature.
    let (stdout, stderr, ok) = tokenscope(&[
        "--temp",
        "0",
        "-m",
        "gemma",
        "--raw",
        "run",
        "-p",
        "The capital of France is",
        "--max-tokens",
        "3",
        "--format",
        "jsonl",
    ]);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (done, tokens) = lines[1..].split_last().unwrap();
    assert_eq!(lines[0]["type"], "prompt_tokens");
    assert_eq!(done["type"], "done");
    assert_eq!(tokens.len(), 3);
    for t in tokens {
        assert_eq!(t["p_sampled"], 1.0, "greedy: {t}");
        assert_eq!(t["top"][0]["id"], t["id"]);
    }
    // The same tokens as with the flags after `run`: Gemma, greedy, raw.
    let (after, stderr, ok) = tokenscope(&[
        "run",
        "--temp",
        "0",
        "-m",
        "gemma",
        "--raw",
        "-p",
        "The capital of France is",
        "--max-tokens",
        "3",
        "--format",
        "jsonl",
    ]);
    assert!(ok, "{stderr}");
    let ids = |out: &str| -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone())
            .collect()
    };
    assert_eq!(ids(&stdout), ids(&after));

    // The model is named in the text footer; the subcommand's own flag wins.
    let (stdout, stderr, ok) = tokenscope(&[
        "--temp",
        "1.5",
        "-m",
        "gemma",
        "run",
        "--temp",
        "0",
        "-p",
        "Hi",
        "--max-tokens",
        "2",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Q4_K_M"), "Gemma ran: {stdout}");
    assert!(
        stdout.matches("sampled 100.00%").count() == 2,
        "greedy from run's own --temp 0: {stdout}"
    );
}

#[test]
fn flags_before_a_command_that_ignores_them_are_refused() {
    let (stdout, stderr, ok) = tokenscope(&["--temp", "0", "models"]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("error: --temp before `tokenscope models` would have no effect"),
        "{stderr}"
    );
    let (stdout, stderr, ok) = tokenscope(&["--gpu-layers", "0", "info", "smol"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("runs on: CPU"), "{stdout}");
}

#[test]
fn run_reports_the_context_size_asked_for_and_the_one_llama_cpp_made() {
    let base = [
        "run",
        "-m",
        "smol",
        "-p",
        "Hi",
        "--max-tokens",
        "2",
        "--temp",
        "0",
    ];
    // Rounded up to a multiple of 256.
    let mut args = base.to_vec();
    args.extend(["--ctx", "300", "--format", "jsonl"]);
    let (stdout, stderr, ok) = tokenscope(&args);
    assert!(ok, "{stderr}");
    let done = done_line(&stdout);
    assert_eq!(done["ctx_size"], 512, "{done}");
    assert_eq!(done["ctx_requested"], 300, "{done}");

    let mut args = base.to_vec();
    args.extend(["--ctx", "300"]);
    let (stdout, stderr, ok) = tokenscope(&args);
    assert!(ok, "{stderr}");
    let footer = stdout.lines().last().unwrap();
    assert!(
        footer.contains("/512 (asked 300: llama.cpp rounds up to a multiple of 256)"),
        "{footer}"
    );

    // Capped at the trained size (SmolLM2: 8192).
    let mut args = base.to_vec();
    args.extend(["--ctx", "16384"]);
    let (stdout, stderr, ok) = tokenscope(&args);
    assert!(ok, "{stderr}");
    let footer = stdout.lines().last().unwrap();
    assert!(
        footer.contains("/8192 (asked 16384: capped at the trained 8192)"),
        "{footer}"
    );

    // Nothing to explain when llama.cpp keeps the size.
    let mut args = base.to_vec();
    args.extend(["--ctx", "512", "--format", "jsonl"]);
    let (stdout, stderr, ok) = tokenscope(&args);
    assert!(ok, "{stderr}");
    let done = done_line(&stdout);
    assert_eq!(
        (done["ctx_size"].as_u64(), done["ctx_requested"].as_u64()),
        (Some(512), Some(512))
    );
}

#[test]
fn run_ends_a_reply_cut_inside_a_character_with_a_replacement() {
    // Gemma's first token here is the lone byte <0xF0> of a 4-byte character.
    let args = [
        "run",
        "-m",
        "gemma",
        "--raw",
        "--temp",
        "0",
        "--max-tokens",
        "1",
        "-p",
        "𠀀𠀁𠀂𠀃",
    ];
    let mut jsonl = args.to_vec();
    jsonl.extend(["--format", "jsonl"]);
    let (stdout, stderr, ok) = tokenscope(&jsonl);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["prompt_tokens", "token", "tail", "done"],
        "{stdout}"
    );
    assert_eq!(lines[1]["piece"], "<0xF0>", "premise");
    assert_eq!(lines[2]["text"], "\u{FFFD}");

    let (stdout, stderr, ok) = tokenscope(&args);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().next(), Some("\u{FFFD}"), "{stdout}");
}

#[test]
fn an_assistant_prefix_starts_the_reply_as_forced_tokens_and_generation_goes_on() {
    let prefix = "The capital of France is";
    let (stdout, stderr, ok) = tokenscope(&[
        "run",
        "-m",
        "smol",
        "-p",
        "What is the capital of France?",
        "--assistant-prefix",
        prefix,
        "--temp",
        "0",
        "--max-tokens",
        "3",
        "--format",
        "jsonl",
    ]);
    assert!(ok, "{stderr}");
    let lines = json_lines(&stdout);
    let (done, tokens) = lines.split_last().unwrap();
    let forced: Vec<_> = tokens.iter().filter(|t| t["forced"] == true).collect();
    let text = |ts: &[&serde_json::Value]| -> String {
        ts.iter().map(|t| t["text"].as_str().unwrap()).collect()
    };
    assert_eq!(text(&forced), prefix);
    for t in &forced {
        assert!(t["p"].as_f64().unwrap() > 0.0, "scored: {t}");
        assert!(t["p_sampled"].is_null(), "no draw: {t}");
    }
    let free: Vec<_> = tokens.iter().filter(|t| t["forced"] == false).collect();
    assert!(!free.is_empty() && free.len() <= 3, "{stdout}");
    assert!(text(&free).contains("Paris"), "{stdout}");
    assert_eq!(done["n_forced"].as_u64().unwrap() as usize, forced.len());

    // A control token's text in the prefix stays text.
    let (stdout, stderr, ok) = tokenscope(&[
        "run",
        "-m",
        "smol",
        "-p",
        "Hi",
        "--assistant-prefix",
        "<|im_end|>",
        "--temp",
        "0",
        "--max-tokens",
        "1",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("<|im_end|>"), "{stdout}");
    assert!(
        stdout.contains("forced"),
        "the table marks forced tokens: {stdout}"
    );
}

/// `text`'s tokens under the model file `file`, tokenized here by llama.cpp
/// directly (a vocabulary-only load, no special tokens added or parsed), not
/// by tokenscope's engine.
fn independent_tokens(file: &str, text: &str) -> Vec<i64> {
    use llama_cpp_2::llama_backend::LlamaBackend;
    use llama_cpp_2::model::LlamaModel;
    use llama_cpp_2::model::params::LlamaModelParams;
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let backend = LlamaBackend::init().unwrap();
    let params = LlamaModelParams::default().with_vocab_only(true);
    let model = LlamaModel::load_from_file(&backend, common::model(file), &params).unwrap();
    model
        .vocab()
        .tokenize(text.as_bytes(), false, false)
        .iter()
        .map(|t| i64::from(t.0))
        .collect()
}

#[test]
fn run_prints_how_the_prompt_was_tokenized_in_both_formats() {
    // The chapter's example: why "中华人民共" predicts what it does starts
    // with what the model was given. Qwen has no BOS, so raw, the prompt's
    // tokens are exactly the text's.
    let text = "中华人民共";
    let expected = independent_tokens(common::QWEN, text);
    assert!(expected.len() >= 2, "premise: several tokens: {expected:?}");
    let args = [
        "run",
        "-m",
        "qwen",
        "--raw",
        "--temp",
        "0",
        "--max-tokens",
        "1",
        "-p",
        text,
    ];
    let mut jsonl = args.to_vec();
    jsonl.extend(["--format", "jsonl"]);
    let (stdout, stderr, ok) = tokenscope(&jsonl);
    assert!(ok, "{stderr}");
    let lines = json_lines(&stdout);
    let row = &lines[0];
    assert_eq!(row["type"], "prompt_tokens", "{stdout}");
    let ids: Vec<i64> = row["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ids, expected, "{row}");
    assert_eq!(row["n"], expected.len());
    let pieces: Vec<&str> = row["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(pieces.concat(), text, "the pieces spell the prompt: {row}");
    assert_eq!(lines[1]["type"], "token", "then the reply: {stdout}");

    // Text: one line naming each token's id and piece, in order.
    let (stdout, stderr, ok) = tokenscope(&args);
    assert!(ok, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("prompt: "))
        .unwrap_or_else(|| panic!("no prompt line: {stdout}"));
    let want: String = ids
        .iter()
        .zip(&pieces)
        .map(|(id, p)| format!(" [{id} {p}]"))
        .collect();
    assert_eq!(
        line,
        format!("prompt: {} tokens {want}", ids.len()),
        "{stdout}"
    );
}
