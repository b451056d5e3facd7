//! How a node's parts are packed into the database's columns: token ids as
//! little-endian `u32`s, the rest (stats, sampling settings, fork, …) and
//! the per-token trace as postcard BLOBs behind a format byte, and a
//! fingerprint that tells which nodes changed since the last save.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::conversation::{Fork, Node, Status};
use crate::engine::{SamplingParams, Stats, TokenId, TokenStep};

/// First byte of every BLOB written by this version.
const FORMAT: u8 = 1;

/// A node's fields that are not columns of their own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    pub stats: Option<Stats>,
    pub seed: Option<u32>,
    pub sampling: Option<SamplingParams>,
    pub context_tail: Vec<TokenId>,
    pub fork: Option<Fork>,
    pub tail: String,
    pub content_span: Option<(u32, u32)>,
}

impl Extra {
    pub fn of(n: &Node) -> Self {
        Self {
            stats: n.stats.clone(),
            seed: n.seed,
            sampling: n.sampling.clone(),
            context_tail: n.context_tail.clone(),
            fork: n.fork,
            tail: n.tail.clone(),
            content_span: n.content_span,
        }
    }

    /// Puts these fields on `n`.
    pub fn apply(self, n: &mut Node) {
        n.stats = self.stats;
        n.seed = self.seed;
        n.sampling = self.sampling;
        n.context_tail = self.context_tail;
        n.fork = self.fork;
        n.tail = self.tail;
        n.content_span = self.content_span;
    }
}

/// Token texts for the ids a node's trace mentions (its tokens and their
/// candidates), from the model's vocabulary when it was known: enough to
/// show a saved trace (an export) without the model file.
pub type Pieces = Vec<(TokenId, Vec<u8>)>;

/// The pieces of every id in `steps` (sorted by id), or empty without a vocabulary.
pub fn pieces_of(n: &Node) -> Pieces {
    let Some(v) = &n.vocab else {
        return Vec::new();
    };
    let mut ids: Vec<TokenId> = n
        .steps
        .iter()
        .flat_map(|s| std::iter::once(s.id).chain(s.top().iter().map(|c| c.id)))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| (id, v.bytes(id).to_vec()))
        .collect()
}

/// Packs `value` as a BLOB (format byte, then postcard).
pub fn pack<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(value, vec![FORMAT])
}

/// Unpacks a BLOB made by [`pack`].
///
/// # Errors
/// A message naming what is wrong: an unknown format byte, or bytes that do
/// not decode.
pub fn unpack<T: for<'de> Deserialize<'de>>(blob: &[u8]) -> Result<T, String> {
    match blob.split_first() {
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((f, _)) => Err(format!("unknown format {f}")),
        None => Err("empty".into()),
    }
}

/// Token ids as little-endian `u32`s (4 bytes each).
pub fn ids_blob(steps: &[TokenStep]) -> Vec<u8> {
    steps.iter().flat_map(|s| s.id.to_le_bytes()).collect()
}

/// The ids in a BLOB made by [`ids_blob`] (a trailing partial id is ignored).
pub fn blob_ids(blob: &[u8]) -> Vec<TokenId> {
    blob.chunks_exact(4)
        .map(|c| TokenId::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A status as stored: JSON (`"Done"`, `{"Failed":"…"}`).
pub fn status_text(s: &Status) -> String {
    serde_json::to_string(s).expect("a status serializes")
}

/// A hash of everything of node `n` that is saved, with its place in the
/// tree (`parent`, position among siblings, child shown): equal hashes mean
/// nothing to write. Costs one pass over the node's token ids.
pub fn fingerprint(n: &Node, parent: Option<usize>, ord: usize, active: Option<usize>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (parent, ord, active, n.children().len()).hash(&mut h);
    n.role.as_str().hash(&mut h);
    n.content.hash(&mut h);
    status_text(&n.status).hash(&mut h);
    n.model.hash(&mut h);
    n.system.hash(&mut h);
    n.steps.len().hash(&mut h);
    for s in &n.steps {
        (s.id, s.dist.is_some(), s.forced).hash(&mut h);
    }
    pack(&Extra::of(n)).unwrap_or_default().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_refuse_unknown_formats() {
        let e = Extra {
            seed: Some(7),
            tail: "\u{FFFD}".into(),
            context_tail: vec![1, 2, 3],
            ..Extra::default()
        };
        let b = pack(&e).unwrap();
        assert_eq!(unpack::<Extra>(&b).unwrap(), e);
        let mut bad = b.clone();
        bad[0] = 9;
        assert!(unpack::<Extra>(&bad).unwrap_err().contains("format 9"));
        assert!(unpack::<Extra>(&[]).is_err());
        assert!(unpack::<Extra>(&b[..2]).is_err(), "truncated");
    }

    #[test]
    fn ids_round_trip() {
        let steps: Vec<TokenStep> = [5i32, 70_000, 0]
            .iter()
            .enumerate()
            .map(|(i, &id)| TokenStep {
                index: i,
                id,
                forced: false,
                text: String::new(),
                logit: None,
                p_sampled: None,
                dist: None,
            })
            .collect();
        assert_eq!(blob_ids(&ids_blob(&steps)), vec![5, 70_000, 0]);
    }

    #[test]
    fn the_fingerprint_changes_with_content_place_and_scores() {
        let n = Node::user("hi");
        let base = fingerprint(&n, Some(0), 0, None);
        assert_eq!(base, fingerprint(&n.clone(), Some(0), 0, None));
        assert_ne!(base, fingerprint(&n, Some(0), 1, None), "position");
        assert_ne!(base, fingerprint(&n, Some(0), 0, Some(3)), "child shown");
        let mut m = n.clone();
        m.content.push('!');
        assert_ne!(base, fingerprint(&m, Some(0), 0, None));
        let mut m = n.clone();
        m.seed = Some(1);
        assert_ne!(base, fingerprint(&m, Some(0), 0, None));
    }
}
