//! A panic on the engine worker thread, reported instead of lost: a panic hook
//! records its message and location on that thread (and logs a backtrace),
//! the worker sends them as the failure of the request it was serving, and the
//! thread then ends by the same panic, so whoever watches it (the TUI's stop
//! guard) can read them too with [`engine_panic_message`].

use std::cell::RefCell;
use std::panic::PanicHookInfo;
use std::sync::Once;

/// Name of the engine worker thread.
pub(crate) const ENGINE_THREAD: &str = "tokenscope-engine";

/// Environment variable of the test hook: `generate` makes the worker panic at
/// the start of every generate request (used by the tests of this path only).
pub const TEST_PANIC_ENV: &str = "TOKENSCOPE_TEST_ENGINE_PANIC";

thread_local! {
    /// The engine thread's panic, as "message (file:line)".
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// True on the engine worker thread.
pub(crate) fn is_engine_thread() -> bool {
    std::thread::current().name() == Some(ENGINE_THREAD)
}

/// "message (file:line)" of a panic.
pub(crate) fn panic_text(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string());
    match info.location() {
        Some(l) => format!("{msg} ({}:{})", l.file(), l.line()),
        None => msg,
    }
}

/// For a panic hook: when the panicking thread is the engine worker, records
/// the panic's message and location for the worker to report, logs it with a
/// backtrace, and returns true (the hook should then print nothing: the
/// terminal may belong to the TUI, and the user gets the message as an error).
/// Returns false for any other thread.
pub(crate) fn record_engine_panic(info: &PanicHookInfo<'_>) -> bool {
    if !is_engine_thread() {
        return false;
    }
    let text = panic_text(info);
    tracing::error!(
        "engine thread panicked: {text}\n{}",
        std::backtrace::Backtrace::force_capture()
    );
    PANIC.with(|p| *p.borrow_mut() = Some(text));
    true
}

/// On the engine thread: the message and location of its panic, once a hook
/// has recorded it (see [`record_engine_panic`]). `None` elsewhere.
pub(crate) fn engine_panic_message() -> Option<String> {
    PANIC.with(|p| p.borrow().clone())
}

/// Installs (once per process) a panic hook that records engine-thread panics
/// and passes any other panic to the hook installed before it. Hooks installed
/// later that act on every panic (ratatui's restores the terminal) must let
/// [`record_engine_panic`] look first.
pub(super) fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !record_engine_panic(info) {
                prev(info);
            }
        }));
    });
}

/// The test hook: panics when [`TEST_PANIC_ENV`] is `stage` (the panic's
/// location is the caller's).
#[track_caller]
pub(super) fn test_panic(stage: &str) {
    if std::env::var_os(TEST_PANIC_ENV).is_some_and(|v| v == stage) {
        panic!("{TEST_PANIC_ENV}={stage}: a test asked the engine to panic");
    }
}
