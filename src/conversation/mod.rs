//! A conversation as a tree of turns: every reply ever generated is kept,
//! alternatives side by side as siblings (a branch from a token, a
//! regenerated reply, an edited message), and the chat shown is the path of
//! active children from the root. No terminal code here: the TUI, `run` and
//! (later) saved conversations share it, and it round-trips through serde.
//!
//! One function builds an engine request from it ([`Conversation::request`]).

mod compared;
mod request;
mod tree;

pub use compared::{CompareStatus, Comparison};
pub use request::RequestSettings;
pub use tree::{Conversation, Fork, Node, NodeId, ROOT, Status};

/// Test helpers: a small vocabulary and steps with distributions.
#[cfg(test)]
pub(crate) use tree::tests as test_support;
