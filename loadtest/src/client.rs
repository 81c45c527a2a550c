//! The bots' way into a Classroom server: its REST API and its WebSocket signaling.
//!
//! - [`RestClient`] — JSON over HTTP/1.1 with the admin Bearer token: create lessons and
//!   invites, read `/metrics`.
//! - [`SignalingClient`] — one `/ws` connection speaking [`signaling::protocol`]. A pump task
//!   owns the socket; messages come out of a bounded inbox, and any number of
//!   [`SignalingSender`]s put messages in.
//!
//! Every wait here is bounded by a timeout the caller gives.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use signaling::protocol::{
    ClientMessage, ErrorCode, LessonSnapshot, ParticipantInfo, PublicationInfo, Role, ServerMessage,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad server URL {0:?} (want http://HOST:PORT)")]
    BadUrl(String),
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("http request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("{method} {path} answered {status}: {code} {message}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("unexpected response body: {0}")]
    Body(#[from] serde_json::Error),
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the signaling connection closed")]
    Closed,
    #[error("server refused: {code:?}: {message}")]
    Refused { code: ErrorCode, message: String },
}

/// Runs `fut` under a timeout, naming what it waited for when it runs out.
pub async fn within<T>(
    after: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    timeout(after, fut)
        .await
        .map_err(|_| ClientError::Timeout {
            what: what.to_owned(),
            after,
        })?
}

/// A lesson as the REST API returns it (the fields the bots use).
#[derive(Debug, Clone, Deserialize)]
pub struct Lesson {
    pub id: i64,
    pub title: String,
    pub mode: String,
    pub state: String,
}

/// A join link from `POST /api/lessons/{id}/invites`.
#[derive(Debug, Clone, Deserialize)]
pub struct Invite {
    pub token: String,
    pub url: String,
    pub expires_at: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// The REST API of one server, as admin.
#[derive(Debug, Clone)]
pub struct RestClient {
    addr: SocketAddr,
    admin_token: String,
    timeout: Duration,
}

impl RestClient {
    /// `server` is `http://HOST:PORT` (a trailing `/` and a fragment such as `#key=…` are
    /// ignored); HOST must be an IP address, as every run here is on loopback.
    pub fn new(server: &str, admin_token: &str) -> Result<RestClient, ClientError> {
        Ok(RestClient {
            addr: parse_http_url(server)?,
            admin_token: admin_token.to_owned(),
            timeout: Duration::from_secs(10),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The signaling URL of this server.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// One request; returns the status and body whatever the status.
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let what = format!("{method} {path}");
        within(self.timeout, &what, async {
            let stream = TcpStream::connect(self.addr).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            // The connection task ends when the response is read and `sender` dropped.
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    debug!("http connection ended: {e}");
                }
            });
            let body = match body {
                Some(v) => Bytes::from(serde_json::to_vec(&v)?),
                None => Bytes::new(),
            };
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, self.addr.to_string())
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", self.admin_token),
                )
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(body))?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok((status, body))
        })
        .await
    }

    /// One JSON request that must succeed (2xx).
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.request_raw(method.clone(), path, body).await?;
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => (b.error.code, b.error.message),
                Err(_) => (String::new(), String::from_utf8_lossy(&bytes).into_owned()),
            };
            return Err(ClientError::Status {
                method,
                path: path.to_owned(),
                status,
                code,
                message,
            });
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    pub async fn create_lesson(&self, title: &str, mode: &str) -> Result<Lesson, ClientError> {
        self.request(
            Method::POST,
            "/api/lessons",
            Some(serde_json::json!({
                "title": title,
                "subject": "load test",
                "grade": "5",
                "mode": mode,
            })),
        )
        .await
    }

    /// An invite for `role` with a display name; `ttl_secs` shortens its life.
    pub async fn create_invite(
        &self,
        lesson: i64,
        role: Role,
        name: &str,
        ttl_secs: Option<u64>,
    ) -> Result<Invite, ClientError> {
        let mut body = serde_json::json!({ "role": role, "name": name });
        if let Some(ttl) = ttl_secs {
            body["ttl_secs"] = ttl.into();
        }
        self.request(
            Method::POST,
            &format!("/api/lessons/{lesson}/invites"),
            Some(body),
        )
        .await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let (status, body) = self.request_raw(Method::GET, "/metrics", None).await?;
        if !status.is_success() {
            return Err(ClientError::Status {
                method: Method::GET,
                path: "/metrics".into(),
                status,
                code: String::new(),
                message: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// Sums every sample of `name` (any labels) in Prometheus text; `None` when absent.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // The name must end here: `name value` or `name{labels} value`.
        let rest = match rest.chars().next() {
            Some(' ') => rest,
            Some('{') => match rest.find('}') {
                Some(end) => &rest[end + 1..],
                None => continue,
            },
            _ => continue,
        };
        if let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

fn parse_http_url(url: &str) -> Result<SocketAddr, ClientError> {
    let bad = || ClientError::BadUrl(url.to_owned());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.split(['/', '#', '?']).next().ok_or_else(bad)?;
    authority.parse().map_err(|_| bad())
}

/// What the server said on `join`.
#[derive(Debug, Clone)]
pub struct Joined {
    pub you: ParticipantInfo,
    pub lesson: LessonSnapshot,
    pub participants: Vec<ParticipantInfo>,
    pub publications: Vec<PublicationInfo>,
}

enum Outgoing {
    Text(String),
    Close,
}

/// Puts messages on a signaling connection. Cheap to clone.
#[derive(Clone)]
pub struct SignalingSender {
    tx: mpsc::Sender<Outgoing>,
}

impl SignalingSender {
    pub async fn send(&self, msg: &ClientMessage) -> Result<(), ClientError> {
        self.send_raw(serde_json::to_string(msg)?).await
    }

    /// Sends a text frame as is (for malformed input on purpose).
    pub async fn send_raw(&self, text: String) -> Result<(), ClientError> {
        self.tx
            .send(Outgoing::Text(text))
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Closes the socket with a close frame (a clean goodbye).
    pub async fn close(&self) {
        // Already closed is closed enough.
        let _ = self.tx.send(Outgoing::Close).await;
    }
}

/// Frames waiting in either direction; the pump stops reading the socket while the inbox is
/// full, so a slow consumer pushes back on the server instead of growing memory.
const QUEUE: usize = 256;

/// One `/ws` connection.
pub struct SignalingClient {
    sender: SignalingSender,
    inbox: mpsc::Receiver<ServerMessage>,
    pump: JoinHandle<()>,
}

impl SignalingClient {
    /// Opens `ws://HOST:PORT/ws`.
    pub async fn connect(url: &str, wait: Duration) -> Result<SignalingClient, ClientError> {
        let (ws, _) = within(wait, "the websocket handshake", async {
            Ok(tokio_tungstenite::connect_async(url).await?)
        })
        .await?;
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(QUEUE);
        let (in_tx, inbox) = mpsc::channel(QUEUE);
        let pump = tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            loop {
                tokio::select! {
                    out = out_rx.recv() => match out {
                        Some(Outgoing::Text(text)) => {
                            if let Err(e) = sink.send(Message::text(text)).await {
                                debug!("websocket send failed: {e}");
                                break;
                            }
                        }
                        Some(Outgoing::Close) | None => {
                            let _ = sink.close().await;
                            break;
                        }
                    },
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            match serde_json::from_str::<ServerMessage>(&text) {
                                Ok(msg) => {
                                    if in_tx.send(msg).await.is_err() {
                                        break;
                                    }
                                }
                                // A message type newer than this bot: not an error for it.
                                Err(e) => debug!("unparsed server message ({e}): {text}"),
                            }
                        }
                        Some(Ok(Message::Close(_))) | None => break,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            debug!("websocket read failed: {e}");
                            break;
                        }
                    },
                }
            }
        });
        Ok(SignalingClient {
            sender: SignalingSender { tx: out_tx },
            inbox,
            pump,
        })
    }

    pub fn sender(&self) -> SignalingSender {
        self.sender.clone()
    }

    pub async fn send(&self, msg: &ClientMessage) -> Result<(), ClientError> {
        self.sender.send(msg).await
    }

    pub async fn send_raw(&self, text: impl Into<String>) -> Result<(), ClientError> {
        self.sender.send_raw(text.into()).await
    }

    /// The next message from the server.
    pub async fn recv(&mut self, wait: Duration) -> Result<ServerMessage, ClientError> {
        let inbox = &mut self.inbox;
        within(wait, "a server message", async {
            inbox.recv().await.ok_or(ClientError::Closed)
        })
        .await
    }

    /// Skips messages until one matches `pred`.
    pub async fn recv_until(
        &mut self,
        wait: Duration,
        what: &str,
        mut pred: impl FnMut(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, ClientError> {
        let inbox = &mut self.inbox;
        within(wait, what, async {
            loop {
                let msg = inbox.recv().await.ok_or(ClientError::Closed)?;
                if pred(&msg) {
                    return Ok(msg);
                }
                debug!("skipped while waiting for {what}: {msg:?}");
            }
        })
        .await
    }

    /// The reply (an `error` or anything else) to the request with `id`.
    pub async fn reply_to(
        &mut self,
        id: &str,
        wait: Duration,
    ) -> Result<ServerMessage, ClientError> {
        self.recv_until(wait, &format!("the reply to {id:?}"), |m| {
            reply_id(m) == Some(id)
        })
        .await
    }

    /// Sends `join` and waits for `joined`; an `error` reply becomes [`ClientError::Refused`].
    pub async fn join(&mut self, token: &str, wait: Duration) -> Result<Joined, ClientError> {
        self.join_lesson(token, None, wait).await
    }

    /// [`join`](Self::join), naming the lesson meant (a token for another is then refused).
    pub async fn join_lesson(
        &mut self,
        token: &str,
        lesson: Option<i64>,
        wait: Duration,
    ) -> Result<Joined, ClientError> {
        self.send(&ClientMessage::Join {
            id: Some("join".into()),
            token: token.to_owned(),
            lesson,
        })
        .await?;
        match self.reply_to("join", wait).await? {
            ServerMessage::Joined {
                you,
                lesson,
                participants,
                publications,
                ..
            } => Ok(Joined {
                you,
                lesson,
                participants,
                publications,
            }),
            ServerMessage::Error { code, message, .. } => {
                Err(ClientError::Refused { code, message })
            }
            other => {
                warn!("unexpected reply to join: {other:?}");
                Err(ClientError::Closed)
            }
        }
    }

    /// Splits into the sender and the inbox, for a bot's own message loop.
    pub fn into_parts(
        self,
    ) -> (
        SignalingSender,
        mpsc::Receiver<ServerMessage>,
        JoinHandle<()>,
    ) {
        (self.sender, self.inbox, self.pump)
    }

    /// Closes with a close frame and waits (bounded) for the pump to finish.
    pub async fn close(self, wait: Duration) {
        self.sender.close().await;
        let _ = timeout(wait, self.pump).await;
    }
}

/// The request id a server message answers, if any.
pub fn reply_id(msg: &ServerMessage) -> Option<&str> {
    match msg {
        ServerMessage::Joined { id, .. }
        | ServerMessage::Answer { id, .. }
        | ServerMessage::Error { id, .. }
        | ServerMessage::Pong { id } => id.as_deref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_urls() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(parse_http_url("http://127.0.0.1:8080").unwrap(), a);
        assert_eq!(parse_http_url("http://127.0.0.1:8080/").unwrap(), a);
        assert_eq!(parse_http_url("http://127.0.0.1:8080/#key=abc").unwrap(), a);
        assert!(parse_http_url("https://127.0.0.1:8080").is_err());
        assert!(parse_http_url("http://localhost:8080").is_err());
    }

    #[test]
    fn sums_metrics() {
        let text = "# HELP classroom_sfu_rtp_packets_out x\n\
                    # TYPE classroom_sfu_rtp_packets_out counter\n\
                    classroom_sfu_rtp_packets_out 12\n\
                    classroom_sfu_rtp_packets_out_total 99\n\
                    classroom_sfu_rtp_packets_outx{a=\"b\"} 5\n\
                    classroom_ws{shard=\"0\"} 3\n\
                    classroom_ws{shard=\"1\"} 4.5\n";
        assert_eq!(
            metric_sum(text, "classroom_sfu_rtp_packets_out"),
            Some(12.0)
        );
        assert_eq!(metric_sum(text, "classroom_ws"), Some(7.5));
        assert_eq!(metric_sum(text, "nothing"), None);
    }
}
