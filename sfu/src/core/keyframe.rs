//! Keyframe-request throttling and VP8 keyframe detection.

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

/// Whether a VP8 RTP payload (RFC 7741) starts a keyframe: the first packet of a frame
/// (S bit set, partition 0) whose VP8 payload header has the P bit clear.
pub fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x0f;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&ext) = payload.get(at) else {
            return false;
        };
        at += 1;
        if ext & 0x80 != 0 {
            // PictureID: 15 bits when its first byte has M set, else 7 bits.
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            at += 1; // TID / KEYIDX
        }
    }
    match payload.get(at) {
        Some(header) => header & 0x01 == 0,
        None => false,
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

    #[test]
    fn detects_vp8_keyframes() {
        // Minimal descriptor (S=1, PID=0), then a key frame header (P=0).
        assert!(vp8_starts_keyframe(&[
            0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a
        ]));
        // Delta frame (P=1).
        assert!(!vp8_starts_keyframe(&[0x10, 0x11]));
        // Not the start of a partition.
        assert!(!vp8_starts_keyframe(&[0x00, 0x10]));
        // Extended descriptor with a 15-bit PictureID, TL0PICIDX and TID/KEYIDX.
        assert!(vp8_starts_keyframe(&[
            0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x50
        ]));
        assert!(!vp8_starts_keyframe(&[
            0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x51
        ]));
        // Truncated payloads are never keyframes.
        assert!(!vp8_starts_keyframe(&[]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80]));
    }
}
