//! Wall-clock instants as the API shows them: RFC 3339 in JSON, Unix seconds in the database.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant with one-second resolution (enough for schedules and expiries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        // A clock before 1970 is a broken machine; treat it as the epoch rather than failing.
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    pub fn from_unix(secs: i64) -> Timestamp {
        Timestamp(secs)
    }

    pub fn unix(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time with any offset, normalised to UTC.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, time::error::Parse> {
        Ok(Timestamp(
            OffsetDateTime::parse(text, &Rfc3339)?.unix_timestamp(),
        ))
    }

    /// `self + secs`, saturating at the far future.
    pub fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Instants outside the years 1..9999 cannot be written as RFC 3339; show the raw number.
        match OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(text) => f.write_str(&text),
            None => write!(f, "@{}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text)
            .map_err(|e| serde::de::Error::custom(format!("not an RFC 3339 date-time: {e}")))
    }
}

/// The wall clock sessions, links and sign-in limits are judged by: the system clock plus an
/// offset that only moves forward. [`Clock::advance`] lets tests see a session expire without
/// waiting twelve hours; nothing else calls it.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    ahead_secs: Arc<AtomicU64>,
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        Timestamp::now().plus_secs(self.ahead_secs.load(Ordering::Relaxed))
    }

    pub fn advance(&self, by: Duration) {
        self.ahead_secs.fetch_add(by.as_secs(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_in_utc() {
        let t = Timestamp::parse_rfc3339("2026-09-01T08:30:00+08:00").unwrap();
        assert_eq!(t.to_string(), "2026-09-01T00:30:00Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"tomorrow\"").is_err());
    }

    #[test]
    fn the_clock_only_moves_forward_by_advance() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(13 * 3600));
        assert!(clock.now().unix() >= before.unix() + 13 * 3600);
        let copy = clock.clone();
        assert!(
            copy.now().unix() >= before.unix() + 13 * 3600,
            "clones share it"
        );
    }
}
