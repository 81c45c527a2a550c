//! What bots measure and how a run is summed up.
//!
//! - [`TrackStats`] — one subscriber's view of one received track: packets, bytes, first packet
//!   and first keyframe, the publisher's counter (gaps, late and duplicate packets), payload
//!   integrity, forward latency, and what a viewer would have got ([`crate::playout`]): frames
//!   decoded, which simulcast layer, gaps and freezes. Updated per packet by the track's reader.
//! - [`LatencyHistogram`] — a fixed-size log-linear histogram (about 3 % resolution), so a long
//!   run never grows memory.
//! - [`FanoutReport`] — the load run's summary: a readable table and one JSON line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;
use signaling::protocol::{Layer, MediaKind};

use crate::media::{self, Checked, Corrupt};
use crate::playout::{FrameAssembler, Piece, Playout, PlayoutSummary};
use crate::publisher::PublisherSnapshot;

/// Values below this are kept exactly; above, 32 buckets per power of two.
const LINEAR: u64 = 64;
const BUCKETS: usize = 32 * 59 + 64;

/// A histogram of µs values with bounded memory.
#[derive(Clone)]
pub struct LatencyHistogram {
    counts: Box<[u64]>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.total)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max)
            .finish()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros());
    let shift = exp - 5;
    let mantissa = (v >> shift) as usize; // 32..=63
    32 * shift as usize + mantissa
}

/// The smallest value that lands in `bucket`.
fn bucket_floor(bucket: usize) -> u64 {
    if bucket < LINEAR as usize {
        return bucket as u64;
    }
    let shift = bucket / 32 - 1;
    let mantissa = (bucket % 32 + 32) as u64;
    mantissa << shift
}

impl LatencyHistogram {
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.sum += u128::from(value);
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The value below which a fraction `q` of the samples lie (the bucket's lower bound,
    /// capped by the largest sample). `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_floor(bucket).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// How many counters behind the highest one a late packet can still be told from a duplicate.
const WINDOW: u64 = 1024;

/// Layer changes kept in [`TrackStats::layer_log`]; older ones are dropped first.
const LAYER_LOG: usize = 256;

/// One subscriber's record of one received track.
///
/// The publisher counts packets per stream, and a simulcast publication is one stream per
/// layer, so counters are accounted per run of one layer: when packets of another layer
/// arrive (the SFU switched), the run so far is closed into [`TrackStats::expected`] and a new
/// one starts.
#[derive(Debug, Clone)]
pub struct TrackStats {
    /// The transceiver's mid on the subscriber connection.
    pub mid: String,
    pub kind: MediaKind,
    /// Packets with a payload (duplicates included; padding-only packets excluded).
    pub packets: u64,
    /// Payload bytes of those packets.
    pub bytes: u64,
    /// Packets without payload (padding, probes).
    pub padding: u64,
    pub first_packet_at: Option<Instant>,
    /// The first packet that starts a keyframe (video only).
    pub first_keyframe_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    /// Keyframes started.
    pub keyframes: u64,
    /// The lowest and highest publisher counters seen in the current run of one layer.
    pub first_counter: Option<u64>,
    pub highest_counter: Option<u64>,
    /// Distinct counters received, over all runs.
    pub unique: u64,
    /// Packets that arrived after one with a higher counter (reordered or retransmitted).
    pub late: u64,
    pub duplicates: u64,
    /// Payloads that failed the check, and the last reason.
    pub corrupted: u64,
    pub last_corruption: Option<Corrupt>,
    /// Forward latency (publisher send → subscriber receive), µs.
    pub latency: LatencyHistogram,
    /// Width and height in the last keyframe's header.
    pub frame_size: Option<(u16, u16)>,
    /// Video frames a decoder could have shown.
    pub frames_decoded: u64,
    /// The simulcast layer of the last decoded frame (`None` without simulcast, and for audio).
    pub layer: Option<Layer>,
    /// When the decoded layer changed, and to what, oldest first (the first decoded frame
    /// included); the last [`LAYER_LOG`] changes.
    pub layer_log: VecDeque<(Instant, Option<Layer>)>,
    /// Video: frames out of packets.
    pub frames: FrameAssembler,
    /// Gaps between decoded frames (video) or received packets (audio), per window.
    pub playout: Playout,
    /// Which of the last [`WINDOW`] counters were seen, as a ring of bits.
    seen: Box<[u64; (WINDOW / 64) as usize]>,
    /// The layer of the current run of counters.
    run_layer: Option<Layer>,
    /// Counters expected in runs already closed.
    closed_expected: u64,
}

impl TrackStats {
    pub fn new(mid: String, kind: MediaKind) -> Self {
        TrackStats {
            mid,
            kind,
            packets: 0,
            bytes: 0,
            padding: 0,
            first_packet_at: None,
            first_keyframe_at: None,
            last_packet_at: None,
            keyframes: 0,
            first_counter: None,
            highest_counter: None,
            unique: 0,
            late: 0,
            duplicates: 0,
            corrupted: 0,
            last_corruption: None,
            latency: LatencyHistogram::default(),
            frame_size: None,
            frames_decoded: 0,
            layer: None,
            layer_log: VecDeque::new(),
            frames: FrameAssembler::default(),
            playout: Playout::default(),
            seen: Box::new([0; (WINDOW / 64) as usize]),
            run_layer: None,
            closed_expected: 0,
        }
    }

    /// Records one received RTP packet: its sequence number and marker bit (as the SFU sent
    /// them) and its payload.
    pub fn record(&mut self, now: Instant, now_us: u64, seq: u16, marker: bool, payload: &[u8]) {
        if payload.is_empty() {
            self.padding += 1;
            return;
        }
        self.packets += 1;
        self.bytes += payload.len() as u64;
        self.first_packet_at.get_or_insert(now);
        self.last_packet_at = Some(now);
        let checked = match self.kind {
            MediaKind::Audio => media::check_opus(payload),
            MediaKind::Video => media::check_vp8(payload),
        };
        match checked {
            Ok(checked) => {
                let new = self.record_checked(now, now_us, checked);
                match self.kind {
                    MediaKind::Audio if new => self.playout.event(now),
                    MediaKind::Audio => {}
                    MediaKind::Video => self.assemble(now, seq, marker, checked),
                }
            }
            Err(reason) => {
                self.corrupted += 1;
                self.last_corruption = Some(reason);
            }
        }
    }

    fn assemble(&mut self, now: Instant, seq: u16, marker: bool, checked: Checked) {
        let piece = Piece {
            frame_start: checked.frame_start,
            keyframe: checked.keyframe,
            marker,
            layer: checked.tag.layer,
        };
        for frame in self.frames.push(now, seq, piece) {
            self.frames_decoded += 1;
            self.playout.event(now);
            if self.frames_decoded == 1 || frame.layer != self.layer {
                self.layer = frame.layer;
                if self.layer_log.len() == LAYER_LOG {
                    self.layer_log.pop_front();
                }
                self.layer_log.push_back((now, frame.layer));
            }
        }
    }

    /// Counts a checked payload; false for a duplicate.
    fn record_checked(&mut self, now: Instant, now_us: u64, checked: Checked) -> bool {
        if checked.keyframe {
            self.keyframes += 1;
            self.first_keyframe_at.get_or_insert(now);
            self.frame_size = checked.keyframe_size.or(self.frame_size);
        }
        self.latency
            .record(now_us.saturating_sub(checked.tag.sent_at_us));
        if checked.tag.layer != self.run_layer {
            // Another layer's counters: close this run (see the type's docs).
            self.closed_expected += self.run_expected();
            self.first_counter = None;
            self.highest_counter = None;
            self.seen.fill(0);
            self.run_layer = checked.tag.layer;
        }
        let c = checked.tag.counter;
        let Some(highest) = self.highest_counter else {
            self.first_counter = Some(c);
            self.highest_counter = Some(c);
            self.unique += 1;
            self.mark(c);
            return true;
        };
        if c > highest {
            if c - highest >= WINDOW {
                self.seen.fill(0);
            } else {
                for skipped in highest + 1..c {
                    self.unmark(skipped);
                }
            }
            self.mark(c);
            self.highest_counter = Some(c);
            self.unique += 1;
        } else if highest - c >= WINDOW {
            // Too old to tell; a loopback run never gets here.
            self.late += 1;
        } else if self.is_marked(c) {
            self.duplicates += 1;
            return false;
        } else {
            self.mark(c);
            self.late += 1;
            self.unique += 1;
            if self.first_counter.is_some_and(|first| c < first) {
                self.first_counter = Some(c);
            }
        }
        true
    }

    fn mark(&mut self, c: u64) {
        let i = (c % WINDOW) as usize;
        self.seen[i / 64] |= 1 << (i % 64);
    }

    fn unmark(&mut self, c: u64) {
        let i = (c % WINDOW) as usize;
        self.seen[i / 64] &= !(1 << (i % 64));
    }

    fn is_marked(&self, c: u64) -> bool {
        let i = (c % WINDOW) as usize;
        self.seen[i / 64] & (1 << (i % 64)) != 0
    }

    fn run_expected(&self) -> u64 {
        match (self.first_counter, self.highest_counter) {
            (Some(first), Some(highest)) => highest - first + 1,
            _ => 0,
        }
    }

    /// Counters from the first to the highest seen, summed over the runs of one layer.
    pub fn expected(&self) -> u64 {
        self.closed_expected + self.run_expected()
    }

    /// How long received video has waited without a decodable frame (`None`: nothing waits).
    pub fn stalled_for(&self, now: Instant) -> Option<Duration> {
        self.frames.stalled_for(now)
    }

    /// Starts a new measuring window for [`TrackStats::window`].
    pub fn restart_window(&mut self, now: Instant) {
        self.playout.restart(now);
    }

    /// Gaps and freezes since the window started (or the first packet) up to `now`.
    pub fn window(&self, now: Instant) -> PlayoutSummary {
        self.playout.summary(now)
    }

    /// Counters in that range never received.
    pub fn missing(&self) -> u64 {
        self.expected().saturating_sub(self.unique)
    }

    /// Fraction of expected packets received; `None` before the first.
    pub fn delivered(&self) -> Option<f64> {
        let expected = self.expected();
        (expected > 0).then(|| self.unique as f64 / expected as f64)
    }
}

/// Quantiles of a list of durations, in ms.
fn quantile_ms(values: &mut [Duration], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1].as_secs_f64() * 1000.0)
}

/// One kind of media summed over every subscriber.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindSummary {
    pub tracks: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub expected: u64,
    pub missing: u64,
    pub late: u64,
    pub duplicates: u64,
    pub corrupted: u64,
    /// unique / expected over every subscriber, in %.
    pub delivered_pct: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
}

impl KindSummary {
    fn from_tracks<'a>(
        tracks: impl Iterator<Item = &'a TrackStats>,
        packets_sent: u64,
    ) -> KindSummary {
        let mut s = KindSummary {
            packets_sent,
            ..Default::default()
        };
        let mut latency = LatencyHistogram::default();
        let mut unique = 0;
        for t in tracks {
            s.tracks += 1;
            s.packets_received += t.packets;
            s.expected += t.expected();
            s.missing += t.missing();
            s.late += t.late;
            s.duplicates += t.duplicates;
            s.corrupted += t.corrupted;
            unique += t.unique;
            latency.merge(&t.latency);
        }
        s.delivered_pct = (s.expected > 0).then(|| 100.0 * unique as f64 / s.expected as f64);
        let ms = |us: u64| us as f64 / 1000.0;
        s.latency_p50_ms = latency.quantile(0.5).map(ms);
        s.latency_p99_ms = latency.quantile(0.99).map(ms);
        s.latency_max_ms = (latency.count() > 0).then(|| ms(latency.max()));
        s
    }
}

/// What the server process cost, from `/proc` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCost {
    /// CPU time (user + system) the server used during the measured window, in s.
    pub cpu_s: Option<f64>,
    /// Wall time of the window, in s.
    pub window_s: f64,
    /// Egress RTP packets during the window: the server's `classroom_sfu_rtp_packets_out` delta
    /// when it exports one, else the packets the subscribers received.
    pub egress_packets: u64,
    /// Where `egress_packets` came from: `metrics` or `subscribers`.
    pub egress_source: &'static str,
    pub cpu_us_per_egress_packet: Option<f64>,
    /// Share of one core during the window, in %.
    pub cpu_pct_of_core: Option<f64>,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub rss_per_subscriber_kib: Option<f64>,
}

/// The summary of a fan-out load run.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub subscribers: usize,
    pub subscribers_with_media: usize,
    pub seconds: f64,
    pub audio: KindSummary,
    pub video: KindSummary,
    /// From a subscriber's `join` to its first keyframe, in ms.
    pub join_to_keyframe_p50_ms: Option<f64>,
    pub join_to_keyframe_max_ms: Option<f64>,
    pub server: ServerCost,
    /// Subscribers that could not join.
    pub join_failures: usize,
    /// CPU the bots themselves used during the window (they share the machine with the
    /// server), in % of one core.
    pub bots_cpu_pct_of_core: Option<f64>,
    /// What the publisher sent, over the whole run.
    pub publisher: Option<PublisherSnapshot>,
}

impl FanoutReport {
    /// Sums up every subscriber's tracks. `joins[i]` is when subscriber `i` sent `join`;
    /// `tracks[i]` its tracks.
    pub fn build(
        seconds: f64,
        joins: &[Instant],
        tracks: &[Vec<TrackStats>],
        audio_sent: u64,
        video_sent: u64,
        server: ServerCost,
    ) -> FanoutReport {
        let all = || tracks.iter().flatten();
        let audio =
            KindSummary::from_tracks(all().filter(|t| t.kind == MediaKind::Audio), audio_sent);
        let video =
            KindSummary::from_tracks(all().filter(|t| t.kind == MediaKind::Video), video_sent);
        let mut first_frames: Vec<Duration> = joins
            .iter()
            .zip(tracks)
            .filter_map(|(joined, tracks)| {
                tracks
                    .iter()
                    .filter_map(|t| t.first_keyframe_at)
                    .min()
                    .map(|at| at.saturating_duration_since(*joined))
            })
            .collect();
        FanoutReport {
            subscribers: tracks.len(),
            subscribers_with_media: tracks
                .iter()
                .filter(|t| t.iter().any(|t| t.unique > 0))
                .count(),
            seconds,
            audio,
            video,
            join_to_keyframe_p50_ms: quantile_ms(&mut first_frames, 0.5),
            join_to_keyframe_max_ms: quantile_ms(&mut first_frames, 1.0),
            server,
            join_failures: 0,
            bots_cpu_pct_of_core: None,
            publisher: None,
        }
    }

    /// A table for people.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let f = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "-".to_owned(),
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "fan-out: 1 publisher -> {} subscribers ({} received media, {} failed to join), {:.1} s window",
            self.subscribers, self.subscribers_with_media, self.join_failures, self.seconds
        );
        let _ = writeln!(
            out,
            "(sent = by the publisher; received, delivered and latency = over all subscribers, whole run)"
        );
        let _ = writeln!(
            out,
            "{:<6} {:>7} {:>10} {:>10} {:>10} {:>8} {:>6} {:>9} {:>9} {:>9}",
            "kind",
            "tracks",
            "sent",
            "received",
            "delivered",
            "missing",
            "bad",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
        for (name, k) in [("audio", &self.audio), ("video", &self.video)] {
            let _ = writeln!(
                out,
                "{:<6} {:>7} {:>10} {:>10} {:>9}% {:>8} {:>6} {:>9} {:>9} {:>9}",
                name,
                k.tracks,
                k.packets_sent,
                k.packets_received,
                f(k.delivered_pct, 2),
                k.missing,
                k.corrupted,
                f(k.latency_p50_ms, 2),
                f(k.latency_p99_ms, 2),
                f(k.latency_max_ms, 2),
            );
        }
        let _ = writeln!(
            out,
            "join -> first keyframe: p50 {} ms, max {} ms",
            f(self.join_to_keyframe_p50_ms, 0),
            f(self.join_to_keyframe_max_ms, 0)
        );
        let s = &self.server;
        let _ = writeln!(
            out,
            "server: cpu {} s over {:.1} s ({}% of a core), {} egress packets ({}), {} us CPU per egress packet",
            f(s.cpu_s, 2),
            s.window_s,
            f(s.cpu_pct_of_core, 1),
            s.egress_packets,
            s.egress_source,
            f(s.cpu_us_per_egress_packet, 2),
        );
        let _ = writeln!(
            out,
            "bots (this process): {}% of a core during the window",
            f(self.bots_cpu_pct_of_core, 1)
        );
        if let Some(p) = &self.publisher {
            let _ = writeln!(
                out,
                "publisher: {} keyframes ({} on request), {} PLI/FIR received, {} write errors",
                p.keyframes, p.keyframes_on_request, p.keyframe_requests, p.write_errors
            );
        }
        let kib = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        let _ = writeln!(
            out,
            "server RSS: {} KiB before join, {} KiB after, {} KiB per subscriber",
            kib(s.rss_before_kib),
            kib(s.rss_after_kib),
            f(s.rss_per_subscriber_kib, 0),
        );
        out
    }

    /// One JSON line for machines.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{Vp8Packetizer, opus_payload};

    #[test]
    fn histogram_buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in [0, 1, 63, 64, 65, 127, 128, 1000, 10_000, 1 << 40, u64::MAX] {
            let b = bucket_of(v);
            assert!(b >= last && b < BUCKETS, "{v}");
            last = b;
            let floor = bucket_floor(b);
            assert!(floor <= v, "{v} floor {floor}");
            assert!(v - floor <= v / 32, "{v} floor {floor}");
        }
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((485..=500).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).unwrap();
        assert!((960..=990).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), Some(992));
        assert_eq!(h.max(), 1000);
    }

    #[test]
    fn counts_gaps_late_and_duplicates() {
        let t0 = Instant::now();
        let mut s = TrackStats::new("0".into(), MediaKind::Audio);
        for c in [10, 11, 13, 12, 12, 14, 16] {
            s.record(t0, 1_000, c as u16, false, &opus_payload(c, 500, 80));
        }
        assert_eq!(s.packets, 7);
        assert_eq!(s.unique, 6);
        assert_eq!(s.expected(), 7);
        assert_eq!(s.missing(), 1); // 15
        assert_eq!(s.late, 1); // 12 after 13
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.corrupted, 0);
        assert_eq!(s.latency.max(), 500);
        let mut bad = opus_payload(17, 0, 80).to_vec();
        bad[79] ^= 0xff;
        s.record(t0, 0, 17, false, &bad);
        assert_eq!(s.corrupted, 1);
        s.record(t0, 0, 18, false, &[]);
        assert_eq!(s.padding, 1);
    }

    #[test]
    fn video_keyframes_are_seen() {
        let t0 = Instant::now();
        let mut s = TrackStats::new("1".into(), MediaKind::Video);
        let mut pk = Vp8Packetizer::new(1100, 640, 360, 0);
        let mut counter = 0;
        let mut seq = 0u16;
        let mut send = |s: &mut TrackStats, at: Instant, frame: Vec<bytes::Bytes>| {
            let last = frame.len() - 1;
            for (i, p) in frame.into_iter().enumerate() {
                s.record(at, 0, seq, i == last, &p);
                seq = seq.wrapping_add(1);
            }
        };
        send(&mut s, t0, pk.frame(false, 3000, &mut counter, 0));
        assert_eq!(s.first_keyframe_at, None);
        assert_eq!(s.frames_decoded, 0, "nothing to decode a delta frame from");
        let t1 = t0 + Duration::from_millis(40);
        send(&mut s, t1, pk.frame(true, 3000, &mut counter, 0));
        assert_eq!(s.first_keyframe_at, Some(t1));
        assert_eq!(s.keyframes, 1);
        assert_eq!(s.frame_size, Some((640, 360)));
        assert_eq!(s.frames_decoded, 1);
        assert_eq!(s.delivered(), Some(1.0));
    }

    #[test]
    fn simulcast_layers_are_counted_per_run() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = TrackStats::new("1".into(), MediaKind::Video);
        let mut low = Vp8Packetizer::new(1100, 320, 180, 0).with_layer(Some(Layer::Low));
        let mut high = Vp8Packetizer::new(1100, 1280, 720, 0).with_layer(Some(Layer::High));
        let (mut low_counter, mut high_counter) = (500, 9000);
        let mut seq = 7u16;
        let mut at = t0;
        // The SFU's sequence numbers run on across the switch; the publisher's counters do not.
        let mut send = |s: &mut TrackStats, at: Instant, frame: Vec<bytes::Bytes>| {
            let last = frame.len() - 1;
            for (i, p) in frame.into_iter().enumerate() {
                s.record(at, 0, seq, i == last, &p);
                seq = seq.wrapping_add(1);
            }
        };
        for i in 0..10 {
            send(&mut s, at, high.frame(i == 0, 5000, &mut high_counter, 0));
            at += ms(33);
        }
        // Switched down at a keyframe of the low layer, after a 600 ms pause.
        at += ms(600);
        for i in 0..10 {
            send(&mut s, at, low.frame(i == 0, 600, &mut low_counter, 0));
            at += ms(33);
        }
        assert_eq!(s.missing(), 0, "{s:?}");
        assert_eq!(s.expected(), s.unique);
        assert_eq!(s.frames_decoded, 20);
        assert_eq!(s.layer, Some(Layer::Low));
        assert_eq!(s.frame_size, Some((320, 180)));
        let log: Vec<_> = s.layer_log.iter().map(|(_, l)| *l).collect();
        assert_eq!(log, vec![Some(Layer::High), Some(Layer::Low)]);
        let w = s.window(at);
        assert_eq!(w.freezes, 1);
        assert!((w.frozen_s - 0.633).abs() < 1e-6, "{w:?}");
    }
}
