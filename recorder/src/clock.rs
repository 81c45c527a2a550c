//! Maps one track's RTP timestamps onto the recording's media clock.
//!
//! Media time is microseconds since the recording started. A track is anchored by arrival
//! time: each packet implies an offset `arrival - rtp_elapsed`; the smallest offset seen is
//! the least-delayed packet, so it is the best estimate of when media was captured. The
//! anchor follows that minimum over 2-second windows, which corrects a first packet that
//! arrived late and slow drift between the sender's clock and ours. Audio and video of one
//! sender are mapped the same way, so they stay in sync within the network jitter.

/// How far the windowed minimum may drift from the anchor before the anchor moves.
const TOLERANCE_US: i64 = 30_000;
/// A jump this large is a discontinuity (a restarted stream), not drift: re-anchor at once.
const DISCONTINUITY_US: i64 = 5_000_000;
const WINDOW_US: i64 = 2_000_000;

#[derive(Debug)]
pub(crate) struct TrackClock {
    clock_rate: i64,
    anchor: Option<Anchor>,
    highest_ts: i64,
    window_start_us: i64,
    window_min: i64,
    pub resyncs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// Extended RTP timestamp at the anchor.
    ts: i64,
    /// Media time of the anchor timestamp.
    offset_us: i64,
}

impl TrackClock {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: i64::from(clock_rate.max(1)),
            anchor: None,
            highest_ts: 0,
            window_start_us: 0,
            window_min: i64::MAX,
            resyncs: 0,
        }
    }

    /// Extends a 32-bit RTP timestamp to the value closest to the highest seen.
    pub fn extend(&self, ts: u32) -> i64 {
        if self.anchor.is_none() {
            return i64::from(ts);
        }
        let base = self.highest_ts & !0xFFFF_FFFF;
        [base - (1 << 32), base, base + (1 << 32)]
            .map(|b| b | i64::from(ts))
            .into_iter()
            .min_by_key(|c| c.abs_diff(self.highest_ts))
            .unwrap_or(i64::from(ts))
    }

    fn elapsed_us(&self, ext_ts: i64, anchor_ts: i64) -> i64 {
        (ext_ts - anchor_ts) * 1_000_000 / self.clock_rate
    }

    /// Media time (µs) of the packet with RTP timestamp `ts` that arrived at media time
    /// `arrival_us`. Also returns the extended timestamp.
    pub fn map(&mut self, ts: u32, arrival_us: i64) -> (i64, i64) {
        let ext = self.extend(ts);
        let anchor = *self.anchor.get_or_insert(Anchor {
            ts: ext,
            offset_us: arrival_us,
        });
        if self.window_min == i64::MAX {
            self.window_start_us = arrival_us;
        }
        self.highest_ts = self.highest_ts.max(ext);
        let rtp_us = self.elapsed_us(ext, anchor.ts);
        let offset = arrival_us - rtp_us;
        if (offset - anchor.offset_us).abs() > DISCONTINUITY_US {
            self.reanchor(ext, arrival_us);
            return (arrival_us, ext);
        }
        self.window_min = self.window_min.min(offset);
        if arrival_us - self.window_start_us >= WINDOW_US {
            if (self.window_min - anchor.offset_us).abs() > TOLERANCE_US {
                self.resyncs += 1;
                if let Some(a) = self.anchor.as_mut() {
                    a.offset_us = self.window_min;
                }
            }
            self.window_min = i64::MAX;
        }
        let offset_us = self.anchor.map_or(anchor.offset_us, |a| a.offset_us);
        (offset_us + rtp_us, ext)
    }

    fn reanchor(&mut self, ext: i64, arrival_us: i64) {
        self.resyncs += 1;
        self.anchor = Some(Anchor {
            ts: ext,
            offset_us: arrival_us,
        });
        self.highest_ts = ext;
        self.window_min = i64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_time_follows_the_first_arrival() {
        let mut c = TrackClock::new(90_000);
        assert_eq!(c.map(1000, 500_000).0, 500_000);
        assert_eq!(c.map(1000 + 9000, 610_000).0, 600_000);
    }

    #[test]
    fn a_late_first_packet_is_corrected_within_a_window() {
        let mut c = TrackClock::new(48_000);
        // The first packet was delayed by 80 ms; the others arrive on time.
        assert_eq!(c.map(0, 80_000).0, 80_000);
        let mut t = 0;
        for i in 1..=150 {
            t = c.map(i * 960, i64::from(i) * 20_000).0;
        }
        assert_eq!(t, 150 * 20_000, "anchor moved to the least-delayed packet");
        assert_eq!(c.resyncs, 1);
    }

    #[test]
    fn timestamps_wrap() {
        let mut c = TrackClock::new(90_000);
        c.map(u32::MAX - 8999, 0);
        assert_eq!(c.map(0, 100_000).0, 100_000);
    }

    #[test]
    fn a_jump_is_a_discontinuity() {
        let mut c = TrackClock::new(90_000);
        c.map(0, 0);
        assert_eq!(c.map(90_000 * 100, 1_000_000).0, 1_000_000);
        assert_eq!(c.resyncs, 1);
    }
}
