//! One connection's place in the media plane ([`MediaSession`]), which leaves again when
//! dropped, and [`bounded`], the time limit on every media-plane call made from `/ws`.

use std::future::Future;
use std::time::Duration;

use sfu::{LessonId, ParticipantId, SfuError, SfuEvent, SfuHandle};
use tokio::sync::mpsc;

/// One connection's participant in the media plane, from a successful join until
/// [`MediaSession::leave`]. Dropped without leaving — a join refused after the media plane
/// took it, or a task that ended early — it leaves by itself.
pub(super) struct MediaSession {
    sfu: SfuHandle,
    id: ParticipantId,
    left: bool,
}

impl MediaSession {
    /// Joins `lesson`'s media as a new participant whose events go to `events`.
    pub(super) async fn join(
        sfu: &SfuHandle,
        lesson: LessonId,
        events: mpsc::Sender<SfuEvent>,
        within: Duration,
    ) -> Result<MediaSession, SfuError> {
        // The media plane numbers connections (and taps) itself, unique in the process.
        let id = sfu.new_participant_id();
        bounded(within, sfu.join(lesson, id, events)).await?;
        Ok(MediaSession {
            sfu: sfu.clone(),
            id,
            left: false,
        })
    }

    pub(super) fn id(&self) -> ParticipantId {
        self.id
    }

    /// Leaves the media plane, waiting at most `within`: a stuck media plane must not keep
    /// the socket task alive.
    pub(super) async fn leave(mut self, within: Duration) {
        self.left = true;
        let _ = tokio::time::timeout(within, self.sfu.leave(self.id)).await;
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        // Drop cannot wait; the media plane's command queue takes the leave shortly after.
        // Outside a runtime (never, in the server) there is nothing left to tell.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (sfu, id) = (self.sfu.clone(), self.id);
            runtime.spawn(async move { sfu.leave(id).await });
        }
    }
}

/// Awaits a media-plane request for at most `within`, so a stuck media plane cannot stall
/// signaling.
pub(super) async fn bounded<T>(
    within: Duration,
    call: impl Future<Output = Result<T, SfuError>>,
) -> Result<T, SfuError> {
    tokio::time::timeout(within, call)
        .await
        .unwrap_or(Err(SfuError::Overloaded))
}
