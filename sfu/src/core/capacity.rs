//! A subscriber's link capacity, from how its packet trains arrive.
//!
//! Why this and not only loss (see [`super::LossEstimate`]) or `rtc`'s GCC: both grow their
//! estimate while the link shows no trouble, and a subscriber held on a lower layer sends too
//! little to show any, so the estimate climbs past what the link carries, the forwarder
//! switches up, the link floods, and only then does loss or delay say so. A rural link with a
//! 600 kbit/s bottleneck and a 200 ms queue loses audio and freezes video each time.
//!
//! Packets the forwarder sends back to back (a video frame, a keyframe) queue at the link's
//! bottleneck and leave it spaced by their size over its rate; transport-wide congestion
//! control feedback (TWCC) tells when each arrived. A *train* is a run of packets that left
//! within [`TRAIN_GAP`] of each other and all arrived; the rate over its second half (after
//! a shaper's burst allowance is spent) is what the bottleneck delivered. The capacity is the
//! second-best rate of the last [`RECENT`] trains within [`WINDOW`] (the best one alone may be
//! receiver timing noise), or the only one. An estimate above [`UNLIMITED_BPS`] limits nothing and is dropped.
//!
//! A link that gets better can only show it by carrying more; a subscriber held below its
//! layer sends small frames and few trains. So when no train has been seen for [`STALE`],
//! the capacity grows by [`STALE_GROWTH`] a second: the next large frame or keyframe then
//! measures the link again, up or down. (A link held back is probed every 2–8 s, as
//! [`super::DownlinkEstimator`] decides, so this is the fallback when probes measure nothing.)
//!
//! Pure: instants and arrival offsets come in as data; nothing reads a clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Packets that left within this of the one before belong to one train.
pub const TRAIN_GAP: Duration = Duration::from_millis(2);
/// A train has at least this many packets; the rate is taken over its second half.
const MIN_TRAIN: usize = 4;
/// ... and that half at least this many bytes, so a few small packets say nothing.
const MIN_TAIL_BYTES: usize = 2_000;
/// Arrival offsets have a resolution of 250 µs (TWCC): no span is taken as shorter.
const MIN_SPAN: Duration = Duration::from_micros(250);
/// Train rates are kept this long.
pub const WINDOW: Duration = Duration::from_secs(5);
/// With no train for this long, the capacity starts to grow.
pub const STALE: Duration = Duration::from_secs(10);
/// ... by this factor a second.
const STALE_GROWTH: f64 = 1.05;
/// Above this, the link limits nothing any layer needs.
pub const UNLIMITED_BPS: u64 = 20_000_000;
/// Only the latest trains count, so a link that gets worse is seen within a few frames.
const RECENT: usize = 4;

/// What the far end said about one packet the forwarder sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// When it left the forwarder.
    pub departure: Instant,
    /// When it arrived, on the far end's clock (any origin); `None` if it was lost.
    pub arrival: Option<Duration>,
    /// Its size on the wire, in bytes.
    pub size: usize,
}

#[derive(Debug, Clone, Default)]
pub struct LinkCapacity {
    /// Bits per second; `None` while nothing limits the link.
    capacity: Option<u64>,
    /// Train rates: when measured, bits per second.
    rates: VecDeque<(Instant, u64)>,
    /// The train being collected: (departure, arrival, size).
    train: Vec<(Instant, Duration, usize)>,
    last_train: Option<Instant>,
    grown_at: Option<Instant>,
}

impl LinkCapacity {
    /// The capacity now: `None` while the link shows no limit.
    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    /// Whether any train has been measured (one too fast to limit anything included).
    pub fn measured(&self) -> bool {
        self.last_train.is_some()
    }

    /// Feedback arrived at `now` about `deliveries`, in the order they were sent.
    pub fn on_deliveries(&mut self, now: Instant, deliveries: &[Delivery]) {
        for d in deliveries {
            let Some(arrival) = d.arrival else {
                // A lost packet ends a train: its spacing is unknown.
                self.close_train(now);
                continue;
            };
            let continues = self.train.last().is_some_and(|&(dep, _, _)| {
                d.departure.saturating_duration_since(dep) <= TRAIN_GAP
            });
            if !continues {
                self.close_train(now);
            }
            self.train.push((d.departure, arrival, d.size));
        }
        self.update(now);
    }

    /// Time passed with no feedback: only the staleness rule can apply.
    pub fn on_timeout(&mut self, now: Instant) {
        self.update(now);
    }

    fn close_train(&mut self, now: Instant) {
        let train = std::mem::take(&mut self.train);
        if let Some(rate) = train_rate(&train) {
            if self.rates.len() == RECENT {
                self.rates.pop_front();
            }
            self.rates.push_back((now, rate));
            self.last_train = Some(now);
        }
        self.train = train;
        self.train.clear();
    }

    fn update(&mut self, now: Instant) {
        while self
            .rates
            .front()
            .is_some_and(|&(at, _)| now.saturating_duration_since(at) > WINDOW)
        {
            self.rates.pop_front();
        }
        if !self.rates.is_empty() {
            // The second best when there are two: one train read too fast (receiver timing)
            // must not lift the limit. A single one is taken as it is: a slow reading is what
            // a flooded link gives, and its later trains are broken by the losses.
            let mut best = [0u64; 2];
            for &(_, rate) in &self.rates {
                if rate > best[0] {
                    best = [rate, best[0]];
                } else if rate > best[1] {
                    best[1] = rate;
                }
            }
            let rate = if self.rates.len() == 1 {
                best[0]
            } else {
                best[1]
            };
            self.capacity = (rate < UNLIMITED_BPS).then_some(rate);
            self.grown_at = None;
            return;
        }
        let Some(capacity) = self.capacity else {
            return;
        };
        let stale_since = self.last_train.map_or(now, |t| t + STALE);
        if now < stale_since {
            return;
        }
        let from = self.grown_at.unwrap_or(stale_since).max(stale_since);
        let elapsed = now.saturating_duration_since(from).as_secs_f64();
        let grown = (capacity as f64 * STALE_GROWTH.powf(elapsed)) as u64;
        self.grown_at = Some(now);
        self.capacity = (grown < UNLIMITED_BPS).then_some(grown);
    }
}

/// The rate over the second half of a train, in bits per second, if it is a train.
fn train_rate(train: &[(Instant, Duration, usize)]) -> Option<u64> {
    if train.len() < MIN_TRAIN {
        return None;
    }
    let tail = &train[train.len() / 2..];
    let (first, last) = (tail.first()?, tail.last()?);
    // Reordered arrivals say nothing about spacing.
    if tail.windows(2).any(|w| w[1].1 < w[0].1) {
        return None;
    }
    // The first packet of the half only marks when the half began.
    let bytes: usize = tail[1..].iter().map(|&(_, _, size)| size).sum();
    if bytes < MIN_TAIL_BYTES {
        return None;
    }
    let span = last.1.saturating_sub(first.1).max(MIN_SPAN);
    Some((bytes as f64 * 8.0 / span.as_secs_f64()) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKET: usize = 1_200;

    /// A frame of `packets` sent back to back at `at` through a bottleneck of `bps` with a
    /// burst allowance of `burst` bytes (a token bucket, as the impairment relay has).
    fn frame(
        at: Instant,
        packets: usize,
        bps: u64,
        burst: usize,
        origin: Instant,
    ) -> Vec<Delivery> {
        let mut queued = 0usize;
        (0..packets)
            .map(|i| {
                queued += PACKET;
                let wait = queued.saturating_sub(burst) as f64 * 8.0 / bps as f64;
                Delivery {
                    departure: at + Duration::from_micros(20 * i as u64),
                    arrival: Some(at.duration_since(origin) + Duration::from_secs_f64(wait)),
                    size: PACKET,
                }
            })
            .collect()
    }

    #[test]
    fn a_bottleneck_is_measured_through_a_burst_allowance() {
        let t0 = Instant::now();
        let mut link = LinkCapacity::default();
        for i in 0..5u64 {
            let at = t0 + Duration::from_millis(100 * i);
            link.on_deliveries(at, &frame(at, 6, 600_000, 3_000, t0));
        }
        // Closed by the next frame's first packet; the last one is still open.
        let capacity = link.capacity().expect("a limit");
        assert!(
            (570_000..=630_000).contains(&capacity),
            "600 kbit/s measured as {capacity}"
        );
    }

    #[test]
    fn small_frames_and_a_fast_link_say_nothing_limiting() {
        let t0 = Instant::now();
        let mut link = LinkCapacity::default();
        for i in 0..20u64 {
            let at = t0 + Duration::from_millis(33 * i);
            // Two-packet frames: never a train.
            link.on_deliveries(at, &frame(at, 2, 600_000, 3_000, t0));
        }
        assert_eq!(link.capacity(), None);
        for i in 20..40u64 {
            let at = t0 + Duration::from_millis(33 * i);
            link.on_deliveries(at, &frame(at, 8, 1_000_000_000, 3_000, t0));
        }
        assert_eq!(link.capacity(), None, "a gigabit link limits nothing");
    }

    #[test]
    fn one_slow_train_is_enough() {
        let t0 = Instant::now();
        let mut link = LinkCapacity::default();
        let mut train = frame(t0, 9, 600_000, 3_000, t0);
        // The flood that follows loses packets: nothing more is measured.
        train.push(Delivery {
            arrival: None,
            ..train[8]
        });
        link.on_deliveries(t0, &train);
        let capacity = link.capacity().expect("a limit");
        assert!((570_000..=630_000).contains(&capacity), "{capacity}");
    }

    #[test]
    fn a_lost_packet_breaks_a_train() {
        let t0 = Instant::now();
        let mut link = LinkCapacity::default();
        for i in 0..5u64 {
            let at = t0 + Duration::from_millis(100 * i);
            let mut f = frame(at, 6, 600_000, 3_000, t0);
            f[3].arrival = None;
            link.on_deliveries(at, &f);
        }
        assert_eq!(link.capacity(), None);
    }

    #[test]
    fn one_fast_train_is_not_enough_and_a_faster_link_is_seen_at_once() {
        let t0 = Instant::now();
        let mut link = LinkCapacity::default();
        let mut at = t0;
        for _ in 0..5 {
            at += Duration::from_millis(100);
            link.on_deliveries(at, &frame(at, 6, 600_000, 3_000, t0));
        }
        at += Duration::from_millis(100);
        link.on_deliveries(at, &frame(at, 6, 50_000_000, 3_000, t0));
        at += Duration::from_millis(100);
        // Closes the fast train: it is the best, the second best is still 600k.
        link.on_deliveries(at, &frame(at, 1, 600_000, 3_000, t0));
        assert!(link.capacity().unwrap() < 700_000);
        link.on_deliveries(at, &frame(at, 6, 50_000_000, 3_000, t0));
        at += Duration::from_millis(100);
        link.on_deliveries(at, &frame(at, 1, 600_000, 3_000, t0));
        assert_eq!(
            link.capacity(),
            None,
            "two trains at 50 Mbit/s lift the limit"
        );
    }

    #[test]
    fn a_limit_grows_when_nothing_measures_it_and_is_measured_again() {
        let t0 = Instant::now();
        let mut link = LinkCapacity::default();
        let mut at = t0;
        for _ in 0..4 {
            at += Duration::from_millis(100);
            link.on_deliveries(at, &frame(at, 6, 600_000, 3_000, t0));
        }
        let measured = link.capacity().unwrap();
        // Trains age out of the window, the limit holds until it is stale, then grows.
        link.on_timeout(at + WINDOW + Duration::from_secs(1));
        assert_eq!(link.capacity(), Some(measured));
        let later = at + STALE + Duration::from_secs(10);
        link.on_timeout(later);
        let grown = link.capacity().unwrap();
        let expected = measured as f64 * STALE_GROWTH.powi(10);
        assert!(
            (grown as f64 - expected).abs() < expected * 0.02,
            "{grown} vs {expected}"
        );
        // The next trains measure it again.
        for i in 1..=3 {
            at = later + Duration::from_millis(100 * i);
            link.on_deliveries(at, &frame(at, 6, 300_000, 3_000, t0));
        }
        let again = link.capacity().unwrap();
        assert!((280_000..=320_000).contains(&again), "{again}");
    }
}
