//! What a viewer would have seen and heard: video frames a decoder could have shown, and the
//! gaps between them.
//!
//! - [`FrameAssembler`] — a jitter buffer's frame logic on the subscriber's RTP sequence
//!   numbers (which the SFU keeps continuous across layer switches): a frame is complete when
//!   every packet from its first (S bit) to its last (marker bit) is in; it is decodable when it
//!   is a keyframe or follows the last decoded frame directly. A frame that can never complete
//!   leaves the decoder stuck until a later keyframe completes, as a real one is.
//! - [`Playout`] — gaps between playable events (decoded frames, or audio packets) over a
//!   window: the longest gap, and for video the frozen time.
//!
//! Definitions used for the figures (`docs/benchmarks.md`, "Rural links"):
//! - *audio gap*: time between two consecutive audio packets that arrived (a lost packet
//!   widens the gap by its 20 ms; a stall of the link by its whole length);
//! - *frozen*: a gap between two decoded video frames longer than [`FREEZE_GAP`], counted for
//!   its whole length (as the W3C `totalFreezesDuration` does), and a gap still open at the
//!   end of the window likewise.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use signaling::protocol::Layer;

/// A video gap longer than this is a freeze: 15 frames at 30 fps, far beyond what a jitter
/// buffer hides, and well beyond a NACK round trip even on the harshest profile (300 ms).
pub const FREEZE_GAP: Duration = Duration::from_millis(500);

/// Packets past the last decoded frame kept at most (about 10 s of the high layer); older ones
/// are evicted and counted, so a stream that never decodes cannot grow memory.
const MAX_PENDING: usize = 4096;

/// One received video packet, as the assembler needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The first packet of a frame.
    pub frame_start: bool,
    /// The first packet of a keyframe.
    pub keyframe: bool,
    /// The RTP marker bit: the last packet of a frame.
    pub marker: bool,
    pub layer: Option<Layer>,
}

/// A frame the decoder could show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub keyframe: bool,
    pub layer: Option<Layer>,
}

/// Frames out of packets; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct FrameAssembler {
    /// Packets after the last decoded frame, by extended sequence number.
    pending: BTreeMap<u64, Piece>,
    /// Where keyframes start among `pending`.
    keyframes: BTreeSet<u64>,
    /// The highest extended sequence number seen.
    highest: Option<u64>,
    /// The last packet of the last decoded frame.
    decoded_until: Option<u64>,
    /// Since when packets have waited without a frame being decoded.
    stalled_since: Option<Instant>,
    /// Packets dropped from a full buffer.
    pub evicted: u64,
    /// Frames skipped: incomplete, or undecodable until a later keyframe.
    pub skipped: u64,
}

impl FrameAssembler {
    /// Unwraps a 16-bit sequence number to the one nearest the highest seen.
    fn extend(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Room below, so early reordered packets do not go negative.
            let ext = (1 << 32) | u64::from(seq);
            self.highest = Some(ext);
            return ext;
        };
        let base = (highest & !0xffff) | u64::from(seq);
        let ext = [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .min_by_key(|c| c.abs_diff(highest))
            .unwrap_or(base);
        self.highest = Some(highest.max(ext));
        ext
    }

    /// Adds one packet received at `now`; returns the frames it made decodable, in order.
    pub fn push(&mut self, now: Instant, seq: u16, piece: Piece) -> Vec<Frame> {
        let ext = self.extend(seq);
        if self.decoded_until.is_some_and(|d| ext <= d) || self.pending.contains_key(&ext) {
            return Vec::new();
        }
        self.pending.insert(ext, piece);
        if piece.frame_start && piece.keyframe {
            self.keyframes.insert(ext);
        }
        while self.pending.len() > MAX_PENDING {
            if let Some((old, _)) = self.pending.pop_first() {
                self.keyframes.remove(&old);
                self.evicted += 1;
            }
        }
        let mut frames = Vec::new();
        loop {
            let next = self.next_in_order().or_else(|| self.next_keyframe());
            let Some((first, last)) = next else { break };
            let Some(&head) = self.pending.get(&first) else {
                break;
            };
            if self.decoded_until.is_some_and(|d| first > d + 1) {
                self.skipped += 1;
            }
            self.decoded_until = Some(last);
            self.pending = self.pending.split_off(&(last + 1));
            self.keyframes = self.keyframes.split_off(&(last + 1));
            frames.push(Frame {
                keyframe: head.keyframe,
                layer: head.layer,
            });
        }
        if !frames.is_empty() {
            self.stalled_since = None;
        }
        if !self.pending.is_empty() {
            self.stalled_since.get_or_insert(now);
        }
        frames
    }

    /// The frame right after the last decoded one, if it is complete.
    fn next_in_order(&self) -> Option<(u64, u64)> {
        let first = self.decoded_until? + 1;
        self.complete_from(first)
    }

    /// The first complete keyframe after the last decoded frame.
    fn next_keyframe(&self) -> Option<(u64, u64)> {
        let after = self.decoded_until.map_or(0, |d| d + 1);
        self.keyframes
            .range(after..)
            .find_map(|&k| self.complete_from(k))
    }

    /// `(first, last)` when a whole frame starts at `first`.
    fn complete_from(&self, first: u64) -> Option<(u64, u64)> {
        let head = self.pending.get(&first)?;
        if !head.frame_start {
            return None;
        }
        let mut seq = first;
        loop {
            let piece = self.pending.get(&seq)?;
            // Another frame began before this one ended: this one lost its tail for good.
            if seq != first && piece.frame_start {
                return None;
            }
            if piece.marker {
                return Some((first, seq));
            }
            seq += 1;
        }
    }

    /// How long packets have waited without a decodable frame; `None` when nothing waits.
    pub fn stalled_for(&self, now: Instant) -> Option<Duration> {
        self.stalled_since
            .map(|since| now.saturating_duration_since(since))
    }
}

/// Gaps between playable events over a window that can be restarted.
#[derive(Debug, Clone, Default)]
pub struct Playout {
    window_start: Option<Instant>,
    last: Option<Instant>,
    events: u64,
    longest_gap: Duration,
    frozen: Duration,
    freezes: u64,
}

/// A window of [`Playout`], for people and JSON.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PlayoutSummary {
    /// Length of the window, s.
    pub span_s: f64,
    /// Frames decoded, or audio packets received.
    pub events: u64,
    /// The longest gap between two events (or from the last one to the end), ms.
    pub longest_gap_ms: f64,
    /// Gaps longer than [`FREEZE_GAP`].
    pub freezes: u64,
    /// Their total length, s.
    pub frozen_s: f64,
    /// `frozen_s / span_s`, in %.
    pub frozen_pct: f64,
}

impl Playout {
    /// An event (a frame decoded, a packet played) at `now`.
    pub fn event(&mut self, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        if let Some(last) = self.last {
            self.gap(start, last, now);
        }
        self.last = Some(now);
        self.events += 1;
    }

    fn gap(&mut self, window_start: Instant, last: Instant, now: Instant) {
        let gap = now.saturating_duration_since(last.max(window_start));
        self.longest_gap = self.longest_gap.max(gap);
        if now.saturating_duration_since(last) > FREEZE_GAP {
            self.freezes += 1;
            self.frozen += gap;
        }
    }

    /// Starts a new window at `now`; the last event is kept, so a gap that began before
    /// counts from `now`.
    pub fn restart(&mut self, now: Instant) {
        self.window_start = Some(now);
        self.events = 0;
        self.longest_gap = Duration::ZERO;
        self.frozen = Duration::ZERO;
        self.freezes = 0;
    }

    /// The window up to `now`, with a gap still open at `now` included.
    pub fn summary(&self, now: Instant) -> PlayoutSummary {
        let Some(start) = self.window_start else {
            return PlayoutSummary::default();
        };
        let mut closed = self.clone();
        // An open gap: as if an event came now, without counting one.
        closed.gap(start, self.last.unwrap_or(start), now);
        let span = now.saturating_duration_since(start);
        PlayoutSummary {
            span_s: span.as_secs_f64(),
            events: self.events,
            longest_gap_ms: closed.longest_gap.as_secs_f64() * 1000.0,
            freezes: closed.freezes,
            frozen_s: closed.frozen.as_secs_f64(),
            frozen_pct: if span.is_zero() {
                0.0
            } else {
                100.0 * closed.frozen.as_secs_f64() / span.as_secs_f64()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(frame_start: bool, keyframe: bool, marker: bool) -> Piece {
        Piece {
            frame_start,
            keyframe,
            marker,
            layer: Some(Layer::Low),
        }
    }

    const KEY_START: (bool, bool, bool) = (true, true, false);
    const START: (bool, bool, bool) = (true, false, false);
    const MIDDLE: (bool, bool, bool) = (false, false, false);
    const END: (bool, bool, bool) = (false, false, true);
    const WHOLE: (bool, bool, bool) = (true, false, true);

    fn push(a: &mut FrameAssembler, now: Instant, seq: u16, p: (bool, bool, bool)) -> usize {
        a.push(now, seq, piece(p.0, p.1, p.2)).len()
    }

    #[test]
    fn frames_decode_in_order_once_complete() {
        let t = Instant::now();
        let mut a = FrameAssembler::default();
        // A delta frame before any keyframe cannot be shown.
        assert_eq!(push(&mut a, t, 65_534, WHOLE), 0);
        assert_eq!(
            a.stalled_for(t + Duration::from_millis(10)),
            Some(Duration::from_millis(10))
        );
        // A keyframe across the sequence number wrap, its middle late.
        assert_eq!(push(&mut a, t, 65_535, KEY_START), 0);
        assert_eq!(push(&mut a, t, 1, END), 0);
        assert_eq!(push(&mut a, t, 0, MIDDLE), 1);
        assert_eq!(a.stalled_for(t), None);
        // The next delta frame follows directly.
        assert_eq!(push(&mut a, t, 2, START), 0);
        assert_eq!(push(&mut a, t, 3, END), 1);
        // A duplicate changes nothing.
        assert_eq!(push(&mut a, t, 3, END), 0);
        assert_eq!(a.skipped, 0);
    }

    #[test]
    fn a_lost_packet_stalls_until_it_is_retransmitted() {
        let t = Instant::now();
        let mut a = FrameAssembler::default();
        assert_eq!(push(&mut a, t, 10, (true, true, true)), 1);
        // 11 (a one-packet frame) lost: 12 must wait for it.
        assert_eq!(push(&mut a, t, 12, WHOLE), 0);
        assert!(a.stalled_for(t).is_some());
        // Its retransmission releases both.
        assert_eq!(push(&mut a, t, 11, WHOLE), 2);
        assert_eq!(a.stalled_for(t), None);
    }

    #[test]
    fn a_frame_lost_for_good_waits_for_the_next_keyframe() {
        let t = Instant::now();
        let mut a = FrameAssembler::default();
        assert_eq!(push(&mut a, t, 100, (true, true, true)), 1);
        // Frame 101..=102 loses 102 (its end); 103 is a delta frame: stuck.
        assert_eq!(push(&mut a, t, 101, START), 0);
        assert_eq!(push(&mut a, t, 103, WHOLE), 0);
        // A keyframe 104..=105 completes: the decoder jumps to it.
        assert_eq!(push(&mut a, t, 104, KEY_START), 0);
        let frames = a.push(t, 105, piece(false, false, true));
        assert_eq!(frames.len(), 1);
        assert!(frames[0].keyframe);
        assert_eq!(a.skipped, 1);
        // The late 102 is too old now.
        assert_eq!(push(&mut a, t, 102, END), 0);
        assert_eq!(push(&mut a, t, 106, WHOLE), 1);
    }

    #[test]
    fn an_interrupted_frame_is_not_completed_by_the_next_one() {
        let t = Instant::now();
        let mut a = FrameAssembler::default();
        assert_eq!(push(&mut a, t, 1, (true, true, true)), 1);
        // The SFU switched layers mid-frame: 2 starts a frame that never ends, 3 is the new
        // layer's keyframe start.
        assert_eq!(push(&mut a, t, 2, START), 0);
        assert_eq!(push(&mut a, t, 3, KEY_START), 0);
        assert_eq!(push(&mut a, t, 4, END), 1);
    }

    #[test]
    fn playout_counts_gaps_and_freezes_in_its_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Playout::default();
        p.event(t0);
        p.event(t0 + ms(100));
        p.event(t0 + ms(800)); // a 700 ms freeze
        let s = p.summary(t0 + ms(1000));
        assert_eq!(s.events, 3);
        assert_eq!(s.freezes, 1);
        assert!((s.frozen_s - 0.7).abs() < 1e-9);
        assert!((s.longest_gap_ms - 700.0).abs() < 1e-6);
        assert!((s.frozen_pct - 70.0).abs() < 1e-6);
        // A new window: the open gap from 800 counts from the restart at 1000 on.
        p.restart(t0 + ms(1000));
        let s = p.summary(t0 + ms(1600));
        assert_eq!((s.events, s.freezes), (0, 1), "open for 800 ms by then");
        assert!((s.frozen_s - 0.6).abs() < 1e-9);
        p.event(t0 + ms(1700));
        let s = p.summary(t0 + ms(2000));
        assert!((s.longest_gap_ms - 700.0).abs() < 1e-6);
        assert_eq!(s.events, 1);
    }
}
