//! `tokenscope chats`, `export` and `import`: the saved conversations from
//! the command line.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::ExportFormat;
use crate::i18n::{tr, tr_args};
use crate::paths::Paths;
use crate::store::{Store, export};
use crate::text::{escape_inline, json_safe, pad_left, pad_right};

fn open(paths: &Paths) -> Result<Store> {
    let path = paths.conversations_db();
    Store::open(&path).with_context(|| format!("cannot open {}", path.display()))
}

/// Lists the saved conversations matching `search` (all when empty), most
/// recent first: a table, or one JSON object per line.
pub fn list(paths: &Paths, search: &str, jsonl: bool) -> Result<()> {
    let rows = open(paths)?.list(search)?;
    let mut out = std::io::stdout().lock();
    if jsonl {
        for r in &rows {
            writeln!(out, "{}", json_safe(&serde_json::to_string(r)?))?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        let what = if search.is_empty() {
            tr(
                "chats-cli-none",
                "No saved conversations yet (each chat is saved as it goes).",
            )
        } else {
            tr_args(
                "chats-cli-no-match",
                "No saved conversation matches { $search }.",
                &[("search", &format!("{search:?}"))],
            )
        };
        writeln!(out, "{what}")?;
        return Ok(());
    }
    // Padded by display width: a Chinese column head is two columns a
    // character.
    writeln!(
        out,
        "{}  {}  {}  {}  {}",
        pad_left(&tr("chats-cli-col-id", "id"), 5),
        pad_right(&tr("chats-cli-col-saved", "saved"), 20),
        pad_left(&tr("chats-cli-col-turns", "turns"), 5),
        pad_right(&tr("chats-cli-col-model", "model"), 24),
        tr("chats-cli-col-title", "title")
    )?;
    for r in rows {
        writeln!(
            out,
            "{:>5}  {:<20}  {:>5}  {}  {}",
            r.id,
            export::format_time(r.updated_at),
            r.turns,
            pad_right(
                &crate::text::truncate(&escape_inline(r.model.as_deref().unwrap_or("-")), 24),
                24
            ),
            escape_inline(&r.title)
        )?;
    }
    Ok(())
}

/// Writes conversation `id` as JSONL or Markdown to `output` (standard
/// output when `None` or `-`).
pub fn export(paths: &Paths, id: i64, format: ExportFormat, output: Option<&Path>) -> Result<()> {
    let conv = open(paths)?.read(id)?;
    let mut buf = Vec::new();
    match format {
        ExportFormat::Jsonl => export::write_jsonl(&conv, &mut buf)?,
        ExportFormat::Md => export::write_markdown(&conv, 400, &mut buf)?,
    }
    match output.filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            write_whole(path, &buf).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "{}",
                tr_args(
                    "chats-cli-wrote",
                    "Wrote conversation { $id } to { $path }.",
                    &[("id", &id), ("path", &path.display())]
                )
            );
        }
        None => std::io::stdout().lock().write_all(&buf)?,
    }
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file in
/// the same directory, synced, then renamed over `path` (an interrupted or
/// failed export never leaves a cut file, nor destroys the one there). The
/// new file has the old one's permissions (a new one: 0666 less the umask,
/// as any file). A path that is not a regular file (`/dev/stdout`, a pipe
/// from `>(…)`) is written directly; a symbolic link is followed, so the
/// file it names is replaced, not the link.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let (target, permissions) = match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return std::fs::write(path, bytes),
        Ok(m) => (std::fs::canonicalize(path)?, m.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (path.to_path_buf(), std::fs::Permissions::from_mode(0o666))
        }
        Err(e) => return Err(e),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tokenscope-export")
        .permissions(permissions)
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

/// Reads a JSONL export back as a new saved conversation; prints its id.
pub fn import(paths: &Paths, file: &Path) -> Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let conv = export::read_jsonl(std::io::BufReader::new(f))
        .with_context(|| format!("cannot import {}", file.display()))?;
    let id = open(paths)?.insert(&conv)?;
    println!(
        "{}",
        tr_args(
            "chats-cli-imported",
            "Imported “{ $title }” as conversation { $id }.",
            &[("title", &escape_inline(&conv.title)), ("id", &id)]
        )
    );
    Ok(())
}
