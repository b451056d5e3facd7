//! Asking the model about any text at a step ([`Command::AskText`](super::Command::AskText)):
//! how the text tokenizes, each of its tokens' probability in turn and the
//! whole's, and where chosen vocabulary tokens stand at that step.

use serde::{Deserialize, Serialize};

use super::ids::TokenId;

/// Most tokens of the text one [`AskTextRequest`] may force through.
pub const ASK_MAX_TEXT_TOKENS: usize = 64;

/// Most token ids one [`AskTextRequest::probe`] may ask about.
pub const ASK_MAX_PROBE: usize = 256;

/// What the model makes of `text` right after `context`, without changing
/// the conversation: the text is tokenized as a forced text is
/// ([`Steer::ForceText`](super::Steer::ForceText): plain text, no special
/// tokens parsed) and teacher-forced through a second sequence of the KV
/// cache (dropped after; sequence 0, the conversation's, is left as it was).
/// `probe` asks for the probability and rank at the step itself (the
/// distribution after `context`) of any tokens, e.g. a vocabulary search's
/// matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskTextRequest {
    /// The token ids before the step, as the model was fed them (a
    /// generation's [`Event::Started`](super::Event::Started) `prompt` ids,
    /// its `prefix`, then the reply's tokens up to the step); at least one.
    pub context: Vec<TokenId>,
    /// The text to force through; may be empty (then only `probe` is answered).
    /// At most [`ASK_MAX_TEXT_TOKENS`] tokens.
    pub text: String,
    /// Token ids whose probability and rank at the step are wanted; at most
    /// [`ASK_MAX_PROBE`].
    pub probe: Vec<TokenId>,
    /// A token ending in an incomplete UTF-8 character (a byte token such
    /// as `<0xE9>`, or a merge of a character's first bytes), to be put at
    /// the step and followed to the characters it completes
    /// ([`TextAnswer::completion`]); `None`: not asked.
    pub complete: Option<TokenId>,
}

/// A token's standing in the distribution at one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenStanding {
    pub id: TokenId,
    /// Natural log of its probability: `logit - lse` over the whole
    /// vocabulary (exact where `p` would underflow).
    pub ln_p: f64,
    /// 1 + the number of tokens with a strictly larger logit (ties share a rank).
    pub rank: u32,
}

impl TokenStanding {
    /// Its probability, 0 to 1.
    pub fn p(&self) -> f32 {
        self.ln_p.exp() as f32
    }
}

/// The answer to an [`AskTextRequest`] ([`Event::TextAnswer`](super::Event::TextAnswer)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAnswer {
    /// The text's tokens, in order, each with its probability given the
    /// context and the text's tokens before it, and its rank there.
    pub tokens: Vec<TokenStanding>,
    /// ln p of the whole text as these tokens: the sum of theirs (0 for no token).
    pub ln_p: f64,
    /// The probe's tokens at the step, in the order asked.
    pub probe: Vec<TokenStanding>,
    /// What [`AskTextRequest::complete`] completes, when asked.
    pub completion: Option<Completion>,
}

/// Most characters a [`Completion`] lists.
pub const COMPLETION_MAX_CHARS: usize = 8;

/// Most decodes (continuations evaluated) one completion search spends
/// beyond the incomplete token itself.
pub const COMPLETION_MAX_EXPANSIONS: usize = 8;

/// Where a token ending in an incomplete UTF-8 character leads: the
/// characters the model completes it to, with their probability given that
/// token (the probabilities of the tokens that supply the missing bytes,
/// multiplied along each way; the ways to one character summed).
///
/// The next tokens' whole distribution is split exactly, so
/// `chars` + `p_not_char` + `p_unexplored` (+ the characters past the
/// [`COMPLETION_MAX_CHARS`] listed) = 1: `p_not_char` is the mass on tokens
/// that cannot continue the character (the bytes would be invalid UTF-8,
/// e.g. an end-of-generation token or a new lead byte); `p_unexplored` the
/// mass on ways that supply only part of the missing bytes and were not
/// followed further (the search follows the most probable ones, at most
/// [`COMPLETION_MAX_EXPANSIONS`] decodes). Each character's `p` is exact
/// when `p_unexplored` is 0, and a lower bound otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The incomplete token asked about.
    pub of: TokenId,
    /// The characters, most probable first, at most [`COMPLETION_MAX_CHARS`].
    pub chars: Vec<CompletedChar>,
    /// Mass on next tokens that cannot continue the character, 0 to 1.
    pub p_not_char: f64,
    /// Mass on partial ways not followed, 0 to 1.
    pub p_unexplored: f64,
    /// Decodes spent (the incomplete token's, then one per way followed).
    pub decodes: usize,
}

/// One character a [`Completion`] reaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedChar {
    pub ch: char,
    /// Its probability given the incomplete token, 0 to 1: the sum over
    /// the ways found to it.
    pub p: f64,
    /// The most probable way found: the tokens after the incomplete one
    /// that supply the missing bytes (the last may carry more text after it).
    pub tokens: Vec<TokenId>,
}

/// The incomplete character at the end of `bytes`: its bytes so far and how
/// many continuation bytes it still needs (1 to 3); `None` when `bytes`
/// does not end in the start of a character (complete text, a stray
/// continuation byte, invalid bytes before the end). UTF-8: RFC 3629 §3.
pub fn incomplete_tail(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let err = std::str::from_utf8(bytes).err()?;
    if err.error_len().is_some() {
        return None;
    }
    let tail = &bytes[err.valid_up_to()..];
    let len = match tail.first()? {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    Some((tail, len - tail.len()))
}

impl TextAnswer {
    /// The whole text's probability as this tokenization, 0 to 1.
    pub fn p(&self) -> f64 {
        self.ln_p.exp()
    }
}

/// The standing of `id` in `logits` (one per vocabulary token) whose
/// log-sum-exp is `lse`. `None` for an id outside the vocabulary.
pub fn standing(logits: &[f32], lse: f32, id: TokenId) -> Option<TokenStanding> {
    let logit = *logits.get(usize::try_from(id).ok()?)?;
    let above = logits.iter().filter(|&&l| l > logit).count();
    Some(TokenStanding {
        id,
        ln_p: f64::from(logit) - f64::from(lse),
        rank: u32::try_from(above + 1).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standing_counts_the_larger_logits_and_normalizes_over_all() {
        let logits = [1.0f32, 3.0, 2.0, 3.0];
        let lse = logits.iter().map(|&l| f64::from(l).exp()).sum::<f64>().ln() as f32;
        let s = standing(&logits, lse, 2).unwrap();
        assert_eq!(s.rank, 3, "two logits are larger");
        assert!(
            (s.p() - (2.0f64.exp() / (1.0f64.exp() + 2.0 * 3.0f64.exp() + 2.0f64.exp())) as f32)
                .abs()
                < 1e-6
        );
        assert_eq!(
            standing(&logits, lse, 1).unwrap().rank,
            1,
            "a tie shares the top"
        );
        assert_eq!(standing(&logits, lse, 3).unwrap().rank, 1);
        assert_eq!(standing(&logits, lse, 4), None);
        assert_eq!(standing(&logits, lse, -1), None);
    }
}
