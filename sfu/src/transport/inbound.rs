//! What a connection produced after an input, as the engine acts on it: connection state
//! changes (a connected subscriber leg starts its senders), a publisher's opened tracks
//! (which become publications), a publisher's RTP (metered, then into the core), and a
//! subscriber's RTCP (keyframe requests into the core; NACKs and receiver reports into its
//! senders' statistics).

use std::sync::atomic::Ordering;
use std::time::Instant;

use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tracing::{debug, info, warn};

use super::engine::{Engine, sender_by_ssrc};
use super::link::ConnKey;
use super::rtcp_relay::is_keyframe_request;
use super::{PeerLeg, PeerState, SfuEvent, SfuStats};
use crate::core::{Layer, MediaKind, ntp_compact, round_trip};
use crate::ids::ParticipantId;

/// A publisher's track (one layer of it, for simulcast) whose first packet arrived.
struct OpenedTrack {
    mid: String,
    kind: MediaKind,
    layer: Layer,
    ssrc: u32,
    receiver: rtc::rtp_transceiver::RTCRtpReceiverId,
}

impl Engine {
    pub(super) fn handle_peer_event(
        &mut self,
        now: Instant,
        key: ConnKey,
        event: RTCPeerConnectionEvent,
    ) {
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
                    p.downlink.on_connection(now, p.subscriber_connected);
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

    pub(super) fn handle_peer_message(
        &mut self,
        now: Instant,
        key: ConnKey,
        read: TaggedRTCMessage,
    ) {
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
                // The router meters it (rate for the allocator, loss and jitter for quality
                // reports): one meter per received stream.
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
}
