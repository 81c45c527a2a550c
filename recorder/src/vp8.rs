//! VP8 frames from in-order RTP packets, using `rtc`'s VP8 depacketizer for the payload
//! descriptor (RFC 7741).
//!
//! A frame is written only when every packet of it arrived. After any loss, and at the start,
//! frames are skipped until a keyframe: a decoder fed an inter frame whose reference is
//! missing shows garbage until the next keyframe anyway, and a replay that starts on a
//! keyframe plays cleanly.

use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;

use rtc::rtp::Packet;

/// Counters of one video track.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct VideoStats {
    /// Frames handed to the muxer.
    pub frames: u64,
    /// Of which keyframes.
    pub keyframes: u64,
    /// Frames dropped because a packet of theirs was lost or malformed.
    pub incomplete: u64,
    /// Complete frames skipped while waiting for a keyframe.
    pub skipped_waiting_keyframe: u64,
}

/// One complete VP8 frame.
#[derive(Debug)]
pub(crate) struct Vp8Frame {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

#[derive(Debug)]
struct Partial {
    ts: u32,
    data: Vec<u8>,
    broken: bool,
}

#[derive(Debug)]
pub(crate) struct Vp8Assembler {
    current: Option<Partial>,
    waiting_for_keyframe: bool,
    /// Frames cannot exceed this: a bound on memory for a stream that never sets the marker.
    max_frame_bytes: usize,
    stats: VideoStats,
}

impl Vp8Assembler {
    pub fn new() -> Self {
        Self {
            current: None,
            waiting_for_keyframe: true,
            max_frame_bytes: 4 << 20,
            stats: VideoStats::default(),
        }
    }

    pub fn stats(&self) -> VideoStats {
        self.stats
    }

    /// Whether frames are being skipped until a keyframe (the SFU should ask for one).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.waiting_for_keyframe
    }

    fn drop_current(&mut self) {
        if self.current.take().is_some() {
            self.stats.incomplete += 1;
            self.waiting_for_keyframe = true;
        }
    }

    /// Feeds one packet; returns a frame when this packet completed one.
    pub fn push(&mut self, packet: &Packet, lost_before: u64) -> Option<Vp8Frame> {
        if lost_before > 0 {
            // Whatever was lost, the reference chain is broken.
            self.waiting_for_keyframe = true;
            if let Some(p) = self.current.as_mut() {
                p.broken = true;
            }
        }
        if packet.payload.is_empty() {
            // Padding (bandwidth probing) carries no media.
            return None;
        }
        let ts = packet.header.timestamp;
        if self.current.as_ref().is_some_and(|p| p.ts != ts) {
            // The previous frame never saw its marker packet.
            self.drop_current();
        }
        let mut descriptor = Vp8Packet::default();
        let body = descriptor.depacketize(&packet.payload);
        let starts_frame = descriptor.s == 1 && descriptor.pid == 0;
        let partial = self.current.get_or_insert_with(|| Partial {
            ts,
            data: Vec::new(),
            broken: !starts_frame,
        });
        match body {
            Ok(body) if partial.data.len() + body.len() <= self.max_frame_bytes => {
                partial.data.extend_from_slice(&body)
            }
            _ => partial.broken = true,
        }
        if !packet.header.marker {
            return None;
        }
        let done = self.current.take()?;
        if done.broken || done.data.is_empty() {
            self.stats.incomplete += 1;
            self.waiting_for_keyframe = true;
            return None;
        }
        // VP8 frame tag (RFC 6386 §9.1): bit 0 of the first byte is 0 on a keyframe.
        let keyframe = done.data[0] & 0x01 == 0;
        if self.waiting_for_keyframe && !keyframe {
            self.stats.skipped_waiting_keyframe += 1;
            return None;
        }
        self.waiting_for_keyframe = false;
        self.stats.frames += 1;
        if keyframe {
            self.stats.keyframes += 1;
        }
        Some(Vp8Frame {
            data: done.data,
            keyframe,
        })
    }
}

/// Width and height from a VP8 keyframe header (RFC 6386 §9.1), if it is one.
pub(crate) fn keyframe_dimensions(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 0x01 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A packet with a one-byte VP8 descriptor (`S` set on the first packet of a frame).
    fn pkt(seq: u16, ts: u32, start: bool, marker: bool, body: &[u8]) -> Packet {
        let mut p = Packet::default();
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.header.marker = marker;
        let mut payload = vec![if start { 0x10 } else { 0x00 }];
        payload.extend_from_slice(body);
        p.payload = Bytes::from(payload);
        p
    }

    const KEY: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];
    const INTER: [u8; 4] = [0x31, 0x02, 0x00, 0x00];

    #[test]
    fn assembles_frames_and_waits_for_a_keyframe() {
        let mut a = Vp8Assembler::new();
        assert!(a.push(&pkt(1, 100, true, true, &INTER), 0).is_none());
        assert_eq!(a.stats().skipped_waiting_keyframe, 1);
        assert!(a.push(&pkt(2, 200, true, false, &KEY[..5]), 0).is_none());
        let f = a.push(&pkt(3, 200, false, true, &KEY[5..]), 0).unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data, KEY);
        assert_eq!(keyframe_dimensions(&f.data), Some((640, 360)));
        let f = a.push(&pkt(4, 300, true, true, &INTER), 0).unwrap();
        assert!(!f.keyframe);
    }

    #[test]
    fn a_loss_drops_the_frame_and_waits_for_the_next_keyframe() {
        let mut a = Vp8Assembler::new();
        a.push(&pkt(1, 100, true, true, &KEY), 0).unwrap();
        assert!(a.push(&pkt(2, 200, true, false, &INTER), 0).is_none());
        assert!(a.push(&pkt(4, 200, false, true, &INTER), 1).is_none());
        assert!(a.push(&pkt(5, 300, true, true, &INTER), 0).is_none());
        assert!(a.waiting_for_keyframe());
        assert!(a.push(&pkt(6, 400, true, true, &KEY), 0).unwrap().keyframe);
        assert_eq!(a.stats().incomplete, 1);
        assert_eq!(a.stats().skipped_waiting_keyframe, 1);
    }
}
