//! Classroom's bots: real WebRTC clients (the async `webrtc` 0.21 crate) that join lessons
//! through the real REST API and WebSocket signaling, send synthetic but well-formed media,
//! and check every packet they receive.
//!
//! - [`client`] — REST (admin token) and `/ws` signaling clients; every wait is bounded.
//! - [`bot`] — one participant: joins, answers the server's offers, keeps the roster; it
//!   publishes through [`publisher`] and receives through [`subscriber`].
//! - [`publisher`] — the publisher leg: Opus + VP8 tracks (VP8 as one encoding or as three
//!   simulcast layers by rid), paced senders, keyframes on PLI/FIR per layer.
//! - [`subscriber`] — the subscriber leg: one connection renegotiated per server offer, a
//!   checked reader per track.
//! - [`media`] — synthetic payloads: VP8 (RFC 7741) and Opus, each tagged with the publisher's
//!   packet counter and send time, filled with bytes derived from the counter.
//! - [`report`] — per-track statistics, a latency histogram, the load run's summary.
//! - [`playout`] — what a viewer would have got: frames a decoder could show, audio gaps,
//!   video freezes.
//! - `peer` — building peer connections: codecs, interceptors, the keyframe-request tap.
//! - [`impair`] — link impairment (loss, delay, jitter, a bandwidth cap): a sans-I/O
//!   [`impair::Impairment`] per direction and a loopback UDP [`impair::Relay`] a bot's media can
//!   go through ([`BotOptions::via_relay`]).
//! - [`rural`] — the `loadtest rural` runs: simulcast subscribers on impaired links settling on
//!   a layer, and a crowd of them joining at once.
//! - [`fanout`] — the `loadtest fanout` run: one publisher, N subscribers, server cost from
//!   `/proc` and `/metrics`.

pub mod bot;
pub mod client;
pub mod fanout;
pub mod impair;
pub mod media;
mod peer;
pub mod playout;
pub mod publisher;
pub mod report;
pub mod rural;
pub mod subscriber;

pub use bot::{Bot, BotError, BotOptions, wait_event};
pub use client::{ClientError, RestClient, SignalingClient, metric_sum};
pub use impair::{Impairment, LinkProfile, Relay};
pub use peer::PeerWaitError;
pub use publisher::{LayerConfig, PublishConfig};
pub use report::TrackStats;
pub use subscriber::SubscribeConfig;
