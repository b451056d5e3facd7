//! Writing GGUF files for tests: a copy of a real model with some metadata
//! changed (the tensor data copied as is, re-aligned after the new header), or
//! a small header-only file from scratch.
//!
//! Layout (GGUF v2/v3, little-endian): magic, version u32, tensor count u64,
//! key count u64; the key/value pairs (key: u64 length + bytes; type u32;
//! value); the tensor infos (name, n_dims u32, dims u64 each, type u32,
//! offset u64 relative to the data section); padding to `general.alignment`
//! (32 by default); the tensor data.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// A metadata value to write.
#[derive(Debug, Clone)]
pub enum Meta {
    Str(String),
    U32(u32),
    F32(f32),
}

/// Shorthand for a string value.
pub fn str(s: &str) -> Meta {
    Meta::Str(s.to_string())
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s);
}

/// One key/value entry, encoded.
pub fn entry(key: &str, value: &Meta) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, key.as_bytes());
    match value {
        Meta::Str(s) => {
            out.extend(8u32.to_le_bytes());
            put_str(&mut out, s.as_bytes());
        }
        Meta::U32(v) => {
            out.extend(4u32.to_le_bytes());
            out.extend(v.to_le_bytes());
        }
        Meta::F32(v) => {
            out.extend(6u32.to_le_bytes());
            out.extend(v.to_le_bytes());
        }
    }
    out
}

/// A header-only GGUF v3 file (no tensors) holding `kvs`, padded to the
/// default alignment (tokenscope's reader expects the data section aligned).
pub fn header_only(kvs: &[(&str, Meta)]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend((kvs.len() as u64).to_le_bytes());
    for (k, v) in kvs {
        out.extend(entry(k, v));
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    out
}

struct Reader<R> {
    r: R,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, n: usize, copy: &mut Vec<u8>) -> io::Result<()> {
        let start = copy.len();
        copy.resize(start + n, 0);
        self.r.read_exact(&mut copy[start..])
    }

    fn u32(&mut self, copy: &mut Vec<u8>) -> io::Result<u32> {
        self.bytes(4, copy)?;
        Ok(u32::from_le_bytes(
            copy[copy.len() - 4..].try_into().unwrap(),
        ))
    }

    fn u64(&mut self, copy: &mut Vec<u8>) -> io::Result<u64> {
        self.bytes(8, copy)?;
        Ok(u64::from_le_bytes(
            copy[copy.len() - 8..].try_into().unwrap(),
        ))
    }

    fn string(&mut self, copy: &mut Vec<u8>) -> io::Result<Vec<u8>> {
        let n = self.u64(copy)? as usize;
        self.bytes(n, copy)?;
        Ok(copy[copy.len() - n..].to_vec())
    }

    /// Reads (and copies) one value of type `ty`.
    fn value(&mut self, ty: u32, copy: &mut Vec<u8>) -> io::Result<Option<u64>> {
        let fixed = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => {
                self.string(copy)?;
                return Ok(None);
            }
            9 => {
                let elem = self.u32(copy)?;
                let n = self.u64(copy)?;
                for _ in 0..n {
                    self.value(elem, copy)?;
                }
                return Ok(None);
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown GGUF value type {other}"),
                ));
            }
        };
        self.bytes(fixed, copy)?;
        let raw = &copy[copy.len() - fixed..];
        let mut eight = [0u8; 8];
        eight[..fixed].copy_from_slice(raw);
        Ok(Some(u64::from_le_bytes(eight)))
    }
}

/// Copies the GGUF file `src` to `dst` with the metadata `set` (replaced in
/// place when the key exists, else appended) and the keys in `remove` left
/// out; tensor infos and data are copied unchanged, the data section aligned
/// again after the new header.
pub fn copy_with_metadata(
    src: &Path,
    dst: &Path,
    set: &[(&str, Meta)],
    remove: &[&str],
) -> io::Result<()> {
    let mut r = Reader {
        r: BufReader::new(File::open(src)?),
    };
    let mut head = Vec::new();
    r.bytes(8, &mut head)?;
    assert_eq!(&head[..4], b"GGUF", "{} is not a GGUF file", src.display());
    let n_tensors = r.u64(&mut head)?;
    let n_kv = r.u64(&mut head)?;

    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut alignment = 32u64;
    for _ in 0..n_kv {
        let mut bytes = Vec::new();
        let key = r.string(&mut bytes)?;
        let ty = r.u32(&mut bytes)?;
        let value = r.value(ty, &mut bytes)?;
        if key == b"general.alignment" {
            alignment = value.unwrap_or(32);
        }
        entries.push((key, bytes));
    }
    let mut tensor_infos = Vec::new();
    for _ in 0..n_tensors {
        r.string(&mut tensor_infos)?;
        let n_dims = r.u32(&mut tensor_infos)?;
        r.bytes(8 * n_dims as usize, &mut tensor_infos)?;
        r.bytes(4 + 8, &mut tensor_infos)?;
    }
    let header_len =
        24 + entries.iter().map(|(_, b)| b.len() as u64).sum::<u64>() + tensor_infos.len() as u64;
    let data_start = header_len.div_ceil(alignment) * alignment;

    entries.retain(|(k, _)| !remove.iter().any(|r| r.as_bytes() == k.as_slice()));
    for (key, value) in set {
        let bytes = entry(key, value);
        match entries
            .iter_mut()
            .find(|(k, _)| k.as_slice() == key.as_bytes())
        {
            Some(e) => e.1 = bytes,
            None => entries.push((key.as_bytes().to_vec(), bytes)),
        }
    }

    let mut out = Vec::new();
    out.extend(&head[..8]);
    out.extend(n_tensors.to_le_bytes());
    out.extend((entries.len() as u64).to_le_bytes());
    for (_, bytes) in &entries {
        out.extend(bytes);
    }
    out.extend(&tensor_infos);
    let new_start = (out.len() as u64).div_ceil(alignment) * alignment;
    out.resize(new_start as usize, 0);

    let mut file = r.r.into_inner();
    file.seek(SeekFrom::Start(data_start))?;
    let mut w = io::BufWriter::new(File::create(dst)?);
    w.write_all(&out)?;
    io::copy(&mut file, &mut w)?;
    w.flush()
}

/// ChatML, as SmolLM2's template, but refusing a system prompt as Gemma's do.
pub const REFUSES_SYSTEM: &str = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
