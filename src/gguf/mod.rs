//! A safe, pure-Rust reader for GGUF file headers: metadata and tensor infos.
//!
//! llama.cpp is never called here: a corrupt file makes its C++ asserts abort the
//! process, so files are checked with this reader before they reach it. The file is
//! read through a `BufReader` and never loaded whole; big arrays (the 262k strings of
//! `tokenizer.ggml.tokens`) are skipped, keeping only their type and length.
//!
//! What llama.cpp's own GGUF reader refuses is refused here too, with the reason
//! ([`GgufError::Invalid`]): empty or duplicate metadata keys, arrays of arrays, a
//! `general.alignment` that is not u32, tensor names of 64 bytes or more, duplicate
//! tensor names, tensors not laid out one after the other. Counts read from the
//! file never reserve more memory than the rest of the file could back.

use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

mod types;

pub(crate) use types::{GgmlType, GgufValue, ValueType};

use thiserror::Error;

/// Arrays up to this length keep their values; longer ones only type and length.
pub(crate) const MAX_KEPT_ARRAY_LEN: u64 = 64;
/// Longest string value accepted (anything longer is corruption).
const MAX_STRING_LEN: u64 = 64 << 20;
/// Longest key accepted.
const MAX_KEY_LEN: u64 = 64 << 10;
/// GGML_MAX_DIMS.
const MAX_DIMS: u32 = 4;
const MAX_NESTING: u32 = 8;
/// Most tensors / metadata keys accepted (real models have a few thousand).
const MAX_TENSORS: u64 = 1 << 24;
/// Most items reserved ahead from a count the file states: a crafted count
/// must not make the reader reserve memory the file's bytes do not back.
const MAX_RESERVE: u64 = 4096;
/// GGML_MAX_NAME: llama.cpp refuses tensor names of this many bytes or more.
const MAX_TENSOR_NAME: usize = 64;
/// Largest header accepted: 64 GiB.
const MAX_HEADER_BYTES: u64 = 1 << 36;
/// Largest tensor data accepted: 1 PiB.
const MAX_DATA_BYTES: u64 = 1 << 50;
pub(crate) const DEFAULT_ALIGNMENT: u64 = 32;

#[derive(Debug, Error)]
pub enum GgufError {
    Io(#[from] io::Error),
    NotGguf {
        found: String,
    },
    UnsupportedVersion {
        version: u32,
        hint: String,
    },
    TruncatedHeader {
        file_size: u64,
        at: u64,
    },
    TruncatedData {
        file_size: u64,
        expected: u64,
    },
    Corrupt {
        at: u64,
        what: String,
    },
    /// Well-formed bytes that llama.cpp's GGUF reader refuses (an empty or
    /// duplicate key, a duplicate tensor name, …): caught here, with a reason,
    /// instead of llama.cpp's bare "null result".
    Invalid {
        at: u64,
        what: String,
    },
    /// A named pipe, a device, a socket: reading one could block forever
    /// (a pipe with no writer) or never end (`/dev/zero`).
    NotRegular {
        kind: String,
    },
}
impl std::fmt::Display for GgufError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            GgufError::Io(v) => {
                crate::i18n::tr_args("gguf-io", "cannot read the file: { $v }", &[("v", &v)])
            }
            GgufError::NotGguf { found } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "gguf-not-gguf",
                    "not a GGUF file: it starts with { $found }, a GGUF file starts with \"GGUF\"",
                    &[("found", &found)],
                ),
                crate::i18n::tr(
                    "gguf-not-gguf-2",
                    "(only GGUF models work; convert other formats with llama.cpp's convert_hf_to_gguf.py)"
                )
            ),
            GgufError::UnsupportedVersion { version, hint } => format!(
                "{}\n  {}",
                crate::i18n::tr_args(
                    "gguf-unsupported-version",
                    "unsupported GGUF version { $version }: only versions 2 and 3 are read{ $hint }",
                    &[("version", &version), ("hint", &hint)],
                ),
                crate::i18n::tr(
                    "gguf-unsupported-version-2",
                    "re-download the model or convert it again with a current llama.cpp"
                )
            ),
            GgufError::TruncatedHeader { file_size, at } => crate::i18n::tr_args(
                "gguf-truncated-header",
                "the file ends inside the GGUF header (it is { $file_size } bytes, the header needs more at byte { $at }): the file is incomplete: if it is still being written (a download or a copy), wait for it to finish, else re-download it",
                &[("file_size", &file_size), ("at", &at)],
            ),
            GgufError::TruncatedData {
                file_size,
                expected,
            } => crate::i18n::tr_args(
                "gguf-truncated-data",
                "the file is { $file_size } bytes, but its header says the tensor data needs at least { $expected } bytes: the file is incomplete: if it is still being written (a download or a copy), wait for it to finish, else re-download it",
                &[("file_size", &file_size), ("expected", &expected)],
            ),
            GgufError::Corrupt { at, what } => crate::i18n::tr_args(
                "gguf-corrupt",
                "corrupt GGUF header at byte { $at }: { $what }; the file is damaged, re-download it",
                &[("at", &at), ("what", &what)],
            ),
            GgufError::Invalid { at, what } => crate::i18n::tr_args(
                "gguf-invalid",
                "invalid GGUF header at byte { $at }: { $what }; llama.cpp refuses such a file: convert the model again with a current llama.cpp, or get another copy",
                &[("at", &at), ("what", &what)],
            ),
            GgufError::NotRegular { kind } => crate::i18n::tr_args(
                "gguf-not-regular",
                "not a regular file but { $kind }: a model is a .gguf file, name one",
                &[("kind", &kind)],
            ),
        };
        f.write_str(&text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset from the start of the data section.
    pub offset: u64,
    pub n_elements: u64,
    /// `None` for a tensor type this reader does not know.
    pub n_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    /// All key/value pairs, in file order.
    pub metadata: Vec<(String, GgufValue)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Where the tensor data starts.
    pub data_offset: u64,
    /// The size the file must have at least: data start + end of the last tensor
    /// (tensors of unknown types are left out).
    pub expected_file_size: u64,
    pub file_size: u64,
}

impl GgufHeader {
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(GgufValue::as_str)
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(GgufValue::as_u64)
    }

    /// Total number of parameters: the sum of the tensors' element counts.
    pub fn n_params(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements).sum()
    }

    /// The ggml type holding the most elements.
    pub(crate) fn dominant_type(&self) -> Option<GgmlType> {
        let mut by_type = std::collections::BTreeMap::<GgmlType, u64>::new();
        for t in &self.tensors {
            *by_type.entry(t.ggml_type).or_default() += t.n_elements;
        }
        by_type
            .into_iter()
            .max_by_key(|&(ty, n)| (n, std::cmp::Reverse(ty)))
            .map(|(ty, _)| ty)
    }
}

/// Reads and checks the header of the GGUF file at `path`, including that the file
/// is long enough for the tensor data the header describes.
///
/// # Errors
/// [`GgufError::NotRegular`] for a pipe, device or socket (checked on the opened
/// file, which is opened without blocking, so a pipe with no writer cannot hang
/// the caller); [`GgufError::Io`] when it cannot be opened or read; the other
/// variants for what is wrong with its contents.
pub fn read_header(path: &Path) -> Result<GgufHeader, GgufError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        use crate::i18n::tr;
        let kind = if ft.is_dir() {
            tr("gguf-kind-directory", "a directory")
        } else if ft.is_fifo() {
            tr("gguf-kind-pipe", "a named pipe")
        } else if ft.is_char_device() || ft.is_block_device() {
            tr("gguf-kind-device", "a device")
        } else if ft.is_socket() {
            tr("gguf-kind-socket", "a socket")
        } else {
            tr("gguf-kind-special", "a special file")
        };
        return Err(GgufError::NotRegular { kind });
    }
    read_header_from(BufReader::with_capacity(1 << 16, file), meta.len())
}

/// Like [`read_header`], for any seekable reader of `file_size` bytes positioned at 0.
pub fn read_header_from<R: Read + Seek>(
    reader: BufReader<R>,
    file_size: u64,
) -> Result<GgufHeader, GgufError> {
    let mut c = Cursor {
        r: reader,
        pos: 0,
        len: file_size,
    };

    let mut magic = [0u8; 4];
    let n = c.read_up_to(&mut magic)?;
    if n > 0 && n < 4 && b"GGUF".starts_with(&magic[..n]) {
        // The start of a GGUF file: one being written, or cut short.
        return Err(c.truncated());
    }
    if n < 4 || &magic != b"GGUF" {
        return Err(GgufError::NotGguf {
            found: describe_bytes(&magic[..n]),
        });
    }
    let version = c.u32()?;
    if version != 2 && version != 3 {
        let hint = if matches!(version.swap_bytes(), 2 | 3) {
            crate::i18n::tr(
                "gguf-big-endian",
                "(this file is big-endian; only little-endian files are supported)",
            )
        } else if version == 1 {
            crate::i18n::tr("gguf-version-1", "(version 1 is an early 2023 format)")
        } else {
            String::new()
        };
        // A space before a hint, none without one.
        let hint = if hint.is_empty() {
            hint
        } else {
            format!(" {hint}")
        };
        return Err(GgufError::UnsupportedVersion { version, hint });
    }
    let n_tensors = c.u64()?;
    c.check_count(n_tensors, 24, MAX_TENSORS, "tensor count")?;
    let n_kv = c.u64()?;
    c.check_count(n_kv, 13, MAX_TENSORS, "metadata key count")?;

    let mut metadata = Vec::with_capacity(reserve(n_kv, 13, c.remaining()));
    let mut seen_keys = std::collections::HashSet::new();
    for i in 0..n_kv {
        let at = c.pos;
        let key = c.string(MAX_KEY_LEN, "key")?;
        // llama.cpp's gguf.cpp refuses both (gguf_init_from_file_impl).
        if key.is_empty() {
            return Err(GgufError::Invalid {
                at,
                what: format!("metadata key {i} is empty (empty metadata key)"),
            });
        }
        if !seen_keys.insert(key.clone()) {
            return Err(GgufError::Invalid {
                at,
                what: format!(
                    "metadata key {i} \"{}\" is a duplicate (duplicate metadata key)",
                    crate::text::escape_inline(&key)
                ),
            });
        }
        let ty = c.value_type()?;
        let value = c.value(ty, 0)?;
        if let GgufValue::Array {
            elem: ValueType::Array,
            ..
        } = value
        {
            return Err(GgufError::Invalid {
                at,
                what: format!(
                    "metadata key {i} \"{}\" is an array of arrays, which llama.cpp does not read",
                    crate::text::escape_inline(&key)
                ),
            });
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) if v.value_type() != ValueType::U32 => {
            return Err(GgufError::Invalid {
                at: c.pos,
                what: format!(
                    "general.alignment is of type {}, llama.cpp requires u32",
                    v.value_type().name()
                ),
            });
        }
        Some((_, v)) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 30 => a,
            _ => {
                return Err(GgufError::Corrupt {
                    at: c.pos,
                    what: format!("general.alignment = {v} is not a power of two"),
                });
            }
        },
    };

    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(reserve(n_tensors, 24, c.remaining()));
    let mut seen_names = std::collections::HashSet::new();
    // Where llama.cpp expects the next tensor: right after the previous one,
    // padded to the alignment (unknown once a tensor of unknown type passed).
    let mut next_offset = Some(0u64);
    for i in 0..n_tensors {
        let at = c.pos;
        let name = c.string(MAX_KEY_LEN, "tensor name")?;
        if name.len() >= MAX_TENSOR_NAME {
            return Err(GgufError::Invalid {
                at,
                what: format!(
                    "tensor {i} has a name of {} bytes (llama.cpp allows at most {})",
                    name.len(),
                    MAX_TENSOR_NAME - 1
                ),
            });
        }
        if !seen_names.insert(name.clone()) {
            return Err(GgufError::Invalid {
                at,
                what: format!(
                    "tensor {i} \"{}\" is a duplicate (duplicate tensor name)",
                    crate::text::escape_inline(&name)
                ),
            });
        }
        let n_dims = c.u32()?;
        if n_dims > MAX_DIMS {
            return Err(c.corrupt(format!(
                "tensor {name:?} has {n_dims} dimensions (at most {MAX_DIMS})"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64()?);
        }
        let ggml_type = GgmlType(c.u32()?);
        let offset = c.u64()?;
        let corrupt = |what: String| GgufError::Corrupt { at, what };
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| corrupt(format!("tensor {name:?} has absurd dimensions {dims:?}")))?;
        let n_bytes = match ggml_type.block() {
            None => None,
            Some((block, size)) => {
                if dims.first().copied().unwrap_or(1) % block != 0 {
                    return Err(corrupt(format!(
                        "tensor {name:?} of type {ggml_type} has a first dimension {} that is not a multiple of {block}",
                        dims.first().copied().unwrap_or(1)
                    )));
                }
                let bytes = (n_elements / block)
                    .checked_mul(size)
                    .filter(|b| b.checked_add(offset).is_some_and(|end| end <= MAX_DATA_BYTES))
                    .ok_or_else(|| {
                        corrupt(format!(
                            "tensor {name:?} ({dims:?}, {ggml_type}, offset {offset}) would need an absurd \
                             amount of data"
                        ))
                    })?;
                Some(bytes)
            }
        };
        if let Some(expected) = next_offset
            && offset != expected
        {
            return Err(GgufError::Invalid {
                at,
                what: format!(
                    "tensor {i} \"{}\" starts at data offset {offset}, llama.cpp expects {expected} \
                     (tensors follow each other, each padded to {alignment} bytes)",
                    crate::text::escape_inline(&name)
                ),
            });
        }
        next_offset = n_bytes.map(|b| offset + b.div_ceil(alignment) * alignment);
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            n_elements,
            n_bytes,
        });
    }

    let data_offset = c.pos.div_ceil(alignment) * alignment;
    let data_size = tensors
        .iter()
        .filter_map(|t| t.n_bytes.map(|b| t.offset + b))
        .max()
        .unwrap_or(0);
    let expected_file_size = data_offset.saturating_add(data_size);
    if file_size < expected_file_size {
        return Err(GgufError::TruncatedData {
            file_size,
            expected: expected_file_size,
        });
    }
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
        expected_file_size,
        file_size,
    })
}

/// Items to reserve for `count` items of at least `min_size` bytes each when
/// `remaining` bytes of the file are left: never more than those bytes could
/// hold, nor more than [`MAX_RESERVE`] (the vector grows past it as items are read).
fn reserve(count: u64, min_size: u64, remaining: u64) -> usize {
    let backed = remaining / min_size.max(1);
    usize::try_from(count.min(backed).min(MAX_RESERVE)).unwrap_or(0)
}

/// `b"PK\x03\x04" (hex 50 4b 03 04)`, or a note for an empty file.
fn describe_bytes(b: &[u8]) -> String {
    if b.is_empty() {
        return "nothing (the file is empty)".to_string();
    }
    let text: String = b
        .iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    let hex: Vec<String> = b.iter().map(|c| format!("{c:02x}")).collect();
    format!("b\"{text}\" (hex {})", hex.join(" "))
}

struct Cursor<R> {
    r: BufReader<R>,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Cursor<R> {
    fn truncated(&self) -> GgufError {
        GgufError::TruncatedHeader {
            file_size: self.len,
            at: self.pos,
        }
    }

    fn corrupt(&self, what: String) -> GgufError {
        GgufError::Corrupt { at: self.pos, what }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Reads as many bytes as there are, up to `buf.len()`.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, GgufError> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        if (buf.len() as u64) > self.remaining() {
            return Err(self.truncated());
        }
        match self.r.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(self.truncated()),
            Err(e) => Err(e.into()),
        }
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(self.truncated());
        }
        // n <= file size, so it fits an i64 for any real file.
        let step = i64::try_from(n).map_err(|_| self.truncated())?;
        self.r.seek_relative(step)?;
        self.pos += n;
        Ok(())
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.read_exact(&mut b)?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    /// `count` items of at least `min_size` bytes each: absurd counts are corruption,
    /// counts that do not fit in the rest of the file mean it was cut short.
    fn check_count(
        &self,
        count: u64,
        min_size: u64,
        max_count: u64,
        what: &str,
    ) -> Result<(), GgufError> {
        match count.checked_mul(min_size) {
            Some(need) if count <= max_count && need <= MAX_HEADER_BYTES => {
                if need <= self.remaining() {
                    Ok(())
                } else {
                    Err(self.truncated())
                }
            }
            _ => Err(self.corrupt(format!("{what} {count} is absurd"))),
        }
    }

    fn string_len(&mut self, max: u64, what: &str) -> Result<u64, GgufError> {
        let len = self.u64()?;
        if len > self.len || len > max {
            return Err(self.corrupt(format!(
                "{what} length {len} is absurd (the file is {} bytes)",
                self.len
            )));
        }
        if len > self.remaining() {
            return Err(self.truncated());
        }
        Ok(len)
    }

    fn string(&mut self, max: u64, what: &str) -> Result<String, GgufError> {
        let len = self.string_len(max, what)?;
        let mut buf = vec![0u8; len as usize];
        self.read_exact(&mut buf)?;
        Ok(String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn value_type(&mut self) -> Result<ValueType, GgufError> {
        let id = self.u32()?;
        ValueType::from_id(id)
            .ok_or_else(|| self.corrupt(format!("unknown metadata value type {id}")))
    }

    fn value(&mut self, ty: ValueType, depth: u32) -> Result<GgufValue, GgufError> {
        use GgufValue as V;
        Ok(match ty {
            ValueType::U8 => V::U8(u8::from_le_bytes(self.bytes()?)),
            ValueType::I8 => V::I8(i8::from_le_bytes(self.bytes()?)),
            ValueType::U16 => V::U16(u16::from_le_bytes(self.bytes()?)),
            ValueType::I16 => V::I16(i16::from_le_bytes(self.bytes()?)),
            ValueType::U32 => V::U32(self.u32()?),
            ValueType::I32 => V::I32(i32::from_le_bytes(self.bytes()?)),
            ValueType::F32 => V::F32(f32::from_le_bytes(self.bytes()?)),
            ValueType::Bool => {
                let [b] = self.bytes()?;
                if b > 1 {
                    return Err(self.corrupt(format!("bool value {b} is neither 0 nor 1")));
                }
                V::Bool(b == 1)
            }
            ValueType::String => V::String(self.string(MAX_STRING_LEN, "string")?),
            ValueType::U64 => V::U64(self.u64()?),
            ValueType::I64 => V::I64(i64::from_le_bytes(self.bytes()?)),
            ValueType::F64 => V::F64(f64::from_le_bytes(self.bytes()?)),
            ValueType::Array => {
                if depth >= MAX_NESTING {
                    return Err(self.corrupt(format!("arrays nested deeper than {MAX_NESTING}")));
                }
                let elem = self.value_type()?;
                let len = self.u64()?;
                self.check_count(len, elem.min_size(), u64::MAX, "array length")?;
                if len <= MAX_KEPT_ARRAY_LEN {
                    let mut values =
                        Vec::with_capacity(reserve(len, elem.min_size(), self.remaining()));
                    for _ in 0..len {
                        values.push(self.value(elem, depth + 1)?);
                    }
                    V::Array {
                        elem,
                        len,
                        values: Some(values),
                    }
                } else {
                    self.skip_values(elem, len, depth + 1)?;
                    V::Array {
                        elem,
                        len,
                        values: None,
                    }
                }
            }
        })
    }

    fn skip_values(&mut self, elem: ValueType, len: u64, depth: u32) -> Result<(), GgufError> {
        if elem.is_fixed() {
            return self.skip(len * elem.min_size()); // checked by check_count
        }
        for _ in 0..len {
            match elem {
                ValueType::String => {
                    let n = self.string_len(MAX_STRING_LEN, "string")?;
                    self.skip(n)?;
                }
                _ => {
                    if depth >= MAX_NESTING {
                        return Err(
                            self.corrupt(format!("arrays nested deeper than {MAX_NESTING}"))
                        );
                    }
                    let inner = self.value_type()?;
                    let n = self.u64()?;
                    self.check_count(n, inner.min_size(), u64::MAX, "array length")?;
                    self.skip_values(inner, n, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

/// Builds small GGUF files for tests.
#[cfg(test)]
pub(crate) mod testutil {
    pub enum Val {
        U32(u32),
        I32(i32),
        F32(f32),
        Bool(bool),
        Str(String),
        U64(u64),
        U8(u8),
        /// Array of strings.
        Strs(Vec<String>),
        /// Array of i32.
        I32s(Vec<i32>),
        /// Array of arrays of u8.
        Nested(Vec<Vec<u8>>),
    }

    pub fn s(x: &str) -> Val {
        Val::Str(x.to_string())
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    fn put_val(out: &mut Vec<u8>, v: &Val) {
        let ty = |out: &mut Vec<u8>, t: u32| out.extend(t.to_le_bytes());
        match v {
            Val::U8(x) => {
                ty(out, 0);
                out.push(*x)
            }
            Val::U32(x) => {
                ty(out, 4);
                out.extend(x.to_le_bytes())
            }
            Val::I32(x) => {
                ty(out, 5);
                out.extend(x.to_le_bytes())
            }
            Val::F32(x) => {
                ty(out, 6);
                out.extend(x.to_le_bytes())
            }
            Val::Bool(x) => {
                ty(out, 7);
                out.push(*x as u8)
            }
            Val::Str(x) => {
                ty(out, 8);
                put_str(out, x)
            }
            Val::U64(x) => {
                ty(out, 10);
                out.extend(x.to_le_bytes())
            }
            Val::Strs(xs) => {
                ty(out, 9);
                ty(out, 8);
                out.extend((xs.len() as u64).to_le_bytes());
                for x in xs {
                    put_str(out, x);
                }
            }
            Val::I32s(xs) => {
                ty(out, 9);
                ty(out, 5);
                out.extend((xs.len() as u64).to_le_bytes());
                for x in xs {
                    out.extend(x.to_le_bytes());
                }
            }
            Val::Nested(xss) => {
                ty(out, 9);
                ty(out, 9);
                out.extend((xss.len() as u64).to_le_bytes());
                for xs in xss {
                    ty(out, 0);
                    out.extend((xs.len() as u64).to_le_bytes());
                    out.extend(xs);
                }
            }
        }
    }

    /// A tensor: name, dims, ggml type id. Offsets are assigned in order, aligned.
    pub struct T<'a>(pub &'a str, pub &'a [u64], pub u32);

    /// A complete GGUF v3 file with zeroed tensor data.
    pub fn build(kvs: &[(&str, Val)], tensors: &[T], alignment: u64) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(b"GGUF");
        out.extend(3u32.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
        out.extend((kvs.len() as u64).to_le_bytes());
        for (k, v) in kvs {
            put_str(&mut out, k);
            put_val(&mut out, v);
        }
        let mut offset = 0u64;
        for T(name, dims, ty) in tensors {
            put_str(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in *dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend(offset.to_le_bytes());
            let (block, size) = super::GgmlType(*ty).block().unwrap();
            let n: u64 = dims.iter().product();
            offset += (n / block * size).div_ceil(alignment) * alignment;
        }
        let data_start = (out.len() as u64).div_ceil(alignment) * alignment;
        out.resize((data_start + offset) as usize, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    fn parse(bytes: &[u8]) -> Result<GgufHeader, GgufError> {
        read_header_from(
            BufReader::new(io::Cursor::new(bytes.to_vec())),
            bytes.len() as u64,
        )
    }

    fn sample() -> Vec<u8> {
        build(
            &[
                ("general.architecture", s("llama")),
                ("general.name", s("Tiny")),
                ("llama.block_count", Val::U32(2)),
                ("llama.rope.freq_base", Val::F32(10000.0)),
                ("general.file_type", Val::U32(3)),
                (
                    "tokenizer.ggml.tokens",
                    Val::Strs((0..100).map(|i| format!("t{i}")).collect()),
                ),
                ("tokenizer.ggml.token_type", Val::I32s(vec![1, 2, 3])),
                (
                    "tokenizer.chat_template",
                    s("{% for m in messages %}{{ m.content }}{% endfor %}"),
                ),
                ("tokenizer.ggml.add_bos_token", Val::Bool(true)),
                ("general.count", Val::U64(7)),
                ("general.small", Val::U8(9)),
                ("x.neg", Val::I32(-1)),
            ],
            &[
                T("token_embd.weight", &[64, 100], 3),
                T("blk.0.attn_norm.weight", &[64], 0),
                T("output.weight", &[256, 4], 12),
            ],
            32,
        )
    }

    #[test]
    fn parses_a_valid_file() {
        let bytes = sample();
        let h = parse(&bytes).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.metadata.len(), 12);
        assert_eq!(h.get_str("general.architecture"), Some("llama"));
        assert_eq!(h.get_u64("llama.block_count"), Some(2));
        assert_eq!(
            h.get("llama.rope.freq_base"),
            Some(&GgufValue::F32(10000.0))
        );
        let tokens = h.get("tokenizer.ggml.tokens").unwrap();
        assert_eq!(tokens.array_len(), Some(100));
        assert_eq!(tokens.to_string(), "[str; 100]");
        assert!(matches!(tokens, GgufValue::Array { values: None, .. }));
        assert_eq!(
            h.get("tokenizer.ggml.token_type"),
            Some(&GgufValue::Array {
                elem: ValueType::I32,
                len: 3,
                values: Some(vec![
                    GgufValue::I32(1),
                    GgufValue::I32(2),
                    GgufValue::I32(3)
                ])
            })
        );
        assert_eq!(h.get_u64("x.neg"), None);
        assert!(
            h.get_str("tokenizer.chat_template")
                .unwrap()
                .contains("messages")
        );
        assert_eq!(h.tensors.len(), 3);
        assert_eq!(h.tensors[0].n_bytes, Some(64 * 100 / 32 * 20));
        assert_eq!(h.tensors[2].ggml_type.name(), "Q4_K");
        assert_eq!(h.n_params(), 6400 + 64 + 1024);
        assert_eq!(h.dominant_type(), Some(GgmlType(3)));
        assert_eq!(h.data_offset % 32, 0);
        assert_eq!(h.expected_file_size, bytes.len() as u64);
    }

    #[test]
    fn custom_alignment_is_used() {
        let bytes = build(
            &[("general.alignment", Val::U32(64))],
            &[T("a", &[8], 0)],
            64,
        );
        let h = parse(&bytes).unwrap();
        assert_eq!(h.alignment, 64);
        assert_eq!(h.data_offset % 64, 0);
        assert_eq!(h.expected_file_size, h.data_offset + 32);
    }

    #[test]
    fn bad_magic_names_the_first_bytes() {
        let err = parse(b"PK\x03\x04rest of a zip").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, GgufError::NotGguf { .. }));
        assert!(
            msg.contains("PK\\x03\\x04") && msg.contains("50 4b 03 04"),
            "{msg}"
        );
        assert!(parse(b"").unwrap_err().to_string().contains("empty"));
        assert!(matches!(
            parse(b"GX").unwrap_err(),
            GgufError::NotGguf { .. }
        ));
        // The start of the magic: a GGUF file being written, or cut short.
        assert!(matches!(
            parse(b"GG").unwrap_err(),
            GgufError::TruncatedHeader { .. }
        ));
    }

    #[test]
    fn unsupported_versions() {
        let mut bytes = sample();
        bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(matches!(
            parse(&bytes).unwrap_err(),
            GgufError::UnsupportedVersion { version: 1, .. }
        ));
        bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
        assert!(
            parse(&bytes)
                .unwrap_err()
                .to_string()
                .contains("big-endian")
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample();
        let h = parse(&bytes).unwrap();
        for cut in 0..bytes.len() {
            let err = parse(&bytes[..cut]).expect_err("truncated file must not parse");
            match err {
                GgufError::NotGguf { .. } => assert_eq!(cut, 0),
                GgufError::TruncatedHeader { .. } => {
                    assert!(cut >= 1 && (cut as u64) < h.data_offset)
                }
                GgufError::TruncatedData { expected, .. } => {
                    assert!(cut as u64 >= h.data_offset - 31, "cut {cut}");
                    assert_eq!(expected, bytes.len() as u64);
                }
                other => panic!("cut at {cut}: unexpected {other}"),
            }
        }
    }

    #[test]
    fn truncated_data_says_sizes_and_re_download() {
        let bytes = sample();
        let err = parse(&bytes[..bytes.len() - 100]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{} bytes", bytes.len() - 100)),
            "{msg}"
        );
        assert!(
            msg.contains(&bytes.len().to_string()) && msg.contains("re-download"),
            "{msg}"
        );
    }

    #[test]
    fn absurd_counts_and_lengths_are_corruption() {
        let base = build(&[("general.name", s("x"))], &[], 32);
        // tensor count
        let mut b = base.clone();
        b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse(&b).unwrap_err(), GgufError::Corrupt { .. }));
        // kv count
        let mut b = base.clone();
        b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(parse(&b).unwrap_err(), GgufError::Corrupt { .. }));
        // key length
        let mut b = base.clone();
        b[24..32].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert!(matches!(parse(&b).unwrap_err(), GgufError::Corrupt { .. }));
        // value type
        let mut b = base.clone();
        let tpos = 24 + 8 + "general.name".len();
        b[tpos..tpos + 4].copy_from_slice(&77u32.to_le_bytes());
        assert!(
            parse(&b)
                .unwrap_err()
                .to_string()
                .contains("unknown metadata value type 77")
        );
        // array length
        let b = build(&[("a", Val::I32s(vec![1]))], &[], 32);
        let mut b2 = b.clone();
        let lpos = 24 + 8 + 1 + 4 + 4;
        b2[lpos..lpos + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(matches!(parse(&b2).unwrap_err(), GgufError::Corrupt { .. }));
    }

    #[test]
    fn tensor_checks() {
        // 5 dims
        let mut b = build(&[], &[T("a", &[32], 0)], 32);
        let dpos = 24 + 8 + 1;
        b[dpos..dpos + 4].copy_from_slice(&5u32.to_le_bytes());
        assert!(parse(&b).unwrap_err().to_string().contains("dimensions"));
        // row not a multiple of the block size
        let b = build(&[], &[T("a", &[64], 2)], 32);
        let mut b2 = b.clone();
        b2[dpos + 4..dpos + 12].copy_from_slice(&33u64.to_le_bytes());
        assert!(
            parse(&b2)
                .unwrap_err()
                .to_string()
                .contains("multiple of 32")
        );
        // huge dims
        let mut b3 = b.clone();
        b3[dpos + 4..dpos + 12].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(matches!(parse(&b3).unwrap_err(), GgufError::Corrupt { .. }));
        // unknown type: readable, left out of the size check
        let mut b4 = b.clone();
        b4[dpos + 12..dpos + 16].copy_from_slice(&200u32.to_le_bytes());
        let h = parse(&b4).unwrap();
        assert_eq!(h.tensors[0].ggml_type.name(), "type 200");
        assert_eq!(h.tensors[0].n_bytes, None);
    }

    #[test]
    fn type_table() {
        let t = |id| GgmlType(id).block().unwrap();
        assert_eq!(t(0), (1, 4));
        assert_eq!(t(2), (32, 18));
        assert_eq!(t(8), (32, 34));
        assert_eq!(t(12), (256, 144));
        assert_eq!(t(14), (256, 210));
        assert_eq!(t(30), (1, 2));
        assert_eq!(t(39), (32, 17));
        assert_eq!(GgmlType(30).name(), "BF16");
        assert!(!GgmlType(4).is_known());
        assert_eq!(GgmlType::from_name("q4_k"), Some(GgmlType(12)));
        assert_eq!(GgmlType::from_name("BF16"), Some(GgmlType(30)));
        assert_eq!(GgmlType::from_name("Q4_K_M"), None);
    }

    fn invalid(bytes: &[u8]) -> (u64, String) {
        match parse(bytes) {
            Err(e @ GgufError::Invalid { at, .. }) => (at, e.to_string()),
            other => panic!("expected an invalid-header error, got {other:?}"),
        }
    }

    #[test]
    fn empty_metadata_key_is_refused_with_its_index_and_offset() {
        let bytes = build(
            &[("general.name", s("x")), ("", Val::U32(1))],
            &[T("a", &[8], 0)],
            32,
        );
        let (at, msg) = invalid(&bytes);
        // header (24) + "general.name" entry (8 + 12 + 4 + 8 + 1)
        assert_eq!(at, 24 + 8 + 12 + 4 + 8 + 1);
        assert!(
            msg.contains("metadata key 1 is empty")
                && msg.contains("empty metadata key")
                && msg.contains(&format!("at byte {at}")),
            "{msg}"
        );
    }

    #[test]
    fn duplicate_keys_and_arrays_of_arrays_are_refused() {
        let bytes = build(
            &[
                ("general.name", s("x")),
                ("a", Val::U32(1)),
                ("general.name", s("y")),
            ],
            &[],
            32,
        );
        let msg = invalid(&bytes).1;
        assert!(
            msg.contains("metadata key 2 \"general.name\" is a duplicate"),
            "{msg}"
        );
        let bytes = build(
            &[("x.nested", Val::Nested(vec![vec![1, 2], vec![3]]))],
            &[],
            32,
        );
        assert!(invalid(&bytes).1.contains("array of arrays"));
        // an array of arrays longer than the kept length is refused as well
        let long: Vec<Vec<u8>> = (0..100).map(|i| vec![i]).collect();
        let bytes = build(&[("x.nested", Val::Nested(long))], &[], 32);
        assert!(invalid(&bytes).1.contains("array of arrays"));
    }

    #[test]
    fn alignment_must_be_u32_as_llama_cpp_requires() {
        let bytes = build(&[("general.alignment", Val::U64(32))], &[], 32);
        assert!(invalid(&bytes).1.contains("requires u32"));
    }

    #[test]
    fn tensor_names_and_offsets_are_checked_like_llama_cpp() {
        let long = "t".repeat(64);
        let bytes = build(&[], &[T("a", &[8], 0), T(&long, &[8], 0)], 32);
        let msg = invalid(&bytes).1;
        assert!(msg.contains("tensor 1 has a name of 64 bytes"), "{msg}");
        assert!(parse(&build(&[], &[T(&long[..63], &[8], 0)], 32)).is_ok());

        let bytes = build(
            &[],
            &[T("a", &[8], 0), T("b", &[8], 0), T("a", &[8], 0)],
            32,
        );
        let msg = invalid(&bytes).1;
        assert!(msg.contains("tensor 2 \"a\" is a duplicate"), "{msg}");

        // the second tensor claims to start where the first one does
        let mut bytes = build(&[], &[T("a", &[8], 0), T("b", &[8], 0)], 32);
        let second_offset = 24 + (8 + 1 + 4 + 8 + 4 + 8) + (8 + 1 + 4 + 8 + 4);
        assert_eq!(
            bytes[second_offset..second_offset + 8],
            32u64.to_le_bytes(),
            "the builder pads each tensor to the alignment"
        );
        bytes[second_offset..second_offset + 8].copy_from_slice(&0u64.to_le_bytes());
        let msg = invalid(&bytes).1;
        assert!(
            msg.contains("tensor 1 \"b\" starts at data offset 0, llama.cpp expects 32"),
            "{msg}"
        );
    }

    #[test]
    fn reservations_are_capped_by_the_bytes_left() {
        assert_eq!(reserve(10, 24, 100), 4);
        assert_eq!(reserve(3, 24, 1 << 20), 3);
        assert_eq!(reserve(MAX_TENSORS, 24, 400 << 20), MAX_RESERVE as usize);
        assert_eq!(reserve(u64::MAX, 0, u64::MAX), MAX_RESERVE as usize);
    }

    #[test]
    fn reads_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        std::fs::write(&p, sample()).unwrap();
        assert_eq!(read_header(&p).unwrap().tensors.len(), 3);
        assert!(matches!(
            read_header(&dir.path().join("nope")),
            Err(GgufError::Io(_))
        ));
    }
}
