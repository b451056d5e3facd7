//! The probability heatmap's bands, one definition for the chat (drawn in
//! ratatui colours by `tui::theme`) and `tokenscope score` (written as ANSI
//! escapes): which band a token's probability falls in, and each band's
//! colour in the xterm 256-colour palette.

/// The heatmap bands, for the legend: (lower bound, label).
pub const HEAT_BANDS: [(f32, &str); 5] = [
    (0.8, "≥80%"),
    (0.5, "≥50%"),
    (0.3, "≥30%"),
    (0.1, "≥10%"),
    (0.0, "<10%"),
];

/// The heatmap band of probability `p`: an index into [`HEAT_BANDS`] (0 =
/// sure, 4 = not).
pub fn heat_band(p: f32) -> usize {
    HEAT_BANDS
        .iter()
        .position(|(lower, _)| p >= *lower)
        .unwrap_or(HEAT_BANDS.len() - 1)
}

/// The entropy heatmap's bands, for the legend: (upper bound in bits,
/// label). A token is coloured by the entropy of the distribution it was
/// chosen from: how undecided the model was at that step (0 bits: one
/// candidate held all the probability; 1 bit: as undecided as a fair coin).
pub const ENTROPY_BANDS: [(f32, &str); 5] = [
    (0.5, "<0.5"),
    (1.0, "<1"),
    (2.0, "<2"),
    (4.0, "<4"),
    (f32::INFINITY, "≥4 bits"),
];

/// The label of entropy band `band` (an index into [`ENTROPY_BANDS`]) in
/// the interface language: the last one names the unit.
pub fn entropy_band_label(band: usize) -> String {
    match ENTROPY_BANDS.get(band) {
        Some((upper, _)) if upper.is_infinite() => {
            crate::i18n::tr("heat-entropy-band-top", "≥4 bits")
        }
        Some((_, label)) => (*label).to_owned(),
        None => String::new(),
    }
}

/// The entropy heatmap band of `bits`: an index into [`ENTROPY_BANDS`] (0 =
/// decided, 4 = spread over many candidates).
pub fn entropy_band(bits: f32) -> usize {
    ENTROPY_BANDS
        .iter()
        .position(|(upper, _)| bits < *upper)
        .unwrap_or(ENTROPY_BANDS.len() - 1)
}

/// The colours of the heatmap's bands (the KL heatmap's too), from sure (or
/// agreeing) to not, as xterm 256-colour palette indices: green, lime,
/// yellow, orange, red.
pub const HEAT_PALETTE: [u8; 5] = [40, 148, 220, 208, 196];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, with_lang};

    #[test]
    fn the_entropy_legend_names_its_unit_in_the_interface_language() {
        let labels = |lang| {
            with_lang(lang, || {
                (0..ENTROPY_BANDS.len())
                    .map(entropy_band_label)
                    .collect::<Vec<_>>()
            })
        };
        let en = labels(Lang::En);
        assert_eq!(
            en,
            ENTROPY_BANDS.map(|(_, l)| l.to_owned()),
            "English is the constants' text (the README's legend)"
        );
        let zh = labels(Lang::Zh);
        assert_eq!(zh[..4], en[..4], "numbers need no translation");
        assert_eq!(zh[4], "≥4 比特");
        assert_eq!(entropy_band_label(ENTROPY_BANDS.len()), "");
    }
}
