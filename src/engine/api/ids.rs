//! The identities the protocol speaks of: tokens, requests, model slots,
//! and the limits on them.

/// A token of a model's vocabulary (llama.cpp's `llama_token`).
pub type TokenId = i32;

/// Identifies one request; chosen by the caller, unique among the requests it
/// has in flight. Every event names the request it answers.
pub type RequestId = u64;

/// A model slot of the engine: the engine holds one loaded model per slot
/// (the TUI uses slot 0; comparing quantizations loads two).
pub type SlotId = u32;

/// Most candidates a request may ask to be reported per token
/// ([`GenerateRequest::top_k_inspect`](super::GenerateRequest::top_k_inspect), `--candidates`, `inspector_top_k`).
pub const MAX_CANDIDATES: usize = 256;

/// Most model slots the local engine holds at once.
pub(crate) const MAX_SLOTS: SlotId = 4;
