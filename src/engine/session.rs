//! What is in the KV cache (a token mirror), how much of a new prompt can be
//! reused from it, and which turns to drop when a conversation outgrows the context.

use super::{ChatMessage, Role};

/// Tokens currently in the KV cache, position by position.
#[derive(Debug, Default, Clone)]
pub struct KvMirror {
    pub tokens: Vec<i32>,
}

impl KvMirror {
    /// How many leading tokens of `prompt` are already cached. At least the last
    /// prompt token is always re-evaluated, because its logits are needed.
    pub fn reusable(&self, prompt: &[i32]) -> usize {
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
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
    }
}

/// Drops the oldest turn after the system prompt: the first non-system message
/// and, so that roles keep alternating, an assistant reply that would then lead.
/// The last message (the one being answered) is never dropped. Returns the
/// positions removed, in the order removed (each in the vector as it was
/// then); empty when nothing more can go.
pub fn drop_oldest_turn(messages: &mut Vec<ChatMessage>) -> Vec<usize> {
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
