//! The model's output head, applied outside llama.cpp's graph to any
//! residual-stream vector: the final RMS norm (`output_norm.weight`), the
//! output matrix (`output.weight`, or `token_embd.weight` when the
//! embeddings are tied), its bias where the model has one (Qwen2 may), and
//! the final logit soft-capping where the GGUF sets one (Gemma 2 style; the
//! Gemma 3 files have none). This is what llama.cpp's graph does after the
//! last layer (`result_norm`, `result_output` in `src/models/{llama,qwen2,
//! gemma3}.cpp`).
//!
//! The output matrix is read from the GGUF file through a read-only memory
//! map (the page cache llama.cpp's own map already holds: no copy) and is
//! never dequantized as a whole (Gemma 3's is 262,144 × 640): each row is
//! dotted with every layer's vector by ggml's own CPU kernel for its type
//! (`ggml_get_type_traits_cpu`: the vector is quantized to the kernel's
//! `vec_dot_type` by `from_float`, then `vec_dot` per row), exactly the
//! kernel llama.cpp's matrix multiplication uses, so the last layer's row
//! matches the model's logits to float rounding.

use std::ffi::c_void;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use llama_cpp_sys_2 as sys;

use crate::engine::api::Words;
use crate::gguf::{GgufHeader, GgufValue, TensorInfo};

/// The architectures whose head this reproduces, checked against their graph
/// code in llama.cpp: RMS norm then the output matrix (plus bias, plus
/// soft-capping when the GGUF sets it).
pub(super) const SUPPORTED: &[&str] = &["llama", "qwen2", "gemma3"];

/// A read-only memory map of a whole file.
struct Map {
    ptr: *mut c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and lives until drop; reading it from
// several threads is sound.
unsafe impl Send for Map {}
unsafe impl Sync for Map {}

impl Map {
    fn open(path: &Path) -> std::io::Result<Map> {
        let file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::other("file too large to map"))?;
        // SAFETY: a fresh private read-only mapping of an open file; the
        // result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Map { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `open` mapped.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// The output head of one model file.
pub(super) struct Head {
    map: Map,
    /// Byte range of the output matrix in the file: `n_vocab` rows of `row_bytes`.
    weight: usize,
    row_bytes: usize,
    pub n_vocab: usize,
    pub n_embd: usize,
    ggml_type: sys::ggml_type,
    norm: Vec<f32>,
    eps: f32,
    bias: Option<Vec<f32>>,
    softcap: Option<f32>,
}

/// Tensor `name` of a truncated file, in words.
fn past_the_end(name: &str) -> Words {
    Words::tr_args(
        "lens-head-past-end",
        "{ $tensor } runs past the end of the file",
        &[("tensor", &name)],
    )
}

impl Head {
    /// The head of the model file at `path` (whose header is `header`).
    ///
    /// # Errors
    /// In words: an architecture not in [`SUPPORTED`], a head with parts this
    /// does not reproduce (a per-tensor scale), a missing or malformed
    /// tensor, a type ggml's CPU backend has no dot product for.
    pub fn open(path: &Path, header: &GgufHeader) -> Result<Head, Words> {
        let arch = header.get_str("general.architecture").unwrap_or("");
        if !SUPPORTED.contains(&arch) {
            return Err(Words::tr_args(
                "lens-head-arch",
                "the layer lens reproduces the output head of { $supported } models (checked against \
                 llama.cpp's graph for each); this model's architecture is { $arch }",
                &[
                    ("supported", &SUPPORTED.join(", ")),
                    ("arch", &format!("{arch:?}")),
                ],
            ));
        }
        let tensor = |name: &str| header.tensors.iter().find(|t| t.name == name);
        if tensor("output.scale").is_some() {
            return Err(Words::tr(
                "lens-head-scale",
                "this model's output matrix has a per-tensor scale (output.scale), which the \
                 layer lens does not reproduce",
            ));
        }
        let matrix = tensor("output.weight")
            .or_else(|| tensor("token_embd.weight"))
            .ok_or_else(|| {
                Words::tr(
                    "lens-head-no-matrix",
                    "the model file has neither output.weight nor token_embd.weight",
                )
            })?;
        let norm_t = tensor("output_norm.weight")
            .ok_or_else(|| Words::tr("lens-head-no-norm", "the model file has no output_norm"))?;
        let map = Map::open(path).map_err(|e| {
            Words::tr_args(
                "lens-head-map",
                "cannot map { $path }: { $error }",
                &[("path", &path.display()), ("error", &e)],
            )
        })?;
        let data = header.data_offset as usize;
        let [n_embd, n_vocab] = matrix.dims[..] else {
            return Err(Words::tr_args(
                "lens-head-not-matrix",
                "{ $tensor } is not a matrix",
                &[("tensor", &matrix.name)],
            ));
        };
        let (n_embd, n_vocab) = (n_embd as usize, n_vocab as usize);
        let ggml_type: sys::ggml_type = matrix.ggml_type.0;
        // SAFETY: plain lookups in ggml's static type tables.
        let (row_bytes, traits) = unsafe {
            (
                sys::ggml_row_size(ggml_type, n_embd as i64),
                sys::ggml_get_type_traits_cpu(ggml_type),
            )
        };
        // SAFETY: the table entry is static (checked for null).
        if traits.is_null() || unsafe { (*traits).vec_dot.is_none() } {
            return Err(Words::tr_args(
                "lens-head-no-dot",
                "ggml's CPU backend has no dot product for the output matrix's type { $type }",
                &[("type", &matrix.ggml_type)],
            ));
        }
        let weight = data + matrix.offset as usize;
        if weight + row_bytes * n_vocab > map.len {
            return Err(past_the_end(&matrix.name));
        }
        let read_f32 = |t: &TensorInfo| -> Result<Vec<f32>, Words> {
            if t.ggml_type.0 != sys::GGML_TYPE_F32 || t.n_elements as usize != n_embd {
                return Err(Words::tr_args(
                    "lens-head-not-f32",
                    "{ $tensor } is { $type } with { $n } elements; the lens expects f32 with { $want }",
                    &[
                        ("tensor", &t.name),
                        ("type", &t.ggml_type),
                        ("n", &t.n_elements),
                        ("want", &n_embd),
                    ],
                ));
            }
            let start = data + t.offset as usize;
            let bytes = map
                .bytes()
                .get(start..start + 4 * n_embd)
                .ok_or_else(|| past_the_end(&t.name))?;
            Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let norm = read_f32(norm_t)?;
        let bias = match tensor("output.bias") {
            Some(t) if t.n_elements as usize == n_vocab => {
                let start = data + t.offset as usize;
                let bytes = map
                    .bytes()
                    .get(start..start + 4 * n_vocab)
                    .ok_or_else(|| past_the_end("output.bias"))?;
                Some(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                )
            }
            Some(_) => {
                return Err(Words::tr(
                    "lens-head-bias",
                    "output.bias does not have one value per token",
                ));
            }
            None => None,
        };
        let float = |key: &str| match header.get(&format!("{arch}.{key}")) {
            Some(GgufValue::F32(v)) => Some(*v),
            Some(GgufValue::F64(v)) => Some(*v as f32),
            _ => None,
        };
        let eps = float("attention.layer_norm_rms_epsilon").ok_or_else(|| {
            Words::tr(
                "lens-head-no-eps",
                "the model file does not give its RMS norm epsilon",
            )
        })?;
        let softcap = float("final_logit_softcapping").filter(|&c| c != 0.0);
        Ok(Head {
            map,
            weight,
            row_bytes,
            n_vocab,
            n_embd,
            ggml_type,
            norm,
            eps,
            bias,
            softcap,
        })
    }

    /// The output norm of one residual vector (`n_embd` floats), as ggml's
    /// `rms_norm` then `mul` compute it: the mean square summed in f64,
    /// the scale in f32.
    fn normed(&self, x: &[f32]) -> Vec<f32> {
        let sum: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let mean = (sum / x.len() as f64) as f32;
        let scale = 1.0 / (mean + self.eps).sqrt();
        x.iter()
            .zip(&self.norm)
            .map(|(&v, &w)| v * scale * w)
            .collect()
    }

    /// The logits of each residual vector in `xs` (each `n_embd` floats):
    /// one `Vec` of `n_vocab` per vector, in order. The matrix is read once,
    /// row by row, every vector dotted with each row while it is in cache;
    /// rows are split over `threads` threads.
    pub fn logits(&self, xs: &[Vec<f32>], threads: usize) -> Vec<Vec<f32>> {
        // SAFETY: static table entry, checked in `open`.
        let traits = unsafe { *sys::ggml_get_type_traits_cpu(self.ggml_type) };
        let vec_dot = traits.vec_dot.expect("checked in Head::open");
        let acts: Vec<Vec<u8>> = xs
            .iter()
            .map(|x| {
                let normed = self.normed(x);
                match traits.from_float {
                    Some(from_float) if traits.vec_dot_type != sys::GGML_TYPE_F32 => {
                        // SAFETY: a row of `vec_dot_type` of n_embd elements
                        // is `ggml_row_size` bytes.
                        let size =
                            unsafe { sys::ggml_row_size(traits.vec_dot_type, self.n_embd as i64) };
                        let mut q = vec![0u8; size];
                        // SAFETY: `normed` has n_embd floats, `q` the row's bytes.
                        unsafe {
                            from_float(normed.as_ptr(), q.as_mut_ptr().cast(), self.n_embd as i64)
                        };
                        q
                    }
                    _ => normed.iter().flat_map(|v| v.to_ne_bytes()).collect(),
                }
            })
            .collect();
        let mut out: Vec<Vec<f32>> = xs.iter().map(|_| vec![0.0; self.n_vocab]).collect();
        let threads = threads.clamp(1, 16);
        let per = self.n_vocab.div_ceil(threads);
        let mut parts: Vec<Vec<&mut [f32]>> = (0..threads).map(|_| Vec::new()).collect();
        for o in &mut out {
            for (t, chunk) in o.chunks_mut(per).enumerate() {
                parts[t].push(chunk);
            }
        }
        let bytes = self.map.bytes();
        let (weight, row_bytes, n_embd) = (self.weight, self.row_bytes, self.n_embd as i32);
        std::thread::scope(|s| {
            for (t, mut part) in parts.into_iter().enumerate() {
                let acts = &acts;
                s.spawn(move || {
                    let first = t * per;
                    let n = part.first().map_or(0, |p| p.len());
                    for r in 0..n {
                        let start = weight + (first + r) * row_bytes;
                        let row = &bytes[start..start + row_bytes];
                        for (o, act) in part.iter_mut().zip(acts) {
                            let mut v = 0.0f32;
                            // SAFETY: `row` is one row of the matrix's type,
                            // `act` the vector in the kernel's vec_dot_type,
                            // both of n_embd elements; one row (nrc = 1).
                            unsafe {
                                vec_dot(
                                    n_embd,
                                    &mut v,
                                    0,
                                    row.as_ptr().cast(),
                                    0,
                                    act.as_ptr().cast(),
                                    0,
                                    1,
                                )
                            };
                            o[r] = v;
                        }
                    }
                });
            }
        });
        for o in &mut out {
            if let Some(bias) = &self.bias {
                o.iter_mut().zip(bias).for_each(|(l, b)| *l += b);
            }
            if let Some(cap) = self.softcap {
                o.iter_mut().for_each(|l| *l = cap * (*l / cap).tanh());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Head;
    use crate::gguf::testutil::{T, Val, build, s};

    /// `Head::open` on a small GGUF of `arch` with `tensors`.
    fn open(arch: &str, tensors: &[T]) -> Result<(), String> {
        let bytes = build(
            &[
                ("general.architecture", s(arch)),
                (
                    &format!("{arch}.attention.layer_norm_rms_epsilon"),
                    Val::F32(1e-6),
                ),
            ],
            tensors,
            32,
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, bytes).expect("written");
        let header = crate::gguf::read_header(&path).expect("the header reads");
        Head::open(&path, &header)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    const NORM: T = T("output_norm.weight", &[8], 0);

    #[test]
    fn an_architecture_not_checked_is_refused_with_the_reason() {
        let e = open("mamba", &[NORM, T("output.weight", &[8, 4], 0)]).expect_err("refused");
        assert!(
            e.contains("llama, qwen2, gemma3") && e.contains("\"mamba\""),
            "{e}"
        );
        let zh = crate::i18n::with_lang(crate::i18n::Lang::Zh, || {
            open("mamba", &[NORM, T("output.weight", &[8, 4], 0)]).expect_err("refused")
        });
        assert!(
            zh.contains("层透镜") && zh.contains("\"mamba\"") && !zh.contains("architecture"),
            "{zh}"
        );
    }

    #[test]
    fn a_head_with_parts_not_reproduced_is_refused() {
        let e = open(
            "llama",
            &[
                NORM,
                T("output.weight", &[8, 4], 0),
                T("output.scale", &[1], 0),
            ],
        )
        .expect_err("refused");
        assert!(e.contains("output.scale"), "{e}");
        let e = open("llama", &[NORM]).expect_err("refused");
        assert!(
            e.contains("neither output.weight nor token_embd.weight"),
            "{e}"
        );
    }

    #[test]
    fn tied_embeddings_are_the_head_when_there_is_no_output_matrix() {
        open("gemma3", &[NORM, T("token_embd.weight", &[8, 4], 0)]).expect("tied head opens");
    }
}
