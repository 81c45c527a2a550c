//! The WebSocket signaling endpoint `/ws` (DESIGN §5): one task per connection. This module
//! owns the connection itself — the upgrade, the loop that reads, writes, pings and watches
//! for kicks, the dispatch of each request to its family, and the close — and the modules
//! under it own the rest:
//!
//! - [`join`] — `join`: token and lesson checks, the media plane, then the seat; [`Joined`].
//! - [`media`] — publishing, offers and answers, subscriptions; grants taken away;
//!   [`media_session`] — the connection's place in the media plane, and the limit on calls.
//! - [`stage`] — hands and the stage; [`moderation`] — mutes and removals; [`chat`];
//!   [`lesson`] — ending the lesson, recording.
//! - [`relay`] — the media plane's events for the participant, relayed by a task of their own.
//! - [`error`] — [`RequestError`], and the wire `error` each becomes; [`rate_limit`].
//!
//! A connection first has to `join` with a token (within `join_timeout`); until then every
//! other request gets `not_joined`. Once joined it is a participant: the task relays its
//! requests, writes the messages the hub queues for it, pings it, and removes it when it
//! closes, goes silent past `liveness_timeout`, falls behind, or its lesson ends. Bad input is
//! answered with an `error` and the connection goes on; only frames over `max_message_bytes`
//! end it (the WebSocket layer refuses them).
//!
//! Hands, the stage and chat are checked against the participant's *current* grants, which the
//! hub publishes on a `watch`: when the stage takes sources away, this task stops the
//! publications that carried them (whoever made the change) and refuses later offers for them.

mod chat;
mod error;
mod join;
mod lesson;
mod media;
mod media_session;
mod moderation;
mod rate_limit;
mod relay;
mod stage;

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use self::error::RequestError;
use self::join::Joined;
use self::rate_limit::{RateLimit, Verdict};
use crate::domain::grants::Grants;
use crate::domain::lesson::LessonKey;
use crate::live::Kick;
use crate::protocol::{ClientMessage, LeaveReason, ServerMessage, parse_client_message};
use crate::state::AppState;

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
                () = regranted => {
                    if let Some(joined) = self.joined.as_mut() {
                        joined.enforce_grants(&self.state).await;
                    }
                }
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
                            if self.refuse(None, "binary", RequestError::BinaryFrame).is_err() {
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

    /// Answers request `id` (of type `request`) with the `error` that `refusal` becomes: the
    /// one place a request error reaches the wire.
    fn refuse(
        &self,
        id: Option<String>,
        request: &str,
        refusal: RequestError,
    ) -> Result<(), QueueFull> {
        let (code, message) = refusal.wire(request);
        self.state.metrics.error_sent(code);
        self.reply(ServerMessage::Error { id, code, message })
    }

    /// Handles one text frame. Only a full queue ends the connection.
    async fn on_text(&mut self, text: &str) -> Result<(), QueueFull> {
        match self.limiter.check(Instant::now()) {
            Verdict::Allow => {}
            Verdict::Drop => return Ok(()),
            Verdict::DropAndTell => return self.refuse(None, "any", RequestError::RateLimited),
        }
        let message = match parse_client_message(text) {
            Ok(message) => message,
            Err(e) => {
                self.state
                    .metrics
                    .ws_messages_in
                    .with_label_values(&["invalid"])
                    .inc();
                return self.refuse(e.id.clone(), "invalid", RequestError::Parse(e));
            }
        };
        let kind = message.kind();
        self.state
            .metrics
            .ws_messages_in
            .with_label_values(&[kind])
            .inc();
        let id = message.id().map(str::to_owned);
        let done = match message {
            // A keepalive is harmless before joining; answering it lets a page check the
            // socket before it has a token.
            ClientMessage::Ping { id } => Ok(Some(ServerMessage::Pong { id })),
            ClientMessage::Join { id, token, lesson } => self.join(id, &token, lesson).await,
            message => self.on_request(message).await,
        };
        match done {
            Ok(Some(reply)) => self.reply(reply),
            Ok(None) => Ok(()),
            Err(refusal) => self.refuse(id, kind, refusal),
        }
    }

    /// Joins the lesson the token names (see [`join`]); the hub then sends `joined`.
    async fn join(
        &mut self,
        id: Option<String>,
        token: &str,
        wanted: Option<LessonKey>,
    ) -> Result<Option<ServerMessage>, RequestError> {
        if self.joined.is_some() {
            return Err(RequestError::AlreadyJoined);
        }
        let joined = Joined::join(&self.state, &self.outbox_tx, id, token, wanted).await?;
        self.joined = Some(joined);
        Ok(None)
    }

    /// Hands a joined participant's request to its family; `Ok(Some)` is the reply to queue.
    async fn on_request(
        &mut self,
        message: ClientMessage,
    ) -> Result<Option<ServerMessage>, RequestError> {
        let Some(joined) = self.joined.as_mut() else {
            return Err(RequestError::NotJoined);
        };
        let state = &self.state;
        match message {
            ClientMessage::Ping { id } => Ok(Some(ServerMessage::Pong { id })),
            ClientMessage::Join { .. } => Err(RequestError::AlreadyJoined),
            ClientMessage::Publish { mid, source, .. } => joined.publish(mid, source).map(none),
            ClientMessage::Offer { id, sdp } => joined.offer(state, id, sdp).await.map(Some),
            ClientMessage::Answer { sdp, .. } => joined.answer(state, sdp).await.map(none),
            ClientMessage::Unpublish { mid, .. } => joined.unpublish(state, mid).await.map(none),
            ClientMessage::SetSubscription {
                publication_id,
                max_layer,
                paused,
                ..
            } => joined
                .set_subscription(state, publication_id, max_layer, paused)
                .await
                .map(none),
            // The SFU is ICE-lite: it learns the client's address from the client's own
            // connectivity checks, so trickled candidates carry nothing it needs.
            ClientMessage::Candidate { .. } => Ok(None),
            ClientMessage::RaiseHand { .. } => joined.raise_hand(state).map(none),
            ClientMessage::LowerHand { participant_id, .. } => {
                joined.lower_hand(state, participant_id).map(none)
            }
            ClientMessage::LowerAllHands { .. } => joined.lower_all_hands(state).map(none),
            ClientMessage::InviteToStage { participant_id, .. } => {
                joined.invite_to_stage(state, participant_id).map(none)
            }
            ClientMessage::AcceptStage { .. } => joined.accept_stage(state).map(none),
            ClientMessage::DeclineStage { .. } => joined.decline_stage(state).map(none),
            ClientMessage::LeaveStage { .. } => joined.leave_stage(state, None).map(none),
            ClientMessage::RemoveFromStage { participant_id, .. } => {
                joined.leave_stage(state, Some(participant_id)).map(none)
            }
            ClientMessage::Chat { text, to, .. } => joined.chat(state, &text, to).await.map(none),
            ClientMessage::DeleteChat { message_id, .. } => {
                joined.delete_chat(state, message_id).await.map(none)
            }
            ClientMessage::Mute {
                participant_id,
                source,
                ..
            } => joined
                .mute(state, participant_id, source, true)
                .await
                .map(none),
            ClientMessage::Unmute {
                participant_id,
                source,
                ..
            } => joined
                .mute(state, participant_id, source, false)
                .await
                .map(none),
            ClientMessage::Remove { participant_id, .. } => {
                joined.remove(state, participant_id).await.map(none)
            }
            ClientMessage::EndLesson { .. } => joined.end_lesson(state).await.map(none),
            ClientMessage::StartRecording { .. } => joined.start_recording(state).await.map(none),
            ClientMessage::StopRecording { .. } => joined.stop_recording(state).await.map(none),
        }
    }

    /// Leaves the lesson and the media plane, tells the others, and closes the socket.
    async fn finish(mut self, end: End, sink: &mut SplitSink<WebSocket, Message>) {
        if let Some(joined) = self.joined.take() {
            joined.sfu_events.abort();
            let (lesson, pid, connection) = (joined.lesson, joined.pid, joined.media.id().0);
            // Bounded: a stuck media plane must not keep the socket task alive.
            joined
                .media
                .leave(self.state.config.sfu_request_timeout)
                .await;
            let hub = self.state.hub.clone();
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

/// A request done with no reply of its own (those concerned hear of it as lesson messages).
fn none(_: ()) -> Option<ServerMessage> {
    None
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
