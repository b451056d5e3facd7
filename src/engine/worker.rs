//! The worker loop: the only owner of llama.cpp objects. It serves requests
//! one at a time from its inbox, holding loaded models in slots; during a
//! generation it reads the inbox between tokens (step, force, run, cancel).

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use super::Cancellations;
use super::api::{
    Capabilities, Command, EngineError, Event, LoadSettings, MAX_SLOTS, RequestId, SlotId, TokenId,
};
use super::compare;
use super::generate;
use super::score;
use super::slot::{self, Slot};

pub(super) type Emit = Rc<dyn Fn(Event) -> bool>;

/// What a caller asked of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Control {
    Step,
    Force(TokenId),
    /// Text to tokenize (as plain text) and force.
    ForceText(String),
    Run,
    /// Cancelled, or superseded by a new request while paused.
    Stop,
}

/// The worker's commands: the channel, plus requests that arrived while
/// another was being served (kept for later, in order).
pub(super) struct Inbox {
    rx: Receiver<Command>,
    queued: VecDeque<Command>,
    /// Controls sent for a request still queued (e.g. a branch's forced
    /// text right behind its request): theirs once it is served.
    early: VecDeque<(RequestId, Control)>,
    cancel: Arc<Cancellations>,
}

impl Inbox {
    pub fn is_cancelled(&self, request: RequestId) -> bool {
        self.cancel.is_cancelled(request)
    }

    /// The next request to serve (queued first); `None` when every sender is gone.
    fn next(&mut self) -> Option<Command> {
        self.queued.pop_front().or_else(|| self.rx.recv().ok())
    }

    /// True when a request `request` waits in the queue.
    fn is_queued(&self, request: RequestId) -> bool {
        self.queued.iter().any(|c| {
            matches!(c, Command::Generate { request: r, .. } | Command::Load { request: r, .. } | Command::Score { request: r, .. } | Command::Compare { request: r, .. } if *r == request)
        })
    }

    /// Controls that came for `request` while it was still queued, in order.
    fn take_early(&mut self, request: RequestId) -> Vec<Control> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.early.drain(..).partition(|(r, _)| *r == request);
        self.early = rest.into();
        mine.into_iter().map(|(_, c)| c).collect()
    }

    /// What `request` should act on, if the command says; requests for later
    /// are queued. `paused`: a new request supersedes the paused one.
    fn control(&mut self, request: RequestId, cmd: Command, paused: bool) -> Option<Control> {
        match cmd {
            Command::Step { request: r } if r == request => Some(Control::Step),
            Command::Force { request: r, token } if r == request => Some(Control::Force(token)),
            Command::ForceText { request: r, text } if r == request => {
                Some(Control::ForceText(text))
            }
            Command::Run { request: r } if r == request => Some(Control::Run),
            Command::Cancel { request: r } if r == request => Some(Control::Stop),
            // The flag is already set; a queued request sees it when its turn comes.
            Command::Cancel { .. } => None,
            Command::Step { request: r } if self.is_queued(r) => {
                self.early.push_back((r, Control::Step));
                None
            }
            Command::Force { request: r, token } if self.is_queued(r) => {
                self.early.push_back((r, Control::Force(token)));
                None
            }
            Command::ForceText { request: r, text } if self.is_queued(r) => {
                self.early.push_back((r, Control::ForceText(text)));
                None
            }
            Command::Run { request: r } if self.is_queued(r) => {
                self.early.push_back((r, Control::Run));
                None
            }
            Command::Step { request: r }
            | Command::Force { request: r, .. }
            | Command::ForceText { request: r, .. }
            | Command::Run { request: r } => {
                tracing::debug!(
                    request = r,
                    "control for a request not being served: ignored"
                );
                None
            }
            cmd @ (Command::Load { .. }
            | Command::Generate { .. }
            | Command::Score { .. }
            | Command::Compare { .. }
            | Command::Shutdown) => {
                self.queued.push_back(cmd);
                paused.then_some(Control::Stop)
            }
            cmd @ Command::Unload { .. } => {
                self.queued.push_back(cmd);
                None
            }
        }
    }

    /// Controls for `request` sent since the last look, without waiting.
    pub fn poll(&mut self, request: RequestId) -> Vec<Control> {
        let mut out = self.take_early(request);
        while let Ok(cmd) = self.rx.try_recv() {
            out.extend(self.control(request, cmd, false));
        }
        out
    }

    /// Waits for a control for the paused `request`. A new request (or the
    /// callers all gone) stops it: a paused request never blocks the queue.
    pub fn wait(&mut self, request: RequestId) -> Control {
        if let Some(i) = self.early.iter().position(|(r, _)| *r == request) {
            return self
                .early
                .remove(i)
                .map(|(_, c)| c)
                .unwrap_or(Control::Stop);
        }
        if self
            .queued
            .iter()
            .any(|c| !matches!(c, Command::Unload { .. }))
        {
            return Control::Stop;
        }
        loop {
            let Ok(cmd) = self.rx.recv() else {
                return Control::Stop;
            };
            if let Some(c) = self.control(request, cmd, true) {
                return c;
            }
        }
    }
}

pub(super) fn run(
    rx: Receiver<Command>,
    cancel: Arc<Cancellations>,
    emit: impl Fn(Event) -> bool + 'static,
) {
    let emit: Emit = Rc::new(emit);
    let current = Rc::new(std::cell::Cell::new(None));
    let mut inbox = Inbox {
        rx,
        queued: VecDeque::new(),
        early: VecDeque::new(),
        cancel,
    };
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
        let waiting = inbox
            .queued
            .drain(..)
            .chain(std::iter::from_fn(|| inbox.rx.try_recv().ok()))
            .filter_map(|cmd| match cmd {
                Command::Load { request, .. }
                | Command::Generate { request, .. }
                | Command::Score { request, .. }
                | Command::Compare { request, .. } => Some(request),
                _ => None,
            });
        for request in current.get().into_iter().chain(waiting.collect::<Vec<_>>()) {
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
                return Err(EngineError::InvalidRequest(format!(
                    "slot {id} is named twice: load each model to compare into its own slot"
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
                path,
                settings,
            } => {
                current.set(Some(request));
                let event = load(&mut slots, request, slot, &path, &settings, inbox, emit);
                current.set(None);
                emit(event);
                inbox.cancel.finish(request);
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
                    generate::generate(s, request, &req, inbox, emit)
                });
                current.set(None);
                emit(event);
                inbox.cancel.finish(request);
                // Controls it never read (it ended first) go with it.
                inbox.early.retain(|(r, _)| *r != request);
            }
            Command::Score { request, slot, req } => {
                current.set(Some(request));
                let event = serve_in(&mut slots, request, slot, inbox, |s, inbox| {
                    score::score(s, request, &req, inbox, emit)
                });
                current.set(None);
                emit(event);
                inbox.cancel.finish(request);
                inbox.early.retain(|(r, _)| *r != request);
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
                inbox.cancel.finish(request);
                inbox.early.retain(|(r, _)| *r != request);
            }
            Command::Step { request }
            | Command::Force { request, .. }
            | Command::ForceText { request, .. }
            | Command::Run { request }
            | Command::Cancel { request } => {
                tracing::debug!(request, "control for no request being served: ignored");
            }
        }
    }
}

fn load(
    slots: &mut Slots,
    request: RequestId,
    slot: SlotId,
    path: &std::path::Path,
    settings: &LoadSettings,
    inbox: &Inbox,
    emit: &Emit,
) -> Event {
    if slot >= MAX_SLOTS {
        let error = EngineError::BadSlot { slot };
        return Event::Failed { request, error };
    }
    if inbox.is_cancelled(request) {
        return Event::Cancelled {
            request,
            stats: None,
        };
    }
    let progress_emit = emit.clone();
    let cancel = inbox.cancel.clone();
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
        Ok(new) => {
            let info = Box::new(new.info.clone());
            let vocab = new.vocab.clone();
            // The old model goes only once the new one is usable.
            slots.0[slot as usize] = Some(new);
            Event::Loaded {
                request,
                slot,
                info,
                vocab,
                caps: Capabilities::local(),
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
    serve: impl FnOnce(&mut Slot, &mut Inbox) -> generate::Outcome,
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
