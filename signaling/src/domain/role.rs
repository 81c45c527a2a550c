//! A participant's [`Role`] in a lesson (DESIGN §3): who it is there as, which decides its
//! default grants ([`crate::domain::grants`]). Accounts have roles of their own
//! ([`crate::domain::accounts::AccountRole`]); a join token carries this one.

use serde::{Deserialize, Serialize};

/// A participant's role in a lesson (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Teacher,
    Assistant,
    Classroom,
    Student,
    Observer,
    Operator,
    Recorder,
}

impl Role {
    /// The role's name in JSON, tokens and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Assistant => "assistant",
            Role::Classroom => "classroom",
            Role::Student => "student",
            Role::Observer => "observer",
            Role::Operator => "operator",
            Role::Recorder => "recorder",
        }
    }

    /// The role named `name` (as [`Role::as_str`] writes it), e.g. from the database.
    pub fn from_name(name: &str) -> Option<Role> {
        [
            Role::Teacher,
            Role::Assistant,
            Role::Classroom,
            Role::Student,
            Role::Observer,
            Role::Operator,
            Role::Recorder,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}
