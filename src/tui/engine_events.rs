//! What the engine reports (load progress, tokens, the end of a reply, a
//! crash) changes the state; some of it asks for effects (a reload). No I/O.

use std::path::PathBuf;

use super::effect::{Effect, Steer};
use super::prompt_scoring;
use super::reply;
use super::state::{ChooseAt, Focus, MsgStatus, Phase, State};
use super::transitions::load_model;
use crate::conversation::NodeId;
use crate::engine::{CrashReport, CrashStage, Event, ModelRef, Stats, StopReason};
use crate::i18n::{tr, tr_args};

pub(super) fn on_engine(s: &mut State, ev: Event) -> Vec<Effect> {
    if let Event::EngineExited { report } = ev {
        return on_engine_exited(s, &report);
    }
    let Some(id) = ev.request() else {
        return vec![];
    };
    // A comparison's load of model B (slot 1) and its rows.
    if super::compare::owns(s, &ev) {
        return super::compare::on_event(s, ev);
    }
    // The prompt's surprise, scored after the reply.
    if prompt_scoring::owns(s, &ev) {
        prompt_scoring::on_event(s, ev);
        return vec![];
    }
    if super::lens_view::owns(s, &ev) {
        super::lens_view::on_event(s, ev);
        return vec![];
    }
    if super::rollouts_view::owns(s, &ev) {
        super::rollouts_view::on_event(s, ev);
        return vec![];
    }
    if super::kv_view::owns(s, &ev) {
        super::kv_view::on_event(s, ev);
        return vec![];
    }
    // The chooser's question about its text.
    if super::asking::owns(s, &ev) {
        super::asking::on_event(s, ev);
        return vec![];
    }
    if let Event::Loaded { caps, .. } = &ev {
        s.model.caps = Some(caps.clone());
    }
    if s.session.load.as_ref().is_some_and(|l| l.request == id) {
        on_load_event(s, ev);
    } else if let Event::Loaded { info, vocab, .. } = ev {
        // A load we had moved on from finished anyway: the engine runs that model now.
        s.set_model(*info, vocab);
    } else if s
        .session
        .generation
        .as_ref()
        .is_some_and(|g| g.request == id)
    {
        return on_gen_event(s, ev);
    }
    // Anything else answers a request we no longer care about.
    vec![]
}

/// The engine process died (what it was doing has already failed, each
/// request by its own `Failed`): say what happened, mark the file that
/// crashed it, and reload the model it held (the one loaded before a load
/// that crashed) in the new engine process. The conversation is untouched.
fn on_engine_exited(s: &mut State, report: &CrashReport) -> Vec<Effect> {
    super::compare::on_engine_exited(s);
    let reason = report.localized_reason();
    let file = report.file_name();
    let mut text = match report.stage {
        CrashStage::Loading if report.blames_file() => tr_args(
            "notice-crash-loading",
            "llama.cpp crashed while loading { $file }: { $reason }",
            &[("file", &file), ("reason", &reason)],
        ),
        CrashStage::Generating if report.blames_file() => tr_args(
            "notice-crash-generating",
            "llama.cpp crashed while generating with { $file }: { $reason }",
            &[("file", &file), ("reason", &reason)],
        ),
        _ => engine_ended(report, &file, &reason),
    };
    if report.blames_file() {
        text += &format!(" ({}).", report.localized_ended());
        if let Some(path) = &report.file {
            s.model
                .files
                .crashed
                .insert(ModelRef::Local(path.clone()), reason.clone());
            text += " ";
            text += &tr("notice-crash-marked", "The file is marked ✗ in the picker.");
        }
    } else {
        text += ".";
    }
    let mut fx = Vec::new();
    // A load already sent to the new engine process wins over the reload.
    match s.model.info.take() {
        Some(m) if s.session.load.is_none() => {
            let crash = text.clone();
            text += " ";
            text += &tr_args(
                "notice-engine-reloading",
                "The engine was restarted: reloading { $name }…",
                &[("name", &m.name)],
            );
            fx = load_model(s, m.model);
            if let Some(l) = &mut s.session.load {
                l.restore = Some(crash);
            }
        }
        Some(_) => {
            text += " ";
            text += &tr("notice-engine-restarted", "The engine was restarted.");
        }
        None => {
            text += " ";
            text += &tr(
                "notice-engine-restarted-no-model",
                "The engine was restarted: press Ctrl-O to choose a model.",
            );
        }
    }
    s.error(text);
    fx
}

fn on_load_event(s: &mut State, ev: Event) {
    match ev {
        Event::LoadProgress { fraction, .. } => {
            if let Some(l) = &mut s.session.load {
                l.fraction = fraction.clamp(0.0, 1.0);
            }
        }
        Event::Loaded { info, vocab, .. } => {
            // Another model: the last prompt's ids are not its tokens.
            s.session.prompt_scoring.last = None;
            // It loads now: whatever failed before (a fixed file) is forgotten.
            s.model.files.load_failed.remove(&info.model);
            s.model.files.crashed.remove(&info.model);
            if let Some(crash) = s.session.load.take().and_then(|l| l.restore) {
                // What crashed stays on screen (whatever came meanwhile); it now ends well.
                s.error(format!(
                    "{crash} {}",
                    tr_args(
                        "notice-engine-reloaded",
                        "The engine was restarted: { $name } is loaded again.",
                        &[("name", &info.name)],
                    )
                ));
                s.set_model(*info, vocab);
                return;
            }
            let mode = s
                .prompt_mode(Some(info.chat_mode))
                .unwrap_or(info.chat_mode);
            let mut text = tr_args(
                "notice-loaded",
                "Loaded { $name } ({ $arch } { $quant }, { $mode }, { $backend }). Context { $ctx }.",
                &[
                    ("name", &info.name),
                    ("arch", &info.arch),
                    ("quant", &info.quant),
                    ("mode", &mode.describe()),
                    ("backend", &info.backend_text()),
                    ("ctx", &info.ctx_text()),
                ],
            );
            s.set_model(*info, vocab);
            // What the model is told when the user says nothing (F6 edits it).
            if let Some(own) = s.template_system_prompt()
                && s.config.system_prompt.is_empty()
            {
                text += " ";
                text += &tr_args(
                    "notice-template-system-prompt",
                    "No system prompt of yours: its template adds \"{ $prompt }\" (F6 sets yours).",
                    &[(
                        "prompt",
                        &crate::text::truncate(&crate::text::escape_inline(own), 100),
                    )],
                );
            }
            s.info(text);
        }
        Event::Cancelled { .. } => {
            s.session.load = None;
        }
        Event::Failed { error, .. } => {
            let model = s
                .session
                .load
                .take()
                .map_or_else(|| ModelRef::Local(PathBuf::new()), |l| l.model);
            // A crash is marked by `on_engine_exited`, with llama.cpp's assertion.
            if !matches!(error, crate::engine::EngineError::Crashed(_)) {
                s.model
                    .files
                    .load_failed
                    .insert(model.clone(), error.to_string());
            }
            let file = super::models::load_name(&model, &s.model.files.models);
            let keep = match &s.model.info {
                Some(m) => tr_args(
                    "notice-still-using",
                    "Still using { $name }.",
                    &[("name", &m.name)],
                ),
                None => tr(
                    "notice-no-model-choose-another",
                    "No model is loaded: press Ctrl-O to choose another.",
                ),
            };
            s.error(tr_args(
                "notice-load-failed",
                "Could not load { $file }: { $error }. { $keep }",
                &[("file", &file), ("error", &error), ("keep", &keep)],
            ));
        }
        _ => {}
    }
}

fn on_gen_event(s: &mut State, ev: Event) -> Vec<Effect> {
    if s.session.generation.is_none() {
        return vec![];
    }
    let last = ev.is_final();
    if last {
        end_step_mode_choice(s);
    }
    let Some(g) = s.session.generation.as_mut() else {
        return vec![];
    };
    match ev {
        Event::Started {
            mode,
            prompt,
            prefix,
            n_reused,
            dropped_messages,
            note,
            ..
        } => {
            let n_prompt = prompt.len() + prefix.len();
            if g.phase != Phase::Cancelling {
                g.phase = Phase::Prefill {
                    done: 0,
                    total: n_prompt.saturating_sub(n_reused),
                };
            }
            g.n_prompt = n_prompt;
            g.n_reused = n_reused;
            g.n_prefix = prefix.len();
            // What the repeat penalty saw before the reply (for what-ifs).
            let ids: Vec<_> = prompt.iter().map(|t| t.id).collect();
            let node = g.node;
            s.session
                .conv
                .reply_prompt(node, &ids, s.config.sampling.repeat_last_n);
            // The exact prompt, for comparing the reply.
            s.compare.prompts.insert(node, ids);
            let msg = g.msg;
            place_prompt_tokens(s, &prompt);
            s.model.chat_mode = Some(mode);
            // The engine serves in order: the model loaded last (perhaps after
            // the message was sent) writes this reply, with its vocabulary.
            let (model, vocab) = (s.model.name(), s.model.vocab.clone());
            if let Some(&id) = s.view.path.get(msg)
                && s.session.conv.set_writer(id, model, vocab)
            {
                s.relayout_message(msg);
            }
            if dropped_messages > 0 {
                s.info(if dropped_messages == 1 {
                    tr(
                        "notice-dropped-one",
                        "The conversation outgrew the context: the oldest message was left out.",
                    )
                } else {
                    tr_args(
                        "notice-dropped",
                        "The conversation outgrew the context: the { $n } oldest messages were left out.",
                        &[("n", &dropped_messages)],
                    )
                });
            }
            // How the prompt was built when the chat template refused it (the
            // engine escaped the template's text).
            if let Some(note) = note {
                s.info(capitalize(&note.to_string()));
            }
        }
        Event::PromptCounted {
            n_prompt, n_reused, ..
        } => {
            // A remote server's count: the context used is known from here on.
            g.n_prompt = n_prompt;
            g.n_reused = n_reused;
        }
        Event::PrefillProgress { done, total, .. } => {
            if g.phase != Phase::Cancelling {
                g.phase = Phase::Prefill { done, total };
            }
        }
        Event::Token { step, .. } => {
            if g.phase == Phase::Cancelling {
                return vec![];
            }
            g.phase = Phase::Generating;
            g.live.token(s.session.clock);
            let node = g.node;
            s.push_step(node, *step);
        }
        Event::Paused { next, surprise, .. } => {
            if g.phase == Phase::Cancelling {
                return vec![];
            }
            g.phase = Phase::Paused {
                next: next.map(Box::new),
            };
            // A step asked for while the last one was under way.
            if g.steps_queued > 0 {
                g.steps_queued -= 1;
                g.phase = Phase::Generating;
                return vec![Effect::Steer(Steer::Step)];
            }
            g.live.pause(s.session.clock);
            reply::choose_next(s, false);
            if let Some(hit) = surprise {
                let text = reply::surprise_notice(s, &hit);
                s.info(text);
            }
        }
        // Comparisons, lenses, rollouts and KV-cost runs are not a
        // generation's events (their own owners read them).
        Event::Compared { .. }
        | Event::Lens { .. }
        | Event::KvStep { .. }
        | Event::Rollouts { .. }
        | Event::TextAnswer { .. } => {}
        Event::Tail { text, .. } => {
            // Even while cancelling: the bytes belong to tokens already shown.
            let node = g.node;
            s.push_tail(node, &text);
        }
        Event::Cancelled { stats, .. } => {
            let node = g.node;
            s.session.generation = None;
            if let Some(stats) = &stats {
                s.session.last_stats = Some(stats.clone());
            }
            finish_message(s, node, MsgStatus::Stopped, stats);
        }
        Event::Done { stats, .. } => {
            let node = g.node;
            s.session.generation = None;
            let status = if stats.stop == StopReason::Cancelled {
                MsgStatus::Stopped
            } else {
                MsgStatus::Done
            };
            if stats.stop == StopReason::ContextFull {
                s.error(context_full_notice(stats.ctx_used, stats.ctx_size));
            }
            s.session.last_stats = Some(stats.clone());
            finish_message(s, node, status, Some(stats));
        }
        Event::Failed { error, .. } => {
            let node = g.node;
            s.session.generation = None;
            s.error(tr_args(
                "notice-generation-failed",
                "Generation failed: { $error }",
                &[("error", &error)],
            ));
            finish_message(s, node, MsgStatus::Failed(error.to_string()), None);
        }
        Event::PromptScores { steps, .. } => {
            let positions = std::mem::take(&mut g.positions);
            let touched = s.session.conv.apply_prompt_scores(&positions, steps);
            if let Some(g) = s.session.generation.as_mut() {
                g.positions = positions;
            }
            // Heat colours for the scored tokens of the messages shown (the
            // system prompt keeps its scores on the root but is drawn as text).
            for node in touched {
                if let Some(i) = s.msg_index(node) {
                    s.relayout_message(i);
                }
            }
        }
        Event::LoadProgress { .. } | Event::Loaded { .. } | Event::EngineExited { .. } => {}
    }
    // A turn ended (done, stopped or failed): it is saved.
    if last { vec![Effect::Save] } else { vec![] }
}

/// Gives each prompt turn (user messages, the system prompt) its tokens as
/// the model was fed them, and records where each prompt position belongs.
fn place_prompt_tokens(s: &mut State, prompt: &[crate::engine::PromptToken]) {
    let (Some(g), Some(vocab)) = (s.session.generation.as_mut(), s.model.vocab.clone()) else {
        return;
    };
    let (turns, node) = (g.turns.clone(), g.node);
    let (positions, changed) =
        s.session
            .conv
            .place_prompt(&turns, prompt, &vocab, s.config.sampling.repeat_last_n);
    // What is scored once the engine is idle (see `prompt_scoring`).
    let ids = prompt.iter().map(|t| t.id).collect();
    prompt_scoring::remember(s, ids, positions.clone());
    s.session.prompt_places.insert(node, positions.clone());
    if let Some(g) = s.session.generation.as_mut() {
        g.positions = positions;
    }
    // Only the turns that took tokens are wrapped again (a long chat is
    // not rewrapped at every message sent).
    for id in changed {
        if let Some(i) = s.msg_index(id) {
            s.relayout_message(i);
        }
    }
}

/// The reply ends: choosing its next token ends with it.
fn end_step_mode_choice(s: &mut State) {
    if s.view
        .chooser
        .as_ref()
        .is_some_and(|c| c.at == ChooseAt::Next)
    {
        s.view.chooser = None;
        if s.view.focus == Focus::Choose {
            s.view.set_focus(Focus::Input);
        }
    }
}

/// The engine process ended ([`CrashReport::localized_ended`]) while
/// doing what its stage says ([`CrashReport::doing`]'s English, one message
/// a stage so that a language can order the sentence its own way).
fn engine_ended(report: &CrashReport, file: &str, reason: &str) -> String {
    let ended = report.localized_ended();
    let args: [(&str, &dyn std::fmt::Display); 3] =
        [("ended", &ended), ("file", &file), ("reason", &reason)];
    match (report.stage, file.is_empty()) {
        (CrashStage::Loading, false) => tr_args(
            "notice-engine-ended-loading-file",
            "The engine process { $ended } while loading { $file }: { $reason }",
            &args,
        ),
        (CrashStage::Generating, false) => tr_args(
            "notice-engine-ended-generating-file",
            "The engine process { $ended } while generating with { $file }: { $reason }",
            &args,
        ),
        (CrashStage::Loading, true) => tr_args(
            "notice-engine-ended-loading",
            "The engine process { $ended } while loading a model: { $reason }",
            &[args[0], args[2]],
        ),
        (CrashStage::Generating, true) => tr_args(
            "notice-engine-ended-generating",
            "The engine process { $ended } while generating: { $reason }",
            &[args[0], args[2]],
        ),
        (CrashStage::Idle, _) => tr_args(
            "notice-engine-ended-idle",
            "The engine process { $ended } while idle: { $reason }",
            &[args[0], args[2]],
        ),
    }
}

/// What the user reads when a reply filled the context (sizes in tokens): the
/// reply stopped, and the chat goes on, without its oldest turns.
pub fn context_full_notice(used: usize, size: usize) -> String {
    tr_args(
        "notice-context-full",
        "The context is full ({ $used } of { $size } tokens): the reply stopped here. You can go on: \
         to make room, the oldest turns are left out of what the model sees (Ctrl-N starts a new chat).",
        &[("used", &used), ("size", &size)],
    )
}

/// Ends reply `node` with `status` (and its run's `stats`) by the
/// conversation's rule ([`crate::conversation::Conversation::finish_reply`]:
/// an empty version that ended early goes), and shows the chat as it is now.
fn finish_message(s: &mut State, node: NodeId, status: MsgStatus, stats: Option<Stats>) {
    let stopped = status == MsgStatus::Stopped;
    if s.session.conv.finish_reply(node, status, stats) {
        s.repath();
        if stopped {
            s.info(tr(
                "notice-stopped-before-first",
                "The reply stopped before its first token: that version was dropped.",
            ));
        }
        return;
    }
    if let Some(i) = s.msg_index(node) {
        s.relayout_message(i);
    }
}

/// `text` with its first letter upper-cased, for a notice.
pub(super) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_ended_notice_says_in_english_what_the_report_s_own_words_say() {
        for stage in [
            CrashStage::Loading,
            CrashStage::Generating,
            CrashStage::Idle,
        ] {
            for file in [None, Some(PathBuf::from("/m/x.gguf"))] {
                let r = CrashReport::new(Some(3), None, stage, file, &[]);
                let (name, reason) = (r.file_name(), r.reason());
                assert_eq!(
                    engine_ended(&r, &name, &reason),
                    format!(
                        "The engine process {} while {}: {reason}",
                        r.ended,
                        r.doing()
                    ),
                    "{stage:?}"
                );
                let zh = crate::i18n::with_lang(crate::i18n::Lang::Zh, || {
                    engine_ended(&r, &name, &reason)
                });
                // How it ended is in Chinese too, not the report's English.
                let ended_zh =
                    crate::i18n::with_lang(crate::i18n::Lang::Zh, || r.localized_ended());
                assert_ne!(ended_zh, r.ended);
                assert!(
                    zh.starts_with("引擎进程在")
                        && zh.contains(&ended_zh)
                        && !zh.contains(&r.ended),
                    "{zh}"
                );
            }
        }
    }
}
