//! One publication as one subscriber receives it.

use std::time::Instant;

use super::allocator::LayerSelector;
use super::freeze::FreezeMeter;
use super::rewrite::{LegFormat, Rewriter};
use super::vp8::Vp8Munger;
use crate::ids::ParticipantId;

/// A subscription exists from the moment the core decides a subscriber should receive a
/// publication; it forwards only once the transport has opened a sender for it
/// ([`Subscription::attach`]), and video forwards only from a keyframe of the layer it is
/// switching to, so a decoder never starts on (or jumps into) a delta frame.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub subscriber: ParticipantId,
    rewriter: Option<Rewriter>,
    pub vp8: Vp8Munger,
    /// The SSRC of the last packet forwarded, to notice a change of source.
    pub last_source: Option<u32>,
    /// Which layer of a video it wants, receives, and is switching to.
    pub selector: LayerSelector,
    /// Waiting for a keyframe of `target` since this instant.
    pub waiting_since: Option<Instant>,
    /// When the subscriber's picture stood still although it wanted one.
    pub freezes: FreezeMeter,
}

impl Subscription {
    pub fn new(subscriber: ParticipantId) -> Self {
        Subscription {
            subscriber,
            rewriter: None,
            vp8: Vp8Munger::default(),
            last_source: None,
            selector: LayerSelector::new(),
            waiting_since: None,
            freezes: FreezeMeter::default(),
        }
    }

    pub fn attach(&mut self, format: LegFormat) {
        self.rewriter = Some(Rewriter::new(format));
    }

    pub fn attached(&self) -> bool {
        self.rewriter.is_some()
    }

    pub fn rewriter(&mut self) -> Option<&mut Rewriter> {
        self.rewriter.as_mut()
    }
}
