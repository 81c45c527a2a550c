//! One `rtc` peer connection: a participant's publisher or subscriber leg.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use rand::distr::Alphanumeric;
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Registry, Slot};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc,
    configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};

use super::PeerLeg;
use super::link::LinkShared;
use super::link_meter::LinkMeter;
use super::link_probe::{self, LinkProbe};
use super::nack_throttle::{self, NackThrottle};
use super::rtcp_relay::{self, RtcpRelay};
use crate::core::{Layer, LegFormat, MediaKind, OutboundStats};
use crate::ids::{ParticipantId, PublicationId};

/// The payload types the SFU offers and answers with. Only Opus and VP8 are registered, so a
/// browser publisher's answer picks exactly these and every leg carries the same codec; the
/// subscriber leg is offered by the SFU, so its payload types are these numbers.
pub(crate) const OPUS_PT: u8 = 111;
pub(crate) const VP8_PT: u8 = 96;
/// Retransmissions toward a subscriber go on their own SSRC with this payload type (RFC 4588)
/// where the subscriber negotiated it, so its receive statistics and jitter buffer can tell a
/// late resend from the stream itself; otherwise they go on the media SSRC.
const VP8_RTX_PT: u8 = 97;

/// How long after sending a packet a subscriber may still ask for it: a NACK generator re-asks
/// up to 10 times about 100 ms apart (ours and Chromium's), over round trips up to the harsh
/// rural profile's 300 ms; a frame later than that has been given up by the jitter buffer.
const RESEND_WINDOW_MS: u64 = 1_500;
/// The fastest single stream the SFU forwards, with room for keyframe bursts: a camera's high
/// layer is capped at 1.5 Mbit/s by our clients; a screen share runs up to ~2.5 Mbit/s.
const FASTEST_STREAM_BPS: u64 = 4_000_000;
/// Video packets are filled close to the MTU by the packetizer.
const VIDEO_PACKET_BYTES: u64 = 1_100;

/// The packets each sent stream keeps for retransmission: the resend window at the fastest
/// stream's rate. `rtc`'s history is one ring per stream, whose size must be a power of two.
/// The packets' payloads are shared with the other subscribers' copies, so a ring costs its
/// slots' headers, not the media again.
fn send_history_packets() -> u16 {
    let packets = FASTEST_STREAM_BPS / 8 / VIDEO_PACKET_BYTES * RESEND_WINDOW_MS / 1_000;
    u16::try_from(packets.next_power_of_two()).unwrap_or(1 << 15)
}

/// A missing packet is asked for again at most this many times (as Chromium does): on a
/// link losing a few per cent, asking without end only adds to the load that loses them.
const MAX_NACKS_PER_PACKET: u16 = 10;

pub(crate) fn codec(kind: MediaKind) -> RTCRtpCodec {
    match kind {
        MediaKind::Audio => RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            // In-band FEC lets a lossy rural link recover lost voice frames; DTX stops sending
            // during silence, which a classroom listening to one teacher mostly is.
            sdp_fmtp_line: "minptime=10;useinbandfec=1;usedtx=1".to_owned(),
            rtcp_feedback: vec![],
        },
        MediaKind::Video => RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![
                feedback("ccm", "fir"),
                feedback("nack", ""),
                feedback("nack", "pli"),
            ],
        },
    }
}

/// The wire format of a subscriber leg's sender for `kind`.
pub(crate) fn leg_format(kind: MediaKind, ssrc: u32) -> LegFormat {
    match kind {
        MediaKind::Audio => LegFormat {
            ssrc,
            payload_type: OPUS_PT,
            clock_rate: 48_000,
        },
        MediaKind::Video => LegFormat {
            ssrc,
            payload_type: VP8_PT,
            clock_rate: 90_000,
        },
    }
}

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

fn media_engine() -> Result<MediaEngine, rtc::shared::error::Error> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: codec(MediaKind::Audio),
            payload_type: OPUS_PT,
        },
        RtpCodecKind::Audio,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: codec(MediaKind::Video),
            payload_type: VP8_PT,
        },
        RtpCodecKind::Video,
    )?;
    engine.register_codec(
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
    Ok(engine)
}

/// A random ICE credential of `len` characters (ufrag ≥ 4, pwd ≥ 22 per RFC 8445).
pub(crate) fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// One peer connection and what the shard needs to know about it.
pub(crate) struct Peer {
    pub pc: RTCPeerConnection,
    pub participant: ParticipantId,
    pub leg: PeerLeg,
    /// Publisher leg: which publication, and which of its layers, each incoming SSRC carries.
    pub publication_by_ssrc: HashMap<u32, (PublicationId, Layer)>,
    /// Publisher leg: the receiver of each publication, for keyframe requests.
    pub receiver_of: HashMap<PublicationId, RTCRtpReceiverId>,
    /// Subscriber leg: the local track id of each sender → its publication.
    pub publication_by_track: HashMap<String, PublicationId>,
    pub senders: HashMap<PublicationId, Sender>,
    /// What the interceptors and the shard share about this connection's link.
    pub link: Arc<LinkShared>,
}

/// The interceptor chain of one leg: `rtc`'s defaults, made explicit to change what follows.
/// NACKs toward a publisher are capped per packet and the send history is sized for the
/// fastest stream; a subscriber leg resends a packet at most once per round trip
/// ([`NackThrottle`]), numbers what leaves and probes its link when asked ([`LinkProbe`]), and
/// measures the link from TWCC feedback ([`LinkMeter`]); [`RtcpRelay`] hands the SFU the
/// feedback it acts on.
fn interceptors(
    engine: &mut MediaEngine,
    leg: PeerLeg,
    link: &Arc<LinkShared>,
) -> Result<Registry, rtc::shared::error::Error> {
    for parameter in ["", "pli"] {
        engine.register_feedback(feedback("nack", parameter), RtpCodecKind::Video);
    }
    configure_simulcast_extension_headers(engine)?;
    let registry = Registry::new()
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new()
                .with_size(send_history_packets())
                .build(),
        )
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                .build(),
        );
    // Transport-wide sequence numbers out, feedback in, on both legs: a publisher's encoder
    // adapts to the feedback the SFU sends it, and a subscriber leg's is what the meter reads.
    // On a subscriber leg the probe numbers what leaves, RTX included (see `link_probe`).
    let registry = match leg {
        PeerLeg::Publisher => configure_twcc(registry, engine)?,
        PeerLeg::Subscriber => configure_twcc_receiver_only(registry, engine)?
            .with(link_probe::SLOT, LinkProbe::new(Arc::clone(link))),
    };
    let registry =
        configure_rtcp_reports(registry).with(Slot::from(rtcp_relay::SLOT), RtcpRelay::default());
    Ok(match leg {
        PeerLeg::Publisher => registry,
        PeerLeg::Subscriber => registry
            .with(
                Slot::from(nack_throttle::SLOT),
                NackThrottle::new(Arc::clone(link)),
            )
            .with(Slot::CongestionControl, LinkMeter::new(Arc::clone(link))),
    })
}

/// A subscriber leg's sender for one publication.
pub(crate) struct Sender {
    pub id: RTCRtpSenderId,
    pub format: LegFormat,
    /// It was in an offer sent to the subscriber.
    pub offered: bool,
    /// The subscriber answered an offer that had it.
    pub negotiated: bool,
    /// Forwarding started: it was negotiated and the leg is connected.
    pub attached: bool,
    /// What it sent and what the subscriber reported about it.
    pub stats: OutboundStats,
    /// The layer the core forwards now (video).
    pub layer: Option<Layer>,
    /// The freezes already counted into the media plane's metric.
    pub freezes_reported: u64,
}

impl Peer {
    /// Builds an ICE-lite, DTLS-passive peer connection whose only candidate is the shard's
    /// socket (`candidate`), and registers its credentials' ufrag for demux.
    pub fn new(
        now: Instant,
        participant: ParticipantId,
        leg: PeerLeg,
        ufrag: &str,
        candidate: SocketAddr,
    ) -> Result<Peer, rtc::shared::error::Error> {
        let settings = SettingEngineBuilder::new()
            .with_lite(true)
            .with_ice_credentials(ufrag.to_owned(), random_token(24))
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .build();
        let mut engine = media_engine()?;
        let link = Arc::new(LinkShared::default());
        let registry = interceptors(&mut engine, leg, &link)?;
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .build(now)?;
        let host = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: candidate.ip().to_string(),
                port: candidate.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()?;
        pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;
        Ok(Peer {
            pc,
            participant,
            leg,
            publication_by_ssrc: HashMap::new(),
            receiver_of: HashMap::new(),
            publication_by_track: HashMap::new(),
            senders: HashMap::new(),
            link,
        })
    }

    /// The negotiated mid of the transceiver that holds `receiver`.
    pub fn mid_of_receiver(&mut self, receiver: RTCRtpReceiverId) -> Option<String> {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        ids.into_iter().find_map(|id| {
            let t = self.pc.rtp_transceiver(id)?;
            (t.receiver() == Some(receiver))
                .then(|| t.mid().clone())
                .flatten()
        })
    }

    /// The negotiated mid of the transceiver that holds `sender`.
    pub fn mid_of_sender(&mut self, sender: RTCRtpSenderId) -> Option<String> {
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        ids.into_iter().find_map(|id| {
            let t = self.pc.rtp_transceiver(id)?;
            (t.sender() == Some(sender))
                .then(|| t.mid().clone())
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_history_covers_the_resend_window_of_the_fastest_stream() {
        let packets = u64::from(send_history_packets());
        assert!(packets.is_power_of_two());
        let needed = FASTEST_STREAM_BPS / 8 / VIDEO_PACKET_BYTES * RESEND_WINDOW_MS / 1_000;
        assert!(
            packets >= needed && packets < 2 * needed,
            "{packets} for {needed}"
        );
    }
}
