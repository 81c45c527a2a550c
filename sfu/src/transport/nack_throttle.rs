//! At most one retransmission of a packet per round trip.
//!
//! `rtc`'s NACK responder resends every sequence number each NACK names. A receiver that asks
//! again before the first resend could have arrived (a NACK generator on a fixed 100 ms cycle
//! over a 150–300 ms round trip asks two or three times per loss) then gets the packet two or
//! three times, and on a link already short of capacity those duplicates are the congestion
//! that loses the next packets: a retransmission storm. This interceptor sits between the
//! wire and the responder and strikes from each NACK what was resent less than ~¾ of a round
//! trip ago (the round trip is the subscriber's, from its receiver reports, kept by the shard
//! in [`LinkShared`]). A second request after a full round trip is a retransmission that was
//! itself lost, and is served.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use super::link::LinkShared;

/// Wire-ward of the NACK responder (4 000) and application-ward of the pacer (3 000).
pub(crate) const SLOT: usize = 3_500;

/// The round trip assumed before the subscriber's reports give one.
const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// Resends remembered at most; the oldest are forgotten first (a second of the high layer).
const REMEMBERED: usize = 2_048;

pub(crate) struct NackThrottle {
    link: Arc<LinkShared>,
    /// When each (SSRC, sequence number) was last let through to the responder.
    resent: HashMap<(u32, u16), Instant>,
    order: VecDeque<(Instant, u32, u16)>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl NackThrottle {
    pub fn new(link: Arc<LinkShared>) -> NackThrottle {
        NackThrottle {
            link,
            resent: HashMap::new(),
            order: VecDeque::new(),
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    fn hold(&self) -> Duration {
        match self.link.rtt_ms.load(Ordering::Relaxed) {
            0 => DEFAULT_RTT,
            ms => Duration::from_millis(u64::from(ms)),
        }
        .mul_f32(0.75)
    }

    /// The sequence numbers of `nack` that may be resent now.
    fn admit(&mut self, now: Instant, ssrc: u32, asked: Vec<u16>) -> Vec<u16> {
        let hold = self.hold();
        while let Some(&(at, s, seq)) = self.order.front() {
            if self.order.len() < REMEMBERED && now.saturating_duration_since(at) < hold * 4 {
                break;
            }
            self.order.pop_front();
            if self.resent.get(&(s, seq)) == Some(&at) {
                self.resent.remove(&(s, seq));
            }
        }
        let mut admitted = Vec::with_capacity(asked.len());
        for seq in asked {
            let recent = self
                .resent
                .get(&(ssrc, seq))
                .is_some_and(|&at| now.saturating_duration_since(at) < hold);
            if recent {
                continue;
            }
            self.resent.insert((ssrc, seq), now);
            self.order.push_back((now, ssrc, seq));
            admitted.push(seq);
        }
        admitted
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for NackThrottle {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        let now = msg.now;
        if let Packet::Rtcp(packets) = &mut msg.message.packet
            && packets
                .iter()
                .any(|p| p.as_any().is::<TransportLayerNack>())
        {
            let mut kept: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::with_capacity(packets.len());
            for packet in packets.drain(..) {
                let Some(nack) = packet.as_any().downcast_ref::<TransportLayerNack>() else {
                    kept.push(packet);
                    continue;
                };
                let asked: Vec<u16> = nack.nacks.iter().flat_map(|n| n.packet_list()).collect();
                let total = asked.len() as u64;
                let admitted = self.admit(now, nack.media_ssrc, asked);
                let stats = &self.link;
                stats
                    .retransmissions
                    .fetch_add(admitted.len() as u64, Ordering::Relaxed);
                stats
                    .retransmissions_suppressed
                    .fetch_add(total - admitted.len() as u64, Ordering::Relaxed);
                if !admitted.is_empty() {
                    kept.push(Box::new(TransportLayerNack {
                        sender_ssrc: nack.sender_ssrc,
                        media_ssrc: nack.media_ssrc,
                        nacks: nack_pairs_from_sequence_numbers(&admitted),
                    }));
                }
            }
            if kept.is_empty() {
                return Ok(());
            }
            *packets = kept;
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

impl Interceptor for NackThrottle {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_is_resent_once_per_round_trip() {
        let link = Arc::new(LinkShared::default());
        link.rtt_ms.store(200, Ordering::Relaxed);
        let mut throttle = NackThrottle::new(link);
        let t0 = Instant::now();
        assert_eq!(throttle.admit(t0, 1, vec![10, 11]), vec![10, 11]);
        // Asked again 100 ms later: the resends are still on their way.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(throttle.admit(t1, 1, vec![10, 11, 12]), vec![12]);
        // Another stream's numbers are its own.
        assert_eq!(throttle.admit(t1, 2, vec![10]), vec![10]);
        // After a round trip the resend was lost too: serve it again.
        let t2 = t0 + Duration::from_millis(200);
        assert_eq!(throttle.admit(t2, 1, vec![10]), vec![10]);
    }

    #[test]
    fn memory_is_bounded() {
        let mut throttle = NackThrottle::new(Arc::new(LinkShared::default()));
        let t0 = Instant::now();
        for seq in 0..10_000u16 {
            throttle.admit(t0, 1, vec![seq]);
        }
        assert!(throttle.resent.len() <= REMEMBERED + 1);
        assert!(throttle.order.len() <= REMEMBERED + 1);
    }
}
