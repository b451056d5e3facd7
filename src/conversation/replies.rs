//! The rules of a reply's life in the tree, one place for every front end
//! (the TUI, `run`, tests): a new reply and its seed, starting a run (what it
//! is generated under), where the prompt the engine fed belongs (each prompt
//! turn's tokens and context tail, then their scores), and ending a run (an
//! empty version that ended early goes).

use std::sync::Arc;

use super::request::RequestSettings;
use super::tree::{Conversation, Node, NodeId, Status};
use crate::engine::{GenerateRequest, PromptToken, Role, Stats, TokenId, TokenStep, Vocab};

/// Fewest prompt ids a reply keeps before it ([`Node::context_tail`]),
/// whatever the repeat penalty's window: a what-if with a longer window
/// still sees them, and a tail shorter than this is the whole prompt.
pub const CONTEXT_TAIL_MIN: usize = 1024;

/// How many prompt ids before a turn its context tail keeps under a repeat
/// penalty window of `repeat_last_n` tokens: the window, at least
/// [`CONTEXT_TAIL_MIN`].
pub fn context_tail_len(repeat_last_n: u32) -> usize {
    (repeat_last_n as usize).max(CONTEXT_TAIL_MIN)
}

/// Who writes a new reply: the model in use (its name and vocabulary, when
/// known) and the base seed of the settings (each reply draws its own from
/// it, see [`Conversation::seed_for_child`]).
#[derive(Debug, Clone)]
pub struct Writer {
    pub model: Option<String>,
    pub vocab: Option<Arc<Vocab>>,
    pub base_seed: u32,
}

/// Where each position of a prompt the engine fed belongs: `Some((turn,
/// step))` for a token of a prompt turn (a user message, the system prompt
/// on the root), `None` for the template's opening of the reply, a BOS, or a
/// reply's own tokens. Index `i` is prompt position `i`.
pub type PromptPlaces = Vec<Option<(NodeId, usize)>>;

impl Conversation {
    /// Adds a new, empty reply under `parent` by `by`, with the seed of its
    /// place among its siblings, and shows it.
    pub fn add_reply(&mut self, parent: NodeId, by: &Writer) -> NodeId {
        let mut node = Node::assistant(by.model.clone(), by.vocab.clone());
        node.seed = Some(self.seed_for_child(parent, by.base_seed));
        self.add_child(parent, node)
    }

    /// [`Conversation::branch`] of reply `id` written by `by`: the new
    /// version takes the model in use and the seed of its place among its
    /// siblings.
    pub fn branch_reply(
        &mut self,
        id: NodeId,
        at: usize,
        chosen: Option<TokenId>,
        by: &Writer,
    ) -> NodeId {
        let parent = self.node(id).parent().unwrap_or_default();
        let seed = self.seed_for_child(parent, by.base_seed);
        let new = self.branch(id, at, chosen);
        let m = self.node_mut(new);
        m.seed = Some(seed);
        m.model = by.model.clone();
        m.vocab = by.vocab.clone();
        new
    }

    /// A sibling of reply `id` that keeps its first `at` tokens and goes on
    /// with `steps`, tokens drawn elsewhere (a rollout) with their traces,
    /// kept as they are: nothing is evaluated again. Their indices follow
    /// `at`, and their text is assembled anew after the kept tokens' bytes
    /// (a character split across the fork is whole; bytes left unfinished
    /// at the end are its tail). It is written under `id`'s settings (its
    /// sampling with `seed`, its system prompt and context tail) by `by`,
    /// and is done: it can be continued. Shown in place of `id`.
    pub fn branch_with_steps(
        &mut self,
        id: NodeId,
        at: usize,
        steps: Vec<TokenStep>,
        seed: u32,
        by: &Writer,
    ) -> NodeId {
        let new = self.branch(id, at, None);
        let orig = self.node(id);
        let (sampling, system, tail) = (
            orig.sampling
                .clone()
                .map(|s| crate::engine::SamplingParams { seed, ..s }),
            orig.system.clone(),
            orig.context_tail.clone(),
        );
        let m = self.node_mut(new);
        m.model = by.model.clone();
        m.vocab = by.vocab.clone().or_else(|| m.vocab.take());
        m.seed = Some(seed);
        m.sampling = sampling;
        m.system = system;
        m.context_tail = tail;
        let vocab = m.vocab.clone();
        let mut utf8 = crate::text::Utf8Assembler::default();
        let mut bytes_of = |id: TokenId| -> Option<String> {
            let v = vocab.as_ref()?;
            Some(if v.is_eog(id) {
                String::new()
            } else {
                utf8.push(v.bytes(id))
            })
        };
        for st in &m.steps {
            bytes_of(st.id);
        }
        for (i, mut st) in steps.into_iter().enumerate() {
            st.index = at + i;
            if let Some(text) = bytes_of(st.id) {
                st.text = text;
            }
            m.push_step(st);
        }
        if vocab.is_some() {
            let rest = utf8.finish();
            if !rest.is_empty() {
                m.push_tail(&rest);
            }
        }
        m.status = Status::Done;
        new
    }

    /// Starts a run of reply `id` (a fresh one, a branch, one continued):
    /// the request that generates the rest of it. The reply goes on from its
    /// tokens' bytes (a tail shown for them goes), is streaming, forgets the
    /// stats of an earlier run, and records what this run is generated
    /// under (its sampling, and the system prompt whatever it becomes).
    pub fn start_reply(&mut self, id: NodeId, settings: &RequestSettings) -> GenerateRequest {
        self.node_mut(id).drop_tail();
        let req = self.request(id, settings);
        let system = req.messages.first().filter(|c| c.role == Role::System);
        let m = self.node_mut(id);
        m.sampling = Some(req.sampling.clone());
        m.system = Some(system.map_or(String::new(), |c| c.content.clone()));
        m.status = Status::Streaming;
        m.stats = None;
        req
    }

    /// The engine started reply `id` from `prompt` (its ids as fed): the
    /// last of them are kept as what the repeat penalty (window
    /// `repeat_last_n`) saw before the reply, and a comparison made of an
    /// earlier run goes (it no longer covers all of the prompt).
    pub fn reply_prompt(&mut self, id: NodeId, prompt: &[TokenId], repeat_last_n: u32) {
        let tail = context_tail_len(repeat_last_n);
        let m = self.node_mut(id);
        m.context_tail = prompt[prompt.len().saturating_sub(tail)..].to_vec();
        m.comparison = None;
    }

    /// The model that really writes reply `id` (the engine serves in order:
    /// the one loaded last, perhaps after the request was made). True when
    /// the reply's model name changed.
    pub fn set_writer(
        &mut self,
        id: NodeId,
        model: Option<String>,
        vocab: Option<Arc<Vocab>>,
    ) -> bool {
        let m = self.node_mut(id);
        m.vocab = vocab;
        let changed = m.model != model;
        if changed {
            m.model = model;
        }
        changed
    }

    /// Gives each prompt turn of `turns` (the nodes of the request's
    /// messages, [`Conversation::turns_before`]) its tokens from `prompt` as
    /// the model was fed them (texts from `vocab`; see
    /// [`Conversation::set_prompt_tokens`]) and its context tail (the
    /// prompt ids before its first token, as many as
    /// [`context_tail_len`]`(repeat_last_n)`). Replies' tokens are theirs
    /// already. Returns where each prompt position belongs (for
    /// [`Conversation::apply_prompt_scores`]) and the turns whose tokens
    /// changed (or were set for the first time).
    pub fn place_prompt(
        &mut self,
        turns: &[NodeId],
        prompt: &[PromptToken],
        vocab: &Arc<Vocab>,
        repeat_last_n: u32,
    ) -> (PromptPlaces, Vec<NodeId>) {
        let mut by_turn: Vec<Vec<TokenId>> = vec![Vec::new(); turns.len()];
        // Each turn's first prompt position: what came before it is the repeat
        // penalty's history for a what-if on its tokens.
        let mut first: Vec<Option<usize>> = vec![None; turns.len()];
        let mut places = Vec::with_capacity(prompt.len());
        for (pos, t) in prompt.iter().enumerate() {
            let slot = t.message.map(|m| m as usize).filter(|&m| m < turns.len());
            places.push(slot.map(|m| {
                by_turn[m].push(t.id);
                first[m].get_or_insert(pos);
                (turns[m], by_turn[m].len() - 1)
            }));
        }
        let tail_len = context_tail_len(repeat_last_n);
        let mut changed = Vec::new();
        for (m, ids) in by_turn.iter().enumerate() {
            let id = turns[m];
            if self.node(id).role == Role::Assistant {
                continue;
            }
            let before = self.node(id).steps.len();
            self.set_prompt_tokens(id, ids, vocab);
            if let Some(p) = first[m] {
                self.node_mut(id).context_tail = prompt[p.saturating_sub(tail_len)..p]
                    .iter()
                    .map(|t| t.id)
                    .collect();
            }
            if before != self.node(id).steps.len() || before == 0 {
                changed.push(id);
            }
        }
        // Replies' tokens are theirs already: only prompt turns take scores.
        let places = places
            .into_iter()
            .map(|p| p.filter(|(id, _)| self.node(*id).role != Role::Assistant))
            .collect();
        (places, changed)
    }

    /// Scores of prompt positions ([`crate::engine::Event::PromptScores`],
    /// `steps[i].index` a prompt position) onto the prompt turns' tokens
    /// that `places` ([`Conversation::place_prompt`]) says they are; a
    /// score whose token is not the one placed there is left out. Returns
    /// the turns that took scores, each once, in the order first touched.
    pub fn apply_prompt_scores(
        &mut self,
        places: &[Option<(NodeId, usize)>],
        steps: Vec<TokenStep>,
    ) -> Vec<NodeId> {
        let mut touched = Vec::new();
        for st in steps {
            let Some(&Some((node, i))) = places.get(st.index) else {
                continue;
            };
            if let Some(t) = self.node_mut(node).steps.get_mut(i)
                && t.id == st.id
            {
                t.dist = st.dist;
                t.logit = st.logit;
                if !touched.contains(&node) {
                    touched.push(node);
                }
            }
        }
        touched
    }

    /// Sets reply `id` aside where it stands, as stopped (a paused reply
    /// given up for another action): kept even when empty, unlike
    /// [`Conversation::finish_reply`].
    pub fn stop_reply(&mut self, id: NodeId) {
        self.node_mut(id).status = Status::Stopped;
    }

    /// Ends reply `id` with `status` (and its run's `stats`, when known). A
    /// version that ended before its first token (stopped, failed) holds
    /// nothing and would hide its siblings: when it has any, it goes and the
    /// version before it is shown again. Returns true when it went.
    pub fn finish_reply(&mut self, id: NodeId, status: Status, stats: Option<Stats>) -> bool {
        let m = self.node_mut(id);
        if let Some(stats) = stats {
            m.stats = Some(stats);
        }
        let empty = m.steps.is_empty() && status != Status::Done;
        m.status = status;
        empty && self.sibling_pos(id).1 > 1 && self.discard(id).is_some()
    }

    /// The turns a chat shows: the root first when the system prompt is not
    /// blank (a blank one is none, see [`Conversation::system`]), so its
    /// tokens are addressed like any turn's, then the active path.
    pub fn shown(&self) -> Vec<NodeId> {
        let mut p = self.path();
        if self.system().is_some() {
            p.insert(0, super::tree::ROOT);
        }
        p
    }

    /// The whole prompt reply `id` answered, when its context tail holds
    /// all of it (fewer ids than [`CONTEXT_TAIL_MIN`]: a longer prompt
    /// keeps only its last ones).
    pub fn whole_prompt_of(&self, id: NodeId) -> Option<&[TokenId]> {
        let tail = &self.node(id).context_tail;
        (!tail.is_empty() && tail.len() < CONTEXT_TAIL_MIN).then_some(tail.as_slice())
    }

    /// Gives `vocab` (model `name`'s) to the turns of this conversation that lack one:
    /// replies written by that model and the prompt turns they answer. True
    /// when any changed (token texts of candidates are known again).
    pub fn attach_vocab(&mut self, name: &str, vocab: &Arc<Vocab>) -> bool {
        let mut changed = false;
        for i in 0..self.len() {
            let n = self.node(i);
            if n.vocab.is_some() || n.steps.is_empty() {
                continue;
            }
            let by_model = match n.role {
                Role::Assistant => n.model.as_deref() == Some(name),
                _ => n
                    .children()
                    .iter()
                    .any(|&c| self.node(c).model.as_deref() == Some(name)),
            };
            if by_model {
                self.node_mut(i).vocab = Some(vocab.clone());
                changed = true;
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::tests::{step, vocab};
    use super::*;
    use crate::engine::{SamplingParams, StopReason};

    fn writer() -> Writer {
        Writer {
            model: Some("m".into()),
            vocab: Some(vocab()),
            base_seed: 42,
        }
    }

    fn settings() -> RequestSettings {
        RequestSettings {
            raw: false,
            sampling: SamplingParams::default(),
            max_tokens: 16,
            top_k_inspect: 0,
            paused: false,
            score_prompt: false,
            stop_at_surprise: None,
        }
    }

    fn prompt_token(id: TokenId, message: Option<u32>) -> PromptToken {
        PromptToken {
            id,
            message,
            role: None,
        }
    }

    #[test]
    fn a_new_reply_takes_its_writer_and_a_seed_of_its_place() {
        let mut c = Conversation::new(None);
        let u = c.append(Node::user("hi"));
        let seed = c.seed_for_child(u, 42);
        let a = c.add_reply(u, &writer());
        let n = c.node(a);
        assert_eq!((n.role, &n.status), (Role::Assistant, &Status::Streaming));
        assert_eq!(n.model.as_deref(), Some("m"));
        assert_eq!(n.seed, Some(seed));
        assert_eq!(c.path(), vec![u, a]);
        c.node_mut(a).push_step(step(0, 1, " Paris"));
        let b = c.branch_reply(a, 0, None, &writer());
        assert_ne!(
            c.node(b).seed,
            Some(seed),
            "a new version draws its own numbers"
        );
        assert_eq!(c.node(b).model.as_deref(), Some("m"));
        assert_eq!(c.path(), vec![u, b]);
    }

    #[test]
    fn starting_a_run_records_what_it_is_generated_under() {
        let mut c = Conversation::new(Some("be brief"));
        let u = c.append(Node::user("hi"));
        let a = c.add_reply(u, &writer());
        c.node_mut(a).push_step(step(0, 4, ""));
        c.node_mut(a).push_tail("\u{FFFD}");
        c.node_mut(a).status = Status::Stopped;
        let req = c.start_reply(a, &settings());
        let n = c.node(a);
        assert_eq!(
            n.content, "",
            "the tail goes: the reply goes on from its bytes"
        );
        assert_eq!(n.status, Status::Streaming);
        assert_eq!(n.system.as_deref(), Some("be brief"));
        assert_eq!(n.sampling.as_ref().map(|p| p.seed), n.seed);
        assert_eq!(req.sampling.seed, n.seed.unwrap_or_default());
        c.set_system("");
        let req = c.start_reply(a, &settings());
        assert_eq!(c.node(a).system.as_deref(), Some(""), "none");
        assert!(req.messages.iter().all(|m| m.role != Role::System));
    }

    #[test]
    fn a_reply_keeps_the_tail_of_its_prompt() {
        let mut c = Conversation::new(None);
        let u = c.append(Node::user("hi"));
        let a = c.add_reply(u, &writer());
        let prompt: Vec<TokenId> = (0..2000).collect();
        c.reply_prompt(a, &prompt, 64);
        assert_eq!(
            c.node(a).context_tail.len(),
            CONTEXT_TAIL_MIN,
            "at least 1024"
        );
        assert_eq!(c.node(a).context_tail.last(), Some(&1999));
        assert_eq!(c.whole_prompt_of(a), None, "only the last ids are known");
        c.reply_prompt(a, &prompt, 1500);
        assert_eq!(c.node(a).context_tail.len(), 1500, "the penalty's window");
        c.reply_prompt(a, &[7, 8], 64);
        assert_eq!(c.whole_prompt_of(a), Some(&[7, 8][..]));
        assert!(c.set_writer(a, Some("other".into()), None));
        assert!(!c.set_writer(a, Some("other".into()), None));
    }

    #[test]
    fn prompt_turns_take_their_tokens_then_their_scores() {
        let v = vocab();
        let mut c = Conversation::new(Some("sys"));
        let u = c.append(Node::user("x Paris"));
        let a = c.add_reply(u, &writer());
        // The system prompt (3), the user turn (3, 1), the reply's opening (2).
        let turns = c.turns_before(a);
        assert_eq!(turns, vec![0, u]);
        let prompt = [
            prompt_token(3, Some(0)),
            prompt_token(3, Some(1)),
            prompt_token(1, Some(1)),
            prompt_token(2, None),
        ];
        let (places, changed) = c.place_prompt(&turns, &prompt, &v, 64);
        assert_eq!(places, vec![Some((0, 0)), Some((u, 0)), Some((u, 1)), None]);
        assert_eq!(changed, vec![0, u]);
        assert_eq!(c.node(u).ids(), vec![3, 1]);
        assert_eq!(
            c.node(u).context_tail,
            vec![3],
            "the prompt before its first token"
        );
        let (_, changed) = c.place_prompt(&turns, &prompt, &v, 64);
        assert!(changed.is_empty(), "the same tokens again");
        // A score whose token is not the one placed there is left out.
        let touched = c.apply_prompt_scores(&places, vec![step(2, 1, " Paris"), step(1, 2, "")]);
        assert_eq!(touched, vec![u]);
        assert!(c.node(u).steps[1].dist.is_some());
        assert!(c.node(u).steps[0].dist.is_none());
    }

    #[test]
    fn an_empty_version_that_ended_early_goes() {
        let mut c = Conversation::new(None);
        let u = c.append(Node::user("hi"));
        let a = c.add_reply(u, &writer());
        c.node_mut(a).push_step(step(0, 1, " Paris"));
        assert!(!c.finish_reply(a, Status::Done, None));
        let b = c.branch_reply(a, 0, None, &writer());
        assert!(
            c.finish_reply(b, Status::Stopped, None),
            "empty, with a sibling"
        );
        assert_eq!(c.path(), vec![u, a]);
        // The only version stays, empty or not; so does one set aside.
        let u2 = c.append(Node::user("more"));
        let r = c.add_reply(u2, &writer());
        assert!(!c.finish_reply(r, Status::Failed("x".into()), None));
        assert_eq!(c.node(r).status, Status::Failed("x".into()));
        let r2 = c.branch_reply(r, 0, None, &writer());
        c.stop_reply(r2);
        assert_eq!(c.path(), vec![u, a, u2, r2]);
        assert_eq!(c.node(r2).status, Status::Stopped);
        let stats = Stats {
            stop: StopReason::Eog,
            n_prompt: 3,
            n_prompt_evaluated: 3,
            n_prompt_reused: 0,
            n_generated: 1,
            n_forced: 0,
            ttft_ms: 1.0,
            prompt_tps: 1.0,
            gen_tps: 1.0,
            dropped_messages: 0,
            ctx_used: 4,
            ctx_size: 256,
            ctx_requested: 256,
            inspector_us_per_token: 0.0,
        };
        assert!(!c.finish_reply(a, Status::Done, Some(stats.clone())));
        assert_eq!(c.node(a).stats, Some(stats));
    }

    #[test]
    fn a_blank_system_prompt_is_not_shown() {
        let mut c = Conversation::new(Some("  "));
        let u = c.append(Node::user("hi"));
        assert_eq!(c.shown(), vec![u]);
        c.set_system("be brief");
        assert_eq!(c.shown(), vec![0, u]);
    }
}
