//! The worker's inbox: the commands it reads, the requests queued behind the
//! one being served, and what that one is told to do between tokens
//! ([`Control`]). Shared by every kind of request the worker serves.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use super::api::{
    AskTextRequest, Command, Event, LensRequest, PromptScoreRequest, RequestId, RolloutRequest,
    SlotId, Steer,
};
use super::cancel::Cancellations;

pub(super) type Emit = Rc<dyn Fn(Event) -> bool>;

/// What the request being served is told between tokens.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Control {
    /// What it does next, as the caller said.
    Steer(Steer),
    /// Cancelled, or superseded by a new request while paused.
    Stop,
    /// A prompt scoring sent while paused, for the paused reply's slot:
    /// served inside the pause ([`Command::ScorePrompt`]).
    ScorePrompt {
        request: RequestId,
        req: Box<PromptScoreRequest>,
    },
    /// Rollouts sent while paused, for the paused reply's slot: served
    /// inside the pause from its next step ([`Command::Rollouts`]).
    Rollouts {
        request: RequestId,
        req: Box<RolloutRequest>,
    },
    /// A layer lens sent while paused, for the paused reply's slot: served
    /// inside the pause ([`Command::Lens`]; the lens has contexts of its own,
    /// so the reply's KV cache and logits are untouched).
    Lens {
        request: RequestId,
        req: Box<LensRequest>,
    },
    /// A question about a text sent while paused, for the paused reply's
    /// slot: served inside the pause ([`Command::AskText`]).
    AskText {
        request: RequestId,
        req: Box<AskTextRequest>,
    },
}

/// The worker's commands: the channel, plus requests that arrived while
/// another was being served (kept for later, in order).
pub(super) struct Inbox {
    rx: Receiver<Command>,
    queued: VecDeque<Command>,
    /// Steers sent for a request still queued (e.g. a branch's forced
    /// text right behind its request): theirs once it is served.
    early: VecDeque<(RequestId, Steer)>,
    cancel: Arc<Cancellations>,
}

impl Inbox {
    pub(super) fn new(rx: Receiver<Command>, cancel: Arc<Cancellations>) -> Self {
        Inbox {
            rx,
            queued: VecDeque::new(),
            early: VecDeque::new(),
            cancel,
        }
    }

    /// The cancellation flags this inbox reads.
    pub(super) fn cancellations(&self) -> &Arc<Cancellations> {
        &self.cancel
    }

    /// Forgets `request`, served: its cancellation flag and the controls it
    /// never read (it ended first).
    pub(super) fn finish(&mut self, request: RequestId) {
        self.cancel.finish(request);
        self.early.retain(|(r, _)| *r != request);
    }

    /// Takes every request still waiting (queued, then unread in the
    /// channel), in order: what a crashed worker owes a final event.
    pub(super) fn drain_requests(&mut self) -> Vec<RequestId> {
        let rx = &self.rx;
        self.queued
            .drain(..)
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            .filter_map(|cmd| match cmd {
                Command::Load { request, .. }
                | Command::Generate { request, .. }
                | Command::Score { request, .. }
                | Command::ScorePrompt { request, .. }
                | Command::Compare { request, .. }
                | Command::Rollouts { request, .. }
                | Command::Lens { request, .. } => Some(request),
                _ => None,
            })
            .collect()
    }

    pub fn is_cancelled(&self, request: RequestId) -> bool {
        self.cancel.is_cancelled(request)
    }

    /// The next request to serve (queued first); `None` when every sender is gone.
    pub(super) fn next(&mut self) -> Option<Command> {
        self.queued.pop_front().or_else(|| self.rx.recv().ok())
    }

    /// True when a request `request` waits in the queue.
    fn is_queued(&self, request: RequestId) -> bool {
        // The queue holds requests, `Unload` and `Shutdown` only.
        self.queued.iter().any(|c| c.request() == Some(request))
    }

    /// Controls that came for `request` while it was still queued, in order.
    fn take_early(&mut self, request: RequestId) -> Vec<Control> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.early.drain(..).partition(|(r, _)| *r == request);
        self.early = rest.into();
        mine.into_iter().map(|(_, s)| Control::Steer(s)).collect()
    }

    /// What `request` should act on, if the command says; requests for later
    /// are queued. `paused` (the paused reply's slot): a new request
    /// supersedes the paused one, but a prompt scoring or a lens for its
    /// slot is served inside the pause.
    fn control(
        &mut self,
        request: RequestId,
        cmd: Command,
        paused: Option<SlotId>,
    ) -> Option<Control> {
        match cmd {
            Command::ScorePrompt {
                request: r,
                slot,
                req,
            } if paused == Some(slot) => Some(Control::ScorePrompt {
                request: r,
                req: Box::new(req),
            }),
            Command::Rollouts {
                request: r,
                slot,
                req,
            } if paused == Some(slot) => Some(Control::Rollouts {
                request: r,
                req: Box::new(req),
            }),
            Command::Lens {
                request: r,
                slot,
                req,
            } if paused == Some(slot) => Some(Control::Lens {
                request: r,
                req: Box::new(req),
            }),
            Command::AskText {
                request: r,
                slot,
                req,
            } if paused == Some(slot) => Some(Control::AskText {
                request: r,
                req: Box::new(req),
            }),
            Command::Steer { request: r, steer } if r == request => Some(Control::Steer(steer)),
            Command::Cancel { request: r } if r == request => Some(Control::Stop),
            // The flag is already set; a queued request sees it when its turn comes.
            Command::Cancel { .. } => None,
            Command::Steer { request: r, steer } if self.is_queued(r) => {
                self.early.push_back((r, steer));
                None
            }
            Command::Steer { request: r, .. } => {
                tracing::debug!(
                    request = r,
                    "control for a request not being served: ignored"
                );
                None
            }
            cmd @ (Command::Load { .. }
            | Command::Generate { .. }
            | Command::Score { .. }
            | Command::ScorePrompt { .. }
            | Command::AskText { .. }
            | Command::Rollouts { .. }
            | Command::Compare { .. }
            | Command::Lens { .. }
            | Command::KvCost { .. }
            | Command::Shutdown) => {
                self.queued.push_back(cmd);
                paused.map(|_| Control::Stop)
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
            out.extend(self.control(request, cmd, None));
        }
        out
    }

    /// For a request that gives way (a prompt scoring, between chunks):
    /// true when it was cancelled or another request waits behind it.
    pub(super) fn gives_way(&mut self, request: RequestId) -> bool {
        let stopped = self.poll(request).contains(&Control::Stop);
        stopped
            || self.is_cancelled(request)
            || self
                .queued
                .iter()
                .any(|c| !matches!(c, Command::Unload { .. }))
    }

    /// For a prompt scoring (`scoring`) served inside the pause of
    /// `paused`, between chunks: true when it was cancelled or anything else
    /// came for the worker, so that the pause answers at once. What came is
    /// kept for [`Inbox::wait`]: a steer of the paused reply, a request
    /// (queued), a cancel (its flag).
    pub(super) fn interrupts_pause(&mut self, paused: RequestId, scoring: RequestId) -> bool {
        let mut any = false;
        while let Ok(cmd) = self.rx.try_recv() {
            any = true;
            match cmd {
                Command::Steer { request, steer } if request == paused => {
                    self.early.push_back((paused, steer));
                }
                // Requests are queued; a cancel's flag is already set.
                other => {
                    self.control(paused, other, None);
                }
            }
        }
        any || self.is_cancelled(scoring) || self.is_cancelled(paused)
    }

    /// Waits for a control for the paused `request` on `slot`. A new request
    /// (or the callers all gone) stops it: a paused request never blocks the
    /// queue; a prompt scoring, rollouts or a lens for `slot` are handed
    /// to it to serve instead.
    pub fn wait(&mut self, request: RequestId, slot: SlotId) -> Control {
        if let Some(i) = self.early.iter().position(|(r, _)| *r == request) {
            return self
                .early
                .remove(i)
                .map(|(_, s)| Control::Steer(s))
                .unwrap_or(Control::Stop);
        }
        // A prompt scoring, rollouts, a lens or a question about a text
        // queued while the reply ran (or while something else was served in
        // the pause) are served in the pause.
        let in_pause = self.queued.iter().position(|c| {
            matches!(c, Command::ScorePrompt { slot: s, .. }
                | Command::Rollouts { slot: s, .. }
                | Command::Lens { slot: s, .. }
                | Command::AskText { slot: s, .. }
                if *s == slot)
        });
        if let Some(i) = in_pause {
            match self.queued.remove(i) {
                Some(Command::ScorePrompt { request, req, .. }) => {
                    return Control::ScorePrompt {
                        request,
                        req: Box::new(req),
                    };
                }
                Some(Command::Rollouts { request, req, .. }) => {
                    return Control::Rollouts {
                        request,
                        req: Box::new(req),
                    };
                }
                Some(Command::Lens { request, req, .. }) => {
                    return Control::Lens {
                        request,
                        req: Box::new(req),
                    };
                }
                Some(Command::AskText { request, req, .. }) => {
                    return Control::AskText {
                        request,
                        req: Box::new(req),
                    };
                }
                // Not reached: `position` found one of the four above.
                Some(other) => self.queued.insert(i, other),
                None => {}
            }
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
            if let Some(c) = self.control(request, cmd, Some(slot)) {
                return c;
            }
        }
    }
}
