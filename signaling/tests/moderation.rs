//! Moderation over the WebSocket: muting, removing a participant, ending the lesson. A real
//! server on 127.0.0.1; no media flows, so muting a real publication is tested with media in
//! `loadtest/tests/moderation.rs`.

mod common;

use common::{Client, TestServer};
use serde_json::{Value, json};

fn pid(joined: &Value) -> u64 {
    joined["you"]["id"].as_u64().expect("you.id")
}

/// Sends `message` with `id: "x"`; it must be refused with `code`.
async fn refused(c: &mut Client, mut message: Value, code: &str) {
    message["id"] = json!("x");
    c.send(message.clone()).await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], code, "{message} → {e}");
    assert_eq!(e["id"], "x", "{e}");
}

#[tokio::test]
async fn only_moderators_mute_remove_or_end() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut teacher, tj) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let (mut class, cj) = t.join(&t.invite(lesson, "classroom", "C").await).await;
    let (mut student, _) = t.join(&t.invite(lesson, "student", "S").await).await;
    let teacher_id = pid(&tj);
    let class_id = pid(&cj);

    for who in [&mut class, &mut student] {
        let mute = json!({"type": "mute", "participant_id": teacher_id, "source": "microphone"});
        refused(who, mute, "forbidden").await;
        let unmute = json!({"type": "unmute", "participant_id": teacher_id, "source": "camera"});
        refused(who, unmute, "forbidden").await;
        let remove = json!({"type": "remove", "participant_id": teacher_id});
        refused(who, remove, "forbidden").await;
        refused(who, json!({"type": "end_lesson"}), "forbidden").await;
    }
    // Nothing happened: nobody left, nothing was muted, the lesson goes on.
    let seen = teacher.pending().await;
    assert!(
        seen.iter().all(|k| k == "participant_joined"),
        "the teacher saw {seen:?}"
    );
    assert!(class.pending().await.iter().all(|k| k != "muted"));
    let (status, body) = t
        .call("GET", &format!("/api/lessons/{lesson}"), None, true)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "live", "{body}");

    // A moderator is told what does not exist, and may not remove itself.
    let mute = json!({"type": "mute", "participant_id": class_id, "source": "microphone"});
    refused(&mut teacher, mute, "not_found").await;
    let mute = json!({"type": "mute", "participant_id": 999_999, "source": "camera"});
    refused(&mut teacher, mute, "not_found").await;
    let remove = json!({"type": "remove", "participant_id": 999_999});
    refused(&mut teacher, remove, "not_found").await;
    let remove = json!({"type": "remove", "participant_id": teacher_id});
    refused(&mut teacher, remove, "conflict").await;
    t.stop().await;
}

#[tokio::test]
async fn a_removed_classroom_is_closed_and_may_not_rejoin() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut teacher, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let class_token = t.invite(lesson, "classroom", "C").await;
    let (mut class, cj) = t.join(&class_token).await;
    let (mut student, _) = t.join(&t.invite(lesson, "student", "S").await).await;
    let class_id = pid(&cj);
    teacher.pending().await;
    class.pending().await;

    teacher
        .send(json!({"type": "remove", "id": "r", "participant_id": class_id}))
        .await;
    assert_eq!(class.recv_type("removed").await["type"], "removed");
    assert_eq!(class.closed().await, Some(1008));
    for other in [&mut teacher, &mut student] {
        let left = other.recv_type("participant_left").await;
        assert_eq!(left["participant_id"], class_id, "{left}");
        assert_eq!(left["reason"], "removed", "{left}");
    }

    // The same invite is refused on a new socket; the store has it, so a restart keeps it.
    let mut again = t.connect().await;
    again
        .send(json!({"type": "join", "id": "j", "token": class_token}))
        .await;
    let e = again.recv_type("error").await;
    assert_eq!(e["code"], "removed", "{e}");
    assert_eq!(e["id"], "j", "{e}");
    let state = t.server.state();
    let sub = state.keys.verify(&class_token, None).unwrap().sub;
    let removed = state.store.is_removed(lesson, &sub).await.unwrap();
    assert!(removed, "the removal is stored");

    // Other invites of the same role still join.
    let (other, _) = t.join(&t.invite(lesson, "classroom", "C2").await).await;
    other.close().await;
    t.stop().await;
}

#[tokio::test]
async fn a_moderator_ends_the_lesson_over_the_socket() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut teacher, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let (mut assistant, _) = t.join(&t.invite(lesson, "assistant", "A").await).await;
    let (mut class, _) = t.join(&t.invite(lesson, "classroom", "C").await).await;

    assistant
        .send(json!({"type": "end_lesson", "id": "e"}))
        .await;
    for c in [&mut teacher, &mut assistant, &mut class] {
        let ended = c.recv_type("lesson_ended").await;
        assert_eq!(ended["lesson_id"], lesson, "{ended}");
        assert_eq!(c.closed().await, Some(1000));
    }
    let (status, body) = t
        .call("GET", &format!("/api/lessons/{lesson}"), None, true)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "ended", "{body}");
    t.stop().await;
}

#[tokio::test]
async fn a_removal_survives_a_restart() {
    let t = TestServer::start().await;
    let lesson = t.create_lesson("delivery").await;
    let (mut teacher, _) = t.join(&t.invite(lesson, "teacher", "T").await).await;
    let student_token = t.invite(lesson, "student", "S").await;
    let (mut student, sj) = t.join(&student_token).await;
    teacher
        .send(json!({"type": "remove", "participant_id": pid(&sj)}))
        .await;
    student.recv_type("removed").await;
    teacher.close().await;
    let data_dir = t.dir.path().join("data");
    tokio::time::timeout(common::WAIT, t.server.shutdown())
        .await
        .expect("shutdown timed out");

    let again = TestServer::start_with(|c| c.data_dir = data_dir).await;
    let mut c = again.connect().await;
    c.send(json!({"type": "join", "id": "j", "token": student_token}))
        .await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], "removed", "{e}");
    again.stop().await;
    drop(t.dir);
}
