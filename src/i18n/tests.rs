//! The message files against the source: every id the code asks for is in
//! both files, the English file says what the source says, nothing is left
//! over, and the language choice follows `--lang`, the config, the locale.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Reads a Rust string literal (`"…"` with `\"`, `\\`, `\n`, `\u{..}`
/// escapes and `\` line continuations) at the start of `s`: its value and
/// the rest of `s` after it.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 2..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '\n' => {
                    // A continuation: the next line's leading spaces go.
                    while let Some((_, c)) = chars.clone().next() {
                        if c.is_whitespace() {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                'u' => {
                    let mut hex = String::new();
                    for (_, c) in chars.by_ref() {
                        match c {
                            '{' => {}
                            '}' => break,
                            c => hex.push(c),
                        }
                    }
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
    None
}

/// Every `tr("id", "English")` and `tr_args("id", "English", …)` in `code`:
/// (id, English).
fn calls(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["tr(", "tr_args("] {
        let mut rest = code;
        while let Some(at) = rest.find(name) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + name.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let Some((id, after)) = string_literal(rest.trim_start()) else {
                continue;
            };
            let Some(after) = after.trim_start().strip_prefix(',') else {
                continue;
            };
            if let Some((english, _)) = string_literal(after.trim_start()) {
                out.push((id, english));
            }
        }
    }
    out
}

/// Every .rs file under `dir`, sorted, but the tests and this module's own.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name != "i18n" {
                sources(&p, out);
            }
        } else if name.ends_with(".rs") && !name.starts_with("tests") && name != "i18n.rs" {
            out.push(p);
        }
    }
}

/// Every message the code shows, in order: the keymap's help texts and the
/// `tr` calls in src/ (id → English). Two calls with one id must agree.
fn used() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for b in crate::tui::action::KEYMAP
        .iter()
        .filter(|b| !b.help.is_empty())
    {
        out.push((b.help_id(), b.help.to_owned()));
    }
    cli_messages(&mut out);
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    for f in files {
        let code = std::fs::read_to_string(&f).expect("a source file is readable");
        // A file's test module (at its end) uses no messages of its own;
        // other `#[cfg(test)]` items (a `mod tests_x;` line, a test-only
        // function) do not end the file's messages.
        let code = code
            .split("\n#[cfg(test)]\nmod tests {")
            .next()
            .unwrap_or("");
        out.extend(calls(code));
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    out.retain(|(id, english)| match seen.get(id) {
        Some(e) => {
            assert_eq!(e, english, "message {id} has two English texts in src/");
            false
        }
        None => {
            seen.insert(id.clone(), english.clone());
            true
        }
    });
    out
}

/// The command line's texts ([`crate::cli::localized`]'s ids): each visible
/// command's `about` and each argument's help, but clap's own (`help`,
/// `version`), which have `tr` calls.
fn cli_messages(out: &mut Vec<(String, String)>) {
    use clap::CommandFactory;
    /// (command path, argument id, help) of every visible argument.
    type Args = Vec<(String, String, String)>;
    fn walk(c: &clap::Command, path: &str, out: &mut Vec<(String, String)>, args: &mut Args) {
        if let Some(about) = c.get_about() {
            out.push((format!("cli-{path}-about"), about.to_string()));
        }
        if let Some(after) = c.get_after_help() {
            out.push((format!("cli-{path}-after-help"), after.to_string()));
        }
        for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
            let id = a.get_id().as_str();
            if let (false, Some(help)) = (id == "help" || id == "version", a.get_help()) {
                args.push((path.to_owned(), id.to_owned(), help.to_string()));
            }
        }
        // `help`'s subcommands reuse the commands' texts.
        if c.get_name() == "help" {
            return;
        }
        for sub in c.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, &format!("{path}-{}", sub.get_name()), out, args);
        }
    }
    let mut command = crate::cli::Cli::command();
    command.build();
    let mut args = Args::new();
    walk(&command, "tokenscope", out, &mut args);
    // An argument's commonest help is `cli-arg-<id>`; a command whose help
    // for it differs has its own `cli-<path>-<id>`.
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (_, id, help) in &args {
        *counts.entry((id.as_str(), help.as_str())).or_default() += 1;
    }
    let mut common: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for ((id, help), n) in &counts {
        let best = common.entry(id).or_insert((help, *n));
        if *n > best.1 {
            *best = (help, *n);
        }
    }
    let mut shared = BTreeSet::new();
    for (path, id, help) in &args {
        if common[id.as_str()].0 == help {
            if shared.insert(id.clone()) {
                out.push((format!("cli-arg-{id}"), help.clone()));
            }
        } else {
            out.push((format!("cli-{path}-{id}"), help.clone()));
        }
    }
}

/// A message file line for `id`: `id = text` (Fluent strips a value's
/// leading spaces and has no `\n`, so messages have neither).
fn ftl_line(id: &str, text: &str) -> String {
    format!("{id} = {text}\n")
}

/// The values of a message file, by id, formatted with each argument shown
/// as `{ $name }` (so they compare with the English in the source).
fn values(lang: Lang) -> BTreeMap<String, String> {
    let resource =
        FluentResource::try_new(source(lang).to_owned()).expect("the message file parses");
    let mut out = BTreeMap::new();
    for e in resource.entries() {
        if let fluent_syntax::ast::Entry::Message(m) = e
            && let Some(pattern) = &m.value
        {
            let mut text = String::new();
            for el in &pattern.elements {
                match el {
                    fluent_syntax::ast::PatternElement::TextElement { value } => {
                        text.push_str(value)
                    }
                    fluent_syntax::ast::PatternElement::Placeable { expression } => {
                        use fluent_syntax::ast::{Expression, InlineExpression};
                        match expression {
                            Expression::Inline(InlineExpression::VariableReference { id }) => {
                                text.push_str(&format!("{{ ${} }}", id.name))
                            }
                            Expression::Inline(InlineExpression::StringLiteral { value }) => {
                                text.push_str(value)
                            }
                            other => text.push_str(&format!("{other:?}")),
                        }
                    }
                }
            }
            out.insert(m.id.name.to_owned(), text);
        }
    }
    out
}

/// The arguments (`{ $name }`) a message names.
fn arguments(text: &str) -> BTreeSet<String> {
    text.split("{ $")
        .skip(1)
        .filter_map(|s| s.split_once(" }").map(|(n, _)| n.to_owned()))
        .collect()
}

/// The parity check: `i18n/en.ftl` is the English of the source (run with
/// `TOKENSCOPE_WRITE_EN=1` to write it from the source), and the Chinese files (`i18n/zh*.ftl`)
/// has every id with the same arguments and no id the source does not use.
/// On failure it prints the lines the Chinese lacks, in English, to translate.
#[test]
fn every_message_id_used_in_the_source_is_in_both_files() {
    let used = used();
    let en_text: String = used.iter().map(|(id, e)| ftl_line(id, e)).collect();
    let header = "# English messages: written from the source by\n\
                  # `TOKENSCOPE_WRITE_EN=1 cargo test --release --lib i18n` (do not edit by hand).\n\n";
    let en_file = format!("{header}{en_text}");
    if std::env::var_os("TOKENSCOPE_WRITE_EN").is_some() {
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("i18n/en.ftl"),
            &en_file,
        )
        .expect("i18n/en.ftl is writable");
        return;
    }
    let mut problems = Vec::new();
    for (id, english) in &used {
        assert!(
            !english.starts_with(' ') && !english.ends_with(' ') && !english.contains('\n'),
            "message {id}: no spaces at its ends and no new line (Fluent drops them): {english:?}"
        );
    }
    if source(Lang::En) != en_file {
        problems.push(
            "i18n/en.ftl is not the English of the source: run \
             `TOKENSCOPE_WRITE_EN=1 cargo test --release --lib i18n` and look at the diff"
                .to_owned(),
        );
    }
    let zh = values(Lang::Zh);
    let mut missing = String::new();
    for (id, english) in &used {
        match zh.get(id) {
            None => missing.push_str(&ftl_line(id, english)),
            Some(text) if arguments(text) != arguments(english) => problems.push(format!(
                "the Chinese {id} names arguments {:?}, the English {:?}",
                arguments(text),
                arguments(english)
            )),
            Some(_) => {}
        }
    }
    let ids: BTreeSet<&String> = used.iter().map(|(id, _)| id).collect();
    for id in zh.keys().filter(|id| !ids.contains(id)) {
        problems.push(format!(
            "the Chinese files have {id}, which the source does not use"
        ));
    }
    if !missing.is_empty() {
        problems.push(format!(
            "the Chinese files lack these messages (translate them into the i18n/zh-*.ftl of their area):\n{missing}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn both_files_parse_without_duplicates() {
    for lang in [Lang::En, Lang::Zh] {
        FluentResource::try_new(source(lang).to_owned())
            .unwrap_or_else(|(_, e)| panic!("{lang:?}'s message file: {e:?}"));
        let ids = ids(lang);
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{lang:?}'s file repeats an id");
    }
}

#[test]
fn the_scanner_reads_calls_as_rustfmt_writes_them() {
    let code = r#"let a = tr("one", "One");
        let b = tr_args(
            "two-x",
            "Two { $n } \"quoted\" \u{2192}",
            &[("n", &3)],
        );
        let c = str("not", "a call");"#;
    assert_eq!(
        calls(code),
        vec![
            ("one".to_owned(), "One".to_owned()),
            ("two-x".to_owned(), "Two { $n } \"quoted\" →".to_owned()),
        ]
    );
}

#[test]
fn flag_then_config_then_the_first_locale_variable_set() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(choose(None, None, env(&[])), Lang::En);
    assert_eq!(
        choose(None, None, env(&[("LANG", "zh_CN.UTF-8")])),
        Lang::Zh
    );
    assert_eq!(
        choose(None, None, env(&[("LANG", "en_US.UTF-8")])),
        Lang::En
    );
    // LC_ALL before LC_MESSAGES before LANG; an empty one is not set.
    assert_eq!(
        choose(None, None, env(&[("LC_ALL", "C"), ("LANG", "zh_CN.UTF-8")])),
        Lang::En
    );
    assert_eq!(
        choose(
            None,
            None,
            env(&[("LC_ALL", ""), ("LC_MESSAGES", "zh_TW"), ("LANG", "en_GB")])
        ),
        Lang::Zh
    );
    assert_eq!(
        choose(None, Some("zh"), env(&[("LANG", "en_US.UTF-8")])),
        Lang::Zh
    );
    assert_eq!(
        choose(Some("en"), Some("zh"), env(&[("LANG", "zh_CN.UTF-8")])),
        Lang::En
    );
}

#[test]
fn a_message_is_chinese_only_in_chinese_and_english_without_a_translation() {
    let english = "{ $n } tokens";
    assert_eq!(
        tr_args("no-such-id", english, &[("n", &3)]),
        "3 tokens",
        "English by default"
    );
    with_lang(Lang::Zh, || {
        assert_eq!(tr("no-such-id", "Untranslated"), "Untranslated");
        let help = tr("ctx-help", "Help");
        assert_eq!(help, "帮助", "the help's title in Chinese");
    });
    assert_eq!(tr("ctx-help", "Help"), "Help");
}

#[test]
fn the_help_in_chinese_is_translated_and_fits_its_width() {
    // The help popup at 80 columns: 78 inside its border.
    let text = |l: &ratatui::text::Line| -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    };
    let lines = with_lang(Lang::Zh, || {
        crate::tui::components::help::help_lines(78, true)
    });
    for l in &lines {
        let t = text(l);
        assert!(
            crate::text::str_width(&t) <= 78,
            "wider than 78 columns: {t:?}"
        );
    }
    let all: Vec<String> = lines.iter().map(text).collect();
    assert!(all.iter().any(|t| t.contains("本帮助")), "{all:#?}");
    assert!(all.iter().any(|t| t == "弹窗之外"), "{all:#?}");
    // Every keymap row is shown in Chinese: none of its English is left.
    let english = with_lang(Lang::En, || {
        crate::tui::components::help::help_lines(78, true)
    });
    assert!(english.iter().map(text).any(|t| t.contains("this help")));
    assert!(!all.iter().any(|t| t.contains("this help")));
}
