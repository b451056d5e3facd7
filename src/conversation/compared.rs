//! A reply compared under a second model (the TUI's compare key): the rows
//! the engine sent ([`crate::engine::Event::Compared`]) and who was compared.
//! Kept on the reply's node for this session only (not saved: it belongs to
//! two model files, and is quick to make again).

use super::compare_stats::{Summary, summarize};
use super::tree::{Conversation, NodeId};
use crate::engine::CompareRow;
use crate::i18n::tr_args;

/// How a comparison stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareStatus {
    /// Rows are still coming.
    Running,
    /// Every token of the reply was compared.
    Done,
    /// Stopped by the user (Esc) or failed: the rows so far stand.
    Stopped,
}

/// A reply's tokens compared under model A (the one in use, slot 0) and a
/// model B (slot 1), forced the same ids: the prompt the reply answered, then
/// the reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// A's and B's file names (variants often share their `general.name`).
    pub model_a: String,
    pub model_b: String,
    /// B's quantization type as shown: what its tensors really are where that
    /// differs from the name (`Q2_K requested · mostly Q4_0`), else the name (`Q4_K_M`).
    pub quant_b: String,
    /// Position of the reply's first token in the sequence compared (the
    /// prompt's length): row `i` is the reply's token `i`.
    pub score_from: usize,
    /// Tokens to compare in all (the reply's).
    pub total: usize,
    /// One row per reply token compared so far, in order.
    pub rows: Vec<CompareRow>,
    pub status: CompareStatus,
}

impl Comparison {
    /// The row of reply token `step`, once compared.
    pub fn row(&self, step: usize) -> Option<&CompareRow> {
        self.rows
            .get(step)
            .filter(|r| r.index == self.score_from + step)
    }

    /// The statistics over the rows so far (`None` before the first), as
    /// `tokenscope compare` reports them.
    pub fn summary(&self) -> Option<Summary> {
        (!self.rows.is_empty()).then(|| summarize(&self.rows, 1, self.model_b.clone()))
    }

    /// The line shown under the reply: what was compared with what and how
    /// they differ (mean KL, top-1 agreement, perplexities), or how far it is.
    pub fn line(&self) -> String {
        let n = self.rows.len();
        let Some(s) = self.summary() else {
            return tr_args(
                "compared-line-starting",
                "⇄ comparing with { $b }… 0/{ $total }",
                &[("b", &self.model_b), ("total", &self.total)],
            );
        };
        let stats = tr_args(
            "compared-line-stats",
            "mean KL { $kl } nats · top-1 agree { $agree }% · ppl A { $ppl_a } / B { $ppl_b }",
            &[
                ("kl", &format!("{:.4}", s.mean_kl)),
                ("agree", &format!("{:.1}", s.top1_agreement * 100.0)),
                ("ppl_a", &format!("{:.2}", s.ppl_a)),
                ("ppl_b", &format!("{:.2}", s.ppl_b)),
            ],
        );
        let (b, quant, total) = (&self.model_b, &self.quant_b, &self.total);
        match self.status {
            CompareStatus::Running => tr_args(
                "compared-line-running",
                "⇄ comparing with { $b }… { $n }/{ $total } · { $stats }",
                &[("b", b), ("n", &n), ("total", total), ("stats", &stats)],
            ),
            CompareStatus::Done => tr_args(
                "compared-line-done",
                "⇄ vs { $b } ({ $quant }): { $stats }",
                &[("b", b), ("quant", quant), ("stats", &stats)],
            ),
            CompareStatus::Stopped => tr_args(
                "compared-line-stopped",
                "⇄ vs { $b } ({ $quant }), stopped at { $n }/{ $total }: { $stats }",
                &[
                    ("b", b),
                    ("quant", quant),
                    ("n", &n),
                    ("total", total),
                    ("stats", &stats),
                ],
            ),
        }
    }
}

impl Conversation {
    /// Reply `id` is compared now: `comparison` (no rows yet) replaces any
    /// it had.
    pub fn start_comparison(&mut self, id: NodeId, comparison: Comparison) {
        self.node_mut(id).comparison = Some(Box::new(comparison));
    }

    /// Rows the engine sent for reply `id`'s comparison (none when it has
    /// none any more).
    pub fn add_compared_rows(&mut self, id: NodeId, rows: Vec<CompareRow>) {
        if let Some(c) = self.node_mut(id).comparison.as_mut() {
            c.rows.extend(rows);
        }
    }

    /// Ends reply `id`'s comparison as `status`: its rows stand; one that
    /// ended early without any goes.
    pub fn end_comparison(&mut self, id: NodeId, status: CompareStatus) {
        let m = self.node_mut(id);
        if let Some(c) = m.comparison.as_mut() {
            c.status = status;
            if c.rows.is_empty() && status != CompareStatus::Done {
                m.comparison = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Node;

    fn comparison() -> Comparison {
        Comparison {
            model_a: "a.gguf".into(),
            model_b: "b.gguf".into(),
            quant_b: "Q4_0".into(),
            score_from: 3,
            total: 2,
            rows: Vec::new(),
            status: CompareStatus::Running,
        }
    }

    fn row(index: usize) -> CompareRow {
        CompareRow {
            index,
            id: 1,
            ln_p: vec![-0.5, -0.7],
            top1: vec![1, 1],
            kl: vec![0.01],
            top: Vec::new(),
            ln_p_of_a_top: Vec::new(),
        }
    }

    #[test]
    fn a_comparison_keeps_its_rows_and_goes_when_stopped_without_any() {
        let mut c = Conversation::new(None);
        let a = c.append(Node::assistant(None, None));
        c.start_comparison(a, comparison());
        c.end_comparison(a, CompareStatus::Stopped);
        assert!(
            c.node(a).comparison.is_none(),
            "stopped before its first row"
        );
        c.start_comparison(a, comparison());
        c.add_compared_rows(a, vec![row(3)]);
        c.end_comparison(a, CompareStatus::Stopped);
        let kept = c
            .node(a)
            .comparison
            .as_ref()
            .map(|c| (c.status, c.rows.len()));
        assert_eq!(kept, Some((CompareStatus::Stopped, 1)));
        assert!(
            c.node(a)
                .comparison
                .as_ref()
                .is_some_and(|c| c.row(0).is_some())
        );
        c.start_comparison(a, comparison());
        c.end_comparison(a, CompareStatus::Done);
        assert!(c.node(a).comparison.is_some(), "done, even with no rows");
    }
}
