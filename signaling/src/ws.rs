//! The WebSocket signaling endpoint `/ws` (DESIGN §5): one task per connection.
//!
//! A connection first has to `join` with a token (within `join_timeout`); until then every
//! other request gets `not_joined`. Once joined it is a participant: the task relays its
//! requests to the media plane, writes the messages the hub queues for it, pings it, and
//! removes it when it closes, goes silent past `liveness_timeout`, falls behind, or its lesson
//! ends. Bad input is answered with an `error` and the connection goes on; only frames over
//! `max_message_bytes` end it (the WebSocket layer refuses them).
//!
//! Hands, the stage and chat are checked against the participant's *current* grants, which the
//! hub publishes on a `watch`: when the stage takes sources away, this task stops the
//! publications that carried them (whoever made the change) and refuses later offers for them.
//!
//! The media plane's events for a participant are relayed by a second, small task
//! ([`relay_sfu_events`]) so that its publications reach the others even while its own socket
//! is slow to write.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sfu::{LessonId, ParticipantId, PeerLeg, PeerState, SfuError, SfuEvent, Source};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::chat::{self, CHAT_HISTORY, ChatError, ChatRate};
use crate::grants::Grants;
use crate::lesson::{LessonKey, LessonState};
use crate::lesson_hub::{ControlError, HubJoinError, Kick, Member};
use crate::protocol::{
    ChatAuthor, ClientMessage, ErrorCode, LeaveReason, ParticipantInfo, PublicationInfo, Role,
    ServerMessage, TrackMapping, parse_client_message,
};
use crate::recording::RecordingError;
use crate::server::AppState;
use crate::store::NewChat;
use crate::timestamp::Timestamp;
use crate::token::{Claims, TokenError};

/// Participant ids are unique for the life of the process, across lessons; 0 is never used.
static NEXT_PARTICIPANT: AtomicU64 = AtomicU64::new(1);

/// Capacity of one participant's SFU event queue. Events are rare (an offer per change in the
/// lesson's publications); the SFU drops and counts past this.
const SFU_EVENT_QUEUE: usize = 256;

/// The most `publish` declarations one participant may hold (four sources, renegotiations).
const MAX_DECLARED_TRACKS: usize = 32;
/// The longest transceiver `mid` accepted; browsers use short decimal strings.
const MAX_MID_LEN: usize = 64;

/// The close code for a connection whose seat a newer connection of the same invite took
/// (application range 4000–4999, RFC 6455 §7.4.2); the page does not reconnect after it.
const CLOSE_REPLACED: u16 = 4409;

/// How long to try to flush the last messages (e.g. `lesson_ended`) before closing.
const FLUSH_ON_CLOSE: Duration = Duration::from_secs(1);

/// `GET /ws`: upgrades to a WebSocket, within the connection cap.
pub async fn upgrade(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let Ok(slot) = state.connection_slots.clone().try_acquire_owned() else {
        state.metrics.ws_rejected.inc();
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    let max = state.config.max_message_bytes;
    let tracker = state.tasks.clone();
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| {
            // Counted by the tracker so shutdown can wait for every socket to close.
            let run = Connection::new(state).run(socket);
            tracker.track_future(async move {
                run.await;
                drop(slot);
            })
        })
}

/// Why a connection ended, which decides what the others are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed the socket normally (1000, or no code): it has left.
    Closed,
    /// The client closed the socket with another code, e.g. "going away" (1001: a page
    /// unloading or reloading) or the web client's own "reconnecting": it may well be back, so
    /// it keeps its place like a vanished one.
    GoingAway,
    /// The same invite joined on a newer connection, which now holds the seat.
    Replaced,
    /// The socket failed, went silent, or could not be written to in time.
    Vanished,
    /// The hub removed it for falling behind.
    TooSlow,
    LessonEnded,
    /// A moderator removed it; the hub has already taken it out of the lesson.
    Removed,
    JoinTimeout,
    ServerShutdown,
}

/// A joined participant's state on its connection.
struct Joined {
    lesson: LessonKey,
    /// Its id in the lesson, which survives reconnects.
    pid: ParticipantId,
    /// Its id in the media plane, new with every connection; also names this connection to
    /// the hub, so a replaced connection closing late cannot touch its successor's seat.
    media: ParticipantId,
    claims: Claims,
    /// `mid → source` from the client's `publish` messages, sent with every publisher offer.
    declared: BTreeMap<String, Source>,
    kick: watch::Receiver<Option<Kick>>,
    /// Its current grants, kept by the hub (the token's, plus the stage's while on stage).
    grants: watch::Receiver<Grants>,
    chat_rate: ChatRate,
    sfu_events: JoinHandle<()>,
}

struct Connection {
    state: AppState,
    outbox_tx: mpsc::Sender<ServerMessage>,
    outbox_rx: mpsc::Receiver<ServerMessage>,
    joined: Option<Joined>,
    limiter: RateLimit,
}

/// Replies that could not be queued: the connection's queue is full, so it is too slow.
struct QueueFull;

impl Connection {
    fn new(state: AppState) -> Connection {
        let (outbox_tx, outbox_rx) = mpsc::channel(state.config.outbound_queue);
        let limiter = RateLimit::new(state.config.messages_per_second, Instant::now());
        Connection {
            state,
            outbox_tx,
            outbox_rx,
            joined: None,
            limiter,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let metrics = self.state.metrics.clone();
        metrics.ws_connections.inc();
        let (mut sink, mut stream) = socket.split();
        let end = self.serve(&mut sink, &mut stream).await;
        self.finish(end, &mut sink).await;
        metrics.ws_connections.dec();
    }

    /// The connection's loop; returns why it ended.
    async fn serve(
        &mut self,
        sink: &mut SplitSink<WebSocket, Message>,
        stream: &mut SplitStream<WebSocket>,
    ) -> End {
        let config = self.state.config.clone();
        let shutdown = self.state.shutdown.clone();
        let join_deadline = Instant::now() + config.join_timeout;
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval_at(
            Instant::now() + config.liveness_timeout / 3,
            config.liveness_timeout / 3,
        );
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            let deadline = match self.joined {
                Some(_) => last_heard + config.liveness_timeout,
                None => join_deadline,
            };
            let (kick, grants) = match self.joined.as_mut() {
                Some(j) => (Some(&mut j.kick), Some(&mut j.grants)),
                None => (None, None),
            };
            let kicked = kicked(kick);
            let regranted = grants_changed(grants);
            tokio::select! {
                _ = shutdown.cancelled() => return End::ServerShutdown,
                () = regranted => self.enforce_grants().await,
                kick = kicked => {
                    return match kick {
                        Kick::SlowConsumer => End::TooSlow,
                        Kick::LessonEnded => End::LessonEnded,
                        Kick::Removed => End::Removed,
                        Kick::Replaced => End::Replaced,
                    };
                }
                Some(message) = self.outbox_rx.recv() => {
                    if !self.write(sink, message).await {
                        return End::Vanished;
                    }
                }
                frame = stream.next() => {
                    last_heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Close(Some(frame)))) if frame.code != close_code::NORMAL => {
                            return End::GoingAway;
                        }
                        Some(Ok(Message::Close(_))) => return End::Closed,
                        // The stream ended without a close frame: the peer did not say goodbye.
                        None => return End::Vanished,
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "websocket read failed");
                            return End::Vanished;
                        }
                        Some(Ok(Message::Text(text))) => {
                            if self.on_text(&text).await.is_err() {
                                return End::TooSlow;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            self.state.metrics.ws_messages_in.with_label_values(&["invalid"]).inc();
                            if self.reply_error(None, ErrorCode::BadJson, "messages are JSON text frames, not binary").is_err() {
                                return End::TooSlow;
                            }
                        }
                        // Pings are answered by the WebSocket layer; pongs only prove liveness.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    }
                }
                _ = ping.tick() => {
                    let sent = tokio::time::timeout(
                        config.liveness_timeout,
                        sink.send(Message::Ping(Default::default())),
                    ).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return End::Vanished;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return if self.joined.is_some() { End::Vanished } else { End::JoinTimeout };
                }
            }
        }
    }

    /// Writes one message, bounded by the liveness timeout so a client that stops reading
    /// cannot hold the task forever. Returns false if the socket is unusable.
    async fn write(
        &self,
        sink: &mut SplitSink<WebSocket, Message>,
        message: ServerMessage,
    ) -> bool {
        let text = match serde_json::to_string(&message) {
            Ok(text) => text,
            Err(e) => {
                // Our own types always serialise; log rather than panic if one ever does not.
                tracing::error!(error = %e, kind = message.kind(), "could not serialise a message");
                return true;
            }
        };
        let sent = tokio::time::timeout(
            self.state.config.liveness_timeout,
            sink.send(Message::Text(Utf8Bytes::from(text))),
        )
        .await;
        matches!(sent, Ok(Ok(())))
    }

    /// Queues a reply to this connection.
    fn reply(&self, message: ServerMessage) -> Result<(), QueueFull> {
        let kind = message.kind();
        match self.outbox_tx.try_send(message) {
            Ok(()) => {
                self.state
                    .metrics
                    .ws_messages_out
                    .with_label_values(&[kind])
                    .inc();
                Ok(())
            }
            Err(_) => {
                self.state.metrics.slow_consumer_disconnects.inc();
                Err(QueueFull)
            }
        }
    }

    fn reply_error(
        &self,
        id: Option<String>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Result<(), QueueFull> {
        self.state.metrics.error_sent(code);
        self.reply(ServerMessage::Error {
            id,
            code,
            message: message.into(),
        })
    }

    /// Handles one text frame. Only a full queue ends the connection.
    async fn on_text(&mut self, text: &str) -> Result<(), QueueFull> {
        let now = Instant::now();
        match self.limiter.check(now) {
            Verdict::Allow => {}
            Verdict::Drop => return Ok(()),
            Verdict::DropAndTell => {
                return self.reply_error(
                    None,
                    ErrorCode::RateLimited,
                    "too many messages; some were dropped",
                );
            }
        }
        let message = match parse_client_message(text) {
            Ok(message) => message,
            Err(e) => {
                self.state
                    .metrics
                    .ws_messages_in
                    .with_label_values(&["invalid"])
                    .inc();
                return self.reply_error(e.id, e.code, e.message);
            }
        };
        self.state
            .metrics
            .ws_messages_in
            .with_label_values(&[message.kind()])
            .inc();
        let id = message.id().map(str::to_owned);

        match (message, self.joined.is_some()) {
            // A keepalive is harmless before joining; answering it lets a page check the
            // socket before it has a token.
            (ClientMessage::Ping { id }, _) => self.reply(ServerMessage::Pong { id }),
            (ClientMessage::Join { id, token, lesson }, false) => {
                match self.join(id.clone(), &token, lesson).await {
                    Ok(()) => Ok(()),
                    Err((code, message)) => self.reply_error(id, code, message),
                }
            }
            (ClientMessage::Join { .. }, true) => self.reply_error(
                id,
                ErrorCode::AlreadyJoined,
                "this socket has already joined",
            ),
            (_, false) => self.reply_error(id, ErrorCode::NotJoined, "send join first"),
            (message, true) => match self.on_request(message).await {
                Ok(Some(reply)) => self.reply(reply),
                Ok(None) => Ok(()),
                Err((code, text)) => self.reply_error(id, code, text),
            },
        }
    }

    /// Checks the token and the lesson, then joins the media plane and the lesson's room.
    async fn join(
        &mut self,
        id: Option<String>,
        token: &str,
        wanted: Option<LessonKey>,
    ) -> Result<(), (ErrorCode, String)> {
        let state = self.state.clone();
        let claims = state.keys.verify(token, wanted).map_err(|e| {
            let code = match e {
                TokenError::Invalid => ErrorCode::InvalidToken,
                TokenError::Expired => ErrorCode::TokenExpired,
                TokenError::WrongLesson { .. } => ErrorCode::WrongLesson,
                TokenError::Signing(_) => ErrorCode::Internal,
            };
            (code, e.to_string())
        })?;
        let lesson_key = claims.lesson;
        let internal = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, lesson = lesson_key, "join failed");
            (ErrorCode::Internal, "internal error".to_owned())
        };
        if state
            .store
            .is_removed(lesson_key, &claims.sub)
            .await
            .map_err(|e| internal(&e))?
        {
            return Err(removed_error(lesson_key));
        }
        let mut lesson = state
            .store
            .lesson(lesson_key)
            .await
            .map_err(|e| internal(&e))?
            .ok_or_else(|| {
                (
                    ErrorCode::NoSuchLesson,
                    format!("there is no lesson {lesson_key}"),
                )
            })?;
        if lesson.state == LessonState::Ended {
            return Err((
                ErrorCode::LessonEnded,
                format!("lesson {lesson_key} has ended"),
            ));
        }
        let sfu_lesson = u64::try_from(lesson_key).map(LessonId).map_err(|_| {
            (
                ErrorCode::NoSuchLesson,
                format!("there is no lesson {lesson_key}"),
            )
        })?;

        let media = ParticipantId(NEXT_PARTICIPANT.fetch_add(1, Ordering::Relaxed));
        let (events_tx, events_rx) = mpsc::channel(SFU_EVENT_QUEUE);
        self.sfu_call(state.sfu.join(sfu_lesson, media, events_tx))
            .await
            .map_err(|e| sfu_error_reply(&e))?;

        // The teacher arriving is what makes a scheduled lesson live.
        let mut went_live = false;
        if claims.role == Role::Teacher && lesson.state == LessonState::Scheduled {
            match state.store.start_lesson(lesson_key, Timestamp::now()).await {
                Ok(Some(started)) => {
                    went_live = started.state == LessonState::Live;
                    lesson = started;
                }
                Ok(None) => {}
                Err(e) => {
                    state.sfu.leave(media).await;
                    return Err(internal(&e));
                }
            }
        }

        // Read before joining the hub: a message sent in between may then arrive twice (history
        // and live), which clients drop by id, but none is lost.
        let history = match state
            .store
            .chat_history(lesson_key, claims.grants.reads_observers(), CHAT_HISTORY)
            .await
        {
            Ok(history) => history,
            Err(e) => {
                state.sfu.leave(media).await;
                return Err(internal(&e));
            }
        };

        let (kick_tx, kick_rx) = watch::channel(None);
        let (grants_tx, grants_rx) = watch::channel(claims.grants.clone());
        // A newcomer's proposed id; one coming back gets its old id from the hub.
        let info = ParticipantInfo {
            id: media.0,
            name: claims.name.clone(),
            role: claims.role,
        };
        let member = Member {
            info,
            identity: claims.sub.clone(),
            connection: media.0,
            base_grants: claims.grants.clone(),
            grants: grants_tx,
            outbox: self.outbox_tx.clone(),
            kick: kick_tx,
        };
        let pid = match state
            .hub
            .join(&lesson.snapshot(), lesson.mode, id, member, history)
        {
            Ok(pid) => pid,
            Err(e) => {
                state.sfu.leave(media).await;
                return Err(match e {
                    HubJoinError::LessonEnded => (
                        ErrorCode::LessonEnded,
                        format!("lesson {lesson_key} has ended"),
                    ),
                    HubJoinError::QueueFull => (ErrorCode::Unavailable, "try again".to_owned()),
                    HubJoinError::LessonFull { .. } => (ErrorCode::LessonFull, e.to_string()),
                    HubJoinError::Removed => removed_error(lesson_key),
                });
            }
        };

        let span = tracing::info_span!(
            "participant",
            lesson = lesson_key,
            id = %pid,
            role = claims.role.as_str()
        );
        span.in_scope(|| tracing::info!(name = %claims.name, "joined"));
        if went_live {
            // After joining the hub, so the teacher hears `recording_changed` after `joined`.
            state.recordings.lesson_went_live(&lesson).await;
        }
        let sfu_events = tokio::spawn(
            relay_sfu_events(state.clone(), lesson_key, pid, media, events_rx).instrument(span),
        );
        self.joined = Some(Joined {
            lesson: lesson_key,
            pid,
            media,
            claims,
            declared: BTreeMap::new(),
            kick: kick_rx,
            grants: grants_rx,
            chat_rate: ChatRate::default(),
            sfu_events,
        });
        Ok(())
    }

    /// Handles a joined participant's request; `Ok(Some)` is the reply to queue.
    async fn on_request(
        &mut self,
        message: ClientMessage,
    ) -> Result<Option<ServerMessage>, (ErrorCode, String)> {
        let Some(joined) = self.joined.as_mut() else {
            return Err((ErrorCode::NotJoined, "send join first".into()));
        };
        let (pid, media) = (joined.pid, joined.media);
        let sfu = self.state.sfu.clone();
        match message {
            ClientMessage::Publish { mid, source, .. } => {
                if mid.is_empty() || mid.len() > MAX_MID_LEN {
                    return Err((
                        ErrorCode::BadMessage,
                        format!("mid must be 1 to {MAX_MID_LEN} bytes"),
                    ));
                }
                if joined.declared.len() >= MAX_DECLARED_TRACKS
                    && !joined.declared.contains_key(&mid)
                {
                    return Err((
                        ErrorCode::BadMessage,
                        format!("at most {MAX_DECLARED_TRACKS} tracks may be declared"),
                    ));
                }
                // Grants are checked when the offer that carries the track arrives, so a
                // refused offer changes nothing at all.
                joined.declared.insert(mid, source);
                Ok(None)
            }
            ClientMessage::Offer { id, sdp } => {
                // The current grants, not the token's: the stage adds and removes sources.
                let grants = joined.grants.borrow().clone();
                if let Some((mid, source)) = joined
                    .declared
                    .iter()
                    .find(|(_, source)| !grants.may_publish(**source))
                {
                    return Err((
                        ErrorCode::Forbidden,
                        format!(
                            "a {} may not publish {source:?} (mid {mid})",
                            joined.claims.role.as_str()
                        ),
                    ));
                }
                let sources: Vec<(String, Source)> = joined
                    .declared
                    .iter()
                    .map(|(mid, source)| (mid.clone(), *source))
                    .collect();
                let answer = self
                    .sfu_call(sfu.publisher_offer(media, sdp, sources))
                    .await
                    .map_err(|e| sfu_error_reply(&e))?;
                Ok(Some(ServerMessage::Answer { id, sdp: answer }))
            }
            ClientMessage::Answer { sdp, .. } => {
                self.sfu_call(sfu.subscriber_answer(media, sdp))
                    .await
                    .map_err(|e| sfu_error_reply(&e))?;
                Ok(None)
            }
            ClientMessage::Unpublish { mid, .. } => {
                joined.declared.remove(&mid);
                self.sfu_call(sfu.unpublish(media, mid))
                    .await
                    .map_err(|e| sfu_error_reply(&e))?;
                Ok(None)
            }
            ClientMessage::SetSubscription {
                publication_id,
                max_layer,
                paused,
                ..
            } => {
                let publication = sfu::PublicationId(publication_id);
                self.sfu_call(sfu.set_subscription(media, publication, max_layer, paused))
                    .await
                    .map_err(|e| sfu_error_reply(&e))?;
                Ok(None)
            }
            // The SFU is ICE-lite: it learns the client's address from the client's own
            // connectivity checks, so trickled candidates carry nothing it needs.
            ClientMessage::Candidate { .. } => Ok(None),
            ClientMessage::Ping { id } => Ok(Some(ServerMessage::Pong { id })),
            ClientMessage::Join { .. } => Err((
                ErrorCode::AlreadyJoined,
                "this socket has already joined".into(),
            )),
            ClientMessage::RaiseHand { .. } => control(self.state.hub.raise_hand(
                joined.lesson,
                pid,
                Timestamp::now(),
            )),
            ClientMessage::LowerHand { participant_id, .. } => control(self.state.hub.lower_hand(
                joined.lesson,
                pid,
                participant_id,
            )),
            ClientMessage::LowerAllHands { .. } => {
                control(self.state.hub.lower_all_hands(joined.lesson, pid))
            }
            ClientMessage::InviteToStage { participant_id, .. } => control(
                self.state
                    .hub
                    .invite_to_stage(joined.lesson, pid, participant_id),
            ),
            ClientMessage::AcceptStage { .. } => {
                control(self.state.hub.accept_stage(joined.lesson, pid))
            }
            ClientMessage::DeclineStage { .. } => {
                control(self.state.hub.decline_stage(joined.lesson, pid))
            }
            ClientMessage::LeaveStage { .. } => {
                control(self.state.hub.leave_stage(joined.lesson, pid, None))
            }
            ClientMessage::RemoveFromStage { participant_id, .. } => control(
                self.state
                    .hub
                    .leave_stage(joined.lesson, pid, Some(participant_id)),
            ),
            ClientMessage::Chat { text, to, .. } => {
                let grants = joined.grants.borrow().clone();
                let audience = chat::audience(&grants, to).map_err(chat_error)?;
                let text = chat::check_text(&text).map_err(chat_error)?.to_owned();
                // Counted only once the message is acceptable, so a refused one costs nothing.
                if !joined.chat_rate.allow(Instant::now()) {
                    return Err(chat_error(ChatError::RateLimited));
                }
                let new = NewChat {
                    lesson: joined.lesson,
                    from: ChatAuthor {
                        id: pid.0,
                        name: joined.claims.name.clone(),
                        role: joined.claims.role,
                    },
                    identity: joined.claims.sub.clone(),
                    audience,
                    text,
                    at: Timestamp::now(),
                };
                let lesson = joined.lesson;
                let message = self.state.store.insert_chat(&new).await.map_err(|e| {
                    tracing::error!(error = %e, "could not store a chat message");
                    (ErrorCode::Internal, "internal error".to_owned())
                })?;
                self.state.hub.chat(lesson, message);
                Ok(None)
            }
            ClientMessage::DeleteChat { message_id, .. } => {
                if !joined.grants.borrow().moderate {
                    return Err((
                        ErrorCode::Forbidden,
                        "only a moderator may delete chat messages".into(),
                    ));
                }
                let lesson = joined.lesson;
                let deleted = self
                    .state
                    .store
                    .delete_chat(lesson, message_id)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "could not delete a chat message");
                        (ErrorCode::Internal, "internal error".to_owned())
                    })?;
                let Some(audience) = deleted else {
                    return Err((
                        ErrorCode::NotFound,
                        format!("this lesson has no chat message {message_id}"),
                    ));
                };
                self.state.hub.chat_deleted(lesson, message_id, audience);
                Ok(None)
            }
            ClientMessage::Mute {
                participant_id,
                source,
                ..
            } => self.mute(participant_id, source, true).await,
            ClientMessage::Unmute {
                participant_id,
                source,
                ..
            } => self.mute(participant_id, source, false).await,
            ClientMessage::Remove { participant_id, .. } => {
                let lesson = joined.lesson;
                let identity = self
                    .state
                    .hub
                    .removal_target(lesson, pid, participant_id)
                    .map_err(|e| (e.code(), e.to_string()))?;
                // Stored first, so that once the others hear of it, it survives a restart.
                self.state
                    .store
                    .insert_removed(lesson, &identity, &joined.claims.sub, Timestamp::now())
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "could not record a removal");
                        (ErrorCode::Internal, "internal error".to_owned())
                    })?;
                self.state.hub.remove(lesson, &identity);
                tracing::info!(lesson, by = %pid, participant = participant_id, "removed");
                Ok(None)
            }
            ClientMessage::EndLesson { .. } => {
                if !joined.grants.borrow().moderate {
                    return Err((
                        ErrorCode::Forbidden,
                        "only a moderator may end the lesson".into(),
                    ));
                }
                // This connection hears `lesson_ended` and closes like everyone else's.
                crate::api::end(&self.state, joined.lesson)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "could not end a lesson");
                        (ErrorCode::Internal, "internal error".to_owned())
                    })?;
                Ok(None)
            }
            ClientMessage::StartRecording { .. } => {
                if !joined.grants.borrow().moderate {
                    return Err((
                        ErrorCode::Forbidden,
                        "only a moderator may start recording".into(),
                    ));
                }
                let lesson_key = joined.lesson;
                let lesson = self
                    .state
                    .store
                    .lesson(lesson_key)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "could not read a lesson");
                        (ErrorCode::Internal, "internal error".to_owned())
                    })?
                    .ok_or_else(|| {
                        (
                            ErrorCode::NoSuchLesson,
                            format!("there is no lesson {lesson_key}"),
                        )
                    })?;
                // Everyone, this moderator included, hears `recording_changed`.
                self.state
                    .recordings
                    .start(&lesson)
                    .await
                    .map(|_| None)
                    .map_err(|e| recording_error_reply(&e))
            }
            ClientMessage::StopRecording { .. } => {
                if !joined.grants.borrow().moderate {
                    return Err((
                        ErrorCode::Forbidden,
                        "only a moderator may stop recording".into(),
                    ));
                }
                let wait = self.state.config.shutdown_deadline;
                self.state
                    .recordings
                    .stop(joined.lesson, wait)
                    .await
                    .map(|()| None)
                    .map_err(|e| recording_error_reply(&e))
            }
        }
    }

    /// A moderator (un)mutes `target`'s publication of `source`: the media plane stops (or
    /// resumes) forwarding it first, then everyone hears of it.
    async fn mute(
        &self,
        target: u64,
        source: Source,
        muted: bool,
    ) -> Result<Option<ServerMessage>, (ErrorCode, String)> {
        let Some(joined) = self.joined.as_ref() else {
            return Err((ErrorCode::NotJoined, "send join first".into()));
        };
        let (lesson, pid) = (joined.lesson, joined.pid);
        let publication = self
            .state
            .hub
            .mute_target(lesson, pid, target, source)
            .map_err(|e| (e.code(), e.to_string()))?;
        let sfu = self.state.sfu.clone();
        self.sfu_call(sfu.set_muted(sfu::PublicationId(publication), muted))
            .await
            .map_err(|e| sfu_error_reply(&e))?;
        control(self.state.hub.set_muted(lesson, pid, target, source, muted))
    }

    /// Brings the media plane in line with the participant's grants after they changed: each
    /// declared track whose source is no longer granted is unpublished (subscribers then get
    /// `publication_removed`) and forgotten, so only a new `publish` + `offer` could bring it
    /// back, and that offer is refused while the grant is missing.
    async fn enforce_grants(&mut self) {
        let Some(joined) = self.joined.as_mut() else {
            return;
        };
        let grants = joined.grants.borrow_and_update().clone();
        let revoked: Vec<String> = joined
            .declared
            .iter()
            .filter(|(_, source)| !grants.may_publish(**source))
            .map(|(mid, _)| mid.clone())
            .collect();
        let media = joined.media;
        for mid in &revoked {
            joined.declared.remove(mid);
        }
        for mid in revoked {
            let sfu = self.state.sfu.clone();
            // A track declared but never offered is unknown to the media plane; nothing to stop.
            if let Err(e) = self.sfu_call(sfu.unpublish(media, mid.clone())).await {
                tracing::debug!(error = %e, mid, "unpublishing a revoked track");
            }
        }
    }

    /// Awaits a media-plane request, bounded so a stuck media plane cannot stall signaling.
    async fn sfu_call<T>(
        &self,
        call: impl Future<Output = Result<T, SfuError>>,
    ) -> Result<T, SfuError> {
        tokio::time::timeout(self.state.config.sfu_request_timeout, call)
            .await
            .unwrap_or(Err(SfuError::Overloaded))
    }

    /// Leaves the lesson and the media plane, tells the others, and closes the socket.
    async fn finish(mut self, end: End, sink: &mut SplitSink<WebSocket, Message>) {
        if let Some(joined) = self.joined.take() {
            joined.sfu_events.abort();
            // Bounded: a stuck media plane must not keep the socket task alive.
            let _ = tokio::time::timeout(
                self.state.config.sfu_request_timeout,
                self.state.sfu.leave(joined.media),
            )
            .await;
            let hub = self.state.hub.clone();
            let (lesson, pid, connection) = (joined.lesson, joined.pid, joined.media.0);
            let reason = match end {
                End::Closed | End::ServerShutdown => Some(LeaveReason::Left),
                End::Removed => Some(LeaveReason::Removed),
                End::TooSlow | End::JoinTimeout | End::LessonEnded => Some(LeaveReason::Vanished),
                // It did not say goodbye: it keeps its place for a while.
                End::Vanished | End::GoingAway => None,
                // The hub already gave the seat to the newer connection.
                End::Replaced => None,
            };
            match reason {
                // After a kick the hub has already removed it; this is then a no-op.
                Some(reason) => {
                    hub.leave(lesson, pid, connection, reason);
                    tracing::info!(lesson, id = %pid, ?end, "left");
                }
                None if end != End::Replaced && hub.suspend(lesson, pid, connection) => {
                    tracing::info!(lesson, id = %pid, ?end, "away; keeping its place");
                    let grace = self.state.config.reconnect_grace;
                    // Not tracked for shutdown: the process ending ends the wait with it.
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        if hub.expire(lesson, pid, connection) {
                            tracing::info!(lesson, id = %pid, "did not come back in time; left");
                        }
                    });
                }
                None => tracing::info!(lesson, id = %pid, ?end, "connection closed"),
            }
        }

        let (code, why) = match end {
            // Flushes the close reply the WebSocket layer queued on the client's close frame.
            End::Closed | End::GoingAway => {
                let _ = tokio::time::timeout(FLUSH_ON_CLOSE, sink.close()).await;
                return;
            }
            End::Vanished => return,
            // Not POLICY: the page must know not to reconnect and take the seat back.
            End::Replaced => (CLOSE_REPLACED, "this invite joined again from another page"),
            End::TooSlow => (close_code::POLICY, "too slow to follow the lesson"),
            End::LessonEnded => (close_code::NORMAL, "the lesson has ended"),
            End::Removed => (close_code::POLICY, "removed from the lesson by a moderator"),
            End::JoinTimeout => (close_code::POLICY, "no join in time"),
            End::ServerShutdown => (close_code::AWAY, "the server is shutting down"),
        };
        let flush = async {
            // What was queued before the end (e.g. `lesson_ended`) still goes out, unless the
            // end was the queue being full.
            if end != End::TooSlow {
                while let Ok(message) = self.outbox_rx.try_recv() {
                    if !self.write(sink, message).await {
                        return;
                    }
                }
            }
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(why),
                })))
                .await;
        };
        let _ = tokio::time::timeout(FLUSH_ON_CLOSE, flush).await;
    }
}

/// Resolves when the hub changes the participant's grants; never, before it has joined or
/// once the hub has let it go.
async fn grants_changed(grants: Option<&mut watch::Receiver<Grants>>) {
    let Some(grants) = grants else {
        return std::future::pending().await;
    };
    if grants.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A hand or stage request's outcome as a reply: these have none on success (everyone
/// concerned, the sender included, hears of the change).
fn control(done: Result<(), ControlError>) -> Result<Option<ServerMessage>, (ErrorCode, String)> {
    done.map(|()| None).map_err(|e| (e.code(), e.to_string()))
}

fn removed_error(lesson: LessonKey) -> (ErrorCode, String) {
    (
        ErrorCode::Removed,
        format!("a moderator removed this invite from lesson {lesson}"),
    )
}

fn chat_error(e: ChatError) -> (ErrorCode, String) {
    (e.code(), e.to_string())
}

/// Resolves when the hub kicks the connection; never, before it has joined.
async fn kicked(kick: Option<&mut watch::Receiver<Option<Kick>>>) -> Kick {
    let Some(kick) = kick else {
        return std::future::pending().await;
    };
    loop {
        if let Some(k) = *kick.borrow_and_update() {
            return k;
        }
        if kick.changed().await.is_err() {
            // The hub dropped the member without a kick (it left on its own): nothing to wait
            // for any more.
            return std::future::pending().await;
        }
    }
}

fn sfu_error_reply(e: &SfuError) -> (ErrorCode, String) {
    match e {
        SfuError::BadSdp(_) | SfuError::KindMismatch(_) => (ErrorCode::BadSdp, e.to_string()),
        SfuError::NoSuchSubscription { .. } | SfuError::NoSuchPublication(_) => {
            (ErrorCode::NotFound, e.to_string())
        }
        SfuError::NoPendingOffer | SfuError::AlreadyJoined(_) => {
            (ErrorCode::Conflict, e.to_string())
        }
        SfuError::Overloaded | SfuError::Closed => (
            ErrorCode::Unavailable,
            "the media server is unavailable; try again".into(),
        ),
        _ => {
            tracing::error!(error = %e, "media plane request failed");
            (ErrorCode::Internal, "internal error".into())
        }
    }
}

fn recording_error_reply(e: &RecordingError) -> (ErrorCode, String) {
    match e {
        RecordingError::AlreadyRecording(_) | RecordingError::NotRecording(_) => {
            (ErrorCode::Conflict, e.to_string())
        }
        RecordingError::LessonEnded(_) => (ErrorCode::LessonEnded, e.to_string()),
        RecordingError::Sfu(_) | RecordingError::Timeout => (
            ErrorCode::Unavailable,
            "the recorder is unavailable; try again".into(),
        ),
        // The disk: the operator has to act; the moderator is told what happened.
        RecordingError::Recorder(inner) => {
            tracing::error!(error = %e, "could not start a recording");
            (ErrorCode::Unavailable, format!("cannot record: {inner}"))
        }
        RecordingError::Store(_) => {
            tracing::error!(error = %e, "recording request failed");
            (ErrorCode::Internal, "internal error".into())
        }
    }
}

/// Turns one participant's media-plane events into lesson messages.
async fn relay_sfu_events(
    state: AppState,
    lesson: LessonKey,
    pid: ParticipantId,
    media: ParticipantId,
    mut events: mpsc::Receiver<SfuEvent>,
) {
    while let Some(event) = events.recv().await {
        match event {
            SfuEvent::SubscriberOffer { sdp, tracks } => {
                let tracks = tracks
                    .into_iter()
                    .map(|t| TrackMapping {
                        mid: t.mid,
                        publication_id: t.publication.0,
                    })
                    .collect();
                state
                    .hub
                    .send_to(lesson, pid, ServerMessage::Offer { sdp, tracks });
            }
            SfuEvent::PublicationStarted {
                publication,
                source,
                kind,
            } => {
                let info = PublicationInfo {
                    id: publication.0,
                    participant_id: pid.0,
                    source,
                    kind,
                };
                // A moderator muted this source before: the new publication stays muted.
                // (Its first packets may pass before the media plane hears of it.)
                if state.hub.add_publication(lesson, media.0, info) {
                    let muting = state.sfu.set_muted(publication, true);
                    match tokio::time::timeout(state.config.sfu_request_timeout, muting).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "could not keep a source muted"),
                        Err(_) => tracing::warn!("could not keep a source muted: timed out"),
                    }
                }
            }
            SfuEvent::PublicationEnded { publication } => {
                state.hub.remove_publication(lesson, publication.0)
            }
            SfuEvent::Quality {
                publishing,
                receiving,
            } => {
                state.metrics.observe_quality(&publishing, &receiving);
                let message = ServerMessage::Quality {
                    publishing: publishing.iter().map(Into::into).collect(),
                    receiving: receiving.iter().map(Into::into).collect(),
                };
                state.hub.send_to(lesson, pid, message);
            }
            SfuEvent::PeerStateChanged { leg, state: peer } => {
                let leg = match leg {
                    PeerLeg::Publisher => "publisher",
                    PeerLeg::Subscriber => "subscriber",
                };
                let peer_state = match peer {
                    PeerState::Connected => "connected",
                    PeerState::Disconnected => "disconnected",
                    PeerState::Failed => "failed",
                };
                state
                    .metrics
                    .peer_state_changes
                    .with_label_values(&[leg, peer_state])
                    .inc();
                tracing::info!(leg, state = peer_state, "media connection state changed");
            }
        }
    }
}

/// A token bucket over incoming messages: `rate` per second sustained, bursts of `2 × rate`.
/// Time is passed in, so it is tested without a clock.
struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// When the client was last told it is being limited; once a second is enough.
    last_told: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allow,
    Drop,
    DropAndTell,
}

impl RateLimit {
    fn new(per_second: u32, now: Instant) -> RateLimit {
        let rate = f64::from(per_second);
        RateLimit {
            rate,
            burst: rate * 2.0,
            tokens: rate * 2.0,
            last: now,
            last_told: None,
        }
    }

    fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        match self.last_told {
            Some(t) if now.saturating_duration_since(t) < Duration::from_secs(1) => Verdict::Drop,
            _ => {
                self.last_told = Some(now);
                Verdict::DropAndTell
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_bursts_then_refills() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(10, t0);
        for _ in 0..20 {
            assert_eq!(limit.check(t0), Verdict::Allow);
        }
        assert_eq!(limit.check(t0), Verdict::DropAndTell);
        assert_eq!(limit.check(t0), Verdict::Drop); // told once a second at most
        let t1 = t0 + Duration::from_millis(500); // five tokens back
        for _ in 0..5 {
            assert_eq!(limit.check(t1), Verdict::Allow);
        }
        assert_eq!(limit.check(t1), Verdict::Drop);
        assert_eq!(
            limit.check(t0 + Duration::from_millis(1600)),
            Verdict::Allow
        );
    }
}
