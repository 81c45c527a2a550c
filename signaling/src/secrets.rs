//! The two secrets kept under the data directory, created on first start:
//! `secret.key` (32 random bytes that sign join tokens) and `admin-token` (the Bearer token of
//! the REST API until accounts exist).
//!
//! Both are created with mode 0600 in the `open` call itself, so they are never readable by
//! others, not even between creating and restricting them.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use rand::TryRngCore;
use rand::rngs::OsRng;

/// The signing secret's length; also the least accepted from an existing file.
pub const SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Unusable {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// Reads the signing secret, creating it on first start.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, SecretError> {
    let bytes = load_or_create(path, || random_bytes(SECRET_LEN))?;
    if bytes.len() < SECRET_LEN {
        return Err(SecretError::Unusable {
            path: path.to_owned(),
            problem: "shorter than 32 bytes; delete it to have a new one made (this invalidates every invite)",
        });
    }
    Ok(bytes)
}

/// Reads the admin token, creating it on first start.
pub fn load_or_create_admin_token(path: &Path) -> Result<String, SecretError> {
    let bytes = load_or_create(path, || {
        let mut token = crate::hex::hex(&random_bytes(32)?);
        token.push('\n');
        Ok(token.into_bytes())
    })?;
    let unusable = |problem| SecretError::Unusable {
        path: path.to_owned(),
        problem,
    };
    let text = String::from_utf8(bytes).map_err(|_| unusable("not UTF-8 text"))?;
    let token = text.trim();
    // It travels in an HTTP header and a URL fragment: keep it to URL-safe characters.
    if token.len() < 16
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(unusable(
            "must be at least 16 characters of A-Z, a-z, 0-9, '-' or '_'",
        ));
    }
    Ok(token.to_owned())
}

fn random_bytes(n: usize) -> Result<Vec<u8>, SecretError> {
    let mut buf = vec![0u8; n];
    OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(buf)
}

fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> Result<Vec<u8>, SecretError>,
) -> Result<Vec<u8>, SecretError> {
    let io = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    match create_private(path) {
        Ok(mut file) => {
            let bytes = make()?;
            file.write_all(&bytes).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "created");
            Ok(bytes)
        }
        // Made on an earlier start (or by a second process starting at the same moment).
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let mut file = File::open(path).map_err(io)?;
            warn_if_readable_by_others(path, &file);
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io)?;
            if bytes.is_empty() {
                return Err(SecretError::Unusable {
                    path: path.to_owned(),
                    problem: "empty (an interrupted first start?); delete it to have a new one made",
                });
            }
            Ok(bytes)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, file: &File) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata()
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "secret file is readable by others; run chmod 600 on it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _file: &File) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("secret.key");
        let first = load_or_create_secret(&key).unwrap();
        assert_eq!(first.len(), SECRET_LEN);
        assert_eq!(load_or_create_secret(&key).unwrap(), first);

        let token_path = dir.path().join("admin-token");
        let token = load_or_create_admin_token(&token_path).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(load_or_create_admin_token(&token_path).unwrap(), token);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [&key, &token_path] {
                let mode = std::fs::metadata(p).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", p.display());
            }
        }
    }

    #[test]
    fn short_or_odd_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("secret.key");
        std::fs::write(&key, b"short").unwrap();
        assert!(matches!(
            load_or_create_secret(&key),
            Err(SecretError::Unusable { .. })
        ));
        let token = dir.path().join("admin-token");
        std::fs::write(&token, "has spaces in it, not allowed\n").unwrap();
        assert!(load_or_create_admin_token(&token).is_err());
    }
}
