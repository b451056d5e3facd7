//! Asking the model about any text where the learner stands (issue 23):
//! in the chooser (a paused step, or a past token to branch at), what is
//! typed is previewed before anything is committed: how it tokenizes and
//! each token's probability in turn and the whole's
//! ([`crate::engine::Command::AskText`], forced through a second sequence
//! of the KV cache, the conversation unchanged). Ctrl-F turns the typed text
//! into a vocabulary search: the tokens containing it, with their
//! probability and rank at this step.
//!
//! One question is in flight at a time: typing faster than the engine
//! answers asks only for the latest text, once the answer before is back
//! (a debounce that needs no clock). Asked when the engine is idle or the
//! reply is paused (served inside the pause); never while a reply runs.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::effect::Effect;
use super::state::{ChooseAt, Focus, Phase, Question, State};
use crate::engine::{ASK_MAX_PROBE, AskTextRequest, Event, TokenId, Vocab};
use crate::i18n::{tr, tr_args};
use crate::text::{pad_right, str_width, visible_piece};
use crate::tui::theme;

/// Rows of a vocabulary search shown, best p first.
pub const FIND_ROWS: usize = 12;

/// The token ids before the chooser's step: the reply's prompt as the
/// engine built it this session, then the reply's tokens before the step.
fn context(s: &State, at: ChooseAt) -> Result<Vec<TokenId>, String> {
    let (msg, upto) = match at {
        ChooseAt::Next => {
            let g = s
                .session
                .generation
                .as_ref()
                .ok_or_else(|| tr("ask-no-paused-reply", "no reply is paused"))?;
            let msg = s
                .msg_index(g.node)
                .ok_or_else(|| tr("ask-paused-not-shown", "the paused reply is not shown"))?;
            (msg, usize::MAX)
        }
        ChooseAt::Token(t) => (t.msg, t.step),
    };
    let node = *s
        .view
        .path
        .get(msg)
        .ok_or_else(|| tr("popup-no-such-message", "no such message"))?;
    let prompt = s.compare.prompts.get(&node).ok_or_else(|| {
        tr(
            "ask-prompt-not-built",
            "this reply's prompt was not built in this session: regenerate it (F8) to ask about text here",
        )
    })?;
    let steps = &s.session.conv.node(node).steps;
    let mut ids = prompt.clone();
    ids.extend(steps.iter().take(upto).map(|t| t.id));
    Ok(ids)
}

/// The vocabulary's tokens whose bytes contain `needle`, by id, and how
/// many there are (the first [`ASK_MAX_PROBE`] returned).
pub fn find_tokens(vocab: &Vocab, needle: &str) -> (Vec<TokenId>, usize) {
    let needle = needle.as_bytes();
    let mut found = Vec::new();
    let mut n = 0;
    if needle.is_empty() {
        return (found, 0);
    }
    for id in 0..vocab.len() {
        let Ok(id) = TokenId::try_from(id) else { break };
        if vocab.bytes(id).windows(needle.len()).any(|w| w == needle) {
            n += 1;
            if found.len() < ASK_MAX_PROBE {
                found.push(id);
            }
        }
    }
    (found, n)
}

/// What the open chooser would ask now: `None` when there is nothing to
/// ask (no text, a lone digit picking a candidate); `Err` why it cannot be asked.
fn question(s: &State) -> Option<Result<Question, String>> {
    let c = s
        .view
        .chooser
        .as_ref()
        .filter(|_| s.view.focus == Focus::Choose)?;
    if c.text.is_empty() || (!c.find && super::state::lone_digit(&c.text).is_some()) {
        return completion_question(s);
    }
    let empty = |why: String| Some(Err(why));
    if let Some(why) = s
        .model
        .caps
        .as_ref()
        .and_then(|caps| caps.refuses("asking the model about a text"))
    {
        return empty(why);
    }
    let context = match context(s, c.at) {
        Ok(ids) => ids,
        Err(why) => return empty(why),
    };
    let (text, probe, matches) = if c.find {
        let Some(vocab) = s.model.vocab.as_ref() else {
            return empty(tr("ask-no-model", "no model is loaded"));
        };
        let (probe, n) = find_tokens(vocab, &c.text);
        (String::new(), probe, n)
    } else {
        (c.text.clone(), Vec::new(), 0)
    };
    Some(Ok(Question {
        context,
        text,
        probe,
        matches,
        typed: c.text.clone(),
        complete: None,
    }))
}

/// The question when nothing is typed: where the selected candidate leads
/// when it ends in an incomplete character (a byte token); `None` for any
/// other candidate, or when the engine cannot be asked (the bytes alone
/// still say which characters it can begin).
fn completion_question(s: &State) -> Option<Result<Question, String>> {
    let id = selected_id(s)?;
    crate::engine::incomplete_tail(s.model.vocab.as_ref()?.bytes(id))?;
    // A remote model cannot be asked (no logits over the vocabulary).
    if s.model.caps.as_ref()?.remote.is_some() {
        return None;
    }
    let context = context(s, s.view.chooser.as_ref()?.at).ok()?;
    Some(Ok(Question {
        context,
        text: String::new(),
        probe: Vec::new(),
        matches: 0,
        typed: String::new(),
        complete: Some(id),
    }))
}

/// The candidate the chooser has selected: at a paused step the one
/// previewed, at a past token the selected row of its candidates.
fn selected_id(s: &State) -> Option<TokenId> {
    let c = s.view.chooser.as_ref()?;
    match c.at {
        ChooseAt::Next => Some(s.preview()?.1.id),
        ChooseAt::Token(t) => Some(s.step(t)?.top().get(c.selected)?.id),
    }
}

/// Asks about what the chooser has typed when it changed, the engine can
/// answer (idle, or the reply paused) and no question is in flight; forgets
/// the answer when the chooser closes or its text is gone. Called after every update.
pub fn reconcile(s: &mut State) -> Vec<Effect> {
    let q = match question(s) {
        None => {
            s.view.asking.answer = None;
            return vec![];
        }
        Some(Err(why)) => {
            let typed = s
                .view
                .chooser
                .as_ref()
                .map(|c| c.text.clone())
                .unwrap_or_default();
            let stub = Question {
                context: Vec::new(),
                text: String::new(),
                probe: Vec::new(),
                matches: 0,
                typed,
                complete: None,
            };
            s.view.asking.answer = Some((stub, Err(why)));
            return vec![];
        }
        Some(Ok(q)) => q,
    };
    let engine_free = match &s.session.generation {
        None => true,
        Some(g) => matches!(g.phase, Phase::Paused { .. }),
    };
    let answered = s.view.asking.answer.as_ref().is_some_and(|(a, _)| *a == q);
    if answered
        || s.view.asking.in_flight.is_some()
        || !engine_free
        || s.session.load.is_some()
        || s.compare.job.is_some()
    {
        return vec![];
    }
    let req = AskTextRequest {
        context: q.context.clone(),
        text: q.text.clone(),
        probe: q.probe.clone(),
        complete: q.complete,
    };
    let id = s.session.new_request();
    s.view.asking.in_flight = Some((id, q));
    vec![Effect::AskText(id, req)]
}

/// Whether `ev` answers the question in flight.
pub fn owns(s: &State, ev: &Event) -> bool {
    let ours = s.view.asking.in_flight.as_ref().map(|(r, _)| *r);
    ours.is_some() && ev.request() == ours
}

/// The question's events: its answer kept; its end frees the way for the next.
pub fn on_event(s: &mut State, ev: Event) {
    let Some((_, q)) = s.view.asking.in_flight.as_ref() else {
        return;
    };
    match ev {
        Event::TextAnswer { answer, .. } => {
            s.view.asking.answer = Some((q.clone(), Ok(*answer)));
        }
        Event::Failed { error, .. } => {
            s.view.asking.answer = Some((q.clone(), Err(error.to_string())));
            s.view.asking.in_flight = None;
        }
        Event::Done { .. } | Event::Cancelled { .. } => s.view.asking.in_flight = None,
        _ => {}
    }
}

/// The characters a token of incomplete UTF-8 can begin: `bytes` is the
/// start of one character (a lead byte, perhaps with continuation bytes)
/// and no more. Returns the first and last code points it can become and
/// the character's length in bytes; `None` for any other bytes. Computed
/// from the bytes alone (UTF-8's rules, surrogates and the range past
/// U+10FFFF excluded), not from the model.
pub fn can_begin(bytes: &[u8]) -> Option<(char, char, usize)> {
    let err = std::str::from_utf8(bytes).err()?;
    // Incomplete at the end, nothing before it, nothing invalid.
    if err.valid_up_to() != 0 || err.error_len().is_some() {
        return None;
    }
    let len = match bytes.first()? {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let lead_bits = [0, 0, 0x1F, 0x0F, 0x07][len];
    let fill = |cont: u32| {
        let mut cp = u32::from(bytes[0] & lead_bits);
        for i in 1..len {
            let b = bytes.get(i).map_or(cont, |&b| u32::from(b & 0x3F));
            cp = (cp << 6) | b;
        }
        cp
    };
    // The shortest encoding only (an overlong one is invalid), at most U+10FFFF.
    let least = [0, 0, 0x80, 0x800, 0x10000][len];
    let (mut lo, mut hi) = (fill(0).max(least), fill(0x3F).min(0x10FFFF));
    // Surrogates cannot be encoded: the range steps around them.
    if (0xD800..=0xDFFF).contains(&lo) {
        lo = 0xE000;
    }
    if (0xD800..=0xDFFF).contains(&hi) {
        hi = 0xD7FF;
    }
    Some((char::from_u32(lo)?, char::from_u32(hi)?, len))
}

/// The line under the candidates for a selected candidate of incomplete
/// UTF-8: the characters it can begin (`<0xE9> begins a 3-byte character:
/// U+9000 退 … U+9FFF`), labelled as computed from its bytes.
fn byte_lines(s: &State, width: usize) -> Option<Vec<Line<'static>>> {
    let id = selected_id(s)?;
    let vocab = s.model.vocab.as_ref()?;
    let bytes = vocab.bytes(id);
    let (lo, hi, len) = can_begin(bytes)?;
    let show = |ch: char| {
        let glyph = visible_piece(&ch.to_string());
        format!("U+{:04X} {glyph}", ch as u32)
    };
    let text = tr_args(
        "ask-can-begin",
        "{ $token } begins a { $len }-byte character: { $lo } … { $hi } (from its bytes)",
        &[
            ("token", &vocab.readable(id)),
            ("len", &len),
            ("lo", &show(lo)),
            ("hi", &show(hi)),
        ],
    );
    let mut text = vec![text];
    text.extend(completion_text(s, id));
    Some(
        text.iter()
            .flat_map(|t| crate::tui::wrap::wrap_plain(t, width))
            .map(|l| Line::styled(l, theme::dim()))
            .collect(),
    )
}

/// What the model completes the incomplete candidate `id` to, from the
/// engine's answer (`the model completes it: 龘 99.94% · 龙 0.044% …`), or
/// that it is being asked; nothing when it cannot be asked.
fn completion_text(s: &State, id: TokenId) -> Option<String> {
    let asked = |q: &Question| q.complete == Some(id);
    let answer = match (&s.view.asking.answer, &s.view.asking.in_flight) {
        (Some((q, a)), _) if asked(q) => a,
        (_, Some((_, q))) if asked(q) => {
            return Some(tr(
                "complete-asking",
                "asking the model which character it completes…",
            ));
        }
        _ => return None,
    };
    let c = match answer {
        Err(why) => {
            return Some(tr_args(
                "complete-cannot",
                "cannot ask which character it completes: { $why }",
                &[("why", why)],
            ));
        }
        Ok(a) => a.completion.as_ref()?,
    };
    if c.chars.is_empty() {
        return Some(tr_args(
            "complete-none",
            "the model does not complete it: the next token cannot continue the character (p { $p })",
            &[("p", &short_pct(c.p_not_char))],
        ));
    }
    let listed: Vec<String> = c
        .chars
        .iter()
        .take(4)
        .map(|ch| format!("{} {}", visible_piece(&ch.ch.to_string()), short_pct(ch.p)))
        .collect();
    let mut text = tr_args(
        "complete-chars",
        "the model completes it: { $chars }",
        &[("chars", &listed.join(" · "))],
    );
    if c.p_not_char > 0.0 {
        text.push_str(" · ");
        text.push_str(&tr_args(
            "complete-not-char",
            "not a character { $p }",
            &[("p", &short_pct(c.p_not_char))],
        ));
    }
    if c.p_unexplored > 0.0 {
        // Each p is then a lower bound: some ways were not followed.
        text.push_str(" · ");
        text.push_str(&tr_args(
            "complete-unexplored",
            "not followed { $p } (so each p is a lower bound)",
            &[("p", &short_pct(c.p_unexplored))],
        ));
    }
    Some(text)
}

/// `p` as a short percentage: `31.2%`, `0.042%`, `3e-7%` (tiny ones stay legible).
fn short_pct(p: f64) -> String {
    let pc = p * 100.0;
    if pc >= 1.0 {
        format!("{pc:.1}%")
    } else if pc >= 0.001 {
        format!("{pc:.3}%")
    } else {
        format!("{pc:.0e}%")
    }
}

/// The lines under the candidates while choosing: the preview of the typed
/// text (`和国 = [和 0.078%] [国 2.2%]`, then `whole p=0.0017%`), or the vocabulary
/// search's best rows (`id piece p rank`), or why there is none; empty
/// when nothing is typed. `width` in columns; heat colours with `heat`.
pub fn lines(s: &State, width: usize, heat: bool) -> Vec<Line<'static>> {
    let Some(c) = s.view.chooser.as_ref() else {
        return vec![];
    };
    if c.text.is_empty() || (!c.find && super::state::lone_digit(&c.text).is_some()) {
        return byte_lines(s, width).unwrap_or_default();
    }
    let Some((q, answer)) = s
        .view
        .asking
        .answer
        .as_ref()
        .filter(|(q, _)| q.complete.is_none())
    else {
        return vec![Line::styled(
            tr("ask-asking", "asking the model…"),
            theme::dim(),
        )];
    };
    let style = |p: f64| {
        if heat {
            Style::default().fg(theme::heat(p as f32))
        } else {
            Style::default()
        }
    };
    let stale = if q.typed == c.text {
        String::new()
    } else {
        format!(" {}", tr("ask-updating", "(updating…)"))
    };
    let piece = |id: TokenId| -> String {
        s.model
            .vocab
            .as_ref()
            .map_or_else(|| format!("#{id}"), |v| visible_piece(&v.readable(id)))
    };
    let a = match answer {
        Err(why) => {
            let text = tr_args("ask-cannot", "cannot ask: { $why }", &[("why", why)]);
            return crate::tui::wrap::wrap_plain(&text, width)
                .into_iter()
                .map(|l| Line::styled(l, theme::dim()))
                .collect();
        }
        Ok(a) => a,
    };
    let mut out = Vec::new();
    if q.probe.is_empty() && !q.text.is_empty() {
        // The text, then its tokens as `[piece p]`, wrapped between tokens.
        let mut spans = vec![Span::raw(format!("{} =", visible_piece(&q.text)))];
        let mut used = str_width(&spans[0].content);
        for t in &a.tokens {
            let cell = format!(" [{} {}]", piece(t.id), short_pct(f64::from(t.p())));
            let w = str_width(&cell);
            if used + w > width && used > 0 {
                out.push(Line::from(std::mem::take(&mut spans)));
                used = 0;
            }
            used += w;
            spans.push(Span::styled(cell, style(f64::from(t.p()))));
        }
        out.push(Line::from(spans));
        out.push(Line::from(vec![
            Span::styled(
                tr_args("ask-whole", "whole p={ $p }", &[("p", &short_pct(a.p()))]),
                style(a.p()),
            ),
            Span::styled(stale.clone(), theme::dim()),
        ]));
        for l in crate::tui::wrap::wrap_plain(
            &tr(
                "ask-preview-about",
                "each token's p given the ones before it (forced through beside the reply, nothing committed)",
            ),
            width,
        ) {
            out.push(Line::styled(l, theme::dim()));
        }
        return out;
    }
    let mut rows = a.probe.clone();
    rows.sort_by(|x, y| x.rank.cmp(&y.rank).then(x.id.cmp(&y.id)));
    let probed = if q.matches > q.probe.len() {
        tr_args(
            "ask-find-first",
            ", the first { $n } by id ranked",
            &[("n", &q.probe.len())],
        )
    } else {
        String::new()
    };
    // English says `1 token`, `2 tokens`: the noun is its own message.
    let noun = if q.matches == 1 {
        tr("ask-token", "token")
    } else {
        tr("ask-tokens", "tokens")
    };
    let head = tr_args(
        "ask-find-head",
        "vocabulary: { $n } { $noun } containing \"{ $text }\"{ $probed }{ $stale } · Ctrl-F: back to text",
        &[
            ("n", &q.matches),
            ("noun", &noun),
            ("text", &visible_piece(&q.typed)),
            ("probed", &probed),
            ("stale", &stale),
        ],
    );
    for l in crate::tui::wrap::wrap_plain(&head, width) {
        out.push(Line::styled(l, theme::dim()));
    }
    for t in rows.iter().take(FIND_ROWS) {
        out.push(Line::from(vec![
            Span::styled(format!("{:>7} ", t.id), theme::dim()),
            // Padded by display width: a Chinese piece is two columns a character.
            Span::styled(pad_right(&piece(t.id), 12), style(f64::from(t.p()))),
            Span::styled(
                format!(
                    " p={:<9} {}",
                    short_pct(f64::from(t.p())),
                    tr_args("ask-rank", "rank { $rank }", &[("rank", &t.rank)])
                ),
                style(f64::from(t.p())),
            ),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_finds_every_token_containing_the_text_by_bytes() {
        let v = Vocab::new(
            vec![
                "和".as_bytes().to_vec(),
                "共和国".as_bytes().to_vec(),
                b"hat".to_vec(),
                vec![0xE5],
            ],
            vec![],
        );
        assert_eq!(find_tokens(&v, "和"), (vec![0, 1], 2));
        assert_eq!(find_tokens(&v, "a"), (vec![2], 1));
        assert_eq!(find_tokens(&v, ""), (vec![], 0));
        assert_eq!(find_tokens(&v, "x"), (vec![], 0));
    }

    #[test]
    fn a_partial_character_says_which_characters_it_can_begin() {
        // 鼠 is E9 BC A0: E9 begins U+9000..U+9FFF, E9 BC narrows it.
        assert_eq!(can_begin(&[0xE9]), Some(('\u{9000}', '\u{9FFF}', 3)));
        assert_eq!(can_begin(&[0xE9, 0xBC]), Some(('\u{9F00}', '\u{9F3F}', 3)));
        assert!(('\u{9F00}'..='\u{9F3F}').contains(&'鼠'));
        assert_eq!(can_begin(&[0xC3]), Some(('\u{C0}', '\u{FF}', 2)));
        assert_eq!(can_begin(&[0xF0]), Some(('\u{10000}', '\u{3FFFF}', 4)));
        assert_eq!(can_begin(&[0xE0]), Some(('\u{800}', '\u{FFF}', 3)));
        assert_eq!(
            can_begin(&[0xED]),
            Some(('\u{D000}', '\u{D7FF}', 3)),
            "no surrogates"
        );
        assert_eq!(can_begin(&[0xF4]), Some(('\u{100000}', '\u{10FFFF}', 4)));
        // Not a lone start: a whole character, a continuation byte, nothing.
        assert_eq!(can_begin("和".as_bytes()), None);
        assert_eq!(can_begin(&[0xBC]), None);
        assert_eq!(can_begin(b"a\xE9"), None);
        assert_eq!(can_begin(&[]), None);
    }

    #[test]
    fn percentages_stay_legible_when_tiny() {
        assert_eq!(short_pct(0.312), "31.2%");
        assert_eq!(short_pct(0.00078), "0.078%");
        assert_eq!(short_pct(3e-9), "3e-7%");
    }
}
