//! One-time sign-in links and the tokens behind them: a link (or a session) is a random
//! 256-bit token of which only the SHA-256 is stored, so a copy of the database signs nobody
//! in. Also the first start's admin account, which signs in by such a link. The cookies that
//! carry a session are the HTTP edge's ([`crate::edge::session`]).

use sha2::{Digest, Sha256};

use crate::domain::accounts::{NewAccount, UserId};
use crate::domain::timestamp::Timestamp;
use crate::hex::{hex, random_hex};
use crate::store::{Store, StoreError};

/// How long a one-time sign-in link stays usable.
pub const LINK_TTL_SECS: u64 = 24 * 3600;

/// A fresh random token for a session or a sign-in link: 32 bytes, hex.
pub fn new_token() -> String {
    random_hex(32)
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `text` could be a token of ours, checked before touching the database.
pub fn looks_like_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Makes a one-time sign-in link for `user`, valid `ttl_secs`, and returns its token. Links
/// the user had and did not use stop working: only the newest one handed out counts.
pub async fn new_signin_link(
    store: &Store,
    user: UserId,
    now: Timestamp,
    ttl_secs: u64,
) -> Result<String, StoreError> {
    let token = new_token();
    store
        .replace_signin_link(user, &token_hash(&token), now, now.plus_secs(ttl_secs))
        .await?;
    Ok(token)
}

/// The page a sign-in link opens, on `host` (a `Host` header or the bound address).
pub fn signin_url(host: &str, token: &str) -> String {
    format!("http://{host}/signin.html#once={token}")
}

/// Takes the token of a one-time link: `Some(user)` the first time, within its lifetime.
pub async fn consume_signin_link(
    store: &Store,
    token: &str,
    now: Timestamp,
) -> Result<Option<UserId>, StoreError> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    store.consume_signin_link(&token_hash(token), now).await
}

/// On a first start (no accounts at all), creates the admin account
/// [`FIRST_ADMIN`](crate::domain::accounts::FIRST_ADMIN) without a
/// password and returns a one-time sign-in link token for it, valid `link_ttl_secs`. Any later
/// start returns `None`: the link is printed once, and a lost one is replaced with
/// `classroom admin signin-link admin`.
pub async fn bootstrap_admin(
    store: &Store,
    now: Timestamp,
    link_ttl_secs: u64,
) -> Result<Option<String>, StoreError> {
    if store.account_count().await? > 0 {
        return Ok(None);
    }
    let account = match store.create_account(&NewAccount::first_admin(), now).await {
        Ok(account) => account,
        // A second process starting on the same directory at the same moment made it first.
        Err(StoreError::Duplicate { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let token = new_signin_link(store, account.id, now, link_ttl_secs).await?;
    tracing::info!(user = %account.username, "first start: created the admin account");
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_stored_hashed() {
        let a = new_token();
        assert!(looks_like_token(&a));
        assert_ne!(a, new_token());
        let h = token_hash(&a);
        assert_eq!(h.len(), 64);
        assert_ne!(h, a);
        assert_eq!(h, token_hash(&a));
        assert!(!looks_like_token("abc"));
        assert!(!looks_like_token(&"g".repeat(64)));
    }
}
