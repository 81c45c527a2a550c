//! Freezes: the times a subscriber's picture stood still although it wanted one.
//!
//! The SFU cannot see a subscriber's screen, but it knows the two ways a picture stops: the
//! subscriber's decoder lost the stream (it asks for a keyframe, PLI/FIR, because
//! retransmission could not repair a loss), or the layer it was receiving stopped arriving
//! (the publisher dropped it) before another could start. Either way the picture stands until
//! the SFU forwards the subscriber a keyframe. A pause the subscriber or its link chose
//! (audio-only) is not a freeze: the page shows it as a pause.

use std::time::{Duration, Instant};

/// Freeze counts of one video subscription, since it began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freezes {
    /// Freezes that began, the one going on included.
    pub count: u64,
    /// Time frozen in all, up to the instant asked about.
    pub frozen: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct FreezeMeter {
    /// The picture has stood still since this instant.
    since: Option<Instant>,
    ended: Freezes,
}

impl FreezeMeter {
    /// The picture stopped (a repeated stop while frozen is the same freeze).
    pub fn stop(&mut self, now: Instant) {
        if self.since.is_none() {
            self.since = Some(now);
            self.ended.count += 1;
        }
    }

    /// The picture moves again (a keyframe was forwarded), or is no longer wanted.
    pub fn resume(&mut self, now: Instant) {
        if let Some(since) = self.since.take() {
            self.ended.frozen += now.saturating_duration_since(since);
        }
    }

    pub fn totals(&self, now: Instant) -> Freezes {
        let ongoing = self
            .since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        Freezes {
            count: self.ended.count,
            frozen: self.ended.frozen + ongoing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freeze_lasts_from_the_stop_to_the_next_picture() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut meter = FreezeMeter::default();
        assert_eq!(meter.totals(t0), Freezes::default());
        meter.stop(ms(100));
        // Asked again while still frozen: one freeze.
        meter.stop(ms(200));
        assert_eq!(
            meter.totals(ms(300)),
            Freezes {
                count: 1,
                frozen: Duration::from_millis(200)
            }
        );
        meter.resume(ms(400));
        meter.resume(ms(900));
        assert_eq!(meter.totals(ms(950)).frozen, Duration::from_millis(300));
        meter.stop(ms(1000));
        meter.resume(ms(1050));
        assert_eq!(
            meter.totals(ms(5000)),
            Freezes {
                count: 2,
                frozen: Duration::from_millis(350)
            }
        );
    }
}
