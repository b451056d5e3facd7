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

/// The instruction sets this build's llama.cpp kernels were compiled for
/// that the CPU running it lacks (names as in `cpu_kernels`); empty where
/// the build fits the CPU. A build for the builder's CPU (`make`, see
/// `scripts/cpu-kernels.sh`) copied to an older machine would otherwise stop
/// with an illegal instruction as llama.cpp initialises: this is checked
/// first, so that it is refused in words instead.
pub(crate) fn missing_on_this_cpu() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use llama_cpp_sys_2 as sys;
        use std::arch::is_x86_feature_detected as cpu;
        // SAFETY: each reads a constant compiled into ggml's CPU backend
        // (a plain `return 1/0`, no instruction the CPU may lack).
        let built = |f: unsafe extern "C" fn() -> std::os::raw::c_int| unsafe { f() } != 0;
        let sets = [
            ("AVX", built(sys::ggml_cpu_has_avx), cpu!("avx")),
            ("AVX2", built(sys::ggml_cpu_has_avx2), cpu!("avx2")),
            ("FMA", built(sys::ggml_cpu_has_fma), cpu!("fma")),
            ("F16C", built(sys::ggml_cpu_has_f16c), cpu!("f16c")),
            ("BMI2", built(sys::ggml_cpu_has_bmi2), cpu!("bmi2")),
            ("AVX-512", built(sys::ggml_cpu_has_avx512), cpu!("avx512f")),
            (
                "AVX-512 VBMI",
                built(sys::ggml_cpu_has_avx512_vbmi),
                cpu!("avx512vbmi"),
            ),
            (
                "AVX-512 VNNI",
                built(sys::ggml_cpu_has_avx512_vnni),
                cpu!("avx512vnni"),
            ),
            (
                "AVX-512 BF16",
                built(sys::ggml_cpu_has_avx512_bf16),
                cpu!("avx512bf16"),
            ),
            (
                "AVX-VNNI",
                built(sys::ggml_cpu_has_avx_vnni),
                cpu!("avxvnni"),
            ),
        ];
        missing(&sets)
    }
    #[cfg(not(target_arch = "x86_64"))]
    Vec::new()
}

/// The sets built in (`.1`) that the CPU lacks (`.2` false).
fn missing(sets: &[(&'static str, bool, bool)]) -> Vec<&'static str> {
    sets.iter()
        .filter(|(_, built, has)| *built && !*has)
        .map(|(name, _, _)| *name)
        .collect()
}

/// Why this build cannot run llama.cpp on this CPU, in words with what to
/// do, or `None` where it can ([`missing_on_this_cpu`]).
pub(crate) fn cpu_mismatch() -> Option<String> {
    mismatch_message(&missing_on_this_cpu(), &cpu_kernels())
}

fn mismatch_message(missing: &[&str], kernels: &str) -> Option<String> {
    (!missing.is_empty()).then(|| {
        format!(
            "this tokenscope was built with llama.cpp kernels for {kernels}, but this CPU lacks {}: \
             build it on this machine (`make`, which picks the kernels this CPU has), or build a \
             portable binary for older CPUs with `TOKENSCOPE_PORTABLE=1 make` (AVX2)",
            missing.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_build_for_a_newer_cpu_is_refused_in_words() {
        let sets = [
            ("AVX2", true, true),
            ("AVX-512", true, false),
            ("AVX-512 VBMI", true, false),
            ("AVX-VNNI", false, false),
            ("F16C", false, true),
        ];
        assert_eq!(super::missing(&sets), ["AVX-512", "AVX-512 VBMI"]);
        let m = super::mismatch_message(&super::missing(&sets), "AVX-512 (VBMI)").unwrap();
        assert!(m.contains("lacks AVX-512, AVX-512 VBMI"), "{m}");
        assert!(m.contains("TOKENSCOPE_PORTABLE=1 make"), "{m}");
        assert_eq!(super::mismatch_message(&[], "AVX2"), None);
    }

    /// The machine running the tests built this binary: nothing is missing.
    #[test]
    fn the_build_fits_the_cpu_that_built_it() {
        assert_eq!(super::missing_on_this_cpu(), Vec::<&str>::new());
    }

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
