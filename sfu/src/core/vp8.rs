//! The VP8 RTP payload descriptor (RFC 7741): keyframe detection, and the picture-id /
//! TL0PICIDX rewriting that keeps a subscriber's decoder happy across a layer switch.

use bytes::{Bytes, BytesMut};

/// Where the fields we read or rewrite sit in one packet's payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// The packet starts a frame's first partition.
    pub starts_frame: bool,
    /// It starts a frame, and that frame is a keyframe.
    pub keyframe: bool,
    /// The PictureID, its offset in the payload and whether it has 15 bits (else 7).
    pub picture_id: Option<(u16, usize, bool)>,
    /// TL0PICIDX and its offset.
    pub tl0_pic_idx: Option<(u8, usize)>,
}

impl Vp8Descriptor {
    /// Parses a descriptor; `None` when the payload is too short to hold the one it announces.
    pub fn parse(payload: &[u8]) -> Option<Vp8Descriptor> {
        let first = *payload.first()?;
        let extended = first & 0x80 != 0;
        let starts_frame = first & 0x10 != 0 && first & 0x0f == 0;
        let mut at = 1;
        let mut picture_id = None;
        let mut tl0_pic_idx = None;
        if extended {
            let ext = *payload.get(at)?;
            at += 1;
            if ext & 0x80 != 0 {
                let b0 = *payload.get(at)?;
                if b0 & 0x80 != 0 {
                    let b1 = *payload.get(at + 1)?;
                    picture_id = Some(((((b0 & 0x7f) as u16) << 8) | b1 as u16, at, true));
                    at += 2;
                } else {
                    picture_id = Some((b0 as u16, at, false));
                    at += 1;
                }
            }
            if ext & 0x40 != 0 {
                tl0_pic_idx = Some((*payload.get(at)?, at));
                at += 1;
            }
            if ext & 0x30 != 0 {
                at += 1; // TID / KEYIDX
            }
        }
        // The VP8 payload header's P bit is 0 on a keyframe; only meaningful at a frame start.
        let keyframe = starts_frame && payload.get(at).is_some_and(|h| h & 0x01 == 0);
        Some(Vp8Descriptor {
            starts_frame,
            keyframe,
            picture_id,
            tl0_pic_idx,
        })
    }
}

/// Whether a VP8 RTP payload starts a keyframe.
pub fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    Vp8Descriptor::parse(payload).is_some_and(|d| d.keyframe)
}

/// Keeps one subscriber's PictureID and TL0PICIDX continuous when its source changes.
///
/// Each simulcast layer numbers its pictures independently, so after a switch the decoder
/// would see the picture id jump (and may take it for loss). Offsets chosen at the switch make
/// the first picture of the new layer follow the last one sent. Payloads are copied only
/// while an offset is non-zero; a subscriber that never switched shares the publisher's bytes.
#[derive(Debug, Clone, Default)]
pub struct Vp8Munger {
    pid_offset: u16,
    tl0_offset: u8,
    /// The newest values sent, in output numbering.
    last_pid: Option<u16>,
    last_tl0: Option<u8>,
}

impl Vp8Munger {
    /// Called on the first packet of a new source: the next picture continues the sequence.
    pub fn switch_source(&mut self, first: &Vp8Descriptor) {
        if let (Some(last), Some((pid, _, wide))) = (self.last_pid, first.picture_id) {
            let modulus = if wide { 0x8000 } else { 0x80 };
            self.pid_offset = (last.wrapping_add(1).wrapping_sub(pid)) % modulus;
        }
        if let (Some(last), Some((tl0, _))) = (self.last_tl0, first.tl0_pic_idx) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(tl0);
        }
    }

    /// Rewrites a payload's descriptor; returns the payload to send.
    pub fn rewrite(&mut self, payload: &Bytes, desc: &Vp8Descriptor) -> Bytes {
        let pid = desc.picture_id.map(|(pid, at, wide)| {
            let modulus = if wide { 0x8000 } else { 0x80 };
            ((pid.wrapping_add(self.pid_offset)) % modulus, at, wide)
        });
        let tl0 = desc
            .tl0_pic_idx
            .map(|(v, at)| (v.wrapping_add(self.tl0_offset), at));
        if let Some((p, ..)) = pid {
            self.last_pid = Some(p);
        }
        if let Some((t, _)) = tl0 {
            self.last_tl0 = Some(t);
        }
        if self.pid_offset == 0 && self.tl0_offset == 0 {
            return payload.clone();
        }
        let mut out = BytesMut::from(&payload[..]);
        if let Some((p, at, wide)) = pid {
            if wide {
                out[at] = 0x80 | (p >> 8) as u8;
                out[at + 1] = p as u8;
            } else {
                out[at] = p as u8 & 0x7f;
            }
        }
        if let Some((t, at)) = tl0 {
            out[at] = t;
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X=1, S=1; I and L present; 15-bit PictureID; then a payload header byte.
    fn packet(pid: u16, tl0: u8, key: bool) -> Bytes {
        Bytes::from(vec![
            0x90,
            0xc0,
            0x80 | (pid >> 8) as u8,
            pid as u8,
            tl0,
            if key { 0x00 } else { 0x01 },
            0xAA,
        ])
    }

    #[test]
    fn detects_keyframes() {
        assert!(vp8_starts_keyframe(&[
            0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a
        ]));
        assert!(!vp8_starts_keyframe(&[0x10, 0x11]));
        assert!(!vp8_starts_keyframe(&[0x00, 0x10]), "not a frame start");
        assert!(vp8_starts_keyframe(&[
            0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x50
        ]));
        assert!(!vp8_starts_keyframe(&[
            0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x51
        ]));
        assert!(!vp8_starts_keyframe(&[]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80]), "truncated");
    }

    #[test]
    fn parses_picture_id_and_tl0() {
        let d = Vp8Descriptor::parse(&packet(0x1234, 9, true)).expect("valid");
        assert_eq!(d.picture_id, Some((0x1234, 2, true)));
        assert_eq!(d.tl0_pic_idx, Some((9, 4)));
        assert!(d.keyframe && d.starts_frame);
        let short = Vp8Descriptor::parse(&[0x90, 0x80, 0x05, 0x01]).expect("valid");
        assert_eq!(short.picture_id, Some((5, 2, false)));
    }

    #[test]
    fn switch_continues_picture_ids_and_shares_bytes_until_then() {
        let mut m = Vp8Munger::default();
        let p1 = packet(100, 7, true);
        let d1 = Vp8Descriptor::parse(&p1).expect("valid");
        let out = m.rewrite(&p1, &d1);
        assert_eq!(out.as_ptr(), p1.as_ptr(), "no copy without an offset");
        // Switch to a layer whose numbering is elsewhere.
        let p2 = packet(0x7ffe, 200, true);
        let d2 = Vp8Descriptor::parse(&p2).expect("valid");
        m.switch_source(&d2);
        let out = m.rewrite(&p2, &d2);
        let o = Vp8Descriptor::parse(&out).expect("valid");
        assert_eq!(o.picture_id.map(|p| p.0), Some(101));
        assert_eq!(o.tl0_pic_idx.map(|t| t.0), Some(8));
        assert_eq!(out[6], 0xAA, "the rest is untouched");
        // The new layer's numbering wraps at 15 bits; the output keeps counting.
        let p3 = packet(0x7fff, 200, false);
        let p4 = packet(0, 201, false);
        let o3 = m.rewrite(&p3, &Vp8Descriptor::parse(&p3).expect("valid"));
        let o4 = m.rewrite(&p4, &Vp8Descriptor::parse(&p4).expect("valid"));
        assert_eq!(
            Vp8Descriptor::parse(&o3)
                .and_then(|d| d.picture_id)
                .map(|p| p.0),
            Some(102)
        );
        assert_eq!(
            Vp8Descriptor::parse(&o4)
                .and_then(|d| d.picture_id)
                .map(|p| p.0),
            Some(103)
        );
        assert_eq!(
            Vp8Descriptor::parse(&o4)
                .and_then(|d| d.tl0_pic_idx)
                .map(|t| t.0),
            Some(9)
        );
    }
}
