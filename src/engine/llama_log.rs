//! llama.cpp's own words for a failure: a `tracing` layer keeps the first
//! error llama.cpp logs (through `llama-cpp-2`'s log forwarding) since it
//! was last cleared, so a failed load can say "error loading model:
//! check_tensor_dims: tensor 'blk.0.attn_q.weight' has wrong shape…" instead
//! of the binding's "null result from llama cpp".

use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The target `llama-cpp-2` gives llama.cpp's log events.
const TARGET: &str = "llama-cpp-2";

static FIRST_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// The layer to add to a subscriber (the app's and the engine process's).
pub(crate) struct FirstLlamaError;

impl<S: Subscriber> Layer<S> for FirstLlamaError {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || meta.target() != TARGET {
            return;
        }
        let mut first = FIRST_ERROR.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            let mut v = MessageOf(None);
            event.record(&mut v);
            *first = v.0.map(|m| m.trim().to_string()).filter(|m| !m.is_empty());
        }
    }
}

struct MessageOf(Option<String>);

impl Visit for MessageOf {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// Forgets what was kept: call before the llama.cpp call whose failure to explain.
pub fn clear() {
    *FIRST_ERROR.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The first error llama.cpp logged since [`clear`], if any (escaped for display).
pub fn take() -> Option<String> {
    FIRST_ERROR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .map(|m| crate::text::escape_inline(&m))
}
