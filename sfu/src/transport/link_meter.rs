//! Feeds a subscriber leg's TWCC feedback to [`LinkCapacity`].
//!
//! `rtc`'s congestion-control interceptor keeps the send history, resolves the subscriber's
//! transport-wide feedback against it (retransmissions included: it sits wire-most) and hands
//! the result to a [`BandwidthEstimator`]. This is that estimator; what it measures goes to
//! the shard through [`LinkShared`], since the interceptor chain is out of the shard's reach
//! once the connection is built. Why not `rtc`'s GCC: see `core::capacity`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rtc::interceptor::{BandwidthEstimator, PacketReport};

use super::peer::LinkShared;
use crate::core::{Delivery, LinkCapacity, UNLIMITED_BPS};

pub(crate) struct LinkMeter {
    link: Arc<LinkShared>,
    capacity: LinkCapacity,
    deliveries: Vec<Delivery>,
}

impl LinkMeter {
    pub fn new(link: Arc<LinkShared>) -> LinkMeter {
        LinkMeter {
            link,
            capacity: LinkCapacity::default(),
            deliveries: Vec::new(),
        }
    }

    fn publish(&self) {
        let bps = self.capacity.capacity().unwrap_or(u64::MAX);
        self.link.capacity_bps.store(bps, Ordering::Relaxed);
    }
}

impl BandwidthEstimator for LinkMeter {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.deliveries.clear();
        self.deliveries.extend(reports.iter().map(|r| Delivery {
            departure: r.departure,
            arrival: if r.arrived { r.arrival } else { None },
            size: r.size,
        }));
        self.capacity.on_deliveries(now, &self.deliveries);
        self.publish();
    }

    fn target_bitrate(&self) -> f64 {
        self.capacity.capacity().unwrap_or(UNLIMITED_BPS) as f64
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.capacity.on_timeout(now);
        self.publish();
    }
}
