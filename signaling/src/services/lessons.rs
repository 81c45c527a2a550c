//! A lesson's life as a service over the store, the live lessons and the recordings: ending
//! it for everyone. The HTTP and WebSocket edges both call here, so a lesson ends the same way
//! whoever ends it.

use std::time::Duration;

use crate::domain::lesson::{Lesson, LessonKey};
use crate::domain::timestamp::Timestamp;
use crate::live::Hub;
use crate::services::recording::{RecordingError, Recordings};
use crate::store::{Store, StoreError};

/// How long ending a lesson waits for its recording to be sealed.
const RECORDING_STOP_WAIT: Duration = Duration::from_secs(10);

/// Ends lesson `id` for everyone: marks it ended in the store, then tells every participant
/// and closes their sockets. `None` if there is no such lesson. The REST call and a
/// moderator's `end_lesson` over the WebSocket both end a lesson through here, and only here.
pub async fn end(
    store: &Store,
    hub: &Hub,
    recordings: &Recordings,
    id: LessonKey,
) -> Result<Option<Lesson>, StoreError> {
    let Some(lesson) = store.end_lesson(id, Timestamp::now()).await? else {
        return Ok(None);
    };
    hub.end_lesson(id);
    tracing::info!(lesson = id, "lesson ended");
    // The recording is sealed before the caller hears the lesson ended, so the library has
    // it complete by then.
    match recordings.stop(id, RECORDING_STOP_WAIT).await {
        Ok(()) | Err(RecordingError::NotRecording(_)) => {}
        Err(e) => tracing::error!(lesson = id, error = %e, "could not stop the recording"),
    }
    Ok(Some(lesson))
}
