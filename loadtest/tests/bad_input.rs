//! Bad input and vanishing peers while media flows: every bad message gets its clear `error`,
//! nothing disturbs the media of the others, and a peer that disappears without a goodbye is
//! removed and announced.
//!
//! (Pure WebSocket bad input without media is covered by the signaling crate's own tests.)

mod common;

use std::time::{Duration, Instant};

use common::{FreezeProxy, TestServer, WAIT, has_audio_and_keyframe, highest, wait_advance};
use loadtest::client::{ClientError, SignalingClient};
use loadtest::{PublishConfig, wait_event};
use signaling::lesson::LessonMode;
use signaling::protocol::{ClientMessage, ErrorCode, LeaveReason, Role, ServerMessage};
use signaling::timestamp::Timestamp;
use signaling::token::{Claims, Grants, TokenKeys};

/// The reply to request `id` must be an `error` with `code`.
async fn expect_error(client: &mut SignalingClient, id: &str, code: ErrorCode) {
    match client.reply_to(id, WAIT).await {
        Ok(ServerMessage::Error {
            code: got, message, ..
        }) => {
            println!("{id}: {got:?}: {message}");
            assert_eq!(got, code, "{id}: wrong error code ({message})");
            assert!(!message.is_empty(), "{id}: an error says what is wrong");
        }
        other => panic!("{id}: expected a {code:?} error, got {other:?}"),
    }
}

/// Joining with `token` (naming `lesson` if given) must be refused with `code`.
async fn expect_join_refused(
    server: &TestServer,
    token: &str,
    lesson: Option<i64>,
    code: ErrorCode,
) {
    let mut client = SignalingClient::connect(&server.ws_url(), WAIT)
        .await
        .expect("websocket connects");
    match client.join_lesson(token, lesson, WAIT).await {
        Err(ClientError::Refused { code: got, message }) => {
            println!("join refused: {got:?}: {message}");
            assert_eq!(got, code, "wrong refusal ({message})");
        }
        other => panic!("expected join refused with {code:?}, got {other:?}"),
    }
    // The socket stays usable after a refusal.
    client
        .send(&ClientMessage::Ping {
            id: Some("after".into()),
        })
        .await
        .expect("send ping");
    let pong = client
        .reply_to("after", WAIT)
        .await
        .expect("pong after refusal");
    assert!(matches!(pong, ServerMessage::Pong { .. }), "{pong:?}");
    client.close(WAIT).await;
}

fn token(keys: &TokenKeys, lesson: i64, issued: Timestamp, ttl: u64) -> String {
    let claims = Claims::new_invite(
        lesson,
        Role::Classroom,
        "Made-up classroom".into(),
        Grants::for_role(Role::Classroom, LessonMode::Delivery),
        issued,
        ttl,
    );
    keys.issue(&claims).expect("sign a token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_clear_errors_and_media_keeps_flowing() {
    let server = TestServer::start(Duration::from_secs(10)).await;
    let lesson = server.lesson("Bad input").await;
    let teacher = server.publisher(&lesson, PublishConfig::default()).await;
    let watcher = server.subscriber(&lesson, "Watching classroom").await;
    watcher
        .wait_media(WAIT, "media before the bad input", has_audio_and_keyframe)
        .await
        .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", watcher.tracks()));
    let still_flowing = |step: &'static str| {
        let watcher = &watcher;
        async move {
            let from = highest(watcher);
            wait_advance(watcher, from, 25, step).await;
        }
    };

    // A joined third client sends garbage of every kind on its socket.
    let invite = server
        .invite(&lesson, Role::Classroom, "Noisy classroom")
        .await;
    let mut noisy = SignalingClient::connect(&server.ws_url(), WAIT)
        .await
        .expect("websocket connects");
    noisy.join(&invite.token, WAIT).await.expect("noisy joins");

    noisy.send_raw("{this is not json").await.expect("send");
    // bad_json carries no id (there is no JSON to read one from).
    match noisy
        .recv_until(WAIT, "the bad_json error", |m| {
            matches!(m, ServerMessage::Error { .. })
        })
        .await
    {
        Ok(ServerMessage::Error { code, message, .. }) => {
            println!("malformed JSON: {code:?}: {message}");
            assert_eq!(code, ErrorCode::BadJson);
        }
        other => panic!("expected bad_json, got {other:?}"),
    }
    still_flowing("media after malformed JSON").await;

    noisy
        .send_raw(r#"{"type":"teleport","id":"u1"}"#)
        .await
        .expect("send");
    expect_error(&mut noisy, "u1", ErrorCode::UnknownType).await;
    still_flowing("media after an unknown type").await;

    noisy
        .send_raw(r#"{"type":"offer","id":"s1","sdp":"v=0 this is no session description"}"#)
        .await
        .expect("send");
    expect_error(&mut noisy, "s1", ErrorCode::BadSdp).await;
    still_flowing("media after an unparsable SDP offer").await;

    noisy
        .send_raw(r#"{"type":"publish","id":"p1","mid":"0","source":"radio"}"#)
        .await
        .expect("send");
    expect_error(&mut noisy, "p1", ErrorCode::BadMessage).await;

    // The noisy socket still works.
    noisy
        .send(&ClientMessage::Ping {
            id: Some("alive".into()),
        })
        .await
        .expect("send ping");
    assert!(matches!(
        noisy.reply_to("alive", WAIT).await,
        Ok(ServerMessage::Pong { .. })
    ));

    // Tokens that must be refused before anything else happens, each on a fresh socket.
    // One character of the signature changed (not the last: its low bits may be padding).
    let mut forged: Vec<char> = invite.token.chars().collect();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    expect_join_refused(&server, &forged, None, ErrorCode::InvalidToken).await;
    let stranger = TokenKeys::new(&[7u8; 32]);
    let foreign = token(&stranger, lesson.id, Timestamp::now(), 3600);
    expect_join_refused(&server, &foreign, None, ErrorCode::InvalidToken).await;
    still_flowing("media after forged tokens").await;

    let keys = &server.state().keys;
    let an_hour_ago = Timestamp::from_unix(Timestamp::now().unix() - 3600);
    let expired = token(keys, lesson.id, an_hour_ago, 60);
    expect_join_refused(&server, &expired, None, ErrorCode::TokenExpired).await;
    still_flowing("media after an expired token").await;

    let other = server.lesson("Another lesson").await;
    let other_invite = server.invite(&other, Role::Classroom, "Wrong room").await;
    expect_join_refused(
        &server,
        &other_invite.token,
        Some(lesson.id),
        ErrorCode::WrongLesson,
    )
    .await;
    still_flowing("media after another lesson's token").await;

    let nowhere = token(keys, 987_654, Timestamp::now(), 3600);
    expect_join_refused(&server, &nowhere, None, ErrorCode::NoSuchLesson).await;
    still_flowing("media after an unknown lesson").await;

    let sent = teacher.publisher_stats().unwrap_or_default();
    assert_eq!(sent.write_errors, 0);
    for t in watcher.tracks() {
        assert_eq!(t.corrupted, 0, "{:?} payloads corrupted", t.kind);
    }

    noisy.close(WAIT).await;
    watcher.close().await;
    teacher.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_vanishes_is_removed_and_announced() {
    // A short liveness timeout keeps the test short; the bound below is what the design allows.
    let server = TestServer::start(Duration::from_secs(2)).await;
    let lesson = server.lesson("Vanishing").await;
    let teacher = server.publisher(&lesson, PublishConfig::default()).await;
    let staying = server.subscriber(&lesson, "Staying classroom").await;
    let proxy = FreezeProxy::start(server.http).await;
    let doomed = server
        .subscriber_via(&lesson, "Doomed classroom", proxy.ws_url())
        .await;
    for bot in [&staying, &doomed] {
        bot.wait_media(WAIT, "media before the freeze", has_audio_and_keyframe)
            .await
            .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", bot.tracks()));
    }
    let doomed_id = doomed.you().id;
    let mut teacher_events = teacher.events();
    let mut staying_events = staying.events();

    // The doomed classroom loses its network: its signaling goes silent, no FIN, no RST.
    let frozen_at = Instant::now();
    proxy.freeze();
    let away = |m: &ServerMessage| matches!(m, ServerMessage::ParticipantReconnecting { participant_id } if *participant_id == doomed_id);
    let seen = wait_event(
        &mut teacher_events,
        Duration::from_secs(15),
        "participant_reconnecting for the vanished classroom (teacher)",
        away,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "teacher told it is away after {:?}: {seen:?}",
        frozen_at.elapsed()
    );
    // Past the reconnect grace (1 s here) it has left.
    let left = |m: &ServerMessage| matches!(m, ServerMessage::ParticipantLeft { participant_id, .. } if *participant_id == doomed_id);
    let seen = wait_event(
        &mut teacher_events,
        Duration::from_secs(15),
        "participant_left for the vanished classroom (teacher)",
        left,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    println!("teacher told after {:?}: {seen:?}", frozen_at.elapsed());
    assert!(
        matches!(
            seen,
            ServerMessage::ParticipantLeft {
                reason: LeaveReason::Vanished,
                ..
            }
        ),
        "{seen:?}"
    );
    let seen = wait_event(
        &mut staying_events,
        Duration::from_secs(15),
        "participant_left for the vanished classroom (classroom)",
        left,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    println!("classroom told after {:?}: {seen:?}", frozen_at.elapsed());
    assert!(!teacher.roster().participants.contains_key(&doomed_id));

    // The others carry on.
    let from = highest(&staying);
    wait_advance(&staying, from, 25, "media after the peer vanished").await;

    let closed = tokio::time::timeout(WAIT, doomed.close()).await;
    assert!(closed.is_ok(), "the frozen bot closes in time");
    drop(proxy);
    staying.close().await;
    teacher.close().await;
    server.stop().await;
}
