//! Shared by the integration tests: real VP8 clips made by ffmpeg, a virtual-time network
//! that delivers synthetic publishers' packets (with reordering and loss), ffprobe/ffmpeg
//! checks and a Goertzel filter.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use recorder::synthetic::{ToneSource, VideoSource, read_ivf};
use recorder::{Recording, RtpPacket, TrackId, TrackKind};

/// Whether ffmpeg and ffprobe are installed; tests skip (saying so) when they are not.
pub fn have_ffmpeg() -> bool {
    let ok = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let found = ok("ffmpeg") && ok("ffprobe");
    if !found {
        eprintln!("SKIPPED: ffmpeg/ffprobe not installed (apt-get install ffmpeg)");
    }
    found
}

/// Encodes a real VP8 clip (ffmpeg's test pattern) to IVF: `gop` frames between keyframes.
pub fn make_ivf(dir: &Path, name: &str, size: &str, fps: u32, seconds: u32, gop: u32) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size={size}:rate={fps}"))
        .args(["-t", &seconds.to_string(), "-c:v", "libvpx", "-b:v", "1M"])
        .args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()])
        .args(["-deadline", "realtime", "-cpu-used", "8", "-f", "ivf"])
        .arg(&path)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
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
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

pub fn codecs(probe: &serde_json::Value) -> Vec<String> {
    probe["streams"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["codec_name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn duration_s(probe: &serde_json::Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("format duration")
}

/// Decodes the whole file; returns ffmpeg's error output (empty when clean).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg could not decode {}",
        path.display()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Seeks to `at` seconds and decodes one video frame; true if ffmpeg succeeded cleanly.
pub fn seek_decodes(path: &Path, at: f64) -> bool {
    Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-ss", &format!("{at}"), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "null", "-"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stderr.is_empty())
}

/// Whether the file has a Cues element, read with webm-iterable.
pub fn has_cues(path: &Path) -> bool {
    use webm_iterable::WebmIterator;
    use webm_iterable::matroska_spec::{Master, MatroskaSpec};
    let file = std::fs::File::open(path).expect("open webm");
    WebmIterator::new(std::io::BufReader::new(file), &[])
        .filter_map(Result::ok)
        .any(|t| matches!(t, MatroskaSpec::Cues(Master::Start)))
}

/// The audio of a file as 48 kHz mono s16 samples.
pub fn decode_audio(path: &Path) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-f", "s16le", "-ac", "1", "-ar", "48000", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The pts (seconds) of the first packet of stream `kind` ("v" or "a").
pub fn first_pts(path: &Path, kind: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            kind,
            "-show_entries",
            "packet=pts_time",
        ])
        .args(["-read_intervals", "%+#1", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .expect("a first packet")
}

/// Relative power of `freq` in `samples` (Goertzel), normalised by length.
pub fn goertzel(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len() as f64).powi(2)
}

/// One packet on the simulated network.
pub struct Delivery {
    pub at: Instant,
    pub track: TrackId,
    pub kind: TrackKind,
    pub packet: RtpPacket,
}

/// A publisher in a simulated lesson.
pub enum Source {
    Video(VideoSource),
    Tone(ToneSource),
}

pub struct Publisher {
    pub track: TrackId,
    pub kind: TrackKind,
    pub source: Source,
    pub from: Duration,
    pub until: Duration,
}

impl Publisher {
    pub fn video(track: u64, kind: TrackKind, clip: &Path, fps: u32, t0: Instant) -> Self {
        let frames = read_ivf(clip).expect("read ivf");
        Self {
            track: TrackId(track),
            kind,
            source: Source::Video(VideoSource::new(frames, fps, 1000 + track as u32, t0)),
            from: Duration::ZERO,
            until: Duration::MAX,
        }
    }

    pub fn tone(track: u64, freq: f32, amplitude: f32, t0: Instant) -> Self {
        Self {
            track: TrackId(track),
            kind: TrackKind::Voice,
            source: Source::Tone(
                ToneSource::new(freq, amplitude, 2000 + track as u32, t0).expect("opus"),
            ),
            from: Duration::ZERO,
            until: Duration::MAX,
        }
    }

    pub fn between(mut self, from: Duration, until: Duration) -> Self {
        self.from = from;
        self.until = until;
        self
    }
}

/// Everything the publishers send during `length`, delivered 5 ms later; then every 37th
/// packet swaps places with the next (reordering) and the packets in `lose` (track number,
/// index of the packet within that track) are dropped.
pub fn network(
    t0: Instant,
    length: Duration,
    publishers: &mut [Publisher],
    lose: &[(u64, usize)],
) -> Vec<Delivery> {
    let mut out = Vec::new();
    for p in publishers.iter_mut() {
        let mut t = p.from;
        while t < length.min(p.until) {
            let send = t0 + t;
            let (packets, step) = match &mut p.source {
                Source::Video(v) => (v.next_frame(send), v.interval),
                Source::Tone(s) => (
                    vec![s.next_packet(send).expect("encode")],
                    Duration::from_millis(20),
                ),
            };
            for packet in packets {
                out.push(Delivery {
                    at: send + Duration::from_millis(5),
                    track: p.track,
                    kind: p.kind,
                    packet,
                });
            }
            t += step;
        }
    }
    out.sort_by_key(|d| d.at);
    for i in (0..out.len().saturating_sub(1)).step_by(37) {
        let at = out[i].at;
        out[i].at = out[i + 1].at;
        out[i + 1].at = at;
        out.swap(i, i + 1);
    }
    let mut counts = std::collections::HashMap::new();
    out.retain(|d| {
        let n = counts.entry(d.track).or_insert(0usize);
        *n += 1;
        !lose.contains(&(d.track.0, *n - 1))
    });
    out
}

/// Feeds `deliveries` into `rec`, with a timeout tick every 10 ms of virtual time.
pub fn play(rec: &mut Recording, t0: Instant, length: Duration, deliveries: Vec<Delivery>) {
    let mut next_tick = t0;
    let mut deliveries = deliveries.into_iter().peekable();
    while next_tick <= t0 + length {
        while let Some(d) = deliveries.next_if(|d| d.at <= next_tick) {
            rec.push_rtp(d.at, d.track, d.kind, d.packet)
                .expect("push_rtp");
        }
        rec.handle_timeout(next_tick).expect("handle_timeout");
        next_tick += Duration::from_millis(10);
    }
}
