//! Bots (being written).
