//! The lesson recorder: media forwarded by the SFU in, crash-safe WebM files and a timeline
//! out, in-process (a tap on forwarded RTP, no extra WebRTC hop).
//!
//! A recording is a directory `LIBRARY/<id>/`:
//! - `main.webm` — the teacher's camera (VP8, as forwarded) and the mix of every voice
//!   (each Opus track decoded, mixed under full scale, re-encoded to one Opus track);
//! - `screen.webm` — the screen share, only if one happened, stamped on the same media clock
//!   as `main.webm` (a block at 90 s in one is at 90 s in the other);
//! - `timeline.jsonl` — chat, hands, stage and screen-share events in media time;
//! - `meta.json` — lesson, subject, grade, teacher, school, start, duration, state.
//!
//! While recording the media files are `*.part`, appended a cluster (about a second) at a
//! time and synced; finishing seals them in place (cues, duration) and renames them. After a
//! crash, [`recover`] seals whatever `*.part` files it finds and marks them `interrupted`; a
//! full disk stops the recording with [`RecorderError::DiskFull`] and seals what is there.
//!
//! Map of the crate:
//! - [`recording`] — [`Recording`], the sans-I/O-clock core: `push_rtp`, `push_event`,
//!   `handle_timeout`/`poll_timeout`, `poll_output` (keyframe requests), `finish`;
//! - [`handle`] — [`RecorderHandle`], a recording on its own thread behind a bounded queue;
//! - [`recover`](mod@recover) — start-up recovery of unfinished recordings;
//! - `jitter` (reorder by sequence number), `clock` (RTP time to media time), `vp8` (frames
//!   and keyframe waits), `mixer` (decode, conceal, mix, limit, encode), `webm` (cluster
//!   writing, sealing, parsing a `.part`);
//! - [`storage`] — the storage boundary ([`FileStorage`], [`QuotaStorage`]);
//! - [`meta`], [`timeline`], [`stats`] — what is written beside the media;
//! - [`synthetic`] — synthetic publishers (a looped VP8 clip, Opus tones) for the benchmark,
//!   the tests and the `record-synthetic` tool.
//!
//! No function here panics on input: packets, files and ids are checked, and every failure
//! is a [`RecorderError`] with a stable [`code`](RecorderError::code).

mod clock;
pub mod error;
pub mod handle;
mod jitter;
pub mod meta;
mod mixer;
pub mod recording;
pub mod recover;
pub mod stats;
pub mod storage;
pub mod synthetic;
pub mod timeline;
mod vp8;
mod webm;

pub use error::RecorderError;
pub use handle::{RecorderHandle, RecorderNotice};
pub use jitter::ReorderStats;
pub use meta::{
    ErrorInfo, LessonMeta, RecordingFiles, RecordingId, RecordingMeta, RecordingState,
    RecordingSummary, TrackId, TrackKind,
};
pub use recording::{RecorderConfig, Recording, RecordingOutput};
pub use recover::{Recovered, recover, recover_with};
pub use stats::RecordingStats;
pub use storage::{FileStorage, QuotaStorage, Storage, StorageFile};
pub use timeline::{TimelineEntry, TimelineEvent, read_timeline};
pub use vp8::VideoStats;

/// RTP packet type the recorder takes (re-exported from `rtc`, the SFU's own).
pub use rtc::rtp::Packet as RtpPacket;
