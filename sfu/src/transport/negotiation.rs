//! The subscriber leg's negotiation: the SFU offers, the client answers. A sender is added
//! for each publication the core subscribes a participant to and removed when it ends; a new
//! offer goes out when the senders changed and none is unanswered (a change while one is out
//! waits for its answer); once the leg is connected, each negotiated sender is attached to
//! its subscription in the core, and forwarding starts.

use std::time::Instant;

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use tracing::{debug, warn};

use super::engine::Engine;
use super::peer::{Sender, codec, leg_format};
use super::{SfuError, SfuEvent, TrackMapping};
use crate::core::{MediaKind, OutboundStats};
use crate::ids::{ParticipantId, PublicationId};

/// Whether a sender can start forwarding (once the leg is connected).
fn sender_ready(sender: &Sender) -> bool {
    sender.negotiated && !sender.attached
}

impl Engine {
    pub fn subscriber_answer(
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

    /// Sends a new offer to the subscriber leg if its senders changed and none is out.
    pub(super) fn negotiate(&mut self, now: Instant, participant: ParticipantId) {
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
    pub(super) fn attach_ready(&mut self, now: Instant, participant: ParticipantId) {
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

    pub(super) fn add_sender(
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

    pub(super) fn remove_sender(&mut self, subscriber: ParticipantId, publication: PublicationId) {
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
}
