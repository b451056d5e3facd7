//! The engine's token-level protocol on the real demo models: prompts reported
//! as ids with their messages, continuing from an exact token prefix, step,
//! force and run in the middle of a request, per-request seeds, model slots.

mod common;

use common::*;
use tokenscope::engine::{
    ChatMessage, Command, EngineHandle, Event, GenerateRequest, ModelRef, PromptToken, ReplyPrefix,
    Role, SamplingParams, Steer, StopReason, Vocab,
};

fn greedy(messages: Vec<ChatMessage>, max_tokens: u32) -> GenerateRequest {
    GenerateRequest::new(messages, SamplingParams::greedy(), max_tokens, 20)
}

/// The prompt and the reply prefix a request's `Started` reported.
fn started(out: &Outcome) -> (Vec<PromptToken>, Vec<i32>) {
    out.events
        .iter()
        .find_map(|ev| match ev {
            Event::Started { prompt, prefix, .. } => Some((prompt.clone(), prefix.clone())),
            _ => None,
        })
        .expect("Started")
}

/// The text of the prompt tokens attributed to `message`.
fn text_of(vocab: &Vocab, prompt: &[PromptToken], message: Option<u32>) -> String {
    let bytes: Vec<u8> = prompt
        .iter()
        .filter(|t| t.message == message)
        .flat_map(|t| vocab.bytes(t.id).to_vec())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The ids the engine gives `text` as a reply prefix (plain text).
fn ids_of(e: &mut Engine, text: &str) -> Vec<i32> {
    let id = e.start(GenerateRequest {
        prefix: ReplyPrefix::Text(text.into()),
        ..greedy(user("x"), 0)
    });
    started(&e.collect(id).unwrap()).1
}

#[test]
fn the_prompt_is_reported_as_ids_with_the_message_and_role_of_each() {
    let mut e = engine(SMOL, config_with(1024));
    let msgs = vec![
        ChatMessage::new(Role::System, "You are terse."),
        ChatMessage::new(Role::User, "Name a colour."),
    ];
    let id = e.start(greedy(msgs, 1));
    let out = e.collect(id).unwrap();
    let (prompt, _) = started(&out);
    let text_of = |m: Option<u32>| text_of(&e.vocab, &prompt, m);
    let system = text_of(Some(0));
    let user = text_of(Some(1));
    assert!(system.contains("You are terse."), "{system:?}");
    assert!(!system.contains("Name a colour"), "{system:?}");
    assert!(user.contains("Name a colour."), "{user:?}");
    assert!(
        user.contains("user"),
        "the turn's header is the user's: {user:?}"
    );
    // What follows the last message opens the reply.
    assert!(text_of(None).contains("assistant"), "{:?}", text_of(None));
    for t in &prompt {
        let want = match t.message {
            Some(0) => Some(Role::System),
            Some(1) => Some(Role::User),
            _ => None,
        };
        assert_eq!(t.role, want, "{t:?}");
    }
    // The ids are the ones the model was fed: in order, a prefix of the cache.
    assert_eq!(out.stats.unwrap().n_prompt, prompt.len());
}

#[test]
fn each_turns_closing_token_belongs_to_that_turn() {
    let mut e = engine(SMOL, config_with(512));
    let msgs = vec![
        ChatMessage::new(Role::User, "Hi"),
        ChatMessage::new(Role::Assistant, "Hello!"),
        ChatMessage::new(Role::User, "And you?"),
    ];
    let id = e.start(greedy(msgs, 1));
    let (prompt, _) = started(&e.collect(id).unwrap());
    let text_of = |m: Option<u32>| text_of(&e.vocab, &prompt, m);
    // The template's own system prompt opens the first turn; each turn ends
    // with its own `<|im_end|>` and line break (drawn at the end of its
    // message, not at the top of the next); the reply's opening is no one's.
    assert!(
        text_of(Some(0)).ends_with("<|im_start|>user\nHi<|im_end|>\n"),
        "{:?}",
        text_of(Some(0))
    );
    assert_eq!(
        text_of(Some(1)),
        "<|im_start|>assistant\nHello!<|im_end|>\n"
    );
    assert_eq!(text_of(Some(2)), "<|im_start|>user\nAnd you?<|im_end|>\n");
    assert_eq!(text_of(None), "<|im_start|>assistant\n");
}

#[test]
fn a_request_continued_from_a_token_prefix_predicts_what_the_full_run_did() {
    let mut e = engine(SMOL, config_with(1024));
    let q = user("What is the capital of France?");
    let full = e
        .generate(q.clone(), false, SamplingParams::greedy(), 12)
        .unwrap();
    assert!(full.steps.len() >= 6, "{:?}", full.text);
    let k = 4;
    let prefix: Vec<i32> = full.steps[..k].iter().map(|s| s.id).collect();
    // A fresh engine: nothing cached, the prefix must come from the request.
    let mut fresh = engine(SMOL, config_with(1024));
    let id = fresh.start(GenerateRequest {
        prefix: ReplyPrefix::Tokens(prefix.clone()),
        ..greedy(q, 1)
    });
    let out = fresh.collect(id).unwrap();
    assert_eq!(
        started(&out).1,
        prefix,
        "the exact ids, not re-tokenized text"
    );
    assert_eq!(
        out.steps.len(),
        1,
        "unscored prefix tokens are not reported"
    );
    let (next, want) = (view(&out.steps[0]), view(&full.steps[k]));
    assert_eq!(next.index, k, "the step's index counts the prefix");
    assert!(!next.forced);
    if next.id != want.id {
        // Batch shapes round differently: only a near tie may flip.
        let alt = want
            .top
            .iter()
            .find(|c| c.id == next.id)
            .map_or(0.0, |c| c.p);
        assert!(want.p - alt < 0.1, "{want:?} vs {next:?}");
    }
    for (a, b) in next.top.iter().zip(&want.top).take(5) {
        let pb = want.top.iter().find(|c| c.id == a.id).map_or(0.0, |c| c.p);
        assert!((a.p - pb).abs() < 0.05, "{a:?} vs {b:?}");
    }
}

#[test]
fn a_text_prefix_is_forced_scored_and_generation_goes_on_after_it() {
    let mut e = engine(SMOL, config_with(1024));
    let id = e.start(GenerateRequest {
        prefix: ReplyPrefix::Text("The capital of France is".into()),
        score_prefix: true,
        ..greedy(user("What is the capital of France?"), 4)
    });
    let out = e.collect(id).unwrap();
    let forced: Vec<_> = out.steps.iter().filter(|s| s.forced).collect();
    let text: String = forced.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(text, "The capital of France is");
    assert!(
        out.steps[..forced.len()].iter().all(|s| s.forced),
        "prefix first"
    );
    for s in &forced {
        let v = view(s);
        assert!(v.p > 0.0 && v.p <= 1.0, "scored: {v:?}");
        assert_eq!(s.p_sampled, None, "no draw for a forced token");
    }
    let free = &out.steps[forced.len()..];
    let stats = out.stats.clone().unwrap();
    match stats.stop {
        StopReason::MaxTokens => assert_eq!(free.len(), 4, "max_tokens counts after the prefix"),
        StopReason::Eog => assert!(free.len() <= 4),
        other => panic!("{other:?}"),
    }
    assert!(free.iter().all(|s| !s.forced));
    let after: String = free.iter().map(|s| s.text.as_str()).collect();
    assert!(after.contains("Paris"), "{after:?}");
    assert_eq!(stats.n_forced, forced.len());
    assert_eq!(stats.n_generated, forced.len() + free.len());
    let n_prompt = started(&out).0.len();
    assert_eq!(stats.n_prompt, n_prompt, "a scored prefix is not prompt");
    assert_eq!(
        stats.n_prompt,
        stats.n_prompt_evaluated + stats.n_prompt_reused
    );
}

#[test]
fn step_and_force_give_exactly_the_tokens_asked_then_run_finishes() {
    let mut e = engine(SMOL, config_with(1024));
    // The token to force: " Paris" as the model spells it.
    let paris = ids_of(&mut e, " Paris")[0];
    let id = e.start(GenerateRequest {
        paused: true,
        ..greedy(user("What is the capital of France?"), 6)
    });
    let mut steps = Vec::new();
    let mut pauses = 0;
    let mut stats = None;
    while stats.is_none() {
        match e.rx.recv().unwrap() {
            ev if ev.request() != Some(id) => {}
            Event::Paused { n_generated, .. } => {
                assert_eq!(n_generated, steps.len());
                pauses += 1;
                let cmd = match pauses {
                    1 | 3 => Command::Steer {
                        request: id,
                        steer: Steer::Step,
                    },
                    2 => Command::Steer {
                        request: id,
                        steer: Steer::Force(paris),
                    },
                    _ => Command::Steer {
                        request: id,
                        steer: Steer::Run,
                    },
                };
                e.handle.send(cmd);
            }
            Event::Token { step, .. } => steps.push(*step),
            Event::Done { stats: s, .. } => stats = Some(s),
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    assert_eq!(pauses, 4, "paused before each of 3 commands and before run");
    assert!(steps.len() >= 4);
    assert!(!steps[0].forced);
    assert!(steps[1].forced && steps[1].id == paris, "{:?}", steps[1]);
    assert!(view(&steps[1]).p > 0.0, "a forced token has the model's p");
    assert!(steps[2..].iter().all(|s| !s.forced));
    let stats = stats.unwrap();
    assert!(stats.stop == StopReason::MaxTokens || stats.stop == StopReason::Eog);
    assert_eq!(stats.n_forced, 1);
}

#[test]
fn a_paused_request_ends_cancelled_when_cancelled_or_superseded() {
    let mut e = engine(SMOL, config_with(512));
    let paused = |e: &mut Engine| {
        let id = e.start(GenerateRequest {
            paused: true,
            ..greedy(user("Hi"), 8)
        });
        loop {
            match e.rx.recv().unwrap() {
                Event::Paused { request, .. } if request == id => return id,
                Event::Failed { error, .. } => panic!("{error}"),
                _ => {}
            }
        }
    };
    let a = paused(&mut e);
    e.handle.cancel(a);
    let out = e.collect(a).unwrap();
    assert!(out.cancelled);
    // A new request while one is paused: the paused one ends, the new one runs.
    let b = paused(&mut e);
    let c = e.start(greedy(user("Hello"), 2));
    assert!(e.collect(b).unwrap().cancelled, "superseded");
    let out = e.collect(c).unwrap();
    assert_eq!(out.steps.len(), 2);
}

#[test]
fn different_seeds_at_temperature_one_draw_differently() {
    let mut e = engine(SMOL, config_with(512));
    let draw = |e: &mut Engine, seed: u32| {
        let sampling = SamplingParams {
            seed,
            ..no_truncation(1.0)
        };
        let r = e
            .generate(user("Write a random word."), false, sampling, 16)
            .unwrap();
        r.steps.iter().map(|s| s.id).collect::<Vec<_>>()
    };
    let (a, a2, b) = (draw(&mut e, 1), draw(&mut e, 1), draw(&mut e, 2));
    assert_eq!(a, a2, "the same seed draws the same");
    assert_ne!(a, b, "sibling branches need different draws");
}

#[test]
fn two_models_stay_loaded_in_two_slots() {
    let (mut handle, rx) = EngineHandle::spawn_with_receiver();
    let settings = config_with(512).load_settings();
    handle.load(1, 0, ModelRef::Local(model(SMOL)), settings.clone());
    handle.load(2, 1, ModelRef::Local(model(GEMMA)), settings);
    for slot in [0, 1] {
        handle.generate(10 + slot as u64, slot, greedy(user("Hi"), 2));
    }
    let mut names = Vec::new();
    let mut done = 0;
    while done < 2 {
        match rx.recv().unwrap() {
            Event::Loaded {
                slot, info, vocab, ..
            } => {
                assert_eq!(vocab.len(), info.n_vocab as usize);
                names.push((slot, info.arch));
            }
            Event::Done { stats, .. } => {
                assert_eq!(stats.n_generated, 2);
                done += 1;
            }
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    assert_eq!(names, [(0, "llama".to_string()), (1, "gemma3".to_string())]);
    // A slot that does not exist is an error, not a crash.
    handle.generate(20, 9, greedy(user("Hi"), 1));
    loop {
        match rx.recv().unwrap() {
            Event::Failed { request: 20, error } => {
                assert!(error.to_string().contains("slot 9"), "{error}");
                break;
            }
            ev => assert!(ev.request() != Some(20), "{ev:?}"),
        }
    }
}

#[test]
fn a_force_while_running_is_the_next_token_and_then_it_pauses() {
    let mut e = engine(SMOL, config_with(1024));
    let paris = ids_of(&mut e, " Paris")[0];
    let id = e.start(greedy(user("Count from 1 to 50."), 40));
    let mut events = Vec::new();
    let mut forced_sent = false;
    loop {
        let ev = e.rx.recv().unwrap();
        if ev.request() != Some(id) {
            continue;
        }
        match &ev {
            Event::Token { .. } if !forced_sent => {
                e.handle.send(Command::Steer {
                    request: id,
                    steer: Steer::Force(paris),
                });
                forced_sent = true;
            }
            Event::Paused { .. } => e.handle.send(Command::Steer {
                request: id,
                steer: Steer::Run,
            }),
            Event::Done { .. } => break,
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
        events.push(ev);
    }
    let at = events
        .iter()
        .position(|ev| matches!(ev, Event::Token { step, .. } if step.forced))
        .expect("the forced token came");
    let Event::Token { step, .. } = &events[at] else {
        unreachable!()
    };
    assert_eq!(step.id, paris);
    assert!(
        matches!(events[at + 1], Event::Paused { .. }),
        "paused right after the forced token, not one sampled token later: {:?}",
        &events[at + 1]
    );
    let after = events[at + 2..]
        .iter()
        .filter(|ev| matches!(ev, Event::Token { .. }))
        .count();
    assert!(after > 0, "Run goes on after the pause");
}

#[test]
fn a_token_prefix_ending_inside_a_character_is_completed_by_the_next_token() {
    let mut e = engine(SMOL, config_with(1024));
    let bei = ids_of(&mut e, "北");
    assert!(
        bei.len() >= 2 && std::str::from_utf8(e.vocab.bytes(bei[0])).is_err(),
        "premise: 北 is split over byte tokens: {bei:?}"
    );
    let id = e.start(GenerateRequest {
        prefix: ReplyPrefix::Tokens(bei[..1].to_vec()),
        paused: true,
        ..greedy(user("Say a city."), 4)
    });
    let mut texts = Vec::new();
    loop {
        match e.rx.recv().unwrap() {
            ev if ev.request() != Some(id) => {}
            Event::Paused { n_generated, .. } => {
                let cmd = match bei.get(1 + n_generated) {
                    Some(&token) => Command::Steer {
                        request: id,
                        steer: Steer::Force(token),
                    },
                    None => Command::Cancel { request: id },
                };
                e.handle.send(cmd);
            }
            Event::Token { step, .. } => texts.push(step.text.clone()),
            Event::Tail { text, .. } => panic!("no character is left unfinished: {text:?}"),
            Event::Cancelled { .. } => break,
            Event::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    assert_eq!(texts.concat(), "北", "{texts:?}");
}

#[test]
fn a_message_is_found_where_the_template_put_it_not_where_its_words_first_appear() {
    // SmolLM2's template adds a default system prompt ("…a helpful AI
    // assistant…") before a lone user message "help".
    let mut e = engine(SMOL, config_with(1024));
    let id = e.start(greedy(user("help"), 1));
    let out = e.collect(id).unwrap();
    let (prompt, _) = started(&out);
    let text_of = |m: Option<u32>| text_of(&e.vocab, &prompt, m);
    let (user, after) = (text_of(Some(0)), text_of(None));
    // Its closing is its own (see each_turns_closing_token_belongs_to_that_turn).
    assert!(user.ends_with("user\nhelp<|im_end|>\n"), "{user:?}");
    assert!(!after.contains("user"), "{after:?}");
    assert!(after.contains("assistant"), "{after:?}");
}
