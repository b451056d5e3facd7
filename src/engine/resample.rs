//! The sampler chain applied again, in pure Rust, to the candidates kept for
//! a step: what each candidate's probability would be under other sampling
//! settings, or which rule would cut it, without decoding anything. Used by
//! the inspector's sampler column and its what-if view.
//!
//! The order and the rules are llama.cpp's, as the engine chains them (see
//! [`super::sampler`]): repeat penalty, then either
//! greedy, or top-k, top-p, min-p, temperature and the draw
//! (llama.cpp `src/llama-sampler.cpp`: `llama_sampler_penalties_apply`,
//! `llama_sampler_top_k_impl`, `llama_sampler_top_p_apply`,
//! `llama_sampler_min_p_apply`, `llama_sampler_temp_impl`,
//! `llama_sampler_dist_apply`).
//!
//! Only the top candidates of a step are kept (with the log-sum-exp over the
//! whole vocabulary). When the answer depends on tokens outside them (top-p
//! 0.999 on a flat distribution, a temperature above 1 with no truncation),
//! [`Resampled::unsure`] says so instead of guessing.

use super::api::{Distribution, TokenId};
use super::sampler::SamplingParams;

/// The rule that cut a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    TopK,
    TopP,
    MinP,
    /// Temperature 0: only the most likely token is drawn.
    Greedy,
}

impl Rule {
    /// Short name for the inspector (`top-k`, `top-p`, `min-p`, `greedy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::TopK => "top-k",
            Rule::TopP => "top-p",
            Rule::MinP => "min-p",
            Rule::Greedy => "greedy",
        }
    }
}

/// What the sampler does with one candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fate {
    /// Kept, with its probability in the final draw.
    Kept(f32),
    /// Cut by this rule (probability 0).
    Cut(Rule),
}

impl Fate {
    /// The probability in the draw (0 when cut).
    #[cfg(test)]
    pub fn p(self) -> f32 {
        match self {
            Fate::Kept(p) => p,
            Fate::Cut(_) => 0.0,
        }
    }
}

/// Why a result depends on tokens outside the kept candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsure {
    /// Top-p needs more probability mass than the kept candidates hold.
    TopP,
    /// Top-k keeps more tokens than were kept for this step.
    TopK,
    /// Min-p's threshold lets in tokens beyond the kept candidates.
    MinP,
    /// With no truncation, the draw's normalization over the whole vocabulary
    /// depends on tokens not kept (a temperature above 1 flattens them up).
    Temperature,
    /// A repeat penalty below 1 may lift repeated tokens from outside the
    /// kept candidates above them.
    Penalty,
}

/// The sampler's verdict on a step's candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct Resampled {
    /// Per candidate, in the order of [`Distribution::top`].
    pub fates: Vec<Fate>,
    /// Set when the probabilities depend on tokens not kept: they are then
    /// computed from the kept candidates only and must not be shown as exact.
    pub unsure: Option<Unsure>,
}

/// How much probability (whole-vocabulary, at temperature 1) may hide
/// outside the kept candidates before a result counts as unsure.
const TOLERANCE: f64 = 1e-4;

/// Applies `params` to `dist`'s candidates as the engine's chain would.
///
/// `history`: the tokens before this step (prompt and reply, oldest first;
/// the last `repeat_last_n` count for the repeat penalty). `n_vocab`: the
/// model's vocabulary size (how many tokens were not kept).
pub(crate) fn resample(
    params: &SamplingParams,
    dist: &Distribution,
    history: &[TokenId],
    n_vocab: usize,
) -> Resampled {
    let n = dist.top.len();
    let n_out = n_vocab.saturating_sub(n);
    let mut unsure = None;
    if n == 0 {
        return Resampled {
            fates: Vec::new(),
            unsure,
        };
    }
    let lse = dist.lse as f64;
    let raw_min = dist
        .top
        .iter()
        .map(|c| c.logit)
        .fold(f32::INFINITY, f32::min) as f64;
    // Σ exp(l) over tokens not kept, relative to exp(lse): the whole mass minus the kept's.
    let kept_mass: f64 = dist.top.iter().map(|c| (c.logit as f64 - lse).exp()).sum();
    let out_mass = if n_out == 0 {
        0.0
    } else {
        (1.0 - kept_mass).max(0.0)
    };

    // Mass (relative to the whole vocabulary) that the penalty may take from
    // repeated tokens that were not kept.
    let mut pen_out_mass = 0.0;
    // 1. Repeat penalty on the tokens of the window.
    let mut logits: Vec<f64> = dist.top.iter().map(|c| c.logit as f64).collect();
    let penalty = params.repeat_penalty as f64;
    if penalty != 1.0 && params.repeat_last_n > 0 {
        let from = history.len().saturating_sub(params.repeat_last_n as usize);
        let window = &history[from..];
        for (l, c) in logits.iter_mut().zip(&dist.top) {
            if window.contains(&c.id) {
                *l = if *l <= 0.0 {
                    *l * penalty
                } else {
                    *l / penalty
                };
            }
        }
        let outside: Vec<TokenId> = {
            let mut v: Vec<TokenId> = window
                .iter()
                .copied()
                .filter(|id| !dist.top.iter().any(|c| c.id == *id))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if n_out > 0 && !outside.is_empty() {
            if penalty < 1.0 {
                // Lifted: they may rise above the kept candidates.
                unsure = Some(Unsure::Penalty);
            } else {
                // Lowered: their share of the whole vocabulary shrinks by at
                // most their mass, each at most the lowest kept candidate's.
                pen_out_mass = outside.len() as f64 * (raw_min - lse).exp();
            }
        }
    }
    // The whole vocabulary's log-sum-exp after the penalty (the kept part exactly).
    let lse_pen = {
        let delta: f64 = logits
            .iter()
            .zip(&dist.top)
            .map(|(l, c)| (l - lse).exp() - (c.logit as f64 - lse).exp())
            .sum();
        lse + (1.0 + delta).max(f64::MIN_POSITIVE).ln()
    };
    // Candidates by penalized logit, best first (ties: the order kept).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let mut fates = vec![Fate::Cut(Rule::Greedy); n];
    // A penalized candidate below the lowest kept logit: tokens not kept may
    // rank above it.
    let below = |j: usize| n_out > 0 && logits[order[j]] < raw_min;

    if params.is_greedy() {
        if below(0) {
            unsure.get_or_insert(Unsure::Penalty);
        }
        fates[order[0]] = Fate::Kept(1.0);
        return Resampled { fates, unsure };
    }

    // The live set: a prefix of `order`; `open` while tokens not kept are in
    // it too (the whole vocabulary, or a top-k larger than the candidates).
    let mut live = n;
    let mut open = n_out > 0;
    let mut partial_top_k = false;
    // The whole vocabulary's normalization, when the set is still open: exact
    // only if what was not kept is the whole rest of it, unpenalized.
    let open_norm = |unsure: &mut Option<Unsure>, partial_top_k: bool| {
        if partial_top_k && out_mass > TOLERANCE {
            unsure.get_or_insert(Unsure::TopK);
        }
        if pen_out_mass > TOLERANCE {
            unsure.get_or_insert(Unsure::Penalty);
        }
        lse_pen
    };
    // 2. Top-k.
    let k = params.top_k as usize;
    if k > 0 {
        if k < n {
            live = k;
            if below(k - 1) {
                unsure.get_or_insert(Unsure::TopK);
            }
            for &i in &order[k..] {
                fates[i] = Fate::Cut(Rule::TopK);
            }
            open = false;
        } else if k < n_vocab && n_out > 0 {
            // Keeps some tokens not kept here: only a normalization over them feels it.
            partial_top_k = true;
        }
    }
    // 3. Top-p, over the live set's probabilities.
    let p_top = params.top_p as f64;
    if p_top < 1.0 {
        let norm = if open {
            open_norm(&mut unsure, partial_top_k)
        } else {
            log_sum_exp(order[..live].iter().map(|&i| logits[i]))
        };
        let mut cum = 0.0;
        let mut last = None;
        for (j, &i) in order[..live].iter().enumerate() {
            cum += (logits[i] - norm).exp();
            if cum >= p_top {
                last = Some(j + 1);
                break;
            }
        }
        match last {
            Some(keep) => {
                if open && below(keep - 1) {
                    unsure.get_or_insert(Unsure::TopP);
                }
                for &i in &order[keep..live] {
                    fates[i] = Fate::Cut(Rule::TopP);
                }
                live = keep;
                open = false;
            }
            None if open => {
                unsure.get_or_insert(Unsure::TopP);
            }
            // The whole live set is needed: nothing cut.
            None => {}
        }
    }
    // 4. Min-p: logits at least max + ln(min_p).
    if params.min_p > 0.0 {
        let threshold = logits[order[0]] + (params.min_p as f64).ln();
        let mut keep = 1;
        while keep < live && logits[order[keep]] >= threshold {
            keep += 1;
        }
        for &i in &order[keep..live] {
            fates[i] = Fate::Cut(Rule::MinP);
        }
        if open {
            if threshold > raw_min {
                // No token that was not kept reaches the threshold.
                open = false;
            } else if out_mass > TOLERANCE {
                unsure.get_or_insert(Unsure::MinP);
            }
        }
        live = keep;
    }
    // 5. Temperature and the draw: a softmax over the live set.
    let t = params.temperature as f64;
    let scaled: Vec<f64> = order[..live].iter().map(|&i| logits[i] / t).collect();
    let z_kept = log_sum_exp(scaled.iter().copied());
    let z = if open && out_mass > 0.0 {
        if (t - 1.0).abs() < 1e-9 {
            open_norm(&mut unsure, partial_top_k)
        } else {
            // Σ over tokens not kept of exp(l/t), bounded: each ≤ exp(raw_min/t),
            // and for t < 1 also ≤ (Σ exp(l))^(1/t).
            let s_out = (lse + out_mass.ln()) / t;
            let by_count = (n_out as f64).ln() + raw_min / t;
            let bound = if t < 1.0 {
                s_out.min(by_count)
            } else {
                by_count
            };
            if (bound - z_kept).exp() > TOLERANCE {
                unsure.get_or_insert(Unsure::Temperature);
            }
            z_kept
        }
    } else {
        z_kept
    };
    for (j, &i) in order[..live].iter().enumerate() {
        fates[i] = Fate::Kept((scaled[j] - z).exp() as f32);
    }
    Resampled { fates, unsure }
}

/// log Σ exp(x), stable.
fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.map(|x| (x - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use llama_cpp_2::token::LlamaToken;
    use llama_cpp_2::token::data::LlamaTokenData;
    use llama_cpp_2::token::data_array::LlamaTokenDataArray;

    use super::*;
    use crate::engine::probs::summarize;
    use crate::engine::sampler::sampler_chain;

    /// Deterministic xorshift.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % 1_000_000) as f64 / 1_000_000.0
        }
    }

    /// Logits of a vocabulary of `n` with a peaked head, as models give.
    fn logits(seed: u64, n: usize) -> Vec<f32> {
        let mut r = Rng(seed);
        (0..n)
            .map(|i| {
                let head = if i % 97 < 12 {
                    8.0 * r.next() + 6.0
                } else {
                    0.0
                };
                (head + 4.0 * r.next() - 6.0) as f32
            })
            .collect()
    }

    fn dist_of(logits: &[f32], k: usize) -> Distribution {
        summarize(logits, k).distribution(|_, _| None)
    }

    /// llama.cpp's probabilities after the engine's chain, by token (0 when cut).
    fn llama(params: &SamplingParams, logits: &[f32], history: &[TokenId]) -> Vec<f32> {
        let mut chain = sampler_chain(params, logits.len() as i32);
        for t in history {
            chain.accept(LlamaToken(*t));
        }
        let data: Vec<LlamaTokenData> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0))
            .collect();
        let mut arr = LlamaTokenDataArray::new(data, false);
        arr.apply_sampler(&mut chain);
        let mut p = vec![0.0; logits.len()];
        if params.is_greedy() {
            if let Some(t) = arr.selected_token() {
                p[t.0 as usize] = 1.0;
            }
        } else {
            for d in &arr.data {
                p[d.id().0 as usize] = d.p();
            }
        }
        p
    }

    #[test]
    fn matches_llama_cpps_chain_over_a_grid_of_settings() {
        let n_vocab = 4000;
        let (mut compared, mut unsure) = (0, 0);
        // Positive logits, and logits mostly below 0 (the penalty multiplies those).
        for (seed, shift) in [(3u64, 0.0f32), (11, -14.0)] {
            let logits: Vec<f32> = logits(seed, n_vocab).iter().map(|l| l + shift).collect();
            let dist = dist_of(&logits, 256);
            // Recent tokens: some among the candidates (best and worst), some not.
            let history: Vec<TokenId> = dist.top[..6]
                .iter()
                .chain(&dist.top[200..204])
                .map(|c| c.id)
                // Head tokens (kept) and tail tokens (not kept).
                .chain([1, 2, 3, 50, 60, 70])
                .collect();
            for temperature in [0.0, 0.5, 1.0, 2.0] {
                for top_k in [0, 1, 40] {
                    for top_p in [1.0, 0.9, 0.5] {
                        for min_p in [0.0, 0.05, 0.2] {
                            for repeat_penalty in [1.0, 1.3] {
                                let params = SamplingParams {
                                    temperature,
                                    top_k,
                                    top_p,
                                    min_p,
                                    repeat_penalty,
                                    repeat_last_n: 64,
                                    seed: 1,
                                };
                                let ours = resample(&params, &dist, &history, n_vocab);
                                if ours.unsure.is_some() {
                                    unsure += 1;
                                    continue;
                                }
                                let theirs = llama(&params, &logits, &history);
                                for (c, fate) in dist.top.iter().zip(&ours.fates) {
                                    let want = theirs[c.id as usize];
                                    assert!(
                                        (fate.p() - want).abs() < 2e-4,
                                        "{params:?}: token {} ours {fate:?} llama.cpp {want}",
                                        c.id
                                    );
                                }
                                compared += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(compared >= 380, "{compared} compared, {unsure} unsure");
    }

    /// Either exact (matching llama.cpp) or flagged unsure.
    fn exact_or_unsure(params: &SamplingParams, logits: &[f32], history: &[TokenId], k: usize) {
        let dist = dist_of(logits, k);
        let ours = resample(params, &dist, history, logits.len());
        if ours.unsure.is_some() {
            return;
        }
        let theirs = llama(params, logits, history);
        for (c, fate) in dist.top.iter().zip(&ours.fates) {
            let want = theirs[c.id as usize];
            assert!(
                (fate.p() - want).abs() < 2e-4,
                "{params:?}: token {} ours {fate:?} llama.cpp {want} (not flagged unsure)",
                c.id
            );
        }
    }

    #[test]
    fn a_penalized_candidate_below_tokens_not_kept_is_not_called_exact() {
        // Token 0 at 10, tokens 1-255 at 6 (kept), the rest at 4 (not kept);
        // token 255 repeated: penalized to 3, below the tokens not kept.
        let mut logits = vec![4.0f32; 300];
        logits[0] = 10.0;
        for l in &mut logits[1..256] {
            *l = 6.0;
        }
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.001,
            repeat_penalty: 2.0,
            repeat_last_n: 64,
            seed: 1,
        };
        exact_or_unsure(&params, &logits, &[255], 256);
        // Repeated tokens that were not kept lose mass: the whole-vocabulary
        // normalization must not be called exact either.
        for top_p in [0.2, 0.5, 0.9] {
            let p = SamplingParams {
                top_p,
                min_p: 0.0,
                repeat_penalty: 1.5,
                ..params.clone()
            };
            exact_or_unsure(&p, &logits, &[256, 257, 258, 259, 260], 256);
        }
        // top-k beyond the candidates, closed by min-p above them: exact.
        let p = SamplingParams {
            top_k: 500,
            min_p: 0.05,
            repeat_penalty: 1.0,
            ..params
        };
        let dist = dist_of(&logits, 256);
        assert_eq!(resample(&p, &dist, &[], 300).unsure, None);
        exact_or_unsure(&p, &logits, &[], 256);
    }

    #[test]
    fn random_settings_and_histories_are_exact_or_flagged() {
        let mut r = Rng(99);
        for case in 0..1500u64 {
            let n_vocab = 300 + (r.next() * 700.0) as usize;
            let shift = (r.next() * 20.0 - 12.0) as f32;
            let logits: Vec<f32> = logits(case + 1, n_vocab)
                .iter()
                .map(|l| l + shift)
                .collect();
            let history: Vec<TokenId> = (0..(r.next() * 8.0) as usize)
                .map(|_| (r.next() * n_vocab as f64) as TokenId)
                .collect();
            let pick =
                |r: &mut Rng, xs: &[f32]| xs[(r.next() * xs.len() as f64) as usize % xs.len()];
            let params = SamplingParams {
                temperature: pick(&mut r, &[0.0, 0.3, 0.7, 1.0, 1.5]),
                top_k: pick(&mut r, &[0.0, 1.0, 5.0, 40.0, 300.0]) as u32,
                top_p: pick(&mut r, &[1.0, 0.95, 0.5, 0.2]),
                min_p: pick(&mut r, &[0.0, 0.001, 0.05, 0.3]),
                repeat_penalty: pick(&mut r, &[1.0, 1.3, 2.0, 0.8]),
                repeat_last_n: 64,
                seed: 1,
            };
            exact_or_unsure(&params, &logits, &history, 256);
        }
    }

    #[test]
    fn at_temperature_one_with_nothing_cut_the_sampler_is_the_model() {
        let logits = logits(5, 3000);
        let dist = dist_of(&logits, 256);
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            ..SamplingParams::default()
        };
        let r = resample(&params, &dist, &[], 3000);
        assert_eq!(r.unsure, None);
        for (c, f) in dist.top.iter().zip(&r.fates) {
            assert!((f.p() - dist.p(c.logit)).abs() < 1e-6);
        }
    }

    #[test]
    fn cut_candidates_name_their_rule_and_greedy_takes_all() {
        let logits = logits(7, 2000);
        let dist = dist_of(&logits, 64);
        let params = SamplingParams {
            temperature: 0.8,
            top_k: 10,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            ..SamplingParams::default()
        };
        let r = resample(&params, &dist, &[], 2000);
        assert!(r.fates[10..].iter().all(|f| *f == Fate::Cut(Rule::TopK)));
        assert!(matches!(r.fates[0], Fate::Kept(_)));
        let total: f32 = r.fates.iter().map(|f| f.p()).sum();
        assert!((total - 1.0).abs() < 1e-4);
        let greedy = resample(&SamplingParams::greedy(), &dist, &[], 2000);
        assert_eq!(greedy.fates[0], Fate::Kept(1.0));
        assert!(
            greedy.fates[1..]
                .iter()
                .all(|f| *f == Fate::Cut(Rule::Greedy))
        );
    }

    #[test]
    fn top_p_near_one_on_a_flat_distribution_says_it_cannot_know() {
        // Flat: 256 kept of 10,000 equal tokens hold 2.6% of the mass.
        let logits = vec![1.0f32; 10_000];
        let dist = dist_of(&logits, 256);
        let params = SamplingParams {
            top_k: 0,
            top_p: 0.999,
            min_p: 0.0,
            ..SamplingParams::default()
        };
        assert_eq!(
            resample(&params, &dist, &[], 10_000).unsure,
            Some(Unsure::TopP)
        );
        let hot = SamplingParams {
            temperature: 2.0,
            top_p: 1.0,
            ..params
        };
        assert_eq!(
            resample(&hot, &dist, &[], 10_000).unsure,
            Some(Unsure::Temperature)
        );
    }
}
