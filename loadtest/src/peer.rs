//! Building the bots' peer connections on the async `webrtc` 0.21 crate.
//!
//! Every bot connection offers what a browser would: Opus (PT 111) and VP8 (PT 96) with NACK,
//! PLI, FIR and transport-cc feedback, and the default interceptors (NACK generator — capped per packet — and
//! responder, RTCP reports, TWCC receiver). A publisher connection also gets
//! [`KeyframeRequestTap`], without which inbound PLI/FIR never reach the application (see
//! `shared/notes/rtc-0.21.md`, trap 1): the interceptors consume all inbound RTCP unless one of
//! them marks a packet for delivery.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    Attribute, Interceptor, NackGeneratorBuilder, NackResponderBuilder, Packet, Slot, StreamInfo,
    TaggedPacket,
};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use tokio::sync::{mpsc, watch};
use tracing::warn;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCPeerConnectionState, Registry, SettingEngineBuilder,
};

/// The payload types a bot offers. A browser's choice; the SFU may map them per leg.
pub const OPUS_PT: u8 = 111;
pub const VP8_PT: u8 = 96;
/// Resends of VP8 on their own stream (RFC 4588), as Chromium negotiates them; `webrtc`
/// restores them to the media stream before the track reader sees them.
pub const VP8_RTX_PT: u8 = 97;

/// Where in the interceptor chain the tap sits: application-most, after every interceptor
/// that reads RTCP has seen all of it.
const TAP_SLOT: usize = 14_000;

pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(crate) fn vp8_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        // NACK and PLI are added by the NACK interceptor's configuration.
        rtcp_feedback: vec![RTCPFeedback {
            typ: "ccm".to_owned(),
            parameter: "fir".to_owned(),
        }],
    }
}

/// Whether an RTCP packet asks for a keyframe.
pub(crate) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Marks inbound RTCP that carries a PLI or FIR for the application and drops the rest, so
/// a publisher bot can answer keyframe requests (`TrackLocal::poll`).
#[derive(Default)]
pub(crate) struct KeyframeRequestTap {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            // Everything else (RR, NACK, TWCC) was for the interceptors, which have seen it.
            packets.retain(|p| is_keyframe_request(p.as_ref()));
            if packets.is_empty() {
                return Ok(());
            }
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// Remote tracks waiting to be read; a bot receives a handful, so a full queue means a stuck
/// reader: the track is dropped and counted.
const TRACK_QUEUE: usize = 64;

/// What a peer connection tells its owner.
pub(crate) struct PeerEvents {
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub tracks: mpsc::Receiver<Arc<dyn TrackRemote>>,
}

struct Handler {
    state: watch::Sender<RTCPeerConnectionState>,
    tracks: mpsc::Sender<Arc<dyn TrackRemote>>,
    dropped_tracks: AtomicU64,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    // Runs on the connection's driver: it must not call back into the connection.
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if self.tracks.try_send(track).is_err() {
            let n = self.dropped_tracks.fetch_add(1, Ordering::Relaxed) + 1;
            warn!("remote track dropped: reader queue full or gone ({n} so far)");
        }
    }
}

/// A new peer connection bound to `bind_ip` on an OS-chosen port.
pub(crate) async fn new_peer(
    bind_ip: IpAddr,
    tap_keyframe_requests: bool,
) -> Result<(Arc<dyn PeerConnection>, PeerEvents), webrtc::error::Error> {
    let mut media = MediaEngine::default();
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: OPUS_PT,
        },
        RtpCodecKind::Audio,
    )?;
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8_codec(),
            payload_type: VP8_PT,
        },
        RtpCodecKind::Video,
    )?;
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: "video/rtx".to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: format!("apt={VP8_PT}"),
                rtcp_feedback: vec![],
            },
            payload_type: VP8_RTX_PT,
        },
        RtpCodecKind::Video,
    )?;
    let mut registry = interceptors(&mut media)?;
    if tap_keyframe_requests {
        registry = registry.with(Slot::from(TAP_SLOT), KeyframeRequestTap::default());
    }
    // Loopback only: no mDNS socket per connection, no STUN.
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    let (tracks_tx, tracks) = mpsc::channel(TRACK_QUEUE);
    let handler = Arc::new(Handler {
        state: state_tx,
        tracks: tracks_tx,
        dropped_tracks: AtomicU64::new(0),
    });
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![SocketAddr::new(bind_ip, 0)])
        .build()
        .await?;
    Ok((Arc::new(pc), PeerEvents { state, tracks }))
}

/// `rtc`'s default interceptors, but asking for a missing packet at most
/// [`MAX_NACKS_PER_PACKET`] times, as Chromium does. The default asks every 100 ms without
/// end, which on a lossy 150–300 ms round trip is a retransmission storm of its own making.
fn interceptors(media: &mut MediaEngine) -> Result<Registry, webrtc::error::Error> {
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    configure_simulcast_extension_headers(media)?;
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                .build(),
        );
    Ok(configure_rtcp_reports(configure_twcc_receiver_only(
        registry, media,
    )?))
}

/// See [`interceptors`].
const MAX_NACKS_PER_PACKET: u16 = 10;

/// Waits until the connection is connected; fails fast if it fails or closes.
pub(crate) async fn wait_connected(
    state: &mut watch::Receiver<RTCPeerConnectionState>,
    wait: Duration,
) -> Result<(), PeerWaitError> {
    let reached = tokio::time::timeout(wait, async {
        state
            .wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            })
            .await
            .map(|s| *s)
    })
    .await;
    match reached {
        Err(_) => Err(PeerWaitError::Timeout(*state.borrow())),
        Ok(Err(_)) => Err(PeerWaitError::Gone),
        Ok(Ok(RTCPeerConnectionState::Connected)) => Ok(()),
        Ok(Ok(s)) => Err(PeerWaitError::Ended(s)),
    }
}

/// Why a connection did not come up.
#[derive(Debug, thiserror::Error)]
pub enum PeerWaitError {
    #[error("not connected in time (state {0})")]
    Timeout(RTCPeerConnectionState),
    #[error("connection ended: {0}")]
    Ended(RTCPeerConnectionState),
    #[error("connection dropped")]
    Gone,
}
