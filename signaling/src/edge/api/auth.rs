//! `/api/auth/*`: signing in with a password or a one-time link, signing out, who am I, and
//! choosing a password. Sessions and cookies are [`crate::edge::session`]'s.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use crate::domain::accounts::{Account, AccountRole, Username};
use crate::domain::password;
use crate::domain::timestamp::Timestamp;
use crate::edge::error::{ApiError, Json};
use crate::edge::session::{self, Caller};
use crate::services::signin;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/signin", post(signin))
        .route("/auth/signout", post(signout))
        .route("/auth/me", get(me))
        .route("/auth/once", post(once))
        .route("/auth/password", post(change_password))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    username: String,
    password: String,
}

/// The answer to a sign-in: the account and when its session ends.
#[derive(Debug, Serialize)]
struct SignedInView {
    account: Account,
    expires_at: Timestamp,
    /// The page should ask for a new password before anything else (a one-time link was used).
    must_set_password: bool,
}

/// The key failures are counted under: what the username would be, bounded in length so a
/// flood of long made-up names cannot fill memory.
fn limiter_key(username: &str) -> String {
    username.trim().to_lowercase().chars().take(64).collect()
}

async fn signin(
    State(state): State<AppState>,
    Json(body): Json<SignIn>,
) -> Result<(CookieJar, Json<SignedInView>), ApiError> {
    let now = state.clock.now();
    let key = limiter_key(&body.username);
    state
        .signin_limiter
        .check(&key, now)
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;

    let credentials = match Username::parse(&body.username) {
        Ok(username) => state.store.account_by_username(username.as_str()).await?,
        Err(_) => None,
    };
    // An over-long password cannot match (none that long was ever accepted); it is not hashed.
    let matches = body.password.len() <= password::MAX_BYTES
        && password::verify(
            body.password,
            credentials.as_ref().and_then(|c| c.password_hash.clone()),
        )
        .await?;
    let Some(credentials) = credentials.filter(|_| matches) else {
        state.signin_limiter.failed(&key, now);
        tracing::info!(username = %key, "sign-in refused: wrong username or password");
        return Err(ApiError::InvalidCredentials);
    };
    if credentials.account.disabled {
        return Err(ApiError::AccountDisabled);
    }
    state.signin_limiter.succeeded(&key);
    let (cookie, expires_at) = session::start(&state, credentials.account.id, false).await?;
    tracing::info!(user = %credentials.account.username, "signed in");
    Ok((
        CookieJar::new().add(cookie),
        Json(SignedInView {
            account: credentials.account,
            expires_at,
            must_set_password: false,
        }),
    ))
}

/// Ends the session the cookie names, if any, and tells the browser to forget the cookie.
/// Always succeeds: signing out twice is no error.
async fn signout(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<(StatusCode, CookieJar), ApiError> {
    if let Some(token) = session::presented_token(&jar) {
        state
            .store
            .delete_session(&signin::token_hash(token))
            .await?;
    }
    let jar = jar.add(session::removal_cookie(state.config.secure_cookies));
    Ok((StatusCode::NO_CONTENT, jar))
}

#[derive(Debug, Serialize)]
struct Me {
    role: AccountRole,
    /// True when the caller is the API key rather than an account.
    api_key: bool,
    account: Option<Account>,
    expires_at: Option<Timestamp>,
    must_set_password: bool,
}

async fn me(caller: Caller) -> Json<Me> {
    Json(match caller {
        Caller::ApiKey => Me {
            role: AccountRole::Admin,
            api_key: true,
            account: None,
            expires_at: None,
            must_set_password: false,
        },
        Caller::Account(signed_in) => Me {
            role: signed_in.account.role,
            api_key: false,
            must_set_password: signed_in.from_link || !signed_in.account.has_password,
            expires_at: Some(signed_in.expires_at),
            account: Some(signed_in.account),
        },
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Once {
    token: String,
}

/// Consumes a one-time sign-in link and starts a session that may set a password.
async fn once(
    State(state): State<AppState>,
    Json(body): Json<Once>,
) -> Result<(CookieJar, Json<SignedInView>), ApiError> {
    let now = state.clock.now();
    let user = signin::consume_signin_link(&state.store, body.token.trim(), now)
        .await?
        .ok_or(ApiError::LinkInvalid)?;
    let account = state
        .store
        .account(user)
        .await?
        .ok_or(ApiError::LinkInvalid)?;
    if account.disabled {
        return Err(ApiError::AccountDisabled);
    }
    let (cookie, expires_at) = session::start(&state, account.id, true).await?;
    tracing::info!(user = %account.username, "signed in with a one-time link");
    Ok((
        CookieJar::new().add(cookie),
        Json(SignedInView {
            account,
            expires_at,
            must_set_password: true,
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    /// Needed when the account has a password and the session was not opened by a link.
    #[serde(default)]
    current: Option<String>,
    new: String,
}

/// Sets the signed-in account's password. Its other sessions end; this one goes on.
async fn change_password(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<ChangePassword>,
) -> Result<Json<SignedInView>, ApiError> {
    let Caller::Account(signed_in) = caller else {
        return Err(ApiError::Forbidden(
            "the API key has no password; sign in as an account to set one".into(),
        ));
    };
    password::check_new(&body.new)?;
    let account = &signed_in.account;
    if account.has_password && !signed_in.from_link {
        let current = body.current.ok_or_else(|| {
            ApiError::Invalid("give your current password to choose a new one".into())
        })?;
        // Guessing the current password through here is limited like signing in.
        let now = state.clock.now();
        let key = limiter_key(&account.username);
        state
            .signin_limiter
            .check(&key, now)
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
        let stored = state
            .store
            .account_by_username(&account.username)
            .await?
            .and_then(|c| c.password_hash);
        if current.len() > password::MAX_BYTES || !password::verify(current, stored).await? {
            state.signin_limiter.failed(&key, now);
            return Err(ApiError::InvalidCredentials);
        }
    }
    let hash = password::hash(body.new).await?;
    state
        .store
        .set_password_hash(account.id, &hash, Some(&signed_in.token_hash))
        .await?;
    tracing::info!(user = %account.username, "password set");
    let account = state
        .store
        .account(account.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(SignedInView {
        account,
        expires_at: signed_in.expires_at,
        must_set_password: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_keys_are_bounded_and_case_blind() {
        assert_eq!(limiter_key("  LiWei "), "liwei");
        assert_eq!(limiter_key(&"字".repeat(1000)).chars().count(), 64);
    }
}
