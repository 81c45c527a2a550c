//! The control plane's requests to the engine: joining and leaving, publishing, muting,
//! subscription wishes and taps, and closing connections. Each is a method the command
//! dispatch ([`Engine::handle_command`]) calls with the request's reply channel, and that a
//! test may call directly. Subscriber-leg answers are in `negotiation`.

use std::collections::HashMap;
use std::time::Instant;

use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::sansio::Protocol;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::downlink::Downlink;
use super::engine::{Engine, Participant};
use super::link::ConnKey;
use super::{Command, PeerLeg, SfuError, SfuEvent, TapEvent};
use crate::core::{Layer, Source};
use crate::ids::{LessonId, ParticipantId, PublicationId};

impl Engine {
    /// Carries out one command from the control plane and replies on its channel.
    pub(crate) fn handle_command(&mut self, now: Instant, command: Command) {
        self.last_now = self.last_now.max(now);
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
                let _ = reply.send(self.set_muted(now, publication, muted));
            }
            Command::SetSourceMuted {
                participant,
                source,
                muted,
                reply,
            } => {
                let result = self
                    .router
                    .set_source_muted(now, participant, source, muted)
                    .map_err(|_| SfuError::NoSuchParticipant(participant));
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
                let result =
                    self.set_subscription(now, participant, publication, max_layer, paused);
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
                let _ = reply.send(self.request_tap_keyframe(now, tap, publication));
            }
            Command::Leave { participant } => self.leave(now, participant),
            // The event loop stops on this itself, after sending what closing queued; an engine
            // driven otherwise closes everything and says so at once.
            Command::Shutdown { done } => {
                self.close_all(now);
                let _ = done.send(());
            }
        }
        self.update_gauges();
    }

    pub fn join(
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
                downlink: Downlink::new(now),
            },
        );
        if let Err(e) = self.router.add_participant(lesson, participant, true) {
            warn!(%participant, error = %e, "router refused a participant");
        }
        self.router
            .set_start_estimate(now, participant, Downlink::START_ESTIMATE_BPS);
        self.process_outputs(now);
        Ok(())
    }

    pub fn publisher_offer(
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

    pub fn unpublish(
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

    /// Mutes or unmutes a publication for everyone ([`super::SfuHandle::set_muted`]).
    pub fn set_muted(
        &mut self,
        now: Instant,
        publication: PublicationId,
        muted: bool,
    ) -> Result<(), SfuError> {
        let result = self
            .router
            .set_muted(now, publication, muted)
            .map_err(|_| SfuError::NoSuchPublication(publication));
        self.process_outputs(now);
        result
    }

    /// A subscriber's wishes for one publication ([`super::SfuHandle::set_subscription`]).
    pub fn set_subscription(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        publication: PublicationId,
        max_layer: Layer,
        paused: bool,
    ) -> Result<(), SfuError> {
        let result = self
            .router
            .set_subscription(now, participant, publication, max_layer, paused)
            .map_err(|_| SfuError::NoSuchSubscription {
                participant,
                publication,
            });
        self.process_outputs(now);
        result
    }

    /// A keyframe request on behalf of a tap ([`super::SfuHandle::request_keyframe`]).
    pub fn request_tap_keyframe(
        &mut self,
        now: Instant,
        tap: ParticipantId,
        publication: PublicationId,
    ) -> Result<(), SfuError> {
        let result = self
            .router
            .handle_keyframe_request(now, tap, publication)
            .map_err(|_| SfuError::NoSuchSubscription {
                participant: tap,
                publication,
            });
        self.process_outputs(now);
        result
    }

    pub fn tap(
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

    pub fn leave(&mut self, now: Instant, participant: ParticipantId) {
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

    pub(super) fn close_peer(&mut self, now: Instant, key: ConnKey) {
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

    pub fn close_all(&mut self, now: Instant) {
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
}
