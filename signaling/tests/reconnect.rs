//! Reconnects over real sockets: a participant whose connection drops keeps its id, hand and
//! stage place for the grace and gets them back by joining again with its invite; the others
//! see "reconnecting", never "left then joined". Past the grace it has left; the same invite on
//! a second connection takes the seat over.

mod common;

use std::time::Duration;

use common::{Client, TestServer};
use serde_json::{Value, json};

fn pid(joined: &Value) -> u64 {
    joined["you"]["id"].as_u64().expect("you.id")
}

/// A `famous_teacher` lesson with a teacher and a classroom that is on stage.
async fn on_stage(t: &TestServer) -> (Client, Client, String, u64) {
    let lesson = t.create_lesson("famous_teacher").await;
    let (mut teacher, _) = t.join(&t.invite(lesson, "teacher", "Ms Li").await).await;
    let token = t.invite(lesson, "classroom", "Shizi Grade 5").await;
    let (mut class, joined) = t.join(&token).await;
    let id = pid(&joined);
    class.send(json!({"type": "raise_hand"})).await;
    teacher.recv_type("hand_raised").await;
    teacher
        .send(json!({"type": "invite_to_stage", "participant_id": id}))
        .await;
    class.recv_type("stage_invited").await;
    class.send(json!({"type": "accept_stage", "id": "a"})).await;
    class.recv_type("grants_changed").await;
    teacher.recv_type("stage_changed").await;
    teacher.pending().await;
    (teacher, class, token, id)
}

#[tokio::test]
async fn a_dropped_classroom_comes_back_to_its_stage_place() {
    let t = TestServer::start().await;
    let (mut teacher, class, token, id) = on_stage(&t).await;

    // The network goes: the socket drops without a closing handshake.
    drop(class);
    let m = teacher.recv().await;
    assert_eq!(m["type"], "participant_reconnecting", "{m}");
    assert_eq!(m["participant_id"], id);

    let (mut class, joined) = t.join(&token).await;
    assert_eq!(pid(&joined), id, "the same participant, not a new one");
    assert_eq!(joined["stage"], json!([id]), "{joined}");
    assert!(
        joined["grants"]["publish"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("camera"))),
        "the stage's grants come back: {joined}"
    );
    let m = teacher.recv().await;
    assert_eq!(m["type"], "participant_resumed", "{m}");
    assert_eq!(m["participant"]["id"], id);
    // Nobody was told it left.
    assert!(!teacher.pending().await.contains(&"participant_left".into()));
    class.pending().await;
    t.stop().await;
}

#[tokio::test]
async fn a_page_that_goes_away_keeps_its_place_and_one_that_says_bye_leaves() {
    let t = TestServer::start().await;
    let (mut teacher, mut class, token, id) = on_stage(&t).await;

    // 1001 is what a browser sends when the page unloads or reloads.
    class
        .ws
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 1001.into(),
            reason: "reload".into(),
        }))
        .await
        .expect("close");
    let m = teacher.recv().await;
    assert_eq!(m["type"], "participant_reconnecting", "{m}");

    let (class, joined) = t.join(&token).await;
    assert_eq!(pid(&joined), id);
    teacher.recv_type("participant_resumed").await;

    // A normal close is leaving: the stage place goes with it.
    class.close().await;
    let kinds = [
        teacher.recv().await["type"].clone(),
        teacher.recv().await["type"].clone(),
    ];
    assert!(kinds.contains(&json!("participant_left")), "{kinds:?}");
    assert!(kinds.contains(&json!("stage_changed")), "{kinds:?}");
    t.stop().await;
}

#[tokio::test]
async fn past_the_grace_a_dropped_participant_has_left() {
    let t = TestServer::start_with(|c| c.reconnect_grace = Duration::from_millis(200)).await;
    let (mut teacher, class, token, id) = on_stage(&t).await;
    drop(class);
    assert_eq!(
        teacher.recv().await["type"],
        "participant_reconnecting",
        "first reconnecting"
    );
    let left = teacher.recv_type("participant_left").await;
    assert_eq!(left["participant_id"], id);
    assert_eq!(left["reason"], "vanished");

    // Coming back now is joining afresh: a new id and no stage place.
    let (_class, joined) = t.join(&token).await;
    assert_ne!(pid(&joined), id);
    assert_eq!(joined["stage"], json!([]));
    teacher.recv_type("participant_joined").await;
    t.stop().await;
}

#[tokio::test]
async fn the_same_invite_on_a_second_connection_takes_the_seat_over() {
    let t = TestServer::start().await;
    let (mut teacher, mut class, token, id) = on_stage(&t).await;

    let (mut second, joined) = t.join(&token).await;
    assert_eq!(pid(&joined), id);
    assert_eq!(joined["stage"], json!([id]));
    // The first is told why it was closed, so its page does not fight for the seat.
    assert_eq!(class.closed().await, Some(4409));
    let m = teacher.recv().await;
    assert_eq!(m["type"], "participant_resumed", "{m}");
    // The old connection closing did not take the new one out.
    let seen = teacher.pending().await;
    assert!(!seen.contains(&"participant_left".into()), "{seen:?}");
    assert!(
        !seen.contains(&"participant_reconnecting".into()),
        "{seen:?}"
    );
    second.pending().await;
    t.stop().await;
}
