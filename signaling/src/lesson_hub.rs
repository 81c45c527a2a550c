//! Who is in which lesson right now, and fan-out of control messages to them.
//!
//! The hub is control-plane state only: participants, their publications, and each one's
//! outbound queue. Media never passes through it. Every operation runs under one
//! `std::sync::Mutex` and never awaits while holding it: the critical sections are a few map
//! updates and non-blocking `try_send`s, so a blocking lock is cheaper than an async one and
//! cannot be held across a suspension point by construction (DESIGN §4; mini-redis `db.rs`).
//!
//! The hub also holds each lesson's hands and stage ([`Stage`]) and each participant's current
//! grants, because a stage change must update grants, tell everyone and reach the media plane
//! as one step: whoever asks (the participant or a moderator), the participant's connection
//! learns of its new grants through a `watch` and stops the publications they no longer allow.
//! *Hidden* participants (observers, operators) are shown only to moderators.
//!
//! Moderation lives here too: which sources a moderator muted (so a late joiner is told and a
//! re-publication stays muted) and which identities were removed (so a racing join is
//! refused). The media plane is muted by the caller, outside the lock.
//!
//! Reconnects: a participant whose connection drops (without saying goodbye) is *away*, not
//! gone. For [`RECONNECT_GRACE`] it keeps its participant id, hand, stage place and mutes; the
//! others see `participant_reconnecting`, and then `participant_resumed` when the same invite
//! (token `sub`) joins again, or `participant_left` (`vanished`) when the grace runs out. Its
//! publications end at once, since its media connections died with it, and it publishes anew
//! on return. One invite is one seat: the same invite joining while its old connection still
//! lingers takes the seat over, and the old connection is closed as replaced.
//!
//! A participant whose queue is full is too slow to follow the lesson. It is removed on the
//! spot (others see it leave as `vanished`) and its connection is told to close, so one slow
//! socket never blocks or grows the room.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use sfu::ParticipantId;
use tokio::sync::{mpsc, watch};

use crate::domain::chat;
use crate::domain::grants::{Grants, ModePolicy};
use crate::domain::lesson::{LessonKey, LessonMode};
use crate::domain::stage::{Stage, StageError};
use crate::domain::timestamp::Timestamp;
use crate::metrics::Metrics;
use crate::protocol::{
    ChatAudience, ChatMessage, ClassroomSnapshot, ErrorCode, LeaveReason, LessonSnapshot,
    ParticipantInfo, PublicationInfo, Role, ServerMessage, Source,
};

/// How long a participant whose connection dropped keeps its place in the lesson: long enough
/// for a rural link to come back or a page to reload, short enough that a classroom that has
/// really gone does not hold a stage place for long.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(30);

/// Why the hub wants a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Its outbound queue filled; it has already been removed from the lesson.
    SlowConsumer,
    /// The lesson ended; `lesson_ended` is the last message queued to it.
    LessonEnded,
    /// A moderator removed it; `removed` is the last message queued to it, and it has already
    /// been removed from the lesson.
    Removed,
    /// The same invite joined on another connection, which now holds the seat.
    Replaced,
}

/// A joined participant as the hub holds it.
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

/// Why a hand or stage request changed nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("only a moderator may do that")]
    NotModerator,
    #[error("moderators run the stage; they do not raise hands")]
    ModeratorsHaveNoHand,
    #[error("hidden participants take no part in hands or the stage")]
    Hidden,
    #[error("participant {0} is not in this lesson")]
    NoSuchParticipant(u64),
    #[error("participant {0} publishes no {1:?}")]
    NoSuchPublication(u64, Source),
    #[error("a moderator does not remove itself; it leaves")]
    RemoveSelf,
    #[error(transparent)]
    Stage(#[from] StageError),
}

impl ControlError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ControlError::NotModerator
            | ControlError::ModeratorsHaveNoHand
            | ControlError::Hidden => ErrorCode::Forbidden,
            ControlError::NoSuchParticipant(_) | ControlError::NoSuchPublication(..) => {
                ErrorCode::NotFound
            }
            ControlError::RemoveSelf => ErrorCode::Conflict,
            ControlError::Stage(StageError::Full(_)) => ErrorCode::StageFull,
            // Accepting without an invitation is asking for something not granted.
            ControlError::Stage(StageError::NoInvitation(_)) => ErrorCode::Forbidden,
            ControlError::Stage(StageError::AlreadyOnStage(_) | StageError::NotOnStage(_)) => {
                ErrorCode::Conflict
            }
        }
    }
}

/// A participant whose connection dropped, keeping its place until it comes back or
/// [`RECONNECT_GRACE`] runs out.
struct Away {
    info: ParticipantInfo,
    identity: String,
    base_grants: Grants,
    /// The connection that dropped: an expiry for an older absence must not end a newer one.
    connection: u64,
}

struct Room {
    lesson: LessonKey,
    mode: LessonMode,
    members: HashMap<ParticipantId, Member>,
    /// By participant id.
    away: HashMap<u64, Away>,
    /// By publication id, so `joined` lists them in the order they started.
    publications: BTreeMap<u64, PublicationInfo>,
    stage: Stage,
    /// The sources a moderator muted, by participant: kept while the participant is here, so
    /// that a new publication of the same source starts muted.
    muted: HashSet<(u64, Source)>,
}

impl Room {
    fn new(lesson: LessonKey, mode: LessonMode) -> Room {
        Room {
            lesson,
            mode,
            members: HashMap::new(),
            away: HashMap::new(),
            publications: BTreeMap::new(),
            stage: Stage::new(ModePolicy::for_mode(mode).max_stage),
            muted: HashSet::new(),
        }
    }

    fn is_muted(&self, publication: &PublicationInfo) -> bool {
        self.muted
            .contains(&(publication.participant_id, publication.source))
    }

    /// The publication `target` has of `source` now.
    fn publication_of(&self, target: u64, source: Source) -> Result<u64, ControlError> {
        self.member(target)?;
        self.publications
            .values()
            .find(|p| p.participant_id == target && p.source == source)
            .map(|p| p.id)
            .ok_or(ControlError::NoSuchPublication(target, source))
    }

    /// A member's grants now: its own, plus the stage's sources while on stage.
    fn current_grants(&self, member: &Member) -> Grants {
        if self.stage.is_on_stage(member.info.id) {
            member.base_grants.with_stage()
        } else {
            member.base_grants.clone()
        }
    }

    /// The acting member, who must still be here.
    fn member(&self, pid: u64) -> Result<&Member, ControlError> {
        self.members
            .get(&ParticipantId(pid))
            .ok_or(ControlError::NoSuchParticipant(pid))
    }

    /// Whom a request acts on: `target`, or the actor itself when `None`. Acting on someone
    /// else takes a moderator, and the someone must be in the room.
    fn acting_on(&self, actor: ParticipantId, target: Option<u64>) -> Result<u64, ControlError> {
        let target = target.unwrap_or(actor.0);
        if target != actor.0 {
            self.require_moderator(actor.0)?;
            self.member(target)?;
        }
        Ok(target)
    }

    fn require_moderator(&self, pid: u64) -> Result<(), ControlError> {
        if self.member(pid)?.base_grants.moderate {
            Ok(())
        } else {
            Err(ControlError::NotModerator)
        }
    }
}

/// Whether `viewer` is shown a participant with `subject`'s grants.
fn sees(viewer: &Member, subject: &Grants) -> bool {
    !subject.hidden || viewer.base_grants.moderate
}

#[derive(Default)]
struct Rooms {
    rooms: HashMap<LessonKey, Room>,
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

/// Told of every message the hub delivers in a lesson, whoever it reaches, with the hub's
/// lock held: it must be quick and must not call back into the hub (the recorder hands the
/// message to a bounded queue).
pub type Observer = Box<dyn Fn(LessonKey, &ServerMessage) + Send + Sync>;

/// Every lesson's live participants.
pub struct Hub {
    inner: Mutex<Rooms>,
    metrics: Arc<Metrics>,
    observer: OnceLock<Observer>,
}

impl Hub {
    /// Queues a member's last message and kicks it, so its connection flushes the message
    /// and closes. A full queue drops the message: the close that follows says the same thing;
    /// no kick receiver means the connection is already closing.
    fn last_word(&self, member: &Member, message: ServerMessage, kick: Kick) {
        if member.outbox.try_send(message.clone()).is_ok() {
            self.metrics
                .ws_messages_out
                .with_label_values(&[message.kind()])
                .inc();
        }
        let _ = member.kick.send(Some(kick));
    }

    pub fn new(metrics: Arc<Metrics>) -> Hub {
        Hub {
            inner: Mutex::new(Rooms::default()),
            metrics,
            observer: OnceLock::new(),
        }
    }

    /// Sets the one observer of delivered messages (the recorder's timeline); later calls
    /// are ignored.
    pub fn set_observer(&self, observer: Observer) {
        let _ = self.observer.set(observer);
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
        let mut rooms = self.lock();
        if recording {
            rooms.recording.insert(lesson);
        } else {
            rooms.recording.remove(&lesson);
        }
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return;
        };
        let plain = ServerMessage::RecordingChanged {
            recording,
            error: None,
        };
        match error {
            Some(error) => {
                let told = ServerMessage::RecordingChanged {
                    recording,
                    error: Some(error),
                };
                self.deliver(room, |_, m| m.base_grants.moderate, &told);
                self.deliver(room, |_, m| !m.base_grants.moderate, &plain);
            }
            None => self.deliver(room, |_, _| true, &plain),
        }
        self.tidy(&mut rooms, lesson);
    }

    /// The member on media connection `connection` of `lesson`, if it is still there.
    pub fn member_by_connection(
        &self,
        lesson: LessonKey,
        connection: u64,
    ) -> Option<ParticipantInfo> {
        let rooms = self.lock();
        rooms
            .rooms
            .get(&lesson)?
            .members
            .values()
            .find(|m| m.connection == connection)
            .map(|m| m.info.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Rooms> {
        // A panic while holding the lock left maps that are still structurally sound (every
        // update is a single insert or remove); keep serving rather than poison every request.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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
        mut member: Member,
        chat: Vec<ChatMessage>,
    ) -> Result<ParticipantId, HubJoinError> {
        let mut rooms = self.lock();
        if rooms.ended.contains(&lesson.id) {
            return Err(HubJoinError::LessonEnded);
        }
        if rooms
            .removed
            .contains(&(lesson.id, member.identity.clone()))
        {
            return Err(HubJoinError::Removed);
        }
        let recording = rooms.recording.contains(&lesson.id);
        let room = rooms
            .rooms
            .entry(lesson.id)
            .or_insert_with(|| Room::new(lesson.id, mode));
        if member.info.role == Role::Classroom
            && let Some(max) = ModePolicy::for_mode(room.mode).max_classrooms
        {
            // The same invite coming back is not a new classroom; an away one keeps its slot.
            let classrooms = room
                .members
                .values()
                .map(|m| (m.info.role, &m.identity))
                .chain(room.away.values().map(|a| (a.info.role, &a.identity)))
                .filter(|(role, identity)| {
                    *role == Role::Classroom && **identity != member.identity
                })
                .count();
            if classrooms >= max {
                if room.members.is_empty() {
                    rooms.rooms.remove(&lesson.id);
                }
                return Err(HubJoinError::LessonFull { max });
            }
        }
        let resumed = self.take_seat(room, &member);
        if let Some(pid) = resumed {
            member.info.id = pid.0;
        }
        let joined = ServerMessage::Joined {
            id: reply_id,
            you: member.info.clone(),
            lesson: lesson.clone(),
            participants: room
                .members
                .values()
                .filter(|m| sees(&member, &m.base_grants))
                .map(|m| m.info.clone())
                .chain(
                    room.away
                        .values()
                        .filter(|a| sees(&member, &a.base_grants))
                        .map(|a| a.info.clone()),
                )
                .collect(),
            publications: room.publications.values().cloned().collect(),
            classroom: Box::new(ClassroomSnapshot {
                hands: room.stage.hands().to_vec(),
                stage: room.stage.members().to_vec(),
                chat,
                grants: room.current_grants(&member),
                muted: room
                    .publications
                    .values()
                    .filter(|p| room.is_muted(p))
                    .map(|p| p.id)
                    .collect(),
                reconnecting: room
                    .away
                    .iter()
                    .filter(|(_, a)| sees(&member, &a.base_grants))
                    .map(|(pid, _)| *pid)
                    .collect(),
                recording,
            }),
        };
        if member.outbox.try_send(joined).is_err() {
            // Cannot happen with a fresh queue; if it did, the seat it took back is given up
            // rather than left away with nobody to expire it.
            if let Some(pid) = resumed {
                self.forget_place(room, pid.0, &member.base_grants, LeaveReason::Vanished);
            }
            self.tidy(&mut rooms, lesson.id);
            return Err(HubJoinError::QueueFull);
        }
        self.metrics
            .ws_messages_out
            .with_label_values(&["joined"])
            .inc();
        let pid = ParticipantId(member.info.id);
        let announce = if resumed.is_some() {
            ServerMessage::ParticipantResumed {
                participant: member.info.clone(),
            }
        } else {
            ServerMessage::ParticipantJoined {
                participant: member.info.clone(),
            }
        };
        let grants = member.base_grants.clone();
        // A seat taken back from the stage keeps the stage's grants.
        let _ = member.grants.send(room.current_grants(&member));
        room.members.insert(pid, member);
        self.metrics.participants.inc();
        self.deliver(room, |p, m| p != pid && sees(m, &grants), &announce);
        self.tidy(&mut rooms, lesson.id);
        Ok(pid)
    }

    /// Frees the seat `member`'s invite already has in the room, if any, and returns its id:
    /// an away participant stops being away; one still on another connection is taken off it
    /// (that connection is told to close) with its publications ended.
    fn take_seat(&self, room: &mut Room, member: &Member) -> Option<ParticipantId> {
        if let Some(pid) = room
            .away
            .iter()
            .find(|(_, a)| a.identity == member.identity)
            .map(|(pid, _)| *pid)
        {
            room.away.remove(&pid);
            self.metrics.participants_away.dec();
            self.metrics.participants_resumed.inc();
            return Some(ParticipantId(pid));
        }
        let pid = room
            .members
            .iter()
            .find(|(_, m)| m.identity == member.identity)
            .map(|(pid, _)| *pid)?;
        let old = room.members.remove(&pid)?;
        let _ = old.kick.send(Some(Kick::Replaced));
        self.metrics.participants.dec();
        self.end_publications_of(room, pid);
        Some(pid)
    }

    /// The participant's connection dropped: it becomes away, keeping its id, hand, stage
    /// place and mutes for [`RECONNECT_GRACE`]; its publications end; those who see it get
    /// `participant_reconnecting`. Returns false (and does nothing) if `connection` no longer
    /// holds its seat. The caller calls [`Hub::expire`] once the grace has run out.
    pub fn suspend(&self, lesson: LessonKey, pid: ParticipantId, connection: u64) -> bool {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return false;
        };
        if room
            .members
            .get(&pid)
            .is_none_or(|m| m.connection != connection)
        {
            return false;
        }
        let Some(gone) = room.members.remove(&pid) else {
            return false;
        };
        self.metrics.participants.dec();
        self.metrics.participants_away.inc();
        self.end_publications_of(room, pid);
        let grants = gone.base_grants.clone();
        room.away.insert(
            pid.0,
            Away {
                info: gone.info,
                identity: gone.identity,
                base_grants: gone.base_grants,
                connection,
            },
        );
        self.deliver(
            room,
            |_, m| sees(m, &grants),
            &ServerMessage::ParticipantReconnecting {
                participant_id: pid.0,
            },
        );
        true
    }

    /// The grace of the absence that began when `connection` dropped has run out: if the
    /// participant is still away from that absence, it leaves the lesson as `vanished`.
    pub fn expire(&self, lesson: LessonKey, pid: ParticipantId, connection: u64) -> bool {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return false;
        };
        if room
            .away
            .get(&pid.0)
            .is_none_or(|a| a.connection != connection)
        {
            return false;
        }
        self.forget_away(room, pid.0, LeaveReason::Vanished);
        self.tidy(&mut rooms, lesson);
        true
    }

    /// Takes an away participant out of the lesson for good and tells the others.
    fn forget_away(&self, room: &mut Room, pid: u64, reason: LeaveReason) {
        let Some(gone) = room.away.remove(&pid) else {
            return;
        };
        self.metrics.participants_away.dec();
        self.metrics
            .participants_left
            .with_label_values(&[leave_reason_name(reason)])
            .inc();
        self.forget_place(room, pid, &gone.base_grants, reason);
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
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return false;
        };
        if room
            .members
            .get(&pid)
            .is_none_or(|m| m.connection != connection)
        {
            return false;
        }
        let removed = self.remove_member(room, pid, reason);
        self.tidy(&mut rooms, lesson);
        removed
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
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return false;
        };
        // A late event for a participant that already left (or for a connection that lost its
        // seat to a newer one) must not resurrect its media.
        if room
            .members
            .get(&ParticipantId(publication.participant_id))
            .is_none_or(|m| m.connection != connection)
        {
            return false;
        }
        let muted = room.is_muted(&publication);
        room.publications
            .insert(publication.id, publication.clone());
        self.deliver(
            room,
            |_, _| true,
            &ServerMessage::PublicationAdded { publication },
        );
        self.tidy(&mut rooms, lesson);
        muted
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
        self.with_room(lesson, actor, |_, room| {
            room.require_moderator(actor.0)?;
            room.publication_of(target, source)
        })
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
        self.with_room(lesson, actor, |hub, room| {
            room.require_moderator(actor.0)?;
            let publication_id = room.publication_of(target, source)?;
            if muted {
                room.muted.insert((target, source));
            } else {
                room.muted.remove(&(target, source));
            }
            let message = ServerMessage::Muted {
                participant_id: target,
                source,
                publication_id,
                muted,
                by: actor.0,
            };
            hub.deliver(room, |_, _| true, &message);
            Ok(())
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
        self.with_room(lesson, actor, |_, room| {
            room.require_moderator(actor.0)?;
            if target == actor.0 {
                return Err(ControlError::RemoveSelf);
            }
            // One who is reconnecting can be removed too, so it cannot come back.
            if let Some(away) = room.away.get(&target) {
                return Ok(away.identity.clone());
            }
            Ok(room.member(target)?.identity.clone())
        })
    }

    /// Removes the participant with `identity`, here or away: it gets `removed` and its
    /// connection is told to close; the others see it leave as `removed`. Later joins with
    /// that identity are refused.
    pub fn remove(&self, lesson: LessonKey, identity: &str) {
        let mut rooms = self.lock();
        rooms.removed.insert((lesson, identity.to_owned()));
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return;
        };
        let targets: Vec<ParticipantId> = room
            .members
            .iter()
            .filter(|(_, m)| m.identity == identity)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in targets {
            if let Some(member) = room.members.get(&pid) {
                self.last_word(member, ServerMessage::Removed {}, Kick::Removed);
            }
            self.remove_member(room, pid, LeaveReason::Removed);
        }
        let away: Vec<u64> = room
            .away
            .iter()
            .filter(|(_, a)| a.identity == identity)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in away {
            self.forget_away(room, pid, LeaveReason::Removed);
        }
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
                |_, _| true,
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
        self.deliver(room, |p, _| p == pid, &message);
        self.tidy(&mut rooms, lesson);
        true
    }

    /// Runs `f` on a lesson's room, then tidies; a lesson with no room has nobody to act.
    fn with_room<T>(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        f: impl FnOnce(&Self, &mut Room) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return Err(ControlError::NoSuchParticipant(actor.0));
        };
        let result = f(self, room);
        self.tidy(&mut rooms, lesson);
        result
    }

    /// `pid` raises its hand; everyone sees it. Raising it again keeps its place.
    pub fn raise_hand(
        &self,
        lesson: LessonKey,
        pid: ParticipantId,
        at: Timestamp,
    ) -> Result<(), ControlError> {
        self.with_room(lesson, pid, |hub, room| {
            let me = room.member(pid.0)?;
            if me.base_grants.hidden {
                return Err(ControlError::Hidden);
            }
            if me.base_grants.moderate {
                return Err(ControlError::ModeratorsHaveNoHand);
            }
            if room.stage.is_on_stage(pid.0) {
                return Err(StageError::AlreadyOnStage(pid.0).into());
            }
            if room.stage.raise(pid.0, at) {
                let message = ServerMessage::HandRaised {
                    participant_id: pid.0,
                    at,
                };
                hub.deliver(room, |_, _| true, &message);
            }
            Ok(())
        })
    }

    /// Lowers `target`'s hand (`None`: the actor's own). Only a moderator lowers another's.
    pub fn lower_hand(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: Option<u64>,
    ) -> Result<(), ControlError> {
        self.with_room(lesson, actor, |hub, room| {
            let target = room.acting_on(actor, target)?;
            if room.stage.lower(target) {
                let message = ServerMessage::HandLowered {
                    participant_id: target,
                };
                hub.deliver(room, |_, _| true, &message);
            }
            Ok(())
        })
    }

    pub fn lower_all_hands(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
    ) -> Result<(), ControlError> {
        self.with_room(lesson, actor, |hub, room| {
            room.require_moderator(actor.0)?;
            for participant_id in room.stage.lower_all() {
                hub.deliver(
                    room,
                    |_, _| true,
                    &ServerMessage::HandLowered { participant_id },
                );
            }
            Ok(())
        })
    }

    /// A moderator invites `target` onto the stage; the invitee and the moderators are told.
    pub fn invite_to_stage(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: u64,
    ) -> Result<(), ControlError> {
        self.with_room(lesson, actor, |hub, room| {
            room.require_moderator(actor.0)?;
            if room.member(target)?.base_grants.hidden {
                return Err(ControlError::Hidden);
            }
            room.stage.invite(target)?;
            hub.deliver(
                room,
                |p, m| p.0 == target || m.base_grants.moderate,
                &ServerMessage::StageInvited {
                    participant_id: target,
                },
            );
            Ok(())
        })
    }

    /// `pid` accepts its invitation: it is on stage, its hand comes down, and it may publish the
    /// stage's sources.
    pub fn accept_stage(&self, lesson: LessonKey, pid: ParticipantId) -> Result<(), ControlError> {
        self.with_room(lesson, pid, |hub, room| {
            room.member(pid.0)?;
            if room.stage.accept(pid.0)? {
                let message = ServerMessage::HandLowered {
                    participant_id: pid.0,
                };
                hub.deliver(room, |_, _| true, &message);
            }
            hub.broadcast_stage(room);
            hub.refresh_grants(room, pid);
            Ok(())
        })
    }

    pub fn decline_stage(&self, lesson: LessonKey, pid: ParticipantId) -> Result<(), ControlError> {
        self.with_room(lesson, pid, |hub, room| {
            room.member(pid.0)?;
            room.stage.decline(pid.0)?;
            hub.deliver(
                room,
                |_, m| m.base_grants.moderate,
                &ServerMessage::StageDeclined {
                    participant_id: pid.0,
                },
            );
            Ok(())
        })
    }

    /// Takes `target` (`None`: the actor) off the stage; only a moderator removes another.
    /// Its grants lose the stage's sources, which makes its connection stop those publications.
    pub fn leave_stage(
        &self,
        lesson: LessonKey,
        actor: ParticipantId,
        target: Option<u64>,
    ) -> Result<(), ControlError> {
        self.with_room(lesson, actor, |hub, room| {
            let target = room.acting_on(actor, target)?;
            room.stage.leave(target)?;
            hub.broadcast_stage(room);
            hub.refresh_grants(room, ParticipantId(target));
            Ok(())
        })
    }

    /// Delivers a stored chat message to those who read its audience.
    pub fn chat(&self, lesson: LessonKey, message: ChatMessage) {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return;
        };
        let audience = message.to;
        self.deliver(
            room,
            |_, m| chat::reads(&m.base_grants, audience),
            &ServerMessage::Chat { message },
        );
        self.tidy(&mut rooms, lesson);
    }

    /// Tells those who could read a message that it was deleted.
    pub fn chat_deleted(&self, lesson: LessonKey, message_id: i64, audience: ChatAudience) {
        let mut rooms = self.lock();
        let Some(room) = rooms.rooms.get_mut(&lesson) else {
            return;
        };
        self.deliver(
            room,
            |_, m| chat::reads(&m.base_grants, audience),
            &ServerMessage::ChatDeleted { message_id },
        );
        self.tidy(&mut rooms, lesson);
    }

    fn broadcast_stage(&self, room: &mut Room) {
        let message = ServerMessage::StageChanged {
            stage: room.stage.members().to_vec(),
        };
        self.deliver(room, |_, _| true, &message);
    }

    /// Recomputes a member's grants after a stage change; if they changed, its connection's
    /// `watch` and the member itself (`grants_changed`) are told.
    fn refresh_grants(&self, room: &mut Room, pid: ParticipantId) {
        let Some(member) = room.members.get(&pid) else {
            return;
        };
        let grants = room.current_grants(member);
        // The borrow ends with the statement, before `send_replace` takes the write lock.
        let changed = *member.grants.borrow() != grants;
        if changed {
            member.grants.send_replace(grants.clone());
            self.deliver(
                room,
                |p, _| p == pid,
                &ServerMessage::GrantsChanged { grants },
            );
        }
    }

    /// Who is in a lesson now.
    pub fn participants(&self, lesson: LessonKey) -> Vec<ParticipantInfo> {
        let rooms = self.lock();
        let mut list: Vec<ParticipantInfo> = rooms
            .rooms
            .get(&lesson)
            .map(|room| {
                room.members
                    .values()
                    .map(|m| m.info.clone())
                    .chain(room.away.values().map(|a| a.info.clone()))
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by_key(|p| p.id);
        list
    }

    /// Ends a lesson: every participant gets `lesson_ended` and its connection is told to
    /// close; later joins are refused.
    pub fn end_lesson(&self, lesson: LessonKey) {
        let mut rooms = self.lock();
        rooms.ended.insert(lesson);
        rooms.recording.remove(&lesson);
        if let Some(room) = rooms.rooms.remove(&lesson) {
            let message = ServerMessage::LessonEnded { lesson_id: lesson };
            for member in room.members.values() {
                self.last_word(member, message.clone(), Kick::LessonEnded);
                self.metrics.participants.dec();
            }
            for _ in room.away.values() {
                self.metrics.participants_away.dec();
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
            .is_some_and(|room| room.members.is_empty() && room.away.is_empty())
        {
            rooms.rooms.remove(&lesson);
        }
        self.metrics
            .live_lessons
            .set(i64::try_from(rooms.rooms.len()).unwrap_or(i64::MAX));
    }

    fn remove_member(&self, room: &mut Room, pid: ParticipantId, reason: LeaveReason) -> bool {
        let Some(gone) = room.members.remove(&pid) else {
            return false;
        };
        self.metrics.participants.dec();
        self.metrics
            .participants_left
            .with_label_values(&[leave_reason_name(reason)])
            .inc();
        self.end_publications_of(room, pid);
        self.forget_place(room, pid.0, &gone.base_grants, reason);
        true
    }

    /// Ends every publication of `pid` and tells everyone.
    fn end_publications_of(&self, room: &mut Room, pid: ParticipantId) {
        let ended: Vec<u64> = room
            .publications
            .values()
            .filter(|p| p.participant_id == pid.0)
            .map(|p| p.id)
            .collect();
        for publication_id in ended {
            room.publications.remove(&publication_id);
            self.deliver(
                room,
                |_, _| true,
                &ServerMessage::PublicationRemoved { publication_id },
            );
        }
    }

    /// Forgets a departed participant's hand, stage place and mutes, and tells the others it
    /// left.
    fn forget_place(&self, room: &mut Room, pid: u64, grants: &Grants, reason: LeaveReason) {
        room.muted.retain(|(p, _)| *p != pid);
        let (was_on_stage, had_hand) = room.stage.forget(pid);
        if had_hand {
            self.deliver(
                room,
                |_, _| true,
                &ServerMessage::HandLowered {
                    participant_id: pid,
                },
            );
        }
        if was_on_stage {
            self.broadcast_stage(room);
        }
        self.deliver(
            room,
            |_, m| sees(m, grants),
            &ServerMessage::ParticipantLeft {
                participant_id: pid,
                reason,
            },
        );
    }

    /// Queues `message` to the members `to` selects. Members whose queue is full are removed
    /// as `vanished` and kicked; their leaving is announced in turn, which may find more slow
    /// members, so this works through a list until none is left.
    fn deliver(
        &self,
        room: &mut Room,
        to: impl Fn(ParticipantId, &Member) -> bool,
        message: &ServerMessage,
    ) {
        if let Some(observe) = self.observer.get() {
            observe(room.lesson, message);
        }
        let mut slow = Vec::new();
        for (pid, member) in &room.members {
            if !to(*pid, member) {
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
        LeaveReason::Removed => "removed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MediaKind, Role};

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
        grants: watch::Receiver<Grants>,
    }

    fn member(id: u64, queue: usize) -> (Member, Conn) {
        member_as(id, queue, Role::Classroom, LessonMode::Delivery)
    }

    fn member_as(id: u64, queue: usize, role: Role, mode: LessonMode) -> (Member, Conn) {
        let (tx, rx) = mpsc::channel(queue);
        let (kick_tx, kick_rx) = watch::channel(None);
        let grants = Grants::for_role(role, mode);
        let (grants_tx, grants_rx) = watch::channel(grants.clone());
        (
            Member {
                info: ParticipantInfo {
                    id,
                    name: format!("p{id}"),
                    role,
                },
                identity: format!("i{id}"),
                connection: id,
                base_grants: grants,
                grants: grants_tx,
                outbox: tx,
                kick: kick_tx,
            },
            Conn {
                rx,
                kick: kick_rx,
                grants: grants_rx,
            },
        )
    }

    fn join(hub: &Hub, lesson: LessonKey, member: Member) -> Result<(), HubJoinError> {
        hub.join(
            &snapshot(lesson),
            LessonMode::Delivery,
            None,
            member,
            Vec::new(),
        )
        .map(|_| ())
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
        hub.join(
            &snapshot(7),
            LessonMode::Delivery,
            Some("a".into()),
            m1,
            Vec::new(),
        )
        .unwrap();
        hub.add_publication(
            7,
            1,
            PublicationInfo {
                id: 10,
                participant_id: 1,
                source: Source::Camera,
                kind: MediaKind::Video,
            },
        );
        join(&hub, 7, m2).unwrap();

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

        assert!(hub.leave(7, ParticipantId(1), 1, LeaveReason::Left));
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
        assert!(!hub.leave(7, ParticipantId(1), 1, LeaveReason::Left));
        // A late publication event for the departed participant is ignored.
        hub.add_publication(
            7,
            1,
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
        join(&hub, 7, m1).unwrap();
        join(&hub, 7, m2).unwrap();
        drain(&mut c1);
        let (m3, _c3) = member(3, 16);
        join(&hub, 7, m3).unwrap();

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
        join(&hub, 7, m1).unwrap();
        drain(&mut c1);
        hub.end_lesson(7);
        assert_eq!(
            drain(&mut c1),
            vec![ServerMessage::LessonEnded { lesson_id: 7 }]
        );
        assert_eq!(*c1.kick.borrow(), Some(Kick::LessonEnded));
        let (m2, _c2) = member(2, 16);
        assert_eq!(join(&hub, 7, m2), Err(HubJoinError::LessonEnded));
        assert!(hub.participants(7).is_empty());
        assert_eq!(hub.metrics.participants.get(), 0);
    }

    fn kinds(conn: &mut Conn) -> Vec<&'static str> {
        drain(conn).iter().map(ServerMessage::kind).collect()
    }

    #[test]
    fn hidden_participants_are_shown_only_to_moderators() {
        let hub = Hub::new(metrics());
        let (teacher, mut t) = member_as(1, 16, Role::Teacher, LessonMode::Delivery);
        let (class, mut c) = member(2, 16);
        let (observer, mut o) = member_as(3, 16, Role::Observer, LessonMode::Delivery);
        join(&hub, 7, teacher).unwrap();
        join(&hub, 7, class).unwrap();
        drain(&mut t);
        drain(&mut c);
        join(&hub, 7, observer).unwrap();
        assert_eq!(kinds(&mut t), vec!["participant_joined"]);
        assert!(drain(&mut c).is_empty(), "the classroom is not told");
        match &drain(&mut o)[0] {
            ServerMessage::Joined { participants, .. } => assert_eq!(participants.len(), 2),
            other => panic!("expected joined, got {other:?}"),
        }
        let (late, mut l) = member(4, 16);
        join(&hub, 7, late).unwrap();
        match &drain(&mut l)[0] {
            ServerMessage::Joined { participants, .. } => {
                assert!(participants.iter().all(|p| p.id != 3), "{participants:?}")
            }
            other => panic!("expected joined, got {other:?}"),
        }
        drain(&mut t);
        drain(&mut c);
        hub.leave(7, ParticipantId(3), 3, LeaveReason::Left);
        assert_eq!(kinds(&mut t), vec!["participant_left"]);
        assert!(drain(&mut c).is_empty());
    }

    #[test]
    fn the_stage_changes_grants_and_tells_the_connection() {
        let hub = Hub::new(metrics());
        let mode = LessonMode::FamousTeacher;
        let (teacher, mut t) = member_as(1, 32, Role::Teacher, mode);
        let (class, mut c) = member_as(2, 32, Role::Classroom, mode);
        for m in [teacher, class] {
            hub.join(&snapshot(7), mode, None, m, Vec::new()).unwrap();
        }
        drain(&mut t);
        drain(&mut c);
        let (p1, p2) = (ParticipantId(1), ParticipantId(2));
        let now = Timestamp::from_unix(1_800_000_000);

        assert_eq!(
            hub.invite_to_stage(7, p2, 2),
            Err(ControlError::NotModerator)
        );
        assert_eq!(
            hub.raise_hand(7, p1, now),
            Err(ControlError::ModeratorsHaveNoHand)
        );
        assert_eq!(
            hub.accept_stage(7, p2),
            Err(ControlError::Stage(StageError::NoInvitation(2)))
        );
        assert!(drain(&mut t).is_empty() && drain(&mut c).is_empty());

        hub.raise_hand(7, p2, now).unwrap();
        hub.invite_to_stage(7, p1, 2).unwrap();
        hub.accept_stage(7, p2).unwrap();
        assert_eq!(
            kinds(&mut c),
            vec![
                "hand_raised",
                "stage_invited",
                "hand_lowered",
                "stage_changed",
                "grants_changed"
            ]
        );
        assert_eq!(
            kinds(&mut t),
            vec![
                "hand_raised",
                "stage_invited",
                "hand_lowered",
                "stage_changed"
            ]
        );
        assert!(c.grants.has_changed().unwrap());
        assert!(c.grants.borrow_and_update().may_publish(Source::Camera));

        hub.leave_stage(7, p1, Some(2)).unwrap();
        assert_eq!(kinds(&mut c), vec!["stage_changed", "grants_changed"]);
        assert!(c.grants.borrow_and_update().publish.is_empty());
        assert_eq!(
            hub.leave_stage(7, p2, None),
            Err(ControlError::Stage(StageError::NotOnStage(2)))
        );
    }

    #[test]
    fn classrooms_past_the_mode_limit_are_refused() {
        let hub = Hub::new(metrics());
        let mut conns = Vec::new();
        for id in 1..=8 {
            let (m, c) = member(id, 16);
            join(&hub, 7, m).unwrap();
            conns.push(c);
        }
        let (ninth, _c9) = member(9, 16);
        assert_eq!(
            join(&hub, 7, ninth),
            Err(HubJoinError::LessonFull { max: 8 })
        );
        // The same invite reconnecting is let in (taking its seat back), and so is a teacher.
        let (mut again, _ca) = member(10, 16);
        again.identity = "i3".into();
        join(&hub, 7, again).unwrap();
        let (teacher, _ct) = member_as(11, 16, Role::Teacher, LessonMode::Delivery);
        join(&hub, 7, teacher).unwrap();
        assert_eq!(hub.participants(7).len(), 9);
    }

    #[test]
    fn moderators_mute_and_remove() {
        let hub = Hub::new(metrics());
        let mode = LessonMode::Delivery;
        let (teacher, mut t) = member_as(1, 32, Role::Teacher, mode);
        let (class, mut c) = member(2, 32);
        join(&hub, 7, teacher).unwrap();
        join(&hub, 7, class).unwrap();
        let mic = |id| PublicationInfo {
            id,
            participant_id: 2,
            source: Source::Microphone,
            kind: MediaKind::Audio,
        };
        assert!(!hub.add_publication(7, 2, mic(10)));
        drain(&mut t);
        drain(&mut c);
        let (p1, p2) = (ParticipantId(1), ParticipantId(2));

        assert_eq!(
            hub.mute_target(7, p2, 2, Source::Microphone),
            Err(ControlError::NotModerator)
        );
        assert_eq!(
            hub.mute_target(7, p1, 2, Source::Camera),
            Err(ControlError::NoSuchPublication(2, Source::Camera))
        );
        assert_eq!(hub.mute_target(7, p1, 2, Source::Microphone), Ok(10));
        hub.set_muted(7, p1, 2, Source::Microphone, true).unwrap();
        assert_eq!(kinds(&mut c), vec!["muted"]);
        // A re-publication of the source stays muted, and a late joiner is told.
        hub.remove_publication(7, 10);
        assert!(hub.add_publication(7, 2, mic(11)));
        let (late, mut l) = member(3, 32);
        join(&hub, 7, late).unwrap();
        match &drain(&mut l)[0] {
            ServerMessage::Joined { classroom, .. } => assert_eq!(classroom.muted, vec![11]),
            other => panic!("expected joined, got {other:?}"),
        }
        drain(&mut t);
        drain(&mut c);

        assert_eq!(
            hub.removal_target(7, p2, 3),
            Err(ControlError::NotModerator)
        );
        assert_eq!(hub.removal_target(7, p1, 1), Err(ControlError::RemoveSelf));
        let identity = hub.removal_target(7, p1, 2).unwrap();
        hub.remove(7, &identity);
        assert_eq!(drain(&mut c), vec![ServerMessage::Removed {}]);
        assert_eq!(*c.kick.borrow(), Some(Kick::Removed));
        assert!(drain(&mut t).contains(&ServerMessage::ParticipantLeft {
            participant_id: 2,
            reason: LeaveReason::Removed
        }));
        let (mut again, _a) = member(4, 32);
        again.identity = identity;
        assert_eq!(join(&hub, 7, again), Err(HubJoinError::Removed));
    }

    /// A teacher and a classroom on stage with a camera; the third member raised a hand.
    fn stage_with_hand(hub: &Hub) -> (Conn, Conn, Conn) {
        let mode = LessonMode::FamousTeacher;
        let (teacher, mut t) = member_as(1, 64, Role::Teacher, mode);
        let (class, mut c) = member_as(2, 64, Role::Classroom, mode);
        let (other, mut o) = member_as(3, 64, Role::Classroom, mode);
        for m in [teacher, class, other] {
            hub.join(&snapshot(7), mode, None, m, Vec::new()).unwrap();
        }
        let now = Timestamp::from_unix(1_800_000_000);
        hub.raise_hand(7, ParticipantId(2), now).unwrap();
        hub.invite_to_stage(7, ParticipantId(1), 2).unwrap();
        hub.accept_stage(7, ParticipantId(2)).unwrap();
        hub.raise_hand(7, ParticipantId(3), now).unwrap();
        hub.add_publication(7, 2, camera(20, 2));
        for conn in [&mut t, &mut c, &mut o] {
            drain(conn);
        }
        (t, c, o)
    }

    fn camera(id: u64, participant_id: u64) -> PublicationInfo {
        PublicationInfo {
            id,
            participant_id,
            source: Source::Camera,
            kind: MediaKind::Video,
        }
    }

    /// The same invite (identity `i{of}`) on a new connection `connection`.
    fn coming_back(of: u64, connection: u64, role: Role) -> (Member, Conn) {
        let (mut m, c) = member_as(connection, 64, role, LessonMode::FamousTeacher);
        m.identity = format!("i{of}");
        (m, c)
    }

    #[test]
    fn a_dropped_participant_keeps_its_place_and_resumes_it() {
        let hub = Hub::new(metrics());
        let (mut t, _c, _o) = stage_with_hand(&hub);

        assert!(hub.suspend(7, ParticipantId(2), 2));
        assert_eq!(
            drain(&mut t),
            vec![
                ServerMessage::PublicationRemoved { publication_id: 20 },
                ServerMessage::ParticipantReconnecting { participant_id: 2 },
            ]
        );
        // Still listed, still on stage; a second drop report changes nothing.
        assert_eq!(hub.participants(7).len(), 3);
        assert!(!hub.suspend(7, ParticipantId(2), 2));

        let (back, mut b) = coming_back(2, 50, Role::Classroom);
        let pid = hub
            .join(
                &snapshot(7),
                LessonMode::FamousTeacher,
                None,
                back,
                Vec::new(),
            )
            .unwrap();
        assert_eq!(pid, ParticipantId(2), "the old id, not the connection's");
        match &drain(&mut b)[0] {
            ServerMessage::Joined { you, classroom, .. } => {
                assert_eq!(you.id, 2);
                assert_eq!(classroom.stage, vec![2]);
                assert!(
                    classroom.grants.may_publish(Source::Camera),
                    "stage grants kept"
                );
                assert_eq!(classroom.hands.len(), 1, "the other's hand is still up");
                assert!(classroom.reconnecting.is_empty());
            }
            other => panic!("expected joined, got {other:?}"),
        }
        assert!(b.grants.borrow().may_publish(Source::Camera));
        assert_eq!(kinds(&mut t), vec!["participant_resumed"]);
        // The expiry of the absence that ended finds nothing to do.
        assert!(!hub.expire(7, ParticipantId(2), 2));
        assert_eq!(hub.participants(7).len(), 3);
    }

    #[test]
    fn an_absence_past_the_grace_ends_in_leaving() {
        let hub = Hub::new(metrics());
        let (mut t, _c, mut o) = stage_with_hand(&hub);
        assert!(hub.suspend(7, ParticipantId(3), 3));
        assert!(hub.suspend(7, ParticipantId(2), 2));
        drain(&mut t);

        // A late joiner sees both as reconnecting.
        let (late, mut l) = member_as(4, 64, Role::Observer, LessonMode::FamousTeacher);
        hub.join(
            &snapshot(7),
            LessonMode::FamousTeacher,
            None,
            late,
            Vec::new(),
        )
        .unwrap();
        match &drain(&mut l)[0] {
            ServerMessage::Joined { classroom, .. } => {
                let mut away = classroom.reconnecting.clone();
                away.sort_unstable();
                assert_eq!(away, vec![2, 3]);
            }
            other => panic!("expected joined, got {other:?}"),
        }
        drain(&mut t);

        assert!(hub.expire(7, ParticipantId(2), 2));
        assert!(hub.expire(7, ParticipantId(3), 3));
        let to_teacher = drain(&mut t);
        assert!(to_teacher.contains(&ServerMessage::ParticipantLeft {
            participant_id: 2,
            reason: LeaveReason::Vanished
        }));
        assert!(to_teacher.contains(&ServerMessage::HandLowered { participant_id: 3 }));
        assert!(kinds(&mut t).is_empty());
        assert_eq!(hub.participants(7).len(), 2);
        // Coming back now is a new participant with a new id and no place.
        let (back, mut b) = coming_back(2, 60, Role::Classroom);
        let pid = hub
            .join(
                &snapshot(7),
                LessonMode::FamousTeacher,
                None,
                back,
                Vec::new(),
            )
            .unwrap();
        assert_eq!(pid, ParticipantId(60));
        match &drain(&mut b)[0] {
            ServerMessage::Joined { classroom, .. } => assert!(classroom.stage.is_empty()),
            other => panic!("expected joined, got {other:?}"),
        }
        drop(o.rx.try_recv());
    }

    #[test]
    fn the_same_invite_on_a_new_connection_takes_the_seat_over() {
        let hub = Hub::new(metrics());
        let (mut t, c, _o) = stage_with_hand(&hub);

        let (again, mut a) = coming_back(2, 70, Role::Classroom);
        let pid = hub
            .join(
                &snapshot(7),
                LessonMode::FamousTeacher,
                None,
                again,
                Vec::new(),
            )
            .unwrap();
        assert_eq!(pid, ParticipantId(2));
        assert_eq!(*c.kick.borrow(), Some(Kick::Replaced));
        assert_eq!(
            kinds(&mut t),
            vec!["publication_removed", "participant_resumed"]
        );
        // The old connection closing late touches nothing of its successor's.
        assert!(!hub.leave(7, ParticipantId(2), 2, LeaveReason::Left));
        assert!(!hub.suspend(7, ParticipantId(2), 2));
        hub.add_publication(7, 2, camera(21, 2));
        assert!(kinds(&mut t).is_empty());
        assert!(matches!(drain(&mut a)[0], ServerMessage::Joined { .. }));
        hub.add_publication(7, 70, camera(22, 2));
        assert_eq!(kinds(&mut t), vec!["publication_added"]);
    }

    #[test]
    fn an_away_participant_keeps_its_classroom_slot_and_can_be_removed() {
        let hub = Hub::new(metrics());
        let mode = LessonMode::Delivery;
        let max = ModePolicy::for_mode(mode).max_classrooms.unwrap();
        let (teacher, mut t) = member_as(1000, 64, Role::Teacher, mode);
        join(&hub, 7, teacher).unwrap();
        let mut conns = Vec::new();
        for id in 1..=max as u64 {
            let (m, c) = member(id, 64);
            join(&hub, 7, m).unwrap();
            conns.push(c);
        }
        assert!(hub.suspend(7, ParticipantId(1), 1));
        let (extra, _e) = member(500, 64);
        assert!(matches!(
            join(&hub, 7, extra),
            Err(HubJoinError::LessonFull { .. })
        ));
        drain(&mut t);

        let identity = hub.removal_target(7, ParticipantId(1000), 1).unwrap();
        hub.remove(7, &identity);
        assert!(drain(&mut t).contains(&ServerMessage::ParticipantLeft {
            participant_id: 1,
            reason: LeaveReason::Removed
        }));
        assert!(!hub.expire(7, ParticipantId(1), 1));
        let (back, _b) = member(1, 64);
        assert_eq!(join(&hub, 7, back), Err(HubJoinError::Removed));
        let (extra, _e) = member(501, 64);
        join(&hub, 7, extra).unwrap();
    }
}
