//! Link quality of one stream, from what the SFU sees itself.
//!
//! `rtc` 0.21 leaves remote-inbound stats, RTT and NACK/PLI counts at zero, and gives inbound
//! jitter in RTP units (notes trap 6), so quality is computed here: for a stream the SFU
//! receives (a publication's layer) from its packets, as RFC 3550 §6.4.1 and appendices A.3
//! and A.8 do; for a stream it sends (a subscription) from the receiver reports that come back,
//! with the round trip from the report's LSR/DLSR fields (RFC 3550 §6.4.1).
//! Time comes in as arguments, so all of it is tested with virtual time.

use std::time::{Duration, Instant};

/// What one stream's quality was over the last interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QualitySample {
    /// Fraction of packets lost, 0.0 to 1.0.
    pub loss: f32,
    /// Interarrival jitter in milliseconds.
    pub jitter_ms: f32,
    /// Round-trip time, when a receiver report let it be measured.
    pub rtt: Option<Duration>,
    /// Media bits per second (RTP payload and header).
    pub bitrate_bps: u64,
}

/// Statistics of a stream the SFU receives.
#[derive(Debug, Clone)]
pub struct InboundStats {
    clock_rate: u32,
    /// The first extended sequence number seen.
    base_seq: Option<u64>,
    /// The highest extended sequence number seen.
    max_seq: u64,
    received: u64,
    bytes: u64,
    /// `expected` and `received` and `bytes` at the end of the last interval.
    expected_prior: u64,
    received_prior: u64,
    bytes_prior: u64,
    /// RFC 3550 A.8 jitter, in RTP timestamp units.
    jitter: f64,
    /// The last packet's transit time (arrival in RTP units minus its timestamp).
    last_transit: Option<i64>,
    /// Arrival times are measured from here, in RTP units.
    epoch: Option<Instant>,
}

impl InboundStats {
    pub fn new(clock_rate: u32) -> InboundStats {
        InboundStats {
            clock_rate: clock_rate.max(1),
            base_seq: None,
            max_seq: 0,
            received: 0,
            bytes: 0,
            expected_prior: 0,
            received_prior: 0,
            bytes_prior: 0,
            jitter: 0.0,
            last_transit: None,
            epoch: None,
        }
    }

    /// Counts one packet that arrived at `now`.
    pub fn on_packet(&mut self, now: Instant, seq: u16, timestamp: u32, bytes: usize) {
        if self.base_seq.is_none() {
            // Start a cycle up, so a packet reordered before the first one cannot underflow.
            let first = 0x1_0000 | u64::from(seq);
            self.base_seq = Some(first);
            self.max_seq = first;
        } else {
            self.max_seq = self.max_seq.max(extend_seq(self.max_seq, seq));
        }
        self.received += 1;
        self.bytes += bytes as u64;

        // Transit times are compared modulo 2^32 by differences, so wrapping timestamps and an
        // arbitrary epoch are both fine.
        let epoch = *self.epoch.get_or_insert(now);
        let arrival =
            (now.duration_since(epoch).as_secs_f64() * f64::from(self.clock_rate)).round() as i64;
        let transit = arrival.wrapping_sub(i64::from(timestamp));
        if let Some(last) = self.last_transit {
            // A timestamp wrap shows up as a jump of ~2^32; fold it back.
            let mut d = transit.wrapping_sub(last);
            d = ((d + (1 << 31)).rem_euclid(1 << 32)) - (1 << 31);
            self.jitter += (d.unsigned_abs() as f64 - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    pub fn jitter_ms(&self) -> f32 {
        (self.jitter * 1000.0 / f64::from(self.clock_rate)) as f32
    }

    /// Packets lost so far (never negative: duplicates do not count as negative loss here).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    fn expected(&self) -> u64 {
        self.base_seq
            .map_or(0, |base| self.max_seq.saturating_sub(base) + 1)
    }

    /// Quality over the interval that ends now (`elapsed` long), then starts the next one.
    pub fn interval(&mut self, elapsed: Duration) -> QualitySample {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        let bytes_interval = self.bytes - self.bytes_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        self.bytes_prior = self.bytes;
        let loss = if expected_interval == 0 {
            0.0
        } else {
            expected_interval.saturating_sub(received_interval) as f32 / expected_interval as f32
        };
        QualitySample {
            loss,
            jitter_ms: self.jitter_ms(),
            rtt: None,
            bitrate_bps: bits_per_second(bytes_interval, elapsed),
        }
    }
}

/// The extended sequence number of `seq` nearest to `max` (RFC 3550 A.1, without probation).
fn extend_seq(max: u64, seq: u16) -> u64 {
    let cycle = max & !0xffff;
    let candidates = [
        cycle.wrapping_sub(0x1_0000) | u64::from(seq),
        cycle | u64::from(seq),
        (cycle + 0x1_0000) | u64::from(seq),
    ];
    candidates
        .into_iter()
        .filter(|c| *c <= max + 0x8000 && c + 0x8000 >= max)
        .min_by_key(|c| c.abs_diff(max))
        .unwrap_or(cycle | u64::from(seq))
}

fn bits_per_second(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (bytes as f64 * 8.0 / secs) as u64
    }
}

/// Statistics of a stream the SFU sends: counted as it forwards, and what the receiver reports.
#[derive(Debug, Clone, Default)]
pub struct OutboundStats {
    bytes: u64,
    bytes_prior: u64,
    /// The latest report's loss fraction and jitter (ms); none until a report came.
    loss: f32,
    jitter_ms: f32,
    rtt: Option<Duration>,
    /// Retransmissions and keyframes the receiver asked for, in all.
    pub nacks: u64,
    pub keyframe_requests: u64,
}

impl OutboundStats {
    pub fn on_sent(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }

    /// A receiver report block about this stream: `fraction_lost` is the report's 8-bit
    /// fixed-point fraction, `jitter` in RTP units of `clock_rate`.
    pub fn on_report(
        &mut self,
        fraction_lost: u8,
        jitter: u32,
        clock_rate: u32,
        rtt: Option<Duration>,
    ) {
        self.loss = f32::from(fraction_lost) / 256.0;
        self.jitter_ms = (f64::from(jitter) * 1000.0 / f64::from(clock_rate.max(1))) as f32;
        if rtt.is_some() {
            self.rtt = rtt;
        }
    }

    /// The latest round trip its reports gave.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Quality over the interval that ends now (`elapsed` long), then starts the next one.
    pub fn interval(&mut self, elapsed: Duration) -> QualitySample {
        let bytes = self.bytes - self.bytes_prior;
        self.bytes_prior = self.bytes;
        QualitySample {
            loss: self.loss,
            jitter_ms: self.jitter_ms,
            rtt: self.rtt,
            bitrate_bps: bits_per_second(bytes, elapsed),
        }
    }
}

/// The middle 32 bits of the NTP timestamp for `since_unix_epoch` (RFC 3550's "compact" form,
/// in 1/65536 s), as the LSR field of a report carries it.
pub fn ntp_compact(since_unix_epoch: Duration) -> u32 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let secs = since_unix_epoch.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (((secs & 0xffff) << 16) | (frac >> 16)) as u32
}

/// The round trip a report block gives (RFC 3550 §6.4.1): arrival − LSR − DLSR, all in compact
/// NTP. None when the receiver has had no sender report yet (LSR 0) or the clocks make no
/// sense (a negative or implausibly long result).
pub fn round_trip(arrival: u32, last_sr: u32, delay_since_last_sr: u32) -> Option<Duration> {
    if last_sr == 0 {
        return None;
    }
    let rtt = arrival
        .wrapping_sub(last_sr)
        .wrapping_sub(delay_since_last_sr);
    // Above ~60 s it is a wrapped negative: a clock step, not a link.
    if rtt > 60 << 16 {
        return None;
    }
    Some(Duration::from_micros(u64::from(rtt) * 1_000_000 / 65_536))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn steady_stream_has_no_loss_or_jitter() {
        let t0 = Instant::now();
        let mut s = InboundStats::new(48_000);
        for i in 0..50u16 {
            s.on_packet(t0 + MS * 20 * u32::from(i), i, u32::from(i) * 960, 100);
        }
        let q = s.interval(Duration::from_secs(1));
        assert_eq!(q.loss, 0.0);
        assert!(q.jitter_ms < 0.01, "{}", q.jitter_ms);
        assert_eq!(q.bitrate_bps, 50 * 100 * 8);
    }

    #[test]
    fn gaps_count_as_loss_per_interval_and_across_wraps() {
        let t0 = Instant::now();
        let mut s = InboundStats::new(90_000);
        // Ten packets around the sequence wrap, two of them missing.
        let seqs = [65530u16, 65531, 65533, 65534, 65535, 0, 1, 3, 4];
        for (i, seq) in seqs.iter().enumerate() {
            s.on_packet(t0 + MS * i as u32, *seq, i as u32 * 3000, 1000);
        }
        let q = s.interval(Duration::from_secs(1));
        assert_eq!(s.lost(), 2);
        assert!((q.loss - 2.0 / 11.0).abs() < 1e-6, "{}", q.loss);
        // The next interval starts clean; a late (reordered) packet is not negative loss.
        s.on_packet(t0 + MS * 20, 2, 27_000, 1000);
        s.on_packet(t0 + MS * 21, 5, 30_000, 1000);
        let q = s.interval(Duration::from_secs(1));
        assert_eq!(q.loss, 0.0);
        assert_eq!(s.lost(), 1, "only 65532 is still missing");
    }

    #[test]
    fn jitter_follows_irregular_arrival() {
        let t0 = Instant::now();
        let mut s = InboundStats::new(48_000);
        // Sent every 20 ms; arrives alternately 0 and 10 ms late: |D| = 10 ms each time.
        for i in 0..400u32 {
            let late = if i % 2 == 0 { 0 } else { 10 };
            s.on_packet(t0 + MS * (20 * i + late), i as u16, i * 960, 100);
        }
        let j = s.interval(Duration::from_secs(8)).jitter_ms;
        assert!((j - 10.0).abs() < 0.5, "jitter {j} ms");
    }

    #[test]
    fn timestamps_that_wrap_do_not_look_like_jitter() {
        let t0 = Instant::now();
        let mut s = InboundStats::new(90_000);
        let start = u32::MAX - 3000 * 5;
        for i in 0..20u32 {
            s.on_packet(
                t0 + Duration::from_micros(33_333) * i,
                i as u16,
                start.wrapping_add(i * 3000),
                1000,
            );
        }
        assert!(s.jitter_ms() < 0.1, "{}", s.jitter_ms());
    }

    #[test]
    fn round_trip_from_report_fields() {
        let sent = Duration::from_secs(1_800_000_000) + MS * 250;
        let lsr = ntp_compact(sent);
        // The receiver held the report 40 ms; it arrives 190 ms after the SR left.
        let dlsr = (40 * 65_536) / 1000;
        let arrival = ntp_compact(sent + MS * 190);
        let rtt = round_trip(arrival, lsr, dlsr).expect("an rtt");
        assert!(rtt.abs_diff(MS * 150) < MS, "{rtt:?}");
        assert_eq!(round_trip(arrival, 0, dlsr), None, "no SR seen yet");
        assert_eq!(round_trip(lsr, arrival, 0), None, "negative is nonsense");
    }

    #[test]
    fn outbound_reports_and_bitrate() {
        let mut o = OutboundStats::default();
        o.on_sent(1000);
        o.on_sent(1500);
        o.on_report(64, 900, 90_000, Some(MS * 80));
        o.nacks += 3;
        let q = o.interval(Duration::from_millis(500));
        assert_eq!(q.loss, 0.25);
        assert!((q.jitter_ms - 10.0).abs() < 1e-3);
        assert_eq!(q.rtt, Some(MS * 80));
        assert_eq!(q.bitrate_bps, 2500 * 8 * 2);
        // A report without a measurable RTT keeps the last one.
        o.on_report(0, 0, 90_000, None);
        assert_eq!(o.interval(Duration::from_secs(1)).rtt, Some(MS * 80));
    }
}
