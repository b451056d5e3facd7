//! Where a token ending in an incomplete UTF-8 character leads
//! ([`AskTextRequest::complete`](super::api::AskTextRequest::complete)): the
//! token is put at the step in the scoring sequence, and the tokens that
//! can supply the character's missing bytes are followed, most probable way
//! first, until the character is whole.
//!
//! Byte-level vocabularies split a rare character (龘 = E9 BE 98) into
//! tokens of one or two bytes. The inspector can say from the bytes alone
//! which characters `<0xE9>` can begin (U+9000 … U+9FFF); only the model can
//! say which one it would most likely finish. The next token's distribution
//! is split exactly three ways: tokens that finish the character (their
//! mass goes to the character their bytes make), tokens that supply part of
//! the missing bytes (ways followed with one decode each, best first, up to
//! a budget), and tokens that cannot continue it (any token not starting
//! with a continuation byte: the text would not be UTF-8).

use std::collections::BTreeMap;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::api::{
    COMPLETION_MAX_CHARS, COMPLETION_MAX_EXPANSIONS, CompletedChar, Completion, EngineError,
    TokenId, Words, incomplete_tail,
};
use super::decode::decode_error;
use super::probs::TopK;

/// A UTF-8 continuation byte (10xxxxxx).
fn continues(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// The bytes of `id` as generated text shows them (a control token as its text).
pub(super) fn token_bytes(model: &LlamaModel, id: TokenId) -> Vec<u8> {
    model.vocab().token_to_piece(LlamaToken(id), true, None)
}

/// A way being followed: the character's bytes so far, how many it still
/// needs, the tokens after the incomplete one, and its probability.
struct Way {
    bytes: Vec<u8>,
    need: usize,
    tokens: Vec<TokenId>,
    p: f64,
}

/// Follows `of` put at position `n_context` of sequence `seq` of `ctx`,
/// whose positions `0..n_context` hold the step's context (positions from
/// `n_context` on are the search's and are left filled; the caller drops
/// the sequence). Errors: `of` does not end in an incomplete character
/// ([`EngineError::Refused`]); a decode fails.
pub(super) fn follow(
    model: &LlamaModel,
    ctx: &mut LlamaContext,
    seq: i32,
    n_context: usize,
    of: TokenId,
) -> Result<Completion, EngineError> {
    let first = token_bytes(model, of);
    let Some((tail, need)) = incomplete_tail(&first) else {
        return Err(EngineError::Refused(Words::tr_args(
            "engine-char-complete",
            "token { $id } ({ $piece }) does not end in an incomplete UTF-8 character: there is nothing to complete",
            &[("id", &of), ("piece", &String::from_utf8_lossy(&first))],
        )));
    };
    if n_context + 1 + need > ctx.n_ctx() as usize {
        return Err(EngineError::Refused(Words::tr_args(
            "engine-char-no-room",
            "the context ({ $n } tokens) leaves no room to complete a character in the \
             context ({ $n_ctx } tokens)",
            &[("n", &n_context), ("n_ctx", &ctx.n_ctx())],
        )));
    }
    // The tokens starting with a continuation byte: the only ones that can go on.
    let n_vocab = model.n_vocab().max(0);
    let mut can_continue = vec![false; n_vocab as usize];
    let mut continuations = Vec::new();
    for id in 0..n_vocab {
        let bytes = token_bytes(model, id);
        if bytes.first().copied().is_some_and(continues) {
            can_continue[id as usize] = true;
            continuations.push((id, bytes));
        }
    }
    let mut search = Search {
        ctx,
        seq,
        n_context,
        cached: Vec::new(),
        chars: BTreeMap::new(),
        p_not_char: 0.0,
        decodes: 0,
    };
    let mut frontier = vec![Way {
        bytes: tail.to_vec(),
        need,
        tokens: Vec::new(),
        p: 1.0,
    }];
    while search.decodes <= COMPLETION_MAX_EXPANSIONS {
        // The most probable way not yet followed.
        let Some(best) =
            (0..frontier.len()).max_by(|&a, &b| frontier[a].p.total_cmp(&frontier[b].p))
        else {
            break;
        };
        let way = frontier.swap_remove(best);
        let mut path = vec![of];
        path.extend(&way.tokens);
        let logits = search.evaluate(&path)?;
        frontier.extend(search.split(&way, &logits, &can_continue, &continuations));
    }
    let mut chars: Vec<CompletedChar> = search
        .chars
        .into_iter()
        .map(|(ch, (p, _, tokens))| CompletedChar { ch, p, tokens })
        .collect();
    chars.sort_by(|a, b| b.p.total_cmp(&a.p).then(a.ch.cmp(&b.ch)));
    chars.truncate(COMPLETION_MAX_CHARS);
    Ok(Completion {
        of,
        chars,
        p_not_char: search.p_not_char,
        // A fold from +0: an empty `sum` of f64 is -0, shown as "-0".
        p_unexplored: frontier.iter().fold(0.0, |a, w| a + w.p),
        decodes: search.decodes,
    })
}

/// The search's state: the scoring sequence and what it has found.
struct Search<'c, 'm> {
    ctx: &'c mut LlamaContext<'m>,
    seq: i32,
    n_context: usize,
    /// The tokens the sequence holds after the context.
    cached: Vec<TokenId>,
    /// Each character found: its summed p, the best way's p and tokens.
    chars: BTreeMap<char, (f64, f64, Vec<TokenId>)>,
    p_not_char: f64,
    decodes: usize,
}

impl Search<'_, '_> {
    /// The logits after the context and `path`: what the sequence holds
    /// past their common start is dropped, the rest of `path` evaluated.
    fn evaluate(&mut self, path: &[TokenId]) -> Result<Vec<f32>, EngineError> {
        let common = self
            .cached
            .iter()
            .zip(path)
            .take_while(|(a, b)| a == b)
            .count()
            .min(path.len() - 1);
        let from = (self.n_context + common) as u32;
        self.ctx
            .clear_kv_cache_seq(Some(self.seq as u32), Some(from), None)
            .map_err(|e| decode_error("completing a character", e))?;
        let rest = &path[common..];
        let mut batch = LlamaBatch::new(rest.len(), 1);
        for (i, &t) in rest.iter().enumerate() {
            let pos = (self.n_context + common + i) as i32;
            batch
                .add(LlamaToken(t), pos, &[self.seq], i + 1 == rest.len())
                .map_err(|e| decode_error("completing a character", e))?;
        }
        self.ctx
            .decode(&mut batch)
            .map_err(|e| decode_error("completing a character", e))?;
        self.decodes += 1;
        self.cached = path.to_vec();
        Ok(self.ctx.get_logits_ith((rest.len() - 1) as i32).to_vec())
    }

    /// Splits `way`'s next-token distribution (`logits`): finished
    /// characters and tokens that cannot continue are counted here; the
    /// ways that supply part of the missing bytes are returned.
    fn split(
        &mut self,
        way: &Way,
        logits: &[f32],
        can_continue: &[bool],
        continuations: &[(TokenId, Vec<u8>)],
    ) -> Vec<Way> {
        let lse = f64::from(TopK::default().summarize(logits, 0).lse);
        let p = |id: TokenId| (f64::from(logits[id as usize]) - lse).exp();
        // Tokens not starting with a continuation byte, summed directly
        // (not as 1 minus the rest, which would lose the small ones).
        let stop: f64 = logits
            .iter()
            .zip(can_continue)
            .filter(|(_, c)| !**c)
            .map(|(&l, _)| (f64::from(l) - lse).exp())
            .sum();
        self.p_not_char += way.p * stop;
        let mut partial = Vec::new();
        for (id, bytes) in continuations {
            let p = way.p * p(*id);
            let k = way.need.min(bytes.len());
            if !bytes[..k].iter().all(|&b| continues(b)) {
                self.p_not_char += p;
                continue;
            }
            let mut whole = way.bytes.clone();
            whole.extend_from_slice(&bytes[..k]);
            let mut tokens = way.tokens.clone();
            tokens.push(*id);
            if k < way.need {
                partial.push(Way {
                    bytes: whole,
                    need: way.need - k,
                    tokens,
                    p,
                });
                continue;
            }
            // Overlong forms and surrogates are not characters (RFC 3629 §3).
            match std::str::from_utf8(&whole)
                .ok()
                .and_then(|s| s.chars().next())
            {
                Some(ch) => {
                    let e = self.chars.entry(ch).or_insert((0.0, 0.0, Vec::new()));
                    e.0 += p;
                    if p > e.1 {
                        e.1 = p;
                        e.2 = tokens;
                    }
                }
                None => self.p_not_char += p,
            }
        }
        partial
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::incomplete_tail;

    #[test]
    fn the_incomplete_tail_is_the_last_characters_first_bytes() {
        // 龘 is E9 BE 98.
        assert_eq!(incomplete_tail(&[0xE9]), Some((&[0xE9][..], 2)));
        assert_eq!(incomplete_tail(&[0xE9, 0xBE]), Some((&[0xE9, 0xBE][..], 1)));
        assert_eq!(incomplete_tail(b"ab\xF0\x9F"), Some((&b"\xF0\x9F"[..], 2)));
        assert_eq!(incomplete_tail("龘".as_bytes()), None, "whole");
        assert_eq!(incomplete_tail(&[0x98]), None, "a stray continuation");
        assert_eq!(incomplete_tail(b"\xFFab\xE9"), None, "invalid before");
        assert_eq!(incomplete_tail(&[0xC0]), None, "never a lead byte");
    }
}
