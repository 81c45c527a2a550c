//! The hub's former path, kept so that its callers compile while they move to [`crate::live`],
//! which now owns the live lesson: the pure [`Room`](crate::live::Room) and the
//! [`Hub`](crate::live::Hub) that delivers what it decides. Nothing is defined here.

pub use crate::live::hub::{
    Hub, HubJoinError, Member, Observer, RECONNECT_GRACE, leave_reason_name,
};
pub use crate::live::outcome::{ControlError, Kick};
