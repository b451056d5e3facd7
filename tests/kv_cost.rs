//! What the KV cache saves (`Command::KvCost`, `bench --kv`) on SmolLM2:
//! the runs' structure, the cached run against an ordinary greedy reply,
//! cancelling, the token cap. Timings are printed by the bench, never asserted.

mod common;

use tokenscope::engine::{EngineError, Event, KvCostRequest, KvRun, TokenId};

const PROMPT: &str = "Count from one to twenty, separated by commas.";

/// Sends a KV-cost request for [`PROMPT`]; returns its id.
fn send(e: &mut common::Engine, max_tokens: u32) -> u64 {
    let id = e.next_request();
    e.handle.kv_cost(
        id,
        0,
        KvCostRequest {
            messages: common::user(PROMPT),
            raw: false,
            max_tokens,
        },
    );
    id
}

/// (run, index, position, id) of each step, and the final event.
fn collect(
    e: &mut common::Engine,
    max_tokens: u32,
) -> (Vec<(KvRun, usize, usize, TokenId)>, Event) {
    let id = send(e, max_tokens);
    let mut steps = Vec::new();
    loop {
        let ev = e.rx.recv().expect("engine alive");
        if ev.request() != Some(id) {
            continue;
        }
        if let Event::KvStep {
            run,
            index,
            position,
            id,
            seconds,
            ..
        } = ev
        {
            assert!(seconds > 0.0 && seconds.is_finite(), "{seconds}");
            steps.push((run, index, position, id));
        } else if ev.is_final() {
            return (steps, ev);
        }
    }
}

#[test]
fn both_runs_write_the_greedy_reply_token_by_token() {
    let mut e = common::engine(common::SMOL, common::config_with(1024));
    let n = 8;
    let (steps, end) = collect(&mut e, n);
    let Event::Done { stats, .. } = end else {
        panic!("{end:?}")
    };
    let cached: Vec<_> = steps.iter().filter(|s| s.0 == KvRun::Cached).collect();
    let recomputed: Vec<_> = steps.iter().filter(|s| s.0 == KvRun::Recomputed).collect();
    // The cached run first, then the other; as many tokens each.
    assert_eq!(cached.len(), n as usize, "{steps:?}");
    assert_eq!(stats.n_generated, cached.len());
    assert_eq!(recomputed.len(), cached.len(), "{steps:?}");
    assert!(steps[..cached.len()].iter().all(|s| s.0 == KvRun::Cached));
    for run in [&cached, &recomputed] {
        for (i, s) in run.iter().enumerate() {
            assert_eq!((s.1, s.2), (i, stats.n_prompt + i), "{s:?}");
        }
    }
    // The cached run is the greedy reply an ordinary generation writes.
    let reply = e
        .generate(common::user(PROMPT), false, common::no_truncation(0.0), n)
        .expect("greedy reply");
    let greedy: Vec<TokenId> = reply.steps.iter().map(|s| s.id).collect();
    let ids = |run: &[&(KvRun, usize, usize, TokenId)]| run.iter().map(|s| s.3).collect::<Vec<_>>();
    assert_eq!(ids(&cached), greedy);
    // Without the cache the same tokens (a count has no near ties to flip).
    assert_eq!(ids(&recomputed), greedy);
    // The runs left the prompt cached, with its prefill's logits kept for
    // the last position: the reply after them evaluated none of it.
    assert_eq!(
        reply.stats.n_prompt_reused, stats.n_prompt,
        "{:?}",
        reply.stats
    );
    assert_eq!(reply.stats.n_prompt_evaluated, 0, "{:?}", reply.stats);
    // And it drew from the very numbers a fresh prefill gives.
    let mut fresh = common::engine(common::SMOL, common::config_with(1024));
    let first = fresh
        .generate(common::user(PROMPT), false, common::no_truncation(0.0), 1)
        .expect("greedy reply");
    assert_eq!(first.stats.n_prompt_reused, 0);
    let d = |s: &tokenscope::engine::TokenStep| s.dist.clone().expect("dist");
    assert_eq!(d(&reply.steps[0]), d(&first.steps[0]));
}

#[test]
fn a_run_is_cancelled_between_tokens_and_the_cap_is_refused() {
    let mut e = common::engine(common::SMOL, common::config_with(1024));
    let (_, end) = collect(&mut e, 300);
    match end {
        Event::Failed {
            error: e @ EngineError::Refused(_),
            ..
        } => {
            let m = e.to_string();
            assert!(m.contains("1 to 256"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let id = send(&mut e, 200);
    let mut recomputed = 0;
    loop {
        let ev = e.rx.recv().expect("engine alive");
        if ev.request() != Some(id) {
            continue;
        }
        match ev {
            Event::KvStep {
                run: KvRun::Recomputed,
                ..
            } => {
                recomputed += 1;
                if recomputed == 1 {
                    e.handle.cancel(id);
                }
            }
            Event::Cancelled { .. } => break,
            Event::KvStep { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    // At most a token more came after the cancel.
    assert!(recomputed <= 2, "{recomputed}");
    // The engine serves the next request from a clean cache.
    let reply = e
        .generate(common::user(PROMPT), false, common::no_truncation(0.0), 4)
        .expect("a reply after the cancel");
    assert_eq!(reply.steps.len(), 4);
}

#[test]
fn bench_kv_prints_the_totals_and_a_chart() {
    let dir = common::models_dir();
    let p = common::model(common::SMOL);
    let p = p.to_str().expect("utf-8 path");
    let (out, err, ok) =
        common::run_binary(&dir, &["bench", "--kv", "--model", p, "--tokens", "6"]);
    assert!(ok, "{err}");
    assert!(out.contains("what the KV cache saves: SmolLM2"), "{out}");
    assert!(out.contains("6 tokens generated greedily"), "{out}");
    assert!(
        out.contains("with the KV cache:") && out.contains("without it:"),
        "{out}"
    );
    assert!(out.contains("faster"), "{out}");
    // One chart row per position: 6 tokens in at most 16 buckets.
    let rows = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("position"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(rows, 6, "{out}");
    let (_, err, ok) = common::run_binary(&dir, &["bench", "--kv", "--model", p, "--tokens", "0"]);
    assert!(!ok && err.contains("1 to 256"), "{err}");
}
