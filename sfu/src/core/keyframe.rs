//! Keyframe-request throttling.

use std::time::{Duration, Instant};

/// Lets at most one keyframe request through per `interval` for one publication.
///
/// When many classrooms join or lose packets at once, each asks for a keyframe; the publisher
/// needs only one, and a storm of them makes its encoder spend the link on keyframes. A request
/// that arrives while the gate is shut is remembered, so the caller can send it once the gate
/// reopens instead of losing it (a late joiner must still get its keyframe).
#[derive(Debug, Clone)]
pub struct KeyframeGate {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeGate {
    pub fn new(interval: Duration) -> Self {
        KeyframeGate {
            interval,
            last_sent: None,
            pending: false,
        }
    }

    /// Asks to send a request now. Returns true when it may go out; otherwise it is coalesced
    /// into one pending request, due at [`KeyframeGate::due_at`].
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// When a coalesced request becomes due, if one is pending.
    pub fn due_at(&self) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(last)) => Some(last + self.interval),
            _ => None,
        }
    }

    /// Releases a pending request whose time has come. Returns true when one should be sent.
    pub fn poll_pending(&mut self, now: Instant) -> bool {
        match self.due_at() {
            Some(due) if now >= due => self.allow(now),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_coalesces_within_interval_and_releases_pending() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::new(Duration::from_millis(500));
        assert!(gate.allow(t0));
        assert_eq!(gate.due_at(), None);
        assert!(!gate.allow(t0 + Duration::from_millis(100)));
        assert!(!gate.allow(t0 + Duration::from_millis(200)));
        assert_eq!(gate.due_at(), Some(t0 + Duration::from_millis(500)));
        assert!(!gate.poll_pending(t0 + Duration::from_millis(499)));
        assert!(gate.poll_pending(t0 + Duration::from_millis(500)));
        assert_eq!(gate.due_at(), None, "the pending request went out once");
        assert!(gate.allow(t0 + Duration::from_millis(1100)));
    }
}
