//! The domain: what a lesson, a role, a grant, the stage, chat and an account *are*, and the
//! rules on them, with no I/O. Every other layer imports from here; nothing here imports
//! from them.
//!
//! - [`lesson`] — the lesson, its mode and state, its id.
//! - [`role`] — a participant's role in a lesson; [`grants`] — what each role may do in each
//!   mode, and the per-mode limits.
//! - [`stage`] — raised hands and the stage, as a pure state machine.
//! - [`chat`] — chat messages: validation, the per-participant rate limit, their audience.
//! - [`accounts`] — teachers, operators, admins; schools and classrooms; what each may do.
//! - [`password`] — the password rule and Argon2id hashing; [`signin_limit`] — failed
//!   sign-ins per username.
//! - [`timestamp`] — RFC 3339 instants and the clock sessions are judged by.

pub mod accounts;
pub mod chat;
pub mod grants;
pub mod lesson;
pub mod password;
pub mod role;
pub mod signin_limit;
pub mod stage;
pub mod timestamp;
