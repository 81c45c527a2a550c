//! Accounts, sessions, one-time sign-in links, schools and classrooms in the store (schema in
//! `migrations/0004_accounts.sql`). Tokens arrive here already hashed; see
//! [`crate::services::signin`].

use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Store, StoreError};
use crate::domain::accounts::SignedIn;
use crate::domain::accounts::{
    Account, AccountRole, Classroom, ClassroomId, NewAccount, School, SchoolId, UserId,
};
use crate::domain::timestamp::Timestamp;

/// The `users` columns [`account_from_row`] reads, for statements that select from `users u`.
macro_rules! account_columns {
    () => {
        "u.id, u.username, u.display_name, u.role, u.school_id, u.disabled, \
         u.password_hash IS NOT NULL AS has_password, u.created_at"
    };
}

/// What an admin may change about an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub display_name: Option<String>,
    pub role: Option<AccountRole>,
    /// `Some(None)` takes the account out of its school.
    pub school_id: Option<Option<SchoolId>>,
    pub disabled: Option<bool>,
}

/// How [`Store::update_account`] went.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountUpdate {
    Updated(Account),
    NoSuchAccount,
    /// Refused, nothing changed: no enabled admin would be left to manage accounts.
    LastAdmin,
}

/// An account with what signing in by password needs.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub account: Account,
    pub password_hash: Option<String>,
}

impl Store {
    pub async fn account_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Creates an account; [`StoreError::Duplicate`] when the username is taken.
    pub async fn create_account(
        &self,
        new: &NewAccount,
        now: Timestamp,
    ) -> Result<Account, StoreError> {
        let row = sqlx::query(
            "INSERT INTO users (username, display_name, role, school_id, password_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )
        .bind(new.username.as_str())
        .bind(&new.display_name)
        .bind(new.role.as_str())
        .bind(new.school_id.map(|s| s.0))
        .bind(new.password_hash.as_deref())
        .bind(now.unix())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_insert(e, "users"))?;
        let id = UserId(row.try_get("id")?);
        self.account(id).await?.ok_or(StoreError::Corrupt {
            table: "users",
            detail: format!("account {id} vanished after insert"),
        })
    }

    pub async fn account(&self, id: UserId) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM users u WHERE u.id = ?1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn account_by_username(
        &self,
        username: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            ", u.password_hash FROM users u WHERE u.username = ?1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Credentials {
                account: account_from_row(&row)?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// Every account, by username.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM users u ORDER BY u.username"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Applies `patch` in one transaction. Disabling ends the account's sessions. A change
    /// that would leave no enabled admin is undone.
    pub async fn update_account(
        &self,
        id: UserId,
        patch: &AccountPatch,
    ) -> Result<AccountUpdate, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE users SET display_name = COALESCE(?2, display_name), \
             role = COALESCE(?3, role), \
             school_id = CASE WHEN ?4 THEN ?5 ELSE school_id END, \
             disabled = COALESCE(?6, disabled) WHERE id = ?1",
        )
        .bind(id.0)
        .bind(patch.display_name.as_deref())
        .bind(patch.role.map(AccountRole::as_str))
        .bind(patch.school_id.is_some())
        .bind(patch.school_id.flatten().map(|s| s.0))
        .bind(patch.disabled)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(AccountUpdate::NoSuchAccount);
        }
        let admins: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0")
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        if admins == 0 {
            // Dropping the transaction rolls it back.
            return Ok(AccountUpdate::LastAdmin);
        }
        if patch.disabled == Some(true) {
            sqlx::query("DELETE FROM sessions WHERE user_id = ?1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM users u WHERE u.id = ?1"
        ))
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await?;
        let account = account_from_row(&row)?;
        tx.commit().await?;
        Ok(AccountUpdate::Updated(account))
    }

    /// Sets the password hash and ends the account's other sessions (all of them when `keep`
    /// is `None`); the kept session no longer counts as opened by a link.
    pub async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        keep: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query("UPDATE users SET password_hash = ?2 WHERE id = ?1")
            .bind(id.0)
            .bind(hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM sessions WHERE user_id = ?1 AND token_hash IS NOT ?2")
            .bind(id.0)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sessions SET from_link = 0 WHERE token_hash = ?1")
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(changed > 0)
    }

    pub async fn insert_session(
        &self,
        token_hash: &str,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
        from_link: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, from_link) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(token_hash)
        .bind(user.0)
        .bind(now.unix())
        .bind(expires_at.unix())
        .bind(from_link)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this token hash and its account, unless it has expired at `now`.
    pub async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<SignedIn>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            ", s.token_hash, s.expires_at AS session_expires_at, s.from_link \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ?1 AND s.expires_at > ?2"
        ))
        .bind(token_hash)
        .bind(now.unix())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SignedIn {
                account: account_from_row(&row)?,
                token_hash: row.try_get("token_hash")?,
                expires_at: Timestamp::from_unix(row.try_get("session_expires_at")?),
                from_link: row.try_get("from_link")?,
            })
        })
        .transpose()
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets sessions and sign-in links that expired by `now`.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
            .bind(now.unix())
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM signin_links WHERE expires_at <= ?1")
            .bind(now.unix())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a new sign-in link for `user`, dropping the user's unused ones.
    pub async fn replace_signin_link(
        &self,
        user: UserId,
        token_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM signin_links WHERE user_id = ?1 AND used_at IS NULL")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signin_links (token_hash, user_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(token_hash)
        .bind(user.0)
        .bind(now.unix())
        .bind(expires_at.unix())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the link used and returns its user, if it was unused and unexpired at `now`. One
    /// statement, so two tabs racing with the same link cannot both win.
    pub async fn consume_signin_link(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<UserId>, StoreError> {
        let row = sqlx::query(
            "UPDATE signin_links SET used_at = ?2 \
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(now.unix())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(UserId(r.try_get("user_id")?))).transpose()
    }
}

/// The `schools` columns with the number of classrooms, from `schools s`.
macro_rules! school_columns {
    () => {
        "s.id, s.name, s.created_at, \
         (SELECT COUNT(*) FROM classrooms c WHERE c.school_id = s.id) AS classrooms"
    };
}

/// The `classrooms` columns with the school's name, from `classrooms c JOIN schools s`.
macro_rules! classroom_columns {
    () => {
        "c.id, c.school_id, c.name, c.created_at, s.name AS school_name \
         FROM classrooms c JOIN schools s ON s.id = c.school_id"
    };
}

impl Store {
    /// Creates a school; [`StoreError::Duplicate`] when the name is taken.
    pub async fn create_school(&self, name: &str, now: Timestamp) -> Result<School, StoreError> {
        let row =
            sqlx::query("INSERT INTO schools (name, created_at) VALUES (?1, ?2) RETURNING id")
                .bind(name)
                .bind(now.unix())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| StoreError::from_insert(e, "schools"))?;
        Ok(School {
            id: SchoolId(row.try_get("id")?),
            name: name.to_owned(),
            classrooms: 0,
            created_at: now,
        })
    }

    /// Every school, by name.
    pub async fn list_schools(&self) -> Result<Vec<School>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            school_columns!(),
            " FROM schools s ORDER BY s.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(school_from_row).collect()
    }

    pub async fn school(&self, id: SchoolId) -> Result<Option<School>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            school_columns!(),
            " FROM schools s WHERE s.id = ?1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(school_from_row).transpose()
    }

    pub async fn school_by_name(&self, name: &str) -> Result<Option<School>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            school_columns!(),
            " FROM schools s WHERE s.name = ?1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(school_from_row).transpose()
    }

    /// Adds a classroom to a school (which must exist); [`StoreError::Duplicate`] when the
    /// school already has one of that name.
    pub async fn create_classroom(
        &self,
        school: SchoolId,
        name: &str,
        now: Timestamp,
    ) -> Result<Classroom, StoreError> {
        let row = sqlx::query(
            "INSERT INTO classrooms (school_id, name, created_at) VALUES (?1, ?2, ?3) RETURNING id",
        )
        .bind(school.0)
        .bind(name)
        .bind(now.unix())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_insert(e, "classrooms"))?;
        let id = ClassroomId(row.try_get("id")?);
        self.classroom(id).await?.ok_or(StoreError::Corrupt {
            table: "classrooms",
            detail: format!("classroom {id} vanished after insert"),
        })
    }

    /// A school's classrooms, by name.
    pub async fn list_classrooms(&self, school: SchoolId) -> Result<Vec<Classroom>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            classroom_columns!(),
            " WHERE c.school_id = ?1 ORDER BY c.name"
        ))
        .bind(school.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(classroom_from_row).collect()
    }

    pub async fn classroom(&self, id: ClassroomId) -> Result<Option<Classroom>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", classroom_columns!(), " WHERE c.id = ?1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(classroom_from_row).transpose()
    }
}

pub(super) fn account_from_row(row: &SqliteRow) -> Result<Account, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(Account {
        id: UserId(row.try_get("id")?),
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: AccountRole::from_str(&role).map_err(|e| StoreError::Corrupt {
            table: "users",
            detail: e.to_string(),
        })?,
        school_id: row.try_get::<Option<i64>, _>("school_id")?.map(SchoolId),
        disabled: row.try_get("disabled")?,
        has_password: row.try_get("has_password")?,
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
    })
}

fn school_from_row(row: &SqliteRow) -> Result<School, StoreError> {
    Ok(School {
        id: SchoolId(row.try_get("id")?),
        name: row.try_get("name")?,
        classrooms: row.try_get("classrooms")?,
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
    })
}

fn classroom_from_row(row: &SqliteRow) -> Result<Classroom, StoreError> {
    Ok(Classroom {
        id: ClassroomId(row.try_get("id")?),
        school_id: SchoolId(row.try_get("school_id")?),
        name: row.try_get("name")?,
        school_name: row.try_get("school_name")?,
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::accounts::Username;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    fn new_account(name: &str, role: AccountRole) -> NewAccount {
        NewAccount {
            username: Username::parse(name).unwrap(),
            display_name: name.to_uppercase(),
            role,
            school_id: None,
            password_hash: None,
        }
    }

    #[tokio::test]
    async fn usernames_are_unique_and_the_last_admin_stays() {
        let (_dir, store) = store().await;
        let now = Timestamp::from_unix(1_800_000_000);
        let admin = store
            .create_account(&new_account("root", AccountRole::Admin), now)
            .await
            .unwrap();
        assert!(!admin.has_password);
        assert!(matches!(
            store
                .create_account(&new_account("ROOT", AccountRole::Teacher), now)
                .await,
            Err(StoreError::Duplicate { table: "users" })
        ));
        let disable = AccountPatch {
            disabled: Some(true),
            ..AccountPatch::default()
        };
        assert_eq!(
            store.update_account(admin.id, &disable).await.unwrap(),
            AccountUpdate::LastAdmin
        );
        assert!(!store.account(admin.id).await.unwrap().unwrap().disabled);
        let second = store
            .create_account(&new_account("root2", AccountRole::Admin), now)
            .await
            .unwrap();
        assert!(matches!(
            store.update_account(admin.id, &disable).await.unwrap(),
            AccountUpdate::Updated(Account { disabled: true, .. })
        ));
        let demote = AccountPatch {
            role: Some(AccountRole::Teacher),
            ..AccountPatch::default()
        };
        assert_eq!(
            store.update_account(second.id, &demote).await.unwrap(),
            AccountUpdate::LastAdmin
        );
        assert_eq!(
            store.update_account(UserId(999), &demote).await.unwrap(),
            AccountUpdate::NoSuchAccount
        );
    }

    #[tokio::test]
    async fn sessions_expire_and_links_work_once() {
        let (_dir, store) = store().await;
        let now = Timestamp::from_unix(1_800_000_000);
        let user = store
            .create_account(&new_account("liwei", AccountRole::Teacher), now)
            .await
            .unwrap();
        store
            .insert_session("h1", user.id, now, now.plus_secs(60), false)
            .await
            .unwrap();
        assert!(
            store
                .session("h1", now.plus_secs(59))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .session("h1", now.plus_secs(60))
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.session("nope", now).await.unwrap().is_none());

        store
            .replace_signin_link(user.id, "l1", now, now.plus_secs(100))
            .await
            .unwrap();
        store
            .replace_signin_link(user.id, "l2", now, now.plus_secs(100))
            .await
            .unwrap();
        assert_eq!(
            store.consume_signin_link("l1", now).await.unwrap(),
            None,
            "replaced"
        );
        assert_eq!(
            store.consume_signin_link("l2", now).await.unwrap(),
            Some(user.id)
        );
        assert_eq!(
            store.consume_signin_link("l2", now).await.unwrap(),
            None,
            "used"
        );
        store
            .replace_signin_link(user.id, "l3", now, now.plus_secs(100))
            .await
            .unwrap();
        assert_eq!(
            store
                .consume_signin_link("l3", now.plus_secs(100))
                .await
                .unwrap(),
            None,
            "expired"
        );
        store.purge_expired(now.plus_secs(100)).await.unwrap();
        assert!(store.session("h1", now).await.unwrap().is_none(), "purged");
    }

    #[tokio::test]
    async fn schools_and_classrooms() {
        let (_dir, store) = store().await;
        let now = Timestamp::from_unix(1_800_000_000);
        let school = store
            .create_school("Shizi Village School", now)
            .await
            .unwrap();
        assert!(matches!(
            store.create_school("Shizi Village School", now).await,
            Err(StoreError::Duplicate { .. })
        ));
        let c = store
            .create_classroom(school.id, "Grade 5", now)
            .await
            .unwrap();
        assert_eq!(c.invite_name(), "Grade 5 · Shizi Village School");
        assert!(matches!(
            store.create_classroom(school.id, "Grade 5", now).await,
            Err(StoreError::Duplicate { .. })
        ));
        assert!(
            store
                .create_classroom(SchoolId(99), "Grade 5", now)
                .await
                .is_err()
        );
        let schools = store.list_schools().await.unwrap();
        assert_eq!(schools.len(), 1);
        assert_eq!(schools[0].classrooms, 1);
        assert_eq!(store.list_classrooms(school.id).await.unwrap(), vec![c]);
    }
}
