//! The downlink glue: each subscriber's [`DownlinkEstimator`] (the policy, in the pure core:
//! start estimate and window, capacity headroom, loss weighting, the small-move rule, the
//! probe schedule and its back-off) is fed what the subscriber leg measured, and what it
//! decides is carried out by the engine ([`super::estimates`]): estimates handed to the
//! router, probes asked of the leg's probe interceptor ([`super::link_probe`], which builds
//! them). This module imports nothing of the engine, so the two do not import each other.

use std::time::{Duration, Instant};

use crate::core::{DownlinkEstimator, START_ESTIMATE_BPS, UPDATE_INTERVAL};

/// One participant's downlink: its estimator, in the core.
#[derive(Debug)]
pub(super) struct Downlink(pub(super) DownlinkEstimator);

impl Downlink {
    /// A joining participant's downlink: unmeasured, at the start estimate, which the router
    /// must be given at once ([`Downlink::START_ESTIMATE_BPS`]).
    pub(super) fn new(now: Instant) -> Downlink {
        Downlink(DownlinkEstimator::new(now))
    }

    pub(super) const START_ESTIMATE_BPS: u64 = START_ESTIMATE_BPS;

    /// The estimate last handed to the router (`None`: nothing limits the link).
    pub(super) fn applied(&self) -> Option<u64> {
        self.0.applied()
    }

    /// How long after the last probe the next may be sent.
    pub(super) fn probe_interval(&self) -> Duration {
        self.0.probe_interval()
    }

    /// Its subscriber leg connected (or stopped being connected): the start window runs from
    /// the first connection, and only a connected link is probed.
    pub(super) fn on_connection(&mut self, now: Instant, connected: bool) {
        self.0.on_connection(now, connected);
    }

    /// A quality report on what it received: (loss, bits per second) of each stream, over a
    /// link whose packet trains measure `capacity`.
    pub(super) fn on_receiver_reports(
        &mut self,
        now: Instant,
        streams: impl IntoIterator<Item = (f32, u64)>,
        capacity: Option<u64>,
    ) {
        self.0.on_receiver_reports(now, streams, capacity);
    }
}

/// How often a subscriber's measured capacity is handed to its estimator.
pub(super) const CAPACITY_INTERVAL: Duration = UPDATE_INTERVAL;
