//! A joined participant's hand and stage requests: raising and lowering hands, inviting to
//! the stage, accepting or declining, leaving or being taken off it. The lesson decides; none
//! has a reply of its own, since everyone concerned, the sender included, hears of the change.

use super::error::RequestError;
use super::join::Joined;
use crate::domain::timestamp::Timestamp;
use crate::state::AppState;

impl Joined {
    pub(super) fn raise_hand(&self, state: &AppState) -> Result<(), RequestError> {
        Ok(state
            .hub
            .raise_hand(self.lesson, self.pid, Timestamp::now())?)
    }

    /// Lowers `target`'s hand (`None`: its own); only a moderator lowers another's.
    pub(super) fn lower_hand(
        &self,
        state: &AppState,
        target: Option<u64>,
    ) -> Result<(), RequestError> {
        Ok(state.hub.lower_hand(self.lesson, self.pid, target)?)
    }

    pub(super) fn lower_all_hands(&self, state: &AppState) -> Result<(), RequestError> {
        Ok(state.hub.lower_all_hands(self.lesson, self.pid)?)
    }

    pub(super) fn invite_to_stage(
        &self,
        state: &AppState,
        target: u64,
    ) -> Result<(), RequestError> {
        Ok(state.hub.invite_to_stage(self.lesson, self.pid, target)?)
    }

    pub(super) fn accept_stage(&self, state: &AppState) -> Result<(), RequestError> {
        Ok(state.hub.accept_stage(self.lesson, self.pid)?)
    }

    pub(super) fn decline_stage(&self, state: &AppState) -> Result<(), RequestError> {
        Ok(state.hub.decline_stage(self.lesson, self.pid)?)
    }

    /// Takes `target` off the stage (`None`: itself); only a moderator removes another.
    pub(super) fn leave_stage(
        &self,
        state: &AppState,
        target: Option<u64>,
    ) -> Result<(), RequestError> {
        Ok(state.hub.leave_stage(self.lesson, self.pid, target)?)
    }
}
