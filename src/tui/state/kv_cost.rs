//! The KV-cache view's data (`w` in the token cursor): the request in
//! flight and both runs' timed tokens as they stream in.

use crate::engine::{KvCostRuns, RequestId, Stats};

/// What the KV cache saves, on one context of the chat: the greedy reply
/// generated with the cache and again without it
/// ([`crate::engine::Command::KvCost`]).
#[derive(Debug, Clone)]
pub struct KvCostView {
    /// `the reply to message 2`: what the title says was run.
    pub label: String,
    /// The request in flight, while one is.
    pub request: Option<RequestId>,
    /// Most tokens of each run (the cap sent).
    pub max_tokens: u32,
    /// The tokens timed so far.
    pub runs: KvCostRuns,
    /// The final stats, once both runs are done.
    pub done: Option<Stats>,
    /// Cancelled (Esc) before the end.
    pub cancelled: bool,
    /// Why there is no answer (refused, failed), in words.
    pub error: Option<String>,
}
