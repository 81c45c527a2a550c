//! The WebSocket signaling protocol (DESIGN §5), as typed messages.
//!
//! Every frame is one JSON object tagged by `type`. A client request may carry an `id`
//! (any string); the reply to it — an `answer`, a `pong`, an `error` — echoes that `id`.
//!
//! Parsing happens in two steps so that bad input gets a precise error code:
//! first the frame must be a JSON object with a string `type` (else `bad_json`/`bad_message`),
//! then the type must be one we know (else `unknown_type`), then its fields must fit
//! (else `bad_message`). See [`parse_client_message`].

use serde::{Deserialize, Serialize};

pub use sfu::{MediaKind, Source};

/// A participant's role in a lesson (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Teacher,
    Assistant,
    Classroom,
    Student,
    Observer,
    Operator,
    Recorder,
}

impl Role {
    /// The role's name in JSON, tokens and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Assistant => "assistant",
            Role::Classroom => "classroom",
            Role::Student => "student",
            Role::Observer => "observer",
            Role::Operator => "operator",
            Role::Recorder => "recorder",
        }
    }
}

/// A message from a client (browser or bot) to the server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message on a socket: a join token from an invite link.
    Join {
        #[serde(default)]
        id: Option<String>,
        token: String,
        /// The lesson the page means to join (from its URL), when it knows. A token for
        /// another lesson is then refused with `wrong_lesson` instead of joining that lesson.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lesson: Option<i64>,
    },
    /// An SDP offer for the client's *publisher* peer connection (client → SFU media).
    Offer {
        #[serde(default)]
        id: Option<String>,
        sdp: String,
    },
    /// The SDP answer to a server `offer` for the client's *subscriber* peer connection.
    Answer {
        #[serde(default)]
        id: Option<String>,
        sdp: String,
    },
    /// A trickled ICE candidate from the client. The SFU is ICE-lite and learns the client's
    /// address from its connectivity checks, so candidates are accepted and not needed.
    Candidate {
        #[serde(default)]
        id: Option<String>,
        candidate: serde_json::Value,
    },
    /// Declares that the transceiver `mid` of the next publisher offer carries `source`.
    /// Sent before the `offer` that contains the track.
    Publish {
        #[serde(default)]
        id: Option<String>,
        mid: String,
        source: Source,
    },
    /// Stops a publication: the SFU stops forwarding it and subscribers are told.
    Unpublish {
        #[serde(default)]
        id: Option<String>,
        mid: String,
    },
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
}

impl ClientMessage {
    /// The request id to echo in a reply.
    pub fn id(&self) -> Option<&str> {
        match self {
            ClientMessage::Join { id, .. }
            | ClientMessage::Offer { id, .. }
            | ClientMessage::Answer { id, .. }
            | ClientMessage::Candidate { id, .. }
            | ClientMessage::Publish { id, .. }
            | ClientMessage::Unpublish { id, .. }
            | ClientMessage::Ping { id } => id.as_deref(),
        }
    }

    /// The message's `type`, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Publish { .. } => "publish",
            ClientMessage::Unpublish { .. } => "unpublish",
            ClientMessage::Ping { .. } => "ping",
        }
    }
}

/// Every message type a client may send, for telling `unknown_type` from `bad_message`.
const CLIENT_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "candidate",
    "publish",
    "unpublish",
    "ping",
];

/// What is wrong with a frame a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
    /// The frame's `id`, when it had a readable one, so the error can echo it.
    pub id: Option<String>,
}

/// Parses one text frame into a [`ClientMessage`], classifying what is wrong with bad input.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError {
        code: ErrorCode::BadJson,
        message: format!("not valid JSON: {e}"),
        id: None,
    })?;
    let id = value
        .get("id")
        .and_then(|v| v.as_str())
        .map(|s| s.to_owned());
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(|s| s.to_owned())
    else {
        return Err(ParseError {
            code: ErrorCode::BadMessage,
            message: "a message must be a JSON object with a string \"type\"".into(),
            id,
        });
    };
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        return Err(ParseError {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {kind:?}"),
            id,
        });
    }
    serde_json::from_value(value).map_err(|e| ParseError {
        code: ErrorCode::BadMessage,
        message: format!("bad {kind:?} message: {e}"),
        id,
    })
}

/// A participant as others see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: u64,
    pub name: String,
    pub role: Role,
}

/// A publication as subscribers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicationInfo {
    pub id: u64,
    pub participant_id: u64,
    pub source: Source,
    pub kind: MediaKind,
}

/// Which publication a transceiver of the subscriber connection carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackMapping {
    pub mid: String,
    pub publication_id: u64,
}

/// The lesson as a participant sees it on joining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LessonSnapshot {
    pub id: i64,
    pub title: String,
    pub subject: String,
    pub grade: String,
    pub mode: String,
    pub state: String,
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The reply to `join`: who you are and what is in the lesson now.
    Joined {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        you: ParticipantInfo,
        lesson: LessonSnapshot,
        participants: Vec<ParticipantInfo>,
        publications: Vec<PublicationInfo>,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant_id: u64,
        reason: LeaveReason,
    },
    PublicationAdded {
        publication: PublicationInfo,
    },
    PublicationRemoved {
        publication_id: u64,
    },
    /// The SFU's offer for the client's *subscriber* peer connection; `tracks` says which
    /// publication each transceiver carries.
    Offer {
        sdp: String,
        tracks: Vec<TrackMapping>,
    },
    /// The SFU's answer to the client's publisher `offer`.
    Answer {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        sdp: String,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        code: ErrorCode,
        message: String,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// The lesson was ended for everyone; the server closes the socket after this message.
    LessonEnded {
        lesson_id: i64,
    },
}

impl ServerMessage {
    /// The message's `type`, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Joined { .. } => "joined",
            ServerMessage::ParticipantJoined { .. } => "participant_joined",
            ServerMessage::ParticipantLeft { .. } => "participant_left",
            ServerMessage::PublicationAdded { .. } => "publication_added",
            ServerMessage::PublicationRemoved { .. } => "publication_removed",
            ServerMessage::Offer { .. } => "offer",
            ServerMessage::Answer { .. } => "answer",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::LessonEnded { .. } => "lesson_ended",
        }
    }
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It closed its socket.
    Left,
    /// Its socket went silent past the liveness timeout, or its media connection failed.
    Vanished,
}

/// Stable error codes; clients switch on these, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    BadMessage,
    UnknownType,
    NotJoined,
    AlreadyJoined,
    InvalidToken,
    TokenExpired,
    WrongLesson,
    NoSuchLesson,
    LessonEnded,
    BadSdp,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code's name on the wire, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::WrongLesson => "wrong_lesson",
            ErrorCode::NoSuchLesson => "no_such_lesson",
            ErrorCode::LessonEnded => "lesson_ended",
            ErrorCode::BadSdp => "bad_sdp",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_known_message() {
        let m = parse_client_message(r#"{"type":"join","id":"1","token":"t"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Join {
                id: Some("1".into()),
                token: "t".into(),
                lesson: None,
            }
        );
        let m = parse_client_message(r#"{"type":"join","token":"t","lesson":4}"#).unwrap();
        assert!(matches!(
            m,
            ClientMessage::Join {
                lesson: Some(4),
                ..
            }
        ));
        let m = parse_client_message(r#"{"type":"publish","mid":"0","source":"camera"}"#).unwrap();
        assert_eq!(m.id(), None);
        assert!(matches!(
            m,
            ClientMessage::Publish {
                source: Source::Camera,
                ..
            }
        ));
        assert!(matches!(
            parse_client_message(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping { id: None })
        ));
    }

    #[test]
    fn classifies_bad_input() {
        let e = parse_client_message("{not json").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadJson);
        let e = parse_client_message(r#"[1,2]"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadMessage);
        let e = parse_client_message(r#"{"type":"dance","id":"7"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownType);
        assert_eq!(e.id.as_deref(), Some("7"));
        let e = parse_client_message(r#"{"type":"offer","id":"8"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadMessage);
        assert_eq!(e.id.as_deref(), Some("8"));
        let e =
            parse_client_message(r#"{"type":"publish","mid":"0","source":"radio"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadMessage);
    }

    #[test]
    fn names_match_serde() {
        for code in [
            ErrorCode::BadJson,
            ErrorCode::NoSuchLesson,
            ErrorCode::RateLimited,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
        for role in [Role::Teacher, Role::Classroom, Role::Recorder] {
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
        }
        let m = ServerMessage::LessonEnded { lesson_id: 3 };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"type":"lesson_ended","lesson_id":3}"#);
        assert!(text.contains(m.kind()));
    }

    #[test]
    fn server_messages_are_tagged() {
        let text = serde_json::to_string(&ServerMessage::Error {
            id: Some("3".into()),
            code: ErrorCode::BadSdp,
            message: "x".into(),
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"type":"error","id":"3","code":"bad_sdp","message":"x"}"#
        );
    }
}
