//! The audio mix: every voice decoded with libopus, summed on the media clock in 20 ms
//! frames, kept below full scale by a limiter, and re-encoded with one Opus encoder.
//!
//! Each voice has a PCM queue whose first sample is the mix's next frame; a decoded packet is
//! written at its media position. Losses are concealed by libopus (in-band FEC for the last
//! missing frame when the next packet carries it, PLC before that); gaps without loss (DTX,
//! a paused sender) are silence. The mix runs `latency` behind real time so that reordered
//! and retransmitted packets still make it in.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use opus::{Application, Bitrate, Channels, Decoder, Encoder, SoftClip};
use rtc::rtp::Packet;

use crate::clock::TrackClock;
use crate::error::RecorderError;
use crate::jitter::{ReorderBuffer, ReorderStats};
use crate::meta::TrackId;

pub(crate) const SAMPLE_RATE: i64 = 48_000;
/// One mix frame: 20 ms at 48 kHz.
pub(crate) const FRAME: usize = 960;
/// The longest Opus packet (120 ms).
const MAX_PACKET_SAMPLES: usize = 5760;
/// Beyond this a gap is silence, not concealment (PLC of long gaps is a drone).
const MAX_CONCEAL: i64 = 120 * 48;
/// A voice whose position drifts this far from its own sample count is re-placed.
const RESYNC_SAMPLES: i64 = 60 * 48;
/// A voice may be at most this far ahead of the mix (bounds memory).
const MAX_AHEAD: i64 = 3 * SAMPLE_RATE;
/// The limiter keeps peaks at or below -1 dBFS.
const CEILING: f32 = 0.891;
/// Gain recovers by at most ~1 dB per 100 ms.
const RELEASE_PER_FRAME: f32 = 1.023;

/// A packet on its way through the reorder buffer, already placed on the media clock.
#[derive(Debug)]
pub(crate) struct Stamped {
    pub packet: Packet,
    pub media_us: i64,
    pub ext_ts: i64,
}

/// Audio counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MixStats {
    pub frames: u64,
    pub concealed_samples: u64,
    pub decode_errors: u64,
    pub late_samples: u64,
    pub limited_frames: u64,
    pub resyncs: u64,
}

#[derive(Debug)]
struct Voice {
    decoder: Decoder,
    clock: TrackClock,
    reorder: ReorderBuffer<Stamped>,
    /// Samples from the mix's next frame on.
    pcm: VecDeque<f32>,
    /// Where the next decoded sample goes (absolute sample index), once started.
    cursor: Option<i64>,
    /// The RTP timestamp the next packet should carry if nothing is missing.
    expected_ts: Option<i64>,
    last_packet_at: Instant,
}

/// One mixed, encoded 20 ms frame.
#[derive(Debug)]
pub(crate) struct MixedFrame {
    pub ts_ms: i64,
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Mixer {
    encoder: Encoder,
    soft_clip: SoftClip,
    pre_skip: u16,
    gain: f32,
    /// Absolute sample index of the next frame to mix.
    next_frame: i64,
    voices: HashMap<TrackId, Voice>,
    reorder_packets: usize,
    reorder_wait: std::time::Duration,
    frame: Vec<f32>,
    decoded: Vec<f32>,
    encoded: Vec<u8>,
    stats: MixStats,
    gone: ReorderStats,
}

fn opus_err(op: &'static str) -> impl Fn(opus::Error) -> RecorderError {
    move |source| RecorderError::Opus { op, source }
}

impl Mixer {
    pub fn new(
        bitrate: i32,
        complexity: i32,
        reorder_packets: usize,
        reorder_wait: std::time::Duration,
    ) -> Result<Self, RecorderError> {
        let mut encoder = Encoder::new(48_000, Channels::Mono, Application::Audio)
            .map_err(opus_err("encoder"))?;
        encoder
            .set_bitrate(Bitrate::Bits(bitrate))
            .map_err(opus_err("set bitrate"))?;
        encoder
            .set_complexity(complexity)
            .map_err(opus_err("set complexity"))?;
        let pre_skip = encoder.get_lookahead().map_err(opus_err("lookahead"))?;
        Ok(Self {
            encoder,
            soft_clip: SoftClip::new(Channels::Mono),
            pre_skip: u16::try_from(pre_skip).unwrap_or(312),
            gain: 1.0,
            next_frame: 0,
            voices: HashMap::new(),
            reorder_packets,
            reorder_wait,
            frame: vec![0.0; FRAME],
            decoded: vec![0.0; MAX_PACKET_SAMPLES],
            encoded: vec![0; 1500],
            stats: MixStats::default(),
            gone: ReorderStats::default(),
        })
    }

    /// The encoder's look-ahead, which players skip (WebM CodecDelay).
    pub fn pre_skip(&self) -> u16 {
        self.pre_skip
    }

    pub fn stats(&self) -> MixStats {
        self.stats
    }

    pub fn voices(&self) -> usize {
        self.voices.len()
    }

    pub fn voice_ids(&self) -> Vec<TrackId> {
        self.voices.keys().copied().collect()
    }

    /// Media time (µs) at which the next frame ends.
    pub fn next_frame_end_us(&self) -> i64 {
        (self.next_frame + FRAME as i64) * 1_000_000 / SAMPLE_RATE
    }

    /// Reorder counters of all voices, present and removed.
    pub fn reorder_stats(&self) -> ReorderStats {
        self.voices
            .values()
            .map(|v| v.reorder.stats())
            .fold(self.gone, add_reorder)
    }

    /// Takes one Opus packet of `track`, arrived at media time `arrival_us`.
    pub fn push(
        &mut self,
        now: Instant,
        track: TrackId,
        arrival_us: i64,
        packet: Packet,
    ) -> Result<(), RecorderError> {
        let voice = match self.voices.entry(track) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Voice {
                decoder: Decoder::new(48_000, Channels::Mono).map_err(opus_err("decoder"))?,
                clock: TrackClock::new(48_000),
                reorder: ReorderBuffer::new(self.reorder_packets, self.reorder_wait),
                pcm: VecDeque::new(),
                cursor: None,
                expected_ts: None,
                last_packet_at: now,
            }),
        };
        voice.last_packet_at = now;
        let (media_us, ext_ts) = voice.clock.map(packet.header.timestamp, arrival_us);
        let seq = packet.header.sequence_number;
        voice.reorder.push(
            now,
            seq,
            Stamped {
                packet,
                media_us,
                ext_ts,
            },
        );
        self.drain_voice(now, track, false);
        Ok(())
    }

    fn drain_voice(&mut self, now: Instant, track: TrackId, all: bool) {
        let Some(voice) = self.voices.get_mut(&track) else {
            return;
        };
        let released = if all {
            voice.reorder.drain()
        } else {
            std::iter::from_fn(|| voice.reorder.pop(now)).collect()
        };
        for r in released {
            decode_into(
                voice,
                r.item,
                r.lost_before,
                self.next_frame,
                &mut self.decoded,
                &mut self.stats,
            );
        }
    }

    /// Releases what the reorder buffers gave up waiting for.
    pub fn handle_timeout(&mut self, now: Instant) {
        let tracks: Vec<TrackId> = self.voices.keys().copied().collect();
        for track in tracks {
            self.drain_voice(now, track, false);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.voices
            .values()
            .filter_map(|v| v.reorder.poll_timeout())
            .min()
    }

    /// Forgets a voice (its publication ended); what it already gave stays in the mix.
    pub fn remove(&mut self, now: Instant, track: TrackId) {
        self.drain_voice(now, track, true);
        if let Some(v) = self.voices.get(&track) {
            // Keep its queued samples until they are mixed: only drop when empty.
            if v.pcm.is_empty() {
                let stats = v.reorder.stats();
                self.gone = add_reorder(self.gone, stats);
                self.voices.remove(&track);
            }
        }
    }

    /// Removes voices silent since before `idle_since` whose audio is all mixed.
    pub fn reap_idle(&mut self, idle_since: Instant) -> usize {
        let before = self.voices.len();
        let gone = &mut self.gone;
        self.voices.retain(|_, v| {
            let keep = v.last_packet_at >= idle_since || !v.pcm.is_empty();
            if !keep {
                *gone = add_reorder(*gone, v.reorder.stats());
            }
            keep
        });
        before - self.voices.len()
    }

    /// Mixes and encodes every frame that ends at or before media time `until_us`.
    pub fn mix_until(&mut self, until_us: i64) -> Result<Vec<MixedFrame>, RecorderError> {
        let until = until_us * SAMPLE_RATE / 1_000_000;
        let mut out = Vec::new();
        while self.next_frame + FRAME as i64 <= until {
            self.frame.fill(0.0);
            for voice in self.voices.values_mut() {
                let n = voice.pcm.len().min(FRAME);
                for (acc, s) in self.frame.iter_mut().zip(voice.pcm.drain(..n)) {
                    *acc += s;
                }
            }
            self.limit();
            self.soft_clip.apply(&mut self.frame);
            let len = self
                .encoder
                .encode_float(&self.frame, &mut self.encoded)
                .map_err(opus_err("encode"))?;
            out.push(MixedFrame {
                ts_ms: self.next_frame * 1000 / SAMPLE_RATE,
                data: self.encoded[..len].to_vec(),
            });
            self.next_frame += FRAME as i64;
            self.stats.frames += 1;
        }
        Ok(out)
    }

    /// A peak limiter: the gain drops at once to keep this frame's peak under the ceiling and
    /// recovers slowly, so loud moments are not pumped. `SoftClip` after it is only a guard.
    fn limit(&mut self) {
        let peak = self.frame.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        let released = (self.gain * RELEASE_PER_FRAME).min(1.0);
        let target = if peak * released > CEILING {
            CEILING / peak
        } else {
            released
        };
        if target < 1.0 || self.gain < 1.0 {
            if target < self.gain {
                self.stats.limited_frames += 1;
                for s in &mut self.frame {
                    *s *= target;
                }
            } else {
                // Ramp up across the frame so that the release is click-free.
                let step = (target - self.gain) / FRAME as f32;
                for (i, s) in self.frame.iter_mut().enumerate() {
                    *s *= self.gain + step * i as f32;
                }
            }
        }
        self.gain = target;
    }
}

fn add_reorder(a: ReorderStats, b: ReorderStats) -> ReorderStats {
    ReorderStats {
        released: a.released + b.released,
        lost: a.lost + b.lost,
        late: a.late + b.late,
        duplicate: a.duplicate + b.duplicate,
    }
}

/// Decodes one in-order packet of `voice` into its PCM queue, concealing what was lost.
fn decode_into(
    voice: &mut Voice,
    stamped: Stamped,
    lost_before: u64,
    next_frame: i64,
    buf: &mut [f32],
    stats: &mut MixStats,
) {
    let Stamped {
        packet,
        media_us,
        ext_ts,
    } = stamped;
    let target = media_us * SAMPLE_RATE / 1_000_000;
    let cursor = *voice.cursor.get_or_insert(target);
    let mut cursor = cursor;
    if let Some(expected) = voice.expected_ts {
        let gap = ext_ts - expected;
        if gap > 0 && lost_before > 0 && gap <= MAX_CONCEAL {
            cursor = conceal(voice, &packet.payload, gap, cursor, next_frame, buf, stats);
        } else if gap > 0 {
            // DTX or a paused sender: silence.
            cursor += gap;
        }
    }
    if (target - cursor).abs() > RESYNC_SAMPLES {
        stats.resyncs += 1;
        cursor = target;
    }
    match voice.decoder.decode_float(&packet.payload, buf, false) {
        Ok(n) => {
            write_pcm(voice, cursor, &buf[..n], next_frame, stats);
            cursor += n as i64;
            voice.expected_ts = Some(ext_ts + n as i64);
        }
        Err(_) => {
            stats.decode_errors += 1;
            voice.expected_ts = Some(ext_ts);
        }
    }
    voice.cursor = Some(cursor);
}

/// Fills `gap` samples before `payload`'s packet: PLC, then FEC from `payload` for the last
/// 20 ms (Opus carries the previous frame at low rate when the sender enabled in-band FEC;
/// when it did not, libopus falls back to PLC).
fn conceal(
    voice: &mut Voice,
    payload: &[u8],
    gap: i64,
    mut cursor: i64,
    next_frame: i64,
    buf: &mut [f32],
    stats: &mut MixStats,
) -> i64 {
    // libopus conceals in multiples of 2.5 ms.
    let gap = (gap / 120 * 120) as usize;
    let fec = gap.min(FRAME);
    let mut plc = gap - fec;
    while plc > 0 {
        let n = plc.min(FRAME);
        match voice.decoder.decode_float(&[], &mut buf[..n], false) {
            Ok(m) => write_pcm(voice, cursor, &buf[..m], next_frame, stats),
            Err(_) => stats.decode_errors += 1,
        }
        cursor += n as i64;
        plc -= n;
    }
    if fec > 0 {
        match voice.decoder.decode_float(payload, &mut buf[..fec], true) {
            Ok(m) => write_pcm(voice, cursor, &buf[..m], next_frame, stats),
            Err(_) => stats.decode_errors += 1,
        }
        cursor += fec as i64;
    }
    stats.concealed_samples += gap as u64;
    cursor
}

/// Writes samples at absolute index `at` into a voice's queue (whose front is `next_frame`).
fn write_pcm(voice: &mut Voice, at: i64, samples: &[f32], next_frame: i64, stats: &mut MixStats) {
    let mut at = at;
    let mut samples = samples;
    if at < next_frame {
        // Already mixed: too late for this frame.
        let skip = ((next_frame - at) as usize).min(samples.len());
        stats.late_samples += skip as u64;
        samples = &samples[skip..];
        at = next_frame;
    }
    let offset = (at - next_frame) as usize;
    let end = offset + samples.len();
    if end as i64 > MAX_AHEAD {
        stats.late_samples += samples.len() as u64;
        return;
    }
    if voice.pcm.len() < end {
        voice.pcm.resize(end, 0.0);
    }
    for (slot, s) in voice.pcm.range_mut(offset..end).zip(samples) {
        *slot = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tone(freq: f32, amp: f32, start: usize, n: usize) -> Vec<f32> {
        (start..start + n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / 48_000.0).sin())
            .collect()
    }

    #[test]
    fn the_limiter_keeps_a_loud_sum_under_full_scale() {
        let mut m = Mixer::new(48_000, 5, 100, Duration::from_millis(100)).unwrap();
        m.frame = tone(440.0, 0.8, 0, FRAME)
            .iter()
            .zip(tone(660.0, 0.8, 0, FRAME))
            .map(|(a, b)| a + b)
            .collect();
        m.limit();
        let peak = m.frame.iter().fold(0.0f32, |p, s| p.max(s.abs()));
        assert!(peak <= CEILING + 1e-6, "peak {peak}");
        assert_eq!(m.stats.limited_frames, 1);
    }

    #[test]
    fn silence_is_mixed_when_nobody_speaks() {
        let mut m = Mixer::new(48_000, 5, 100, Duration::from_millis(100)).unwrap();
        let frames = m.mix_until(1_000_000).unwrap();
        assert_eq!(frames.len(), 50);
        assert_eq!(frames[1].ts_ms, 20);
    }
}
