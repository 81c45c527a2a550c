//! One live lesson as a pure state machine: which member holds a seat on which connection, who
//! is away and keeping a place, the publications, the hands and stage ([`Stage`]), each
//! member's current grants, and the sources a moderator muted.
//!
//! Every request is a `&mut self` call that returns an [`Outcome`]: the messages to deliver to
//! which connections, the connections to close or release, the grants to publish, in the order
//! they happen. The room owns no lock, channel or clock (an instant it needs is passed in); the
//! [`Hub`](super::Hub) holds the rooms under its lock and carries each outcome out.
//!
//! *Hidden* participants (observers, operators) are shown only to moderators. A member whose
//! connection drops without a goodbye is *away*: for the reconnect grace it keeps its id, hand,
//! stage place and mutes, and the same invite (token `sub`) joining again resumes it; its
//! publications end at once, since its media connection died with it. One invite is one seat: the
//! same invite joining while its old connection still holds the seat takes it over.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::outcome::{ControlError, Kick, Outcome, RoomFull, Step};
use super::{ConnectionId, MemberId};

mod stage;
use crate::domain::chat;
use crate::domain::grants::{Grants, ModePolicy};
use crate::domain::lesson::{LessonKey, LessonMode};
use crate::domain::stage::Stage;
use crate::protocol::{
    ChatAudience, ChatMessage, ClassroomSnapshot, LeaveReason, LessonSnapshot, ParticipantInfo,
    PublicationInfo, Role, ServerMessage, Source,
};

/// Someone joining: who it is and the connection it joins on.
pub struct Newcomer {
    /// Its id is a proposal: a member coming back gets its old id instead.
    pub info: ParticipantInfo,
    /// The token's `sub`: the same invite reconnecting is the same member.
    pub identity: String,
    pub connection: ConnectionId,
    /// The grants it joins with; on stage it also has the stage's sources.
    pub grants: Grants,
}

/// What a newcomer's `joined` carries besides the room itself.
pub struct Welcome {
    pub reply_id: Option<String>,
    pub lesson: LessonSnapshot,
    pub chat: Vec<ChatMessage>,
    pub recording: bool,
}

/// A join the room accepted.
#[derive(Debug)]
pub struct Admitted {
    pub id: MemberId,
    /// The newcomer's first message, which must reach it before anything else.
    pub joined: ServerMessage,
    /// What the others are told, and the seat taken over from an older connection.
    pub outcome: Outcome,
}

/// A member holding a seat on a connection.
struct Seat {
    info: ParticipantInfo,
    identity: String,
    connection: ConnectionId,
    /// The grants it joined with.
    base_grants: Grants,
    /// Its current grants as last published: the base ones, plus the stage's while on stage.
    grants: Grants,
}

/// A member whose connection dropped, keeping its place until it comes back or the grace runs
/// out.
struct Away {
    info: ParticipantInfo,
    identity: String,
    base_grants: Grants,
    /// The connection that dropped: an expiry for an older absence must not end a newer one.
    connection: ConnectionId,
}

/// Whether a viewer with `viewer` grants is shown a participant with `subject` grants.
fn sees(viewer: &Grants, subject: &Grants) -> bool {
    !subject.hidden || viewer.moderate
}

/// One live lesson.
pub struct Room {
    mode: LessonMode,
    members: HashMap<MemberId, Seat>,
    away: HashMap<MemberId, Away>,
    /// By publication id, so `joined` lists them in the order they started.
    publications: BTreeMap<u64, PublicationInfo>,
    stage: Stage,
    /// The sources a moderator muted, by member: kept while the member is in the lesson (away
    /// included), so that a new publication of the same source starts muted.
    muted: HashSet<(u64, Source)>,
}

impl Room {
    pub fn new(mode: LessonMode) -> Room {
        Room {
            mode,
            members: HashMap::new(),
            away: HashMap::new(),
            publications: BTreeMap::new(),
            stage: Stage::new(ModePolicy::for_mode(mode).max_stage),
            muted: HashSet::new(),
        }
    }

    /// Nobody is seated or away: the room can go.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.away.is_empty()
    }

    /// How many members hold a seat, and how many are away.
    pub fn census(&self) -> (usize, usize) {
        (self.members.len(), self.away.len())
    }

    /// Whether `connection` holds a seat.
    pub fn seats(&self, connection: ConnectionId) -> bool {
        self.members.values().any(|m| m.connection == connection)
    }

    /// Who is in the lesson now, away members included, by id.
    pub fn participants(&self) -> Vec<ParticipantInfo> {
        let mut list: Vec<ParticipantInfo> = self
            .members
            .values()
            .map(|m| m.info.clone())
            .chain(self.away.values().map(|a| a.info.clone()))
            .collect();
        list.sort_by_key(|p| p.id);
        list
    }

    /// The member seated on `connection`.
    pub fn member_on(&self, connection: ConnectionId) -> Option<&ParticipantInfo> {
        self.members
            .values()
            .find(|m| m.connection == connection)
            .map(|m| &m.info)
    }

    /// Checks that a newcomer with `role` and `identity` fits in the room. The same invite
    /// coming back is not a new classroom, and an away classroom keeps its slot.
    pub fn admits(&self, role: Role, identity: &str) -> Result<(), RoomFull> {
        let Some(max) = ModePolicy::for_mode(self.mode).max_classrooms else {
            return Ok(());
        };
        if role != Role::Classroom {
            return Ok(());
        }
        let classrooms = self
            .members
            .values()
            .map(|m| (m.info.role, &m.identity))
            .chain(self.away.values().map(|a| (a.info.role, &a.identity)))
            .filter(|(role, other)| *role == Role::Classroom && *other != identity)
            .count();
        if classrooms >= max {
            Err(RoomFull { max })
        } else {
            Ok(())
        }
    }

    /// Seats a newcomer. Its `joined` lists the others it may see, the publications, hands,
    /// stage and mutes now; those who may see it get `participant_joined`. An invite that is
    /// away, or still seated on another connection, resumes its seat instead: it keeps its old
    /// id, hand and stage place, and the others get `participant_resumed`.
    pub fn join(&mut self, newcomer: Newcomer, welcome: Welcome) -> Result<Admitted, RoomFull> {
        self.admits(newcomer.info.role, &newcomer.identity)?;
        let mut out = Outcome::default();
        let resumed = self.take_seat(&newcomer.identity, &mut out);
        let mut info = newcomer.info;
        let id = resumed.unwrap_or(MemberId(info.id));
        info.id = id.0;
        // A seat taken back from the stage keeps the stage's grants.
        let grants = self.grants_of(id, &newcomer.grants);
        let me = &newcomer.grants;
        let joined = ServerMessage::Joined {
            id: welcome.reply_id,
            you: info.clone(),
            lesson: welcome.lesson,
            participants: self
                .members
                .values()
                .filter(|m| sees(me, &m.base_grants))
                .map(|m| m.info.clone())
                .chain(
                    self.away
                        .values()
                        .filter(|a| sees(me, &a.base_grants))
                        .map(|a| a.info.clone()),
                )
                .collect(),
            publications: self.publications.values().cloned().collect(),
            classroom: Box::new(ClassroomSnapshot {
                hands: self.stage.hands().to_vec(),
                stage: self.stage.members().to_vec(),
                chat: welcome.chat,
                grants: grants.clone(),
                muted: self
                    .publications
                    .values()
                    .filter(|p| self.is_muted(p))
                    .map(|p| p.id)
                    .collect(),
                reconnecting: self
                    .away
                    .iter()
                    .filter(|(_, a)| sees(me, &a.base_grants))
                    .map(|(id, _)| id.0)
                    .collect(),
                recording: welcome.recording,
            }),
        };
        let announce = if resumed.is_some() {
            ServerMessage::ParticipantResumed {
                participant: info.clone(),
            }
        } else {
            ServerMessage::ParticipantJoined {
                participant: info.clone(),
            }
        };
        out.push(Step::Grants {
            connection: newcomer.connection,
            grants: grants.clone(),
        });
        let others = self.connections(|_, m| sees(&m.base_grants, &newcomer.grants));
        self.members.insert(
            id,
            Seat {
                info,
                identity: newcomer.identity,
                connection: newcomer.connection,
                base_grants: newcomer.grants,
                grants,
            },
        );
        out.push(Step::Deliver {
            to: others,
            message: announce,
        });
        Ok(Admitted {
            id,
            joined,
            outcome: out,
        })
    }

    /// Frees the seat `identity` already has in the room, if any, and returns its id: an away
    /// member stops being away; one still on another connection is taken off it (that
    /// connection is told to close) with its publications ended.
    fn take_seat(&mut self, identity: &str, out: &mut Outcome) -> Option<MemberId> {
        if let Some(id) = self
            .away
            .iter()
            .find(|(_, a)| a.identity == identity)
            .map(|(id, _)| *id)
        {
            self.away.remove(&id);
            out.push(Step::Resumed);
            return Some(id);
        }
        let id = self
            .members
            .iter()
            .find(|(_, m)| m.identity == identity)
            .map(|(id, _)| *id)?;
        let old = self.members.remove(&id)?;
        out.push(Step::Kick {
            connection: old.connection,
            kick: Kick::Replaced,
        });
        out.push(Step::Release(old.connection));
        self.end_publications_of(id, out);
        Some(id)
    }

    /// `id`'s connection dropped: it becomes away, keeping its id, hand, stage place and mutes;
    /// its publications end; those who see it get `participant_reconnecting`. `None` (and
    /// nothing changes) if `connection` no longer holds its seat.
    pub fn suspend(&mut self, id: MemberId, connection: ConnectionId) -> Option<Outcome> {
        self.seat_held(id, connection)?;
        let gone = self.members.remove(&id)?;
        let mut out = Outcome::default();
        out.push(Step::Release(connection));
        self.end_publications_of(id, &mut out);
        let to = self.connections(|_, m| sees(&m.base_grants, &gone.base_grants));
        self.away.insert(
            id,
            Away {
                info: gone.info,
                identity: gone.identity,
                base_grants: gone.base_grants,
                connection,
            },
        );
        out.push(Step::Deliver {
            to,
            message: ServerMessage::ParticipantReconnecting {
                participant_id: id.0,
            },
        });
        Some(out)
    }

    /// The grace of the absence that began when `connection` dropped has run out: if `id` is
    /// still away from that absence, it leaves the lesson as `vanished`.
    pub fn expire(&mut self, id: MemberId, connection: ConnectionId) -> Option<Outcome> {
        if self.away.get(&id)?.connection != connection {
            return None;
        }
        let mut out = Outcome::default();
        self.forget_away(id, LeaveReason::Vanished, &mut out);
        Some(out)
    }

    /// `id` leaves for `reason`, its publications end, and the others are told. `None` if it is
    /// not seated on `connection` (already removed, or its seat went to a newer connection).
    pub fn leave(
        &mut self,
        id: MemberId,
        connection: ConnectionId,
        reason: LeaveReason,
    ) -> Option<Outcome> {
        self.seat_held(id, connection)?;
        let mut out = Outcome::default();
        self.remove_member(id, reason, &mut out);
        Some(out)
    }

    /// The member on `connection` is too slow to follow the lesson: it leaves as `vanished`.
    pub fn evict(&mut self, connection: ConnectionId) -> Outcome {
        let mut out = Outcome::default();
        let seated = self
            .members
            .iter()
            .find(|(_, m)| m.connection == connection)
            .map(|(id, _)| *id);
        if let Some(id) = seated {
            self.remove_member(id, LeaveReason::Vanished, &mut out);
        }
        out
    }

    /// Records a publication that started and tells everyone, its owner included (that is how
    /// the owner learns the publication's id). Returns whether a moderator had muted its
    /// source, so the media plane must mute it too. `None` for a late event from a connection
    /// that no longer holds the owner's seat: it must not resurrect its media.
    pub fn add_publication(
        &mut self,
        connection: ConnectionId,
        publication: PublicationInfo,
    ) -> Option<(bool, Outcome)> {
        self.seat_held(MemberId(publication.participant_id), connection)?;
        let muted = self.is_muted(&publication);
        self.publications
            .insert(publication.id, publication.clone());
        let mut out = Outcome::default();
        self.tell_all(&mut out, ServerMessage::PublicationAdded { publication });
        Some((muted, out))
    }

    /// Forgets a publication that ended and tells everyone.
    pub fn remove_publication(&mut self, publication_id: u64) -> Outcome {
        let mut out = Outcome::default();
        if self.publications.remove(&publication_id).is_some() {
            self.tell_all(
                &mut out,
                ServerMessage::PublicationRemoved { publication_id },
            );
        }
        out
    }

    /// Checks that `actor` may mute `target`'s `source` and finds the publication to mute;
    /// changes nothing.
    pub fn mute_target(
        &self,
        actor: MemberId,
        target: u64,
        source: Source,
    ) -> Result<u64, ControlError> {
        self.require_moderator(actor)?;
        self.publication_of(target, source)
    }

    /// Records that `target`'s `source` is (un)muted and tells everyone.
    pub fn set_muted(
        &mut self,
        actor: MemberId,
        target: u64,
        source: Source,
        muted: bool,
    ) -> Result<Outcome, ControlError> {
        self.require_moderator(actor)?;
        let publication_id = self.publication_of(target, source)?;
        if muted {
            self.muted.insert((target, source));
        } else {
            self.muted.remove(&(target, source));
        }
        let mut out = Outcome::default();
        let message = ServerMessage::Muted {
            participant_id: target,
            source,
            publication_id,
            muted,
            by: actor.0,
        };
        self.tell_all(&mut out, message);
        Ok(out)
    }

    /// Checks that `actor` may remove `target` and returns the target's identity; changes
    /// nothing. One who is away can be removed too, so it cannot come back.
    pub fn removal_target(&self, actor: MemberId, target: u64) -> Result<String, ControlError> {
        self.require_moderator(actor)?;
        if target == actor.0 {
            return Err(ControlError::RemoveSelf);
        }
        if let Some(away) = self.away.get(&MemberId(target)) {
            return Ok(away.identity.clone());
        }
        Ok(self.member(target)?.identity.clone())
    }

    /// Removes the member with `identity`, seated or away: a seated one hears `removed` last and
    /// is told to close; the others see it leave as `removed`.
    pub fn remove(&mut self, identity: &str) -> Outcome {
        let mut out = Outcome::default();
        let seated: Vec<(MemberId, ConnectionId)> = self
            .members
            .iter()
            .filter(|(_, m)| m.identity == identity)
            .map(|(id, m)| (*id, m.connection))
            .collect();
        for (id, connection) in seated {
            out.push(Step::LastWord {
                connection,
                message: ServerMessage::Removed {},
                kick: Kick::Removed,
            });
            self.remove_member(id, LeaveReason::Removed, &mut out);
        }
        let away: Vec<MemberId> = self
            .away
            .iter()
            .filter(|(_, a)| a.identity == identity)
            .map(|(id, _)| *id)
            .collect();
        for id in away {
            self.forget_away(id, LeaveReason::Removed, &mut out);
        }
        out
    }

    /// Queues a message to one member. `None` if it is not seated.
    pub fn send_to(&self, id: MemberId, message: ServerMessage) -> Option<Outcome> {
        let seat = self.members.get(&id)?;
        Some(Outcome {
            steps: vec![Step::Deliver {
                to: vec![seat.connection],
                message,
            }],
        })
    }

    /// A stored chat message, to those who read its audience.
    pub fn chat(&self, message: ChatMessage) -> Outcome {
        let audience = message.to;
        self.tell_readers(audience, ServerMessage::Chat { message })
    }

    /// Tells those who could read a message that it was deleted.
    pub fn chat_deleted(&self, message_id: i64, audience: ChatAudience) -> Outcome {
        self.tell_readers(audience, ServerMessage::ChatDeleted { message_id })
    }

    fn tell_readers(&self, audience: ChatAudience, message: ServerMessage) -> Outcome {
        let to = self.connections(|_, m| chat::reads(&m.base_grants, audience));
        Outcome {
            steps: vec![Step::Deliver { to, message }],
        }
    }

    /// Tells everyone whether the lesson is being recorded; `error`, when the recording stopped
    /// on its own, goes to the moderators only.
    pub fn recording_changed(
        &self,
        recording: bool,
        error: Option<recorder::ErrorInfo>,
    ) -> Outcome {
        let mut out = Outcome::default();
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
                let moderators = self.connections(|_, m| m.base_grants.moderate);
                out.push(Step::Deliver {
                    to: moderators,
                    message: told,
                });
                let others = self.connections(|_, m| !m.base_grants.moderate);
                out.push(Step::Deliver {
                    to: others,
                    message: plain,
                });
            }
            None => self.tell_all(&mut out, plain),
        }
        out
    }

    /// The lesson ended: every seated member hears `lesson_ended` last and is told to close;
    /// the room is left empty.
    pub fn end(&mut self, lesson: LessonKey) -> Outcome {
        let mut out = Outcome::default();
        for (_, seat) in self.members.drain() {
            out.push(Step::LastWord {
                connection: seat.connection,
                message: ServerMessage::LessonEnded { lesson_id: lesson },
                kick: Kick::LessonEnded,
            });
            out.push(Step::Release(seat.connection));
        }
        self.away.clear();
        out
    }

    fn is_muted(&self, publication: &PublicationInfo) -> bool {
        self.muted
            .contains(&(publication.participant_id, publication.source))
    }

    /// `id` is seated on `connection`.
    fn seat_held(&self, id: MemberId, connection: ConnectionId) -> Option<()> {
        (self.members.get(&id)?.connection == connection).then_some(())
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

    /// A member's grants now: `base`, plus the stage's sources while on stage.
    fn grants_of(&self, id: MemberId, base: &Grants) -> Grants {
        if self.stage.is_on_stage(id.0) {
            base.with_stage()
        } else {
            base.clone()
        }
    }

    /// The seated member `id`, who must still be here to act or be acted on.
    fn member(&self, id: u64) -> Result<&Seat, ControlError> {
        self.members
            .get(&MemberId(id))
            .ok_or(ControlError::NoSuchParticipant(id))
    }

    /// Whom a request acts on: `target`, or the actor itself when `None`. Acting on someone
    /// else takes a moderator, and the someone must be in the room.
    fn acting_on(&self, actor: MemberId, target: Option<u64>) -> Result<u64, ControlError> {
        let target = target.unwrap_or(actor.0);
        if target != actor.0 {
            self.require_moderator(actor)?;
            self.member(target)?;
        }
        Ok(target)
    }

    fn require_moderator(&self, id: MemberId) -> Result<(), ControlError> {
        if self.member(id.0)?.base_grants.moderate {
            Ok(())
        } else {
            Err(ControlError::NotModerator)
        }
    }

    /// The connections of the seated members `to` selects.
    fn connections(&self, to: impl Fn(MemberId, &Seat) -> bool) -> Vec<ConnectionId> {
        self.members
            .iter()
            .filter(|(id, m)| to(**id, m))
            .map(|(_, m)| m.connection)
            .collect()
    }

    fn tell_all(&self, out: &mut Outcome, message: ServerMessage) {
        out.push(Step::Deliver {
            to: self.connections(|_, _| true),
            message,
        });
    }

    fn remove_member(&mut self, id: MemberId, reason: LeaveReason, out: &mut Outcome) {
        let Some(gone) = self.members.remove(&id) else {
            return;
        };
        out.push(Step::Release(gone.connection));
        out.push(Step::Left(reason));
        self.end_publications_of(id, out);
        self.forget_place(id, &gone.base_grants, reason, out);
    }

    /// Takes an away member out of the lesson for good and tells the others.
    fn forget_away(&mut self, id: MemberId, reason: LeaveReason, out: &mut Outcome) {
        let Some(gone) = self.away.remove(&id) else {
            return;
        };
        out.push(Step::Left(reason));
        self.forget_place(id, &gone.base_grants, reason, out);
    }

    /// Ends every publication of `id` and tells everyone.
    fn end_publications_of(&mut self, id: MemberId, out: &mut Outcome) {
        let ended: Vec<u64> = self
            .publications
            .values()
            .filter(|p| p.participant_id == id.0)
            .map(|p| p.id)
            .collect();
        for publication_id in ended {
            self.publications.remove(&publication_id);
            self.tell_all(out, ServerMessage::PublicationRemoved { publication_id });
        }
    }

    /// Forgets a departed member's hand, stage place and mutes, and tells the others it left.
    fn forget_place(
        &mut self,
        id: MemberId,
        grants: &Grants,
        reason: LeaveReason,
        out: &mut Outcome,
    ) {
        self.muted.retain(|(p, _)| *p != id.0);
        let (was_on_stage, had_hand) = self.stage.forget(id.0);
        if had_hand {
            self.tell_all(
                out,
                ServerMessage::HandLowered {
                    participant_id: id.0,
                },
            );
        }
        if was_on_stage {
            self.tell_stage(out);
        }
        let to = self.connections(|_, m| sees(&m.base_grants, grants));
        out.push(Step::Deliver {
            to,
            message: ServerMessage::ParticipantLeft {
                participant_id: id.0,
                reason,
            },
        });
    }
}

#[cfg(test)]
#[path = "room_tests.rs"]
mod tests;
