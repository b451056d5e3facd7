//! The model part of [`State`]: the model in use (its info, vocabulary,
//! capabilities), what its context holds, its chat template's mode and
//! system prompt, and the sampler maths the inspector shows for it (the
//! settings a reply ran with, or the what-if ones).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Message, Popup, State, popup};
use crate::engine::{ChatMode, ModelInfo, ModelRef, SamplingParams, TokenStep, Vocab};
use crate::tui::models::ModelEntry;

/// The model files known (the picker's list), and those that failed this
/// session: a part of [`State`].
#[derive(Debug, Clone, Default)]
pub struct ModelFiles {
    /// What the picker lists, from the last scan (files of the model
    /// directories, models of the servers configured).
    pub models: Vec<ModelEntry>,
    /// A scan of them is under way.
    pub scanning: bool,
    /// Model files that crashed the engine process this session, with
    /// llama.cpp's reason (marked `✗ crashed llama.cpp` in the picker).
    pub crashed: BTreeMap<ModelRef, String>,
    /// Model files llama.cpp refused to load this session (without crashing),
    /// with the reason (marked `✗ failed to load` in the picker).
    pub load_failed: BTreeMap<ModelRef, String>,
}

/// The model part of [`State`]: the one in use, the files known, the
/// what-if settings.
#[derive(Default)]
pub struct Model {
    /// The model the engine has loaded.
    pub info: Option<ModelInfo>,
    /// Its vocabulary (sent once with the load).
    pub vocab: Option<Arc<Vocab>>,
    /// What the engine that runs the model can do (a remote server: no step
    /// mode, no entropy); `None` before the first load.
    pub caps: Option<crate::engine::Capabilities>,
    pub chat_mode: Option<ChatMode>,
    /// The model files known (the picker's list) and how each fared.
    pub files: ModelFiles,
    /// What-if sampling settings: the inspector's sampler column shows what
    /// they would do to the inspected step (from its stored candidates).
    pub whatif: Option<SamplingParams>,
}

impl Model {
    pub fn name(&self) -> Option<String> {
        self.info.as_ref().map(|m| m.name.clone())
    }

    /// Gives the saved replies of `conv` written by the model in use its
    /// vocabulary (their token texts), matching them by the model's name
    /// or its former name ([`ModelInfo::former_name`]); whether any got it.
    pub fn attach_vocab_to(&self, conv: &mut crate::conversation::Conversation) -> bool {
        let (Some(info), Some(vocab)) = (&self.info, &self.vocab) else {
            return false;
        };
        let mut attached = conv.attach_vocab(&info.name, vocab);
        if let Some(former) = &info.former_name {
            attached |= conv.attach_vocab(former, vocab);
        }
        attached
    }

    /// The model in use runs on a remote server.
    pub fn is_remote(&self) -> bool {
        self.caps.as_ref().is_some_and(|c| c.remote.is_some())
    }
}

/// The sampler's side of a step's candidates (see [`State::sampler_column`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerColumn {
    pub resampled: crate::engine::resample::Resampled,
    /// From what-if settings (else the reply's own).
    pub whatif: bool,
}

impl State {
    /// The sampling settings the what-if view applies: the settings popup's
    /// values while it is open and valid, else [`Model::whatif`].
    pub fn whatif_params(&self) -> Option<SamplingParams> {
        if let Some(Popup::Settings(form)) = &self.view.popup
            && let Ok(v) = popup::parse_settings(form, &self.config.sampling)
        {
            return Some(v.sampling);
        }
        self.model.whatif.clone()
    }

    /// The sampler column for `step` of reply `m`: each candidate's fate
    /// under the what-if settings, else under the settings the reply ran
    /// with; `None` when neither is known or the step has no candidates.
    pub fn sampler_column(&self, m: &Message, step: &TokenStep) -> Option<SamplerColumn> {
        let whatif = self.whatif_params();
        let params = whatif.clone().or_else(|| m.sampling.clone())?;
        let dist = step.dist.as_ref()?;
        let before = step.index.min(m.steps.len());
        let history: Vec<crate::engine::TokenId> = m
            .context_tail
            .iter()
            .copied()
            .chain(m.steps[..before].iter().map(|s| s.id))
            .collect();
        // Without the vocabulary's size nothing can be said of the tokens not
        // kept; a remote server's few candidates say nothing of the sampler.
        let vocab = m.vocab.as_ref()?;
        if vocab.is_learned() {
            return None;
        }
        let n_vocab = vocab.len();
        Some(SamplerColumn {
            resampled: crate::engine::resample::resample(&params, dist, &history, n_vocab),
            whatif: whatif.is_some(),
        })
    }

    /// The engine runs `info` now. What described the previous model's
    /// context (the last reply's stats: its tokens in use and context size)
    /// goes: the new model starts with an empty cache.
    pub fn set_model(&mut self, info: ModelInfo, vocab: Arc<Vocab>) {
        if self.model.info.as_ref() != Some(&info) {
            self.session.last_stats = None;
        }
        self.model.chat_mode = Some(info.chat_mode);
        // Saved turns of this model (a conversation opened) get its token texts.
        self.model.info = Some(info);
        self.model.vocab = Some(vocab);
        let mut conv = std::mem::take(&mut self.session.conv);
        let attached = self.model.attach_vocab_to(&mut conv);
        self.session.conv = conv;
        if attached {
            self.relayout();
        }
    }

    /// Context tokens in use: during a reply, prompt + tokens so far.
    pub fn ctx_used(&self) -> Option<usize> {
        if let Some(g) = &self.session.generation {
            if g.n_prompt > 0 {
                let n = self.msg(g.msg).map_or(0, |m| m.steps.len());
                return Some(g.n_prompt + n.saturating_sub(g.n_prefix));
            }
            // A remote server counts the prompt it builds: unknown until it
            // says (`Event::PromptCounted`), not the last reply's count.
            if self.model.is_remote() {
                return None;
            }
        }
        // A reply whose prompt nobody counted (a server that does not say).
        self.session
            .last_stats
            .as_ref()
            .filter(|s| s.n_prompt > 0)
            .map(|s| s.ctx_used)
    }

    /// How prompts are built for model `loaded` (as it loaded): plain
    /// completion with `--raw`, whatever template the model has.
    pub fn prompt_mode(&self, loaded: Option<ChatMode>) -> Option<ChatMode> {
        if self.raw {
            Some(ChatMode::Plain)
        } else {
            loaded
        }
    }

    /// The system prompt the model in use gets when the user sets none: the
    /// one its chat template writes; `None` when it writes none, or with
    /// `--raw` (no template).
    pub fn template_system_prompt(&self) -> Option<&str> {
        if self.raw {
            return None;
        }
        self.model.info.as_ref()?.default_system.as_deref()
    }
}
