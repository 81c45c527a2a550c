//! Failed sign-ins counted per username, so a password cannot be guessed at speed: after
//! [`MAX_FAILURES`] failures within [`WINDOW_SECS`] of the first, that username is refused
//! (`rate_limited`) until the window has passed, right password or not. Unknown usernames are
//! counted the same way, so the answer never tells whether an account exists.
//!
//! Counts live in memory: a restart forgives them, which costs an attacker a restart they
//! cannot cause. The map is bounded; see [`SignInLimiter::failed`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::timestamp::Timestamp;

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_SECS: u64 = 15 * 60;
/// Usernames tracked at once. Far above any school's staff; only a spray of made-up names
/// fills it.
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Timestamp,
}

/// The per-username failure counts. A std mutex fits: no `.await` while it is held, and each
/// critical section is a map lookup.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    failures: Mutex<HashMap<String, Failures>>,
    /// Counts forgotten early because the map was full (see [`SignInLimiter::failed`]).
    evicted: AtomicU64,
}

impl SignInLimiter {
    pub fn new() -> SignInLimiter {
        SignInLimiter::default()
    }

    /// `Err(seconds)` to wait when `username` has used up its failures, else `Ok`.
    pub fn check(&self, username: &str, now: Timestamp) -> Result<(), u64> {
        let map = self.lock();
        match map.get(username) {
            Some(f) if f.count >= MAX_FAILURES => {
                let until = f.first.plus_secs(WINDOW_SECS);
                if until > now {
                    Err(u64::try_from(until.unix() - now.unix()).unwrap_or(WINDOW_SECS))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure. When the map is full, expired windows are dropped first, then the
    /// oldest window, which forgets that username's count early. Evictions are counted and
    /// logged on the first and every thousandth, so a spray of names cannot flood the log.
    pub fn failed(&self, username: &str, now: Timestamp) {
        let mut map = self.lock();
        if let Some(f) = map.get_mut(username) {
            if f.first.plus_secs(WINDOW_SECS) <= now {
                *f = Failures {
                    count: 1,
                    first: now,
                };
            } else {
                f.count = f.count.saturating_add(1);
            }
            return;
        }
        if map.len() >= CAPACITY {
            map.retain(|_, f| f.first.plus_secs(WINDOW_SECS) > now);
        }
        if map.len() >= CAPACITY
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, f)| f.first)
                .map(|(name, _)| name.clone())
        {
            map.remove(&oldest);
            let evicted = self.evicted.fetch_add(1, Ordering::Relaxed) + 1;
            if evicted % 1000 == 1 {
                tracing::warn!(
                    evicted,
                    "sign-in failure table full; forgetting the oldest counts"
                );
            }
        }
        map.insert(
            username.to_owned(),
            Failures {
                count: 1,
                first: now,
            },
        );
    }

    /// How many counts were forgotten early because the map was full.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// A successful sign-in clears the username's count.
    pub fn succeeded(&self, username: &str) {
        self.lock().remove(username);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        // A panic while holding the lock leaves a map of counts that is still consistent.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_passes() {
        let limiter = SignInLimiter::new();
        let t0 = Timestamp::from_unix(1_800_000_000);
        for i in 0..MAX_FAILURES {
            assert!(limiter.check("liwei", t0.plus_secs(u64::from(i))).is_ok());
            limiter.failed("liwei", t0.plus_secs(u64::from(i)));
        }
        assert_eq!(
            limiter.check("liwei", t0.plus_secs(60)),
            Err(WINDOW_SECS - 60)
        );
        assert!(
            limiter.check("zhang", t0.plus_secs(60)).is_ok(),
            "per username"
        );
        assert!(limiter.check("liwei", t0.plus_secs(WINDOW_SECS)).is_ok());
        // A new window starts with the next failure.
        limiter.failed("liwei", t0.plus_secs(WINDOW_SECS));
        assert!(limiter.check("liwei", t0.plus_secs(WINDOW_SECS)).is_ok());
    }

    #[test]
    fn success_clears_and_the_map_stays_bounded() {
        let limiter = SignInLimiter::new();
        let t0 = Timestamp::from_unix(1_800_000_000);
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed("liwei", t0);
        }
        limiter.succeeded("liwei");
        limiter.failed("liwei", t0);
        assert!(limiter.check("liwei", t0).is_ok());

        for i in 0..CAPACITY + 10 {
            limiter.failed(&format!("user{i}"), t0.plus_secs(1));
        }
        assert!(limiter.lock().len() <= CAPACITY);
        assert_eq!(limiter.evicted(), 11, "liwei and the first ten made room");
    }
}
