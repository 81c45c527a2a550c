//! The REST API (DESIGN §5): lessons, invites, ending a lesson. Every call needs the admin
//! Bearer token until accounts exist.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, Json, Path};
use crate::lesson::{Lesson, LessonKey, LessonMode, LessonState};
use crate::protocol::{ParticipantInfo, Role};
use crate::server::AppState;
use crate::store::{NewInvite, NewLesson, StoreError};
use crate::timestamp::Timestamp;
use crate::token::{Claims, Grants};

/// Invite lifetimes accepted, in seconds: a minute to a week; a day unless asked.
const TTL_MIN: u64 = 60;
const TTL_MAX: u64 = 7 * 24 * 3600;
const TTL_DEFAULT: u64 = 24 * 3600;

/// The `/api` routes, behind the admin token check.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/lessons", get(list_lessons).post(create_lesson))
        .route("/lessons/{id}", get(show_lesson))
        .route("/lessons/{id}/invites", post(create_invite))
        .route("/lessons/{id}/end", post(end_lesson))
        .fallback(|| async { ApiError::NotFound("no such API call".into()) })
        .layer(middleware::from_fn_with_state(state, require_admin))
}

async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    // Constant time, so response timing reveals nothing about how much of a guess was right.
    if bool::from(presented.as_bytes().ct_eq(state.admin_token.as_bytes())) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::Unauthorized)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateLesson {
    title: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    grade: String,
    mode: LessonMode,
    #[serde(default)]
    scheduled_at: Option<Timestamp>,
}

/// Trims `value` and checks its length in characters and that it has no control characters.
fn text_field(field: &str, value: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max {
        return Err(ApiError::Invalid(if min > 0 {
            format!("{field} must be {min} to {max} characters")
        } else {
            format!("{field} must be at most {max} characters")
        }));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

async fn create_lesson(
    State(state): State<AppState>,
    Json(body): Json<CreateLesson>,
) -> Result<(StatusCode, Json<Lesson>), ApiError> {
    let new = NewLesson {
        title: text_field("title", &body.title, 1, 200)?,
        subject: text_field("subject", &body.subject, 0, 100)?,
        grade: text_field("grade", &body.grade, 0, 100)?,
        mode: body.mode,
        scheduled_at: body.scheduled_at,
    };
    let lesson = state.store.create_lesson(&new, Timestamp::now()).await?;
    tracing::info!(lesson = lesson.id, title = %lesson.title, mode = %lesson.mode, "lesson created");
    Ok((StatusCode::CREATED, Json(lesson)))
}

async fn list_lessons(State(state): State<AppState>) -> Result<Json<Vec<Lesson>>, ApiError> {
    Ok(Json(state.store.list_lessons().await?))
}

/// A lesson with who is in it now.
#[derive(Serialize)]
struct LessonView {
    #[serde(flatten)]
    lesson: Lesson,
    participants: Vec<ParticipantInfo>,
}

async fn find_lesson(state: &AppState, id: LessonKey) -> Result<Lesson, ApiError> {
    state
        .store
        .lesson(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no lesson {id}")))
}

async fn show_lesson(
    State(state): State<AppState>,
    Path(id): Path<LessonKey>,
) -> Result<Json<LessonView>, ApiError> {
    let lesson = find_lesson(&state, id).await?;
    let participants = state.hub.participants(id);
    Ok(Json(LessonView {
        lesson,
        participants,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInvite {
    role: Role,
    name: String,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Invite {
    token: String,
    url: String,
    expires_at: Timestamp,
    lesson_id: LessonKey,
    role: Role,
    name: String,
    grants: Grants,
}

async fn create_invite(
    State(state): State<AppState>,
    Path(id): Path<LessonKey>,
    headers: HeaderMap,
    Json(body): Json<CreateInvite>,
) -> Result<(StatusCode, Json<Invite>), ApiError> {
    if body.role == Role::Recorder {
        return Err(ApiError::Invalid(
            "the recorder runs inside the server and takes no invite".into(),
        ));
    }
    let name = text_field("name", &body.name, 1, 100)?;
    let ttl = body.ttl_secs.unwrap_or(TTL_DEFAULT);
    if !(TTL_MIN..=TTL_MAX).contains(&ttl) {
        return Err(ApiError::Invalid(format!(
            "ttl_secs must be {TTL_MIN} to {TTL_MAX} seconds"
        )));
    }
    let lesson = find_lesson(&state, id).await?;
    if lesson.state == LessonState::Ended {
        return Err(ApiError::Conflict {
            code: "lesson_ended",
            message: format!("lesson {id} has ended"),
        });
    }

    let now = Timestamp::now();
    let grants = Grants::for_role(body.role, lesson.mode);
    let claims = Claims::new_invite(id, body.role, name, grants, now, ttl);
    let token = state.keys.issue(&claims).map_err(ApiError::internal)?;
    let expires_at = now.plus_secs(ttl);
    state
        .store
        .insert_invite(&NewInvite {
            jti: claims.jti.clone(),
            lesson: id,
            role: body.role,
            name: claims.name.clone(),
            created_at: now,
            expires_at,
        })
        .await?;

    let host = request_host(&headers).unwrap_or_else(|| state.http_addr.to_string());
    let url = match body.role {
        Role::Teacher | Role::Assistant => {
            format!("http://{host}/teacher#lesson={id}&token={token}")
        }
        _ => format!("http://{host}/classroom#token={token}"),
    };
    tracing::info!(lesson = id, role = body.role.as_str(), jti = %claims.jti, "invite issued");
    Ok((
        StatusCode::CREATED,
        Json(Invite {
            token,
            url,
            expires_at,
            lesson_id: id,
            role: body.role,
            name: claims.name,
            grants: claims.grants,
        }),
    ))
}

/// The `Host` the caller used, if it looks like a host name or address with an optional port
/// (it goes into a link an admin hands out, so nothing else is let through).
fn request_host(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then(|| host.to_owned())
}

async fn end_lesson(
    State(state): State<AppState>,
    Path(id): Path<LessonKey>,
) -> Result<impl IntoResponse, ApiError> {
    let lesson = end(&state, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no lesson {id}")))?;
    Ok(Json(lesson))
}

/// Ends lesson `id` for everyone: marks it ended in the store, then tells every participant
/// and closes their sockets. `None` if there is no such lesson. The REST call and a
/// moderator's `end_lesson` over the WebSocket both end a lesson through here.
pub async fn end(state: &AppState, id: LessonKey) -> Result<Option<Lesson>, StoreError> {
    let Some(lesson) = state.store.end_lesson(id, Timestamp::now()).await? else {
        return Ok(None);
    };
    state.hub.end_lesson(id);
    tracing::info!(lesson = id, "lesson ended");
    Ok(Some(lesson))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_is_checked() {
        let mut h = HeaderMap::new();
        assert_eq!(request_host(&h), None);
        h.insert(header::HOST, "school.example:8080".parse().unwrap());
        assert_eq!(request_host(&h).as_deref(), Some("school.example:8080"));
        h.insert(header::HOST, "[::1]:80".parse().unwrap());
        assert_eq!(request_host(&h).as_deref(), Some("[::1]:80"));
        h.insert(header::HOST, "evil/path?x".parse().unwrap());
        assert_eq!(request_host(&h), None);
    }

    #[test]
    fn text_fields_are_trimmed_and_bounded() {
        assert_eq!(text_field("t", "  Music ", 1, 200).unwrap(), "Music");
        assert!(text_field("t", "   ", 1, 200).is_err());
        assert!(text_field("t", &"字".repeat(200), 1, 200).is_ok());
        assert!(text_field("t", &"字".repeat(201), 1, 200).is_err());
        assert!(text_field("t", "a\u{7}b", 1, 200).is_err());
    }
}
