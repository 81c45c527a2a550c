//! Carries each subscriber's downlink decisions out on the engine, every
//! [`CAPACITY_INTERVAL`]: what its leg measured goes into its estimator
//! ([`super::downlink`]), changed estimates go to the router, due probes to the leg's probe
//! interceptor.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::debug;

use super::downlink::CAPACITY_INTERVAL;
use super::engine::Engine;
use crate::core::LinkMeasurement;

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
