//! Classroom's control plane and the single `classroom` binary (DESIGN §4).
//!
//! - [`server`] — [`Server::start`]/[`Server::shutdown`], [`AppState`] and [`app`], the router.
//! - [`config`] — the one [`Config`], validated once at start.
//! - [`api`] — the REST API: sign-in, accounts, schools, lessons, invites, ending a lesson.
//! - [`accounts`] — teachers, operators, admins; schools and classrooms; what each role may do.
//! - [`session`] — session cookies, one-time sign-in links, the API key, same-origin checks.
//! - [`admin`] — the `classroom admin …` subcommands.
//! - [`password`] — the password rule and Argon2id hashing; [`signin_limit`] — failed
//!   sign-ins per username.
//! - [`ws`] — `/ws`: one task per connection; join, offers and answers, liveness.
//! - [`lesson_hub`] — who is in which lesson now; fan-out with slow-consumer eviction.
//! - [`protocol`] — the WebSocket messages as typed enums.
//! - [`token`] — join tokens (HS256 JWT) and the grants they carry.
//! - [`grants`] — what each role may do in each lesson mode; the per-mode limits.
//! - [`stage`] — raised hands and the stage of one lesson, as a pure state machine.
//! - [`chat`] — chat messages: validation, the per-participant rate limit, their audience.
//! - [`store`] — lessons, invites and chat in SQLite (`sqlx`, migrations in `migrations/`).
//! - [`lesson`] — the lesson's domain types; [`timestamp`] — RFC 3339 instants.
//! - [`secrets`] — the signing secret and the API key (admin token) files.
//! - [`error`] — `ApiError`, the only HTTP error response.
//! - [`metrics`] — Prometheus metrics, the SFU's counters included.
//! - [`recording`] — recording lessons into the library (the `recorder` crate, fed by an SFU
//!   tap and the hub's timeline); start-up recovery.
//! - [`web`] — the embedded web client.
//!
//! The media itself never passes through here: the control plane drives the SFU through an
//! [`sfu::SfuHandle`] and relays its events to participants.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod chat;
pub mod config;
pub mod error;
pub mod grants;
pub mod lesson;
pub mod lesson_hub;
pub mod metrics;
pub mod password;
pub mod protocol;
pub mod recording;
pub mod secrets;
pub mod server;
pub mod session;
pub mod signin_limit;
pub mod stage;
pub mod store;
pub mod timestamp;
pub mod token;
pub mod web;
pub mod ws;

pub use config::{Config, ConfigError};
pub use server::{AppState, Server, StartError, app};
