//! Raised hands and the stage of one lesson (DESIGN §3 "Stage"), as plain state with no I/O:
//! the hub checks who may ask, calls these methods, and turns what changed into messages.
//!
//! Flow: a participant raises its hand → a moderator invites it → it accepts and is on stage
//! (its hand comes down) → it leaves or is removed. Every list is bounded by the lesson's
//! members: entries are keyed by participant and dropped by [`Stage::forget`] when one leaves.

use serde::{Deserialize, Serialize};

use crate::domain::timestamp::Timestamp;

/// A raised hand, in the order hands were raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandInfo {
    pub participant_id: u64,
    pub at: Timestamp,
}

/// Why a stage request changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    #[error("participant {0} is already on stage")]
    AlreadyOnStage(u64),
    #[error("the stage is full ({0} at most)")]
    Full(usize),
    #[error("participant {0} has no stage invitation")]
    NoInvitation(u64),
    #[error("participant {0} is not on stage")]
    NotOnStage(u64),
}

/// One lesson's hands, stage and pending invitations.
#[derive(Debug, Clone)]
pub struct Stage {
    max: usize,
    /// Oldest first; at most one entry per participant.
    hands: Vec<HandInfo>,
    /// In the order they joined the stage; at most `max`.
    on_stage: Vec<u64>,
    /// Invited, not yet answered.
    invited: Vec<u64>,
}

impl Stage {
    pub fn new(max: usize) -> Stage {
        Stage {
            max,
            hands: Vec::new(),
            on_stage: Vec::new(),
            invited: Vec::new(),
        }
    }

    pub fn hands(&self) -> &[HandInfo] {
        &self.hands
    }

    pub fn members(&self) -> &[u64] {
        &self.on_stage
    }

    pub fn is_on_stage(&self, pid: u64) -> bool {
        self.on_stage.contains(&pid)
    }

    /// Raises `pid`'s hand; false if it was already up (its place in the queue is kept).
    pub fn raise(&mut self, pid: u64, at: Timestamp) -> bool {
        if self.hands.iter().any(|h| h.participant_id == pid) {
            return false;
        }
        self.hands.push(HandInfo {
            participant_id: pid,
            at,
        });
        true
    }

    /// Lowers `pid`'s hand; false if it was not up.
    pub fn lower(&mut self, pid: u64) -> bool {
        let before = self.hands.len();
        self.hands.retain(|h| h.participant_id != pid);
        self.hands.len() != before
    }

    /// Lowers every hand; returns whose, oldest first.
    pub fn lower_all(&mut self) -> Vec<u64> {
        self.hands.drain(..).map(|h| h.participant_id).collect()
    }

    pub fn invite(&mut self, pid: u64) -> Result<(), StageError> {
        if self.is_on_stage(pid) {
            return Err(StageError::AlreadyOnStage(pid));
        }
        if self.on_stage.len() >= self.max {
            return Err(StageError::Full(self.max));
        }
        if !self.invited.contains(&pid) {
            self.invited.push(pid);
        }
        Ok(())
    }

    /// Puts an invited participant on stage. Returns whether its hand was up (and is now down).
    pub fn accept(&mut self, pid: u64) -> Result<bool, StageError> {
        if !self.invited.contains(&pid) {
            return Err(StageError::NoInvitation(pid));
        }
        // Checked again: the stage may have filled since the invitation; the invitation
        // stays, so the participant can accept once a place is free.
        if self.on_stage.len() >= self.max {
            return Err(StageError::Full(self.max));
        }
        self.invited.retain(|p| *p != pid);
        self.on_stage.push(pid);
        Ok(self.lower(pid))
    }

    pub fn decline(&mut self, pid: u64) -> Result<(), StageError> {
        if !self.invited.contains(&pid) {
            return Err(StageError::NoInvitation(pid));
        }
        self.invited.retain(|p| *p != pid);
        Ok(())
    }

    pub fn leave(&mut self, pid: u64) -> Result<(), StageError> {
        if !self.is_on_stage(pid) {
            return Err(StageError::NotOnStage(pid));
        }
        self.on_stage.retain(|p| *p != pid);
        Ok(())
    }

    /// Drops everything about a participant that left the lesson. Returns (was on stage,
    /// had its hand up).
    pub fn forget(&mut self, pid: u64) -> (bool, bool) {
        self.invited.retain(|p| *p != pid);
        let was_on_stage = self.leave(pid).is_ok();
        (was_on_stage, self.lower(pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + secs)
    }

    #[test]
    fn hands_keep_the_order_they_were_raised_in() {
        let mut s = Stage::new(4);
        assert!(s.raise(3, at(0)));
        assert!(s.raise(1, at(1)));
        assert!(!s.raise(3, at(2)), "raising again keeps the first place");
        let order: Vec<u64> = s.hands().iter().map(|h| h.participant_id).collect();
        assert_eq!(order, vec![3, 1]);
        assert_eq!(s.hands()[0].at, at(0));
        assert!(s.lower(3));
        assert!(!s.lower(3));
        assert!(s.raise(2, at(3)));
        assert_eq!(s.lower_all(), vec![1, 2]);
        assert!(s.hands().is_empty());
    }

    #[test]
    fn invite_accept_leave() {
        let mut s = Stage::new(2);
        s.raise(5, at(0));
        assert_eq!(s.accept(5), Err(StageError::NoInvitation(5)));
        s.invite(5).unwrap();
        assert_eq!(s.accept(5), Ok(true), "accepting lowers the hand");
        assert!(s.hands().is_empty());
        assert_eq!(s.invite(5), Err(StageError::AlreadyOnStage(5)));
        assert_eq!(s.members(), &[5]);
        s.leave(5).unwrap();
        assert_eq!(s.leave(5), Err(StageError::NotOnStage(5)));
        s.invite(6).unwrap();
        s.decline(6).unwrap();
        assert_eq!(s.accept(6), Err(StageError::NoInvitation(6)));
    }

    #[test]
    fn the_stage_limit_holds_at_invite_and_at_accept() {
        let mut s = Stage::new(2);
        for pid in [1, 2, 3] {
            s.invite(pid).unwrap();
        }
        assert_eq!(s.accept(1), Ok(false));
        assert_eq!(s.accept(2), Ok(false));
        assert_eq!(s.accept(3), Err(StageError::Full(2)));
        assert_eq!(s.invite(4), Err(StageError::Full(2)));
        assert_eq!(s.members(), &[1, 2]);
        // A place frees up; the old invitation still stands.
        assert_eq!(s.forget(1), (true, false));
        assert_eq!(s.accept(3), Ok(false));
        assert_eq!(s.members(), &[2, 3]);
    }
}
