//! Saved conversations: one SQLite file (WAL mode) in the data directory,
//! `conversations.sqlite3` (see [`crate::paths::Paths::conversations_db`]).
//!
//! Each conversation is a row of `conversations` and its tree a row per node
//! in `nodes` (see [`schema`]). [`Store::save`] writes, in one transaction,
//! only the nodes that changed since the last save of that conversation (a
//! fingerprint per node), so a long chat does not rewrite itself every
//! turn. Replies still being generated are not saved: a killed process
//! keeps every completed turn, and SQLite's journal keeps the file whole.
//!
//! Where the file or its directory cannot be written (a read-only mount, a
//! directory of someone else's), [`Store::open`] opens it read-only: the
//! list, search, exports and loads work, and every write says why it cannot
//! ([`StoreError::CannotWrite`]).

mod codec;
pub mod export;
mod read;
pub mod schema;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    Connection, ErrorCode, MAIN_DB, OpenFlags, OptionalExtension, TransactionBehavior, params,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::conversation::{Conversation, NodeId, Status};
use crate::engine::{ModelInfo, ModelRef, Role, TokenStep};
pub(crate) use codec::{Extra, Pieces};
pub(crate) use read::to_conversation;

/// A conversation's id in the database.
pub(crate) type ConvId = i64;

/// How long a save waits for another process's write to finish.
const BUSY_WAIT: Duration = Duration::from_millis(300);

#[derive(Debug, Error)]
pub enum StoreError {
    Newer {
        found: i64,
        supported: i64,
    },
    Locked,
    Full,
    ReadOnly,
    Corrupt(String),
    CannotWrite(String),
    TooOld(i64),
    NotFound(ConvId),
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    Sqlite(rusqlite::Error),
    Codec(#[from] postcard::Error),
}
impl std::fmt::Display for StoreError {
    /// In the interface language ([`crate::i18n::tr_args`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            StoreError::Newer { found, supported } => crate::i18n::tr_args(
                "store-newer",
                "the conversations database has schema version { $found }, newer than this tokenscope understands ({ $supported }): upgrade tokenscope, or set TOKENSCOPE_HOME to another directory",
                &[("found", &found), ("supported", &supported)],
            ),
            StoreError::Locked => crate::i18n::tr(
                "store-locked",
                "the conversations database is locked by another program (another tokenscope saving?): try again in a moment",
            ),
            StoreError::Full => crate::i18n::tr("store-full", "the disk is full: free some space"),
            StoreError::ReadOnly => crate::i18n::tr(
                "store-read-only",
                "the conversations database is read-only: check the permissions of the file and its directory",
            ),
            StoreError::Corrupt(v) => crate::i18n::tr_args(
                "store-corrupt",
                "the conversations database is damaged or not a database ({ $v }): move the file away to start a new one",
                &[("v", &v)],
            ),
            StoreError::CannotWrite(v) => crate::i18n::tr_args(
                "store-cannot-write",
                "the conversations database can only be read: { $v }",
                &[("v", &v)],
            ),
            StoreError::TooOld(v) => crate::i18n::tr_args(
                "store-too-old",
                "the conversations database has the old schema version { $v }, which tokenscope converts when it can write the file, and it cannot: run tokenscope once where the file can be written",
                &[("v", &v)],
            ),
            StoreError::NotFound(v) => crate::i18n::tr_args(
                "store-not-found",
                "no saved conversation has id { $v } (`tokenscope chats` lists them)",
                &[("v", &v)],
            ),
            StoreError::Dir { path, source } => crate::i18n::tr_args(
                "store-dir",
                "cannot create the data directory { $path }: { $source }",
                &[("path", &path.display()), ("source", &source)],
            ),
            StoreError::Sqlite(v) => {
                crate::i18n::tr_args("store-sqlite", "SQLite: { $v }", &[("v", &v)])
            }
            StoreError::Codec(v) => {
                crate::i18n::tr_args("store-codec", "cannot encode a node: { $v }", &[("v", &v)])
            }
        };
        f.write_str(&text)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked,
            Some(ErrorCode::DiskFull) => StoreError::Full,
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

/// A conversation in the list (`tokenscope chats`, the TUI's list).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub id: ConvId,
    pub title: String,
    /// Unix time of the last save, in milliseconds.
    pub updated_at: i64,
    pub model: Option<String>,
    /// The model of the last reply (its file, or a server's), when known.
    pub model_path: Option<ModelRef>,
    /// User messages on the path shown.
    pub turns: i64,
}

/// A node as stored, every column decoded: what an export writes and an
/// import reads back, exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNode {
    pub id: NodeId,
    pub parent: Option<NodeId>,
    /// Position among its parent's children.
    pub ord: usize,
    pub active_child: Option<NodeId>,
    pub role: Role,
    pub content: String,
    pub status: Status,
    pub model: Option<String>,
    /// Unix time, milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub extra: Extra,
    /// Every token with what the model considered.
    pub steps: Vec<TokenStep>,
    /// The text of the token ids the steps mention, when the model's
    /// vocabulary was known (bytes; may be part of a character).
    pub pieces: Pieces,
    /// The loaded model's description when this node was saved (replies).
    pub model_card: Option<ModelInfo>,
    /// The system prompt this reply was generated under (`""`: none);
    /// `None` when not recorded (prompt turns; replies saved before
    /// tokenscope recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// A conversation as stored (see [`StoredNode`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredConversation {
    pub title: String,
    /// The user renamed it (the first message no longer sets the title).
    pub title_set: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub model: Option<String>,
    /// The model of the last reply (its file, or a server's), when known.
    pub model_path: Option<ModelRef>,
    pub model_card: Option<ModelInfo>,
    pub turns: i64,
    pub nodes: Vec<StoredNode>,
}

/// What one [`Store::save`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    pub id: ConvId,
    /// Node rows written (the others had not changed).
    pub written: usize,
    /// The conversation this save was meant for, when another writer (a
    /// second window) had saved it since this store last read or wrote it:
    /// this copy went to a new conversation, `id`, instead of overwriting
    /// theirs. `None` for an ordinary save.
    pub forked_from: Option<ConvId>,
}

/// What was last saved of one conversation.
#[derive(Debug, Default)]
struct Known {
    /// Fingerprint of each node row as written.
    rows: HashMap<NodeId, u64>,
    /// The rows on disk may not match node ids (not loaded by this store):
    /// the next save replaces them all.
    rewrite: bool,
    /// The conversation's revision when this store last read or wrote it.
    revision: i64,
}

/// The fingerprint of each node row `conv` would write (replies still
/// being generated left out), by node id.
fn fingerprints(conv: &Conversation) -> HashMap<NodeId, u64> {
    (0..conv.len())
        .filter(|&i| conv.node(i).status != Status::Streaming)
        .map(|i| {
            let n = conv.node(i);
            let parent = n.parent();
            let ord = parent.map_or(0, |_| conv.sibling_pos(i).0);
            (i, codec::fingerprint(n, parent, ord, n.active_child()))
        })
        .collect()
}

/// The open database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    known: HashMap<ConvId, Known>,
    /// Why nothing can be written (opened read-only); `None` when it can be.
    read_only: Option<String>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    /// Opens (creating or migrating) the database at `path`, creating its
    /// directory when missing. Where that cannot be written, opens it
    /// read-only instead (see [`Store::open_read_only`]; the reason is
    /// [`Store::read_only`]).
    ///
    /// # Errors
    /// [`StoreError::Newer`] for a database of a later schema,
    /// [`StoreError::Corrupt`] for a file that is not one, and locked,
    /// read-only (when it cannot be read either) or full as such.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let e = match Self::open_writable(path) {
            Ok(store) => return Ok(store),
            Err(e) => e,
        };
        let why = match &e {
            StoreError::Dir { path, source } if no_write(source) => {
                format!(
                    "cannot create the data directory {}: {source}",
                    path.display()
                )
            }
            StoreError::ReadOnly => why_read_only(path)
                .unwrap_or_else(|| format!("SQLite opened {} read-only", path.display())),
            StoreError::Sqlite(s) if s.sqlite_error_code() == Some(ErrorCode::CannotOpen) => {
                match why_read_only(path) {
                    Some(why) => why,
                    None => return Err(e),
                }
            }
            _ => return Err(e),
        };
        // A database that cannot be read either: the first error says why.
        Self::open_read_only(path, why).map_err(|ro| match ro {
            StoreError::Newer { .. } | StoreError::TooOld(_) | StoreError::Corrupt(_) => ro,
            _ => e,
        })
    }

    /// Opens read and write, creating and migrating.
    fn open_writable(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        // SQLite falls back to reading a file it may not write: so do we.
        if conn.is_readonly(MAIN_DB)? {
            return Err(StoreError::ReadOnly);
        }
        conn.busy_timeout(BUSY_WAIT)?;
        // WAL: readers never block the writer; FULL: a commit is on disk.
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            known: HashMap::new(),
            read_only: None,
        })
    }

    /// Opens the database at `path` for reading only; `why` (in words, for
    /// the user) is what every write answers ([`StoreError::CannotWrite`]).
    /// Nothing is created or migrated: a missing or empty file reads as no
    /// conversations, and schemas 2 and 3 are read as they are. In WAL mode,
    /// reading needs the `-shm` file: where it is not there and cannot be
    /// made (a read-only directory), the file is read alone, as immutable
    /// (saves left in a `-wal` file are then not seen, and `why` says so).
    ///
    /// # Errors
    /// [`StoreError::Newer`]; [`StoreError::TooOld`] for schema 1;
    /// [`StoreError::Corrupt`]; SQLite errors.
    pub(crate) fn open_read_only(path: &Path, why: String) -> Result<Store, StoreError> {
        let store = |conn, why| Store {
            conn,
            path: path.to_path_buf(),
            known: HashMap::new(),
            read_only: Some(why),
        };
        let empty = || -> Result<Store, StoreError> {
            // Nothing saved, nowhere to save: no conversations, in memory.
            let mut conn = Connection::open_in_memory()?;
            schema::migrate(&mut conn)?;
            Ok(store(conn, why.clone()))
        };
        if std::fs::metadata(path).is_err() {
            return empty();
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let unseen = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0).then(|| {
            format!(
                "{why}; saves still in {} are not shown (they need a writable directory)",
                Path::new(&wal).display()
            )
        });
        let mut failed = None;
        for (query, why) in [
            ("mode=ro", &why),
            ("immutable=1", unseen.as_ref().unwrap_or(&why)),
        ] {
            let opened = Connection::open_with_flags(file_uri(path, query), flags).and_then(|c| {
                // The first read opens the WAL index (or fails to).
                let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                Ok((c, v))
            });
            let (conn, found) = match opened {
                Ok(o) => o,
                Err(e) => {
                    failed = Some(e);
                    continue;
                }
            };
            if found == 0 {
                return empty();
            }
            conn.busy_timeout(BUSY_WAIT)?;
            conn.pragma_update(None, "foreign_keys", true)?;
            schema::shim(&conn, found)?;
            return Ok(store(conn, why.clone()));
        }
        Err(failed.expect("tried").into())
    }

    /// Why nothing can be written, when the database was opened read-only.
    pub(crate) fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// `Ok` when this store can write.
    fn writable(&self) -> Result<(), StoreError> {
        match &self.read_only {
            Some(why) => Err(StoreError::CannotWrite(why.clone())),
            None => Ok(()),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for tests that inject faults (`PRAGMA max_page_count`,
    /// `query_only`).
    #[doc(hidden)]
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Saves `conv` in one transaction: a new conversation when `id` is
    /// `None` (nothing is written for a conversation without turns, and
    /// `Ok(None)` comes back), else only the nodes of conversation `id` that
    /// changed since this store last saved or loaded it. Replies still being
    /// generated are left out. `model` (the loaded model) is recorded on
    /// the conversation and on the replies written.
    ///
    /// A failed save changes nothing on disk, and the next one writes what
    /// this one could not.
    ///
    /// # Errors
    /// Locked, full, read-only, damaged: see [`StoreError`];
    /// [`StoreError::CannotWrite`] from a store opened read-only, when
    /// something changed.
    pub fn save(
        &mut self,
        id: Option<ConvId>,
        conv: &Conversation,
        model: Option<&ModelInfo>,
    ) -> Result<Option<Saved>, StoreError> {
        if id.is_none() && conv.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        let card = model.map(|m| serde_json::to_string(m).expect("a model card serializes"));
        let path = conv.path();
        let title = title_of(conv);
        let turns = path
            .iter()
            .filter(|&&n| conv.node(n).role == Role::User)
            .count() as i64;
        let last_model = path.iter().rev().find_map(|&n| conv.node(n).model.clone());
        let model_path = model
            .filter(|m| Some(&m.name) == last_model.as_ref())
            .map(|m| model_text(&m.model));

        if let Some(id) = id
            && self
                .known
                .get(&id)
                .is_some_and(|k| !k.rewrite && k.rows == fingerprints(conv))
        {
            // Nothing changed since this store wrote or read it: nothing is
            // written, and the revision stays (another window's save is
            // not a conflict with a save that has nothing to say).
            return Ok(Some(Saved {
                id,
                written: 0,
                forked_from: None,
            }));
        }
        self.writable()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut inserted = false;
        let mut forked_from = None;
        let insert_new = |tx: &rusqlite::Transaction| -> Result<ConvId, StoreError> {
            tx.execute(
                "INSERT INTO conversations (title, created_at, updated_at) VALUES (?1, ?2, ?2)",
                params![title, now],
            )?;
            Ok(tx.last_insert_rowid())
        };
        let id = match id {
            Some(id) => {
                // Deleted meanwhile (by another window): saved again, whole, under its id.
                inserted = 1
                    == tx.execute(
                        "INSERT OR IGNORE INTO conversations (id, title, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?3)",
                        params![id, title, now],
                    )?;
                let revision: i64 = tx.query_row(
                    "SELECT revision FROM conversations WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )?;
                let ours = self.known.get(&id).map(|k| k.revision);
                if !inserted && ours.is_some_and(|r| r != revision) {
                    // Saved by another writer since we read it: ours goes
                    // to a new conversation rather than over theirs.
                    forked_from = Some(id);
                    insert_new(&tx)?
                } else {
                    id
                }
            }
            None => insert_new(&tx)?,
        };
        let known = self.known.get(&id);
        let rewrite = inserted || forked_from.is_some() || known.is_none_or(|k| k.rewrite);
        if rewrite {
            tx.execute("DELETE FROM nodes WHERE conv_id = ?1", [id])?;
        }
        let mut rows = HashMap::new();
        let mut written = 0;
        {
            let mut upsert = tx.prepare_cached(UPSERT)?;
            for (i, fp) in fingerprints(conv) {
                let n = conv.node(i);
                let parent = n.parent();
                let ord = parent.map_or(0, |_| conv.sibling_pos(i).0);
                let active = n.active_child();
                rows.insert(i, fp);
                if !rewrite && known.and_then(|k| k.rows.get(&i)) == Some(&fp) {
                    continue;
                }
                let pieces = codec::pieces_of(n);
                let trace = codec::pack(&n.steps)?;
                let node_card = card.as_deref().filter(|_| {
                    n.role == Role::Assistant
                        && model.is_some_and(|m| Some(&m.name) == n.model.as_ref())
                });
                upsert.execute(params![
                    id,
                    i as i64,
                    parent.map(|p| p as i64),
                    ord as i64,
                    active.map(|a| a as i64),
                    n.role.as_str(),
                    n.content,
                    codec::status_text(&n.status),
                    n.model,
                    now,
                    codec::ids_blob(&n.steps),
                    codec::pack(&Extra::of(n))?,
                    trace,
                    (!pieces.is_empty())
                        .then(|| codec::pack(&pieces))
                        .transpose()?,
                    node_card,
                    n.system,
                ])?;
                written += 1;
            }
        }
        tx.execute(
            "UPDATE conversations SET
                 title = CASE WHEN title_set THEN title ELSE ?2 END,
                 revision = random(),
                 updated_at = ?3, turns = ?4,
                 model = COALESCE(?5, model),
                 model_path = CASE WHEN ?6 IS NULL THEN model_path ELSE ?6 END,
                 model_card = COALESCE(?7, model_card)
             WHERE id = ?1",
            params![
                id,
                title,
                now,
                turns,
                last_model,
                model_path,
                card.filter(|_| model_path.is_some())
            ],
        )?;
        let revision: i64 = tx.query_row(
            "SELECT revision FROM conversations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        tx.commit()?;
        self.known.insert(
            id,
            Known {
                rows,
                rewrite: false,
                revision,
            },
        );
        Ok(Some(Saved {
            id,
            written,
            forked_from,
        }))
    }

    /// Every saved conversation, most recent first, whose title or message
    /// text contains `filter` (case-insensitive for ASCII; empty: all).
    ///
    /// # Errors
    /// SQLite errors as [`StoreError`].
    pub fn list(&self, filter: &str) -> Result<Vec<Summary>, StoreError> {
        let pattern = format!(
            "%{}%",
            filter
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut q = self.conn.prepare_cached(
            "SELECT id, title, updated_at, model, model_path, turns FROM conversations c
             WHERE ?1 = '%%' OR title LIKE ?1 ESCAPE '\\'
                OR EXISTS (SELECT 1 FROM nodes n WHERE n.conv_id = c.id
                           AND n.content LIKE ?1 ESCAPE '\\')
             ORDER BY updated_at DESC, id DESC",
        )?;
        let rows = q.query_map([pattern], |r| {
            Ok(Summary {
                id: r.get(0)?,
                title: r.get(1)?,
                updated_at: r.get(2)?,
                model: r.get(3)?,
                model_path: r.get::<_, Option<String>>(4)?.as_deref().map(model_of_text),
                turns: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The most recently saved conversation.
    ///
    /// # Errors
    /// SQLite errors as [`StoreError`].
    pub fn last(&self) -> Result<Option<ConvId>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM conversations ORDER BY updated_at DESC, id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sets conversation `id`'s title (the first message no longer does).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::CannotWrite`], or SQLite errors.
    pub(crate) fn rename(&mut self, id: ConvId, title: &str) -> Result<(), StoreError> {
        self.writable()?;
        let n = self.conn.execute(
            "UPDATE conversations SET title = ?2, title_set = 1 WHERE id = ?1",
            params![id, title],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }

    /// Deletes conversation `id` and its nodes.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::CannotWrite`], or SQLite errors.
    pub(crate) fn delete(&mut self, id: ConvId) -> Result<(), StoreError> {
        self.writable()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM nodes WHERE conv_id = ?1", [id])?;
        let n = tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
        tx.commit()?;
        self.known.remove(&id);
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }

    /// Writes `conv` (an import) as a new conversation; returns its id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a tree that does not hold together
    /// (nothing is written); [`StoreError::CannotWrite`]; SQLite errors.
    pub(crate) fn insert(&mut self, conv: &StoredConversation) -> Result<ConvId, StoreError> {
        to_conversation(conv)
            .map_err(|e| StoreError::Corrupt(format!("imported conversation: {e}")))?;
        self.writable()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO conversations (title, title_set, created_at, updated_at, model, model_path, model_card, turns, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, random())",
            params![
                conv.title,
                conv.title_set,
                conv.created_at,
                conv.updated_at,
                conv.model,
                conv.model_path.as_ref().map(model_text),
                conv.model_card.as_ref().map(|m| serde_json::to_string(m).expect("serializes")),
                conv.turns
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut upsert = tx.prepare_cached(UPSERT)?;
            for n in &conv.nodes {
                upsert.execute(params![
                    id,
                    n.id as i64,
                    n.parent.map(|p| p as i64),
                    n.ord as i64,
                    n.active_child.map(|a| a as i64),
                    n.role.as_str(),
                    n.content,
                    codec::status_text(&n.status),
                    n.model,
                    n.updated_at,
                    codec::ids_blob(&n.steps),
                    codec::pack(&n.extra)?,
                    codec::pack(&n.steps)?,
                    (!n.pieces.is_empty())
                        .then(|| codec::pack(&n.pieces))
                        .transpose()?,
                    n.model_card
                        .as_ref()
                        .map(|m| serde_json::to_string(m).expect("serializes")),
                    n.system,
                ])?;
                tx.execute(
                    "UPDATE nodes SET created_at = ?3 WHERE conv_id = ?1 AND node_id = ?2",
                    params![id, n.id as i64, n.created_at],
                )?;
            }
        }
        tx.commit()?;
        Ok(id)
    }
}

/// Inserts a node row, or updates it keeping its creation time (and its
/// pieces and model card when none come with it).
const UPSERT: &str = "
INSERT INTO nodes (conv_id, node_id, parent, ord, active_child, role, content, status, model,
                   created_at, updated_at, tokens, extra, trace, pieces, model_card, system)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
ON CONFLICT (conv_id, node_id) DO UPDATE SET
    parent = excluded.parent, ord = excluded.ord, active_child = excluded.active_child,
    role = excluded.role, content = excluded.content, status = excluded.status,
    model = excluded.model, updated_at = excluded.updated_at, tokens = excluded.tokens,
    extra = excluded.extra, trace = excluded.trace, system = excluded.system,
    pieces = COALESCE(excluded.pieces, nodes.pieces),
    model_card = COALESCE(excluded.model_card, nodes.model_card)";

/// The error of a write the file system refuses (permissions, a read-only mount).
fn no_write(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    matches!(e.kind(), PermissionDenied | ReadOnlyFilesystem)
}

/// Why the database at `path` cannot be written, in words: the file (when
/// it is there) or its directory (where SQLite makes its `-wal` and `-shm`
/// files) refuses writes. `None` when both take them (nothing is changed to
/// find out: the file is opened for writing without writing, and an
/// unnamed temporary file is made in the directory).
fn why_read_only(path: &Path) -> Option<String> {
    if path.exists()
        && let Err(e) = std::fs::OpenOptions::new().write(true).open(path)
        && no_write(&e)
    {
        return Some(format!("cannot write {}: {e}", path.display()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match tempfile::tempfile_in(dir) {
        Err(e) if no_write(&e) => Some(format!("cannot write in {}: {e}", dir.display())),
        _ => None,
    }
}

/// `path` as an SQLite URI with `query` (`file:/a%20b?mode=ro`): every
/// byte but unreserved ones and `/` percent-encoded, so any file name works.
fn file_uri(path: &Path, query: &str) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(b as char);
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    format!("{uri}?{query}")
}

/// The title a conversation gets from its first user message: its first
/// line, at most 60 characters.
pub(crate) fn title_of(conv: &Conversation) -> String {
    let first = conv
        .path()
        .into_iter()
        .map(|n| conv.node(n))
        .find(|n| n.role == Role::User)
        .map(|n| n.content.trim().lines().next().unwrap_or("").to_string())
        .unwrap_or_default();
    let title: String = first.chars().take(60).collect();
    if title.is_empty() {
        "(untitled)".into()
    } else if first.chars().count() > 60 {
        format!("{title}…")
    } else {
        title
    }
}

/// The `model_path` column's text for `model`: the file's path (lossy when it
/// is not UTF-8), or `URL#MODEL` for a server's model, as earlier versions
/// wrote it. The model cards (JSON) hold the same text ([`ModelRef::to_text`]).
fn model_text(model: &ModelRef) -> String {
    model.to_text()
}

/// A `model_path` column read back: `URL#MODEL` after an `http://` or
/// `https://` URL is a server's model; anything else is a file, a `#` in its
/// name included ([`ModelRef::from_text`]).
fn model_of_text(text: &str) -> ModelRef {
    ModelRef::from_text(text)
}

#[cfg(test)]
mod tests;
