//! The forwarding core's top-level type.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::rtp;

use super::keyframe::{KeyframeGate, vp8_starts_keyframe};
use super::lesson::{Lesson, Member};
use super::publication::Publication;
use super::rewrite::LegFormat;
use super::subscription::Subscription;
use super::{MediaKind, Source};
use crate::ids::{LessonId, ParticipantId, PublicationId};

/// Tunables of the forwarding core.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The shortest interval between two keyframe requests to one publication.
    pub keyframe_interval: Duration,
    /// How long a video subscription waits for a keyframe before asking again (the first
    /// request or the keyframe itself may have been lost).
    pub keyframe_retry: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            keyframe_interval: Duration::from_millis(500),
            keyframe_retry: Duration::from_millis(1000),
        }
    }
}

/// Work the core decided on, drained with [`Router::poll_output`].
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open a sender for `publication` on the subscriber's connection, then call
    /// [`Router::attach_subscription`] with its format.
    SubscriptionAdded {
        subscriber: ParticipantId,
        publication: PublicationId,
        kind: MediaKind,
        source: Source,
    },
    /// Close the subscriber's sender for `publication`.
    SubscriptionRemoved {
        subscriber: ParticipantId,
        publication: PublicationId,
    },
    /// Send this packet, already rewritten for the subscriber's leg.
    Forward {
        subscriber: ParticipantId,
        publication: PublicationId,
        packet: rtp::Packet,
    },
    /// Ask the publisher for a keyframe on `media_ssrc`.
    RequestKeyframe {
        publisher: ParticipantId,
        publication: PublicationId,
        media_ssrc: u32,
    },
    /// A publication is gone (unpublished or its owner left).
    PublicationRemoved {
        owner: ParticipantId,
        publication: PublicationId,
    },
}

/// Why the core refused a request. These are caller mistakes (stale ids after a leave, a
/// duplicate join) and are reported, never panicked on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("participant {0} is already in a lesson")]
    AlreadyJoined(ParticipantId),
    #[error("no participant {0}")]
    NoSuchParticipant(ParticipantId),
    #[error("no publication {0}")]
    NoSuchPublication(PublicationId),
    #[error("participant {subscriber} does not subscribe to publication {publication}")]
    NoSuchSubscription {
        subscriber: ParticipantId,
        publication: PublicationId,
    },
}

/// Every lesson's forwarding state. See the module docs of [`crate::core`].
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    lessons: HashMap<LessonId, Lesson>,
    participants: HashMap<ParticipantId, LessonId>,
    publications: HashMap<PublicationId, Publication>,
    next_publication: u64,
    outputs: VecDeque<Output>,
    /// The earliest instant a pending keyframe request or a keyframe wait needs attention.
    wake_at: Option<Instant>,
    /// Keyframe requests coalesced by a publication's gate, since start.
    keyframe_requests_throttled: u64,
}

impl Router {
    pub fn new(config: RouterConfig) -> Self {
        Router {
            config,
            lessons: HashMap::new(),
            participants: HashMap::new(),
            publications: HashMap::new(),
            next_publication: 1,
            outputs: VecDeque::new(),
            wake_at: None,
            keyframe_requests_throttled: 0,
        }
    }

    /// Adds a participant to a lesson. When `subscribes`, it gets a subscription to every
    /// publication already in the lesson.
    pub fn add_participant(
        &mut self,
        lesson: LessonId,
        participant: ParticipantId,
        subscribes: bool,
    ) -> Result<(), RouterError> {
        if self.participants.contains_key(&participant) {
            return Err(RouterError::AlreadyJoined(participant));
        }
        self.participants.insert(participant, lesson);
        let room = self.lessons.entry(lesson).or_default();
        room.members.insert(participant, Member { subscribes });
        if subscribes {
            for &id in &room.publications {
                let Some(publication) = self.publications.get_mut(&id) else {
                    continue;
                };
                publication
                    .subscriptions
                    .push(Subscription::new(participant));
                self.outputs.push_back(Output::SubscriptionAdded {
                    subscriber: participant,
                    publication: id,
                    kind: publication.kind,
                    source: publication.source,
                });
            }
        }
        Ok(())
    }

    /// Removes a participant: its subscriptions end and its publications are removed (their
    /// subscribers are told with [`Output::SubscriptionRemoved`]).
    pub fn remove_participant(&mut self, participant: ParticipantId) -> Result<(), RouterError> {
        let lesson = self
            .participants
            .remove(&participant)
            .ok_or(RouterError::NoSuchParticipant(participant))?;
        let Some(room) = self.lessons.get_mut(&lesson) else {
            return Ok(());
        };
        room.members.remove(&participant);
        let owned: Vec<PublicationId> = room
            .publications
            .iter()
            .copied()
            .filter(|id| {
                self.publications
                    .get(id)
                    .is_some_and(|p| p.owner == participant)
            })
            .collect();
        for id in &room.publications {
            if let Some(publication) = self.publications.get_mut(id) {
                publication
                    .subscriptions
                    .retain(|s| s.subscriber != participant);
            }
        }
        let empty = room.members.is_empty();
        for id in owned {
            self.remove_publication(id)?;
        }
        if empty {
            self.lessons.remove(&lesson);
        }
        Ok(())
    }

    /// Registers a track a participant sends. Every other subscribing member of its lesson
    /// gets a subscription.
    pub fn add_publication(
        &mut self,
        owner: ParticipantId,
        source: Source,
        kind: MediaKind,
    ) -> Result<PublicationId, RouterError> {
        let lesson = *self
            .participants
            .get(&owner)
            .ok_or(RouterError::NoSuchParticipant(owner))?;
        let id = PublicationId(self.next_publication);
        self.next_publication += 1;
        let room = self.lessons.entry(lesson).or_default();
        room.publications.push(id);
        let mut publication = Publication {
            lesson,
            owner,
            source,
            kind,
            media_ssrc: None,
            keyframes: KeyframeGate::new(self.config.keyframe_interval),
            subscriptions: Vec::new(),
        };
        for (&member, info) in &room.members {
            if member != owner && info.subscribes {
                publication.subscriptions.push(Subscription::new(member));
                self.outputs.push_back(Output::SubscriptionAdded {
                    subscriber: member,
                    publication: id,
                    kind,
                    source,
                });
            }
        }
        self.publications.insert(id, publication);
        Ok(id)
    }

    /// Removes a publication; each subscriber is told to close its sender.
    pub fn remove_publication(&mut self, id: PublicationId) -> Result<(), RouterError> {
        let publication = self
            .publications
            .remove(&id)
            .ok_or(RouterError::NoSuchPublication(id))?;
        if let Some(room) = self.lessons.get_mut(&publication.lesson) {
            room.publications.retain(|p| *p != id);
        }
        for sub in publication.subscriptions {
            self.outputs.push_back(Output::SubscriptionRemoved {
                subscriber: sub.subscriber,
                publication: id,
            });
        }
        self.outputs.push_back(Output::PublicationRemoved {
            owner: publication.owner,
            publication: id,
        });
        Ok(())
    }

    /// The transport opened the subscriber's sender: from now on packets flow to it, in
    /// `format`. A video subscription first waits for a keyframe, and one is requested.
    pub fn attach_subscription(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
        format: LegFormat,
    ) -> Result<(), RouterError> {
        let pubn = self
            .publications
            .get_mut(&publication)
            .ok_or(RouterError::NoSuchPublication(publication))?;
        let video = pubn.kind == MediaKind::Video;
        let sub = pubn
            .subscription(subscriber)
            .ok_or(RouterError::NoSuchSubscription {
                subscriber,
                publication,
            })?;
        sub.attach(now, format, video);
        if video {
            self.request_keyframe(now, publication);
            self.wake_no_later_than(now + self.config.keyframe_retry);
        }
        Ok(())
    }

    /// One RTP packet from a publisher. Forwards it to every attached subscription.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        publication: PublicationId,
        packet: rtp::Packet,
    ) -> Result<(), RouterError> {
        let pubn = self
            .publications
            .get_mut(&publication)
            .ok_or(RouterError::NoSuchPublication(publication))?;
        pubn.media_ssrc = Some(packet.header.ssrc);
        let keyframe = pubn.kind == MediaKind::Video && vp8_starts_keyframe(&packet.payload);
        for sub in &mut pubn.subscriptions {
            let subscriber = sub.subscriber;
            if sub.waiting_since.is_some() {
                if !keyframe {
                    continue;
                }
                sub.waiting_since = None;
            }
            let Some(rewriter) = sub.rewriter() else {
                continue;
            };
            let mut out = packet.clone();
            rewriter.rewrite(now, &mut out);
            self.outputs.push_back(Output::Forward {
                subscriber,
                publication,
                packet: out,
            });
        }
        Ok(())
    }

    /// A subscriber asked for a keyframe (PLI/FIR) of a publication it receives.
    pub fn handle_keyframe_request(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
    ) -> Result<(), RouterError> {
        let pubn = self
            .publications
            .get_mut(&publication)
            .ok_or(RouterError::NoSuchPublication(publication))?;
        if pubn.subscription(subscriber).is_none() {
            return Err(RouterError::NoSuchSubscription {
                subscriber,
                publication,
            });
        }
        self.request_keyframe(now, publication);
        Ok(())
    }

    /// Sends keyframe requests that were throttled and re-asks for keyframes that have not come.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.wake_at {
            Some(at) if now >= at => {}
            _ => return,
        }
        self.wake_at = None;
        let retry = self.config.keyframe_retry;
        let mut again = Vec::new();
        let mut next: Option<Instant> = None;
        for (&id, pubn) in &mut self.publications {
            if pubn.keyframes.poll_pending(now)
                && let Some(media_ssrc) = pubn.media_ssrc
            {
                self.outputs.push_back(Output::RequestKeyframe {
                    publisher: pubn.owner,
                    publication: id,
                    media_ssrc,
                });
            }
            for sub in &mut pubn.subscriptions {
                if let Some(since) = sub.waiting_since {
                    if now >= since + retry {
                        sub.waiting_since = Some(now);
                        again.push(id);
                    }
                    let due = sub.waiting_since.unwrap_or(now) + retry;
                    next = Some(next.map_or(due, |n| n.min(due)));
                }
            }
            if let Some(due) = pubn.keyframes.due_at() {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        again.dedup();
        for id in again {
            self.request_keyframe(now, id);
        }
        if let Some(at) = next {
            self.wake_no_later_than(at);
        }
    }

    /// The next instant [`Router::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wake_at
    }

    /// How many keyframe requests the per-publication gates have coalesced since start.
    pub fn keyframe_requests_throttled(&self) -> u64 {
        self.keyframe_requests_throttled
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The lesson a participant is in.
    pub fn lesson_of(&self, participant: ParticipantId) -> Option<LessonId> {
        self.participants.get(&participant).copied()
    }

    /// Who publishes `publication`, and its source.
    pub fn publication(&self, id: PublicationId) -> Option<(ParticipantId, Source, MediaKind)> {
        self.publications
            .get(&id)
            .map(|p| (p.owner, p.source, p.kind))
    }

    fn request_keyframe(&mut self, now: Instant, id: PublicationId) {
        let Some(pubn) = self.publications.get_mut(&id) else {
            return;
        };
        if pubn.keyframes.allow(now) {
            // Before the first packet the SSRC is unknown; the publisher's encoder starts
            // with a keyframe anyway, and the retry timer asks again.
            if let Some(media_ssrc) = pubn.media_ssrc {
                self.outputs.push_back(Output::RequestKeyframe {
                    publisher: pubn.owner,
                    publication: id,
                    media_ssrc,
                });
            }
        } else {
            self.keyframe_requests_throttled += 1;
            if let Some(due) = pubn.keyframes.due_at() {
                self.wake_no_later_than(due);
            }
        }
    }

    fn wake_no_later_than(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const KEY: &[u8] = &[0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
    const DELTA: &[u8] = &[0x10, 0x11, 0x00];
    const OPUS: &[u8] = &[0xfc, 0xff, 0xfe];

    fn rtp(ssrc: u32, seq: u16, payload: &'static [u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type: 120,
                sequence_number: seq,
                timestamp: seq as u32 * 3000,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        }
    }

    fn format(ssrc: u32, payload_type: u8) -> LegFormat {
        LegFormat {
            ssrc,
            payload_type,
            clock_rate: 90_000,
        }
    }

    fn drain(router: &mut Router) -> Vec<Output> {
        std::iter::from_fn(|| router.poll_output()).collect()
    }

    fn forwards(outputs: &[Output]) -> Vec<(ParticipantId, u32, u16, u8)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Forward {
                    subscriber, packet, ..
                } => Some((
                    *subscriber,
                    packet.header.ssrc,
                    packet.header.sequence_number,
                    packet.header.payload_type,
                )),
                _ => None,
            })
            .collect()
    }

    const LESSON: LessonId = LessonId(1);
    const TEACHER: ParticipantId = ParticipantId(1);
    const ROOM_A: ParticipantId = ParticipantId(2);
    const ROOM_B: ParticipantId = ParticipantId(3);

    /// A teacher publishing audio in a lesson with two classrooms, all attached.
    fn lesson_with_audio(t0: Instant) -> (Router, PublicationId) {
        let mut r = Router::new(RouterConfig::default());
        r.add_participant(LESSON, TEACHER, true).unwrap();
        r.add_participant(LESSON, ROOM_A, true).unwrap();
        r.add_participant(LESSON, ROOM_B, true).unwrap();
        let audio = r
            .add_publication(TEACHER, Source::Microphone, MediaKind::Audio)
            .unwrap();
        let out = drain(&mut r);
        assert_eq!(
            out,
            vec![
                Output::SubscriptionAdded {
                    subscriber: ROOM_A,
                    publication: audio,
                    kind: MediaKind::Audio,
                    source: Source::Microphone
                },
                Output::SubscriptionAdded {
                    subscriber: ROOM_B,
                    publication: audio,
                    kind: MediaKind::Audio,
                    source: Source::Microphone
                },
            ],
            "everyone but the publisher subscribes"
        );
        r.attach_subscription(t0, ROOM_A, audio, format(0xA, 111))
            .unwrap();
        r.attach_subscription(t0, ROOM_B, audio, format(0xB, 109))
            .unwrap();
        (r, audio)
    }

    #[test]
    fn routes_to_every_subscriber_with_per_leg_rewriting() {
        let t0 = Instant::now();
        let (mut r, audio) = lesson_with_audio(t0);
        assert_eq!(drain(&mut r), vec![], "audio needs no keyframe");
        r.handle_rtp(t0, audio, rtp(0x7777, 500, OPUS)).unwrap();
        r.handle_rtp(t0, audio, rtp(0x7777, 501, OPUS)).unwrap();
        let out = drain(&mut r);
        assert_eq!(
            forwards(&out),
            vec![
                (ROOM_A, 0xA, 500, 111),
                (ROOM_B, 0xB, 500, 109),
                (ROOM_A, 0xA, 501, 111),
                (ROOM_B, 0xB, 501, 109),
            ]
        );
        for o in &out {
            if let Output::Forward { packet, .. } = o {
                assert_eq!(&packet.payload[..], OPUS, "payload intact");
            }
        }
    }

    #[test]
    fn unattached_subscription_receives_nothing() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_participant(LESSON, TEACHER, true).unwrap();
        r.add_participant(LESSON, ROOM_A, true).unwrap();
        let audio = r
            .add_publication(TEACHER, Source::Microphone, MediaKind::Audio)
            .unwrap();
        drain(&mut r);
        r.handle_rtp(t0, audio, rtp(1, 1, OPUS)).unwrap();
        assert_eq!(forwards(&drain(&mut r)), vec![]);
    }

    #[test]
    fn lessons_are_isolated() {
        let t0 = Instant::now();
        let (mut r, audio) = lesson_with_audio(t0);
        r.add_participant(LessonId(2), ParticipantId(9), true)
            .unwrap();
        assert_eq!(drain(&mut r), vec![], "no subscription across lessons");
        r.handle_rtp(t0, audio, rtp(1, 1, OPUS)).unwrap();
        assert!(
            forwards(&drain(&mut r))
                .iter()
                .all(|(who, ..)| *who != ParticipantId(9))
        );
    }

    #[test]
    fn late_video_subscriber_waits_for_keyframe_and_asks_for_one() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_participant(LESSON, TEACHER, true).unwrap();
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        r.handle_rtp(t0, cam, rtp(0x55, 1, KEY)).unwrap();
        r.handle_rtp(t0, cam, rtp(0x55, 2, DELTA)).unwrap();
        // A classroom joins late.
        r.add_participant(LESSON, ROOM_A, true).unwrap();
        assert_eq!(
            drain(&mut r),
            vec![Output::SubscriptionAdded {
                subscriber: ROOM_A,
                publication: cam,
                kind: MediaKind::Video,
                source: Source::Camera
            }]
        );
        let t1 = t0 + Duration::from_secs(5);
        r.attach_subscription(t1, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        assert_eq!(
            drain(&mut r),
            vec![Output::RequestKeyframe {
                publisher: TEACHER,
                publication: cam,
                media_ssrc: 0x55
            }]
        );
        // Delta frames are held back until the keyframe.
        r.handle_rtp(t1, cam, rtp(0x55, 3, DELTA)).unwrap();
        assert_eq!(forwards(&drain(&mut r)), vec![]);
        r.handle_rtp(t1, cam, rtp(0x55, 4, KEY)).unwrap();
        r.handle_rtp(t1, cam, rtp(0x55, 5, DELTA)).unwrap();
        assert_eq!(
            forwards(&drain(&mut r)),
            vec![(ROOM_A, 0xA, 4, 96), (ROOM_A, 0xA, 5, 96)]
        );
    }

    #[test]
    fn keyframe_requests_are_throttled_per_publication_and_never_lost() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_participant(LESSON, TEACHER, true).unwrap();
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        let mut rooms = vec![];
        for i in 0..20 {
            let room = ParticipantId(100 + i);
            r.add_participant(LESSON, room, true).unwrap();
            rooms.push(room);
        }
        r.handle_rtp(t0, cam, rtp(0x55, 1, KEY)).unwrap();
        drain(&mut r);
        // Twenty classrooms attach (and so ask for a keyframe) within 100 ms.
        for (i, room) in rooms.iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64 * 5);
            r.attach_subscription(at, *room, cam, format(i as u32, 96))
                .unwrap();
        }
        // PLIs from subscribers coalesce too.
        for room in &rooms {
            r.handle_keyframe_request(t0 + Duration::from_millis(150), *room, cam)
                .unwrap();
        }
        let requests = |out: &[Output]| {
            out.iter()
                .filter(|o| matches!(o, Output::RequestKeyframe { .. }))
                .count()
        };
        assert_eq!(requests(&drain(&mut r)), 1, "one request for the storm");
        assert_eq!(
            r.keyframe_requests_throttled(),
            39,
            "the other 39 were coalesced"
        );
        let due = r
            .poll_timeout()
            .expect("the coalesced request is scheduled");
        assert_eq!(due, t0 + Duration::from_millis(500));
        r.handle_timeout(due);
        assert_eq!(
            requests(&drain(&mut r)),
            1,
            "the coalesced request goes out"
        );
        r.handle_timeout(due + Duration::from_millis(100));
        assert_eq!(requests(&drain(&mut r)), 0, "and only once");
        assert!(
            r.handle_keyframe_request(t0, ParticipantId(999), cam)
                .is_err(),
            "a stranger cannot ask"
        );
    }

    #[test]
    fn keyframe_wait_is_retried_until_a_keyframe_arrives() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig::default());
        r.add_participant(LESSON, TEACHER, true).unwrap();
        r.add_participant(LESSON, ROOM_A, true).unwrap();
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        r.handle_rtp(t0, cam, rtp(0x55, 1, DELTA)).unwrap();
        r.attach_subscription(t0, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        drain(&mut r);
        let retry = r.poll_timeout().expect("a retry is scheduled");
        assert_eq!(retry, t0 + Duration::from_secs(1));
        r.handle_timeout(retry);
        assert!(
            drain(&mut r)
                .iter()
                .any(|o| matches!(o, Output::RequestKeyframe { .. }))
        );
        r.handle_rtp(retry, cam, rtp(0x55, 2, KEY)).unwrap();
        drain(&mut r);
        r.handle_timeout(retry + Duration::from_secs(5));
        assert!(
            !drain(&mut r)
                .iter()
                .any(|o| matches!(o, Output::RequestKeyframe { .. })),
            "no more requests once the keyframe came"
        );
    }

    #[test]
    fn a_leaving_subscriber_stops_receiving_and_a_leaving_publisher_ends_its_publications() {
        let t0 = Instant::now();
        let (mut r, audio) = lesson_with_audio(t0);
        r.remove_participant(ROOM_A).unwrap();
        assert_eq!(drain(&mut r), vec![]);
        r.handle_rtp(t0, audio, rtp(1, 1, OPUS)).unwrap();
        assert_eq!(forwards(&drain(&mut r)), vec![(ROOM_B, 0xB, 1, 109)]);
        assert_eq!(
            r.remove_participant(ROOM_A),
            Err(RouterError::NoSuchParticipant(ROOM_A))
        );
        r.remove_participant(TEACHER).unwrap();
        assert_eq!(
            drain(&mut r),
            vec![
                Output::SubscriptionRemoved {
                    subscriber: ROOM_B,
                    publication: audio
                },
                Output::PublicationRemoved {
                    owner: TEACHER,
                    publication: audio
                },
            ]
        );
        assert_eq!(
            r.handle_rtp(t0, audio, rtp(1, 2, OPUS)),
            Err(RouterError::NoSuchPublication(audio))
        );
    }
}
