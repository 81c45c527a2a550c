//! Accounts (DESIGN §1): the teachers, operators and admins who sign in, the schools they
//! belong to and those schools' classrooms.
//!
//! An account's [`AccountRole`] decides what it may do with lessons ([`AccountRole::may`]); the
//! admin Bearer token (the "API key") acts as an admin without being an account. Participants
//! in a lesson have their own [`Role`](crate::domain::role::Role), carried by join tokens.
//!
//! Here: the domain types, the checks on what a caller may choose (usernames, names), and the
//! first-start admin. Passwords are in [`crate::domain::password`], sessions and sign-in links in
//! [`crate::edge::session`], rows in [`crate::store`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::timestamp::Timestamp;

/// The `users` row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// The `schools` row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchoolId(pub i64);

/// The `classrooms` row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassroomId(pub i64);

macro_rules! display_id {
    ($($ty:ident),+) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )+};
}
display_id!(UserId, SchoolId, ClassroomId);

/// What an account is for. Not to be confused with a participant's role in a lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    /// Creates lessons and teaches them; sees only its own.
    Teacher,
    /// The education bureau: watches every lesson and may end one, creates none.
    Operator,
    /// Manages accounts, schools and classrooms; may do anything a teacher or operator may.
    Admin,
}

impl AccountRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRole::Teacher => "teacher",
            AccountRole::Operator => "operator",
            AccountRole::Admin => "admin",
        }
    }

    /// Whether this role may do `action` to a lesson; `owns` says whether the caller is the
    /// lesson's teacher. The table of DESIGN §5 in one place.
    pub fn may(self, action: LessonAction, owns: bool) -> bool {
        use AccountRole::*;
        use LessonAction::*;
        match (self, action) {
            (Admin, _) => true,
            (Teacher, Create) => true,
            (Teacher, Show | Invite | End) => owns,
            (Operator, Show | End) => true,
            (Operator, Create | Invite) => false,
        }
    }
}

/// A role name that is none of `teacher`, `operator`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown account role {0:?} (teacher, operator or admin)")]
pub struct UnknownRole(pub String);

impl FromStr for AccountRole {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        match s {
            "teacher" => Ok(AccountRole::Teacher),
            "operator" => Ok(AccountRole::Operator),
            "admin" => Ok(AccountRole::Admin),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }
}

impl fmt::Display for AccountRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller may want to do with a lesson; see [`AccountRole::may`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LessonAction {
    Create,
    Show,
    Invite,
    End,
}

impl LessonAction {
    /// For "a teacher may not … this lesson" messages.
    pub fn verb(self) -> &'static str {
        match self {
            LessonAction::Create => "create lessons",
            LessonAction::Show => "see",
            LessonAction::Invite => "invite to",
            LessonAction::End => "end",
        }
    }
}

/// One account as the API shows it: never its password hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: AccountRole,
    pub school_id: Option<SchoolId>,
    pub disabled: bool,
    /// False until the account has chosen a password (it signs in with one-time links).
    pub has_password: bool,
    pub created_at: Timestamp,
}

/// A school; its classrooms are listed separately.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct School {
    pub id: SchoolId,
    pub name: String,
    pub classrooms: i64,
    pub created_at: Timestamp,
}

/// A classroom of a school, the name a remote classroom's invitation carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classroom {
    pub id: ClassroomId,
    pub school_id: SchoolId,
    pub name: String,
    pub school_name: String,
    pub created_at: Timestamp,
}

impl Classroom {
    /// The name its invitations carry, e.g. "Grade 5 · Shizi Village School".
    pub fn invite_name(&self) -> String {
        format!("{} · {}", self.name, self.school_name)
    }
}

/// The fields of a new account, already validated.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Username,
    pub display_name: String,
    pub role: AccountRole,
    pub school_id: Option<SchoolId>,
    /// A PHC string from [`crate::domain::password::hash`], or `None` to sign in by link first.
    pub password_hash: Option<String>,
}

/// A username: 3 to 32 of `a-z 0-9 . _ -`, starting with a letter or digit. Stored and compared
/// in lower case, so "LiWei" and "liwei" are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Username, FieldError> {
        let name = text.trim().to_ascii_lowercase();
        let ok_len = (3..=32).contains(&name.len());
        let ok_chars = name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
        let ok_start = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
        if ok_len && ok_chars && ok_start {
            Ok(Username(name))
        } else {
            Err(FieldError(
                "username must be 3 to 32 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
                    .into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value a caller chose that breaks its field's rule; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

/// Trims `value` and checks its length in characters and that it has no control characters.
pub fn text_field(field: &str, value: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max {
        return Err(FieldError(if min > 0 {
            format!("{field} must be {min} to {max} characters")
        } else {
            format!("{field} must be at most {max} characters")
        }));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// The account a fresh installation starts with.
pub const FIRST_ADMIN: &str = "admin";

impl NewAccount {
    /// The first admin, [`FIRST_ADMIN`], made on a first start without a password: it signs in
    /// by a one-time link and chooses one.
    pub fn first_admin() -> NewAccount {
        NewAccount {
            username: Username(FIRST_ADMIN.to_owned()),
            display_name: "Administrator".to_owned(),
            role: AccountRole::Admin,
            school_id: None,
            password_hash: None,
        }
    }
}

/// A signed-in account and its session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: Account,
    pub token_hash: String,
    pub expires_at: Timestamp,
    /// Opened by a one-time link (may set a password without the current one).
    pub from_link: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_case_and_plain() {
        assert_eq!(Username::parse("  LiWei ").unwrap().as_str(), "liwei");
        assert_eq!(
            Username::parse("li.wei-2_b").unwrap().as_str(),
            "li.wei-2_b"
        );
        for bad in ["ab", "-li", "li wei", "李伟", "", &"a".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lesson_rules_by_role() {
        use AccountRole::*;
        use LessonAction::*;
        for action in [Create, Show, Invite, End] {
            assert!(Admin.may(action, false), "admin {action:?}");
        }
        assert!(Teacher.may(Create, false));
        for action in [Show, Invite, End] {
            assert!(Teacher.may(action, true), "own lesson {action:?}");
            assert!(!Teacher.may(action, false), "another's lesson {action:?}");
        }
        assert!(Operator.may(Show, false) && Operator.may(End, false));
        assert!(!Operator.may(Create, false) && !Operator.may(Invite, false));
    }

    #[test]
    fn text_fields_are_trimmed_and_bounded() {
        assert_eq!(text_field("t", "  Music ", 1, 200).unwrap(), "Music");
        assert!(text_field("t", "   ", 1, 200).is_err());
        assert!(text_field("t", &"字".repeat(200), 1, 200).is_ok());
        assert!(text_field("t", &"字".repeat(201), 1, 200).is_err());
        assert!(text_field("t", "a\u{7}b", 1, 200).is_err());
    }

    #[test]
    fn roles_round_trip() {
        for role in [
            AccountRole::Teacher,
            AccountRole::Operator,
            AccountRole::Admin,
        ] {
            assert_eq!(role.as_str().parse::<AccountRole>().unwrap(), role);
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        assert!("janitor".parse::<AccountRole>().is_err());
    }
}
