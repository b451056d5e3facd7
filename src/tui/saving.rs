//! Saved conversations in the TUI: the [`Saver`] a host keeps (the database,
//! opened again when it could not be), and what [`super::execute`] does for
//! the storage effects. `update` only asks ([`super::Effect::Save`] and the
//! others); the I/O happens here, and its outcome lands in the state (the
//! conversation's id, a notice when saving fails or works again). A
//! database that can only be read (a read-only data directory) is still
//! listed and opened; saving is then off for the session, and said so.

use std::path::{Path, PathBuf};

use super::Host;
use super::effect::Effect;
use super::state::State;
use super::transitions;
use crate::conversation::Conversation;
use crate::i18n::{tr, tr_args};
use crate::store::{ConvId, Saved, Store, StoreError};

/// The conversations database of a running TUI.
#[derive(Debug)]
pub struct Saver {
    path: PathBuf,
    store: Option<Store>,
}

impl Saver {
    /// A saver for the database at `path`, opened now when it can be (the
    /// error, for a notice, when not: each use tries again).
    pub fn new(path: PathBuf) -> (Self, Option<StoreError>) {
        let mut s = Self { path, store: None };
        let err = s.store().err();
        (s, err)
    }

    /// A saver over an open store (tests: an in-memory one).
    pub fn with_store(store: Store) -> Self {
        Self {
            path: store.path().to_path_buf(),
            store: Some(store),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why saving is off (the database was opened read-only), if it is.
    pub fn read_only(&self) -> Option<&str> {
        self.store.as_ref().and_then(Store::read_only)
    }

    /// The open store, opening it when it is not yet.
    ///
    /// # Errors
    /// Why it cannot be opened (see [`StoreError`]).
    pub fn store(&mut self) -> Result<&mut Store, StoreError> {
        if self.store.is_none() {
            self.store = Some(Store::open(&self.path)?);
        }
        Ok(self.store.as_mut().expect("just opened"))
    }
}

/// The last saved conversation, ready to install.
pub struct Resumed {
    pub id: ConvId,
    pub conv: Conversation,
    pub meta: crate::store::StoredConversation,
    /// Its model file is there.
    pub model_present: bool,
}

/// Whether the model of `meta` is there to load: its file exists (a
/// server's model is not looked for: the picker opens).
fn model_present(meta: &crate::store::StoredConversation) -> bool {
    meta.model_path
        .as_ref()
        .and_then(|m| m.local_path())
        .is_some_and(Path::is_file)
}

/// The most recently saved conversation (`--resume`), if any.
///
/// # Errors
/// The database cannot be opened or read.
pub fn last(saver: &mut Saver) -> Result<Option<Resumed>, StoreError> {
    let st = saver.store()?;
    let Some(id) = st.last()? else {
        return Ok(None);
    };
    let (conv, meta) = st.load(id)?;
    let model_present = model_present(&meta);
    Ok(Some(Resumed {
        id,
        conv,
        meta,
        model_present,
    }))
}

/// What the user reads when this window's copy went to a new conversation
/// because another window had saved the same one meanwhile.
fn forked_notice(from: ConvId, to: ConvId) -> String {
    tr_args(
        "notice-save-forked",
        "Conversation { $from } was saved by another window meanwhile: this window's version is saved as conversation { $to }, theirs is kept (both in the list, F9).",
        &[("from", &from), ("to", &to)],
    )
}

/// What the user reads when a save failed: the conversation is kept.
fn not_saved(e: &StoreError) -> String {
    match e {
        StoreError::CannotWrite(_) => tr_args(
            "notice-not-saved-read-only",
            "Not saved: { $error }. The conversation stays here until you quit (restart tokenscope once the file can be written to save again).",
            &[("error", e)],
        ),
        _ => tr_args(
            "notice-not-saved",
            "Not saved: { $error }. The conversation stays here; saving is tried again after the next change.",
            &[("error", e)],
        ),
    }
}

/// What the user reads when the store of conversations cannot be opened at
/// start (`e`, the store's error).
pub fn store_failed(e: &impl std::fmt::Display) -> String {
    tr_args(
        "notice-store-failed",
        "Conversations cannot be saved: { $error }. This one stays in memory; saving is tried again after each turn.",
        &[("error", e)],
    )
}

/// What `--resume` says when nothing was saved yet.
pub fn nothing_to_resume() -> String {
    tr(
        "notice-nothing-to-resume",
        "No saved conversation to resume: this is a new one.",
    )
}

/// What `--resume` says when the last conversation cannot be read (`e`).
pub fn cannot_resume(e: &impl std::fmt::Display) -> String {
    tr_args(
        "notice-cannot-resume",
        "Cannot resume the last conversation: { $error }",
        &[("error", e)],
    )
}

/// What the user reads when the database opened read-only (`why`).
pub fn saving_off(why: &str) -> String {
    tr_args(
        "notice-saving-off",
        "Saving is off: { $why }. Saved conversations can be opened (F9); what you write here stays in memory until you quit.",
        &[("why", &why)],
    )
}

/// Saves `conv` (the one shown when `away` is `None`) under `id`.
pub fn save(
    s: &mut State,
    host: &mut impl Host,
    away: Option<(Option<ConvId>, Box<Conversation>)>,
) {
    let Some(saver) = host.saver() else {
        return;
    };
    let result = saver.store().and_then(|st| match &away {
        Some((id, conv)) => st.save(*id, conv, s.model.info.as_ref()),
        None => st.save(s.session.conv_id, &s.session.conv, s.model.info.as_ref()),
    });
    match result {
        Ok(saved) => {
            if away.is_none()
                && let Some(saved) = saved
            {
                s.session.conv_id = Some(saved.id);
            }
            if std::mem::take(&mut s.session.save_failed) {
                s.info(tr(
                    "notice-saved-again",
                    "Saved again: the conversation is on disk.",
                ));
            }
            if let Some(Saved {
                id,
                forked_from: Some(from),
                ..
            }) = saved
            {
                s.info(forked_notice(from, id));
            }
        }
        Err(e) => {
            tracing::warn!("saving the conversation failed: {e}");
            if let StoreError::CannotWrite(why) = &e {
                s.session.saving_off = Some(why.clone());
            }
            // Said when saving starts failing; while it goes on failing, only
            // when nothing else is being said (an error of the reply stays).
            if !std::mem::replace(&mut s.session.save_failed, true) || s.view.notice.is_none() {
                s.error(not_saved(&e));
            }
        }
    }
}

/// Fills the open conversation list with the conversations matching its filter.
pub fn list(s: &mut State, host: &mut impl Host) {
    let Some(saver) = host.saver() else {
        return;
    };
    let Some(list) = s.chat_list_mut() else {
        return;
    };
    match saver.store().and_then(|st| st.list(&list.filter)) {
        Ok(rows) => list.set_rows(rows),
        Err(e) => {
            list.error = Some(tr_args(
                "notice-cannot-list",
                "Cannot read the saved conversations: { $error }",
                &[("error", &e)],
            ))
        }
    }
}

/// Opens saved conversation `id` in place of the one shown (already saved).
pub fn open(s: &mut State, host: &mut impl Host, id: ConvId) -> Vec<Effect> {
    // The one shown could not be saved (the save just before failed):
    // replacing it would lose it, with its own saved version too.
    if s.session.save_failed && !s.session.conv.is_empty() {
        let how = if s.session.saving_off.is_some() {
            tr(
                "notice-open-unsaved-off",
                "saving is off, so it stays until you quit",
            )
        } else {
            tr(
                "notice-open-unsaved-retry",
                "once it saves (free disk space, close the other tokenscope), open it again",
            )
        };
        s.error(tr_args(
            "notice-open-unsaved",
            "The conversation shown could not be saved, so opening one from the list \
             (its saved version too) would lose it: { $how }; Ctrl-N twice drops the one shown.",
            &[("how", &how)],
        ));
        return vec![];
    }
    let Some(saver) = host.saver() else {
        return vec![];
    };
    match saver.store().and_then(|st| st.load(id)) {
        Ok((conv, meta)) => {
            let present = model_present(&meta);
            transitions::install_chat(s, id, conv, &meta, present)
        }
        Err(e) => {
            s.error(tr_args(
                "notice-cannot-open",
                "Cannot open that conversation: { $error }",
                &[("error", &e)],
            ));
            vec![]
        }
    }
}

/// Renames or deletes saved conversation `id`, then lists again. Deleting
/// the conversation shown clears the screen for a new one.
pub fn change(
    s: &mut State,
    host: &mut impl Host,
    id: ConvId,
    rename: Option<&str>,
) -> Vec<Effect> {
    let mut fx = Vec::new();
    let Some(saver) = host.saver() else {
        return fx;
    };
    let result = saver.store().and_then(|st| match rename {
        Some(title) => st.rename(id, title),
        None => st.delete(id),
    });
    match result {
        Ok(()) => {
            if rename.is_none() && s.session.conv_id == Some(id) {
                s.session.conv_id = None;
                let popup = s.view.popup.take();
                fx = transitions::new_chat(s)
                    .into_iter()
                    .filter(|e| !matches!(e, Effect::SaveAway(..)))
                    .collect();
                s.view.popup = popup;
                s.view.set_focus(s.view.focus);
                s.info(tr(
                    "notice-shown-deleted",
                    "The conversation shown was deleted: this is a new one.",
                ));
            }
            list(s, host);
        }
        Err(e) => {
            if let Some(l) = s.chat_list_mut() {
                l.error = Some(e.to_string());
            }
        }
    }
    fx
}
