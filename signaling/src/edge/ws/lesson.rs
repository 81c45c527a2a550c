//! A moderator's requests about the whole lesson: ending it (through the one service the REST
//! API uses too) and starting or stopping its recording. Everyone, the moderator included,
//! hears the outcome as `lesson_ended` or `recording_changed`.

use super::error::{Refusal, RequestError};
use super::join::Joined;
use crate::services::lessons;
use crate::state::AppState;

impl Joined {
    fn require_moderator(&self, to: &'static str) -> Result<(), RequestError> {
        if self.grants.borrow().moderate {
            Ok(())
        } else {
            Err(Refusal::NotModerator(to).into())
        }
    }

    /// Ends the lesson for everyone; this connection hears `lesson_ended` and closes like
    /// everyone else's.
    pub(super) async fn end_lesson(&self, state: &AppState) -> Result<(), RequestError> {
        self.require_moderator("end the lesson")?;
        lessons::end(&state.store, &state.hub, &state.recordings, self.lesson).await?;
        Ok(())
    }

    pub(super) async fn start_recording(&self, state: &AppState) -> Result<(), RequestError> {
        self.require_moderator("start recording")?;
        let lesson = state
            .store
            .lesson(self.lesson)
            .await?
            .ok_or(RequestError::NoSuchLesson(self.lesson))?;
        state.recordings.start(&lesson).await?;
        Ok(())
    }

    pub(super) async fn stop_recording(&self, state: &AppState) -> Result<(), RequestError> {
        self.require_moderator("stop recording")?;
        let wait = state.config.shutdown_deadline;
        Ok(state.recordings.stop(self.lesson, wait).await?)
    }
}
