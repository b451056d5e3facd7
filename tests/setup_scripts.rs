//! The setup scripts: `scripts/ensure-deps.sh` must find the libclang that
//! bindgen loads, and never take the C++ API library (`libclang-cpp`) for it.

use std::path::Path;
use std::process::Command;

fn find_libclang(dirs: &[&Path]) -> Option<String> {
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/ensure-deps.sh"
        ))
        .arg("--find-libclang")
        .args(dirs)
        .output()
        .expect("bash runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn fixture(files: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::write(d.path().join(f), b"").unwrap();
    }
    d
}

#[test]
fn libclang_cpp_alone_is_not_libclang() {
    // Debian's base image: libclang-cpp14 (the C++ API) without libclang.
    let d = fixture(&["libclang-cpp.so.14", "libLLVM-14.so.1"]);
    assert_eq!(find_libclang(&[d.path()]), None);
    let empty = fixture(&[]);
    assert_eq!(find_libclang(&[empty.path()]), None);
}

#[test]
fn every_name_bindgen_loads_is_found() {
    for name in [
        "libclang.so",
        "libclang.so.1",
        "libclang-14.so",
        "libclang-14.so.1",
        "libclang-16.0.6.so.16",
    ] {
        let d = fixture(&["libclang-cpp.so.14", name]);
        let found = find_libclang(&[d.path()]).unwrap_or_else(|| panic!("{name} not found"));
        assert!(found.ends_with(name), "{name}: found {found}");
    }
}

#[test]
fn later_directories_are_searched_too() {
    let a = fixture(&["libclang-cpp.so.14"]);
    let b = fixture(&["libclang-14.so.1"]);
    let found = find_libclang(&[a.path(), b.path()]).expect("found in the second");
    assert!(found.starts_with(&*b.path().to_string_lossy()), "{found}");
}

/// `scripts/cpu-kernels.sh --print` for a CPU whose /proc/cpuinfo flags are
/// `flags` (and `portable` for TOKENSCOPE_PORTABLE=1): the GGML options set ON.
fn kernels_for(flags: &str, portable: bool) -> Vec<String> {
    let d = tempfile::tempdir().unwrap();
    let info = d.path().join("cpuinfo");
    std::fs::write(
        &info,
        format!("processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n"),
    )
    .unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/cpu-kernels.sh"
    ))
    .arg("--print")
    .env("TOKENSCOPE_CPUINFO", &info)
    .env_remove("TOKENSCOPE_PORTABLE");
    if portable {
        cmd.env("TOKENSCOPE_PORTABLE", "1");
    }
    let out = cmd.output().expect("bash runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if std::env::consts::ARCH != "x86_64" {
        return Vec::new();
    }
    assert!(text.contains("[env]"), "{text}");
    text.lines()
        .filter(|l| l.ends_with("= \"ON\""))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn llama_cpp_kernels_follow_the_cpu_that_builds_them() {
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let haswell = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi1 bmi2";
    let zen4 = format!(
        "{haswell} avx512f avx512dq avx512cd avx512bw avx512vl avx512vbmi avx512_vnni avx512_bf16"
    );
    // A CPU without AVX-512 gets no AVX-512 kernel (they would crash it).
    let on = kernels_for(haswell, false);
    assert!(on.contains(&"GGML_AVX2".to_string()), "{on:?}");
    assert!(!on.iter().any(|o| o.contains("AVX512")), "{on:?}");
    // One with AVX-512 and its extensions gets them all.
    let on = kernels_for(&zen4, false);
    for o in [
        "GGML_AVX512",
        "GGML_AVX512_VBMI",
        "GGML_AVX512_VNNI",
        "GGML_AVX512_BF16",
    ] {
        assert!(on.contains(&o.to_string()), "{o}: {on:?}");
    }
    // AVX-512 extensions without the AVX-512 base that ggml compiles with are not used.
    let on = kernels_for(&format!("{haswell} avx512f avx512_vnni"), false);
    assert!(!on.iter().any(|o| o.contains("AVX512")), "{on:?}");
    // A CPU without AVX2 gets none (llama.cpp's default would crash it).
    let on = kernels_for("fpu sse sse2 ssse3 sse4_1 sse4_2 avx", false);
    assert!(on.contains(&"GGML_AVX".to_string()) && !on.contains(&"GGML_AVX2".to_string()));
    // Portable: AVX2 whatever the CPU.
    let on = kernels_for(&zen4, true);
    assert!(on.contains(&"GGML_AVX2".to_string()), "{on:?}");
    assert!(!on.iter().any(|o| o.contains("AVX512")), "{on:?}");
}
