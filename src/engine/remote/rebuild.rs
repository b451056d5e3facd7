//! Rebuilding the tokens llama-server merges into one stream entry.
//!
//! llama-server sends nothing for a generated token whose bytes end inside a
//! UTF-8 character (`validate_utf8` in its `process_token`): the token is
//! neither streamed nor kept with its probabilities. The token that completes
//! the character then comes as one entry carrying *its* id and distribution
//! with the *whole* character's bytes (`text_to_send`). A Chinese character
//! split over three byte tokens thus arrives as one entry: two tokens, their
//! ids and their distributions are gone from the stream (and from the
//! non-streamed `completion_probabilities` too).
//!
//! The server can still tell them: evaluated again from the same tokens (a
//! `/completion` whose prompt is the reply's prompt followed by the ids so
//! far, `cache_prompt` reusing its KV cache), it reports the model's
//! distribution at that position. To make it report it at all, the one token
//! it samples there is kept to ASCII by a grammar: grammars act on the
//! sampler, not on the model's probabilities it reports (`n_probs` without
//! `post_sampling_probs` reads the logits before sampling). The lost token is
//! then the candidate whose bytes begin the character's missing bytes: the
//! most probable such candidate (at temperature 0 it must be the top one,
//! which is what greedy decoding chose).

use super::wire::{Prob, TokenProbs};

/// A grammar that lets the sampler pick any ASCII text, or end: the one token
/// sampled in a rebuilding request is then a whole character, which
/// llama-server reports with the distribution it was drawn from.
pub const ANY_ASCII: &str = "root ::= [ -~]*";

/// The bytes of `t`'s own token, as its own candidate list gives them
/// (llama-server's candidates carry each token's exact bytes); `None` when the
/// token is not among its candidates.
pub fn own_piece(t: &TokenProbs) -> Option<Vec<u8>> {
    let id = t.token.id?;
    t.top()
        .iter()
        .find(|c| c.id == Some(id))
        .map(Prob::token_bytes)
}

/// The bytes an entry carries before its own token's piece `own`: the
/// tokens the server did not stream. Empty when the entry is its token alone;
/// `None` when the entry's bytes do not end with `own` (then they are not a
/// merged character, e.g. text held back for a stop string and sent later).
pub fn missing_prefix<'a>(entry: &'a [u8], own: &[u8]) -> Option<&'a [u8]> {
    entry.strip_suffix(own)
}

/// The candidate that stands for the next unstreamed token: among those
/// whose bytes are a non-empty prefix of `remaining`, the most probable (ties:
/// the lower id, as llama.cpp's greedy sampler breaks them). At temperature 0
/// this is the top candidate itself; a sampled token is the likeliest that
/// fits (two candidates can fit, e.g. a one-byte and a two-byte token, and
/// the server does not say which one was drawn).
pub fn choose_lost<'a>(candidates: &'a [Prob], remaining: &[u8]) -> Option<&'a Prob> {
    candidates
        .iter()
        .filter(|c| {
            let b = c.token_bytes();
            c.id.is_some() && !b.is_empty() && remaining.starts_with(&b)
        })
        .max_by(|a, b| {
            let key = |c: &Prob| {
                c.ln_p()
                    .filter(|x| !x.is_nan())
                    .unwrap_or(f32::NEG_INFINITY)
            };
            key(a).total_cmp(&key(b)).then(b.id.cmp(&a.id))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prob(id: i32, bytes: &[u8], logprob: f32) -> Prob {
        Prob {
            id: Some(id),
            token: None,
            bytes: Some(bytes.to_vec()),
            logprob: Some(logprob),
            prob: None,
        }
    }

    #[test]
    fn a_merged_entry_is_its_own_piece_after_the_missing_bytes() {
        // "你" = E4 BD A0 sent as one entry of the token A0 (id 3).
        let t = TokenProbs {
            token: prob(3, "你".as_bytes(), -0.1),
            top_logprobs: vec![prob(3, &[0xA0], -0.1), prob(9, &[0xA1], -2.0)],
            top_probs: Vec::new(),
        };
        let own = own_piece(&t).unwrap();
        assert_eq!(own, [0xA0]);
        assert_eq!(
            missing_prefix("你".as_bytes(), &own),
            Some(&[0xE4, 0xBD][..])
        );
        assert_eq!(missing_prefix(b" Paris", b" Paris"), Some(&[][..]));
        assert_eq!(missing_prefix(b"", b" Paris"), None);
    }

    #[test]
    fn the_lost_token_is_the_top_candidate_that_begins_the_missing_bytes() {
        let missing = [0xE4, 0xBD];
        let cands = [
            prob(1, b"Hello", -3.0),
            prob(2, &[0xE4], -0.5),
            prob(4, &[0xE4, 0xBD], -0.9),
        ];
        assert_eq!(choose_lost(&cands, &missing).unwrap().id, Some(2));
        let top_misfits = [prob(1, b"Hello", -0.1), prob(2, &[0xE4], -0.5)];
        assert_eq!(choose_lost(&top_misfits, &missing).unwrap().id, Some(2));
        assert!(choose_lost(&[prob(1, b"x", -0.1)], &missing).is_none());
        // A tie goes to the lower id.
        let tie = [prob(7, &[0xE4], -0.5), prob(5, &[0xE4], -0.5)];
        assert_eq!(choose_lost(&tie, &missing).unwrap().id, Some(5));
    }
}
