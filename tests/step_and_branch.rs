//! Step mode, forcing and branching on the real demo models, at the protocol
//! level: the distribution shown before a draw is the one drawn from, a forced
//! token leads to what `run --assistant-prefix` reports, and a branch
//! re-evaluates nothing before its fork.

mod common;

use common::*;
use tokenscope::engine::{
    ChatMessage, Command, Distribution, Event, GenerateRequest, ReplyPrefix, RequestId,
    SamplingParams, Stats, TokenStep,
};

fn greedy(messages: Vec<ChatMessage>, max_tokens: u32) -> GenerateRequest {
    GenerateRequest::new(messages, SamplingParams::greedy(), max_tokens, 20)
}

/// What a stepped request did: each pause's preview, each token, the final stats.
#[derive(Default)]
struct Stepped {
    previews: Vec<Option<Distribution>>,
    steps: Vec<TokenStep>,
    n_reused: usize,
    stats: Option<Stats>,
}

/// Drives paused request `id`: at each pause `decide(pause number, so far)`
/// gives the commands to send.
fn drive(
    e: &mut Engine,
    id: RequestId,
    mut decide: impl FnMut(usize, &Stepped) -> Vec<Command>,
) -> Stepped {
    let mut s = Stepped::default();
    loop {
        match e.rx.recv().unwrap() {
            ev if ev.request() != Some(id) => {}
            Event::Started { n_reused, .. } => s.n_reused = n_reused,
            Event::Paused {
                next, n_generated, ..
            } => {
                assert_eq!(n_generated, s.steps.len());
                s.previews.push(next);
                for cmd in decide(s.previews.len(), &s) {
                    e.handle.send(cmd);
                }
            }
            Event::Token { step, .. } => s.steps.push(*step),
            Event::Done { stats, .. } => {
                s.stats = Some(stats);
                return s;
            }
            Event::Cancelled { stats, .. } => {
                s.stats = stats;
                return s;
            }
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
}

#[test]
fn each_pause_shows_the_distribution_the_next_token_is_drawn_from() {
    let mut e = engine(SMOL, config_with(1024));
    let id = e.start(GenerateRequest {
        paused: true,
        ..greedy(user("What is the capital of France?"), 4)
    });
    let s = drive(&mut e, id, |n, _| {
        vec![if n <= 4 {
            Command::Step { request: id }
        } else {
            Command::Run { request: id }
        }]
    });
    assert_eq!(s.steps.len(), 4);
    for (i, step) in s.steps.iter().enumerate() {
        let preview = s.previews[i]
            .as_ref()
            .expect("a preview with the inspector on");
        let drawn = step.dist.as_ref().unwrap();
        assert_eq!(preview.lse, drawn.lse, "step {i}: the same logits");
        let ids = |d: &Distribution| d.top.iter().map(|c| (c.id, c.logit)).collect::<Vec<_>>();
        assert_eq!(ids(preview), ids(drawn), "step {i}");
        assert!(
            preview.top.iter().all(|c| c.p_sampled.is_none()),
            "nothing drawn yet"
        );
        assert_eq!(step.id, preview.top[0].id, "greedy draws the top candidate");
    }
}

#[test]
fn a_forced_token_leads_to_what_run_with_that_assistant_prefix_reports() {
    let mut e = engine(SMOL, config_with(1024));
    let q = "What is the capital of France?";
    // Two sampled tokens, then a forced one: the second candidate of the third position.
    let id = e.start(GenerateRequest {
        paused: true,
        ..greedy(user(q), 8)
    });
    let mut forced = None;
    let s = drive(&mut e, id, |n, s| {
        vec![match n {
            1 | 2 => Command::Step { request: id },
            3 => {
                let token = s.previews[2].as_ref().unwrap().top[1].id;
                forced = Some(token);
                Command::Force { request: id, token }
            }
            _ => Command::Cancel { request: id },
        }]
    });
    let forced = forced.unwrap();
    assert_eq!(s.steps.len(), 3);
    assert!(
        s.steps[2].forced && s.steps[2].id == forced,
        "{:?}",
        s.steps[2]
    );
    let next = s.previews[3]
        .clone()
        .expect("the distribution after the forced token");
    let text: String = s.steps.iter().map(|st| st.text.as_str()).collect();
    let ids: Vec<i32> = s.steps.iter().map(|st| st.id).collect();
    // Premise: the text tokenizes back to the same ids (else the prefixes differ).
    let id2 = e.start(GenerateRequest {
        prefix: ReplyPrefix::Text(text.clone()),
        ..greedy(user(q), 0)
    });
    let back = e.collect(id2).unwrap();
    let (_, prefix) = back
        .events
        .iter()
        .find_map(|ev| match ev {
            Event::Started { prompt, prefix, .. } => Some((prompt.clone(), prefix.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        prefix, ids,
        "premise: {text:?} re-tokenizes as the same ids"
    );

    let dir = models_dir();
    let (out, err, ok) = run_binary(
        &dir,
        &[
            "run",
            "-m",
            SMOL,
            "--temp",
            "0",
            "--ctx",
            "1024",
            "--candidates",
            "20",
            "--max-tokens",
            "1",
            "--format",
            "jsonl",
            "-p",
            q,
            "--assistant-prefix",
            &text,
        ],
    );
    assert!(ok, "{err}");
    let first_free: serde_json::Value = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "token" && v["forced"] == false)
        .expect("a generated token after the prefix");
    let run_top: Vec<(i64, f64)> = first_free["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_i64().unwrap(), c["p"].as_f64().unwrap()))
        .collect();
    // Batch shapes differ (the run prefills the prefix in one batch): a tolerance.
    for c in next.top.iter().take(5) {
        let p_run = run_top
            .iter()
            .find(|(id, _)| *id == c.id as i64)
            .map_or(0.0, |(_, p)| *p as f32);
        let p = next.p(c.logit);
        assert!(
            (p - p_run).abs() < 0.05,
            "candidate {}: {p} vs run's {p_run}",
            c.id
        );
    }
}

#[test]
fn force_text_forces_each_of_its_tokens_with_the_models_view_then_pauses() {
    let mut e = engine(SMOL, config_with(1024));
    let id = e.start(GenerateRequest {
        paused: true,
        ..greedy(user("What is the capital of France?"), 8)
    });
    let s = drive(&mut e, id, |n, _| match n {
        1 => vec![Command::ForceText {
            request: id,
            text: "The capital is".into(),
        }],
        // Text that gives no tokens changes nothing: still paused, so the
        // cancel after it ends the request at this same pause.
        _ => vec![
            Command::ForceText {
                request: id,
                text: String::new(),
            },
            Command::Cancel { request: id },
        ],
    });
    let text: String = s.steps.iter().map(|st| st.text.as_str()).collect();
    assert_eq!(text, "The capital is");
    assert!(s.steps.len() >= 3);
    assert!(s.steps.iter().all(|st| st.forced && st.dist.is_some()));
    assert!(
        s.steps.iter().all(|st| st.p_sampled.is_none()),
        "forced tokens have no draw"
    );
    assert_eq!(
        s.previews.len(),
        2,
        "one pause before the text, one after it"
    );
    assert!(s.stats.is_some());
}

/// Generates greedily `n` tokens of a reply to `q` (inspector on).
fn reply(e: &mut Engine, q: &str, n: u32) -> (Vec<TokenStep>, usize) {
    let id = e.start(greedy(user(q), n));
    let out = e.collect(id).unwrap();
    let n_prompt = out.stats.as_ref().unwrap().n_prompt;
    (out.steps, n_prompt)
}

#[test]
fn a_branch_re_evaluates_nothing_before_its_fork_and_going_back_only_what_follows_it() {
    let mut e = engine(SMOL, config_with(1024));
    let q = "Write one sentence about the sea.";
    let (orig, n_prompt) = reply(&mut e, q, 12);
    assert!(orig.len() >= 8, "premise: a reply of 8+ tokens");
    let k = 5;
    let chosen = orig[k]
        .top()
        .iter()
        .find(|c| c.id != orig[k].id)
        .unwrap()
        .id;
    let mut prefix: Vec<i32> = orig[..k].iter().map(|s| s.id).collect();
    prefix.push(chosen);
    let id = e.start(GenerateRequest {
        prefix: ReplyPrefix::Tokens(prefix),
        ..greedy(user(q), 4)
    });
    let out = e.collect(id).unwrap();
    let st = out.stats.unwrap();
    let n_reused = out
        .events
        .iter()
        .find_map(|ev| match ev {
            Event::Started { n_reused, .. } => Some(*n_reused),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        n_reused,
        n_prompt + k,
        "the prompt and the k tokens before the fork are reused"
    );
    assert_eq!(st.n_prompt_reused, n_prompt + k);
    assert_eq!(
        st.n_prompt_evaluated, 1,
        "only the chosen token is evaluated"
    );
    assert_eq!(
        out.steps[0].index,
        k + 1,
        "generation goes on after the chosen token"
    );

    // Back to the original branch, continuing after its 8th token: only its
    // tokens after the fork are evaluated.
    let m = 8;
    let id = e.start(GenerateRequest {
        prefix: ReplyPrefix::Tokens(orig[..m].iter().map(|s| s.id).collect()),
        ..greedy(user(q), 2)
    });
    let st = e.collect(id).unwrap().stats.unwrap();
    assert_eq!(st.n_prompt_reused, n_prompt + k);
    assert_eq!(st.n_prompt_evaluated, m - k);
}

#[test]
fn two_sibling_replies_sampled_at_temperature_one_differ() {
    use tokenscope::conversation::{Conversation, Node, RequestSettings};
    let mut e = engine(SMOL, config_with(1024));
    let settings = RequestSettings {
        raw: false,
        sampling: no_truncation(1.0),
        max_tokens: 16,
        top_k_inspect: 5,
        paused: false,
    };
    let mut conv = Conversation::new(None);
    let u = conv.append(Node::user("Write a random word."));
    let mut replies = Vec::new();
    for _ in 0..2 {
        // As the TUI makes a first reply, then regenerates it: a sibling, its own seed.
        let mut node = Node::assistant(None, None);
        node.seed = Some(conv.seed_for_child(u, settings.sampling.seed));
        let id = conv.add_child(u, node);
        let rid = e.start(conv.request(id, &settings));
        let ids: Vec<i32> = e.collect(rid).unwrap().steps.iter().map(|s| s.id).collect();
        replies.push(ids);
    }
    assert_eq!(conv.sibling_pos(conv.path()[1]), (1, 2));
    assert_ne!(replies[0], replies[1], "siblings draw differently");
}
