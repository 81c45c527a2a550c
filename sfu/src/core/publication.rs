//! One track a participant sends, and who receives it.

use std::time::{Duration, Instant};

use rtc::rtp;

use super::allocator::VideoOffer;
use super::keyframe::KeyframeGate;
use super::layer::{Layer, RateMeter};
use super::quality::InboundStats;
use super::subscription::Subscription;
use super::{MediaKind, Source};
use crate::ids::{LessonId, ParticipantId};

/// How recently a layer must have sent a packet to count as available.
const LAYER_STALE_AFTER: Duration = Duration::from_millis(1500);

/// One simulcast layer as received (a non-simulcast track is one `High` layer).
#[derive(Debug)]
pub(crate) struct LayerState {
    /// The SSRC the publisher sends this layer on, learnt from its packets.
    pub ssrc: Option<u32>,
    pub rate: RateMeter,
    /// Loss, jitter and bitrate for quality reports, since the first packet on `ssrc`.
    pub received: Option<InboundStats>,
    /// Keyframe requests are throttled per layer: each layer has its own encoder.
    pub keyframes: KeyframeGate,
}

#[derive(Debug)]
pub(crate) struct Publication {
    pub lesson: LessonId,
    pub owner: ParticipantId,
    pub source: Source,
    pub kind: MediaKind,
    pub layers: [LayerState; 3],
    pub subscriptions: Vec<Subscription>,
    /// A moderator muted it: nothing is forwarded until it is unmuted.
    pub muted: bool,
}

impl LayerState {
    /// Meters one packet received at `now` (the only meter of a received stream: the
    /// allocator reads its rate, quality reports its loss and jitter). A new SSRC (an encoder
    /// restart) starts the statistics afresh.
    pub fn on_packet(&mut self, now: Instant, kind: MediaKind, header: &rtp::Header, size: usize) {
        if self.ssrc != Some(header.ssrc) {
            self.ssrc = Some(header.ssrc);
            self.received = None;
        }
        self.rate.record(now, size);
        let clock_rate = match kind {
            MediaKind::Audio => 48_000,
            MediaKind::Video => 90_000,
        };
        self.received
            .get_or_insert_with(|| InboundStats::new(clock_rate))
            .on_packet(now, header.sequence_number, header.timestamp, size);
    }

    /// Whether a packet arrived recently.
    fn available(&self, now: Instant) -> bool {
        self.rate
            .last_at()
            .is_some_and(|at| now.saturating_duration_since(at) <= LAYER_STALE_AFTER)
    }
}

/// A publication's layers as the allocator sees them at `now`.
pub(crate) struct Offered<'a> {
    pub layers: &'a mut [LayerState; 3],
    pub now: Instant,
}

impl VideoOffer for Offered<'_> {
    fn started(&self) -> bool {
        self.layers.iter().any(|l| l.ssrc.is_some())
    }

    fn available(&self, layer: Layer) -> bool {
        self.layers[layer.index()].available(self.now)
    }

    /// Measured, or the layer's typical rate before any measurement.
    fn bitrate(&mut self, layer: Layer) -> u64 {
        self.layers[layer.index()]
            .rate
            .bitrate(self.now)
            .unwrap_or_else(|| layer.default_bitrate())
    }
}

impl Publication {
    pub fn new(
        lesson: LessonId,
        owner: ParticipantId,
        source: Source,
        kind: MediaKind,
        keyframe_interval: Duration,
    ) -> Self {
        let layer = || LayerState {
            ssrc: None,
            rate: RateMeter::new(Duration::from_secs(1)),
            received: None,
            keyframes: KeyframeGate::new(keyframe_interval),
        };
        Publication {
            lesson,
            owner,
            source,
            kind,
            layers: [layer(), layer(), layer()],
            subscriptions: Vec::new(),
            muted: false,
        }
    }

    pub fn layer(&mut self, layer: Layer) -> &mut LayerState {
        &mut self.layers[layer.index()]
    }

    pub fn subscription(&mut self, subscriber: ParticipantId) -> Option<&mut Subscription> {
        self.subscriptions
            .iter_mut()
            .find(|s| s.subscriber == subscriber)
    }

    /// Whether any packet of `layer` arrived recently.
    pub fn available(&self, now: Instant, layer: Layer) -> bool {
        self.layers[layer.index()].available(now)
    }

    /// Priority when a subscriber's link is short: lower goes first. The screen carries the
    /// lesson's content; cameras follow.
    pub fn priority(&self) -> u8 {
        match self.source {
            Source::Microphone | Source::ScreenAudio => 0,
            Source::Screen => 1,
            Source::Camera => 2,
        }
    }
}
