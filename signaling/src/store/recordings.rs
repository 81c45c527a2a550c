//! Recordings and each lesson's recording policy in the store (schema in
//! `migrations/0005_recordings.sql`). The media and `meta.json` live on disk (the `recorder`
//! crate); the table is what the library lists and searches, joined with the lesson, its
//! teacher and the teacher's school.

use recorder::{ErrorInfo, RecordingState};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Store, StoreError};
use crate::domain::lesson::LessonKey;
use crate::domain::timestamp::Timestamp;

/// The files of a recording, relative to its directory, as the library lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryFiles {
    /// Teacher camera + mixed audio (`main.webm`).
    #[serde(default)]
    pub main: Option<String>,
    /// The screen share (`screen.webm`), only if one happened.
    #[serde(default)]
    pub screen: Option<String>,
    /// The timeline (`timeline.jsonl`).
    #[serde(default)]
    pub timeline: Option<String>,
    /// A still from the main video (`thumbnail.jpg`), when `ffmpeg` could take one.
    #[serde(default)]
    pub thumbnail: Option<String>,
}

/// One recording as the library lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryEntry {
    pub id: String,
    pub lesson_id: LessonKey,
    pub title: String,
    pub subject: String,
    pub grade: String,
    /// The lesson's teacher's display name; empty for lessons made with the API key.
    pub teacher: String,
    /// The teacher's school; empty when it has none.
    pub school: String,
    pub state: RecordingState,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    /// Whether the main file carries cues (seeking without a scan).
    pub seekable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    pub files: LibraryFiles,
}

/// Which recordings [`Store::library`] lists; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct LibraryFilter {
    /// Exactly this subject (case-insensitive).
    pub subject: Option<String>,
    /// Exactly this grade (case-insensitive).
    pub grade: Option<String>,
    /// Teachers whose name contains this.
    pub teacher: Option<String>,
    /// Schools whose name contains this.
    pub school: Option<String>,
    /// Started at or after.
    pub from: Option<Timestamp>,
    /// Started before.
    pub until: Option<Timestamp>,
    /// Titles that contain this.
    pub text: Option<String>,
    pub limit: u32,
}

/// How a recording ended, as stored.
#[derive(Debug, Clone)]
pub struct RecordingOutcome {
    pub state: RecordingState,
    pub duration_ms: u64,
    pub seekable: bool,
    pub error: Option<ErrorInfo>,
    pub files: LibraryFiles,
}

macro_rules! library_select {
    () => {
        "SELECT r.id, r.lesson_id, r.state, r.started_at, r.duration_ms, r.seekable, \
         r.error_code, r.error_message, r.files, l.title, l.subject, l.grade, \
         COALESCE(u.display_name, '') AS teacher, COALESCE(s.name, '') AS school \
         FROM recordings r JOIN lessons l ON l.id = r.lesson_id \
         LEFT JOIN users u ON u.id = l.teacher_id LEFT JOIN schools s ON s.id = u.school_id "
    };
}

/// `%text%` for LIKE, with the pattern characters in `text` taken literally (escape `\`).
fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub(crate) fn state_name(state: RecordingState) -> &'static str {
    match state {
        RecordingState::Recording => "recording",
        RecordingState::Complete => "complete",
        RecordingState::Interrupted => "interrupted",
        RecordingState::Failed => "failed",
    }
}

fn state_from_name(name: &str) -> Option<RecordingState> {
    Some(match name {
        "recording" => RecordingState::Recording,
        "complete" => RecordingState::Complete,
        "interrupted" => RecordingState::Interrupted,
        "failed" => RecordingState::Failed,
        _ => return None,
    })
}

fn files_json(files: &LibraryFiles) -> String {
    // A struct of optional strings always serialises.
    serde_json::to_string(files).unwrap_or_else(|_| "{}".to_owned())
}

impl Store {
    /// Sets whether lesson `id` records itself when it goes live.
    pub async fn set_lesson_record(&self, id: LessonKey, record: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE lessons SET record = ?1 WHERE id = ?2")
            .bind(record)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether lesson `id` records itself when it goes live (`false` if there is no such
    /// lesson).
    pub async fn lesson_records_itself(&self, id: LessonKey) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT record FROM lessons WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<bool, _>("record")?,
            None => false,
        })
    }

    /// A recording that has just started.
    pub async fn insert_recording(
        &self,
        id: &str,
        lesson: LessonKey,
        started_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO recordings (id, lesson_id, state, started_at) \
             VALUES (?1, ?2, 'recording', ?3)",
        )
        .bind(id)
        .bind(lesson)
        .bind(started_at.unix())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_insert(e, "recordings"))?;
        Ok(())
    }

    /// Records how a recording ended (finished, failed or recovered). A recording the table
    /// lost (found only on disk) is added, when its lesson exists.
    pub async fn finish_recording(
        &self,
        id: &str,
        lesson: Option<LessonKey>,
        started_at: Timestamp,
        outcome: &RecordingOutcome,
    ) -> Result<(), StoreError> {
        let (code, message) = match &outcome.error {
            Some(e) => (Some(e.code.as_str()), Some(e.message.as_str())),
            None => (None, None),
        };
        let updated = sqlx::query(
            "UPDATE recordings SET state = ?2, duration_ms = ?3, seekable = ?4, \
             error_code = ?5, error_message = ?6, files = ?7 WHERE id = ?1",
        )
        .bind(id)
        .bind(state_name(outcome.state))
        .bind(i64::try_from(outcome.duration_ms).unwrap_or(i64::MAX))
        .bind(outcome.seekable)
        .bind(code)
        .bind(message)
        .bind(files_json(&outcome.files))
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0
            && let Some(lesson) = lesson
        {
            sqlx::query(
                "INSERT INTO recordings (id, lesson_id, state, started_at, duration_ms, \
                 seekable, error_code, error_message, files) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS \
                 (SELECT 1 FROM lessons WHERE id = ?2)",
            )
            .bind(id)
            .bind(lesson)
            .bind(state_name(outcome.state))
            .bind(started_at.unix())
            .bind(i64::try_from(outcome.duration_ms).unwrap_or(i64::MAX))
            .bind(outcome.seekable)
            .bind(code)
            .bind(message)
            .bind(files_json(&outcome.files))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Adds a thumbnail to a recording's files.
    pub async fn set_recording_thumbnail(&self, id: &str, file: &str) -> Result<(), StoreError> {
        let Some(entry) = self.library_entry(id).await? else {
            return Ok(());
        };
        let files = LibraryFiles {
            thumbnail: Some(file.to_owned()),
            ..entry.files
        };
        sqlx::query("UPDATE recordings SET files = ?2 WHERE id = ?1")
            .bind(id)
            .bind(files_json(&files))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks every recording still `recording` as `interrupted`: at start-up none can be
    /// running, so those are ones whose process died before it wrote anything to recover.
    pub async fn interrupt_unfinished_recordings(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("UPDATE recordings SET state = 'interrupted' WHERE state = 'recording'")
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// The library: recordings matching `filter`, newest first.
    pub async fn library(&self, filter: &LibraryFilter) -> Result<Vec<LibraryEntry>, StoreError> {
        let rows = sqlx::query(concat!(
            library_select!(),
            "WHERE (?1 IS NULL OR l.subject = ?1 COLLATE NOCASE) \
             AND (?2 IS NULL OR l.grade = ?2 COLLATE NOCASE) \
             AND (?3 IS NULL OR u.display_name LIKE ?3 ESCAPE '\\') \
             AND (?4 IS NULL OR s.name LIKE ?4 ESCAPE '\\') \
             AND (?5 IS NULL OR r.started_at >= ?5) \
             AND (?6 IS NULL OR r.started_at < ?6) \
             AND (?7 IS NULL OR l.title LIKE ?7 ESCAPE '\\') \
             ORDER BY r.started_at DESC, r.id DESC LIMIT ?8"
        ))
        .bind(filter.subject.as_deref())
        .bind(filter.grade.as_deref())
        .bind(filter.teacher.as_deref().map(contains_pattern))
        .bind(filter.school.as_deref().map(contains_pattern))
        .bind(filter.from.map(Timestamp::unix))
        .bind(filter.until.map(Timestamp::unix))
        .bind(filter.text.as_deref().map(contains_pattern))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// One recording of the library.
    pub async fn library_entry(&self, id: &str) -> Result<Option<LibraryEntry>, StoreError> {
        let row = sqlx::query(concat!(library_select!(), "WHERE r.id = ?1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }
}

fn entry_from_row(row: &SqliteRow) -> Result<LibraryEntry, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "recordings",
        detail,
    };
    let state: String = row.try_get("state")?;
    let files: String = row.try_get("files")?;
    let error = match (
        row.try_get::<Option<String>, _>("error_code")?,
        row.try_get::<Option<String>, _>("error_message")?,
    ) {
        (Some(code), message) => Some(ErrorInfo {
            code,
            message: message.unwrap_or_default(),
        }),
        (None, _) => None,
    };
    Ok(LibraryEntry {
        id: row.try_get("id")?,
        lesson_id: row.try_get("lesson_id")?,
        title: row.try_get("title")?,
        subject: row.try_get("subject")?,
        grade: row.try_get("grade")?,
        teacher: row.try_get("teacher")?,
        school: row.try_get("school")?,
        state: state_from_name(&state).ok_or_else(|| corrupt(format!("state {state:?}")))?,
        started_at: Timestamp::from_unix(row.try_get("started_at")?),
        duration_ms: u64::try_from(row.try_get::<i64, _>("duration_ms")?).unwrap_or(0),
        seekable: row.try_get("seekable")?,
        error,
        files: serde_json::from_str(&files).map_err(|e| corrupt(format!("files: {e}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_text_literally() {
        assert_eq!(contains_pattern("5%_a\\b"), "%5\\%\\_a\\\\b%");
    }
}
