//! Who is in one lesson, as the forwarding core sees it.

use std::collections::BTreeMap;

use crate::ids::{ParticipantId, PublicationId};

/// A lesson's members and publications. Ordered maps keep fan-out order stable, which keeps
/// tests and traces deterministic.
#[derive(Debug, Default)]
pub(crate) struct Lesson {
    /// Each member and whether it receives the others' media.
    pub members: BTreeMap<ParticipantId, Member>,
    pub publications: Vec<PublicationId>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub subscribes: bool,
}
