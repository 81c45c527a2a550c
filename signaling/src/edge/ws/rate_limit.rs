//! Incoming messages per connection, limited by a token bucket; time is passed in, so it is
//! tested without a clock.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket over incoming messages: `rate` per second sustained, bursts of `2 × rate`.
/// Time is passed in, so it is tested without a clock.
pub(super) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// When the client was last told it is being limited; once a second is enough.
    last_told: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Allow,
    Drop,
    DropAndTell,
}

impl RateLimit {
    pub(super) fn new(per_second: u32, now: Instant) -> RateLimit {
        let rate = f64::from(per_second);
        RateLimit {
            rate,
            burst: rate * 2.0,
            tokens: rate * 2.0,
            last: now,
            last_told: None,
        }
    }

    pub(super) fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        match self.last_told {
            Some(t) if now.saturating_duration_since(t) < Duration::from_secs(1) => Verdict::Drop,
            _ => {
                self.last_told = Some(now);
                Verdict::DropAndTell
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_bursts_then_refills() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(10, t0);
        for _ in 0..20 {
            assert_eq!(limit.check(t0), Verdict::Allow);
        }
        assert_eq!(limit.check(t0), Verdict::DropAndTell);
        assert_eq!(limit.check(t0), Verdict::Drop); // told once a second at most
        let t1 = t0 + Duration::from_millis(500); // five tokens back
        for _ in 0..5 {
            assert_eq!(limit.check(t1), Verdict::Allow);
        }
        assert_eq!(limit.check(t1), Verdict::Drop);
        assert_eq!(
            limit.check(t0 + Duration::from_millis(1600)),
            Verdict::Allow
        );
    }
}
