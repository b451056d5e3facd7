//! F3 / h: the heatmap's scale cycles probability → entropy → KL(A‖B) (when
//! a reply shown was compared) → off → probability. The legend row under the
//! chat says what the colours mean ([`super::theme::heat_legend`]); without
//! colour a notice also names the styles when the scale changes.

use super::state::{HeatScale, State};
use crate::i18n::{tr, tr_args};

/// The scale after `now`: `compared` is whether a reply shown was compared
/// (the KL scale exists only then).
pub(crate) fn next(now: Option<HeatScale>, compared: bool) -> Option<HeatScale> {
    match now {
        None => Some(HeatScale::Probability),
        Some(HeatScale::Probability) => Some(HeatScale::Entropy),
        Some(HeatScale::Entropy) if compared => Some(HeatScale::Kl),
        Some(HeatScale::Entropy) | Some(HeatScale::Kl) => None,
    }
}

/// Moves the heatmap to its next scale and says which one is shown.
pub(crate) fn cycle(s: &mut State) {
    let compared = s.msgs().any(|m| m.comparison.is_some());
    let scale = next(s.view.display.heat, compared);
    s.view.display.heat = scale;
    // With colour the legend row says it all; without, the styles could
    // read as emphasis, so a notice names them once.
    let Some(scale) = scale.filter(|_| !s.view.display.color) else {
        return;
    };
    let what = match scale {
        HeatScale::Probability => tr(
            "notice-heat-p",
            "the probability of each token given everything before it",
        ),
        HeatScale::Entropy => tr(
            "notice-heat-entropy",
            "the entropy of the distribution each token was chosen from (how undecided the model was)",
        ),
        HeatScale::Kl => tr(
            "notice-heat-kl",
            "KL(A‖B) per compared token (other tokens by probability)",
        ),
    };
    let legend = super::theme::cue_legend_of(scale);
    s.info(tr_args(
        "notice-heat",
        "Heatmap: { $what }, by style: { $legend } (F3: next scale).",
        &[("what", &what), ("legend", &legend)],
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scales_cycle_and_kl_only_with_a_comparison() {
        let mut seen = vec![];
        let mut h = None;
        for _ in 0..4 {
            h = next(h, false);
            seen.push(h);
        }
        assert_eq!(
            seen,
            [
                Some(HeatScale::Probability),
                Some(HeatScale::Entropy),
                None,
                Some(HeatScale::Probability)
            ]
        );
        assert_eq!(next(Some(HeatScale::Entropy), true), Some(HeatScale::Kl));
        assert_eq!(next(Some(HeatScale::Kl), true), None);
        // A comparison that left the screen: KL steps on to off.
        assert_eq!(next(Some(HeatScale::Kl), false), None);
    }
}
