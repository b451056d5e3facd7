//! The worker loop: the only owner of llama.cpp objects. It serves requests
//! one at a time from its inbox ([`super::inbox`]), holding loaded models in
//! slots; during a generation the inbox is read between tokens (steers and
//! cancels).

use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use super::api::{
    Capabilities, Command, EngineError, Event, LoadSettings, MAX_SLOTS, ModelRef, RequestId,
    SlotId, Words,
};
use super::cancel::Cancellations;
use super::compare;
use super::decode::Outcome;
use super::generate;
use super::inbox::{Emit, Inbox};
use super::kv_cost;
use super::lens_request;
use super::prompt;
use super::prompt_scores;
use super::rollouts;
use super::score;
use super::slot::{self, Slot};
use super::text_answer;

pub(super) fn run(
    rx: Receiver<Command>,
    cancel: Arc<Cancellations>,
    emit: impl Fn(Event) -> bool + 'static,
) {
    let emit: Emit = Rc::new(emit);
    let current = Rc::new(std::cell::Cell::new(None));
    let mut inbox = Inbox::new(rx, cancel);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve(&mut inbox, &emit, &current)
    }));
    if let Err(panic) = result {
        let msg = super::crash::engine_panic_message().unwrap_or_else(|| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into())
        });
        // The request being served, then every request still waiting: each
        // gets its one final event (this worker serves nothing more).
        let waiting = inbox.drain_requests();
        for request in current.get().into_iter().chain(waiting) {
            emit(Event::Failed {
                request,
                error: EngineError::Panicked(msg.clone()),
            });
        }
        // End the thread by the same panic: `emit` (and what the event wrapper
        // captured, such as the TUI's stop guard) is dropped while unwinding, so
        // whoever watches the thread sees a crash, not a normal stop. The panic
        // hook does not run again.
        std::panic::resume_unwind(panic);
    }
}

/// Loaded models by slot.
struct Slots(Vec<Option<Slot>>);

impl Slots {
    /// Takes the models of `ids` out (to use several at once), in that order.
    ///
    /// # Errors
    /// A slot out of range or empty, or a slot named twice; nothing is taken then.
    fn take(&mut self, ids: &[SlotId]) -> Result<Vec<Slot>, EngineError> {
        for (i, id) in ids.iter().enumerate() {
            self.get(*id)?;
            if ids[..i].contains(id) {
                return Err(EngineError::Refused(Words::tr_args(
                    "engine-slot-twice",
                    "slot { $slot } is named twice: load each model to compare into its own slot",
                    &[("slot", id)],
                )));
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| self.0[*id as usize].take())
            .collect())
    }

    /// Puts back what [`Slots::take`] took.
    fn put_back(&mut self, ids: &[SlotId], taken: Vec<Slot>) {
        for (id, slot) in ids.iter().zip(taken) {
            self.0[*id as usize] = Some(slot);
        }
    }

    fn get(&mut self, slot: SlotId) -> Result<&mut Slot, EngineError> {
        match self.0.get_mut(slot as usize) {
            None => Err(EngineError::BadSlot { slot }),
            Some(None) => Err(EngineError::NoModel { slot }),
            Some(Some(s)) => Ok(s),
        }
    }
}

/// `current`: the request being served, for the panic handler of [`run`].
fn serve(inbox: &mut Inbox, emit: &Emit, current: &std::cell::Cell<Option<RequestId>>) {
    let mut slots = Slots((0..MAX_SLOTS).map(|_| None).collect());
    while let Some(cmd) = inbox.next() {
        match cmd {
            Command::Shutdown => return,
            Command::Load {
                request,
                slot,
                model,
                settings,
            } => {
                current.set(Some(request));
                let event = load(&mut slots, request, slot, &model, &settings, inbox, emit);
                current.set(None);
                emit(event);
                inbox.cancellations().finish(request);
            }
            Command::Unload { slot } => {
                if let Some(s) = slots.0.get_mut(slot as usize) {
                    *s = None;
                }
            }
            Command::Generate { request, slot, req } => {
                current.set(Some(request));
                super::crash::test_panic("generate");
                let event = serve_in(&mut slots, request, slot, inbox, |s, inbox| {
                    generate::generate(s, slot, request, &req, inbox, emit)
                });
                current.set(None);
                emit(event);
                // Controls it never read (it ended first) go with it.
                inbox.finish(request);
            }
            Command::Score { request, slot, req } => {
                current.set(Some(request));
                let event = serve_in(&mut slots, request, slot, inbox, |s, inbox| {
                    score::score(s, request, &req, inbox, emit)
                });
                current.set(None);
                emit(event);
                inbox.finish(request);
            }
            Command::ScorePrompt { request, slot, req } => {
                current.set(Some(request));
                let event = serve_in(&mut slots, request, slot, inbox, |s, inbox| {
                    prompt_scores::serve(s, request, &req, inbox, emit)
                });
                current.set(None);
                emit(event);
                inbox.finish(request);
            }
            Command::AskText { request, slot, req } => {
                current.set(Some(request));
                let event = serve_in(&mut slots, request, slot, inbox, |s, _| {
                    text_answer::serve(s, request, &req, emit)
                });
                current.set(None);
                emit(event);
                inbox.finish(request);
            }
            Command::Lens { request, slot, req } => {
                current.set(Some(request));
                let event = serve_in(&mut slots, request, slot, inbox, |s, inbox| {
                    lens_request::serve(s, request, &req, inbox, emit)
                });
                current.set(None);
                emit(event);
                inbox.finish(request);
            }
            Command::KvCost { request, slot, req } => {
                current.set(Some(request));
                let event = serve_in(&mut slots, request, slot, inbox, |s, inbox| {
                    kv_cost::serve(s, request, &req, inbox, emit)
                });
                current.set(None);
                emit(event);
                inbox.finish(request);
            }
            Command::Rollouts { request, slot, req } => {
                current.set(Some(request));
                let event = serve_in(&mut slots, request, slot, inbox, |s, inbox| {
                    rollouts::serve(s, request, &req, inbox, emit)
                });
                current.set(None);
                emit(event);
                inbox.finish(request);
            }
            Command::Compare { request, req } => {
                current.set(Some(request));
                let event = if inbox.is_cancelled(request) {
                    Event::Cancelled {
                        request,
                        stats: None,
                    }
                } else {
                    match slots.take(&req.slots) {
                        Ok(mut taken) => {
                            let outcome = compare::compare(&mut taken, request, &req, inbox, emit);
                            slots.put_back(&req.slots, taken);
                            outcome.into_event(request)
                        }
                        Err(error) => Event::Failed { request, error },
                    }
                };
                current.set(None);
                emit(event);
                inbox.finish(request);
            }
            Command::Steer { request, .. } | Command::Cancel { request } => {
                tracing::debug!(request, "control for no request being served: ignored");
            }
        }
    }
}

fn load(
    slots: &mut Slots,
    request: RequestId,
    slot: SlotId,
    model: &ModelRef,
    settings: &LoadSettings,
    inbox: &Inbox,
    emit: &Emit,
) -> Event {
    if slot >= MAX_SLOTS {
        let error = EngineError::BadSlot { slot };
        return Event::Failed { request, error };
    }
    let Some(path) = model.local_path() else {
        let error = EngineError::Refused(Words::tr_args(
            "engine-server-model",
            "{ $model } is a server's model: the local engine loads model files",
            &[("model", model)],
        ));
        return Event::Failed { request, error };
    };
    if inbox.is_cancelled(request) {
        return Event::Cancelled {
            request,
            stats: None,
        };
    }
    let progress_emit = emit.clone();
    let cancel = inbox.cancellations().clone();
    let mut last = -1i32;
    let result = slot::load(path, settings, move |f| {
        let pct = (f * 100.0) as i32;
        if pct != last {
            last = pct;
            progress_emit(Event::LoadProgress {
                request,
                fraction: f,
            });
        }
        // Returning false aborts the load.
        !cancel.is_cancelled(request)
    });
    // Given up on, even if it finished: keep the model in use.
    if inbox.is_cancelled(request) {
        return Event::Cancelled {
            request,
            stats: None,
        };
    }
    match result {
        Ok(mut new) => {
            prompt::describe_chat(&mut new);
            let caps = Capabilities {
                score_after: prompt_scores::supported(new.model()),
                ..Capabilities::local()
            };
            let info = Box::new(new.info.clone());
            let vocab = new.vocab.clone();
            // The old model goes only once the new one is usable.
            slots.0[slot as usize] = Some(new);
            Event::Loaded {
                request,
                slot,
                info,
                vocab,
                caps,
            }
        }
        Err(error) => Event::Failed { request, error },
    }
}

/// Serves request `request` on `slot` with `serve` (a generation or a
/// scoring): cancelled before it starts, failed on a slot with no model.
fn serve_in(
    slots: &mut Slots,
    request: RequestId,
    slot: SlotId,
    inbox: &mut Inbox,
    serve: impl FnOnce(&mut Slot, &mut Inbox) -> Outcome,
) -> Event {
    if inbox.is_cancelled(request) {
        return Event::Cancelled {
            request,
            stats: None,
        };
    }
    match slots.get(slot) {
        Ok(s) => serve(s, inbox).into_event(request),
        Err(error) => Event::Failed { request, error },
    }
}
