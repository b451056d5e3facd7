//! What `update` asks the loop to do ([`Effect`]), as data: the loop's
//! `execute` carries it out (I/O), so nothing above it does any. Below every
//! part that returns effects (the transitions, the components, `update`).

use super::state::compare::CompareCmd;
use crate::engine::{GenerateRequest, ModelRef, RequestId};

/// What `update` asks the loop to do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Generate a reply, as request `.0` (drawn by [`crate::tui::state::Session::new_request`]).
    Generate(RequestId, GenerateRequest),
    /// Load a model (a file, or a server's), as request `.0`.
    Load(RequestId, ModelRef),
    Cancel(RequestId),
    /// Comparing: load model B, compare, free B (see [`crate::tui::compare`]).
    /// Sent as request `.0` (an unload, which no event answers, takes one too, so
    /// that ids are drawn in the order the commands are sent).
    Compare(RequestId, CompareCmd),
    /// Score positions of a prompt in the KV cache, as request `.0`: the
    /// prompt's surprise after the reply ([`crate::tui::prompt_scoring`]).
    ScorePrompt(RequestId, crate::engine::PromptScoreRequest),
    /// The layer lens of a position, as request `.0` ([`crate::tui::lens_view`]).
    Lens(RequestId, crate::engine::LensRequest),
    /// Rollouts of the top candidates at a step, as request `.0`
    /// ([`crate::tui::rollouts_view`]).
    Rollouts(RequestId, crate::engine::RolloutRequest),
    /// What the KV cache saves, as request `.0` ([`crate::tui::kv_view`]).
    KvCost(RequestId, crate::engine::KvCostRequest),
    /// Ask about the chooser's text at its step, as request `.0` ([`crate::tui::asking`]).
    AskText(RequestId, crate::engine::AskTextRequest),
    /// Step, force, or run on the reply under way (its request, once known).
    Steer(Steer),
    RefreshModels,
    /// Kill the engine process and start a new one (it did not stop when asked).
    RestartEngine,
    /// Save the conversation shown (what changed since the last save).
    Save,
    /// Save a conversation that left the screen (a new chat, another one opened).
    SaveAway(
        Option<crate::store::ConvId>,
        Box<crate::conversation::Conversation>,
    ),
    /// Fill the open conversation list (its filter).
    ListChats,
    /// Open a saved conversation in place of the one shown.
    OpenChat(crate::store::ConvId),
    RenameChat(crate::store::ConvId, String),
    DeleteChat(crate::store::ConvId),
    Quit,
}

/// What a paused (or running) reply is told to do next: the protocol's own
/// ([`crate::engine::Steer`]), sent as [`crate::engine::Command::Steer`].
pub use crate::engine::Steer;
