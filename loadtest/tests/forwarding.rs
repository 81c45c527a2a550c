//! One teacher publishing Opus + VP8 reaches every subscriber through the real server: REST to
//! create the lesson and invites, `/ws` signaling, the real SFU on UDP, real DTLS-SRTP.

mod common;

use std::time::Duration;

use common::{TestServer, WAIT, has_audio_and_keyframe, highest, track, wait_advance};
use loadtest::{Bot, PublishConfig, TrackStats};
use signaling::protocol::{MediaKind, Source};

/// Packets each subscriber must get after its first keyframe before delivery is judged:
/// ~4 s of audio (50/s) and video (~120/s).
const AUDIO_PACKETS: u64 = 200;
const VIDEO_PACKETS: u64 = 480;

fn check_track(who: &str, t: &TrackStats) {
    let delivered = t.delivered().unwrap_or(0.0);
    println!(
        "{who} {:?} mid {}: {} packets, {} unique of {} expected ({:.2} %), {} late, {} duplicate, \
         {} corrupted, {} keyframes, latency p50 {:?} us p99 {:?} us max {} us",
        t.kind,
        t.mid,
        t.packets,
        t.unique,
        t.expected(),
        100.0 * delivered,
        t.late,
        t.duplicates,
        t.corrupted,
        t.keyframes,
        t.latency.quantile(0.5),
        t.latency.quantile(0.99),
        t.latency.max(),
    );
    assert_eq!(
        t.corrupted, 0,
        "{who}: corrupted {:?} payloads ({:?})",
        t.kind, t.last_corruption
    );
    assert!(
        delivered >= 0.95,
        "{who}: only {:.2} % of {:?} delivered",
        100.0 * delivered,
        t.kind
    );
    // Duplicates of video are the SFU's probes of a new link (checked against its count
    // below); audio is never probed.
    if t.kind == MediaKind::Audio {
        assert_eq!(t.duplicates, 0, "{who}: duplicate audio packets");
    }
    // In order: counters only grow. A packet lost on loopback and recovered by NACK arrives
    // late legitimately, so allow a trace of those, never a pattern.
    assert!(
        t.late * 100 <= t.unique,
        "{who}: {} of {} {:?} packets out of order",
        t.late,
        t.unique,
        t.kind
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_reaches_three_subscribers_and_a_late_joiner() {
    let server = TestServer::start(Duration::from_secs(10)).await;
    let lesson = server.lesson("Forwarding").await;
    // No periodic keyframe inside the test's span: every subscriber's first keyframe must come
    // from a keyframe request (the SFU's own, or a subscriber's PLI relayed).
    let config = PublishConfig {
        keyframe_interval: Duration::from_secs(600),
        ..PublishConfig::default()
    };
    let teacher = server.publisher(&lesson, config).await;
    let teacher_id = teacher.you().id;
    let published = teacher.published_tracks();
    assert_eq!(
        published.len(),
        2,
        "audio and video published: {published:?}"
    );

    let (a, b, c) = tokio::join!(
        server.subscriber(&lesson, "Classroom A"),
        server.subscriber(&lesson, "Classroom B"),
        server.subscriber(&lesson, "Classroom C"),
    );
    let subscribers = [a, b, c];
    for sub in &subscribers {
        sub.wait_media(WAIT, "audio and a video keyframe", has_audio_and_keyframe)
            .await
            .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", sub.tracks()));
        let delay = sub
            .tracks()
            .iter()
            .filter_map(|t| t.first_keyframe_at)
            .min()
            .map(|at| at - sub.joined_at);
        println!("{}: join -> first keyframe {delay:?}", sub.name);
    }
    for sub in &subscribers {
        sub.wait_media(WAIT, "a few seconds of media", |t| {
            track(t, MediaKind::Audio).is_some_and(|t| t.unique >= AUDIO_PACKETS)
                && track(t, MediaKind::Video).is_some_and(|t| t.unique >= VIDEO_PACKETS)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", sub.tracks()));
    }

    for sub in &subscribers {
        let tracks = sub.tracks();
        assert_eq!(
            tracks.len(),
            2,
            "{}: one audio and one video track",
            sub.name
        );
        let roster = sub.roster();
        for t in &tracks {
            check_track(&sub.name, t);
            // The mid maps to one of the teacher's publications, of the right kind and source.
            let pub_id = sub
                .subscriber()
                .publication_of(&t.mid)
                .unwrap_or_else(|| panic!("{}: mid {} not in the offer's tracks", sub.name, t.mid));
            let publication = roster
                .publications
                .get(&pub_id)
                .unwrap_or_else(|| panic!("{}: publication {pub_id} unknown", sub.name));
            assert_eq!(publication.participant_id, teacher_id);
            assert_eq!(publication.kind, t.kind);
            let source = match t.kind {
                MediaKind::Audio => Source::Microphone,
                MediaKind::Video => Source::Camera,
            };
            assert_eq!(publication.source, source);
        }
    }

    // A classroom that arrives after several seconds of media still gets a picture.
    let before = teacher.publisher_stats().unwrap_or_default();
    let late = server.subscriber(&lesson, "Classroom D (late)").await;
    late.wait_media(
        Duration::from_secs(10),
        "a keyframe for the late joiner",
        has_audio_and_keyframe,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", late.tracks()));
    let t = late.tracks();
    let first_keyframe = t.iter().filter_map(|t| t.first_keyframe_at).min();
    let first_video = t
        .iter()
        .filter(|t| t.kind == MediaKind::Video)
        .filter_map(|t| t.first_packet_at)
        .min();
    let after = teacher.publisher_stats().unwrap_or_default();
    println!(
        "late joiner: join -> first video packet {:?}, join -> first keyframe {:?}; \
         publisher got {} keyframe requests and sent {} keyframes on request meanwhile",
        first_video.map(|at| at - late.joined_at),
        first_keyframe.map(|at| at - late.joined_at),
        after.keyframe_requests - before.keyframe_requests,
        after.keyframes_on_request - before.keyframes_on_request,
    );
    let from = highest(&late);
    wait_advance(&late, from, 50, "the late joiner's media flowing").await;
    for t in late.tracks() {
        check_track(&late.name, &t);
    }

    // Every duplicate a subscriber saw was a probe: the SFU's count (drained into `/metrics`
    // with each quality report) reaches the duplicates within a report or two.
    let duplicates: u64 = subscribers
        .iter()
        .chain([&late])
        .flat_map(|sub| sub.tracks())
        .map(|t| t.duplicates)
        .sum();
    let deadline = tokio::time::Instant::now() + WAIT;
    let probes = loop {
        let metrics = server.rest.metrics().await.expect("metrics");
        let probes = loadtest::metric_sum(&metrics, "classroom_sfu_probe_packets_total")
            .unwrap_or(0.0) as u64;
        if probes >= duplicates || tokio::time::Instant::now() >= deadline {
            break probes;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("{duplicates} duplicate video packets, {probes} probe packets sent");
    assert!(
        duplicates <= probes,
        "{duplicates} duplicates but only {probes} probe packets"
    );

    let sent = teacher.publisher_stats().unwrap_or_default();
    println!("publisher: {sent:?}");
    assert_eq!(
        sent.write_errors, 0,
        "the publisher's connection refused packets"
    );

    late.close().await;
    for sub in subscribers {
        sub.close().await;
    }
    close(teacher).await;
    server.stop().await;
}

async fn close(bot: Bot) {
    tokio::time::timeout(WAIT, bot.close())
        .await
        .expect("bot closes in time");
}
