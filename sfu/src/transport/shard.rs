//! One shard: one event loop on a thread of its own, one UDP socket, and every peer
//! connection of the participants it serves.
//!
//! The loop waits for whichever comes first — a command from the control plane, a datagram,
//! or the earliest deadline (connection timers from the heap, the core's own timeout) — feeds
//! it to its owner, then drains what that produced: datagrams to send, connection events,
//! RTP/RTCP for the core, and the core's outputs (packets to write to subscriber legs, keyframe
//! requests to publishers, senders to add or remove). Everything is owned through `&mut self`;
//! nothing on the packet path takes a lock.
//!
//! More shards (one per core, each with its own port) can be added without changing this
//! type: a shard only ever needs the participants placed on it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::demux::{Demux, Route, is_stun_success};
use super::peer::{ConnKey, Peer, Sender, codec, leg_format, random_token};
use super::rtcp_relay::is_keyframe_request;
use super::timers::Timers;
use super::{
    Command, PeerLeg, PeerState, QUALITY_INTERVAL, SfuConfig, SfuError, SfuEvent, SfuStats,
    StreamQuality, TapEvent, TrackMapping,
};
use crate::core::{
    InboundStats, Layer, LossEstimate, MediaKind, OutboundStats, Output, Router, RouterConfig,
    Source, ntp_compact, round_trip,
};
use crate::ids::{LessonId, ParticipantId, PublicationId};

/// Datagrams read per wake-up before the loop looks at commands and timers again.
const RECV_BATCH: usize = 64;
/// Larger than any datagram a WebRTC peer sends (they keep under the path MTU).
const RECV_BUFFER: usize = 4096;

/// Wall-clock time for RTCP's NTP fields, read once and carried forward on the monotonic clock
/// (as `rtc`'s sender reports do), so a clock step does not make round trips jump.
struct WallClock {
    at: Instant,
    since_unix_epoch: Duration,
}

impl WallClock {
    fn now() -> WallClock {
        WallClock {
            at: Instant::now(),
            since_unix_epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    fn since_unix_epoch(&self, now: Instant) -> Duration {
        self.since_unix_epoch + now.saturating_duration_since(self.at)
    }
}

/// The sender of a subscriber leg whose SSRC is `ssrc`.
fn sender_by_ssrc(peer: &mut Peer, ssrc: u32) -> Option<&mut Sender> {
    peer.senders.values_mut().find(|s| s.format.ssrc == ssrc)
}

/// Binds the shard's socket and starts its loop on a dedicated thread. Returns the address
/// advertised in ICE candidates.
pub(crate) async fn spawn(
    config: SfuConfig,
    commands: mpsc::Receiver<Command>,
    stats: Arc<SfuStats>,
) -> Result<SocketAddr, SfuError> {
    if config.udp_bind.ip().is_unspecified() && config.public_ip.is_none() {
        return Err(SfuError::BadConfig(
            "binding media to an unspecified address needs a public IP for ICE candidates".into(),
        ));
    }
    let socket = std::net::UdpSocket::bind(config.udp_bind).map_err(SfuError::Bind)?;
    socket.set_nonblocking(true).map_err(SfuError::Bind)?;
    let bound = socket.local_addr().map_err(SfuError::Bind)?;
    let advertised = SocketAddr::new(config.public_ip.unwrap_or(bound.ip()), bound.port());
    let (started_tx, started_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("sfu-shard-0".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = started_tx.send(Err(SfuError::Bind(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let socket = match UdpSocket::from_std(socket) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = started_tx.send(Err(SfuError::Bind(e)));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(()));
                Shard::new(config, socket, advertised, stats)
                    .run(commands)
                    .await;
            });
        })
        .map_err(SfuError::Bind)?;
    started_rx.await.map_err(|_| SfuError::Closed)??;
    info!(%advertised, %bound, "media shard listening");
    Ok(advertised)
}

/// A participant as the shard sees it.
struct Participant {
    events: mpsc::Sender<SfuEvent>,
    publisher: Option<ConnKey>,
    subscriber: ConnKey,
    /// The source the client declared for each mid of its publisher leg.
    declared: HashMap<String, Source>,
    publication_by_mid: HashMap<String, PublicationId>,
    /// An offer to the subscriber leg is out and unanswered.
    awaiting_answer: bool,
    /// Senders changed while an offer was out: offer again after the answer.
    renegotiate: bool,
    subscriber_connected: bool,
    /// Its downlink, from the loss it reports; its video layers follow it, limited further by
    /// the capacity its subscriber leg measures ([`Peer::link`]).
    downlink: LossEstimate,
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
const CAPACITY_INTERVAL: Duration = Duration::from_millis(200);

struct Shard {
    socket: UdpSocket,
    /// The address in our ICE candidate; also the local address we tell connections.
    local: SocketAddr,
    stats: Arc<SfuStats>,
    router: Router,
    peers: HashMap<ConnKey, Peer>,
    next_conn: u64,
    demux: Demux,
    timers: Timers,
    participants: HashMap<ParticipantId, Participant>,
    /// Subscribers with no connection, fed through a channel (see [`super::TapEvent`]).
    taps: HashMap<ParticipantId, mpsc::Sender<TapEvent>>,
    wall_clock: WallClock,
    /// When quality was last reported, and when it is next due.
    quality_at: Instant,
    next_quality: Instant,
    next_capacity: Instant,
    /// Connections touched this turn whose deadline must be re-read.
    dirty: HashSet<ConnKey>,
}

/// Whether a sender can start forwarding (once the leg is connected).
fn sender_ready(sender: &Sender) -> bool {
    sender.negotiated && !sender.attached
}

impl Shard {
    fn new(config: SfuConfig, socket: UdpSocket, local: SocketAddr, stats: Arc<SfuStats>) -> Shard {
        Shard {
            socket,
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
            wall_clock: WallClock::now(),
            quality_at: Instant::now(),
            next_quality: Instant::now() + QUALITY_INTERVAL,
            next_capacity: Instant::now() + CAPACITY_INTERVAL,
            dirty: HashSet::new(),
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            let now = Instant::now();
            self.handle_timers(now);
            if now >= self.next_quality {
                self.report_quality(now);
            }
            if now >= self.next_capacity {
                self.apply_estimates(now);
            }
            self.reschedule(now);
            let deadline = [
                self.timers.next(),
                self.router.poll_timeout(),
                Some(self.next_quality),
                Some(self.next_capacity),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::Shutdown { done }) => {
                        self.close_all(Instant::now());
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.handle_command(Instant::now(), command),
                    // Every handle is gone: nobody can use the media plane any more.
                    None => {
                        self.close_all(Instant::now());
                        return;
                    }
                },
                received = self.socket.recv_from(&mut buf) => {
                    match received {
                        Ok((n, from)) => self.handle_datagram(Instant::now(), from, &buf[..n]),
                        Err(e) => debug!(error = %e, "udp receive failed"),
                    }
                    for _ in 1..RECV_BATCH {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => self.handle_datagram(Instant::now(), from, &buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
                () = sleep => {}
            }
        }
    }

    // ---- control plane ----

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Join {
                lesson,
                participant,
                events,
                reply,
            } => {
                let _ = reply.send(self.join(now, lesson, participant, events));
            }
            Command::PublisherOffer {
                participant,
                sdp,
                sources,
                reply,
            } => {
                let _ = reply.send(self.publisher_offer(now, participant, sdp, sources));
            }
            Command::Unpublish {
                participant,
                mid,
                reply,
            } => {
                let _ = reply.send(self.unpublish(now, participant, &mid));
            }
            Command::SubscriberAnswer {
                participant,
                sdp,
                reply,
            } => {
                let _ = reply.send(self.subscriber_answer(now, participant, sdp));
            }
            Command::SetMuted {
                publication,
                muted,
                reply,
            } => {
                let result = self
                    .router
                    .set_muted(now, publication, muted)
                    .map_err(|_| SfuError::NoSuchPublication(publication));
                self.process_outputs(now);
                let _ = reply.send(result);
            }
            Command::SetSubscription {
                participant,
                publication,
                max_layer,
                paused,
                reply,
            } => {
                let result = self
                    .router
                    .set_subscription(now, participant, publication, max_layer, paused)
                    .map_err(|_| SfuError::NoSuchSubscription {
                        participant,
                        publication,
                    });
                self.process_outputs(now);
                let _ = reply.send(result);
            }
            Command::Tap {
                lesson,
                tap,
                sink,
                reply,
            } => {
                let _ = reply.send(self.tap(now, lesson, tap, sink));
            }
            Command::RequestKeyframe {
                tap,
                publication,
                reply,
            } => {
                let result = self
                    .router
                    .handle_keyframe_request(now, tap, publication)
                    .map_err(|_| SfuError::NoSuchSubscription {
                        participant: tap,
                        publication,
                    });
                self.process_outputs(now);
                let _ = reply.send(result);
            }
            Command::Leave { participant } => self.leave(now, participant),
            Command::Shutdown { .. } => unreachable!("handled by the loop"),
        }
        self.update_gauges();
    }

    fn new_peer(
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

    fn join(
        &mut self,
        now: Instant,
        lesson: LessonId,
        participant: ParticipantId,
        events: mpsc::Sender<SfuEvent>,
    ) -> Result<(), SfuError> {
        if self.participants.contains_key(&participant) {
            return Err(SfuError::AlreadyJoined(participant));
        }
        let subscriber = self.new_peer(now, participant, PeerLeg::Subscriber)?;
        self.participants.insert(
            participant,
            Participant {
                events,
                publisher: None,
                subscriber,
                declared: HashMap::new(),
                publication_by_mid: HashMap::new(),
                awaiting_answer: false,
                renegotiate: false,
                subscriber_connected: false,
                downlink: LossEstimate::default(),
                applied: Some(START_ESTIMATE_BPS),
                start: LinkStart::Unmeasured { connected_at: None },
                next_probe: now,
                probe_interval: PROBE_INTERVAL,
                probed_at_estimate: None,
            },
        );
        if let Err(e) = self.router.add_participant(lesson, participant, true) {
            warn!(%participant, error = %e, "router refused a participant");
        }
        self.router
            .set_start_estimate(now, participant, START_ESTIMATE_BPS);
        self.process_outputs(now);
        Ok(())
    }

    fn publisher_offer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        sdp: String,
        sources: Vec<(String, Source)>,
    ) -> Result<String, SfuError> {
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or(SfuError::NoSuchParticipant(participant))?;
        p.declared.extend(sources);
        let existing = p.publisher;
        let offer =
            RTCSessionDescription::offer(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let key = match existing {
            Some(key) => key,
            None => self.new_peer(now, participant, PeerLeg::Publisher)?,
        };
        let result = self.answer_offer(now, key, offer);
        match (&result, existing) {
            (Ok(_), None) => {
                if let Some(p) = self.participants.get_mut(&participant) {
                    p.publisher = Some(key);
                }
            }
            // A connection that never took an offer is of no use; the next offer starts afresh.
            (Err(_), None) => self.close_peer(now, key),
            _ => {}
        }
        self.drain(now, key, None);
        result
    }

    fn answer_offer(
        &mut self,
        now: Instant,
        key: ConnKey,
        offer: RTCSessionDescription,
    ) -> Result<String, SfuError> {
        let peer = self
            .peers
            .get_mut(&key)
            .ok_or(SfuError::Internal("publisher connection vanished".into()))?;
        peer.pc
            .set_remote_description(now, offer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let answer = peer
            .pc
            .create_answer(None)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        peer.pc
            .set_local_description(now, answer.clone())
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        Ok(answer.sdp)
    }

    fn unpublish(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        mid: &str,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or(SfuError::NoSuchParticipant(participant))?;
        p.declared.remove(mid);
        if let Some(publication) = p.publication_by_mid.remove(mid) {
            // Already gone from the router if its owner's state raced; nothing to undo then.
            let _ = self.router.remove_publication(publication);
            self.process_outputs(now);
        }
        Ok(())
    }

    fn subscriber_answer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        sdp: String,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or(SfuError::NoSuchParticipant(participant))?;
        if !p.awaiting_answer {
            return Err(SfuError::NoPendingOffer);
        }
        let key = p.subscriber;
        let answer =
            RTCSessionDescription::answer(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let peer = self
            .peers
            .get_mut(&key)
            .ok_or(SfuError::Internal("subscriber connection vanished".into()))?;
        peer.pc
            .set_remote_description(now, answer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        for sender in peer.senders.values_mut() {
            sender.negotiated |= sender.offered;
        }
        if let Some(p) = self.participants.get_mut(&participant) {
            p.awaiting_answer = false;
        }
        self.attach_ready(now, participant);
        self.negotiate(now, participant);
        self.drain(now, key, None);
        Ok(())
    }

    fn tap(
        &mut self,
        now: Instant,
        lesson: LessonId,
        tap: ParticipantId,
        sink: mpsc::Sender<TapEvent>,
    ) -> Result<(), SfuError> {
        if self.participants.contains_key(&tap) || self.taps.contains_key(&tap) {
            return Err(SfuError::AlreadyJoined(tap));
        }
        self.router
            .add_participant(lesson, tap, true)
            .map_err(|e| SfuError::Internal(e.to_string()))?;
        self.taps.insert(tap, sink);
        self.process_outputs(now);
        Ok(())
    }

    /// Hands a tap one event without waiting; a tap whose receiver is gone is removed.
    fn tap_send(&mut self, now: Instant, tap: ParticipantId, event: TapEvent) {
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

    fn leave(&mut self, now: Instant, participant: ParticipantId) {
        if self.taps.remove(&participant).is_some() {
            if let Err(e) = self.router.remove_participant(participant) {
                debug!(%participant, error = %e, "router had no such tap");
            }
            self.process_outputs(now);
            return;
        }
        let Some(p) = self.participants.remove(&participant) else {
            return;
        };
        if let Err(e) = self.router.remove_participant(participant) {
            debug!(%participant, error = %e, "router had no such participant");
        }
        self.process_outputs(now);
        for key in p.publisher.into_iter().chain([p.subscriber]) {
            self.close_peer(now, key);
        }
    }

    fn close_peer(&mut self, now: Instant, key: ConnKey) {
        if let Some(mut peer) = self.peers.remove(&key) {
            // close() queues a DTLS close_notify so the browser learns at once.
            let _ = peer.pc.close();
            while let Some(msg) = peer.pc.poll_write() {
                self.send(msg);
            }
            let _ = now;
        }
        self.demux.remove(key);
        self.timers.remove(key);
        self.dirty.remove(&key);
    }

    fn close_all(&mut self, now: Instant) {
        let participants: Vec<_> = self.participants.keys().copied().collect();
        for participant in participants {
            self.leave(now, participant);
        }
        let keys: Vec<_> = self.peers.keys().copied().collect();
        for key in keys {
            self.close_peer(now, key);
        }
        self.update_gauges();
    }

    fn emit(&self, participant: ParticipantId, event: SfuEvent) {
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

    // ---- subscriber-leg negotiation ----

    /// Sends a new offer to the subscriber leg if its senders changed and none is out.
    fn negotiate(&mut self, now: Instant, participant: ParticipantId) {
        let Some(p) = self.participants.get_mut(&participant) else {
            return;
        };
        if p.awaiting_answer {
            p.renegotiate = true;
            return;
        }
        let key = p.subscriber;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let changed = p.renegotiate || peer.senders.values().any(|s| !s.offered);
        if !changed {
            return;
        }
        let offer = match peer.pc.create_offer(None) {
            Ok(offer) => offer,
            Err(e) => {
                warn!(%participant, error = %e, "could not create a subscriber offer");
                return;
            }
        };
        if let Err(e) = peer.pc.set_local_description(now, offer.clone()) {
            warn!(%participant, error = %e, "could not apply a subscriber offer");
            return;
        }
        let ids: Vec<_> = peer.senders.iter().map(|(&pubn, s)| (pubn, s.id)).collect();
        let mut tracks = Vec::with_capacity(ids.len());
        for (publication, sender) in ids {
            if let Some(mid) = peer.mid_of_sender(sender) {
                tracks.push(TrackMapping { mid, publication });
            }
        }
        tracks.sort_by_key(|t| t.publication);
        for sender in peer.senders.values_mut() {
            sender.offered = true;
        }
        p.awaiting_answer = true;
        p.renegotiate = false;
        self.emit(
            participant,
            SfuEvent::SubscriberOffer {
                sdp: offer.sdp,
                tracks,
            },
        );
        self.drain(now, key, None);
    }

    /// Starts forwarding on every negotiated sender once the subscriber leg is connected.
    fn attach_ready(&mut self, now: Instant, participant: ParticipantId) {
        let Some(p) = self.participants.get(&participant) else {
            return;
        };
        if !p.subscriber_connected {
            return;
        }
        let Some(peer) = self.peers.get_mut(&p.subscriber) else {
            return;
        };
        let mut ready = Vec::new();
        for (&publication, sender) in peer.senders.iter_mut() {
            if sender_ready(sender) {
                sender.attached = true;
                ready.push((publication, sender.format));
            }
        }
        for (publication, format) in ready {
            if let Err(e) = self
                .router
                .attach_subscription(now, participant, publication, format)
            {
                debug!(%participant, error = %e, "subscription went away before attaching");
            }
        }
        self.process_outputs(now);
    }

    /// Tells every participant how its streams fared since the last report.
    fn report_quality(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.quality_at);
        self.quality_at = now;
        self.next_quality = now + QUALITY_INTERVAL;
        let mut reports = Vec::new();
        for (&participant, p) in self.participants.iter_mut() {
            let mut publishing = Vec::new();
            if let Some(peer) = p.publisher.and_then(|k| self.peers.get_mut(&k)) {
                // An SSRC no longer carried (an encoder restart) is forgotten.
                let carried = &peer.publication_by_ssrc;
                peer.inbound.retain(|ssrc, _| carried.contains_key(ssrc));
                for (ssrc, stats) in peer.inbound.iter_mut() {
                    let Some(&(publication, layer)) = carried.get(ssrc) else {
                        continue;
                    };
                    let video = matches!(
                        self.router.publication(publication),
                        Some((_, _, MediaKind::Video))
                    );
                    let sample = stats.interval(elapsed);
                    publishing.push(StreamQuality {
                        publication,
                        layer: video.then_some(layer),
                        bitrate_bps: sample.bitrate_bps,
                        loss: sample.loss,
                        jitter_ms: sample.jitter_ms,
                        rtt_ms: None,
                        nacks: 0,
                        keyframe_requests: 0,
                        freezes: 0,
                        frozen_ms: 0,
                    });
                }
            }
            let mut receiving = Vec::new();
            if let Some(peer) = self.peers.get_mut(&p.subscriber) {
                // The throttle holds a resend for most of a round trip: the longest of the
                // streams' (they share the link; audio reports arrive more often).
                let rtt = peer
                    .senders
                    .values()
                    .filter_map(|s| s.stats.rtt())
                    .max()
                    .map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
                peer.link.rtt_ms.store(rtt, Ordering::Relaxed);
                let link = &peer.link;
                let resent = link.retransmissions.swap(0, Ordering::Relaxed);
                let struck = link.retransmissions_suppressed.swap(0, Ordering::Relaxed);
                SfuStats::add(&self.stats.retransmissions, resent);
                SfuStats::add(&self.stats.retransmissions_suppressed, struck);
                let rtx = link.rtx_sent.swap(0, Ordering::Relaxed);
                SfuStats::add(&self.stats.rtx_packets, rtx);
                let probes = link.probe_packets.swap(0, Ordering::Relaxed);
                SfuStats::add(&self.stats.probe_packets, probes);
                for (&publication, sender) in peer.senders.iter_mut().filter(|(_, s)| s.attached) {
                    let sample = sender.stats.interval(elapsed);
                    let freezes = self
                        .router
                        .freezes(now, participant, publication)
                        .unwrap_or_default();
                    let began = freezes.count.saturating_sub(sender.freezes_reported);
                    sender.freezes_reported = freezes.count;
                    SfuStats::add(&self.stats.video_freezes, began);
                    receiving.push(StreamQuality {
                        publication,
                        layer: sender.layer,
                        bitrate_bps: sample.bitrate_bps,
                        loss: sample.loss,
                        jitter_ms: sample.jitter_ms,
                        rtt_ms: sample
                            .rtt
                            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
                        nacks: sender.stats.nacks,
                        keyframe_requests: sender.stats.keyframe_requests,
                        freezes: freezes.count,
                        frozen_ms: u64::try_from(freezes.frozen.as_millis()).unwrap_or(u64::MAX),
                    });
                }
            }
            if !receiving.is_empty() {
                // The loss of what it received, weighted by rate: a lossy audio stream alone
                // says little about the link's room for video.
                let sending: u64 = receiving.iter().map(|q| q.bitrate_bps).sum();
                let lost: f64 = receiving
                    .iter()
                    .map(|q| f64::from(q.loss) * q.bitrate_bps as f64)
                    .sum();
                let loss = if sending == 0 {
                    0.0
                } else {
                    (lost / sending as f64) as f32
                };
                let capacity = self
                    .peers
                    .get(&p.subscriber)
                    .and_then(|peer| peer.link.capacity());
                p.downlink.update(now, loss, sending, capacity);
            }
            if !publishing.is_empty() || !receiving.is_empty() {
                publishing.sort_by_key(|q| (q.publication, q.layer));
                receiving.sort_by_key(|q| q.publication);
                reports.push((
                    participant,
                    SfuEvent::Quality {
                        publishing,
                        receiving,
                    },
                ));
            }
        }
        for (participant, report) in reports {
            self.emit(participant, report);
        }
        self.apply_estimates(now);
    }

    /// Hands the router each participant's downlink estimate that changed, and asks for a
    /// probe of each link whose estimate holds a video back.
    fn apply_estimates(&mut self, now: Instant) {
        self.next_capacity = now + CAPACITY_INTERVAL;
        let mut changed = Vec::new();
        let mut probe = Vec::new();
        for (&participant, p) in self.participants.iter_mut() {
            let link = self.peers.get(&p.subscriber).map(|peer| &peer.link);
            let capacity = link.and_then(|l| l.capacity());
            let measured = link.is_some_and(|l| l.measured.load(Ordering::Relaxed));
            let mut estimate = downlink_estimate(p.downlink.bitrate(), capacity);
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
                debug!(%participant, loss = ?p.downlink.bitrate(), ?capacity, ?estimate, "downlink estimate");
                p.applied = estimate;
                changed.push((participant, estimate, first));
            }
            // A probe measures capacity; where loss is what holds the link, it only adds load.
            let loss_binds = match (p.downlink.bitrate(), downlink_estimate(None, capacity)) {
                (Some(loss), Some(capacity)) => loss < capacity,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if p.subscriber_connected && now >= p.next_probe && !loss_binds {
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
            let Some(p) = self.participants.get_mut(&participant) else {
                continue;
            };
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
            if let Some(peer) = self.peers.get(&p.subscriber) {
                peer.link.probe_requested.store(true, Ordering::Relaxed);
            }
        }
        self.process_outputs(now);
    }

    // ---- media plane ----

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        SfuStats::add(&self.stats.udp_datagrams_in, 1);
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

    fn send(&self, msg: TaggedBytesMut) {
        send_datagram(&self.socket, &self.stats, msg);
    }

    /// Drains everything a connection produced after an input, and what that caused.
    fn drain(&mut self, now: Instant, key: ConnKey, stun_from: Option<SocketAddr>) {
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

    fn handle_peer_event(&mut self, now: Instant, key: ConnKey, event: RTCPeerConnectionEvent) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let (participant, leg) = (peer.participant, peer.leg);
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let state = match state {
                    RTCPeerConnectionState::Connected => PeerState::Connected,
                    RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
                    RTCPeerConnectionState::Failed => PeerState::Failed,
                    _ => return,
                };
                info!(%participant, ?leg, ?state, "peer connection state");
                if leg == PeerLeg::Subscriber
                    && let Some(p) = self.participants.get_mut(&participant)
                {
                    p.subscriber_connected = state == PeerState::Connected;
                    if p.subscriber_connected
                        && let LinkStart::Unmeasured { connected_at } = &mut p.start
                    {
                        connected_at.get_or_insert(now);
                    }
                    if p.subscriber_connected {
                        self.attach_ready(now, participant);
                    }
                }
                self.emit(participant, SfuEvent::PeerStateChanged { leg, state });
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init))
                if leg == PeerLeg::Publisher =>
            {
                let Some(mid) = peer.mid_of_receiver(init.receiver_id) else {
                    warn!(%participant, "a track arrived on a transceiver without a mid");
                    return;
                };
                let kind = match peer
                    .pc
                    .rtp_receiver(init.receiver_id)
                    .map(|r| r.track().kind())
                {
                    Some(RtpCodecKind::Audio) => MediaKind::Audio,
                    Some(RtpCodecKind::Video) => MediaKind::Video,
                    _ => return,
                };
                // A simulcast track opens once per layer, each with its rid; a plain track
                // is one layer.
                let layer = match init.rid.as_deref() {
                    None | Some("") => Layer::High,
                    Some(rid) => match Layer::from_rid(rid) {
                        Some(layer) => layer,
                        None => {
                            warn!(%participant, rid, "unknown simulcast rid; layer ignored");
                            return;
                        }
                    },
                };
                let opened = OpenedTrack {
                    mid,
                    kind,
                    layer,
                    ssrc: init.ssrc,
                    receiver: init.receiver_id,
                };
                self.track_opened(participant, key, opened);
            }
            _ => {}
        }
    }

    /// A publisher's track started: the declared source becomes a publication.
    fn track_opened(&mut self, participant: ParticipantId, key: ConnKey, track: OpenedTrack) {
        let OpenedTrack {
            mid,
            kind,
            layer,
            ssrc,
            receiver,
        } = track;
        let mid = mid.as_str();
        let Some(p) = self.participants.get_mut(&participant) else {
            return;
        };
        if let Some(&existing) = p.publication_by_mid.get(mid) {
            // Another layer of a simulcast track, or a new SSRC after an encoder restart.
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.publication_by_ssrc.insert(ssrc, (existing, layer));
            }
            return;
        }
        let Some(&source) = p.declared.get(mid) else {
            warn!(%participant, mid, "media on an undeclared track is not forwarded");
            return;
        };
        if source.kind() != kind {
            warn!(%participant, mid, ?source, ?kind, "declared source does not match the track");
            return;
        }
        let publication = match self.router.add_publication(participant, source, kind) {
            Ok(id) => id,
            Err(e) => {
                warn!(%participant, error = %e, "router refused a publication");
                return;
            }
        };
        p.publication_by_mid.insert(mid.to_owned(), publication);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.publication_by_ssrc.insert(ssrc, (publication, layer));
            peer.receiver_of.insert(publication, receiver);
        }
        info!(%participant, %publication, ?source, "publication started");
        self.emit(
            participant,
            SfuEvent::PublicationStarted {
                publication,
                source,
                kind,
            },
        );
    }

    fn handle_peer_message(&mut self, now: Instant, key: ConnKey, read: TaggedRTCMessage) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        match read.message {
            RTCMessage::RtpPacket(_, packet) if peer.leg == PeerLeg::Publisher => {
                SfuStats::add(&self.stats.rtp_packets_in, 1);
                SfuStats::add(&self.stats.rtp_bytes_in, packet.payload.len() as u64 + 12);
                let Some(&(publication, layer)) = peer.publication_by_ssrc.get(&packet.header.ssrc)
                else {
                    return;
                };
                let clock_rate = match self.router.publication(publication) {
                    Some((_, _, MediaKind::Audio)) => 48_000,
                    _ => 90_000,
                };
                peer.inbound
                    .entry(packet.header.ssrc)
                    .or_insert_with(|| InboundStats::new(clock_rate))
                    .on_packet(
                        now,
                        packet.header.sequence_number,
                        packet.header.timestamp,
                        packet.payload.len() + 12,
                    );
                if let Err(e) = self.router.handle_rtp(now, publication, layer, packet) {
                    debug!(error = %e, "packet for a publication that is gone");
                }
            }
            RTCMessage::RtcpPacket(track, packets) if peer.leg == PeerLeg::Subscriber => {
                let participant = peer.participant;
                let arrival = ntp_compact(self.wall_clock.since_unix_epoch(now));
                let mut keyframe_requests = 0;
                for packet in &packets {
                    let any = packet.as_any();
                    if is_keyframe_request(packet.as_ref()) {
                        keyframe_requests += 1;
                    } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                        if let Some(sender) = sender_by_ssrc(peer, nack.media_ssrc) {
                            let lost: usize =
                                nack.nacks.iter().map(|n| n.packet_list().len()).sum();
                            sender.stats.nacks += lost as u64;
                        }
                    } else {
                        let reports = if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                            &rr.reports
                        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                            &sr.reports
                        } else {
                            continue;
                        };
                        for block in reports {
                            if let Some(sender) = sender_by_ssrc(peer, block.ssrc) {
                                let rtt =
                                    round_trip(arrival, block.last_sender_report, block.delay);
                                sender.stats.on_report(
                                    block.fraction_lost,
                                    block.jitter,
                                    sender.format.clock_rate,
                                    rtt,
                                );
                            }
                        }
                    }
                }
                if keyframe_requests == 0 {
                    return;
                }
                // Keyframe requests are routed by the track they name.
                let Some(&publication) = peer.publication_by_track.get(&track) else {
                    return;
                };
                if let Some(sender) = peer.senders.get_mut(&publication) {
                    sender.stats.keyframe_requests += keyframe_requests;
                }
                SfuStats::add(&self.stats.keyframe_requests_received, keyframe_requests);
                if let Err(e) = self
                    .router
                    .handle_keyframe_request(now, participant, publication)
                {
                    debug!(error = %e, "keyframe request for a subscription that is gone");
                }
                self.stats
                    .keyframe_requests_throttled
                    .store(self.router.keyframe_requests_throttled(), Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Carries out what the core decided.
    fn process_outputs(&mut self, now: Instant) {
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
            send_datagram(&self.socket, &self.stats, msg);
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
            send_datagram(&self.socket, &self.stats, msg);
        }
        self.dirty.insert(key);
    }

    fn add_sender(
        &mut self,
        subscriber: ParticipantId,
        publication: PublicationId,
        kind: MediaKind,
    ) {
        let Some(key) = self.participants.get(&subscriber).map(|p| p.subscriber) else {
            return;
        };
        let owner = self
            .router
            .publication(publication)
            .map(|(owner, ..)| owner);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let ssrc = rand::random::<u32>();
        let format = leg_format(kind, ssrc);
        let track_id = format!("publication-{publication}");
        // One stream per publishing participant, so a browser can lip-sync its camera and voice.
        let stream_id = match owner {
            Some(owner) => format!("participant-{owner}"),
            None => format!("publication-{publication}"),
        };
        let track = MediaStreamTrack::new(
            stream_id,
            track_id.clone(),
            track_id.clone(),
            match kind {
                MediaKind::Audio => RtpCodecKind::Audio,
                MediaKind::Video => RtpCodecKind::Video,
            },
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    // Video resends go on their own stream where the subscriber takes RTX
                    // (`rtc` drops it from a sender whose answer lacks it).
                    rtx: (kind == MediaKind::Video).then(|| RTCRtpRtxParameters {
                        ssrc: rand::random::<u32>(),
                    }),
                    ..Default::default()
                },
                active: true,
                codec: codec(kind),
                ..Default::default()
            }],
        );
        match peer.pc.add_track(track) {
            Ok(id) => {
                peer.publication_by_track.insert(track_id, publication);
                peer.senders.insert(
                    publication,
                    Sender {
                        id,
                        format,
                        offered: false,
                        negotiated: false,
                        attached: false,
                        stats: OutboundStats::default(),
                        layer: None,
                        freezes_reported: 0,
                    },
                );
            }
            Err(e) => warn!(%subscriber, %publication, error = %e, "could not add a sender"),
        }
    }

    fn remove_sender(&mut self, subscriber: ParticipantId, publication: PublicationId) {
        let Some(key) = self.participants.get(&subscriber).map(|p| p.subscriber) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Some(sender) = peer.senders.remove(&publication) {
            peer.publication_by_track.retain(|_, id| *id != publication);
            if let Err(e) = peer.pc.remove_track(sender.id) {
                debug!(%subscriber, %publication, error = %e, "could not remove a sender");
            }
            if let Some(p) = self.participants.get_mut(&subscriber) {
                p.renegotiate = true;
            }
        }
    }

    fn update_gauges(&self) {
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

/// A publisher's track (one layer of it, for simulcast) whose first packet arrived.
struct OpenedTrack {
    mid: String,
    kind: MediaKind,
    layer: Layer,
    ssrc: u32,
    receiver: rtc::rtp_transceiver::RTCRtpReceiverId,
}

/// Sends one datagram. `try_send_to` never waits: when the kernel buffer is full the datagram
/// is dropped (and counted) rather than stalling every other connection of the shard.
fn send_datagram(socket: &UdpSocket, stats: &SfuStats, msg: TaggedBytesMut) {
    if let Err(e) = socket.try_send_to(&msg.message, msg.transport.peer_addr) {
        SfuStats::add(&stats.udp_send_errors, 1);
        debug!(error = %e, to = %msg.transport.peer_addr, "udp send failed");
    }
}
