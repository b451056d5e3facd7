//! A branch goes on from exactly the numbers it forked from: on a reply
//! longer than Gemma 3's 512-token sliding window, a re-sample, a forced
//! token, a continue and a regenerate — each requested as the TUI builds it,
//! prompt scoring on — reuse the KV cache up to the fork (the last token
//! before it evaluated again, alone, as it was when generated; nothing for a
//! regenerate) and, choosing the same tokens, give bit-identical traces.

mod common;

use common::*;
use tokenscope::conversation::{Conversation, Node, NodeId, RequestSettings};
use tokenscope::engine::{Event, SamplingParams, TokenStep};

const QUESTION: &str =
    "Write a very long, detailed story about a lighthouse keeper and the sea, with many chapters.";

/// What one request did: its steps, and how much of its prompt and prefix it
/// reused and evaluated.
struct Run {
    steps: Vec<TokenStep>,
    n_prompt: usize,
    n_reused: usize,
    n_evaluated: usize,
}

fn settings(max_tokens: u32) -> RequestSettings {
    RequestSettings {
        raw: false,
        sampling: SamplingParams::greedy(),
        max_tokens,
        top_k_inspect: 20,
        paused: false,
        score_prompt: true,
        stop_at_surprise: None,
    }
}

/// Generates (the rest of) reply `node` and appends its steps to it.
fn generate(e: &mut Engine, conv: &mut Conversation, node: NodeId, max_tokens: u32) -> Run {
    let id = e.start(conv.request(node, &settings(max_tokens)));
    let out = e.collect(id).unwrap();
    let (n_prompt, n_reused) = out
        .events
        .iter()
        .find_map(|ev| match ev {
            Event::Started {
                prompt, n_reused, ..
            } => Some((prompt.len(), *n_reused)),
            _ => None,
        })
        .expect("a Started event");
    for s in &out.steps {
        conv.node_mut(node).push_step(s.clone());
    }
    Run {
        n_evaluated: out.stats.unwrap().n_prompt_evaluated,
        steps: out.steps,
        n_prompt,
        n_reused,
    }
}

/// Every step of `branch` is the original's at the same index, to the bit.
fn assert_same(what: &str, orig: &[TokenStep], branch: &[TokenStep]) {
    assert!(!branch.is_empty(), "{what}: no tokens");
    for b in branch {
        let o = &orig[b.index];
        assert_eq!(b.id, o.id, "{what}: token {} chosen differently", b.index);
        assert_eq!(b.logit, o.logit, "{what}: token {}'s logit", b.index);
        assert_eq!(b.dist, o.dist, "{what}: token {}'s distribution", b.index);
    }
}

fn branches_continue_exactly(file: &str) {
    let mut e = engine(file, config_with(1024));
    let mut conv = Conversation::new(None);
    conv.append(Node::user(QUESTION));
    let a = conv.append(Node::assistant(None, Some(e.vocab.clone())));
    let n = 620;
    let first = generate(&mut e, &mut conv, a, n);
    let orig = first.steps;
    assert_eq!(orig.len(), n as usize, "premise: a reply of {n} tokens");
    let p = first.n_prompt;

    // Re-sample (r) at token 560: only token 559 is evaluated again.
    let k = 560;
    let b = conv.branch(a, k, None);
    let run = generate(&mut e, &mut conv, b, 40);
    assert_eq!((run.n_reused, run.n_evaluated), (p + k - 1, 1), "re-sample");
    assert_same("re-sample at 560", &orig, &run.steps);

    // Force (Enter on a candidate) at 580, choosing the original token: only it is evaluated.
    let k = 580;
    let c = conv.branch(b, k, Some(orig[k].id));
    let run = generate(&mut e, &mut conv, c, 19);
    assert_eq!((run.n_reused, run.n_evaluated), (p + k, 1), "force");
    assert_same("forced at 580", &orig, &run.steps);

    // Continue (c) the reply cut at 600 tokens.
    let run = generate(&mut e, &mut conv, c, 20);
    assert_eq!((run.n_reused, run.n_evaluated), (p + 599, 1), "continue");
    assert_same("continued at 600", &orig, &run.steps);

    // Regenerate (F8) from the first token: nothing is evaluated, the
    // prompt's last logits were kept.
    let r = conv.branch(a, 0, None);
    let run = generate(&mut e, &mut conv, r, 20);
    assert_eq!((run.n_reused, run.n_evaluated), (p, 0), "regenerate");
    assert_same("regenerated", &orig, &run.steps);
}

#[test]
fn smollm2_branches_continue_from_the_numbers_they_forked_from() {
    branches_continue_exactly(SMOL);
}

#[test]
fn gemma3_branches_past_its_sliding_window_continue_from_the_numbers_they_forked_from() {
    branches_continue_exactly(GEMMA);
}
