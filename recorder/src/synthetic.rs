//! Synthetic publishers, packetized exactly as a browser's would be: VP8 frames looped from
//! an IVF clip (ffmpeg makes one in a second) and Opus-encoded sine tones. The benchmark, the
//! tests and the `record-synthetic` tool feed recordings with them.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opus::{Application, Channels, Encoder};
use rtc::media::io::ivf_reader::IVFReader;
use rtc::rtp::Packet;
use rtc::rtp::codec::opus::OpusPayloader;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::{Packetizer, new_packetizer};
use rtc::rtp::sequence::new_random_sequencer;

use crate::error::RecorderError;

const MTU: usize = 1200;

/// Reads every frame of an IVF file.
pub fn read_ivf(path: &Path) -> io::Result<Vec<Bytes>> {
    let file = File::open(path)?;
    let (mut reader, _header) =
        IVFReader::new(BufReader::new(file)).map_err(|e| io::Error::other(e.to_string()))?;
    let mut frames = Vec::new();
    while let Ok((frame, _)) = reader.parse_next_frame() {
        frames.push(frame.freeze());
    }
    if frames.is_empty() {
        return Err(io::Error::other(format!("{}: no frames", path.display())));
    }
    Ok(frames)
}

/// A camera or screen publisher looping a clip.
pub struct VideoSource {
    frames: Vec<Bytes>,
    next: usize,
    packetizer: Box<dyn Packetizer>,
    ticks_per_frame: u32,
    /// Time between frames.
    pub interval: Duration,
}

impl std::fmt::Debug for VideoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoSource")
            .field("frames", &self.frames.len())
            .field("next", &self.next)
            .finish()
    }
}

impl VideoSource {
    /// Loops `frames` (the first must be a keyframe) at `fps`.
    pub fn new(frames: Vec<Bytes>, fps: u32, ssrc: u32, now: Instant) -> Self {
        let mut payloader = Vp8Payloader::default();
        payloader.enable_picture_id = true;
        let fps = fps.max(1);
        Self {
            frames,
            next: 0,
            packetizer: Box::new(new_packetizer(
                now,
                MTU,
                96,
                ssrc,
                Box::new(payloader),
                Box::new(new_random_sequencer()),
                90_000,
            )),
            ticks_per_frame: 90_000 / fps,
            interval: Duration::from_secs(1) / fps,
        }
    }

    /// The packets of the next frame.
    pub fn next_frame(&mut self, now: Instant) -> Vec<Packet> {
        let Some(frame) = self
            .frames
            .get(self.next % self.frames.len().max(1))
            .cloned()
        else {
            return Vec::new();
        };
        self.next += 1;
        self.packetizer
            .packetize(now, &frame, self.ticks_per_frame)
            .unwrap_or_default()
    }

    /// Frames sent so far.
    pub fn frames_sent(&self) -> usize {
        self.next
    }
}

/// A microphone publisher playing a sine tone, one 20 ms Opus packet at a time.
pub struct ToneSource {
    encoder: Encoder,
    freq: f32,
    amplitude: f32,
    sample: u64,
    packetizer: Box<dyn Packetizer>,
}

impl std::fmt::Debug for ToneSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToneSource")
            .field("freq", &self.freq)
            .field("amplitude", &self.amplitude)
            .finish()
    }
}

impl ToneSource {
    /// A tone of `freq` Hz at `amplitude` (full scale is 1.0), in-band FEC on like a browser.
    pub fn new(freq: f32, amplitude: f32, ssrc: u32, now: Instant) -> Result<Self, RecorderError> {
        let opus = |op| move |source| RecorderError::Opus { op, source };
        let mut encoder =
            Encoder::new(48_000, Channels::Mono, Application::Voip).map_err(opus("encoder"))?;
        encoder.set_inband_fec(true).map_err(opus("fec"))?;
        encoder.set_packet_loss_perc(10).map_err(opus("loss"))?;
        Ok(Self {
            encoder,
            freq,
            amplitude,
            sample: 0,
            packetizer: Box::new(new_packetizer(
                now,
                MTU,
                111,
                ssrc,
                Box::new(OpusPayloader),
                Box::new(new_random_sequencer()),
                48_000,
            )),
        })
    }

    /// The next 20 ms packet.
    pub fn next_packet(&mut self, now: Instant) -> Result<Packet, RecorderError> {
        let pcm: Vec<f32> = (self.sample..self.sample + 960)
            .map(|i| {
                let t = i as f32 / 48_000.0;
                self.amplitude * (2.0 * std::f32::consts::PI * self.freq * t).sin()
            })
            .collect();
        self.sample += 960;
        let data = self
            .encoder
            .encode_vec_float(&pcm, 1500)
            .map_err(|source| RecorderError::Opus {
                op: "encode",
                source,
            })?;
        let mut packets = self
            .packetizer
            .packetize(now, &Bytes::from(data), 960)
            .map_err(|e| RecorderError::Webm(e.to_string()))?;
        packets
            .pop()
            .ok_or_else(|| RecorderError::Webm("no packet".into()))
    }
}
