//! Classroom's control plane (being written).
pub mod protocol;
