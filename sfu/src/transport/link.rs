//! What a connection's parts share, with no dependency on any of them: its key in the
//! engine ([`ConnKey`]), what its interceptors and the engine tell each other about its link
//! ([`LinkShared`]), and where a stream's transport-wide sequence number goes
//! ([`twcc_ext_id`]). A leaf of the transport: it imports nothing else of it, so the peer
//! connection and its interceptors can all use it without importing each other.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use rtc::interceptor::StreamInfo;
use rtc::sdp::extmap::TRANSPORT_CC_URI;

/// A connection's key in its shard; never reused within a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnKey(pub u64);

/// What a connection's interceptors and its shard tell each other; the chain is out of the
/// shard's reach once the connection is built.
#[derive(Debug)]
pub(crate) struct LinkShared {
    /// The subscriber's round trip from its receiver reports, in ms (0: none yet). Shard → throttle.
    pub rtt_ms: AtomicU32,
    /// The link capacity from TWCC trains, bits per second; `u64::MAX` while unlimited.
    /// Meter → shard.
    pub capacity_bps: AtomicU64,
    /// NACKed packets passed on to the responder (resent when still buffered), and those struck
    /// because the packet was resent within a round trip. Drained into `SfuStats` by the shard.
    pub retransmissions: AtomicU64,
    pub retransmissions_suppressed: AtomicU64,
    /// Packets the responder resent on an RTX stream (counted by the probe, which numbers
    /// them). Drained like the above.
    pub rtx_sent: AtomicU64,
    /// Shard → probe: send a probe train with the next video packet ([`LinkProbe`]).
    pub probe_requested: AtomicBool,
    /// Packets sent as probes. Drained like the above.
    pub probe_packets: AtomicU64,
    /// Some packet train has been measured on this link (even one too fast to limit it).
    /// Meter → shard.
    pub measured: AtomicBool,
}

impl Default for LinkShared {
    fn default() -> Self {
        LinkShared {
            rtt_ms: AtomicU32::new(0),
            capacity_bps: AtomicU64::new(u64::MAX),
            retransmissions: AtomicU64::new(0),
            retransmissions_suppressed: AtomicU64::new(0),
            rtx_sent: AtomicU64::new(0),
            probe_requested: AtomicBool::new(false),
            probe_packets: AtomicU64::new(0),
            measured: AtomicBool::new(false),
        }
    }
}

impl LinkShared {
    /// The measured capacity; `None` while nothing limits the link.
    pub fn capacity(&self) -> Option<u64> {
        Some(self.capacity_bps.load(Ordering::Relaxed)).filter(|&bps| bps != u64::MAX)
    }
}

/// The header extension id a stream negotiated for the transport-wide sequence number.
pub(crate) fn twcc_ext_id(info: &StreamInfo) -> Option<u8> {
    info.rtp_header_extensions
        .iter()
        .find(|ext| ext.uri == TRANSPORT_CC_URI)
        .and_then(|ext| u8::try_from(ext.id).ok())
}
