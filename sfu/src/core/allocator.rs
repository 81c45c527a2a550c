//! Sharing one subscriber's downlink among its subscriptions, and each video subscription's
//! choice of layer.
//!
//! The router walks a subscriber's subscriptions in priority order (audio, then the screen,
//! then cameras) through one [`LinkShare`]: audio takes its measured rate off the estimate
//! first, then each video gets the best available layer it accepts that still fits, or is
//! paused when none does. What a video subscription receives is kept by its [`LayerSelector`]
//! (LiveKit's video layer selector has the same three layers in mind): the best layer the
//! subscriber accepts (`max_layer`, unless `paused`), the layer it is switching to (`target`)
//! and the one forwarded now (`current`, which becomes the target on the target's next
//! keyframe). Each choice comes back as a [`LayerDecision`] value for the router to carry out
//! (a keyframe request, a `LayerChanged` output), so the choice itself is tested here without
//! packets.
//!
//! Pure: every input carries `now` and the rates measured; nothing reads a clock.

use std::time::{Duration, Instant};

use super::layer::{Layer, LayerHysteresis};

/// What an audio subscription is assumed to cost before its rate is measured.
pub(crate) const AUDIO_BITRATE: u64 = 40_000;
/// How long the link must allow a higher layer before a subscription climbs to it.
pub(crate) const UP_SWITCH_HOLD: Duration = Duration::from_secs(3);

/// One video subscription's layers. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct LayerSelector {
    /// The subscriber's own cap (`Router::set_subscription`), and whether it paused the video.
    pub max_layer: Layer,
    pub paused: bool,
    /// The layer being forwarded now, and the one it is switching to (`None`: nothing).
    pub current: Option<Layer>,
    pub target: Option<Layer>,
    hysteresis: LayerHysteresis,
    /// The link allocation has chosen a layer since the subscription attached or resumed, or
    /// since the start estimate gave way to a measured one.
    allocated: bool,
}

/// What the link share decided for one video subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerDecision {
    /// The target stays as it was.
    Keep,
    /// Switch to this layer from its next keyframe, which must be requested; the current
    /// layer goes on meanwhile.
    SwitchTo(Layer),
    /// The target went back to the layer already forwarded: no keyframe to wait for.
    Settle(Layer),
    /// Nothing is forwarded any more; `stopped` when a layer was being forwarded (the
    /// subscriber is told its video paused).
    Pause { stopped: bool },
}

/// What a video publication offers now, layer by layer. Asked lazily, best layer first: a
/// layer's rate is read only when the share reaches it (reading it forgets old packets).
pub(crate) trait VideoOffer {
    /// Whether any layer has sent a packet yet.
    fn started(&self) -> bool;
    /// Whether `layer` arrived recently.
    fn available(&self, layer: Layer) -> bool;
    /// What `layer` costs (measured, or its typical rate), bits per second.
    fn bitrate(&mut self, layer: Layer) -> u64;
}

impl LayerSelector {
    pub fn new() -> LayerSelector {
        LayerSelector {
            max_layer: Layer::High,
            paused: false,
            current: None,
            target: None,
            hysteresis: LayerHysteresis::new(UP_SWITCH_HOLD),
            allocated: false,
        }
    }

    /// The best layer the subscriber itself accepts, or `None` when it paused the video.
    pub fn wanted(&self) -> Option<Layer> {
        (!self.paused).then_some(self.max_layer)
    }

    /// The next choice follows the link at once, up too, without the up-switch hold (the
    /// start estimate gave way to a measured one, which was not a link seen short).
    pub fn choose_afresh(&mut self) {
        self.allocated = false;
    }

    /// When a pending up-switch becomes due, if one is pending.
    pub fn up_switch_due(&self) -> Option<Instant> {
        self.hysteresis.due_at(self.target)
    }
}

/// One subscriber's estimate being shared out, in priority order.
#[derive(Debug, Clone)]
pub(crate) struct LinkShare {
    /// What is left; `u64::MAX` without an estimate.
    budget: u64,
    /// Whether there is an estimate at all: without one, only availability limits a layer,
    /// and a layer that comes back after a stall must not wait out a hold.
    limited: bool,
    /// The estimate is the start guess: every video gets at least its lowest layer, so that
    /// its link has something to be measured with.
    starting: bool,
}

impl LinkShare {
    /// `estimate`: bits per second, `None` while the link shows no limit.
    pub fn new(estimate: Option<u64>, starting: bool) -> LinkShare {
        LinkShare {
            budget: estimate.unwrap_or(u64::MAX),
            limited: estimate.is_some(),
            starting,
        }
    }

    /// An audio subscription takes its measured rate (or [`AUDIO_BITRATE`]) first.
    pub fn reserve_audio(&mut self, measured: Option<u64>) {
        self.budget = self
            .budget
            .saturating_sub(measured.unwrap_or(AUDIO_BITRATE));
    }

    /// The best layer of `offer` at or below `wanted` that what is left carries.
    fn fits(&self, wanted: Option<Layer>, offer: &mut impl VideoOffer) -> Option<Layer> {
        let max = wanted?;
        let started = offer.started();
        for layer in max.at_or_below() {
            // Before any packet, aim at the best wanted layer; its keyframe request goes out
            // with the first packet's SSRC.
            if started && !offer.available(layer) {
                continue;
            }
            if offer.bitrate(layer) <= self.budget {
                return Some(layer);
            }
        }
        if self.starting {
            return max
                .at_or_below()
                .filter(|&l| !started || offer.available(l))
                .last();
        }
        None
    }

    /// The next video subscription (by priority) takes its share: its selector's target moves
    /// (down at once, up after [`UP_SWITCH_HOLD`]; a subscriber's own pause or first choice
    /// at once) and what the target costs is taken off what is left.
    pub fn allot(
        &mut self,
        now: Instant,
        selector: &mut LayerSelector,
        offer: &mut impl VideoOffer,
    ) -> LayerDecision {
        let wanted = selector.wanted();
        let allowed = self.fits(wanted, offer);
        // The subscriber's own choices are not link decisions: a pause takes effect at once,
        // and so does the first choice after attaching or resuming.
        let target = if wanted.is_none() {
            selector.allocated = false;
            None
        } else if !selector.allocated || !self.limited {
            selector.allocated = true;
            selector.hysteresis.reset(now, allowed);
            allowed
        } else {
            selector.hysteresis.decide(now, selector.target, allowed)
        };
        if let Some(layer) = target {
            self.budget = self.budget.saturating_sub(offer.bitrate(layer));
        }
        if target == selector.target {
            return LayerDecision::Keep;
        }
        selector.target = target;
        match target {
            Some(layer) if selector.current != target => LayerDecision::SwitchTo(layer),
            Some(layer) => LayerDecision::Settle(layer),
            None => LayerDecision::Pause {
                stopped: selector.current.take().is_some(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publication's layers as fixed figures.
    #[derive(Clone, Copy)]
    struct Fixed {
        started: bool,
        available: [bool; 3],
        bitrate: [u64; 3],
    }

    impl VideoOffer for Fixed {
        fn started(&self) -> bool {
            self.started
        }
        fn available(&self, layer: Layer) -> bool {
            self.available[layer.index()]
        }
        fn bitrate(&mut self, layer: Layer) -> u64 {
            self.bitrate[layer.index()]
        }
    }

    const SIMULCAST: Fixed = Fixed {
        started: true,
        available: [true, true, true],
        bitrate: [150_000, 500_000, 1_500_000],
    };

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn audio_first_then_videos_in_order_each_the_best_that_fits() {
        let t0 = Instant::now();
        let mut share = LinkShare::new(Some(800_000), false);
        share.reserve_audio(Some(60_000));
        share.reserve_audio(None);
        // 700 kbit/s left: the screen gets Medium, the camera what remains (Low).
        let (mut screen, mut camera) = (LayerSelector::new(), LayerSelector::new());
        assert_eq!(
            share.allot(t0, &mut screen, &mut SIMULCAST.clone()),
            LayerDecision::SwitchTo(Layer::Medium)
        );
        assert_eq!(
            share.allot(t0, &mut camera, &mut SIMULCAST.clone()),
            LayerDecision::SwitchTo(Layer::Low)
        );
        // Nothing left for a third.
        let mut third = LayerSelector::new();
        assert_eq!(
            share.allot(t0, &mut third, &mut SIMULCAST.clone()),
            LayerDecision::Keep,
            "stays paused"
        );
        assert_eq!(third.target, None);
    }

    #[test]
    fn without_an_estimate_only_availability_limits() {
        let t0 = Instant::now();
        let mut selector = LayerSelector::new();
        let offer = Fixed {
            available: [true, true, false],
            ..SIMULCAST
        };
        assert_eq!(
            LinkShare::new(None, false).allot(t0, &mut selector, &mut offer.clone()),
            LayerDecision::SwitchTo(Layer::Medium)
        );
        selector.current = Some(Layer::Medium);
        // High is back: followed at once, no hold.
        assert_eq!(
            LinkShare::new(None, false).allot(t0 + s(1), &mut selector, &mut SIMULCAST.clone()),
            LayerDecision::SwitchTo(Layer::High)
        );
        // Before any packet, the best wanted layer is the aim.
        let mut fresh = LayerSelector::new();
        let unstarted = Fixed {
            started: false,
            available: [false; 3],
            ..SIMULCAST
        };
        assert_eq!(
            LinkShare::new(Some(2_000_000), false).allot(t0, &mut fresh, &mut unstarted.clone()),
            LayerDecision::SwitchTo(Layer::High)
        );
    }

    #[test]
    fn down_at_once_up_after_the_hold_and_back_to_the_current_layer_settles() {
        let t0 = Instant::now();
        let mut sel = LayerSelector::new();
        assert_eq!(
            LinkShare::new(Some(2_000_000), false).allot(t0, &mut sel, &mut SIMULCAST.clone()),
            LayerDecision::SwitchTo(Layer::High)
        );
        sel.current = Some(Layer::High);
        assert_eq!(
            LinkShare::new(Some(600_000), false).allot(t0, &mut sel, &mut SIMULCAST.clone()),
            LayerDecision::SwitchTo(Layer::Medium),
            "down at once"
        );
        // Before Medium's keyframe came, the link recovers: after the hold, back to High,
        // which is still forwarded: nothing to wait for.
        assert_eq!(
            LinkShare::new(Some(2_000_000), false).allot(
                t0 + s(1),
                &mut sel,
                &mut SIMULCAST.clone()
            ),
            LayerDecision::Keep,
            "up waits"
        );
        assert_eq!(sel.up_switch_due(), Some(t0 + s(4)));
        assert_eq!(
            LinkShare::new(Some(2_000_000), false).allot(
                t0 + s(4),
                &mut sel,
                &mut SIMULCAST.clone()
            ),
            LayerDecision::Settle(Layer::High)
        );
        assert_eq!(sel.up_switch_due(), None);
    }

    #[test]
    fn a_pause_is_at_once_and_says_whether_a_layer_stopped() {
        let t0 = Instant::now();
        let mut sel = LayerSelector::new();
        LinkShare::new(Some(2_000_000), false).allot(t0, &mut sel, &mut SIMULCAST.clone());
        sel.current = Some(Layer::High);
        // The link cannot carry even Low.
        assert_eq!(
            LinkShare::new(Some(100_000), false).allot(t0, &mut sel, &mut SIMULCAST.clone()),
            LayerDecision::Pause { stopped: true }
        );
        assert_eq!(sel.current, None);
        // The subscriber's own pause, then its resume without a hold.
        sel.paused = true;
        assert_eq!(
            LinkShare::new(Some(2_000_000), false).allot(t0, &mut sel, &mut SIMULCAST.clone()),
            LayerDecision::Keep,
            "already paused"
        );
        sel.paused = false;
        assert_eq!(
            LinkShare::new(Some(2_000_000), false).allot(
                t0 + s(1),
                &mut sel,
                &mut SIMULCAST.clone()
            ),
            LayerDecision::SwitchTo(Layer::High)
        );
    }

    #[test]
    fn the_start_estimate_gives_every_video_its_lowest_layer_and_a_measurement_is_followed_at_once()
    {
        let t0 = Instant::now();
        let single = Fixed {
            available: [false, false, true],
            ..SIMULCAST
        };
        let mut share = LinkShare::new(Some(300_000), true);
        share.reserve_audio(None);
        let (mut cam, mut one_layer) = (LayerSelector::new(), LayerSelector::new());
        assert_eq!(
            share.allot(t0, &mut cam, &mut SIMULCAST.clone()),
            LayerDecision::SwitchTo(Layer::Low)
        );
        assert_eq!(
            share.allot(t0, &mut one_layer, &mut single.clone()),
            LayerDecision::SwitchTo(Layer::High),
            "its only layer, though the guess does not cover it"
        );
        cam.current = Some(Layer::Low);
        // Measured: 2 Mbit/s, followed up at once.
        cam.choose_afresh();
        assert_eq!(
            LinkShare::new(Some(2_000_000), false).allot(
                t0 + s(1),
                &mut cam,
                &mut SIMULCAST.clone()
            ),
            LayerDecision::SwitchTo(Layer::High)
        );
    }
}
