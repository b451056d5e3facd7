//! What a component's key asks for beyond its own data ([`Outcome`]), as
//! data: `update` applies it with the shared transitions (`transitions.rs`,
//! `reply.rs`, `compare.rs`), so a component changes only what is its own
//! (its popup's fields, the input box, the token cursor, the chooser, a
//! notice) and never reaches across the app. Below the components and
//! `update`, beside [`Effect`].

use super::effect::{Effect, Steer};
use super::models::ModelEntry;
use super::state::TokenRef;
use super::state::compare::CompareFor;
use crate::engine::{ModelRef, TokenId};

/// What should happen after a key, for `update` to apply.
#[derive(Debug, Clone, Default)]
pub enum Outcome {
    /// Nothing more: the component did what the key asks itself (or nothing).
    #[default]
    Done,
    /// Effects for the loop, as they are (quit, save, list the saved chats…).
    Effects(Vec<Effect>),
    /// Stop the reply under way (again: restart the engine).
    Cancel,
    /// Give up the model being loaded (again: restart the engine).
    CancelLoad,
    /// Load this model (a file, or a server's).
    LoadModel(ModelRef),
    /// Enter the token cursor, or leave it.
    ToggleTokenCursor,
    /// Leave the token cursor (back to choosing the next token of a paused reply).
    BackFromCursor,
    /// Choose another token in place of this one.
    ChooseAt(TokenRef),
    /// A paused reply: choose its next token.
    ChooseNext,
    /// Send this message.
    Send(String),
    /// Step, force or run the paused reply.
    Steer(Steer),
    /// Branch the reply at a token: a chosen token, the first tokens of a
    /// text, or (neither) a fresh draw.
    Branch {
        at: TokenRef,
        chosen: Option<TokenId>,
        text: Option<String>,
    },
    /// Continue the reply at this chat position.
    ContinueReply(usize),
    /// Show the previous (-1) or next (+1) version of the turn at this chat position.
    SwitchSibling(usize, isize),
    /// Edit the user message at this chat position.
    EditMessage(usize),
    /// The what-if settings become the configured ones.
    ApplyWhatIf,
    /// Sampling settings to use from now on (and the most tokens a reply gets).
    SetSampling(Box<crate::tui::state::popup::SettingsValues>),
    /// The system prompt, changed.
    SetSystemPrompt(String),
    OpenHelp,
    OpenSystemPrompt,
    /// Rescan the model directories.
    Rescan,
    /// Compare a reply under a second model: open the picker for it.
    OpenCompare,
    /// Compare with this model file (chosen in the compare picker; not refused).
    CompareWith(CompareFor, Box<ModelEntry>),
    /// Stop the comparison under way.
    CancelCompare,
    /// Free model B.
    EndCompare,
    /// Open the layer lens of a chat token.
    OpenLens(crate::tui::state::TokenRef),
    /// Open the KV-cache view on the context of a chat token's message.
    OpenKvCost(crate::tui::state::TokenRef),
    /// The lens of the token before (-1) or after (1) the one shown.
    LensStep(isize),
    /// Roll out the top candidates at a chat token's step.
    OpenRollouts(crate::tui::state::TokenRef),
    /// Keep a rollout of the step of reply token `at` as a branch of the
    /// reply (rank r drew with `seed` + r − 1).
    BranchRollout {
        at: crate::tui::state::TokenRef,
        rollout: Box<crate::engine::Rollout>,
        seed: u32,
    },
    /// The heatmap's next scale (probability, entropy, KL, off).
    ToggleHeatmap,
}
