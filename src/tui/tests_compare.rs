//! Comparing a reply under a second model, through `update` with scripted
//! engine events: the picker's compare mode, slot B's load, the exact ids
//! sent, rows landing on the reply, the inspector and heatmap, Esc, unloading.

use crossterm::event::KeyCode;
use ratatui::style::Color;

use super::bench::{fake_id, fake_model};
use super::compare::{CompareCmd, JobPhase, SLOT_B};
use super::state::{Focus, HeatScale, NoticeLevel, Popup};
use super::tests::{H, PARIS, entries, find};
use super::update::{Effect, Msg};
use crate::conversation::CompareStatus;
use crate::engine::{
    Capabilities, CompareInput, CompareRow, EngineError, Event, RequestId, StopReason,
};

const A_NAME: &str = "gemma-3-270m-it";
const A_QUANT: &str = "Q8_0";
const B_FILE: &str = "gemma-3-270m-it-Q4_K_M.gguf";

/// A chat with one Paris reply, model A loaded, the token cursor on the reply.
pub(super) fn chatted() -> H {
    let mut h = H::new(120, 40).loaded(A_NAME, A_QUANT);
    h.send(Msg::Models(entries()));
    h.exchange("Capital of France?", PARIS);
    h.key(KeyCode::Tab);
    assert_eq!(h.s.view.focus, Focus::Navigate);
    h
}

/// The node of the last reply shown.
fn reply(h: &H) -> crate::conversation::NodeId {
    h.s.view.path[h.s.last_token().unwrap().msg]
}

/// `v`, then Enter on the first row of the compare picker: returns the
/// request id of B's load.
fn compare_first_variant(h: &mut H) -> RequestId {
    h.key(KeyCode::Char('v'));
    h.send(Msg::Models(entries()));
    h.key(KeyCode::Enter);
    assert!(h.s.view.popup.is_none(), "{:?}", h.s.view.notice);
    h.host.next
}

/// `v`, Enter, B loaded: returns the comparison's request id.
pub(super) fn comparing(h: &mut H) -> RequestId {
    let load = compare_first_variant(h);
    h.engine(b_loaded(load));
    h.host.next
}

/// Rows for reply tokens `from..to` arrive for comparison `run`.
pub(super) fn rows_arrive(h: &mut H, run: RequestId, from: usize, to: usize) {
    h.engine(Event::Compared {
        request: run,
        rows: rows(42, from, to),
        decode_s: 0.1,
        kl_s: 0.01,
    });
}

/// The event of model B loaded in slot 1.
fn b_loaded(request: RequestId) -> Event {
    let mut info = fake_model(A_NAME, "Q4_K_M");
    info.model = crate::engine::ModelRef::Local(format!("/models/{B_FILE}").into());
    Event::Loaded {
        request,
        slot: SLOT_B,
        info: Box::new(info),
        vocab: super::bench::fake_vocab(),
        caps: Capabilities::local(),
    }
}

/// Rows for reply tokens `from..to` of PARIS, B a little less sure, its
/// top-1 another token at token 5 (" Paris").
fn rows(score_from: usize, from: usize, to: usize) -> Vec<CompareRow> {
    (from..to)
        .map(|i| {
            let (text, p) = PARIS[i];
            let id = fake_id(text);
            let (pa, pb) = (p as f64, p as f64 * 0.8);
            let other = fake_id(" the");
            let b_top = if i == 5 { other } else { id };
            CompareRow {
                index: score_from + i,
                id,
                ln_p: vec![pa.ln(), pb.ln()],
                top1: vec![id, b_top],
                kl: vec![0.01 * i as f64],
                top: vec![
                    vec![(id, pa.ln()), (other, (1.0 - pa).ln())],
                    if i == 5 {
                        vec![(other, 0.6f64.ln()), (id, pb.ln())]
                    } else {
                        vec![(id, pb.ln()), (other, 0.1f64.ln())]
                    },
                ],
                ln_p_of_a_top: vec![vec![pb.ln(), (1.0 - pb).ln()]],
            }
        })
        .collect()
}

#[test]
fn the_compare_picker_lists_variants_first_and_refuses_other_models() {
    let mut h = chatted();
    h.key(KeyCode::Char('v'));
    h.send(Msg::Models(entries()));
    let Some(Popup::Picker(p)) = &h.s.view.popup else {
        panic!("the picker opens");
    };
    let order: Vec<&str> = p
        .visible(&h.s.model.files.models)
        .iter()
        .map(|&i| h.s.model.files.models[i].file_name.as_str())
        .collect();
    assert_eq!(order[0], B_FILE, "the other variant first: {order:?}");
    assert_eq!(order[1], "gemma-3-270m-it-Q8_0.gguf", "then A itself");
    let screen = h.screen();
    assert!(screen.contains("compare with…"), "{screen}");
    assert!(
        screen.contains("another vocabulary (151936 tokens, this model has 262144)"),
        "{screen}"
    );
    // Enter on another model: refused, the picker stays open.
    h.type_str("qwen");
    h.key(KeyCode::Enter);
    assert!(matches!(h.s.view.popup, Some(Popup::Picker(_))));
    let n = h.s.view.notice.clone().unwrap();
    assert_eq!(n.level, NoticeLevel::Error);
    assert!(n.text.contains("cannot be compared"), "{}", n.text);
    assert!(h.host.compares.is_empty());
}

#[test]
fn a_reply_is_compared_on_its_exact_ids_and_shown_side_by_side() {
    let mut h = chatted();
    let load = compare_first_variant(&mut h);
    assert_eq!(
        h.host.compares,
        [CompareCmd::LoadB(
            format!("/models/{B_FILE}").into(),
            h.s.config.load_settings()
        )]
    );
    assert!(matches!(
        h.s.compare.job.as_ref().unwrap().phase,
        JobPhase::LoadingB { .. }
    ));
    h.engine(Event::LoadProgress {
        request: load,
        fraction: 0.5,
    });
    assert!(h.screen().contains("⇄ loading"), "{}", h.screen());
    h.engine(b_loaded(load));
    // Model A stays the one chatted with.
    assert_eq!(h.s.model.info.as_ref().unwrap().quant, A_QUANT);
    assert_eq!(h.s.compare.b.as_ref().unwrap().quant, "Q4_K_M");
    let run = h.host.next;
    let Some(CompareCmd::Run(req)) = h.host.compares.last().cloned() else {
        panic!("{:?}", h.host.compares);
    };
    assert_eq!(req.slots, [0, SLOT_B]);
    assert!(req.top_k > 0);
    // The prompt as the engine built it (Started), then the reply's own ids.
    let CompareInput::Tokens { tokens, score_from } = req.input else {
        panic!("exact ids");
    };
    let prompt: Vec<i32> = super::bench::fake_prompt(42).iter().map(|t| t.id).collect();
    let reply_ids: Vec<i32> = PARIS.iter().map(|(t, _)| fake_id(t)).collect();
    assert_eq!(score_from, 42);
    assert_eq!(tokens[..42], prompt[..]);
    assert_eq!(tokens[42..], reply_ids[..]);

    rows_arrive(&mut h, run, 0, 4);
    assert!(h.screen().contains("⇄ comparing 4/7"), "{}", h.screen());
    rows_arrive(&mut h, run, 4, 7);
    h.engine(Event::Done {
        request: run,
        stats: super::bench::fake_stats(7, StopReason::Eog),
    });
    assert!(h.s.compare.job.is_none());
    let reply_node = reply(&h);
    let c =
        h.s.session
            .conv
            .node(reply_node)
            .comparison
            .clone()
            .unwrap();
    assert_eq!(c.status, CompareStatus::Done);
    assert_eq!(c.rows.len(), 7);
    let screen = h.screen();
    assert!(
        screen.contains(&format!("⇄ vs {B_FILE} (Q4_K_M): mean KL 0.0300")),
        "{screen}"
    );
    assert!(screen.contains("top-1 agree 85.7%"), "{screen}");
    // B stays loaded, and the status bar says what it takes.
    assert!(screen.contains("B Q4_K_M +"), "{screen}");

    // The cursor on " Paris": both distributions and the KL.
    h.key(KeyCode::Home);
    for _ in 0..5 {
        h.key(KeyCode::Right);
    }
    let screen = h.screen();
    assert!(screen.contains("A vs B"), "{screen}");
    assert!(screen.contains("KL(A‖B) 0.0500 nats"), "{screen}");
    assert!(screen.contains("p A 41.00% · B 32.80%"), "{screen}");
    assert!(screen.contains("top-1 differs"), "{screen}");
    let row = screen
        .lines()
        .find(|l| l.contains("1 ▶") && l.contains("Paris"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(row.contains("41.00%") && row.contains("32.80%"), "{row}");
    // B's own top (another order here): " the" first, with A's p of it.
    let own = screen
        .split("B's own top:")
        .nth(1)
        .unwrap_or_else(|| panic!("{screen}"));
    let first = own.lines().nth(1).unwrap();
    assert!(
        first.contains("the") && first.contains("59.00%") && first.contains("60.00%"),
        "{first}"
    );

    // The heatmap: probability, then entropy, then KL, then off.
    assert_eq!(h.s.view.display.heat, Some(HeatScale::Probability));
    h.key(KeyCode::Char('h'));
    assert_eq!(h.s.view.display.heat, Some(HeatScale::Entropy));
    h.key(KeyCode::Char('h'));
    assert_eq!(h.s.view.display.heat, Some(HeatScale::Kl));
    assert!(
        ["heat: KL(A‖B) per compared token ■", "heat KL(A‖B) ■"]
            .iter()
            .any(|t| h.screen().contains(t)),
        "the legend row: {}",
        h.screen()
    );
    let b = h.buffer();
    let (x, y) = find(&b, " Paris.").unwrap();
    assert_eq!(b[(x + 1, y)].fg, super::theme::kl_heat(0.05));
    assert_eq!(b[(x + 1, y)].fg, Color::Indexed(220));
    assert!(h.screen().contains("heat KL"));
    h.key(KeyCode::Char('h'));
    assert!(!h.s.view.display.heatmap());
    assert!(
        !h.screen().contains("heat: "),
        "no legend with the heatmap off"
    );

    // V leaves compare mode: B is unloaded; the comparison stays.
    h.key(KeyCode::Char('V'));
    assert_eq!(h.host.compares.last(), Some(&CompareCmd::UnloadB));
    assert!(h.s.compare.b.is_none());
    assert!(h.s.session.conv.node(reply_node).comparison.is_some());
}

#[test]
fn esc_stops_a_comparison_and_the_rows_so_far_stay() {
    let mut h = chatted();
    let run = comparing(&mut h);
    rows_arrive(&mut h, run, 0, 3);
    h.key(KeyCode::Esc);
    assert!(
        h.effects
            .iter()
            .any(|e| matches!(e, Effect::Cancel(r) if *r == run))
    );
    assert_eq!(
        h.s.compare.job.as_ref().unwrap().phase,
        JobPhase::Cancelling
    );
    h.engine(Event::Cancelled {
        request: run,
        stats: None,
    });
    assert!(h.s.compare.job.is_none());
    let c = h.s.session.conv.node(reply(&h)).comparison.clone().unwrap();
    assert_eq!(c.status, CompareStatus::Stopped);
    assert_eq!(c.rows.len(), 3);
    assert!(h.screen().contains("stopped at 3/7"), "{}", h.screen());
    // B stays loaded: comparing again needs no load.
    h.key(KeyCode::Char('v'));
    h.send(Msg::Models(entries()));
    let n = h.host.compares.len();
    h.key(KeyCode::Enter);
    assert!(
        matches!(h.host.compares[n], CompareCmd::Run(_)),
        "{:?}",
        h.host.compares
    );
    // Switching model A unloads B (and stops what runs).
    h.key(KeyCode::F(2));
    h.send(Msg::Models(entries()));
    h.type_str("qwen");
    h.key(KeyCode::Enter);
    assert!(h.host.compares.contains(&CompareCmd::UnloadB));
    assert!(h.s.compare.b.is_none() && h.s.compare.job.is_none());
}

#[test]
fn a_load_that_does_not_fit_and_a_remote_model_are_refused_clearly() {
    let mut h = chatted();
    let load = compare_first_variant(&mut h);
    h.engine(Event::Failed {
        request: load,
        error: EngineError::NotEnoughMemory(
            "not enough memory for x.gguf: it needs about 9 GB".into(),
        ),
    });
    let n = h.s.view.notice.clone().unwrap();
    assert_eq!(n.level, NoticeLevel::Error);
    assert!(
        n.text.contains("Could not load") && n.text.contains("not enough memory"),
        "{}",
        n.text
    );
    assert!(h.s.compare.job.is_none() && h.s.compare.b.is_none());
    assert!(
        h.s.session.conv.node(reply(&h)).comparison.is_none(),
        "nothing was compared"
    );
    // The model in use is untouched.
    assert_eq!(h.s.model.info.as_ref().unwrap().quant, A_QUANT);

    // A remote model as A: refused with the engine's words.
    h.s.model.caps = Some(Capabilities {
        remote: Some("http://server:8080".into()),
        ..Capabilities::local()
    });
    h.key(KeyCode::Char('v'));
    assert!(h.s.view.popup.is_none());
    let n = h.s.view.notice.clone().unwrap();
    assert!(
        n.text.contains("remote server at http://server:8080"),
        "{}",
        n.text
    );
}

#[test]
fn a_reply_being_written_or_a_prompt_token_is_not_compared() {
    let mut h = H::new(120, 40).loaded(A_NAME, A_QUANT);
    h.key(KeyCode::F(10));
    assert!(
        h.s.view
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("No reply to compare")
    );
    let id = h.ask("Hi");
    h.started(id);
    h.stream(id, &PARIS[..2]);
    h.key(KeyCode::F(10));
    assert!(
        h.s.view
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("being written")
    );
    assert!(h.s.view.popup.is_none());
    h.done(id, 2);
    // F10 outside the token cursor compares the last reply.
    h.key(KeyCode::F(10));
    assert!(matches!(&h.s.view.popup, Some(Popup::Picker(p)) if p.compare.is_some()));
}

#[test]
fn a_new_chat_stops_a_comparison_and_forgets_the_prompts_by_node() {
    let mut h = chatted();
    let run = comparing(&mut h);
    assert!(!h.s.compare.prompts.is_empty());
    h.ctrl('n');
    assert!(
        h.effects
            .iter()
            .any(|e| matches!(e, Effect::Cancel(r) if *r == run))
    );
    assert!(h.s.compare.job.is_none() && h.s.compare.prompts.is_empty());
    // Its late rows go nowhere; B stays loaded for the next comparison.
    rows_arrive(&mut h, run, 0, 2);
    assert!(h.s.compare.b.is_some());
    assert!(h.s.msgs().all(|m| m.comparison.is_none()));
}

#[test]
fn a_small_terminal_shows_both_probabilities_and_the_kl_in_one_line() {
    let mut h = chatted();
    let run = comparing(&mut h);
    rows_arrive(&mut h, run, 0, 7);
    h.engine(Event::Done {
        request: run,
        stats: super::bench::fake_stats(7, StopReason::Eog),
    });
    h.key(KeyCode::Home);
    h.send(Msg::Input(crossterm::event::Event::Resize(60, 14)));
    let screen = h.screen();
    assert!(
        screen.contains("A 92.00% · B 73.60% · KL(A‖B) 0.0000"),
        "{screen}"
    );
}

#[test]
fn a_reply_written_by_a_model_with_other_tokens_is_not_compared() {
    let mut h = chatted();
    h.key(KeyCode::Esc);
    h.key(KeyCode::F(2));
    h.send(Msg::Models(entries()));
    h.type_str("qwen");
    h.key(KeyCode::Enter);
    let load = h.host.next;
    let mut vocab = (*super::bench::fake_vocab()).clone();
    vocab.pieces[1] = b"other".to_vec();
    h.engine(Event::Loaded {
        request: load,
        slot: 0,
        info: Box::new(fake_model("qwen2.5-0.5b-instruct", "Q4_K_M")),
        vocab: std::sync::Arc::new(vocab),
        caps: Capabilities::local(),
    });
    h.key(KeyCode::F(10));
    assert!(h.s.view.popup.is_none());
    let n = h.s.view.notice.clone().unwrap();
    assert_eq!(n.level, NoticeLevel::Error);
    assert!(
        n.text.contains(&format!("written by {A_NAME}")) && n.text.contains("Ctrl-O"),
        "{}",
        n.text
    );
}

#[test]
fn without_another_variant_the_compare_picker_says_how_to_make_one() {
    let mut h = chatted();
    h.key(KeyCode::Char('v'));
    let no_variant: Vec<_> = entries()
        .into_iter()
        .filter(|e| e.file_name != B_FILE)
        .collect();
    h.send(Msg::Models(no_variant));
    let screen = super::tests::buffer_text(&h.buffer()).replace('\n', " ");
    assert!(screen.contains("No other variant"), "{screen}");
    assert!(screen.contains("tokenscope quantize"), "{screen}");
}

#[test]
fn ctrl_c_stops_a_comparison_then_twice_quits() {
    let mut h = chatted();
    let run = comparing(&mut h);
    h.ctrl('c');
    assert!(
        h.effects
            .iter()
            .any(|e| matches!(e, Effect::Cancel(r) if *r == run))
    );
    h.ctrl('c');
    assert!(!h.effects.iter().any(|e| matches!(e, Effect::RestartEngine)));
    h.ctrl('c');
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Quit)));
}

#[test]
fn the_summary_line_names_what_b_really_holds() {
    let mut h = chatted();
    // B's tensors are not what its name says (llama.cpp fell back).
    let mut models = entries();
    for m in &mut models {
        if m.file_name == B_FILE {
            m.label = "Q4_K_M requested · mostly Q8_0".into();
        }
    }
    h.key(KeyCode::Char('v'));
    h.send(Msg::Models(models));
    h.key(KeyCode::Enter);
    let load = h.host.next;
    h.engine(b_loaded(load));
    let run = h.host.next;
    rows_arrive(&mut h, run, 0, 7);
    h.engine(Event::Done {
        request: run,
        stats: super::bench::fake_stats(7, StopReason::Eog),
    });
    let screen = h.screen();
    assert!(
        screen.contains(&format!("⇄ vs {B_FILE} (Q4_K_M requested · mostly Q8_0)")),
        "{screen}"
    );
}
