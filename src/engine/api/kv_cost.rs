//! What a caller collects of a [`Command::KvCost`](super::Command::KvCost):
//! both runs' timed tokens, from its [`Event::KvStep`]s (shared by
//! `tokenscope bench --kv` and the TUI's KV-cache view).

use super::event::{Event, KvRun};
use super::ids::TokenId;

/// One timed token of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvTimed {
    /// Position in the sequence (prompt + reply so far).
    pub position: usize,
    pub id: TokenId,
    /// Wall-clock seconds of its evaluation and pick ([`Event::KvStep`]).
    pub seconds: f64,
}

/// Both runs of one [`Command::KvCost`](super::Command::KvCost), as the
/// engine sent them: with the KV cache, and without it (recomputed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvCostRuns {
    pub cached: Vec<KvTimed>,
    pub recomputed: Vec<KvTimed>,
}

impl KvCostRuns {
    /// Adds one [`Event::KvStep`]; other events are not this one's.
    pub fn push(&mut self, ev: &Event) {
        if let Event::KvStep {
            run,
            position,
            id,
            seconds,
            ..
        } = *ev
        {
            let t = KvTimed {
                position,
                id,
                seconds,
            };
            match run {
                KvRun::Cached => self.cached.push(t),
                KvRun::Recomputed => self.recomputed.push(t),
            }
        }
    }

    /// The first reply index where the runs picked different tokens
    /// (comparing as far as both went), with both ids; `None` when they agree.
    pub fn first_difference(&self) -> Option<(usize, TokenId, TokenId)> {
        self.cached
            .iter()
            .zip(&self.recomputed)
            .position(|(a, b)| a.id != b.id)
            .map(|i| (i, self.cached[i].id, self.recomputed[i].id))
    }
}

/// Seconds of a run, all tokens together (0 for none: a fold from +0, as an
/// empty f64 `sum` is -0, shown as "-0.00").
pub fn kv_total(run: &[KvTimed]) -> f64 {
    run.iter().fold(0.0, |a, t| a + t.seconds)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_run_totals_a_positive_zero() {
        let t = super::kv_total(&[]);
        assert!(t == 0.0 && t.is_sign_positive());
        assert_eq!(format!("{t:.2}"), "0.00");
    }
}
