//! [`AppState`]: what every request and connection shares — the configuration, the store, the
//! live lessons, the media plane, recordings, metrics — made once by [`crate::Server::start`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::domain::signin_limit::SignInLimiter;
use crate::domain::timestamp::Clock;
use crate::live::Hub;
use crate::metrics::Metrics;
use crate::services::recording::Recordings;
use crate::store::Store;
use crate::token::TokenKeys;

/// Everything a handler needs, shared by every request and connection. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The address HTTP is bound to (port resolved), for links when a request has no `Host`.
    pub http_addr: SocketAddr,
    pub store: Store,
    pub keys: Arc<TokenKeys>,
    /// The API key: `Authorization: Bearer` with it acts as an admin (see `api.rs`).
    pub admin_token: Arc<str>,
    /// The wall clock sessions and sign-in links are judged by (see `session.rs`).
    pub clock: Clock,
    /// Failed sign-ins per username.
    pub signin_limiter: Arc<SignInLimiter>,
    pub hub: Arc<Hub>,
    pub sfu: sfu::SfuHandle,
    /// Lessons being recorded, and the library on disk (`DATA/library`).
    pub recordings: Arc<Recordings>,
    pub metrics: Arc<Metrics>,
    /// One permit per open WebSocket, up to `max_connections`.
    pub connection_slots: Arc<Semaphore>,
    /// Cancelled once, at shutdown; every connection task watches it.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them to close their sockets.
    pub tasks: TaskTracker,
}
