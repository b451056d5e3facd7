//! A conversation as a tree of turns: every reply ever generated is kept,
//! alternatives side by side as siblings (a branch from a token, a
//! regenerated reply, an edited message), and the chat shown is the path of
//! active children from the root. No terminal code here: the TUI, the
//! commands (`run`, `compare`) and the store (saved conversations) share it,
//! and it round-trips through serde.
//!
//! One function builds an engine request from it ([`Conversation::request`]);
//! the rules of a reply's life (starting a run, where the prompt's tokens and
//! scores go, ending one) are methods here too (`replies`), so every front
//! end applies the same. A reply compared under a second model keeps the
//! engine's rows on its node ([`Comparison`]), summed up by
//! [`compare_stats`]. It depends on the engine's protocol types only.

pub mod compare_stats;
mod compared;
mod replies;
mod request;
mod tree;

pub(crate) use compared::{CompareStatus, Comparison};
pub(crate) use replies::PromptPlaces;
pub(crate) use replies::Writer;
pub use request::RequestSettings;
pub use tree::{Conversation, Node, NodeId, Status};
pub(crate) use tree::{Fork, ROOT};

/// Test helpers: a small vocabulary and steps with distributions.
#[cfg(test)]
pub(crate) use tree::tests as test_support;
