//! Passwords: the rule a new one must meet, and Argon2id hashing into PHC strings with the
//! RustCrypto `argon2` crate (its default parameters, salt from the OS).
//!
//! Hashing costs tens of milliseconds of CPU and 19 MiB of memory by design, so it runs on
//! tokio's blocking pool, never on a runtime worker where it would stall every socket.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// The fewest characters a password may have (NIST SP 800-63B's floor for chosen passwords).
pub const MIN_CHARS: usize = 8;
/// The most bytes a password may have, so nobody makes the server hash megabytes.
pub const MAX_BYTES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_BYTES} bytes")]
    TooLong,
    /// The hasher failed, or a stored hash is not a PHC string it knows: a server fault.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Checks a new password against the rule: long enough, not absurdly long.
pub fn check_new(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_CHARS {
        Err(PasswordError::TooShort)
    } else if password.len() > MAX_BYTES {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

/// Hashes a password (already checked with [`check_new`]) into a PHC string.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash_now(&password)).await?
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether `password` matches the stored PHC string. With no stored hash (an unknown user, or
/// one that never chose a password) it checks against a throwaway hash and answers false, so
/// the time taken does not tell which usernames exist.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || match stored {
        Some(phc) => verify_now(&password, &phc),
        None => {
            let _ = verify_now(&password, DUMMY.as_str());
            Ok(false)
        }
    })
    .await?
}

fn verify_now(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(PasswordError::Hashing(e.to_string())),
    }
}

/// A hash of nothing anyone knows, with today's parameters, for [`verify`] to spend the same
/// effort on when there is no real hash. If hashing itself fails the server cannot sign anyone
/// in anyway; the empty string then makes every such check fail fast, and is logged there.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    hash_now(&crate::hex::random_hex(16)).unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not make the throwaway password hash");
        String::new()
    })
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let phc = hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(
            verify("correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("correct horsf".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        // Same password, new salt.
        assert_ne!(hash("correct horse".into()).await.unwrap(), phc);
        assert!(!verify("anything".into(), None).await.unwrap());
        assert!(
            verify("x".into(), Some("not a phc string".into()))
                .await
                .is_err()
        );
    }

    #[test]
    fn the_rule() {
        assert!(matches!(check_new("short"), Err(PasswordError::TooShort)));
        assert!(matches!(
            check_new("七个字的密码啊"),
            Err(PasswordError::TooShort)
        ));
        check_new("八个字的密码好的").unwrap();
        check_new("long enough").unwrap();
        assert!(matches!(
            check_new(&"x".repeat(MAX_BYTES + 1)),
            Err(PasswordError::TooLong)
        ));
    }
}
