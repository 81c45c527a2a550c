//! Classroom's control plane and the single `classroom` binary (DESIGN §4).
//!
//! In layers, each importing only from the ones below it:
//!
//! - [`server`] — [`Server::start`]/[`Server::shutdown`]; [`main`](../classroom) and
//!   [`admin`] (the `classroom admin …` subcommands) sit on top.
//! - [`edge`] — HTTP and WebSocket: [`edge::app`], the router; the REST API, `/ws`, session
//!   cookies, the embedded web client, `ApiError`.
//! - [`state`] — [`AppState`], what every request and connection shares.
//! - [`services`] — ending a lesson, recording lessons, sign-in links: what spans the store,
//!   the live lessons and the media plane.
//! - [`live`] — the live lesson: a pure `Room` per lesson that decides who is told what, and
//!   the `Hub` that holds the rooms under one lock and delivers (slow consumers evicted).
//! - [`store`] — lessons, invites, chat, accounts and the library in SQLite (`sqlx`,
//!   migrations in `migrations/`).
//! - [`protocol`] — the WebSocket messages as typed enums; [`token`] — join tokens (HS256 JWT)
//!   and the grants they carry.
//! - [`domain`] — lessons, roles and grants, the stage, chat, accounts, passwords, time: the
//!   rules, with no I/O.
//! - Beside them: [`config`] — the one [`Config`], validated once at start; [`metrics`] —
//!   Prometheus metrics, the SFU's counters included; [`secrets`] — the signing secret and the
//!   API key files; [`hex`] — how tokens and digests are written.
//!
//! The media itself never passes through here: the control plane drives the SFU through an
//! [`sfu::SfuHandle`] and relays its events to participants.

pub mod admin;
pub mod config;
pub mod domain;
pub mod edge;
pub mod hex;
pub mod live;
pub mod metrics;
pub mod protocol;
pub mod secrets;
pub mod server;
pub mod services;
pub mod state;
pub mod store;
pub mod token;

pub use config::{Config, ConfigError};
/// The load test's end-to-end tests name these by their paths from before the domain layer;
/// the domain's own paths are `domain::lesson` and `domain::timestamp`.
pub use domain::{lesson, timestamp};
pub use edge::app;
pub use server::{Server, StartError};
pub use state::AppState;
