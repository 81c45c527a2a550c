//! A lesson as the control plane keeps it (DESIGN §3): what it is, which mode, where it is in
//! its life (`scheduled → live → ended`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::timestamp::Timestamp;

/// The control plane's lesson id: the `lessons` row id, positive.
pub type LessonKey = i64;

/// The three lesson shapes (DESIGN §2). The mode only sets defaults, such as who may publish
/// on joining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LessonMode {
    Delivery,
    FamousTeacher,
    Network,
}

/// Where a lesson is in its life. It only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LessonState {
    Scheduled,
    Live,
    Ended,
}

/// A stored value that is not one of an enum's names (a hand-edited database).
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    what: &'static str,
    value: String,
}

macro_rules! named_enum {
    ($ty:ident, $what:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// The name used in JSON and in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownName { what: $what, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(LessonMode, "lesson mode",
    Delivery => "delivery",
    FamousTeacher => "famous_teacher",
    Network => "network",
);
named_enum!(LessonState, "lesson state",
    Scheduled => "scheduled",
    Live => "live",
    Ended => "ended",
);

/// One lesson row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lesson {
    pub id: LessonKey,
    pub title: String,
    pub subject: String,
    pub grade: String,
    pub mode: LessonMode,
    pub state: LessonState,
    pub scheduled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for mode in [
            LessonMode::Delivery,
            LessonMode::FamousTeacher,
            LessonMode::Network,
        ] {
            assert_eq!(mode.as_str().parse::<LessonMode>().unwrap(), mode);
            assert_eq!(
                serde_json::to_string(&mode).unwrap(),
                format!("\"{}\"", mode.as_str())
            );
        }
        for state in [
            LessonState::Scheduled,
            LessonState::Live,
            LessonState::Ended,
        ] {
            assert_eq!(state.as_str().parse::<LessonState>().unwrap(), state);
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
        assert!("recital".parse::<LessonMode>().is_err());
    }
}
