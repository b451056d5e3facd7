//! Acting on replies: starting one, step mode (draw, force a candidate or
//! text, run on), branching at a past token, regenerating, continuing,
//! switching between alternatives, editing an earlier message. Every new
//! alternative is a sibling in the conversation tree; nothing is lost. No I/O.

use super::action::Action;
use super::effect::{Effect, Steer};
use super::state::{
    ChooseAt, Chooser, Focus, Generation, Message, MsgStatus, Phase, State, TokenRef,
};
use crate::conversation::{Node, NodeId, Writer};
use crate::engine::{Role, StopReason, TokenId};
use crate::i18n::{tr, tr_args};

/// Why a reply cannot be acted on now, as the user reads it; `None` when it can.
pub fn busy(s: &State) -> Option<String> {
    if s.session.generation.as_ref().is_some_and(|g| !is_paused(g)) {
        Some(tr(
            "notice-reply-generating",
            "A reply is being generated: wait for it, or press Esc to stop it.",
        ))
    } else if s.session.load.is_some() {
        // Token ids would go to the model being loaded: wait to know which.
        Some(tr(
            "rollouts-model-loading",
            "A model is loading: wait for it to finish.",
        ))
    } else if s.model.info.is_none() {
        Some(tr(
            "input-no-model",
            "No model is loaded: press Ctrl-O to choose one.",
        ))
    } else {
        None
    }
}

/// Whether reply `m`'s token ids are the loaded model's: the same
/// vocabulary (two files may share a name and not a vocabulary).
fn same_vocab(s: &State, m: &Message) -> bool {
    match (&m.vocab, &s.model.vocab) {
        (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b) || a == b,
        _ => m.model.is_none() || m.model == s.model.name(),
    }
}

fn is_paused(g: &Generation) -> bool {
    matches!(g.phase, Phase::Paused { .. })
}

/// Stops a paused reply to start something else: it ends as stopped (its
/// tokens stand) and its final event is no longer waited for.
pub(crate) fn drop_paused(s: &mut State) -> Vec<Effect> {
    let Some(g) = s.session.generation.take() else {
        return vec![];
    };
    s.view.chooser = None;
    s.session.conv.stop_reply(g.node);
    if let Some(i) = s.msg_index(g.node) {
        s.relayout_message(i);
    }
    vec![Effect::Cancel(g.request)]
}

/// Who writes a new reply: the model in use, with the settings' seed.
fn writer(s: &State) -> Writer {
    Writer {
        model: s.model.name(),
        vocab: s.model.vocab.clone(),
        base_seed: s.config.sampling.seed,
    }
}

/// Starts generating reply `id` (shown in the chat): a fresh one, a branch
/// (from its tokens so far) or one continued. `paused` starts it in step mode.
pub fn start(s: &mut State, id: NodeId, paused: bool) -> Vec<Effect> {
    let Some(msg) = s.msg_index(id) else {
        // A bug if it happens: say so rather than leave a reply waiting.
        s.error(tr(
            "notice-reply-not-shown",
            "That reply is not shown: nothing was generated.",
        ));
        return vec![];
    };
    let mut settings = s.request_settings();
    settings.paused = paused;
    let req = s.session.conv.start_reply(id, &settings);
    s.relayout_message(msg);
    let turns = s.session.conv.turns_before(id);
    let request = s.session.new_request();
    s.session.generation = Some(Generation {
        request,
        msg,
        node: id,
        steps_queued: 0,
        turns,
        positions: Vec::new(),
        phase: Phase::Waiting,
        n_prompt: 0,
        n_reused: 0,
        n_prefix: 0,
        live: super::live::LiveStats::new(s.session.clock),
    });
    s.view.scroll.follow = true;
    // The token cursor next enters on the new reply (one set at a fork stays).
    if s.view.focus != Focus::Navigate {
        s.view.cursor = None;
    }
    vec![Effect::Generate(request, req)]
}

/// Sends `text` as the next user turn (or as a new version of the message
/// being edited) and starts its reply.
pub fn send_text(s: &mut State, text: String) -> Vec<Effect> {
    let mut fx = drop_paused(s);
    let user = match s.session.editing.take() {
        Some(old) => s.session.conv.add_sibling(old, Node::user(text)),
        None => s.session.conv.append(Node::user(text)),
    };
    let id = s.session.conv.add_reply(user, &writer(s));
    s.repath();
    // The message is saved now (its reply when it ends).
    fx.push(Effect::Save);
    fx.extend(start(s, id, s.session.step_mode));
    if s.session.step_mode {
        // Presses while the prompt is read each count for a token.
        choose_next(s, false);
    }
    fx
}

/// Sends `steer` to the reply under way; a step asked for while one is
/// under way waits for the pause (each press is one token).
pub fn steer(s: &mut State, steer: Steer) -> Vec<Effect> {
    let now = s.session.clock;
    let Some(g) = s.session.generation.as_mut() else {
        return vec![];
    };
    match (&g.phase, &steer) {
        (Phase::Paused { .. }, _) => {
            g.phase = Phase::Generating;
            g.live.resume(now);
            if let Some(c) = &mut s.view.chooser
                && c.at == ChooseAt::Next
            {
                c.text.clear();
                c.typing = false;
            }
            vec![Effect::Steer(steer)]
        }
        (Phase::Cancelling, _) => vec![],
        (_, Steer::Step) => {
            g.steps_queued += 1;
            vec![]
        }
        (_, Steer::Run | Steer::RunToSurprise(_)) => vec![Effect::Steer(steer)],
        // Forcing needs the distribution it replaces: only at a pause.
        _ => vec![],
    }
}

/// Why `action` on reply `msg` cannot be done with what a remote server
/// reports, in words for the status line; `None` when it can (a local
/// model, or an action that needs no logits). Branching (another token
/// here, re-sampling one, continuing from the reply's tokens) needs the
/// model in use to take exact tokens; the what-if keys need the whole
/// distribution in the reply's trace, which a remote reply does not hold.
pub fn remote_refusal(s: &State, action: Action, msg: usize) -> Option<String> {
    let what = match action {
        Action::ChooseHere => "choosing another token here (a branch)",
        Action::Resample => "re-sampling a token (a branch)",
        Action::ContinueReply => "continuing a reply from its tokens",
        a if a.is_whatif() => {
            // By the trace as well as the vocabulary: a remote reply
            // reopened from the store has no learned vocabulary (or a
            // local model's), but its steps still lack the entropy that
            // only a whole distribution gives.
            let remote = s.msg(msg).is_some_and(|m| {
                m.vocab.as_ref().is_some_and(|v| v.is_learned())
                    || m.steps
                        .iter()
                        .any(|st| st.dist.as_ref().is_some_and(|d| d.entropy.is_none()))
            });
            return remote.then(|| {
                tr(
                    "notice-whatif-remote",
                    "What-if re-sampling needs the model's whole distribution at each token: \
                     this reply came from a remote server, which reported its top candidates only \
                     (a local model's replies have it).",
                )
            });
        }
        _ => return None,
    };
    let why = s.model.caps.as_ref()?.refuses(what)?;
    Some(crate::tui::engine_events::capitalize(&why) + ".")
}

/// F7: free generation → step mode → running to the next surprise → free.
/// Step mode on while a reply runs: it pauses after its next token. To the
/// next surprise: a running reply checks each draw from now on (a paused
/// one stays paused: Shift-→ runs it on). Off: a paused or checking reply
/// runs on to its end.
pub fn toggle_step_mode(s: &mut State) -> Vec<Effect> {
    let (step, surprise) = (s.session.step_mode, s.session.to_surprise);
    if !step
        && !surprise
        && let Some(why) = s.model.caps.as_ref().and_then(|c| c.refuses("step mode"))
    {
        s.error(crate::tui::engine_events::capitalize(&why) + ".");
        return vec![];
    }
    let running = s
        .session
        .generation
        .as_ref()
        .is_some_and(|g| g.phase != Phase::Cancelling);
    let paused = s
        .session
        .generation
        .as_ref()
        .is_some_and(|g| matches!(g.phase, Phase::Paused { .. }));
    if !step && !surprise {
        s.session.step_mode = true;
        s.info(tr(
            "notice-step-mode",
            "Step mode: replies go one token per key (→). F7 again: run to the next surprise.",
        ));
        if running {
            return vec![Effect::Steer(Steer::Step)];
        }
        return vec![];
    }
    if step {
        s.session.step_mode = false;
        s.session.to_surprise = true;
        let stop = s.config.surprise;
        s.info(tr_args(
            "notice-to-surprise-mode",
            "To the next surprise: replies run until the token to be drawn has p < { $p } or the \
             distribution more than { $h } bits of entropy, then pause (F5 sets both; Shift-→ runs on \
             from a pause). F7 again: free.",
            &[("p", &percent(stop.below_p)), ("h", &stop.above_entropy)],
        ));
        // A reply running a step checks its draws from the next one on; a
        // paused one stays at its pause.
        if running && !paused {
            return vec![Effect::Steer(Steer::RunToSurprise(stop))];
        }
        return vec![];
    }
    s.session.to_surprise = false;
    s.info(tr(
        "notice-free-mode",
        "Free generation: replies run to their end (F7: step mode).",
    ));
    if s.view
        .chooser
        .as_ref()
        .is_some_and(|c| c.at == ChooseAt::Next)
    {
        s.view.chooser = None;
        s.view.set_focus(Focus::Input);
    }
    if let Some(g) = &mut s.session.generation
        && running
    {
        g.steps_queued = 0;
        g.phase = Phase::Generating;
        g.live.resume(s.session.clock);
        return vec![Effect::Steer(Steer::Run)];
    }
    vec![]
}

/// The model that wrote reply `m`, by name (`another model` when unknown).
fn writer_name(m: &Node) -> String {
    m.model
        .clone()
        .unwrap_or_else(|| tr("notice-another-model", "another model"))
}

/// `p` as a percentage for the notices (`10%`, `2.5%`).
fn percent(p: f32) -> String {
    let v = p * 100.0;
    if v.fract() == 0.0 {
        format!("{v:.0}%")
    } else {
        format!("{v:.1}%")
    }
}

/// What a pause at a surprise says: the token about to be drawn and the
/// threshold it crossed, and the keys that go on from there.
pub fn surprise_notice(s: &State, hit: &crate::engine::Surprise) -> String {
    let token = s.model.vocab.as_ref().map_or_else(
        || format!("#{}", hit.id),
        |v| format!("'{}'", crate::text::readable_piece(v.bytes(hit.id))),
    );
    let mut why = Vec::new();
    if hit.p < hit.stop.below_p {
        why.push(format!(
            "p {} < {}",
            percent(hit.p),
            percent(hit.stop.below_p)
        ));
    }
    if hit.entropy > hit.stop.above_entropy {
        why.push(tr_args(
            "notice-surprise-entropy",
            "entropy { $h } bits > { $max }",
            &[
                ("h", &format!("{:.2}", hit.entropy)),
                ("max", &hit.stop.above_entropy),
            ],
        ));
    }
    tr_args(
        "notice-surprise",
        "Surprise: the sampler would draw { $token } here ({ $why }). → draws it, Enter forces the \
         selected candidate, Shift-→ runs on to the next surprise, Esc stops.",
        &[("token", &token), ("why", &why.join(", "))],
    )
}

/// A reply whose token `t` is replaced: by `chosen`, by the first tokens of
/// `text`, or (neither) by a fresh draw with the branch's own seed. The
/// tokens before `t` are kept (and their KV cache reused); the reply as it
/// was stays as a sibling.
pub fn branch(
    s: &mut State,
    t: TokenRef,
    chosen: Option<TokenId>,
    text: Option<String>,
) -> Vec<Effect> {
    if let Some(why) = busy(s) {
        s.info(why);
        return vec![];
    }
    let Some(&id) = s.view.path.get(t.msg) else {
        return vec![];
    };
    let orig = s.session.conv.node(id);
    if orig.role != Role::Assistant {
        return vec![];
    }
    // Token ids belong to a model's vocabulary: another model's ids mean
    // other text. A reply from scratch needs none of them.
    if (t.step > 0 || chosen.is_some()) && !same_vocab(s, orig) {
        s.error(tr_args(
            "notice-other-model-branch",
            "This reply was written by { $model }, whose tokens are not this model's: load it (Ctrl-O) to branch from its tokens, or regenerate it (F8).",
            &[("model", &writer_name(orig))],
        ));
        return vec![];
    }
    let mut fx = drop_paused(s);
    let new = s.session.conv.branch_reply(id, t.step, chosen, &writer(s));
    let ended = s.session.conv.node(new).status == MsgStatus::Done;
    s.view.chooser = None;
    s.repath();
    // Stepping: to typing, where the first pause opens the chooser. Else the
    // token cursor stays at the fork (the new token, or the one before a
    // fresh draw), so [ ] switch versions at once.
    let paused = s.session.step_mode || text.is_some();
    let n = s.msg(t.msg).map_or(0, |m| m.steps.len());
    // The chosen token when there is one, else the last one before the fork.
    let fork_step = if t.step < n {
        Some(t.step)
    } else {
        t.step.checked_sub(1)
    };
    let at_fork = fork_step
        .filter(|&step| step < n)
        .map(|step| TokenRef { msg: t.msg, step });
    if s.session.step_mode || at_fork.is_none() {
        s.view.cursor = None;
        s.view.set_focus(Focus::Input);
    } else {
        s.view.cursor = at_fork;
        s.view.set_focus(Focus::Navigate);
    }
    if ended {
        // The chosen token ends the reply: nothing to generate.
        s.info(tr("notice-chosen-ends", "The chosen token ends the reply."));
        return fx;
    }
    fx.extend(start(s, new, paused));
    if let Some(text) = text {
        fx.push(Effect::Steer(Steer::ForceText(text)));
        if !s.session.step_mode {
            fx.push(Effect::Steer(Steer::Run));
        }
    }
    fx
}

/// A new version of the last reply, from its first token (F8).
pub fn regenerate(s: &mut State) -> Vec<Effect> {
    let last = s.view.path.len().checked_sub(1);
    match last.filter(|&i| s.msg(i).is_some_and(|m| m.role == Role::Assistant)) {
        Some(msg) => branch(s, TokenRef { msg, step: 0 }, None, None),
        None => {
            s.info(tr(
                "notice-no-reply-to-regenerate",
                "No reply to regenerate yet.",
            ));
            vec![]
        }
    }
}

/// Goes on generating reply `msg` after its last token (one stopped, cut
/// by the token limit, or shown again from another branch).
pub fn continue_reply(s: &mut State, msg: usize) -> Vec<Effect> {
    if let Some(why) = busy(s) {
        s.info(why);
        return vec![];
    }
    let Some(&id) = s.view.path.get(msg) else {
        return vec![];
    };
    let m = s.session.conv.node(id);
    if msg + 1 != s.view.path.len() {
        s.info(tr(
            "notice-continue-last-only",
            "Only the last reply can be continued (later turns build on it as it is).",
        ));
        return vec![];
    }
    let ended = m
        .stats
        .as_ref()
        .is_some_and(|st| st.stop == StopReason::Eog)
        || m.vocab
            .as_ref()
            .zip(m.steps.last())
            .is_some_and(|(v, st)| v.is_eog(st.id));
    if ended {
        s.info(tr(
            "notice-nothing-to-continue",
            "The model ended this reply itself: nothing to continue.",
        ));
        return vec![];
    }
    if !same_vocab(s, m) {
        s.error(tr_args(
            "notice-other-model-continue",
            "This reply was written by { $model }, whose tokens are not this model's: load it (Ctrl-O) to continue it.",
            &[("model", &writer_name(m))],
        ));
        return vec![];
    }
    let mut fx = drop_paused(s);
    // The reply goes on from its tokens' bytes, not from a U+FFFD shown for
    // them: starting it drops the tail.
    fx.extend(start(s, id, s.session.step_mode));
    fx
}

/// Shows the previous (`delta` -1) or next (+1) version of turn `msg`.
pub fn switch_sibling(s: &mut State, msg: usize, delta: isize) -> Vec<Effect> {
    if s.session.generation.is_some() {
        s.info(tr(
            "notice-reply-under-way",
            "A reply is under way: stop it (Esc) before switching versions.",
        ));
        return vec![];
    }
    let Some(&id) = s.view.path.get(msg) else {
        return vec![];
    };
    match s.session.conv.sibling(id, delta) {
        Some(other) => {
            s.session.conv.show(other);
            s.repath();
            let (pos, n) = s.session.conv.sibling_pos(other);
            s.info(tr_args(
                "notice-version",
                "Version { $i } of { $n }.",
                &[("i", &(pos + 1)), ("n", &n)],
            ));
            return vec![Effect::Save];
        }
        None => {
            let (_, n) = s.session.conv.sibling_pos(id);
            s.info(if n > 1 {
                tr("notice-no-more-versions", "No more versions that way.")
            } else {
                tr(
                    "notice-one-version",
                    "This turn has one version (Enter on a token branches; F8 regenerates).",
                )
            });
        }
    }
    vec![]
}

/// Puts user message `msg` in the input box: sent, it becomes a new version
/// of that message (the old one and its replies stay).
pub fn edit_message(s: &mut State, msg: usize) -> Vec<Effect> {
    let Some(&id) = s.view.path.get(msg) else {
        return vec![];
    };
    let text = s.session.conv.node(id).content.clone();
    s.session.editing = Some(id);
    s.view.input = super::state::new_input();
    s.view.input.insert_str(&text);
    s.view.set_focus(Focus::Input);
    s.info(tr(
        "notice-editing",
        "Editing an earlier message: Enter sends it as a new version; Esc leaves it as it was.",
    ));
    vec![]
}

/// Opens the chooser on the next token of the paused reply (step mode),
/// unless the user is busy with something else (moving over tokens,
/// choosing at a past token, editing or typing a message): then the status
/// bar says it is paused and Tab opens it. `asked`: the user asked for it.
pub fn choose_next(s: &mut State, asked: bool) {
    let busy_elsewhere = match s.view.focus {
        Focus::Navigate => true,
        Focus::Choose => s
            .view
            .chooser
            .as_ref()
            .is_some_and(|c| c.at != ChooseAt::Next),
        Focus::Input => s.session.editing.is_some() || !s.view.input.is_empty(),
    };
    if busy_elsewhere && !asked {
        return;
    }
    let keep = s
        .view
        .chooser
        .as_ref()
        .filter(|c| c.at == ChooseAt::Next)
        .map(|c| c.text.clone())
        .unwrap_or_default();
    let typing = !keep.is_empty();
    let find = s.view.chooser.as_ref().is_some_and(|c| c.find);
    s.view.chooser = Some(Chooser {
        at: ChooseAt::Next,
        selected: 0,
        text: keep,
        typing,
        find,
    });
    s.view.set_focus(Focus::Choose);
}
