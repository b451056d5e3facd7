//! Model files without weights, for tests of what happens before llama.cpp
//! reads a file: SmolLM2's cut-down header (the fuzz corpus,
//! `tests/fuzz-corpus/`) in a sparse file as long as its tensors need.

use std::path::Path;

use tokenscope::gguf::{GgufError, read_header};

/// The cut-down SmolLM2 header of the fuzz corpus, as bytes.
pub fn smol_header() -> Vec<u8> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus/smollm2-135m-q4_1.header.gguf");
    std::fs::read(corpus).expect("the fuzz corpus")
}

/// Writes `header` at `path`, then extends the file (sparse, nothing
/// written) to the length its tensors need; returns that length.
pub fn write_sparse(path: &Path, header: &[u8]) -> u64 {
    std::fs::write(path, header).unwrap();
    let needs = match read_header(path) {
        Err(GgufError::TruncatedData { expected, .. }) => expected,
        other => panic!("a header without its data should be incomplete: {other:?}"),
    };
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(needs)
        .unwrap();
    needs
}

/// `MemAvailable` of this machine, in bytes.
pub fn mem_available() -> u64 {
    tokenscope::engine::memory::available().expect("/proc/meminfo is readable")
}

/// Writes the fake model at `path`: a valid header whose tensor data needs
/// more than twice the memory available, in a sparse file as long as that;
/// returns its size.
pub fn write_larger_than_memory(path: &Path) -> u64 {
    let mut bytes = smol_header();
    write_sparse(path, &bytes);
    let h = read_header(path).unwrap();
    let t = h.tensors.last().unwrap();
    let factor = (2 * mem_available()) / t.n_bytes.unwrap() + 1;
    // Its last dimension, in the header: after the name (u64 length + bytes)
    // and n_dims (u32), one u64 per dimension.
    let mut name = (t.name.len() as u64).to_le_bytes().to_vec();
    name.extend(t.name.as_bytes());
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("the tensor's name in the header")
        + name.len()
        + 4
        + 8 * (t.dims.len() - 1);
    let last_dim = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    bytes[at..at + 8].copy_from_slice(&(last_dim * factor).to_le_bytes());
    let size = write_sparse(path, &bytes);
    assert!(size > 2 * mem_available());
    size
}
