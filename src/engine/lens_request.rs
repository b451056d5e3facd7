//! Serving a [`Command::Lens`]: the slot's lens ([`super::lens::Lens`],
//! made at the first request and kept with the model) run on the request,
//! its result sent as one [`Event::Lens`] before the final `Done`.
//!
//! [`Command::Lens`]: super::api::Command::Lens

use std::path::Path;
use std::time::Instant;

use super::api::{EngineError, Event, LensRequest, RequestId, Stats, StopReason};
use super::decode::Outcome;
use super::inbox::{Emit, Inbox};
use super::lens::Lens;
use super::slot::Slot;

/// Serves a [`LensRequest`] on `slot`: gives way (ends `Cancelled`) when a
/// request was sent after it, else sends one [`Event::Lens`] and ends
/// `Done`. The slot's lens is made at its first use (a second load of the
/// same file, see [`context`]).
pub(super) fn serve(
    slot: &mut Slot,
    request: RequestId,
    req: &LensRequest,
    inbox: &mut Inbox,
    emit: &Emit,
) -> Outcome {
    let t_start = Instant::now();
    let n_ctx = slot.info.n_ctx as usize;
    let ctx_requested = slot.info.n_ctx_requested as usize;
    let stats = |stop: StopReason, (evaluated, reused): (usize, usize)| {
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
            ctx_size: n_ctx,
            ctx_requested,
            inspector_us_per_token: 0.0,
        }
    };
    if inbox.gives_way(request) {
        return Outcome::Cancelled(stats(StopReason::Cancelled, (0, 0)));
    }
    let Some(path) = slot.info.model.local_path().map(Path::to_path_buf) else {
        return Outcome::Failed(EngineError::InvalidRequest(
            "the layer lens needs a local model file".into(),
        ));
    };
    if slot.lens.as_ref().is_none_or(|l| l.path != path) {
        slot.lens = None;
        match Lens::open(&path, slot.info.n_ctx, slot.info.threads) {
            Ok(lens) => slot.lens = Some(lens),
            Err(e) => return Outcome::Failed(e),
        }
    }
    let lens = slot.lens.as_mut().expect("made just above");
    match lens.run(req) {
        Ok(result) => {
            let st = stats(StopReason::Eog, (result.n_evaluated, result.n_reused));
            emit(Event::Lens {
                request,
                result: Box::new(result),
            });
            Outcome::Done(st)
        }
        Err(e) => Outcome::Failed(e),
    }
}
