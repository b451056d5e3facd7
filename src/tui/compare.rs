//! Comparing a reply under a second model (issue 10's TUI side): the compare
//! key opens the picker in a "compare with…" mode (other variants of the
//! model in use first), the chosen model B is loaded into slot [`SLOT_B`] of
//! the same engine process (model A stays in slot 0), and the reply's exact
//! token ids — the prompt as the engine built it, then the reply's own ids —
//! are forced through both
//! ([`Command::Compare`](crate::engine::Command::Compare)). The rows land on
//! the reply's node ([`Comparison`]): the inspector shows both distributions for
//! the selected token, the heatmap can colour by KL, and a summary line sits
//! under the reply. B stays loaded for the next comparison until the user
//! ends compare mode, switches model A, or the engine restarts.
//!
//! No I/O here but [`memory_need`], which the loop's `execute` calls.

use std::path::{Path, PathBuf};

use super::effect::Effect;
use super::models::ModelEntry;
use super::state::{Focus, Picker, Popup, State};
use crate::conversation::{CompareStatus, Comparison, NodeId};
use crate::engine::memory::MemoryNeed;
use crate::engine::{
    CompareInput, CompareRequest, Event, LoadSettings, ModelInfo, ModelRef, Role, TokenId,
};
use crate::i18n::{tr, tr_args};

// The compare mode's data (a part of `State`) and the commands it sends.
pub use super::state::compare::CompareCmd;
pub(crate) use super::state::compare::{COMPARE_TOP_K, CompareFor, Job, JobPhase, SLOT_B};

/// A file's name for the user (variants of one model share their `general.name`).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| crate::text::escape_inline(&n.to_string_lossy()))
        .unwrap_or_else(|| crate::text::escape_inline(&path.display().to_string()))
}

/// [`file_name`] of a model's file (a server's model, which is never
/// compared: its text form, escaped).
fn model_file_name(model: &ModelRef) -> String {
    match model.local_path() {
        Some(path) => file_name(path),
        None => crate::text::escape_inline(&model.to_string()),
    }
}

/// The file name of model B, if one is loaded.
fn b_file_name(s: &State) -> String {
    s.compare
        .b
        .as_ref()
        .map(|b| model_file_name(&b.model))
        .unwrap_or_default()
}

/// The notice of a reply that cannot be compared, `why` in words.
fn cannot_compare(why: &str) -> String {
    tr_args(
        "compare-cannot",
        "This reply cannot be compared: { $why }.",
        &[("why", &why)],
    )
}

/// `file size + KV cache` of model B in words, e.g. `36.5 MB of weights + 12.0 MB of KV cache`.
pub(crate) fn memory_text(s: &State) -> Option<String> {
    let b = s.compare.b.as_ref()?;
    let kv = s.compare.b_memory.map(|m| m.kv_cache + m.logits);
    let weights = crate::catalog::size_human(b.file_size);
    Some(match kv {
        Some(kv) => tr_args(
            "compare-memory-kv",
            "{ $weights } of weights + { $kv } of KV cache and logits",
            &[
                ("weights", &weights),
                ("kv", &crate::catalog::size_human(kv)),
            ],
        ),
        None => tr_args(
            "compare-memory",
            "{ $weights } of weights",
            &[("weights", &weights)],
        ),
    })
}

/// The memory model B will need with `settings` (read from its header; I/O,
/// for the loop's `execute`): `None` when the header cannot be read.
pub(crate) fn memory_need(path: &Path, settings: &LoadSettings) -> Option<MemoryNeed> {
    let h = crate::gguf::read_header(path).ok()?;
    let arch = h.get_str("general.architecture").unwrap_or("").to_string();
    let n_ctx = h
        .get_u64(&format!("{arch}.context_length"))
        .and_then(|t| u32::try_from(t).ok())
        .filter(|&t| t > 0)
        .map_or(settings.n_ctx, |t| settings.n_ctx.min(t));
    Some(crate::engine::memory::estimate(&h, n_ctx))
}

/// The reply the compare key acts on: the token cursor's (a reply), else
/// the last reply shown.
fn target_reply(s: &State) -> Option<NodeId> {
    let msg = match (s.view.focus, s.view.cursor) {
        (Focus::Navigate, Some(c)) => c.msg,
        _ => s.last_token()?.msg,
    };
    let m = s.msg(msg)?;
    (m.role == Role::Assistant && !m.steps.is_empty()).then(|| s.view.path[msg])
}

/// The exact ids reply `node` was generated from, and where the reply
/// starts in them; or why they are not known.
pub(crate) fn sequence_of(s: &State, node: NodeId) -> Result<(Vec<TokenId>, usize), String> {
    let m = s.session.conv.node(node);
    // The ids are those of the model that wrote the reply: model A must
    // read them as the same tokens.
    let same_vocab = match (&m.vocab, &s.model.vocab) {
        (Some(r), Some(a)) => std::sync::Arc::ptr_eq(r, a) || r.pieces == a.pieces,
        _ => m.model.is_some() && m.model == s.model.name(),
    };
    if !same_vocab {
        let writer = m
            .model
            .clone()
            .unwrap_or_else(|| tr("compare-another-model", "another model"));
        let a = s.model.name().unwrap_or_default();
        return Err(tr_args(
            "compare-other-writer",
            "it was written by { $writer }, whose tokens are not those of { $a } (the model in use, \
             model A): load { $writer } (or a variant of it) with Ctrl-O to compare its replies",
            &[("writer", &writer), ("a", &a)],
        ));
    }
    let prompt = match s.compare.prompts.get(&node) {
        Some(p) => p.clone(),
        // A reply of a saved conversation keeps the last ≥ 1024 prompt ids:
        // fewer means the whole prompt.
        None => match s.session.conv.whole_prompt_of(node) {
            Some(p) => p.to_vec(),
            None => {
                return Err(tr(
                    "compare-prompt-unknown",
                    "the prompt this reply answered is not known exactly (a saved reply keeps only its \
                     last 1024 prompt tokens): regenerate it (F8) or continue it (c), then compare",
                ));
            }
        },
    };
    let score_from = prompt.len();
    if score_from == 0 {
        return Err(tr(
            "compare-no-prompt",
            "the reply has no prompt before it to compare from",
        ));
    }
    let mut tokens = prompt;
    tokens.extend(m.steps.iter().map(|st| st.id));
    Ok((tokens, score_from))
}

/// Why nothing can be compared now, in words; `None` when it can.
fn busy(s: &State) -> Option<String> {
    if s.model.info.is_none() {
        return Some(tr(
            "compare-no-model",
            "No model is loaded: press Ctrl-O to choose one, chat, then compare.",
        ));
    }
    if let Some(why) = s
        .model
        .caps
        .as_ref()
        .and_then(|c| c.refuses("Comparing with another model"))
    {
        return Some(format!("{why}."));
    }
    if s.session.generation.is_some() {
        return Some(tr(
            "compare-reply-under-way",
            "A reply is being written: compare once it is done (Esc stops it).",
        ));
    }
    if s.session.load.is_some() {
        return Some(tr(
            "compare-loading",
            "A model is loading: compare once it is loaded.",
        ));
    }
    if s.compare.job.is_some() {
        return Some(tr(
            "compare-under-way",
            "A comparison is under way: Esc stops it.",
        ));
    }
    None
}

/// The compare key: opens the picker in "compare with…" mode for the
/// selected reply (the token cursor's, else the last one), after checking
/// that it can be compared.
pub(crate) fn open(s: &mut State) -> Vec<Effect> {
    if let Some(why) = busy(s) {
        s.error(why);
        return vec![];
    }
    let Some(node) = target_reply(s) else {
        s.info(tr(
            "compare-no-reply",
            "No reply to compare yet: chat first, then compare a reply (v in the token cursor).",
        ));
        return vec![];
    };
    if let Err(why) = sequence_of(s, node) {
        s.error(cannot_compare(&why));
        return vec![];
    }
    let a = s
        .model
        .info
        .as_ref()
        .map_or_else(|| ModelRef::Local(PathBuf::new()), |m| m.model.clone());
    let group = s
        .model
        .files
        .models
        .iter()
        .find(|m| m.model == a)
        .and_then(|m| m.group.clone())
        .or_else(|| s.model.info.as_ref().and_then(ModelInfo::variant_key));
    let mut p = Picker {
        compare: Some(CompareFor { node, group, a }),
        message: Some(tr(
            "compare-picker-message",
            "Compare this reply with another model: its tokens are forced through both, \
             token by token. Variants of this model come first.",
        )),
        ..Picker::default()
    };
    // The first variant, else the model loaded as B already.
    let visible = p.visible(&s.model.files.models);
    if let Some(b) = &s.compare.b
        && let Some(i) = visible
            .iter()
            .position(|&i| s.model.files.models[i].model == b.model)
    {
        p.selected = i;
    }
    super::transitions::open_popup(s, Popup::Picker(p));
    s.model.files.scanning = true;
    vec![Effect::RefreshModels]
}

/// Enter in the compare picker on `entry` (one it does not refuse, see
/// [`CompareFor::refusal`]): loads it as B (unless it is B already) and
/// compares.
pub(crate) fn choose(s: &mut State, for_: &CompareFor, entry: &ModelEntry) -> Vec<Effect> {
    let mut fx = Vec::new();
    // A file: a server's model is refused before.
    let Some(path) = entry.model.local_path().map(Path::to_path_buf) else {
        return fx;
    };
    if let Some(why) = busy(s) {
        s.error(why);
        return fx;
    }
    let (tokens, score_from) = match sequence_of(s, for_.node) {
        Ok(t) => t,
        Err(why) => {
            s.error(cannot_compare(&why));
            return fx;
        }
    };
    let total = tokens.len() - score_from;
    let model_a = s
        .model
        .info
        .as_ref()
        .map(|m| model_file_name(&m.model))
        .unwrap_or_default();
    s.session.conv.start_comparison(
        for_.node,
        Comparison {
            model_a,
            model_b: entry.file_name.clone(),
            // What B really holds ("Q2_K requested · mostly Q4_0"), not only its name.
            quant_b: if entry.label.is_empty() {
                entry.quant.clone()
            } else {
                entry.label.clone()
            },
            score_from,
            total,
            rows: Vec::new(),
            status: CompareStatus::Running,
        },
    );
    relayout(s, for_.node);
    let loaded = s.compare.b.as_ref().is_some_and(|b| b.model == entry.model);
    let phase = if loaded {
        JobPhase::Comparing
    } else {
        JobPhase::LoadingB {
            path: path.clone(),
            fraction: 0.0,
        }
    };
    // The model there before (another B) goes first: only two stay loaded.
    if !loaded && s.compare.b.take().is_some() {
        fx.push(unload_b(s));
    }
    let job = Job {
        request: s.session.new_request(),
        node: for_.node,
        phase,
        tokens,
        score_from,
    };
    if loaded {
        fx.push(Effect::Compare(job.request, run_cmd(&job)));
        s.info(tr_args(
            "compare-comparing-with",
            "Comparing with { $file }… (Esc stops)",
            &[("file", &entry.file_name)],
        ));
    } else {
        fx.push(Effect::Compare(
            job.request,
            CompareCmd::LoadB(path, s.config.load_settings()),
        ));
        s.info(tr_args(
            "compare-loading-b",
            "Loading { $file } beside the model in use to compare… (Esc stops)",
            &[("file", &entry.file_name)],
        ));
    }
    s.compare.job = Some(job);
    fx
}

fn run_cmd(job: &Job) -> CompareCmd {
    CompareCmd::Run(CompareRequest {
        slots: vec![0, SLOT_B],
        input: CompareInput::Tokens {
            tokens: job.tokens.clone(),
            score_from: job.score_from,
        },
        top_k: COMPARE_TOP_K,
    })
}

/// Frees model B's slot (an unload takes a request id like every command,
/// though nothing answers it: ids are drawn in the order commands are sent).
fn unload_b(s: &mut State) -> Effect {
    Effect::Compare(s.session.new_request(), CompareCmd::UnloadB)
}

fn relayout(s: &mut State, node: NodeId) {
    if let Some(i) = s.msg_index(node) {
        s.relayout_message(i);
    }
}

/// Ends the job: the reply's comparison keeps its rows, marked `status`
/// (dropped when it has none).
fn end(s: &mut State, status: CompareStatus) -> Option<Job> {
    let job = s.compare.job.take()?;
    s.session.conv.end_comparison(job.node, status);
    relayout(s, job.node);
    Some(job)
}

/// Whether `ev` belongs to the comparison (its load or its run); slot-B
/// loads nobody waits for any more are taken too, so they are not taken for
/// a model A.
pub(crate) fn owns(s: &State, ev: &Event) -> bool {
    let id = ev.request();
    s.compare
        .job
        .as_ref()
        .is_some_and(|j| Some(j.request) == id)
        || matches!(ev, Event::Loaded { slot, .. } if *slot == SLOT_B)
}

/// An engine event of the comparison (see [`owns`]).
pub(crate) fn on_event(s: &mut State, ev: Event) -> Vec<Effect> {
    let ours = s
        .compare
        .job
        .as_ref()
        .is_some_and(|j| Some(j.request) == ev.request());
    if !ours {
        // A load of B given up on (Esc) that finished anyway: free it.
        if matches!(ev, Event::Loaded { .. }) && s.compare.b.is_none() {
            return vec![unload_b(s)];
        }
        return vec![];
    }
    let Some(job) = s.compare.job.as_mut() else {
        return vec![];
    };
    match ev {
        Event::LoadProgress { fraction, .. } => {
            if let JobPhase::LoadingB { fraction: f, .. } = &mut job.phase {
                *f = fraction.clamp(0.0, 1.0);
            }
            vec![]
        }
        Event::Loaded { info, .. } => {
            let cancelled = job.phase == JobPhase::Cancelling;
            s.compare.b = Some(*info);
            if cancelled {
                end(s, CompareStatus::Stopped);
                s.info(tr_args(
                    "compare-stopped-b-stays",
                    "Comparison stopped. { $file } stays loaded for the next one ({ $memory }); V in the token \
                     cursor frees it.",
                    &[
                        ("file", &b_file_name(s)),
                        ("memory", &memory_text(s).unwrap_or_default()),
                    ],
                ));
                return vec![];
            }
            job.phase = JobPhase::Comparing;
            let cmd = run_cmd(job);
            // The comparison is a request of its own (the load's is answered).
            let request = s.session.new_request();
            if let Some(j) = s.compare.job.as_mut() {
                j.request = request;
            }
            s.info(tr_args(
                "compare-comparing-b-loaded",
                "Comparing with { $file } (it stays loaded while comparing: { $memory }; V in the token cursor \
                 frees it)… Esc stops.",
                &[
                    ("file", &b_file_name(s)),
                    ("memory", &memory_text(s).unwrap_or_default()),
                ],
            ));
            vec![Effect::Compare(request, cmd)]
        }
        Event::Compared { rows, .. } => {
            let node = job.node;
            s.session.conv.add_compared_rows(node, rows);
            relayout(s, node);
            vec![]
        }
        Event::Done { .. } => {
            if let Some(job) = end(s, CompareStatus::Done) {
                let line = s
                    .session
                    .conv
                    .node(job.node)
                    .comparison
                    .as_ref()
                    .map(|c| c.line())
                    .unwrap_or_default();
                let memory = memory_text(s).unwrap_or_default();
                s.info(tr_args(
                    "compare-done",
                    "Compared: { $line }. Tab, then ←→: both models' candidates per token; F3 / h: \
                     heatmap by KL. B stays loaded ({ $memory }); V in the token cursor frees it.",
                    &[("line", &line), ("memory", &memory)],
                ));
            }
            vec![]
        }
        Event::Cancelled { .. } => {
            let loading = matches!(job.phase, JobPhase::LoadingB { .. });
            let node = job.node;
            let compared = s
                .session
                .conv
                .node(node)
                .comparison
                .as_ref()
                .is_some_and(|c| !c.rows.is_empty());
            end(s, CompareStatus::Stopped);
            s.info(if loading {
                tr(
                    "compare-stopped-not-loaded",
                    "Comparison stopped: the second model was not loaded.",
                )
            } else if compared {
                tr(
                    "compare-stopped-kept",
                    "Comparison stopped: the tokens compared so far stay.",
                )
            } else {
                tr(
                    "compare-stopped-none",
                    "Comparison stopped before any token was compared.",
                )
            });
            vec![]
        }
        Event::Failed { error, .. } => {
            let loading = match &job.phase {
                JobPhase::LoadingB { path, .. } => Some(file_name(path)),
                _ => None,
            };
            end(s, CompareStatus::Stopped);
            s.error(match loading {
                Some(file) => tr_args(
                    "compare-load-failed",
                    "Could not load { $file } to compare: { $error }.",
                    &[("file", &file), ("error", &error)],
                ),
                None => tr_args(
                    "compare-failed",
                    "The comparison failed: { $error }.",
                    &[("error", &error)],
                ),
            });
            vec![]
        }
        _ => vec![],
    }
}

/// Esc while comparing: stops it (the rows so far stay). Again while it
/// stops: the engine is restarted (see `transitions::cancel`).
pub(crate) fn cancel(s: &mut State) -> Vec<Effect> {
    let Some(job) = s.compare.job.as_mut() else {
        return vec![];
    };
    if job.phase == JobPhase::Cancelling {
        s.info(tr("notice-restarting-engine", "Restarting the engine…"));
        return vec![Effect::RestartEngine];
    }
    job.phase = JobPhase::Cancelling;
    let request = job.request;
    s.info(tr("compare-stopping", "Stopping the comparison…"));
    vec![Effect::Cancel(request)]
}

/// Leaves compare mode: frees model B's slot (and its memory). The
/// comparisons made stay on their replies.
pub(crate) fn unload(s: &mut State) -> Vec<Effect> {
    let mut fx = Vec::new();
    if s.compare.job.is_some() {
        fx.extend(cancel(s));
    }
    match s.compare.b.take() {
        Some(b) => {
            let freed = tr_args(
                "compare-unloaded",
                "{ $file } unloaded: compare mode is off (the comparisons made stay on their replies).",
                &[("file", &model_file_name(&b.model))],
            );
            s.compare.b_memory = None;
            s.info(freed);
            fx.push(unload_b(s));
        }
        None if fx.is_empty() => s.info(tr(
            "compare-no-b",
            "No second model is loaded: v compares a reply.",
        )),
        None => {}
    }
    fx
}

/// Model A is being switched: B goes too (a comparison is of two variants
/// of the model in use; a new A may be another model altogether).
pub(crate) fn on_switch_model(s: &mut State) -> Vec<Effect> {
    let mut fx = Vec::new();
    if let Some(job) = s.compare.job.as_ref() {
        fx.push(Effect::Cancel(job.request));
    }
    end(s, CompareStatus::Stopped);
    if s.compare.b.take().is_some() {
        s.compare.b_memory = None;
        fx.push(unload_b(s));
    }
    fx
}

/// Another conversation replaces the one shown (a new chat, a saved one
/// opened): a comparison under way is stopped (its reply left the screen)
/// and the prompts kept by node id, which the new one reuses, are dropped.
/// Model B stays loaded.
pub(crate) fn on_conversation_replaced(s: &mut State) -> Vec<Effect> {
    s.compare.prompts.clear();
    match s.compare.job.take() {
        Some(j) => vec![Effect::Cancel(j.request)],
        None => vec![],
    }
}

/// The engine process died: B is gone with it (a new process starts empty).
pub(crate) fn on_engine_exited(s: &mut State) {
    end(s, CompareStatus::Stopped);
    s.compare.b = None;
    s.compare.b_memory = None;
}

/// The progress shown in the status bar while comparing.
pub(crate) fn status_text(s: &State) -> Option<String> {
    let job = s.compare.job.as_ref()?;
    Some(match &job.phase {
        JobPhase::LoadingB { path, fraction } => tr_args(
            "compare-status-loading",
            "⇄ loading { $file } { $pct }% · Esc stops",
            &[
                ("file", &file_name(path)),
                ("pct", &format!("{:>3}", (fraction * 100.0).round() as u32)),
            ],
        ),
        JobPhase::Comparing => {
            let done = s
                .session
                .conv
                .node(job.node)
                .comparison
                .as_ref()
                .map_or(0, |c| c.rows.len());
            tr_args(
                "compare-status-comparing",
                "⇄ comparing { $done }/{ $total } · Esc stops",
                &[
                    ("done", &done),
                    ("total", &(job.tokens.len() - job.score_from)),
                ],
            )
        }
        JobPhase::Cancelling => tr(
            "compare-status-stopping",
            "⇄ stopping… (Esc: restart engine)",
        ),
    })
}
