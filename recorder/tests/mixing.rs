//! Two publishers send known tones loud enough that their plain sum would clip; the recorded
//! mix must hold both tones and never reach full scale.

mod common;

use std::time::{Duration, Instant};

use common::*;
use recorder::{LessonMeta, Recording, RecordingId};

#[test]
fn two_voices_are_mixed_without_clipping() {
    if !have_ffmpeg() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let length = Duration::from_secs(4);
    let id = RecordingId::new("mix").unwrap();
    let mut rec = Recording::create(work.path(), id, LessonMeta::default(), t0).unwrap();
    // 0.7 + 0.7 peaks at 1.4: twice over full scale without a limiter.
    let mut publishers = vec![
        Publisher::tone(1, 440.0, 0.7, t0),
        Publisher::tone(2, 660.0, 0.7, t0),
    ];
    let deliveries = network(t0, length, &mut publishers, &[(1, 60), (2, 61)]);
    play(&mut rec, t0, length, deliveries);
    let meta = rec.finish(t0 + length).unwrap();
    let stats = meta.stats.unwrap();
    assert!(stats.limited_frames > 0, "the limiter worked: {stats:?}");

    let samples = decode_audio(&work.path().join("mix/main.webm"));
    assert!(samples.len() >= 48_000 * 3, "{} samples", samples.len());
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak < 32_767, "the mix reached full scale ({peak})");
    assert!(peak > 16_000, "the mix is not needlessly quiet ({peak})");

    // One second in the middle, well after the limiter settled.
    let window = &samples[48_000..96_000];
    let (a, b) = (goertzel(window, 440.0), goertzel(window, 660.0));
    let other = goertzel(window, 1000.0).max(goertzel(window, 550.0));
    assert!(a > 100.0 * other, "440 Hz {a:e} vs {other:e}");
    assert!(b > 100.0 * other, "660 Hz {b:e} vs {other:e}");
    assert!(
        a / b < 4.0 && b / a < 4.0,
        "levels kept balanced: {a:e} {b:e}"
    );
}
