//! The server's configuration: one struct, read from an optional TOML file, then overridden by
//! command-line flags (and their `CLASSROOM_*` environment variables, see `main.rs`), validated
//! once at start and passed down. Nothing reads the environment later.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the control plane and the media plane are started with.
///
/// Durations are written in seconds (fractions allowed) in a file, e.g.
/// `liveness_timeout = 10`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where HTTP (REST, WebSocket, pages, metrics) listens. Port 0 lets the OS choose.
    pub http: SocketAddr,
    /// Where the media plane's UDP socket binds. Port 0 lets the OS choose.
    pub udp: SocketAddr,
    /// Where the database, the signing secret and the admin token live.
    pub data_dir: PathBuf,
    /// The address clients reach the media socket at, when it is not the bound one (bound to
    /// 0.0.0.0, or behind 1:1 NAT).
    pub public_ip: Option<IpAddr>,
    /// A socket that sends nothing (not even a pong) for this long is gone: its participant
    /// leaves as `vanished`. The server pings every third of it.
    #[serde(with = "secs")]
    pub liveness_timeout: Duration,
    /// How long a participant whose socket dropped keeps its place (hand, stage) before it
    /// leaves as `vanished`; the same invite joining within it resumes the seat.
    #[serde(with = "secs")]
    pub reconnect_grace: Duration,
    /// How long a new socket may take to send `join`.
    #[serde(with = "secs")]
    pub join_timeout: Duration,
    /// How long shutdown waits for sockets and the media plane to close.
    #[serde(with = "secs")]
    pub shutdown_deadline: Duration,
    /// How long one request to the media plane may take before the client is told
    /// `unavailable`.
    #[serde(with = "secs")]
    pub sfu_request_timeout: Duration,
    /// The most WebSocket connections served at once; more are refused with 503.
    pub max_connections: usize,
    /// The largest WebSocket message accepted, in bytes (SDP with simulcast fits in 16 KiB).
    pub max_message_bytes: usize,
    /// Messages queued to one participant before it counts as too slow and is disconnected.
    pub outbound_queue: usize,
    /// Messages a client may send per second, sustained; bursts of twice that are allowed.
    pub messages_per_second: u32,
    /// How long a signed-in session lasts, from sign-in (fixed, not sliding).
    #[serde(with = "secs")]
    pub session_ttl: Duration,
    /// Whether the session cookie is `Secure`. Browsers keep `Secure` cookies from HTTPS and
    /// from `http://localhost`/`127.0.0.1`; turn it off only to serve plain HTTP to other
    /// machines on a trusted network (see `session.rs`).
    pub secure_cookies: bool,
    /// The most bytes the recording library (`DATA/library`) may hold; `None` for no limit
    /// but the disk's. A recording that would pass it stops as it would on a full disk
    /// (`disk_full`): what was recorded so far is sealed and kept, the lesson goes on. What
    /// is left is counted when each recording starts (see `recording.rs`).
    pub library_quota_bytes: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            udp: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("./data"),
            public_ip: None,
            liveness_timeout: Duration::from_secs(10),
            reconnect_grace: crate::live::RECONNECT_GRACE,
            join_timeout: Duration::from_secs(10),
            shutdown_deadline: Duration::from_secs(5),
            sfu_request_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_message_bytes: 64 * 1024,
            outbound_queue: 256,
            messages_per_second: 50,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: true,
            library_quota_bytes: None,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error(
        "the media socket binds to {0}, which is no address a client can reach: \
         set --public-ip to the address clients should use"
    )]
    NeedsPublicIp(SocketAddr),
    #[error("{field} must be {rule}")]
    Invalid {
        field: &'static str,
        rule: &'static str,
    },
}

impl Config {
    /// Reads a TOML file; fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// `bound` as a browser can open it, for printed links: an unspecified address (0.0.0.0)
    /// becomes `public_ip`, else localhost.
    pub fn reachable(&self, bound: SocketAddr) -> SocketAddr {
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            addr.set_ip(
                self.public_ip
                    .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            );
        }
        addr
    }

    /// Checks what types cannot: run once before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.udp.ip().is_unspecified() && self.public_ip.is_none() {
            return Err(ConfigError::NeedsPublicIp(self.udp));
        }
        if let Some(ip) = self.public_ip
            && ip.is_unspecified()
        {
            return Err(ConfigError::Invalid {
                field: "public_ip",
                rule: "a concrete address, not 0.0.0.0 or ::",
            });
        }
        let check = |ok: bool, field: &'static str, rule: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid { field, rule })
            }
        };
        check(
            self.reconnect_grace <= Duration::from_secs(3600),
            "reconnect_grace",
            "at most 3600 seconds",
        )?;
        check(
            self.liveness_timeout >= Duration::from_millis(100)
                && self.liveness_timeout <= Duration::from_secs(600),
            "liveness_timeout",
            "between 0.1 and 600 seconds",
        )?;
        check(
            self.join_timeout >= Duration::from_millis(100)
                && self.join_timeout <= Duration::from_secs(600),
            "join_timeout",
            "between 0.1 and 600 seconds",
        )?;
        check(
            self.shutdown_deadline <= Duration::from_secs(600),
            "shutdown_deadline",
            "at most 600 seconds",
        )?;
        check(
            self.sfu_request_timeout >= Duration::from_millis(100)
                && self.sfu_request_timeout <= Duration::from_secs(600),
            "sfu_request_timeout",
            "between 0.1 and 600 seconds",
        )?;
        check(self.max_connections >= 1, "max_connections", "at least 1")?;
        check(
            (1024..=16 * 1024 * 1024).contains(&self.max_message_bytes),
            "max_message_bytes",
            "between 1 KiB and 16 MiB",
        )?;
        check(
            (8..=65_536).contains(&self.outbound_queue),
            "outbound_queue",
            "between 8 and 65536",
        )?;
        check(
            self.messages_per_second >= 1,
            "messages_per_second",
            "at least 1",
        )?;
        check(
            self.session_ttl >= Duration::from_secs(60)
                && self.session_ttl <= Duration::from_secs(30 * 24 * 3600),
            "session_ttl",
            "between 60 seconds and 30 days",
        )?;
        check(
            self.library_quota_bytes != Some(0),
            "library_quota_bytes",
            "more than 0 when set",
        )?;
        Ok(())
    }
}

/// Durations as seconds with fractions, so a file says `liveness_timeout = 2.5`.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs)
            .map_err(|e| serde::de::Error::custom(format!("not a duration in seconds: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn file_overrides_only_what_it_names() {
        let c: Config =
            toml::from_str("liveness_timeout = 2.5\nhttp = \"127.0.0.1:9000\"").unwrap();
        assert_eq!(c.liveness_timeout, Duration::from_millis(2500));
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.udp, Config::default().udp);
        assert!(toml::from_str::<Config>("htpp = \"127.0.0.1:9000\"").is_err());
        assert!(toml::from_str::<Config>("liveness_timeout = -1").is_err());
    }

    #[test]
    fn unspecified_media_address_needs_public_ip() {
        let mut c = Config {
            udp: "0.0.0.0:5000".parse().unwrap(),
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::NeedsPublicIp(_))));
        c.public_ip = Some("203.0.113.5".parse().unwrap());
        c.validate().unwrap();
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let c = Config {
            outbound_queue: 0,
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "outbound_queue",
                ..
            })
        ));
    }

    #[test]
    fn library_quota_is_optional_and_positive() {
        assert_eq!(Config::default().library_quota_bytes, None);
        let c: Config = toml::from_str("library_quota_bytes = 50_000_000_000").unwrap();
        assert_eq!(c.library_quota_bytes, Some(50_000_000_000));
        c.validate().unwrap();
        let zero: Config = toml::from_str("library_quota_bytes = 0").unwrap();
        assert!(matches!(
            zero.validate(),
            Err(ConfigError::Invalid {
                field: "library_quota_bytes",
                ..
            })
        ));
        assert!(toml::from_str::<Config>("library_quota_bytes = -1").is_err());
    }
}
