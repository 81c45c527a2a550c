//! Recovery at start-up: every recording left unfinished by a crash becomes playable files
//! and is marked `interrupted`.

use std::path::Path;

use crate::error::RecorderError;
use crate::meta::{META_FILE, RecordingFiles, RecordingId, RecordingMeta, RecordingState};
use crate::recording::{MAIN_FILE, RESERVE_FILE, SCREEN_FILE, part_path};
use crate::storage::{FileStorage, Storage, write_atomic};
use crate::timeline::TIMELINE_FILE;
use crate::webm::recover_part;

/// One unfinished recording found by [`recover`].
#[derive(Debug)]
pub struct Recovered {
    /// Its directory's name.
    pub dir_name: String,
    /// Its record after recovery, or why it could not be recovered (the files are left as
    /// they are, for an operator to look at).
    pub result: Result<RecordingMeta, RecorderError>,
}

/// Recovers every unfinished recording under `library` on the local disk.
pub fn recover(library: &Path) -> Vec<Recovered> {
    recover_with(&FileStorage, library)
}

/// Recovers every unfinished recording under `library` through `storage`.
pub fn recover_with(storage: &dyn Storage, library: &Path) -> Vec<Recovered> {
    let Ok(entries) = std::fs::read_dir(library) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let meta = RecordingMeta::read(&dir).ok();
        let unfinished = meta
            .as_ref()
            .is_none_or(|m| m.state == RecordingState::Recording)
            || [MAIN_FILE, SCREEN_FILE, TIMELINE_FILE]
                .iter()
                .any(|f| part_path(&dir, f).exists());
        if !unfinished || (meta.is_none() && !has_parts(&dir)) {
            continue;
        }
        let result = recover_one(storage, &dir, &dir_name, meta);
        if let Err(e) = &result {
            tracing::error!(dir = %dir.display(), "cannot recover recording: {e}");
        }
        out.push(Recovered { dir_name, result });
    }
    out.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
    out
}

fn has_parts(dir: &Path) -> bool {
    [MAIN_FILE, SCREEN_FILE, TIMELINE_FILE]
        .iter()
        .any(|f| part_path(dir, f).exists())
}

fn recover_one(
    storage: &dyn Storage,
    dir: &Path,
    dir_name: &str,
    meta: Option<RecordingMeta>,
) -> Result<RecordingMeta, RecorderError> {
    let _ = storage.remove_file(&dir.join(RESERVE_FILE));
    let _ = storage.remove_file(&dir.join(format!("{META_FILE}.tmp")));
    let mut files = RecordingFiles::default();
    let mut duration_ms = 0;
    let mut seekable = false;
    for name in [MAIN_FILE, SCREEN_FILE] {
        let part = part_path(dir, name);
        let target = dir.join(name);
        if part.exists() {
            match recover_part(storage, &part, &target) {
                Ok(sealed) => {
                    if name == MAIN_FILE {
                        duration_ms = sealed.duration_ms;
                        seekable = sealed.cues;
                    }
                }
                // Not even one complete cluster: nothing to keep.
                Err(RecorderError::NotRecoverable { .. }) => {
                    let _ = storage.remove_file(&part);
                }
                Err(e) => return Err(e),
            }
        }
        if target.exists() {
            let slot = if name == MAIN_FILE {
                &mut files.main
            } else {
                &mut files.screen
            };
            *slot = Some(name.to_owned());
        }
    }
    let timeline_part = part_path(dir, TIMELINE_FILE);
    let timeline = dir.join(TIMELINE_FILE);
    if timeline_part.exists() {
        trim_torn_line(storage, &timeline_part)?;
        storage
            .rename(&timeline_part, &timeline)
            .map_err(|e| RecorderError::io("rename", &timeline_part, e))?;
    }
    if timeline.exists() {
        files.timeline = Some(TIMELINE_FILE.to_owned());
    }
    let id = RecordingId::new(dir_name)?;
    let meta = match meta {
        Some(m) => RecordingMeta {
            state: match m.state {
                RecordingState::Recording => RecordingState::Interrupted,
                other => other,
            },
            duration_ms: m.duration_ms.max(duration_ms),
            seekable: m.seekable || seekable,
            files,
            ..m
        },
        None => RecordingMeta {
            id,
            lesson: Default::default(),
            state: RecordingState::Interrupted,
            duration_ms,
            seekable,
            error: None,
            files,
            stats: None,
        },
    };
    let path = dir.join(META_FILE);
    write_atomic(storage, &path, &meta.to_json(dir)?)
        .map_err(|e| RecorderError::io("write", &path, e))?;
    let _ = storage.sync_dir(dir);
    Ok(meta)
}

/// Cuts a JSON Lines file after its last complete line.
fn trim_torn_line(storage: &dyn Storage, path: &Path) -> Result<(), RecorderError> {
    let bytes = std::fs::read(path).map_err(|e| RecorderError::io("read", path, e))?;
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if keep < bytes.len() {
        let mut file = storage
            .open_existing(path)
            .map_err(|e| RecorderError::io("open", path, e))?;
        file.truncate(keep as u64)
            .and_then(|()| file.sync())
            .map_err(|e| RecorderError::io("truncate", path, e))?;
    }
    Ok(())
}
