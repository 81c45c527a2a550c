//! The REST API through the router, against a real server's state (database in a temp dir).

mod common;

use axum::http::StatusCode;
use common::TestServer;
use serde_json::json;

fn assert_error(body: &serde_json::Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn create_list_and_show_lessons() {
    let t = TestServer::start().await;
    let (status, created) = t
        .call(
            "POST",
            "/api/lessons",
            Some(json!({
                "title": "  Music for Grade 5 ",
                "subject": "music",
                "grade": "5",
                "mode": "delivery",
                "scheduled_at": "2026-09-01T08:30:00+08:00"
            })),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["title"], "Music for Grade 5");
    assert_eq!(created["mode"], "delivery");
    assert_eq!(created["state"], "scheduled");
    assert_eq!(created["scheduled_at"], "2026-09-01T00:30:00Z");
    assert!(created["created_at"].is_string());
    let id = created["id"].as_i64().unwrap();

    let second = t.create_lesson("network").await;
    assert_ne!(second, id);

    let (status, list) = t.call("GET", "/api/lessons", None, true).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![id, second]);

    let (status, shown) = t
        .call("GET", &format!("/api/lessons/{id}"), None, true)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["title"], "Music for Grade 5");
    assert_eq!(shown["participants"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_the_error_shape() {
    let t = TestServer::start().await;
    let (status, body) = t
        .call_raw("POST", "/api/lessons", Some("{not json"), true)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "bad_json");

    let (status, body) = t
        .call(
            "POST",
            "/api/lessons",
            Some(json!({"title": "x", "mode": "recital"})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "bad_json");

    let (status, body) = t
        .call(
            "POST",
            "/api/lessons",
            Some(json!({"title": "x", "mode": "network", "colour": "red"})),
            true,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    assert_error(&body, "bad_json");

    let (status, body) = t
        .call(
            "POST",
            "/api/lessons",
            Some(json!({"title": "   ", "mode": "network"})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_input");

    let (status, body) = t
        .call(
            "POST",
            "/api/lessons",
            Some(json!({"title": "x".repeat(201), "mode": "network"})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_input");

    let (status, body) = t.call("GET", "/api/lessons/abc", None, true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_input");
    t.stop().await;
}

#[tokio::test]
async fn admin_token_is_required() {
    let t = TestServer::start().await;
    let (status, body) = t.call("GET", "/api/lessons", None, false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");

    let app = signaling::app(t.server.state().clone());
    let request = axum::http::Request::builder()
        .uri("/api/lessons")
        .header("authorization", "Bearer not-the-token")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    // The token is kept, private, under the data directory.
    let path = t.dir.path().join("data/admin-token");
    let kept = std::fs::read_to_string(&path).unwrap();
    assert_eq!(kept.trim(), t.server.admin_token());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let key = std::fs::metadata(t.dir.path().join("data/secret.key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }
    t.stop().await;
}

#[tokio::test]
async fn unknown_lesson_is_404() {
    let t = TestServer::start().await;
    for (method, path, body) in [
        ("GET", "/api/lessons/999", None),
        ("POST", "/api/lessons/999/end", None),
        (
            "POST",
            "/api/lessons/999/invites",
            Some(json!({"role": "classroom", "name": "A"})),
        ),
    ] {
        let (status, body) = t.call(method, path, body, true).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_error(&body, "not_found");
    }
    let (status, body) = t.call("GET", "/api/nothing-here", None, true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    t.stop().await;
}

#[tokio::test]
async fn invites_carry_a_token_and_a_link() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (status, invite) = t
        .call(
            "POST",
            &format!("/api/lessons/{lesson}/invites"),
            Some(json!({"role": "classroom", "name": "Grade 5 class, Shizi Village School", "ttl_secs": 3600})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let token = invite["token"].as_str().unwrap();
    assert_eq!(
        invite["url"],
        format!("http://school.example:8080/classroom#token={token}")
    );
    assert_eq!(invite["grants"]["publish"], json!(["camera", "microphone"]));
    // Students and observers get the phone-sized student view.
    for role in ["student", "observer"] {
        let (status, other) = t
            .call(
                "POST",
                &format!("/api/lessons/{lesson}/invites"),
                Some(json!({"role": role, "name": "Wang Fang"})),
                true,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{other}");
        assert!(
            other["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http://school.example:8080/student#token=")),
            "{other}"
        );
    }
    let claims = t.server.state().keys.verify(token, Some(lesson)).unwrap();
    assert_eq!(claims.name, "Grade 5 class, Shizi Village School");
    assert_eq!(claims.exp - claims.iat, 3600);

    let (status, teacher) = t
        .call(
            "POST",
            &format!("/api/lessons/{lesson}/invites"),
            Some(json!({"role": "teacher", "name": "Ms Li"})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = teacher["token"].as_str().unwrap();
    assert_eq!(
        teacher["url"],
        format!("http://school.example:8080/teacher#lesson={lesson}&token={token}")
    );
    let claims = t.server.state().keys.verify(token, None).unwrap();
    assert_eq!(claims.exp - claims.iat, 24 * 3600, "a day by default");

    for bad in [
        json!({"role": "janitor", "name": "x"}),
        json!({"name": "x"}),
        json!({"role": "classroom", "name": "x", "classroom_id": "one"}),
    ] {
        let (status, body) = t
            .call(
                "POST",
                &format!("/api/lessons/{lesson}/invites"),
                Some(bad),
                true,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_error(&body, "bad_json");
    }
    for bad in [
        json!({"role": "classroom"}),
        json!({"role": "classroom", "classroom_id": 999}),
        json!({"role": "classroom", "name": ""}),
        json!({"role": "classroom", "name": "x", "ttl_secs": 59}),
        json!({"role": "classroom", "name": "x", "ttl_secs": 7 * 24 * 3600 + 1}),
        json!({"role": "recorder", "name": "x"}),
    ] {
        let (status, body) = t
            .call(
                "POST",
                &format!("/api/lessons/{lesson}/invites"),
                Some(bad.clone()),
                true,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_error(&body, "invalid_input");
    }
    t.stop().await;
}

#[tokio::test]
async fn ending_a_lesson_closes_it_to_invites() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("famous_teacher").await;
    let (status, ended) = t
        .call("POST", &format!("/api/lessons/{lesson}/end"), None, true)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["state"], "ended");
    assert!(ended["ended_at"].is_string());
    // Ending twice is harmless.
    let (status, _) = t
        .call("POST", &format!("/api/lessons/{lesson}/end"), None, true)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = t
        .call(
            "POST",
            &format!("/api/lessons/{lesson}/invites"),
            Some(json!({"role": "classroom", "name": "x"})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "lesson_ended");
    t.stop().await;
}

#[tokio::test]
async fn health_metrics_and_pages() {
    let t = TestServer::start().await;
    let (status, body) = t.call("GET", "/healthz", None, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok");

    let (status, body) = t.call("GET", "/metrics", None, false).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    for name in [
        "classroom_ws_connections",
        "classroom_participants",
        "classroom_live_lessons",
        "classroom_slow_consumer_disconnects_total",
        "classroom_sfu_rtp_packets_in_total",
        "classroom_sfu_peer_connections",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }

    // The teacher console is embedded; excluded and unknown files are not served.
    let app = signaling::app(t.server.state().clone());
    let get = |path: &str| {
        axum::http::Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let page = tower::ServiceExt::oneshot(app.clone(), get("/"))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let classroom = tower::ServiceExt::oneshot(app.clone(), get("/classroom"))
        .await
        .unwrap();
    assert_eq!(classroom.status(), StatusCode::OK);
    for path in [
        "/package.json",
        "/package-lock.json",
        "/tests/lesson.test.mjs",
        "/node_modules/playwright-core/package.json",
        "/no-such-file.js",
        "/../Cargo.toml",
    ] {
        let r = tower::ServiceExt::oneshot(app.clone(), get(path))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    t.stop().await;
}
