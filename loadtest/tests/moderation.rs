//! A moderator mutes a publisher's microphone with real media flowing: the SFU stops
//! forwarding it to every subscriber at once while its camera keeps flowing, and unmuting
//! resumes it. REST for the lesson and invites, `/ws` signaling, the real SFU on UDP.

mod common;

use std::time::Duration;

use common::{TestServer, WAIT, has_audio_and_keyframe, highest};
use loadtest::{Bot, BotOptions, PublishConfig, wait_event};
use signaling::protocol::{ClientMessage, Role, ServerMessage, Source};

/// How long audio must stay flat after `muted`, and the grace before that for packets the
/// SFU had already sent (loopback delivers them in well under this).
const FLAT_FOR: Duration = Duration::from_secs(1);
const IN_FLIGHT: Duration = Duration::from_millis(300);

/// Sends `mute` or `unmute` for `target`'s microphone and waits until `watcher` hears of it.
async fn set_mic(moderator: &Bot, watcher: &Bot, target: u64, muted: bool) {
    let mut events = watcher.events();
    let message = if muted {
        ClientMessage::Mute {
            id: Some("m".into()),
            participant_id: target,
            source: Source::Microphone,
        }
    } else {
        ClientMessage::Unmute {
            id: Some("m".into()),
            participant_id: target,
            source: Source::Microphone,
        }
    };
    moderator.signal().send(&message).await.expect("sent");
    let heard = wait_event(
        &mut events,
        WAIT,
        "muted",
        |m| matches!(m, ServerMessage::Muted { muted: mm, .. } if *mm == muted),
    )
    .await
    .expect("the subscriber hears of it");
    assert!(
        matches!(
            heard,
            ServerMessage::Muted {
                participant_id,
                source: Source::Microphone,
                by,
                ..
            } if participant_id == target && by == moderator.you().id
        ),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_microphone_stops_for_everyone_until_unmuted() {
    let server = TestServer::start(Duration::from_secs(10)).await;
    let lesson = server.lesson("Moderation").await;
    let teacher = server.publisher(&lesson, PublishConfig::default()).await;
    let teacher_id = teacher.you().id;
    let class = server.subscriber(&lesson, "Classroom").await;
    let invite = server.invite(&lesson, Role::Assistant, "Assistant").await;
    let assistant = Bot::join(BotOptions::new("assistant", server.ws_url(), invite.token))
        .await
        .expect("the assistant joins");

    class
        .wait_media(WAIT, "audio and a keyframe", has_audio_and_keyframe)
        .await
        .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", class.tracks()));

    // A classroom may not mute the teacher.
    let mut events = class.events();
    class
        .signal()
        .send(&ClientMessage::Mute {
            id: Some("x".into()),
            participant_id: teacher_id,
            source: Source::Microphone,
        })
        .await
        .expect("sent");
    let refused = wait_event(&mut events, WAIT, "forbidden", |m| {
        matches!(m, ServerMessage::Error { .. })
    })
    .await
    .expect("refused");
    assert!(
        matches!(&refused, ServerMessage::Error { code, .. } if code.as_str() == "forbidden"),
        "{refused:?}"
    );

    set_mic(&assistant, &class, teacher_id, true).await;
    tokio::time::sleep(IN_FLIGHT).await;
    let (audio_at, video_at) = highest(&class);
    tokio::time::sleep(FLAT_FOR).await;
    let (audio_after, video_after) = highest(&class);
    assert_eq!(
        audio_after,
        audio_at,
        "audio advanced while muted; tracks: {:#?}",
        class.tracks()
    );
    assert!(
        video_after > video_at + 10,
        "video kept flowing: {video_at} → {video_after}"
    );

    set_mic(&assistant, &class, teacher_id, false).await;
    class
        .wait_media(WAIT, "audio again", |t| {
            common::track(t, signaling::protocol::MediaKind::Audio)
                .and_then(|t| t.highest_counter)
                .is_some_and(|h| h >= audio_after + 25)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", class.tracks()));

    assistant.close().await;
    class.close().await;
    teacher.close().await;
    server.stop().await;
}
