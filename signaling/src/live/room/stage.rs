//! The room's hand and stage requests: raising and lowering hands, inviting onto the stage,
//! accepting, declining and leaving it, and the grants a stage place adds. The stage's own rules
//! are [`Stage`](crate::domain::stage::Stage)'s; this is who may ask, and who is told.

use super::{ControlError, MemberId, Outcome, Room, Step};
use crate::domain::stage::StageError;
use crate::domain::timestamp::Timestamp;
use crate::protocol::ServerMessage;

impl Room {
    /// `id` raises its hand at `at`; everyone sees it. Raising it again keeps its place.
    pub fn raise_hand(&mut self, id: MemberId, at: Timestamp) -> Result<Outcome, ControlError> {
        let me = self.member(id.0)?;
        if me.base_grants.hidden {
            return Err(ControlError::Hidden);
        }
        if me.base_grants.moderate {
            return Err(ControlError::ModeratorsHaveNoHand);
        }
        if self.stage.is_on_stage(id.0) {
            return Err(StageError::AlreadyOnStage(id.0).into());
        }
        let mut out = Outcome::default();
        if self.stage.raise(id.0, at) {
            let message = ServerMessage::HandRaised {
                participant_id: id.0,
                at,
            };
            self.tell_all(&mut out, message);
        }
        Ok(out)
    }

    /// Lowers `target`'s hand (`None`: the actor's own). Only a moderator lowers another's.
    pub fn lower_hand(
        &mut self,
        actor: MemberId,
        target: Option<u64>,
    ) -> Result<Outcome, ControlError> {
        let target = self.acting_on(actor, target)?;
        let mut out = Outcome::default();
        if self.stage.lower(target) {
            let message = ServerMessage::HandLowered {
                participant_id: target,
            };
            self.tell_all(&mut out, message);
        }
        Ok(out)
    }

    pub fn lower_all_hands(&mut self, actor: MemberId) -> Result<Outcome, ControlError> {
        self.require_moderator(actor)?;
        let mut out = Outcome::default();
        for participant_id in self.stage.lower_all() {
            self.tell_all(&mut out, ServerMessage::HandLowered { participant_id });
        }
        Ok(out)
    }

    /// A moderator invites `target` onto the stage; the invitee and the moderators are told.
    pub fn invite_to_stage(
        &mut self,
        actor: MemberId,
        target: u64,
    ) -> Result<Outcome, ControlError> {
        self.require_moderator(actor)?;
        if self.member(target)?.base_grants.hidden {
            return Err(ControlError::Hidden);
        }
        self.stage.invite(target)?;
        let mut out = Outcome::default();
        let to = self.connections(|id, m| id.0 == target || m.base_grants.moderate);
        out.push(Step::Deliver {
            to,
            message: ServerMessage::StageInvited {
                participant_id: target,
            },
        });
        Ok(out)
    }

    /// `id` accepts its invitation: it is on stage, its hand comes down, and it may publish the
    /// stage's sources.
    pub fn accept_stage(&mut self, id: MemberId) -> Result<Outcome, ControlError> {
        self.member(id.0)?;
        let mut out = Outcome::default();
        if self.stage.accept(id.0)? {
            let message = ServerMessage::HandLowered {
                participant_id: id.0,
            };
            self.tell_all(&mut out, message);
        }
        self.tell_stage(&mut out);
        self.refresh_grants(id, &mut out);
        Ok(out)
    }

    pub fn decline_stage(&mut self, id: MemberId) -> Result<Outcome, ControlError> {
        self.member(id.0)?;
        self.stage.decline(id.0)?;
        let mut out = Outcome::default();
        let to = self.connections(|_, m| m.base_grants.moderate);
        out.push(Step::Deliver {
            to,
            message: ServerMessage::StageDeclined {
                participant_id: id.0,
            },
        });
        Ok(out)
    }

    /// Takes `target` (`None`: the actor) off the stage; only a moderator removes another. Its
    /// grants lose the stage's sources, which makes its connection stop those publications.
    pub fn leave_stage(
        &mut self,
        actor: MemberId,
        target: Option<u64>,
    ) -> Result<Outcome, ControlError> {
        let target = self.acting_on(actor, target)?;
        self.stage.leave(target)?;
        let mut out = Outcome::default();
        self.tell_stage(&mut out);
        self.refresh_grants(MemberId(target), &mut out);
        Ok(out)
    }

    pub(super) fn tell_stage(&self, out: &mut Outcome) {
        let message = ServerMessage::StageChanged {
            stage: self.stage.members().to_vec(),
        };
        self.tell_all(out, message);
    }

    /// Recomputes a member's grants after a stage change; if they changed, its connection and
    /// the member itself (`grants_changed`) are told.
    fn refresh_grants(&mut self, id: MemberId, out: &mut Outcome) {
        let Some(seat) = self.members.get(&id) else {
            return;
        };
        let grants = self.grants_of(id, &seat.base_grants);
        if seat.grants == grants {
            return;
        }
        let connection = seat.connection;
        out.push(Step::Grants {
            connection,
            grants: grants.clone(),
        });
        out.push(Step::Deliver {
            to: vec![connection],
            message: ServerMessage::GrantsChanged {
                grants: grants.clone(),
            },
        });
        if let Some(seat) = self.members.get_mut(&id) {
            seat.grants = grants;
        }
    }
}
