//! CPU per recorded lesson-second: one camera (~1 Mbit/s VP8, 1280x720 at 30 fps) and two
//! voices, through the whole recorder (reorder, depacketize, decode, mix, encode, mux,
//! write, sync, seal). Files go to /dev/shm when it exists, so the figure is CPU, not disk
//! latency. Also prints "recordings per core" (1 s / CPU per lesson-second) and bytes per
//! lesson-minute.
//!
//! `cargo bench -p recorder --bench recording` (needs ffmpeg for the VP8 clip).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use recorder::synthetic::{ToneSource, VideoSource, read_ivf};
use recorder::{LessonMeta, Recording, RecordingId, RtpPacket, TrackId, TrackKind};

const LESSON: Duration = Duration::from_secs(10);

struct Input {
    offset: Duration,
    track: TrackId,
    kind: TrackKind,
    packet: RtpPacket,
}

fn clip(dir: &Path) -> Option<std::path::PathBuf> {
    let path = dir.join("camera.ivf");
    let ok = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=1280x720:rate=30",
        ])
        .args(["-t", "4", "-c:v", "libvpx", "-b:v", "1M", "-g", "150"])
        .args(["-deadline", "realtime", "-cpu-used", "8", "-f", "ivf"])
        .arg(&path)
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(path)
}

fn inputs(clip: &Path) -> Vec<Input> {
    let t0 = Instant::now();
    let mut camera = VideoSource::new(read_ivf(clip).expect("ivf"), 30, 1, t0);
    let mut voices = [
        ToneSource::new(440.0, 0.5, 2, t0).expect("opus"),
        ToneSource::new(660.0, 0.5, 3, t0).expect("opus"),
    ];
    let mut out = Vec::new();
    let mut t = Duration::ZERO;
    while t < LESSON {
        for p in camera.next_frame(t0 + t) {
            out.push(Input {
                offset: t,
                track: TrackId(1),
                kind: TrackKind::Camera,
                packet: p,
            });
        }
        t += camera.interval;
    }
    let mut t = Duration::ZERO;
    while t < LESSON {
        for (i, v) in voices.iter_mut().enumerate() {
            let packet = v.next_packet(t0 + t).expect("encode");
            out.push(Input {
                offset: t,
                track: TrackId(2 + i as u64),
                kind: TrackKind::Voice,
                packet,
            });
        }
        t += Duration::from_millis(20);
    }
    out.sort_by_key(|i| i.offset);
    out
}

/// Records one lesson from `inputs`; returns the size of main.webm.
fn record(library: &Path, n: usize, inputs: &[Input]) -> u64 {
    let t0 = Instant::now();
    let id = RecordingId::new(format!("bench-{n}")).expect("id");
    let mut rec = Recording::create(library, id, LessonMeta::default(), t0).expect("create");
    let mut tick = Duration::ZERO;
    for input in inputs {
        while tick < input.offset {
            rec.handle_timeout(t0 + tick).expect("timeout");
            tick += Duration::from_millis(20);
        }
        rec.push_rtp(
            t0 + input.offset,
            input.track,
            input.kind,
            input.packet.clone(),
        )
        .expect("push");
    }
    rec.finish(t0 + LESSON).expect("finish");
    let dir = library.join(format!("bench-{n}"));
    let size = std::fs::metadata(dir.join("main.webm")).map_or(0, |m| m.len());
    let _ = std::fs::remove_dir_all(dir);
    size
}

fn bench(c: &mut Criterion) {
    let work = tempfile::tempdir().expect("tempdir");
    let Some(clip) = clip(work.path()) else {
        eprintln!("SKIPPED: ffmpeg not installed");
        return;
    };
    let inputs = inputs(&clip);
    let shm = Path::new("/dev/shm");
    let library = if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir")
    } else {
        tempfile::tempdir().expect("tempdir")
    };
    let mut n = 0;
    let mut bytes = 0;
    let mut group = c.benchmark_group("recording");
    group.sample_size(10);
    group.bench_function("lesson_10s_camera_1mbps_2_voices", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                n += 1;
                bytes = record(library.path(), n, &inputs);
            }
            start.elapsed()
        })
    });
    group.finish();

    // The figures, from a few more runs measured directly.
    let runs = 5;
    let start = Instant::now();
    for _ in 0..runs {
        n += 1;
        bytes = record(library.path(), n, &inputs);
    }
    let per_lesson_second = start.elapsed() / (runs * LESSON.as_secs() as u32);
    println!(
        "recorder: {:.2} ms CPU per lesson-second -> {:.0} concurrent recordings per core; \
         {:.2} MB per lesson-minute (camera ~1 Mbit/s + 48 kbit/s mixed audio)",
        per_lesson_second.as_secs_f64() * 1e3,
        1.0 / per_lesson_second.as_secs_f64(),
        bytes as f64 * 60.0 / LESSON.as_secs_f64() / 1e6,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
