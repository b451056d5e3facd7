//! Will a model fit? Before llama.cpp reads a file, its memory need is
//! estimated from the header (the weights, the KV cache of the context asked
//! for, the logits buffer) and compared with the memory available now, so
//! that a model too large is refused with the numbers instead of the system
//! swapping to a halt or the kernel killing the engine. The model in use stays
//! loaded while another loads, so the new one must fit beside it: the memory
//! it already holds is not counted as available.

use crate::catalog::size_human;
use crate::gguf::GgufHeader;

/// Positions whose logits are kept at once (the scoring chunk size).
const LOGIT_ROWS: u64 = 32;

/// What a model needs in memory, in bytes (an estimate: llama.cpp's compute
/// buffers come on top, a few percent for the models this app runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryNeed {
    /// The tensor data (llama.cpp maps the file; every page is read).
    pub weights: u64,
    /// K and V in f16 for `n_ctx` positions of every layer.
    pub kv_cache: u64,
    /// Logits: [`LOGIT_ROWS`] rows of the vocabulary in f32.
    pub logits: u64,
    /// The context the KV cache is estimated for (tokens).
    pub n_ctx: u32,
}

impl MemoryNeed {
    /// The sum of the parts, in bytes.
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.kv_cache)
            .saturating_add(self.logits)
    }
}

/// The memory a model with header `h` needs with a context of `n_ctx`
/// tokens (already capped at the trained size). Keys missing from the header
/// count as 0 (a recurrent model has no `attention.*` keys and no KV cache).
pub(crate) fn estimate(h: &GgufHeader, n_ctx: u32) -> MemoryNeed {
    let arch = h.get_str("general.architecture").unwrap_or("");
    let key = |k: &str| h.get_u64(&format!("{arch}.{k}"));
    let n_layer = key("block_count").unwrap_or(0);
    let n_embd = key("embedding_length").unwrap_or(0);
    let n_head = key("attention.head_count").unwrap_or(0);
    let n_head_kv = key("attention.head_count_kv").unwrap_or(n_head);
    let head_dim = n_embd.checked_div(n_head).unwrap_or(0);
    let k_len = key("attention.key_length").unwrap_or(head_dim);
    let v_len = key("attention.value_length").unwrap_or(head_dim);
    let per_position = n_layer
        .saturating_mul(n_head_kv)
        .saturating_mul(k_len.saturating_add(v_len))
        .saturating_mul(2);
    let n_vocab = h
        .get("tokenizer.ggml.tokens")
        .and_then(crate::gguf::GgufValue::array_len)
        .unwrap_or(0);
    MemoryNeed {
        weights: h.expected_file_size.saturating_sub(h.data_offset),
        kv_cache: per_position.saturating_mul(u64::from(n_ctx)),
        logits: n_vocab.saturating_mul(LOGIT_ROWS * 4),
        n_ctx,
    }
}

/// `MemAvailable` of `/proc/meminfo` text, in bytes.
fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// What a cgroup v2 limit leaves: `memory.max` − (`memory.current` −
/// `inactive_file` of `memory.stat`), None without a limit ("max").
/// `memory.current` counts the page cache, which the kernel reclaims before
/// it would kill anything; its inactive part is taken out as container
/// runtimes do for their "working set", so a container that just copied a
/// big file does not refuse a model that fits.
fn cgroup_left(max: &str, current: &str, stat: &str) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    let current: u64 = current.trim().parse().ok()?;
    let inactive_file: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("inactive_file "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some(max.saturating_sub(current.saturating_sub(inactive_file)))
}

/// The environment variable that turns the memory check off (`1`), for
/// when its estimate is wrong for a machine (e.g. memory the kernel would
/// free that it cannot see).
pub(crate) const SKIP_ENV: &str = "TOKENSCOPE_NO_MEMORY_CHECK";

/// Whether the memory check is turned off by [`SKIP_ENV`].
pub fn skipped() -> bool {
    std::env::var(SKIP_ENV).is_ok_and(|v| v == "1")
}

/// The memory available to this process now, in bytes: the kernel's
/// `MemAvailable` (free memory plus what it can reclaim without swapping),
/// or less when a cgroup (a container) limits this process. `None` where
/// neither can be read (then nothing is refused).
pub fn available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo(&t));
    let cgroup = (|| {
        // "0::/some/path": the cgroup v2 of this process.
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let dir = std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        cgroup_left(
            &std::fs::read_to_string(dir.join("memory.max")).ok()?,
            &std::fs::read_to_string(dir.join("memory.current")).ok()?,
            &std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default(),
        )
    })();
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The refusal's text when `need` (of the model file `file`) does not fit in
/// `available` bytes, else `None`.
pub(crate) fn shortfall(file: &str, need: &MemoryNeed, available: u64) -> Option<String> {
    if need.total() <= available {
        return None;
    }
    Some(format!(
        "not enough memory for {}: it needs about {} ({} of weights, {} of KV cache for a context of {} \
         tokens, {} of logits) but {} is available; close other programs, choose a smaller model or \
         quantization, or lower the context (--ctx, or ctx in the config file); {}=1 skips this check",
        crate::text::escape_inline(file),
        size_human(need.total()),
        size_human(need.weights),
        size_human(need.kv_cache),
        need.n_ctx,
        size_human(need.logits),
        size_human(available),
        SKIP_ENV,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::testutil::{T, Val, build, s};

    fn header(kvs: &[(&str, Val)], tensors: &[T]) -> GgufHeader {
        let bytes = build(kvs, tensors, 32);
        let len = bytes.len() as u64;
        crate::gguf::read_header_from(std::io::BufReader::new(std::io::Cursor::new(bytes)), len)
            .unwrap()
    }

    #[test]
    fn estimate_counts_weights_grouped_kv_heads_and_logits() {
        let h = header(
            &[
                ("general.architecture", s("llama")),
                ("llama.block_count", Val::U32(30)),
                ("llama.embedding_length", Val::U32(576)),
                ("llama.attention.head_count", Val::U32(9)),
                ("llama.attention.head_count_kv", Val::U32(3)),
                (
                    "tokenizer.ggml.tokens",
                    Val::Strs((0..100).map(|i| i.to_string()).collect()),
                ),
            ],
            &[T("a", &[64, 4], 0), T("b", &[32], 0)],
        );
        let need = estimate(&h, 4096);
        // F32: 64*4*4 bytes, padded to 32, then 32*4.
        assert_eq!(need.weights, 1024 + 128);
        // 30 layers × 3 KV heads × (64 + 64) dims × 2 bytes × 4096 positions.
        assert_eq!(need.kv_cache, 30 * 3 * 128 * 2 * 4096);
        assert_eq!(need.logits, 100 * 32 * 4);
        assert_eq!(need.total(), need.weights + need.kv_cache + need.logits);
        // Explicit key/value lengths win over embedding / heads.
        let h = header(
            &[
                ("general.architecture", s("gemma3")),
                ("gemma3.block_count", Val::U32(2)),
                ("gemma3.embedding_length", Val::U32(640)),
                ("gemma3.attention.head_count", Val::U32(4)),
                ("gemma3.attention.key_length", Val::U32(256)),
                ("gemma3.attention.value_length", Val::U32(256)),
            ],
            &[],
        );
        assert_eq!(estimate(&h, 10).kv_cache, 2 * 4 * 512 * 2 * 10);
    }

    #[test]
    fn a_model_without_attention_keys_needs_its_weights_only() {
        let h = header(&[("general.architecture", s("mamba"))], &[T("w", &[8], 0)]);
        let need = estimate(&h, 4096);
        assert_eq!((need.weights, need.kv_cache, need.logits), (32, 0, 0));
    }

    #[test]
    fn shortfall_names_what_is_needed_and_what_is_there() {
        let need = MemoryNeed {
            weights: 3 << 30,
            kv_cache: 512 << 20,
            logits: 1 << 20,
            n_ctx: 8192,
        };
        assert_eq!(shortfall("m.gguf", &need, 4 << 30), None);
        let text = shortfall("m.gguf", &need, 2 << 30).unwrap();
        for part in [
            "for m.gguf",
            "3.5 GiB",
            "3.0 GiB of weights",
            "512.0 MiB of KV cache",
            "8192 tokens",
            "2.0 GiB is available",
            "--ctx",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }

    #[test]
    fn available_memory_parsing() {
        let meminfo = "MemTotal:       24684084 kB\nMemFree:        18047740 kB\nMemAvailable:   22588056 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some(22_588_056 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
        assert_eq!(cgroup_left("max\n", "100\n", ""), None);
        assert_eq!(cgroup_left("1000\n", "300\n", ""), Some(700));
        assert_eq!(cgroup_left("100\n", "300\n", ""), Some(0));
        // Reclaimable page cache (inactive_file) is not counted as used.
        let stat = "anon 100\nfile 250\nactive_file 50\ninactive_file 200\n";
        assert_eq!(cgroup_left("1000\n", "300\n", stat), Some(900));
        assert_eq!(cgroup_left("1000\n", "100\n", stat), Some(1000));
        // This machine: Linux has /proc/meminfo.
        assert!(available().is_some_and(|a| a > 0));
    }
}
