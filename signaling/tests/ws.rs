//! WebSocket signaling against a real server on 127.0.0.1 with OS-chosen ports.

mod common;

use std::time::Duration;

use common::{TestServer, WAIT};
use serde_json::json;
use signaling::domain::timestamp::Timestamp;
use signaling::protocol::Role;
use signaling::token::{Claims, Grants, TokenKeys};

#[tokio::test]
async fn bad_frames_are_answered_and_the_socket_goes_on() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;

    c.send_text("{not json").await;
    let e = c.recv().await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["code"], "bad_json");

    c.send(json!({"type": "dance", "id": "7"})).await;
    let e = c.recv().await;
    assert_eq!(e["code"], "unknown_type");
    assert_eq!(e["id"], "7");

    c.send(json!({"type": "offer", "id": "8"})).await;
    let e = c.recv().await;
    assert_eq!(e["code"], "bad_message");
    assert_eq!(e["id"], "8");

    c.send(json!({"type": "publish", "id": "9", "mid": "0", "source": "camera"}))
        .await;
    let e = c.recv().await;
    assert_eq!(e["code"], "not_joined");
    assert_eq!(e["id"], "9");

    c.send(json!({"type": "ping", "id": "p"})).await;
    assert_eq!(c.recv().await, json!({"type": "pong", "id": "p"}));
    t.stop().await;
}

#[tokio::test]
async fn refused_tokens_get_their_codes() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let other = t.create_lesson("delivery").await;
    let keys = &t.server.state().keys;
    let claims = |lesson: i64, now: Timestamp, ttl: u64| {
        Claims::new_invite(
            lesson,
            Role::Classroom,
            "A".into(),
            Grants::for_role(
                Role::Classroom,
                signaling::domain::lesson::LessonMode::Delivery,
            ),
            now,
            ttl,
        )
    };

    let forged = TokenKeys::new(&[1; 32])
        .issue(&claims(lesson, Timestamp::now(), 3600))
        .unwrap();
    let long_ago = Timestamp::from_unix(Timestamp::now().unix() - 7200);
    let expired = keys.issue(&claims(lesson, long_ago, 3600)).unwrap();
    let good = t.invite(lesson, "classroom", "A").await;
    let missing = keys.issue(&claims(999, Timestamp::now(), 3600)).unwrap();

    let cases = [
        (
            json!({"type": "join", "id": "1", "token": "garbage"}),
            "invalid_token",
        ),
        (
            json!({"type": "join", "id": "1", "token": forged}),
            "invalid_token",
        ),
        (
            json!({"type": "join", "id": "1", "token": expired}),
            "token_expired",
        ),
        (
            json!({"type": "join", "id": "1", "token": good, "lesson": other}),
            "wrong_lesson",
        ),
        (
            json!({"type": "join", "id": "1", "token": missing}),
            "no_such_lesson",
        ),
    ];
    for (join, code) in cases {
        let mut c = t.connect().await;
        c.send(join).await;
        let e = c.recv().await;
        assert_eq!(e["type"], "error");
        assert_eq!(e["code"], code, "{e}");
        assert_eq!(e["id"], "1");
        // Refused, not joined.
        c.send(json!({"type": "unpublish", "mid": "0"})).await;
        assert_eq!(c.recv().await["code"], "not_joined");
    }

    let (status, _) = t
        .call("POST", &format!("/api/lessons/{lesson}/end"), None, true)
        .await;
    assert_eq!(status, 200);
    let mut c = t.connect().await;
    c.send(json!({"type": "join", "token": good})).await;
    assert_eq!(c.recv().await["code"], "lesson_ended");
    t.stop().await;
}

#[tokio::test]
async fn participants_see_each_other_come_and_go() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let teacher_token = t.invite(lesson, "teacher", "Ms Li").await;
    let class_token = t.invite(lesson, "classroom", "Shizi Village").await;

    let (mut teacher, joined) = t.join(&teacher_token).await;
    assert_eq!(joined["id"], "j");
    assert_eq!(joined["participants"], json!([]));
    assert_eq!(joined["you"]["role"], "teacher");
    assert_eq!(
        joined["lesson"]["state"], "live",
        "the teacher opens the lesson"
    );
    let teacher_id = joined["you"]["id"].as_u64().unwrap();

    let (mut class, joined) = t.join(&class_token).await;
    let others = joined["participants"].as_array().unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["id"], teacher_id);
    assert_eq!(others[0]["name"], "Ms Li");
    let class_id = joined["you"]["id"].as_u64().unwrap();
    assert_ne!(class_id, teacher_id);

    let seen = teacher.recv_type("participant_joined").await;
    assert_eq!(seen["participant"]["id"], class_id);
    assert_eq!(seen["participant"]["name"], "Shizi Village");
    assert_eq!(seen["participant"]["role"], "classroom");

    let (_, shown) = t
        .call("GET", &format!("/api/lessons/{lesson}"), None, true)
        .await;
    assert_eq!(shown["state"], "live");
    assert_eq!(shown["participants"].as_array().unwrap().len(), 2);

    class
        .send(json!({"type": "join", "id": "again", "token": class_token}))
        .await;
    let e = class.recv_type("error").await;
    assert_eq!(e["code"], "already_joined");
    assert_eq!(e["id"], "again");

    class.close().await;
    let left = teacher.recv_type("participant_left").await;
    assert_eq!(left["participant_id"], class_id);
    assert_eq!(left["reason"], "left");
    t.stop().await;
}

#[tokio::test]
async fn a_silent_participant_vanishes() {
    let t = TestServer::start_with(|c| {
        c.liveness_timeout = Duration::from_millis(1500);
        c.reconnect_grace = Duration::from_millis(300);
    })
    .await;
    let lesson = t.create_lesson("delivery").await;
    let (mut teacher, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    // This client is never read again, so it never answers the server's pings.
    let (silent, joined) = t.join(&t.invite(lesson, "classroom", "C").await).await;
    let silent_id = joined["you"]["id"].as_u64().unwrap();

    // The teacher keeps answering pings because `recv` reads (and so pongs) continuously.
    // First it is away (it may come back), then, past the grace, gone.
    let away = teacher.recv_type("participant_reconnecting").await;
    assert_eq!(away["participant_id"], silent_id);
    let left = teacher.recv_type("participant_left").await;
    assert_eq!(left["participant_id"], silent_id);
    assert_eq!(left["reason"], "vanished");
    drop(silent);
    t.stop().await;
}

#[tokio::test]
async fn ending_the_lesson_tells_everyone_and_closes() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("network").await;
    let (mut a, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let (mut b, _) = t.join(&t.invite(lesson, "student", "S").await).await;
    a.recv_type("participant_joined").await;

    let (status, _) = t
        .call("POST", &format!("/api/lessons/{lesson}/end"), None, true)
        .await;
    assert_eq!(status, 200);
    for c in [&mut a, &mut b] {
        let m = c.recv_type("lesson_ended").await;
        assert_eq!(m["lesson_id"], lesson);
        assert_eq!(c.closed().await, Some(1000));
    }
    let (_, shown) = t
        .call("GET", &format!("/api/lessons/{lesson}"), None, true)
        .await;
    assert_eq!(shown["participants"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn publishing_an_ungranted_source_is_forbidden() {
    let t = TestServer::start().await;
    // In a famous-teacher lesson a classroom publishes only on stage.
    let lesson = t.create_lesson("famous_teacher").await;
    let (mut c, _) = t.join(&t.invite(lesson, "classroom", "C").await).await;
    c.send(json!({"type": "publish", "mid": "0", "source": "camera"}))
        .await;
    c.send(json!({"type": "offer", "id": "o", "sdp": "v=0\r\n"}))
        .await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], "forbidden", "{e}");
    assert_eq!(e["id"], "o");
    // The socket goes on.
    c.send(json!({"type": "ping", "id": "p"})).await;
    assert_eq!(c.recv_type("pong").await["id"], "p");
    t.stop().await;
}

/// Needs the real media plane: the placeholder SFU refuses every request.
#[tokio::test]
async fn garbage_sdp_is_bad_sdp() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut c, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    c.send(json!({"type": "publish", "mid": "0", "source": "camera"}))
        .await;
    c.send(json!({"type": "offer", "id": "o", "sdp": "this is not SDP"}))
        .await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], "bad_sdp", "{e}");
    assert_eq!(e["id"], "o");
    c.send(json!({"type": "candidate", "candidate": {"candidate": "x"}}))
        .await;
    c.send(json!({"type": "ping", "id": "p"})).await;
    assert_eq!(c.recv_type("pong").await["id"], "p");
    t.stop().await;
}

#[tokio::test]
async fn set_subscription_names_a_publication_it_receives() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut c, _) = t.join(&t.invite(lesson, "classroom", "Room").await).await;
    c.send(
        json!({"type": "set_subscription", "id": "s", "publication_id": 999, "max_layer": "low"}),
    )
    .await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], "not_found", "{e}");
    assert_eq!(e["id"], "s");
    c.send(
        json!({"type": "set_subscription", "id": "b", "publication_id": 1, "max_layer": "ultra"}),
    )
    .await;
    assert_eq!(c.recv_type("error").await["code"], "bad_message");
    t.stop().await;
}

#[tokio::test]
async fn floods_are_rate_limited() {
    let t = TestServer::start_with(|c| c.messages_per_second = 5).await;
    let mut c = t.connect().await;
    for i in 0..30 {
        c.send(json!({"type": "ping", "id": i.to_string()})).await;
    }
    let e = tokio::time::timeout(WAIT, c.recv_type("error"))
        .await
        .expect("rate limit error");
    assert_eq!(e["code"], "rate_limited");
    t.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sockets() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut c, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let stop = tokio::spawn(t.stop());
    assert_eq!(c.closed().await, Some(1001));
    tokio::time::timeout(WAIT, stop).await.unwrap().unwrap();
}
