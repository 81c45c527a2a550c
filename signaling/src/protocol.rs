//! The WebSocket signaling protocol (DESIGN §5), as typed messages.
//!
//! Every frame is one JSON object tagged by `type`. A client request may carry an `id`
//! (any string); the reply to it — an `answer`, a `pong`, an `error` — echoes that `id`.
//!
//! Parsing happens in two steps so that bad input gets a precise error code:
//! first the frame must be a JSON object with a string `type` (else `bad_json`/`bad_message`),
//! then the type must be one we know (else `unknown_type`), then its fields must fit
//! (else `bad_message`). See [`parse_client_message`].

//!
//! The domain types a message carries as they are (roles, grants, chat messages, hands) are
//! the domain's own, re-exported here so a client of the protocol finds every wire type in one
//! place; the protocol imports the domain, never the reverse.

use serde::{Deserialize, Serialize};

pub use sfu::{Layer, MediaKind, Source};

use crate::domain::chat::ChatError;
pub use crate::domain::chat::{ChatAudience, ChatAuthor, ChatMessage};
pub use crate::domain::grants::Grants;
use crate::domain::lesson::Lesson;
pub use crate::domain::role::Role;
pub use crate::domain::stage::HandInfo;
use crate::domain::timestamp::Timestamp;

fn best_layer() -> Layer {
    Layer::High
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
    /// The subscriber's wishes for one video publication it receives: the best simulcast
    /// layer it wants (`low`/`medium`/`high`; a small tile needs no more) and whether to
    /// pause it. Its own link may still hold it lower.
    SetSubscription {
        #[serde(default)]
        id: Option<String>,
        publication_id: u64,
        #[serde(default = "best_layer")]
        max_layer: Layer,
        #[serde(default)]
        paused: bool,
    },
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    /// Asks to speak; hands are kept in the order they were raised.
    RaiseHand {
        #[serde(default)]
        id: Option<String>,
    },
    /// Lowers the sender's own hand, or (a moderator only) `participant_id`'s.
    LowerHand {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        participant_id: Option<u64>,
    },
    /// A moderator lowers every raised hand.
    LowerAllHands {
        #[serde(default)]
        id: Option<String>,
    },
    /// A moderator invites a participant onto the stage; it joins when it accepts.
    InviteToStage {
        #[serde(default)]
        id: Option<String>,
        participant_id: u64,
    },
    /// Accepts a pending stage invitation.
    AcceptStage {
        #[serde(default)]
        id: Option<String>,
    },
    /// Declines a pending stage invitation.
    DeclineStage {
        #[serde(default)]
        id: Option<String>,
    },
    /// Leaves the stage; the sender's stage-only publications stop.
    LeaveStage {
        #[serde(default)]
        id: Option<String>,
    },
    /// A moderator takes a participant off the stage.
    RemoveFromStage {
        #[serde(default)]
        id: Option<String>,
        participant_id: u64,
    },
    /// A chat message to the lesson, or to the observers' channel.
    Chat {
        #[serde(default)]
        id: Option<String>,
        text: String,
        #[serde(default)]
        to: Option<ChatAudience>,
    },
    /// A moderator deletes a chat message.
    DeleteChat {
        #[serde(default)]
        id: Option<String>,
        message_id: i64,
    },
    /// A moderator stops forwarding `participant_id`'s publication of `source` for everyone.
    /// It stays muted, across re-publishing, until `unmute`.
    Mute {
        #[serde(default)]
        id: Option<String>,
        participant_id: u64,
        source: Source,
    },
    /// A moderator resumes forwarding what `mute` stopped.
    Unmute {
        #[serde(default)]
        id: Option<String>,
        participant_id: u64,
        source: Source,
    },
    /// A moderator removes a participant: its socket is closed and its invite (its token's
    /// identity) may not join this lesson again.
    Remove {
        #[serde(default)]
        id: Option<String>,
        participant_id: u64,
    },
    /// A moderator ends the lesson for everyone, as `POST /api/lessons/{id}/end` does.
    EndLesson {
        #[serde(default)]
        id: Option<String>,
    },
    /// A moderator starts recording the lesson into the library.
    StartRecording {
        #[serde(default)]
        id: Option<String>,
    },
    /// A moderator stops the lesson's recording; what was recorded stays in the library.
    StopRecording {
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
            | ClientMessage::SetSubscription { id, .. }
            | ClientMessage::Ping { id }
            | ClientMessage::RaiseHand { id }
            | ClientMessage::LowerHand { id, .. }
            | ClientMessage::LowerAllHands { id }
            | ClientMessage::InviteToStage { id, .. }
            | ClientMessage::AcceptStage { id }
            | ClientMessage::DeclineStage { id }
            | ClientMessage::LeaveStage { id }
            | ClientMessage::RemoveFromStage { id, .. }
            | ClientMessage::Chat { id, .. }
            | ClientMessage::DeleteChat { id, .. }
            | ClientMessage::Mute { id, .. }
            | ClientMessage::Unmute { id, .. }
            | ClientMessage::Remove { id, .. }
            | ClientMessage::EndLesson { id }
            | ClientMessage::StartRecording { id }
            | ClientMessage::StopRecording { id } => id.as_deref(),
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
            ClientMessage::SetSubscription { .. } => "set_subscription",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::RaiseHand { .. } => "raise_hand",
            ClientMessage::LowerHand { .. } => "lower_hand",
            ClientMessage::LowerAllHands { .. } => "lower_all_hands",
            ClientMessage::InviteToStage { .. } => "invite_to_stage",
            ClientMessage::AcceptStage { .. } => "accept_stage",
            ClientMessage::DeclineStage { .. } => "decline_stage",
            ClientMessage::LeaveStage { .. } => "leave_stage",
            ClientMessage::RemoveFromStage { .. } => "remove_from_stage",
            ClientMessage::Chat { .. } => "chat",
            ClientMessage::DeleteChat { .. } => "delete_chat",
            ClientMessage::Mute { .. } => "mute",
            ClientMessage::Unmute { .. } => "unmute",
            ClientMessage::Remove { .. } => "remove",
            ClientMessage::EndLesson { .. } => "end_lesson",
            ClientMessage::StartRecording { .. } => "start_recording",
            ClientMessage::StopRecording { .. } => "stop_recording",
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
    "set_subscription",
    "ping",
    "raise_hand",
    "lower_hand",
    "lower_all_hands",
    "invite_to_stage",
    "accept_stage",
    "decline_stage",
    "leave_stage",
    "remove_from_stage",
    "chat",
    "delete_chat",
    "mute",
    "unmute",
    "remove",
    "end_lesson",
    "start_recording",
    "stop_recording",
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

/// The classroom part of `joined`: added after the first release, so every field has a
/// default and an older server's `joined` still parses.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClassroomSnapshot {
    /// Raised hands, oldest first.
    #[serde(default)]
    pub hands: Vec<HandInfo>,
    /// Who is on stage, in the order they joined it.
    #[serde(default)]
    pub stage: Vec<u64>,
    /// The last chat messages this participant may read, oldest first.
    #[serde(default)]
    pub chat: Vec<ChatMessage>,
    /// What this participant may do now.
    #[serde(default)]
    pub grants: Grants,
    /// The publications a moderator has muted, by id.
    #[serde(default)]
    pub muted: Vec<u64>,
    /// Participants whose connection dropped and who may still come back (they are listed in
    /// `participants` too, and keep their hand and stage place meanwhile).
    #[serde(default)]
    pub reconnecting: Vec<u64>,
    /// Whether the lesson is being recorded now.
    #[serde(default)]
    pub recording: bool,
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

impl From<&Lesson> for LessonSnapshot {
    fn from(lesson: &Lesson) -> LessonSnapshot {
        LessonSnapshot {
            id: lesson.id,
            title: lesson.title.clone(),
            subject: lesson.subject.clone(),
            grade: lesson.grade.clone(),
            mode: lesson.mode.as_str().to_owned(),
            state: lesson.state.as_str().to_owned(),
        }
    }
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
        /// Hands, stage, chat and grants, as fields of `joined` itself on the wire; boxed
        /// because every queued message is as large as the largest.
        #[serde(flatten)]
        classroom: Box<ClassroomSnapshot>,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant_id: u64,
        reason: LeaveReason,
    },
    /// Its connection dropped; it keeps its place (hand, stage, mutes) while it may come
    /// back. Its publications have ended. Either `participant_resumed` or `participant_left`
    /// follows.
    ParticipantReconnecting {
        participant_id: u64,
    },
    /// It came back (same id, same hand and stage place) and will publish anew.
    ParticipantResumed {
        participant: ParticipantInfo,
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
    HandRaised {
        participant_id: u64,
        at: Timestamp,
    },
    HandLowered {
        participant_id: u64,
    },
    /// To the invitee and the moderators: a stage invitation is waiting for an answer.
    StageInvited {
        participant_id: u64,
    },
    /// To the moderators: the invitee declined.
    StageDeclined {
        participant_id: u64,
    },
    /// Who is on stage now.
    StageChanged {
        stage: Vec<u64>,
    },
    /// To one participant: what it may do now (the stage changed its grants).
    GrantsChanged {
        grants: Grants,
    },
    Chat {
        message: ChatMessage,
    },
    ChatDeleted {
        message_id: i64,
    },
    /// To everyone: a moderator (`by`) muted or unmuted `participant_id`'s `source`.
    Muted {
        participant_id: u64,
        source: Source,
        /// The publication it concerns now; a re-publication of the source stays muted.
        publication_id: u64,
        muted: bool,
        by: u64,
    },
    /// To the removed participant only; the server closes its socket after this message.
    Removed {},
    /// To everyone: the lesson's recording started or stopped. `error` (to moderators only)
    /// says why a recording stopped on its own, e.g. a full disk.
    RecordingChanged {
        recording: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<recorder::ErrorInfo>,
    },
    /// To one participant, every couple of seconds while it has media: how what it publishes
    /// reaches the server, and how what it receives reaches it.
    Quality {
        publishing: Vec<StreamQualityInfo>,
        receiving: Vec<StreamQualityInfo>,
    },
}

/// One stream's quality over the last interval (see `sfu::StreamQuality`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamQualityInfo {
    pub publication_id: u64,
    /// Simulcast layer received (publishing) or forwarded now (receiving); absent for audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    pub bitrate_bps: u64,
    /// 0.0 to 1.0.
    pub loss: f32,
    pub jitter_ms: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<u32>,
    #[serde(default)]
    pub nacks: u64,
    #[serde(default)]
    pub keyframe_requests: u64,
    /// Times the picture stood still until a keyframe, in all, and for how long (receiving
    /// video only).
    #[serde(default)]
    pub freezes: u64,
    #[serde(default)]
    pub frozen_ms: u64,
}

impl From<&sfu::StreamQuality> for StreamQualityInfo {
    fn from(q: &sfu::StreamQuality) -> Self {
        StreamQualityInfo {
            publication_id: q.publication.0,
            layer: q.layer,
            bitrate_bps: q.bitrate_bps,
            loss: q.loss,
            jitter_ms: q.jitter_ms,
            rtt_ms: q.rtt_ms,
            nacks: q.nacks,
            keyframe_requests: q.keyframe_requests,
            freezes: q.freezes,
            frozen_ms: q.frozen_ms,
        }
    }
}

impl ServerMessage {
    /// The message's `type`, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Joined { .. } => "joined",
            ServerMessage::ParticipantJoined { .. } => "participant_joined",
            ServerMessage::ParticipantLeft { .. } => "participant_left",
            ServerMessage::ParticipantReconnecting { .. } => "participant_reconnecting",
            ServerMessage::ParticipantResumed { .. } => "participant_resumed",
            ServerMessage::PublicationAdded { .. } => "publication_added",
            ServerMessage::PublicationRemoved { .. } => "publication_removed",
            ServerMessage::Offer { .. } => "offer",
            ServerMessage::Answer { .. } => "answer",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::LessonEnded { .. } => "lesson_ended",
            ServerMessage::HandRaised { .. } => "hand_raised",
            ServerMessage::HandLowered { .. } => "hand_lowered",
            ServerMessage::StageInvited { .. } => "stage_invited",
            ServerMessage::StageDeclined { .. } => "stage_declined",
            ServerMessage::StageChanged { .. } => "stage_changed",
            ServerMessage::GrantsChanged { .. } => "grants_changed",
            ServerMessage::Chat { .. } => "chat",
            ServerMessage::ChatDeleted { .. } => "chat_deleted",
            ServerMessage::Muted { .. } => "muted",
            ServerMessage::Removed {} => "removed",
            ServerMessage::Quality { .. } => "quality",
            ServerMessage::RecordingChanged { .. } => "recording_changed",
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
    /// A moderator removed it.
    Removed,
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
    /// The lesson's mode allows no more participants of this role.
    LessonFull,
    /// The stage is at its mode's limit.
    StageFull,
    /// A chat message longer than the limit.
    ChatTooLong,
    /// A moderator removed this token's participant from the lesson; it may not rejoin.
    Removed,
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
            ErrorCode::LessonFull => "lesson_full",
            ErrorCode::StageFull => "stage_full",
            ErrorCode::ChatTooLong => "chat_too_long",
            ErrorCode::Removed => "removed",
        }
    }
}

/// The code a refused chat message is answered with.
impl From<ChatError> for ErrorCode {
    fn from(e: ChatError) -> ErrorCode {
        match e {
            ChatError::NotAllowed | ChatError::NotInObserversChannel => ErrorCode::Forbidden,
            ChatError::Empty | ChatError::ControlCharacter => ErrorCode::BadMessage,
            ChatError::TooLong => ErrorCode::ChatTooLong,
            ChatError::RateLimited => ErrorCode::RateLimited,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_refusals_have_their_codes() {
        assert_eq!(ErrorCode::from(ChatError::TooLong), ErrorCode::ChatTooLong);
        assert_eq!(ErrorCode::from(ChatError::Empty), ErrorCode::BadMessage);
    }

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
        let m = parse_client_message(r#"{"type":"lower_hand","id":"h"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::LowerHand {
                id: Some("h".into()),
                participant_id: None
            }
        );
        let m = parse_client_message(r#"{"type":"chat","text":"hi","to":"observers"}"#).unwrap();
        assert!(matches!(
            m,
            ClientMessage::Chat {
                to: Some(ChatAudience::Observers),
                ..
            }
        ));
        assert_eq!(m.kind(), "chat");
        let m = parse_client_message(
            r#"{"type":"mute","id":"m","participant_id":3,"source":"microphone"}"#,
        )
        .unwrap();
        assert_eq!(m.kind(), "mute");
        assert_eq!(m.id(), Some("m"));
        assert!(matches!(
            parse_client_message(r#"{"type":"end_lesson"}"#),
            Ok(ClientMessage::EndLesson { id: None })
        ));
        let e = parse_client_message(r#"{"type":"remove"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadMessage);
        assert_eq!(
            serde_json::to_string(&ServerMessage::Removed {}).unwrap(),
            r#"{"type":"removed"}"#
        );
        let e = parse_client_message(r#"{"type":"invite_to_stage","id":"i"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadMessage);
    }

    #[test]
    fn old_joined_messages_still_parse() {
        // What a server from before hands, stage and chat sent; clients built on these types
        // must keep reading it.
        let text = r#"{"type":"joined","you":{"id":1,"name":"T","role":"teacher"},
            "lesson":{"id":1,"title":"t","subject":"","grade":"","mode":"delivery","state":"live"},
            "participants":[],"publications":[]}"#;
        let m: ServerMessage = serde_json::from_str(text).unwrap();
        assert!(
            matches!(&m, ServerMessage::Joined { classroom, .. } if classroom.hands.is_empty() && classroom.stage.is_empty())
        );
        // And the new fields sit beside the old ones, not in an object of their own.
        let text = serde_json::to_string(&m).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["hands"], serde_json::json!([]));
        assert_eq!(value["grants"]["subscribe"], false);
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), m);
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
            ErrorCode::LessonFull,
            ErrorCode::StageFull,
            ErrorCode::ChatTooLong,
            ErrorCode::Removed,
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
            assert_eq!(Role::from_name(role.as_str()), Some(role));
        }
        assert_eq!(Role::from_name("dean"), None);
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
