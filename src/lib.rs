//! tokenscope: chat with local GGUF models and watch every next-token prediction.
//!
//! The library core sits at the top of `src/`: model files ([`gguf`],
//! [`catalog`]), the engine behind one protocol ([`engine`]), the
//! conversation tree ([`conversation`]) and its storage ([`store`]),
//! settings and places ([`config`], [`paths`]), text safety ([`text`]), the
//! terminal's rules ([`terminal`]), the log file ([`logging`]), dates
//! ([`civil`]), and what is fetched from PyPI (the [`demo`] models, a
//! [`llama_server`] for tests and benchmarks). The chat's full-screen front end is
//! [`tui`]; each subcommand lives under [`commands`]; [`cli`] is the
//! command line they are reached by.

// No `unwrap()` outside tests: a panic should say why (`expect`), or be an error.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
// The library serves this crate's binary and tests, not outside users: its
// docs are read with `--document-private-items`, and may link to what is
// `pub(crate)` (scripts/pub_audit.py).
#![allow(rustdoc::private_intra_doc_links)]

pub mod catalog;
pub mod civil;
pub mod cli;
pub mod commands;
pub mod config;
pub mod conversation;
pub mod demo;
pub mod engine;
pub mod gguf;
pub(crate) mod heat;
pub mod i18n;
pub mod llama_server;
pub mod logging;
pub mod paths;
pub mod store;
pub mod tensor_map;
pub mod terminal;
pub mod text;
pub mod tui;
