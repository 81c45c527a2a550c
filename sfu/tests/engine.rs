//! The shard's engine with real `rtc` peer connections on a virtual network (see
//! `engine/harness.rs`): join and negotiation, forwarding with rewriting, a late joiner's
//! keyframe, a subscriber leaving mid-stream, the start estimate. Virtual time only: each test
//! runs seconds of a lesson in milliseconds, and nothing sleeps.

#[path = "engine/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{World, starts_keyframe};
use rtc::peer_connection::state::RTCPeerConnectionState;
use sfu::{PeerLeg, PeerState, SfuEvent, Source};
use std::sync::atomic::Ordering;

const SECOND: Duration = Duration::from_secs(1);

/// A teacher who publishes a camera and a student who receives it, both connected.
fn teacher_and_student(keyframe_every: u64) -> (World, usize, usize) {
    let mut world = World::new();
    let teacher = world.join(1);
    world.publish_camera(teacher, keyframe_every);
    let student = world.join(2);
    // The teacher's own subscriber leg has nothing to receive, so it is never offered.
    let legs = [
        world.members[teacher].publisher.expect("teacher publishes"),
        world.members[student].subscriber,
    ];
    let connected = world.run_until(5 * SECOND, |w| {
        legs.iter()
            .all(|&c| w.clients[c].state == RTCPeerConnectionState::Connected)
    });
    assert!(
        connected,
        "every connection comes up within 5 s of virtual time"
    );
    (world, teacher, student)
}

fn publication_of(world: &World, member: usize) -> sfu::PublicationId {
    world.members[member]
        .seen
        .iter()
        .find_map(|e| match e {
            SfuEvent::PublicationStarted { publication, .. } => Some(*publication),
            _ => None,
        })
        .expect("the publisher was told its publication started")
}

#[test]
fn a_publisher_and_a_subscriber_negotiate_through_the_engine() {
    let (mut world, teacher, student) = teacher_and_student(30);
    world.run_for(SECOND);

    // The publisher's offer was answered, its leg connected, and its camera became a publication.
    let publication = publication_of(&world, teacher);
    let started = world.members[teacher].seen.iter().find_map(|e| match e {
        SfuEvent::PublicationStarted { source, kind, .. } => Some((*source, *kind)),
        _ => None,
    });
    assert_eq!(started, Some((Source::Camera, sfu::MediaKind::Video)));
    assert!(
        world.members[teacher]
            .seen
            .contains(&SfuEvent::PeerStateChanged {
                leg: PeerLeg::Publisher,
                state: PeerState::Connected,
            })
    );

    // The student was offered exactly the teacher's camera, answered, and connected.
    let offered: Vec<_> = world.members[student]
        .seen
        .iter()
        .filter_map(|e| match e {
            SfuEvent::SubscriberOffer { tracks, .. } => Some(tracks.clone()),
            _ => None,
        })
        .collect();
    assert!(!offered.is_empty(), "the student got an offer");
    assert!(
        offered
            .iter()
            .any(|tracks| tracks.len() == 1 && tracks[0].publication == publication),
        "an offer carried the teacher's camera: {offered:?}"
    );
    assert_eq!(
        world.members[student].answers,
        offered.len(),
        "every offer answered"
    );
    assert!(
        world.members[student]
            .seen
            .contains(&SfuEvent::PeerStateChanged {
                leg: PeerLeg::Subscriber,
                state: PeerState::Connected,
            })
    );
    assert_eq!(world.stats().participants.load(Ordering::Relaxed), 2);
    assert_eq!(world.stats().peer_connections.load(Ordering::Relaxed), 3);
}

#[test]
fn forwarded_video_is_rewritten_onto_the_subscribers_own_stream() {
    let (mut world, teacher, student) = teacher_and_student(30);
    world.run_for(3 * SECOND);

    let publisher = world.members[teacher].publisher.expect("teacher publishes");
    let camera_ssrc = world.clients[publisher].camera.as_ref().map(|c| c.ssrc);
    let received = &world.clients[world.members[student].subscriber].received;
    assert!(
        received.len() > 100,
        "3 s of video reached the student: {} packets",
        received.len()
    );
    // One stream, on an SSRC of the student's leg rather than the camera's.
    let ssrc = received[0].1.header.ssrc;
    assert!(received.iter().all(|(_, p)| p.header.ssrc == ssrc));
    assert_ne!(Some(ssrc), camera_ssrc);
    // It starts on a keyframe, and its sequence numbers run on without a gap.
    assert!(starts_keyframe(&received[0].1.payload));
    for pair in received.windows(2) {
        let (a, b) = (&pair[0].1.header, &pair[1].1.header);
        assert_eq!(b.sequence_number, a.sequence_number.wrapping_add(1));
        assert!(b.timestamp.wrapping_sub(a.timestamp) < 90_000);
    }
    assert_eq!(world.stats().forward_errors.load(Ordering::Relaxed), 0);
}

#[test]
fn a_late_joiner_gets_a_keyframe_from_the_publisher() {
    // Keyframes only when asked (after the first), as an encoder left alone would.
    let (mut world, teacher, _student) = teacher_and_student(u64::MAX);
    world.run_for(4 * SECOND);
    let publisher = world.members[teacher].publisher.expect("teacher publishes");
    let asked_before = world.clients[publisher].keyframe_requests.len();
    let joined_at = world.now;

    let late = world.join(3);
    let late_client = world.members[late].subscriber;
    let got_video = world.run_until(5 * SECOND, |w| w.clients[late_client].received.len() > 10);
    assert!(got_video, "the late joiner receives video");

    let requests = &world.clients[publisher].keyframe_requests;
    assert!(
        requests.len() > asked_before && requests.iter().any(|&at| at > joined_at),
        "a keyframe request reached the publisher after the late join"
    );
    let received = &world.clients[late_client].received;
    assert!(
        starts_keyframe(&received[0].1.payload),
        "the late joiner's stream starts on a keyframe"
    );
    // Well within a second of its leg connecting, not at some later scheduled keyframe.
    assert!(received[0].0 - joined_at < 2 * SECOND);
}

#[test]
fn a_subscriber_leaving_mid_stream_stops_only_its_own_forwarding() {
    let (mut world, teacher, student) = teacher_and_student(30);
    let other = world.join(3);
    let other_client = world.members[other].subscriber;
    let ok = world.run_until(5 * SECOND, |w| w.clients[other_client].received.len() > 30);
    assert!(ok, "the second student receives video");
    world.run_for(SECOND);

    let student_client = world.members[student].subscriber;
    let before = world.clients[student_client].received.len();
    world.leave(student);
    let left_at = world.now;
    world.run_for(2 * SECOND);

    // Nothing sent to the leaver after it left (what was on the wire may still land).
    let late = world.clients[student_client]
        .received
        .iter()
        .filter(|(at, _)| *at > left_at + Duration::from_millis(100))
        .count();
    assert_eq!(late, 0, "no packet forwarded to the leaver");
    assert!(world.clients[student_client].received.len() >= before);

    // The other student's stream runs on, continuous.
    let received = &world.clients[other_client].received;
    let after: Vec<_> = received.iter().filter(|(at, _)| *at > left_at).collect();
    assert!(after.len() > 100, "the other student still receives");
    for pair in received.windows(2) {
        assert_eq!(
            pair[1].1.header.sequence_number,
            pair[0].1.header.sequence_number.wrapping_add(1)
        );
    }
    assert_eq!(world.stats().participants.load(Ordering::Relaxed), 2);
    assert_eq!(world.stats().peer_connections.load(Ordering::Relaxed), 3);
    let _ = teacher;
}

#[test]
fn a_new_link_starts_at_the_start_estimate_until_it_is_first_measured() {
    let mut world = World::new();
    let teacher = world.join(1);
    world.publish_camera(teacher, 30);
    let student = world.join(2);
    let id = world.members[student].id;
    assert_eq!(world.engine.downlink_estimate(id), Some(Some(300_000)));

    // A 2 Mbit/s downlink: keyframes are trains the link meter reads it from.
    world.clients[world.members[student].subscriber]
        .down
        .cap_bps = Some(2_000_000);
    world.run_for(SECOND);
    let measured = world.run_until(12 * SECOND, |w| {
        w.engine.downlink_estimate(id) != Some(Some(300_000))
    });
    assert!(
        measured,
        "the link's first estimate replaced the start estimate"
    );
    let estimate = world.engine.downlink_estimate(id).flatten();
    // The capacity less headroom (0.85 × 2 Mbit/s), or nothing limiting if the trains were
    // too short to find the cap; never the start estimate again.
    assert!(
        estimate.is_none_or(|bps| (1_000_000..=2_000_000).contains(&bps)),
        "{estimate:?}"
    );
}

#[test]
fn a_lost_packet_is_resent_at_most_once_per_round_trip() {
    let (mut world, _teacher, student) = teacher_and_student(30);
    // A long, lossy downlink: 120 ms each way, every 25th datagram lost. The student's NACK
    // generator asks again every 100 ms, two or three times per round trip.
    let client = world.members[student].subscriber;
    world.clients[client].down.delay = Duration::from_millis(120);
    world.clients[client].up.delay = Duration::from_millis(120);
    world.run_for(2 * SECOND);
    world.clients[client].down.lose_every = Some(25);
    let resent_before = world.stats().retransmissions.load(Ordering::Relaxed);
    let dropped_before = world.clients[client].down.dropped;
    world.run_for(10 * SECOND);
    // Quality reports drain the link counters every 2 s.
    world.run_for(2 * SECOND);
    world.clients[client].down.lose_every = None;

    let resent = world.stats().retransmissions.load(Ordering::Relaxed) - resent_before;
    let struck = world
        .stats()
        .retransmissions_suppressed
        .load(Ordering::Relaxed);
    let dropped = world.clients[client].down.dropped - dropped_before;
    assert!(dropped > 20, "the link lost packets: {dropped}");
    assert!(resent > 0, "lost packets were resent");
    assert!(
        struck > 0,
        "repeated requests within a round trip were struck: {resent} resent, {dropped} lost"
    );
    // At most one resend per round trip: a loss costs one resend, or two where the request
    // repeated a round trip later had crossed the first resend on the way (NACKs every 100 ms
    // over a 240 ms round trip would otherwise get each lost packet three times).
    assert!(
        resent <= 2 * dropped,
        "{resent} resends for {dropped} datagrams lost"
    );
}
