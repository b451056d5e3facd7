//! What is in the KV cache (a token mirror, with the logits kept at the end
//! of the last prompt), how much of a new prompt can be reused from it, and
//! which turns to drop when a conversation outgrows the context.

use super::api::{ChatMessage, Role};

/// Tokens currently in the KV cache, position by position.
#[derive(Debug, Default, Clone)]
pub(crate) struct KvMirror {
    pub tokens: Vec<i32>,
    /// The logits of the last prompt position of the latest prompt
    /// evaluated (where its reply starts), kept while that position stays in
    /// the cache: a reply re-sampled from its first token (regenerated)
    /// draws from these very numbers. That position was evaluated in a batch
    /// with the prompt; evaluated again alone it gives other last digits
    /// (and on Gemma 3 a few points of probability), so it is not evaluated
    /// again. (A reply's own tokens were each evaluated alone: evaluated
    /// alone again, they give the same numbers.) One row of the vocabulary
    /// in f32 (1 MiB for Gemma 3's 262,144 tokens).
    pub prompt_end: Option<PositionLogits>,
}

/// The logits a position gave, for the token after it.
#[derive(Debug, Clone)]
pub(crate) struct PositionLogits {
    /// Position in the cache (0-based).
    pub pos: usize,
    /// One logit per vocabulary token.
    pub logits: Vec<f32>,
}

impl KvMirror {
    /// The kept logits of the last position of `tokens`, when the cache
    /// holds exactly `tokens` up to it (nothing of it needs evaluating).
    pub(crate) fn logits_after(&self, tokens: &[i32]) -> Option<&[f32]> {
        let memo = self.prompt_end.as_ref()?;
        (memo.pos + 1 == tokens.len() && self.tokens.get(..tokens.len()) == Some(tokens))
            .then_some(memo.logits.as_slice())
    }

    /// How many leading tokens of `prompt` are already cached. At least the last
    /// prompt token is always re-evaluated, because its logits are needed.
    pub(crate) fn reusable(&self, prompt: &[i32]) -> usize {
        let common = self
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        common.min(prompt.len().saturating_sub(1))
    }

    pub fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
        if self.prompt_end.as_ref().is_some_and(|m| m.pos >= len) {
            self.prompt_end = None;
        }
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
        self.prompt_end = None;
    }
}

/// Drops the oldest turn after the system prompt: the first non-system message
/// and, so that roles keep alternating, an assistant reply that would then lead.
/// The last message (the one being answered) is never dropped. Returns the
/// positions removed, in the order removed (each in the vector as it was
/// then); empty when nothing more can go.
pub(crate) fn drop_oldest_turn(messages: &mut Vec<ChatMessage>) -> Vec<usize> {
    let mut removed = Vec::new();
    let first = |msgs: &Vec<ChatMessage>| msgs.iter().position(|m| m.role != Role::System);
    if let Some(i) = first(messages).filter(|&i| i + 1 < messages.len()) {
        messages.remove(i);
        removed.push(i);
        if let Some(j) = first(messages)
            .filter(|&j| messages[j].role == Role::Assistant && j + 1 < messages.len())
        {
            messages.remove(j);
            removed.push(j);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_is_the_common_prefix_minus_the_last_prompt_token() {
        let m = KvMirror {
            tokens: vec![1, 2, 3, 4, 5],
            ..KvMirror::default()
        };
        assert_eq!(m.reusable(&[1, 2, 3, 9, 9]), 3);
        assert_eq!(m.reusable(&[1, 2, 3, 4, 5, 6, 7]), 5);
        assert_eq!(
            m.reusable(&[1, 2, 3]),
            2,
            "identical prompt still evaluates its last token"
        );
        assert_eq!(m.reusable(&[7]), 0);
        assert_eq!(KvMirror::default().reusable(&[1, 2]), 0);
    }

    #[test]
    fn kept_logits_serve_only_the_exact_tokens_and_go_with_their_position() {
        let mut m = KvMirror {
            tokens: vec![1, 2, 3, 4, 5],
            prompt_end: Some(PositionLogits {
                pos: 2,
                logits: vec![0.5, 1.5],
            }),
        };
        assert_eq!(m.logits_after(&[1, 2, 3]), Some(&[0.5, 1.5][..]));
        assert_eq!(m.logits_after(&[1, 9, 3]), None, "other tokens before");
        assert_eq!(m.logits_after(&[1, 2, 3, 4]), None, "another position");
        m.truncate(3);
        assert!(m.logits_after(&[1, 2, 3]).is_some(), "its position stays");
        m.truncate(2);
        assert_eq!(m.logits_after(&[1, 2, 3]), None);
        assert!(m.prompt_end.is_none());
    }

    fn msgs(roles: &[Role]) -> Vec<ChatMessage> {
        roles
            .iter()
            .enumerate()
            .map(|(i, r)| ChatMessage::new(*r, format!("m{i}")))
            .collect()
    }

    #[test]
    fn drops_oldest_user_and_reply_keeping_system_and_last() {
        use Role::*;
        let mut m = msgs(&[System, User, Assistant, User, Assistant, User]);
        assert_eq!(drop_oldest_turn(&mut m).len(), 2);
        let contents: Vec<_> = m.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(contents, ["m0", "m3", "m4", "m5"]);
        assert_eq!(drop_oldest_turn(&mut m).len(), 2);
        assert_eq!(m.len(), 2);
        assert!(
            drop_oldest_turn(&mut m).is_empty(),
            "system + last user stay"
        );
        assert_eq!(m[1].content, "m5");
    }

    #[test]
    fn nothing_to_drop_from_a_single_message() {
        let mut m = msgs(&[Role::User]);
        assert!(drop_oldest_turn(&mut m).is_empty());
        assert_eq!(m.len(), 1);
    }
}
