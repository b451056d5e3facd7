//! What models are called on screen: the welcome screen suggests the Chinese
//! demo model by the name the picker shows it under, and replies saved
//! under a model's former name (before names came from the header's parts)
//! still find its vocabulary.

use super::bench::{fake_id, fake_model, fake_step};
use super::tests::H;
use crate::conversation::{Conversation, Node};

#[test]
fn the_welcome_screen_names_the_demo_model_that_knows_chinese() {
    let h = H::new(80, 24);
    let screen = h.screen();
    assert!(
        screen.contains("中文? Ctrl-O, type qwen: Qwen2.5 Coder 0.5B Instruct knows Chinese."),
        "{screen}"
    );
}

#[test]
fn replies_saved_under_the_former_name_get_the_vocabulary() {
    let mut h = H::new(80, 24);
    let mut conv = Conversation::default();
    conv.append(Node::user("hi"));
    let mut reply = Node::assistant(Some("SmolLM2-135M-Instruct.Q4_1".into()), None);
    reply.push_step(fake_step(0, "Hi", 0.9, 3));
    let id = conv.append(reply);
    h.s.session.conv = conv;
    let mut info = fake_model("SmolLM2 135M Instruct", "Q4_1");
    let vocab = super::bench::fake_vocab();
    info.former_name = None;
    h.s.set_model(info.clone(), vocab.clone());
    assert!(
        h.s.session.conv.node(id).vocab.is_none(),
        "premise: another name"
    );
    info.former_name = Some("SmolLM2-135M-Instruct.Q4_1".into());
    h.s.set_model(info, vocab);
    let node = h.s.session.conv.node(id);
    assert!(node.vocab.is_some());
    assert_eq!(node.piece(fake_id("Hi")), "Hi");
}
