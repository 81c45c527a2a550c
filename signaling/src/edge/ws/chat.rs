//! A joined participant's chat requests: sending a message (checked against its current
//! grants and its rate, stored, then fanned out) and, for moderators, deleting one.

use tokio::time::Instant;

use super::error::{Refusal, RequestError};
use super::join::Joined;
use crate::domain::chat::{self, ChatAudience, ChatAuthor, ChatError};
use crate::domain::timestamp::Timestamp;
use crate::state::AppState;
use crate::store::NewChat;

impl Joined {
    pub(super) async fn chat(
        &mut self,
        state: &AppState,
        text: &str,
        to: Option<ChatAudience>,
    ) -> Result<(), RequestError> {
        let grants = self.grants.borrow().clone();
        let audience = chat::audience(&grants, to)?;
        let text = chat::check_text(text)?.to_owned();
        // Counted only once the message is acceptable, so a refused one costs nothing.
        if !self.chat_rate.allow(Instant::now()) {
            return Err(ChatError::RateLimited.into());
        }
        let new = NewChat {
            lesson: self.lesson,
            from: ChatAuthor {
                id: self.pid.0,
                name: self.claims.name.clone(),
                role: self.claims.role,
            },
            identity: self.claims.sub.clone(),
            audience,
            text,
            at: Timestamp::now(),
        };
        let message = state.store.insert_chat(&new).await?;
        state.hub.chat(self.lesson, message);
        Ok(())
    }

    pub(super) async fn delete_chat(
        &self,
        state: &AppState,
        message_id: i64,
    ) -> Result<(), RequestError> {
        if !self.grants.borrow().moderate {
            return Err(Refusal::NotModerator("delete chat messages").into());
        }
        let audience = state
            .store
            .delete_chat(self.lesson, message_id)
            .await?
            .ok_or(RequestError::NoSuchChatMessage(message_id))?;
        state.hub.chat_deleted(self.lesson, message_id, audience);
        Ok(())
    }
}
