//! `render`: draws the state by composing the components' drawing. Reads,
//! never changes.

use ratatui::Frame;

use super::components::{self, chat, input, inspector, status};
use super::state::State;

/// Draws the whole screen.
pub fn render(s: &State, f: &mut Frame) {
    let area = f.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let a = s.areas(area);
    let buf = f.buffer_mut();
    chat::render(s, buf, a.chat);
    if let Some(r) = a.inspector {
        inspector::render(s, buf, r);
    }
    if let Some(r) = a.summary {
        inspector::render_summary(s, buf, r);
    }
    if let Some(r) = a.legend {
        status::render_legend(s, buf, r);
    }
    if let Some(r) = a.notice {
        status::render_notice(s, buf, r);
    }
    input::render(s, buf, a.input, a.input_bordered);
    if let Some(r) = a.status {
        status::render(s, buf, r);
    }
    if let Some(p) = &s.view.popup {
        components::render_popup(s, p, buf, area);
    }
}
