//! Step mode, forcing and branching on the real demo models, at the protocol
//! level: the distribution shown before a draw is the one drawn from, a forced
//! token leads to what `run --assistant-prefix` reports, and a branch
//! re-evaluates nothing before its fork.

mod common;

use common::*;
use tokenscope::engine::{
    ChatMessage, Command, Distribution, Event, GenerateRequest, ReplyPrefix, RequestId,
    SamplingParams, Stats, Steer, Surprise, SurpriseStop, TokenStep,
};

fn greedy(messages: Vec<ChatMessage>, max_tokens: u32) -> GenerateRequest {
    GenerateRequest::new(messages, SamplingParams::greedy(), max_tokens, 20)
}

/// What a stepped request did: each pause's preview, each token, the final stats.
#[derive(Default)]
struct Stepped {
    previews: Vec<Option<Distribution>>,
    /// Each pause's surprise (running to the next surprise), with the
    /// number of tokens before it.
    surprises: Vec<(usize, Option<Surprise>)>,
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
                next,
                n_generated,
                surprise,
                ..
            } => {
                assert_eq!(n_generated, s.steps.len());
                s.previews.push(next);
                s.surprises.push((n_generated, surprise));
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
            Command::Steer {
                request: id,
                steer: Steer::Step,
            }
        } else {
            Command::Steer {
                request: id,
                steer: Steer::Run,
            }
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
        let ps = |d: &Distribution| d.top.iter().map(|c| c.p_sampled).collect::<Vec<_>>();
        assert_eq!(
            ps(preview),
            ps(drawn),
            "step {i}: the sampler's view, before the draw"
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
            1 | 2 => Command::Steer {
                request: id,
                steer: Steer::Step,
            },
            3 => {
                let token = s.previews[2].as_ref().unwrap().top[1].id;
                forced = Some(token);
                Command::Steer {
                    request: id,
                    steer: Steer::Force(token),
                }
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
        1 => vec![Command::Steer {
            request: id,
            steer: Steer::ForceText("The capital is".into()),
        }],
        // Text that gives no tokens forces nothing: the pause is said again.
        2 => vec![Command::Steer {
            request: id,
            steer: Steer::ForceText(String::new()),
        }],
        _ => vec![Command::Cancel { request: id }],
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
        3,
        "a pause before the text, one after it, the same again after the empty text"
    );
    assert_eq!(s.previews[1], s.previews[2]);
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
    // The request as the TUI builds it: from the conversation tree.
    use tokenscope::conversation::{Conversation, Node, RequestSettings};
    let mut conv = Conversation::new(None);
    conv.append(Node::user(q));
    let a = conv.append(Node::assistant(None, Some(e.vocab.clone())));
    for s in &orig {
        conv.node_mut(a).push_step(s.clone());
    }
    let b = conv.branch(a, k, Some(chosen));
    let settings = RequestSettings {
        raw: false,
        sampling: SamplingParams::greedy(),
        max_tokens: 4,
        top_k_inspect: 20,
        paused: false,
        score_prompt: false,
        stop_at_surprise: None,
    };
    let req = conv.request(b, &settings);
    let mut want: Vec<i32> = orig[..k].iter().map(|s| s.id).collect();
    want.push(chosen);
    assert_eq!(req.prefix, ReplyPrefix::Tokens(want));
    let id = e.start(req);
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
        score_prompt: false,
        stop_at_surprise: None,
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

#[test]
fn at_temperature_the_preview_has_the_samplers_probabilities_and_the_draw_is_unchanged() {
    let mut e = engine(SMOL, config_with(1024));
    let sampling = SamplingParams {
        seed: 5,
        ..SamplingParams::default()
    };
    let q = user("Tell me a story.");
    let free = e.generate(q.clone(), false, sampling.clone(), 6).unwrap();
    let id = e.start(GenerateRequest {
        paused: true,
        ..GenerateRequest::new(q, sampling, 6, 20)
    });
    let s = drive(&mut e, id, |_, _| {
        vec![Command::Steer {
            request: id,
            steer: Steer::Step,
        }]
    });
    let ids = |steps: &[TokenStep]| steps.iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&s.steps),
        ids(&free.steps),
        "previewing does not move the draws"
    );
    for (i, step) in s.steps.iter().enumerate() {
        let preview = s.previews[i].as_ref().unwrap();
        let drawn = step.dist.as_ref().unwrap();
        for (a, b) in preview.top.iter().zip(&drawn.top) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.p_sampled, b.p_sampled, "step {i}");
        }
        let total: f32 = preview.top.iter().filter_map(|c| c.p_sampled).sum();
        assert!(total > 0.5 && total <= 1.001, "step {i}: {total}");
    }
}

#[test]
fn controls_sent_right_behind_a_queued_request_are_its_own() {
    let mut e = engine(SMOL, config_with(1024));
    // A request runs; a second one is sent with its forced text and Run right
    // behind it, before the first has ended (as a branch with typed text is).
    let first = e.start(greedy(user("Count from 1 to 30."), 30));
    let second = e.next_request();
    e.handle.generate(
        second,
        0,
        GenerateRequest {
            paused: true,
            ..greedy(user("Name a city."), 3)
        },
    );
    e.handle.send(Command::Steer {
        request: second,
        steer: Steer::ForceText("The city of Paris is a lovely".into()),
    });
    e.handle.send(Command::Steer {
        request: second,
        steer: Steer::Run,
    });
    e.collect(first).unwrap();
    let out = e.collect(second).unwrap();
    let forced: String = out
        .steps
        .iter()
        .filter(|s| s.forced)
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(
        forced, "The city of Paris is a lovely",
        "all of it, past max_tokens"
    );
    let free = out.steps.iter().filter(|s| !s.forced).count();
    assert!((1..=3).contains(&free), "then it ran on: {free} sampled");
}

#[test]
fn time_spent_paused_is_not_generation_time() {
    // No timing threshold: the stats must leave out at least the time this
    // test itself spent asleep at the pauses, whatever the machine's speed.
    const THINK: std::time::Duration = std::time::Duration::from_millis(400);
    let mut e = engine(SMOL, config_with(1024));
    let sent = std::time::Instant::now();
    let id = e.start(GenerateRequest {
        paused: true,
        ..greedy(user("Hi"), 3)
    });
    let mut first_token_wall = None;
    let mut slept = std::time::Duration::ZERO;
    let s = drive(&mut e, id, |n, _| {
        if n == 2 {
            first_token_wall.get_or_insert(sent.elapsed());
        }
        // The user thinks for a while at each pause.
        std::thread::sleep(THINK);
        slept += THINK;
        vec![if n < 3 {
            Command::Steer {
                request: id,
                steer: Steer::Step,
            }
        } else {
            Command::Steer {
                request: id,
                steer: Steer::Run,
            }
        }]
    });
    let total_wall = sent.elapsed();
    let st = s.stats.unwrap();
    // The first token came after the first pause: its wall time includes one THINK.
    let first = first_token_wall.expect("a second pause");
    assert!(
        st.ttft_ms <= (first - THINK).as_secs_f64() * 1000.0 + 1.0,
        "TTFT {} ms counts the pause (first token at {first:?} wall)",
        st.ttft_ms
    );
    let gen_wall = (total_wall - slept).as_secs_f64();
    assert!(
        st.gen_tps >= st.n_generated as f64 / gen_wall * 0.999,
        "{} tok/s counts the pauses ({} tokens, {gen_wall} s awake)",
        st.gen_tps,
        st.n_generated
    );
}

/// The id of the token that is byte `b` alone (byte-level vocabularies have one).
fn byte_id(e: &Engine, b: u8) -> i32 {
    (0..e.vocab.len() as i32)
        .find(|&id| e.vocab.bytes(id) == [b])
        .unwrap_or_else(|| panic!("no token for byte {b}"))
}

/// Greedy, 2 tokens: enough to see what a next turn's prompt reused.
fn next_turn_settings() -> tokenscope::conversation::RequestSettings {
    tokenscope::conversation::RequestSettings {
        raw: false,
        sampling: SamplingParams::greedy(),
        max_tokens: 2,
        top_k_inspect: 5,
        paused: false,
        score_prompt: false,
        stop_at_surprise: None,
    }
}

/// The next turn feeds a reply back as the ids it was written with, not its
/// text tokenized again: a reply forced one byte-token at a time ("H", "i",
/// " ", …, not the canonical "Hi" " there") is in the next prompt as those
/// ids, so the model sees what it wrote and the KV cache is reused past it.
#[test]
fn the_next_turn_feeds_a_reply_as_its_own_ids_and_reuses_the_cache_past_it() {
    let mut e = engine(SMOL, config_with(1024));
    let text = "Hi there";
    let ids: Vec<i32> = text.bytes().map(|b| byte_id(&e, b)).collect();
    let q = "Say hi.";
    let id = e.start(GenerateRequest {
        paused: true,
        ..greedy(user(q), 16)
    });
    let forced = ids.clone();
    let first = drive(&mut e, id, |n, _| match forced.get(n - 1) {
        Some(&token) => vec![Command::Steer {
            request: id,
            steer: Steer::Force(token),
        }],
        None => vec![Command::Cancel { request: id }],
    });
    let got: Vec<i32> = first.steps.iter().map(|s| s.id).collect();
    assert_eq!(got, ids);
    let n_first = first.stats.as_ref().unwrap().n_prompt;

    use tokenscope::conversation::{Conversation, Node};
    let mut conv = Conversation::new(None);
    conv.append(Node::user(q));
    let a = conv.append(Node::assistant(None, Some(e.vocab.clone())));
    for s in &first.steps {
        conv.node_mut(a).push_step(s.clone());
    }
    assert_eq!(conv.node(a).content, text);
    conv.append(Node::user("Thanks."));
    let next = conv.append(Node::assistant(None, Some(e.vocab.clone())));
    let settings = next_turn_settings();
    let req = conv.request(next, &settings);
    let id = e.start(req);
    let out = e.collect(id).unwrap();
    let prompt = out
        .events
        .iter()
        .find_map(|ev| match ev {
            Event::Started { prompt, .. } => Some(prompt.clone()),
            _ => None,
        })
        .unwrap();
    // The reply's tokens in the prompt: those owned by its message (the
    // template's scaffolding around it aside) hold its ids in order.
    let owned: Vec<i32> = prompt.iter().map(|t| t.id).collect();
    assert!(
        owned.windows(ids.len()).any(|w| w == ids.as_slice()),
        "the reply's own ids are in the prompt: {owned:?}"
    );
    let st = out.stats.unwrap();
    assert_eq!(
        st.n_prompt_reused,
        n_first + ids.len(),
        "the first prompt and the whole reply come from the KV cache"
    );
}

/// A reply that ended with its end-of-generation token goes back as its ids
/// too (the template writes its own end of turn), and ids that are not this
/// model's (a reply written by another model) fall back to the text instead
/// of reaching llama.cpp.
#[test]
fn an_ended_reply_goes_back_as_its_ids_and_foreign_ids_as_text() {
    use tokenscope::conversation::{Conversation, Node};
    let mut e = engine(SMOL, config_with(1024));
    let q = "Say hi.";
    // "Hi" forced byte by byte (not the canonical token), then the end.
    let mut forced: Vec<i32> = b"Hi".iter().map(|&b| byte_id(&e, b)).collect();
    forced.push(e.vocab.eog[0]);
    let id = e.start(GenerateRequest {
        paused: true,
        ..greedy(user(q), 64)
    });
    let out = drive(&mut e, id, |n, _| {
        vec![Command::Steer {
            request: id,
            steer: Steer::Force(forced[n - 1]),
        }]
    });
    let st = out.stats.as_ref().unwrap();
    assert_eq!(st.stop, tokenscope::engine::StopReason::Eog, "premise");
    let n_first = st.n_prompt;
    let settings = next_turn_settings();
    let vocab = e.vocab.clone();
    let next_turn = |steps: &[TokenStep]| {
        let mut conv = Conversation::new(None);
        conv.append(Node::user(q));
        let a = conv.append(Node::assistant(None, Some(vocab.clone())));
        for s in steps {
            conv.node_mut(a).push_step(s.clone());
        }
        conv.append(Node::user("Thanks."));
        let next = conv.append(Node::assistant(None, Some(vocab.clone())));
        conv.request(next, &settings)
    };
    let n_content = out.steps.len() - 1;
    let req = next_turn(&out.steps);
    let id = e.start(req);
    let st = e.collect(id).unwrap().stats.unwrap();
    assert!(
        st.n_prompt_reused >= n_first + n_content,
        "the prompt and the reply's {n_content} tokens come from the cache: {} reused",
        st.n_prompt_reused
    );
    // The same reply with ids beyond this vocabulary: answered, from the text.
    let mut foreign = out.steps.clone();
    for s in &mut foreign {
        s.id += 10_000_000;
    }
    let id = e.start(next_turn(&foreign));
    let again = e.collect(id).unwrap();
    assert!(!again.steps.is_empty(), "the engine answers (no abort)");
}

#[test]
fn running_to_the_next_surprise_pauses_before_each_surprising_draw_and_changes_no_draw() {
    let mut e = engine(SMOL, config_with(1024));
    let stop = SurpriseStop {
        below_p: 0.3,
        above_entropy: 2.5,
    };
    let ids = |steps: &[TokenStep]| steps.iter().map(|s| s.id).collect::<Vec<_>>();
    let sampled = SamplingParams {
        seed: 11,
        ..SamplingParams::default()
    };
    for sampling in [SamplingParams::greedy(), sampled] {
        let q = user("Tell me a story about a cat.");
        let free = e.generate(q.clone(), false, sampling.clone(), 40).unwrap();
        let id = e.start(GenerateRequest {
            stop_at_surprise: Some(stop),
            ..GenerateRequest::new(q, sampling.clone(), 40, 20)
        });
        let s = drive(&mut e, id, |_, _| {
            vec![Command::Steer {
                request: id,
                steer: Steer::RunToSurprise(stop),
            }]
        });
        assert_eq!(
            ids(&s.steps),
            ids(&free.steps),
            "checking before each draw moves no draw ({sampling:?})"
        );
        // Where the free reply's own numbers say a token was a surprise.
        let expected: Vec<usize> = free
            .steps
            .iter()
            .enumerate()
            .filter(|(_, st)| stop.is_surprise(st.p().unwrap(), st.entropy().unwrap()))
            .map(|(i, _)| i)
            .collect();
        assert!(!expected.is_empty(), "the test needs a surprise");
        let paused_at: Vec<usize> = s.surprises.iter().map(|(n, _)| *n).collect();
        assert_eq!(paused_at, expected, "{sampling:?}");
        for (n, hit) in &s.surprises {
            let hit = hit.expect("each pause says why");
            let drawn = &free.steps[*n];
            assert_eq!(hit.id, drawn.id, "the token announced is the one drawn");
            assert!(
                (hit.p - drawn.p().unwrap()).abs() < 1e-6,
                "{} vs {:?}",
                hit.p,
                drawn.p()
            );
            assert!((hit.entropy - drawn.entropy().unwrap()).abs() < 1e-4);
            assert_eq!(hit.stop, stop);
        }
    }
}
