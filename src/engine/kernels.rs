//! Which CPU kernels this build of llama.cpp has: the instruction sets its
//! CPU backend was compiled for (`ggml_cpu_has_*`, fixed at build time;
//! `scripts/cpu-kernels.sh` picks them for the building machine's CPU). Shown
//! by `info` and in the "Loaded …" notice, since they set prefill speed.

/// The CPU kernels in words, best first: e.g. `AVX-512 (VBMI, VNNI, BF16)`,
/// `AVX2`, `NEON (dotprod, i8mm)`.
pub(crate) fn cpu_kernels() -> String {
    use llama_cpp_sys_2 as sys;
    // SAFETY: each reads a constant compiled into ggml's CPU backend.
    let has = |f: unsafe extern "C" fn() -> std::os::raw::c_int| unsafe { f() } != 0;
    let extras = |list: &[(&str, bool)]| {
        let on: Vec<&str> = list.iter().filter(|(_, b)| *b).map(|(n, _)| *n).collect();
        if on.is_empty() {
            String::new()
        } else {
            format!(" ({})", on.join(", "))
        }
    };
    if has(sys::ggml_cpu_has_avx512) {
        let x = extras(&[
            ("VBMI", has(sys::ggml_cpu_has_avx512_vbmi)),
            ("VNNI", has(sys::ggml_cpu_has_avx512_vnni)),
            ("BF16", has(sys::ggml_cpu_has_avx512_bf16)),
            ("AMX", has(sys::ggml_cpu_has_amx_int8)),
        ]);
        format!("AVX-512{x}")
    } else if has(sys::ggml_cpu_has_avx2) {
        format!(
            "AVX2{}",
            extras(&[("AVX-VNNI", has(sys::ggml_cpu_has_avx_vnni))])
        )
    } else if has(sys::ggml_cpu_has_avx) {
        "AVX".into()
    } else if has(sys::ggml_cpu_has_neon) {
        let x = extras(&[
            ("dotprod", has(sys::ggml_cpu_has_dotprod)),
            ("i8mm", has(sys::ggml_cpu_has_matmul_int8)),
            ("SVE", has(sys::ggml_cpu_has_sve)),
        ]);
        format!("NEON{x}")
    } else if has(sys::ggml_cpu_has_ssse3) {
        "SSSE3".into()
    } else {
        "generic".into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kernels_named_are_the_ones_this_build_compiled() {
        let k = super::cpu_kernels();
        // Rust's own view of the build's target cannot see llama.cpp's
        // flags; the AVX-512 claim is checked against the CPU instead: a
        // build that has the kernels runs on a CPU that has them.
        #[cfg(target_arch = "x86_64")]
        if k.starts_with("AVX-512") {
            assert!(std::arch::is_x86_feature_detected!("avx512f"), "{k}");
        }
        assert!(!k.is_empty());
    }
}
