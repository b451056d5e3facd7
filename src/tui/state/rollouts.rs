//! The rollouts popup's data: the token whose step is rolled out, the
//! engine's answer (one rollout per top candidate there) and the row
//! selected.

use super::TokenRef;
use crate::engine::{RequestId, Rollout};

/// Where each of the top candidates at one step leads
/// ([`crate::engine::Command::Rollouts`]).
#[derive(Debug, Clone)]
pub struct RolloutsView {
    /// The chat token whose step is rolled out: the candidates are the
    /// ones the model considered there (for a paused reply, the step not
    /// drawn yet: one past its last token).
    pub at: TokenRef,
    /// `' Paris' (reply token 12)`: what the title says.
    pub label: String,
    /// Rollouts asked for (the top `n` candidates) and tokens per rollout
    /// (the candidate included).
    pub n: usize,
    pub m: usize,
    /// The request in flight, while one is.
    pub request: Option<RequestId>,
    /// The rollouts by rank, once the engine answered.
    pub result: Option<Vec<Rollout>>,
    /// Why there are none (refused, failed), in words.
    pub error: Option<String>,
    /// Index into `result` of the row selected.
    pub selected: usize,
    /// Why a rollout cannot become a branch here (a prompt token), in
    /// words; `None`: Enter makes the selected one a branch of the reply.
    pub no_branch: Option<String>,
    /// The seed of the rollout of rank 1 (rank r draws with seed + r − 1).
    pub seed: u32,
}

impl RolloutsView {
    /// The rollout selected, once there are some.
    pub fn chosen(&self) -> Option<&Rollout> {
        self.result.as_ref()?.get(self.selected)
    }
}
