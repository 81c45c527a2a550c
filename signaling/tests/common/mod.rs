//! Shared helpers for the integration tests: a real server on OS-chosen ports with its data in
//! a temporary directory, REST calls through the router, and a WebSocket client. Every wait is
//! bounded by [`WAIT`].

#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use signaling::{Config, Server};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower::ServiceExt;

/// The longest any single step of a test may wait.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            http: "127.0.0.1:0".parse().unwrap(),
            udp: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        tweak(&mut config);
        let server = tokio::time::timeout(WAIT, Server::start(config))
            .await
            .expect("server start timed out")
            .expect("server start");
        TestServer { server, dir }
    }

    pub async fn stop(self) {
        tokio::time::timeout(WAIT, self.server.shutdown())
            .await
            .expect("shutdown timed out");
    }

    /// One REST call through the router (`oneshot`), with the admin token when `auth`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string());
        self.call_raw(method, path, body.as_deref(), auth).await
    }

    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        auth: bool,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "school.example:8080");
        if auth {
            request = request.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.server.admin_token()),
            );
        }
        let request = match body {
            Some(b) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_owned())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let app = signaling::app(self.server.state().clone());
        let response = tokio::time::timeout(WAIT, app.oneshot(request))
            .await
            .expect("request timed out")
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    pub async fn create_lesson(&self, mode: &str) -> i64 {
        let (status, body) = self
            .call(
                "POST",
                "/api/lessons",
                Some(json!({"title": "Music", "subject": "music", "grade": "5", "mode": mode})),
                true,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().unwrap()
    }

    pub async fn invite(&self, lesson: i64, role: &str, name: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                &format!("/api/lessons/{lesson}/invites"),
                Some(json!({"role": role, "name": name})),
                true,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn connect(&self) -> Client {
        let url = format!("ws://{}/ws", self.server.http_addr());
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("connect");
        Client { ws }
    }

    /// Connects and joins; returns the client and its `joined` message.
    pub async fn join(&self, token: &str) -> (Client, Value) {
        let mut client = self.connect().await;
        client
            .send(json!({"type": "join", "id": "j", "token": token}))
            .await;
        let joined = client.recv().await;
        assert_eq!(joined["type"], "joined", "{joined}");
        (client, joined)
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.ws.send(Message::text(text)))
            .await
            .expect("send timed out")
            .expect("send");
    }

    /// The next JSON message; pings and pongs are skipped (tungstenite answers pings).
    pub async fn recv(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no message in time")
                .expect("socket closed")
                .expect("socket error");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next message of type `kind`, skipping others (e.g. media offers).
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] == kind {
                return m;
            }
        }
    }

    /// Every message queued to this client so far, by type. A ping is answered after
    /// everything queued before it, and the hub queues a change to everyone before it answers
    /// the one who asked, so once that one has its reply, this sees any broadcast the request
    /// caused.
    pub async fn pending(&mut self) -> Vec<String> {
        self.send(serde_json::json!({"type": "ping", "id": "barrier"}))
            .await;
        let mut seen = Vec::new();
        loop {
            let m = self.recv().await;
            if m["type"] == "pong" && m["id"] == "barrier" {
                return seen;
            }
            seen.push(m["type"].as_str().unwrap_or("?").to_owned());
        }
    }

    /// Waits for the server to close the socket; returns the close code, if one was sent.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("socket not closed in time");
            match frame {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Leaves: a full closing handshake (our close, then the server's reply), which the server
    /// takes as leaving; a socket that just drops is a participant that may come back.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, async {
            self.ws.close(None).await?;
            while let Some(frame) = self.ws.next().await {
                frame?;
            }
            Ok::<(), tokio_tungstenite::tungstenite::Error>(())
        })
        .await;
    }
}

// --- accounts: real HTTP with a cookie, as a browser would ---------------------------------

impl TestServer {
    /// Stops the server and starts a new one on the same data directory and settings.
    pub async fn restart(self) -> TestServer {
        let config = (*self.server.state().config).clone();
        let dir = self.dir;
        tokio::time::timeout(WAIT, self.server.shutdown())
            .await
            .expect("shutdown timed out");
        let config = Config {
            http: "127.0.0.1:0".parse().unwrap(),
            udp: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let server = tokio::time::timeout(WAIT, Server::start(config))
            .await
            .expect("server restart timed out")
            .expect("server restart");
        TestServer { server, dir }
    }

    /// A fresh browser-like client of this server, with no cookie yet.
    pub fn agent(&self) -> Agent {
        Agent {
            addr: self.server.http_addr(),
            cookie: None,
            set_cookies: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Creates an account with a password through the API key; returns its id.
    pub async fn create_account(&self, username: &str, role: &str, password: &str) -> i64 {
        let (status, body) = self
            .call(
                "POST",
                "/api/accounts",
                Some(json!({
                    "username": username,
                    "display_name": format!("{username} (display)"),
                    "role": role,
                    "password": password,
                })),
                true,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["account"]["id"].as_i64().unwrap()
    }

    /// A client signed in as `username`.
    pub async fn signed_in(&self, username: &str, password: &str) -> Agent {
        let mut agent = self.agent();
        let (status, body) = agent.signin(username, password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        agent
    }
}

/// One HTTP/1.1 request per connection over loopback, keeping the session cookie the server
/// sets like a browser's cookie jar would, and sending `Origin` on changes like `fetch` does.
pub struct Agent {
    pub addr: std::net::SocketAddr,
    /// `classroom_session=…` to send, if the server set one.
    pub cookie: Option<String>,
    /// Every `Set-Cookie` of the last reply, as sent.
    pub set_cookies: Vec<String>,
    /// Extra headers for every request (e.g. a forged `Origin`).
    pub headers: Vec<(String, String)>,
}

impl Agent {
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self.call_full(method, path, body).await;
        (status, value)
    }

    pub async fn call_full(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        use hyper_util::rt::TokioIo;

        let tcp = tokio::time::timeout(WAIT, TcpStream::connect(self.addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP handshake");
        tokio::spawn(connection);

        let host = self.addr.to_string();
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &host);
        let forged_origin = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("origin"));
        if method != "GET" && !forged_origin {
            request = request.header(header::ORIGIN, format!("http://{host}"));
        }
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = match body {
            Some(b) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(http_body_util::Full::new(bytes_of(b.to_string()))),
            None => request.body(http_body_util::Full::new(bytes_of(String::new()))),
        }
        .unwrap();
        let response = tokio::time::timeout(WAIT, sender.send_request(request))
            .await
            .expect("response timed out")
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        self.set_cookies = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for set in &self.set_cookies {
            let parsed = axum_extra::extract::cookie::Cookie::parse(set.clone()).unwrap();
            if parsed.name() == "classroom_session" {
                let gone =
                    parsed.max_age().is_some_and(|a| a.is_zero()) || parsed.value().is_empty();
                self.cookie = (!gone).then(|| format!("classroom_session={}", parsed.value()));
            }
        }
        let bytes = tokio::time::timeout(WAIT, response.into_body().collect())
            .await
            .expect("body timed out")
            .unwrap()
            .to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, headers, value)
    }

    pub async fn signin(&mut self, username: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/api/auth/signin",
            Some(json!({"username": username, "password": password})),
        )
        .await
    }
}

fn bytes_of(text: String) -> axum::body::Bytes {
    axum::body::Bytes::from(text)
}
