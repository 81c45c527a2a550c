//! The media engine of one shard, sans-I/O: every peer connection of the participants it
//! serves, the forwarding core, and the registry that ties them together. It owns no socket,
//! no channel receiver and no clock (str0m's contract): datagrams, commands and timeouts come
//! in with the `now` they happened at (`handle_*`), and what they caused comes out — datagrams
//! to send ([`Engine::poll_transmit`]) and the next deadline ([`Engine::poll_timeout`]).
//!
//! Events for the control plane and packets for taps go out on the bounded channels the
//! control plane handed in with `join` and `tap`, with `try_send`: the engine never waits for
//! a receiver, a full queue drops the event and counts it (`events_dropped`,
//! `tap_events_dropped`). They stay channels rather than becoming engine outputs because each
//! is addressed to one participant and its sender already lives in that participant's record;
//! the event loop would otherwise keep a second registry of the same participants. `try_send`
//! needs no runtime, so a test drives the engine with plain `try_recv`.
//!
//! What a turn does lives beside this file: `commands` (the control plane's requests),
//! `inbound` (what a connection produced: state changes, opened tracks, RTP and RTCP),
//! `negotiation` (the subscriber leg's offers and answers), `quality_report` and `downlink`.
//! This file holds the registry, the turn itself (drain a connection, then carry out what the
//! core decided) and the outbound packet path. Everything is owned through `&mut self`;
//! nothing on the packet path takes a lock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::demux::{Demux, Route, is_stun_success};
use super::downlink::{CAPACITY_INTERVAL, Downlink};
use super::link::ConnKey;
use super::peer::{Peer, Sender, leg_format, random_token};
use super::timers::Timers;
use super::{PeerLeg, QUALITY_INTERVAL, SfuConfig, SfuError, SfuEvent, SfuStats, TapEvent};
use crate::core::{Output, Router, RouterConfig};
use crate::ids::{ParticipantId, PublicationId};

/// One datagram the engine wants sent from its socket.
#[derive(Debug)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub contents: BytesMut,
}

impl From<TaggedBytesMut> for Transmit {
    fn from(msg: TaggedBytesMut) -> Transmit {
        Transmit {
            destination: msg.transport.peer_addr,
            contents: msg.message,
        }
    }
}

/// Wall-clock time for RTCP's NTP fields, read once (by whoever starts the engine) and carried
/// forward on the monotonic clock (as `rtc`'s sender reports do), so a clock step does not
/// make round trips jump.
pub(super) struct WallClock {
    at: Instant,
    since_unix_epoch: Duration,
}

impl WallClock {
    pub(super) fn since_unix_epoch(&self, now: Instant) -> Duration {
        self.since_unix_epoch + now.saturating_duration_since(self.at)
    }
}

/// The sender of a subscriber leg whose SSRC is `ssrc`.
pub(super) fn sender_by_ssrc(peer: &mut Peer, ssrc: u32) -> Option<&mut Sender> {
    peer.senders.values_mut().find(|s| s.format.ssrc == ssrc)
}

/// A participant as the engine sees it.
pub(super) struct Participant {
    pub(super) events: mpsc::Sender<SfuEvent>,
    pub(super) publisher: Option<ConnKey>,
    pub(super) subscriber: ConnKey,
    /// The source the client declared for each mid of its publisher leg.
    pub(super) declared: HashMap<String, crate::core::Source>,
    pub(super) publication_by_mid: HashMap<String, PublicationId>,
    /// An offer to the subscriber leg is out and unanswered.
    pub(super) awaiting_answer: bool,
    /// Senders changed while an offer was out: offer again after the answer.
    pub(super) renegotiate: bool,
    pub(super) subscriber_connected: bool,
    /// Its downlink: what the router is told it carries, and when to probe it.
    pub(super) downlink: Downlink,
}

/// One shard's media engine (see the module comment). Driven by the event loop in
/// production and by virtual-time tests in `sfu/tests`.
pub struct Engine {
    /// The address in our ICE candidate; also the local address we tell connections.
    pub(super) local: SocketAddr,
    pub(super) stats: Arc<SfuStats>,
    pub(super) router: Router,
    pub(super) peers: HashMap<ConnKey, Peer>,
    pub(super) next_conn: u64,
    pub(super) demux: Demux,
    pub(super) timers: Timers,
    pub(super) participants: HashMap<ParticipantId, Participant>,
    /// Subscribers with no connection, fed through a channel (see [`super::TapEvent`]).
    pub(super) taps: HashMap<ParticipantId, mpsc::Sender<TapEvent>>,
    pub(super) wall_clock: WallClock,
    /// When quality was last reported, and when it is next due.
    pub(super) quality_at: Instant,
    pub(super) next_quality: Instant,
    pub(super) next_capacity: Instant,
    /// Connections touched since the deadlines were last read, and the latest `now` seen
    /// (a deadline at or before it was just handled).
    pub(super) dirty: HashSet<ConnKey>,
    pub(super) last_now: Instant,
    /// Datagrams to send, oldest first; drained by [`Engine::poll_transmit`] after each input.
    pub(super) transmits: VecDeque<Transmit>,
}

impl Engine {
    /// An engine with no participants. `local` is the address its connections advertise as
    /// their only ICE candidate (and see as their local address); `since_unix_epoch` is the
    /// wall-clock time at `now`, for RTCP's NTP fields.
    pub fn new(
        config: &SfuConfig,
        local: SocketAddr,
        stats: Arc<SfuStats>,
        now: Instant,
        since_unix_epoch: Duration,
    ) -> Engine {
        Engine {
            local,
            stats,
            router: Router::new(RouterConfig {
                keyframe_interval: config.keyframe_request_interval,
                ..RouterConfig::default()
            }),
            peers: HashMap::new(),
            next_conn: 1,
            demux: Demux::default(),
            timers: Timers::default(),
            participants: HashMap::new(),
            taps: HashMap::new(),
            wall_clock: WallClock {
                at: now,
                since_unix_epoch,
            },
            quality_at: now,
            next_quality: now + QUALITY_INTERVAL,
            next_capacity: now + CAPACITY_INTERVAL,
            dirty: HashSet::new(),
            last_now: now,
            transmits: VecDeque::new(),
        }
    }

    /// The counters this engine keeps.
    pub fn stats(&self) -> &Arc<SfuStats> {
        &self.stats
    }

    /// What the router was last told `participant`'s downlink carries, in bits per second
    /// (`Some(None)`: nothing limits it; `None`: no such participant). For tests.
    #[doc(hidden)]
    pub fn downlink_estimate(&self, participant: ParticipantId) -> Option<Option<u64>> {
        self.participants
            .get(&participant)
            .map(|p| p.downlink.applied())
    }

    /// How long `participant`'s link waits between probes now. For tests.
    #[doc(hidden)]
    pub fn probe_interval(&self, participant: ParticipantId) -> Option<Duration> {
        self.participants
            .get(&participant)
            .map(|p| p.downlink.probe_interval())
    }

    /// The next datagram to send, if any. Drain after every `handle_*`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Engine::handle_timeout`] must next be called: the earliest of the connections'
    /// timers, the core's, the next quality report and the next downlink update.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.reschedule(self.last_now);
        [
            self.timers.next(),
            self.router.poll_timeout(),
            Some(self.next_quality),
            Some(self.next_capacity),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs whatever is due at `now`: connection timers, the core's timeout, the quality
    /// report and the downlink update.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        self.handle_timers(now);
        if now >= self.next_quality {
            self.report_quality(now);
        }
        if now >= self.next_capacity {
            self.apply_estimates(now);
        }
    }

    /// A datagram that arrived on the shard's socket from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.last_now = self.last_now.max(now);
        let (key, stun_from) = match self.demux.route(from, datagram) {
            Route::Stun(key) => (key, Some(from)),
            Route::Known(key) => (key, None),
            Route::Unknown => {
                SfuStats::add(&self.stats.udp_unmatched, 1);
                return;
            }
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let input = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(datagram),
        };
        if let Err(e) = peer.pc.handle_read(input) {
            debug!(conn = key.0, error = %e, "connection rejected a datagram");
        }
        self.drain(now, key, stun_from);
    }

    pub(super) fn new_peer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        leg: PeerLeg,
    ) -> Result<ConnKey, SfuError> {
        let ufrag = random_token(16);
        let peer = Peer::new(now, participant, leg, &ufrag, self.local)
            .map_err(|e| SfuError::Internal(e.to_string()))?;
        let key = ConnKey(self.next_conn);
        self.next_conn += 1;
        self.peers.insert(key, peer);
        self.demux.add_ufrag(ufrag, key);
        self.dirty.insert(key);
        Ok(key)
    }

    fn handle_timers(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            if let Some(peer) = self.peers.get_mut(&key) {
                if let Err(e) = peer.pc.handle_timeout(now) {
                    debug!(conn = key.0, error = %e, "connection timeout handling failed");
                }
                self.drain(now, key, None);
            }
        }
        if self.router.poll_timeout().is_some_and(|at| at <= now) {
            self.router.handle_timeout(now);
            self.process_outputs(now);
            self.update_gauges();
        }
    }

    /// Re-reads the deadline of every connection touched this turn.
    fn reschedule(&mut self, now: Instant) {
        for key in self.dirty.drain() {
            if let Some(peer) = self.peers.get_mut(&key) {
                // A deadline at or before now was just handled; never spin on it.
                let at = peer
                    .pc
                    .poll_timeout()
                    .map(|at| at.max(now + Duration::from_millis(1)));
                self.timers.schedule(key, at);
            }
        }
    }

    /// Queues a datagram for [`Engine::poll_transmit`].
    pub(super) fn send(&mut self, msg: TaggedBytesMut) {
        self.transmits.push_back(Transmit::from(msg));
    }

    /// Drains everything a connection produced after an input, and what that caused.
    pub(super) fn drain(&mut self, now: Instant, key: ConnKey, stun_from: Option<SocketAddr>) {
        self.dirty.insert(key);
        loop {
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            let mut proven = false;
            let mut writes = Vec::new();
            while let Some(msg) = peer.pc.poll_write() {
                if stun_from == Some(msg.transport.peer_addr) && is_stun_success(&msg.message) {
                    proven = true;
                }
                writes.push(msg);
            }
            let events: Vec<_> = std::iter::from_fn(|| peer.pc.poll_event()).collect();
            let reads: Vec<_> = std::iter::from_fn(|| peer.pc.poll_read()).collect();
            for msg in writes {
                self.send(msg);
            }
            if let (true, Some(addr)) = (proven, stun_from) {
                self.demux.learn_addr(key, addr);
            }
            if events.is_empty() && reads.is_empty() {
                return;
            }
            for event in events {
                self.handle_peer_event(now, key, event);
            }
            for read in reads {
                self.handle_peer_message(now, key, read);
            }
            self.process_outputs(now);
        }
    }

    /// Carries out what the core decided.
    pub(super) fn process_outputs(&mut self, now: Instant) {
        let mut renegotiate = Vec::new();
        while let Some(output) = self.router.poll_output() {
            match output {
                Output::Forward {
                    subscriber,
                    publication,
                    packet,
                } if self.taps.contains_key(&subscriber) => self.tap_send(
                    now,
                    subscriber,
                    TapEvent::Packet {
                        publication,
                        at: now,
                        packet,
                    },
                ),
                Output::Forward {
                    subscriber,
                    publication,
                    packet,
                } => self.forward(now, subscriber, publication, packet),
                Output::SubscriptionAdded {
                    subscriber,
                    publication,
                    kind,
                    source,
                } if self.taps.contains_key(&subscriber) => {
                    let Some((owner, ..)) = self.router.publication(publication) else {
                        continue;
                    };
                    // A tap has no negotiation to wait for: it receives at once, in the
                    // format a browser would (the recorder reads payload types and clocks).
                    let ssrc = u32::try_from(publication.0 & u64::from(u32::MAX)).unwrap_or(1);
                    if let Err(e) = self.router.attach_subscription(
                        now,
                        subscriber,
                        publication,
                        leg_format(kind, ssrc),
                    ) {
                        debug!(error = %e, "tapped publication went away before attaching");
                        continue;
                    }
                    self.tap_send(
                        now,
                        subscriber,
                        TapEvent::PublicationAdded {
                            publication,
                            owner,
                            source,
                            kind,
                        },
                    );
                }
                Output::SubscriptionRemoved {
                    subscriber,
                    publication,
                } if self.taps.contains_key(&subscriber) => {
                    self.tap_send(
                        now,
                        subscriber,
                        TapEvent::PublicationRemoved { publication },
                    );
                }
                Output::RequestKeyframe {
                    publisher,
                    publication,
                    media_ssrc,
                } => self.request_keyframe(now, publisher, publication, media_ssrc),
                Output::SubscriptionAdded {
                    subscriber,
                    publication,
                    kind,
                    ..
                } => {
                    self.add_sender(subscriber, publication, kind);
                    renegotiate.push(subscriber);
                }
                Output::SubscriptionRemoved {
                    subscriber,
                    publication,
                } => {
                    self.remove_sender(subscriber, publication);
                    renegotiate.push(subscriber);
                }
                Output::LayerChanged {
                    subscriber,
                    publication,
                    layer,
                } => {
                    debug!(%subscriber, %publication, ?layer, "subscription layer changed");
                    if let Some(sender) = self
                        .participants
                        .get(&subscriber)
                        .and_then(|p| self.peers.get_mut(&p.subscriber))
                        .and_then(|peer| peer.senders.get_mut(&publication))
                    {
                        sender.layer = layer;
                    }
                }
                Output::PublicationRemoved { owner, publication } => {
                    if let Some(p) = self.participants.get_mut(&owner) {
                        p.publication_by_mid.retain(|_, id| *id != publication);
                        if let Some(peer) = p.publisher.and_then(|k| self.peers.get_mut(&k)) {
                            peer.publication_by_ssrc
                                .retain(|_, (id, _)| *id != publication);
                            peer.receiver_of.remove(&publication);
                        }
                    }
                    self.emit(owner, SfuEvent::PublicationEnded { publication });
                }
            }
        }
        renegotiate.sort();
        renegotiate.dedup();
        for participant in renegotiate {
            self.negotiate(now, participant);
        }
    }

    fn forward(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
        packet: rtc::rtp::Packet,
    ) {
        let Some(key) = self.participants.get(&subscriber).map(|p| p.subscriber) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(sender) = peer.senders.get_mut(&publication) else {
            return;
        };
        let bytes = packet.payload.len() + 12;
        let Some(mut rtp_sender) = peer.pc.rtp_sender(sender.id) else {
            return;
        };
        match rtp_sender.write_rtp(now, packet) {
            Ok(()) => {
                sender.stats.on_sent(bytes);
                SfuStats::add(&self.stats.rtp_packets_out, 1);
                SfuStats::add(&self.stats.rtp_bytes_out, bytes as u64);
            }
            Err(e) => {
                SfuStats::add(&self.stats.forward_errors, 1);
                debug!(%subscriber, %publication, error = %e, "subscriber leg refused a packet");
            }
        }
        while let Some(msg) = peer.pc.poll_write() {
            self.transmits.push_back(Transmit::from(msg));
        }
        self.dirty.insert(key);
    }

    fn request_keyframe(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        publication: PublicationId,
        media_ssrc: u32,
    ) {
        let Some(key) = self.participants.get(&publisher).and_then(|p| p.publisher) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(&receiver) = peer.receiver_of.get(&publication) else {
            return;
        };
        let Some(mut rtp_receiver) = peer.pc.rtp_receiver(receiver) else {
            return;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        if rtp_receiver.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
            SfuStats::add(&self.stats.keyframe_requests_sent, 1);
        }
        while let Some(msg) = peer.pc.poll_write() {
            self.transmits.push_back(Transmit::from(msg));
        }
        self.dirty.insert(key);
    }

    /// Hands a tap one event without waiting; a tap whose receiver is gone is removed.
    pub(super) fn tap_send(&mut self, now: Instant, tap: ParticipantId, event: TapEvent) {
        let Some(sink) = self.taps.get(&tap) else {
            return;
        };
        match sink.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                SfuStats::add(&self.stats.tap_events_dropped, 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.leave(now, tap),
        }
    }

    pub(super) fn emit(&self, participant: ParticipantId, event: SfuEvent) {
        let Some(p) = self.participants.get(&participant) else {
            return;
        };
        if p.events.try_send(event).is_err() {
            // The control plane is not keeping up with (or has dropped) this participant;
            // the media loop must not wait for it.
            SfuStats::add(&self.stats.events_dropped, 1);
            warn!(%participant, "participant event queue full or closed; event dropped");
        }
    }

    pub(super) fn update_gauges(&self) {
        let s = &self.stats;
        s.peer_connections
            .store(self.peers.len() as u64, Ordering::Relaxed);
        s.participants
            .store(self.participants.len() as u64, Ordering::Relaxed);
        let publications = self
            .participants
            .values()
            .map(|p| p.publication_by_mid.len() as u64)
            .sum();
        s.publications.store(publications, Ordering::Relaxed);
        s.keyframe_requests_throttled
            .store(self.router.keyframe_requests_throttled(), Ordering::Relaxed);
    }
}
