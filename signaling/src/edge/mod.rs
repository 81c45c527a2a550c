//! The edge: HTTP and WebSocket, where requests come in and answers go out. [`app`] is the
//! router every route hangs off; the modules under it turn requests into calls on the
//! services, the live lessons and the store, and their errors into responses.
//!
//! - [`api`] — the REST API under `/api`; [`error`] — `ApiError`, its only error response.
//! - [`session`] — who is calling: session cookies, the API key, same-origin checks.
//! - [`ws`] — `/ws`: one task per connection, join, and the requests of a joined participant.
//! - [`web`] — the embedded web client.

pub mod api;
pub mod error;
pub mod session;
pub mod web;
pub mod ws;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// Builds the router: REST under `/api`, `/ws`, `/metrics`, `/healthz`, and the web client.
pub fn app(state: AppState) -> Router {
    Router::new()
        .nest("/api", api::router())
        .route("/ws", get(ws::upgrade))
        .route("/media/{recording}/{file}", get(api::library::media))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(web::serve)
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                // Name the span by the matched route, not the raw path, so ids and tokens in
                // paths stay out of logs and span names stay few.
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("static");
                tracing::debug_span!("http", method = %request.method(), route)
            }),
        )
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not render metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
