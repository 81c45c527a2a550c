//! Lessons and invites in SQLite through `sqlx`, with the schema in `signaling/migrations`.
//!
//! Queries are checked at run time (`sqlx::query`), not by the `query!` macros, so building
//! needs no database. Every statement is written for SQLite and PostgreSQL alike where that
//! costs nothing, for the scale-out path in DESIGN §4.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};

use crate::lesson::{Lesson, LessonKey, LessonMode, LessonState};
use crate::protocol::Role;
use crate::timestamp::Timestamp;

/// Why the store failed. Every variant is a server-side fault: callers log it and answer 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored {table} row is unreadable: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

/// The fields of a lesson the API lets a caller choose, already validated.
#[derive(Debug, Clone)]
pub struct NewLesson {
    pub title: String,
    pub subject: String,
    pub grade: String,
    pub mode: LessonMode,
    pub scheduled_at: Option<Timestamp>,
}

/// A join token handed out, recorded by its `jti`.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub jti: String,
    pub lesson: LessonKey,
    pub role: Role,
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The control plane's database. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// The `lessons` columns in the order [`lesson_from_row`] reads them, as a macro so that
/// `concat!` can build `&'static str` statements from it.
macro_rules! lesson_columns {
    () => {
        "id, title, subject, grade, mode, state, scheduled_at, created_at, started_at, ended_at"
    };
}

impl Store {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL lets the REST handlers read while a join marks a lesson live.
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!().run(&pool).await?;
        Ok(Store { pool })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn create_lesson(
        &self,
        new: &NewLesson,
        now: Timestamp,
    ) -> Result<Lesson, StoreError> {
        let row = sqlx::query(concat!(
            "INSERT INTO lessons (title, subject, grade, mode, state, scheduled_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, 'scheduled', ?5, ?6) RETURNING ",
            lesson_columns!()
        ))
        .bind(&new.title)
        .bind(&new.subject)
        .bind(&new.grade)
        .bind(new.mode.as_str())
        .bind(new.scheduled_at.map(Timestamp::unix))
        .bind(now.unix())
        .fetch_one(&self.pool)
        .await?;
        lesson_from_row(&row)
    }

    /// Every lesson, oldest first.
    pub async fn list_lessons(&self) -> Result<Vec<Lesson>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            lesson_columns!(),
            " FROM lessons ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(lesson_from_row).collect()
    }

    pub async fn lesson(&self, id: LessonKey) -> Result<Option<Lesson>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            lesson_columns!(),
            " FROM lessons WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(lesson_from_row).transpose()
    }

    /// Moves a scheduled lesson to `live`. A lesson in any other state is returned unchanged.
    pub async fn start_lesson(
        &self,
        id: LessonKey,
        now: Timestamp,
    ) -> Result<Option<Lesson>, StoreError> {
        sqlx::query(
            "UPDATE lessons SET state = 'live', started_at = ?1 \
             WHERE id = ?2 AND state = 'scheduled'",
        )
        .bind(now.unix())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.lesson(id).await
    }

    /// Moves a lesson to `ended` (idempotent). Returns the lesson, or `None` if there is none.
    pub async fn end_lesson(
        &self,
        id: LessonKey,
        now: Timestamp,
    ) -> Result<Option<Lesson>, StoreError> {
        sqlx::query(
            "UPDATE lessons SET state = 'ended', ended_at = ?1 WHERE id = ?2 AND state <> 'ended'",
        )
        .bind(now.unix())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.lesson(id).await
    }

    pub async fn insert_invite(&self, invite: &NewInvite) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO invites (jti, lesson_id, role, name, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&invite.jti)
        .bind(invite.lesson)
        .bind(invite.role.as_str())
        .bind(&invite.name)
        .bind(invite.created_at.unix())
        .bind(invite.expires_at.unix())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn lesson_from_row(row: &SqliteRow) -> Result<Lesson, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "lessons",
        detail,
    };
    let time = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(Timestamp::from_unix))
    };
    Ok(Lesson {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        subject: row.try_get("subject")?,
        grade: row.try_get("grade")?,
        mode: LessonMode::from_str(row.try_get("mode")?).map_err(|e| corrupt(e.to_string()))?,
        state: LessonState::from_str(row.try_get("state")?).map_err(|e| corrupt(e.to_string()))?,
        scheduled_at: time("scheduled_at")?,
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
        started_at: time("started_at")?,
        ended_at: time("ended_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    fn new_lesson() -> NewLesson {
        NewLesson {
            title: "Music".into(),
            subject: "music".into(),
            grade: "5".into(),
            mode: LessonMode::Delivery,
            scheduled_at: None,
        }
    }

    #[tokio::test]
    async fn lesson_moves_scheduled_live_ended() {
        let (_dir, store) = store().await;
        let t0 = Timestamp::from_unix(1_800_000_000);
        let l = store.create_lesson(&new_lesson(), t0).await.unwrap();
        assert_eq!(l.state, LessonState::Scheduled);
        assert_eq!(l.created_at, t0);

        let live = store
            .start_lesson(l.id, t0.plus_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.state, LessonState::Live);
        assert_eq!(live.started_at, Some(t0.plus_secs(5)));
        // Starting again changes nothing.
        let again = store
            .start_lesson(l.id, t0.plus_secs(9))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.started_at, Some(t0.plus_secs(5)));

        let ended = store
            .end_lesson(l.id, t0.plus_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ended.state, LessonState::Ended);
        // An ended lesson never goes live again.
        let still = store
            .start_lesson(l.id, t0.plus_secs(70))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(still.state, LessonState::Ended);

        assert!(store.lesson(l.id + 1).await.unwrap().is_none());
        assert_eq!(store.list_lessons().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn invites_need_an_existing_lesson() {
        let (_dir, store) = store().await;
        let now = Timestamp::from_unix(1_800_000_000);
        let l = store.create_lesson(&new_lesson(), now).await.unwrap();
        let mut invite = NewInvite {
            jti: "a".into(),
            lesson: l.id,
            role: Role::Classroom,
            name: "Shizi Village".into(),
            created_at: now,
            expires_at: now.plus_secs(60),
        };
        store.insert_invite(&invite).await.unwrap();
        invite.jti = "b".into();
        invite.lesson = l.id + 100;
        assert!(store.insert_invite(&invite).await.is_err());
    }
}
