//! Who is in which lesson right now, and fan-out of control messages to them.
//!
//! The hub is control-plane state only: participants, their publications, and each one's
//! outbound queue. Media never passes through it. Every operation runs under one
//! `std::sync::Mutex` and never awaits while holding it: the critical sections are a few map
//! updates and non-blocking `try_send`s, so a blocking lock is cheaper than an async one and
//! cannot be held across a suspension point by construction (DESIGN §4; mini-redis `db.rs`).
//!
//! A participant whose queue is full is too slow to follow the lesson. It is removed on the
//! spot (others see it leave as `vanished`) and its connection is told to close, so one slow
//! socket never blocks or grows the room.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use sfu::ParticipantId;
use tokio::sync::{mpsc, watch};

use crate::lesson::LessonKey;
use crate::metrics::Metrics;
use crate::protocol::{
    LeaveReason, LessonSnapshot, ParticipantInfo, PublicationInfo, ServerMessage,
};

/// Why the hub wants a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Its outbound queue filled; it has already been removed from the lesson.
    SlowConsumer,
    /// The lesson ended; `lesson_ended` is the last message queued to it.
    LessonEnded,
}

/// A joined participant as the hub holds it.
pub struct Member {
    pub info: ParticipantInfo,
    /// Its connection's outbound queue, bounded.
    pub outbox: mpsc::Sender<ServerMessage>,
    /// Tells its connection to close, and why.
    pub kick: watch::Sender<Option<Kick>>,
}

/// The hub refused a join.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HubJoinError {
    #[error("the lesson has ended")]
    LessonEnded,
    #[error("the participant's queue is full")]
    QueueFull,
}

#[derive(Default)]
struct Room {
    members: HashMap<ParticipantId, Member>,
    /// By publication id, so `joined` lists them in the order they started.
    publications: BTreeMap<u64, PublicationInfo>,
}

#[derive(Default)]
struct Rooms {
    rooms: HashMap<LessonKey, Room>,
    /// Lessons ended while this process ran, so a join that raced the end is refused. Grows
    /// by one id (8 bytes) per lesson ended; a lesson's row outlives it in the database anyway.
    ended: HashSet<LessonKey>,
}

/// Every lesson's live participants.
pub struct Hub {
    inner: Mutex<Rooms>,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Hub {
        Hub {
            inner: Mutex::new(Rooms::default()),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rooms> {
        // A panic while holding the lock left maps that are still structurally sound (every
        // update is a single insert or remove); keep serving rather than poison every request.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a participant. Its queue gets `joined` (the others and the publications now) before
    /// anything else can reach it, and the others get `participant_joined`.
    pub fn join(
        &self,
        lesson: &LessonSnapshot,
        reply_id: Option<String>,
        member: Member,
    ) -> Result<(), HubJoinError> {
        let mut rooms = self.lock();
        if rooms.ended.contains(&lesson.id) {
            return Err(HubJoinError::LessonEnded);
        }
        let room = rooms.rooms.entry(lesson.id).or_default();
        let joined = ServerMessage::Joined {
            id: reply_id,
            you: member.info.clone(),
            lesson: lesson.clone(),
            participants: room.members.values().map(|m| m.info.clone()).collect(),
            publications: room.publications.values().cloned().collect(),
        };
        if member.outbox.try_send(joined).is_err() {
            if room.members.is_empty() {
                rooms.rooms.remove(&lesson.id);
            }
            return Err(HubJoinError::QueueFull);
        }
        self.metrics
            .ws_messages_out
            .with_label_values(&["joined"])
            .inc();
        let pid = ParticipantId(member.info.id);
        let announce = ServerMessage::ParticipantJoined {
            participant: member.info.clone(),
        };
        room.members.insert(pid, member);
        self.metrics.participants.inc();
        self.deliver(room, |p| p != pid, &announce);
        self.tidy(&mut rooms, lesson.id);
        Ok(())
    }

    /// Removes a participant and its publications, telling the others. Returns false if it was
    /// not there (already removed as slow, or its lesson ended).
    pub fn leave(&self, lesson: LessonKey, pid: ParticipantId, reason: LeaveReason) -> bool {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return false;
        };
        let removed = self.remove_member(room, pid, reason);
        self.tidy(&mut rooms, lesson);
        removed
    }

    /// Records a publication that started and tells everyone in the lesson, its owner included
    /// (that is how the owner learns the publication's id).
    pub fn add_publication(&self, lesson: LessonKey, publication: PublicationInfo) {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return;
        };
        // A late event for a participant that already left must not resurrect its media.
        if !room
            .members
            .contains_key(&ParticipantId(publication.participant_id))
        {
            return;
        }
        room.publications
            .insert(publication.id, publication.clone());
        self.deliver(
            room,
            |_| true,
            &ServerMessage::PublicationAdded { publication },
        );
        self.tidy(&mut rooms, lesson);
    }

    /// Forgets a publication that ended and tells everyone in the lesson.
    pub fn remove_publication(&self, lesson: LessonKey, publication_id: u64) {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return;
        };
        if room.publications.remove(&publication_id).is_some() {
            self.deliver(
                room,
                |_| true,
                &ServerMessage::PublicationRemoved { publication_id },
            );
        }
        self.tidy(&mut rooms, lesson);
    }

    /// Queues a message to one participant. Returns false if it is not in the lesson (any
    /// more); a full queue removes it as too slow.
    pub fn send_to(&self, lesson: LessonKey, pid: ParticipantId, message: ServerMessage) -> bool {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return false;
        };
        if !room.members.contains_key(&pid) {
            return false;
        }
        self.deliver(room, |p| p == pid, &message);
        self.tidy(&mut rooms, lesson);
        true
    }

    /// Who is in a lesson now.
    pub fn participants(&self, lesson: LessonKey) -> Vec<ParticipantInfo> {
        let rooms = self.lock();
        let mut list: Vec<ParticipantInfo> = rooms
            .rooms
            .get(&lesson)
            .map(|room| room.members.values().map(|m| m.info.clone()).collect())
            .unwrap_or_default();
        list.sort_by_key(|p| p.id);
        list
    }

    /// Ends a lesson: every participant gets `lesson_ended` and its connection is told to
    /// close; later joins are refused.
    pub fn end_lesson(&self, lesson: LessonKey) {
        let mut rooms = self.lock();
        rooms.ended.insert(lesson);
        if let Some(room) = rooms.rooms.remove(&lesson) {
            let message = ServerMessage::LessonEnded { lesson_id: lesson };
            for member in room.members.values() {
                // A full queue is dropped: the close that follows says the same thing.
                if member.outbox.try_send(message.clone()).is_ok() {
                    self.metrics
                        .ws_messages_out
                        .with_label_values(&[message.kind()])
                        .inc();
                }
                // No receiver means the connection is already closing.
                let _ = member.kick.send(Some(Kick::LessonEnded));
                self.metrics.participants.dec();
            }
        }
        self.tidy(&mut rooms, lesson);
    }

    /// Drops the lesson's room once nobody is left in it (slow members can empty a room from
    /// inside any broadcast), and refreshes the gauge. O(1): only this lesson is looked at.
    fn tidy(&self, rooms: &mut Rooms, lesson: LessonKey) {
        if rooms
            .rooms
            .get(&lesson)
            .is_some_and(|room| room.members.is_empty())
        {
            rooms.rooms.remove(&lesson);
        }
        self.metrics
            .live_lessons
            .set(i64::try_from(rooms.rooms.len()).unwrap_or(i64::MAX));
    }

    fn remove_member(&self, room: &mut Room, pid: ParticipantId, reason: LeaveReason) -> bool {
        if room.members.remove(&pid).is_none() {
            return false;
        }
        self.metrics.participants.dec();
        self.metrics
            .participants_left
            .with_label_values(&[leave_reason_name(reason)])
            .inc();
        let gone: Vec<u64> = room
            .publications
            .values()
            .filter(|p| p.participant_id == pid.0)
            .map(|p| p.id)
            .collect();
        for publication_id in gone {
            room.publications.remove(&publication_id);
            self.deliver(
                room,
                |_| true,
                &ServerMessage::PublicationRemoved { publication_id },
            );
        }
        self.deliver(
            room,
            |_| true,
            &ServerMessage::ParticipantLeft {
                participant_id: pid.0,
                reason,
            },
        );
        true
    }

    /// Queues `message` to the members `to` selects. Members whose queue is full are removed
    /// as `vanished` and kicked; their leaving is announced in turn, which may find more slow
    /// members, so this works through a list until none is left.
    fn deliver(
        &self,
        room: &mut Room,
        to: impl Fn(ParticipantId) -> bool,
        message: &ServerMessage,
    ) {
        let mut slow = Vec::new();
        for (pid, member) in &room.members {
            if !to(*pid) {
                continue;
            }
            match member.outbox.try_send(message.clone()) {
                Ok(()) => self
                    .metrics
                    .ws_messages_out
                    .with_label_values(&[message.kind()])
                    .inc(),
                Err(mpsc::error::TrySendError::Full(_)) => slow.push(*pid),
                // The connection is closing and will call `leave` itself.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for pid in slow {
            if let Some(member) = room.members.get(&pid) {
                let _ = member.kick.send(Some(Kick::SlowConsumer));
                self.metrics.slow_consumer_disconnects.inc();
                tracing::warn!(participant = %pid, "participant too slow to follow the lesson; disconnecting");
            }
            // Recursion depth is bounded by the number of members: each level removes one.
            self.remove_member(room, pid, LeaveReason::Vanished);
        }
    }
}

pub fn leave_reason_name(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Left => "left",
        LeaveReason::Vanished => "vanished",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MediaKind, Role, Source};

    fn metrics() -> Arc<Metrics> {
        Arc::new(Metrics::new().unwrap())
    }

    fn snapshot(id: LessonKey) -> LessonSnapshot {
        LessonSnapshot {
            id,
            title: "t".into(),
            subject: String::new(),
            grade: String::new(),
            mode: "delivery".into(),
            state: "live".into(),
        }
    }

    struct Conn {
        rx: mpsc::Receiver<ServerMessage>,
        kick: watch::Receiver<Option<Kick>>,
    }

    fn member(id: u64, queue: usize) -> (Member, Conn) {
        let (tx, rx) = mpsc::channel(queue);
        let (kick_tx, kick_rx) = watch::channel(None);
        (
            Member {
                info: ParticipantInfo {
                    id,
                    name: format!("p{id}"),
                    role: Role::Classroom,
                },
                outbox: tx,
                kick: kick_tx,
            },
            Conn { rx, kick: kick_rx },
        )
    }

    fn drain(conn: &mut Conn) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        while let Ok(m) = conn.rx.try_recv() {
            out.push(m);
        }
        out
    }

    #[test]
    fn join_publish_leave_are_announced() {
        let hub = Hub::new(metrics());
        let (m1, mut c1) = member(1, 16);
        let (m2, mut c2) = member(2, 16);
        hub.join(&snapshot(7), Some("a".into()), m1).unwrap();
        hub.add_publication(
            7,
            PublicationInfo {
                id: 10,
                participant_id: 1,
                source: Source::Camera,
                kind: MediaKind::Video,
            },
        );
        hub.join(&snapshot(7), None, m2).unwrap();

        let to1 = drain(&mut c1);
        assert!(
            matches!(&to1[0], ServerMessage::Joined { id: Some(id), participants, .. } if id == "a" && participants.is_empty())
        );
        assert!(
            matches!(&to1[1], ServerMessage::PublicationAdded { publication } if publication.id == 10)
        );
        assert!(
            matches!(&to1[2], ServerMessage::ParticipantJoined { participant } if participant.id == 2)
        );

        let to2 = drain(&mut c2);
        match &to2[0] {
            ServerMessage::Joined {
                participants,
                publications,
                ..
            } => {
                assert_eq!(participants.len(), 1);
                assert_eq!(participants[0].id, 1);
                assert_eq!(publications.len(), 1);
            }
            other => panic!("expected joined, got {other:?}"),
        }

        assert!(hub.leave(7, ParticipantId(1), LeaveReason::Left));
        let to2 = drain(&mut c2);
        assert_eq!(
            to2,
            vec![
                ServerMessage::PublicationRemoved { publication_id: 10 },
                ServerMessage::ParticipantLeft {
                    participant_id: 1,
                    reason: LeaveReason::Left
                }
            ]
        );
        assert!(!hub.leave(7, ParticipantId(1), LeaveReason::Left));
        // A late publication event for the departed participant is ignored.
        hub.add_publication(
            7,
            PublicationInfo {
                id: 11,
                participant_id: 1,
                source: Source::Microphone,
                kind: MediaKind::Audio,
            },
        );
        assert!(drain(&mut c2).is_empty());
        assert_eq!(hub.participants(7).len(), 1);
    }

    #[test]
    fn slow_participant_is_removed_not_waited_for() {
        let hub = Hub::new(metrics());
        let (m1, mut c1) = member(1, 16);
        // Room for `joined` and nothing else.
        let (m2, c2) = member(2, 1);
        hub.join(&snapshot(7), None, m1).unwrap();
        hub.join(&snapshot(7), None, m2).unwrap();
        drain(&mut c1);
        let (m3, _c3) = member(3, 16);
        hub.join(&snapshot(7), None, m3).unwrap();

        assert_eq!(*c2.kick.borrow(), Some(Kick::SlowConsumer));
        let to1 = drain(&mut c1);
        assert!(to1.contains(&ServerMessage::ParticipantLeft {
            participant_id: 2,
            reason: LeaveReason::Vanished
        }));
        assert_eq!(
            hub.participants(7).iter().map(|p| p.id).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(hub.metrics.slow_consumer_disconnects.get(), 1);
    }

    #[test]
    fn ended_lesson_kicks_everyone_and_refuses_joins() {
        let hub = Hub::new(metrics());
        let (m1, mut c1) = member(1, 16);
        hub.join(&snapshot(7), None, m1).unwrap();
        drain(&mut c1);
        hub.end_lesson(7);
        assert_eq!(
            drain(&mut c1),
            vec![ServerMessage::LessonEnded { lesson_id: 7 }]
        );
        assert_eq!(*c1.kick.borrow(), Some(Kick::LessonEnded));
        let (m2, _c2) = member(2, 16);
        assert_eq!(
            hub.join(&snapshot(7), None, m2),
            Err(HubJoinError::LessonEnded)
        );
        assert!(hub.participants(7).is_empty());
        assert_eq!(hub.metrics.participants.get(), 0);
    }
}
