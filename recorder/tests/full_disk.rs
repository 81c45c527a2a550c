//! The disk fills up mid-lesson (a byte budget at the storage boundary that fails with
//! ENOSPC, exactly as a full disk does): the recording stops with a clear error, the caller
//! keeps running, and what was recorded before stays playable.

mod common;

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::*;
use recorder::{
    LessonMeta, QuotaStorage, RecorderConfig, RecorderError, RecorderHandle, RecorderNotice,
    Recording, RecordingId, RecordingState, TrackKind,
};

const BUDGET: u64 = 256 * 1024 + 350 * 1024;

fn check_failed_recording(dir: &std::path::Path, duration_ms: u64) {
    let main = dir.join("main.webm");
    let probe = ffprobe(&main);
    let mut found = codecs(&probe);
    found.sort();
    assert_eq!(found, ["opus", "vp8"]);
    assert!(duration_s(&probe) >= 1.0, "{probe}");
    assert!((duration_s(&probe) * 1000.0 - duration_ms as f64).abs() < 500.0);
    assert_eq!(
        decode_errors(&main),
        "",
        "what was recorded decodes cleanly"
    );
    assert!(!dir.join("main.webm.part").exists());
    let meta: recorder::RecordingMeta =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta.state, RecordingState::Failed);
    assert_eq!(
        meta.error.as_ref().map(|e| e.code.as_str()),
        Some("disk_full")
    );
}

#[test]
fn a_full_disk_stops_the_recording_and_keeps_what_was_recorded() {
    if !have_ffmpeg() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let clip = make_ivf(work.path(), "camera.ivf", "640x360", 30, 2, 30);
    let storage = Arc::new(QuotaStorage::new(BUDGET));
    let t0 = Instant::now();
    let length = Duration::from_secs(20);
    let id = RecordingId::new("full").unwrap();
    let mut rec = Recording::create_with(
        storage.clone(),
        work.path(),
        id,
        LessonMeta::default(),
        t0,
        RecorderConfig::default(),
    )
    .unwrap();
    let mut publishers = vec![
        Publisher::video(1, TrackKind::Camera, &clip, 30, t0),
        Publisher::tone(2, 440.0, 0.5, t0),
    ];
    let mut error = None;
    for d in network(t0, length, &mut publishers, &[]) {
        if let Err(e) = rec.push_rtp(d.at, d.track, d.kind, d.packet) {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("the budget runs out within 20 s of media");
    assert_eq!(error.code(), "disk_full");
    assert!(error.to_string().contains("disk full"), "{error}");
    assert!(matches!(error, RecorderError::DiskFull { .. }));
    // Stopped for good, without panicking.
    let later = rec.handle_timeout(t0 + length).unwrap_err();
    assert_eq!(later.code(), "stopped");
    let meta = rec.finish(t0 + length).unwrap();
    assert_eq!(meta.state, RecordingState::Failed);
    assert!(meta.files.main.is_some());
    check_failed_recording(&work.path().join("full"), meta.duration_ms);
}

#[test]
fn the_threaded_recorder_reports_a_full_disk_and_keeps_running() {
    if !have_ffmpeg() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let clip = make_ivf(work.path(), "camera.ivf", "640x360", 30, 2, 30);
    let storage = Arc::new(QuotaStorage::new(BUDGET));
    let t0 = Instant::now();
    let id = RecordingId::new("full-threaded").unwrap();
    let rec = Recording::create_with(
        storage,
        work.path(),
        id,
        LessonMeta::default(),
        t0,
        RecorderConfig::default(),
    )
    .unwrap();
    let (tx, notices) = mpsc::channel();
    let handle = RecorderHandle::spawn(rec, 1024, move |n| {
        let _ = tx.send(n);
    })
    .unwrap();
    let mut publishers = vec![
        Publisher::video(1, TrackKind::Camera, &clip, 30, t0),
        Publisher::tone(2, 440.0, 0.5, t0),
    ];
    // Real time: the recorder thread mixes on its own clock, so packets are handed over
    // when they are due (pacing the source, not waiting for the recorder).
    let mut failure = None;
    'feed: for d in network(t0, Duration::from_secs(30), &mut publishers, &[]) {
        std::thread::sleep(d.at.saturating_duration_since(Instant::now()));
        handle.push_rtp(d.at, d.track, d.kind, d.packet);
        while let Ok(notice) = notices.try_recv() {
            if let RecorderNotice::Failed { error, .. } = notice {
                failure = Some(error);
                break 'feed;
            }
        }
    }
    let error = failure.expect("a Failed notice within 30 s");
    assert_eq!(error.code, "disk_full");
    assert!(error.message.contains("disk full"), "{}", error.message);
    // Later input is refused quietly, and finishing returns the failed record.
    let meta = handle.finish(Instant::now()).unwrap();
    assert_eq!(meta.state, RecordingState::Failed);
    check_failed_recording(&work.path().join("full-threaded"), meta.duration_ms);
}
