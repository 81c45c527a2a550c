//! A joined participant's media requests — `publish`, `offer`, `answer`, `unpublish`,
//! `set_subscription` — relayed to the media plane, and bringing its publications in line with
//! its grants when the stage takes sources away.

use sfu::{Layer, PublicationId, Source};

use super::error::{Refusal, RequestError};
use super::join::Joined;
use super::media_session::bounded;
use crate::protocol::ServerMessage;
use crate::state::AppState;

/// The most `publish` declarations one participant may hold (four sources, renegotiations).
const MAX_DECLARED_TRACKS: usize = 32;
/// The longest transceiver `mid` accepted; browsers use short decimal strings.
const MAX_MID_LEN: usize = 64;

impl Joined {
    /// Declares which source the transceiver `mid` will carry. Grants are checked when the
    /// offer that carries the track arrives, so a refused offer changes nothing at all.
    pub(super) fn publish(&mut self, mid: String, source: Source) -> Result<(), RequestError> {
        if mid.is_empty() || mid.len() > MAX_MID_LEN {
            return Err(RequestError::BadMessage(format!(
                "mid must be 1 to {MAX_MID_LEN} bytes"
            )));
        }
        if self.declared.len() >= MAX_DECLARED_TRACKS && !self.declared.contains_key(&mid) {
            return Err(RequestError::BadMessage(format!(
                "at most {MAX_DECLARED_TRACKS} tracks may be declared"
            )));
        }
        self.declared.insert(mid, source);
        Ok(())
    }

    /// The publisher connection's offer, checked against the current grants (not the
    /// token's: the stage adds and removes sources); the reply is the media plane's answer.
    pub(super) async fn offer(
        &self,
        state: &AppState,
        id: Option<String>,
        sdp: String,
    ) -> Result<ServerMessage, RequestError> {
        let grants = self.grants.borrow().clone();
        if let Some((mid, source)) = self
            .declared
            .iter()
            .find(|(_, source)| !grants.may_publish(**source))
        {
            return Err(Refusal::Publish {
                role: self.claims.role,
                what: *source,
                mid: mid.clone(),
            }
            .into());
        }
        let sources: Vec<(String, Source)> = self
            .declared
            .iter()
            .map(|(mid, source)| (mid.clone(), *source))
            .collect();
        let call = state.sfu.publisher_offer(self.media.id(), sdp, sources);
        let answer = bounded(state.config.sfu_request_timeout, call).await?;
        Ok(ServerMessage::Answer { id, sdp: answer })
    }

    /// The subscriber connection's answer to the media plane's last offer.
    pub(super) async fn answer(&self, state: &AppState, sdp: String) -> Result<(), RequestError> {
        let call = state.sfu.subscriber_answer(self.media.id(), sdp);
        Ok(bounded(state.config.sfu_request_timeout, call).await?)
    }

    pub(super) async fn unpublish(
        &mut self,
        state: &AppState,
        mid: String,
    ) -> Result<(), RequestError> {
        self.declared.remove(&mid);
        let call = state.sfu.unpublish(self.media.id(), mid);
        Ok(bounded(state.config.sfu_request_timeout, call).await?)
    }

    /// How much of one video publication this participant wants (a small tile needs no high
    /// layer), or that it wants it paused.
    pub(super) async fn set_subscription(
        &self,
        state: &AppState,
        publication: u64,
        max_layer: Layer,
        paused: bool,
    ) -> Result<(), RequestError> {
        let call = state.sfu.set_subscription(
            self.media.id(),
            PublicationId(publication),
            max_layer,
            paused,
        );
        Ok(bounded(state.config.sfu_request_timeout, call).await?)
    }

    /// Brings the media plane in line with the participant's grants after they changed: each
    /// declared track whose source is no longer granted is unpublished (subscribers then get
    /// `publication_removed`) and forgotten, so only a new `publish` + `offer` could bring it
    /// back, and that offer is refused while the grant is missing.
    pub(super) async fn enforce_grants(&mut self, state: &AppState) {
        let grants = self.grants.borrow_and_update().clone();
        let revoked: Vec<String> = self
            .declared
            .iter()
            .filter(|(_, source)| !grants.may_publish(**source))
            .map(|(mid, _)| mid.clone())
            .collect();
        for mid in &revoked {
            self.declared.remove(mid);
        }
        for mid in revoked {
            let call = state.sfu.unpublish(self.media.id(), mid.clone());
            // A track declared but never offered is unknown to the media plane; nothing to stop.
            if let Err(e) = bounded(state.config.sfu_request_timeout, call).await {
                tracing::debug!(error = %e, mid, "unpublishing a revoked track");
            }
        }
    }
}
