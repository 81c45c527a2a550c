//! One error type for the crate: every failure a recording can meet, each with a stable code.

use std::io;
use std::path::PathBuf;

/// Why a recording (or a recovery) failed.
///
/// `code()` is stable and meant for API responses and metrics; the `Display` text is for
/// people (the teacher's console and the operator's dashboard show it as is).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// The disk (or the library's quota) is full. The recording stopped; what was written
    /// before is sealed and stays playable.
    #[error(
        "disk full while writing {path}: the recording stopped, what was recorded so far is kept"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// The underlying error (ENOSPC, EDQUOT or an injected one).
        #[source]
        source: io::Error,
    },
    /// Any other I/O failure on the recording's files.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done (`create`, `write`, `sync`, `rename`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The WebM writer refused an element (a bug in the muxer, never input-driven).
    #[error("webm writer: {0}")]
    Webm(String),
    /// libopus refused to create a codec or to encode (decode errors on input are counted, not
    /// raised).
    #[error("opus {op}: {source}")]
    Opus {
        /// What was being done.
        op: &'static str,
        /// The libopus error.
        #[source]
        source: opus::Error,
    },
    /// A JSON file of the recording (meta, timeline) could not be written or read.
    #[error("json {path}: {source}")]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A recording id that cannot name a directory.
    #[error("invalid recording id {0:?}: use 1 to 64 characters from A-Z a-z 0-9 - _")]
    InvalidId(String),
    /// A recording with this id already exists in the library directory.
    #[error("recording {0} already exists")]
    AlreadyExists(String),
    /// An unfinished recording had nothing that could be made playable.
    #[error("nothing recoverable in {path}: {reason}")]
    NotRecoverable {
        /// The `.part` file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The recording stopped earlier (after a failure); nothing more is accepted.
    #[error("the recording has stopped: {0}")]
    Stopped(String),
    /// The recorder thread is gone (it stopped after a failure or panicked).
    #[error("the recorder thread for {0} is gone")]
    ThreadGone(String),
}

impl RecorderError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DiskFull { .. } => "disk_full",
            Self::Io { .. } => "io",
            Self::Webm(_) => "webm",
            Self::Opus { .. } => "opus",
            Self::Json { .. } => "json",
            Self::InvalidId(_) => "invalid_id",
            Self::AlreadyExists(_) => "already_exists",
            Self::NotRecoverable { .. } => "not_recoverable",
            Self::Stopped(_) => "stopped",
            Self::ThreadGone(_) => "thread_gone",
        }
    }

    /// Classifies an I/O error on `path`: a full disk or quota becomes [`RecorderError::DiskFull`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            Self::DiskFull { path, source }
        } else {
            Self::Io { op, path, source }
        }
    }
}

/// ENOSPC and EDQUOT both mean "no room left": the same story for the teacher.
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28) | Some(122))
}

impl From<webm_iterable::errors::TagWriterError> for RecorderError {
    fn from(e: webm_iterable::errors::TagWriterError) -> Self {
        Self::Webm(e.to_string())
    }
}
