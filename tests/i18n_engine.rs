//! The engine's refusals in Chinese: the real binary under `--lang zh`
//! hits each refusal a command can reach (models with different
//! vocabularies, a rollouts shape, a chat template's notes, what a remote
//! llama-server cannot do) and says it in Chinese, with no English left; the
//! same commands under `--lang en` say what they said before; and a refusal
//! the engine process makes in Chinese still reaches a JSON line in English,
//! byte for byte what an English run writes. (Refusals no command reaches are
//! unit tests: `engine::api::error`, `engine::api::model`.)

mod common;

use std::path::Path;

use common::lang::{assert_no_english, run_in};
use common::server::LlamaServer;

/// The binary with `--lang lang` before `args`: (stdout, stderr, success).
fn run(lang: &str, args: &[&str]) -> (String, String, bool) {
    run_in(None, &[], &[&["--lang", lang][..], args].concat())
}

/// `compare` of SmolLM2 (49152 tokens) against Gemma 3 (262144) on a text.
fn compare_args(format: &'static str) -> Vec<String> {
    let m = |name: &str| common::model(name).to_str().expect("utf-8 path").to_owned();
    ["compare", "-m", &m(common::SMOL), "-m", &m(common::GEMMA)]
        .into_iter()
        .map(str::to_owned)
        .chain(["--text", "Hello there", "--format", format].map(str::to_owned))
        .collect()
}

#[test]
fn models_with_different_vocabularies_are_refused_in_chinese() {
    let args = compare_args("text");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, zh, ok) = run("zh", &args);
    assert!(!ok, "{zh}");
    assert!(
        zh.contains("的词表不同（49152 个词元对 262144 个）")
            && zh.contains("逐词元比较需要相同的词元")
            && zh.contains("`tokenscope quantize`"),
        "{zh}"
    );
    assert_no_english(
        &zh,
        &[
            "different vocabularies",
            "tokens vs",
            "token-by-token",
            "compare variants",
        ],
    );
    let (_, en, ok) = run("en", &args);
    assert!(!ok, "{en}");
    assert!(
        en.contains("have different vocabularies (49152 tokens vs 262144): a token-by-token comparison needs the same tokens"),
        "{en}"
    );
}

/// The engine process runs in Chinese and refuses the comparison; the JSON
/// line that ends `--format jsonl` says it in English, as an English run does.
#[test]
fn a_refusal_made_in_chinese_reaches_json_in_english() {
    let args = compare_args("jsonl");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (zh_out, zh_err, ok) = run("zh", &args);
    assert!(!ok, "{zh_err}");
    let (en_out, en_err, ok) = run("en", &args);
    assert!(!ok, "{en_err}");
    assert_eq!(zh_out, en_out, "JSON is the same in both languages");
    let last = en_out.lines().last().expect("an error line");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(v["type"], "error", "{last}");
    let text = v["error"].as_str().expect("error text");
    assert!(
        text.contains("different vocabularies (49152 tokens vs 262144)"),
        "{text}"
    );
    // While the person reading stderr gets Chinese.
    assert!(zh_err.contains("的词表不同"), "{zh_err}");
}

#[test]
fn a_rollouts_shape_is_refused_in_chinese() {
    let smol = common::model(common::SMOL);
    let smol = smol.to_str().expect("utf-8 path");
    for (extra, zh_words, en_words) in [
        (
            ["--branches", "1"],
            "请求了 1 条展开：请求 2 到",
            "1 rollouts asked for: ask for 2 to",
        ),
        (
            ["--tokens", "0"],
            "请求了 0 个词元的展开",
            "rollouts of 0 tokens asked for",
        ),
    ] {
        let args = [&["rollouts", "--model", smol, "-p", "Hi"][..], &extra[..]].concat();
        let (_, zh, ok) = run("zh", &args);
        assert!(!ok && zh.contains(zh_words), "{zh}");
        assert_no_english(&zh, &["asked for", "rollouts of", "at least 1 token"]);
        let (_, en, ok) = run("en", &args);
        assert!(!ok && en.contains(en_words), "{en}");
    }
}

/// SmolLM2 with its chat template replaced by `template`, in `dir`.
fn smol_with_template(dir: &Path, template: &str) -> String {
    let copy = dir.join("smol-template.gguf");
    common::gguf_edit::copy_with_metadata(
        &common::model(common::SMOL),
        &copy,
        &[("tokenizer.chat_template", common::gguf_edit::str(template))],
        &[],
    )
    .expect("a copy with another template");
    copy.to_str().expect("utf-8 path").to_owned()
}

/// The engine process words a chat template's notes (`run`'s warnings) in
/// the parent's language.
#[test]
fn the_chat_templates_notes_are_in_chinese() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = smol_with_template(dir.path(), common::gguf_edit::REFUSES_SYSTEM);
    let args = [
        "run",
        "--model",
        &model,
        "--temp",
        "0",
        "--max-tokens",
        "1",
        "--system",
        "be brief",
        "-p",
        "hi",
    ];
    let (_, zh, ok) = run("zh", &args);
    assert!(ok, "{zh}");
    assert!(
        zh.contains(
            "聊天模板不接受系统提示词（\"System role not supported\"）：已将它放在你第一条消息的开头"
        ),
        "{zh}"
    );
    assert_no_english(&zh, &["refuses a system prompt", "first message instead"]);
    let (_, en, ok) = run("en", &args);
    assert!(ok, "{en}");
    assert!(
        en.contains("warning: the chat template refuses a system prompt (\"System role not supported\"): it was put at the start of your first message instead"),
        "{en}"
    );

    // A template that fails otherwise: llama.cpp's built-in one, said so.
    let dir = tempfile::tempdir().expect("temp dir");
    let model = smol_with_template(dir.path(), "{{ messages.no_such_method() }}<|im_start|>");
    let args = [
        "run",
        "--model",
        &model,
        "-p",
        "hi",
        "--temp",
        "0",
        "--max-tokens",
        "1",
    ];
    let (_, zh, ok) = run("zh", &args);
    assert!(ok, "{zh}");
    assert!(
        zh.contains("聊天模板渲染失败（") && zh.contains("：改用了 llama.cpp 为这个模型内置的模板"),
        "{zh}"
    );
    assert_no_english(&zh, &["failed to render", "built-in template"]);
    let (_, en, ok) = run("en", &args);
    assert!(ok, "{en}");
    assert!(
        en.contains("warning: the chat template failed to render (")
            && en.contains("llama.cpp's built-in template for this model was used instead"),
        "{en}"
    );
}

/// What a real llama-server cannot do, refused by the remote engine in the
/// person's language (the action in Chinese word order), and in English in
/// a JSON line.
#[test]
fn what_a_remote_server_cannot_do_is_refused_in_chinese() {
    let server = LlamaServer::start(common::SMOL, &[]);
    let url = server.url.as_str();
    let rollouts = |lang: &str, format: &str| {
        run(
            lang,
            &["rollouts", "--server", url, "-p", "Hi", "--format", format],
        )
    };
    let (_, zh, ok) = rollouts("zh", "text");
    assert!(!ok, "{zh}");
    assert!(
        zh.contains("展开排名靠前的候选需要模型在每一步的 logits") && zh.contains(url),
        "{zh}"
    );
    assert_no_english(
        &zh,
        &[
            "rolling out",
            "needs the model's logits",
            "load a local model",
        ],
    );
    let (_, en, ok) = rollouts("en", "text");
    assert!(!ok, "{en}");
    assert!(
        en.contains("rolling out the top candidates needs the model's logits at every step, which the remote server at"),
        "{en}"
    );
    let (zh_out, _, _) = rollouts("zh", "jsonl");
    let (en_out, _, _) = rollouts("en", "jsonl");
    assert_eq!(zh_out, en_out);
    assert!(
        en_out.contains("rolling out the top candidates needs the model's logits"),
        "{en_out}"
    );

    // A reply started with given text needs --raw on a remote engine.
    let args = [
        "run",
        "--server",
        url,
        "-p",
        "Hi",
        "--assistant-prefix",
        "Sure",
        "--max-tokens",
        "2",
    ];
    let (_, zh, ok) = run("zh", &args);
    assert!(!ok, "{zh}");
    assert!(zh.contains("用给定文本开始回复只能配合 --raw 使用"), "{zh}");
    assert_no_english(&zh, &["works with --raw only", "starts replies itself"]);
    let (_, en, ok) = run("en", &args);
    assert!(!ok, "{en}");
    assert!(
        en.contains("starting the reply with given text works with --raw only on a remote engine"),
        "{en}"
    );
}

/// A server that cannot be reached, or a URL that is not a server's: the
/// reason inside the error is Chinese too, and English as before.
#[test]
fn an_unreachable_server_and_a_bad_url_are_explained_in_chinese() {
    let url = format!("http://127.0.0.1:{}", common::server::free_port());
    let args = ["run", "--server", &url, "-p", "Hi", "--max-tokens", "1"];
    let (_, zh, ok) = run("zh", &args);
    assert!(!ok, "{zh}");
    assert!(
        zh.contains(&format!("无法连接 {url} 上的服务器：连接被拒绝")),
        "{zh}"
    );
    assert_no_english(&zh, &["connection was refused", "cannot reach"]);
    let (_, en, ok) = run("en", &args);
    assert!(!ok, "{en}");
    assert!(
        en.contains(&format!(
            "cannot reach the server at {url}: the connection was refused"
        )),
        "{en}"
    );

    let args = ["run", "--server", "ftp://example.com", "-p", "Hi"];
    let (_, zh, ok) = run("zh", &args);
    assert!(!ok && zh.contains("协议是 ftp，不是 http 或 https"), "{zh}");
    assert_no_english(&zh, &["the scheme is", "not http or https"]);
    let (_, en, ok) = run("en", &args);
    assert!(
        !ok && en.contains("the scheme is ftp, not http or https"),
        "{en}"
    );
}

/// A refusal the command itself makes (the reply ended before `--at`) goes
/// the same way: Chinese on stderr, English in the JSONL error line, which is
/// byte for byte an English run's.
#[test]
fn a_commands_own_refusal_reaches_json_in_english() {
    let smol = common::model(common::SMOL);
    let args = [
        "rollouts",
        "--model",
        smol.to_str().expect("utf-8 path"),
        "-p",
        "Answer with one word only: what color is the sky?",
        "--at",
        "250",
        "--format",
        "jsonl",
    ];
    let (zh_out, zh_err, ok) = run("zh", &args);
    assert!(!ok, "{zh_err}");
    let (en_out, en_err, ok) = run("en", &args);
    assert!(!ok, "{en_err}");
    assert_eq!(zh_out, en_out);
    let last = en_out.lines().last().expect("an error line");
    assert!(
        last.starts_with(r#"{"error":"the reply ended (eog) after "#),
        "{last}"
    );
    assert!(zh_err.contains("没到回复词元 250"), "{zh_err}");
    assert!(en_err.contains("before reply token 250"), "{en_err}");
}

/// `score --server` against a real llama-server: refused, since a server
/// gives no log-probabilities of a text it is sent (it once scored the text
/// with a local demo model instead, under the server's name). Chinese on
/// stderr, English as before, and the JSONL error line byte for byte the
/// English run's, with no token line before it.
#[test]
fn score_through_a_server_is_refused_not_scored_locally() {
    let server = LlamaServer::start(common::SMOL, &[]);
    let url = server.url.as_str();
    let score = |lang: &str, format: &str| {
        run(
            lang,
            &[
                "score",
                "--server",
                url,
                "--text",
                "The sky is blue.",
                "--format",
                format,
            ],
        )
    };
    let (out, zh, ok) = score("zh", "text");
    assert!(!ok, "scored: {out}\n{zh}");
    assert!(
        zh.contains("需要模型在每一步的 logits") && zh.contains(url),
        "{zh}"
    );
    assert_no_english(&zh, &["scoring a text", "needs the model's logits"]);
    let (_, en, ok) = score("en", "text");
    assert!(!ok, "{en}");
    assert!(
        en.contains(&format!(
            "scoring a text needs the model's logits at every step, which the remote server at {url} does not give"
        )),
        "{en}"
    );
    let (zh_out, _, ok) = score("zh", "jsonl");
    assert!(!ok);
    let (en_out, _, _) = score("en", "jsonl");
    assert_eq!(zh_out, en_out);
    assert_eq!(en_out.lines().count(), 1, "{en_out}");
    assert!(
        en_out.starts_with(r#"{"error":"scoring a text needs the model's logits"#),
        "{en_out}"
    );
}

/// A setting out of range, on the command line or in the config file, says
/// its allowed values in Chinese too (they were English inside a Chinese
/// sentence), and in English as before.
#[test]
fn settings_out_of_range_say_their_range_in_chinese() {
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &["run", "--ctx", "10", "-p", "Hi"],
            "无效的 --ctx 10：必须是 64 到 1048576 之间的数",
            "invalid --ctx 10: must be between 64 and 1048576",
        ),
        (
            &["run", "--temp", "9", "-p", "Hi"],
            "无效的 --temp 9：必须是 0 到 5 之间的数（0 = 贪心）",
            "invalid --temp 9: must be between 0 and 5 (0 = greedy)",
        ),
        (
            &["score", "--candidates", "0", "--text", "Hi"],
            "无效的 --candidates 0：必须是 1 到 256 之间的数",
            "invalid --candidates 0: must be between 1 and 256",
        ),
    ];
    for (args, zh_words, en_words) in cases {
        let (_, zh, ok) = run("zh", args);
        assert!(!ok && zh.contains(zh_words), "{zh}");
        assert_no_english(&zh, &["between", "greedy", "must be"]);
        let (_, en, ok) = run("en", args);
        assert!(!ok && en.contains(en_words), "{en}");
    }
}

/// A text longer than the context (about 470 tokens in a 256-token context)
/// is scored in windows; the note saying so is made in the engine process
/// and is Chinese in the text output, English as before in an English run,
/// and the JSONL summary (note included) is byte for byte the English one.
#[test]
fn the_windows_note_of_score_is_chinese_in_text_and_english_in_json() {
    let smol = common::model(common::SMOL);
    let text = (0..30)
        .map(|i| format!("Line {i}: the keeper wrote down the wind and the waves."))
        .collect::<Vec<_>>()
        .join("\n");
    let score = |lang: &str, format: &str| {
        let args = [
            "score",
            "--model",
            smol.to_str().expect("utf-8 path"),
            "--ctx",
            "256",
            "--text",
            &text,
            "--format",
            format,
        ];
        let (out, err, ok) = run(lang, &args);
        assert!(ok, "{err}");
        out
    };
    let zh = score("zh", "text");
    let note = zh.lines().last().expect("the note line");
    assert!(
        note.contains("超过了 256 的上下文") && note.contains("个相互重叠"),
        "{zh}"
    );
    assert_no_english(note, &["the text is", "windows", "tokens"]);
    let en = score("en", "text");
    assert!(
        en.lines()
            .last()
            .is_some_and(|l| l.starts_with("note: the text is ")
                && l.contains("more than the context of 256: scored in 3 overlapping windows")),
        "{en}"
    );
    let summary = |out: String| out.lines().last().expect("a summary").to_owned();
    let en_json = summary(score("en", "jsonl"));
    assert_eq!(summary(score("zh", "jsonl")), en_json);
    assert!(en_json.contains(r#""note":"the text is "#), "{en_json}");
}
