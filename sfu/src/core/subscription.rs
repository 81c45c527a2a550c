//! One publication as one subscriber receives it.

use std::time::{Duration, Instant};

use super::freeze::FreezeMeter;
use super::layer::{Layer, LayerHysteresis};
use super::rewrite::{LegFormat, Rewriter};
use super::vp8::Vp8Munger;
use crate::ids::ParticipantId;

/// How long the link must allow a higher layer before a subscription climbs to it.
pub(crate) const UP_SWITCH_HOLD: Duration = Duration::from_secs(3);

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
    /// The subscriber's own cap (`set_subscription`), and whether it paused the video.
    pub max_layer: Layer,
    pub paused: bool,
    /// The layer being forwarded now, and the one it is switching to (`None`: nothing).
    pub current: Option<Layer>,
    pub target: Option<Layer>,
    pub hysteresis: LayerHysteresis,
    /// The link allocation has chosen a layer since the subscription attached or resumed.
    pub allocated: bool,
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
            max_layer: Layer::High,
            paused: false,
            current: None,
            target: None,
            hysteresis: LayerHysteresis::new(UP_SWITCH_HOLD),
            allocated: false,
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

    /// The best layer the subscriber itself accepts, or `None` when it paused the video.
    pub fn wanted(&self) -> Option<Layer> {
        (!self.paused).then_some(self.max_layer)
    }
}
