//! The downlink policy glue: what each subscriber's link is taken to carry, handed to the
//! router, and when to probe it. A new link gets the start estimate until a packet train
//! measures it (or the start window passes); after that the estimate is the lower of what
//! loss allows and the measured capacity less headroom, moved only by more than 5 %. A link
//! whose estimate holds a video back is probed, backing off while probes find no room, and not
//! at all where loss rather than capacity binds it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::debug;

use super::engine::Engine;
use crate::core::LossEstimate;

/// One participant's downlink state.
#[derive(Debug)]
pub(super) struct Downlink {
    /// Its downlink, from the loss it reports; its video layers follow it, limited further by
    /// the capacity its subscriber leg measures (`Peer::link`).
    loss: LossEstimate,
    /// The estimate last handed to the router.
    applied: Option<u64>,
    /// Whether its link has been measured yet.
    start: LinkStart,
    /// When its link may next be probed, the wait after that one, and the estimate when it
    /// was last probed.
    next_probe: Instant,
    probe_interval: Duration,
    probed_at_estimate: Option<u64>,
}

impl Downlink {
    /// A joining participant's downlink: unmeasured, at the start estimate, which the router
    /// must be given at once ([`Downlink::START_ESTIMATE_BPS`]).
    pub(super) fn new(now: Instant) -> Downlink {
        Downlink {
            loss: LossEstimate::default(),
            applied: Some(START_ESTIMATE_BPS),
            start: LinkStart::Unmeasured { connected_at: None },
            next_probe: now,
            probe_interval: PROBE_INTERVAL,
            probed_at_estimate: None,
        }
    }

    pub(super) const START_ESTIMATE_BPS: u64 = START_ESTIMATE_BPS;

    /// Its subscriber leg connected: the start window runs from the first time.
    pub(super) fn on_connected(&mut self, now: Instant) {
        if let LinkStart::Unmeasured { connected_at } = &mut self.start {
            connected_at.get_or_insert(now);
        }
    }

    /// The estimate last handed to the router (`None`: nothing limits the link).
    pub(super) fn applied(&self) -> Option<u64> {
        self.applied
    }

    /// How long after the last probe the next may be sent.
    pub(super) fn probe_interval(&self) -> Duration {
        self.probe_interval
    }

    /// A quality report's loss over what it received (`sending` bits per second).
    pub(super) fn on_loss_report(
        &mut self,
        now: Instant,
        loss: f32,
        sending: u64,
        capacity: Option<u64>,
    ) {
        self.loss.update(now, loss, sending, capacity);
    }
}

/// A new subscriber's link is unknown: until a packet train measures it, the router shares out
/// [`START_ESTIMATE_BPS`], so a rural classroom that joins is not flooded with the high layer
/// (fifty joining at once used to lose a second of audio each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkStart {
    /// Not measured; since when its subscriber leg is connected.
    Unmeasured { connected_at: Option<Instant> },
    /// Measured (or given up on after [`START_WINDOW`]: a peer without TWCC feedback).
    Measured,
}

/// What a new subscriber's link is taken to carry before it is measured: its audio and the
/// low layer of one video (every video gets at least its lowest layer meanwhile, so that
/// there is something to measure with).
const START_ESTIMATE_BPS: u64 = 300_000;
/// How long after its leg connects an unmeasured link keeps the start estimate.
const START_WINDOW: Duration = Duration::from_secs(10);
/// How often a link whose estimate holds a video below what it wants is probed
/// ([`super::link_probe`]): each probe is a few kilobytes, queued at the link's bottleneck
/// beside the media. While probes find no more room, the wait doubles up to
/// [`PROBE_INTERVAL_MAX`]: a rural link probed every 2 s for good loses packets to the probes
/// (measured: 1.8 % frozen video on the rural profile, against 0 % with backing off); a link
/// that got better is found within that much.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
const PROBE_INTERVAL_MAX: Duration = Duration::from_secs(8);

/// The share of a measured capacity the router may fill: the rest is room for retransmissions,
/// keyframes larger than the layer's average, and packet headers the layer rates leave out.
const CAPACITY_HEADROOM: f64 = 0.85;

/// A participant's downlink for the router: the lower of what loss allows and what the link's
/// packet trains measured (less [`CAPACITY_HEADROOM`]); `None` while neither limits it.
fn downlink_estimate(loss: Option<u64>, capacity: Option<u64>) -> Option<u64> {
    let capacity = capacity.map(|bps| (bps as f64 * CAPACITY_HEADROOM) as u64);
    match (loss, capacity) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How often a subscriber's measured capacity is handed to the router: a link found short must
/// shed its layer before its queue overflows, not at the next 2 s quality report.
pub(super) const CAPACITY_INTERVAL: Duration = Duration::from_millis(200);

impl Engine {
    /// Hands the router each participant's downlink estimate that changed, and asks for a
    /// probe of each link whose estimate holds a video back.
    pub(super) fn apply_estimates(&mut self, now: Instant) {
        self.next_capacity = now + CAPACITY_INTERVAL;
        let mut changed = Vec::new();
        let mut probe = Vec::new();
        for (&participant, participant_state) in self.participants.iter_mut() {
            let subscriber_connected = participant_state.subscriber_connected;
            let link = self
                .peers
                .get(&participant_state.subscriber)
                .map(|peer| &peer.link);
            let p = &mut participant_state.downlink;
            let capacity = link.and_then(|l| l.capacity());
            let measured = link.is_some_and(|l| l.measured.load(Ordering::Relaxed));
            let mut estimate = downlink_estimate(p.loss.bitrate(), capacity);
            let mut first = false;
            if let LinkStart::Unmeasured { connected_at } = p.start {
                let given_up = connected_at.is_some_and(|at| now >= at + START_WINDOW);
                if measured || given_up {
                    p.start = LinkStart::Measured;
                    first = true;
                    debug!(%participant, measured, ?estimate, "downlink first estimate");
                } else {
                    estimate =
                        Some(estimate.map_or(START_ESTIMATE_BPS, |e| e.min(START_ESTIMATE_BPS)));
                }
            }
            let moved = match (estimate, p.applied) {
                // Small moves of a measurement change no layer; they would only churn.
                (Some(a), Some(b)) => a.abs_diff(b) * 20 > b,
                (a, b) => a != b,
            };
            if moved || first {
                debug!(%participant, loss = ?p.loss.bitrate(), ?capacity, ?estimate, "downlink estimate");
                p.applied = estimate;
                changed.push((participant, estimate, first));
            }
            // A probe measures capacity; where loss is what holds the link, it only adds load.
            let loss_binds = match (p.loss.bitrate(), downlink_estimate(None, capacity)) {
                (Some(loss), Some(capacity)) => loss < capacity,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if subscriber_connected && now >= p.next_probe && !loss_binds {
                probe.push(participant);
            }
        }
        for (participant, estimate, first) in changed {
            if first {
                self.router.set_first_estimate(now, participant, estimate);
            } else {
                self.router.set_estimate(now, participant, estimate);
            }
        }
        for participant in probe {
            if !self.router.held_back(now, participant) {
                continue;
            }
            let Some(participant_state) = self.participants.get_mut(&participant) else {
                continue;
            };
            let subscriber = participant_state.subscriber;
            let p = &mut participant_state.downlink;
            // The last probe found room if the estimate rose since (by more than noise).
            let found_room = match (p.applied, p.probed_at_estimate) {
                (None, _) => true,
                (Some(now_bps), Some(then)) => now_bps > then + then / 10,
                (Some(_), None) => true,
            };
            p.probe_interval = if found_room {
                PROBE_INTERVAL
            } else {
                (p.probe_interval * 2).min(PROBE_INTERVAL_MAX)
            };
            p.probed_at_estimate = p.applied;
            p.next_probe = now + p.probe_interval;
            if let Some(peer) = self.peers.get(&subscriber) {
                peer.link.probe_requested.store(true, Ordering::Relaxed);
            }
        }
        self.process_outputs(now);
    }
}
