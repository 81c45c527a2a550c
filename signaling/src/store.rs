//! Lessons, invites, chat and accounts in SQLite through `sqlx`, with the schema in
//! `signaling/migrations`. Accounts, sessions, sign-in links, schools and classrooms are in
//! [`accounts`](self::accounts).
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

use serde::Serialize;

use crate::domain::accounts::{ClassroomId, UserId};
use crate::domain::chat::{ChatAudience, ChatAuthor, ChatMessage};
use crate::domain::lesson::{Lesson, LessonKey, LessonMode, LessonState};
use crate::domain::role::Role;
use crate::domain::timestamp::Timestamp;

mod accounts;
mod recordings;

pub use self::accounts::{AccountPatch, AccountUpdate, Credentials};
pub use self::recordings::{LibraryEntry, LibraryFiles, LibraryFilter, RecordingOutcome};

/// Why the store failed. Every variant is a server-side fault: callers log it and answer 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored {table} row is unreadable: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// An insert broke a uniqueness rule (a username or name already taken). The one variant
    /// that is the caller's doing; handlers answer it with 409.
    #[error("{table}: that name is taken")]
    Duplicate { table: &'static str },
}

impl StoreError {
    /// `e` from an insert into `table`, with a uniqueness violation told apart.
    fn from_insert(e: sqlx::Error, table: &'static str) -> StoreError {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate { table }
            }
            _ => StoreError::Db(e),
        }
    }
}

/// The fields of a lesson the API lets a caller choose, already validated.
#[derive(Debug, Clone)]
pub struct NewLesson {
    pub title: String,
    pub subject: String,
    pub grade: String,
    pub mode: LessonMode,
    pub scheduled_at: Option<Timestamp>,
    /// The teacher who owns it; `None` when made with the API key.
    pub teacher: Option<UserId>,
}

/// A lesson with its teacher, as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LessonRecord {
    #[serde(flatten)]
    pub lesson: Lesson,
    pub teacher: Option<LessonTeacher>,
}

/// The owner of a lesson, as a lesson list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LessonTeacher {
    pub id: UserId,
    pub display_name: String,
}

/// Which lessons [`Store::lesson_records`] lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct LessonFilter {
    /// Only this teacher's.
    pub teacher: Option<UserId>,
    /// Only lessons in this state, in the order that state is read in: scheduled ones soonest
    /// first (unscheduled last), live ones newest started first, ended ones newest ended first.
    /// Without a state, oldest created first.
    pub state: Option<LessonState>,
    pub limit: u32,
}

/// A join token handed out, recorded by its `jti`.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub jti: String,
    pub lesson: LessonKey,
    pub role: Role,
    pub name: String,
    /// The registered classroom it was made for, if any.
    pub classroom: Option<ClassroomId>,
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

/// [`lesson_columns`] from `lessons l`, with the teacher from `users u`, then a filter by
/// teacher (`?1`) and state (`?2`), a limit (`?3`) and the given order.
macro_rules! lesson_records {
    ($order:literal) => {
        concat!(
            "SELECT l.id, l.title, l.subject, l.grade, l.mode, l.state, l.scheduled_at,              l.created_at, l.started_at, l.ended_at,              u.id AS teacher_id, u.display_name AS teacher_name              FROM lessons l LEFT JOIN users u ON u.id = l.teacher_id              WHERE (?1 IS NULL OR l.teacher_id = ?1) AND (?2 IS NULL OR l.state = ?2)              ORDER BY ",
            $order,
            " LIMIT ?3"
        )
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
            "INSERT INTO lessons \
             (title, subject, grade, mode, state, scheduled_at, created_at, teacher_id) \
             VALUES (?1, ?2, ?3, ?4, 'scheduled', ?5, ?6, ?7) RETURNING ",
            lesson_columns!()
        ))
        .bind(&new.title)
        .bind(&new.subject)
        .bind(&new.grade)
        .bind(new.mode.as_str())
        .bind(new.scheduled_at.map(Timestamp::unix))
        .bind(now.unix())
        .bind(new.teacher.map(|t| t.0))
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

    /// Lessons with their teachers, filtered and ordered as [`LessonFilter`] says.
    pub async fn lesson_records(
        &self,
        filter: LessonFilter,
    ) -> Result<Vec<LessonRecord>, StoreError> {
        let sql = match filter.state {
            None => lesson_records!("l.id"),
            Some(LessonState::Scheduled) => {
                lesson_records!("l.scheduled_at IS NULL, l.scheduled_at, l.id")
            }
            Some(LessonState::Live) => lesson_records!("l.started_at DESC, l.id DESC"),
            Some(LessonState::Ended) => lesson_records!("l.ended_at DESC, l.id DESC"),
        };
        let rows = sqlx::query(sql)
            .bind(filter.teacher.map(|t| t.0))
            .bind(filter.state.map(LessonState::as_str))
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(lesson_record_from_row).collect()
    }

    /// One lesson with its teacher.
    pub async fn lesson_record(&self, id: LessonKey) -> Result<Option<LessonRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT l.id, l.title, l.subject, l.grade, l.mode, l.state, l.scheduled_at,              l.created_at, l.started_at, l.ended_at,              u.id AS teacher_id, u.display_name AS teacher_name              FROM lessons l LEFT JOIN users u ON u.id = l.teacher_id WHERE l.id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(lesson_record_from_row).transpose()
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
            "INSERT INTO invites (jti, lesson_id, role, name, created_at, expires_at, classroom_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&invite.jti)
        .bind(invite.lesson)
        .bind(invite.role.as_str())
        .bind(&invite.name)
        .bind(invite.created_at.unix())
        .bind(invite.expires_at.unix())
        .bind(invite.classroom.map(|c| c.0))
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

fn lesson_record_from_row(row: &SqliteRow) -> Result<LessonRecord, StoreError> {
    let teacher = match row.try_get::<Option<i64>, _>("teacher_id")? {
        Some(id) => Some(LessonTeacher {
            id: UserId(id),
            display_name: row.try_get("teacher_name")?,
        }),
        None => None,
    };
    Ok(LessonRecord {
        lesson: lesson_from_row(row)?,
        teacher,
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
            teacher: None,
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
    async fn lesson_records_filter_by_teacher_and_state_in_reading_order() {
        use crate::domain::accounts::{AccountRole, NewAccount, Username};
        let (_dir, store) = store().await;
        let t0 = Timestamp::from_unix(1_800_000_000);
        let teacher = |name: &str| NewAccount {
            username: Username::parse(name).unwrap(),
            display_name: format!("Teacher {name}"),
            role: AccountRole::Teacher,
            school_id: None,
            password_hash: None,
        };
        let li = store.create_account(&teacher("liwei"), t0).await.unwrap();
        let wang = store.create_account(&teacher("wang"), t0).await.unwrap();
        let lesson = |teacher: Option<UserId>, at: Option<u64>| NewLesson {
            teacher,
            scheduled_at: at.map(|s| t0.plus_secs(s)),
            ..new_lesson()
        };
        let late = store
            .create_lesson(&lesson(Some(li.id), Some(500)), t0)
            .await
            .unwrap();
        let unscheduled = store
            .create_lesson(&lesson(Some(li.id), None), t0)
            .await
            .unwrap();
        let soon = store
            .create_lesson(&lesson(Some(li.id), Some(100)), t0)
            .await
            .unwrap();
        let other = store
            .create_lesson(&lesson(Some(wang.id), Some(50)), t0)
            .await
            .unwrap();
        let keyed = store.create_lesson(&lesson(None, None), t0).await.unwrap();
        let ended_first = store
            .create_lesson(&lesson(Some(li.id), None), t0)
            .await
            .unwrap();
        let ended_last = store
            .create_lesson(&lesson(Some(li.id), None), t0)
            .await
            .unwrap();
        store
            .end_lesson(ended_first.id, t0.plus_secs(10))
            .await
            .unwrap();
        store
            .end_lesson(ended_last.id, t0.plus_secs(20))
            .await
            .unwrap();

        let ids =
            |records: Vec<LessonRecord>| records.iter().map(|r| r.lesson.id).collect::<Vec<_>>();
        let list = |teacher, state| {
            store.lesson_records(LessonFilter {
                teacher,
                state,
                limit: 100,
            })
        };
        assert_eq!(
            ids(list(Some(li.id), Some(LessonState::Scheduled))
                .await
                .unwrap()),
            vec![soon.id, late.id, unscheduled.id]
        );
        assert_eq!(
            ids(list(Some(li.id), Some(LessonState::Ended)).await.unwrap()),
            vec![ended_last.id, ended_first.id]
        );
        assert_eq!(
            ids(list(Some(wang.id), None).await.unwrap()),
            vec![other.id]
        );
        let all = list(None, None).await.unwrap();
        assert_eq!(all.len(), 7);
        assert_eq!(
            all[0].teacher.as_ref().unwrap().display_name,
            "Teacher liwei"
        );
        assert_eq!(
            store
                .lesson_record(keyed.id)
                .await
                .unwrap()
                .unwrap()
                .teacher,
            None
        );
        let limited = store
            .lesson_records(LessonFilter {
                limit: 2,
                ..LessonFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(limited.len(), 2);
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
            classroom: None,
            created_at: now,
            expires_at: now.plus_secs(60),
        };
        store.insert_invite(&invite).await.unwrap();
        invite.jti = "b".into();
        invite.lesson = l.id + 100;
        assert!(store.insert_invite(&invite).await.is_err());
    }
}
