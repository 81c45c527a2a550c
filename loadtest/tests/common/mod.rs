//! What the integration tests share: a real server on loopback ports the OS chose, bots that
//! join it through HTTP and WebSocket, and a TCP proxy that can black-hole a connection.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use loadtest::client::{Invite, Lesson};
use loadtest::{Bot, BotOptions, PublishConfig, RestClient, TrackStats};
use signaling::protocol::{MediaKind, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Bound on every single wait in these tests; generous because a debug build on a busy
/// 2-core machine is slow, and tests never fail on timing.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// A Classroom server started in-process on `127.0.0.1:0` (HTTP and UDP) with a fresh data
/// directory.
pub struct TestServer {
    pub server: Option<signaling::Server>,
    pub rest: RestClient,
    pub http: SocketAddr,
    _data: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(liveness_timeout: Duration) -> TestServer {
        Self::start_with(liveness_timeout, |_| {}).await
    }

    /// Like [`TestServer::start`], with `tweak` applied to the configuration last.
    pub async fn start_with(
        liveness_timeout: Duration,
        tweak: impl FnOnce(&mut signaling::Config),
    ) -> TestServer {
        init_tracing();
        let data = tempfile::tempdir().expect("a temporary data directory");
        let mut config = signaling::Config {
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data.path().join("data"),
            liveness_timeout,
            // Short, so a test of a peer that vanished sees it leave soon after it is away.
            reconnect_grace: Duration::from_secs(1),
            ..signaling::Config::default()
        };
        tweak(&mut config);
        let server = tokio::time::timeout(WAIT, signaling::Server::start(config))
            .await
            .expect("server start timed out")
            .expect("server starts");
        let http = server.http_addr();
        let rest =
            RestClient::new(&format!("http://{http}"), server.admin_token()).expect("server URL");
        TestServer {
            server: Some(server),
            rest,
            http,
            _data: data,
        }
    }

    pub fn ws_url(&self) -> String {
        self.rest.ws_url()
    }

    pub fn state(&self) -> &signaling::AppState {
        self.server.as_ref().expect("server running").state()
    }

    pub async fn lesson(&self, title: &str) -> Lesson {
        self.rest
            .create_lesson(title, "delivery")
            .await
            .expect("create lesson")
    }

    pub async fn invite(&self, lesson: &Lesson, role: Role, name: &str) -> Invite {
        self.rest
            .create_invite(lesson.id, role, name, None)
            .await
            .expect("create invite")
    }

    /// The teacher, publishing audio and video.
    pub async fn publisher(&self, lesson: &Lesson, config: PublishConfig) -> Bot {
        let invite = self.invite(lesson, Role::Teacher, "Teacher bot").await;
        let options = BotOptions::new("teacher", self.ws_url(), invite.token).publishing(config);
        Bot::join(options).await.expect("publisher joins")
    }

    /// A classroom that only watches, joining through `ws_url`.
    pub async fn subscriber_via(&self, lesson: &Lesson, name: &str, ws_url: String) -> Bot {
        let invite = self.invite(lesson, Role::Classroom, name).await;
        Bot::join(BotOptions::new(name, ws_url, invite.token))
            .await
            .expect("subscriber joins")
    }

    pub async fn subscriber(&self, lesson: &Lesson, name: &str) -> Bot {
        self.subscriber_via(lesson, name, self.ws_url()).await
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            tokio::time::timeout(WAIT, server.shutdown())
                .await
                .expect("server shutdown timed out");
        }
    }
}

/// The first track of `kind`.
pub fn track<'a>(tracks: &[&'a TrackStats], kind: MediaKind) -> Option<&'a TrackStats> {
    tracks.iter().copied().find(|t| t.kind == kind)
}

/// Audio received and a video keyframe received.
pub fn has_audio_and_keyframe(tracks: &[&TrackStats]) -> bool {
    track(tracks, MediaKind::Audio).is_some_and(|t| t.unique > 0)
        && track(tracks, MediaKind::Video).is_some_and(|t| t.keyframes > 0)
}

/// The highest counters received so far, (audio, video).
pub fn highest(bot: &Bot) -> (u64, u64) {
    bot.subscriber().inspect(|t| {
        let h = |k| track(t, k).and_then(|t| t.highest_counter).unwrap_or(0);
        (h(MediaKind::Audio), h(MediaKind::Video))
    })
}

/// Waits until both counters have moved `by` past `from`: media is still flowing.
pub async fn wait_advance(bot: &Bot, from: (u64, u64), by: u64, what: &str) {
    bot.wait_media(WAIT, what, |t| {
        let h = |k| track(t, k).and_then(|t| t.highest_counter).unwrap_or(0);
        h(MediaKind::Audio) >= from.0 + by && h(MediaKind::Video) >= from.1 + by
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", bot.tracks()));
}

/// A TCP proxy for one connection that can freeze: stop forwarding both ways while keeping
/// both sockets open, which is what a peer that lost power or network looks like to the server
/// (no FIN, no RST, just silence).
pub struct FreezeProxy {
    pub addr: SocketAddr,
    frozen: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FreezeProxy {
    pub async fn start(upstream: SocketAddr) -> FreezeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let (frozen, frozen_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (client_r, client_w) = client.into_split();
            let (server_r, server_w) = server.into_split();
            let up = tokio::spawn(pipe(client_r, server_w, frozen_rx.clone()));
            let down = tokio::spawn(pipe(server_r, client_w, frozen_rx));
            // Aborting the proxy task must stop the pipes too.
            struct AbortOnDrop(Vec<JoinHandle<()>>);
            impl Drop for AbortOnDrop {
                fn drop(&mut self) {
                    for t in &self.0 {
                        t.abort();
                    }
                }
            }
            let _pipes = AbortOnDrop(vec![up, down]);
            std::future::pending::<()>().await;
        });
        FreezeProxy { addr, frozen, task }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }
}

impl Drop for FreezeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies one direction until frozen, then holds both halves open and silent.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            // The watch guard must not live across the select's awaits.
            _ = async { frozen.wait_for(|f| *f).await.is_ok() } => break,
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
    // Frozen: keep the sockets, forward nothing, until the proxy is dropped.
    let _hold = (from, to);
    std::future::pending::<()>().await;
}
