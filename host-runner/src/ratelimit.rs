//! Token buckets for the global and per-namespace query rate limits, and the retry
//! backoff.

use std::sync::Mutex;
use std::time::Duration;

use rand::RngExt as _;
use tokio::time::Instant;

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token if one is available now; otherwise returns how long until one is.
    pub fn try_take(&self, now: Instant) -> Result<(), Duration> {
        let Ok(mut st) = self.state.lock() else {
            return Ok(());
        };
        let (tokens, last) = *st;
        let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
        let tokens = (tokens + refill).min(self.burst);
        if tokens >= 1.0 {
            *st = (tokens - 1.0, now);
            Ok(())
        } else {
            *st = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }

    /// Waits for a token until `give_up`; `false` when none came in time.
    pub async fn take(&self, give_up: Instant) -> bool {
        loop {
            let now = Instant::now();
            match self.try_take(now) {
                Ok(()) => return true,
                Err(wait) => {
                    if now + wait > give_up {
                        return false;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Exponential backoff with full jitter: a random delay in `[0, min(max, base·2^attempt)]`,
/// at least 1 ms. `attempt` counts from 0.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let cap = base
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(max);
    let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(1..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_paces() {
        let b = TokenBucket::new(10.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.try_take(t0).is_ok());
        }
        let wait = b.try_take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(b.try_take(t0 + Duration::from_millis(100)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        let base = Duration::from_millis(50);
        let max = Duration::from_millis(400);
        for attempt in 0..10 {
            let d = backoff(base, max, attempt);
            let cap = (50u64 << attempt.min(20)).min(400);
            assert!(
                d >= Duration::from_millis(1) && d <= Duration::from_millis(cap),
                "{d:?}"
            );
        }
    }
}
