//! The link impairment relay: on its own with plain UDP sockets, then in front of a real
//! subscriber bot on a rural link next to a clean one, and lifted mid-test.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, WAIT, has_audio_and_keyframe, highest, track, wait_advance};
use loadtest::impair::RelayStats;
use loadtest::wait_event;
use loadtest::{Bot, BotOptions, LinkProfile, PublishConfig, Relay, TrackStats};
use signaling::protocol::{MediaKind, Role, ServerMessage};
use tokio::net::UdpSocket;

/// Any fixed seed: runs are repeatable up to the timing of real packets.
const SEED: u64 = 2026;

/// Waits for a `quality` report on `bot` whose video round trip satisfies `rtt_ok`; returns
/// that round trip (ms) and the reported loss.
async fn receiving_quality(bot: &Bot, who: &str, rtt_ok: impl Fn(u32) -> bool) -> (u32, f32) {
    let mut events = bot.events();
    let mut last = None;
    let found = wait_event(
        &mut events,
        WAIT,
        &format!("{who}: a quality report"),
        |m| {
            let ServerMessage::Quality { receiving, .. } = m else {
                return false;
            };
            last = Some(receiving.clone());
            receiving
                .iter()
                .any(|q| q.layer.is_some() && q.rtt_ms.is_some_and(&rtt_ok))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; last report {last:?}"));
    let ServerMessage::Quality { receiving, .. } = found else {
        unreachable!("matched above");
    };
    let video = receiving
        .iter()
        .find(|q| q.layer.is_some() && q.rtt_ms.is_some())
        .expect("matched above");
    assert!(video.bitrate_bps > 0, "{who}: {video:?}");
    assert!((0.0..0.5).contains(&video.loss), "{who}: {video:?}");
    (video.rtt_ms.unwrap_or_default(), video.loss)
}

async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("a datagram in time")
        .expect("recv");
    buf.truncate(n);
    (buf, from)
}

#[tokio::test]
async fn relay_forwards_both_ways_for_one_client() {
    let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let server_addr = server.local_addr().expect("address");
    let relay = Relay::start(server_addr, LinkProfile::clean(), SEED)
        .await
        .expect("relay starts");
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    client.connect(relay.local_addr()).await.expect("connect");

    client.send(b"ping").await.expect("send");
    let (got, relay_side) = recv(&server).await;
    assert_eq!(got, b"ping");
    assert_ne!(relay_side, client.local_addr().expect("address"));
    assert_eq!(relay.client(), client.local_addr().ok());

    server.send_to(b"pong", relay_side).await.expect("send");
    let (got, from) = recv(&client).await;
    assert_eq!(got, b"pong");
    assert_eq!(from, relay.local_addr());

    // A second client is not served; the first still is.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    stranger
        .send_to(b"intruder", relay.local_addr())
        .await
        .expect("send");
    client.send(b"again").await.expect("send");
    let (got, _) = recv(&server).await;
    assert_eq!(got, b"again", "the stranger's datagram was forwarded");

    // A profile that loses everything: acknowledged, then applied to what follows.
    relay
        .set_profile(LinkProfile::clean().with_loss_percent(100.0))
        .await
        .expect("profile applied");
    client.send(b"lost").await.expect("send");
    relay
        .wait_stats(WAIT, |s| s.up.lost == 1)
        .await
        .expect("the datagram lost");
    relay
        .set_profile(LinkProfile::clean())
        .await
        .expect("profile applied");
    client.send(b"through").await.expect("send");
    let (got, _) = recv(&server).await;
    assert_eq!(got, b"through");

    let stats = relay.stats();
    println!("{stats:?}");
    assert_eq!(stats.strangers, 1);
    assert_eq!(stats.up.lost, 1);
    assert_eq!(stats.up.delivered, 3);
    assert_eq!(stats.down.delivered, 1);
    relay.stop().await;
}

fn describe(who: &str, t: &TrackStats) {
    println!(
        "{who} {:?}: {} unique of {} expected ({:.1} %), {} late, latency p50 {:.1} ms p99 {:.1} ms",
        t.kind,
        t.unique,
        t.expected(),
        100.0 * t.delivered().unwrap_or(0.0),
        t.late,
        t.latency.quantile(0.5).unwrap_or(0) as f64 / 1000.0,
        t.latency.quantile(0.99).unwrap_or(0) as f64 / 1000.0,
    );
}

fn describe_relay(when: &str, s: &RelayStats) {
    println!(
        "relay {when}: down {} in, {} out, {} lost, {} queue drops; up {} in, {} out, {} lost",
        s.down.received,
        s.down.delivered,
        s.down.lost,
        s.down.queue_dropped,
        s.up.received,
        s.up.delivered,
        s.up.lost,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rural_subscriber_still_receives_and_recovers_when_lifted() {
    let server = TestServer::start(Duration::from_secs(10)).await;
    let media = server.server.as_ref().expect("server running").media_addr();
    let lesson = server.lesson("Rural").await;
    // A stream sized for a rural link (~450 kbit/s with audio and headers, under its 600):
    // what reaches the impaired subscriber is shaped by loss and delay, not mostly queue drops.
    let config = PublishConfig {
        video_bitrate_bps: 400_000,
        ..PublishConfig::default()
    };
    let teacher = server.publisher(&lesson, config).await;

    let relay = Relay::start(media, LinkProfile::rural(), SEED)
        .await
        .expect("relay starts");
    let invite = server.invite(&lesson, Role::Classroom, "Rural").await;
    let (clean, rural) = tokio::join!(server.subscriber(&lesson, "Clean"), async {
        let options =
            BotOptions::new("rural", server.ws_url(), invite.token).via_relay(relay.local_addr());
        Bot::join(options).await.expect("rural subscriber joins")
    });

    for sub in [&clean, &rural] {
        sub.wait_media(WAIT, "audio and a video keyframe", has_audio_and_keyframe)
            .await
            .unwrap_or_else(|e| panic!("{e}; tracks: {:#?}", sub.tracks()));
    }
    // A few seconds of media, and at least one datagram the link dropped (2 % of ~100/s).
    rural
        .wait_media(WAIT, "3 s of audio and a drop on the link", |t| {
            track(t, MediaKind::Audio).is_some_and(|t| t.unique >= 150)
                && relay.stats().down.dropped() > 0
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; relay {:?}", relay.stats()));

    for (sub, who) in [(&clean, "clean"), (&rural, "rural")] {
        let tracks = sub.tracks();
        for t in &tracks {
            describe(who, t);
            assert_eq!(t.corrupted, 0, "{who}: corrupted {:?} payloads", t.kind);
        }
        assert!(
            track(&tracks.iter().collect::<Vec<_>>(), MediaKind::Video)
                .is_some_and(|t| t.unique > 0),
            "{who}: no video"
        );
    }
    // Each side hears how its streams fare: the rural one's round trip carries the link's
    // 2 × 75 ms, the clean one's does not; the teacher's report covers what it publishes.
    let (rural_rtt, rural_loss) = receiving_quality(&rural, "rural", |rtt| rtt >= 120).await;
    let (clean_rtt, _) = receiving_quality(&clean, "clean", |rtt| rtt < 100).await;
    println!("quality: rural rtt {rural_rtt} ms (loss {rural_loss:.3}), clean rtt {clean_rtt} ms");
    assert!(rural_rtt < 1000, "rural rtt {rural_rtt} ms");
    let mut teacher_events = teacher.events();
    let published = wait_event(&mut teacher_events, WAIT, "the teacher's quality", |m| {
        matches!(m, ServerMessage::Quality { publishing, .. }
            if publishing.iter().any(|q| q.layer.is_some() && q.bitrate_bps > 100_000))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    println!("teacher: {published:?}");

    let impaired = relay.stats();
    describe_relay("while rural", &impaired);
    assert!(
        impaired.client.is_some(),
        "the rural bot's media went through the relay"
    );
    assert!(impaired.down.delivered > 0);
    assert!(impaired.up.delivered > 0);
    assert!(impaired.dropped() > 0);

    // Lift the impairment: nothing more is dropped and media keeps flowing.
    relay
        .set_profile(LinkProfile::clean())
        .await
        .expect("profile applied");
    let lifted = relay.stats();
    let from = highest(&rural);
    wait_advance(&rural, from, 100, "media after the link is lifted").await;
    let after = relay.stats();
    describe_relay("after lifting", &after);
    assert_eq!(after.dropped(), lifted.dropped(), "drops after lifting");
    assert!(after.down.delivered > lifted.down.delivered);
    for t in rural.tracks() {
        describe("rural, lifted", &t);
    }

    for bot in [rural, clean, teacher] {
        tokio::time::timeout(WAIT, bot.close())
            .await
            .expect("bot closes in time");
    }
    relay.stop().await;
    server.stop().await;
}
