//! The `classroom` binary: prints its ready lines, serves, and stops cleanly on SIGTERM.

mod common;

use std::process::Stdio;

use common::WAIT;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn prints_ready_lines_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_classroom"))
        .args(["--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start classroom");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("ready line in time")
            .unwrap()
            .expect("a line")
    };

    assert_eq!(next().await, "Classroom is ready.");
    let console = next().await;
    let rest = console
        .strip_prefix("  Teacher console: http://")
        .unwrap_or_else(|| panic!("{console:?}"));
    let (addr, key) = rest.split_once("/#key=").unwrap();
    assert!(addr.starts_with("127.0.0.1:"));
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert_eq!(key, token.trim());
    // A fresh data directory: the admin account was just made, with a one-time link.
    let first = next().await;
    let link = first
        .strip_prefix("  First sign-in (admin, one-time, 24 h): ")
        .unwrap_or_else(|| panic!("{first:?}"));
    let once = link
        .strip_prefix(&format!("http://{addr}/signin.html#once="))
        .unwrap_or_else(|| panic!("{link}"));
    assert!(
        once.len() == 64 && once.bytes().all(|b| b.is_ascii_hexdigit()),
        "{once}"
    );
    let media = next().await;
    let media = media
        .strip_prefix("  Media (UDP):     ")
        .unwrap_or_else(|| panic!("{media:?}"));
    assert!(
        media.starts_with("127.0.0.1:") && !media.ends_with(":0"),
        "{media}"
    );

    // A plain HTTP/1.1 request, so the test needs no HTTP client.
    let mut tcp = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");

    // The next start on the same directory has its admin already: no sign-in line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_classroom"))
        .args(["--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start classroom again");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ready = Vec::new();
    while ready.len() < 3 {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("ready line in time")
            .unwrap()
            .expect("a line");
        ready.push(line);
    }
    assert!(ready[1].starts_with("  Teacher console: "), "{ready:?}");
    assert!(ready[2].starts_with("  Media (UDP):"), "{ready:?}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn refuses_an_unreachable_media_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_classroom"))
        .args(["--http", "127.0.0.1:0", "--udp", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .output();
    let output = tokio::time::timeout(WAIT, output).await.unwrap().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--public-ip"), "{stderr}");
}
