//! The library (DESIGN §5): recorded lessons for anyone signed in (teachers, operators,
//! admins; or the API key).
//!
//! - `GET /api/library` — recordings, newest first; filters `subject`, `grade` (exact, any
//!   case), `teacher`, `school`, `q` (the title; each "contains"), `from`/`to` (a day
//!   `YYYY-MM-DD`, `to` inclusive, or an RFC 3339 instant), `limit`.
//! - `GET /api/library/{id}` — one recording: the list's fields, its timeline as a JSON array,
//!   and the URL of each file.
//! - `GET /media/{recording}/{file}` — `main.webm`, `screen.webm` or `thumbnail.jpg`, with
//!   HTTP Range (seeking) by `tower_http`'s `ServeFile`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use recorder::{RecordingId, TimelineEntry};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::domain::timestamp::Timestamp;
use crate::edge::error::{ApiError, Json, Path, Query};
use crate::edge::session::Caller;
use crate::services::recording::THUMBNAIL_FILE;
use crate::state::AppState;
use crate::store::{LibraryEntry, LibraryFilter};

const LIST_DEFAULT: u32 = 100;
const LIST_MAX: u32 = 500;

/// The only files `/media` serves from a recording's directory.
const MEDIA_FILES: &[&str] = &["main.webm", "screen.webm", THUMBNAIL_FILE];

/// Longest filter text accepted.
const MAX_FILTER_LEN: usize = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/library", get(list))
        .route("/library/{id}", get(show))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    grade: Option<String>,
    #[serde(default)]
    teacher: Option<String>,
    #[serde(default)]
    school: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

/// A filter's text: trimmed, empty meaning no filter.
fn filter_text(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.trim();
    if value.chars().count() > MAX_FILTER_LEN {
        return Err(ApiError::Invalid(format!(
            "{name} must be at most {MAX_FILTER_LEN} characters"
        )));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// Which end of a day a bare date stands for.
#[derive(Clone, Copy)]
enum DayEdge {
    Start,
    /// The next day's start: `to` includes the whole day.
    End,
}

/// `YYYY-MM-DD` (a UTC day) or an RFC 3339 instant.
fn parse_when(name: &str, value: &str, edge: DayEdge) -> Result<Timestamp, ApiError> {
    let invalid = || {
        ApiError::Invalid(format!(
            "{name} must be a date (YYYY-MM-DD) or an RFC 3339 time, not {value:?}"
        ))
    };
    if let Ok(t) = Timestamp::parse_rfc3339(value) {
        return Ok(t);
    }
    let mut parts = value.splitn(3, '-');
    let mut number = || -> Result<i64, ApiError> {
        parts
            .next()
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)
    };
    let (year, month, day) = (number()?, number()?, number()?);
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let date = i32::try_from(year)
        .ok()
        .zip(u8::try_from(day).ok())
        .and_then(|(y, d)| time::Date::from_calendar_date(y, month, d).ok())
        .ok_or_else(invalid)?;
    let start = date.midnight().assume_utc().unix_timestamp();
    Ok(Timestamp::from_unix(match edge {
        DayEdge::Start => start,
        DayEdge::End => start + 24 * 3600,
    }))
}

async fn list(
    _caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<LibraryEntry>>, ApiError> {
    let limit = query.limit.unwrap_or(LIST_DEFAULT);
    if !(1..=LIST_MAX).contains(&limit) {
        return Err(ApiError::Invalid(format!("limit must be 1 to {LIST_MAX}")));
    }
    let from = filter_text("from", query.from)?
        .map(|v| parse_when("from", &v, DayEdge::Start))
        .transpose()?;
    let until = filter_text("to", query.to)?
        .map(|v| parse_when("to", &v, DayEdge::End))
        .transpose()?;
    let filter = LibraryFilter {
        subject: filter_text("subject", query.subject)?,
        grade: filter_text("grade", query.grade)?,
        teacher: filter_text("teacher", query.teacher)?,
        school: filter_text("school", query.school)?,
        from,
        until,
        text: filter_text("q", query.q)?,
        limit,
    };
    Ok(Json(state.store.library(&filter).await?))
}

/// A recording's files as links.
#[derive(Debug, Serialize)]
struct MediaUrls {
    main: Option<String>,
    screen: Option<String>,
    thumbnail: Option<String>,
}

#[derive(Debug, Serialize)]
struct RecordingView {
    #[serde(flatten)]
    entry: LibraryEntry,
    timeline: Vec<TimelineEntry>,
    urls: MediaUrls,
}

fn recording_id(id: &str) -> Result<RecordingId, ApiError> {
    RecordingId::new(id).map_err(|_| ApiError::NotFound(format!("no recording {id:?}")))
}

async fn show(
    _caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RecordingView>, ApiError> {
    let id = recording_id(&id)?;
    let entry = state
        .store
        .library_entry(id.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no recording {id}")))?;
    let timeline = match &entry.files.timeline {
        // The recorder's one name for it; a row saying otherwise is not followed on disk.
        Some(file) if file == "timeline.jsonl" => {
            let path = state.recordings.library().join(id.as_str()).join(file);
            tokio::task::spawn_blocking(move || recorder::read_timeline(&path))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?
        }
        _ => Vec::new(),
    };
    let url = |file: &Option<String>| file.as_ref().map(|f| format!("/media/{id}/{f}"));
    let urls = MediaUrls {
        main: url(&entry.files.main),
        screen: url(&entry.files.screen),
        thumbnail: url(&entry.files.thumbnail),
    };
    Ok(Json(RecordingView {
        entry,
        timeline,
        urls,
    }))
}

/// `GET /media/{recording}/{file}`: a recording's media, with HTTP Range.
pub async fn media(
    _caller: Caller,
    State(state): State<AppState>,
    Path((recording, file)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    // Both parts name a path on disk: the id is `[A-Za-z0-9_-]`, the file one of a fixed
    // few, so nothing can climb out of the library.
    let id = recording_id(&recording)?;
    if !MEDIA_FILES.contains(&file.as_str()) {
        return Err(ApiError::NotFound(format!("no media file {file:?}")));
    }
    let path = state.recordings.library().join(id.as_str()).join(&file);
    let response = ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(ApiError::internal)?;
    Ok(response.map(Body::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_or_instants() {
        let day = parse_when("from", "2030-03-04", DayEdge::Start).unwrap();
        assert_eq!(day.to_string(), "2030-03-04T00:00:00Z");
        let end = parse_when("to", "2030-03-04", DayEdge::End).unwrap();
        assert_eq!(end.to_string(), "2030-03-05T00:00:00Z");
        let t = parse_when("from", "2030-03-04T10:00:00+08:00", DayEdge::Start).unwrap();
        assert_eq!(t.to_string(), "2030-03-04T02:00:00Z");
        for bad in [
            "2030-13-01",
            "2030-02-30",
            "yesterday",
            "2030-1",
            "-1-01-01",
        ] {
            assert!(parse_when("from", bad, DayEdge::Start).is_err(), "{bad}");
        }
    }
}
