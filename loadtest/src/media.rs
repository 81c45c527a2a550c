//! Synthetic media: well-formed VP8 and Opus RTP payloads that a receiver can check byte by byte.
//!
//! Every payload carries a 16-byte [`Tag`] — the publisher's own packet counter for the stream,
//! which simulcast layer the stream is, and the send time — followed by filler bytes derived
//! from the counter and the layer. A subscriber therefore needs nothing from the publisher to
//! tell that a packet arrived intact (every byte matches), in order (counters increase),
//! complete (no counter skipped), how late (now − send time) and from which layer, whatever the
//! SFU did to sequence numbers, timestamps, SSRCs or the VP8 picture id.
//!
//! Layouts:
//! - Opus: `tag ‖ filler`.
//! - VP8 (RFC 7741): `payload descriptor ‖ [VP8 payload header] ‖ tag ‖ filler`. The descriptor
//!   always has the X and I bits and a 15-bit PictureID (what Chromium sends, and what an SFU
//!   rewrites on a layer switch); S is set on a frame's first packet. That first packet starts
//!   with the 3-byte frame tag (RFC 6386 §9.1: P = 0 on keyframes, 1 on delta frames), and a
//!   keyframe's frame tag is followed by the start code `9d 01 2a` and the width and height.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use signaling::protocol::Layer;

/// Length of the [`Tag`] in every payload.
pub const TAG_LEN: usize = 16;

/// Filler salt of audio payloads; a different one for video means a payload delivered on the
/// wrong track fails the check instead of passing.
pub const AUDIO_SALT: u64 = 0x4155_4449_4f00_0001;
/// Filler salt of video payloads.
pub const VIDEO_SALT: u64 = 0x5649_4445_4f00_0002;

/// Length of the VP8 payload descriptor we send: X, I and a 15-bit PictureID.
pub const VP8_DESCRIPTOR_LEN: usize = 4;
/// The VP8 frame tag that starts every frame.
const VP8_FRAME_TAG_LEN: usize = 3;
/// Frame tag, start code, width and height.
const VP8_KEYFRAME_HEADER_LEN: usize = 10;
const VP8_START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// The counter's share of the tag's first word; the top byte names the layer.
const COUNTER_BITS: u32 = 56;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;

/// What every synthetic payload carries: who sent it when, on which layer.
///
/// On the wire: `layer byte ‖ 56-bit counter ‖ 64-bit send time`, big-endian. The layer byte is
/// 0 for a stream sent without simulcast, so such payloads are what they were before layers
/// existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The publisher's packet counter for this stream (one per simulcast layer), from 0, one
    /// per RTP packet; below 2^56.
    pub counter: u64,
    /// When the publisher handed the packet to its peer connection, in µs since the Unix epoch.
    pub sent_at_us: u64,
    /// The simulcast layer the packet was sent on; `None` without simulcast.
    pub layer: Option<Layer>,
}

fn layer_byte(layer: Option<Layer>) -> u8 {
    match layer {
        None => 0,
        Some(Layer::Low) => 1,
        Some(Layer::Medium) => 2,
        Some(Layer::High) => 3,
    }
}

fn layer_of_byte(byte: u8) -> Result<Option<Layer>, Corrupt> {
    match byte {
        0 => Ok(None),
        1 => Ok(Some(Layer::Low)),
        2 => Ok(Some(Layer::Medium)),
        3 => Ok(Some(Layer::High)),
        _ => Err(Corrupt::BadLayer),
    }
}

impl Tag {
    fn put(&self, out: &mut BytesMut) {
        out.put_u64(
            (u64::from(layer_byte(self.layer)) << COUNTER_BITS) | (self.counter & COUNTER_MASK),
        );
        out.put_u64(self.sent_at_us);
    }

    fn read(buf: &[u8]) -> Result<Tag, Corrupt> {
        let word = |at: usize| {
            buf.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or(Corrupt::TooShort)
        };
        let first = word(0)?;
        Ok(Tag {
            counter: first & COUNTER_MASK,
            sent_at_us: word(8)?,
            layer: layer_of_byte((first >> COUNTER_BITS) as u8)?,
        })
    }

    /// The filler that follows this tag: a payload moved to another layer's stream, or to
    /// the other kind of track, fails the check instead of passing.
    fn filler(&self, salt: u64) -> Filler {
        let layer_salt = u64::from(layer_byte(self.layer)).wrapping_mul(0xa076_1d64_78bd_642f);
        Filler::new(salt ^ layer_salt, self.counter & COUNTER_MASK)
    }
}

/// Wall-clock µs since the Unix epoch: comparable between processes on one machine, which is
/// where the bots and the server run.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A small, fast generator (splitmix64): the filler only has to be unpredictable enough that a
/// truncated, shifted or mixed-up payload cannot pass for the right one.
struct Filler(u64);

impl Filler {
    fn new(salt: u64, counter: u64) -> Filler {
        Filler(salt ^ counter.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn put(mut self, out: &mut BytesMut, len: usize) {
        let mut left = len;
        while left > 0 {
            let word = self.next().to_be_bytes();
            let n = left.min(8);
            out.put_slice(&word[..n]);
            left -= n;
        }
    }

    fn matches(mut self, buf: &[u8]) -> bool {
        buf.chunks(8)
            .all(|chunk| chunk == &self.next().to_be_bytes()[..chunk.len()])
    }
}

/// Builds one Opus payload of `len` bytes (at least [`TAG_LEN`]).
pub fn opus_payload(counter: u64, sent_at_us: u64, len: usize) -> Bytes {
    let len = len.max(TAG_LEN);
    let mut out = BytesMut::with_capacity(len);
    let tag = Tag {
        counter,
        sent_at_us,
        layer: None,
    };
    tag.put(&mut out);
    tag.filler(AUDIO_SALT).put(&mut out, len - TAG_LEN);
    out.freeze()
}

/// What a receiver learned from one payload that passed the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub tag: Tag,
    /// The packet starts a VP8 keyframe (always false for audio).
    pub keyframe: bool,
    /// The packet starts a frame (S bit with partition 0; always true for audio).
    pub frame_start: bool,
    /// Width and height from a keyframe's header.
    pub keyframe_size: Option<(u16, u16)>,
}

/// Why a payload failed the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corrupt {
    #[error("payload too short")]
    TooShort,
    #[error("malformed VP8 payload descriptor")]
    BadDescriptor,
    #[error("VP8 keyframe without its start code")]
    BadKeyframeHeader,
    #[error("payload bytes differ from what the publisher sent")]
    BadFiller,
    #[error("tag names no known layer")]
    BadLayer,
}

/// Checks an Opus payload built by [`opus_payload`].
pub fn check_opus(payload: &[u8]) -> Result<Checked, Corrupt> {
    let tag = Tag::read(payload)?;
    if !tag.filler(AUDIO_SALT).matches(&payload[TAG_LEN..]) {
        return Err(Corrupt::BadFiller);
    }
    Ok(Checked {
        tag,
        keyframe: false,
        frame_start: true,
        keyframe_size: None,
    })
}

/// The fields of a VP8 payload descriptor a receiver needs (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// Bytes before the VP8 payload.
    pub len: usize,
    /// S: the first packet of a partition.
    pub start: bool,
    /// PID: the partition index.
    pub partition: u8,
    /// The PictureID, 7 or 15 bits, when present.
    pub picture_id: Option<u16>,
}

/// Parses the payload descriptor at the start of a VP8 RTP payload.
pub fn parse_vp8_descriptor(payload: &[u8]) -> Result<Vp8Descriptor, Corrupt> {
    let first = *payload.first().ok_or(Corrupt::BadDescriptor)?;
    let mut len = 1;
    let mut picture_id = None;
    if first & 0x80 != 0 {
        let ext = *payload.get(len).ok_or(Corrupt::BadDescriptor)?;
        len += 1;
        if ext & 0x80 != 0 {
            let b = *payload.get(len).ok_or(Corrupt::BadDescriptor)?;
            len += 1;
            if b & 0x80 != 0 {
                let lo = *payload.get(len).ok_or(Corrupt::BadDescriptor)?;
                len += 1;
                picture_id = Some((u16::from(b & 0x7f) << 8) | u16::from(lo));
            } else {
                picture_id = Some(u16::from(b));
            }
        }
        // L (TL0PICIDX) and T/K (TID|Y|KEYIDX) each add one byte.
        if ext & 0x40 != 0 {
            len += 1;
        }
        if ext & 0x30 != 0 {
            len += 1;
        }
        if payload.len() < len {
            return Err(Corrupt::BadDescriptor);
        }
    }
    Ok(Vp8Descriptor {
        len,
        start: first & 0x10 != 0,
        partition: first & 0x07,
        picture_id,
    })
}

/// Checks a VP8 payload built by [`Vp8Packetizer`].
pub fn check_vp8(payload: &[u8]) -> Result<Checked, Corrupt> {
    let desc = parse_vp8_descriptor(payload)?;
    let mut at = desc.len;
    let frame_start = desc.start && desc.partition == 0;
    let mut keyframe = false;
    let mut keyframe_size = None;
    if frame_start {
        let frame_tag = payload
            .get(at..at + VP8_FRAME_TAG_LEN)
            .ok_or(Corrupt::TooShort)?;
        keyframe = frame_tag[0] & 0x01 == 0;
        if keyframe {
            let start_code = payload
                .get(at + VP8_FRAME_TAG_LEN..at + VP8_FRAME_TAG_LEN + 3)
                .ok_or(Corrupt::TooShort)?;
            if start_code != VP8_START_CODE {
                return Err(Corrupt::BadKeyframeHeader);
            }
            let size = payload
                .get(at + VP8_FRAME_TAG_LEN + 3..at + VP8_KEYFRAME_HEADER_LEN)
                .ok_or(Corrupt::TooShort)?;
            // 14-bit sizes; the top two bits are the upscaling mode.
            let dimension = |lo: u8, hi: u8| u16::from_le_bytes([lo, hi]) & 0x3fff;
            keyframe_size = Some((dimension(size[0], size[1]), dimension(size[2], size[3])));
            at += VP8_KEYFRAME_HEADER_LEN;
        } else {
            at += VP8_FRAME_TAG_LEN;
        }
    }
    let rest = payload.get(at..).ok_or(Corrupt::TooShort)?;
    let tag = Tag::read(rest)?;
    if !tag.filler(VIDEO_SALT).matches(&rest[TAG_LEN..]) {
        return Err(Corrupt::BadFiller);
    }
    Ok(Checked {
        tag,
        keyframe,
        frame_start,
        keyframe_size,
    })
}

/// Cuts synthetic VP8 frames into RTP payloads.
#[derive(Debug, Clone)]
pub struct Vp8Packetizer {
    /// Largest RTP payload (descriptor included).
    max_payload: usize,
    width: u16,
    height: u16,
    /// The next frame's PictureID (15 bits, wraps).
    picture_id: u16,
    /// The simulcast layer every tag names.
    layer: Option<Layer>,
}

impl Vp8Packetizer {
    /// `max_payload` is the largest RTP payload to produce (about 1100 bytes keeps a packet well
    /// under a 1200-byte path MTU with SRTP and header extensions).
    pub fn new(max_payload: usize, width: u16, height: u16, first_picture_id: u16) -> Self {
        Vp8Packetizer {
            // Room for a descriptor, a keyframe header and a tag in one packet at least.
            max_payload: max_payload.max(VP8_DESCRIPTOR_LEN + VP8_KEYFRAME_HEADER_LEN + TAG_LEN),
            width: width & 0x3fff,
            height: height & 0x3fff,
            picture_id: first_picture_id & 0x7fff,
            layer: None,
        }
    }

    /// Tags every payload as sent on `layer` of a simulcast publication.
    pub fn with_layer(mut self, layer: Option<Layer>) -> Self {
        self.layer = layer;
        self
    }

    /// Payloads of one frame of about `frame_size` bytes of VP8 data. Each payload takes the
    /// next counter from `counter`; the caller sets the RTP marker bit on the last one.
    pub fn frame(
        &mut self,
        keyframe: bool,
        frame_size: usize,
        counter: &mut u64,
        sent_at_us: u64,
    ) -> Vec<Bytes> {
        let header_len = if keyframe {
            VP8_KEYFRAME_HEADER_LEN
        } else {
            VP8_FRAME_TAG_LEN
        };
        let frame_size = frame_size.max(header_len + TAG_LEN);
        let per_packet = self.max_payload - VP8_DESCRIPTOR_LEN;
        // Split evenly rather than full packets plus a runt, as encoders' packetizers do.
        let packets = frame_size.div_ceil(per_packet).max(1);
        let base = frame_size / packets;
        let extra = frame_size % packets;
        let picture_id = self.picture_id;
        self.picture_id = (self.picture_id + 1) & 0x7fff;

        let mut out = Vec::with_capacity(packets);
        for i in 0..packets {
            let mut data_len = base + usize::from(i < extra);
            let mut buf = BytesMut::with_capacity(VP8_DESCRIPTOR_LEN + data_len);
            // X | S (first packet) | PID 0; then I; then M | 15-bit PictureID.
            buf.put_u8(if i == 0 { 0x90 } else { 0x80 });
            buf.put_u8(0x80);
            buf.put_u16(0x8000 | picture_id);
            if i == 0 {
                self.put_frame_header(&mut buf, keyframe, frame_size);
                data_len -= header_len;
            }
            let data_len = data_len.max(TAG_LEN);
            let tag = Tag {
                counter: *counter,
                sent_at_us,
                layer: self.layer,
            };
            tag.put(&mut buf);
            tag.filler(VIDEO_SALT).put(&mut buf, data_len - TAG_LEN);
            *counter += 1;
            out.push(buf.freeze());
        }
        out
    }

    fn put_frame_header(&self, buf: &mut BytesMut, keyframe: bool, frame_size: usize) {
        // RFC 6386 §9.1: a 24-bit little-endian frame tag — inverse keyframe flag, version 0,
        // show_frame 1, and the first partition's size (here: the whole frame).
        let first_part = (frame_size.saturating_sub(VP8_KEYFRAME_HEADER_LEN) as u32) & 0x7_ffff;
        let tag = u32::from(!keyframe) | (1 << 4) | (first_part << 5);
        buf.put_slice(&tag.to_le_bytes()[..3]);
        if keyframe {
            buf.put_slice(&VP8_START_CODE);
            // 14-bit sizes with no upscaling.
            buf.put_u16_le(self.width);
            buf.put_u16_le(self.height);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_payload_round_trips() {
        let p = opus_payload(41, 123_456, 80);
        assert_eq!(p.len(), 80);
        let c = check_opus(&p).unwrap();
        assert_eq!(
            c.tag,
            Tag {
                counter: 41,
                sent_at_us: 123_456,
                layer: None,
            }
        );
    }

    #[test]
    fn damaged_or_misrouted_payloads_fail() {
        let p = opus_payload(7, 1, 80);
        let mut bad = p.to_vec();
        bad[40] ^= 1;
        assert_eq!(check_opus(&bad), Err(Corrupt::BadFiller));
        assert_eq!(check_opus(&p[..10]), Err(Corrupt::TooShort));
        // Same counter, other track: the salt differs.
        let mut pk = Vp8Packetizer::new(1100, 640, 360, 0);
        let mut counter = 7;
        let v = pk.frame(false, 200, &mut counter, 1);
        let desc_and_tag = VP8_DESCRIPTOR_LEN + VP8_FRAME_TAG_LEN;
        let mut as_audio = v[0][desc_and_tag..].to_vec();
        as_audio.truncate(80);
        assert_eq!(check_opus(&as_audio), Err(Corrupt::BadFiller));
    }

    #[test]
    fn keyframe_is_split_and_marked() {
        let mut pk = Vp8Packetizer::new(1100, 1280, 720, 0x7ffe);
        let mut counter = 100;
        let frames = pk.frame(true, 5000, &mut counter, 9);
        assert_eq!(frames.len(), 5);
        assert_eq!(counter, 105);
        let total: usize = frames.iter().map(|p| p.len() - VP8_DESCRIPTOR_LEN).sum();
        assert_eq!(total, 5000);
        for (i, p) in frames.iter().enumerate() {
            assert!(p.len() <= 1100);
            let d = parse_vp8_descriptor(p).unwrap();
            assert_eq!(d.len, 4);
            assert_eq!(d.start, i == 0);
            assert_eq!(d.picture_id, Some(0x7ffe));
            let c = check_vp8(p).unwrap();
            assert_eq!(c.keyframe, i == 0);
            assert_eq!(c.tag.counter, 100 + i as u64);
        }
        // Frame tag: P = 0, show_frame = 1; start code; 1280x720 little-endian.
        let h = &frames[0][4..14];
        assert_eq!(h[0] & 0x01, 0);
        assert_eq!(h[0] & 0x10, 0x10);
        assert_eq!(&h[3..6], &VP8_START_CODE);
        assert_eq!(u16::from_le_bytes([h[6], h[7]]), 1280);
        assert_eq!(u16::from_le_bytes([h[8], h[9]]), 720);
        // PictureID advances and wraps at 15 bits.
        let next = pk.frame(false, 100, &mut counter, 9);
        assert_eq!(
            parse_vp8_descriptor(&next[0]).unwrap().picture_id,
            Some(0x7fff)
        );
        let next = pk.frame(false, 100, &mut counter, 9);
        assert_eq!(parse_vp8_descriptor(&next[0]).unwrap().picture_id, Some(0));
    }

    #[test]
    fn delta_frame_has_p_bit() {
        let mut pk = Vp8Packetizer::new(1100, 640, 360, 5);
        let mut counter = 0;
        let frames = pk.frame(false, 4166, &mut counter, 0);
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0][4] & 0x01, 1);
        let c = check_vp8(&frames[0]).unwrap();
        assert!(c.frame_start && !c.keyframe);
        let c = check_vp8(&frames[1]).unwrap();
        assert!(!c.frame_start && !c.keyframe);
    }

    #[test]
    fn descriptor_variants_parse() {
        // No X: one byte.
        let d = parse_vp8_descriptor(&[0x10, 0xaa]).unwrap();
        assert_eq!((d.len, d.start, d.picture_id), (1, true, None));
        // X with I (7-bit), L, T: 1 + 1 + 1 + 1 + 1.
        let d = parse_vp8_descriptor(&[0x80, 0xe0, 0x05, 0x01, 0x40, 0xaa]).unwrap();
        assert_eq!((d.len, d.picture_id), (5, Some(5)));
        assert_eq!(
            parse_vp8_descriptor(&[0x80, 0x80, 0x81]),
            Err(Corrupt::BadDescriptor)
        );
    }

    #[test]
    fn a_rewritten_picture_id_still_checks() {
        let mut pk = Vp8Packetizer::new(1100, 640, 360, 10);
        let mut counter = 0;
        let mut p = pk.frame(true, 3000, &mut counter, 0)[0].to_vec();
        p[2] = 0x80 | 0x12;
        p[3] = 0x34;
        let c = check_vp8(&p).unwrap();
        assert!(c.keyframe);
    }

    #[test]
    fn layers_are_tagged_and_cannot_be_mixed_up() {
        let mut low = Vp8Packetizer::new(1100, 320, 180, 0).with_layer(Some(Layer::Low));
        let mut high = Vp8Packetizer::new(1100, 1280, 720, 0).with_layer(Some(Layer::High));
        let mut counter = (1 << 56) - 1;
        let k = low.frame(true, 2000, &mut counter, 5);
        let c = check_vp8(&k[0]).unwrap();
        assert_eq!(c.tag.layer, Some(Layer::Low));
        assert_eq!(
            c.tag.counter,
            (1 << 56) - 1,
            "the counter keeps its 56 bits"
        );
        assert_eq!(c.keyframe_size, Some((320, 180)));
        assert_eq!(check_vp8(&k[1]).unwrap().keyframe_size, None);
        let mut counter = 9;
        let h = high.frame(false, 500, &mut counter, 5);
        assert_eq!(check_vp8(&h[0]).unwrap().tag.layer, Some(Layer::High));

        // The same counter relabelled as another layer fails the filler check.
        let mut moved = h[0].to_vec();
        let tag_at = VP8_DESCRIPTOR_LEN + VP8_FRAME_TAG_LEN;
        moved[tag_at] = 2;
        assert_eq!(check_vp8(&moved), Err(Corrupt::BadFiller));
        moved[tag_at] = 7;
        assert_eq!(check_vp8(&moved), Err(Corrupt::BadLayer));
    }
}
