//! Reading a saved conversation back: the rows exactly as stored
//! ([`Store::read`], for exports) and the tree rebuilt from them to go on
//! with ([`Store::load`], [`to_conversation`]), checked to hold together.

use std::collections::HashMap;

use rusqlite::OptionalExtension;

use super::codec::{self, Extra};
use super::{ConvId, Known, Store, StoreError, StoredConversation, StoredNode, fingerprints};
use crate::conversation::{Conversation, Node, NodeId, Status};
use crate::engine::{ModelInfo, Role, TokenStep};

impl Store {
    /// Conversation `id` exactly as stored.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Corrupt`] for a BLOB that
    /// does not decode; SQLite errors.
    pub fn read(&self, id: ConvId) -> Result<StoredConversation, StoreError> {
        let head = self
            .conn
            .query_row(
                "SELECT title, title_set, created_at, updated_at, model, model_path, model_card, turns
                 FROM conversations WHERE id = ?1",
                [id],
                |r| {
                    Ok(StoredConversation {
                        title: r.get(0)?,
                        title_set: r.get(1)?,
                        created_at: r.get(2)?,
                        updated_at: r.get(3)?,
                        model: r.get(4)?,
                        model_path: r.get::<_, Option<String>>(5)?.as_deref().map(super::model_of_text),
                        model_card: card_of(r.get(6)?),
                        turns: r.get(7)?,
                        nodes: Vec::new(),
                    })
                },
            )
            .optional()?;
        let mut conv = head.ok_or(StoreError::NotFound(id))?;
        let mut q = self.conn.prepare_cached(
            "SELECT node_id, parent, ord, active_child, role, content, status, model,
                    created_at, updated_at, tokens, extra, trace, pieces, model_card, system
             FROM nodes WHERE conv_id = ?1 ORDER BY node_id",
        )?;
        let mut rows = q.query([id])?;
        while let Some(r) = rows.next()? {
            let node_id: i64 = r.get(0)?;
            let bad = |what: &str, e: String| {
                StoreError::Corrupt(format!("conversation {id}, node {node_id}: {what}: {e}"))
            };
            let role: String = r.get(4)?;
            let role = match role.as_str() {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => return Err(bad("role", other.into())),
            };
            let status: String = r.get(6)?;
            let status = serde_json::from_str(&status).map_err(|e| bad("status", e.to_string()))?;
            let extra = match r.get::<_, Option<Vec<u8>>>(11)? {
                Some(b) => codec::unpack(&b).map_err(|e| bad("extra", e))?,
                None => Extra::default(),
            };
            let steps = match r.get::<_, Option<Vec<u8>>>(12)? {
                Some(b) => codec::unpack(&b).map_err(|e| bad("trace", e))?,
                // Schema 1's messages had no tokens (ids alone, if any).
                None => codec::blob_ids(&r.get::<_, Vec<u8>>(10)?)
                    .into_iter()
                    .enumerate()
                    .map(|(index, id)| TokenStep {
                        index,
                        id,
                        forced: true,
                        text: String::new(),
                        logit: None,
                        p_sampled: None,
                        dist: None,
                    })
                    .collect(),
            };
            let pieces = match r.get::<_, Option<Vec<u8>>>(13)? {
                Some(b) => codec::unpack(&b).map_err(|e| bad("pieces", e))?,
                None => Vec::new(),
            };
            let index = |v: Option<i64>| v.map(|x| x.max(0) as NodeId);
            conv.nodes.push(StoredNode {
                id: node_id.max(0) as NodeId,
                parent: index(r.get(1)?),
                ord: r.get::<_, i64>(2)?.max(0) as usize,
                active_child: index(r.get(3)?),
                role,
                content: r.get(5)?,
                status,
                model: r.get(7)?,
                created_at: r.get(8)?,
                updated_at: r.get(9)?,
                extra,
                steps,
                pieces,
                model_card: card_of(r.get(14)?),
                system: r.get(15)?,
            });
        }
        Ok(conv)
    }

    /// Conversation `id` as a tree to continue, with the model file of its
    /// last reply (when known). What this store knows of it is reset, so its
    /// next save writes only what changes.
    ///
    /// # Errors
    /// As [`Store::read`]; [`StoreError::Corrupt`] for a tree that does not hold together.
    pub fn load(&mut self, id: ConvId) -> Result<(Conversation, StoredConversation), StoreError> {
        // The revision first: a save by another writer between the two reads
        // then makes our next save a new conversation (safe), never the
        // other way round (their save overwritten).
        let revision: i64 = self
            .conn
            .query_row(
                "SELECT revision FROM conversations WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(StoreError::NotFound(id))?;
        let stored = self.read(id)?;
        let (conv, identity) = to_conversation(&stored)
            .map_err(|e| StoreError::Corrupt(format!("conversation {id}: {e}")))?;
        let rows = if identity {
            fingerprints(&conv)
        } else {
            HashMap::new()
        };
        self.known.insert(
            id,
            Known {
                rows,
                rewrite: !identity,
                revision,
            },
        );
        Ok((
            conv,
            StoredConversation {
                nodes: Vec::new(),
                ..stored
            },
        ))
    }
}

fn card_of(json: Option<String>) -> Option<ModelInfo> {
    json.and_then(|j| serde_json::from_str(&j).ok())
}

/// The tree of a stored conversation; true when node ids are the stored
/// ones (no gaps: a reply that was being generated was not saved).
///
/// # Errors
/// What does not hold together (see [`Conversation::from_parts`]).
pub fn to_conversation(stored: &StoredConversation) -> Result<(Conversation, bool), String> {
    let mut index = HashMap::new();
    for (i, n) in stored.nodes.iter().enumerate() {
        if index.insert(n.id, i).is_some() {
            return Err(format!("node {} appears twice", n.id));
        }
    }
    let identity = stored.nodes.iter().enumerate().all(|(i, n)| n.id == i);
    let map = |id: NodeId| index.get(&id).copied();
    let mut children: Vec<Vec<(usize, NodeId)>> = vec![Vec::new(); stored.nodes.len()];
    let mut parts = Vec::with_capacity(stored.nodes.len());
    for (i, s) in stored.nodes.iter().enumerate() {
        // A parent that was not saved: the node is detached.
        let parent = s.parent.and_then(map);
        if let Some(p) = parent {
            children[p].push((s.ord, i));
        }
        let mut node = Node::user(s.content.clone());
        node.role = s.role;
        // Not saved while generated; an import may say so: it stopped there.
        node.status = match &s.status {
            Status::Streaming => Status::Stopped,
            other => other.clone(),
        };
        node.model = s.model.clone();
        node.system = s.system.clone();
        node.steps = s.steps.clone();
        let mut extra = s.extra.clone();
        extra.fork = extra
            .fork
            .and_then(|f| map(f.from).map(|from| crate::conversation::Fork { from, at: f.at }));
        extra.apply(&mut node);
        parts.push((node, parent, Vec::new()));
    }
    if stored
        .nodes
        .first()
        .is_none_or(|n| n.id != 0 || n.parent.is_some())
    {
        return Err("no root node".into());
    }
    let mut active = Vec::with_capacity(parts.len());
    for (i, mut c) in children.into_iter().enumerate() {
        c.sort();
        let kids: Vec<NodeId> = c.into_iter().map(|(_, k)| k).collect();
        let shown = stored.nodes[i].active_child.and_then(map);
        active.push(
            shown
                .and_then(|a| kids.iter().position(|&k| k == a))
                .unwrap_or(kids.len().saturating_sub(1)),
        );
        parts[i].2 = kids;
    }
    let mut conv = Conversation::from_parts(parts)?;
    for (i, a) in active.into_iter().enumerate() {
        conv.set_active_index(i, a);
    }
    Ok((conv, identity))
}
