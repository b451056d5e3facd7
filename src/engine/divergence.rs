//! The full-vocabulary kernels of a comparison: log-sum-exp, top-1 and
//! KL(A‖B) of two logit vectors over the same vocabulary.
//!
//! With `a`, `b` the two models' logits (length = vocabulary size):
//! `lse = log Σ exp(logit)` (the max taken out first), `ln p = logit − lse`,
//! and `KL(A‖B) = Σ_v p_A(v) (ln p_A(v) − ln p_B(v)) = Σ_v p_A(v) (a_v − b_v)
//! − lse_A + lse_B` in nats (the definition llama.cpp's `llama-perplexity
//! --kl-divergence` uses, there in f64 with `exp`).
//!
//! Speed is the point here: a comparison runs these over every position of
//! the text (Gemma 3: 262,144 logits each, for every model). So the passes
//! are written in independent f32 lanes with [`fast_exp`] (relative error
//! about 1e-6, no libm call) so that they vectorize, compiled a second time
//! for AVX2 + FMA and chosen at run time (the binary still runs on any
//! x86-64); each lane's sums go into f64 every 1024 entries. B's log-sum-exp
//! and the KL share one pass over both vectors (two exponentials per entry).

use super::api::TokenId;
use super::probs::{exp_sums, fast_exp, lane_max};

/// Entries per f32 partial sum before it is added into an f64 total.
const CHUNK: usize = 1024;
/// Lanes of the f32 partial sums (one AVX2 register).
const LANES: usize = 8;
/// Entries per block of the max scan.
const BLOCK: usize = 64;

/// Maximum and the index of the largest logit (ties: the lower index; NaN
/// ignored), `(-inf, 0)` for an empty or all-NaN vector.
#[inline(always)]
fn max_argmax(logits: &[f32]) -> (f32, usize) {
    let (mut max, mut top) = (f32::NEG_INFINITY, 0usize);
    for (k, block) in logits.chunks(BLOCK).enumerate() {
        let m = lane_max::<8>(block);
        if m > max {
            max = m;
            top = k * BLOCK + block.iter().position(|&l| l == m).unwrap_or(0);
        }
    }
    (max, top)
}

/// Both models' log-sum-exp and top-1 and KL(A‖B), from one position's two
/// logit vectors: the result of [`pair`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Pair {
    /// A's log-sum-exp, nats.
    pub lse_a: f64,
    /// A's most likely token (ties: lower id).
    pub top_a: TokenId,
    /// B's log-sum-exp, nats.
    pub lse_b: f64,
    /// B's most likely token (ties: lower id).
    pub top_b: TokenId,
    /// KL(A‖B), nats: 0 for equal vectors (to the bit), `+inf` where B rules
    /// out a token A gives probability.
    pub kl: f64,
}

/// [`Pair`] of `a` and `b` (one position's logits over the same vocabulary,
/// same length) in one pass over both vectors: blocks of [`CHUNK`] entries,
/// each block's maximum found while the block is in cache, sums kept
/// relative to the running maximum and rescaled when it rises (the
/// "online softmax" of Milakov & Gimelshein, 2018, per block). Memory
/// bandwidth, not arithmetic, bounds this at large vocabularies, hence one
/// pass instead of a max pass and an exp pass per vector.
pub(super) fn pair(a: &[f32], b: &[f32]) -> Pair {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has been checked for these features.
        return unsafe { pair_avx2(a, b) };
    }
    pair_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pair_avx2(a: &[f32], b: &[f32]) -> Pair {
    pair_portable(a, b)
}

/// Log-sum-exp (nats) and the index of the largest logit (ties: lower id),
/// in a max pass and an exp pass: for rows [`pair`] cannot take.
fn lse_top1(logits: &[f32]) -> (f64, TokenId) {
    let (max, top) = max_argmax(logits);
    if !max.is_finite() {
        return (f64::from(max), top as TokenId);
    }
    let (sum, _) = exp_sums::<8>(logits, max);
    (f64::from(max) + sum.ln(), top as TokenId)
}

/// A running maximum with its index, and sums kept relative to it.
#[derive(Clone, Copy)]
struct Running {
    max: f32,
    top: usize,
}

impl Running {
    const START: Running = Running {
        max: f32::NEG_INFINITY,
        top: 0,
    };

    /// Takes in a block starting at `start`; returns the factor the sums
    /// kept so far must be multiplied by (1 when the maximum stays).
    #[inline(always)]
    fn offer(&mut self, block: &[f32], start: usize) -> f64 {
        let m = lane_max::<8>(block);
        if m <= self.max {
            return 1.0;
        }
        let old = self.max;
        self.max = m;
        self.top = start + block.iter().position(|&l| l == m).unwrap_or(0);
        if old.is_finite() {
            (f64::from(old) - f64::from(m)).exp()
        } else {
            1.0
        }
    }

    /// The maximum to take exponentials against: a block of only -inf (or
    /// NaN) so far contributes nothing through the -100 floor.
    #[inline(always)]
    fn shift(&self) -> f32 {
        if self.max.is_finite() { self.max } else { 0.0 }
    }
}

#[inline(always)]
fn pair_portable(a: &[f32], b: &[f32]) -> Pair {
    let (mut ra, mut rb) = (Running::START, Running::START);
    // Σ e^(a − max_a), Σ e^(b − max_b), Σ e^(a − max_a)·(a − b).
    let (mut sa, mut sb, mut w) = (0f64, 0f64, 0f64);
    for (k, (ca, cb)) in a.chunks(CHUNK).zip(b.chunks(CHUNK)).enumerate() {
        let fa = ra.offer(ca, k * CHUNK);
        if fa != 1.0 {
            sa *= fa;
            // An infinite term stays infinite (0·inf would be NaN).
            if w.is_finite() {
                w *= fa;
            }
        }
        sb *= rb.offer(cb, k * CHUNK);
        let (ma, mb) = (ra.shift(), rb.shift());
        let mut lsa = [0f32; LANES];
        let mut lsb = [0f32; LANES];
        let mut lw = [0f32; LANES];
        let mut ga = ca.chunks_exact(LANES);
        let mut gb = cb.chunks_exact(LANES);
        for (x, y) in (&mut ga).zip(&mut gb) {
            for j in 0..LANES {
                let (ea, eb, pw) = term(x[j], y[j], ma, mb);
                lsa[j] += ea;
                lsb[j] += eb;
                lw[j] += pw;
            }
        }
        for (&x, &y) in ga.remainder().iter().zip(gb.remainder()) {
            let (ea, eb, pw) = term(x, y, ma, mb);
            lsa[0] += ea;
            lsb[0] += eb;
            lw[0] += pw;
        }
        sa += lsa.iter().map(|&v| f64::from(v)).sum::<f64>();
        sb += lsb.iter().map(|&v| f64::from(v)).sum::<f64>();
        w += lw.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    if !ra.max.is_finite() || !rb.max.is_finite() {
        // Degenerate rows (all -inf, or an infinite logit): the textbook
        // form decides, slowly, as it is never a real model's output.
        let (lse_a, top_a) = lse_top1(a);
        let (lse_b, top_b) = lse_top1(b);
        return Pair {
            lse_a,
            top_a,
            lse_b,
            top_b,
            kl: kl_f64(a, lse_a, b, lse_b),
        };
    }
    let lse_a = f64::from(ra.max) + sa.ln();
    let lse_b = f64::from(rb.max) + sb.ln();
    Pair {
        lse_a,
        top_a: ra.top as TokenId,
        lse_b,
        top_b: rb.top as TokenId,
        // Rounding can take an exact 0 a hair below it.
        kl: (w / sa - lse_a + lse_b).max(0.0),
    }
}

/// One vocabulary entry: `(e^(a − ma), e^(b − mb), e^(a − ma)·(a − b))`.
/// A's term below e^-100 counts as 0 (so `-inf − -inf` never makes a NaN).
#[inline(always)]
fn term(x: f32, y: f32, ma: f32, mb: f32) -> (f32, f32, f32) {
    // max(-100) also turns NaN and -inf into "practically zero".
    let la = (x - ma).max(-100.0);
    let ea = fast_exp(la);
    let eb = fast_exp((y - mb).max(-100.0));
    let d = if la > -100.0 { x - y } else { 0.0 };
    (ea, eb, ea * d)
}

/// KL(A‖B) from the definition, in f64 with libm's `exp`: the reference the
/// fast pass is tested against, and the path for degenerate rows.
pub(super) fn kl_f64(a: &[f32], lse_a: f64, b: &[f32], lse_b: f64) -> f64 {
    let mut s = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        let la = f64::from(x) - lse_a;
        let p = la.exp();
        if p > 0.0 {
            s += p * (la - (f64::from(y) - lse_b));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lse_f64(v: &[f32]) -> f64 {
        let m = v
            .iter()
            .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
        m + v
            .iter()
            .map(|&x| (f64::from(x) - m).exp())
            .sum::<f64>()
            .ln()
    }

    fn noise(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }

    /// Logit-like vectors (uniform over ±spread) and a perturbed copy.
    fn vectors(n: usize, spread: f32, jitter: f32, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut s = seed;
        let a: Vec<f32> = (0..n).map(|_| noise(&mut s) * spread).collect();
        let b = a.iter().map(|x| x + noise(&mut s) * jitter).collect();
        (a, b)
    }

    use super::super::kv_cost::argmax;

    #[test]
    fn pair_matches_the_f64_definitions() {
        // Sizes that are not multiples of the lanes or the block; a rising
        // maximum (rescaling) in the ramp.
        for (n, spread, jitter) in [(5000, 10.0, 1.0), (49_157, 15.0, 0.3), (262_144, 15.0, 2.0)] {
            let (mut a, mut b) = vectors(n, spread, jitter, n as u64);
            for (i, (x, y)) in a.iter_mut().zip(b.iter_mut()).enumerate().step_by(997) {
                *x += i as f32 * 1e-3;
                *y += i as f32 * 2e-3;
            }
            let p = pair(&a, &b);
            let (la, lb) = (lse_f64(&a), lse_f64(&b));
            let exact = kl_f64(&a, la, &b, lb);
            assert!((p.lse_a - la).abs() < 1e-5, "lse_a {} vs {la}", p.lse_a);
            assert!((p.lse_b - lb).abs() < 1e-5, "lse_b {} vs {lb}", p.lse_b);
            assert_eq!((p.top_a, p.top_b), (argmax(&a), argmax(&b)));
            assert!(exact > 1e-4, "the vectors must differ: {exact}");
            assert!(
                (p.kl - exact).abs() < 1e-4 * exact + 1e-6,
                "n {n}: fast {} vs exact {exact}",
                p.kl
            );
        }
    }

    #[test]
    fn equal_vectors_give_exactly_zero_and_the_same_lse() {
        let (a, _) = vectors(100_003, 12.0, 0.0, 3);
        let p = pair(&a, &a);
        assert_eq!((p.lse_a, p.top_a), (p.lse_b, p.top_b));
        assert_eq!(p.kl, 0.0);
    }

    #[test]
    fn top1_is_the_first_largest_logit() {
        let mut v = vec![0.0f32; 3000];
        v[1700] = 5.0;
        v[2900] = 5.0;
        v[3] = f32::NAN;
        assert_eq!(pair(&v, &v).top_a, 1700);
        // In the same block, and at the very end.
        v[65] = 9.0;
        v[66] = 9.0;
        assert_eq!(pair(&v, &v).top_b, 65);
        v[2999] = 9.5;
        assert_eq!(pair(&v, &v).top_a, 2999);
    }

    #[test]
    fn masked_tokens_and_degenerate_rows() {
        // -inf in both (a masked token), also a whole block of them first:
        // no NaN, the same KL as without them.
        let (a0, b0) = vectors(4096, 8.0, 0.5, 9);
        let base = pair(&a0, &b0).kl;
        let masked = vec![f32::NEG_INFINITY; 2048];
        let a: Vec<f32> = masked.iter().chain(&a0).copied().collect();
        let mut b: Vec<f32> = masked.iter().chain(&b0).copied().collect();
        let with = pair(&a, &b).kl;
        assert!(
            with.is_finite() && (with - base).abs() < 1e-9,
            "{with} vs {base}"
        );
        // B rules out a token A gives probability: infinite divergence.
        b[3000] = f32::NEG_INFINITY;
        assert_eq!(pair(&a, &b).kl, f64::INFINITY);
        // All -inf: lse -inf, no panic; an infinite logit: no panic.
        let dead = vec![f32::NEG_INFINITY; 10];
        assert_eq!(pair(&dead, &dead).lse_a, f64::NEG_INFINITY);
        let mut hot = vec![0.0f32; 10];
        hot[4] = f32::INFINITY;
        assert_eq!(pair(&hot, &hot).top_a, 4);
    }

    /// `cargo test --release --lib pair_speed -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn pair_speed() {
        let (a, b) = vectors(262_144, 15.0, 1.0, 1);
        let t = std::time::Instant::now();
        let mut s = 0.0;
        for _ in 0..100 {
            s += pair(&a, &b).kl;
        }
        eprintln!(
            "pair, 262,144 logits: {:?} per call ({s})",
            t.elapsed() / 100
        );
    }
}
