//! Exports of a saved conversation and imports of them.
//!
//! - JSONL: a first line `{"tokenscope_export": 1, "conversation": {…}}`
//!   (title, dates, model card; `nodes` empty), then one line per node, every
//!   stored field ([`StoredNode`]) with its per-token trace. [`read_jsonl`]
//!   reads it back exactly.
//! - Markdown: the chat shown (the active path), each reply followed by a
//!   compact per-token table (token, probability, entropy, the runners-up),
//!   and the system prompt each reply was generated under, shown again
//!   where it changed.

use std::fmt::Write as _;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{StoredConversation, StoredNode};
use crate::engine::{Role, TokenId};
use crate::i18n::{tr, tr_args};
use crate::text::{escape_inline, escape_text, readable_piece};

/// The JSONL format's version (the first line's `tokenscope_export`).
pub(crate) const JSONL_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    tokenscope_export: u32,
    conversation: StoredConversation,
}

#[derive(Debug, Error)]
pub(crate) enum ImportError {
    Empty,
    Header(String),
    Version(u32),
    Node { line: usize, error: String },
    Io(#[from] std::io::Error),
}
impl std::fmt::Display for ImportError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            ImportError::Empty => crate::i18n::tr(
                "import-empty",
                "the file is empty: it is not a tokenscope export",
            ),
            ImportError::Header(v) => crate::i18n::tr_args(
                "import-header",
                "line 1 is not a tokenscope export header ({ $v }): export files come from `tokenscope export ID --format jsonl`",
                &[("v", &v)],
            ),
            ImportError::Version(v) => crate::i18n::tr_args(
                "import-version",
                "the export has format version { $v }; this tokenscope reads version { $supported }: upgrade tokenscope",
                &[("v", &v), ("supported", &JSONL_VERSION)],
            ),
            ImportError::Node { line, error } => crate::i18n::tr_args(
                "import-node",
                "line { $line } is not a node of the conversation: { $error }",
                &[("line", &line), ("error", &error)],
            ),
            ImportError::Io(v) => {
                crate::i18n::tr_args("import-io", "cannot read the file: { $v }", &[("v", &v)])
            }
        };
        f.write_str(&text)
    }
}

/// Writes `conv` as JSONL (see the module's documentation).
///
/// # Errors
/// Write errors.
pub(crate) fn write_jsonl(conv: &StoredConversation, out: &mut impl Write) -> std::io::Result<()> {
    let header = Header {
        tokenscope_export: JSONL_VERSION,
        conversation: StoredConversation {
            nodes: Vec::new(),
            ..conv.clone()
        },
    };
    writeln!(out, "{}", json_line(&header)?)?;
    for n in &conv.nodes {
        writeln!(out, "{}", json_line(n)?)?;
    }
    Ok(())
}

/// `v` as one line of JSON, bidi and other invisible characters escaped
/// (the same value: safe to print to a terminal).
fn json_line<T: Serialize>(v: &T) -> std::io::Result<String> {
    let j = serde_json::to_string(v).map_err(std::io::Error::other)?;
    Ok(crate::text::json_safe(&j))
}

/// Reads an export made by [`write_jsonl`] (blank lines are skipped).
///
/// # Errors
/// [`ImportError`], naming the line that is wrong.
pub(crate) fn read_jsonl(input: impl BufRead) -> Result<StoredConversation, ImportError> {
    let mut lines = input.lines().enumerate();
    let first = loop {
        match lines.next() {
            None => return Err(ImportError::Empty),
            Some((_, l)) => {
                let l = l?;
                if !l.trim().is_empty() {
                    break l;
                }
            }
        }
    };
    // The version first, so a newer format says so rather than failing to parse.
    let v: serde_json::Value =
        serde_json::from_str(&first).map_err(|e| ImportError::Header(e.to_string()))?;
    match v.get("tokenscope_export").and_then(|x| x.as_u64()) {
        Some(n) if n == JSONL_VERSION as u64 => {}
        Some(n) => return Err(ImportError::Version(n as u32)),
        None => return Err(ImportError::Header("no `tokenscope_export` field".into())),
    }
    let mut conv = serde_json::from_value::<Header>(v)
        .map_err(|e| ImportError::Header(e.to_string()))?
        .conversation;
    for (i, l) in lines {
        let l = l?;
        if l.trim().is_empty() {
            continue;
        }
        let node: StoredNode = serde_json::from_str(&l).map_err(|e| ImportError::Node {
            line: i + 1,
            error: e.to_string(),
        })?;
        conv.nodes.push(node);
    }
    Ok(conv)
}

/// Writes the chat shown of `conv` as Markdown: the system prompt, each
/// message, and after each reply with a trace a table of its tokens (at
/// most `max_rows`, the rest counted): the token, its probability under the
/// model, the entropy in bits, and the three likeliest other candidates.
///
/// The system prompt at the top is the one the first reply was generated
/// under; a reply generated under another one has it above it ("System
/// (changed)"); one set after the last reply comes last. Replies saved
/// before tokenscope recorded their system prompt are said to be so.
///
/// # Errors
/// Write errors.
pub(crate) fn write_markdown(
    conv: &StoredConversation,
    max_rows: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", escape_inline(&conv.title));
    if let Some(m) = &conv.model {
        let model = format!("`{}`", escape_inline(m));
        let line = tr_args("export-md-model", "Model: { $model }", &[("model", &model)]);
        let _ = writeln!(md, "{line}  ");
    }
    let saved = tr_args(
        "export-md-saved",
        "Saved: { $time }",
        &[("time", &format_time(conv.updated_at))],
    );
    let _ = writeln!(md, "{saved}\n");
    let shown = path(conv);
    let Some((root, turns)) = shown.split_first() else {
        return out.write_all(md.as_bytes());
    };
    let replies: Vec<&StoredNode> = turns
        .iter()
        .copied()
        .filter(|n| n.role == Role::Assistant)
        .collect();
    let unrecorded = replies.iter().any(|n| n.system.is_none());
    // The one shown so far: the first reply's, else the one set now.
    let mut system = replies
        .first()
        .and_then(|n| n.system.as_deref())
        .unwrap_or(&root.content);
    system_section(&mut md, None, system);
    if unrecorded {
        let note = tr(
            "export-md-unrecorded",
            "Some replies below were saved without the system prompt they were generated \
             under (by an earlier tokenscope): the one above is the one set when saved.",
        );
        let _ = writeln!(md, "*{note}*\n");
    }
    for n in turns {
        match n.role {
            Role::System => continue,
            Role::User => {
                let _ = writeln!(md, "## {}\n", tr("export-md-user", "User"));
            }
            Role::Assistant => {
                if let Some(s) = n.system.as_deref().filter(|&s| !same(s, system)) {
                    system = s;
                    let heading = tr("export-md-system-changed", "System (changed)");
                    system_section(&mut md, Some(&heading), system);
                }
                let model = n
                    .model
                    .as_deref()
                    .map(|m| format!(" ({})", escape_inline(m)));
                let assistant = tr("export-md-assistant", "Assistant");
                let _ = writeln!(md, "## {assistant}{}\n", model.unwrap_or_default());
            }
        }
        let _ = writeln!(md, "{}\n", escape_text(n.content.trim_end()));
        if n.role == Role::Assistant && n.steps.iter().any(|s| s.dist.is_some()) {
            token_table(n, max_rows, &mut md);
        }
    }
    if !same(&root.content, system) && !unrecorded {
        let heading = tr(
            "export-md-system-after",
            "System (set after the last reply)",
        );
        system_section(&mut md, Some(&heading), &root.content);
    }
    out.write_all(md.as_bytes())
}

/// The same system prompt: equal, or both none (blank).
fn same(a: &str, b: &str) -> bool {
    a == b || (a.trim().is_empty() && b.trim().is_empty())
}

/// A system prompt under `heading` (`None`: the first one, "System"): none
/// (blank) is said only where it replaces one.
fn system_section(md: &mut String, heading: Option<&str>, text: &str) {
    let text = text.trim_end();
    if text.trim().is_empty() {
        if let Some(heading) = heading {
            let none = tr("export-md-none", "(none)");
            let _ = writeln!(md, "## {heading}\n\n*{none}*\n");
        }
        return;
    }
    let heading = heading.map_or_else(|| tr("export-md-system", "System"), str::to_owned);
    let _ = writeln!(md, "## {heading}\n\n{}\n", escape_text(text));
}

/// The nodes shown: the root, then each active child down.
pub(crate) fn path(conv: &StoredConversation) -> Vec<&StoredNode> {
    let by_id: std::collections::HashMap<usize, &StoredNode> =
        conv.nodes.iter().map(|n| (n.id, n)).collect();
    let mut out = Vec::new();
    let mut at = by_id.get(&0).copied();
    while let Some(n) = at {
        if out.len() > conv.nodes.len() {
            break;
        }
        out.push(n);
        at = n.active_child.and_then(|c| by_id.get(&c).copied());
    }
    out
}

fn token_table(n: &StoredNode, max_rows: usize, md: &mut String) {
    let piece = |id: TokenId| -> String {
        match n.pieces.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(i) => readable_piece(&n.pieces[i].1),
            Err(_) => format!("#{id}"),
        }
    };
    let cell = |s: String| format!("`{}`", s.replace('`', "ˋ").replace('|', "\\|"));
    let head = tr(
        "export-md-table-head",
        "| # | token | p | entropy (bits) | other candidates |",
    );
    let _ = writeln!(md, "{head}\n|---:|---|---:|---:|---|");
    for s in n.steps.iter().take(max_rows) {
        let p = s.p().map_or("–".into(), |p| format!("{:.3}", p));
        let h = s.entropy().map_or("–".into(), |h| format!("{h:.2}"));
        let others = s.dist.as_ref().map_or(String::new(), |d| {
            d.top
                .iter()
                .filter(|c| c.id != s.id)
                .take(3)
                .map(|c| format!("{} {:.3}", cell(piece(c.id)), d.p(c.logit)))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let forced = if s.forced {
            format!(" {}", tr("export-md-forced", "(forced)"))
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "| {} | {}{forced} | {p} | {h} | {others} |",
            s.index,
            cell(piece(s.id))
        );
    }
    if n.steps.len() > max_rows {
        let n = n.steps.len() - max_rows;
        let more = if n == 1 {
            tr("export-md-more-one", "1 more token")
        } else {
            tr_args("export-md-more", "{ $n } more tokens", &[("n", &n)])
        };
        let _ = writeln!(md, "\n… {more}");
    }
    md.push('\n');
}

/// `2026-11-30 03:35 UTC` from Unix milliseconds.
pub(crate) fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::civil::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_civil_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        // 2026-11-30 03:35:00 UTC
        assert_eq!(format_time(1_796_009_700_000), "2026-11-30 03:35 UTC");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn a_file_that_is_not_an_export_says_so() {
        assert!(matches!(read_jsonl(&b""[..]), Err(ImportError::Empty)));
        assert!(matches!(
            read_jsonl(&b"hello\n"[..]),
            Err(ImportError::Header(_))
        ));
        assert!(matches!(
            read_jsonl(&b"{\"tokenscope_export\": 9}\n"[..]),
            Err(ImportError::Version(9))
        ));
        let e = read_jsonl(&b"{\"a\":1}\n"[..]).unwrap_err().to_string();
        assert!(e.contains("tokenscope export"), "{e}");
    }
}
