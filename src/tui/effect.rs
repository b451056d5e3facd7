//! What `update` asks the loop to do ([`Effect`]), as data: the loop's
//! `execute` carries it out (I/O), so nothing above it does any. Below every
//! part that returns effects (the transitions, the components, `update`).

use std::path::PathBuf;

use super::state::compare::CompareCmd;
use crate::engine::{Command, GenerateRequest, RequestId, TokenId};

/// What `update` asks the loop to do.
#[derive(Debug, Clone)]
pub enum Effect {
    Generate(GenerateRequest),
    Load(PathBuf),
    Cancel(RequestId),
    /// Comparing: load model B, compare, free B (see [`crate::tui::compare`]).
    Compare(CompareCmd),
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

/// What a paused (or running) reply is told to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Steer {
    /// One sampled token, then pause.
    Step,
    /// This token next (teacher forcing), then pause.
    Force(TokenId),
    /// This text next, as plain-text tokens, then pause.
    ForceText(String),
    /// Run freely to the end.
    Run,
}

impl Steer {
    /// The engine command that does this to `request`.
    pub fn command(self, request: RequestId) -> Command {
        match self {
            Steer::Step => Command::Step { request },
            Steer::Force(token) => Command::Force { request, token },
            Steer::ForceText(text) => Command::ForceText { request, text },
            Steer::Run => Command::Run { request },
        }
    }
}
