//! Without colour (NO_COLOR): the heatmap and the token boundaries must
//! still show, by style, and the legends say what the styles mean.

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use unicode_width::UnicodeWidthStr;

use super::state::HeatScale;
use super::tests::{H, find};
use super::theme::{HEAT_BANDS, HEAT_CUES};

/// One token in each heatmap band, sure first.
const BANDS: [(&str, f32); 5] = [
    ("Hel", 0.95),
    (" the", 0.6),
    (" model", 0.4),
    (" predicted", 0.2),
    (" tokens", 0.05),
];

/// The chat after an exchange of [`BANDS`], with colour or not.
fn chat(color: bool) -> (H, Buffer, (u16, u16)) {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    h.s.view.display.color = color;
    h.exchange("q", &BANDS);
    let b = h.buffer();
    let at = find(&b, "Hel the model predicted tokens").expect("the reply is drawn");
    (h, b, at)
}

/// Column of the first glyph of each of the [`BANDS`] tokens, from `x`.
fn token_columns(x: u16) -> Vec<u16> {
    BANDS
        .iter()
        .scan(x, |x, (t, _)| {
            // The token's first letter (a leading space is its own cell).
            let col = *x + (t.len() - t.trim_start().len()) as u16;
            *x += t.width() as u16;
            Some(col)
        })
        .collect()
}

#[test]
fn without_colour_each_heatmap_band_has_its_own_style() {
    let (_, b, (x, y)) = chat(false);
    let cues: Vec<Modifier> = token_columns(x)
        .into_iter()
        .map(|cx| {
            let cell = &b[(cx, y)];
            assert_eq!(cell.fg, Color::Reset, "no colour at {cx}: {cell:?}");
            cell.modifier
        })
        .collect();
    assert_eq!(
        cues,
        HEAT_CUES.map(|(m, _)| m),
        "a style per band, sure first"
    );
    for (i, a) in cues.iter().enumerate() {
        for c in &cues[i + 1..] {
            assert_ne!(a, c, "two bands look alike: {cues:?}");
        }
    }
}

#[test]
fn with_colour_the_heatmap_is_colours_without_styles() {
    let (_, b, (x, y)) = chat(true);
    for ((cx, (_, p)), band) in token_columns(x).into_iter().zip(BANDS).zip(0..) {
        let cell = &b[(cx, y)];
        assert_eq!(cell.fg, super::theme::heat(p), "band {band}");
        assert_eq!(cell.modifier, Modifier::empty(), "band {band}");
    }
}

#[test]
fn without_colour_boundaries_alternate_reverse_video_and_the_cursor_still_shows() {
    let (mut h, _, (x, y)) = chat(false);
    // The heatmap off: the marks alone (its bold band would hide the cursor's bold).
    h.key(KeyCode::F(3));
    h.key(KeyCode::F(4));
    let b = h.buffer();
    let cols = token_columns(x);
    let reversed = |b: &Buffer, cx: u16| b[(cx, y)].modifier.contains(Modifier::REVERSED);
    let marks: Vec<bool> = cols.iter().map(|&cx| reversed(&b, cx)).collect();
    assert_eq!(
        marks,
        [false, true, false, true, false],
        "every other token"
    );
    // The token cursor on a reversed token (" predicted", the fourth) turns it back.
    h.key(KeyCode::Tab);
    h.key(KeyCode::Left);
    let b = h.buffer();
    assert!(!reversed(&b, cols[3]), "the cursor differs from its mark");
    assert!(b[(cols[3], y)].modifier.contains(Modifier::BOLD));
    assert!(reversed(&b, cols[1]), "the other marks stay");
}

#[test]
fn without_colour_the_help_and_the_heatmap_notice_name_the_styles() {
    for width in [78, 60] {
        let lines = super::components::help::help_lines(width, false);
        let text: Vec<String> = lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        for l in &text {
            assert!(l.width() <= width, "{l:?} is wider than {width}");
        }
        let all = text.join("\n");
        for ((_, cue), (_, label)) in HEAT_CUES.iter().zip(HEAT_BANDS) {
            assert!(all.contains(&format!("{cue} {label}")), "{cue}: {all}");
        }
        assert!(
            all.contains("bold underlined ≥1 nat"),
            "the KL legend: {all}"
        );
        // Each item is drawn in the style it names.
        let underlined = lines
            .iter()
            .flat_map(|l| &l.spans)
            .find(|s| s.content.starts_with("underlined ≥30%"))
            .expect("the underlined band");
        assert_eq!(underlined.style.add_modifier, Modifier::UNDERLINED);
        assert_eq!(underlined.style.fg, None);
    }

    let (mut h, _, _) = chat(false);
    h.key(KeyCode::F(3));
    assert_eq!(h.s.view.display.heat, Some(HeatScale::Entropy));
    let notice = &h.s.view.notice.as_ref().expect("a notice").text;
    assert!(
        notice.contains(&super::theme::entropy_cue_legend()),
        "{notice}"
    );
    h.key(KeyCode::F(3));
    assert!(!h.s.view.display.heatmap());
    h.key(KeyCode::F(3));
    assert_eq!(h.s.view.display.heat, Some(HeatScale::Probability));
    let notice = &h.s.view.notice.as_ref().expect("a notice").text;
    assert!(
        notice.contains(&super::theme::heat_cue_legend()),
        "{notice}"
    );
}

#[test]
fn without_colour_the_welcome_says_what_the_heatmap_styles_mean() {
    let mut h = H::new(100, 30).loaded("gemma-3-270m-it", "Q8_0");
    // The note wraps: compared without spaces and the inspector's borders.
    let squeezed = |h: &H| {
        h.screen()
            .split_whitespace()
            .collect::<String>()
            .replace('│', "")
    };
    assert!(
        !squeezed(&h).contains("NO_COLOR"),
        "with colour: not a word"
    );
    h.s.view.display.color = false;
    let legend: String = super::theme::heat_cue_legend().split_whitespace().collect();
    let screen = squeezed(&h);
    assert!(
        screen.contains("NO_COLORisset") && screen.contains(&legend),
        "{}",
        h.screen()
    );
}
