//! The compare mode's data (a part of [`super::State`]): model B in its
//! slot, the comparison under way, the exact prompts of this session's
//! replies; and the commands it sends to the engine. What the compare key
//! does with them is [`crate::tui::compare`]'s.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::conversation::NodeId;
use crate::engine::memory::MemoryNeed;
use crate::engine::{CompareRequest, LoadSettings, ModelInfo, RequestId, SlotId, TokenId};
use crate::i18n::{tr, tr_args};
use crate::tui::models::ModelEntry;

/// The engine slot model B is loaded into (model A, the one chatted with, is in slot 0).
pub const SLOT_B: SlotId = 1;

/// Top tokens asked per model and position: enough for the inspector's rows.
pub const COMPARE_TOP_K: usize = 10;

/// What the compare key sends to the local engine (see [`crate::tui::Host::compare`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CompareCmd {
    /// Load model B into [`SLOT_B`].
    LoadB(PathBuf, LoadSettings),
    /// Compare slots 0 and [`SLOT_B`].
    Run(CompareRequest),
    /// Free [`SLOT_B`] (no event answers it).
    UnloadB,
}

impl CompareCmd {
    /// The engine command for this, as request `request` (unused by an unload).
    pub fn command(self, request: RequestId) -> crate::engine::Command {
        use crate::engine::Command;
        match self {
            CompareCmd::LoadB(path, settings) => Command::Load {
                request,
                slot: SLOT_B,
                model: crate::engine::ModelRef::Local(path),
                settings,
            },
            CompareCmd::Run(req) => Command::Compare { request, req },
            CompareCmd::UnloadB => Command::Unload { slot: SLOT_B },
        }
    }
}

/// The reply the compare picker was opened for, and how to rank the models.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareFor {
    /// The reply's node.
    pub node: NodeId,
    /// The variant key of model A.
    pub group: Option<crate::catalog::VariantKey>,
    /// Model A (a file: a server's model is not compared).
    pub a: crate::engine::ModelRef,
}

impl CompareFor {
    /// Where `m` goes in the "compare with…" list: 0 for another variant of
    /// A, 1 for A's own file, 2 for the rest (not comparable, or unknown).
    pub fn rank(&self, m: &ModelEntry) -> u8 {
        if m.model == self.a {
            1
        } else if m.group.is_some() && m.group == self.group {
            0
        } else {
            2
        }
    }

    /// Why `m` cannot be compared with A, in a few words for the picker
    /// row; `None` when it can (or the engine has to say: two models with
    /// vocabularies of one size may still differ in a token, which only
    /// the engine, holding both, can tell).
    pub fn refusal(&self, m: &ModelEntry) -> Option<String> {
        let vocab = |g: &Option<crate::catalog::VariantKey>| g.as_ref().map(|g| g.n_vocab);
        if m.model.is_remote() {
            Some(tr("picker-refuse-remote", "remote: cannot compare"))
        } else if m.error.is_some() {
            Some(tr("picker-refuse-unreadable", "unreadable"))
        } else if let (Some(a), Some(b)) = (vocab(&self.group), vocab(&m.group))
            && a != b
        {
            Some(tr_args(
                "picker-refuse-vocab",
                "another vocabulary ({ $b } tokens, this model has { $a }): not comparable token by token",
                &[("a", &a), ("b", &b)],
            ))
        } else {
            None
        }
    }
}

/// Where a comparison stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobPhase {
    /// Model B is loading into [`SLOT_B`] (fraction 0 to 1).
    LoadingB { path: PathBuf, fraction: f32 },
    /// The reply's tokens are being forced through both models.
    Comparing,
    /// Esc was pressed; waiting for the engine's final event.
    Cancelling,
}

/// The comparison under way.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The request (the load of B, then the comparison); drawn by `update` when it is asked for.
    pub request: RequestId,
    pub node: NodeId,
    pub phase: JobPhase,
    /// The ids compared: the prompt, then the reply.
    pub tokens: Vec<TokenId>,
    /// Where the reply starts in `tokens`.
    pub score_from: usize,
}

/// Everything the compare mode keeps (a part of [`super::State`]).
#[derive(Debug, Clone, Default)]
pub struct CompareState {
    /// Model B, loaded in [`SLOT_B`] (compare mode is on while it is).
    pub b: Option<ModelInfo>,
    /// What B takes in memory (weights, KV cache), estimated from its
    /// header when its load was sent.
    pub b_memory: Option<MemoryNeed>,
    pub job: Option<Job>,
    /// The prompt of each reply generated this session, as the engine built
    /// it ([`crate::engine::Event::Started`]): the exact ids the model saw before the reply.
    pub prompts: HashMap<NodeId, Vec<TokenId>>,
}
