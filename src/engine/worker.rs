//! The worker loop: the only owner of llama.cpp objects.
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Receiver;

use super::{Command, Event};

pub(super) fn run(rx: Receiver<Command>, _cancel: Arc<AtomicU64>, emit: impl Fn(Event) -> bool) {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Shutdown => break,
            Command::Load { request, .. } | Command::Generate { request, .. } => {
                emit(Event::Failed { request, error: "engine not implemented yet".into() });
            }
        }
    }
}
