//! [`RequestError`]: every way a WebSocket request is refused or fails, and — in one place,
//! [`RequestError::wire`] — the code and message the client's `error` carries. Refusals tell
//! the client why; failures on our side (the store, an unexpected media-plane error) are
//! logged here and the client hears only "internal error".

use sfu::{SfuError, Source};

use crate::domain::chat::ChatError;
use crate::domain::lesson::LessonKey;
use crate::domain::role::Role;
use crate::live::{ControlError, HubJoinError};
use crate::protocol::{ErrorCode, ParseError};
use crate::services::recording::RecordingError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Why a request (or a frame) was not done.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The frame is not a message we know, or its fields do not fit.
    #[error("{}", .0.message)]
    Parse(ParseError),
    #[error("messages are JSON text frames, not binary")]
    BinaryFrame,
    #[error("too many messages; some were dropped")]
    RateLimited,
    #[error("send join first")]
    NotJoined,
    #[error("this socket has already joined")]
    AlreadyJoined,
    /// Well-formed, but out of bounds.
    #[error("{0}")]
    BadMessage(String),
    #[error(transparent)]
    Forbidden(#[from] Refusal),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("there is no lesson {0}")]
    NoSuchLesson(LessonKey),
    #[error("lesson {0} has ended")]
    LessonEnded(LessonKey),
    #[error("a moderator removed this invite from lesson {0}")]
    Removed(LessonKey),
    /// The lesson refused the seat (full, or the participant's queue is).
    #[error(transparent)]
    Seat(#[from] HubJoinError),
    /// A hand, stage, mute or removal request the lesson's state refuses.
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error("this lesson has no chat message {0}")]
    NoSuchChatMessage(i64),
    #[error(transparent)]
    Media(#[from] SfuError),
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the participant's current grants do not allow.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// `what` is the source (a field named `source` would be taken for the error's cause).
    #[error("a {} may not publish {:?} (mid {})", .role.as_str(), .what, .mid)]
    Publish {
        role: Role,
        what: Source,
        mid: String,
    },
    /// Only a moderator may do this; the text says what, e.g. "end the lesson".
    #[error("only a moderator may {0}")]
    NotModerator(&'static str),
}

const INTERNAL: &str = "internal error";

impl RequestError {
    /// The `error` message's code and text. `request` names the request in the log when the
    /// failure is ours.
    pub(crate) fn wire(&self, request: &str) -> (ErrorCode, String) {
        let refused = |code| (code, self.to_string());
        let internal = || {
            tracing::error!(error = %self, request, "request failed");
            (ErrorCode::Internal, INTERNAL.to_owned())
        };
        match self {
            RequestError::Parse(e) => (e.code, e.message.clone()),
            RequestError::BinaryFrame => refused(ErrorCode::BadJson),
            RequestError::RateLimited => refused(ErrorCode::RateLimited),
            RequestError::NotJoined => refused(ErrorCode::NotJoined),
            RequestError::AlreadyJoined => refused(ErrorCode::AlreadyJoined),
            RequestError::BadMessage(_) => refused(ErrorCode::BadMessage),
            RequestError::Forbidden(_) => refused(ErrorCode::Forbidden),
            RequestError::Token(e) => refused(match e {
                TokenError::Invalid => ErrorCode::InvalidToken,
                TokenError::Expired => ErrorCode::TokenExpired,
                TokenError::WrongLesson { .. } => ErrorCode::WrongLesson,
                TokenError::Signing(_) => ErrorCode::Internal,
            }),
            RequestError::NoSuchLesson(_) => refused(ErrorCode::NoSuchLesson),
            RequestError::LessonEnded(_) => refused(ErrorCode::LessonEnded),
            RequestError::Removed(_) => refused(ErrorCode::Removed),
            RequestError::Seat(e) => match e {
                HubJoinError::LessonEnded => refused(ErrorCode::LessonEnded),
                HubJoinError::QueueFull => (ErrorCode::Unavailable, "try again".to_owned()),
                HubJoinError::LessonFull { .. } => refused(ErrorCode::LessonFull),
                HubJoinError::Removed => refused(ErrorCode::Removed),
            },
            RequestError::Control(e) => refused(e.code()),
            RequestError::Chat(e) => refused(ErrorCode::from(*e)),
            RequestError::NoSuchChatMessage(_) => refused(ErrorCode::NotFound),
            RequestError::Media(e) => match e {
                SfuError::BadSdp(_) | SfuError::KindMismatch(_) => refused(ErrorCode::BadSdp),
                SfuError::NoSuchSubscription { .. } | SfuError::NoSuchPublication(_) => {
                    refused(ErrorCode::NotFound)
                }
                SfuError::NoPendingOffer | SfuError::AlreadyJoined(_) => {
                    refused(ErrorCode::Conflict)
                }
                SfuError::Overloaded | SfuError::Closed => (
                    ErrorCode::Unavailable,
                    "the media server is unavailable; try again".to_owned(),
                ),
                _ => internal(),
            },
            RequestError::Recording(e) => match e {
                RecordingError::AlreadyRecording(_) | RecordingError::NotRecording(_) => {
                    refused(ErrorCode::Conflict)
                }
                RecordingError::LessonEnded(_) => refused(ErrorCode::LessonEnded),
                RecordingError::Sfu(_) | RecordingError::Timeout => (
                    ErrorCode::Unavailable,
                    "the recorder is unavailable; try again".to_owned(),
                ),
                // The disk: the operator has to act; the moderator is told what happened.
                RecordingError::Recorder(inner) => {
                    tracing::error!(error = %e, request, "could not start a recording");
                    (ErrorCode::Unavailable, format!("cannot record: {inner}"))
                }
                RecordingError::Store(_) => internal(),
            },
            RequestError::Store(_) => internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_codes_and_failures_say_little() {
        let (code, text) = RequestError::from(ChatError::TooLong).wire("chat");
        assert_eq!(code, ErrorCode::ChatTooLong);
        assert_eq!(text, ChatError::TooLong.to_string());
        let (code, text) = RequestError::from(Refusal::NotModerator("end the lesson")).wire("x");
        assert_eq!(code, ErrorCode::Forbidden);
        assert_eq!(text, "only a moderator may end the lesson");
        let publish = Refusal::Publish {
            role: Role::Student,
            what: Source::Camera,
            mid: "0".into(),
        };
        assert_eq!(
            publish.to_string(),
            "a student may not publish Camera (mid 0)"
        );
        assert_eq!(
            RequestError::Media(SfuError::Closed).wire("offer").0,
            ErrorCode::Unavailable
        );
        assert_eq!(
            RequestError::Removed(7).wire("join"),
            (
                ErrorCode::Removed,
                "a moderator removed this invite from lesson 7".to_owned()
            )
        );
        assert_eq!(
            RequestError::Seat(HubJoinError::QueueFull).wire("join"),
            (ErrorCode::Unavailable, "try again".to_owned())
        );
    }
}
