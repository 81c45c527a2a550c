//! Per-track reorder buffer: RTP packets in, the same packets out in sequence order.
//!
//! A missing packet holds the ones behind it for at most `max_wait` (or until `max_packets`
//! are held); then the gap is declared lost and the caller is told how many went missing, so
//! that audio can be concealed and video can wait for a keyframe. Packets that arrive after
//! their slot was released are late: counted and dropped, never written out of order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Counters of one reorder buffer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReorderStats {
    /// Packets released in order.
    pub released: u64,
    /// Packets declared lost (a gap that was skipped).
    pub lost: u64,
    /// Packets that arrived after their slot was released.
    pub late: u64,
    /// Packets seen twice.
    pub duplicate: u64,
}

/// One packet released in order.
#[derive(Debug)]
pub(crate) struct Released<T> {
    pub item: T,
    /// Packets declared lost right before this one.
    pub lost_before: u64,
}

#[derive(Debug)]
struct Held<T> {
    at: Instant,
    item: T,
}

#[derive(Debug)]
pub(crate) struct ReorderBuffer<T> {
    max_packets: usize,
    max_wait: Duration,
    /// Extended sequence number of the next packet to release.
    next: Option<u64>,
    /// Highest extended sequence number seen, the reference for unwrapping.
    highest: u64,
    held: BTreeMap<u64, Held<T>>,
    stats: ReorderStats,
}

impl<T> ReorderBuffer<T> {
    pub fn new(max_packets: usize, max_wait: Duration) -> Self {
        Self {
            max_packets: max_packets.max(1),
            max_wait,
            next: None,
            highest: 0,
            held: BTreeMap::new(),
            stats: ReorderStats::default(),
        }
    }

    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Extends a 16-bit sequence number to the value closest to the highest seen.
    fn unwrap_seq(&self, seq: u16) -> u64 {
        let roc = self.highest >> 16;
        let candidates = [roc.wrapping_sub(1), roc, roc + 1].map(|r| (r << 16) | u64::from(seq));
        candidates
            .into_iter()
            .filter(|c| *c < (1 << 48))
            .min_by_key(|c| c.abs_diff(self.highest))
            .unwrap_or(u64::from(seq))
    }

    /// Takes one packet (`item`) with RTP sequence number `seq`.
    pub fn push(&mut self, now: Instant, seq: u16, item: T) {
        let ext = match self.next {
            // Start above zero so that a first packet followed by an older one still unwraps.
            None => (1 << 16) | u64::from(seq),
            Some(_) => self.unwrap_seq(seq),
        };
        let next = *self.next.get_or_insert(ext);
        if ext < next && self.stats.released == 0 {
            // Nothing released yet: the first packet to arrive need not be the first sent.
            self.next = Some(ext);
        } else if ext < next {
            self.stats.late += 1;
            return;
        }
        if self.held.contains_key(&ext) {
            self.stats.duplicate += 1;
            return;
        }
        self.highest = self.highest.max(ext);
        self.held.insert(ext, Held { at: now, item });
    }

    /// The next packet in order, if it is there or the gap before it has waited long enough.
    pub fn pop(&mut self, now: Instant) -> Option<Released<T>> {
        let next = self.next?;
        let (&first, _) = self.held.first_key_value()?;
        if self.stats.released == 0
            && self.held.len() <= self.max_packets
            && self.oldest_wait_ends()? > now
        {
            // The stream's start waits once, so that packets sent before the first to
            // arrive still make it in.
            return None;
        }
        let lost_before = if first == next {
            0
        } else if self.held.len() > self.max_packets || self.oldest_wait_ends()? <= now {
            first - next
        } else {
            return None;
        };
        let held = self.held.remove(&first)?;
        self.next = Some(first + 1);
        self.stats.lost += lost_before;
        self.stats.released += 1;
        Some(Released {
            item: held.item,
            lost_before,
        })
    }

    fn oldest_wait_ends(&self) -> Option<Instant> {
        self.held
            .values()
            .map(|h| h.at)
            .min()
            .map(|at| at + self.max_wait)
    }

    /// When a held gap will be given up, if one is waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next = self.next?;
        match self.held.first_key_value() {
            Some((&first, _)) if first != next || self.stats.released == 0 => {
                self.oldest_wait_ends()
            }
            _ => None,
        }
    }

    /// Releases everything held, gaps included (end of the recording).
    pub fn drain(&mut self) -> Vec<Released<T>> {
        let mut out = Vec::with_capacity(self.held.len());
        while let Some((ext, held)) = self.held.pop_first() {
            let lost_before = self.next.map_or(0, |n| ext.saturating_sub(n));
            self.next = Some(ext + 1);
            self.stats.lost += lost_before;
            self.stats.released += 1;
            out.push(Released {
                item: held.item,
                lost_before,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(buf: &mut ReorderBuffer<u16>, now: Instant, seq: u16) {
        buf.push(now, seq, seq);
    }

    fn seqs(buf: &mut ReorderBuffer<u16>, now: Instant) -> Vec<(u16, u64)> {
        std::iter::from_fn(|| buf.pop(now))
            .map(|r| (r.item, r.lost_before))
            .collect()
    }

    /// A buffer that has released its first packet (seq 0), past the start-up wait.
    fn started(t0: Instant, max_packets: usize, wait: Duration) -> ReorderBuffer<u16> {
        let mut buf = ReorderBuffer::new(max_packets, wait);
        push(&mut buf, t0 - wait, 0);
        assert_eq!(seqs(&mut buf, t0), vec![(0, 0)]);
        buf
    }

    #[test]
    fn the_start_waits_for_packets_sent_before_the_first_to_arrive() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut buf = ReorderBuffer::new(100, Duration::from_millis(100));
        push(&mut buf, t0, 11);
        assert!(buf.pop(t0).is_none());
        push(&mut buf, t0 + Duration::from_millis(10), 10);
        assert_eq!(buf.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        assert_eq!(
            seqs(&mut buf, t0 + Duration::from_millis(100)),
            vec![(10, 0), (11, 0)]
        );
        assert_eq!(buf.stats().late, 0);
    }

    #[test]
    fn reorders_within_the_window() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut buf = started(t0, 100, Duration::from_millis(100));
        push(&mut buf, t0, 1);
        push(&mut buf, t0, 3);
        assert_eq!(seqs(&mut buf, t0), vec![(1, 0)]);
        push(&mut buf, t0, 2);
        assert_eq!(seqs(&mut buf, t0), vec![(2, 0), (3, 0)]);
        assert_eq!(buf.stats().lost, 0);
    }

    #[test]
    fn a_gap_is_declared_lost_after_max_wait_and_late_packets_are_dropped() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut buf = started(t0, 100, Duration::from_millis(100));
        push(&mut buf, t0, 1);
        push(&mut buf, t0, 3);
        assert_eq!(seqs(&mut buf, t0), vec![(1, 0)]);
        assert_eq!(buf.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        assert!(buf.pop(t0 + Duration::from_millis(99)).is_none());
        assert_eq!(
            seqs(&mut buf, t0 + Duration::from_millis(100)),
            vec![(3, 1)]
        );
        push(&mut buf, t0 + Duration::from_millis(150), 2);
        assert!(buf.pop(t0 + Duration::from_millis(150)).is_none());
        assert_eq!(buf.stats().late, 1);
        assert_eq!(buf.stats().lost, 1);
    }

    #[test]
    fn the_buffer_is_bounded_in_packets() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut buf = started(t0, 3, Duration::from_secs(10));
        for s in 2..=5 {
            push(&mut buf, t0, s);
        }
        assert_eq!(seqs(&mut buf, t0), vec![(2, 1), (3, 0), (4, 0), (5, 0)]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut buf = ReorderBuffer::new(100, Duration::from_millis(100));
        for s in [65534u16, 0, 65535, 1] {
            push(&mut buf, t0, s);
        }
        assert_eq!(
            seqs(&mut buf, t0 + Duration::from_millis(100)),
            vec![(65534, 0), (65535, 0), (0, 0), (1, 0)]
        );
        push(&mut buf, t0, 1);
        assert_eq!(buf.stats().late, 1);
    }
}
