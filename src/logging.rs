//! The log file: ours and llama.cpp's logs (which go through `tracing`), never
//! the terminal. Size-capped by rotation (the `file-rotate` crate): past
//! [`LogLimits::max_bytes`] the file becomes `tokenscope.log.1` (older ones
//! shift up to `.N`, the oldest is deleted), so at most `keep + 1` files of
//! about `max_bytes` each stay on disk.

use std::path::{Path, PathBuf};

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};

/// File name of the log, in the log directory (see `tokenscope paths`).
pub(crate) const LOG_FILE: &str = "tokenscope.log";

/// How much log is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogLimits {
    /// Size in bytes after which the file is rotated (a file ends with the
    /// whole write that crossed it, so it may exceed this by one log line).
    pub max_bytes: usize,
    /// Rotated files kept besides the current one.
    pub keep: usize,
}

impl Default for LogLimits {
    /// 10 MB × 3 files: at most about 30 MB of log.
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            keep: 2,
        }
    }
}

/// The path of the log file in `dir`.
pub(crate) fn log_path(dir: &Path) -> PathBuf {
    dir.join(LOG_FILE)
}

/// A writer appending to `dir`/[`LOG_FILE`], rotated under `limits`.
///
/// # Errors
/// When `dir` cannot be created or the file cannot be opened for appending.
pub(crate) fn open_log(dir: &Path, limits: LogLimits) -> std::io::Result<FileRotate<AppendCount>> {
    std::fs::create_dir_all(dir)?;
    let path = log_path(dir);
    // Checked here: the rotating writer would only notice by writing nothing.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    Ok(FileRotate::new(
        path,
        AppendCount::new(limits.keep),
        ContentLimit::BytesSurpassed(limits.max_bytes.max(1)),
        Compression::None,
        None,
    ))
}

/// A `tracing` subscriber writing to `writer` at the level of `TOKENSCOPE_LOG`
/// (default `info`), without colours.
pub fn subscriber<W: std::io::Write + Send + 'static>(
    writer: W,
) -> impl tracing::Subscriber + Send + Sync {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKENSCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use tracing_subscriber::layer::SubscriberExt;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(writer))
        .finish()
        .with(crate::engine::llama_log::FirstLlamaError)
}

/// Sends this process's logs to the size-capped log file in `dir`; without
/// a usable file there are no logs (never the terminal).
pub fn init(dir: &Path) {
    use tracing_subscriber::util::SubscriberInitExt;
    if let Ok(writer) = open_log(dir, LogLimits::default()) {
        // Also forwards the `log` crate's records, as `fmt().try_init()` did.
        let _ = subscriber(writer).try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(dir: &Path) -> Vec<(String, u64)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, e.metadata().unwrap().len())
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_log_stays_bounded_and_keeps_the_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let limits = LogLimits {
            max_bytes: 4096,
            keep: 2,
        };
        // An old log from an earlier run is appended to, then rotated.
        std::fs::write(log_path(dir.path()), "old run\n").unwrap();
        let writer = open_log(dir.path(), limits).unwrap();
        tracing::subscriber::with_default(subscriber(writer), || {
            for i in 0..2000 {
                tracing::info!("line {i:05} {}", "x".repeat(60));
            }
        });
        let files = sizes(dir.path());
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["tokenscope.log", "tokenscope.log.1", "tokenscope.log.2"],
            "{files:?}"
        );
        // ~200 KB written; at most three files of the cap plus one line each stay.
        let line = 200;
        for (name, size) in &files {
            assert!(*size as usize <= limits.max_bytes + line, "{name}: {size}");
        }
        let current = std::fs::read_to_string(log_path(dir.path())).unwrap();
        assert!(current.contains("line 01999"), "the newest line is kept");
        let all: String = names
            .iter()
            .map(|n| std::fs::read_to_string(dir.path().join(n)).unwrap())
            .collect();
        assert!(
            !all.contains("old run") && !all.contains("line 00000"),
            "the oldest went"
        );
    }

    #[test]
    fn an_unusable_log_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        assert!(open_log(&file, LogLimits::default()).is_err());
    }
}
