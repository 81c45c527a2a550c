//! Classroom's control plane and the single `classroom` binary (DESIGN §4).
//!
//! - [`server`] — [`Server::start`]/[`Server::shutdown`], [`AppState`] and [`app`], the router.
//! - [`config`] — the one [`Config`], validated once at start.
//! - [`api`] — the REST API: lessons, invites, ending a lesson (admin Bearer token).
//! - [`ws`] — `/ws`: one task per connection; join, offers and answers, liveness.
//! - [`lesson_hub`] — who is in which lesson now; fan-out with slow-consumer eviction.
//! - [`protocol`] — the WebSocket messages as typed enums.
//! - [`token`] — join tokens (HS256 JWT) and the grants they carry.
//! - [`grants`] — what each role may do in each lesson mode; the per-mode limits.
//! - [`stage`] — raised hands and the stage of one lesson, as a pure state machine.
//! - [`chat`] — chat messages: validation, the per-participant rate limit, their audience.
//! - [`store`] — lessons, invites and chat in SQLite (`sqlx`, migrations in `migrations/`).
//! - [`lesson`] — the lesson's domain types; [`timestamp`] — RFC 3339 instants.
//! - [`secrets`] — the signing secret and admin token files.
//! - [`error`] — `ApiError`, the only HTTP error response.
//! - [`metrics`] — Prometheus metrics, the SFU's counters included.
//! - [`web`] — the embedded web client.
//!
//! The media itself never passes through here: the control plane drives the SFU through an
//! [`sfu::SfuHandle`] and relays its events to participants.

pub mod api;
pub mod chat;
pub mod config;
pub mod error;
pub mod grants;
pub mod lesson;
pub mod lesson_hub;
pub mod metrics;
pub mod protocol;
pub mod secrets;
pub mod server;
pub mod stage;
pub mod store;
pub mod timestamp;
pub mod token;
pub mod web;
pub mod ws;

pub use config::{Config, ConfigError};
pub use server::{AppState, Server, StartError, app};
