//! Who is calling: session cookies, one-time sign-in links, the API key, and the same-origin
//! check on cookie-authenticated changes.
//!
//! **Sessions.** Signing in (password or one-time link) makes a random 256-bit token, sets it
//! as the `classroom_session` cookie and stores only its SHA-256, so a copy of the database
//! signs nobody in. A session lasts a fixed [`Config::session_ttl`](crate::Config) (12 h, a
//! school day) from sign-in, not sliding: a teacher signs in each morning, and a lost laptop
//! is signed out by evening. Signing out, a password change (other sessions) and disabling the
//! account end sessions at once.
//!
//! **The cookie** is `HttpOnly` (page scripts never see it), `SameSite=Lax` (not sent with
//! cross-site posts), `Path=/`, and `Secure` unless `secure_cookies = false`. Browsers keep
//! `Secure` cookies from `http://localhost` and `http://127.0.0.1` (potentially trustworthy
//! origins; checked for Chromium by `web-client/tests/signin.test.mjs`), so the README's run
//! command works over plain HTTP on the same machine; from other machines the pages belong
//! behind HTTPS, and only a trusted LAN without it needs `secure_cookies = false`.
//!
//! **The API key** (`Authorization: Bearer <data/admin-token>`) acts as an admin without being
//! an account: scripts, bots, the load test and the console's `#key=` link use it. A request
//! that carries an `Authorization` header is judged by it alone, never by a cookie.
//!
//! **Cross-site requests.** A cookie rides along with requests other sites make the browser
//! send, so every state-changing `/api` call without an `Authorization` header must come from
//! our own pages: `Sec-Fetch-Site` must be `same-origin` (or `none`, typed by the user) when
//! the browser sends it, else `Origin`, when present, must be this host. Clients that send
//! neither are not browsers, and have no victim's cookie to borrow. Bodies must also be
//! `application/json` (the `Json` extractor), which a cross-site form cannot send without a
//! CORS preflight we never answer.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use subtle::ConstantTimeEq;

use crate::domain::accounts::{AccountRole, SignedIn, UserId};
use crate::domain::timestamp::Timestamp;
use crate::edge::error::ApiError;
use crate::services::signin::{looks_like_token, new_token, token_hash};
use crate::state::AppState;
use crate::store::StoreError;

/// The session cookie's name.
pub const COOKIE: &str = "classroom_session";

/// Starts a session for `user`; returns the cookie that carries it and when it ends.
/// `from_link` marks a session opened by a one-time link, which may set a password without
/// the current one.
pub async fn start(
    state: &AppState,
    user: UserId,
    from_link: bool,
) -> Result<(Cookie<'static>, Timestamp), StoreError> {
    let now = state.clock.now();
    let ttl = state.config.session_ttl.as_secs();
    // Sign-ins are rare; sweeping expired rows here keeps the tables small without a timer.
    state.store.purge_expired(now).await?;
    let token = new_token();
    let expires_at = now.plus_secs(ttl);
    state
        .store
        .insert_session(&token_hash(&token), user, now, expires_at, from_link)
        .await?;
    Ok((
        session_cookie(token, ttl, state.config.secure_cookies),
        expires_at,
    ))
}

fn session_cookie(token: String, ttl_secs: u64, secure: bool) -> Cookie<'static> {
    Cookie::build((COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .max_age(time::Duration::seconds(
            i64::try_from(ttl_secs).unwrap_or(i64::MAX),
        ))
        .build()
}

/// The cookie that makes the browser forget the session.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), 0, secure);
    cookie.make_removal();
    cookie
}

/// The session token the request carries, if any.
pub fn presented_token(jar: &CookieJar) -> Option<&str> {
    jar.get(COOKIE)
        .map(|c| c.value())
        .filter(|t| looks_like_token(t))
}

/// Who made a request: the API key or a signed-in account. Extracting it answers 401
/// `unauthorized` when the request has neither (or an expired session, or a disabled account).
#[derive(Debug, Clone)]
pub enum Caller {
    ApiKey,
    Account(Box<SignedIn>),
}

impl Caller {
    /// The role the caller acts with; the API key acts as an admin.
    pub fn role(&self) -> AccountRole {
        match self {
            Caller::ApiKey => AccountRole::Admin,
            Caller::Account(s) => s.account.role,
        }
    }

    /// The account, `None` for the API key.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Caller::ApiKey => None,
            Caller::Account(s) => Some(s.account.id),
        }
    }

    /// Refuses with 403 `forbidden` unless the caller is an admin (or the API key).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role() == AccountRole::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "only an admin may do this, not a {}",
                self.role()
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let presented = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(ApiError::Unauthorized)?;
            // Constant time, so response timing reveals nothing about how much of a guess was
            // right.
            return if bool::from(presented.as_bytes().ct_eq(state.admin_token.as_bytes())) {
                Ok(Caller::ApiKey)
            } else {
                Err(ApiError::Unauthorized)
            };
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let token = presented_token(&jar).ok_or(ApiError::Unauthorized)?;
        match state
            .store
            .session(&token_hash(token), state.clock.now())
            .await?
        {
            Some(signed_in) if !signed_in.account.disabled => {
                Ok(Caller::Account(Box::new(signed_in)))
            }
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// Middleware: refuses a state-changing request that rides on a cookie from another site
/// (see the module docs). Safe methods and requests with an `Authorization` header pass.
pub async fn refuse_cross_site(request: Request, next: Next) -> Result<Response, ApiError> {
    if !request.method().is_safe() && !request.headers().contains_key(header::AUTHORIZATION) {
        check_same_origin(request.headers())?;
    }
    Ok(next.run(request).await)
}

fn check_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str() {
            Ok("same-origin" | "none") => Ok(()),
            _ => Err(ApiError::CrossSite(
                "this call is only accepted from Classroom's own pages".into(),
            )),
        };
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if authority.is_none() || authority != host {
            return Err(ApiError::CrossSite(format!(
                "requests from {origin} are not accepted"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_rules() {
        let ok = |pairs: &[(&'static str, &str)]| check_same_origin(&headers(pairs)).is_ok();
        assert!(ok(&[]), "curl and scripts send neither header");
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(ok(&[("sec-fetch-site", "none")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[("sec-fetch-site", "same-site")]));
        assert!(ok(&[
            ("origin", "http://school.example:8080"),
            ("host", "school.example:8080")
        ]));
        assert!(ok(&[
            ("origin", "https://school.example"),
            ("host", "school.example")
        ]));
        assert!(!ok(&[
            ("origin", "http://evil.example"),
            ("host", "school.example")
        ]));
        assert!(!ok(&[("origin", "null"), ("host", "school.example")]));
        assert!(
            !ok(&[("origin", "http://school.example")]),
            "no Host to match"
        );
    }

    #[test]
    fn cookie_attributes() {
        let c = session_cookie("t".into(), 3600, true).to_string();
        for part in [
            "classroom_session=t",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=3600",
        ] {
            assert!(c.contains(part), "{part} missing from {c}");
        }
        assert!(
            !session_cookie("t".into(), 3600, false)
                .to_string()
                .contains("Secure")
        );
        let gone = removal_cookie(true).to_string();
        assert!(gone.contains("Max-Age=0"), "{gone}");
    }
}
