//! Every live lesson behind one lock, and the one function that delivers what a lesson's
//! [`Room`] decided: the hub owns the rooms, each connection's outbound queue, grants `watch`
//! and close signal, the lessons that ended, the identities removed, and which lessons are
//! being recorded.
//!
//! Every operation runs under one `std::sync::Mutex` and never awaits while holding it: the
//! critical sections are a few map updates and non-blocking `try_send`s, so a blocking lock is
//! cheaper than an async one and cannot be held across a suspension point by construction
//! (DESIGN §4). The room decides; [`Hub::deliver`] is the only code that touches a channel.
//!
//! A connection whose queue is full is too slow to follow the lesson. It is told to close on the
//! spot, removed from the lesson once the current request's messages are out (the others see it
//! leave as `vanished`), and counted, so one slow socket never blocks or grows the room. The
//! media plane is muted by the caller, outside the lock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use sfu::ParticipantId;
use tokio::sync::{mpsc, watch};

use super::outcome::{ControlError, Kick, Outcome, Step};
use super::room::{Newcomer, Room, Welcome};
use super::{ConnectionId, MemberId};
use crate::domain::grants::Grants;
use crate::domain::lesson::{LessonKey, LessonMode};
use crate::domain::timestamp::Timestamp;
use crate::metrics::Metrics;
use crate::protocol::{
    ChatAudience, ChatMessage, LeaveReason, LessonSnapshot, ParticipantInfo, PublicationInfo,
    ServerMessage, Source,
};

/// How long a participant whose connection dropped keeps its place in the lesson: long enough
/// for a rural link to come back or a page to reload, short enough that a classroom that has
/// really gone does not hold a stage place for long.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(30);

/// A participant joining on a connection, as its connection hands it to the hub.
pub struct Member {
    /// Its id is a proposal: a participant coming back gets its old id instead.
    pub info: ParticipantInfo,
    /// Which connection holds the seat (a number unique in this process), so a replaced
    /// connection closing late cannot take its successor out of the lesson.
    pub connection: u64,
    /// The token's `sub`: the same invite reconnecting is the same participant.
    pub identity: String,
    /// The grants it joined with. Its current grants are these plus the stage's sources while
    /// it is on stage; they are published on `grants`.
    pub base_grants: Grants,
    /// Its current grants, which its connection reads for every check.
    pub grants: watch::Sender<Grants>,
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
    #[error("this lesson already has {max} classrooms")]
    LessonFull { max: usize },
    #[error("a moderator removed this participant from the lesson")]
    Removed,
}

/// Told of every message the hub delivers in a lesson, whoever it reaches, with the hub's
/// lock held: it must be quick and must not call back into the hub (the recorder hands the
/// message to a bounded queue).
pub type Observer = Box<dyn Fn(LessonKey, &ServerMessage) + Send + Sync>;

/// The channels to one seated connection.
struct Link {
    outbox: mpsc::Sender<ServerMessage>,
    grants: watch::Sender<Grants>,
    kick: watch::Sender<Option<Kick>>,
}

/// One lesson with anyone in it: the room's state and its seated connections' channels. A link
/// is inserted with its seat and dropped when the room releases the connection.
struct Live {
    room: Room,
    links: HashMap<ConnectionId, Link>,
}

#[derive(Default)]
struct Lessons {
    live: HashMap<LessonKey, Live>,
    /// Lessons ended while this process ran, so a join that raced the end is refused. Grows
    /// by one id (8 bytes) per lesson ended; a lesson's row outlives it in the database anyway.
    ended: HashSet<LessonKey>,
    /// Identities removed from a lesson while this process ran, so that a join racing the
    /// removal is refused; the store keeps them across restarts, and join checks it first.
    removed: HashSet<(LessonKey, String)>,
    /// Lessons being recorded now; kept apart from the rooms, which come and go with their
    /// members while a recording goes on.
    recording: HashSet<LessonKey>,
}

/// Every lesson's live participants.
pub struct Hub {
    inner: Mutex<Lessons>,
    metrics: Arc<Metrics>,
    observer: OnceLock<Observer>,
}

/// A room's answer that carries an outcome only when it did something.
fn done(outcome: Option<Outcome>) -> (bool, Outcome) {
    match outcome {
        Some(outcome) => (true, outcome),
        None => (false, Outcome::default()),
    }
}

/// A control request's answer, split into what to tell the caller and what to deliver.
fn split(result: Result<Outcome, ControlError>) -> (Result<(), ControlError>, Outcome) {
    match result {
        Ok(outcome) => (Ok(()), outcome),
        Err(e) => (Err(e), Outcome::default()),
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Hub {
        Hub {
            inner: Mutex::new(Lessons::default()),
            metrics,
            observer: OnceLock::new(),
        }
    }

    /// Sets the one observer of delivered messages (the recorder's timeline); later calls
    /// are ignored.
    pub fn set_observer(&self, observer: Observer) {
        let _ = self.observer.set(observer);
    }

    fn lock(&self) -> MutexGuard<'_, Lessons> {
        // A panic while holding the lock left maps that are still structurally sound (every
        // update is a single insert or remove); keep serving rather than poison every request.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on `lesson`'s room, delivers its outcome and tidies; `None` if nobody is in
    /// the lesson.
    fn act<T>(&self, lesson: LessonKey, f: impl FnOnce(&mut Room) -> (T, Outcome)) -> Option<T> {
        let mut lessons = self.lock();
        self.act_locked(&mut lessons, lesson, f)
    }

    fn act_locked<T>(
        &self,
        lessons: &mut Lessons,
        lesson: LessonKey,
        f: impl FnOnce(&mut Room) -> (T, Outcome),
    ) -> Option<T> {
        let live = lessons.live.get_mut(&lesson)?;
        let before = live.room.census();
        let (value, outcome) = f(&mut live.room);
        self.deliver(lesson, live, outcome);
        self.count(before, live.room.census());
        self.tidy(lessons, lesson);
        Some(value)
    }

    /// Records whether `lesson` is being recorded (so later joiners are told in `joined`)
    /// and tells everyone in it with `recording_changed`; `error`, when the recording stopped
    /// on its own, goes to the moderators only.
    pub fn set_recording(
        &self,
        lesson: LessonKey,
        recording: bool,
        error: Option<recorder::ErrorInfo>,
    ) {
        let mut lessons = self.lock();
        if recording {
            lessons.recording.insert(lesson);
        } else {
            lessons.recording.remove(&lesson);
        }
        self.act_locked(&mut lessons, lesson, |room| {
            ((), room.recording_changed(recording, error))
        });
    }

    /// The member on media connection `connection` of `lesson`, if it is still there.
    pub fn member_by_connection(
        &self,
        lesson: LessonKey,
        connection: u64,
    ) -> Option<ParticipantInfo> {
        let lessons = self.lock();
        let live = lessons.live.get(&lesson)?;
        live.room.member_on(ConnectionId(connection)).cloned()
    }

    /// Adds a participant. Its queue gets `joined` (the others it may see, the publications,
    /// hands, stage and `chat` history now) before anything else can reach it, and those who
    /// may see it get `participant_joined`. A classroom past its mode's limit is refused.
    ///
    /// An invite that is away, or still on another connection, resumes its seat instead: it
    /// keeps its old id, hand and stage place, and the others get `participant_resumed`.
    /// Returns the participant's id.
    pub fn join(
        &self,
        lesson: &LessonSnapshot,
        mode: LessonMode,
        reply_id: Option<String>,
        member: Member,
        chat: Vec<ChatMessage>,
    ) -> Result<ParticipantId, HubJoinError> {
        let mut lessons = self.lock();
        if lessons.ended.contains(&lesson.id) {
            return Err(HubJoinError::LessonEnded);
        }
        if lessons
            .removed
            .contains(&(lesson.id, member.identity.clone()))
        {
            return Err(HubJoinError::Removed);
        }
        let recording = lessons.recording.contains(&lesson.id);
        let live = lessons.live.entry(lesson.id).or_insert_with(|| Live {
            room: Room::new(mode),
            links: HashMap::new(),
        });
        if let Err(full) = live.room.admits(member.info.role, &member.identity) {
            self.tidy(&mut lessons, lesson.id);
            return Err(HubJoinError::LessonFull { max: full.max });
        }
        // `joined` must be the first message on the queue: its slot is reserved before the
        // room changes, so nothing has to be undone if the queue were full.
        let Ok(permit) = member.outbox.clone().try_reserve_owned() else {
            self.tidy(&mut lessons, lesson.id);
            return Err(HubJoinError::QueueFull);
        };
        let connection = ConnectionId(member.connection);
        let newcomer = Newcomer {
            info: member.info,
            identity: member.identity,
            connection,
            grants: member.base_grants,
        };
        let welcome = Welcome {
            reply_id,
            lesson: lesson.clone(),
            chat,
            recording,
        };
        let before = live.room.census();
        let admitted = match live.room.join(newcomer, welcome) {
            Ok(admitted) => admitted,
            Err(full) => {
                self.tidy(&mut lessons, lesson.id);
                return Err(HubJoinError::LessonFull { max: full.max });
            }
        };
        permit.send(admitted.joined);
        self.metrics
            .ws_messages_out
            .with_label_values(&["joined"])
            .inc();
        live.links.insert(
            connection,
            Link {
                outbox: member.outbox,
                grants: member.grants,
                kick: member.kick,
            },
        );
        self.deliver(lesson.id, live, admitted.outcome);
        self.count(before, live.room.census());
        self.tidy(&mut lessons, lesson.id);
        Ok(ParticipantId(admitted.id.0))
    }

    /// The participant's connection dropped: it becomes away, keeping its id, hand, stage
    /// place and mutes for [`RECONNECT_GRACE`]; its publications end; those who see it get
    /// `participant_reconnecting`. Returns false (and does nothing) if `connection` no longer
    /// holds its seat. The caller calls [`Hub::expire`] once the grace has run out.
    pub fn suspend(&self, lesson: LessonKey, pid: ParticipantId, connection: u64) -> bool {
        self.act(lesson, |room| {
            done(room.suspend(MemberId(pid.0), ConnectionId(connection)))
        })
        .unwrap_or(false)
    }

    /// The grace of the absence that began when `connection` dropped has run out: if the
    /// participant is still away from that absence, it leaves the lesson as `vanished`.
    pub fn expire(&self, lesson: LessonKey, pid: ParticipantId, connection: u64) -> bool {
        self.act(lesson, |room| {
            done(room.expire(MemberId(pid.0), ConnectionId(connection)))
        })
        .unwrap_or(false)
    }

    /// Removes a participant and its publications, telling the others. Returns false if it was
    /// not there (already removed as slow, or its lesson ended) or `connection` no longer
    /// holds its seat.
    pub fn leave(
        &self,
        lesson: LessonKey,
        pid: ParticipantId,
        connection: u64,
        reason: LeaveReason,
    ) -> bool {
        self.act(lesson, |room| {
            done(room.leave(MemberId(pid.0), ConnectionId(connection), reason))
        })
        .unwrap_or(false)
    }

    /// Records a publication that started and tells everyone in the lesson, its owner included
    /// (that is how the owner learns the publication's id). Returns true if a moderator had
    /// muted its source, so the caller must mute it in the media plane too.
    pub fn add_publication(
        &self,
        lesson: LessonKey,
        connection: u64,
        publication: PublicationInfo,
    ) -> bool {
        self.act(lesson, |room| {
            room.add_publication(ConnectionId(connection), publication)
                .unwrap_or_default()
        })
        .unwrap_or(false)
    }

    /// Forgets a publication that ended and tells everyone in the lesson.
    pub fn remove_publication(&self, lesson: LessonKey, publication_id: u64) {
        self.act(lesson, |room| ((), room.remove_publication(publication_id)));
    }

    /// Checks that `actor` may mute `target`'s `source` and finds the publication to mute;
    /// changes nothing. The caller mutes it in the media plane, then calls [`Hub::set_muted`].
    pub fn mute_target(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: u64,
        source: Source,
    ) -> Result<u64, ControlError> {
        self.act(lesson, |room| {
            let found = room.mute_target(MemberId(actor.0), target, source);
            (found, Outcome::default())
        })
        .unwrap_or(Err(ControlError::NoSuchParticipant(actor.0)))
    }

    /// Records that `target`'s `source` is (un)muted and tells everyone in the lesson.
    pub fn set_muted(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: u64,
        source: Source,
        muted: bool,
    ) -> Result<(), ControlError> {
        self.control(lesson, actor, |room, actor| {
            room.set_muted(actor, target, source, muted)
        })
    }

    /// Checks that `actor` may remove `target`; returns the target's identity, which the
    /// caller records before calling [`Hub::remove`]. Changes nothing.
    pub fn removal_target(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: u64,
    ) -> Result<String, ControlError> {
        self.act(lesson, |room| {
            let found = room.removal_target(MemberId(actor.0), target);
            (found, Outcome::default())
        })
        .unwrap_or(Err(ControlError::NoSuchParticipant(actor.0)))
    }

    /// Removes the participant with `identity`, here or away: it gets `removed` and its
    /// connection is told to close; the others see it leave as `removed`. Later joins with
    /// that identity are refused.
    pub fn remove(&self, lesson: LessonKey, identity: &str) {
        let mut lessons = self.lock();
        lessons.removed.insert((lesson, identity.to_owned()));
        self.act_locked(&mut lessons, lesson, |room| ((), room.remove(identity)));
    }

    /// Queues a message to one participant. Returns false if it is not in the lesson (any
    /// more); a full queue removes it as too slow.
    pub fn send_to(&self, lesson: LessonKey, pid: ParticipantId, message: ServerMessage) -> bool {
        self.act(lesson, |room| done(room.send_to(MemberId(pid.0), message)))
            .unwrap_or(false)
    }

    /// Runs a control request of `actor`'s; a lesson with nobody in it has nobody to act.
    fn control(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        f: impl FnOnce(&mut Room, MemberId) -> Result<Outcome, ControlError>,
    ) -> Result<(), ControlError> {
        self.act(lesson, |room| split(f(room, MemberId(actor.0))))
            .unwrap_or(Err(ControlError::NoSuchParticipant(actor.0)))
    }

    /// `pid` raises its hand; everyone sees it. Raising it again keeps its place.
    pub fn raise_hand(
        &self,
        lesson: LessonKey,
        pid: ParticipantId,
        at: Timestamp,
    ) -> Result<(), ControlError> {
        self.control(lesson, pid, |room, me| room.raise_hand(me, at))
    }

    /// Lowers `target`'s hand (`None`: the actor's own). Only a moderator lowers another's.
    pub fn lower_hand(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: Option<u64>,
    ) -> Result<(), ControlError> {
        self.control(lesson, actor, |room, actor| room.lower_hand(actor, target))
    }

    pub fn lower_all_hands(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
    ) -> Result<(), ControlError> {
        self.control(lesson, actor, Room::lower_all_hands)
    }

    /// A moderator invites `target` onto the stage; the invitee and the moderators are told.
    pub fn invite_to_stage(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: u64,
    ) -> Result<(), ControlError> {
        self.control(lesson, actor, |room, actor| {
            room.invite_to_stage(actor, target)
        })
    }

    /// `pid` accepts its invitation: it is on stage, its hand comes down, and it may publish the
    /// stage's sources.
    pub fn accept_stage(&self, lesson: LessonKey, pid: ParticipantId) -> Result<(), ControlError> {
        self.control(lesson, pid, Room::accept_stage)
    }

    pub fn decline_stage(&self, lesson: LessonKey, pid: ParticipantId) -> Result<(), ControlError> {
        self.control(lesson, pid, Room::decline_stage)
    }

    /// Takes `target` (`None`: the actor) off the stage; only a moderator removes another.
    /// Its grants lose the stage's sources, which makes its connection stop those publications.
    pub fn leave_stage(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: Option<u64>,
    ) -> Result<(), ControlError> {
        self.control(lesson, actor, |room, actor| room.leave_stage(actor, target))
    }

    /// Delivers a stored chat message to those who read its audience.
    pub fn chat(&self, lesson: LessonKey, message: ChatMessage) {
        self.act(lesson, |room| ((), room.chat(message)));
    }

    /// Tells those who could read a message that it was deleted.
    pub fn chat_deleted(&self, lesson: LessonKey, message_id: i64, audience: ChatAudience) {
        self.act(lesson, |room| ((), room.chat_deleted(message_id, audience)));
    }

    /// Who is in a lesson now.
    pub fn participants(&self, lesson: LessonKey) -> Vec<ParticipantInfo> {
        let lessons = self.lock();
        lessons
            .live
            .get(&lesson)
            .map(|live| live.room.participants())
            .unwrap_or_default()
    }

    /// Ends a lesson: every participant gets `lesson_ended` and its connection is told to
    /// close; later joins are refused.
    pub fn end_lesson(&self, lesson: LessonKey) {
        let mut lessons = self.lock();
        lessons.ended.insert(lesson);
        lessons.recording.remove(&lesson);
        if let Some(mut live) = lessons.live.remove(&lesson) {
            let before = live.room.census();
            let outcome = live.room.end(lesson);
            self.deliver(lesson, &mut live, outcome);
            self.count(before, live.room.census());
        }
        self.tidy(&mut lessons, lesson);
    }

    /// Moves the participant gauges by what one request changed in a room.
    fn count(&self, before: (usize, usize), after: (usize, usize)) {
        self.metrics
            .participants
            .add(gauge(after.0) - gauge(before.0));
        self.metrics
            .participants_away
            .add(gauge(after.1) - gauge(before.1));
    }

    /// Drops the lesson's room once nobody is left in it (slow members can empty a room from
    /// inside any delivery), and refreshes the gauge. O(1): only this lesson is looked at.
    fn tidy(&self, lessons: &mut Lessons, lesson: LessonKey) {
        if lessons
            .live
            .get(&lesson)
            .is_some_and(|live| live.room.is_empty())
        {
            lessons.live.remove(&lesson);
        }
        self.metrics.live_lessons.set(gauge(lessons.live.len()));
    }

    /// Carries out a room's outcome, step by step, on the connections' channels. A connection
    /// whose queue is full is kicked at once and skipped for the rest of the outcome; once it is
    /// all out, the room evicts the slow ones, whose leaving is delivered in turn (and may find
    /// more slow ones), until none is left.
    fn deliver(&self, lesson: LessonKey, live: &mut Live, outcome: Outcome) {
        let mut steps = outcome.steps;
        // Each round removes at least one member, so this ends.
        while !steps.is_empty() {
            let mut slow: Vec<ConnectionId> = Vec::new();
            for step in steps {
                self.carry_out(lesson, live, step, &mut slow);
            }
            steps = slow
                .into_iter()
                .flat_map(|connection| live.room.evict(connection).steps)
                .collect();
        }
    }

    fn carry_out(
        &self,
        lesson: LessonKey,
        live: &mut Live,
        step: Step,
        slow: &mut Vec<ConnectionId>,
    ) {
        match step {
            Step::Deliver { to, message } => {
                if let Some(observe) = self.observer.get() {
                    observe(lesson, &message);
                }
                for connection in to {
                    if slow.contains(&connection) {
                        continue;
                    }
                    // Every seated connection has a link: it is inserted with the seat and
                    // dropped only when the room releases the connection.
                    let Some(link) = live.links.get(&connection) else {
                        tracing::error!(%connection, "a seated connection has no queue");
                        continue;
                    };
                    match link.outbox.try_send(message.clone()) {
                        Ok(()) => self
                            .metrics
                            .ws_messages_out
                            .with_label_values(&[message.kind()])
                            .inc(),
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            let _ = link.kick.send(Some(Kick::SlowConsumer));
                            self.metrics.slow_consumer_disconnects.inc();
                            tracing::warn!(%connection, "participant too slow to follow the lesson; disconnecting");
                            slow.push(connection);
                        }
                        // The connection is closing and will leave by itself.
                        Err(mpsc::error::TrySendError::Closed(_)) => {}
                    }
                }
            }
            Step::LastWord {
                connection,
                message,
                kick,
            } => {
                let Some(link) = live.links.get(&connection) else {
                    return;
                };
                // A full queue drops the last word: the close that follows says the same thing.
                if link.outbox.try_send(message.clone()).is_ok() {
                    self.metrics
                        .ws_messages_out
                        .with_label_values(&[message.kind()])
                        .inc();
                }
                // No receiver means the connection is already closing.
                let _ = link.kick.send(Some(kick));
            }
            Step::Kick { connection, kick } => {
                if let Some(link) = live.links.get(&connection) {
                    let _ = link.kick.send(Some(kick));
                }
            }
            Step::Grants { connection, grants } => {
                if let Some(link) = live.links.get(&connection) {
                    link.grants.send_replace(grants);
                }
            }
            Step::Release(connection) => {
                // The same connection may have been seated again in the same request.
                if !live.room.seats(connection) {
                    live.links.remove(&connection);
                }
            }
            Step::Left(reason) => self
                .metrics
                .participants_left
                .with_label_values(&[leave_reason_name(reason)])
                .inc(),
            Step::Resumed => self.metrics.participants_resumed.inc(),
        }
    }
}

pub fn leave_reason_name(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Left => "left",
        LeaveReason::Vanished => "vanished",
        LeaveReason::Removed => "removed",
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
