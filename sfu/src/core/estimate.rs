//! A subscriber's downlink estimate from the loss its receiver reports show.
//!
//! Why loss and not delay: `rtc`'s GCC is delay-based, and a delay-based estimate cannot rise
//! much above what is actually sent, so a subscriber moved down to the low layer would never
//! be estimated able to take more (see [`super::Router::set_estimate`]). Loss, as in GCC's
//! loss-based controller (draft-ietf-rmcat-gcc §6), works from what is sent: more than 10 %
//! lost means the link cannot carry the rate; anything less lets it grow again. A link that
//! never loses much has no estimate at all, so only availability and the subscriber's wishes
//! limit it; an estimate that climbs past every layer's need is dropped.
//!
//! GCC holds between 2 % and 10 %; this does not. Rural links lose 2–5 % at random whatever
//! the rate, so an estimate cut by a burst of loss would hold below the lowest layer for good
//! (measured: video paused for the whole run on the 5 % profile). What keeps the growth from
//! overshooting is the other half: the subscriber's downlink policy
//! ([`super::DownlinkEstimator`]) takes the lower of this and the capacity its packet trains
//! measure ([`super::LinkCapacity`]), which knows a rural link's bottleneck before any layer
//! floods it.

use std::time::{Duration, Instant};

use super::capacity::UNLIMITED_BPS;

/// Above this loss the link is overloaded; at or below it, the loss is the link's own.
const OVERLOADED_LOSS: f32 = 0.10;
/// ... unless what was sent is well under the capacity the link's packet trains measured
/// ([`UNDER_CAPACITY`] of it): then loss is the link's own up to this. A 5 % lossy link
/// reads above 10 % in one report in a few (a hundred audio packets in 2 s), and each such
/// report used to cut the estimate below the low layer for ~20 s of audio only.
const OVERLOADED_LOSS_UNDER_CAPACITY: f32 = 0.20;
const UNDER_CAPACITY: f64 = 0.7;
/// How fast the estimate climbs while the link has room: ×1.08 per second, so from audio
/// only (~40 kbit/s) to the low video layer takes ~20 s and from low to high ~30 s. Slow on
/// purpose: climbing too eagerly on a rural link refills its queue and loses packets again.
const GROWTH_PER_SECOND: f64 = 1.08;
/// Nothing is estimated below this (it would only pause audio's companions for good).
const FLOOR_BPS: u64 = 30_000;

#[derive(Debug, Clone, Default)]
pub struct LossEstimate {
    bitrate: Option<u64>,
    updated: Option<Instant>,
}

impl LossEstimate {
    /// The estimate now: None while the link shows no limit.
    pub fn bitrate(&self) -> Option<u64> {
        self.bitrate
    }

    /// A report interval ended at `now`: the subscriber lost `loss` (0.0 to 1.0) of what was
    /// sent to it at `sending_bps`, over a link whose packet trains measured `capacity_bps`
    /// (`None`: no limit measured). Returns the new estimate.
    pub fn update(
        &mut self,
        now: Instant,
        loss: f32,
        sending_bps: u64,
        capacity_bps: Option<u64>,
    ) -> Option<u64> {
        let under_capacity =
            capacity_bps.is_some_and(|c| (sending_bps as f64) < c as f64 * UNDER_CAPACITY);
        let overloaded = if under_capacity {
            OVERLOADED_LOSS_UNDER_CAPACITY
        } else {
            OVERLOADED_LOSS
        };
        let elapsed = self
            .updated
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.updated = Some(now);
        let decreased = |from: u64| {
            let kept = 1.0 - 0.5 * f64::from(loss.clamp(0.0, 1.0));
            ((from as f64 * kept).round() as u64).max(FLOOR_BPS)
        };
        self.bitrate = match self.bitrate {
            None if loss > overloaded && sending_bps > 0 => Some(decreased(sending_bps)),
            None => None,
            // Decrease from what was sent when less was sent than estimated: that is what
            // proved too much.
            Some(estimate) if loss > overloaded => {
                Some(decreased(estimate.min(sending_bps.max(FLOOR_BPS))))
            }
            Some(estimate) => {
                let grown = estimate as f64 * GROWTH_PER_SECOND.powf(elapsed.as_secs_f64());
                let grown = grown as u64;
                (grown < UNLIMITED_BPS).then_some(grown)
            }
        };
        self.bitrate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(2);

    #[test]
    fn a_clean_link_has_no_estimate() {
        let mut e = LossEstimate::default();
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(e.update(t0 + INTERVAL * i, 0.01, 1_500_000, None), None);
        }
    }

    #[test]
    fn heavy_loss_cuts_below_what_was_sent_and_random_loss_grows_again() {
        let mut e = LossEstimate::default();
        let t0 = Instant::now();
        // 1.5 Mbit/s into a 600 kbit/s link: most of it lost.
        let first = e.update(t0, 0.6, 1_500_000, None).expect("an estimate");
        assert_eq!(first, 1_050_000);
        let second = e
            .update(t0 + INTERVAL, 0.3, 1_000_000, None)
            .expect("an estimate");
        assert_eq!(second, 850_000);
        // Now within the link: a rural link's 2–10 % random loss lets it grow (×1.08/s).
        let grown = (850_000.0 * 1.08f64.powi(2)) as u64;
        assert_eq!(
            e.update(t0 + INTERVAL * 2, 0.05, 500_000, None),
            Some(grown)
        );
    }

    #[test]
    fn room_on_the_link_climbs_back_to_unlimited() {
        let mut e = LossEstimate::default();
        let t0 = Instant::now();
        e.update(t0, 0.5, 100_000, None);
        assert_eq!(e.bitrate(), Some(75_000));
        let mut now = t0;
        let mut last = 75_000;
        let mut steps = 0;
        while let Some(b) = e.update(now + INTERVAL, 0.0, last, None) {
            now += INTERVAL;
            assert!(b > last, "climbs: {b} after {last}");
            last = b;
            steps += 1;
            assert!(steps < 100, "never became unlimited");
        }
        // ×1.08/s from 75 kbit/s to 20 Mbit/s is ~73 s.
        let secs = (steps + 1) * INTERVAL.as_secs();
        assert!((60..=90).contains(&secs), "{secs} s");
    }

    #[test]
    fn random_loss_well_under_the_measured_capacity_does_not_cut() {
        let mut e = LossEstimate::default();
        let t0 = Instant::now();
        // A 300 kbit/s link carrying audio and the low layer (190 kbit/s), losing 5 % at
        // random: one report reads 12 %.
        assert_eq!(e.update(t0, 0.12, 190_000, Some(300_000)), None);
        // At the capacity, the same loss is congestion.
        assert_eq!(e.update(t0, 0.12, 280_000, Some(300_000)), Some(263_200));
        // Far more than random loss is congestion whatever the capacity said.
        let cut = e
            .update(t0 + INTERVAL, 0.3, 150_000, Some(300_000))
            .unwrap();
        assert_eq!(cut, 127_500);
    }

    #[test]
    fn never_below_the_floor() {
        let mut e = LossEstimate::default();
        let t0 = Instant::now();
        e.update(t0, 1.0, 40_000, None);
        for i in 1..10 {
            e.update(t0 + INTERVAL * i, 1.0, 0, None);
        }
        assert_eq!(e.bitrate(), Some(FLOOR_BPS));
    }
}
