//! Probing a subscriber's link with resends of what it just received.
//!
//! [`LinkCapacity`](crate::core::LinkCapacity) measures a link from packet trains, but a
//! subscriber held on a low layer sends frames of one or two packets: no trains, so a link
//! that got better (or a new link, whose capacity nobody knows) stays unmeasured. When the
//! subscriber's downlink estimator says so (`core::DownlinkEstimator`, through
//! [`LinkShared::probe_requested`]), this interceptor sends the subscriber's last few video
//! packets again (as many as `core::probe_train` says), back to back, on their RTX stream: a train of a known size whose
//! arrival the subscriber's TWCC feedback reports like any other. The receiver drops them as
//! duplicates of what it has, so they cost the link their bytes and nothing else. Only where
//! RTX is negotiated: a resend on the media SSRC itself would be refused by SRTP's replay
//! check before TWCC could count it.
//!
//! Two numberings are kept here because `rtc`'s own keepers of them leave RTX out:
//! - the RTX stream's sequence numbers, shared with `rtc`'s NACK responder (application-ward
//!   of here), which numbers its resends from a counter of its own;
//! - the transport-wide sequence numbers (TWCC): `rtc`'s TWCC sender stamps only the SSRCs
//!   bound as streams, and an RTX SSRC never is, so no resend would be reported on. This
//!   interceptor takes the TWCC sender's place on a subscriber leg and stamps every RTP
//!   packet, in the order they leave.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, Slot, StreamInfo, TaggedPacket,
};
use rtc::rtp;
use rtc::rtp::extension::transport_cc_extension::TransportCcExtension;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::Marshal;
use rtc::shared::marshal::MarshalSize;

use crate::core::{PROBE_PACKETS, probe_train};

use super::link::{LinkShared, twcc_ext_id};

/// The TWCC sender's place: wire-ward of the NACK responder and the resend throttle, and
/// application-ward of congestion control, which must see every packet numbered.
pub(crate) const SLOT: Slot = Slot::TwccSender;

/// One sent video stream with an RTX stream beside it.
struct RtxStream {
    rtx_ssrc: u32,
    rtx_payload_type: u8,
    next_rtx_seq: u16,
    /// The latest packets sent on the media SSRC, oldest first.
    recent: VecDeque<rtp::Packet>,
}

pub(crate) struct LinkProbe {
    link: Arc<LinkShared>,
    /// By media SSRC.
    streams: HashMap<u32, RtxStream>,
    /// RTX SSRC → media SSRC.
    by_rtx: HashMap<u32, u32>,
    /// The transport-wide sequence number's header extension id of each bound SSRC (and of
    /// each RTX SSRC, its media stream's).
    twcc_ext: HashMap<u32, u8>,
    next_transport_seq: u16,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl LinkProbe {
    pub fn new(link: Arc<LinkShared>) -> LinkProbe {
        LinkProbe {
            link,
            streams: HashMap::new(),
            by_rtx: HashMap::new(),
            twcc_ext: HashMap::new(),
            next_transport_seq: 0,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    /// Queues `msg` for the wire with the next transport-wide sequence number.
    fn send(&mut self, mut msg: TaggedPacket) {
        if let Packet::Rtp(packet) = &mut msg.message.packet
            && let Some(&id) = self.twcc_ext.get(&packet.header.ssrc)
        {
            let seq = self.next_transport_seq;
            self.next_transport_seq = seq.wrapping_add(1);
            let ext = TransportCcExtension {
                transport_sequence: seq,
            };
            if let Ok(data) = ext.marshal() {
                let _ = packet.header.set_extension(id, data.freeze());
            }
        }
        self.writes.push_back(msg);
    }

    /// The probe train behind a packet of `ssrc`: its newest packets, in their order; `None`
    /// while it has sent too few to make one (the request then waits for more).
    fn probe(&mut self, ssrc: u32) -> Option<Vec<rtp::Packet>> {
        let stream = self.streams.get_mut(&ssrc)?;
        // How many is the core's to say ([`probe_train`]); each is counted as resent: its
        // header, its payload and the original sequence number RTX puts before it.
        let count = probe_train(
            stream
                .recent
                .iter()
                .rev()
                .map(|p| p.header.marshal_size() + p.payload.len() + 2),
        )?;
        let start = stream.recent.len() - count;
        let originals: Vec<rtp::Packet> = stream.recent.range(start..).cloned().collect();
        Some(
            originals
                .into_iter()
                .map(|original| rtx_packet(stream, &original))
                .collect(),
        )
    }
}

/// `original` as the next packet of its RTX stream (RFC 4588: the original sequence number,
/// then the original payload).
fn rtx_packet(stream: &mut RtxStream, original: &rtp::Packet) -> rtp::Packet {
    let mut payload = BytesMut::with_capacity(2 + original.payload.len());
    payload.put_u16(original.header.sequence_number);
    payload.put_slice(&original.payload);
    let seq = stream.next_rtx_seq;
    stream.next_rtx_seq = seq.wrapping_add(1);
    rtp::Packet {
        header: rtp::Header {
            version: 2,
            ssrc: stream.rtx_ssrc,
            payload_type: stream.rtx_payload_type,
            sequence_number: seq,
            timestamp: original.header.timestamp,
            marker: original.header.marker,
            ..Default::default()
        },
        payload: payload.freeze(),
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for LinkProbe {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        let now = msg.now;
        if let Packet::Rtp(packet) = &mut msg.message.packet {
            let ssrc = packet.header.ssrc;
            if let Some(stream) = self.streams.get_mut(&ssrc) {
                if stream.recent.len() == PROBE_PACKETS {
                    stream.recent.pop_front();
                }
                // The payload is shared, not copied.
                stream.recent.push_back(packet.clone());
            } else if let Some(stream) = self
                .by_rtx
                .get(&ssrc)
                .and_then(|media| self.streams.get_mut(media))
            {
                packet.header.sequence_number = stream.next_rtx_seq;
                stream.next_rtx_seq = stream.next_rtx_seq.wrapping_add(1);
                self.link.rtx_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        let video = match &msg.message.packet {
            Packet::Rtp(p) if self.streams.contains_key(&p.header.ssrc) => Some(p.header.ssrc),
            _ => None,
        };
        let transport = msg.transport;
        self.send(msg);
        // Sent right behind a video packet, so the train leaves with the stream it measures.
        if let Some(ssrc) = video
            && self.link.probe_requested.load(Ordering::Relaxed)
            && let Some(probe) = self.probe(ssrc)
        {
            self.link.probe_requested.store(false, Ordering::Relaxed);
            self.link
                .probe_packets
                .fetch_add(probe.len() as u64, Ordering::Relaxed);
            for packet in probe {
                self.send(TaggedPacket {
                    now,
                    transport,
                    message: AttributedPacket::new(Packet::Rtp(packet))
                        .with(Attribute::Retransmission),
                });
            }
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for LinkProbe {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let twcc = twcc_ext_id(info);
        if let Some(id) = twcc {
            self.twcc_ext.insert(info.ssrc, id);
        }
        if let (Some(rtx_ssrc), Some(rtx_payload_type)) = (info.ssrc_rtx, info.payload_type_rtx) {
            if let Some(id) = twcc {
                self.twcc_ext.insert(rtx_ssrc, id);
            }
            self.by_rtx.insert(rtx_ssrc, info.ssrc);
            self.streams.insert(
                info.ssrc,
                RtxStream {
                    rtx_ssrc,
                    rtx_payload_type,
                    next_rtx_seq: rand::random(),
                    recent: VecDeque::with_capacity(PROBE_PACKETS),
                },
            );
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.twcc_ext.remove(&info.ssrc);
        if let Some(stream) = self.streams.remove(&info.ssrc) {
            self.by_rtx.remove(&stream.rtx_ssrc);
            self.twcc_ext.remove(&stream.rtx_ssrc);
        }
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtc::interceptor::RTPHeaderExtension;
    use rtc::sdp::extmap::TRANSPORT_CC_URI;
    use rtc::shared::TransportContext;
    use rtc::shared::marshal::Unmarshal;

    fn transport_seq(packet: &rtp::Packet) -> u16 {
        let mut ext = packet.header.get_extension(5).expect("numbered");
        TransportCcExtension::unmarshal(&mut ext)
            .unwrap()
            .transport_sequence
    }

    const MEDIA: u32 = 0xAA;
    const RTX: u32 = 0xBB;

    fn write(probe: &mut LinkProbe, now: Instant, ssrc: u32, pt: u8, seq: u16, size: usize) {
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                ssrc,
                payload_type: pt,
                sequence_number: seq,
                ..Default::default()
            },
            payload: Bytes::from(vec![seq as u8; size]),
        };
        probe
            .handle_write(TaggedPacket {
                now,
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)),
            })
            .unwrap();
    }

    fn written(probe: &mut LinkProbe) -> Vec<rtp::Packet> {
        std::iter::from_fn(|| probe.poll_write())
            .filter_map(|m| match m.message.packet {
                Packet::Rtp(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn probe_with_rtx() -> (LinkProbe, Arc<LinkShared>) {
        let link = Arc::new(LinkShared::default());
        let mut probe = LinkProbe::new(Arc::clone(&link));
        probe.bind_local_stream(&StreamInfo {
            ssrc: MEDIA,
            ssrc_rtx: Some(RTX),
            payload_type: 96,
            payload_type_rtx: Some(97),
            rtp_header_extensions: vec![RTPHeaderExtension {
                uri: TRANSPORT_CC_URI.to_owned(),
                id: 5,
            }],
            ..Default::default()
        });
        (probe, link)
    }

    #[test]
    fn a_probe_resends_the_latest_packets_back_to_back_on_rtx() {
        let (mut probe, link) = probe_with_rtx();
        let t0 = Instant::now();
        for seq in 100..120 {
            write(&mut probe, t0, MEDIA, 96, seq, 1000);
        }
        assert_eq!(written(&mut probe).len(), 20, "media passes through");
        link.probe_requested.store(true, Ordering::Relaxed);
        write(&mut probe, t0, MEDIA, 96, 120, 1000);
        let out = written(&mut probe);
        // The media packet, then five of ~1 000 bytes: 5 000 bytes at least.
        assert_eq!(out[0].header.ssrc, MEDIA);
        let train = &out[1..];
        assert_eq!(train.len(), 5);
        let originals: Vec<u16> = train
            .iter()
            .map(|p| u16::from_be_bytes([p.payload[0], p.payload[1]]))
            .collect();
        assert_eq!(originals, vec![116, 117, 118, 119, 120]);
        for pair in train.windows(2) {
            assert_eq!(pair[0].header.ssrc, RTX);
            assert_eq!(pair[0].header.payload_type, 97);
            assert_eq!(
                pair[1].header.sequence_number,
                pair[0].header.sequence_number.wrapping_add(1)
            );
        }
        assert_eq!(link.probe_packets.load(Ordering::Relaxed), 5);
        assert!(
            !link.probe_requested.load(Ordering::Relaxed),
            "one request, one probe"
        );

        // The responder's resends continue the same RTX numbering, whatever they carried.
        write(&mut probe, t0, RTX, 97, 0, 1002);
        let resend = written(&mut probe);
        assert_eq!(
            resend[0].header.sequence_number,
            train[4].header.sequence_number.wrapping_add(1)
        );
        assert_eq!(link.rtx_sent.load(Ordering::Relaxed), 1);

        // Every packet, media and RTX alike, carries the next transport-wide number.
        let numbers: Vec<u16> = out.iter().chain(&resend).map(transport_seq).collect();
        let first = numbers[0];
        assert_eq!(
            numbers,
            (0..7).map(|i| first.wrapping_add(i)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_probe_waits_until_there_is_enough_to_resend() {
        let (mut probe, link) = probe_with_rtx();
        let t0 = Instant::now();
        link.probe_requested.store(true, Ordering::Relaxed);
        write(&mut probe, t0, MEDIA, 96, 1, 1000);
        assert_eq!(written(&mut probe).len(), 1, "one packet is no train");
        assert!(link.probe_requested.load(Ordering::Relaxed), "still asked");
        for seq in 2..=5 {
            write(&mut probe, t0, MEDIA, 96, seq, 1000);
        }
        assert_eq!(written(&mut probe).len(), 4 + 5);
        assert!(!link.probe_requested.load(Ordering::Relaxed));
    }

    #[test]
    fn without_rtx_there_is_no_probe() {
        let link = Arc::new(LinkShared::default());
        let mut probe = LinkProbe::new(Arc::clone(&link));
        probe.bind_local_stream(&StreamInfo {
            ssrc: MEDIA,
            payload_type: 96,
            ..Default::default()
        });
        let t0 = Instant::now();
        link.probe_requested.store(true, Ordering::Relaxed);
        write(&mut probe, t0, MEDIA, 96, 1, 1000);
        assert_eq!(written(&mut probe).len(), 1);
        assert_eq!(link.probe_packets.load(Ordering::Relaxed), 0);
    }
}
