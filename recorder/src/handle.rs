//! A recording on a thread of its own, fed through a bounded channel: the SFU's shard thread
//! hands packets over with `try_send` and never waits on a disk, an fsync or the Opus
//! encoder. A full channel drops the packet and counts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtc::rtp::Packet;

use crate::error::RecorderError;
use crate::meta::{ErrorInfo, RecordingId, RecordingSummary, TrackId, TrackKind};
use crate::recording::{Recording, RecordingOutput};
use crate::timeline::TimelineEvent;

/// The longest the thread sleeps without looking at the clock: it mixes in real time.
const MAX_TICK: Duration = Duration::from_millis(20);

/// What a recorder thread tells its owner, from that thread (keep the callback short: hand
/// it to a channel).
#[derive(Debug, Clone, PartialEq)]
pub enum RecorderNotice {
    /// Ask the publisher of `track` for a keyframe.
    KeyframeRequest {
        /// The recording asking.
        recording: RecordingId,
        /// The track.
        track: TrackId,
    },
    /// The recording stopped on an error (a full disk). What was recorded is sealed and
    /// playable; show `error.message` to the teacher and the operator.
    Failed {
        /// The recording.
        recording: RecordingId,
        /// What went wrong.
        error: ErrorInfo,
    },
    /// The recording finished and its files are sealed (also after its handle was dropped).
    Finished(Box<RecordingSummary>),
}

enum Command {
    Rtp {
        at: Instant,
        track: TrackId,
        kind: TrackKind,
        packet: Packet,
    },
    Event {
        at: Instant,
        event: TimelineEvent,
    },
    RemoveTrack {
        at: Instant,
        track: TrackId,
    },
    Finish {
        at: Instant,
        reply: mpsc::Sender<Result<RecordingSummary, RecorderError>>,
    },
}

/// The owner's side of a recorder thread. Dropping it finishes the recording in the
/// background (files sealed, `Finished` notified).
#[derive(Debug)]
pub struct RecorderHandle {
    id: RecordingId,
    tx: SyncSender<Command>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RecorderHandle {
    /// Runs `recording` on a new thread with a queue of `capacity` inputs.
    pub fn spawn(
        recording: Recording,
        capacity: usize,
        notify: impl Fn(RecorderNotice) + Send + 'static,
    ) -> Result<Self, RecorderError> {
        let id = recording.id().clone();
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name(format!("rec-{}", truncate(id.as_str(), 11)))
            .spawn(move || run(recording, rx, notify))
            .map_err(|e| RecorderError::io("spawn", "recorder thread", e))?;
        Ok(Self {
            id,
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            thread: Some(thread),
        })
    }

    /// The recording's id.
    pub fn id(&self) -> &RecordingId {
        &self.id
    }

    fn offer(&self, cmd: Command) -> bool {
        match self.tx.try_send(cmd) {
            Ok(()) => true,
            // A recorder that falls behind loses packets (counted) rather than stalling the
            // lesson; the VP8 path recovers on the next keyframe, the mix conceals.
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Hands over one packet; `false` if it was dropped (queue full or recording stopped).
    pub fn push_rtp(&self, at: Instant, track: TrackId, kind: TrackKind, packet: Packet) -> bool {
        self.offer(Command::Rtp {
            at,
            track,
            kind,
            packet,
        })
    }

    /// Hands over one timeline event; `false` if it was dropped.
    pub fn push_event(&self, at: Instant, event: TimelineEvent) -> bool {
        self.offer(Command::Event { at, event })
    }

    /// Tells the recorder a track ended; `false` if the message was dropped.
    pub fn remove_track(&self, at: Instant, track: TrackId) -> bool {
        self.offer(Command::RemoveTrack { at, track })
    }

    /// Inputs dropped because the queue was full or the recording had stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Finishes the recording at `at` and waits until its files are sealed. Blocking: call it
    /// from a blocking context (`spawn_blocking`).
    pub fn finish(mut self, at: Instant) -> Result<RecordingSummary, RecorderError> {
        let (reply, answer) = mpsc::channel();
        let gone = || RecorderError::ThreadGone(self.id.to_string());
        self.tx
            .send(Command::Finish { at, reply })
            .map_err(|_| gone())?;
        let result = answer.recv().map_err(|_| gone())?;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        result
    }
}

fn truncate(s: &str, n: usize) -> &str {
    s.get(..n).unwrap_or(s)
}

fn run(recording: Recording, rx: Receiver<Command>, notify: impl Fn(RecorderNotice)) {
    let id = recording.id().clone();
    let mut recording = Some(recording);
    let mut failed = false;
    loop {
        let Some(rec) = recording.as_mut() else {
            return;
        };
        let now = Instant::now();
        let wait = rec
            .poll_timeout()
            .map_or(MAX_TICK, |t| t.saturating_duration_since(now))
            .min(MAX_TICK);
        let result = match rx.recv_timeout(wait) {
            Ok(Command::Rtp {
                at,
                track,
                kind,
                packet,
            }) => rec.push_rtp(at, track, kind, packet),
            Ok(Command::Event { at, event }) => rec.push_event(at, event),
            Ok(Command::RemoveTrack { at, track }) => rec.remove_track(at, track),
            Ok(Command::Finish { at, reply }) => {
                let result = recording.take().map(|r| r.finish(at));
                if let Some(Ok(meta)) = &result {
                    notify(RecorderNotice::Finished(Box::new(meta.clone())));
                }
                if let Some(result) = result {
                    let _ = reply.send(result);
                }
                return;
            }
            Err(RecvTimeoutError::Timeout) => rec.handle_timeout(Instant::now()),
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(Ok(meta)) = recording.take().map(|r| r.finish(Instant::now())) {
                    notify(RecorderNotice::Finished(Box::new(meta)));
                }
                return;
            }
        };
        match result {
            Ok(()) => {}
            Err(RecorderError::Stopped(_)) => {}
            Err(e) => {
                if !failed {
                    failed = true;
                    notify(RecorderNotice::Failed {
                        recording: id.clone(),
                        error: ErrorInfo::from(&e),
                    });
                }
            }
        }
        if let Some(rec) = recording.as_mut() {
            while let Some(RecordingOutput::KeyframeRequest(track)) = rec.poll_output() {
                notify(RecorderNotice::KeyframeRequest {
                    recording: id.clone(),
                    track,
                });
            }
        }
    }
}
