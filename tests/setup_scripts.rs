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
