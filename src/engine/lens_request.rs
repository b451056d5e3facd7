//! Serving a [`Command::Lens`]: the slot's lens ([`super::lens::Lens`],
//! made at the first request and kept with the model) run on the request,
//! its result sent as one [`Event::Lens`] before the final `Done`. Served
//! between requests ([`serve`]) or inside a paused reply's pause
//! ([`serve_in_pause`]: the lens's contexts are its own, so the reply's KV
//! cache and the logits of its next draw are untouched).
//!
//! [`Command::Lens`]: super::api::Command::Lens

use std::path::Path;
use std::time::Instant;

use super::api::{EngineError, Event, LensRequest, ModelInfo, RequestId, Stats, StopReason, Words};
use super::decode::Outcome;
use super::inbox::{Emit, Inbox};
use super::lens::Lens;
use super::slot::Slot;

/// Serves a [`LensRequest`] on `slot`: gives way (ends `Cancelled`) when a
/// request was sent after it, else sends one [`Event::Lens`] and ends
/// `Done`. The slot's lens is made at its first use (a second load of the
/// same file, see [`super::lens`]).
pub(super) fn serve(
    slot: &mut Slot,
    request: RequestId,
    req: &LensRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Outcome {
    let t_start = Instant::now();
    if inbox.gives_way(request) {
        return Outcome::Cancelled(stats(&slot.info, t_start, StopReason::Cancelled, (0, 0)));
    }
    run(&mut slot.lens, &slot.info, request, req, emit, t_start)
}

/// Serves a [`LensRequest`] inside the pause of a reply on the model
/// `info` (whose slot's lens the reply lent, `lens`): it does not read the
/// inbox (a steer sent meanwhile waits for the pause, which answers it
/// once the lens is sent; a lens is short), ends `Cancelled` only when
/// cancelled before it starts. The caller sends the final event.
pub(super) fn serve_in_pause(
    lens: &mut Option<Lens>,
    info: &ModelInfo,
    request: RequestId,
    req: &LensRequest,
    inbox: &Inbox,
    emit: &Emit,
) -> Outcome {
    let t_start = Instant::now();
    if inbox.is_cancelled(request) {
        return Outcome::Cancelled(stats(info, t_start, StopReason::Cancelled, (0, 0)));
    }
    run(lens, info, request, req, emit, t_start)
}

/// The lens of `req` with `lens` (made or remade for `info`'s file first),
/// sent as one [`Event::Lens`]; its stats (positions evaluated and reused).
fn run(
    lens: &mut Option<Lens>,
    info: &ModelInfo,
    request: RequestId,
    req: &LensRequest,
    emit: &Emit,
    t_start: Instant,
) -> Outcome {
    let Some(path) = info.model.local_path().map(Path::to_path_buf) else {
        return Outcome::Failed(EngineError::Refused(Words::tr(
            "lens-engine-local-file",
            "the layer lens needs a local model file",
        )));
    };
    if lens.as_ref().is_none_or(|l| l.path != path) {
        *lens = None;
        match Lens::open(&path, info.n_ctx, info.threads) {
            Ok(made) => *lens = Some(made),
            Err(e) => return Outcome::Failed(e),
        }
    }
    let lens = lens.as_mut().expect("made just above");
    match lens.run(req) {
        Ok(result) => {
            let st = stats(
                info,
                t_start,
                StopReason::Eog,
                (result.n_evaluated, result.n_reused),
            );
            emit(Event::Lens {
                request,
                result: Box::new(result),
            });
            Outcome::Done(st)
        }
        Err(e) => Outcome::Failed(e),
    }
}

/// A lens's [`Stats`]: its positions `(evaluated, reused)` and its time
/// since `t_start` (as a prefill's).
fn stats(
    info: &ModelInfo,
    t_start: Instant,
    stop: StopReason,
    (evaluated, reused): (usize, usize),
) -> Stats {
    let s = t_start.elapsed().as_secs_f64();
    Stats {
        stop,
        n_prompt: evaluated + reused,
        n_prompt_evaluated: evaluated,
        n_prompt_reused: reused,
        n_generated: 0,
        n_forced: 0,
        ttft_ms: s * 1000.0,
        prompt_tps: if s > 0.0 { evaluated as f64 / s } else { 0.0 },
        gen_tps: 0.0,
        dropped_messages: 0,
        ctx_used: evaluated + reused,
        ctx_size: info.n_ctx as usize,
        ctx_requested: info.n_ctx_requested as usize,
        inspector_us_per_token: 0.0,
    }
}
