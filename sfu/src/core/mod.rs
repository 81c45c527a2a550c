//! The pure forwarding core.
//!
//! [`Router`] holds every lesson's publications and subscriptions and decides, packet by
//! packet, what goes to whom. It owns no socket, thread or clock: each input carries `now`,
//! and the work it decides on comes out of [`Router::poll_output`] — packets to forward,
//! keyframe requests to send, subscriptions to open or close. Its next deadline is
//! [`Router::poll_timeout`]. Panics only on a broken internal invariant, never on input.
//!
//! - `lesson` — who is in a lesson.
//! - `publication` — one incoming track and its subscriptions.
//! - `subscription` — one publication as one subscriber receives it.
//! - `rewrite` — per-leg SSRC / payload type / sequence / timestamp rewriting.
//! - `layer` — simulcast layers, their bitrates, and up/down-switch hysteresis.
//! - `allocator` — a subscriber's estimate shared out among its subscriptions, and each video
//!   subscription's layer choice (max / target / current), returned as a decision.
//! - `keyframe` — keyframe-request throttling.
//! - `vp8` — VP8 payload descriptors: keyframe detection, picture-id continuity on a switch.
//! - `freeze` — when a subscriber's picture stood still.
//! - `estimate` — a subscriber's downlink estimate from the loss it reports.
//! - `downlink` — a subscriber's downlink policy: the estimate the router shares out (start
//!   estimate, headroom, loss weighting, small moves) and when its link is probed.
//! - `capacity` — a subscriber's link capacity from how its packet trains arrive (TWCC).
//! - `quality` — loss, jitter, round trip and bitrate of the streams the SFU receives and sends.

mod allocator;
mod capacity;
mod downlink;
mod estimate;
mod freeze;
mod keyframe;
mod layer;
mod lesson;
mod publication;
mod quality;
mod rewrite;
mod router;
mod subscription;
mod vp8;

pub use capacity::{Delivery, LinkCapacity, UNLIMITED_BPS};
pub use downlink::{
    DownlinkEstimator, EstimateChange, LinkMeasurement, PROBE_BYTES, PROBE_INTERVAL,
    PROBE_INTERVAL_MAX, PROBE_PACKETS, START_ESTIMATE_BPS, START_WINDOW, UPDATE_INTERVAL,
    probe_train,
};
pub use estimate::LossEstimate;
pub use freeze::Freezes;
pub use keyframe::KeyframeGate;
pub use layer::{Layer, LayerHysteresis, RateMeter};
pub use quality::{InboundStats, OutboundStats, QualitySample, ntp_compact, round_trip};
pub use rewrite::{LegFormat, Rewriter, seq_newer};
pub use router::{Output, Router, RouterConfig, RouterError};
pub use vp8::{Vp8Descriptor, Vp8Munger, vp8_starts_keyframe};

use serde::{Deserialize, Serialize};

/// Where a media source comes from on the publisher's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Camera,
    Microphone,
    Screen,
    ScreenAudio,
}

impl Source {
    /// The media kind a source carries.
    pub fn kind(self) -> MediaKind {
        match self {
            Source::Camera | Source::Screen => MediaKind::Video,
            Source::Microphone | Source::ScreenAudio => MediaKind::Audio,
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}
