//! The GGUF reader must not reserve memory on the word of a count in the file:
//! a crafted ~400 MB file claiming millions of tensors or keys made it reserve
//! ~1.5 GB up front. This binary has its own allocator that records the largest
//! single allocation, so it is kept apart from the other tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokenscope::gguf::{GgufError, read_header_from};

struct Recording;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Recording = Recording;

/// A file of `len` bytes: `head`, then zeros, without holding the zeros in memory.
struct Sparse {
    head: Vec<u8>,
    len: u64,
    pos: u64,
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = self.pos as usize + i;
            *b = self.head.get(at).copied().unwrap_or(0);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut h = b"GGUF".to_vec();
    h.extend(3u32.to_le_bytes());
    h.extend(n_tensors.to_le_bytes());
    h.extend(n_kv.to_le_bytes());
    h
}

fn read(head: Vec<u8>, len: u64) -> Result<tokenscope::gguf::GgufHeader, GgufError> {
    read_header_from(BufReader::new(Sparse { head, len, pos: 0 }), len)
}

#[test]
fn crafted_counts_do_not_reserve_what_the_file_cannot_hold() {
    const FILE: u64 = 400 << 20;
    const LIMIT: usize = 16 << 20;

    // 16M tensors claimed (each at least 24 bytes: the 400 MB back the claim);
    // the zeros then read as tensors with empty names, the second a duplicate.
    LARGEST.store(0, Ordering::SeqCst);
    let err = read(header(1 << 24, 0), FILE).unwrap_err();
    assert!(err.to_string().contains("duplicate tensor name"), "{err}");
    let largest = LARGEST.load(Ordering::SeqCst);
    assert!(largest < LIMIT, "one allocation of {largest} bytes");

    // 16M metadata keys claimed; the first key read is empty.
    LARGEST.store(0, Ordering::SeqCst);
    let err = read(header(0, 1 << 24), FILE).unwrap_err();
    assert!(err.to_string().contains("empty metadata key"), "{err}");
    let largest = LARGEST.load(Ordering::SeqCst);
    assert!(largest < LIMIT, "one allocation of {largest} bytes");
}
