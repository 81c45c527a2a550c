//! Simulcast layers, what each costs, and which one a subscriber should get.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A simulcast encoding of one video publication, named by its RTP stream id (rid).
/// Ordered: `Low < Medium < High`. A publication sent without simulcast is one `High` layer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Low,
    Medium,
    High,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Low, Layer::Medium, Layer::High];

    /// The layer a rid names. Our clients use `low`/`medium`/`high`; the common browser
    /// names `q`/`h`/`f` (quarter, half, full) and `0`/`1`/`2` are accepted too.
    pub fn from_rid(rid: &str) -> Option<Layer> {
        match rid {
            "low" | "l" | "q" | "0" => Some(Layer::Low),
            "medium" | "mid" | "m" | "h" | "1" => Some(Layer::Medium),
            "high" | "full" | "f" | "2" => Some(Layer::High),
            _ => None,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// What a layer typically costs before its own rate has been measured (bits per second).
    pub fn default_bitrate(self) -> u64 {
        match self {
            Layer::Low => 150_000,
            Layer::Medium => 500_000,
            Layer::High => 1_500_000,
        }
    }

    /// The layers at or below `self`, best first.
    pub fn at_or_below(self) -> impl Iterator<Item = Layer> {
        Layer::ALL.into_iter().rev().filter(move |l| *l <= self)
    }
}

/// The bitrate of one stream over a sliding window, from packet sizes and virtual time.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Instant, u32)>,
    bytes: u64,
}

impl RateMeter {
    /// Samples are kept for one window; a window of packets is bounded by the stream's rate,
    /// and anything older is evicted on every update.
    pub fn new(window: Duration) -> Self {
        RateMeter {
            window,
            samples: VecDeque::new(),
            bytes: 0,
        }
    }

    pub fn record(&mut self, now: Instant, bytes: usize) {
        let bytes = bytes.min(u32::MAX as usize) as u32;
        self.samples.push_back((now, bytes));
        self.bytes += bytes as u64;
        self.evict(now);
    }

    fn evict(&mut self, now: Instant) {
        while let Some(&(at, b)) = self.samples.front() {
            if now.saturating_duration_since(at) <= self.window {
                break;
            }
            self.samples.pop_front();
            self.bytes -= b as u64;
        }
    }

    /// Bits per second over the window ending at `now`; `None` with no recent packet.
    /// A stream younger than the window is measured over its own age (at least a quarter
    /// window, so a first packet alone does not read as a huge rate).
    pub fn bitrate(&mut self, now: Instant) -> Option<u64> {
        self.evict(now);
        let &(first, _) = self.samples.front()?;
        let span = now
            .saturating_duration_since(first)
            .clamp(self.window / 4, self.window);
        Some(self.bytes * 8 * 1_000_000 / span.as_micros().max(1) as u64)
    }

    /// When the newest packet arrived.
    pub fn last_at(&self) -> Option<Instant> {
        self.samples.back().map(|(at, _)| *at)
    }
}

/// Hysteresis for one subscription's layer: going down happens at once (the link is short
/// now, and every late second is a freeze), going up only after the estimate has allowed the
/// higher layer continuously for `up_hold` (so a noisy estimate does not make it flap).
#[derive(Debug, Clone)]
pub struct LayerHysteresis {
    up_hold: Duration,
    /// The best layer the estimate allows and since when it has allowed it.
    allowed_since: Option<(Option<Layer>, Instant)>,
}

impl LayerHysteresis {
    pub fn new(up_hold: Duration) -> Self {
        LayerHysteresis {
            up_hold,
            allowed_since: None,
        }
    }

    /// Starts over from a choice made without hysteresis (a new or resumed subscription).
    pub fn reset(&mut self, now: Instant, allowed: Option<Layer>) {
        self.allowed_since = Some((allowed, now));
    }

    /// Given the current target and what the link allows now, the new target.
    /// `None` means paused (audio only).
    pub fn decide(
        &mut self,
        now: Instant,
        current: Option<Layer>,
        allowed: Option<Layer>,
    ) -> Option<Layer> {
        let since = match self.allowed_since {
            Some((layer, since)) if layer == allowed => since,
            _ => {
                self.allowed_since = Some((allowed, now));
                now
            }
        };
        if allowed <= current {
            return allowed;
        }
        if now.saturating_duration_since(since) >= self.up_hold {
            allowed
        } else {
            current
        }
    }

    /// When a pending up-switch would become due, if one is pending.
    pub fn due_at(&self, current: Option<Layer>) -> Option<Instant> {
        match self.allowed_since {
            Some((allowed, since)) if allowed > current => Some(since + self.up_hold),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rids_map_to_layers() {
        assert_eq!(Layer::from_rid("q"), Some(Layer::Low));
        assert_eq!(Layer::from_rid("medium"), Some(Layer::Medium));
        assert_eq!(Layer::from_rid("f"), Some(Layer::High));
        assert_eq!(Layer::from_rid("x"), None);
        assert!(Layer::Low < Layer::High);
        assert_eq!(
            Layer::Medium.at_or_below().collect::<Vec<_>>(),
            vec![Layer::Medium, Layer::Low]
        );
    }

    #[test]
    fn rate_meter_measures_over_its_window() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new(Duration::from_secs(1));
        assert_eq!(meter.bitrate(t0), None);
        // 100 packets of 1250 bytes in one second: 1 Mbit/s.
        for i in 0..100 {
            meter.record(t0 + Duration::from_millis(i * 10), 1250);
        }
        let rate = meter
            .bitrate(t0 + Duration::from_millis(1000))
            .expect("recent packets");
        assert_eq!(rate, 1_000_000);
        // A young stream is measured over its age: 10 packets in 100 ms is 1 Mbit/s too,
        // read over the quarter-window floor (250 ms) as 400 kbit/s at most.
        let mut young = RateMeter::new(Duration::from_secs(1));
        for i in 0..10 {
            young.record(t0 + Duration::from_millis(i * 10), 1250);
        }
        assert_eq!(young.bitrate(t0 + Duration::from_millis(90)), Some(400_000));
        assert_eq!(meter.bitrate(t0 + Duration::from_secs(5)), None, "stale");
    }

    #[test]
    fn hysteresis_goes_down_at_once_and_up_after_a_hold() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut h = LayerHysteresis::new(s(3));
        let high = Some(Layer::High);
        let low = Some(Layer::Low);
        assert_eq!(h.decide(t0, high, low), low, "down at once");
        assert_eq!(h.decide(t0 + s(1), low, high), low, "up waits");
        assert_eq!(h.due_at(low), Some(t0 + s(4)));
        assert_eq!(h.decide(t0 + s(2), low, high), low);
        // The estimate dipped: the hold starts again.
        assert_eq!(h.decide(t0 + s(3), low, low), low);
        assert_eq!(h.decide(t0 + s(4), low, high), low);
        assert_eq!(h.decide(t0 + s(7), low, high), high, "allowed for 3 s");
        assert_eq!(h.decide(t0 + s(8), high, None), None, "pause at once");
    }
}
