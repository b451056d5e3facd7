//! `tokenscope quantize`: llama.cpp's own quantizer
//! (`llama_model_quantize`) made safe to use from the command line.
//!
//! - The quantizer runs in a child process of this executable (the hidden
//!   `quantize-worker` subcommand, [`worker_main`]): an abort in llama.cpp
//!   ends only the child, and is reported with its last log lines.
//! - The child writes to a temporary name next to the output
//!   ([`partial_path`]); the parent renames it to the output only once the
//!   child succeeded and the result reads as a GGUF file. On an error, a
//!   signal (Ctrl-C, SIGTERM, SIGHUP) or a crash the temporary file is
//!   removed; if the parent itself is killed (SIGKILL) the child dies with it
//!   (`PR_SET_PDEATHSIG`) and the next quantize to the same output removes
//!   the leftover. The output path never holds a half-written file.
//! - Progress: llama.cpp logs one line per tensor (`[  12/ 272] blk.1…`);
//!   the child forwards its log to stderr and the parent reads the counts,
//!   and the tensors llama.cpp fell back on ([`Fallback`]).
//! - The child records the input in the output's metadata
//!   (`tokenscope.quantized_from.*`, through llama.cpp's metadata overrides).
//!
//! Here: the command ([`command`]), the checks ([`plan`]) and the parent's
//! side of the run ([`run`]: the child, its log, the rename). The types
//! offered are in `types.rs`, the child in `worker.rs`, what is said about
//! the result in [`report`].

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use thiserror::Error;

use super::{Ctx, own_exe};
use crate::catalog::{self, CatalogError, ModelCard, size_human};
use crate::i18n::tr_args;

pub mod report;
mod types;
mod worker;

use types::types_help;
pub(crate) use types::{QuantType, parse_type};
use worker::NO_ROOM;
pub use worker::worker_main;

/// `tokenscope quantize IN [OUT] --type TYPE`: `input` (as `--model` takes
/// it) quantized to `ty` ([`plan`], then [`quantize_with_progress`]);
/// `--type help` lists the types instead. Errors: no input, a type not
/// offered, the [`QuantizeError`] of the plan or the run.
pub fn command(
    ctx: &Ctx,
    input: Option<&str>,
    output: Option<&Path>,
    ty: &str,
    allow_requantize: bool,
    force: bool,
    threads: u32,
) -> anyhow::Result<()> {
    if ty.eq_ignore_ascii_case("help") {
        print!("{}", types_help());
        return Ok(());
    }
    let Some(input) = input else {
        anyhow::bail!(crate::i18n::tr(
            "quantize-no-input",
            "give the model to quantize: `tokenscope quantize IN [OUT] --type TYPE`"
        ));
    };
    let config = ctx.config()?;
    let dirs = ctx.model_dirs(&config);
    // Check the type first: a typo should not cost a model lookup.
    parse_type(ty)?;
    let card = ctx.places(&config).resolve(input)?;
    let req = Request {
        input: card.path,
        output: output.map(Path::to_path_buf),
        ty: ty.to_string(),
        allow_requantize,
        force,
        threads,
    };
    quantize_with_progress(&req, &ctx.paths.models_dir, &dirs)
}

/// Checks, then llama.cpp's quantizer in a child process with a per-tensor
/// progress bar on stderr (a line per tensor when stderr is not a terminal,
/// or a dumb one), then what came out ([`report`]). `dirs`: where the other
/// variants of the model are looked for (the same mix warning).
fn quantize_with_progress(
    req: &Request,
    models_dir: &Path,
    dirs: &[PathBuf],
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let plan = plan(req, models_dir)?;
    let exe = own_exe()?;
    // A dumb terminal (TERM=dumb) cannot redraw a bar in place: a line per tensor.
    let tty = crate::terminal::Env::from_process().redraw(std::io::stderr().is_terminal());
    eprintln!(
        "{}",
        tr_args(
            "quantize-start",
            "quantizing { $file } ({ $quant }, { $size }) to { $ty } → { $out }",
            &[
                ("file", &plan.input.file_name),
                ("quant", &plan.input.quant_label()),
                ("size", &plan.input.size_human()),
                ("ty", &plan.ty.name),
                ("out", &plan.output.display()),
            ],
        )
    );
    if plan.allow_requantize && !is_float(&plan.input.quant) {
        eprintln!(
            "{}",
            tr_args(
                "quantize-requantize-note",
                "note: { $file } is already { $quant }: the result is made from those quantized values, not the original weights, so it can only lose against { $file } (an F16 holds them exactly, nothing more)",
                &[
                    ("file", &plan.input.file_name),
                    ("quant", &plan.input.quant)
                ],
            )
        );
    }
    let outcome = run(&exe, &plan, |p| match p {
        Progress::Tensor { done, total, name } => {
            if tty {
                let width = 30;
                let filled = done * width / (*total).max(1);
                eprint!(
                    "\r[{}{}] {done}/{total} {:<40.40}",
                    "#".repeat(filled),
                    ".".repeat(width - filled),
                    crate::text::escape_inline(name)
                );
            } else {
                eprintln!(
                    "{}",
                    tr_args(
                        "quantize-tensor",
                        "tensor { $done }/{ $total } { $name }",
                        &[
                            ("done", done),
                            ("total", total),
                            ("name", &crate::text::escape_inline(name)),
                        ],
                    )
                );
            }
        }
    });
    if tty {
        eprintln!();
    }
    let outcome = outcome?;
    // The other models, the output's directory included (OUT may be elsewhere).
    let mut where_ = dirs.to_vec();
    if let Some(dir) = outcome.output.parent() {
        where_.push(dir.to_path_buf());
    }
    where_.sort();
    where_.dedup();
    let mut others: Vec<ModelCard> = catalog::discover(&where_).into_iter().flatten().collect();
    others.sort_by_key(|c| c.path.canonicalize().unwrap_or_else(|_| c.path.clone()));
    others.dedup_by_key(|c| c.path.canonicalize().unwrap_or_else(|_| c.path.clone()));
    let report = report::report(&plan.input, plan.ty, &outcome, &others);
    print!("{}", report.summary);
    for w in &report.warnings {
        eprintln!(
            "{}",
            tr_args("quantize-warning", "warning: { $w }", &[("w", w)])
        );
    }
    Ok(())
}

/// Why a quantization did not happen or did not finish. Whatever the
/// error, no file is left at the output path.
#[derive(Debug, Error)]
pub enum QuantizeError {
    UnknownType {
        given: String,
        known: String,
    },
    NeedsImatrix {
        given: String,
        known: String,
    },
    Ternary {
        given: String,
        known: String,
    },
    NotOffered {
        given: String,
        known: String,
    },
    Input(#[from] CatalogError),
    /// This build's llama.cpp kernels need instructions the CPU lacks.
    WrongCpu(String),
    Exists {
        path: PathBuf,
    },
    OutputIsDir {
        path: PathBuf,
    },
    SameFile {
        path: PathBuf,
    },
    Requantize {
        path: PathBuf,
        from: String,
    },
    OutputDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    NoSpace {
        dir: PathBuf,
        ty: &'static str,
        need: String,
        have: String,
    },
    Failed {
        input: PathBuf,
        reason: String,
    },
    Crashed {
        input: PathBuf,
        how: String,
        last: String,
    },
    BadResult(String),
    Interrupted,
    Spawn(std::io::Error),
    Io {
        what: String,
        source: std::io::Error,
    },
}
impl std::fmt::Display for QuantizeError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            QuantizeError::UnknownType { given, known } => crate::i18n::tr_args(
                "quantize-unknown-type",
                "unknown quantization type { $given }: choose one of { $known } (`tokenscope quantize --type help` lists them with bits per weight)",
                &[("given", &format!("{given:?}")), ("known", &known)],
            ),
            QuantizeError::NeedsImatrix { given, known } => crate::i18n::tr_args(
                "quantize-needs-imatrix",
                "{ $given } needs an importance matrix, and tokenscope cannot make one. An importance matrix (imatrix) is measured by running the model over sample text (llama.cpp's `llama-imatrix`): it records how strongly each weight's inputs are activated, so that the quantizer spends its few bits where they matter most; at 1 to 3 bits per weight a model quantized without one comes out as noise, so llama.cpp refuses it. Make it with llama.cpp's `llama-imatrix` and `llama-quantize --imatrix`, or choose one of { $known }",
                &[("given", &given), ("known", &known)],
            ),
            QuantizeError::Ternary { given, known } => crate::i18n::tr_args(
                "quantize-ternary",
                "{ $given } is a ternary type (weights −1, 0, +1): only for models trained with ternary weights (BitNet b1.58); any other model comes out as noise. Choose one of { $known }",
                &[("given", &given), ("known", &known)],
            ),
            QuantizeError::NotOffered { given, known } => crate::i18n::tr_args(
                "quantize-not-offered",
                "{ $given } is a llama.cpp type that tokenscope does not offer: make it with llama.cpp's `llama-quantize`, or choose one of { $known }",
                &[("given", &given), ("known", &known)],
            ),
            QuantizeError::Input(v) => v.to_string(),
            QuantizeError::WrongCpu(v) => v.clone(),
            QuantizeError::Exists { path } => crate::i18n::tr_args(
                "quantize-exists",
                "{ $path } already exists: pass --force to overwrite it, or choose another OUT",
                &[("path", &path.display())],
            ),
            QuantizeError::OutputIsDir { path } => crate::i18n::tr_args(
                "quantize-output-is-dir",
                "{ $path } is a directory: OUT must be a file path (e.g. { $path }/model.Q4_0.gguf)",
                &[("path", &path.display())],
            ),
            QuantizeError::SameFile { path } => crate::i18n::tr_args(
                "quantize-same-file",
                "the output would overwrite the input { $path }: choose another OUT",
                &[("path", &path.display())],
            ),
            QuantizeError::Requantize { path, from } => crate::i18n::tr_args(
                "quantize-requantize",
                "{ $path } is already quantized ({ $from }): a quantized file can only be requantized from its quantized values, never from the original weights, so the result can only lose against it. Pass --allow-requantize to do it anyway (e.g. `--type F16 --allow-requantize` holds exactly its values, as a base for a ladder of variants)",
                &[("path", &path.display()), ("from", &from)],
            ),
            QuantizeError::OutputDir { dir, source } => crate::i18n::tr_args(
                "quantize-output-dir",
                "cannot write to { $dir }: { $source } (choose an OUT in a directory you can write to)",
                &[("dir", &dir.display()), ("source", &source)],
            ),
            QuantizeError::NoSpace {
                dir,
                ty,
                need,
                have,
            } => crate::i18n::tr_args(
                "quantize-no-space",
                "not enough free space in { $dir }: the { $ty } file needs about { $need }, { $have } are free (free some space or choose another OUT)",
                &[
                    ("dir", &dir.display()),
                    ("ty", &ty),
                    ("need", &need),
                    ("have", &have),
                ],
            ),
            QuantizeError::Failed { input, reason } => crate::i18n::tr_args(
                "quantize-failed",
                "llama.cpp could not quantize { $input }: { $reason }",
                &[("input", &input.display()), ("reason", &reason)],
            ),
            QuantizeError::Crashed { input, how, last } => crate::i18n::tr_args(
                "quantize-crashed",
                "the quantizer process crashed ({ $how }) on { $input }; its last words: { $last }",
                &[("how", &how), ("input", &input.display()), ("last", &last)],
            ),
            QuantizeError::BadResult(v) => crate::i18n::tr_args(
                "quantize-bad-result",
                "the result is not a readable GGUF file ({ $v }): nothing was written",
                &[("v", &v)],
            ),
            QuantizeError::Interrupted => {
                crate::i18n::tr("quantize-interrupted", "interrupted: nothing was written")
            }
            QuantizeError::Spawn(v) => crate::i18n::tr_args(
                "quantize-spawn",
                "cannot start the quantizer process: { $v }",
                &[("v", &v)],
            ),
            QuantizeError::Io { what, source } => format!("{what}: {source}"),
        };
        f.write_str(&text)
    }
}

/// Types whose tensors are plain floats: quantizing from them needs no
/// `--allow-requantize`.
fn is_float(quant: &str) -> bool {
    matches!(quant, "F32" | "F16" | "BF16")
}

/// `<stem>.<TYPE>.gguf` in `dir`, the input's own type dropped from the stem
/// (`SmolLM2-135M-Instruct.Q4_1.gguf` → `SmolLM2-135M-Instruct.Q2_K.gguf`).
pub(crate) fn default_output(input: &ModelCard, ty: &QuantType, dir: &Path) -> PathBuf {
    let stem = match input.source {
        // A blob named by its digest: the model's name instead (`qwen2.5:0.5b`: `qwen2.5-0.5b`).
        Some(crate::catalog::Store::Ollama) => input.id.replace([':', '/'], "-"),
        _ => input
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    let q = input.quant.to_ascii_lowercase();
    let lower = stem.to_ascii_lowercase();
    let base = [".", "-", "_"]
        .iter()
        .find_map(|sep| {
            lower
                .ends_with(&format!("{sep}{q}"))
                .then(|| &stem[..stem.len() - q.len() - sep.len()])
        })
        .filter(|b| !b.is_empty())
        .unwrap_or(&stem);
    dir.join(format!("{base}.{}.gguf", ty.name))
}

/// The temporary file the child writes: hidden, next to `out` (so the final
/// rename stays on one file system), named after the process that owns it.
pub(crate) fn partial_path(out: &Path, pid: u32) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{pid}.partial"))
}

/// What to do, checked: [`plan`] makes it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The input's card (its header, read and checked).
    pub input: ModelCard,
    /// Where the result goes (renamed there at the end).
    pub output: PathBuf,
    pub ty: &'static QuantType,
    /// The input is quantized and the user accepted to requantize it.
    pub allow_requantize: bool,
    /// 0: llama.cpp's choice (all hardware threads).
    pub threads: u32,
}

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The model file to quantize.
    pub input: PathBuf,
    /// OUT; `None`: `<stem>.<TYPE>.gguf` in the models directory ([`default_output`]).
    pub output: Option<PathBuf>,
    /// The type's name as typed (`Q4_K_M`, case-insensitive).
    pub ty: String,
    /// `--allow-requantize`.
    pub allow_requantize: bool,
    /// `--force`: replace an existing OUT.
    pub force: bool,
    /// `--threads` (0: llama.cpp's choice).
    pub threads: u32,
}

/// Checks `req` before anything is written: the type, the input (a GGUF
/// file we can read), the output (not the input, not existing unless
/// `force`, in a writable directory with room for the result), and that a
/// quantized input comes with `allow_requantize`. `models_dir` is where OUT
/// goes when not given (created if missing).
///
/// # Errors
/// The [`QuantizeError`] saying what is wrong and what to do.
pub fn plan(req: &Request, models_dir: &Path) -> Result<Plan, QuantizeError> {
    let ty = parse_type(&req.ty)?;
    let input = catalog::read_card(&req.input)?;
    let output = match &req.output {
        Some(o) => o.clone(),
        None => {
            std::fs::create_dir_all(models_dir).map_err(|source| QuantizeError::OutputDir {
                dir: models_dir.to_path_buf(),
                source,
            })?;
            default_output(&input, ty, models_dir)
        }
    };
    if output.is_dir() {
        return Err(QuantizeError::OutputIsDir { path: output });
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(&input.path, &output) {
        return Err(QuantizeError::SameFile { path: output });
    }
    if output.exists() && !req.force {
        return Err(QuantizeError::Exists { path: output });
    }
    if !is_float(&input.quant) && !req.allow_requantize {
        return Err(QuantizeError::Requantize {
            path: input.path.clone(),
            from: input.quant.clone(),
        });
    }
    let dir = output_dir(&output);
    check_space(&dir, &input, ty)?;
    Ok(Plan {
        input,
        output,
        ty,
        allow_requantize: req.allow_requantize,
        threads: req.threads,
    })
}

/// The directory `out` goes in (`.` for a bare file name).
fn output_dir(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Room for the result: roughly parameters × bits per weight (plus a tenth
/// for the larger tensors of mixes and the metadata).
fn check_space(dir: &Path, input: &ModelCard, ty: &'static QuantType) -> Result<(), QuantizeError> {
    let need = (input.n_params as f64 * ty.bpw / 8.0 * 1.1) as u64 + (1 << 20);
    let Some(have) = free_bytes(dir).map_err(|source| QuantizeError::OutputDir {
        dir: dir.to_path_buf(),
        source,
    })?
    else {
        return Ok(());
    };
    if have < need {
        return Err(QuantizeError::NoSpace {
            dir: dir.to_path_buf(),
            ty: ty.name,
            need: size_human(need),
            have: size_human(have),
        });
    }
    Ok(())
}

/// Free bytes for an unprivileged user in `dir` (`None` where unknown).
fn free_bytes(dir: &Path) -> std::io::Result<Option<u64>> {
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = CString::new(dir.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: statvfs fills the struct it is given from a valid C path.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
            return Ok(None);
        }
        Ok(Some(s.f_bavail as u64 * s.f_frsize as u64))
    }
    #[cfg(not(unix))]
    Ok(None)
}

/// How the quantizer is getting on.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Tensor `done` of `total` started (1-based), with its name.
    Tensor {
        done: usize,
        total: usize,
        name: String,
    },
}

/// What came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Where the result is.
    pub output: PathBuf,
    /// Its card, read back from the file.
    pub card: ModelCard,
    /// llama.cpp's own sizes, `(input MiB, input bpw, output MiB, output bpw)`, when it logged them.
    pub sizes: Option<(f64, f64, f64, f64)>,
    /// The tensors llama.cpp wrote as another type than its rules chose for
    /// them (from its log), grouped.
    pub fallbacks: Vec<Fallback>,
}

/// Tensors llama.cpp wrote as another type than the one its rules chose,
/// because their rows do not divide into that type's blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    /// The type chosen ("Q2_K").
    pub wanted: String,
    /// The type written instead ("Q4_0").
    pub written: String,
    /// The tensors' row width, in weights.
    pub row: u64,
    /// The block size of `wanted`, in weights.
    pub block: u64,
    /// How many tensors.
    pub tensors: usize,
}

/// One fallback, as llama.cpp logs it while it chooses the types:
/// `warning: blk.0.attn_q.weight - ncols    576 not divisible by 256
/// (required for type    q2_K) -> falling back to    q4_0` → (wanted,
/// written, row, block), the types in capitals.
fn parse_fallback_line(line: &str) -> Option<(String, String, u64, u64)> {
    let after = |key: &str| line.split_once(key).map(|(_, r)| r.trim_start());
    let number = |key: &str| -> Option<u64> { after(key)?.split_whitespace().next()?.parse().ok() };
    let row = number("ncols")?;
    let block = number("not divisible by")?;
    let wanted = after("(required for type")?.split(')').next()?.trim();
    let written = after("falling back to")?.split_whitespace().next()?;
    Some((
        wanted.to_ascii_uppercase(),
        written.to_ascii_uppercase(),
        row,
        block,
    ))
}

/// Adds one fallback to the groups.
fn add_fallback(
    groups: &mut Vec<Fallback>,
    (wanted, written, row, block): (String, String, u64, u64),
) {
    match groups
        .iter_mut()
        .find(|f| f.wanted == wanted && f.written == written && f.row == row)
    {
        Some(f) => f.tensors += 1,
        None => groups.push(Fallback {
            wanted,
            written,
            row,
            block,
            tensors: 1,
        }),
    }
}

/// `[  12/ 272]  blk.1.attn_k.weight - […]` → (12, 272, name).
fn parse_tensor_line(line: &str) -> Option<(usize, usize, String)> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (nums, after) = rest.split_once(']')?;
    let (a, b) = nums.split_once('/')?;
    let done = a.trim().parse().ok()?;
    let total = b.trim().parse().ok()?;
    let name = after.split_whitespace().next().unwrap_or("").to_string();
    Some((done, total, name))
}

/// `llama_model_quantize_impl: model size  =   103.6 MiB (6.30 BPW)` → (103.6, 6.30).
fn parse_size_line(line: &str, key: &str) -> Option<(f64, f64)> {
    let rest = line.split_once(key)?.1;
    let rest = rest.trim_start().strip_prefix('=')?;
    let mib: f64 = rest.split_whitespace().next()?.parse().ok()?;
    let bpw: f64 = rest
        .split_once('(')?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((mib, bpw))
}

/// Removes leftovers of earlier runs for `out` whose process is gone.
fn remove_stale_partials(out: &Path) {
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(output_dir(out)) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".partial"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Deletes the file when dropped, unless disarmed.
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Kills and reaps the child when dropped.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs `plan` in a child process of `exe` (this executable), calling
/// `progress` per tensor. SIGINT, SIGTERM and SIGHUP stop it (the child is
/// killed, the temporary file removed) with [`QuantizeError::Interrupted`].
///
/// # Errors
/// [`QuantizeError::Failed`] with llama.cpp's reason, [`QuantizeError::Crashed`]
/// when the child died, [`QuantizeError::Interrupted`], [`QuantizeError::BadResult`]
/// when the output does not read back, I/O errors around the rename.
pub fn run(
    exe: &Path,
    plan: &Plan,
    mut progress: impl FnMut(&Progress),
) -> Result<Outcome, QuantizeError> {
    // The child would stop with an illegal instruction in llama.cpp.
    if let Some(why) = crate::engine::kernels::cpu_mismatch() {
        return Err(QuantizeError::WrongCpu(why));
    }
    remove_stale_partials(&plan.output);
    let partial = partial_path(&plan.output, std::process::id());
    // Probe that the directory takes a file, for a clear error before the child starts.
    std::fs::File::create(&partial).map_err(|source| QuantizeError::OutputDir {
        dir: output_dir(&plan.output),
        source,
    })?;
    let mut cleanup = Cleanup(Some(partial.clone()));

    let stop = Arc::new(AtomicBool::new(false));
    let ids: Vec<_> = [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ]
    .iter()
    .filter_map(|s| signal_hook::flag::register(*s, stop.clone()).ok())
    .collect();
    let result = supervise(exe, plan, &partial, &stop, &mut progress);
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    let logged = result?;
    let card = catalog::read_card(&partial).map_err(|e| QuantizeError::BadResult(e.to_string()))?;
    // On disk before it takes OUT's name: a power cut after the rename must
    // not leave an OUT whose data never got written.
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|source| QuantizeError::Io {
            what: format!("cannot sync {}", partial.display()),
            source,
        })?;
    std::fs::rename(&partial, &plan.output).map_err(|source| QuantizeError::Io {
        what: format!("cannot move the result to {}", plan.output.display()),
        source,
    })?;
    cleanup.0 = None;
    let card = ModelCard {
        path: plan.output.clone(),
        file_name: plan
            .output
            .file_name()
            .map(|n| crate::text::escape_inline(&n.to_string_lossy()))
            .unwrap_or_default(),
        ..card
    };
    Ok(Outcome {
        output: plan.output.clone(),
        card,
        sizes: logged.sizes,
        fallbacks: logged.fallbacks,
    })
}

/// What the parent read in the quantizer's log.
struct Logged {
    sizes: Option<(f64, f64, f64, f64)>,
    fallbacks: Vec<Fallback>,
}

/// Starts the child and follows it to the end.
fn supervise(
    exe: &Path,
    plan: &Plan,
    partial: &Path,
    stop: &AtomicBool,
    progress: &mut impl FnMut(&Progress),
) -> Result<Logged, QuantizeError> {
    let mut cmd = Command::new(exe);
    cmd.arg("quantize-worker")
        .arg(&plan.input.path)
        .arg(partial)
        .arg(plan.ty.ftype.to_string())
        .arg(plan.threads.to_string())
        .arg(if plan.allow_requantize { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(QuantizeError::Spawn)?;
    let mut child = Reap(child);
    let stderr = child.0.stderr.take().expect("stderr is piped");
    let (tx, rx) = channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
            if tx
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let mut last: Vec<String> = Vec::new();
    let mut assertion: Option<String> = None;
    let mut reason: Option<String> = None;
    let mut sizes_in = None;
    let mut sizes_out = None;
    let mut no_room_why: Option<String> = None;
    let mut fallbacks: Vec<Fallback> = Vec::new();
    let mut on_line = |line: String| {
        if let Some(f) = parse_fallback_line(&line) {
            add_fallback(&mut fallbacks, f);
        }
        if let Some((done, total, name)) = parse_tensor_line(&line) {
            progress(&Progress::Tensor { done, total, name });
        }
        if let Some(why) = line.strip_prefix(NO_ROOM) {
            no_room_why = Some(crate::text::escape_inline(why.trim()));
        }
        if let Some(r) = line.split_once("failed to quantize:").map(|(_, r)| r) {
            reason.get_or_insert_with(|| crate::text::escape_inline(r.trim()));
        }
        sizes_in = sizes_in.or_else(|| parse_size_line(&line, "model size"));
        sizes_out = sizes_out.or_else(|| parse_size_line(&line, "quant size"));
        if assertion.is_none() && (line.contains("GGML_ASSERT") || line.contains("GGML_ABORT")) {
            assertion = Some(line.clone());
        }
        if !line.trim().is_empty() {
            last.push(line);
            if last.len() > 6 {
                last.remove(0);
            }
        }
    };
    let status = loop {
        if stop.load(Ordering::SeqCst) {
            return Err(QuantizeError::Interrupted);
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => on_line(line),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.0.wait().map_err(|source| QuantizeError::Io {
                    what: "waiting for the quantizer process".into(),
                    source,
                })?;
                break status;
            }
        }
    };
    let _ = reader.join();
    if stop.load(Ordering::SeqCst) {
        return Err(QuantizeError::Interrupted);
    }
    if let Some(a) = assertion {
        last = vec![a];
    }
    let last_words = || crate::text::escape_inline(&last_words(&last));
    if status.success() {
        return Ok(Logged {
            sizes: sizes_in.zip(sizes_out).map(|((a, b), (c, d))| (a, b, c, d)),
            fallbacks,
        });
    }
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        if sig == libc::SIGINT || sig == libc::SIGTERM || sig == libc::SIGHUP {
            return Err(QuantizeError::Interrupted);
        }
        return Err(QuantizeError::Crashed {
            input: plan.input.path.clone(),
            how: format!(
                "signal {sig}{}",
                if sig == libc::SIGABRT {
                    ", an abort in llama.cpp"
                } else {
                    ""
                }
            ),
            last: last_words(),
        });
    }
    let mut reason =
        reason.unwrap_or_else(|| format!("exit {status}; last words: {}", last_words()));
    let room = || {
        format!(
            "free some space in {} or choose another OUT",
            output_dir(&plan.output).display()
        )
    };
    if let Some(why) = no_room_why {
        // llama.cpp's own words ("iostream error") say less than ours.
        let todo = if why.contains("ulimit") {
            "raise the limit or choose a smaller type".to_string()
        } else {
            room()
        };
        reason =
            format!("the output could not be written whole: {why}; {todo}; nothing was left there");
    } else if out_of_room(&reason) {
        reason += &format!(" ({}; nothing was left there)", room());
    }
    Err(QuantizeError::Failed {
        input: plan.input.path.clone(),
        reason,
    })
}

/// Whether llama.cpp's reason is a write that found no room: a full disk
/// (ENOSPC), a quota (EDQUOT) or a file-size limit (EFBIG).
fn out_of_room(reason: &str) -> bool {
    [libc::ENOSPC, libc::EDQUOT, libc::EFBIG].iter().any(|&e| {
        // llama.cpp writes strerror's text: Rust's is the same before " (os error N)".
        let text = std::io::Error::from_raw_os_error(e).to_string();
        let text = text.split(" (os error").next().unwrap_or_default();
        reason.contains(text)
    })
}

/// What the quantizer said last, in one line: an assertion as
/// `llama-model.cpp:1330: GGML_ASSERT(…) failed` (its source path cut to the
/// file name), else its last lines joined by ` | `.
fn last_words(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| {
            let l = l.trim();
            match l.find(": GGML_") {
                Some(at) => {
                    let file = l[..at].rsplit('/').next().unwrap_or("");
                    format!("{file}{}", &l[at..])
                }
                None => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::types::{NOT_OFFERED, TYPES};
    use super::*;

    #[test]
    fn types_parse_by_name_and_unknown_ones_are_refused_with_the_list() {
        assert_eq!(parse_type("q4_k_m").unwrap().ftype, 15);
        assert_eq!(parse_type("Q2_K").unwrap().ftype, 10);
        let e = parse_type("Q9_X").unwrap_err().to_string();
        assert!(
            e.contains("\"Q9_X\"") && e.contains("Q8_0") && e.contains("--type help"),
            "{e}"
        );
        let help = types_help();
        assert!(help.contains("Q2_K") && help.contains("2.62 bpw"), "{help}");
        // Every name agrees with the reader of file types.
        for t in TYPES {
            assert_eq!(catalog::ftype_name(t.ftype), Some(t.name));
        }
    }

    #[test]
    fn aliases_are_accepted_and_types_needing_an_importance_matrix_are_refused_with_why() {
        assert_eq!(parse_type("q4_k").unwrap().name, "Q4_K_M");
        assert_eq!(parse_type("Q3_K").unwrap().name, "Q3_K_M");
        assert_eq!(parse_type("Q5_K").unwrap().name, "Q5_K_M");
        for t in ["IQ1_S", "iq2_xxs", "IQ2_XS", "IQ3_XXS", "Q2_K_S"] {
            let e = parse_type(t).unwrap_err();
            assert!(
                matches!(e, QuantizeError::NeedsImatrix { .. }),
                "{t}: {e:?}"
            );
            let e = e.to_string();
            assert!(
                e.starts_with(&format!("{} needs an importance matrix", t.to_uppercase()))
                    && e.contains("sample text")
                    && e.contains("llama-imatrix")
                    && e.contains("Q4_K_M")
                    && !e.contains("unknown"),
                "{e}"
            );
        }
        for t in ["TQ1_0", "tq2_0"] {
            let e = parse_type(t).unwrap_err().to_string();
            assert!(e.contains("ternary") && !e.contains("unknown"), "{e}");
        }
        let e = parse_type("IQ3_S").unwrap_err().to_string();
        assert!(
            e.contains("does not offer") && e.contains("llama-quantize"),
            "{e}"
        );
        let e = parse_type("Q9_X").unwrap_err().to_string();
        assert!(e.contains("Q4_K = Q4_K_M"), "the aliases are named: {e}");
        let help = types_help();
        assert!(
            help.contains("Q4_K = Q4_K_M") && help.contains("IQ2_XXS") && help.contains("576"),
            "{help}"
        );
        // In Chinese: the same types, numbers and lines, no English words.
        let zh = crate::i18n::with_lang(crate::i18n::Lang::Zh, types_help);
        assert_eq!(zh.lines().count(), help.lines().count(), "{zh}");
        for t in TYPES {
            let row = |h: &str| {
                h.lines()
                    .find(|l| l.starts_with(&format!("  {:<7} ", t.name)))
                    .map(|l| l[..20].to_owned())
            };
            assert_eq!(row(&zh), row(&help), "{}", t.name);
        }
        for word in [
            "bit",
            "legacy",
            "mix",
            "Aliases",
            "Not offered",
            "weights",
            "needs",
        ] {
            assert!(!zh.contains(word), "{word:?} in:\n{zh}");
        }
        // Every refused name is one llama.cpp has, none is offered.
        for (n, _) in NOT_OFFERED {
            assert!(TYPES.iter().all(|t| t.name != *n), "{n}");
            assert!(
                *n == "COPY" || (0..64).any(|f| catalog::ftype_name(f) == Some(*n)),
                "{n}"
            );
        }
    }

    #[test]
    fn llama_cpp_fallbacks_are_read_from_its_log() {
        // As llama.cpp's tensor_type_fallback writes them (two log calls, one line).
        let l = "warning: blk.0.attn_q.weight                  - ncols    576 not divisible by 256 (required for type    q2_K) -> falling back to    q4_0";
        assert_eq!(
            parse_fallback_line(l),
            Some(("Q2_K".into(), "Q4_0".into(), 576, 256))
        );
        let odd = "warning: x.weight - ncols     40 not divisible by  32 (required for type    q4_0) (WARNING: must use F16 due to unusual shape) -> falling back to     f16";
        assert_eq!(
            parse_fallback_line(odd),
            Some(("Q4_0".into(), "F16".into(), 40, 32))
        );
        assert_eq!(
            parse_fallback_line(
                "llama_model_quantize_impl: WARNING: 181 of 272 tensor(s) required fallback quantization"
            ),
            None
        );
        let mut groups = Vec::new();
        for _ in 0..3 {
            add_fallback(&mut groups, parse_fallback_line(l).unwrap());
        }
        add_fallback(&mut groups, parse_fallback_line(odd).unwrap());
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].tensors, 3);
    }

    #[test]
    fn writes_that_found_no_room_are_recognized() {
        assert!(out_of_room("write error: No space left on device"));
        assert!(out_of_room("write error: File too large"));
        assert!(out_of_room("write error: Disk quota exceeded"));
        assert!(!out_of_room("tensor 'x' has wrong shape"));
    }

    #[test]
    fn llama_cpp_log_lines_are_read() {
        let l = "[  12/ 272]                  blk.1.attn_k.weight - [  576,   192,     1,     1], type =   q4_1, converting to q2_K .. size =     0.06 MiB ->     0.04 MiB";
        assert_eq!(
            parse_tensor_line(l),
            Some((12, 272, "blk.1.attn_k.weight".into()))
        );
        assert_eq!(parse_tensor_line("llama_model_loader: loaded"), None);
        assert_eq!(
            parse_size_line(
                "llama_model_quantize_impl: model size  =    85.47 MiB (5.28 BPW)",
                "model size"
            ),
            Some((85.47, 5.28))
        );
    }

    #[test]
    fn the_default_output_drops_the_input_type_from_the_name() {
        let card = |file: &str, quant: &str| ModelCard {
            path: PathBuf::from("/m").join(file),
            file_name: file.into(),
            name: String::new(),
            source: None,
            former_name: String::new(),
            id: file.into(),
            parts: 1,
            arch: String::new(),
            n_params: 0,
            file_size: 0,
            quant: quant.into(),
            n_layer: 0,
            n_ctx_train: 0,
            n_vocab: 0,
            chat_template: None,
            metadata: Vec::new(),
            mix: Default::default(),
            made_from: None,
        };
        let q2 = parse_type("Q2_K").unwrap();
        let dir = Path::new("/models");
        assert_eq!(
            default_output(&card("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"), q2, dir),
            Path::new("/models/SmolLM2-135M-Instruct.Q2_K.gguf")
        );
        assert_eq!(
            default_output(&card("gemma-3-270m-q4_k_m.gguf", "Q4_K_M"), q2, dir),
            Path::new("/models/gemma-3-270m.Q2_K.gguf")
        );
        assert_eq!(
            default_output(&card("plain.gguf", "F16"), q2, dir),
            Path::new("/models/plain.Q2_K.gguf")
        );
        // An Ollama blob is named by its digest: the output by the model's name.
        let mut blob = card("sha256-1d9614638d18", "Q4_K_M");
        blob.source = Some(crate::catalog::Store::Ollama);
        blob.id = "someone/qwen2.5-coder:0.5b".into();
        assert_eq!(
            default_output(&blob, q2, dir),
            Path::new("/models/someone-qwen2.5-coder-0.5b.Q2_K.gguf")
        );
        assert_eq!(
            partial_path(Path::new("/m/x.gguf"), 42),
            Path::new("/m/.x.gguf.42.partial")
        );
    }
}
