//! The recording process is killed with SIGKILL mid-lesson; at the next start `recover`
//! turns what it left into playable files marked `interrupted`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use recorder::{RecordingState, read_timeline, recover};

#[test]
fn a_killed_recorder_leaves_a_recoverable_recording() {
    if !have_ffmpeg() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let clip = make_ivf(work.path(), "camera.ivf", "640x360", 30, 2, 30);
    let library = work.path().join("library");
    std::fs::create_dir_all(&library).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_record-synthetic"))
        .arg(&library)
        .arg("killed")
        .arg(&clip)
        .arg("60")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start record-synthetic");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait (bounded) until four seconds of media were handed to the recorder.
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line == "recorded 4 s" => break,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("record-synthetic did not report 4 s of media: {e}");
            }
        }
    }
    child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
    child.wait().unwrap();
    let dir = library.join("killed");
    assert!(dir.join("main.webm.part").exists());
    assert!(!dir.join("main.webm").exists());

    let recovered = recover(&library);
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    let meta = recovered[0].result.as_ref().expect("recovered");
    assert_eq!(meta.state, RecordingState::Interrupted);
    assert!(meta.seekable);
    assert!(
        meta.duration_ms >= 2000,
        "most of the media: {} ms",
        meta.duration_ms
    );

    let main = dir.join("main.webm");
    let probe = ffprobe(&main);
    let mut found = codecs(&probe);
    found.sort();
    assert_eq!(found, ["opus", "vp8"]);
    assert!((duration_s(&probe) * 1000.0 - meta.duration_ms as f64).abs() < 500.0);
    assert!(has_cues(&main));
    assert_eq!(
        decode_errors(&main),
        "",
        "the recovered file decodes cleanly"
    );
    assert!(!dir.join("main.webm.part").exists());
    assert!(!dir.join(".reserve").exists());
    let timeline = read_timeline(&dir.join("timeline.jsonl")).unwrap();
    assert!(!timeline.is_empty());
    let on_disk: recorder::RecordingMeta =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(on_disk.state, RecordingState::Interrupted);

    // Recovery is done once: a second start finds nothing to do.
    assert!(recover(&library).is_empty());
}
