//! The session part of [`State`]: the model being loaded ([`Loading`]), the
//! reply under way ([`Generation`], its [`Phase`]), its tokens landing in the
//! conversation and the chat, and the requests that start one.

use super::view::{drawn_text, message_block};
use super::{Message, State};
use crate::conversation::{Conversation, NodeId};
use crate::engine::{Distribution, GenerateRequest, ModelRef, RequestId, Stats, TokenStep};
use crate::tui::wrap::Tag;

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Sent; the engine has not started it (it may be loading a model).
    Waiting,
    Prefill {
        done: usize,
        total: usize,
    },
    Generating,
    /// Step mode: waiting for the user to draw, force or run. `next` is the
    /// model's distribution for the next token (`None` with the inspector off).
    Paused {
        next: Option<Box<Distribution>>,
    },
    /// Stop requested; waiting for the engine's final event.
    Cancelling,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub request: RequestId,
    /// Chat position of the reply being written (the chat cannot switch
    /// branches while it is).
    pub msg: usize,
    /// Its node.
    pub node: NodeId,
    /// Steps asked for while one was under way (each press is one token).
    pub steps_queued: u32,
    /// The node of each message of the request (the root for the system prompt).
    pub turns: Vec<NodeId>,
    /// For each prompt position, the prompt turn and token it is (None for
    /// replies' tokens and what follows the last message): where the
    /// prompt's scores go.
    pub positions: Vec<Option<(NodeId, usize)>>,
    pub phase: Phase,
    pub n_prompt: usize,
    pub n_reused: usize,
    /// Of the prompt, the reply's own tokens given back (a branch, a
    /// continued reply): they are among its steps already.
    pub n_prefix: usize,
    /// Its time to the first token and speed so far, for the status bar.
    pub live: crate::tui::live::LiveStats,
}

/// The prompt's surprise scored after the reply ([`crate::tui::prompt_scoring`]):
/// the last reply's prompt and the scoring in flight.
#[derive(Debug, Default, Clone)]
pub struct PromptScoring {
    /// The last reply's prompt: its token ids as the model was fed them, and
    /// where each position's score goes (see [`Generation::positions`]).
    pub last: Option<(
        Vec<crate::engine::TokenId>,
        crate::conversation::PromptPlaces,
    )>,
    /// The scoring request in flight, with the places of its prompt.
    pub in_flight: Option<(RequestId, crate::conversation::PromptPlaces)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Loading {
    pub request: RequestId,
    pub model: ModelRef,
    pub fraction: f32,
    /// Reloading the model a crashed engine process held: what crashed, said
    /// again (ending well) when the load ends.
    pub restore: Option<String>,
    /// The user asked to stop it (Esc); a second Esc restarts the engine.
    pub cancelling: bool,
}

/// The session part of [`State`]: the conversation, saving it, the reply
/// under way and the load.
pub struct Session {
    /// Every turn ever written, alternatives included.
    pub conv: Conversation,
    /// Its id in the conversations database, once saved.
    pub conv_id: Option<crate::store::ConvId>,
    /// The last save failed (a notice said so); the next one that works says so too.
    pub save_failed: bool,
    /// Why saving is off for this session (the database can only be read:
    /// a read-only data directory); the status bar says "saving off".
    pub saving_off: Option<String>,
    /// Ctrl-N was pressed once on a conversation not saved: a second press drops it.
    pub new_chat_armed: bool,
    /// The user message being edited in the input box (sent as a new version of it).
    pub editing: Option<NodeId>,
    /// Step mode: replies start paused and go one token per key.
    pub step_mode: bool,
    /// Replies run to the next surprise (F7's third mode; `config.surprise`
    /// says what one is) and pause there as in step mode.
    pub to_surprise: bool,
    pub load: Option<Loading>,
    pub generation: Option<Generation>,
    /// The prompt's surprise, scored after each reply.
    pub prompt_scoring: PromptScoring,
    /// Where each position of the prompt of each reply generated this
    /// session belongs (a turn's token, or template scaffolding): the layer
    /// lens maps its positions onto the chat with it.
    pub prompt_places:
        std::collections::HashMap<crate::conversation::NodeId, crate::conversation::PromptPlaces>,
    /// The last engine request id drawn ([`Session::new_request`]; ids start at 1).
    pub last_request: RequestId,
    /// The engine's numbers for the last reply that ended.
    pub last_stats: Option<Stats>,
    /// When the message being handled arrived: the loop sets it before each
    /// `update` (tests set it to scripted times). The reply under way's live
    /// numbers ([`Generation::live`]) are measured with it, so that `update`
    /// reads no clock.
    pub clock: std::time::Instant,
}

impl Session {
    pub fn is_generating(&self) -> bool {
        self.generation.is_some()
    }

    /// A new engine request id, for a load, a reply or a comparison about to
    /// be asked for: `update` draws it (the effect carries it), so a request
    /// is known by its id from the start. Ids count up from 1.
    pub fn new_request(&mut self) -> RequestId {
        self.last_request += 1;
        self.last_request
    }
}

impl State {
    /// Adds a turn after the last one shown.
    pub fn push_message(&mut self, m: Message) -> usize {
        let id = self.session.conv.append(m);
        self.view.path.push(id);
        let i = self.view.path.len() - 1;
        self.view
            .chat
            .blocks
            .push(message_block(&self.session.conv, id, self.view.chat.width));
        i
    }

    /// Appends a generated token to node `id` (rewrapping it when shown at `i`).
    pub fn push_step(&mut self, id: NodeId, step: TokenStep) {
        let m = self.session.conv.node_mut(id);
        let n = m.steps.len() as u32;
        let text = drawn_text(m, &step).into_owned();
        m.push_step(step);
        let Some(i) = self.msg_index(id) else {
            return;
        };
        if n == 0 {
            self.relayout_message(i);
        } else {
            let b = self.view.chat.block_of(i);
            self.view.chat.blocks[b].push_str(&text, Tag::Token(n));
        }
    }

    /// Ends node `id` with `text` (see [`crate::engine::Event::Tail`]).
    pub fn push_tail(&mut self, id: NodeId, text: &str) {
        self.session.conv.node_mut(id).push_tail(text);
        if let Some(i) = self.msg_index(id) {
            self.relayout_message(i);
        }
    }

    /// What requests take from the settings (`paused` in step mode).
    /// Candidates are kept for the what-if view and branching: all
    /// [`crate::engine::MAX_CANDIDATES`] of them (the inspector shows
    /// `inspector_top_k`), none with the inspector off.
    pub fn request_settings(&self) -> crate::conversation::RequestSettings {
        let keep = if self.config.inspector_top_k > 0 {
            crate::engine::MAX_CANDIDATES
        } else {
            0
        };
        crate::conversation::RequestSettings {
            paused: self.session.step_mode,
            stop_at_surprise: self.session.to_surprise.then_some(self.config.surprise),
            top_k_inspect: keep,
            // The prompt's own surprise, shown on the user's messages:
            // scored after the reply (`prompt_scoring`), never delaying it;
            // during prefill only where it cannot be (a recurrent model).
            score_prompt: keep > 0
                && self
                    .model
                    .caps
                    .as_ref()
                    .is_some_and(|c| c.score && !c.score_after),
            ..self.config.request_settings(self.raw)
        }
    }

    /// The request that generates (the rest of) reply `id`.
    pub fn generate_request(&self, id: NodeId) -> GenerateRequest {
        self.session.conv.request(id, &self.request_settings())
    }
}
