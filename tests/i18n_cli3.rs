//! The command line in Chinese, part 3: `paths`, `info --tensors`,
//! `info --server` (a real llama-server), `quantize`'s progress and report
//! (a real quantize) and `bench --kv` under `LANG=zh_CN.UTF-8` are in
//! Chinese with their columns aligned by display width, and their English
//! (and JSON) is what it was. (The speed tables of `bench` are unit tests:
//! `commands::bench::table`.) (The progress lines of `fetch-demos`, the crash report
//! and the decode stages are unit tests: `demo`, `engine::report`,
//! `engine::api::error`.)

mod common;

use common::lang::column;
use unicode_width::UnicodeWidthStr;

/// `tokenscope paths` with no locale variable but `LANG=lang` (when given):
/// its stdout.
fn paths(lang: Option<&str>) -> String {
    let (out, err, ok) = common::lang::run_in(lang, &[], &["paths"]);
    assert!(ok, "{err}");
    out
}

/// Each line's label and the display column where its path (the text
/// after the label's padding) starts.
fn columns(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .map(|l| {
            let at = l.find(" /").unwrap_or_else(|| panic!("a path in {l:?}")) + 1;
            (l[..at].trim_end().to_owned(), l[..at].width())
        })
        .collect()
}

#[test]
fn paths_is_in_chinese_and_aligned_by_display_width() {
    let zh = paths(Some("zh_CN.UTF-8"));
    let en = paths(None);
    let (zh_cols, en_cols) = (columns(&zh), columns(&en));
    let zh_labels: Vec<&str> = zh_cols.iter().map(|(l, _)| l.as_str()).collect();
    let en_labels: Vec<&str> = en_cols.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        en_labels,
        ["config file:", "models:", "logs:", "chats:"],
        "{en}"
    );
    assert_eq!(
        zh_labels,
        ["配置文件：", "模型：", "日志：", "对话："],
        "{zh}"
    );
    // Every path starts at column 13 in both languages (the labels are
    // padded to 12 columns, a Chinese character being two).
    for (label, col) in zh_cols.iter().chain(&en_cols) {
        assert_eq!(*col, 13, "{label:?}:\n{zh}\n{en}");
    }
    // The paths themselves are the same.
    let tail = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l[l.find(" /").expect("a path") + 1..].to_owned())
            .collect()
    };
    assert_eq!(tail(&zh), tail(&en));
    assert!(
        en.starts_with("config file: /nonexistent/tokenscope-test.toml\n"),
        "{en}"
    );
}

/// The display column where the `n`th (from 0) `needle` starts in `line`.
fn nth_column(line: &str, needle: &str, n: usize) -> usize {
    let at = line
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("{needle:?} #{n} in {line:?}"))
        .0;
    line[..at].width()
}

/// The line of `text` that starts with `start` (after any indent).
fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("a line starting {start:?} in:\n{text}"))
}

/// `info --tensors all` on SmolLM2 under `LANG=zh_CN.UTF-8`: the title, the
/// shapes of layer 0, the per-layer table and the tensor list are Chinese,
/// with no English label left, their columns aligned by display width; the
/// tensor names, shapes and types are the English run's; the English heads
/// are what they were.
#[test]
fn info_tensors_is_in_chinese_and_aligned_by_display_width() {
    let model = common::model(common::SMOL);
    let model = model.to_str().expect("a UTF-8 path");
    let args = ["info", "--tensors", "all", model];
    let (zh, err, ok) = common::lang::run_in(Some("zh_CN.UTF-8"), &[], &args);
    assert!(ok, "{err}");
    let (en, err, ok) = common::lang::run_in(None, &[], &args);
    assert!(ok, "{err}");
    assert!(
        zh.starts_with("SmolLM2 135M Instruct：272 个张量共 134,515,008 个参数"),
        "{zh}"
    );
    for label in [
        "第 0 层的形状：",
        "层之外",
        "注意力 q k v o",
        "归一化",
        "形状",
    ] {
        assert!(zh.contains(label), "{label:?} in:\n{zh}");
    }
    common::lang::assert_no_english(
        &zh,
        &[
            "parameters in",
            "tensor data",
            "bpw =",
            "shapes in layer",
            "outside the layers",
            "attention",
            "feed-forward",
            "LAYER",
            "PARAMS",
            "BYTES",
            "BPW",
            "ATTENTION",
            "FFN",
            "NORMS",
            "TENSOR",
            "SHAPE",
            "TYPE",
        ],
    );
    // The shapes of layer 0: the roles start at column 21 (2 + 18 + 1)
    // whatever the width of the kind's words.
    for (label, role) in [
        ("注意力归一化", "attn_norm"),
        ("前馈", "ffn_gate"),
        ("层之外", "token_embd"),
    ] {
        let line = zh
            .lines()
            .find(|l| l.starts_with(&format!("  {label} ")))
            .unwrap_or_else(|| panic!("{label:?} in layer 0's shapes:\n{zh}"));
        assert_eq!(column(line, role), 21, "{label}:\n{zh}");
    }
    assert_eq!(column(line_of(&en, "outside the layers"), "token_embd"), 21);
    // The per-layer table: each head over its column (types left-aligned
    // under their head; numbers right-aligned: the head ends where they end).
    let head = line_of(&zh, "层  参数量");
    let row = zh
        .lines()
        .skip_while(|l| *l != head)
        .nth(1)
        .expect("layer 0's row");
    assert!(row.trim_start().starts_with("0 "), "{row}");
    assert_eq!(column(head, "注意力"), column(row, "Q4_1"), "{head}\n{row}");
    assert_eq!(
        column(head, "前馈"),
        nth_column(row, "Q4_1", 4),
        "{head}\n{row}"
    );
    assert_eq!(column(head, "归一化"), column(row, "F32"), "{head}\n{row}");
    let end = |l: &str, s: &str| column(l, s) + s.width();
    assert_eq!(end(head, "参数量"), end(row, "3.5M"), "{head}\n{row}");
    assert_eq!(end(head, "字节"), end(row, "2.1 MiB"), "{head}\n{row}");
    assert_eq!(end(head, "比特"), end(row, "5.01"), "{head}\n{row}");
    // The tensor list.
    let head = line_of(&zh, "张量 ");
    let row = line_of(&zh, "token_embd.weight");
    assert_eq!(
        column(head, "形状"),
        column(row, "576×49152"),
        "{head}\n{row}"
    );
    assert_eq!(column(head, "类型"), column(row, "Q8_0"), "{head}\n{row}");
    assert_eq!(end(head, "参数量"), end(row, "28,311,552"), "{head}\n{row}");
    assert_eq!(end(head, "字节"), end(row, "28.7 MiB"), "{head}\n{row}");
    // The tensors' own lines are the same in both languages.
    let tensor_rows = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| {
                ["blk.", "token_embd", "output_norm"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(tensor_rows(&zh), tensor_rows(&en));
    assert_eq!(tensor_rows(&en).len(), 272, "{en}");
    // The English is what it was.
    for line in [
        "SmolLM2 135M Instruct: 134,515,008 parameters in 272 tensors, 92.1 MiB of tensor data in a file of 93.8 MiB",
        "(bpw = bytes × 8 / parameters; shapes in ggml order, a row's width first)",
        "shapes in layer 0:",
        "  outside the layers token_embd 576×49152 · output_norm 576",
        "LAYER  PARAMS      BYTES   BPW  ATTENTION q k v o        FFN gate up down NORMS",
        "    0    3.5M    2.1 MiB  5.01  Q4_1 Q4_1 Q4_1 Q4_1      Q4_1 Q4_1 Q4_1   F32 ×2",
        "TENSOR                    SHAPE          TYPE         PARAMS      BYTES",
    ] {
        assert!(en.lines().any(|l| l == line), "{line:?} in:\n{en}");
    }
}

/// `info --server` against a real llama-server on SmolLM2 under
/// `LANG=zh_CN.UTF-8`: every field's name and the words around the values
/// are Chinese, the values start at one display column; the JSON is the
/// English run's, byte for byte.
#[test]
fn info_server_is_in_chinese_and_its_json_is_the_english_one() {
    let server = common::server::LlamaServer::start(common::SMOL, &[]);
    let url = server.url.as_str();
    let zh_lang = Some("zh_CN.UTF-8");
    let (zh, err, ok) = common::lang::run_in(zh_lang, &[], &["info", "--server", url]);
    assert!(ok, "{err}");
    let labels = [
        "名称：",
        "模型 id：",
        "远程：",
        "文件（服务器上）：",
        "量化：",
        "参数量：",
        "上下文：",
        "训练上下文：",
        "词表：",
        "槽位：",
        "对数概率：",
        "熵：",
        "采样器列：",
        "聊天模板：",
    ];
    for label in labels {
        let line = line_of(&zh, label);
        // The value starts at column 19: the name padded to 18 columns.
        let value = line[label.len()..].trim_start();
        assert_eq!(column(line, value), 19, "{line:?} in:\n{zh}");
    }
    for words in [
        &format!("，地址 {url}"),
        "2048 个词元（每个请求）",
        "有，每个词元前 20 名",
        "未报告（需要完整的分布",
        "1（可同时处理的请求数）",
    ] {
        assert!(zh.contains(words), "{words:?} in:\n{zh}");
    }
    common::lang::assert_no_english(
        &zh,
        &[
            "name:",
            "model id:",
            "remote:",
            "file (server):",
            "quantization:",
            "parameters:",
            "context:",
            "vocabulary:",
            "slots:",
            "log-probabilities:",
            "entropy:",
            "sampler column:",
            "chat template:",
            "per token",
            "not reported",
            "requests served",
            " at http",
        ],
    );
    let json = |lang| {
        let (out, err, ok) =
            common::lang::run_in(lang, &[], &["info", "--server", url, "--format", "jsonl"]);
        assert!(ok, "{err}");
        out
    };
    assert_eq!(json(zh_lang), json(None));
}

/// A real quantize of SmolLM2 (Q4_1 to Q4_K_M, about two seconds) under
/// `LANG=zh_CN.UTF-8`: the progress on stderr (a line per tensor: stderr
/// is not a terminal), the report on stdout and the warning are Chinese;
/// the type names, tensor names and numbers are as they are in English.
#[test]
fn quantize_progress_and_report_are_in_chinese() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = common::model(common::SMOL);
    let model = model.to_str().expect("a UTF-8 path");
    let quantize = |lang: Option<&str>, out: &str| {
        let out = dir.path().join(out);
        let out = out.to_str().expect("a UTF-8 path");
        let args = [
            "quantize",
            model,
            out,
            "--type",
            "Q4_K",
            "--allow-requantize",
        ];
        let (stdout, stderr, ok) = common::lang::run_in(lang, &[], &args);
        assert!(ok, "{stderr}");
        (stdout, stderr)
    };
    let (out, err) = quantize(Some("zh_CN.UTF-8"), "zh.gguf");
    assert!(
        err.starts_with("正在把 SmolLM2-135M-Instruct.Q4_1.gguf（Q4_1，93.8 MiB）量化为 Q4_K_M → "),
        "{err}"
    );
    assert!(
        err.contains("注意：SmolLM2-135M-Instruct.Q4_1.gguf 已经是 Q4_1"),
        "{err}"
    );
    assert!(err.contains("\n张量 1/272 "), "{err}");
    assert!(err.contains("\n张量 272/272 "), "{err}");
    assert!(err.contains("\n警告：结果（"), "{err}");
    assert!(out.contains("每权重"), "{out}");
    assert!(out.contains("张量类型："), "{out}");
    assert!(
        out.contains("llama.cpp 在 272 个张量中的 180 个上回退到了另一种类型"),
        "{out}"
    );
    assert!(
        out.contains("   166 × Q4_K → Q5_0 （行长 576 个权重，Q4_K 的块是 256 个）"),
        "{out}"
    );
    common::lang::assert_no_english(
        &format!("{out}{err}"),
        &[
            "quantizing",
            "note:",
            "tensor ",
            "warning:",
            "bits per weight",
            "fell back",
            "rows of",
            "is larger than",
            "tensor types",
        ],
    );
    // The English: the same tensors in the same order, the same numbers.
    let (en_out, en_err) = quantize(None, "en.gguf");
    assert!(
        en_err.starts_with("quantizing SmolLM2-135M-Instruct.Q4_1.gguf ("),
        "{en_err}"
    );
    assert!(
        en_out.contains("llama.cpp fell back to another type on 180 of 272 tensors"),
        "{en_out}"
    );
    let names = |t: &str, prefix: &str| -> Vec<String> {
        t.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(names(&err, "张量 "), names(&en_err, "tensor "));
    assert_eq!(names(&en_err, "tensor ").len(), 272, "{en_err}");
}

/// `bench --kv` on SmolLM2 with 6 tokens (a few seconds) under
/// `LANG=zh_CN.UTF-8`: the totals, the ratio, the agreement and the chart's
/// head are Chinese, the totals line up and the chart's heads end over its
/// numbers. (The speed tables' heads and rows are unit tests in
/// `commands::bench::table`: the smallest `bench --only generation` takes
/// over a minute on two busy cores.)
#[test]
fn bench_kv_is_in_chinese_and_aligned_by_display_width() {
    let model = common::model(common::SMOL);
    let model = model.to_str().expect("a UTF-8 path");
    let args = ["bench", "--kv", "--model", model, "--tokens", "6"];
    let (zh, err, ok) = common::lang::run_in(Some("zh_CN.UTF-8"), &[], &args);
    assert!(ok, "{err}");
    assert!(
        zh.starts_with("KV 缓存省下多少：SmolLM2 135M Instruct（"),
        "{zh}"
    );
    for words in [
        "提示词",
        "贪心生成 6 个词元",
        "速度为不用缓存时的",
        "每个词元的 ms",
    ] {
        assert!(zh.contains(words), "{words:?} in:\n{zh}");
    }
    common::lang::assert_no_english(
        &zh,
        &[
            "what the KV cache saves",
            "with the KV cache",
            "without it",
            "in all",
            "per token",
            "faster",
            "both runs",
            "the runs",
            "position",
            "ms per token",
            "without",
        ],
    );
    let (with, without) = (line_of(&zh, "使用 KV 缓存："), line_of(&zh, "不用缓存："));
    assert_eq!(column(with, "共"), column(without, "共"), "{zh}");
    // The chart: its last two heads end where the last two numbers of each
    // row end (right-aligned, 9 columns each).
    let head = line_of(&zh, "位置");
    let row = zh
        .lines()
        .skip_while(|l| *l != head)
        .nth(1)
        .expect("a row under the chart's head");
    assert_eq!(head.width(), row.width(), "{head}\n{row}");
    let end = |l: &str, s: &str| column(l, s) + s.width();
    assert_eq!(end(head, "位置"), 9, "{head}");
    let last = head.rfind("使用").expect("the head of the cached column");
    assert_eq!(head[..last].width() + 4, head.width() - 10, "{head}");
}
