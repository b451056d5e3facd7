//! tokenscope: chat with local GGUF models and watch every next-token prediction.

pub mod bench;
pub mod catalog;
pub mod civil;
pub mod cli;
pub mod comparison;
pub mod config;
pub mod conversation;
pub mod demo;
pub mod engine;
pub mod gguf;
pub mod headless;
pub mod listing;
pub mod llama_server;
pub mod logging;
pub mod paths;
pub mod quantize;
pub mod quantize_report;
pub mod store;
pub mod terminal;
pub mod text;
pub mod tui;
