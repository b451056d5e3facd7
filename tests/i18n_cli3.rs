//! The command line in Chinese, part 3: `paths` under `LANG=zh_CN.UTF-8`
//! is in Chinese with its paths aligned by display width, and its English
//! is what it was. (The progress lines of `fetch-demos`, the crash report
//! and the decode stages are unit tests: `demo`, `engine::report`,
//! `engine::api::error`.)

mod common;

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
