//! Starting and stopping the whole server: data directory, secrets, database, media plane,
//! the shared [`AppState`] they make up, and the HTTP listener serving [`crate::edge::app`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError};
use crate::domain::signin_limit::SignInLimiter;
use crate::domain::timestamp::Clock;
use crate::edge::app;
use crate::live::Hub;
use crate::metrics::{Metrics, MetricsError};
use crate::secrets::{self, SecretError};
use crate::services::recording::Recordings;
use crate::services::signin;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use crate::token::TokenKeys;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secrets: {0}")]
    Secret(#[from] SecretError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("media plane: {0}")]
    Sfu(#[from] sfu::SfuError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(#[from] MetricsError),
}

/// A running server. Dropping it without [`Server::shutdown`] leaves its tasks running until
/// the runtime stops.
pub struct Server {
    state: AppState,
    http: JoinHandle<std::io::Result<()>>,
    /// The first admin's one-time sign-in token, when this start created that account.
    first_signin: Option<String>,
}

impl Server {
    /// Validates the configuration, prepares the data directory and starts serving.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        config.validate()?;
        let data_dir = config.data_dir.clone();
        create_private_dir(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let secret = secrets::load_or_create_secret(&data_dir.join("secret.key"))?;
        let admin_token = secrets::load_or_create_admin_token(&data_dir.join("admin-token"))?;
        let store = Store::open(&data_dir.join("classroom.db")).await?;
        let clock = Clock::default();
        let first_signin =
            signin::bootstrap_admin(&store, clock.now(), signin::LINK_TTL_SECS).await?;

        // Bind HTTP before starting the media plane: a taken port then leaves nothing running.
        let listener = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.http,
            source,
        })?;

        let sfu = sfu::start(sfu::SfuConfig {
            udp_bind: config.udp,
            public_ip: config.public_ip,
            ..sfu::SfuConfig::default()
        })
        .await?;
        let metrics = Arc::new(Metrics::new()?);
        if let Err(e) = metrics.export_sfu(sfu.clone()) {
            sfu.shutdown().await;
            return Err(e.into());
        }

        let hub = Arc::new(Hub::new(metrics.clone()));
        let library = data_dir.join("library");
        if let Err(source) = create_private_dir(&library) {
            sfu.shutdown().await;
            return Err(StartError::DataDir {
                path: library,
                source,
            });
        }
        let recordings = Recordings::new(
            library,
            Arc::new(recorder::FileStorage),
            config.library_quota_bytes,
            store.clone(),
            sfu.clone(),
            hub.clone(),
            metrics.clone(),
            config.sfu_request_timeout,
        );
        // Before serving: the library lists what a killed process left, as `interrupted`.
        if let Err(e) = recordings.recover().await {
            sfu.shutdown().await;
            return Err(e.into());
        }

        let state = AppState {
            connection_slots: Arc::new(Semaphore::new(config.max_connections)),
            config: Arc::new(config),
            http_addr,
            store,
            keys: Arc::new(TokenKeys::new(&secret)),
            admin_token: Arc::from(admin_token),
            clock,
            signin_limiter: Arc::new(SignInLimiter::new()),
            hub,
            sfu,
            recordings,
            metrics,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let router = app(state.clone());
        let stop = state.shutdown.clone();
        let http = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        tracing::info!(http = %http_addr, media = %state.sfu.local_addr(), "listening");
        Ok(Server {
            state,
            http,
            first_signin,
        })
    }

    /// The address HTTP listens on, with the port the OS chose.
    pub fn http_addr(&self) -> SocketAddr {
        self.state.http_addr
    }

    /// The media address clients are given.
    pub fn media_addr(&self) -> SocketAddr {
        self.state.sfu.local_addr()
    }

    /// The REST API's Bearer token.
    pub fn admin_token(&self) -> &str {
        &self.state.admin_token
    }

    /// The token of the first admin's one-time sign-in link, when this start created the
    /// admin account (the data directory had no accounts); `None` on every later start.
    pub fn first_signin_token(&self) -> Option<&str> {
        self.first_signin.as_deref()
    }

    /// The shared state, for tests and embedders that drive the router directly.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting, closes every socket (participants are told the server is going away),
    /// stops the media plane and closes the database — all within `shutdown_deadline`.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.state.config.shutdown_deadline;
        self.state.shutdown.cancel();
        self.state.tasks.close();
        if tokio::time::timeout_at(deadline, self.state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close before the shutdown deadline");
        }
        // Recordings are sealed before the media plane stops: their files come first.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.state
            .recordings
            .stop_all(left.max(Duration::from_secs(1)))
            .await;
        let mut http = self.http;
        match tokio::time::timeout_at(deadline, &mut http).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
            Err(_) => {
                tracing::warn!("HTTP requests still running at the shutdown deadline");
                http.abort();
            }
        }
        // The media plane and the database get a little time even when the sockets used it
        // all, so their files and ports are released cleanly.
        let grace = deadline.max(tokio::time::Instant::now() + Duration::from_millis(500));
        if tokio::time::timeout_at(grace, self.state.sfu.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("media plane did not stop before the shutdown deadline");
        }
        let _ = tokio::time::timeout_at(grace, self.state.store.close()).await;
        tracing::info!("stopped");
    }
}

/// Creates the data directory (and parents) readable by its owner only.
pub(crate) fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}
