//! Services: what takes more than one of the store, the live lessons and the media plane, so
//! that the HTTP and WebSocket edges ask for it by name instead of doing it themselves.
//!
//! - [`lessons`] — ending a lesson for everyone.
//! - [`recording`] — recording lessons into the library (the `recorder` crate, fed by an SFU
//!   tap and the hub's timeline); start-up recovery.
//! - [`signin`] — one-time sign-in links and session tokens; the first start's admin.

pub mod lessons;
pub mod recording;
pub mod signin;
