//! One track a participant sends, and who receives it.

use super::keyframe::KeyframeGate;
use super::subscription::Subscription;
use super::{MediaKind, Source};
use crate::ids::{LessonId, ParticipantId};

#[derive(Debug)]
pub(crate) struct Publication {
    pub lesson: LessonId,
    pub owner: ParticipantId,
    pub source: Source,
    pub kind: MediaKind,
    /// The SSRC the publisher sends on, learnt from its packets; keyframe requests name it.
    pub media_ssrc: Option<u32>,
    pub keyframes: KeyframeGate,
    pub subscriptions: Vec<Subscription>,
}

impl Publication {
    pub fn subscription(&mut self, subscriber: ParticipantId) -> Option<&mut Subscription> {
        self.subscriptions
            .iter_mut()
            .find(|s| s.subscriber == subscriber)
    }
}
