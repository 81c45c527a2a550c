//! Lets subscribers' feedback reach the SFU.
//!
//! `rtc` hands inbound RTCP to its interceptors and drops it at the end of the chain unless a
//! packet is marked for the application (trap 1 in `notes/rtc-0.21.md`). Three kinds matter
//! to the SFU itself: a PLI or FIR concerns a stream the SFU only relays, so only the SFU can
//! act on it, by asking the publisher; receiver reports and NACKs are how it learns each
//! subscriber's loss, jitter and round trip (rtc 0.21 keeps none of it, trap 6). This
//! interceptor sits after the built-in ones (they have already read the reports, NACKs and
//! TWCC feedback they need), keeps just those packets of a compound packet and marks them for
//! delivery.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// The slot after the built-in report generators (10 000 and 11 000).
pub(crate) const SLOT: usize = 11_500;

#[derive(Default)]
pub(crate) struct RtcpRelay {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

pub(crate) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Whether the application wants `packet`: keyframe requests, and what quality is made of.
fn is_for_the_sfu(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    is_keyframe_request(packet)
        || any.is::<ReceiverReport>()
        || any.is::<SenderReport>()
        || any.is::<TransportLayerNack>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpRelay {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<_> = packets
                .iter()
                .filter(|p| is_for_the_sfu(p.as_ref()))
                .cloned()
                .collect();
            if requests.is_empty() {
                // Everything else was for the interceptors, which have seen it.
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for RtcpRelay {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
