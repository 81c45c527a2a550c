//! One publication as one subscriber receives it.

use std::time::Instant;

use super::rewrite::{LegFormat, Rewriter};
use crate::ids::ParticipantId;

/// A subscription exists from the moment the core decides a subscriber should receive a
/// publication; it forwards only once the transport has opened a sender for it
/// ([`Subscription::attach`]), and a video subscription forwards only from a keyframe on, so a
/// decoder never starts on a delta frame.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub subscriber: ParticipantId,
    rewriter: Option<Rewriter>,
    /// Waiting for a keyframe since this instant (video only).
    pub waiting_since: Option<Instant>,
}

impl Subscription {
    pub fn new(subscriber: ParticipantId) -> Self {
        Subscription {
            subscriber,
            rewriter: None,
            waiting_since: None,
        }
    }

    pub fn attach(&mut self, now: Instant, format: LegFormat, needs_keyframe: bool) {
        self.rewriter = Some(Rewriter::new(format));
        self.waiting_since = needs_keyframe.then_some(now);
    }

    pub fn rewriter(&mut self) -> Option<&mut Rewriter> {
        self.rewriter.as_mut()
    }
}
