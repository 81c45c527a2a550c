//! The live lesson: who is in which lesson right now, and what each of them is told.
//!
//! - [`room`] — one live lesson as a pure state machine ([`Room`]): members and their
//!   connections, those away and keeping a place, publications, hands, stage and mutes. Each
//!   request returns an [`Outcome`]: what to deliver to which connection, in order. No lock, no
//!   channel, no clock.
//! - [`outcome`] — what a room decides, as values: the steps to carry out, and the refusals.
//! - [`hub`] — every live lesson behind one lock ([`Hub`]), and the one function that carries an
//!   outcome out onto the participants' bounded queues, evicting the ones too slow to follow.
//!
//! Two ids that used to share one `u64`: a [`MemberId`] names a participant of the lesson and
//! survives its reconnects; a [`ConnectionId`] names one connection, which does not. The media
//! plane's connection id proposes a newcomer's member id, which is why they start out equal.

pub mod hub;
pub mod outcome;
pub mod room;

use std::fmt;

pub use hub::{Hub, HubJoinError, Member, Observer, RECONNECT_GRACE, leave_reason_name};
pub use outcome::{ControlError, Kick, Outcome, RoomFull, Step};
pub use room::Room;

/// A participant of a live lesson: the same invite coming back on a new connection within
/// [`RECONNECT_GRACE`] is the same member, with the same id (the protocol's `participant_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub u64);

/// One connection holding a member's seat (the media plane's connection id, unique in this
/// process). It ends when its socket does; the member may outlive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}
