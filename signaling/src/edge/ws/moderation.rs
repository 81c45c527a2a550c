//! A moderator's requests about other participants: muting and unmuting a source, and
//! removing a participant from the lesson for good.

use sfu::{PublicationId, Source};

use super::error::RequestError;
use super::join::Joined;
use super::media_session::bounded;
use crate::domain::timestamp::Timestamp;
use crate::state::AppState;

impl Joined {
    /// (Un)mutes `target`'s publication of `source`: the media plane stops (or resumes)
    /// forwarding it first, then everyone hears of it.
    pub(super) async fn mute(
        &self,
        state: &AppState,
        target: u64,
        source: Source,
        muted: bool,
    ) -> Result<(), RequestError> {
        let publication = state
            .hub
            .mute_target(self.lesson, self.pid, target, source)?;
        let call = state.sfu.set_muted(PublicationId(publication), muted);
        bounded(state.config.sfu_request_timeout, call).await?;
        Ok(state
            .hub
            .set_muted(self.lesson, self.pid, target, source, muted)?)
    }

    /// Removes `target` from the lesson: its invite may not join again.
    pub(super) async fn remove(&self, state: &AppState, target: u64) -> Result<(), RequestError> {
        let identity = state.hub.removal_target(self.lesson, self.pid, target)?;
        // Stored first, so that once the others hear of it, it survives a restart.
        state
            .store
            .insert_removed(self.lesson, &identity, &self.claims.sub, Timestamp::now())
            .await?;
        state.hub.remove(self.lesson, &identity);
        tracing::info!(lesson = self.lesson, by = %self.pid, participant = target, "removed");
        Ok(())
    }
}
