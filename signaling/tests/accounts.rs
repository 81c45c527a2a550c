//! Accounts end to end, over real HTTP on loopback with the session cookie the server sets:
//! the first admin's one-time link, signing in and out, wrong passwords and the rate limit,
//! disabled accounts, session expiry, who may do what to which lesson, the API key, the
//! same-origin check, and the `classroom admin` subcommands on the built binary.

mod common;

use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use common::{TestServer, WAIT};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn lesson_state(t: &TestServer, id: i64) -> Value {
    let (status, body) = t
        .call("GET", &format!("/api/lessons/{id}"), None, true)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["state"].clone()
}

#[tokio::test]
async fn the_first_admin_link_works_once_then_a_password_signs_in() {
    let t = TestServer::start().await;
    let token = t
        .server
        .first_signin_token()
        .expect("a fresh data directory makes the admin and its link")
        .to_owned();

    let mut admin = t.agent();
    let (status, body) = admin.call("GET", "/api/auth/me", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let (status, body) = admin
        .call("POST", "/api/auth/once", Some(json!({ "token": token })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["username"], "admin");
    assert_eq!(body["account"]["role"], "admin");
    assert_eq!(body["must_set_password"], true);
    let set_cookie = admin.set_cookies.join("\n");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Secure",
        "Max-Age=43200",
    ] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    let (status, me) = admin.call("GET", "/api/auth/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["account"]["username"], "admin");
    assert_eq!(me["api_key"], false);
    assert_eq!(me["must_set_password"], true);

    // Once only, from any browser.
    let mut other = t.agent();
    let (status, body) = other
        .call("POST", "/api/auth/once", Some(json!({ "token": token })))
        .await;
    assert_error(status, &body, StatusCode::GONE, "link_invalid");
    assert!(other.cookie.is_none());
    let (status, body) = other
        .call(
            "POST",
            "/api/auth/once",
            Some(json!({ "token": "not a token" })),
        )
        .await;
    assert_error(status, &body, StatusCode::GONE, "link_invalid");

    // A link session chooses a password without knowing one; the rule holds.
    let (status, body) = admin
        .call(
            "POST",
            "/api/auth/password",
            Some(json!({ "new": "short" })),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "weak_password");
    let (status, body) = admin
        .call(
            "POST",
            "/api/auth/password",
            Some(json!({ "new": "a long admin password" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["has_password"], true);
    assert_eq!(body["must_set_password"], false);

    let (status, _) = admin.call("POST", "/api/auth/signout", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        admin.cookie.is_none(),
        "the cookie is removed: {:?}",
        admin.set_cookies
    );
    let (status, body) = admin.call("GET", "/api/auth/me", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let (status, body) = admin.signin("Admin", "a long admin password").await;
    assert_eq!(status, StatusCode::OK, "usernames are case-blind: {body}");
    let (status, me) = admin.call("GET", "/api/auth/me", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["must_set_password"], false);

    // The old session token is dead even if someone kept it.
    let stale = admin.cookie.clone();
    admin.call("POST", "/api/auth/signout", None).await;
    admin.cookie = stale;
    let (status, body) = admin.call("GET", "/api/auth/me", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // A restart finds an admin and makes no new link.
    let t = t.restart().await;
    assert_eq!(t.server.first_signin_token(), None);
    t.signed_in("admin", "a long admin password").await;
    t.stop().await;
}

#[tokio::test]
async fn wrong_passwords_are_refused_then_rate_limited_per_username() {
    let t = TestServer::start().await;
    t.create_account("liwei", "teacher", "right password").await;
    t.create_account("zhang", "teacher", "zhang password").await;

    let mut agent = t.agent();
    let (status, body) = agent.signin("liwei", "wrong password").await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let (status, unknown) = agent.signin("nobody", "wrong password").await;
    assert_error(
        status,
        &unknown,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!(unknown, body, "an unknown user looks like a wrong password");
    assert!(agent.cookie.is_none());

    for _ in 1..signaling::domain::signin_limit::MAX_FAILURES {
        let (status, _) = agent.signin("liwei", "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Five failures: now even the right password waits.
    let (status, headers, body) = agent
        .call_full(
            "POST",
            "/api/auth/signin",
            Some(json!({"username": "liwei", "password": "right password"})),
        )
        .await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        retry > 0 && retry <= signaling::domain::signin_limit::WINDOW_SECS,
        "{retry}"
    );
    assert!(agent.cookie.is_none());

    // Per username: another teacher is not held up.
    t.signed_in("zhang", "zhang password").await;

    // Once the window has passed, the right password works again.
    t.server.state().clock.advance(Duration::from_secs(
        signaling::domain::signin_limit::WINDOW_SECS,
    ));
    t.signed_in("liwei", "right password").await;
    t.stop().await;
}

#[tokio::test]
async fn a_disabled_account_is_refused_and_signed_out() {
    let t = TestServer::start().await;
    let id = t.create_account("liwei", "teacher", "right password").await;
    let mut teacher = t.signed_in("liwei", "right password").await;
    let (status, _) = teacher.call("GET", "/api/lessons", None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = t
        .call(
            "PATCH",
            &format!("/api/accounts/{id}"),
            Some(json!({"disabled": true})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["disabled"], true);

    let (status, body) = teacher.call("GET", "/api/lessons", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = teacher.signin("liwei", "right password").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "account_disabled");
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/accounts/{id}/signin-link"),
            None,
            true,
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "account_disabled");

    let (status, _) = t
        .call(
            "PATCH",
            &format!("/api/accounts/{id}"),
            Some(json!({"disabled": false})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    t.signed_in("liwei", "right password").await;
    t.stop().await;
}

#[tokio::test]
async fn a_session_expires_after_its_lifetime() {
    let t = TestServer::start().await;
    t.create_account("liwei", "teacher", "right password").await;
    let mut teacher = t.agent();
    let (status, body) = teacher.signin("liwei", "right password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = signaling::domain::timestamp::Timestamp::now().unix();
    let expires = signaling::domain::timestamp::Timestamp::parse_rfc3339(
        body["expires_at"].as_str().unwrap(),
    )
    .unwrap()
    .unix();
    assert!(
        (expires - now - 12 * 3600).abs() <= 5,
        "12 h from now: {body}"
    );

    t.server
        .state()
        .clock
        .advance(Duration::from_secs(12 * 3600 - 60));
    let (status, _) = teacher.call("GET", "/api/auth/me", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a minute before the end it still works"
    );
    t.server.state().clock.advance(Duration::from_secs(61));
    let (status, body) = teacher.call("GET", "/api/auth/me", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    t.stop().await;
}

#[tokio::test]
async fn lessons_by_role() {
    let t = TestServer::start().await;
    let a_id = t
        .create_account("teacher-a", "teacher", "password a!")
        .await;
    t.create_account("teacher-b", "teacher", "password b!")
        .await;
    t.create_account("bureau", "operator", "password op").await;
    let mut a = t.signed_in("teacher-a", "password a!").await;
    let mut b = t.signed_in("teacher-b", "password b!").await;
    let mut op = t.signed_in("bureau", "password op").await;
    let mut nobody = t.agent();

    let create =
        |title: &str, at: &str| json!({"title": title, "mode": "delivery", "scheduled_at": at});
    let (status, lesson_a) = a
        .call(
            "POST",
            "/api/lessons",
            Some(create("A late", "2026-09-02T08:00:00Z")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lesson_a}");
    assert_eq!(lesson_a["teacher"]["id"], a_id, "the creator owns it");
    assert_eq!(lesson_a["teacher"]["display_name"], "teacher-a (display)");
    let a_late = lesson_a["id"].as_i64().unwrap();
    let (_, early) = a
        .call(
            "POST",
            "/api/lessons",
            Some(create("A early", "2026-09-01T08:00:00Z")),
        )
        .await;
    let a_early = early["id"].as_i64().unwrap();
    let (_, lesson_b) = b
        .call(
            "POST",
            "/api/lessons",
            Some(create("B", "2026-09-01T09:00:00Z")),
        )
        .await;
    let b_lesson = lesson_b["id"].as_i64().unwrap();
    let keyed = t.create_lesson("network").await;

    let ids = |list: &Value| -> Vec<i64> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_i64().unwrap())
            .collect()
    };
    // A teacher's schedule: its own lessons only, upcoming soonest first.
    let (status, list) = a.call("GET", "/api/lessons?state=scheduled", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list), vec![a_early, a_late]);
    let (_, list) = a.call("GET", "/api/lessons", None).await;
    assert_eq!(ids(&list), vec![a_late, a_early]);
    let (_, list) = op.call("GET", "/api/lessons", None).await;
    assert_eq!(ids(&list), vec![a_late, a_early, b_lesson, keyed]);
    assert_eq!(list[3]["teacher"], Value::Null, "made with the API key");
    let (status, body) = a.call("GET", "/api/lessons?state=someday", None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");

    // Teacher B touches teacher A's lesson: refused, nothing changes.
    let path = |id: i64, rest: &str| format!("/api/lessons/{id}{rest}");
    let invite = json!({"role": "classroom", "name": "Grade 5"});
    let (status, body) = b.call("GET", &path(a_late, ""), None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = b
        .call("POST", &path(a_late, "/invites"), Some(invite.clone()))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = b.call("POST", &path(a_late, "/end"), None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(lesson_state(&t, a_late).await, "scheduled");
    let (status, body) = b.call("POST", &path(keyed, "/end"), None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

    // The owner may.
    let (status, shown) = a.call("GET", &path(a_late, ""), None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["participants"], json!([]));
    let (status, body) = a
        .call("POST", &path(a_late, "/invites"), Some(invite.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The operator watches and ends, but neither creates nor invites.
    let (status, body) = op
        .call(
            "POST",
            "/api/lessons",
            Some(create("Op", "2026-09-01T08:00:00Z")),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = op
        .call("POST", &path(b_lesson, "/invites"), Some(invite.clone()))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = op.call("GET", &path(b_lesson, ""), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, ended) = op.call("POST", &path(b_lesson, "/end"), None).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["state"], "ended");
    let (_, list) = op.call("GET", "/api/lessons?state=ended", None).await;
    assert_eq!(ids(&list), vec![b_lesson]);
    let (_, list) = b.call("GET", "/api/lessons?state=scheduled", None).await;
    assert_eq!(
        ids(&list),
        Vec::<i64>::new(),
        "B's upcoming list is empty now"
    );

    // Teachers and operators manage no accounts or schools, but may read schools.
    for agent in [&mut a, &mut op] {
        let (status, body) = agent.call("GET", "/api/accounts", None).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        let (status, body) = agent
            .call(
                "POST",
                "/api/schools",
                Some(json!({"name": "Sneaky School"})),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        let (status, _) = agent.call("GET", "/api/schools", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, schools) = t.call("GET", "/api/schools", None, true).await;
    assert_eq!(schools, json!([]), "nothing was created");

    // Without a session or key: nothing.
    for (method, p) in [
        ("GET", "/api/lessons".to_owned()),
        ("GET", path(a_late, "")),
        ("POST", path(a_late, "/end")),
        ("GET", "/api/schools".to_owned()),
    ] {
        let (status, body) = nobody.call(method, &p, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(lesson_state(&t, a_late).await, "scheduled");
    t.stop().await;
}

#[tokio::test]
async fn invites_name_a_registered_classroom() {
    let t = TestServer::start().await;
    t.create_account("liwei", "teacher", "right password").await;
    let mut teacher = t.signed_in("liwei", "right password").await;

    let (status, school) = t
        .call(
            "POST",
            "/api/schools",
            Some(json!({"name": "Shizi Village School"})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{school}");
    let school = school["id"].as_i64().unwrap();
    let (status, classroom) = t
        .call(
            "POST",
            &format!("/api/schools/{school}/classrooms"),
            Some(json!({"name": "Grade 5"})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{classroom}");
    let classroom = classroom["id"].as_i64().unwrap();
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/schools/{school}/classrooms"),
            Some(json!({"name": "Grade 5"})),
            true,
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "name_taken");

    // The teacher reads the classrooms to invite from them.
    let (status, list) = teacher
        .call("GET", &format!("/api/schools/{school}/classrooms"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["name"], "Grade 5");
    assert_eq!(list[0]["school_name"], "Shizi Village School");

    let (_, lesson) = teacher
        .call(
            "POST",
            "/api/lessons",
            Some(json!({"title": "Music", "mode": "delivery"})),
        )
        .await;
    let lesson = lesson["id"].as_i64().unwrap();
    let (status, invite) = teacher
        .call(
            "POST",
            &format!("/api/lessons/{lesson}/invites"),
            Some(json!({"role": "classroom", "classroom_id": classroom})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    assert_eq!(invite["name"], "Grade 5 · Shizi Village School");
    assert_eq!(invite["classroom_id"], classroom);
    let claims = t
        .server
        .state()
        .keys
        .verify(invite["token"].as_str().unwrap(), Some(lesson))
        .unwrap();
    assert_eq!(claims.name, "Grade 5 · Shizi Village School");

    let (status, body) = teacher
        .call(
            "POST",
            &format!("/api/lessons/{lesson}/invites"),
            Some(json!({"role": "classroom", "classroom_id": 4242})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    t.stop().await;
}

#[tokio::test]
async fn admins_manage_accounts_and_links() {
    let t = TestServer::start().await;
    let (_, school) = t
        .call(
            "POST",
            "/api/schools",
            Some(json!({"name": "No. 1 Middle School"})),
            true,
        )
        .await;
    let school = school["id"].as_i64().unwrap();

    let (status, created) = t
        .call(
            "POST",
            "/api/accounts",
            Some(json!({"username": "WangFang", "display_name": "王芳", "role": "teacher", "school_id": school})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["account"]["username"], "wangfang");
    assert_eq!(created["account"]["display_name"], "王芳");
    assert_eq!(created["account"]["has_password"], false);
    let id = created["account"]["id"].as_i64().unwrap();
    let first_link = created["signin_link"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        created["signin_link"]["url"],
        format!("http://school.example:8080/signin.html#once={first_link}")
    );

    for (body, code) in [
        (
            json!({"username": "wangfang", "role": "teacher"}),
            "username_taken",
        ),
        (json!({"username": "x", "role": "teacher"}), "invalid_input"),
        (
            json!({"username": "newbie", "role": "teacher", "password": "short"}),
            "weak_password",
        ),
        (
            json!({"username": "newbie", "role": "teacher", "school_id": 999}),
            "invalid_input",
        ),
    ] {
        let (status, reply) = t
            .call("POST", "/api/accounts", Some(body.clone()), true)
            .await;
        assert_eq!(reply["error"]["code"], code, "{body} -> {status} {reply}");
    }
    let (status, body) = t
        .call(
            "POST",
            "/api/accounts",
            Some(json!({"username": "newbie", "role": "janitor"})),
            true,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_json");

    // A new link replaces the unused first one.
    let (status, link) = t
        .call(
            "POST",
            &format!("/api/accounts/{id}/signin-link"),
            None,
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let mut teacher = t.agent();
    let (status, body) = teacher
        .call("POST", "/api/auth/once", Some(json!({"token": first_link})))
        .await;
    assert_error(status, &body, StatusCode::GONE, "link_invalid");
    let (status, body) = teacher
        .call(
            "POST",
            "/api/auth/once",
            Some(json!({"token": link["token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = teacher
        .call(
            "POST",
            "/api/auth/password",
            Some(json!({"new": "王芳的新密码很长"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    t.signed_in("wangfang", "王芳的新密码很长").await;

    // Changes by an admin: name, role, school.
    let (status, changed) = t
        .call(
            "PATCH",
            &format!("/api/accounts/{id}"),
            Some(json!({"display_name": "Wang Fang", "role": "operator", "school_id": null})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["display_name"], "Wang Fang");
    assert_eq!(changed["role"], "operator");
    assert_eq!(changed["school_id"], Value::Null);
    let (status, body) = t
        .call(
            "PATCH",
            "/api/accounts/999",
            Some(json!({"disabled": true})),
            true,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // The only admin cannot be disabled or demoted.
    let (_, accounts) = t.call("GET", "/api/accounts", None, true).await;
    let names: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["admin", "wangfang"]);
    let admin_id = accounts[0]["id"].as_i64().unwrap();
    for patch in [json!({"disabled": true}), json!({"role": "teacher"})] {
        let (status, body) = t
            .call(
                "PATCH",
                &format!("/api/accounts/{admin_id}"),
                Some(patch),
                true,
            )
            .await;
        assert_error(status, &body, StatusCode::CONFLICT, "last_admin");
    }
    t.stop().await;
}

#[tokio::test]
async fn changing_a_password_needs_the_current_one_and_ends_other_sessions() {
    let t = TestServer::start().await;
    t.create_account("liwei", "teacher", "first password").await;
    let mut laptop = t.signed_in("liwei", "first password").await;
    let mut phone = t.signed_in("liwei", "first password").await;

    let (status, body) = laptop
        .call(
            "POST",
            "/api/auth/password",
            Some(json!({"new": "second password"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_input");
    let (status, body) = laptop
        .call(
            "POST",
            "/api/auth/password",
            Some(json!({"current": "not it", "new": "second password"})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let (status, body) = laptop
        .call(
            "POST",
            "/api/auth/password",
            Some(json!({"current": "first password", "new": "second password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _) = laptop.call("GET", "/api/auth/me", None).await;
    assert_eq!(status, StatusCode::OK, "this session goes on");
    let (status, body) = phone.call("GET", "/api/auth/me", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, _) = phone.signin("liwei", "first password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    t.signed_in("liwei", "second password").await;

    // The API key has no password to change.
    let (status, body) = t
        .call(
            "POST",
            "/api/auth/password",
            Some(json!({"new": "whatever long"})),
            true,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    t.stop().await;
}

#[tokio::test]
async fn the_api_key_acts_as_admin() {
    let t = TestServer::start().await;
    let (status, me) = t.call("GET", "/api/auth/me", None, true).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["api_key"], true);
    assert_eq!(me["account"], Value::Null);
    let lesson = t.create_lesson("delivery").await;
    t.invite(lesson, "classroom", "Grade 5").await;
    let (status, _) = t.call("GET", "/api/accounts", None, true).await;
    assert_eq!(status, StatusCode::OK);

    // A wrong key is refused outright, even alongside a valid session cookie.
    t.create_account("liwei", "teacher", "right password").await;
    let mut agent = t.signed_in("liwei", "right password").await;
    agent
        .headers
        .push(("authorization".into(), "Bearer not-the-key".into()));
    let (status, body) = agent.call("GET", "/api/lessons", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    t.stop().await;
}

#[tokio::test]
async fn cookie_changes_from_other_sites_are_refused() {
    let t = TestServer::start().await;
    t.create_account("liwei", "teacher", "right password").await;
    let mut teacher = t.signed_in("liwei", "right password").await;
    let lesson = json!({"title": "Forged", "mode": "delivery"});

    for forged in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        teacher.headers = vec![(forged.0.into(), forged.1.into())];
        let (status, body) = teacher
            .call("POST", "/api/lessons", Some(lesson.clone()))
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "cross_site");
        let (status, body) = teacher.call("POST", "/api/auth/signout", None).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "cross_site");
        // Reading is not a change.
        let (status, _) = teacher.call("GET", "/api/lessons", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    // A forged sign-in (login CSRF) is refused too.
    let mut stranger = t.agent();
    stranger.headers = vec![("origin".into(), "http://evil.example".into())];
    let (status, body) = stranger.signin("liwei", "right password").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "cross_site");

    teacher.headers = vec![("sec-fetch-site".into(), "same-origin".into())];
    let (status, body) = teacher.call("POST", "/api/lessons", Some(lesson)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, list) = t.call("GET", "/api/lessons", None, true).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the same-origin one: {list}"
    );

    // The API key cannot ride along cross-site, so its calls are judged by it alone.
    let (status, _) = t
        .call(
            "POST",
            "/api/lessons",
            Some(json!({"title": "K", "mode": "network"})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    t.stop().await;
}

/// Runs `classroom admin …` on `data`, feeding `stdin`; returns success, stdout and stderr.
async fn admin_cli(data: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_classroom"))
        .arg("admin")
        .args(args)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run classroom admin");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("classroom admin finished in time")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_admin_subcommands_manage_the_servers_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ok = |r: (bool, String, String)| {
        assert!(r.0, "failed:\n{}\n{}", r.1, r.2);
        r.1
    };

    // Provisioned before the first start: the server then makes no admin of its own.
    ok(admin_cli(&data, &["create-school", "Shizi Village School"], "").await);
    ok(admin_cli(
        &data,
        &["add-classroom", "Shizi Village School", "Grade 5"],
        "",
    )
    .await);
    let out = ok(admin_cli(
        &data,
        &[
            "create-user",
            "liwei",
            "--role",
            "teacher",
            "--name",
            "Li Wei",
            "--school",
            "Shizi Village School",
            "--password-stdin",
        ],
        "teacher password\n",
    )
    .await);
    assert!(out.contains("Created teacher liwei"), "{out}");
    let out = ok(admin_cli(&data, &["create-user", "boss", "--role", "admin"], "").await);
    let link = out
        .lines()
        .find_map(|l| l.strip_prefix("One-time sign-in link (24 h): "))
        .unwrap_or_else(|| panic!("a link: {out}"));
    let once = link.rsplit_once("#once=").unwrap().1.to_owned();

    let (success, _, err) =
        admin_cli(&data, &["create-user", "LIWEI", "--role", "teacher"], "").await;
    assert!(
        !success && err.contains("already an account liwei"),
        "{err}"
    );
    let (success, _, err) =
        admin_cli(&data, &["create-user", "x y", "--role", "teacher"], "").await;
    assert!(!success && err.contains("username must be"), "{err}");
    let (success, _, err) =
        admin_cli(&data, &["create-user", "zhang", "--role", "janitor"], "").await;
    assert!(!success && err.contains("janitor"), "{err}");
    let (success, _, err) = admin_cli(&data, &["set-password", "liwei"], "short\n").await;
    assert!(!success && err.contains("at least 8"), "{err}");

    let out = ok(admin_cli(&data, &["list-users"], "").await);
    assert!(
        out.contains("liwei") && out.contains("Shizi Village School") && out.contains("Li Wei"),
        "{out}"
    );
    assert!(out.contains("boss") && out.contains("no password"), "{out}");
    let out = ok(admin_cli(&data, &["list-schools"], "").await);
    assert!(
        out.contains("Shizi Village School") && out.contains("Grade 5"),
        "{out}"
    );

    let t = TestServer::start_with(|c| c.data_dir = data.clone()).await;
    assert_eq!(
        t.server.first_signin_token(),
        None,
        "accounts exist already"
    );
    let mut teacher = t.signed_in("liwei", "teacher password").await;
    let mut boss = t.agent();
    let (status, body) = boss
        .call("POST", "/api/auth/once", Some(json!({"token": once})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["role"], "admin");

    // While the server runs: disabling ends the session at once.
    ok(admin_cli(&data, &["disable", "liwei"], "").await);
    let (status, _) = teacher.call("GET", "/api/auth/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    ok(admin_cli(&data, &["enable", "liwei"], "").await);
    let mut teacher = t.signed_in("liwei", "teacher password").await;
    ok(admin_cli(&data, &["set-password", "liwei"], "a newer password\n").await);
    let (status, _) = teacher.call("GET", "/api/auth/me", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "set-password signs out everywhere"
    );
    t.signed_in("liwei", "a newer password").await;

    // A new link from the shell works once.
    let out = ok(admin_cli(&data, &["signin-link", "liwei"], "").await);
    let once = out.trim().rsplit_once("#once=").unwrap().1.to_owned();
    let mut agent = t.agent();
    let (status, _) = agent
        .call("POST", "/api/auth/once", Some(json!({"token": once})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = agent
        .call("POST", "/api/auth/once", Some(json!({"token": once})))
        .await;
    assert_eq!(status, StatusCode::GONE);

    // The last enabled admin stays; with a second one, the first may go.
    let (success, _, err) = admin_cli(&data, &["disable", "boss"], "").await;
    assert!(!success && err.contains("no enabled admin"), "{err}");
    ok(admin_cli(&data, &["create-user", "deputy", "--role", "admin"], "").await);
    ok(admin_cli(&data, &["disable", "boss"], "").await);
    let (status, _) = boss.call("GET", "/api/auth/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (success, _, err) = admin_cli(&data, &["disable", "admin"], "").await;
    assert!(
        !success && err.contains("no account"),
        "no `admin` was ever made: {err}"
    );
    let (_, accounts) = t.call("GET", "/api/accounts", None, true).await;
    assert_eq!(accounts.as_array().unwrap().len(), 3);
    let (success, _, err) = admin_cli(&data, &["enable", "nobody"], "").await;
    assert!(!success && err.contains("no account"), "{err}");
    t.stop().await;
}
