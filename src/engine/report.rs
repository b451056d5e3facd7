//! What the user is told when the engine process dies: how it ended, what it
//! was doing, and the last meaningful lines it wrote (llama.cpp's
//! `GGML_ASSERT … failed`, errors). Built by the parent from the child's exit
//! status and its stderr (see `process`); pure functions, tested here.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::i18n::{tr, tr_args};

/// What the engine process was doing when it died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CrashStage {
    /// Loading [`CrashReport::file`].
    Loading,
    /// Generating a reply with [`CrashReport::file`].
    Generating,
    /// Nothing was asked of it ([`CrashReport::file`]: the model it held, if any).
    Idle,
}

/// The death of an engine process, for [`super::Event::EngineExited`] and the
/// `Failed` events of the requests it took with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashReport {
    /// How it ended, in words: "aborted (SIGABRT)", "was killed by SIGKILL",
    /// "exited with code 3".
    pub ended: String,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stage: CrashStage,
    /// The model file it was loading or generating with (when idle: the one it held).
    #[serde(with = "super::path_serde::path_bytes_opt")]
    pub file: Option<PathBuf>,
    /// The last meaningful lines it wrote, oldest first, escaped and shortened
    /// (`llama-model.cpp:1330: GGML_ASSERT(…) failed`); empty when it wrote none.
    pub lines: Vec<String>,
}

/// Lines of the child's stderr kept for a report.
pub(crate) const KEEP_LINES: usize = 40;

/// Longest line quoted in a report, in characters.
const MAX_LINE: usize = 300;

impl CrashReport {
    /// Builds the report from how the process ended (`code`: its exit code;
    /// `signal`: the signal that ended it) and the last lines of its stderr.
    pub fn new(
        code: Option<i32>,
        signal: Option<i32>,
        stage: CrashStage,
        file: Option<PathBuf>,
        stderr_tail: &[String],
    ) -> Self {
        Self {
            ended: describe_end(code, signal),
            signal,
            stage,
            file,
            lines: meaningful_lines(stderr_tail),
        }
    }

    /// The file's name (not its whole path), or "" without a file.
    pub fn file_name(&self) -> String {
        self.file.as_deref().map(file_name).unwrap_or_default()
    }

    /// "loading X.gguf", "generating with X.gguf", "idle".
    pub fn doing(&self) -> String {
        match (self.stage, self.file_name()) {
            (CrashStage::Loading, f) if !f.is_empty() => format!("loading {f}"),
            (CrashStage::Generating, f) if !f.is_empty() => format!("generating with {f}"),
            (CrashStage::Loading, _) => "loading a model".into(),
            (CrashStage::Generating, _) => "generating".into(),
            (CrashStage::Idle, _) => "idle".into(),
        }
    }

    /// Why, in one line: the lines it wrote joined, else a pointer to the log.
    pub fn reason(&self) -> String {
        if self.lines.is_empty() {
            "it wrote no error (its output is in the log file, see `tokenscope paths`)".into()
        } else {
            self.lines.join("; ")
        }
    }

    /// True when the process ended itself by a fault (an abort in llama.cpp,
    /// a segmentation fault…): the file it was using is likely the cause.
    /// False when something else ended it (SIGKILL from the user or the
    /// out-of-memory killer, SIGTERM…) or it exited with a code.
    pub fn blames_file(&self) -> bool {
        matches!(
            self.signal,
            Some(libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL)
        ) && self.stage != CrashStage::Idle
    }
}

impl CrashReport {
    /// The report as a person reads it, in the interface language (the
    /// [`fmt::Display`] text stays English: it is what the log file gets).
    /// One message a stage, so that a language can order the sentence its
    /// own way.
    pub fn localized(&self) -> String {
        let ended = self.localized_ended();
        let file = self.file_name();
        let reason = self.localized_reason();
        let args: [(&str, &dyn fmt::Display); 3] =
            [("ended", &ended), ("file", &file), ("reason", &reason)];
        match (self.stage, file.is_empty()) {
            (CrashStage::Loading, false) => tr_args(
                "crash-ended-loading-file",
                "the engine process { $ended } while loading { $file }: { $reason }",
                &args,
            ),
            (CrashStage::Generating, false) => tr_args(
                "crash-ended-generating-file",
                "the engine process { $ended } while generating with { $file }: { $reason }",
                &args,
            ),
            (CrashStage::Loading, true) => tr_args(
                "crash-ended-loading",
                "the engine process { $ended } while loading a model: { $reason }",
                &args,
            ),
            (CrashStage::Generating, true) => tr_args(
                "crash-ended-generating",
                "the engine process { $ended } while generating: { $reason }",
                &args,
            ),
            (CrashStage::Idle, _) => tr_args(
                "crash-ended-idle",
                "the engine process { $ended } while idle: { $reason }",
                &args,
            ),
        }
    }
}

impl CrashReport {
    /// [`Self::ended`] (how the process ended: "aborted (SIGABRT)"…) in the
    /// interface language.
    pub fn localized_ended(&self) -> String {
        localized_end(&self.ended)
    }

    /// [`Self::reason`] in the interface language: llama.cpp's own last
    /// lines stay as they were written.
    pub fn localized_reason(&self) -> String {
        if self.lines.is_empty() {
            tr(
                "crash-no-error",
                "it wrote no error (its output is in the log file, see `tokenscope paths`)",
            )
        } else {
            self.reason()
        }
    }
}

/// `ended` ([`describe_end`]'s English, or the watcher's "was restarted")
/// in the interface language; a text it does not know stays as it is.
fn localized_end(ended: &str) -> String {
    match ended {
        "aborted (SIGABRT)" => return tr("crash-end-aborted", "aborted (SIGABRT)"),
        "crashed (SIGSEGV, a memory fault)" => {
            return tr("crash-end-segv", "crashed (SIGSEGV, a memory fault)");
        }
        "exited (code 0) without being asked to" => {
            return tr(
                "crash-end-exited-zero",
                "exited (code 0) without being asked to",
            );
        }
        "ended" => return tr("crash-end-ended", "ended"),
        "was restarted (it was not responding)" => {
            return tr(
                "crash-end-restarted",
                "was restarted (it was not responding)",
            );
        }
        _ => {}
    }
    if let Some(sig) = ended.strip_prefix("was killed by signal ") {
        return tr_args(
            "crash-end-killed-signal",
            "was killed by signal { $sig }",
            &[("sig", &sig)],
        );
    }
    if let Some(sig) = ended.strip_prefix("was killed by ") {
        return tr_args(
            "crash-end-killed",
            "was killed by { $sig }",
            &[("sig", &sig)],
        );
    }
    if let Some(code) = ended.strip_prefix("exited with code ") {
        return tr_args(
            "crash-end-exited",
            "exited with code { $code }",
            &[("code", &code)],
        );
    }
    ended.to_owned()
}

impl fmt::Display for CrashReport {
    /// "the engine process aborted (SIGABRT) while loading x.gguf: llama-model.cpp:1330: GGML_ASSERT(…) failed"
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the engine process {} while {}: {}",
            self.ended,
            self.doing(),
            self.reason()
        )
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// How a process ended, in words.
pub(crate) fn describe_end(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(libc::SIGABRT)) => "aborted (SIGABRT)".into(),
        (_, Some(libc::SIGSEGV)) => "crashed (SIGSEGV, a memory fault)".into(),
        (_, Some(sig)) => match signal_name(sig) {
            Some(name) => format!("was killed by {name}"),
            None => format!("was killed by signal {sig}"),
        },
        (Some(0), None) => "exited (code 0) without being asked to".into(),
        (Some(c), None) => format!("exited with code {c}"),
        (None, None) => "ended".into(),
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGSEGV => "SIGSEGV",
        _ => return None,
    })
}

/// The lines worth quoting from the end of the child's stderr: llama.cpp's
/// assertion if there is one, else a panic of the worker, else the last lines
/// saying `error` or `failed` (at most 2). Each is escaped (the text comes
/// from a model file and a C library), stripped of its log-level prefix and
/// of the source directory (`/…/llama-model.cpp:1330:` → `llama-model.cpp:1330:`).
pub(crate) fn meaningful_lines(tail: &[String]) -> Vec<String> {
    let pick = |pred: &dyn Fn(&str) -> bool, n: usize| -> Vec<String> {
        let mut found: Vec<String> = tail
            .iter()
            .rev()
            .filter(|l| pred(l))
            .take(n)
            .map(|l| tidy(l))
            .collect();
        found.reverse();
        found
    };
    for (pred, n) in [
        (
            &(|l: &str| l.contains("GGML_ASSERT")) as &dyn Fn(&str) -> bool,
            1,
        ),
        (&|l: &str| l.contains("panicked"), 1),
        (
            &|l: &str| {
                let l = l.to_lowercase();
                l.contains("error") || l.contains("failed")
            },
            2,
        ),
    ] {
        let found = pick(pred, n);
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// One line, readable: no log prefix, no source directory, escaped, capped.
fn tidy(line: &str) -> String {
    let mut l = line.trim();
    // "ERROR target: message" (the child's plain tracing format).
    for level in ["ERROR ", "WARN ", "INFO ", "DEBUG ", "TRACE "] {
        if let Some(rest) = l.strip_prefix(level)
            && let Some((target, msg)) = rest.trim_start().split_once(": ")
            && !target.contains(' ')
        {
            l = msg;
            break;
        }
    }
    // "/long/path/file.cpp:123: …" → "file.cpp:123: …"
    let owned;
    if l.starts_with('/')
        && let Some((path, rest)) = l.split_once(": ")
        && !path.contains(' ')
    {
        let short = path.rsplit('/').next().unwrap_or(path);
        owned = format!("{short}: {rest}");
        l = &owned;
    }
    let text = crate::text::escape_text(l);
    if text.chars().count() > MAX_LINE {
        text.chars().take(MAX_LINE).collect::<String>() + "…"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_assert_is_quoted_without_its_directory() {
        let tail = lines(&[
            "INFO llama-cpp-2: llama_model_loader: loaded meta data",
            "ERROR llama-cpp-2: something failed earlier",
            "/root/.cargo/registry/src/x/llama.cpp/src/llama-model.cpp:1330: GGML_ASSERT(hparams.n_layer_all > 0 && hparams.n_layer_all <= LLAMA_MAX_LAYERS) failed",
        ]);
        let r = CrashReport::new(
            None,
            Some(libc::SIGABRT),
            CrashStage::Loading,
            Some("/m/zero.gguf".into()),
            &tail,
        );
        assert_eq!(
            r.lines,
            [
                "llama-model.cpp:1330: GGML_ASSERT(hparams.n_layer_all > 0 && hparams.n_layer_all <= LLAMA_MAX_LAYERS) failed"
            ]
        );
        assert_eq!(
            r.to_string(),
            "the engine process aborted (SIGABRT) while loading zero.gguf: llama-model.cpp:1330: \
             GGML_ASSERT(hparams.n_layer_all > 0 && hparams.n_layer_all <= LLAMA_MAX_LAYERS) failed"
        );
        assert!(r.blames_file());
    }

    #[test]
    fn a_kill_says_so_and_blames_no_file() {
        let r = CrashReport::new(
            None,
            Some(libc::SIGKILL),
            CrashStage::Generating,
            Some("/m/a.gguf".into()),
            &lines(&["INFO x: fine"]),
        );
        let text = r.to_string();
        assert!(
            text.starts_with("the engine process was killed by SIGKILL while generating with a.gguf: it wrote no error"),
            "{text}"
        );
        assert!(!r.blames_file());
    }

    #[test]
    fn panics_and_errors_are_picked_and_escaped() {
        let tail = lines(&[
            "ERROR tokenscope::engine::crash: engine thread panicked: boom (src/engine/worker.rs:140)",
            "   0: std::backtrace::Backtrace::create",
        ]);
        assert_eq!(
            meaningful_lines(&tail),
            ["engine thread panicked: boom (src/engine/worker.rs:140)"]
        );
        let tail = lines(&[
            "a error one",
            "b",
            "c FAILED two\u{1b}[31m",
            "d error three",
        ]);
        let got = meaningful_lines(&tail);
        assert_eq!(got.len(), 2);
        assert!(
            got[0].starts_with("c FAILED two") && !got[0].contains('\u{1b}'),
            "{got:?}"
        );
        assert_eq!(got[1], "d error three");
        assert!(meaningful_lines(&lines(&["all", "good"])).is_empty());
        assert_eq!(describe_end(Some(3), None), "exited with code 3");
    }

    /// The report as a person reads it: English word for word the log's
    /// text, Chinese with no English word of its own left.
    #[test]
    fn the_localized_report_is_in_the_interface_language() {
        use crate::i18n::{Lang, with_lang};
        let cases = [
            CrashReport::new(
                None,
                Some(libc::SIGABRT),
                CrashStage::Loading,
                Some("/m/zero.gguf".into()),
                &lines(&["x.cpp:1: GGML_ASSERT(n > 0) failed"]),
            ),
            CrashReport::new(
                None,
                Some(libc::SIGKILL),
                CrashStage::Generating,
                Some("/m/a.gguf".into()),
                &[],
            ),
            CrashReport::new(None, Some(libc::SIGSEGV), CrashStage::Generating, None, &[]),
            CrashReport::new(Some(3), None, CrashStage::Loading, None, &[]),
            CrashReport::new(Some(0), None, CrashStage::Idle, None, &[]),
            CrashReport::new(None, Some(77), CrashStage::Idle, None, &[]),
        ];
        for r in &cases {
            assert_eq!(with_lang(Lang::En, || r.localized()), r.to_string());
        }
        let zh: Vec<String> = with_lang(Lang::Zh, || cases.iter().map(|r| r.localized()).collect());
        assert_eq!(
            zh,
            [
                "引擎进程在加载 zero.gguf 时中止（SIGABRT）：x.cpp:1: GGML_ASSERT(n > 0) failed",
                "引擎进程在用 a.gguf 生成时被 SIGKILL 终止：它没有写出错误（它的输出在日志文件里，见 `tokenscope paths`）",
                "引擎进程在生成时崩溃（SIGSEGV，内存错误）：它没有写出错误（它的输出在日志文件里，见 `tokenscope paths`）",
                "引擎进程在加载模型时以退出码 3 退出：它没有写出错误（它的输出在日志文件里，见 `tokenscope paths`）",
                "引擎进程在空闲时未经要求就退出了（退出码 0）：它没有写出错误（它的输出在日志文件里，见 `tokenscope paths`）",
                "引擎进程在空闲时被信号 77 终止：它没有写出错误（它的输出在日志文件里，见 `tokenscope paths`）",
            ]
        );
        // The log's text stays English whatever the language.
        let logged = with_lang(Lang::Zh, || cases[1].to_string());
        assert!(
            logged.starts_with(
                "the engine process was killed by SIGKILL while generating with a.gguf"
            ),
            "{logged}"
        );
    }
}
