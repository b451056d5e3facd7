//! The statistics of a comparison of model B against model A over the same
//! tokens, as llama.cpp's `llama-perplexity --kl-divergence` reports them
//! (see [`crate::commands::comparison`] for what each means). Here, below the TUI and
//! the `compare` command, because both show them: `tokenscope compare`
//! prints them, a reply compared in the TUI ([`super::Comparison`]) shows
//! them under the reply.

use crate::engine::CompareRow;

/// Statistics of one model B against A over the compared tokens.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// B's file name.
    pub model: String,
    pub n_tokens: usize,
    /// KL(A‖B) in nats: mean, median, 99th percentile, max.
    pub mean_kl: f64,
    pub median_kl: f64,
    pub p99_kl: f64,
    pub max_kl: f64,
    /// Fraction of tokens where A and B have the same top-1.
    pub top1_agreement: f64,
    /// Mean and root mean square of p_B(token) − p_A(token) (fractions).
    pub mean_delta_p: f64,
    pub rms_delta_p: f64,
    /// Perplexity of A and of B on the compared tokens.
    pub ppl_a: f64,
    pub ppl_b: f64,
}

/// The `q` quantile of sorted `v` (0 ≤ q ≤ 1), interpolated linearly between
/// neighbours as llama-perplexity does; 0 for an empty list.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => {
            let p = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let i = p.floor() as usize;
            let f = p - i as f64;
            let j = (i + 1).min(n - 1);
            (1.0 - f) * sorted[i] + f * sorted[j]
        }
    }
}

/// The statistics of model `b` (its index among all models, ≥ 1) from `rows`.
pub(crate) fn summarize(rows: &[CompareRow], b: usize, model: String) -> Summary {
    let n = rows.len();
    let nf = n.max(1) as f64;
    let mut kls: Vec<f64> = rows.iter().map(|r| r.kl[b - 1]).collect();
    kls.sort_by(f64::total_cmp);
    let delta: Vec<f64> = rows
        .iter()
        .map(|r| r.ln_p[b].exp() - r.ln_p[0].exp())
        .collect();
    let mean = |v: &mut dyn Iterator<Item = f64>| v.sum::<f64>() / nf;
    Summary {
        model,
        n_tokens: n,
        mean_kl: mean(&mut kls.iter().copied()),
        // The median of an even count is the mean of the middle two, as the interpolation gives.
        median_kl: quantile(&kls, 0.5),
        p99_kl: quantile(&kls, 0.99),
        max_kl: kls.last().copied().unwrap_or(0.0),
        top1_agreement: rows.iter().filter(|r| r.top1[0] == r.top1[b]).count() as f64 / nf,
        mean_delta_p: mean(&mut delta.iter().copied()),
        rms_delta_p: mean(&mut delta.iter().map(|d| d * d)).sqrt(),
        ppl_a: (-mean(&mut rows.iter().map(|r| r.ln_p[0]))).exp(),
        ppl_b: (-mean(&mut rows.iter().map(|r| r.ln_p[b]))).exp(),
    }
}

impl Summary {
    /// The `{"type":"summary",…}` JSONL line, its keys in the order the
    /// issue lists them (`type`, `model`, `n_tokens`, `mean_kl`, …, `ppl_b`).
    pub fn json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            r#type: &'static str,
            #[serde(flatten)]
            summary: &'a Summary,
        }
        serde_json::to_string(&Line {
            r#type: "summary",
            summary: self,
        })
        .expect("a summary serializes")
    }
}
