//! The key list shown by the help overlay (F1).

/// (keys, what they do); an empty key starts a section.
pub const HELP: &[(&str, &str)] = &[
    ("", "Typing"),
    ("Enter", "send the message"),
    ("Alt/Shift-Enter, Ctrl-J", "new line in the message"),
    ("↑ / ↓ (first/last line)", "previous / next sent message"),
    ("←→ Ctrl-←→ Home End", "move the cursor (by word with Ctrl)"),
    ("Ctrl-W Ctrl-K", "delete word / to end of line"),
    ("Ctrl-U Ctrl-R", "undo / redo"),
    ("", "Generation"),
    ("Esc or Ctrl-C", "stop the reply being generated"),
    ("Esc (loading)", "stop loading a model"),
    ("Esc again", "restart an engine that does not stop"),
    ("Ctrl-N", "new chat (keeps the system prompt)"),
    ("PgUp PgDn, wheel", "scroll the chat"),
    ("", "Tokens"),
    (
        "Tab or Ctrl-T",
        "token cursor: move over the reply's tokens",
    ),
    ("← →", "previous / next token"),
    ("↑ ↓", "token on the line above / below"),
    ("Home End", "first / last token of the reply"),
    ("Tab Esc i", "back to typing"),
    (
        "F3, h",
        "heatmap: colour tokens by probability (h in token cursor)",
    ),
    ("F4, b", "show token boundaries (b in token cursor)"),
    ("", "Settings"),
    (
        "F2 or Ctrl-O",
        "choose the model (type to filter, Enter loads)",
    ),
    ("F5 or Ctrl-S", "sampling settings"),
    ("F6 or Ctrl-G", "edit the system prompt"),
    ("F1, ?", "this help (? in token cursor)"),
    (
        "Ctrl-C Ctrl-C, q",
        "quit (Ctrl-C twice when idle; q in token cursor)",
    ),
];
