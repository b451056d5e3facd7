//! The popups' data: what each popup shows and edits while it is open
//! (the model picker, the sampling settings form, the system prompt, the
//! saved conversations), and the pure reading of it (the picker's rows, the
//! form's values). Drawing and keys are the components'.

use ratatui_textarea::TextArea;

use super::State;
use super::compare::CompareFor;
use crate::engine::{SamplingParams, SurpriseStop, sampler};
use crate::store::Summary;
use crate::tui::models::ModelEntry;

/// The model picker popup.
#[derive(Debug, Clone, Default)]
pub struct Picker {
    pub filter: String,
    /// Index into the filtered list.
    pub selected: usize,
    /// Shown above the list (e.g. "no model loaded yet…").
    pub message: Option<String>,
    /// Open to choose a model to compare a reply with (the compare key):
    /// variants of the model in use first.
    pub compare: Option<CompareFor>,
}

impl Picker {
    /// Indices into `models` of the rows matching the filter.
    pub fn visible(&self, models: &[ModelEntry]) -> Vec<usize> {
        let mut v: Vec<usize> = models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.matches(&self.filter))
            .map(|(i, _)| i)
            .collect();
        if let Some(c) = &self.compare {
            v.sort_by_key(|&i| c.rank(&models[i]));
        }
        v
    }
}

/// One editable value of the sampling settings popup.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub label: &'static str,
    pub value: String,
    pub help: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SettingsForm {
    pub fields: Vec<Field>,
    pub selected: usize,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    Picker(Picker),
    Settings(SettingsForm),
    SystemPrompt(Box<TextArea<'static>>),
    /// The saved conversations.
    Chats(ChatList),
    /// The layer lens of a token, and what each layer attended to.
    Lens(Box<super::lens::LensView>),
    /// Where each of the top candidates at a token's step leads.
    Rollouts(Box<super::rollouts::RolloutsView>),
    /// What the KV cache saves: the same reply timed with and without it.
    KvCost(Box<super::kv_cost::KvCostView>),
}

/// What the saved conversations popup's keys do at the moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatListMode {
    Browse,
    /// Typing a new title for the selected conversation.
    Rename(String),
    /// Asking before deleting the selected conversation.
    ConfirmDelete,
}

/// The saved conversations popup's state.
#[derive(Debug, Clone)]
pub struct ChatList {
    /// Searched in titles and message text.
    pub filter: String,
    /// The conversations matching it, most recent first (filled by the host).
    pub rows: Vec<Summary>,
    /// Index into `rows`.
    pub selected: usize,
    pub mode: ChatListMode,
    /// The host has not answered yet.
    pub loading: bool,
    /// What went wrong reading or changing the list.
    pub error: Option<String>,
}

impl ChatList {
    /// The host's answer: the rows, the selection kept in range.
    pub fn set_rows(&mut self, rows: Vec<Summary>) {
        self.rows = rows;
        self.loading = false;
        self.error = None;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// The conversation selected, if any.
    pub fn selected_row(&self) -> Option<&Summary> {
        self.rows.get(self.selected)
    }
}

/// The form for `p`, `max_tokens` and `stop`: the parameters of
/// [`sampler::PARAMS`] that have a help text, in its order, then the reply
/// length, then what a surprise is.
pub fn settings_form(p: &SamplingParams, max_tokens: u32, stop: SurpriseStop) -> SettingsForm {
    let mut fields: Vec<Field> = sampler::PARAMS
        .iter()
        .filter_map(|row| {
            Some(Field {
                label: row.name,
                value: p.text(row.which),
                help: row.help?,
            })
        })
        .collect();
    fields.push(Field {
        label: MAX_TOKENS,
        value: max_tokens.to_string(),
        help: "reply length limit",
    });
    fields.push(Field {
        label: STOP_BELOW_P,
        value: stop.below_p.to_string(),
        help: "surprise: p below (F7, n/N)",
    });
    fields.push(Field {
        label: STOP_ABOVE_ENTROPY,
        value: stop.above_entropy.to_string(),
        help: "or entropy above, in bits",
    });
    SettingsForm {
        fields,
        selected: 0,
        error: None,
    }
}

/// The settings form's field for the reply length (not a sampling parameter).
const MAX_TOKENS: &str = "max_tokens";
/// The settings form's fields for what a surprise is ([`SurpriseStop`]).
const STOP_BELOW_P: &str = "surprise_p";
const STOP_ABOVE_ENTROPY: &str = "surprise_bits";

/// What the settings form holds, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsValues {
    pub sampling: SamplingParams,
    pub max_tokens: u32,
    pub surprise: SurpriseStop,
}

/// Reads the form back; errors name the field.
pub fn parse_settings(
    form: &SettingsForm,
    base: &SamplingParams,
) -> Result<SettingsValues, String> {
    let mut p = base.clone();
    let mut max_tokens = 0;
    let mut surprise = SurpriseStop::default();
    for f in &form.fields {
        let number = |v: &str| -> Result<f32, String> {
            v.trim()
                .parse::<f32>()
                .map_err(|_| format!("invalid {} = {:?}: not a number", f.label, v.trim()))
        };
        if f.label == MAX_TOKENS {
            max_tokens =
                f.value.trim().parse().map_err(|_| {
                    format!("invalid {} = {:?}: not a number", f.label, f.value.trim())
                })?;
        } else if f.label == STOP_BELOW_P {
            surprise.below_p = number(&f.value)?;
        } else if f.label == STOP_ABOVE_ENTROPY {
            surprise.above_entropy = number(&f.value)?;
        } else if let Some(row) = sampler::Param::named(f.label) {
            p.set_text(row.which, &f.value)?;
        }
    }
    p.validate().map_err(|e| e.to_string())?;
    if max_tokens == 0 {
        return Err("invalid max_tokens = 0: must be at least 1".into());
    }
    surprise.validate()?;
    Ok(SettingsValues {
        sampling: p,
        max_tokens,
        surprise,
    })
}

impl State {
    /// The open list, if the conversations popup is open.
    pub fn chat_list_mut(&mut self) -> Option<&mut ChatList> {
        match &mut self.view.popup {
            Some(Popup::Chats(l)) => Some(l),
            _ => None,
        }
    }
}
