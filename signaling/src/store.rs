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
use crate::protocol::{ChatAudience, ChatAuthor, ChatMessage, Role};
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

/// A chat message to store; the store gives it its id.
#[derive(Debug, Clone)]
pub struct NewChat {
    pub lesson: LessonKey,
    pub from: ChatAuthor,
    /// The author's token `sub`, stable across reconnections.
    pub identity: String,
    pub audience: ChatAudience,
    pub text: String,
    pub at: Timestamp,
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

impl Store {
    pub async fn insert_chat(&self, new: &NewChat) -> Result<ChatMessage, StoreError> {
        let row = sqlx::query(
            "INSERT INTO chat_messages \
             (lesson_id, participant_id, identity, name, role, audience, text, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )
        .bind(new.lesson)
        // Participant ids count up from 1 within one process; they never reach i64::MAX.
        .bind(i64::try_from(new.from.id).unwrap_or(i64::MAX))
        .bind(&new.identity)
        .bind(&new.from.name)
        .bind(new.from.role.as_str())
        .bind(new.audience.as_str())
        .bind(&new.text)
        .bind(new.at.unix())
        .fetch_one(&self.pool)
        .await?;
        Ok(ChatMessage {
            id: row.try_get("id")?,
            from: new.from.clone(),
            text: new.text.clone(),
            at: new.at,
            to: new.audience,
        })
    }

    /// The lesson's newest `limit` messages that are not deleted, oldest first; the observers'
    /// channel only when `with_observers`.
    pub async fn chat_history(
        &self,
        lesson: LessonKey,
        with_observers: bool,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, participant_id, name, role, audience, text, created_at \
             FROM chat_messages \
             WHERE lesson_id = ?1 AND deleted = 0 AND (audience = 'everyone' OR ?2) \
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(lesson)
        .bind(with_observers)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut messages = rows
            .iter()
            .map(chat_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// Marks a message of `lesson` deleted. Returns its audience, or `None` if the lesson has
    /// no such message (or it was already deleted).
    pub async fn delete_chat(
        &self,
        lesson: LessonKey,
        id: i64,
    ) -> Result<Option<ChatAudience>, StoreError> {
        let row = sqlx::query(
            "UPDATE chat_messages SET deleted = 1 \
             WHERE id = ?1 AND lesson_id = ?2 AND deleted = 0 RETURNING audience",
        )
        .bind(id)
        .bind(lesson)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let name: String = row.try_get("audience")?;
            ChatAudience::from_name(&name).ok_or_else(|| StoreError::Corrupt {
                table: "chat_messages",
                detail: format!("unknown audience {name:?}"),
            })
        })
        .transpose()
    }

    /// Records that a moderator (`by`, its identity) removed `identity` from `lesson`.
    /// Recording it again changes nothing.
    pub async fn insert_removed(
        &self,
        lesson: LessonKey,
        identity: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO removed_participants (lesson_id, identity, removed_by, removed_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )
        .bind(lesson)
        .bind(identity)
        .bind(by)
        .bind(at.unix())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether `identity` was removed from `lesson`.
    pub async fn is_removed(&self, lesson: LessonKey, identity: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM removed_participants WHERE lesson_id = ?1 AND identity = ?2",
        )
        .bind(lesson)
        .bind(identity)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

fn chat_from_row(row: &SqliteRow) -> Result<ChatMessage, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "chat_messages",
        detail,
    };
    let role: String = row.try_get("role")?;
    let audience: String = row.try_get("audience")?;
    let pid: i64 = row.try_get("participant_id")?;
    Ok(ChatMessage {
        id: row.try_get("id")?,
        from: ChatAuthor {
            id: u64::try_from(pid).map_err(|_| corrupt(format!("participant id {pid}")))?,
            name: row.try_get("name")?,
            role: Role::from_name(&role).ok_or_else(|| corrupt(format!("role {role:?}")))?,
        },
        text: row.try_get("text")?,
        at: Timestamp::from_unix(row.try_get("created_at")?),
        to: ChatAudience::from_name(&audience)
            .ok_or_else(|| corrupt(format!("audience {audience:?}")))?,
    })
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
    async fn chat_history_and_delete() {
        let (_dir, store) = store().await;
        let now = Timestamp::from_unix(1_800_000_000);
        let l = store.create_lesson(&new_lesson(), now).await.unwrap();
        let other = store.create_lesson(&new_lesson(), now).await.unwrap();
        let chat = |text: &str, audience| NewChat {
            lesson: l.id,
            from: ChatAuthor {
                id: 4,
                name: "Ms Li".into(),
                role: Role::Teacher,
            },
            identity: "abc".into(),
            audience,
            text: text.into(),
            at: now,
        };
        let mut ids = Vec::new();
        for i in 0..5 {
            let m = store
                .insert_chat(&chat(&format!("m{i}"), ChatAudience::Everyone))
                .await
                .unwrap();
            ids.push(m.id);
        }
        let quiet = store
            .insert_chat(&chat("for observers", ChatAudience::Observers))
            .await
            .unwrap();
        let texts = |ms: Vec<ChatMessage>| ms.into_iter().map(|m| m.text).collect::<Vec<_>>();
        assert_eq!(
            texts(store.chat_history(l.id, false, 3).await.unwrap()),
            vec!["m2", "m3", "m4"],
            "the newest, oldest first"
        );
        let all = store.chat_history(l.id, true, 100).await.unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[5].to, ChatAudience::Observers);
        assert_eq!(all[0].from.role, Role::Teacher);

        assert_eq!(
            store.delete_chat(l.id, quiet.id).await.unwrap(),
            Some(ChatAudience::Observers)
        );
        assert_eq!(store.delete_chat(l.id, quiet.id).await.unwrap(), None);
        assert_eq!(store.delete_chat(other.id, ids[0]).await.unwrap(), None);
        store.delete_chat(l.id, ids[0]).await.unwrap();
        assert_eq!(
            texts(store.chat_history(l.id, true, 100).await.unwrap()),
            vec!["m1", "m2", "m3", "m4"]
        );
        assert!(
            store
                .chat_history(other.id, true, 100)
                .await
                .unwrap()
                .is_empty()
        );
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
