//! `join`: a connection becomes a participant. The token and the lesson are checked, then the
//! connection takes its place in the media plane (a [`MediaSession`]) and then its seat in the
//! lesson. The media session leaves the media plane by itself when dropped, so a join refused
//! after it was taken needs no undoing by hand. Also [`Joined`], the participant's state on
//! its connection from then on.

use std::collections::BTreeMap;

use sfu::{LessonId, ParticipantId, Source};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::error::RequestError;
use super::media_session::MediaSession;
use super::relay::relay_sfu_events;
use crate::domain::chat::{CHAT_HISTORY, ChatRate};
use crate::domain::grants::Grants;
use crate::domain::lesson::{LessonKey, LessonState};
use crate::domain::role::Role;
use crate::domain::timestamp::Timestamp;
use crate::live::{HubJoinError, Kick, Member};
use crate::protocol::{LessonSnapshot, ParticipantInfo, ServerMessage};
use crate::state::AppState;
use crate::token::Claims;

/// Capacity of one participant's SFU event queue. Events are rare (an offer per change in the
/// lesson's publications); the SFU drops and counts past this.
const SFU_EVENT_QUEUE: usize = 256;

/// A joined participant's state on its connection.
pub(super) struct Joined {
    pub(super) lesson: LessonKey,
    /// Its id in the lesson, which survives reconnects.
    pub(super) pid: ParticipantId,
    /// Its place in the media plane, new with every connection; its id also names this
    /// connection to the hub, so a replaced connection closing late cannot touch its
    /// successor's seat.
    pub(super) media: MediaSession,
    pub(super) claims: Claims,
    /// `mid → source` from the client's `publish` messages, sent with every publisher offer.
    pub(super) declared: BTreeMap<String, Source>,
    pub(super) kick: watch::Receiver<Option<Kick>>,
    /// Its current grants, kept by the hub (the token's, plus the stage's while on stage).
    pub(super) grants: watch::Receiver<Grants>,
    pub(super) chat_rate: ChatRate,
    pub(super) sfu_events: JoinHandle<()>,
}

impl Joined {
    /// Checks the token and the lesson, then joins the media plane and the lesson's room as
    /// request `id`; the hub queues the participant's messages on `outbox`.
    pub(super) async fn join(
        state: &AppState,
        outbox: &mpsc::Sender<ServerMessage>,
        id: Option<String>,
        token: &str,
        wanted: Option<LessonKey>,
    ) -> Result<Joined, RequestError> {
        let claims = state.keys.verify(token, wanted)?;
        let lesson_key = claims.lesson;
        if state.store.is_removed(lesson_key, &claims.sub).await? {
            return Err(RequestError::Removed(lesson_key));
        }
        let mut lesson = state
            .store
            .lesson(lesson_key)
            .await?
            .ok_or(RequestError::NoSuchLesson(lesson_key))?;
        if lesson.state == LessonState::Ended {
            return Err(RequestError::LessonEnded(lesson_key));
        }
        let sfu_lesson = u64::try_from(lesson_key)
            .map(LessonId)
            .map_err(|_| RequestError::NoSuchLesson(lesson_key))?;

        // The media plane first: a seat is what the others see, so it is taken last, when
        // nothing else can fail. Every `?` from here on drops `media`, which leaves again.
        let (events_tx, events_rx) = mpsc::channel(SFU_EVENT_QUEUE);
        let media = MediaSession::join(
            &state.sfu,
            sfu_lesson,
            events_tx,
            state.config.sfu_request_timeout,
        )
        .await?;

        // The teacher arriving is what makes a scheduled lesson live.
        let mut went_live = false;
        if claims.role == Role::Teacher
            && lesson.state == LessonState::Scheduled
            && let Some(started) = state
                .store
                .start_lesson(lesson_key, Timestamp::now())
                .await?
        {
            went_live = started.state == LessonState::Live;
            lesson = started;
        }

        // Read before joining the hub: a message sent in between may then arrive twice (history
        // and live), which clients drop by id, but none is lost.
        let history = state
            .store
            .chat_history(lesson_key, claims.grants.reads_observers(), CHAT_HISTORY)
            .await?;

        let (kick_tx, kick_rx) = watch::channel(None);
        let (grants_tx, grants_rx) = watch::channel(claims.grants.clone());
        // A newcomer's proposed id; one coming back gets its old id from the hub.
        let info = ParticipantInfo {
            id: media.id().0,
            name: claims.name.clone(),
            role: claims.role,
        };
        let member = Member {
            info,
            identity: claims.sub.clone(),
            connection: media.id().0,
            base_grants: claims.grants.clone(),
            grants: grants_tx,
            outbox: outbox.clone(),
            kick: kick_tx,
        };
        let pid = state
            .hub
            .join(
                &LessonSnapshot::from(&lesson),
                lesson.mode,
                id,
                member,
                history,
            )
            .map_err(|e| match e {
                // Said with the lesson's id, as the same refusals before the seat are.
                HubJoinError::LessonEnded => RequestError::LessonEnded(lesson_key),
                HubJoinError::Removed => RequestError::Removed(lesson_key),
                other => RequestError::Seat(other),
            })?;

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
            relay_sfu_events(state.clone(), lesson_key, pid, media.id(), events_rx)
                .instrument(span),
        );
        Ok(Joined {
            lesson: lesson_key,
            pid,
            media,
            claims,
            declared: BTreeMap::new(),
            kick: kick_rx,
            grants: grants_rx,
            chat_rate: ChatRate::default(),
            sfu_events,
        })
    }
}
