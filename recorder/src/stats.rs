//! Counters of one recording, kept in `meta.json` and exposed to the operator.

use serde::{Deserialize, Serialize};

/// What happened to the media of one recording.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStats {
    /// RTP packets taken.
    pub packets: u64,
    /// Packets not used: unknown codec payloads, tracks over the limit, after a failure.
    pub ignored_packets: u64,
    /// Packets that arrived after their slot was released (jitter beyond the wait).
    pub late_packets: u64,
    /// Packets declared lost after the reorder wait.
    pub lost_packets: u64,
    /// Duplicated packets.
    pub duplicate_packets: u64,
    /// Mixed audio frames (20 ms) written.
    pub audio_frames: u64,
    /// Milliseconds of voice audio concealed (FEC or PLC) after losses.
    pub concealed_ms: u64,
    /// Opus packets that could not be decoded.
    pub decode_errors: u64,
    /// Voice samples that arrived after their mix frame was encoded.
    pub late_samples: u64,
    /// Frames in which the limiter reduced the gain to avoid clipping.
    pub limited_frames: u64,
    /// Video frames written (camera and screen).
    pub video_frames: u64,
    /// Video frames dropped because a packet was missing.
    pub incomplete_frames: u64,
    /// Complete frames skipped while waiting for a keyframe.
    pub skipped_frames: u64,
    /// Keyframe requests emitted.
    pub keyframe_requests: u64,
    /// Clusters written (each one synced to disk).
    pub clusters: u64,
    /// Bytes of media written.
    pub media_bytes: u64,
    /// Timeline events written.
    pub events: u64,
}
