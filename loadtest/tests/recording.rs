//! Lessons recorded into the library with real peers: a `network` lesson records itself when
//! its teacher arrives, ends into a WebM that `ffprobe` accepts (VP8 + Opus, the lesson's
//! duration, cues), is listed and served with HTTP Range; a recording survives the real
//! `classroom` binary being killed with SIGKILL (listed `interrupted` after the restart); and a
//! library that reaches its quota mid-lesson (`library_quota_bytes`, which fails exactly as a
//! full disk does) stops the recording with `disk_full` while the lesson and the server go on.
//!
//! The bots' VP8 is synthetic (valid framing, not decodable pictures): enough for the
//! container, its streams, duration and cues, which is what is checked here; the recorder
//! crate's own tests decode real VP8.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestServer, WAIT, has_audio_and_keyframe};
use hyper::Method;
use loadtest::{Bot, BotOptions, PublishConfig, RestClient, wait_event};
use serde_json::Value;
use signaling::protocol::{ClientMessage, Role, ServerMessage};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// How long the recorded lessons run: several clusters (about a second each).
const LESSON: Duration = Duration::from_secs(3);

fn ffprobe(path: &Path) -> Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

fn codecs(probe: &Value) -> Vec<String> {
    let mut codecs: Vec<String> = probe["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter_map(|s| s["codec_name"].as_str().map(str::to_owned))
        .collect();
    codecs.sort();
    codecs
}

fn duration_secs(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {probe}"))
}

/// Whether the file holds a Cues element (EBML id `1C 53 BB 6B`): the index players seek by.
fn has_cues(path: &Path) -> bool {
    let bytes = std::fs::read(path).expect("read the recording");
    bytes.windows(4).any(|w| w == [0x1C, 0x53, 0xBB, 0x6B])
}

/// A GET with a `Range` header over plain HTTP/1.1; returns the status line, the headers
/// and the body.
async fn get_range(
    addr: std::net::SocketAddr,
    key: &str,
    path: &str,
    range: &str,
) -> (String, String, Vec<u8>) {
    let mut tcp = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Range: {range}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        response[split + 4..].to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_lesson_is_recorded_end_to_end() {
    let server = TestServer::start(Duration::from_secs(10)).await;
    let lesson = server
        .rest
        .create_lesson("Recorded fractions", "network")
        .await
        .expect("create lesson");
    // A classroom is there first, so it hears the recording start when the teacher arrives.
    let classroom = server.subscriber(&lesson, "Shizi Village").await;
    let mut events = classroom.events();
    let teacher = server.publisher(&lesson, PublishConfig::default()).await;
    wait_event(&mut events, WAIT, "recording_changed (on)", |m| {
        matches!(
            m,
            ServerMessage::RecordingChanged {
                recording: true,
                ..
            }
        )
    })
    .await
    .expect("the classroom hears the recording start");
    let started = Instant::now();

    tokio::time::sleep(LESSON / 2).await;
    teacher
        .signal()
        .send(&ClientMessage::Chat {
            id: None,
            text: "Open your books at page 12".into(),
            to: None,
        })
        .await
        .expect("send chat");
    wait_event(&mut events, WAIT, "the chat message", |m| {
        matches!(m, ServerMessage::Chat { .. })
    })
    .await
    .expect("chat delivered");
    tokio::time::sleep(LESSON / 2).await;

    let ended = Instant::now();
    let _: Value = server
        .rest
        .request(
            Method::POST,
            &format!("/api/lessons/{}/end", lesson.id),
            None,
        )
        .await
        .expect("end the lesson");
    let lesson_secs = ended.duration_since(started).as_secs_f64();

    // The library lists it, complete, newest first.
    let list: Vec<Value> = server
        .rest
        .request(Method::GET, "/api/library?subject=LOAD%20TEST", None)
        .await
        .expect("library");
    assert_eq!(list.len(), 1, "{list:?}");
    let entry = &list[0];
    assert_eq!(entry["state"], "complete", "{entry}");
    assert_eq!(entry["title"], "Recorded fractions");
    assert_eq!(entry["seekable"], true, "{entry}");
    let id = entry["id"].as_str().expect("id").to_owned();
    let none: Vec<Value> = server
        .rest
        .request(Method::GET, "/api/library?q=algebra", None)
        .await
        .expect("library search");
    assert!(none.is_empty(), "{none:?}");

    // The timeline has the chat message, in media time within the lesson.
    let detail: Value = server
        .rest
        .request(Method::GET, &format!("/api/library/{id}"), None)
        .await
        .expect("recording detail");
    let chat = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["type"] == "chat")
        .unwrap_or_else(|| panic!("no chat in {detail}"))
        .clone();
    assert_eq!(chat["text"], "Open your books at page 12");
    assert_eq!(chat["name"], "Teacher bot");
    let chat_ms = chat["t_ms"].as_u64().expect("t_ms");
    assert!(
        chat_ms > 0 && (chat_ms as f64) < lesson_secs * 1000.0,
        "{chat}"
    );
    assert_eq!(detail["urls"]["main"], format!("/media/{id}/main.webm"));

    // main.webm: VP8 + Opus, the lesson's duration, cues.
    let main = server
        .state()
        .recordings
        .library()
        .join(&id)
        .join("main.webm");
    let probe = ffprobe(&main);
    assert_eq!(codecs(&probe), ["opus", "vp8"], "{probe}");
    let recorded = duration_secs(&probe);
    assert!(
        (recorded - lesson_secs).abs() <= 0.5,
        "recorded {recorded:.3} s of a {lesson_secs:.3} s lesson"
    );
    assert!(has_cues(&main), "main.webm has no Cues");

    // Served with HTTP Range, for seeking.
    let key = std::fs::read_to_string(server.state().config.data_dir.join("admin-token"))
        .expect("admin token");
    let (status, headers, body) = get_range(
        server.http,
        key.trim(),
        &format!("/media/{id}/main.webm"),
        "bytes=0-99",
    )
    .await;
    assert!(status.contains(" 206 "), "{status}");
    assert!(headers.contains("content-range: bytes 0-99/"), "{headers}");
    assert!(headers.contains("content-type: video/webm"), "{headers}");
    assert_eq!(body.len(), 100);
    assert_eq!(&body[..4], &[0x1A, 0x45, 0xDF, 0xA3], "an EBML header");
    // Nothing outside a recording's media files is served.
    for path in [
        format!("/media/{id}/meta.json"),
        format!("/media/{id}/..%2Fclassroom.db"),
        "/media/..%2F..%2Fsecret.key/main.webm".to_owned(),
    ] {
        let (status, _, _) = get_range(server.http, key.trim(), &path, "bytes=0-9").await;
        assert!(status.contains(" 404 "), "{path}: {status}");
    }
    let (status, _) = server
        .rest
        .request_raw(Method::GET, "/api/library?from=someday", None)
        .await
        .expect("request");
    assert_eq!(status, 400);

    teacher.close().await;
    classroom.close().await;
    server.stop().await;
}

/// The recorder's reserve (256 KiB, set aside so a recording can always be sealed) plus about
/// three seconds of the bots' media: the quota runs out a few seconds into the lesson, after
/// whole clusters reached the disk.
const QUOTA: u64 = 256 * 1024 + 500 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_library_stops_the_recording_and_the_lesson_goes_on() {
    let server = TestServer::start_with(Duration::from_secs(10), |c| {
        c.library_quota_bytes = Some(QUOTA);
    })
    .await;
    let lesson = server
        .rest
        .create_lesson("Lesson on a full disk", "network")
        .await
        .expect("create lesson");
    let teacher = server.publisher(&lesson, PublishConfig::default()).await;
    let mut events = teacher.events();

    // The teacher moderates, so it hears why the recording stopped.
    let stopped = wait_event(
        &mut events,
        WAIT,
        "recording_changed (off, disk_full)",
        |m| {
            matches!(
                m,
                ServerMessage::RecordingChanged {
                    recording: false,
                    ..
                }
            )
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "the teacher was not told the recording stopped within {WAIT:?} on a \
             {QUOTA}-byte library: {e}"
        )
    });
    let ServerMessage::RecordingChanged { error, .. } = stopped else {
        unreachable!("matched above")
    };
    let error = error.expect("the teacher is told why the recording stopped");
    assert_eq!(error.code, "disk_full", "{error:?}");
    assert!(!error.message.is_empty());

    // The server goes on: it answers, and the lesson still carries media to a classroom that
    // joins now.
    let (status, body) = server
        .rest
        .request_raw(Method::GET, "/healthz", None)
        .await
        .expect("healthz");
    assert_eq!(status, 200, "{body:?}");
    let classroom = server.subscriber(&lesson, "Shizi Village").await;
    classroom
        .wait_media(
            WAIT,
            "media after the recording stopped",
            has_audio_and_keyframe,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", classroom.tracks()));
    assert!(
        !server.state().recordings.is_recording(lesson.id),
        "the recording stays stopped"
    );
    assert_eq!(server.state().metrics.recordings_failed.get(), 1);
    let (status, metrics) = server
        .rest
        .request_raw(Method::GET, "/metrics", None)
        .await
        .expect("metrics");
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics
            .lines()
            .any(|l| l == "classroom_recordings_failed_total 1"),
        "{metrics}"
    );

    // The library lists it as failed, with the reason.
    let list: Vec<Value> = server
        .rest
        .request(Method::GET, "/api/library", None)
        .await
        .expect("library");
    assert_eq!(list.len(), 1, "{list:?}");
    let entry = &list[0];
    assert_eq!(entry["state"], "failed", "{entry}");
    assert_eq!(entry["error"]["code"], "disk_full", "{entry}");
    assert!(entry["duration_ms"].as_u64().unwrap_or(0) > 0, "{entry}");
    let id = entry["id"].as_str().expect("id").to_owned();

    // What was recorded before the disk filled is sealed and playable.
    let dir = server.state().recordings.library().join(&id);
    assert!(!dir.join("main.webm.part").exists(), "main.webm was sealed");
    let probe = ffprobe(&dir.join("main.webm"));
    assert_eq!(codecs(&probe), ["opus", "vp8"], "{probe}");
    assert!(duration_secs(&probe) >= 1.0, "{probe}");

    classroom.close().await;
    teacher.close().await;
    server.stop().await;
}

/// The `classroom` binary of this build, built if need be (`cargo test` builds only the
/// libraries this test links). The build is the workspace's own (`scripts/test` runs the same
/// one first, so there it has nothing to do): building the one package alone would unify
/// features differently and rebuild much of the dependency tree.
fn classroom_binary() -> PathBuf {
    let mut cargo = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cargo.args(["build", "--workspace", "--all-targets"]);
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("run cargo");
    assert!(status.success(), "building classroom failed");
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/recording-<hash> → target/<profile>/classroom
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("classroom")
}

/// A `classroom` process and what its ready lines said.
struct Process {
    child: tokio::process::Child,
    rest: RestClient,
}

async fn start_binary(binary: &Path, data: &Path) -> Process {
    let mut child = tokio::process::Command::new(binary)
        .args(["--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start classroom");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let console = loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("ready lines in time")
            .expect("read stdout")
            .expect("classroom printed its console line");
        if let Some(rest) = line.strip_prefix("  Teacher console: ") {
            break rest.to_owned();
        }
    };
    let (url, key) = console.split_once("/#key=").expect("console link");
    // Keep reading stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Process {
        child,
        rest: RestClient::new(url, key).expect("server URL"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_killed_with_sigkill_is_recovered_as_interrupted() {
    common::init_tracing();
    let binary = classroom_binary();
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let mut first = start_binary(&binary, &data).await;
    let lesson = first
        .rest
        .create_lesson("Interrupted lesson", "network")
        .await
        .expect("create lesson");
    let invite = first
        .rest
        .create_invite(lesson.id, Role::Teacher, "Teacher bot", None)
        .await
        .expect("invite");
    let teacher = Bot::join(
        BotOptions::new("teacher", first.rest.ws_url(), invite.token)
            .publishing(PublishConfig::default()),
    )
    .await
    .expect("teacher joins and publishes");

    // Wait until clusters are on disk (each is synced as it is written): a second of 1 Mbit/s
    // video is over 100 kB.
    let library = data.join("library");
    let part = tokio::time::timeout(WAIT, async {
        loop {
            let found = std::fs::read_dir(&library).ok().and_then(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path().join("main.webm.part"))
                    .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 300_000))
            });
            if let Some(found) = found {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the recording writes clusters to disk");

    first.child.start_kill().expect("SIGKILL");
    let _ = tokio::time::timeout(WAIT, first.child.wait()).await;
    teacher.close().await;
    assert!(part.exists(), "the killed process left its .part file");

    let mut second = start_binary(&binary, &data).await;
    let list: Vec<Value> = second
        .rest
        .request(Method::GET, "/api/library", None)
        .await
        .expect("library");
    assert_eq!(list.len(), 1, "{list:?}");
    let entry = &list[0];
    assert_eq!(entry["state"], "interrupted", "{entry}");
    assert_eq!(entry["title"], "Interrupted lesson");
    assert!(
        entry["duration_ms"].as_u64().unwrap_or(0) >= 1000,
        "{entry}"
    );
    let main = part.with_file_name("main.webm");
    let probe = ffprobe(&main);
    assert_eq!(codecs(&probe), ["opus", "vp8"], "{probe}");
    assert!(duration_secs(&probe) >= 1.0, "{probe}");
    assert!(has_cues(&main), "the recovered file has Cues");

    second.child.start_kill().expect("stop the second process");
    let _ = tokio::time::timeout(WAIT, second.child.wait()).await;
}
