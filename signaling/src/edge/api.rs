//! The REST API (DESIGN §5): lessons, invites and ending a lesson here; signing in in
//! [`auth`], accounts, schools and classrooms in [`accounts`], recordings in [`library`].
//!
//! **Who may call.** Every call but signing in needs a [`Caller`]: a signed-in account (the
//! `classroom_session` cookie, see [`crate::edge::session`]) or the **API key** — the admin token in
//! `DATA/admin-token`, sent as `Authorization: Bearer <key>`, which acts as an admin. Scripts,
//! bots, the load test and the console's `#key=` link use the API key; people sign in. Lessons
//! by role ([`AccountRole::may`]): teachers and admins create them (the creator becomes the
//! lesson's teacher); a teacher sees, invites to and ends only its own lessons; operators see
//! and end every lesson; admins do everything. A refusal is 403 `forbidden` and changes
//! nothing.
//!
//! **Cross-site requests.** State-changing calls that ride on a cookie must come from our own
//! pages ([`session::refuse_cross_site`]): 403 `cross_site` otherwise.

mod accounts;
mod auth;
pub mod library;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::domain::accounts::{AccountRole, ClassroomId, LessonAction, text_field};
use crate::domain::lesson::{LessonKey, LessonMode, LessonState};
use crate::domain::timestamp::Timestamp;
use crate::edge::error::{ApiError, Json, Path, Query};
use crate::edge::session::{self, Caller};
use crate::protocol::{ParticipantInfo, Role};
use crate::services::lessons;
use crate::state::AppState;
use crate::store::{LessonFilter, LessonRecord, NewInvite, NewLesson};
use crate::token::{Claims, Grants};

/// Invite lifetimes accepted, in seconds: a minute to a week; a day unless asked.
const TTL_MIN: u64 = 60;
const TTL_MAX: u64 = 7 * 24 * 3600;
const TTL_DEFAULT: u64 = 24 * 3600;

/// Lessons one list returns unless `?limit=` asks for fewer or more (up to [`LIST_MAX`]).
const LIST_DEFAULT: u32 = 500;
const LIST_MAX: u32 = 1000;

/// The `/api` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(accounts::routes())
        .merge(library::routes())
        .route("/lessons", get(list_lessons).post(create_lesson))
        .route("/lessons/{id}", get(show_lesson))
        .route("/lessons/{id}/invites", post(create_invite))
        .route("/lessons/{id}/end", post(end_lesson))
        .fallback(|| async { ApiError::NotFound("no such API call".into()) })
        .layer(middleware::from_fn(session::refuse_cross_site))
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
    /// Whether the lesson records itself when it goes live; on by default in `network` mode
    /// (its lessons are the library's), off otherwise.
    #[serde(default)]
    record: Option<bool>,
}

async fn create_lesson(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<CreateLesson>,
) -> Result<(StatusCode, Json<LessonRecord>), ApiError> {
    if !caller.role().may(LessonAction::Create, false) {
        return Err(ApiError::Forbidden(format!(
            "a {} may not create lessons",
            caller.role()
        )));
    }
    let new = NewLesson {
        title: text_field("title", &body.title, 1, 200)?,
        subject: text_field("subject", &body.subject, 0, 100)?,
        grade: text_field("grade", &body.grade, 0, 100)?,
        mode: body.mode,
        scheduled_at: body.scheduled_at,
        teacher: caller.user_id(),
    };
    let lesson = state.store.create_lesson(&new, Timestamp::now()).await?;
    let record = body.record.unwrap_or(body.mode == LessonMode::Network);
    state.store.set_lesson_record(lesson.id, record).await?;
    tracing::info!(lesson = lesson.id, title = %lesson.title, mode = %lesson.mode, teacher = ?new.teacher, "lesson created");
    let record = find_lesson(&state, lesson.id).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListLessons {
    #[serde(default)]
    state: Option<LessonState>,
    #[serde(default)]
    limit: Option<u32>,
}

/// A teacher's own lessons, or every lesson for operators and admins; `?state=` picks one
/// state in its reading order (the teacher's upcoming and past lists).
async fn list_lessons(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<ListLessons>,
) -> Result<Json<Vec<LessonRecord>>, ApiError> {
    let limit = query.limit.unwrap_or(LIST_DEFAULT);
    if !(1..=LIST_MAX).contains(&limit) {
        return Err(ApiError::Invalid(format!("limit must be 1 to {LIST_MAX}")));
    }
    let teacher = match caller.role() {
        AccountRole::Teacher => caller.user_id(),
        AccountRole::Operator | AccountRole::Admin => None,
    };
    let filter = LessonFilter {
        teacher,
        state: query.state,
        limit,
    };
    Ok(Json(state.store.lesson_records(filter).await?))
}

/// A lesson with who is in it now.
#[derive(Serialize)]
struct LessonView {
    #[serde(flatten)]
    lesson: LessonRecord,
    participants: Vec<ParticipantInfo>,
}

async fn find_lesson(state: &AppState, id: LessonKey) -> Result<LessonRecord, ApiError> {
    state
        .store
        .lesson_record(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no lesson {id}")))
}

/// Finds lesson `id` and checks that `caller` may do `action` to it: 404, then 403.
async fn lesson_for(
    state: &AppState,
    caller: &Caller,
    id: LessonKey,
    action: LessonAction,
) -> Result<LessonRecord, ApiError> {
    let record = find_lesson(state, id).await?;
    let owns =
        caller.user_id().is_some() && caller.user_id() == record.teacher.as_ref().map(|t| t.id);
    if caller.role().may(action, owns) {
        return Ok(record);
    }
    let role = caller.role();
    Err(ApiError::Forbidden(match role {
        AccountRole::Teacher => format!(
            "lesson {id} is not yours: a teacher may only {} its own lessons",
            action.verb()
        ),
        _ => format!("a {role} may not {} lessons", action.verb()),
    }))
}

async fn show_lesson(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<LessonKey>,
) -> Result<Json<LessonView>, ApiError> {
    let lesson = lesson_for(&state, &caller, id, LessonAction::Show).await?;
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
    /// The name participants see; a registered classroom's own name when left out.
    #[serde(default)]
    name: Option<String>,
    /// The registered classroom this link is for (one link per remote school classroom).
    #[serde(default)]
    classroom_id: Option<ClassroomId>,
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
    classroom_id: Option<ClassroomId>,
    grants: Grants,
}

async fn create_invite(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<LessonKey>,
    headers: HeaderMap,
    Json(body): Json<CreateInvite>,
) -> Result<(StatusCode, Json<Invite>), ApiError> {
    let lesson = lesson_for(&state, &caller, id, LessonAction::Invite)
        .await?
        .lesson;
    if body.role == Role::Recorder {
        return Err(ApiError::Invalid(
            "the recorder runs inside the server and takes no invite".into(),
        ));
    }
    let classroom = match body.classroom_id {
        Some(cid) => Some(
            state
                .store
                .classroom(cid)
                .await?
                .ok_or_else(|| ApiError::Invalid(format!("no classroom {cid}")))?,
        ),
        None => None,
    };
    let name = match (&body.name, &classroom) {
        (Some(name), _) => text_field("name", name, 1, 100)?,
        (None, Some(classroom)) => classroom.invite_name(),
        (None, None) => {
            return Err(ApiError::Invalid(
                "an invite needs a name or a classroom_id".into(),
            ));
        }
    };
    let ttl = body.ttl_secs.unwrap_or(TTL_DEFAULT);
    if !(TTL_MIN..=TTL_MAX).contains(&ttl) {
        return Err(ApiError::Invalid(format!(
            "ttl_secs must be {TTL_MIN} to {TTL_MAX} seconds"
        )));
    }
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
            classroom: body.classroom_id,
            created_at: now,
            expires_at,
        })
        .await?;

    let host = link_host(&state, &headers);
    let url = match body.role {
        Role::Teacher | Role::Assistant => {
            format!("http://{host}/teacher#lesson={id}&token={token}")
        }
        // Students and observers watch on a phone or a laptop; classrooms on the big screen.
        Role::Student | Role::Observer => format!("http://{host}/student#token={token}"),
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
            classroom_id: body.classroom_id,
            grants: claims.grants,
        }),
    ))
}

/// The host for links handed out: the one the caller used, else the bound address.
fn link_host(state: &AppState, headers: &HeaderMap) -> String {
    request_host(headers).unwrap_or_else(|| state.http_addr.to_string())
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
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<LessonKey>,
) -> Result<impl IntoResponse, ApiError> {
    lesson_for(&state, &caller, id, LessonAction::End).await?;
    lessons::end(&state.store, &state.hub, &state.recordings, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no lesson {id}")))?;
    Ok(Json(find_lesson(&state, id).await?))
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
}
