//! The one place an engine request is built from a conversation (the TUI
//! and `run` both use it).

use super::tree::{Conversation, NodeId, Status};
use crate::engine::{ChatMessage, GenerateRequest, ReplyPrefix, Role, SamplingParams};

/// What a request takes besides the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSettings {
    /// Plain completion: no chat template.
    pub raw: bool,
    /// Sampling; the seed is replaced by the reply's own when it has one.
    pub sampling: SamplingParams,
    /// Most tokens to generate after what the reply already holds.
    pub max_tokens: u32,
    /// Candidates reported per token (0 = inspector off).
    pub top_k_inspect: usize,
    /// Start paused (step mode).
    pub paused: bool,
    /// Score the prompt's evaluated positions
    /// ([`crate::engine::Event::PromptScores`]).
    pub score_prompt: bool,
    /// Run to the next surprise: pause before the first surprising draw.
    pub stop_at_surprise: Option<crate::engine::SurpriseStop>,
}

impl Conversation {
    /// The messages the model sees before reply `reply`: the system prompt
    /// (when not blank), then each turn of `reply`'s lineage before it,
    /// whatever is shown. Turns that produced nothing are left out: an empty
    /// reply (failed, stopped at once) together with the user turn it answered.
    pub fn messages_before(&self, reply: NodeId) -> Vec<ChatMessage> {
        self.turns_before(reply)
            .into_iter()
            .map(|id| {
                let n = self.node(id);
                let role = if id == 0 { Role::System } else { n.role };
                let m = ChatMessage::new(role, n.content.clone());
                // A reply goes back as the ids it was generated as (not when
                // it ended inside a character: its text holds a U+FFFD).
                if role == Role::Assistant && !n.steps.is_empty() && n.tail.is_empty() {
                    m.with_tokens(n.steps.iter().map(|s| s.id).collect())
                } else {
                    m
                }
            })
            .collect()
    }

    /// The node of each message of [`Conversation::messages_before`], in
    /// order (the root, node 0, for the system prompt): where the engine's
    /// per-message prompt tokens belong.
    pub fn turns_before(&self, reply: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        if self.system().is_some() {
            out.push(0);
        }
        let lineage = self.lineage(reply);
        let turns = &lineage[..lineage.len().saturating_sub(1)];
        for (i, &id) in turns.iter().enumerate() {
            let n = self.node(id);
            match n.role {
                Role::Assistant if n.content.is_empty() => continue,
                Role::User => {
                    let answer = turns.get(i + 1).map(|&r| self.node(r));
                    if answer.is_some_and(|r| {
                        r.role == Role::Assistant
                            && r.content.is_empty()
                            && r.status != Status::Streaming
                    }) {
                        continue;
                    }
                }
                _ => {}
            }
            out.push(id);
        }
        out
    }

    /// The request that generates (the rest of) reply `reply`: the messages
    /// before it, and its tokens so far as exact ids (a branch, a reply
    /// continued), so the engine reuses its KV cache up to the fork and
    /// evaluates only what follows. The seed is the reply's own when set.
    pub fn request(&self, reply: NodeId, settings: &RequestSettings) -> GenerateRequest {
        let node = self.node(reply);
        let mut sampling = settings.sampling.clone();
        if let Some(seed) = node.seed {
            sampling.seed = seed;
        }
        let ids = node.ids();
        GenerateRequest {
            raw: settings.raw,
            prefix: if ids.is_empty() {
                ReplyPrefix::None
            } else {
                ReplyPrefix::Tokens(ids)
            },
            paused: settings.paused,
            score_prompt: settings.score_prompt,
            stop_at_surprise: settings.stop_at_surprise,
            ..GenerateRequest::new(
                self.messages_before(reply),
                sampling,
                settings.max_tokens,
                settings.top_k_inspect,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::Node;
    use super::*;
    use crate::engine::TokenStep;

    fn settings() -> RequestSettings {
        RequestSettings {
            raw: false,
            sampling: SamplingParams::default(),
            max_tokens: 50,
            top_k_inspect: 5,
            paused: false,
            score_prompt: false,
            stop_at_surprise: None,
        }
    }

    fn reply(c: &mut Conversation, parent: NodeId, text: &str, ids: &[i32]) -> NodeId {
        let a = c.add_child(parent, Node::assistant(None, None));
        for (i, id) in ids.iter().enumerate() {
            c.node_mut(a).push_step(TokenStep {
                index: i,
                id: *id,
                forced: false,
                text: if i == 0 { text.into() } else { String::new() },
                logit: None,
                p_sampled: None,
                dist: None,
            });
        }
        c.node_mut(a).status = Status::Done;
        a
    }

    fn contents(m: &[ChatMessage]) -> Vec<(Role, &str)> {
        m.iter().map(|m| (m.role, m.content.as_str())).collect()
    }

    #[test]
    fn the_next_turn_is_built_from_the_branch_shown() {
        let mut c = Conversation::new(Some("sys"));
        let u = c.append(Node::user("hi"));
        let a = reply(&mut c, u, "first", &[1]);
        let b = reply(&mut c, u, "second", &[2]);
        c.show(a);
        let u2 = c.append(Node::user("and?"));
        let r = c.append(Node::assistant(None, None));
        assert_eq!(c.node(u2).parent(), Some(a));
        let req = c.request(r, &settings());
        assert_eq!(
            contents(&req.messages),
            [
                (Role::System, "sys"),
                (Role::User, "hi"),
                (Role::Assistant, "first"),
                (Role::User, "and?")
            ]
        );
        assert_eq!(req.prefix, ReplyPrefix::None);
        c.show(b);
        let u3 = c.append(Node::user("then?"));
        let r3 = c.append(Node::assistant(None, None));
        assert_eq!(c.node(u3).parent(), Some(b));
        assert_eq!(
            contents(&c.request(r3, &settings()).messages)[2],
            (Role::Assistant, "second")
        );
    }

    #[test]
    fn a_branch_continues_from_its_exact_ids_with_its_own_seed() {
        let mut c = Conversation::new(None);
        let u = c.append(Node::user("hi"));
        let a = reply(&mut c, u, "x", &[7, 8, 9]);
        let b = c.branch(a, 2, None);
        c.node_mut(b).seed = Some(1234);
        let req = c.request(b, &settings());
        assert_eq!(req.prefix, ReplyPrefix::Tokens(vec![7, 8]));
        assert_eq!(req.sampling.seed, 1234);
        assert_eq!(
            contents(&req.messages),
            [(Role::User, "hi")],
            "no blank system"
        );
    }

    #[test]
    fn a_turn_that_produced_nothing_is_left_out() {
        let mut c = Conversation::new(Some("   "));
        let u = c.append(Node::user("lost"));
        let a = c.append(Node::assistant(None, None));
        c.node_mut(a).status = Status::Failed("boom".into());
        let u2 = c.add_child(a, Node::user("again"));
        let r = c.add_child(u2, Node::assistant(None, None));
        assert_eq!(c.lineage(r), vec![u, a, u2, r]);
        assert_eq!(
            contents(&c.messages_before(r)),
            [(Role::User, "again")],
            "the failed turn and its question go; a blank system prompt is none"
        );
    }
}
