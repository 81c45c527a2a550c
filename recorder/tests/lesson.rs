//! A whole lesson recorded end to end with virtual time: a teacher's camera and voice, a
//! student's voice, a screen share, events, reordering and a lost packet; the files are then
//! judged by ffprobe and ffmpeg.

mod common;

use std::time::{Duration, Instant};

use common::*;
use recorder::{
    LessonMeta, Recording, RecordingId, RecordingState, TimelineEvent, TrackKind, read_timeline,
};

#[test]
fn a_lesson_is_recorded_into_playable_seekable_webm() {
    if !have_ffmpeg() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let camera_clip = make_ivf(work.path(), "camera.ivf", "640x360", 30, 2, 30);
    let screen_clip = make_ivf(work.path(), "screen.ivf", "1280x720", 5, 2, 5);
    let library = work.path().join("library");
    std::fs::create_dir_all(&library).unwrap();

    let t0 = Instant::now();
    let length = Duration::from_secs(6);
    let lesson = LessonMeta {
        lesson_id: "L1".into(),
        title: "Fractions".into(),
        subject: "mathematics".into(),
        grade: "5".into(),
        teacher: "Li Wei".into(),
        school: "No. 1 Primary".into(),
        started_at: "2026-03-01T08:00:00Z".into(),
    };
    let id = RecordingId::new("lesson-1").unwrap();
    let mut rec = Recording::create(&library, id, lesson.clone(), t0).unwrap();

    // Teacher's camera and voice start together at 0.5 s, so their sync can be measured.
    let start = Duration::from_millis(500);
    let mut publishers = vec![
        Publisher::video(1, TrackKind::Camera, &camera_clip, 30, t0).between(start, length),
        Publisher::tone(2, 440.0, 0.5, t0).between(start, length),
        Publisher::tone(3, 660.0, 0.3, t0).between(Duration::from_secs(2), length),
        Publisher::video(4, TrackKind::Screen, &screen_clip, 5, t0)
            .between(Duration::from_secs(1), length),
    ];
    let deliveries = network(t0, length, &mut publishers, &[(1, 200), (2, 100)]);
    rec.push_event(
        t0 + Duration::from_secs(1),
        TimelineEvent::ScreenShareStarted {
            participant: "teacher".into(),
        },
    )
    .unwrap();
    rec.push_event(
        t0 + Duration::from_millis(2500),
        TimelineEvent::Chat {
            participant: "s1".into(),
            name: "Xiao Ming".into(),
            text: "老师好".into(),
        },
    )
    .unwrap();
    play(&mut rec, t0, length, deliveries);
    let mut keyframe_requests = 0;
    while rec.poll_output().is_some() {
        keyframe_requests += 1;
    }
    let meta = rec.finish(t0 + length).unwrap();

    // meta.json
    assert_eq!(meta.state, RecordingState::Complete);
    assert_eq!(meta.lesson, lesson);
    assert!(meta.seekable);
    assert!(
        meta.duration_ms.abs_diff(6000) <= 500,
        "{}",
        meta.duration_ms
    );
    let stats = meta.stats.clone().unwrap();
    assert!(stats.lost_packets >= 2, "{stats:?}");
    assert!(stats.video_frames > 100, "{stats:?}");
    assert!(
        stats.incomplete_frames >= 1 && stats.concealed_ms >= 20,
        "{stats:?}"
    );
    assert!(keyframe_requests >= 1, "the interval asks for keyframes");
    let on_disk: recorder::RecordingMeta =
        serde_json::from_slice(&std::fs::read(library.join("lesson-1/meta.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk, meta);

    // main.webm: VP8 + Opus, the lesson's duration, cues, decodable and seekable.
    let main = library.join("lesson-1/main.webm");
    let probe = ffprobe(&main);
    let mut found = codecs(&probe);
    found.sort();
    assert_eq!(found, ["opus", "vp8"]);
    let video = &probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_name"] == "vp8")
        .unwrap()
        .clone();
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert!((duration_s(&probe) - 6.0).abs() < 0.5, "{probe}");
    assert!(has_cues(&main), "main.webm has no Cues");
    assert_eq!(decode_errors(&main), "", "main.webm decodes cleanly");
    assert!(seek_decodes(&main, 3.2), "seek into main.webm");

    // Audio and video in sync: the teacher's tone and camera both started at 0.5 s.
    let samples = decode_audio(&main);
    let onset = samples
        .chunks(240)
        .position(|c| goertzel(c, 440.0) > 0.01)
        .expect("the teacher's tone") as f64
        * 240.0
        / 48_000.0;
    let first_video = first_pts(&main, "v");
    assert!(
        (onset - first_video).abs() < 0.1,
        "audio starts at {onset:.3}s, video at {first_video:.3}s"
    );
    assert!((onset - 0.5).abs() < 0.1, "audio onset {onset}");

    // screen.webm: its own file, same clock, same length.
    let screen = library.join("lesson-1/screen.webm");
    let probe = ffprobe(&screen);
    assert_eq!(codecs(&probe), ["vp8"]);
    assert_eq!(probe["streams"][0]["width"].as_u64(), Some(1280));
    assert!((duration_s(&probe) - 6.0).abs() < 0.5, "{probe}");
    assert!(has_cues(&screen));
    assert_eq!(decode_errors(&screen), "");
    let screen_start = first_pts(&screen, "v");
    assert!(
        (screen_start - 1.0).abs() < 0.1,
        "screen starts at {screen_start}"
    );

    // The timeline, in media time.
    let timeline = read_timeline(&library.join("lesson-1/timeline.jsonl")).unwrap();
    let kinds: Vec<_> = timeline.iter().map(|e| (e.t_ms, e.event.clone())).collect();
    assert_eq!(kinds.first().unwrap().1, TimelineEvent::RecordingStarted);
    assert!(
        kinds.iter().any(|(t, e)| *t == 2500
            && matches!(e, TimelineEvent::Chat { text, .. } if text == "老师好"))
    );
    assert!(matches!(
        kinds.last().unwrap(),
        (6000, TimelineEvent::RecordingStopped { .. })
    ));
    assert!(!library.join("lesson-1/main.webm.part").exists());
    assert!(!library.join("lesson-1/.reserve").exists());
}
