//! tokenscope: chat with local GGUF models and watch every next-token prediction.

pub mod catalog;
pub mod config;
pub mod engine;
pub mod paths;
pub mod tui;
