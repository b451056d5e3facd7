//! Fuzzing the GGUF header reader: random mutations (byte flips, byte sets,
//! truncations, inflated counts and lengths) of the demo models' headers, kept
//! cut down in `tests/fuzz-corpus/` (regenerate them with
//! `cargo test --release --test gguf_fuzz -- --ignored regenerate_corpus`).
//!
//! Each mutated header is read twice: as a file of exactly its bytes, and as
//! the head of a sparse file as long as the seed's tensor data needs (so that
//! mutations past the header reach the end of a successful read). The reader
//! must return (a header or an error), never panic, and never allocate more
//! than the file could back: this binary has its own allocator that records,
//! per thread, the largest single allocation and the peak of live bytes during
//! one read. A fixed number of cases runs in the normal `cargo test`
//! (`PROPTEST_CASES` raises it for a longer run).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use tokenscope::gguf::{GgufError, GgufHeader, read_header_from};

// ---- an allocator that measures one thread's reads -----------------------

struct Measuring;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            LIVE.with(|l| {
                let live = l.get() + size;
                l.set(live);
                PEAK.with(|p| p.set(p.get().max(live)));
            });
            LARGEST.with(|m| m.set(m.get().max(size)));
        }
    });
}

fn note_free(size: usize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            LIVE.with(|l| l.set(l.get().saturating_sub(size)));
        }
    });
}

unsafe impl GlobalAlloc for Measuring {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Measuring = Measuring;

/// What one read allocated on this thread: (largest single allocation, peak live bytes).
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
    LARGEST.with(|c| c.set(0));
    ON.with(|c| c.set(true));
    let out = f();
    ON.with(|c| c.set(false));
    (out, LARGEST.with(Cell::get), PEAK.with(Cell::get))
}

// ---- files: exact bytes, or a head followed by zeros ---------------------

/// A file of `len` bytes: `head`, then zeros, without holding the zeros.
struct Sparse<'a> {
    head: &'a [u8],
    len: u64,
    pos: u64,
}

impl Read for Sparse<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.head.get(self.pos as usize + i).copied().unwrap_or(0);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

fn read_sparse(head: &[u8], len: u64) -> Result<GgufHeader, GgufError> {
    // A small buffer: the measured allocations are the reader's own.
    read_header_from(
        BufReader::with_capacity(256, Sparse { head, len, pos: 0 }),
        len,
    )
}

// ---- a test-side walk over GGUF bytes -------------------------------------

/// A metadata value as laid out in the file.
#[derive(Clone)]
enum Value {
    /// A fixed-size value: its type id and bytes.
    Fixed(Vec<u8>),
    Str(Vec<u8>),
    Array(u32, Vec<Value>),
}

/// A GGUF header, walked: the key/values, the tensor infos as raw bytes, and
/// where every u64 count or length field is (byte offsets).
struct Doc {
    version: u32,
    kvs: Vec<(Vec<u8>, u32, Value)>,
    tensors: Vec<Vec<u8>>,
    lengths: Vec<usize>,
}

struct Walker<'a> {
    b: &'a [u8],
    pos: usize,
    lengths: Vec<usize>,
}

impl Walker<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn len(&mut self) -> usize {
        self.lengths.push(self.pos);
        u64::from_le_bytes(self.take(8).try_into().unwrap()) as usize
    }
    fn str(&mut self) -> Vec<u8> {
        let n = self.len();
        self.take(n).to_vec()
    }
    fn value(&mut self, ty: u32) -> Value {
        match ty {
            8 => Value::Str(self.str()),
            9 => {
                let elem = self.u32();
                let n = self.len();
                Value::Array(elem, (0..n).map(|_| self.value(elem)).collect())
            }
            _ => {
                let size = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8][ty as usize];
                Value::Fixed(self.take(size).to_vec())
            }
        }
    }
}

/// Walks a well-formed GGUF header (panics on a malformed one: test input only).
fn walk(b: &[u8]) -> Doc {
    let mut w = Walker {
        b,
        pos: 4,
        lengths: Vec::new(),
    };
    let version = w.u32();
    let n_tensors = w.len();
    let n_kv = w.len();
    let mut kvs = Vec::new();
    for _ in 0..n_kv {
        let key = w.str();
        let ty = w.u32();
        kvs.push((key, ty, w.value(ty)));
    }
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let start = w.pos;
        w.len();
        let name_len = u64::from_le_bytes(w.b[start..start + 8].try_into().unwrap()) as usize;
        w.take(name_len);
        let n_dims = w.u32() as usize;
        for _ in 0..n_dims {
            w.len();
        }
        w.take(4 + 8);
        tensors.push(w.b[start..w.pos].to_vec());
    }
    Doc {
        version,
        kvs,
        tensors,
        lengths: w.lengths,
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Fixed(bytes) => out.extend(bytes),
        Value::Str(s) => {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s);
        }
        Value::Array(elem, items) => {
            out.extend(elem.to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            items.iter().for_each(|i| put_value(out, i));
        }
    }
}

/// The header's bytes, padded to 32 (the default alignment).
fn encode(d: &Doc) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(d.version.to_le_bytes());
    out.extend((d.tensors.len() as u64).to_le_bytes());
    out.extend((d.kvs.len() as u64).to_le_bytes());
    for (k, ty, v) in &d.kvs {
        put_value(&mut out, &Value::Str(k.clone()));
        out.extend(ty.to_le_bytes());
        put_value(&mut out, v);
    }
    d.tensors.iter().for_each(|t| out.extend(t));
    out.resize(out.len().div_ceil(32) * 32, 0);
    out
}

/// Cuts strings to 200 bytes, arrays to 72 items (past the reader's 64 kept,
/// so that its skipping path is fuzzed too) and the tensors to the first 8.
fn trim(v: &mut Value) {
    match v {
        Value::Fixed(_) => {}
        Value::Str(s) => s.truncate(200),
        Value::Array(_, items) => {
            items.truncate(72);
            items.iter_mut().for_each(trim);
        }
    }
}

// ---- the corpus -----------------------------------------------------------

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

const SEEDS: [(&str, &str); 2] = [
    (common::SMOL, "smollm2-135m-q4_1.header.gguf"),
    (common::GEMMA, "gemma3-270m-q4_k_m.header.gguf"),
];

/// Writes the cut-down headers of the demo models into `tests/fuzz-corpus/`.
#[test]
#[ignore = "regenerates the committed corpus from the demo models"]
fn regenerate_corpus() {
    for (model, seed) in SEEDS {
        let mut head = Vec::new();
        std::fs::File::open(common::model(model))
            .unwrap()
            .take(32 << 20)
            .read_to_end(&mut head)
            .unwrap();
        let mut doc = walk(&head);
        doc.kvs.iter_mut().for_each(|(_, _, v)| trim(v));
        doc.tensors.truncate(8);
        std::fs::write(corpus_dir().join(seed), encode(&doc)).unwrap();
    }
}

/// A seed: its bytes, where its counts/lengths are, and the file size its
/// tensors need.
struct Seed {
    bytes: Vec<u8>,
    lengths: Vec<usize>,
    needs: u64,
}

fn seeds() -> Vec<Seed> {
    SEEDS
        .iter()
        .map(|(_, file)| {
            let bytes = std::fs::read(corpus_dir().join(file)).expect("fuzz corpus file");
            let lengths = walk(&bytes).lengths;
            let h = read_sparse(&bytes, 1 << 40).expect("the seed itself reads");
            assert!(h.tensors.len() == 8 && h.metadata.len() > 10, "seed {file}");
            Seed {
                bytes,
                lengths,
                needs: h.expected_file_size,
            }
        })
        .collect()
}

/// A crafted ~400 MB file claiming millions of tensors or keys once made the
/// reader reserve ~1.5 GB up front: the counts are bounded by the bytes left.
#[test]
fn crafted_counts_do_not_reserve_what_the_file_cannot_hold() {
    const FILE: u64 = 400 << 20;
    const LIMIT: usize = 16 << 20;
    let header = |n_tensors: u64, n_kv: u64| {
        let mut h = b"GGUF".to_vec();
        h.extend(3u32.to_le_bytes());
        h.extend(n_tensors.to_le_bytes());
        h.extend(n_kv.to_le_bytes());
        h
    };
    // 16M tensors claimed (each at least 24 bytes: the 400 MB back the claim);
    // the zeros then read as tensors with empty names, the second a duplicate.
    let (err, largest, _) = measured(|| read_sparse(&header(1 << 24, 0), FILE).unwrap_err());
    assert!(err.to_string().contains("duplicate tensor name"), "{err}");
    assert!(largest < LIMIT, "one allocation of {largest} bytes");
    // 16M metadata keys claimed; the first key read is empty.
    let (err, largest, _) = measured(|| read_sparse(&header(0, 1 << 24), FILE).unwrap_err());
    assert!(err.to_string().contains("empty metadata key"), "{err}");
    assert!(largest < LIMIT, "one allocation of {largest} bytes");
}

#[test]
fn corpus_is_small_and_reads() {
    for s in seeds() {
        assert!(s.bytes.len() < 16 << 10, "{} bytes", s.bytes.len());
        // As bytes alone, the tensor data is missing: a clear error, no panic.
        let err = read_sparse(&s.bytes, s.bytes.len() as u64).unwrap_err();
        assert!(matches!(err, GgufError::TruncatedData { .. }), "{err}");
    }
}

// ---- mutations ------------------------------------------------------------

#[derive(Debug, Clone)]
enum Grow {
    To(u64),
    Add(u64),
    Pow2(u32),
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    /// A count or length field (by its index among them) made larger.
    Inflate(Index, Grow),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let grow = prop_oneof![
        any::<u64>().prop_map(Grow::To),
        (1u64..4096).prop_map(Grow::Add),
        (0u32..64).prop_map(Grow::Pow2),
    ];
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        3 => (any::<Index>(), grow).prop_map(|(i, g)| Mutation::Inflate(i, g)),
    ]
}

fn apply(seed: &Seed, muts: &[Mutation]) -> Vec<u8> {
    let mut b = seed.bytes.clone();
    for m in muts {
        if b.is_empty() {
            break;
        }
        let n = b.len();
        match m {
            Mutation::Flip(i, bit) => b[i.index(n)] ^= 1 << bit,
            Mutation::Set(i, v) => b[i.index(n)] = *v,
            Mutation::Truncate(i) => b.truncate(i.index(n)),
            Mutation::Inflate(i, grow) => {
                let at = seed.lengths[i.index(seed.lengths.len())];
                let Some(field) = b.get_mut(at..at + 8) else {
                    continue;
                };
                let old = u64::from_le_bytes(field.try_into().unwrap());
                let new = match grow {
                    Grow::To(v) => *v,
                    Grow::Add(d) => old.saturating_add(*d),
                    Grow::Pow2(k) => 1u64 << k,
                };
                field.copy_from_slice(&new.to_le_bytes());
            }
        }
    }
    b
}

/// Allocation allowed for a read of a file of `len` bytes: in proportion to
/// the file. The strings and arrays read are at most the bytes left; the
/// records built from them are larger in memory than on disk (a tensor info
/// of 24 bytes on disk is ~90 in memory, a kept array item of 1 byte is a
/// 32-byte value), so the bound is a multiple of the length, never of a count
/// the file states.
fn allowed(len: u64) -> (u64, u64) {
    (8 * len + 4096, 64 * len + (64 << 10))
}

fn check(bytes: &[u8], len: u64) -> Result<(), TestCaseError> {
    let (result, largest, peak) = measured(|| read_sparse(bytes, len));
    let (max_single, max_peak) = allowed(len);
    prop_assert!(
        largest as u64 <= max_single && peak as u64 <= max_peak,
        "a file of {len} bytes made one allocation of {largest} bytes and a peak of {peak} \
         ({result:?})"
    );
    if let Ok(h) = result {
        prop_assert!(h.expected_file_size <= len);
        prop_assert!(h.data_offset <= len);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_headers_never_panic_nor_overallocate(
        which in 0usize..SEEDS.len(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        thread_local!(static SEEDS_READ: Vec<Seed> = seeds());
        SEEDS_READ.with(|seeds| {
            let seed = &seeds[which];
            let bytes = apply(seed, &muts);
            check(&bytes, bytes.len() as u64)?;
            check(&bytes, seed.needs.max(bytes.len() as u64))
        })?;
    }
}
