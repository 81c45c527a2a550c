//! The web client's files (`web-client/`), embedded in the binary at build time so the server
//! runs from one file. Debug builds embed too (`debug-embed`), so tests see what ships.
//!
//! `/` is the teacher console (`index.html`), `/classroom` the classroom view, `/student` the
//! student view (students and observers, on a phone or a laptop); `/teacher` is
//! where teacher invite links point (`teacher.html` when the client has one, else the
//! console); `/library` and `/replay` are the resource library and its replay page; any other
//! path `/X` is the file `web-client/X`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../web-client/"]
#[exclude = "node_modules/*"]
#[exclude = "tests/*"]
#[exclude = "package.json"]
#[exclude = "package-lock.json"]
#[exclude = ".*"]
struct Assets;

/// Serves the page or file a path names, or a plain 404.
pub async fn serve(request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = request.uri().path().trim_start_matches('/');
    let candidates: &[&str] = match path {
        "" => &["index.html"],
        "classroom" => &["classroom.html"],
        "student" => &["student.html"],
        "library" => &["library.html"],
        "replay" => &["replay.html"],
        "teacher" => &["teacher.html", "index.html"],
        other => &[other],
    };
    for name in candidates {
        if let Some(file) = Assets::get(name) {
            return respond(
                name,
                file,
                request.headers(),
                request.method() == Method::HEAD,
            );
        }
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn respond(
    name: &str,
    file: rust_embed::EmbeddedFile,
    request_headers: &HeaderMap,
    head: bool,
) -> Response {
    let etag = format!(
        "\"{}\"",
        crate::hex::hex(&file.metadata.sha256_hash()[..16])
    );
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));

    let mime = file.metadata.mimetype();
    // Text types without a charset would be read as Latin-1 by some clients.
    let content_type = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };

    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    // Always revalidate: the files change with every build and the ETag makes it cheap.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    tracing::trace!(file = name, "served");
    response
}
