//! Records a synthetic lesson in real time through a `RecorderHandle`: a camera looping an
//! IVF clip and two voices playing tones. For manual checks of the recorder and for the
//! crash test, which kills it mid-recording.
//!
//! `record-synthetic LIBRARY ID CAMERA.ivf SECONDS`
//! Prints `recorded N s` every second (after the media of that second was handed over).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use recorder::synthetic::{ToneSource, VideoSource, read_ivf};
use recorder::{LessonMeta, RecorderHandle, Recording, RecordingId, TrackId, TrackKind};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [library, id, clip, seconds] = args.as_slice() else {
        bail!("usage: record-synthetic LIBRARY ID CAMERA.ivf SECONDS");
    };
    let library = PathBuf::from(library);
    let seconds: u64 = seconds.parse().context("SECONDS")?;
    let frames = read_ivf(clip.as_ref()).context("reading the camera clip")?;
    let t0 = Instant::now();
    let lesson = LessonMeta {
        lesson_id: id.clone(),
        title: "synthetic lesson".into(),
        ..LessonMeta::default()
    };
    let recording = Recording::create(&library, RecordingId::new(id.as_str())?, lesson, t0)?;
    let handle = RecorderHandle::spawn(recording, 1024, |notice| {
        eprintln!("notice: {notice:?}");
    })?;
    let mut camera = VideoSource::new(frames, 30, 1, t0);
    let mut voices = [
        (TrackId(2), ToneSource::new(440.0, 0.5, 2, t0)?),
        (TrackId(3), ToneSource::new(660.0, 0.3, 3, t0)?),
    ];
    let end = t0 + Duration::from_secs(seconds);
    let mut next_frame = t0;
    let mut next_audio = t0;
    let mut next_report = t0 + Duration::from_secs(1);
    let mut out = std::io::stdout();
    writeln!(out, "recording started")?;
    out.flush()?;
    while next_frame.min(next_audio) < end {
        let due = next_frame.min(next_audio);
        // Pacing a real-time source, as a browser's capture clock would.
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if next_audio <= due {
            for (track, tone) in &mut voices {
                let packet = tone.next_packet(next_audio)?;
                handle.push_rtp(Instant::now(), *track, TrackKind::Voice, packet);
            }
            next_audio += Duration::from_millis(20);
        }
        if next_frame <= due {
            for packet in camera.next_frame(next_frame) {
                handle.push_rtp(Instant::now(), TrackId(1), TrackKind::Camera, packet);
            }
            next_frame += camera.interval;
        }
        if due >= next_report {
            writeln!(out, "recorded {} s", (due - t0).as_secs())?;
            out.flush()?;
            next_report += Duration::from_secs(1);
        }
    }
    let dropped = handle.dropped();
    let meta = handle.finish(Instant::now())?;
    writeln!(
        out,
        "finished: {:?}, {} ms, dropped inputs: {dropped}",
        meta.state, meta.duration_ms
    )?;
    Ok(())
}
