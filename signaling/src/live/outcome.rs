//! What a [`Room`](super::Room) decides, as values: the [`Step`]s of an [`Outcome`] that the
//! hub carries out in order (deliver, last word, kick, grants, release, counts), why a
//! connection is told to close ([`Kick`]), and why a request changed nothing ([`ControlError`],
//! [`RoomFull`]).

use super::ConnectionId;
use crate::domain::grants::Grants;
use crate::domain::stage::StageError;
use crate::protocol::{ErrorCode, LeaveReason, ServerMessage, Source};

/// Why a connection is told to close.
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

/// Why a hand, stage or moderation request changed nothing.
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

/// The room already holds as many classrooms as its mode allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this lesson already has {max} classrooms")]
pub struct RoomFull {
    pub max: usize,
}

/// One thing a request makes happen, for the hub to carry out in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Queue `message` to each of `to`. The lesson's timeline is told of it once, whoever it
    /// reaches (nobody, even).
    Deliver {
        to: Vec<ConnectionId>,
        message: ServerMessage,
    },
    /// Queue `message` to `connection` as the last thing it hears (kept off the timeline), then
    /// tell it to close.
    LastWord {
        connection: ConnectionId,
        message: ServerMessage,
        kick: Kick,
    },
    /// Tell `connection` to close.
    Kick {
        connection: ConnectionId,
        kick: Kick,
    },
    /// `connection`'s grants are now these; its connection checks every request against them.
    Grants {
        connection: ConnectionId,
        grants: Grants,
    },
    /// `connection` holds no seat any more; nothing more is delivered to it.
    Release(ConnectionId),
    /// A member left the lesson for good (counted by reason).
    Left(LeaveReason),
    /// An away member took its seat back (counted).
    Resumed,
}

/// What one request made happen, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub steps: Vec<Step>,
}

impl Outcome {
    pub(super) fn push(&mut self, step: Step) {
        self.steps.push(step);
    }
}
