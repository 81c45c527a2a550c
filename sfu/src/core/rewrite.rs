//! Per-leg RTP rewriting: each subscriber sees one continuous stream with its own SSRC and
//! payload type, whatever happens upstream.

use std::time::Instant;

use rtc::rtp;

/// What one subscriber leg expects on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegFormat {
    /// The SSRC of the leg's sender track.
    pub ssrc: u32,
    /// The payload type negotiated on the leg.
    pub payload_type: u8,
    /// The codec's RTP clock rate, to keep timestamps continuous across a source change.
    pub clock_rate: u32,
}

/// Rewrites SSRC, payload type, sequence numbers and timestamps for one subscription.
///
/// Sequence numbers and timestamps pass through with a constant offset while the upstream
/// source stays the same, so loss and reordering upstream show through unchanged (the
/// subscriber's NACKs then name the right packets). When the upstream source changes (a new
/// SSRC: a simulcast layer switch, a publisher restart), the offsets are recomputed so that the
/// first packet of the new source directly follows the last one sent, and its timestamp advances
/// by the wall time that passed. Header extensions are stripped: their ids are negotiated per leg
/// and the leg's own interceptors add the ones it needs.
#[derive(Debug, Clone)]
pub struct Rewriter {
    format: LegFormat,
    state: Option<StreamState>,
    /// Packets were held back (a mute, a pause): continue after the last one sent, as after
    /// a change of source, so the subscriber sees no gap to ask retransmissions for.
    resync: bool,
}

#[derive(Debug, Clone)]
struct StreamState {
    source_ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    /// The newest packet sent so far, in output numbering.
    last_seq: u16,
    last_ts: u32,
    last_at: Instant,
}

/// True when sequence number `a` is newer than `b`, with 16-bit wrap-around.
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

impl Rewriter {
    pub fn new(format: LegFormat) -> Self {
        Rewriter {
            format,
            state: None,
            resync: false,
        }
    }

    pub fn format(&self) -> LegFormat {
        self.format
    }

    /// The next packet continues directly after the last one sent, whatever its numbering.
    pub fn resync(&mut self) {
        self.resync = true;
    }

    /// Rewrites `packet` in place for this leg.
    pub fn rewrite(&mut self, now: Instant, packet: &mut rtp::Packet) {
        let header = &mut packet.header;
        let resync = std::mem::take(&mut self.resync);
        let state = match &mut self.state {
            Some(state) if state.source_ssrc == header.ssrc && !resync => state,
            previous => {
                let (seq_offset, ts_offset) = match previous {
                    // First packet ever: keep the publisher's numbering.
                    None => (0, 0),
                    Some(prev) => {
                        let next_seq = prev.last_seq.wrapping_add(1);
                        let elapsed = now.saturating_duration_since(prev.last_at);
                        let ticks = (elapsed.as_micros() as u64 * self.format.clock_rate as u64
                            / 1_000_000)
                            .max(1);
                        let next_ts = prev.last_ts.wrapping_add(ticks as u32);
                        (
                            next_seq.wrapping_sub(header.sequence_number),
                            next_ts.wrapping_sub(header.timestamp),
                        )
                    }
                };
                previous.insert(StreamState {
                    source_ssrc: header.ssrc,
                    seq_offset,
                    ts_offset,
                    last_seq: header
                        .sequence_number
                        .wrapping_add(seq_offset)
                        .wrapping_sub(1),
                    last_ts: header.timestamp.wrapping_add(ts_offset),
                    last_at: now,
                })
            }
        };
        let seq = header.sequence_number.wrapping_add(state.seq_offset);
        let ts = header.timestamp.wrapping_add(state.ts_offset);
        if seq_newer(seq, state.last_seq) {
            state.last_seq = seq;
            state.last_ts = ts;
            state.last_at = now;
        }
        header.sequence_number = seq;
        header.timestamp = ts;
        header.ssrc = self.format.ssrc;
        header.payload_type = self.format.payload_type;
        header.extension = false;
        header.extension_profile = 0;
        header.extensions.clear();
        // The padding of the stripped extensions too: left behind, it makes a header that a
        // later extension (the transport-wide sequence number) marshals at the wrong size,
        // and SRTP then refuses the packet.
        header.extensions_padding = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn packet(ssrc: u32, seq: u16, ts: u32) -> rtp::Packet {
        rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type: 100,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                extension: true,
                extension_profile: 0xBEDE,
                // As a browser's mid/rid extensions leave it.
                extensions_padding: 3,
                ..Default::default()
            },
            payload: Bytes::from_static(&[1, 2, 3]),
        }
    }

    const FORMAT: LegFormat = LegFormat {
        ssrc: 0xABCD,
        payload_type: 96,
        clock_rate: 90_000,
    };

    #[test]
    fn rewrites_ssrc_and_payload_type_and_keeps_numbering() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(FORMAT);
        let mut p = packet(1, 100, 5000);
        rw.rewrite(t0, &mut p);
        assert_eq!(p.header.ssrc, 0xABCD);
        assert_eq!(p.header.payload_type, 96);
        assert_eq!((p.header.sequence_number, p.header.timestamp), (100, 5000));
        assert!(!p.header.extension && p.header.extensions.is_empty());
        assert_eq!(p.header.extensions_padding, 0);
        assert_eq!(&p.payload[..], &[1, 2, 3], "payload untouched");
        // The leg's interceptors add their own extension (the transport-wide sequence number);
        // the packet must still marshal.
        p.header
            .set_extension(3, Bytes::from_static(&[0, 7]))
            .unwrap();
        use rtc::shared::marshal::Marshal;
        p.marshal().expect("marshals after an extension is added");
    }

    #[test]
    fn loss_and_reordering_show_through() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(FORMAT);
        let mut seqs = vec![];
        for seq in [10u16, 12, 11, 13] {
            let mut p = packet(1, seq, 0);
            rw.rewrite(t0, &mut p);
            seqs.push(p.header.sequence_number);
        }
        assert_eq!(seqs, vec![10, 12, 11, 13]);
    }

    #[test]
    fn source_change_continues_numbering_and_time() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(FORMAT);
        let mut p = packet(1, 65_535, 4_294_967_000);
        rw.rewrite(t0, &mut p);
        // A new source with unrelated numbering, 100 ms later.
        let mut q = packet(2, 7, 123);
        rw.rewrite(t0 + Duration::from_millis(100), &mut q);
        assert_eq!(
            q.header.sequence_number, 0,
            "wraps to directly follow 65535"
        );
        assert_eq!(
            q.header.timestamp,
            4_294_967_000u32.wrapping_add(9_000),
            "advances by 100 ms at 90 kHz"
        );
        let mut r = packet(2, 8, 123 + 3000);
        rw.rewrite(t0 + Duration::from_millis(133), &mut r);
        assert_eq!(r.header.sequence_number, 1);
        assert_eq!(r.header.timestamp, 4_294_967_000u32.wrapping_add(12_000));
    }

    #[test]
    fn resync_closes_the_gap_left_by_held_back_packets() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(FORMAT);
        let mut p = packet(1, 100, 1000);
        rw.rewrite(t0, &mut p);
        rw.resync();
        // Packets 101..=149 were held back (muted); 150 comes 20 ms later.
        let mut q = packet(1, 150, 1000 + 49 * 960);
        rw.rewrite(t0 + Duration::from_millis(20), &mut q);
        assert_eq!(q.header.sequence_number, 101);
        assert_eq!(q.header.timestamp, 1000 + 1800, "20 ms at 90 kHz");
        let mut r = packet(1, 151, 1000 + 50 * 960);
        rw.rewrite(t0 + Duration::from_millis(40), &mut r);
        assert_eq!(r.header.sequence_number, 102, "then numbering runs on");
    }

    #[test]
    fn seq_comparison_wraps() {
        assert!(seq_newer(1, 65_535));
        assert!(!seq_newer(65_535, 1));
        assert!(!seq_newer(5, 5));
    }
}
