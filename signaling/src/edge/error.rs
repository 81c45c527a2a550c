//! HTTP errors in one place: [`ApiError`] and its only `IntoResponse`, plus the wrapped
//! extractors that give bad requests the same `{"error":{"code","message"}}` shape.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

/// Everything a REST handler can fail with. 4xx variants carry a message for the caller; a 5xx
/// hides its cause from the caller and logs it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body was not JSON, or not the JSON this call takes.
    #[error("{0}")]
    BadJson(String),
    /// The body needs `Content-Type: application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A field or path parameter failed validation.
    #[error("{0}")]
    Invalid(String),
    /// No session (or an expired one, or a disabled account) and no API key.
    #[error("sign in first, or send `Authorization: Bearer <API key>`")]
    Unauthorized,
    /// Signed in, but this account may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("this account is disabled; ask an admin")]
    AccountDisabled,
    /// Too many failed sign-ins for one username.
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A new password that breaks the rule.
    #[error("{0}")]
    WeakPassword(String),
    /// A one-time sign-in link that is unknown, used or expired.
    #[error("this sign-in link is not valid any more; ask an admin for a new one")]
    LinkInvalid,
    /// A cookie-authenticated change that did not come from our own pages.
    #[error("{0}")]
    CrossSite(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the lesson's state, e.g. inviting to an ended lesson.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(Box::new(e))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, "bad_json"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::AccountDisabled => (StatusCode::FORBIDDEN, "account_disabled"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::WeakPassword(_) => (StatusCode::BAD_REQUEST, "weak_password"),
            ApiError::LinkInvalid => (StatusCode::GONE, "link_invalid"),
            ApiError::CrossSite(_) => (StatusCode::FORBIDDEN, "cross_site"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::domain::accounts::FieldError> for ApiError {
    fn from(e: crate::domain::accounts::FieldError) -> Self {
        ApiError::Invalid(e.0)
    }
}

impl From<crate::domain::password::PasswordError> for ApiError {
    fn from(e: crate::domain::password::PasswordError) -> Self {
        use crate::domain::password::PasswordError;
        match e {
            PasswordError::TooShort | PasswordError::TooLong => {
                ApiError::WeakPassword(e.to_string())
            }
            PasswordError::Hashing(_) | PasswordError::Task(_) => ApiError::internal(e),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(cause) = &self {
            // The caller learns only that it failed; the cause may name files or queries.
            tracing::error!(error = %cause, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            ApiError::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// `axum::Json`, but a body that cannot be read becomes an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::MissingJsonContentType(e)) => {
                Err(ApiError::UnsupportedMediaType(e.body_text()))
            }
            Err(e) => Err(ApiError::BadJson(e.body_text())),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path`, but a parameter that does not parse becomes an [`ApiError`].
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::Invalid(e.body_text()))
            }
            Err(e) => Err(ApiError::internal(std::io::Error::other(e.body_text()))),
        }
    }
}

/// `axum::extract::Query`, but a query string that does not parse becomes an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(e) => Err(ApiError::Invalid(e.body_text())),
        }
    }
}
