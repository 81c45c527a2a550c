//! The transport: WebRTC peer connections on `rtc` 0.21, served through one UDP port per shard.
//!
//! The control plane never touches a peer connection. It holds an [`SfuHandle`] and sends
//! commands over a bounded channel to the shard loop that owns every connection; each
//! participant gets its events back on a bounded channel of its own.
//!
//! - `event_loop` — the only code that touches the socket, the command channel or the clock:
//!   one thread, one UDP socket, feeding the engine and sending what it queues.
//! - `engine` — the shard's sans-I/O media engine ([`Engine`]): every peer connection of the
//!   lessons it serves and the forwarding core; datagrams, commands and timeouts in, datagrams
//!   out, until it names its next deadline. Its turn's parts live beside it:
//!   - `commands` — the control plane's requests (join, publish, mute, tap, leave);
//!   - `inbound` — what a connection produced: state changes, opened tracks, RTP and RTCP;
//!   - `negotiation` — the subscriber leg's offers and answers, and its senders;
//!   - `quality_report` — every participant's [`SfuEvent::Quality`];
//!   - `downlink` — the downlink policy: start estimate, capacity headroom, probes;
//!   - `estimates` — carries the downlink decisions out: estimates to the router, probes to legs.
//! - `peer` — one `rtc` peer connection (a participant's publisher or subscriber leg).
//! - `link` — a leaf every other part may use: connection keys, the link state the
//!   interceptors and the engine share, the TWCC extension id.
//! - `demux` — which connection a datagram belongs to: ICE ufrag first, then remote address.
//! - `timers` — a heap of connection deadlines so the loop never scans every connection.
//! - `rtcp_relay` — the interceptor that lets subscribers' feedback (PLI/FIR, NACK, receiver
//!   reports) reach the application.
//! - `nack_throttle` — the interceptor that resends a packet at most once per round trip.
//! - `link_meter` — a subscriber leg's TWCC feedback into its link capacity.
//! - `link_probe` — the interceptor that probes a subscriber's link with resends when asked.
//!
//! A *tap* ([`SfuHandle::tap`]) is a subscriber with no connection: the core treats it like
//! any other (best layer, keyframe waits, one continuous rewritten stream per publication) and
//! the engine hands its packets to a channel instead of a peer connection. The recorder is fed
//! this way, in-process, with no extra WebRTC hop.

mod commands;
mod demux;
mod downlink;
mod engine;
mod estimates;
mod event_loop;
mod inbound;
mod link;
mod link_meter;
mod link_probe;
mod nack_throttle;
mod negotiation;
mod peer;
mod quality_report;
mod rtcp_relay;
mod timers;

pub use engine::{Engine, Transmit};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::ids::{LessonId, ParticipantId, PublicationId};

pub use crate::core::{Layer, MediaKind, Source};

/// How the media plane is set up; validated once at start.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Where the shard's UDP socket binds. Port 0 lets the OS choose.
    pub udp_bind: SocketAddr,
    /// The address put into ICE candidates when it differs from the bind address
    /// (a server behind 1:1 NAT, or bound to 0.0.0.0).
    pub public_ip: Option<IpAddr>,
    /// The shortest interval between two keyframe requests sent to one publication.
    pub keyframe_request_interval: Duration,
    /// Capacity of the command channel from the control plane.
    pub command_capacity: usize,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            udp_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ip: None,
            keyframe_request_interval: Duration::from_millis(500),
            command_capacity: 1024,
        }
    }
}

/// Which of a participant's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerLeg {
    /// The client offers and sends media to the SFU.
    Publisher,
    /// The SFU offers and sends media to the client.
    Subscriber,
}

/// A peer connection's state as the control plane needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Connected,
    Disconnected,
    Failed,
}

/// Which publication a transceiver of a subscriber connection carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackMapping {
    pub mid: String,
    pub publication: PublicationId,
}

/// What the SFU tells the control plane about one participant.
#[derive(Debug, Clone, PartialEq)]
pub enum SfuEvent {
    /// A new offer for this participant's subscriber connection; answer with
    /// [`SfuHandle::subscriber_answer`].
    SubscriberOffer {
        sdp: String,
        tracks: Vec<TrackMapping>,
    },
    /// Media of one of this participant's declared sources has started arriving.
    PublicationStarted {
        publication: PublicationId,
        source: Source,
        kind: MediaKind,
    },
    /// One of this participant's publications ended (unpublished or its transceiver stopped).
    PublicationEnded { publication: PublicationId },
    /// One of this participant's peer connections changed state.
    PeerStateChanged { leg: PeerLeg, state: PeerState },
    /// How its streams fared over the last interval (every [`QUALITY_INTERVAL`]): what it
    /// publishes, as the SFU receives it, and what it receives, as it reports back.
    Quality {
        publishing: Vec<StreamQuality>,
        receiving: Vec<StreamQuality>,
    },
}

/// How often each participant gets [`SfuEvent::Quality`].
pub const QUALITY_INTERVAL: Duration = Duration::from_secs(2);

/// One stream's quality over the last interval.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamQuality {
    pub publication: PublicationId,
    /// The simulcast layer: received (publishing) or forwarded now (receiving); none for audio.
    pub layer: Option<Layer>,
    pub bitrate_bps: u64,
    /// Fraction of packets lost, 0.0 to 1.0: seen by the SFU (publishing) or reported by the
    /// subscriber (receiving).
    pub loss: f32,
    pub jitter_ms: f32,
    /// Round trip to the subscriber (receiving only, once it has reported on a sender report).
    pub rtt_ms: Option<u32>,
    /// Packets the subscriber asked to have resent, in all (receiving only).
    pub nacks: u64,
    /// Keyframes the subscriber asked for, in all (receiving only).
    pub keyframe_requests: u64,
    /// Times the subscriber's picture stood still although it wanted one, in all, and for
    /// how long (receiving video only; see `core::freeze` for what counts).
    pub freezes: u64,
    pub frozen_ms: u64,
}

/// Why the SFU refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    #[error("participant {0} is not in the media plane")]
    NoSuchParticipant(ParticipantId),
    #[error("participant {0} has already joined")]
    AlreadyJoined(ParticipantId),
    #[error("the session description could not be used: {0}")]
    BadSdp(String),
    #[error("participant {participant} does not receive publication {publication}")]
    NoSuchSubscription {
        participant: ParticipantId,
        publication: PublicationId,
    },
    #[error("no publication {0}")]
    NoSuchPublication(PublicationId),
    #[error("no offer is waiting for an answer")]
    NoPendingOffer,
    #[error("source {0:?} was declared for a track of the other kind")]
    KindMismatch(Source),
    #[error("the media plane is overloaded")]
    Overloaded,
    #[error("the media plane has shut down")]
    Closed,
    #[error("bad media configuration: {0}")]
    BadConfig(String),
    #[error("internal media error: {0}")]
    Internal(String),
    #[error("could not bind the media socket: {0}")]
    Bind(#[source] std::io::Error),
}

/// What a tap receives, in order, on its channel.
#[derive(Debug)]
pub enum TapEvent {
    /// A publication of the lesson is now tapped; its packets follow.
    PublicationAdded {
        publication: PublicationId,
        owner: ParticipantId,
        source: Source,
        kind: MediaKind,
    },
    /// One packet as the core forwards it: SSRC, sequence numbers and timestamps continuous
    /// across layer switches and publisher restarts; `at` is when the shard received it.
    Packet {
        publication: PublicationId,
        at: Instant,
        packet: rtc::rtp::Packet,
    },
    /// The publication ended (or the tap stopped receiving it).
    PublicationRemoved { publication: PublicationId },
}

/// Counters of the whole media plane, read by `/metrics`.
#[derive(Debug, Default)]
pub struct SfuStats {
    pub rtp_packets_in: AtomicU64,
    pub rtp_bytes_in: AtomicU64,
    pub rtp_packets_out: AtomicU64,
    pub rtp_bytes_out: AtomicU64,
    /// Packets the core chose to forward that the peer connection refused.
    pub forward_errors: AtomicU64,
    pub keyframe_requests_sent: AtomicU64,
    pub keyframe_requests_received: AtomicU64,
    /// Keyframe requests coalesced by the per-publication throttle.
    pub keyframe_requests_throttled: AtomicU64,
    /// NACKed packets passed on to be resent to subscribers (when still buffered).
    pub retransmissions: AtomicU64,
    /// NACKed packets not resent because they had been within a round trip.
    pub retransmissions_suppressed: AtomicU64,
    /// Retransmissions sent on an RTX stream (RFC 4588), where the subscriber negotiated it.
    pub rtx_packets: AtomicU64,
    /// Packets resent to probe a subscriber's link (see `transport::link_probe`).
    pub probe_packets: AtomicU64,
    /// Freezes of subscribers' pictures that began (see `core::freeze`).
    pub video_freezes: AtomicU64,
    pub udp_datagrams_in: AtomicU64,
    /// Datagrams that matched no connection (unknown ufrag or address).
    pub udp_unmatched: AtomicU64,
    pub udp_send_errors: AtomicU64,
    /// Events dropped because a participant's event queue was full.
    pub events_dropped: AtomicU64,
    /// Tap events (packets for a recorder) dropped because the tap's queue was full.
    pub tap_events_dropped: AtomicU64,
    pub peer_connections: AtomicU64,
    pub participants: AtomicU64,
    pub publications: AtomicU64,
}

impl SfuStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A command from the control plane to a shard.
pub(crate) enum Command {
    Join {
        lesson: LessonId,
        participant: ParticipantId,
        events: mpsc::Sender<SfuEvent>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    PublisherOffer {
        participant: ParticipantId,
        sdp: String,
        sources: Vec<(String, Source)>,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    Unpublish {
        participant: ParticipantId,
        mid: String,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    SubscriberAnswer {
        participant: ParticipantId,
        sdp: String,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    SetMuted {
        publication: PublicationId,
        muted: bool,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    SetSourceMuted {
        participant: ParticipantId,
        source: Source,
        muted: bool,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    SetSubscription {
        participant: ParticipantId,
        publication: PublicationId,
        max_layer: Layer,
        paused: bool,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Tap {
        lesson: LessonId,
        tap: ParticipantId,
        sink: mpsc::Sender<TapEvent>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    RequestKeyframe {
        tap: ParticipantId,
        publication: PublicationId,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Leave {
        participant: ParticipantId,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// The control plane's handle on the media plane. Cheap to clone.
#[derive(Clone)]
pub struct SfuHandle {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    stats: Arc<SfuStats>,
}

/// Binds the media socket and starts the shard loop on a thread of its own.
pub async fn start(config: SfuConfig) -> Result<SfuHandle, SfuError> {
    let stats = Arc::new(SfuStats::default());
    let (commands, command_rx) = mpsc::channel(config.command_capacity);
    let local_addr = event_loop::spawn(config, command_rx, stats.clone()).await?;
    Ok(SfuHandle {
        commands,
        local_addr,
        stats,
    })
}

/// The next connection id [`SfuHandle::new_participant_id`] hands out. One counter for the
/// process, so ids stay unique even where several media planes run side by side (tests).
static NEXT_PARTICIPANT_ID: AtomicU64 = AtomicU64::new(1);

impl SfuHandle {
    /// A fresh id for one connection of a participant (or for a tap), to pass to
    /// [`SfuHandle::join`] or [`SfuHandle::tap`]. Never handed out twice in this process, by
    /// any handle or clone of one; the control plane should take every id it gives the media
    /// plane from here rather than keep a numbering of its own, which could collide with it.
    pub fn new_participant_id(&self) -> ParticipantId {
        ParticipantId(NEXT_PARTICIPANT_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// The media address advertised in ICE candidates.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The media plane's counters.
    pub fn stats(&self) -> &SfuStats {
        &self.stats
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| SfuError::Closed)?;
        rx.await.map_err(|_| SfuError::Closed)?
    }

    /// Adds a participant to a lesson's media. Its events arrive on `events`; a full queue
    /// drops events (counted in [`SfuStats::events_dropped`]), so size it generously.
    pub async fn join(
        &self,
        lesson: LessonId,
        participant: ParticipantId,
        events: mpsc::Sender<SfuEvent>,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::Join {
            lesson,
            participant,
            events,
            reply,
        })
        .await
    }

    /// Applies the client's offer for its publisher connection and returns the SFU's answer.
    /// `sources` says which source each declared `mid` carries; tracks with no declaration are
    /// received but not forwarded.
    pub async fn publisher_offer(
        &self,
        participant: ParticipantId,
        sdp: String,
        sources: Vec<(String, Source)>,
    ) -> Result<String, SfuError> {
        self.request(|reply| Command::PublisherOffer {
            participant,
            sdp,
            sources,
            reply,
        })
        .await
    }

    /// Stops forwarding the publication carried by `mid` of the participant's publisher leg.
    pub async fn unpublish(&self, participant: ParticipantId, mid: String) -> Result<(), SfuError> {
        self.request(|reply| Command::Unpublish {
            participant,
            mid,
            reply,
        })
        .await
    }

    /// Applies the client's answer to the last [`SfuEvent::SubscriberOffer`].
    pub async fn subscriber_answer(
        &self,
        participant: ParticipantId,
        sdp: String,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::SubscriberAnswer {
            participant,
            sdp,
            reply,
        })
        .await
    }

    /// Mutes or unmutes a publication for everyone (a moderator's decision): forwarding
    /// stops at once; on unmute video resumes from a requested keyframe.
    pub async fn set_muted(&self, publication: PublicationId, muted: bool) -> Result<(), SfuError> {
        self.request(|reply| Command::SetMuted {
            publication,
            muted,
            reply,
        })
        .await
    }

    /// Mutes or unmutes one of a participant's sources for everyone (a moderator's decision):
    /// its publications forward nothing, and one published later starts muted, so not even
    /// its first packet goes out. On unmute video resumes from a requested keyframe. The mute
    /// lasts while the participant is in the media plane: set it again after a re-join.
    pub async fn set_source_muted(
        &self,
        participant: ParticipantId,
        source: Source,
        muted: bool,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::SetSourceMuted {
            participant,
            source,
            muted,
            reply,
        })
        .await
    }

    /// A subscriber's wishes for one video publication it receives: the best layer it wants
    /// (a small tile needs no high layer) and whether to pause it. Its link may still cap it.
    pub async fn set_subscription(
        &self,
        participant: ParticipantId,
        publication: PublicationId,
        max_layer: Layer,
        paused: bool,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::SetSubscription {
            participant,
            publication,
            max_layer,
            paused,
            reply,
        })
        .await
    }

    /// Taps a lesson's media: every publication, now and later, reaches `sink` as [`TapEvent`]s
    /// until [`SfuHandle::leave`] with `tap`, which names the tap like a participant (and must
    /// not be one). The shard never waits for the sink: a full queue drops the event, counted
    /// in [`SfuStats::tap_events_dropped`]; a closed one ends the tap.
    pub async fn tap(
        &self,
        lesson: LessonId,
        tap: ParticipantId,
        sink: mpsc::Sender<TapEvent>,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::Tap {
            lesson,
            tap,
            sink,
            reply,
        })
        .await
    }

    /// Asks the publisher of `publication` for a keyframe on behalf of `tap` (a recorder that
    /// wants a seek point), as a subscriber's PLI would: throttled like any other.
    pub async fn request_keyframe(
        &self,
        tap: ParticipantId,
        publication: PublicationId,
    ) -> Result<(), SfuError> {
        self.request(|reply| Command::RequestKeyframe {
            tap,
            publication,
            reply,
        })
        .await
    }

    /// Removes a participant: closes both connections and ends its publications.
    pub async fn leave(&self, participant: ParticipantId) {
        // A closed shard has nothing left to remove.
        let _ = self.commands.send(Command::Leave { participant }).await;
    }

    /// Stops the shard loop, closing every connection.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connection_ids_are_never_handed_out_twice_by_any_handle() {
        let first = start(SfuConfig::default())
            .await
            .expect("media plane starts");
        let second = start(SfuConfig::default())
            .await
            .expect("media plane starts");
        let clone = first.clone();
        let ids = [
            first.new_participant_id(),
            clone.new_participant_id(),
            second.new_participant_id(),
            first.new_participant_id(),
        ];
        let mut unique = ids.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert!(
            ids[0] < ids[1] && ids[1] < ids[3],
            "one counter, in order: {ids:?}"
        );
        first.shutdown().await;
        second.shutdown().await;
    }
}
