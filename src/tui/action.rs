//! What the user can do ([`Action`]) and the one keymap ([`KEYMAP`]) that
//! binds keys (and the mouse) to it, by [`Context`]. `update` dispatches
//! through [`lookup`] and [`lookup_mouse`]; the help overlay is drawn from
//! [`help_rows`]; a test checks README.md's key table against
//! [`readme_table`].
//!
//! A new action is one variant here, one row in [`KEYMAP`] and one arm in
//! the handler of the component whose context the row names.
//!
//! Over 800 lines because of [`KEYMAP`]: one row per binding with its help
//! text (about 470 lines), kept whole so that one table binds every key and
//! writes the help and README.md's table.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

/// Everything a key or the mouse does, in user terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ctrl-C: stop the reply; else close the popup; twice when idle, quit.
    Interrupt,
    /// The mouse wheel scrolls the chat.
    ScrollWheel,
    /// A click on a reply's token moves the token cursor there.
    ClickToken,
    /// Open the help overlay.
    OpenHelp,
    /// Open the model picker.
    OpenPicker,
    /// Open the sampling settings.
    OpenSettings,
    /// Open the system prompt editor.
    OpenSystemPrompt,
    /// Colour tokens by probability, or not.
    ToggleHeatmap,
    /// Show token boundaries, or not.
    ToggleBoundaries,
    /// Start a new chat (the system prompt stays).
    NewChat,
    /// Open the saved conversations.
    OpenChats,
    /// Conversations: rename the selected one.
    RenameChat,
    /// Conversations: delete the selected one (after a confirmation).
    DeleteChat,
    /// Enter or leave the token cursor.
    ToggleTokenCursor,
    /// Scroll the chat a page up.
    ScrollUp,
    /// Scroll the chat a page down.
    ScrollDown,
    /// Send the message being typed.
    Send,
    /// A new line in the text being typed.
    NewLine,
    /// Recall the previous sent message.
    HistoryPrev,
    /// Recall the next sent message (or the draft).
    HistoryNext,
    /// Stop the reply or the model load (again: restart the engine).
    Cancel,
    /// Edit the text (handled by the text box, or typed into a field).
    EditText,
    /// Token cursor: the previous token.
    TokenLeft,
    /// Token cursor: the next token.
    TokenRight,
    /// Token cursor: the token on the line above.
    TokenUp,
    /// Token cursor: the token on the line below.
    TokenDown,
    /// Token cursor: the reply's first token.
    TokenHome,
    /// Token cursor: the reply's last token.
    TokenEnd,
    /// Leave the token cursor for the input box.
    BackToTyping,
    /// Quit the app.
    Quit,
    /// Popups: accept (load, apply, save).
    Confirm,
    /// Popups: close without accepting.
    Close,
    /// Popups: the previous row (or scroll up a line).
    Up,
    /// Popups: the next row (or scroll down a line).
    Down,
    /// Popups: a page up.
    PageUp,
    /// Popups: a page down.
    PageDown,
    /// Popups: the first row.
    Home,
    /// Popups: the last row.
    End,
    /// Picker: look for model files again.
    Rescan,
    /// Popups: delete the last character of the field.
    DeleteBack,
    /// Popups: clear the field.
    ClearText,
    /// Step mode on / off: replies start paused and go one token per key;
    /// off, a paused reply runs on to its end.
    ToggleStepMode,
    /// A new reply in place of the last one (the old one stays as a sibling).
    Regenerate,
    /// Token cursor: choose another token at the cursor, to branch from it.
    ChooseHere,
    /// Token cursor: draw the cursor's token anew (a new branch, its own seed).
    Resample,
    /// Token cursor: continue the reply (one stopped or cut short).
    ContinueReply,
    /// Token cursor: the reply's previous alternative.
    PrevReply,
    /// Token cursor: the reply's next alternative.
    NextReply,
    /// Token cursor: the previous version of the message the reply answers.
    PrevPrompt,
    /// Token cursor: the next version of the message the reply answers.
    NextPrompt,
    /// Token cursor: edit the message the reply answers (sent as a new version).
    EditPrompt,
    /// Token cursor, what-if: temperature down / up.
    TempDown,
    TempUp,
    /// Token cursor, what-if: top-k down / up.
    TopKDown,
    TopKUp,
    /// Token cursor, what-if: top-p down / up.
    TopPDown,
    TopPUp,
    /// Token cursor, what-if: min-p down / up.
    MinPDown,
    MinPUp,
    /// Token cursor: the what-if settings become the next reply's.
    ApplyWhatIf,
    /// Token cursor: back to the reply's own settings.
    ResetWhatIf,
    /// Compare the selected reply (the token cursor's, else the last one)
    /// with another model, chosen in the picker.
    CompareReply,
    /// Leave compare mode: unload the second model (its memory is freed).
    EndCompare,
    /// Choosing: draw the next token (step mode).
    Draw,
    /// Choosing, at a pause: run on to the next surprise.
    RunToSurprise,
    /// Choosing: the typed text searches the vocabulary (or back to a preview).
    FindVocab,
    /// Token cursor: the next / previous surprising token.
    NextSurprise,
    PrevSurprise,
    /// Token cursor: the layer lens of the token; choosing in step mode,
    /// nothing typed: the lens of the next token.
    OpenLens,
    /// Token cursor (and choosing): roll out the top candidates at the
    /// token's step.
    OpenRollouts,
    /// Token cursor: what the KV cache saves, timed on this context.
    OpenKvCost,
    /// Lens: the attention view on / off.
    ToggleAttention,
    /// Lens, attention view: the next head (or the heads' mean).
    NextHead,
    /// Choosing: take candidate number 1 to 9.
    PickNumber,
}

impl Action {
    /// The what-if keys of the token cursor (temperature, top-k, top-p and
    /// min-p down / up).
    pub fn is_whatif(self) -> bool {
        matches!(
            self,
            Action::TempDown
                | Action::TempUp
                | Action::TopKDown
                | Action::TopKUp
                | Action::TopPDown
                | Action::TopPUp
                | Action::MinPDown
                | Action::MinPUp
        )
    }
}

/// Where a binding applies. Keys are looked up in [`Context::Anywhere`]
/// first, then in the open popup's context, or else in [`Context::Main`]
/// and then the focused pane's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Everywhere, popups included.
    Anywhere,
    /// Outside popups, whatever has the focus.
    Main,
    /// Typing in the input box.
    Input,
    /// Moving over a reply's tokens.
    TokenCursor,
    /// The model picker popup.
    Picker,
    /// The sampling settings popup.
    Settings,
    /// The system prompt popup.
    SystemPrompt,
    /// The help overlay.
    Help,
    /// The layer lens popup (and its attention view).
    Lens,
    /// The rollouts popup.
    Rollouts,
    /// The saved conversations popup.
    Chats,
    /// Choosing a token in the inspector: the next one (step mode) or
    /// another one at a past token (branching).
    Choose,
    /// The KV-cache view (`w` in the token cursor).
    KvCost,
}

impl Context {
    /// Every context, in the order help lists them.
    pub const ALL: [Context; 13] = [
        Context::Anywhere,
        Context::Main,
        Context::Input,
        Context::TokenCursor,
        Context::Choose,
        Context::Picker,
        Context::Settings,
        Context::SystemPrompt,
        Context::Chats,
        Context::Lens,
        Context::Rollouts,
        Context::KvCost,
        Context::Help,
    ];

    /// The section title in the help, in the user's language.
    pub fn title_shown(self) -> String {
        use crate::i18n::tr;
        match self {
            Context::Anywhere => tr("ctx-anywhere", "Anywhere"),
            Context::Main => tr("ctx-main", "Outside popups"),
            Context::Input => tr("ctx-input", "Typing a message"),
            Context::TokenCursor => tr("ctx-token-cursor", "Token cursor"),
            Context::Picker => tr("ctx-picker", "Model picker"),
            Context::Settings => tr("ctx-settings", "Sampling settings"),
            Context::SystemPrompt => tr("ctx-system-prompt", "System prompt"),
            Context::Help => tr("ctx-help", "Help"),
            Context::Chats => tr("ctx-chats", "Saved conversations"),
            Context::Lens => tr("ctx-lens", "Layer lens"),
            Context::Rollouts => tr("ctx-rollouts", "Rollouts"),
            Context::KvCost => tr("ctx-kv-cost", "What the KV cache saves"),
            Context::Choose => tr("ctx-choose", "Choosing a token (step mode, branching)"),
        }
    }

    /// The section title in the README (English).
    #[cfg(test)]
    pub fn title(self) -> &'static str {
        match self {
            Context::Anywhere => "Anywhere",
            Context::Main => "Outside popups",
            Context::Input => "Typing a message",
            Context::TokenCursor => "Token cursor",
            Context::Picker => "Model picker",
            Context::Settings => "Sampling settings",
            Context::SystemPrompt => "System prompt",
            Context::Help => "Help",
            Context::Chats => "Saved conversations",
            Context::Lens => "Layer lens",
            Context::Rollouts => "Rollouts",
            Context::KvCost => "What the KV cache saves",
            Context::Choose => "Choosing a token (step mode, branching)",
        }
    }
}

/// What sets a binding off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Key `code` whose modifiers, among those in `care`, are exactly `mods`
    /// (the others do not matter).
    Key {
        code: KeyCode,
        mods: KeyModifiers,
        care: KeyModifiers,
    },
    /// Any character typed without Ctrl.
    Typing,
    /// A digit 1 to 9 (no Ctrl or Alt).
    Digit,
    /// Any key (the row goes last in its context).
    OtherKey,
    /// The mouse wheel, either way.
    Wheel,
    /// A left click on a reply's token.
    Click,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;
const ALT: KeyModifiers = KeyModifiers::ALT;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;

/// `code`, whatever the modifiers.
const fn key(code: KeyCode) -> Trigger {
    Trigger::Key {
        code,
        mods: NONE,
        care: NONE,
    }
}

/// Character `c`, whatever the modifiers.
const fn ch(c: char) -> Trigger {
    key(KeyCode::Char(c))
}

/// `code` with no modifier at all.
const fn plain(code: KeyCode) -> Trigger {
    Trigger::Key {
        code,
        mods: NONE,
        care: KeyModifiers::all(),
    }
}

/// `code` with `mods` held (others may be too).
const fn with(mods: KeyModifiers, code: KeyCode) -> Trigger {
    Trigger::Key {
        code,
        mods,
        care: mods,
    }
}

/// Ctrl and character `c`.
const fn ctrl(c: char) -> Trigger {
    with(CTRL, KeyCode::Char(c))
}

/// Enter without Alt or Shift (Ctrl does not matter).
const ENTER: Trigger = Trigger::Key {
    code: KeyCode::Enter,
    mods: NONE,
    care: ALT.union(SHIFT),
};

/// Enter with Alt or Shift, or Ctrl-J: a new line.
const NEW_LINE: &[Trigger] = &[
    with(ALT, KeyCode::Enter),
    with(SHIFT, KeyCode::Enter),
    ctrl('j'),
];

/// One row of the keymap.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// Where it applies.
    pub context: Context,
    /// What sets it off (any one of them).
    pub triggers: &'static [Trigger],
    /// What it does.
    pub action: Action,
    /// What it does, for help and the README. Empty: the row is shown with
    /// the one before (keys `A / B`, that row's text).
    pub help: &'static str,
}

impl Binding {
    /// The message id of the row's help text: `key-<Context>-<Action>`,
    /// `-2`, `-3`… after it for a later row of the same pair (the message
    /// files, `i18n/*.ftl`, hold one per row with text).
    pub fn help_id(&self) -> String {
        let same = KEYMAP
            .iter()
            .take_while(|b| !std::ptr::eq(*b, self))
            .filter(|b| b.context == self.context && b.action == self.action)
            .count();
        let base = format!("key-{:?}-{:?}", self.context, self.action);
        if same == 0 {
            base
        } else {
            format!("{base}-{}", same + 1)
        }
    }
}

const fn b(
    context: Context,
    triggers: &'static [Trigger],
    action: Action,
    help: &'static str,
) -> Binding {
    Binding {
        context,
        triggers,
        action,
        help,
    }
}

use Action as A;
use Context as C;
use KeyCode as K;

/// The keymap. Within a context the first matching row wins.
pub static KEYMAP: &[Binding] = &[
    // ---- anywhere
    b(
        C::Anywhere,
        &[ctrl('c')],
        A::Interrupt,
        "stop the reply, or close the popup; when idle, press twice to quit",
    ),
    b(
        C::Anywhere,
        &[Trigger::Wheel],
        A::ScrollWheel,
        "scroll the chat",
    ),
    // ---- outside popups
    b(C::Main, &[key(K::F(1))], A::OpenHelp, "this help"),
    b(
        C::Main,
        &[key(K::F(2)), ctrl('o')],
        A::OpenPicker,
        "choose the model (type to filter, Enter loads)",
    ),
    b(
        C::Main,
        &[key(K::F(3))],
        A::ToggleHeatmap,
        "heatmap: colour tokens by probability, then by entropy (and KL while comparing), then off",
    ),
    b(
        C::Main,
        &[key(K::F(4))],
        A::ToggleBoundaries,
        "show token boundaries in the text",
    ),
    b(
        C::Main,
        &[key(K::F(5)), ctrl('s')],
        A::OpenSettings,
        "sampling settings for the next reply",
    ),
    b(
        C::Main,
        &[key(K::F(6)), ctrl('g')],
        A::OpenSystemPrompt,
        "edit the system prompt",
    ),
    b(
        C::Main,
        &[key(K::F(7))],
        A::ToggleStepMode,
        "step mode → to the next surprise (replies pause before a surprising token) → free (a paused reply runs on)",
    ),
    b(
        C::Main,
        &[key(K::F(8))],
        A::Regenerate,
        "regenerate the last reply (the old one stays: [ ] in the token cursor)",
    ),
    b(
        C::Main,
        &[key(K::F(10))],
        A::CompareReply,
        "compare the selected reply (else the last) with another model, e.g. a quantized variant",
    ),
    b(
        C::Main,
        &[ctrl('n')],
        A::NewChat,
        "new chat (keeps the system prompt; the one shown is saved)",
    ),
    b(
        C::Main,
        &[key(K::F(9)), ctrl('l')],
        A::OpenChats,
        "saved conversations: search, open to continue, rename, delete",
    ),
    b(
        C::Main,
        &[ctrl('t')],
        A::ToggleTokenCursor,
        "token cursor on / off",
    ),
    b(
        C::Main,
        &[key(K::PageUp)],
        A::ScrollUp,
        "scroll the chat a page up / down",
    ),
    b(C::Main, &[key(K::PageDown)], A::ScrollDown, ""),
    b(
        C::Main,
        &[Trigger::Click],
        A::ClickToken,
        "select it in the token cursor (letters typed next go to the message)",
    ),
    // ---- typing
    b(C::Input, &[ENTER], A::Send, "send the message"),
    b(
        C::Input,
        NEW_LINE,
        A::NewLine,
        "new line in the message (Shift-Enter where the terminal reports it)",
    ),
    b(
        C::Input,
        &[plain(K::Up)],
        A::HistoryPrev,
        "previous / next sent message (on the first / last line)",
    ),
    b(C::Input, &[plain(K::Down)], A::HistoryNext, ""),
    b(
        C::Input,
        &[key(K::Esc)],
        A::Cancel,
        "stop the reply, the comparison or the model load (again while it stops: restart \
         an engine that hangs); else dismiss the notice",
    ),
    b(
        C::Input,
        &[key(K::Tab)],
        A::ToggleTokenCursor,
        "token cursor: move over the replies' tokens",
    ),
    b(
        C::Input,
        &[with(CTRL, K::Left)],
        A::EditText,
        "move by word",
    ),
    b(C::Input, &[with(CTRL, K::Right)], A::EditText, ""),
    b(
        C::Input,
        &[ctrl('w')],
        A::EditText,
        "delete a word / to the end of the line",
    ),
    b(C::Input, &[ctrl('k')], A::EditText, ""),
    b(C::Input, &[ctrl('u')], A::EditText, "undo / redo"),
    b(C::Input, &[ctrl('r')], A::EditText, ""),
    // ---- token cursor
    b(
        C::TokenCursor,
        &[key(K::Left)],
        A::TokenLeft,
        "previous / next token",
    ),
    b(C::TokenCursor, &[key(K::Right)], A::TokenRight, ""),
    b(
        C::TokenCursor,
        &[key(K::Up)],
        A::TokenUp,
        "token on the line above / below",
    ),
    b(C::TokenCursor, &[key(K::Down)], A::TokenDown, ""),
    b(
        C::TokenCursor,
        &[ch('n')],
        A::NextSurprise,
        "next / previous surprising token (p below surprise.below_p or entropy above surprise.above_entropy; F5 sets them)",
    ),
    b(C::TokenCursor, &[ch('N')], A::PrevSurprise, ""),
    b(
        C::TokenCursor,
        &[key(K::Home)],
        A::TokenHome,
        "first / last token of the reply",
    ),
    b(C::TokenCursor, &[key(K::End)], A::TokenEnd, ""),
    b(
        C::TokenCursor,
        &[key(K::Esc)],
        A::Cancel,
        "stop the reply being generated (or the comparison); else back to typing",
    ),
    b(
        C::TokenCursor,
        &[key(K::Enter)],
        A::ChooseHere,
        "choose another token here: the reply branches from it",
    ),
    b(
        C::TokenCursor,
        &[ch('r')],
        A::Resample,
        "re-sample from this token (a new branch with its own seed)",
    ),
    b(
        C::TokenCursor,
        &[ch('c')],
        A::ContinueReply,
        "continue this reply (one stopped or cut short)",
    ),
    b(
        C::TokenCursor,
        &[ch('[')],
        A::PrevReply,
        "previous / next version of this reply",
    ),
    b(C::TokenCursor, &[ch(']')], A::NextReply, ""),
    b(
        C::TokenCursor,
        &[ch('{')],
        A::PrevPrompt,
        "previous / next version of the message it answers",
    ),
    b(C::TokenCursor, &[ch('}')], A::NextPrompt, ""),
    b(
        C::TokenCursor,
        &[ch('e')],
        A::EditPrompt,
        "edit the message it answers (sent as a new version)",
    ),
    b(
        C::TokenCursor,
        &[ch('t')],
        A::TempDown,
        "what-if: temperature down / up (the sampler column redraws, nothing is decoded)",
    ),
    b(C::TokenCursor, &[ch('T')], A::TempUp, ""),
    b(
        C::TokenCursor,
        &[ch('k')],
        A::TopKDown,
        "what-if: top-k down / up",
    ),
    b(C::TokenCursor, &[ch('K')], A::TopKUp, ""),
    b(
        C::TokenCursor,
        &[ch('p')],
        A::TopPDown,
        "what-if: top-p down / up",
    ),
    b(C::TokenCursor, &[ch('P')], A::TopPUp, ""),
    b(
        C::TokenCursor,
        &[ch('m')],
        A::MinPDown,
        "what-if: min-p down / up",
    ),
    b(C::TokenCursor, &[ch('M')], A::MinPUp, ""),
    b(
        C::TokenCursor,
        &[ch('a')],
        A::ApplyWhatIf,
        "use the what-if settings for the next reply",
    ),
    b(
        C::TokenCursor,
        &[ch('0')],
        A::ResetWhatIf,
        "what-if off: the reply's own settings again",
    ),
    b(
        C::TokenCursor,
        &[ch('v')],
        A::CompareReply,
        "compare this reply with another model (versus: picked in the picker, variants first)",
    ),
    b(
        C::TokenCursor,
        &[ch('V')],
        A::EndCompare,
        "leave compare mode: unload the second model, freeing its memory",
    ),
    b(
        C::TokenCursor,
        &[key(K::Tab), ch('i')],
        A::BackToTyping,
        "back to typing",
    ),
    b(
        C::TokenCursor,
        &[ch('l')],
        A::OpenLens,
        "layer lens: the model's prediction of this token after each of its layers, and what each layer attended to",
    ),
    b(
        C::TokenCursor,
        &[ch('o')],
        A::OpenRollouts,
        "rollouts: continue each of the top 5 candidates at this token's step for 24 tokens, side by side (Enter keeps one as a branch)",
    ),
    b(
        C::TokenCursor,
        &[ch('w')],
        A::OpenKvCost,
        "what the KV cache saves: this message's reply generated again with and without the cache, time per token charted live",
    ),
    b(
        C::TokenCursor,
        &[ch('h')],
        A::ToggleHeatmap,
        "heatmap: probability → entropy (→ KL) → off",
    ),
    b(
        C::TokenCursor,
        &[ch('b')],
        A::ToggleBoundaries,
        "token boundaries on / off",
    ),
    b(C::TokenCursor, &[ch('?')], A::OpenHelp, "this help"),
    b(C::TokenCursor, &[ch('q')], A::Quit, "quit (press twice)"),
    b(
        C::TokenCursor,
        &[Trigger::Typing],
        A::EditText,
        "goes to the message (back to typing)",
    ),
    // ---- choosing a token
    b(
        C::Choose,
        &[plain(K::Right)],
        A::Draw,
        "step mode: draw the next token (hold to repeat); branching: re-sample here",
    ),
    b(
        C::Choose,
        &[with(SHIFT, K::Right)],
        A::RunToSurprise,
        "step mode: run on to the next surprise (a token below surprise.below_p, or more than surprise.above_entropy bits; F5 sets them)",
    ),
    b(C::Choose, &[key(K::Up)], A::Up, "previous / next candidate"),
    b(C::Choose, &[key(K::Down)], A::Down, ""),
    b(
        C::Choose,
        &[key(K::Enter)],
        A::Confirm,
        "force the selected candidate (or the text typed) and go on from it",
    ),
    b(
        C::Choose,
        &[ctrl('y')],
        A::OpenRollouts,
        "rollouts of the top 5 candidates here (a paused reply: its next step, served in the pause)",
    ),
    b(
        C::Choose,
        &[Trigger::Digit],
        A::PickNumber,
        "select candidate 1 to 9 (Enter forces it); typed on, digits are text (1949 Enter forces \"1949\")",
    ),
    b(
        C::Choose,
        &[ch('l')],
        A::OpenLens,
        "step mode, nothing typed yet: the layer lens of the next token (after a first character, l is text to force)",
    ),
    b(
        C::Choose,
        &[key(K::Backspace)],
        A::DeleteBack,
        "delete the text's last character",
    ),
    b(
        C::Choose,
        &[key(K::Tab)],
        A::ToggleTokenCursor,
        "token cursor (step mode stays paused)",
    ),
    b(
        C::Choose,
        &[ctrl('f')],
        A::FindVocab,
        "vocabulary lookup: the text typed finds the tokens containing it, with their p and rank at this step (again: back to the text's preview)",
    ),
    b(
        C::Choose,
        &[key(K::Esc)],
        A::Cancel,
        "clear the text typed; else branching: close, step mode: stop the reply",
    ),
    b(
        C::Choose,
        &[Trigger::Typing],
        A::EditText,
        "text to force instead of a candidate",
    ),
    // ---- saved conversations
    b(
        C::Chats,
        &[key(K::Enter)],
        A::Confirm,
        "open the selected conversation to continue it (renaming: keep the new title; deleting: delete)",
    ),
    b(
        C::Chats,
        &[key(K::Up)],
        A::Up,
        "previous / next conversation",
    ),
    b(C::Chats, &[key(K::Down)], A::Down, ""),
    b(C::Chats, &[key(K::PageUp)], A::PageUp, "a page up / down"),
    b(C::Chats, &[key(K::PageDown)], A::PageDown, ""),
    b(
        C::Chats,
        &[key(K::Home)],
        A::Home,
        "first / last conversation",
    ),
    b(C::Chats, &[key(K::End)], A::End, ""),
    b(
        C::Chats,
        &[key(K::F(2))],
        A::RenameChat,
        "rename the selected conversation",
    ),
    b(
        C::Chats,
        &[key(K::Delete)],
        A::DeleteChat,
        "delete the selected conversation (y confirms)",
    ),
    b(
        C::Chats,
        &[Trigger::Typing],
        A::EditText,
        "search titles and message text (or type the new title)",
    ),
    b(
        C::Chats,
        &[key(K::Backspace)],
        A::DeleteBack,
        "delete the last character",
    ),
    b(C::Chats, &[ctrl('u')], A::ClearText, "clear the search"),
    b(
        C::Chats,
        &[key(K::Esc)],
        A::Close,
        "close (renaming: keep the old title)",
    ),
    // ---- model picker
    b(
        C::Picker,
        &[key(K::Enter)],
        A::Confirm,
        "load the selected model",
    ),
    b(C::Picker, &[key(K::Up)], A::Up, "previous / next model"),
    b(C::Picker, &[key(K::Down)], A::Down, ""),
    b(C::Picker, &[key(K::PageUp)], A::PageUp, "a page up / down"),
    b(C::Picker, &[key(K::PageDown)], A::PageDown, ""),
    b(C::Picker, &[key(K::Home)], A::Home, "first / last model"),
    b(C::Picker, &[key(K::End)], A::End, ""),
    b(
        C::Picker,
        &[key(K::F(5)), ctrl('r')],
        A::Rescan,
        "look for model files again",
    ),
    b(
        C::Picker,
        &[Trigger::Typing],
        A::EditText,
        "filter the list",
    ),
    b(
        C::Picker,
        &[key(K::Backspace)],
        A::DeleteBack,
        "delete the filter's last character",
    ),
    b(C::Picker, &[ctrl('u')], A::ClearText, "clear the filter"),
    b(C::Picker, &[key(K::Esc)], A::Close, "close"),
    // ---- sampling settings
    b(
        C::Settings,
        &[key(K::Enter)],
        A::Confirm,
        "apply (from the next reply)",
    ),
    b(
        C::Settings,
        &[key(K::Up), key(K::BackTab)],
        A::Up,
        "previous / next field",
    ),
    b(C::Settings, &[key(K::Down), key(K::Tab)], A::Down, ""),
    b(
        C::Settings,
        &[Trigger::Typing],
        A::EditText,
        "edit the value",
    ),
    b(
        C::Settings,
        &[key(K::Backspace)],
        A::DeleteBack,
        "delete the last character",
    ),
    b(C::Settings, &[ctrl('u')], A::ClearText, "clear the field"),
    b(C::Settings, &[key(K::Esc)], A::Close, "cancel"),
    // ---- system prompt
    b(
        C::SystemPrompt,
        &[ENTER],
        A::Confirm,
        "save (applies to the whole conversation from the next reply)",
    ),
    b(C::SystemPrompt, NEW_LINE, A::NewLine, "new line"),
    b(C::SystemPrompt, &[key(K::Esc)], A::Close, "cancel"),
    b(
        C::SystemPrompt,
        &[Trigger::OtherKey],
        A::EditText,
        "edit the text, as in the message box",
    ),
    // ---- help
    // ---- layer lens
    b(
        C::Lens,
        &[key(K::Left)],
        A::TokenLeft,
        "the lens of the token before / after (a paused reply: its next token too)",
    ),
    b(C::Lens, &[key(K::Right)], A::TokenRight, ""),
    b(
        C::Lens,
        &[key(K::Up)],
        A::Up,
        "scroll the layers; attention view: the layer above / below",
    ),
    b(C::Lens, &[key(K::Down)], A::Down, ""),
    b(
        C::Lens,
        &[ch('a')],
        A::ToggleAttention,
        "attention view: the chat's tokens coloured by the weight the layer's attention gave each",
    ),
    b(
        C::Lens,
        &[ch('h')],
        A::NextHead,
        "attention view: head 1, 2, … or the heads' mean",
    ),
    b(C::Lens, &[key(K::Esc), ch('q')], A::Close, "close the lens"),
    // ---- rollouts
    b(C::Rollouts, &[key(K::Up)], A::Up, "previous / next rollout"),
    b(C::Rollouts, &[key(K::Down)], A::Down, ""),
    b(
        C::Rollouts,
        &[key(K::Enter)],
        A::Confirm,
        "keep the selected rollout as a branch of the reply (its tokens and traces, nothing evaluated again)",
    ),
    b(
        C::Rollouts,
        &[key(K::Esc), ch('q')],
        A::Close,
        "close (cancels the rollouts under way)",
    ),
    b(
        C::KvCost,
        &[key(K::Esc), ch('q')],
        A::Close,
        "cancel the runs under way; else close",
    ),
    b(C::Help, &[key(K::Up)], A::Up, "scroll a line"),
    b(C::Help, &[key(K::Down)], A::Down, ""),
    b(C::Help, &[key(K::PageUp)], A::PageUp, "scroll a page"),
    b(C::Help, &[key(K::PageDown)], A::PageDown, ""),
    b(C::Help, &[Trigger::OtherKey], A::Close, "close the help"),
];

impl Trigger {
    /// Whether key event `k` sets this off.
    pub fn matches_key(&self, k: &KeyEvent) -> bool {
        match *self {
            Trigger::Key { code, mods, care } => k.code == code && k.modifiers & care == mods,
            Trigger::Typing => {
                matches!(k.code, KeyCode::Char(_)) && !k.modifiers.contains(KeyModifiers::CONTROL)
            }
            Trigger::Digit => {
                matches!(k.code, KeyCode::Char('1'..='9'))
                    && !k.modifiers.intersects(CTRL.union(ALT))
            }
            Trigger::OtherKey => true,
            Trigger::Wheel | Trigger::Click => false,
        }
    }

    /// Whether mouse event `m` sets this off.
    pub fn matches_mouse(&self, m: &MouseEvent) -> bool {
        match self {
            Trigger::Wheel => matches!(
                m.kind,
                MouseEventKind::ScrollUp | MouseEventKind::ScrollDown
            ),
            Trigger::Click => m.kind == MouseEventKind::Down(MouseButton::Left),
            _ => false,
        }
    }

    /// How help and the README write it (`Ctrl-O`, `↑`, `F5`).
    pub fn name(&self) -> String {
        let (code, mods) = match *self {
            Trigger::Key { code, mods, .. } => (code, mods),
            // In the interface's language (the README is written in English).
            Trigger::Typing => return crate::i18n::tr("trigger-typing", "typing"),
            Trigger::Digit => return "1-9".into(),
            Trigger::OtherKey => return crate::i18n::tr("trigger-other-key", "any other key"),
            Trigger::Wheel => return crate::i18n::tr("trigger-wheel", "mouse wheel"),
            Trigger::Click => return crate::i18n::tr("trigger-click", "click a token"),
        };
        let mut out = String::new();
        for (m, name) in [(CTRL, "Ctrl-"), (ALT, "Alt-"), (SHIFT, "Shift-")] {
            if mods.contains(m) {
                out.push_str(name);
            }
        }
        match code {
            KeyCode::Char(' ') => out.push_str("Space"),
            KeyCode::Char(c) if mods.contains(CTRL) => out.extend(c.to_uppercase()),
            KeyCode::Char(c) => out.push(c),
            KeyCode::F(n) => out.push_str(&format!("F{n}")),
            KeyCode::Up => out.push('↑'),
            KeyCode::Down => out.push('↓'),
            KeyCode::Left => out.push('←'),
            KeyCode::Right => out.push('→'),
            KeyCode::PageUp => out.push_str("PgUp"),
            KeyCode::PageDown => out.push_str("PgDn"),
            KeyCode::BackTab => out.push_str("Shift-Tab"),
            KeyCode::Enter => out.push_str("Enter"),
            KeyCode::Esc => out.push_str("Esc"),
            KeyCode::Tab => out.push_str("Tab"),
            KeyCode::Backspace => out.push_str("Backspace"),
            KeyCode::Home => out.push_str("Home"),
            KeyCode::End => out.push_str("End"),
            other => out.push_str(&format!("{other:?}")),
        }
        out
    }
}

/// The action key `k` does in context `context`, if any.
pub fn lookup(context: Context, k: &KeyEvent) -> Option<Action> {
    KEYMAP
        .iter()
        .filter(|b| b.context == context)
        .find(|b| b.triggers.iter().any(|t| t.matches_key(k)))
        .map(|b| b.action)
}

/// The action mouse event `m` does in context `context`, if any.
pub fn lookup_mouse(context: Context, m: &MouseEvent) -> Option<Action> {
    KEYMAP
        .iter()
        .filter(|b| b.context == context)
        .find(|b| b.triggers.iter().any(|t| t.matches_mouse(m)))
        .map(|b| b.action)
}

/// One line of help: the keys as written, and what they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpRow {
    /// The keys, as written (`F2, Ctrl-O`, `PgUp / PgDn`).
    pub keys: String,
    /// What they do.
    pub help: &'static str,
    /// The message id of `help` ([`Binding::help_id`]), for the help shown
    /// in the user's language.
    pub id: String,
}

impl HelpRow {
    /// What the keys do, in the user's language.
    pub fn help_shown(&self) -> String {
        crate::i18n::tr(&self.id, self.help)
    }
}

/// The keymap for people, by context: rows with no text of their own are
/// folded into the row before (`PgUp / PgDn`).
pub fn help_rows() -> Vec<(Context, Vec<HelpRow>)> {
    let mut out: Vec<(Context, Vec<HelpRow>)> = Vec::new();
    for context in Context::ALL {
        let mut rows: Vec<HelpRow> = Vec::new();
        for b in KEYMAP.iter().filter(|b| b.context == context) {
            let keys = b
                .triggers
                .iter()
                .map(Trigger::name)
                .collect::<Vec<_>>()
                .join(", ");
            match rows.last_mut() {
                Some(last) if b.help.is_empty() => {
                    last.keys.push_str(" / ");
                    last.keys.push_str(&keys);
                }
                _ => rows.push(HelpRow {
                    keys,
                    help: b.help,
                    id: b.help_id(),
                }),
            }
        }
        if !rows.is_empty() {
            out.push((context, rows));
        }
    }
    out
}

/// README.md's key table (under `## Keys`), generated from the keymap.
#[cfg(test)]
pub fn readme_table() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = String::from("| key | does |\n|---|---|\n");
    for (context, rows) in help_rows() {
        out.push_str(&format!("| **{}** | |\n", context.title()));
        for r in rows {
            out.push_str(&format!("| {} | {} |\n", cell(&r.keys), cell(r.help)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn modifiers_pick_the_binding() {
        let enter = |m| lookup(Context::Input, &k(KeyCode::Enter, m));
        assert_eq!(enter(NONE), Some(Action::Send));
        assert_eq!(enter(CTRL), Some(Action::Send));
        assert_eq!(enter(ALT), Some(Action::NewLine));
        assert_eq!(enter(SHIFT), Some(Action::NewLine));
        let up = |m| lookup(Context::Input, &k(KeyCode::Up, m));
        assert_eq!(up(NONE), Some(Action::HistoryPrev));
        assert_eq!(up(ALT), None);
        let f5 = k(KeyCode::F(5), SHIFT);
        assert_eq!(lookup(Context::Main, &f5), Some(Action::OpenSettings));
        let ctrl_alt_c = k(KeyCode::Char('c'), CTRL | ALT);
        assert_eq!(
            lookup(Context::Anywhere, &ctrl_alt_c),
            Some(Action::Interrupt)
        );
        assert_eq!(
            lookup(Context::Anywhere, &k(KeyCode::Char('c'), NONE)),
            None
        );
    }

    #[test]
    fn specific_rows_win_over_typing() {
        let q = k(KeyCode::Char('q'), NONE);
        assert_eq!(lookup(Context::TokenCursor, &q), Some(Action::Quit));
        let x = k(KeyCode::Char('x'), NONE);
        assert_eq!(lookup(Context::TokenCursor, &x), Some(Action::EditText));
        let ctrl_x = k(KeyCode::Char('x'), CTRL);
        assert_eq!(lookup(Context::TokenCursor, &ctrl_x), None);
        assert_eq!(lookup(Context::Picker, &ctrl_x), None);
        let up = k(KeyCode::Up, NONE);
        assert_eq!(lookup(Context::Help, &up), Some(Action::Up));
        assert_eq!(
            lookup(Context::Help, &k(KeyCode::Esc, NONE)),
            Some(Action::Close)
        );
    }

    #[test]
    fn every_row_is_reachable() {
        // A row whose keys an earlier row of its context always takes is dead.
        for (i, b) in KEYMAP.iter().enumerate() {
            for t in b.triggers {
                let Trigger::Key { code, mods, .. } = *t else {
                    continue;
                };
                let taken = KEYMAP[..i]
                    .iter()
                    .filter(|e| e.context == b.context)
                    .any(|e| e.triggers.iter().any(|t| t.matches_key(&k(code, mods))));
                assert!(!taken, "{:?} {} is shadowed", b.context, t.name());
            }
        }
    }

    #[test]
    fn names_read_like_keys() {
        assert_eq!(ctrl('o').name(), "Ctrl-O");
        assert_eq!(with(ALT, KeyCode::Enter).name(), "Alt-Enter");
        assert_eq!(key(KeyCode::PageDown).name(), "PgDn");
        assert_eq!(ch('?').name(), "?");
    }

    /// README.md's table under `## Keys` is exactly [`readme_table`]: every
    /// binding is documented, and the README names no key the keymap lacks.
    #[test]
    fn readme_key_table_matches_the_keymap() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Keys\n")
            .nth(1)
            .expect("README.md has a `## Keys` section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let table: String = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        let want = readme_table();
        assert!(
            table == want,
            "README.md's key table differs from the keymap; put this table under `## Keys`:\n\n{want}"
        );
    }
}
