//! Ids are newtypes so a participant can never be passed where a lesson is meant.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A lesson as the media plane knows it (the control plane's lesson id).
    LessonId
);
id_type!(
    /// One connection of one participant; unique for the life of the process when taken from
    /// [`crate::SfuHandle::new_participant_id`].
    ParticipantId
);
id_type!(
    /// One track a participant sends, assigned by the SFU.
    PublicationId
);
