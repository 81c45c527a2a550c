//! The downlink glue: each subscriber's [`DownlinkEstimator`] (the policy, in the pure core:
//! start estimate and window, capacity headroom, loss weighting, the small-move rule, the
//! probe schedule and its back-off) is fed what the subscriber leg measured, and what it
//! decides is carried out here: estimates handed to the router, probes asked of the leg's
//! probe interceptor ([`super::link_probe`], which builds them).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::debug;

use super::engine::Engine;
use crate::core::{DownlinkEstimator, LinkMeasurement, START_ESTIMATE_BPS, UPDATE_INTERVAL};

/// One participant's downlink: its estimator, in the core.
#[derive(Debug)]
pub(super) struct Downlink(DownlinkEstimator);

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

impl Engine {
    /// Feeds each participant's estimator what its link measured, hands the router each
    /// estimate it says changed, and asks for a probe of each link it says is due and whose
    /// estimate holds a video back.
    pub(super) fn apply_estimates(&mut self, now: Instant) {
        self.next_capacity = now + CAPACITY_INTERVAL;
        let mut changed = Vec::new();
        let mut probe = Vec::new();
        for (&participant, state) in self.participants.iter_mut() {
            let link = self.peers.get(&state.subscriber).map(|peer| &peer.link);
            let measurement = LinkMeasurement {
                capacity: link.and_then(|l| l.capacity()),
                measured: link.is_some_and(|l| l.measured.load(Ordering::Relaxed)),
            };
            let estimator = &mut state.downlink.0;
            if let Some(change) = estimator.update(now, measurement) {
                debug!(%participant, loss = ?estimator.loss_estimate(), ?measurement, ?change, "downlink estimate");
                changed.push((participant, change));
            }
            if estimator.probe_due(now, measurement.capacity) {
                probe.push(participant);
            }
        }
        for (participant, change) in changed {
            self.router.apply_estimate(now, participant, change);
        }
        for participant in probe {
            if !self.router.held_back(now, participant) {
                continue;
            }
            let Some(state) = self.participants.get_mut(&participant) else {
                continue;
            };
            state.downlink.0.on_probe(now);
            if let Some(peer) = self.peers.get(&state.subscriber) {
                peer.link.probe_requested.store(true, Ordering::Relaxed);
            }
        }
        self.process_outputs(now);
    }
}
