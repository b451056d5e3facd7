//! The popups' data: what each popup shows and edits while it is open
//! (the model picker, the sampling settings form, the system prompt, the
//! saved conversations), and the pure reading of it (the picker's rows, the
//! form's values). Drawing and keys are the components'.

use ratatui_textarea::TextArea;

use super::State;
use super::compare::CompareFor;
use crate::engine::{SamplingParams, SurpriseStop, sampler};
use crate::i18n::{tr, tr_args};
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

/// A field's name as the form shows it and its errors say it: the config
/// key in English; in another language its word there, but for the
/// field's own terms (top_k, top_p, min_p). The config file keeps the key.
pub fn field_label(key: &str) -> String {
    match key {
        "temperature" => tr("settings-temperature", "temperature"),
        "repeat_penalty" => tr("settings-repeat-penalty", "repeat_penalty"),
        "seed" => tr("settings-seed", "seed"),
        MAX_TOKENS => tr("settings-max-tokens", "max_tokens"),
        STOP_BELOW_P => tr("settings-surprise-p", "surprise_p"),
        STOP_ABOVE_ENTROPY => tr("settings-surprise-bits", "surprise_bits"),
        other => other.to_owned(),
    }
}

/// A field's help in the interface's language; `english`: the help the
/// field was made with ([`sampler::PARAMS`] or [`settings_form`]), shown
/// as is for a field this has no message for.
pub fn field_help(key: &str, english: &str) -> String {
    match key {
        "temperature" => tr("settings-help-temperature", "0 = greedy, up to 5"),
        "top_k" => tr("settings-help-top-k", "0 = off"),
        "top_p" => tr("settings-help-top-p", "(0, 1], 1 = off"),
        "min_p" => tr("settings-help-min-p", "[0, 1), 0 = off"),
        "repeat_penalty" => tr("settings-help-repeat-penalty", "0.1 to 5, 1 = off"),
        "seed" => tr("settings-help-seed", "random seed"),
        MAX_TOKENS => tr("settings-help-max-tokens", "reply length limit"),
        STOP_BELOW_P => tr("settings-help-surprise-p", "surprise: p below (F7, n/N)"),
        STOP_ABOVE_ENTROPY => tr("settings-help-surprise-bits", "or entropy above, in bits"),
        _ => english.to_owned(),
    }
}

/// The values a sampling parameter accepts, in words, as its error says
/// them (the English is [`sampler::Param::range`]).
pub(crate) fn range_text(p: &sampler::Param) -> String {
    match p.name {
        "temperature" => tr("settings-range-temperature", "between 0 and 5 (0 = greedy)"),
        "top_k" => tr("settings-range-top-k", "at most 1000000 (0 = off)"),
        "top_p" => tr("settings-range-top-p", "in (0, 1] (1 = off)"),
        "min_p" => tr("settings-range-min-p", "in [0, 1) (0 = off)"),
        "repeat_penalty" => tr(
            "settings-range-repeat-penalty",
            "between 0.1 and 5 (1 = off)",
        ),
        "repeat_last_n" => tr("settings-range-repeat-last-n", "at most 65536 (0 = off)"),
        "seed" => tr("settings-range-seed", "a whole number from 0 to 4294967295"),
        _ => p.range.to_owned(),
    }
}

/// The error of a field whose text is not a number (of its kind: a whole
/// number for top_k and the seed).
fn not_a_number(key: &str, text: &str) -> String {
    tr_args(
        "settings-not-a-number",
        "invalid { $name } = { $value }: not a number",
        &[("name", &field_label(key)), ("value", &format!("{text:?}"))],
    )
}

/// Reads the form back; errors name the field (as the form shows it).
pub fn parse_settings(
    form: &SettingsForm,
    base: &SamplingParams,
) -> Result<SettingsValues, String> {
    let mut p = base.clone();
    let mut max_tokens = 0;
    let mut surprise = SurpriseStop::default();
    for f in &form.fields {
        let text = f.value.trim();
        let number = || text.parse::<f32>().map_err(|_| not_a_number(f.label, text));
        if f.label == MAX_TOKENS {
            max_tokens = text.parse().map_err(|_| not_a_number(f.label, text))?;
        } else if f.label == STOP_BELOW_P {
            surprise.below_p = number()?;
        } else if f.label == STOP_ABOVE_ENTROPY {
            surprise.above_entropy = number()?;
        } else if let Some(row) = sampler::Param::named(f.label) {
            // Its only error: the text is not a number of the field's kind.
            p.set_text(row.which, &f.value)
                .map_err(|_| not_a_number(f.label, text))?;
        }
    }
    p.validate().map_err(|e| {
        let row = sampler::Param::named(e.name);
        tr_args(
            "settings-out-of-range",
            "invalid { $name } = { $value }: must be { $range }",
            &[
                ("name", &field_label(e.name)),
                ("value", &e.value),
                ("range", &row.map_or_else(|| e.range.to_owned(), range_text)),
            ],
        )
    })?;
    if max_tokens == 0 {
        return Err(tr_args(
            "settings-max-tokens-zero",
            "invalid { $name } = 0: must be at least 1",
            &[("name", &field_label(MAX_TOKENS))],
        ));
    }
    // What a surprise is: the same checks as the config's, in words here.
    surprise.validate().map_err(|e| {
        if e.starts_with("invalid surprise_p") {
            tr_args(
                "settings-surprise-p-range",
                "invalid { $name } = { $value }: a probability from 0 to 1",
                &[
                    ("name", &field_label(STOP_BELOW_P)),
                    ("value", &surprise.below_p),
                ],
            )
        } else {
            tr_args(
                "settings-surprise-bits-range",
                "invalid { $name } = { $value }: bits, 0 or more",
                &[
                    ("name", &field_label(STOP_ABOVE_ENTROPY)),
                    ("value", &surprise.above_entropy),
                ],
            )
        }
    })?;
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
