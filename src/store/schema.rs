//! The database's schema and its history, versioned by `PRAGMA user_version`.
//!
//! - Schema 1 (the first form): linear chats, `conversations` and `messages`
//!   (text only, no branches, no tokens).
//! - Schema 2: the conversation tree in `nodes` (every branch, the
//!   child shown, token ids, per-token traces as BLOBs, stats and sampling
//!   settings), and a model card, a user-set title flag and a turn count on
//!   `conversations`.
//! - Schema 3: a `revision` on `conversations`, a new random value
//!   at every save that writes something (random, so that a deleted
//!   conversation's reused id never carries the revision a window holds),
//!   so that a window whose copy is older than the file's does not
//!   overwrite what another window saved.
//! - Schema 4 (current): `nodes.system`, the system prompt a reply was
//!   generated under (`''` for none; NULL when not recorded: prompt turns,
//!   and replies saved by earlier versions).
//!
//! [`migrate`] brings a database of any older version up to [`VERSION`] in
//! one transaction; a newer one is refused ([`super::StoreError::Newer`]).
//! A database that cannot be written is read as it is: [`shim`] makes
//! schemas 2 and 3 look like the current one for reading.

use rusqlite::{Connection, TransactionBehavior, params};

use super::StoreError;

/// The schema this build reads and writes.
pub(crate) const VERSION: i64 = 4;

/// Schema 1, kept to describe the history (and to make test fixtures of it).
pub(crate) const SCHEMA_1: &str = "
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    model TEXT
);
CREATE TABLE messages (
    conv_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conv_id, seq)
);
";

/// The tables of schema 2 that schema 1 lacks, and the new columns.
const TO_2: &str = "
CREATE TABLE nodes (
    conv_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    node_id INTEGER NOT NULL,
    parent INTEGER,
    ord INTEGER NOT NULL,
    active_child INTEGER,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    tokens BLOB NOT NULL,
    extra BLOB,
    trace BLOB,
    pieces BLOB,
    model_card TEXT,
    PRIMARY KEY (conv_id, node_id)
);
ALTER TABLE conversations ADD COLUMN title_set INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN model_path TEXT;
ALTER TABLE conversations ADD COLUMN model_card TEXT;
ALTER TABLE conversations ADD COLUMN turns INTEGER NOT NULL DEFAULT 0;
CREATE INDEX conversations_updated ON conversations(updated_at);
";

/// Schema 3's addition: the revision of each conversation.
const TO_3: &str = "
ALTER TABLE conversations ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
";

/// Schema 4's addition: the system prompt of each reply.
const TO_4: &str = "
ALTER TABLE nodes ADD COLUMN system TEXT;
";

/// Brings the database up to [`VERSION`] (creating it when empty), in one
/// transaction: a failure leaves it as it was.
///
/// # Errors
/// [`StoreError::Newer`] for a database of a later version; SQLite errors
/// (locked, read-only, not a database) as [`StoreError`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::Newer {
            found,
            supported: VERSION,
        });
    }
    if found == VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated.
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found == 0 {
        tx.execute_batch(SCHEMA_1)?;
    }
    if found < 2 {
        tx.execute_batch(TO_2)?;
        messages_to_nodes(&tx)?;
        tx.execute_batch("DROP TABLE messages;")?;
    }
    if found < 3 {
        tx.execute_batch(TO_3)?;
    }
    if found < 4 {
        tx.execute_batch(TO_4)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Makes a database of schema `found` that cannot be migrated (it cannot be
/// written) readable as the current one: temporary views, which shadow its
/// tables for this connection only, add the later columns as "not known".
///
/// # Errors
/// [`StoreError::Newer`] for a later schema; [`StoreError::TooOld`] for
/// schema 1 (its messages need the migration); SQLite errors.
pub(crate) fn shim(conn: &Connection, found: i64) -> Result<(), StoreError> {
    match found {
        VERSION => Ok(()),
        v if v > VERSION => Err(StoreError::Newer {
            found: v,
            supported: VERSION,
        }),
        2 | 3 => {
            let revision = if found < 3 { ", 0 AS revision" } else { "" };
            conn.execute_batch(&format!(
                "CREATE TEMP VIEW conversations AS SELECT *{revision} FROM main.conversations;
                 CREATE TEMP VIEW nodes AS SELECT *, NULL AS system FROM main.nodes;"
            ))?;
            Ok(())
        }
        v => Err(StoreError::TooOld(v)),
    }
}

/// Schema 1's linear messages become a chain of nodes: node 0 the root (the
/// system prompt, when the first message is one), each message the only
/// child of the one before.
fn messages_to_nodes(tx: &rusqlite::Transaction) -> Result<(), StoreError> {
    let convs: Vec<(i64, i64)> = tx
        .prepare("SELECT id, created_at FROM conversations")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let done = serde_json::to_string(&crate::conversation::Status::Done).expect("a status");
    let mut insert = tx.prepare(
        "INSERT INTO nodes (conv_id, node_id, parent, ord, active_child, role, content, status,
                            created_at, updated_at, tokens)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?8, x'')",
    )?;
    for (conv, created) in convs {
        let mut msgs: Vec<(String, String, i64)> = tx
            .prepare(
                "SELECT role, content, created_at FROM messages WHERE conv_id = ?1 ORDER BY seq",
            )?
            .query_map([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let system = match msgs.first() {
            Some((role, _, _)) if role == "system" => msgs.remove(0).1,
            _ => String::new(),
        };
        let n = msgs.len() as i64;
        let next = |i: i64| (i < n).then_some(i + 1);
        insert.execute(params![
            conv,
            0,
            None::<i64>,
            next(0),
            "system",
            system,
            done,
            created
        ])?;
        let mut users = 0;
        for (i, (role, content, at)) in msgs.iter().enumerate() {
            let id = i as i64 + 1;
            let role = match role.as_str() {
                "user" | "assistant" => role.as_str(),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "conversation {conv} has a message with role {other:?}"
                    )));
                }
            };
            users += (role == "user") as i64;
            insert.execute(params![conv, id, id - 1, next(id), role, content, done, at])?;
        }
        tx.execute(
            "UPDATE conversations SET turns = ?2 WHERE id = ?1",
            params![conv, users],
        )?;
    }
    Ok(())
}
