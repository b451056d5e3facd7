//! Colours and styles: the heatmap's bands (probability, entropy, KL)
//! (with the cues that stand in for colour under NO_COLOR), token
//! boundaries, the cursor, and the UI's palette.

use ratatui::style::{Color, Modifier, Style};

use super::state::HeatScale;
use crate::i18n::tr;

pub use crate::heat::{ENTROPY_BANDS, HEAT_BANDS, entropy_band, entropy_band_label, heat_band};

/// Heatmap colour of a token with probability `p`: green when the model was
/// sure, through yellow and orange, to red when it was not.
pub fn heat(p: f32) -> Color {
    HEAT_COLOURS[heat_band(p)]
}

/// Heatmap colour of a compared token by KL(A‖B) in nats: green where the
/// two models agree, through yellow and orange, to red where they differ.
pub fn kl_heat(kl: f64) -> Color {
    HEAT_COLOURS[kl_band(kl)]
}

/// The KL heatmap band of `kl` nats: an index into [`KL_BANDS`] (0 = agree).
pub fn kl_band(kl: f64) -> usize {
    KL_BANDS
        .iter()
        .position(|(upper, _)| kl < *upper)
        .unwrap_or(KL_BANDS.len() - 1)
}

/// The label of KL heatmap band `band` ([`KL_BANDS`]) in the interface's
/// language: the top band names the unit (nats, 奈特).
pub fn kl_band_label(band: usize) -> String {
    match KL_BANDS.get(band) {
        Some((upper, _)) if upper.is_infinite() => crate::i18n::tr("heat-kl-band-top", "≥1 nat"),
        Some((_, label)) => (*label).to_owned(),
        None => String::new(),
    }
}

/// How a heatmap band shows without colour (NO_COLOR), from sure (or
/// agreeing) to not, with its name for the legends: styles that monochrome
/// terminals draw. Reverse video stays the token cursor's.
pub const HEAT_CUES: [(Modifier, &str); 5] = [
    (Modifier::DIM, "dim"),
    (Modifier::empty(), "plain"),
    (Modifier::UNDERLINED, "underlined"),
    (Modifier::BOLD, "bold"),
    (
        Modifier::BOLD.union(Modifier::UNDERLINED),
        "bold underlined",
    ),
];

/// The style of heatmap band `band` (an index into [`HEAT_BANDS`] or
/// [`KL_BANDS`]): its colour, or without `color` its cue ([`HEAT_CUES`]).
pub fn band_style(band: usize, color: bool) -> Style {
    let band = band.min(HEAT_COLOURS.len() - 1);
    if color {
        Style::default().fg(HEAT_COLOURS[band])
    } else {
        Style::default().add_modifier(HEAT_CUES[band].0)
    }
}

/// The probability heatmap's style for a token with probability `p`.
pub fn heat_style(p: f32, color: bool) -> Style {
    band_style(heat_band(p), color)
}

/// The entropy heatmap's style for a token chosen from a distribution of
/// `bits` bits of entropy.
pub fn entropy_heat_style(bits: f32, color: bool) -> Style {
    band_style(entropy_band(bits), color)
}

/// The KL heatmap's style for a compared token `kl` nats apart.
pub fn kl_heat_style(kl: f64, color: bool) -> Style {
    band_style(kl_band(kl), color)
}

/// The monochrome legend of a heatmap whose band labels are `labels`:
/// `dim ≥80% · plain ≥50% · …`.
fn cue_legend(labels: impl Iterator<Item = impl std::fmt::Display>) -> String {
    HEAT_CUES
        .iter()
        .zip(labels)
        .map(|((_, cue), label)| format!("{cue} {label}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The probability heatmap's monochrome legend (`dim ≥80% · plain ≥50% · …`).
pub fn heat_cue_legend() -> String {
    cue_legend(HEAT_BANDS.iter().map(|(_, l)| *l))
}

/// The entropy heatmap's monochrome legend (`dim H<0.5 · plain <1 · …`).
pub fn entropy_cue_legend() -> String {
    cue_legend((0..ENTROPY_BANDS.len()).map(entropy_band_label))
}

/// The monochrome legend of `scale`.
pub fn cue_legend_of(scale: HeatScale) -> String {
    match scale {
        HeatScale::Probability => heat_cue_legend(),
        HeatScale::Entropy => entropy_cue_legend(),
        HeatScale::Kl => kl_cue_legend(),
    }
}

/// The band labels of `scale`, from sure (or agreeing) to not.
pub fn band_labels(scale: HeatScale) -> Vec<String> {
    match scale {
        HeatScale::Probability => HEAT_BANDS.iter().map(|(_, l)| (*l).to_owned()).collect(),
        HeatScale::Entropy => (0..ENTROPY_BANDS.len()).map(entropy_band_label).collect(),
        HeatScale::Kl => (0..KL_BANDS.len()).map(kl_band_label).collect(),
    }
}

/// The one-line legend of the heatmap on `scale`: what it measures, then
/// each band as a swatch (`■ ≥80%` in the band's colour) or, without
/// `color`, by its style's name (`dim ≥80%`), drawn in that style; `long`:
/// the title in words, else its short form (for narrow panes).
pub fn heat_legend(scale: HeatScale, color: bool, long: bool) -> Vec<(String, Style)> {
    let title = match (scale, long) {
        (HeatScale::Probability, true) => tr("heat-p-long", "heat: p of each token"),
        (HeatScale::Probability, false) => tr("heat-p", "heat p"),
        (HeatScale::Entropy, true) => tr(
            "heat-entropy-long",
            "heat: entropy where each token was chosen",
        ),
        (HeatScale::Entropy, false) => tr("heat-entropy", "heat entropy"),
        (HeatScale::Kl, true) => tr("heat-kl-long", "heat: KL(A‖B) per compared token"),
        (HeatScale::Kl, false) => tr("heat-kl", "heat KL(A‖B)"),
    };
    let mut items = vec![(format!("{title} "), dim())];
    for (band, label) in band_labels(scale).into_iter().enumerate() {
        let text = if color {
            format!("■ {label} ")
        } else {
            format!("{} {label} ", HEAT_CUES[band].1)
        };
        items.push((text, band_style(band, color)));
    }
    items.push((format!("· {}", tr("heat-f3-next", "F3 next")), dim()));
    items
}

/// The attention view's bands: (lower bound of the weight, label), from
/// most attended to least.
pub const ATTENTION_BANDS: [(f32, &str); 5] = [
    (0.3, "≥30%"),
    (0.1, "≥10%"),
    (0.03, "≥3%"),
    (0.01, "≥1%"),
    (0.0, "<1%"),
];

/// The attention view's style of a token weighed `w` (0 to 1): red for the
/// most attended through green for the least (the heat's colours, most
/// attended hottest), or without `color` the heat's cues.
pub fn attention_style(w: f32, color: bool) -> Style {
    let band = ATTENTION_BANDS
        .iter()
        .position(|(lower, _)| w >= *lower)
        .unwrap_or(ATTENTION_BANDS.len() - 1);
    band_style(ATTENTION_BANDS.len() - 1 - band, color)
}

/// The attention view's legend: each band's swatch (or style name).
pub fn attention_legend(color: bool) -> Vec<(String, Style)> {
    let mut items = vec![(
        format!(
            "{} ",
            crate::i18n::tr("lens-attention-weight", "attention weight")
        ),
        dim(),
    )];
    for (band, (lower, label)) in ATTENTION_BANDS.iter().enumerate() {
        let cue = ATTENTION_BANDS.len() - 1 - band;
        let text = if color {
            format!("■ {label} ")
        } else {
            format!("{} {label} ", HEAT_CUES[cue].1)
        };
        items.push((text, attention_style(*lower, color)));
    }
    items
}

/// The KL heatmap's monochrome legend (`dim KL<0.01 · plain <0.05 · …`).
pub fn kl_cue_legend() -> String {
    cue_legend((0..KL_BANDS.len()).map(kl_band_label))
}

/// What the welcome screen says without colour: what the heatmap's styles
/// mean (its colours are gone).
pub fn no_color_note() -> String {
    format!(
        "NO_COLOR is set: the heatmap marks each token's probability by style: {} (F3: by entropy, then off; F1 has the legends).",
        heat_cue_legend()
    )
}

/// The colours of the heatmap's bands, from sure (or agreeing) to not.
const HEAT_COLOURS: [Color; 5] = {
    let p = crate::heat::HEAT_PALETTE;
    [
        Color::Indexed(p[0]),
        Color::Indexed(p[1]),
        Color::Indexed(p[2]),
        Color::Indexed(p[3]),
        Color::Indexed(p[4]),
    ]
};

/// The KL heatmap's bands, for the legend: (upper bound in nats, label).
pub const KL_BANDS: [(f64, &str); 5] = [
    (0.01, "KL<0.01"),
    (0.05, "<0.05"),
    (0.2, "<0.2"),
    (1.0, "<1"),
    (f64::INFINITY, "≥1 nat"),
];

/// Alternating backgrounds that show token boundaries.
pub const BOUNDARY_BG: [Color; 2] = [Color::Indexed(236), Color::Indexed(239)];

/// The boundary mark of token `i`: alternating backgrounds, or without
/// `color` every other token in reverse video.
pub fn boundary(i: usize, color: bool) -> Style {
    match (color, i % 2) {
        (true, k) => Style::default().bg(BOUNDARY_BG[k]),
        (false, 1) => Style::default().add_modifier(Modifier::REVERSED),
        (false, _) => Style::default(),
    }
}

/// `st` with the token cursor on it ([`selected`]); without `color` a token
/// already in reverse video (a boundary mark) is turned back, so that the
/// cursor still differs from it.
pub fn cursor_on(st: Style, color: bool) -> Style {
    if !color && st.add_modifier.contains(Modifier::REVERSED) {
        st.remove_modifier(Modifier::REVERSED)
            .add_modifier(Modifier::BOLD)
    } else {
        st.patch(selected())
    }
}

pub const USER: Color = Color::Cyan;
pub const ASSISTANT: Color = Color::Magenta;
pub const SYSTEM: Color = Color::Yellow;
pub const DIM: Color = Color::DarkGray;
pub const BAR_BG: Color = Color::Indexed(235);
pub const STATUS_BG: Color = Color::Indexed(236);
pub const CHOSEN_BG: Color = Color::Indexed(238);
/// The sampler's probabilities (bars and percentages).
pub const SAMPLER: Color = Color::Indexed(75);

pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::default().fg(DIM)
}

pub fn error() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

pub fn info() -> Style {
    Style::default().fg(Color::Cyan)
}

pub fn title() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}
