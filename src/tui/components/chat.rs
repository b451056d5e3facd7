//! The chat pane: the conversation wrapped into lines, the token cursor
//! that moves over replies' tokens, clicks on tokens, and scrolling.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};
use ratatui_textarea::Input;

use crate::engine::{Role, TokenStep, sampler};
use crate::i18n::{tr, tr_args};
use crate::text::{str_width, truncate};
use crate::tui::action::{Action, Context, lookup, lookup_mouse};
use crate::tui::effect::Effect;
use crate::tui::outcome::Outcome;
use crate::tui::reply;
use crate::tui::state::{ChatLine, Focus, HeatScale, State, TokenRef};
use crate::tui::theme;
use crate::tui::wrap::{Cell, Tag, wrap_lines};

/// Lines a mouse wheel notch scrolls.
const WHEEL_LINES: isize = 3;

/// The chat's part of [`Context::Main`] (and the token cursor's shared
/// actions): the token cursor, toggles, scrolling.
pub fn on_action(s: &mut State, action: Action) -> Outcome {
    match action {
        Action::ToggleTokenCursor => return Outcome::ToggleTokenCursor,
        Action::ToggleHeatmap => return Outcome::ToggleHeatmap,
        Action::ToggleBoundaries => s.view.display.boundaries = !s.view.display.boundaries,
        Action::ScrollUp => scroll_by(s, -page(s)),
        Action::ScrollDown => scroll_by(s, page(s)),
        _ => {}
    }
    Outcome::Done
}

/// A mouse event: the wheel scrolls (anywhere), a click selects a token
/// (outside popups).
pub fn on_mouse(s: &mut State, m: MouseEvent) {
    let action = lookup_mouse(Context::Anywhere, &m).or_else(|| {
        s.view
            .popup
            .is_none()
            .then(|| lookup_mouse(Context::Main, &m))
            .flatten()
    });
    match action {
        Some(Action::ScrollWheel) if m.kind == MouseEventKind::ScrollUp => {
            scroll_by(s, -WHEEL_LINES)
        }
        Some(Action::ScrollWheel) => scroll_by(s, WHEEL_LINES),
        Some(Action::ClickToken) => click(s, m.column, m.row),
        _ => {}
    }
}

/// A key in the token cursor ([`Context::TokenCursor`]); `quit_armed`: the
/// key before asked to quit.
pub fn on_key(s: &mut State, k: KeyEvent, quit_armed: bool) -> Outcome {
    let Some(cur) = s
        .view
        .cursor
        .filter(|c| s.step(*c).is_some())
        .or_else(|| s.last_token())
    else {
        s.view.set_focus(Focus::Input);
        return Outcome::Done;
    };
    let plain_char = matches!(k.code, KeyCode::Char(_))
        && !k
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    // Entered by a click: letters go on typing (see `View::nav_by_mouse`).
    if s.view.nav_by_mouse && plain_char {
        s.view.set_focus(Focus::Input);
        s.view.input.input(Input::from(k));
        return Outcome::Done;
    }
    let Some(action) = lookup(Context::TokenCursor, &k) else {
        return Outcome::Done;
    };
    let on_prompt = s.msg(cur.msg).is_some_and(|m| m.role != Role::Assistant);
    let on_system = s.msg(cur.msg).is_some_and(|m| m.role == Role::System);
    // What a remote model cannot do is refused before anything starts.
    if !on_prompt && let Some(why) = reply::remote_refusal(s, action, cur.msg) {
        s.error(why);
        return Outcome::Done;
    }
    let next = match action {
        Action::Cancel if s.session.generation.is_some() => return Outcome::Cancel,
        Action::Cancel if s.compare.job.is_some() => return Outcome::CancelCompare,
        Action::CompareReply if on_prompt => {
            s.info(tr(
                "chat-compare-on-prompt",
                "That is a token of your message: v compares a reply (move to one).",
            ));
            return Outcome::Done;
        }
        Action::CompareReply => return Outcome::OpenCompare,
        Action::EndCompare => return Outcome::EndCompare,
        Action::Cancel | Action::BackToTyping => return Outcome::BackFromCursor,
        Action::ChooseHere => return Outcome::ChooseAt(cur),
        a if a.is_whatif() => {
            whatif_step(s, cur, action);
            return Outcome::Done;
        }
        Action::ApplyWhatIf => return Outcome::ApplyWhatIf,
        Action::ResetWhatIf => {
            s.model.whatif = None;
            return Outcome::Done;
        }
        // The system prompt's tokens: e edits it; it has no versions.
        Action::EditPrompt if on_system => return Outcome::OpenSystemPrompt,
        Action::PrevReply | Action::NextReply if on_system => {
            s.info(tr(
                "chat-system-one-version",
                "The system prompt has one version: e edits it (for the replies after it).",
            ));
            return Outcome::Done;
        }
        Action::Resample | Action::ContinueReply if on_system => {
            s.info(tr(
                "chat-rc-on-system",
                "That is a token of the system prompt: r and c act on a reply's tokens.",
            ));
            return Outcome::Done;
        }
        // On a token of a prompt turn: those keys act on that turn.
        Action::Resample | Action::ContinueReply if on_prompt => {
            s.info(tr(
                "chat-rc-on-prompt",
                "That is a token of your message: r and c act on a reply's tokens.",
            ));
            return Outcome::Done;
        }
        Action::Resample => {
            return Outcome::Branch {
                at: cur,
                chosen: None,
                text: None,
            };
        }
        Action::ContinueReply => return Outcome::ContinueReply(cur.msg),
        Action::PrevReply if on_prompt => return Outcome::SwitchSibling(cur.msg, -1),
        Action::NextReply if on_prompt => return Outcome::SwitchSibling(cur.msg, 1),
        Action::EditPrompt if on_prompt => return Outcome::EditMessage(cur.msg),
        Action::PrevReply => return Outcome::SwitchSibling(cur.msg, -1),
        Action::NextReply => return Outcome::SwitchSibling(cur.msg, 1),
        Action::PrevPrompt | Action::NextPrompt | Action::EditPrompt => {
            // The user message this reply answers.
            let Some(u) = cur
                .msg
                .checked_sub(1)
                .filter(|&u| s.msg(u).is_some_and(|m| m.role == Role::User))
            else {
                return Outcome::Done;
            };
            return match action {
                Action::PrevPrompt => Outcome::SwitchSibling(u, -1),
                Action::NextPrompt => Outcome::SwitchSibling(u, 1),
                _ => Outcome::EditMessage(u),
            };
        }
        // Twice, as Ctrl-C: a stray q must not end the conversation.
        Action::Quit if quit_armed => return Outcome::Effects(vec![Effect::Quit]),
        Action::Quit => {
            s.quit_armed = true;
            s.info(tr("chat-quit-again", "Press q again to quit."));
            return Outcome::Done;
        }
        Action::OpenLens => return Outcome::OpenLens(cur),
        Action::OpenRollouts => return Outcome::OpenRollouts(cur),
        Action::OpenKvCost => return Outcome::OpenKvCost(cur),
        Action::NextSurprise | Action::PrevSurprise => {
            let forward = action == Action::NextSurprise;
            let found = s.surprise_from(cur, forward);
            if found.is_none() {
                let stop = s.config.surprise;
                let text = if forward {
                    tr_args(
                        "chat-no-surprise-after",
                        "No surprising token after this one (p below { $p } or entropy above { $h } bits; F5 sets both).",
                        &[("p", &stop.below_p), ("h", &stop.above_entropy)],
                    )
                } else {
                    tr_args(
                        "chat-no-surprise-before",
                        "No surprising token before this one (p below { $p } or entropy above { $h } bits; F5 sets both).",
                        &[("p", &stop.below_p), ("h", &stop.above_entropy)],
                    )
                };
                s.info(text);
            }
            found
        }
        Action::TokenLeft => neighbour(s, cur, false),
        Action::TokenRight => neighbour(s, cur, true),
        Action::TokenUp | Action::TokenDown => {
            let goal = s
                .view
                .nav_col
                .or_else(|| s.token_position(cur).map(|p| p.1));
            if let Some(n) = vertical(s, cur, action == Action::TokenDown, goal) {
                s.view.cursor = Some(n);
                s.view.nav_col = goal;
                s.reveal_cursor();
            }
            return Outcome::Done;
        }
        Action::TokenHome => Some(TokenRef {
            msg: cur.msg,
            step: 0,
        }),
        Action::TokenEnd => s.msg(cur.msg).map(|m| TokenRef {
            msg: cur.msg,
            step: m.steps.len().saturating_sub(1),
        }),
        Action::EditText => {
            // Typing goes to the input box.
            s.view.set_focus(Focus::Input);
            s.view.input.input(Input::from(k));
            return Outcome::Done;
        }
        Action::OpenHelp => return Outcome::OpenHelp,
        // Heatmap, boundaries: as outside the token cursor.
        other => return on_action(s, other),
    };
    if let Some(n) = next {
        s.view.cursor = Some(n);
        s.view.nav_col = None;
        s.reveal_cursor();
    }
    Outcome::Done
}

/// Changes one what-if setting by a step ([`sampler::PARAMS`] says how
/// far), starting from the settings the inspected reply ran with (or the
/// current ones).
fn whatif_step(s: &mut State, cur: TokenRef, action: Action) {
    use sampler::ParamName as P;
    let (which, up) = match action {
        Action::TempDown => (P::Temperature, false),
        Action::TempUp => (P::Temperature, true),
        Action::TopKDown => (P::TopK, false),
        Action::TopKUp => (P::TopK, true),
        Action::TopPDown => (P::TopP, false),
        Action::TopPUp => (P::TopP, true),
        Action::MinPDown => (P::MinP, false),
        Action::MinPUp => (P::MinP, true),
        _ => return,
    };
    let mut p = s
        .model
        .whatif
        .clone()
        .or_else(|| s.msg(cur.msg).and_then(|m| m.sampling.clone()))
        .unwrap_or_else(|| s.config.sampling.clone());
    p.step(which, up);
    s.model.whatif = Some(p);
}

/// The next (or previous) assistant token, across messages.
fn neighbour(s: &State, cur: TokenRef, forward: bool) -> Option<TokenRef> {
    if forward {
        if cur.step + 1 < s.msg(cur.msg)?.steps.len() {
            return Some(TokenRef {
                msg: cur.msg,
                step: cur.step + 1,
            });
        }
        s.token_refs().find(|t| t.msg > cur.msg)
    } else {
        if cur.step > 0 {
            return Some(TokenRef {
                msg: cur.msg,
                step: cur.step - 1,
            });
        }
        s.token_refs().filter(|t| t.msg < cur.msg).last()
    }
}

/// The token on the nearest line above (or below) with tokens, closest to
/// the cursor's column.
fn vertical(s: &State, cur: TokenRef, down: bool, goal: Option<usize>) -> Option<TokenRef> {
    let (line, col) = s.token_position(cur)?;
    let col = goal.unwrap_or(col);
    let total = s.view.chat.total_lines();
    let mut l = line;
    loop {
        l = if down {
            if l + 1 >= total {
                return None;
            }
            l + 1
        } else {
            l.checked_sub(1)?
        };
        if let Some(t) = token_at(s, l, col) {
            return Some(t);
        }
    }
}

/// A click on a token of a reply selects it (token cursor).
fn click(s: &mut State, x: u16, y: u16) {
    let chat = s.areas(s.view.screen()).chat;
    if !chat.contains(ratatui::layout::Position::new(x, y)) || x == chat.x {
        return;
    }
    let win = s.view.chat_window(chat.height as usize);
    if (y - chat.y) as usize >= win.rows {
        return; // the scroll hint's row
    }
    let line = win.top + (y - chat.y) as usize;
    let col = (x - chat.x - 1) as usize;
    if let Some(t) = token_under(s, line, col) {
        s.view.cursor = Some(t);
        s.view.nav_col = None;
        if s.view.focus != Focus::Navigate {
            s.view.nav_by_mouse = true;
        }
        s.view.set_focus(Focus::Navigate);
    }
}

/// The token whose text covers column `col` of chat line `line`.
fn token_under(s: &State, line: usize, col: usize) -> Option<TokenRef> {
    let mut start = 0;
    for (b, block) in s.view.chat.blocks.iter().enumerate() {
        let n = block.lines.len();
        if line < start + n {
            if line < start {
                return None;
            }
            let msg = b;
            let mut x = 0;
            for c in &block.lines[line - start] {
                let w = (c.width as usize).max(1);
                if col < x + w {
                    return match c.tag {
                        Tag::Token(i) => Some(TokenRef {
                            msg,
                            step: i as usize,
                        }),
                        _ => None,
                    };
                }
                x += c.width as usize;
            }
            return None;
        }
        start += n + 1;
    }
    None
}

/// The token at column `col` of chat line `line` (or the nearest on that line).
fn token_at(s: &State, line: usize, col: usize) -> Option<TokenRef> {
    let mut start = 0;
    for (b, block) in s.view.chat.blocks.iter().enumerate() {
        let n = block.lines.len();
        if line < start {
            return None; // the blank line between blocks
        }
        if line < start + n {
            let msg = b;
            // Replies, and prompt turns drawn as tokens, have token cells.
            if s.msg(msg)?.steps.is_empty() {
                return None;
            }
            let mut x = 0;
            let mut best = None;
            for c in &block.lines[line - start] {
                if let Tag::Token(i) = c.tag {
                    if best.is_none() || x <= col {
                        best = Some(i as usize);
                    }
                    if x >= col {
                        break;
                    }
                }
                x += c.width as usize;
            }
            return best.map(|step| TokenRef { msg, step });
        }
        start += n + 1;
    }
    None
}

/// Lines a page scrolls: the chat's height but one.
fn page(s: &State) -> isize {
    (s.chat_height() as isize - 1).max(1)
}

/// Scrolls the chat by `delta` lines (negative: up); at the bottom it follows new lines.
pub fn scroll_by(s: &mut State, delta: isize) {
    let h = s.chat_height();
    let max = s.view.chat.total_lines().saturating_sub(h) as isize;
    let top = (s.view.chat_top(h) as isize + delta).clamp(0, max);
    s.view.scroll.top = top as usize;
    s.view.scroll.follow = top >= max;
}

// ---- drawing ------------------------------------------------------------

fn role_of_block(s: &State, block: usize) -> Role {
    s.msg(block).map_or(Role::User, |m| m.role)
}

/// Style of one chat cell.
pub fn cell_style(s: &State, block: usize, cell: &Cell) -> Style {
    let role = role_of_block(s, block);
    match cell.tag {
        Tag::Label => {
            let c = match role {
                Role::User => theme::USER,
                Role::Assistant => theme::ASSISTANT,
                Role::System => theme::SYSTEM,
            };
            Style::default().fg(c).add_modifier(Modifier::BOLD)
        }
        Tag::Meta | Tag::Placeholder => theme::dim(),
        Tag::Siblings => Style::default()
            .fg(theme::ASSISTANT)
            .add_modifier(Modifier::BOLD),
        Tag::Note => Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::ITALIC),
        Tag::Text => match role {
            Role::System => Style::default()
                .fg(theme::SYSTEM)
                .add_modifier(Modifier::ITALIC),
            _ => Style::default(),
        },
        Tag::Token(i) => {
            let node = s.msg(block);
            let step = node.and_then(|m| m.steps.get(i as usize));
            let mut st = Style::default();
            let scaffold = node.is_some_and(|m| crate::tui::state::is_scaffolding(m, i as usize));
            // The lens's attention view: the weight on each token, over the heat.
            let attention = match &s.view.popup {
                Some(crate::tui::state::Popup::Lens(l)) if l.attention.is_some() => {
                    Some(l.attention_on(TokenRef {
                        msg: block,
                        step: i as usize,
                    }))
                }
                _ => None,
            };
            if let Some(w) = attention {
                st = w.map_or_else(theme::dim, |w| {
                    theme::attention_style(w, s.view.display.color)
                });
            } else if scaffold {
                st = theme::dim();
            } else if let Some(scale) = s.heat_shown() {
                st = heat_style(scale, node, step, i as usize, s.view.display.color).unwrap_or(st);
            }
            if s.view.display.boundaries {
                st = st.patch(theme::boundary(i as usize, s.view.display.color));
            }
            // Step mode: the newest token of the reply under way stands out.
            if let Some(g) = &s.session.generation
                && s.session.step_mode
                && block == g.msg
                && s.msg(g.msg)
                    .is_some_and(|m| m.steps.len() == i as usize + 1)
            {
                st = st.add_modifier(Modifier::UNDERLINED | Modifier::BOLD);
            }
            if s.view.focus == Focus::Navigate
                && let Some(c) = s.view.cursor
                && c.msg == block
                && cell.covers(c.step as u32)
            {
                st = theme::cursor_on(st, s.view.display.color);
                if cell.is_partial_for(c.step as u32) {
                    // The token is only part of this glyph: say so.
                    st = st.add_modifier(Modifier::UNDERLINED);
                }
            }
            st
        }
    }
}

/// The heatmap's style of token `i` of `node` on `scale`; `None` where the
/// token has no number on it (not scored, inspector off): drawn plain. On
/// the KL scale a token that was not compared is coloured by probability.
fn heat_style(
    scale: HeatScale,
    node: Option<&crate::tui::state::Message>,
    step: Option<&TokenStep>,
    i: usize,
    color: bool,
) -> Option<Style> {
    match scale {
        HeatScale::Kl => {
            if let Some(row) = node
                .and_then(|m| m.comparison.as_ref())
                .and_then(|c| c.row(i))
            {
                return Some(theme::kl_heat_style(row.kl[0], color));
            }
            heat_style(HeatScale::Probability, node, step, i, color)
        }
        HeatScale::Probability => Some(theme::heat_style(step?.p()?, color)),
        HeatScale::Entropy => Some(theme::entropy_heat_style(step?.entropy()?, color)),
    }
}

/// Draws one wrapped line cell by cell (each cell is one grapheme cluster).
fn draw_cells(s: &State, buf: &mut Buffer, block: usize, cells: &[Cell], x: u16, y: u16, w: u16) {
    let end = x.saturating_add(w);
    let mut cx = x;
    for c in cells {
        let cw = c.width as u16;
        if cx + cw > end {
            break;
        }
        buf.set_stringn(cx, y, &c.text, cw as usize, cell_style(s, block, c));
        cx += cw;
    }
}

/// Draws the chat pane (the welcome text when the chat is empty).
pub fn render(s: &State, buf: &mut Buffer, r: Rect) {
    if r.area() == 0 {
        return;
    }
    let height = r.height as usize;
    if s.view
        .path
        .iter()
        .all(|&id| id == crate::conversation::ROOT)
    {
        welcome(s, buf, r);
    }
    let win = s.view.chat_window(height);
    let x = r.x + 1.min(r.width);
    let w = r.width.saturating_sub(1);
    for (dy, line) in s
        .view
        .chat
        .visible(win.top, win.rows)
        .into_iter()
        .enumerate()
    {
        if let ChatLine::Cells { block, cells } = line {
            draw_cells(s, buf, block, cells, x, r.y + dy as u16, w);
        }
    }
    // Scrolled up with more below: the last row holds the hint, not chat text.
    if let Some(below) = win.hint_below {
        let more = if crate::i18n::lang() == crate::i18n::Lang::En {
            crate::text::count(below, "more line")
        } else {
            tr_args("chat-more-lines", "{ $n } more lines", &[("n", &below)])
        };
        let text = truncate(&format!(" ↓ {more} · PgDn "), r.width as usize);
        let tw = str_width(&text) as u16;
        buf.set_string(
            r.x + r.width - tw,
            r.y + r.height - 1,
            text,
            Style::default().fg(Color::Black).bg(Color::Yellow),
        );
    }
}

/// Whether the model loaded, or the one loading, is a Qwen (by its
/// architecture, `qwen2`, `qwen3`…, or its name): the Chinese-capable demo
/// model the welcome screen's hint names.
pub(crate) fn qwen_in_use(s: &State) -> bool {
    let qwen = |t: &str| t.to_lowercase().contains("qwen");
    match (&s.session.load, &s.model.info) {
        (Some(l), _) => qwen(&crate::tui::models::load_name(
            &l.model,
            &s.model.files.models,
        )),
        (None, Some(m)) => qwen(&m.arch) || qwen(&m.name),
        (None, None) => false,
    }
}

fn welcome(s: &State, buf: &mut Buffer, r: Rect) {
    let model_line = match (&s.model.info, &s.session.load) {
        (_, Some(l)) => tr_args(
            "welcome-loading",
            "Loading { $name }…",
            &[(
                "name",
                &crate::tui::models::load_name(&l.model, &s.model.files.models),
            )],
        ),
        (Some(m), None) => tr_args("welcome-model", "Model: { $name }", &[("name", &m.name)]),
        (None, None) => tr(
            "welcome-no-model",
            "No model loaded: press Ctrl-O to choose one.",
        )
        .to_string(),
    };
    let hint_helps = !qwen_in_use(s);
    let mut lines = vec![
        Line::styled("tokenscope", theme::title()),
        Line::from(tr(
            "welcome-tagline",
            "Chat with a local model and watch it predict every next token.",
        )),
        Line::from(""),
        Line::from(model_line),
        Line::styled(
            tr(
                "welcome-keys",
                "Enter send · Tab inspect tokens · F7 step mode · Ctrl-O models · F1 help",
            ),
            theme::dim(),
        ),
    ];
    // The other demo models know no Chinese (SmolLM2 is English only,
    // Gemma 270M a small base model); with a Qwen loaded (or loading) the
    // hint would point at the model already in use.
    if hint_helps {
        lines.push(Line::styled(
            tr_args(
                "welcome-chinese-model",
                "中文? Ctrl-O, type qwen: { $name } knows Chinese.",
                &[("name", &crate::demo::CHINESE_DEMO_NAME)],
            ),
            theme::dim(),
        ));
    }
    // Here, not in a notice: the model's load notice would replace it at once.
    if !s.view.display.color {
        lines.extend([Line::from(""), Line::from(theme::no_color_note())]);
    }
    let lines = wrap_lines(&lines, r.width as usize);
    let h = (lines.len() as u16).min(r.height);
    let top = r.y + r.height.saturating_sub(h) / 2;
    Paragraph::new(lines)
        .centered()
        .render(Rect::new(r.x, top, r.width, r.height - (top - r.y)), buf);
}
