//! Classroom's media plane: a selective forwarding unit.
//!
//! - [`core`] — the pure forwarding core: lessons, publications, subscriptions, per-leg RTP
//!   rewriting, keyframe-request throttling. No sockets, no threads, no clock: time comes in as
//!   `now`, work comes out of `poll_output`. Tested with virtual time.
//! - [`transport`] — drives WebRTC peer connections on `rtc` 0.21 (the sans-I/O core of
//!   webrtc-rs) over one UDP port per shard: ICE-lite, DTLS-SRTP, demux by ICE ufrag then by
//!   remote address, a timer heap. Each shard is a sans-I/O [`transport::Engine`] (datagrams,
//!   commands and timeouts in, datagrams out) behind one small event loop that alone touches
//!   the socket, the channels and the clock. The control plane talks to it through an
//!   [`SfuHandle`], which also hands out connection ids.
//! - [`ids`] — the newtype ids shared by both.

pub mod core;
pub mod ids;
pub mod transport;

pub use ids::{LessonId, ParticipantId, PublicationId};
pub use transport::{
    Layer, MediaKind, PeerLeg, PeerState, QUALITY_INTERVAL, SfuConfig, SfuError, SfuEvent,
    SfuHandle, SfuStats, Source, StreamQuality, TapEvent, TrackMapping, start,
};
