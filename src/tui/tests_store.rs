//! Saving from the TUI: turns saved as they end, a failed save kept in
//! memory and caught up, Ctrl-N, and the saved conversations popup (search,
//! open, rename, delete). On a real SQLite file.

use crossterm::event::KeyCode;

use super::saving::Saver;
use super::state::{NoticeLevel, Popup};
use super::tests::H;
use crate::store::Store;

const WORDS: &[(&str, f32)] = &[(" Paris", 0.9), (".", 0.8)];

/// A harness with SmolLM2 loaded, saving into `dir`.
fn harness(dir: &tempfile::TempDir) -> H {
    let mut h = H::new(100, 30);
    h.host.saver = Some(Saver::with_store(open(dir)));
    h.loaded("SmolLM2", "Q4_1")
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("c.sqlite3")).unwrap()
}

/// The harness's store, as the app writes it.
fn store_of(h: &mut H) -> &mut Store {
    h.host.saver.as_mut().unwrap().store().unwrap()
}

/// Makes the harness's database refuse writes (or accept them again).
fn read_only(h: &mut H, on: bool) {
    let store = store_of(h);
    let pragma = if on {
        "PRAGMA query_only = 1;"
    } else {
        "PRAGMA query_only = 0;"
    };
    store.conn().execute_batch(pragma).unwrap();
}

fn texts(c: &crate::conversation::Conversation) -> Vec<String> {
    c.path()
        .iter()
        .map(|&n| c.node(n).content.clone())
        .collect()
}

#[test]
fn each_finished_turn_is_saved_with_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    let id = h.ask("capital of France?");
    // The message is saved when sent; its reply, not yet finished, is not.
    let conv = h.s.session.conv_id.expect("saved at once");
    assert_eq!(
        texts(&open(&dir).load(conv).unwrap().0),
        ["capital of France?"]
    );
    h.started(id);
    h.stream(id, WORDS);
    h.done(id, WORDS.len());
    let (back, meta) = open(&dir).load(conv).unwrap();
    assert_eq!(texts(&back), ["capital of France?", " Paris."]);
    let reply = back.node(back.path()[1]);
    assert_eq!(
        reply.steps,
        h.s.msg(1).unwrap().steps,
        "every step, with its candidates"
    );
    assert_eq!(reply.stats, h.s.msg(1).unwrap().stats);
    assert_eq!(meta.model.as_deref(), Some("SmolLM2"));
    assert_eq!(meta.model_card.map(|m| m.quant), Some("Q4_1".into()));
}

#[test]
fn a_failed_save_keeps_the_chat_says_so_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.exchange("first", WORDS);
    let conv = h.s.session.conv_id.unwrap();
    // The database turns read-only (a full disk is tested on the store).
    read_only(&mut h, true);
    h.exchange("second", WORDS);
    let n = h.s.view.notice.clone().expect("a notice");
    assert_eq!(n.level, NoticeLevel::Error);
    assert!(
        n.text.contains("Not saved") && n.text.contains("read-only"),
        "{}",
        n.text
    );
    assert_eq!(h.s.view.path.len(), 4, "the chat is all there");
    assert_eq!(
        texts(&open(&dir).load(conv).unwrap().0).len(),
        2,
        "the first turn is safe"
    );
    // Space again: the next turn saves everything, and says so.
    read_only(&mut h, false);
    h.exchange("third", WORDS);
    assert!(
        h.s.view
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("Saved again")
    );
    assert_eq!(
        texts(&open(&dir).load(conv).unwrap().0),
        texts(&h.s.session.conv)
    );
}

#[test]
fn ctrl_n_starts_a_new_conversation_and_the_list_opens_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.exchange("about France", WORDS);
    let first = h.s.session.conv_id.unwrap();
    h.ctrl('n');
    assert_eq!(h.s.session.conv_id, None);
    h.exchange("about Spain", WORDS);
    let second = h.s.session.conv_id.unwrap();
    assert_ne!(first, second);

    h.key(KeyCode::F(9));
    let Some(Popup::Chats(l)) = &h.s.view.popup else {
        panic!("the list is open");
    };
    assert_eq!(
        l.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        [second, first]
    );
    assert_eq!(l.rows[1].title, "about France");
    assert_eq!(l.rows[1].turns, 1);
    // Searching a reply's text and a title.
    h.type_str("franc");
    let Some(Popup::Chats(l)) = &h.s.view.popup else {
        panic!("still open");
    };
    assert_eq!(l.rows.iter().map(|r| r.id).collect::<Vec<_>>(), [first]);
    h.key(KeyCode::Enter);
    assert!(h.s.view.popup.is_none(), "its model is the one loaded");
    assert_eq!(h.s.session.conv_id, Some(first));
    assert_eq!(texts(&h.s.session.conv), ["about France", " Paris."]);
    // It goes on, saved under its id.
    h.exchange("and Italy?", WORDS);
    assert_eq!(h.s.session.conv_id, Some(first));
    assert_eq!(texts(&open(&dir).load(first).unwrap().0).len(), 4);
}

#[test]
fn the_list_renames_and_deletes_after_a_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.exchange("keep me", WORDS);
    h.ctrl('n');
    h.exchange("delete me", WORDS);
    let doomed = h.s.session.conv_id.unwrap();
    h.key(KeyCode::F(9));
    // The newest first: rename it, then delete it.
    h.key(KeyCode::F(2));
    h.ctrl('u');
    h.type_str("Renamed");
    h.key(KeyCode::Enter);
    assert_eq!(open(&dir).list("").unwrap()[0].title, "Renamed");
    h.key(KeyCode::Delete);
    h.type_str("n");
    assert_eq!(open(&dir).list("").unwrap().len(), 2, "n keeps it");
    h.key(KeyCode::Delete);
    h.type_str("y");
    let left = open(&dir).list("").unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].title, "keep me");
    let Some(Popup::Chats(l)) = &h.s.view.popup else {
        panic!("still open");
    };
    assert_eq!(l.rows.len(), 1, "listed again");
    // The chat on screen was the one deleted: the screen is cleared for a new one.
    assert_eq!(h.s.session.conv_id, None);
    assert!(h.s.session.conv.is_empty());
    h.key(KeyCode::Esc);
    h.exchange("a new one", WORDS);
    assert!(h.s.session.conv_id.is_some());
    let titles: Vec<String> = open(&dir)
        .list("")
        .unwrap()
        .into_iter()
        .map(|c| c.title)
        .collect();
    assert_eq!(titles, ["a new one", "keep me"]);
    assert!(open(&dir).load(doomed).is_err() || h.s.session.conv_id == Some(doomed));
}

#[test]
fn a_conversation_whose_model_file_is_gone_opens_with_the_picker() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.exchange("written by SmolLM2", WORDS);
    let first = h.s.session.conv_id.unwrap();
    h.ctrl('n');
    // Another model is loaded; the first conversation's file (a made-up path) is not there.
    h = h.loaded("Gemma", "Q4_K_M");
    h.key(KeyCode::F(9));
    h.type_str("SmolLM2");
    h.key(KeyCode::Enter);
    assert_eq!(h.s.session.conv_id, Some(first));
    let Some(Popup::Picker(p)) = &h.s.view.popup else {
        panic!("the picker is open: {:?}", h.s.view.popup.is_some());
    };
    assert!(p.message.as_ref().unwrap().contains("not there any more"));
}

#[test]
fn the_list_shows_title_date_model_and_turns_and_escapes_titles() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.exchange("first question", WORDS);
    h.exchange("second question", WORDS);
    let id = h.s.session.conv_id.unwrap();
    // A title with a bidi override must not reorder the screen.
    store_of(&mut h).rename(id, "evil\u{202E}txt").unwrap();
    h.key(KeyCode::F(9));
    let screen = h.screen();
    let row = screen
        .lines()
        .find(|l| l.contains("▶ evil"))
        .unwrap_or_else(|| panic!("the selected row:\n{screen}"));
    let saved = crate::store::export::format_time(open(&dir).list("").unwrap()[0].updated_at);
    assert!(row.contains("evil<U+202E>txt"), "{row}");
    assert!(!screen.contains('\u{202E}'), "{screen}");
    assert!(row.contains(&saved) && row.contains("SmolLM2"), "{row}");
    assert!(
        row.trim_end_matches('│').trim_end().ends_with(" 2"),
        "two turns: {row}"
    );
    assert!(screen.contains("Enter open"), "{screen}");
    // A title in Chinese (two columns a character) keeps the columns in place.
    h.key(KeyCode::Esc);
    store_of(&mut h).rename(id, "中华人民共和国").unwrap();
    h.key(KeyCode::F(9));
    let b = h.buffer();
    let (x_turns, y_head) = super::tests::find(&b, "turns").expect("the header");
    let (_, y_row) = super::tests::find(&b, "中").expect("the row");
    assert_ne!(y_head, y_row);
    assert_eq!(
        b[(x_turns + 4, y_row)].symbol(),
        "2",
        "the turns under their header:\n{}",
        h.screen()
    );
    // Asking before deleting: the question is drawn in the error style.
    h.key(KeyCode::Delete);
    let b = h.buffer();
    let at = super::tests::find(&b, "Delete “").expect("the question");
    assert_eq!(b[at].fg, super::theme::error().fg.unwrap());
}

#[test]
fn a_new_system_prompt_is_saved_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.exchange("about France", WORDS);
    let id = h.s.session.conv_id.unwrap();
    h.ctrl('g');
    h.type_str("Be brief.");
    h.key(KeyCode::Enter);
    assert_eq!(open(&dir).load(id).unwrap().0.system(), Some("Be brief."));
}

#[test]
fn opening_another_conversation_never_drops_one_that_could_not_be_saved() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.exchange("about France", WORDS);
    let first = h.s.session.conv_id.unwrap();
    h.ctrl('n');
    read_only(&mut h, true);
    h.exchange("unsaved", WORDS);
    h.key(KeyCode::F(9));
    h.key(KeyCode::Down);
    h.key(KeyCode::Enter);
    assert_ne!(h.s.session.conv_id, Some(first), "not opened");
    assert_eq!(texts(&h.s.session.conv)[0], "unsaved", "kept");
    assert!(
        h.s.view
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("could not be saved"),
        "{:?}",
        h.s.view.notice
    );
}

#[test]
fn ctrl_n_on_a_conversation_not_saved_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    read_only(&mut h, true);
    h.exchange("unsaved", WORDS);
    h.ctrl('n');
    assert_eq!(h.s.view.path.len(), 2, "kept");
    assert!(
        h.s.view
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("Ctrl-N again")
    );
    // Another key disarms it.
    h.key(KeyCode::Char('x'));
    h.ctrl('n');
    assert_eq!(h.s.view.path.len(), 2, "still kept");
    h.ctrl('n');
    assert!(h.s.session.conv.is_empty(), "dropped on the second press");
}

#[test]
fn a_conversation_saved_meanwhile_by_another_window_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.exchange("first", WORDS);
    let conv = h.s.session.conv_id.unwrap();
    // Another window opens the same conversation and adds a turn.
    let mut other = open(&dir);
    let (mut theirs, _) = other.load(conv).unwrap();
    theirs.append(crate::conversation::Node::user("from the other window"));
    other.save(Some(conv), &theirs, None).unwrap();
    // This window's next turn goes to a new conversation, and says so.
    h.exchange("second", WORDS);
    let n = h.s.view.notice.clone().expect("a notice");
    let mine = h.s.session.conv_id.unwrap();
    assert_ne!(mine, conv);
    assert!(
        n.text
            .contains(&format!("Conversation {conv} was saved by another window"))
            && n.text.contains(&format!("saved as conversation {mine}")),
        "{}",
        n.text
    );
    assert_eq!(
        texts(&open(&dir).load(conv).unwrap().0),
        ["first", " Paris.", "from the other window"]
    );
    assert_eq!(
        texts(&open(&dir).load(mine).unwrap().0),
        texts(&h.s.session.conv)
    );
    // The next turn saves in place, with no further notice of the kind.
    h.exchange("third", WORDS);
    assert_eq!(h.s.session.conv_id, Some(mine));
    assert_eq!(
        texts(&open(&dir).load(mine).unwrap().0),
        texts(&h.s.session.conv)
    );
}

/// Why the database of [`read_only_harness`] cannot be written.
const WHY: &str = "cannot write in /data: Read-only file system (os error 30)";

/// A harness with SmolLM2 loaded on the database in `dir` opened read-only
/// (as on a read-only mount, which `tests/store_cli.rs` tests for real).
fn read_only_harness(dir: &tempfile::TempDir) -> H {
    let mut h = H::new(100, 30);
    let store = Store::open_read_only(&dir.path().join("c.sqlite3"), WHY.into()).unwrap();
    h.host.saver = Some(Saver::with_store(store));
    h.loaded("SmolLM2", "Q4_1")
}

#[test]
fn a_database_that_can_only_be_read_is_opened_and_new_turns_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let mut h = harness(&dir);
        h.exchange("about France", WORDS);
        h.s.session.conv_id.unwrap()
    };
    let mut h = read_only_harness(&dir);
    h.key(KeyCode::F(9));
    let Some(Popup::Chats(l)) = &h.s.view.popup else {
        panic!("the list is open");
    };
    assert_eq!(l.rows.iter().map(|r| r.id).collect::<Vec<_>>(), [first]);
    h.key(KeyCode::Enter);
    assert_eq!(h.s.session.conv_id, Some(first));
    assert_eq!(texts(&h.s.session.conv), ["about France", " Paris."]);
    assert!(h.s.session.saving_off.is_none(), "nothing to save yet");

    h.exchange("and Italy?", WORDS);
    let n = h.s.view.notice.clone().expect("a notice");
    assert_eq!(n.level, NoticeLevel::Error);
    assert!(
        n.text.contains("Not saved") && n.text.contains(WHY) && n.text.contains("until you quit"),
        "{}",
        n.text
    );
    assert_eq!(h.s.session.saving_off.as_deref(), Some(WHY));
    assert!(h.screen().contains("saving off"), "{}", h.screen());
    assert_eq!(texts(&h.s.session.conv).len(), 4, "the chat is all there");
    // Opening it again from the list (its saved version) would lose the new turn.
    h.key(KeyCode::F(9));
    h.key(KeyCode::Enter);
    assert_eq!(texts(&h.s.session.conv).len(), 4, "kept");
    let n = h.s.view.notice.clone().unwrap().text;
    assert!(
        n.contains("could not be saved") && n.contains("saving is off"),
        "{n}"
    );
    assert_eq!(texts(&open(&dir).load(first).unwrap().0).len(), 2);
}

#[test]
fn each_reply_saves_the_system_prompt_it_was_generated_under() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&dir);
    h.ctrl('g');
    h.type_str("Be brief.");
    h.key(KeyCode::Enter);
    h.exchange("about France", WORDS);
    h.ctrl('g');
    h.ctrl('u');
    h.type_str("Be verbose.");
    h.key(KeyCode::Enter);
    h.exchange("about Italy", WORDS);
    let (back, _) = open(&dir).load(h.s.session.conv_id.unwrap()).unwrap();
    let systems: Vec<_> = back
        .path()
        .iter()
        .map(|&n| back.node(n))
        .filter(|n| n.role == crate::engine::Role::Assistant)
        .map(|n| n.system.clone())
        .collect();
    assert_eq!(
        systems,
        [Some("Be brief.".into()), Some("Be verbose.".into())]
    );
    assert_eq!(back.system(), Some("Be verbose."));
}
