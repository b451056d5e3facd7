//! Which requests were cancelled: flags shared by whoever sends commands and
//! the worker that serves them (checked between tokens and before a request
//! starts).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::api::RequestId;

/// Requests cancelled so far, shared by the handle and the worker. Exact ids, so
/// stopping a reply never cancels the model load queued before it.
#[derive(Debug, Default)]
pub struct Cancellations {
    ids: Mutex<HashSet<RequestId>>,
    all: AtomicBool,
}

impl Cancellations {
    pub fn cancel(&self, request: RequestId) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request);
    }

    pub fn cancel_all(&self) {
        self.all.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self, request: RequestId) -> bool {
        self.all.load(Ordering::SeqCst)
            || self
                .ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&request)
    }

    /// Forgets a finished request.
    pub fn finish(&self, request: RequestId) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&request);
    }
}
