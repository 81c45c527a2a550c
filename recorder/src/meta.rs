//! What a recording is called and what is known about it: ids, the lesson's metadata and
//! `meta.json`, the record the library lists.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::RecorderError;
use crate::stats::RecordingStats;

/// A recording's id; it names the recording's directory, so it is restricted to
/// `[A-Za-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordingId(String);

impl RecordingId {
    /// Validates an id.
    pub fn new(id: impl Into<String>) -> Result<Self, RecorderError> {
        let id = id.into();
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(id))
        } else {
            Err(RecorderError::InvalidId(id))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RecordingId {
    type Error = RecorderError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<RecordingId> for String {
    fn from(id: RecordingId) -> Self {
        id.0
    }
}

impl fmt::Display for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One published track as the recorder sees it; the SFU picks the numbers (unique within a
/// recording for the track's lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TrackId(pub u64);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "track-{}", self.0)
    }
}

/// What a track carries, which decides where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Opus from a microphone (or screen audio): decoded and mixed into `main.webm`.
    Voice,
    /// The teacher's camera, VP8 (the best layer the SFU forwards): video of `main.webm`.
    Camera,
    /// A screen share, VP8: `screen.webm`, on the same clock as `main.webm`.
    Screen,
}

/// The lesson a recording belongs to, as the library will search it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonMeta {
    /// The lesson's id in the signaling database.
    pub lesson_id: String,
    /// The lesson's title.
    pub title: String,
    /// Subject (music, mathematics, ...).
    pub subject: String,
    /// Grade or class year.
    pub grade: String,
    /// The teacher's display name.
    pub teacher: String,
    /// The teacher's school.
    pub school: String,
    /// When the recording started, RFC 3339, given by the caller (the core keeps no clock).
    pub started_at: String,
}

/// Where a recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Still being written (or the process died: `recover` turns it into `interrupted`).
    Recording,
    /// Finished normally.
    Complete,
    /// The process stopped mid-recording; recovered into playable files at the next start.
    Interrupted,
    /// Stopped by an error (a full disk); what was written before it is playable.
    Failed,
}

/// An error as stored in `meta.json` and shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// The stable code ([`RecorderError::code`]).
    pub code: String,
    /// The message.
    pub message: String,
}

impl From<&RecorderError> for ErrorInfo {
    fn from(e: &RecorderError) -> Self {
        Self {
            code: e.code().to_owned(),
            message: e.to_string(),
        }
    }
}

/// The files of a recording, relative to its directory; `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFiles {
    /// Teacher camera + mixed audio.
    pub main: Option<String>,
    /// The screen share, only if one happened.
    pub screen: Option<String>,
    /// JSON Lines: one timeline entry per line.
    pub timeline: Option<String>,
}

/// `meta.json`: everything the library needs to list and play a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingMeta {
    /// The recording's id (its directory name).
    pub id: RecordingId,
    /// The lesson.
    #[serde(flatten)]
    pub lesson: LessonMeta,
    /// Where it stands.
    pub state: RecordingState,
    /// Media duration in milliseconds (0 while recording).
    pub duration_ms: u64,
    /// Whether the media files carry cues (seeking without a scan).
    pub seekable: bool,
    /// The error that stopped it, if any.
    pub error: Option<ErrorInfo>,
    /// Its files.
    pub files: RecordingFiles,
    /// Counters, when known (not after a recovery).
    pub stats: Option<RecordingStats>,
}

/// A finished recording's record, as returned by `finish`.
pub type RecordingSummary = RecordingMeta;

pub(crate) const META_FILE: &str = "meta.json";

impl RecordingMeta {
    pub(crate) fn read(dir: &Path) -> Result<Self, RecorderError> {
        let path = dir.join(META_FILE);
        let bytes = std::fs::read(&path).map_err(|e| RecorderError::io("read", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|source| RecorderError::Json { path, source })
    }

    pub(crate) fn to_json(&self, dir: &Path) -> Result<Vec<u8>, RecorderError> {
        serde_json::to_vec_pretty(self).map_err(|source| RecorderError::Json {
            path: dir.join(META_FILE),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_name_a_directory() {
        assert!(RecordingId::new("lesson-42_a").is_ok());
        for bad in ["", "../etc", "a/b", "x y", &"a".repeat(65)] {
            let err = RecordingId::new(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_id");
        }
        assert!(serde_json::from_str::<RecordingId>("\"..\"").is_err());
    }
}
