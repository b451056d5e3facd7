//! End to end: comparing a reply under a second model in the real TUI (tmux)
//! on the real demo SmolLM2 Q4_1 and a Q2_K made from it: chat, the compare
//! key, the variant picked in the picker, the comparison's summary line, both
//! models' bars for one token in the inspector, compare mode left.

mod common;

use common::tmux::{Tmux, flat, idle};

/// The percentages on a line, in order.
fn percents(line: &str) -> Vec<f64> {
    line.split('%')
        .filter_map(|part| {
            let num: String = part
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            num.parse().ok()
        })
        .collect()
}

/// The number after `key` in `text`.
fn number_after(text: &str, key: &str) -> f64 {
    let rest = text
        .split(key)
        .nth(1)
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"));
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in:\n{text}"))
}

#[test]
fn a_reply_compared_with_a_q2_k_variant_shows_both_bars_and_a_summary() {
    let q2 = common::smol_q2k();
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(common::model(common::SMOL), models.join(common::SMOL)).unwrap();
    let q2_name = q2.file_name().unwrap().to_str().unwrap().to_string();
    std::os::unix::fs::symlink(&q2, models.join(&q2_name)).unwrap();
    let env = format!(
        "TOKENSCOPE_HOME='{}' TOKENSCOPE_CONFIG=/nonexistent.toml",
        home.path().display()
    );
    let t = Tmux::start(
        "compare",
        &env,
        &format!("--model {} --temp 0 --max-tokens 16", common::SMOL),
        160,
        44,
    );
    t.wait("the model to load", 60, |s| idle(s) && s.contains("Q4_1"));
    t.type_text("Name three colours.");
    t.keys(&["Enter"]);
    // The reply's header (the load notice may name "assistant" too).
    t.wait("the reply to start", 60, |s| s.contains("assistant · "));
    t.wait("the reply to finish", 120, |s| {
        idle(s) && s.contains("tok/s")
    });

    // The token cursor on the reply, then the compare key: the picker in
    // compare mode, the Q2_K variant first.
    t.keys(&["Tab"]);
    t.wait("the token cursor", 10, |s| s.contains("token cursor ·"));
    t.keys(&["v"]);
    let s = t.wait("the compare picker", 20, |s| {
        s.contains("compare with…") && s.contains("Q2_K")
    });
    let first_row = s
        .lines()
        .find(|l| l.contains("▶ SmolLM2"))
        .unwrap_or_else(|| panic!("no selected row:\n{s}"));
    assert!(first_row.contains("Q2_K"), "the variant is first: {s}");
    t.keys(&["Enter"]);

    // Done: the summary line under the reply (the marker that every row came).
    // B named with what its tensors really are (no Q2_K tensor fits SmolLM2's rows).
    let marker = format!("⇄ vs {q2_name} (Q2_K requested · mostly Q4_0): mean KL");
    let s = t.wait("the comparison to finish", 120, |s| {
        s.contains(&marker) && idle(s)
    });
    // The chat column, its lines joined: the summary may wrap.
    let chat = s
        .lines()
        .map(|l| l.split('│').next().unwrap_or("").trim())
        .collect::<Vec<_>>()
        .join(" ");
    let summary = &chat[chat.find(&marker).unwrap()..];
    let mean_kl = number_after(summary, "mean KL");
    let agree = number_after(summary, "top-1 agree");
    assert!(mean_kl > 0.0, "a Q2_K differs from its Q4_1: {summary}");
    assert!((0.0..=100.0).contains(&agree), "{summary}");
    assert!(summary.contains("ppl A"), "{summary}");
    // B stays loaded, with what it takes.
    assert!(s.contains("B Q2_K +"), "status shows model B: {s}");
    assert!(
        flat(&s).contains("KV cache"),
        "the notice says what B's memory is: {s}"
    );

    // One token: its first, then the next; the inspector shows both models.
    t.keys(&["Home", "Right"]);
    let s = t.wait("the inspector on token 2 of the compared reply", 10, |s| {
        s.contains(" token 2/") && s.contains("A vs B") && s.contains("KL(A‖B)")
    });
    let kl = number_after(&s, "KL(A‖B)");
    assert!(kl >= -1e-6, "{s}");
    let both = s
        .lines()
        .find(|l| l.contains("p A ") && l.contains(" · B "))
        .unwrap_or_else(|| panic!("no p A / B line:\n{s}"));
    let p = percents(both.split("p A ").nth(1).unwrap());
    assert_eq!(p.len(), 2, "{both}");
    // The token's row (▶): A's bar and p, B's bar and p of the same token.
    let row = s
        .lines()
        .find(|l| l.contains('▶') && l.contains('%'))
        .unwrap_or_else(|| panic!("no row for the token:\n{s}"));
    let row = row.split('│').find(|c| c.contains('▶')).unwrap();
    let row_p = percents(row);
    assert_eq!(row_p.len(), 2, "A's and B's p: {row}");
    assert!(
        (row_p[0] - p[0]).abs() < 0.01 && (row_p[1] - p[1]).abs() < 0.01,
        "{row} vs {both}"
    );
    assert!(
        row.contains('█') || row.contains('▏') || row_p[0] < 1.0,
        "bars: {row}"
    );

    // Leave compare mode: B is unloaded; the summary stays.
    t.keys(&["V"]);
    let s = t.wait("B to be unloaded", 10, |s| flat(s).contains("unloaded"));
    assert!(s.contains(&marker), "{s}");
    assert!(!s.contains("B Q2_K +"), "{s}");

    t.keys(&["Escape"]);
    t.wait("back to typing", 10, |s| s.contains("last token #"));
    t.keys(&["C-c"]);
    t.keys(&["C-c"]);
    t.assert_exited_sane(0);
}
