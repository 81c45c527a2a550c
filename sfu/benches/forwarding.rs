//! The forwarding core's cost per packet per subscriber: one publisher's video packet fanned
//! out to N attached subscribers (rewrite + output), with no sockets or crypto involved.
//!
//! Run: `cargo bench -p sfu --bench forwarding`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rtc::rtp;
use sfu::core::{Layer, LegFormat, MediaKind, Output, Router, RouterConfig, Source};
use sfu::{LessonId, ParticipantId};

fn lesson(subscribers: u64) -> (Router, sfu::PublicationId) {
    let t0 = Instant::now();
    let mut router = Router::new(RouterConfig::default());
    let teacher = ParticipantId(0);
    router
        .add_participant(LessonId(1), teacher, true)
        .expect("fresh participant");
    for i in 1..=subscribers {
        router
            .add_participant(LessonId(1), ParticipantId(i), true)
            .expect("fresh participant");
    }
    let cam = router
        .add_publication(teacher, Source::Camera, MediaKind::Video)
        .expect("teacher is in the lesson");
    while router.poll_output().is_some() {}
    for i in 1..=subscribers {
        let format = LegFormat {
            ssrc: i as u32,
            payload_type: 96,
            clock_rate: 90_000,
        };
        router
            .attach_subscription(t0, ParticipantId(i), cam, format)
            .expect("subscription exists");
    }
    // A keyframe releases every subscription from its keyframe wait.
    router
        .handle_rtp(t0, cam, Layer::High, packet(0, key_payload()))
        .expect("publication exists");
    while router.poll_output().is_some() {}
    (router, cam)
}

fn key_payload() -> Bytes {
    let mut p = vec![0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
    p.resize(1100, 0xAB);
    Bytes::from(p)
}

fn delta_payload() -> Bytes {
    let mut p = vec![0x10, 0x11];
    p.resize(1100, 0xCD);
    Bytes::from(p)
}

fn packet(seq: u16, payload: Bytes) -> rtp::Packet {
    rtp::Packet {
        header: rtp::Header {
            version: 2,
            payload_type: 100,
            sequence_number: seq,
            timestamp: seq as u32 * 3000,
            ssrc: 0x1234,
            ..Default::default()
        },
        payload,
    }
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_video_packet");
    group.measurement_time(Duration::from_secs(5));
    for subscribers in [1u64, 10, 50, 200] {
        let (mut router, cam) = lesson(subscribers);
        let payload = delta_payload();
        let now = Instant::now();
        let mut seq = 1u16;
        group.throughput(Throughput::Elements(subscribers));
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, _| {
                b.iter(|| {
                    seq = seq.wrapping_add(1);
                    router
                        .handle_rtp(now, cam, Layer::High, packet(seq, payload.clone()))
                        .expect("publication exists");
                    while let Some(out) = router.poll_output() {
                        if let Output::Forward { packet, .. } = out {
                            black_box(packet);
                        }
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
