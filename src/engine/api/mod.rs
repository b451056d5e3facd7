//! The engine's protocol: the commands a caller sends and the events it gets
//! back, the same whether the engine runs in a thread, in a child process
//! (framed over pipes) or behind a remote server ([`super::remote`]). Every type here is
//! plain data with serde both ways.
//!
//! Token ids are first class ([`TokenId`]): prompts are reported as ids, a
//! request can continue from an exact token prefix, and a step carries ids and
//! logits only; the text of every token comes once per model in [`Vocab`].
//!
//! The protocol's parts, each in its file: the identities ([`TokenId`],
//! [`RequestId`], [`SlotId`]), the commands and requests a caller sends,
//! the events that come back, which model a load names ([`ModelRef`]), what
//! a loaded model is, and the errors.

mod ask;
mod error;
mod event;
mod ids;
mod kv_cost;
mod lens;
mod model;
mod model_ref;
mod request;

pub use super::report::CrashReport;
pub use super::sampler::SamplingParams;
pub use ask::*;
pub use error::{EngineError, RemoteError, Words, range_words};
pub use event::*;
pub use ids::*;
pub use kv_cost::*;
pub use lens::*;
pub use model::*;
pub use model_ref::ModelRef;
pub use request::*;
