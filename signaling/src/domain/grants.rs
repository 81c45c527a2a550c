//! What a participant may do: [`Grants`], their defaults per role × lesson mode, and the
//! per-mode limits ([`ModePolicy`]) that the server enforces (DESIGN §2, §3).
//!
//! A join token carries the grants the participant had when invited; the hub then holds its
//! *current* grants, which the stage changes at run time (joining the stage adds
//! [`STAGE_SOURCES`], leaving takes them away again). Every check on a request reads the
//! current grants, never only the token's.
//!
//! Role defaults, in every mode unless said otherwise:
//!
//! | role | publishes | chat | moderate | hidden |
//! |---|---|---|---|---|
//! | teacher | every source | everyone | yes | no |
//! | assistant | every source, except in `network` (only the teacher and the stage publish there) | everyone | yes | no |
//! | classroom | camera + microphone in `delivery`; elsewhere only on stage | everyone | no | no |
//! | student | only on stage | everyone | no | no |
//! | observer | never | the observers' channel | no | yes |
//! | operator | never | everyone | yes | yes |
//! | recorder | never | none | no | yes |
//!
//! Everyone subscribes. *Hidden* participants are shown only to moderators: the others are not
//! told they joined or left and do not see them in `joined`. Observers chat in a channel of
//! their own that only observers and moderators read (so an inspector's notes never reach the
//! classrooms); a moderator may write to that channel too.

use serde::{Deserialize, Serialize};

use sfu::Source;

use crate::domain::lesson::LessonMode;
use crate::domain::role::Role;

/// Every source, in the order grants list them.
const ALL_SOURCES: [Source; 4] = [
    Source::Camera,
    Source::Microphone,
    Source::Screen,
    Source::ScreenAudio,
];

/// What joining the stage lets a participant publish.
pub const STAGE_SOURCES: [Source; 2] = [Source::Camera, Source::Microphone];

/// Whom a participant's chat messages may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatGrant {
    /// May not chat. The default, so a token from before chat existed grants nothing new.
    #[default]
    None,
    /// Only the observers' channel (read by observers and moderators).
    Observers,
    /// The whole lesson, and the observers' channel if it also moderates.
    Everyone,
}

/// What a participant may do in its lesson.
///
/// Fields added after the first release default to the least privilege, so an older token
/// still parses and gains nothing it was not given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Grants {
    /// The sources it may publish; empty for a watcher.
    pub publish: Vec<Source>,
    /// Whether it receives others' media.
    pub subscribe: bool,
    #[serde(default)]
    pub chat: ChatGrant,
    /// May lower others' hands, run the stage, delete chat messages.
    #[serde(default)]
    pub moderate: bool,
    /// Shown only to moderators (see the module docs).
    #[serde(default)]
    pub hidden: bool,
}

impl Grants {
    /// The grants a role gets on joining a lesson of `mode` (DESIGN §2: the mode sets defaults).
    pub fn for_role(role: Role, mode: LessonMode) -> Grants {
        let publish = match role {
            Role::Teacher => ALL_SOURCES.to_vec(),
            Role::Assistant if mode != LessonMode::Network => ALL_SOURCES.to_vec(),
            // In a delivery lesson every classroom is seen and heard by all; in the other modes
            // a classroom publishes only while on stage.
            Role::Classroom if mode == LessonMode::Delivery => STAGE_SOURCES.to_vec(),
            Role::Assistant
            | Role::Classroom
            | Role::Student
            | Role::Observer
            | Role::Operator
            | Role::Recorder => Vec::new(),
        };
        let chat = match role {
            Role::Observer => ChatGrant::Observers,
            // The recorder reads the lesson; it never speaks in it.
            Role::Recorder => ChatGrant::None,
            _ => ChatGrant::Everyone,
        };
        Grants {
            publish,
            subscribe: true,
            chat,
            moderate: matches!(role, Role::Teacher | Role::Assistant | Role::Operator),
            hidden: matches!(role, Role::Observer | Role::Operator | Role::Recorder),
        }
    }

    pub fn may_publish(&self, source: Source) -> bool {
        self.publish.contains(&source)
    }

    /// These grants with the stage's sources added (for a participant on stage).
    pub fn with_stage(&self) -> Grants {
        let mut grants = self.clone();
        for source in STAGE_SOURCES {
            if !grants.may_publish(source) {
                grants.publish.push(source);
            }
        }
        grants
    }

    /// Whether it reads the observers' channel.
    pub fn reads_observers(&self) -> bool {
        self.moderate || self.chat == ChatGrant::Observers
    }
}

/// The limits a lesson mode sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModePolicy {
    /// How many participants with the `classroom` role may be in the lesson at once; `None`
    /// leaves it to the server's connection cap.
    pub max_classrooms: Option<usize>,
    /// How many participants may be on stage at once.
    pub max_stage: usize,
}

impl ModePolicy {
    pub fn for_mode(mode: LessonMode) -> ModePolicy {
        match mode {
            // Everyone publishes already; the stage only marks who is speaking now, and every
            // classroom fits on it.
            LessonMode::Delivery => ModePolicy {
                max_classrooms: Some(8),
                max_stage: 8,
            },
            LessonMode::FamousTeacher => ModePolicy {
                max_classrooms: Some(100),
                max_stage: 4,
            },
            LessonMode::Network => ModePolicy {
                max_classrooms: None,
                max_stage: 4,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [LessonMode; 3] = [
        LessonMode::Delivery,
        LessonMode::FamousTeacher,
        LessonMode::Network,
    ];

    #[test]
    fn defaults_follow_role_and_mode() {
        use LessonMode::*;
        // (role, mode, publishes, chat, moderate, hidden)
        let cm = STAGE_SOURCES.to_vec();
        let all = ALL_SOURCES.to_vec();
        let none: Vec<Source> = Vec::new();
        let table = [
            (
                Role::Teacher,
                Network,
                &all,
                ChatGrant::Everyone,
                true,
                false,
            ),
            (
                Role::Assistant,
                Delivery,
                &all,
                ChatGrant::Everyone,
                true,
                false,
            ),
            (
                Role::Assistant,
                Network,
                &none,
                ChatGrant::Everyone,
                true,
                false,
            ),
            (
                Role::Classroom,
                Delivery,
                &cm,
                ChatGrant::Everyone,
                false,
                false,
            ),
            (
                Role::Classroom,
                FamousTeacher,
                &none,
                ChatGrant::Everyone,
                false,
                false,
            ),
            (
                Role::Classroom,
                Network,
                &none,
                ChatGrant::Everyone,
                false,
                false,
            ),
            (
                Role::Student,
                Delivery,
                &none,
                ChatGrant::Everyone,
                false,
                false,
            ),
            (
                Role::Observer,
                Delivery,
                &none,
                ChatGrant::Observers,
                false,
                true,
            ),
            (
                Role::Operator,
                FamousTeacher,
                &none,
                ChatGrant::Everyone,
                true,
                true,
            ),
            (Role::Recorder, Network, &none, ChatGrant::None, false, true),
        ];
        for (role, mode, publish, chat, moderate, hidden) in table {
            let g = Grants::for_role(role, mode);
            assert_eq!(&g.publish, publish, "{role:?} in {mode:?}");
            assert_eq!(g.chat, chat, "{role:?} in {mode:?}");
            assert_eq!(g.moderate, moderate, "{role:?} in {mode:?}");
            assert_eq!(g.hidden, hidden, "{role:?} in {mode:?}");
            assert!(g.subscribe);
        }
        for mode in MODES {
            let teacher = Grants::for_role(Role::Teacher, mode);
            assert!(teacher.may_publish(Source::Screen) && teacher.reads_observers());
            assert!(Grants::for_role(Role::Observer, mode).reads_observers());
            assert!(!Grants::for_role(Role::Student, mode).reads_observers());
        }
    }

    #[test]
    fn stage_adds_camera_and_microphone_once() {
        let student = Grants::for_role(Role::Student, LessonMode::Network);
        let on_stage = student.with_stage();
        assert_eq!(on_stage.publish, STAGE_SOURCES.to_vec());
        assert_eq!(on_stage.with_stage(), on_stage);
        let class = Grants::for_role(Role::Classroom, LessonMode::Delivery);
        assert_eq!(class.with_stage(), class);
    }

    #[test]
    fn tokens_without_the_newer_fields_grant_least() {
        let old: Grants =
            serde_json::from_str(r#"{"publish":["camera"],"subscribe":true}"#).unwrap();
        assert_eq!(old.chat, ChatGrant::None);
        assert!(!old.moderate && !old.hidden);
    }

    #[test]
    fn mode_limits() {
        assert_eq!(
            ModePolicy::for_mode(LessonMode::Delivery).max_classrooms,
            Some(8)
        );
        assert_eq!(
            ModePolicy::for_mode(LessonMode::FamousTeacher).max_classrooms,
            Some(100)
        );
        assert_eq!(
            ModePolicy::for_mode(LessonMode::Network).max_classrooms,
            None
        );
        for mode in [LessonMode::FamousTeacher, LessonMode::Network] {
            assert_eq!(ModePolicy::for_mode(mode).max_stage, 4);
        }
    }
}
