//! Chat rules that need no I/O: what a message may contain, how often one participant may
//! send, and whom it reaches. Storing is [`crate::store`]'s, fan-out the hub's.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use crate::domain::grants::{ChatGrant, Grants};
use crate::domain::role::Role;
use crate::domain::timestamp::Timestamp;

/// The longest message, in characters (not bytes: Chinese text is three bytes a character).
pub const MAX_CHAT_CHARS: usize = 500;
/// Messages one participant may send per [`CHAT_WINDOW`].
pub const CHAT_BURST: usize = 5;
pub const CHAT_WINDOW: Duration = Duration::from_secs(10);
/// How many past messages `joined` carries.
pub const CHAT_HISTORY: u32 = 100;

/// Who a chat message is for. Observers' messages always go to [`ChatAudience::Observers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatAudience {
    /// Everyone in the lesson.
    #[default]
    Everyone,
    /// The observers' channel: observers and moderators only.
    Observers,
}

impl ChatAudience {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatAudience::Everyone => "everyone",
            ChatAudience::Observers => "observers",
        }
    }

    pub fn from_name(name: &str) -> Option<ChatAudience> {
        match name {
            "everyone" => Some(ChatAudience::Everyone),
            "observers" => Some(ChatAudience::Observers),
            _ => None,
        }
    }

    fn is_everyone(&self) -> bool {
        *self == ChatAudience::Everyone
    }
}

/// Who wrote a chat message, as it was when they wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatAuthor {
    /// The participant id it had then; ids are per connection, so a reconnected author has
    /// another one now.
    pub id: u64,
    pub name: String,
    pub role: Role,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: i64,
    pub from: ChatAuthor,
    pub text: String,
    pub at: Timestamp,
    /// Left out for the whole lesson; `observers` for the observers' channel.
    #[serde(default, skip_serializing_if = "ChatAudience::is_everyone")]
    pub to: ChatAudience,
}

/// Why a chat message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("this participant may not chat")]
    NotAllowed,
    #[error("only observers and moderators write to the observers' channel")]
    NotInObserversChannel,
    #[error("a chat message needs some text")]
    Empty,
    #[error("a chat message is at most {MAX_CHAT_CHARS} characters")]
    TooLong,
    #[error("a chat message may not contain control characters other than line breaks")]
    ControlCharacter,
    #[error("at most {CHAT_BURST} messages every {} seconds", CHAT_WINDOW.as_secs())]
    RateLimited,
}

/// Checks a message's text; returns it trimmed of surrounding whitespace.
pub fn check_text(text: &str) -> Result<&str, ChatError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ChatError::Empty);
    }
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err(ChatError::TooLong);
    }
    // Other control characters only garble the pages that show the message.
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ChatError::ControlCharacter);
    }
    Ok(text)
}

/// Where a message from a participant with `grants` goes when it asks for `to`.
/// Observers' messages always stay in their channel, whatever they ask for.
pub fn audience(grants: &Grants, to: Option<ChatAudience>) -> Result<ChatAudience, ChatError> {
    match (grants.chat, to) {
        (ChatGrant::None, _) => Err(ChatError::NotAllowed),
        (ChatGrant::Observers, _) => Ok(ChatAudience::Observers),
        (ChatGrant::Everyone, None | Some(ChatAudience::Everyone)) => Ok(ChatAudience::Everyone),
        (ChatGrant::Everyone, Some(ChatAudience::Observers)) if grants.moderate => {
            Ok(ChatAudience::Observers)
        }
        (ChatGrant::Everyone, Some(ChatAudience::Observers)) => {
            Err(ChatError::NotInObserversChannel)
        }
    }
}

/// Whether a participant with `grants` reads messages sent to `audience`.
pub fn reads(grants: &Grants, audience: ChatAudience) -> bool {
    match audience {
        ChatAudience::Everyone => true,
        ChatAudience::Observers => grants.reads_observers(),
    }
}

/// A sliding window over one participant's last messages: at most [`CHAT_BURST`] in any
/// [`CHAT_WINDOW`]. Time is passed in, so it is tested without a clock. Holds at most
/// `CHAT_BURST` instants.
#[derive(Debug, Default)]
pub struct ChatRate {
    sent: VecDeque<Instant>,
}

impl ChatRate {
    /// Records a message at `now` if the window has room; a refused message is not counted.
    pub fn allow(&mut self, now: Instant) -> bool {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= CHAT_WINDOW)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= CHAT_BURST {
            return false;
        }
        self.sent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lesson::LessonMode;

    #[test]
    fn text_limits() {
        assert_eq!(check_text("  hello \n"), Ok("hello"));
        assert_eq!(check_text("   "), Err(ChatError::Empty));
        assert_eq!(check_text(&"字".repeat(500)).map(str::len), Ok(1500));
        assert_eq!(check_text(&"字".repeat(501)), Err(ChatError::TooLong));
        assert_eq!(check_text("a\u{1b}[2J"), Err(ChatError::ControlCharacter));
        assert_eq!(check_text("line\nline\tcol"), Ok("line\nline\tcol"));
    }

    #[test]
    fn audiences() {
        let g = |role| Grants::for_role(role, LessonMode::FamousTeacher);
        use ChatAudience::*;
        // (role, asked, result)
        let table = [
            (Role::Student, None, Ok(Everyone)),
            (
                Role::Student,
                Some(Observers),
                Err(ChatError::NotInObserversChannel),
            ),
            (Role::Observer, None, Ok(Observers)),
            (Role::Observer, Some(Everyone), Ok(Observers)),
            (Role::Teacher, Some(Observers), Ok(Observers)),
            (Role::Recorder, None, Err(ChatError::NotAllowed)),
        ];
        for (role, to, want) in table {
            assert_eq!(audience(&g(role), to), want, "{role:?} asking {to:?}");
        }
        assert!(reads(&g(Role::Teacher), Observers));
        assert!(reads(&g(Role::Observer), Observers));
        assert!(!reads(&g(Role::Classroom), Observers));
        assert!(reads(&g(Role::Classroom), Everyone));
    }

    #[test]
    fn five_messages_per_ten_seconds() {
        let t0 = Instant::now();
        let mut rate = ChatRate::default();
        for i in 0..5 {
            assert!(rate.allow(t0 + Duration::from_secs(i)));
        }
        assert!(!rate.allow(t0 + Duration::from_secs(5)));
        assert!(!rate.allow(t0 + Duration::from_millis(9_999)));
        // The first message leaves the window; refused ones never counted.
        assert!(rate.allow(t0 + Duration::from_secs(10)));
        assert!(!rate.allow(t0 + Duration::from_millis(10_500)));
        assert!(rate.allow(t0 + Duration::from_secs(11)));
    }
}
