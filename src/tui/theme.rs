//! Colours and styles.

use ratatui::style::{Color, Modifier, Style};

/// Heatmap colour of a token with probability `p`: green when the model was
/// sure, through yellow and orange, to red when it was not.
pub fn heat(p: f32) -> Color {
    if p >= 0.8 {
        Color::Indexed(40)
    } else if p >= 0.5 {
        Color::Indexed(148)
    } else if p >= 0.3 {
        Color::Indexed(220)
    } else if p >= 0.1 {
        Color::Indexed(208)
    } else {
        Color::Indexed(196)
    }
}

/// The heatmap bands, for the legend: (lower bound, label).
pub const HEAT_BANDS: [(f32, &str); 5] = [
    (0.8, "≥80%"),
    (0.5, "≥50%"),
    (0.3, "≥30%"),
    (0.1, "≥10%"),
    (0.0, "<10%"),
];

/// Heatmap colour of a compared token by KL(A‖B) in nats: green where the
/// two models agree, through yellow and orange, to red where they differ.
pub fn kl_heat(kl: f64) -> Color {
    let band = KL_BANDS
        .iter()
        .position(|(upper, _)| kl < *upper)
        .unwrap_or(KL_BANDS.len() - 1);
    HEAT_COLOURS[band]
}

/// The colours of the heatmap's bands, from sure (or agreeing) to not.
const HEAT_COLOURS: [Color; 5] = [
    Color::Indexed(40),
    Color::Indexed(148),
    Color::Indexed(220),
    Color::Indexed(208),
    Color::Indexed(196),
];

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
