//! The numbers of the reply under way, for the status bar: its time to the
//! first token and its speed, measured as its events arrive (the engine's own
//! numbers, [`crate::engine::Stats`], replace them when it ends). No I/O: the
//! times are [`super::state::Session::clock`], which the loop sets as each
//! message arrives.

use std::time::{Duration, Instant};

/// Times of one reply under way. Time spent paused (step mode, waiting for
/// the user) is left out, as the engine leaves it out of its own numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStats {
    /// When the request was sent.
    sent: Instant,
    /// When its first token arrived.
    first: Option<Instant>,
    /// When its latest token arrived.
    last: Option<Instant>,
    /// Tokens that arrived for this request.
    n_tokens: usize,
    /// Paused before the first token, and since it.
    paused_before: Duration,
    paused_after: Duration,
    /// Paused now, since then.
    paused_since: Option<Instant>,
}

impl LiveStats {
    /// A request sent at `sent`.
    pub fn new(sent: Instant) -> Self {
        Self {
            sent,
            first: None,
            last: None,
            n_tokens: 0,
            paused_before: Duration::ZERO,
            paused_after: Duration::ZERO,
            paused_since: None,
        }
    }

    /// A token arrived at `now`.
    pub fn token(&mut self, now: Instant) {
        self.resume(now);
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.n_tokens += 1;
    }

    /// The reply paused at `now` (step mode: it waits for the user).
    pub fn pause(&mut self, now: Instant) {
        self.paused_since.get_or_insert(now);
    }

    /// The reply goes on at `now` (the user stepped, forced or ran on).
    pub fn resume(&mut self, now: Instant) {
        if let Some(since) = self.paused_since.take() {
            let d = now.saturating_duration_since(since);
            if self.first.is_some() {
                self.paused_after += d;
            } else {
                self.paused_before += d;
            }
        }
    }

    /// Milliseconds from the request to its first token, time paused left
    /// out; `None` before a token came.
    pub fn ttft_ms(&self) -> Option<f64> {
        let first = self.first?;
        let d = first
            .saturating_duration_since(self.sent)
            .saturating_sub(self.paused_before);
        Some(d.as_secs_f64() * 1000.0)
    }

    /// Tokens per second since the first token (the pace between tokens,
    /// time paused left out); `None` before two tokens came.
    pub fn tokens_per_s(&self) -> Option<f64> {
        let (first, last) = (self.first?, self.last?);
        let d = last
            .saturating_duration_since(first)
            .saturating_sub(self.paused_after)
            .as_secs_f64();
        (self.n_tokens >= 2 && d > 0.0).then(|| (self.n_tokens - 1) as f64 / d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn numbers_exist_once_their_tokens_came() {
        let t0 = Instant::now();
        let mut l = LiveStats::new(t0);
        assert_eq!((l.ttft_ms(), l.tokens_per_s()), (None, None));
        l.token(t0 + ms(343));
        assert_eq!(l.ttft_ms(), Some(343.0));
        assert_eq!(l.tokens_per_s(), None, "one token gives no pace");
        l.token(t0 + ms(443));
        l.token(t0 + ms(543));
        assert!((l.tokens_per_s().unwrap() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn time_paused_is_left_out() {
        let t0 = Instant::now();
        let mut l = LiveStats::new(t0);
        // Step mode: paused after the prefill (100 ms), the user steps 5 s later.
        l.pause(t0 + ms(100));
        l.resume(t0 + ms(5100));
        l.token(t0 + ms(5150));
        assert_eq!(l.ttft_ms(), Some(150.0));
        l.pause(t0 + ms(5150));
        l.resume(t0 + ms(9000));
        l.token(t0 + ms(9050));
        assert!((l.tokens_per_s().unwrap() - 20.0).abs() < 1e-9);
    }
}
