//! Measures a subscriber leg's link from its TWCC feedback, into [`LinkCapacity`].
//!
//! It keeps the send history (`rtc`'s [`History`]) of every packet that leaves with a
//! transport-wide sequence number, resolves the subscriber's feedback against it
//! ([`convert_twcc`]) and hands the result to [`LinkCapacity`]. `rtc`'s congestion-control
//! interceptor does the same but records only the SSRCs bound as streams, which leaves out the
//! RTX stream: no resend and no probe ([`super::link_probe`]) would ever be measured. What it
//! measures goes to the shard through [`LinkShared`], since the interceptor chain is out of the
//! shard's reach once the connection is built. Why not `rtc`'s GCC: see `core::capacity`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc::interceptor::{History, Interceptor, Packet, StreamInfo, TaggedPacket, convert_twcc};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtp::extension::transport_cc_extension::TransportCcExtension;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::{MarshalSize, Unmarshal};

use super::link::{LinkShared, twcc_ext_id};
use crate::core::{Delivery, LinkCapacity};

/// Packets are forgotten this long after they left: feedback comes within a round trip.
const HISTORY: Duration = Duration::from_secs(2);

pub(crate) struct LinkMeter {
    link: Arc<LinkShared>,
    capacity: LinkCapacity,
    history: History,
    /// The transport-wide sequence number's header extension id on this connection.
    twcc_ext: Option<u8>,
    deliveries: Vec<Delivery>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl LinkMeter {
    pub fn new(link: Arc<LinkShared>) -> LinkMeter {
        LinkMeter {
            link,
            capacity: LinkCapacity::default(),
            history: History::new(),
            twcc_ext: None,
            deliveries: Vec::new(),
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    fn publish(&self) {
        let bps = self.capacity.capacity().unwrap_or(u64::MAX);
        self.link.capacity_bps.store(bps, Ordering::Relaxed);
        if self.capacity.measured() {
            self.link.measured.store(true, Ordering::Relaxed);
        }
    }

    fn transport_seq(&self, packet: &rtc::rtp::Packet) -> Option<u16> {
        let mut ext = packet.header.get_extension(self.twcc_ext?)?;
        TransportCcExtension::unmarshal(&mut ext)
            .ok()
            .map(|e| e.transport_sequence)
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for LinkMeter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let mut reported = false;
            for packet in packets {
                if let Some(feedback) = packet.as_any().downcast_ref::<TransportLayerCc>() {
                    for ack in convert_twcc(feedback) {
                        self.history.on_twcc_feedback(msg.now, ack);
                    }
                    reported = true;
                }
            }
            if reported {
                self.deliveries.clear();
                self.deliveries
                    .extend(self.history.take_reports().iter().map(|r| Delivery {
                        departure: r.departure,
                        arrival: if r.arrived { r.arrival } else { None },
                        size: r.size,
                    }));
                self.capacity.on_deliveries(msg.now, &self.deliveries);
                self.publish();
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(packet) = &msg.message.packet
            && let Some(seq) = self.transport_seq(packet)
        {
            // Wire-most of the chain with no pacer before it: `now` is when it leaves.
            self.history.add_outgoing(
                packet.header.ssrc,
                packet.header.sequence_number,
                true,
                seq,
                packet.marshal_size(),
                msg.now,
            );
        }
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.history
            .prune_before(now.checked_sub(HISTORY).unwrap_or(now));
        self.capacity.on_timeout(now);
        self.publish();
        Ok(())
    }
}

impl Interceptor for LinkMeter {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if let Some(id) = twcc_ext_id(info) {
            self.twcc_ext = Some(id);
        }
    }

    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
