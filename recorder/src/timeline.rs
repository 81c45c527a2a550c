//! The lesson's timeline: chat, hands, stage and screen-share events stamped in media time,
//! so the replay page can show them as the video plays.
//!
//! Stored as JSON Lines (`timeline.jsonl`), one [`TimelineEntry`] per line: appending a line
//! is crash-safe (a torn last line is dropped on recovery) and finishing is a rename, which
//! needs no free space on a full disk.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RecorderError;
use crate::storage::{Storage, StorageFile};

/// Something that happened in the lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimelineEvent {
    /// A chat message.
    Chat {
        /// Sender's participant id.
        participant: String,
        /// Sender's display name.
        name: String,
        /// The message.
        text: String,
    },
    /// A participant raised a hand.
    HandRaised {
        /// Who.
        participant: String,
    },
    /// A hand was lowered.
    HandLowered {
        /// Whose.
        participant: String,
    },
    /// The stage changed: who may speak now.
    StageChanged {
        /// Participants on stage.
        on_stage: Vec<String>,
    },
    /// A screen share started (its media is in `screen.webm`).
    ScreenShareStarted {
        /// Who shares.
        participant: String,
    },
    /// The screen share stopped.
    ScreenShareStopped {
        /// Who shared.
        participant: String,
    },
    /// The recording started (written by the recorder itself at media time 0).
    RecordingStarted,
    /// The recording stopped (written by the recorder itself).
    RecordingStopped {
        /// `complete`, or the error code that stopped it.
        reason: String,
    },
    /// Anything else the lesson wants on the timeline (slides, polls, ...).
    Custom {
        /// A short kind, e.g. `slide`.
        kind: String,
        /// Free-form JSON.
        payload: serde_json::Value,
    },
}

/// One line of `timeline.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Media time in milliseconds (the clock of `main.webm` and `screen.webm`).
    pub t_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: TimelineEvent,
}

pub(crate) const TIMELINE_FILE: &str = "timeline.jsonl";

/// Reads a timeline file, skipping a torn or unreadable line (the last one after a crash).
pub fn read_timeline(path: &Path) -> Result<Vec<TimelineEntry>, RecorderError> {
    let text = std::fs::read_to_string(path).map_err(|e| RecorderError::io("read", path, e))?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Appends entries to `timeline.jsonl.part`.
#[derive(Debug)]
pub(crate) struct TimelineWriter {
    path: PathBuf,
    file: Box<dyn StorageFile>,
    dirty: bool,
    /// Length of the file up to the last complete line.
    good_len: u64,
}

impl TimelineWriter {
    pub fn create(storage: &dyn Storage, path: PathBuf) -> Result<Self, RecorderError> {
        let file = storage
            .create(&path)
            .map_err(|e| RecorderError::io("create", &path, e))?;
        Ok(Self {
            path,
            file,
            dirty: false,
            good_len: 0,
        })
    }

    pub fn append(&mut self, entry: &TimelineEntry) -> Result<(), RecorderError> {
        let mut line = serde_json::to_vec(entry).map_err(|source| RecorderError::Json {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        self.file
            .append(&line)
            .map_err(|e| RecorderError::io("write", &self.path, e))?;
        self.good_len += line.len() as u64;
        self.dirty = true;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), RecorderError> {
        if self.dirty {
            self.file
                .sync()
                .map_err(|e| RecorderError::io("sync", &self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// After a failed append: cut the torn line so the file stays line-clean.
    pub fn trim(&mut self) {
        let _ = self.file.truncate(self.good_len);
        let _ = self.file.sync();
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_flat_json_lines() {
        let entry = TimelineEntry {
            t_ms: 1500,
            event: TimelineEvent::HandRaised {
                participant: "p1".into(),
            },
        };
        let line = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            line,
            r#"{"t_ms":1500,"type":"hand_raised","participant":"p1"}"#
        );
        assert_eq!(serde_json::from_str::<TimelineEntry>(&line).unwrap(), entry);
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(
            &path,
            "{\"t_ms\":0,\"type\":\"recording_started\"}\n{\"t_ms\":5,\"type\":\"ch",
        )
        .unwrap();
        let entries = read_timeline(&path).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].event, TimelineEvent::RecordingStarted);
    }
}
