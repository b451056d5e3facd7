//! The demo model that knows Chinese, Qwen2.5-Coder-0.5B-Instruct (qwen2,
//! 152k vocabulary, ChatML, no BOS), where Chinese matters: its chat
//! template rendered as transformers renders it, its multi-character
//! Chinese tokens shown whole, the chapter's examples end to end
//! ("中华人民共和" → 国, "猫爱吃" → 鱼), and why a one-token raw prompt
//! gets nearly flat predictions.

mod common;

use tokenscope::engine::{ChatMessage, ChatMode, Event, GenerateRequest, Role, TokenStep};

/// What one request did: the prompt's bytes, the note of its start, its steps.
struct Run {
    prompt: String,
    note: Option<String>,
    steps: Vec<TokenStep>,
}

fn run(e: &mut common::Engine, messages: Vec<ChatMessage>, raw: bool, max_tokens: u32) -> Run {
    let k = 10;
    let id = e.start(GenerateRequest {
        raw,
        ..GenerateRequest::new(messages, common::no_truncation(0.0), max_tokens, k)
    });
    let out = e.collect(id).expect("generates");
    let (prompt, note) = out
        .events
        .iter()
        .find_map(|ev| match ev {
            Event::Started { prompt, note, .. } => {
                Some((prompt.clone(), note.as_ref().map(ToString::to_string)))
            }
            _ => None,
        })
        .expect("a Started event");
    let bytes: Vec<u8> = prompt
        .iter()
        .flat_map(|t| e.vocab.bytes(t.id).to_vec())
        .collect();
    Run {
        prompt: String::from_utf8(bytes).expect("UTF-8 prompt"),
        note,
        steps: out.steps,
    }
}

/// The text and probability of the candidates at `step`, best first.
fn top(e: &common::Engine, step: &TokenStep) -> Vec<(String, f32)> {
    let d = step.dist.as_ref().expect("inspector on");
    d.top
        .iter()
        .map(|c| {
            (
                String::from_utf8_lossy(e.vocab.bytes(c.id)).into_owned(),
                d.p(c.logit),
            )
        })
        .collect()
}

#[test]
fn the_template_renders_chatml_as_transformers_does() {
    let mut e = common::engine(common::QWEN, common::config_with(1024));
    assert_eq!(e.info.chat_mode, ChatMode::Template);
    assert_eq!(e.info.name, "Qwen2.5 Coder 0.5B Instruct");
    assert_eq!(
        e.info.former_name.as_deref(),
        Some("qwen2.5-coder-0.5b-instruct-q4_k_m"),
        "what replies saved before were recorded under"
    );
    // transformers: tokenizer.apply_chat_template([{"role": "user", "content":
    // "猫爱吃什么？"}], tokenize=False, add_generation_prompt=True) with
    // Qwen/Qwen2.5-Coder-0.5B-Instruct's template: no system message given,
    // the template writes its own (Qwen's default), no tools: no tool block.
    let r = run(&mut e, common::user("猫爱吃什么？"), false, 1);
    assert_eq!(
        r.prompt,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\n猫爱吃什么？<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(r.note, None);
    // A system prompt of one's own replaces the default; earlier turns as written.
    let msgs = vec![
        ChatMessage::new(Role::System, "你是一只猫。"),
        ChatMessage::new(Role::User, "你好"),
        ChatMessage::new(Role::Assistant, "喵！"),
        ChatMessage::new(Role::User, "你爱吃什么？"),
    ];
    let r = run(&mut e, msgs, false, 1);
    assert_eq!(
        r.prompt,
        "<|im_start|>system\n你是一只猫。<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n\
         <|im_start|>assistant\n喵！<|im_end|>\n<|im_start|>user\n你爱吃什么？<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    assert_eq!(
        e.info.default_system.as_deref(),
        Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
    );
}

#[test]
fn chinese_examples_end_to_end_with_whole_multi_character_tokens() {
    let mut e = common::engine(common::QWEN, common::config_with(512));

    // "中华人民" is one token of four characters: the whole prompt.
    let r = run(&mut e, common::user("中华人民"), true, 1);
    assert_eq!(r.prompt, "中华人民");
    assert_eq!(r.prompt.len(), 12, "four characters of three bytes");
    // No BOS, one token: nearly flat (measured 12.76 bits of log2(151,936) = 17.2)
    // and said why.
    let entropy = r.steps[0].entropy().expect("entropy");
    assert!(entropy > 11.0, "{entropy}");
    let note = r.note.expect("the no-BOS note");
    assert!(
        note.contains("adds no BOS") && note.contains("1 token") && note.contains("nearly flat"),
        "{note}"
    );

    // "中华人民共和" → 国: measured (greedy, CPU) "国民" 41.2%, "共和国" 30.9%,
    // "国" 4.9%: the model goes on with 国 inside longer tokens, and 国 alone
    // is third. Each candidate is one step, shown whole.
    let r = run(&mut e, common::user("中华人民共和"), true, 1);
    assert_eq!(r.note, None, "two tokens: no note");
    let cands = top(&e, &r.steps[0]);
    assert_eq!(cands[0].0, "国民", "{cands:?}");
    assert_eq!(r.steps[0].text, "国民", "a two-character token is one step");
    assert!(cands[0].1 > 0.3, "{cands:?}");
    let guo = cands
        .iter()
        .position(|(t, _)| t == "国")
        .expect("国 among the top 10");
    assert!(guo < 3 && cands[guo].1 > 0.03, "{cands:?}");
    let with_guo: f32 = cands
        .iter()
        .filter(|(t, _)| t.contains('国'))
        .map(|(_, p)| p)
        .sum();
    assert!(with_guo > 0.7, "国 in {with_guo} of the mass: {cands:?}");
    assert!(r.steps[0].entropy().unwrap() < 4.5);

    // "猫爱吃" → 鱼: measured "猫" 11.6% first, "鱼" 10.4% second.
    let r = run(&mut e, common::user("猫爱吃"), true, 1);
    let cands = top(&e, &r.steps[0]);
    let yu = cands
        .iter()
        .position(|(t, _)| t == "鱼")
        .expect("鱼 among the top 10");
    assert!(yu < 2 && cands[yu].1 > 0.08, "{cands:?}");
}

#[test]
fn a_model_with_a_bos_gets_no_note() {
    let mut e = common::engine(common::GEMMA, common::config_with(512));
    let r = run(&mut e, common::user("中华人民"), true, 1);
    assert_eq!(r.note, None);
}
