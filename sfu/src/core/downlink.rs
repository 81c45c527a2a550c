//! One subscriber's downlink policy: what its link is taken to carry, and when it is probed.
//!
//! The transport measures; this decides. Two measurements come in: the loss the subscriber's
//! receiver reports show ([`LossEstimate`], fed by [`DownlinkEstimator::on_receiver_reports`])
//! and the capacity its packet trains measure ([`super::LinkCapacity`], read by the transport
//! from the subscriber leg and handed to [`DownlinkEstimator::update`]). Out come the estimate
//! the router shares among the subscriber's subscriptions ([`EstimateChange`], for
//! [`super::Router::set_first_estimate`] and [`super::Router::set_estimate`]) and whether to
//! probe the link now ([`DownlinkEstimator::probe_due`]); building the probe's packets is the
//! transport's.
//!
//! The rules, each measured on the rural profiles of `docs/benchmarks.md`:
//! - **Start low.** A new subscriber's link is unknown: until a packet train measures it, the
//!   router shares out [`START_ESTIMATE_BPS`], so a rural classroom that joins is not flooded
//!   with the high layer (fifty joining at once used to lose a second of audio each). The first
//!   measurement is followed at once, up too (the guess was not a link seen short). A link
//!   still unmeasured [`START_WINDOW`] after its leg connected (a peer without TWCC feedback)
//!   falls back to what loss says.
//! - **Headroom.** The router may fill [`CAPACITY_HEADROOM`] of a measured capacity: the rest is
//!   room for retransmissions, keyframes larger than the layer's average, and packet headers the
//!   layer rates leave out. The estimate is the lower of that and the loss estimate.
//! - **Loss weighting.** The loss that counts is the rate-weighted loss of what the subscriber
//!   received (a lossy audio stream alone says little about the link's room for video), and
//!   loss well under a measured capacity cuts only above 20 % (see [`LossEstimate::update`]).
//! - **Small moves.** An estimate that moved by 5 % or less changes no layer: it is not handed on.
//! - **Probes.** A link whose estimate holds a video below what it wants is probed every
//!   [`PROBE_INTERVAL`]; while probes find no room the wait doubles up to
//!   [`PROBE_INTERVAL_MAX`] (a rural link probed every 2 s for good loses packets to the
//!   probes: measured 1.8 % frozen video on the rural profile, against 0 % with backing off).
//!   A link that loss holds is not probed: a probe measures capacity, and there it only adds
//!   load. A probe resends the stream's latest packets, [`PROBE_BYTES`] at least
//!   ([`probe_train`]).
//!
//! Pure: every input carries `now`; nothing reads a clock.

use std::time::{Duration, Instant};

use super::estimate::LossEstimate;

/// What a new subscriber's link is taken to carry before it is measured: its audio and the
/// low layer of one video (every video gets at least its lowest layer meanwhile, so that there
/// is something to measure with; see [`super::Router::set_start_estimate`]).
pub const START_ESTIMATE_BPS: u64 = 300_000;
/// How long after its leg connects an unmeasured link keeps the start estimate.
pub const START_WINDOW: Duration = Duration::from_secs(10);
/// How often a link whose estimate holds a video back is probed while probes find room...
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// ... and the longest wait they back off to while they find none.
pub const PROBE_INTERVAL_MAX: Duration = Duration::from_secs(8);
/// How often the transport hands [`DownlinkEstimator::update`] the capacity it measured: a
/// link found short must shed its layer before its queue overflows, not at the next 2 s
/// quality report.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(200);
/// The share of a measured capacity the router may fill.
const CAPACITY_HEADROOM: f64 = 0.85;
/// A probe is at least this many bytes: the capacity is read over a train's second half,
/// which must be 2 000 bytes or more ([`super::LinkCapacity`]). At 300 kbit/s it queues
/// ~150 ms; it is sent only while a video is held below what its subscriber wants.
pub const PROBE_BYTES: usize = 5_000;
/// ... and at most this many packets (a low layer's packets are small).
pub const PROBE_PACKETS: usize = 12;

/// How many of a stream's latest packets a probe resends, given their sizes on the wire
/// (as resent) newest first: enough for [`PROBE_BYTES`], at most [`PROBE_PACKETS`]; `None`
/// while the stream has sent too few to make one (the probe then waits for more).
pub fn probe_train(sizes_newest_first: impl IntoIterator<Item = usize>) -> Option<usize> {
    let mut bytes = 0;
    let mut count = 0;
    for size in sizes_newest_first {
        if bytes >= PROBE_BYTES || count == PROBE_PACKETS {
            break;
        }
        bytes += size;
        count += 1;
    }
    (bytes >= PROBE_BYTES || count == PROBE_PACKETS).then_some(count)
}

/// Whether a subscriber's link has been measured yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkStart {
    /// Not measured; since when its subscriber leg is connected.
    Unmeasured { connected_at: Option<Instant> },
    /// Measured (or given up on after [`START_WINDOW`]).
    Measured,
}

/// What the transport measured on a subscriber's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkMeasurement {
    /// The capacity its packet trains measured; `None` while nothing limits the link.
    pub capacity: Option<u64>,
    /// Whether any packet train has been measured (one too fast to limit anything included).
    pub measured: bool,
}

/// An estimate to hand the router; `None` inside means the link shows no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstimateChange {
    /// The first measured estimate after the start guess: for
    /// [`super::Router::set_first_estimate`] (the layers follow it at once, up too).
    First(Option<u64>),
    /// A later estimate that moved by more than noise: for [`super::Router::set_estimate`].
    Moved(Option<u64>),
}

/// One subscriber's downlink estimate and probe schedule. See the module docs.
#[derive(Debug, Clone)]
pub struct DownlinkEstimator {
    loss: LossEstimate,
    /// The estimate last handed to the router.
    applied: Option<u64>,
    start: LinkStart,
    connected: bool,
    /// When the link may next be probed, the wait after that one, and the estimate when it
    /// was last probed.
    next_probe: Instant,
    probe_interval: Duration,
    probed_at_estimate: Option<u64>,
}

impl DownlinkEstimator {
    /// A subscriber that joined at `now`: the router is given [`START_ESTIMATE_BPS`] with
    /// [`super::Router::set_start_estimate`].
    pub fn new(now: Instant) -> DownlinkEstimator {
        DownlinkEstimator {
            loss: LossEstimate::default(),
            applied: Some(START_ESTIMATE_BPS),
            start: LinkStart::Unmeasured { connected_at: None },
            connected: false,
            next_probe: now,
            probe_interval: PROBE_INTERVAL,
            probed_at_estimate: None,
        }
    }

    /// The estimate last handed to the router (the start estimate until the first change).
    pub fn applied(&self) -> Option<u64> {
        self.applied
    }

    /// What loss alone allows; `None` while the link shows no limit.
    pub fn loss_estimate(&self) -> Option<u64> {
        self.loss.bitrate()
    }

    /// Whether the link has been measured (or given up on).
    pub fn measured(&self) -> bool {
        self.start == LinkStart::Measured
    }

    /// The subscriber leg connected (or stopped being connected) at `now`: the start window
    /// runs from its first connection, and only a connected link is probed.
    pub fn on_connection(&mut self, now: Instant, connected: bool) {
        self.connected = connected;
        if connected && let LinkStart::Unmeasured { connected_at } = &mut self.start {
            connected_at.get_or_insert(now);
        }
    }

    /// A quality report interval ended at `now`: `streams` are the (loss 0.0–1.0, bits per
    /// second) of each stream sent to the subscriber over it, and `capacity` what its packet
    /// trains measure. Nothing sent to it, nothing learnt.
    pub fn on_receiver_reports(
        &mut self,
        now: Instant,
        streams: impl IntoIterator<Item = (f32, u64)>,
        capacity: Option<u64>,
    ) {
        let mut any = false;
        let mut sending: u64 = 0;
        let mut lost = 0.0f64;
        for (loss, bitrate) in streams {
            any = true;
            sending += bitrate;
            lost += f64::from(loss) * bitrate as f64;
        }
        if !any {
            return;
        }
        let loss = if sending == 0 {
            0.0
        } else {
            (lost / sending as f64) as f32
        };
        self.loss.update(now, loss, sending, capacity);
    }

    /// The estimate at `now` given what the link measured: `Some` when the router must be
    /// told (the first measurement, or a move of more than 5 %).
    pub fn update(&mut self, now: Instant, link: LinkMeasurement) -> Option<EstimateChange> {
        let mut estimate = combined(self.loss.bitrate(), link.capacity);
        let mut first = false;
        if let LinkStart::Unmeasured { connected_at } = self.start {
            let given_up = connected_at.is_some_and(|at| now >= at + START_WINDOW);
            if link.measured || given_up {
                self.start = LinkStart::Measured;
                first = true;
            } else {
                estimate = Some(estimate.map_or(START_ESTIMATE_BPS, |e| e.min(START_ESTIMATE_BPS)));
            }
        }
        let moved = match (estimate, self.applied) {
            // Small moves of a measurement change no layer; they would only churn.
            (Some(a), Some(b)) => a.abs_diff(b) * 20 > b,
            (a, b) => a != b,
        };
        if first {
            self.applied = estimate;
            Some(EstimateChange::First(estimate))
        } else if moved {
            self.applied = estimate;
            Some(EstimateChange::Moved(estimate))
        } else {
            None
        }
    }

    /// Whether the link may be probed at `now`, given the capacity it measures: connected,
    /// its back-off over, and not held by loss. The transport then asks the router whether
    /// the estimate holds a video back ([`super::Router::held_back`]) and, if so, probes and
    /// calls [`DownlinkEstimator::on_probe`].
    pub fn probe_due(&self, now: Instant, capacity: Option<u64>) -> bool {
        // A probe measures capacity; where loss is what holds the link, it only adds load.
        let loss_binds = match (self.loss.bitrate(), combined(None, capacity)) {
            (Some(loss), Some(capacity)) => loss < capacity,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.connected && now >= self.next_probe && !loss_binds
    }

    /// A probe is asked for at `now`: the next one waits [`PROBE_INTERVAL`] if the last one
    /// found room (the estimate rose since by more than 10 %, or nothing limits the link any
    /// more), else twice the last wait, up to [`PROBE_INTERVAL_MAX`].
    pub fn on_probe(&mut self, now: Instant) {
        let found_room = match (self.applied, self.probed_at_estimate) {
            (None, _) => true,
            (Some(now_bps), Some(then)) => now_bps > then + then / 10,
            (Some(_), None) => true,
        };
        self.probe_interval = if found_room {
            PROBE_INTERVAL
        } else {
            (self.probe_interval * 2).min(PROBE_INTERVAL_MAX)
        };
        self.probed_at_estimate = self.applied;
        self.next_probe = now + self.probe_interval;
    }

    /// When the link may next be probed.
    pub fn next_probe(&self) -> Instant {
        self.next_probe
    }

    /// How long after the last probe the next may be sent.
    pub fn probe_interval(&self) -> Duration {
        self.probe_interval
    }
}

/// The downlink for the router: the lower of what loss allows and what the link's packet
/// trains measured (less [`CAPACITY_HEADROOM`]); `None` while neither limits it.
fn combined(loss: Option<u64>, capacity: Option<u64>) -> Option<u64> {
    let capacity = capacity.map(|bps| (bps as f64 * CAPACITY_HEADROOM) as u64);
    match (loss, capacity) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const S: fn(u64) -> Duration = Duration::from_secs;

    fn unmeasured() -> LinkMeasurement {
        LinkMeasurement::default()
    }

    fn measured(capacity: Option<u64>) -> LinkMeasurement {
        LinkMeasurement {
            capacity,
            measured: true,
        }
    }

    #[test]
    fn the_start_estimate_holds_until_the_first_measurement_which_is_followed_at_once() {
        let t0 = Instant::now();
        let mut d = DownlinkEstimator::new(t0);
        assert_eq!(d.applied(), Some(START_ESTIMATE_BPS));
        d.on_connection(t0, true);
        // Unmeasured: nothing to tell, whatever time passes inside the window.
        for i in 1..45 {
            assert_eq!(d.update(t0 + MS(200) * i, unmeasured()), None);
        }
        // A capacity known before any train counts is still capped by the start estimate.
        assert_eq!(
            d.update(
                t0 + S(9),
                LinkMeasurement {
                    capacity: Some(2_000_000),
                    measured: false
                }
            ),
            None
        );
        // The first train measures 2 Mbit/s: followed at once, less the headroom.
        assert_eq!(
            d.update(t0 + S(9) + MS(200), measured(Some(2_000_000))),
            Some(EstimateChange::First(Some(1_700_000)))
        );
        assert!(d.measured());
        // A measurement that finds no limit at all is a first estimate of `None`.
        let mut fast = DownlinkEstimator::new(t0);
        fast.on_connection(t0, true);
        assert_eq!(
            fast.update(t0 + MS(200), measured(None)),
            Some(EstimateChange::First(None))
        );
        assert_eq!(fast.applied(), None);
    }

    #[test]
    fn an_unmeasured_link_falls_back_to_loss_after_the_start_window() {
        let t0 = Instant::now();
        let mut d = DownlinkEstimator::new(t0);
        // The window runs from the leg's first connection, not from joining.
        assert_eq!(d.update(t0 + S(30), unmeasured()), None);
        let connected = t0 + S(30);
        d.on_connection(connected, true);
        d.on_connection(connected + S(1), false);
        d.on_connection(connected + S(2), true);
        assert_eq!(d.update(connected + S(10) - MS(1), unmeasured()), None);
        assert_eq!(
            d.update(connected + S(10), unmeasured()),
            Some(EstimateChange::First(None)),
            "no TWCC feedback: loss alone, which shows no limit"
        );
        // From then on only moves are told.
        assert_eq!(d.update(connected + S(11), unmeasured()), None);
    }

    #[test]
    fn heavy_loss_before_the_measurement_lowers_the_start_estimate() {
        let t0 = Instant::now();
        let mut d = DownlinkEstimator::new(t0);
        d.on_connection(t0, true);
        // 300 kbit/s sent, 60 % lost: the loss estimate is 210 kbit/s.
        d.on_receiver_reports(t0 + S(2), [(0.6, 300_000)], None);
        assert_eq!(d.loss_estimate(), Some(210_000));
        assert_eq!(
            d.update(t0 + S(2), unmeasured()),
            Some(EstimateChange::Moved(Some(210_000)))
        );
    }

    #[test]
    fn loss_is_weighted_by_rate_and_random_loss_under_capacity_does_not_cut() {
        let t0 = Instant::now();
        let mut d = DownlinkEstimator::new(t0);
        // A lossy audio stream beside a clean video: (0.5 × 40k + 0 × 400k) / 440k ≈ 4.5 %.
        d.on_receiver_reports(t0, [(0.5, 40_000), (0.0, 400_000)], None);
        assert_eq!(d.loss_estimate(), None, "not the link's limit");
        // 12 % over 190 kbit/s on a link measured at 300 kbit/s: random, not congestion.
        d.on_receiver_reports(t0 + S(2), [(0.12, 190_000)], Some(300_000));
        assert_eq!(d.loss_estimate(), None);
        // The same loss at the capacity is congestion.
        d.on_receiver_reports(t0 + S(4), [(0.12, 280_000)], Some(300_000));
        assert_eq!(d.loss_estimate(), Some(263_200));
        // No stream sent: nothing learnt, the estimate stays.
        d.on_receiver_reports(t0 + S(6), [], Some(300_000));
        assert_eq!(d.loss_estimate(), Some(263_200));
    }

    #[test]
    fn the_estimate_is_the_lower_of_loss_and_capacity_less_headroom_and_small_moves_are_kept_back()
    {
        let t0 = Instant::now();
        let mut d = DownlinkEstimator::new(t0);
        d.on_connection(t0, true);
        assert_eq!(
            d.update(t0, measured(Some(1_000_000))),
            Some(EstimateChange::First(Some(850_000)))
        );
        // 5 % or less is noise: 850k → 880k (×1.035) stays unsaid.
        assert_eq!(d.update(t0 + MS(200), measured(Some(1_035_000))), None);
        assert_eq!(d.applied(), Some(850_000));
        // More than 5 %: told.
        assert_eq!(
            d.update(t0 + MS(400), measured(Some(1_100_000))),
            Some(EstimateChange::Moved(Some(935_000)))
        );
        // Loss binds below the capacity.
        d.on_receiver_reports(t0 + S(2), [(0.4, 900_000)], Some(1_100_000));
        assert_eq!(
            d.update(t0 + S(2), measured(Some(1_100_000))),
            Some(EstimateChange::Moved(Some(720_000)))
        );
        // The capacity lifts: loss alone.
        assert_eq!(d.update(t0 + S(2) + MS(200), measured(None)), None);
        assert_eq!(d.applied(), Some(720_000));
    }

    #[test]
    fn probes_back_off_while_they_find_no_room_and_return_to_2_s_when_they_do() {
        let t0 = Instant::now();
        let mut d = DownlinkEstimator::new(t0);
        assert!(!d.probe_due(t0, None), "not connected");
        d.on_connection(t0, true);
        assert!(d.probe_due(t0, None));
        let capacity = Some(600_000);
        d.update(t0, measured(capacity));
        // The schedule a capped link sees: the estimate never rises.
        let mut at = t0;
        let mut waits = vec![];
        for _ in 0..5 {
            while !d.probe_due(at, capacity) {
                at += UPDATE_INTERVAL;
            }
            d.on_probe(at);
            waits.push(d.next_probe() - at);
        }
        // The first probe is the first since joining: it counts as finding room.
        assert_eq!(waits, vec![S(2), S(4), S(8), S(8), S(8)]);
        // The link got better: the next probe finds the estimate more than 10 % up.
        at = d.next_probe();
        assert_eq!(
            d.update(at, measured(Some(800_000))),
            Some(EstimateChange::Moved(Some(680_000)))
        );
        assert!(d.probe_due(at, Some(800_000)));
        d.on_probe(at);
        assert_eq!(d.next_probe() - at, S(2));
        // A rise of 10 % or less is not room.
        at = d.next_probe();
        d.update(at, measured(Some(880_000)));
        assert_eq!(d.applied(), Some(748_000));
        d.on_probe(at);
        assert_eq!(d.next_probe() - at, S(4));
    }

    #[test]
    fn a_link_held_by_loss_is_not_probed() {
        let t0 = Instant::now();
        let mut d = DownlinkEstimator::new(t0);
        d.on_connection(t0, true);
        d.on_receiver_reports(t0, [(0.5, 400_000)], None);
        assert_eq!(d.loss_estimate(), Some(300_000));
        assert!(!d.probe_due(t0, None), "loss with no capacity measured");
        assert!(
            !d.probe_due(t0, Some(1_000_000)),
            "loss under the capacity (850k after headroom)"
        );
        assert!(
            d.probe_due(t0, Some(300_000)),
            "the capacity binds (255k after headroom): probing can find room"
        );
        d.on_connection(t0, false);
        assert!(!d.probe_due(t0, Some(300_000)), "disconnected");
    }

    #[test]
    fn a_probe_is_5_000_bytes_or_12_packets_of_the_latest() {
        // ~1 000-byte packets: five make 5 000 bytes.
        assert_eq!(probe_train([1014; 20]), Some(5));
        // A low layer's small packets: twelve at most.
        assert_eq!(probe_train([120; 20]), Some(12));
        assert_eq!(probe_train([120; 12]), Some(12));
        // Too few sent yet.
        assert_eq!(probe_train([1014; 4]), None);
        assert_eq!(probe_train([120; 11]), None);
        assert_eq!(probe_train([]), None);
    }
}
