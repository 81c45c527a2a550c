//! A virtual network for engine tests: one [`Engine`] and the participants' `rtc` peer
//! connections, wired back to back in virtual time. No socket, no thread, no sleep: each step
//! advances the clock to whichever party's deadline (or datagram arrival, or media frame) comes
//! first, hands it its input, and moves every datagram that produced onto a [`Link`], a tiny
//! deterministic model of delay, loss and a rate cap with a drop-tail queue. (The impairment
//! model in `loadtest` is not reachable from here: `loadtest` depends on `sfu`.)
//!
//! A [`Member`] is one participant: a subscriber connection that answers every offer the
//! engine sends, and optionally a publisher connection that sends VP8 "frames" (a valid
//! payload descriptor, keyframe bit and all, with filler) and answers keyframe requests.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    Attribute, Interceptor, NackGeneratorBuilder, NackResponderBuilder, Packet, Registry, Slot,
    StreamInfo, TaggedPacket,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu::transport::Engine;
use sfu::{LessonId, ParticipantId, SfuConfig, SfuEvent, SfuStats, Source};
use tokio::sync::mpsc;

/// The engine's address: its only ICE candidate.
pub const SFU_ADDR: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    3478,
);

const VP8_PT: u8 = 96;
const OPUS_PT: u8 = 111;
const VP8_RTX_PT: u8 = 97;

/// One direction of a client's access link.
#[derive(Debug, Clone)]
pub struct Link {
    pub delay: Duration,
    /// Drop every n-th datagram (deterministic loss); `None`: no loss.
    pub lose_every: Option<u64>,
    /// A rate cap in bits per second, with a queue that holds at most `queue` of sending.
    pub cap_bps: Option<u64>,
    pub queue: Duration,
    busy_until: Option<Instant>,
    sent: u64,
    pub dropped: u64,
}

impl Link {
    /// 10 ms each way, nothing lost, no cap.
    pub fn clean() -> Link {
        Link {
            delay: Duration::from_millis(10),
            lose_every: None,
            cap_bps: None,
            queue: Duration::from_millis(200),
            busy_until: None,
            sent: 0,
            dropped: 0,
        }
    }

    /// When a datagram of `bytes` sent at `now` arrives, or `None` if it is lost.
    fn carry(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        self.sent += 1;
        if self.lose_every.is_some_and(|n| self.sent.is_multiple_of(n)) {
            self.dropped += 1;
            return None;
        }
        let departs = match self.cap_bps {
            None => now,
            Some(bps) => {
                let start = self.busy_until.map_or(now, |b| b.max(now));
                if start > now + self.queue {
                    self.dropped += 1;
                    return None;
                }
                let done = start + Duration::from_nanos(bytes as u64 * 8 * 1_000_000_000 / bps);
                self.busy_until = Some(done);
                done
            }
        };
        Some(departs + self.delay)
    }
}

/// Marks inbound keyframe requests for the application, as a browser's encoder would see them
/// (`rtc` drops inbound RTCP at the end of its chain otherwise).
#[derive(Default)]
struct KeyframeRequestTap {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            packets.retain(|p| {
                p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
            });
            if packets.is_empty() {
                return Ok(());
            }
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// A browser-like client connection: Opus, VP8 with RTX, NACK both ways, RTCP reports, TWCC
/// feedback; a publisher also sees keyframe requests.
fn client_pc(now: Instant, addr: SocketAddr) -> RTCPeerConnection {
    let mut media = MediaEngine::default();
    let codecs = [
        (
            codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
            OPUS_PT,
            RtpCodecKind::Audio,
        ),
        (
            codec(MIME_TYPE_VP8, 90_000, 0, ""),
            VP8_PT,
            RtpCodecKind::Video,
        ),
        (
            codec("video/rtx", 90_000, 0, &format!("apt={VP8_PT}")),
            VP8_RTX_PT,
            RtpCodecKind::Video,
        ),
    ];
    for (rtp_codec, payload_type, kind) in codecs {
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec,
                    payload_type,
                },
                kind,
            )
            .expect("codec registers");
    }
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    configure_simulcast_extension_headers(&mut media).expect("extensions register");
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(10)
                .build(),
        );
    let registry = configure_twcc_receiver_only(registry, &mut media).expect("twcc registers");
    let registry =
        configure_rtcp_reports(registry).with(Slot::from(14_000), KeyframeRequestTap::default());
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(now)
        .expect("client connection builds");
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .expect("host candidate");
    pc.add_local_candidate(
        RTCIceCandidate::from(&host)
            .to_json()
            .expect("candidate json"),
    )
    .expect("candidate added");
    pc
}

/// A VP8 camera: frames of `packets_per_frame` packets at 30 fps; a keyframe first, every
/// `keyframe_every` frames, and whenever asked.
pub struct Camera {
    sender: RTCRtpSenderId,
    pub ssrc: u32,
    seq: u16,
    timestamp: u32,
    pub next_frame: Instant,
    frame: u64,
    pub keyframe_every: u64,
    pub packets_per_frame: usize,
    pub packet_bytes: usize,
    keyframe_asked: bool,
    pub frames_sent: u64,
    pub keyframes_sent: u64,
}

/// One client connection on the virtual network.
pub struct Client {
    pub pc: RTCPeerConnection,
    pub addr: SocketAddr,
    pub state: RTCPeerConnectionState,
    /// RTP the application read, with when.
    pub received: Vec<(Instant, rtp::Packet)>,
    /// Keyframe requests that reached the application, with when.
    pub keyframe_requests: Vec<Instant>,
    pub camera: Option<Camera>,
    pub up: Link,
    pub down: Link,
}

/// One participant: its id, its events, its connections (indices into [`World::clients`]).
pub struct Member {
    pub id: ParticipantId,
    events: mpsc::Receiver<SfuEvent>,
    /// Every event it got, in order.
    pub seen: Vec<SfuEvent>,
    pub subscriber: usize,
    pub publisher: Option<usize>,
    pub answers: usize,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// The engine, its clients and the datagrams between them.
pub struct World {
    pub now: Instant,
    pub engine: Engine,
    pub clients: Vec<Client>,
    pub members: Vec<Member>,
    flight: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    pub lesson: LessonId,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    pub fn new() -> World {
        let start = Instant::now();
        let engine = Engine::new(
            &SfuConfig::default(),
            SFU_ADDR,
            Arc::new(SfuStats::default()),
            start,
            // `rtc` stamps its sender reports from the system clock; ours must agree with it
            // for round trips to come out right.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        World {
            now: start,
            engine,
            clients: Vec::new(),
            members: Vec::new(),
            flight: BinaryHeap::new(),
            order: 0,
            lesson: LessonId(1),
        }
    }

    pub fn stats(&self) -> &SfuStats {
        self.engine.stats()
    }

    fn add_client(&mut self) -> usize {
        let n = self.clients.len();
        let addr = SocketAddr::from(([10, 0, 1, 1 + (n / 200) as u8], 5000 + n as u16));
        self.clients.push(Client {
            pc: client_pc(self.now, addr),
            addr,
            state: RTCPeerConnectionState::New,
            received: Vec::new(),
            keyframe_requests: Vec::new(),
            camera: None,
            up: Link::clean(),
            down: Link::clean(),
        });
        n
    }

    /// A participant joins the lesson; its subscriber connection answers every offer.
    pub fn join(&mut self, id: u64) -> usize {
        let id = ParticipantId(id);
        let (tx, events) = mpsc::channel(1024);
        self.engine
            .join(self.now, self.lesson, id, tx)
            .expect("the engine takes a new participant");
        let subscriber = self.add_client();
        self.members.push(Member {
            id,
            events,
            seen: Vec::new(),
            subscriber,
            publisher: None,
            answers: 0,
        });
        self.flush();
        self.members.len() - 1
    }

    /// `member` publishes a camera (one VP8 track) and the engine answers its offer.
    pub fn publish_camera(&mut self, member: usize, keyframe_every: u64) {
        let client = self.add_client();
        let ssrc = 0x1000_0000 + client as u32;
        let track = MediaStreamTrack::new(
            format!("stream-{client}"),
            format!("camera-{client}"),
            format!("camera-{client}"),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec(MIME_TYPE_VP8, 90_000, 0, ""),
                ..Default::default()
            }],
        );
        let now = self.now;
        let c = &mut self.clients[client];
        let sender = c.pc.add_track(track).expect("track added");
        let offer = c.pc.create_offer(None).expect("offer");
        c.pc.set_local_description(now, offer.clone())
            .expect("local offer");
        let ids: Vec<_> = c.pc.get_transceivers().collect();
        let mid = ids
            .into_iter()
            .find_map(|id| c.pc.rtp_transceiver(id).and_then(|t| t.mid().clone()))
            .expect("the offer gave the track a mid");
        c.camera = Some(Camera {
            sender,
            ssrc,
            seq: 1,
            timestamp: 0,
            next_frame: now,
            frame: 0,
            keyframe_every,
            packets_per_frame: 3,
            packet_bytes: 1_000,
            keyframe_asked: false,
            frames_sent: 0,
            keyframes_sent: 0,
        });
        let id = self.members[member].id;
        let answer = self
            .engine
            .publisher_offer(now, id, offer.sdp, vec![(mid, Source::Camera)])
            .expect("the engine answers a publisher");
        let answer = RTCSessionDescription::answer(answer).expect("answer parses");
        self.clients[client]
            .pc
            .set_remote_description(now, answer)
            .expect("answer applies");
        self.members[member].publisher = Some(client);
        self.flush();
    }

    /// The member leaves the lesson.
    pub fn leave(&mut self, member: usize) {
        let id = self.members[member].id;
        self.engine.leave(self.now, id);
        self.flush();
    }

    /// Runs the world until `d` of virtual time has passed.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        let mut last = self.now;
        let mut spins = 0;
        loop {
            self.flush();
            let Some(next) = self.next_deadline() else {
                self.now = until;
                return;
            };
            if next > until {
                self.now = until;
                self.flush();
                return;
            }
            // A party that names a deadline it has already had must not stall the clock.
            if next <= last {
                spins += 1;
                if spins > 100 {
                    self.now = last + Duration::from_millis(1);
                    spins = 0;
                }
            } else {
                spins = 0;
                self.now = next;
            }
            last = self.now;
            self.fire();
        }
    }

    /// Runs until `done` holds, for at most `limit` of virtual time; whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.run_for(Duration::from_millis(10));
        }
        done(self)
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let mut next = self.engine.poll_timeout();
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n: Instant| n.min(at)));
            }
        };
        if let Some(Reverse(f)) = self.flight.peek() {
            consider(Some(f.at));
        }
        for c in &mut self.clients {
            consider(c.pc.poll_timeout());
            if c.state == RTCPeerConnectionState::Connected {
                consider(c.camera.as_ref().map(|cam| cam.next_frame));
            }
        }
        next
    }

    /// Hands every party whatever is due now.
    fn fire(&mut self) {
        let now = self.now;
        while self.flight.peek().is_some_and(|Reverse(f)| f.at <= now) {
            let Some(Reverse(f)) = self.flight.pop() else {
                break;
            };
            if f.to == SFU_ADDR {
                self.engine.handle_datagram(now, f.from, &f.bytes);
            } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == f.to) {
                let _ = c.pc.handle_read(TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: c.addr,
                        peer_addr: f.from,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: BytesMut::from(&f.bytes[..]),
                });
            }
        }
        if self.engine.poll_timeout().is_some_and(|at| at <= now) {
            self.engine.handle_timeout(now);
        }
        for c in &mut self.clients {
            if c.pc.poll_timeout().is_some_and(|at| at <= now) {
                let _ = c.pc.handle_timeout(now);
            }
            if c.state == RTCPeerConnectionState::Connected {
                send_frame(now, c);
            }
        }
    }

    /// Moves everything every party produced until nobody produces more.
    pub fn flush(&mut self) {
        loop {
            let mut moved = false;
            let now = self.now;
            while let Some(t) = self.engine.poll_transmit() {
                moved = true;
                if let Some(c) = self.clients.iter_mut().find(|c| c.addr == t.destination)
                    && let Some(at) = c.down.carry(now, t.contents.len())
                {
                    self.order += 1;
                    self.flight.push(Reverse(InFlight {
                        at,
                        order: self.order,
                        from: SFU_ADDR,
                        to: t.destination,
                        bytes: t.contents.to_vec(),
                    }));
                }
            }
            for c in &mut self.clients {
                while let Some(msg) = c.pc.poll_write() {
                    moved = true;
                    if let Some(at) = c.up.carry(now, msg.message.len()) {
                        self.order += 1;
                        self.flight.push(Reverse(InFlight {
                            at,
                            order: self.order,
                            from: c.addr,
                            to: msg.transport.peer_addr,
                            bytes: msg.message.to_vec(),
                        }));
                    }
                }
                while let Some(event) = c.pc.poll_event() {
                    moved = true;
                    match event {
                        RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                            c.state = state;
                        }
                        RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(_)) => {}
                        _ => {}
                    }
                }
                while let Some(read) = c.pc.poll_read() {
                    moved = true;
                    match read.message {
                        RTCMessage::RtpPacket(_, packet) => c.received.push((now, packet)),
                        RTCMessage::RtcpPacket(_, _) => {
                            c.keyframe_requests.push(now);
                            if let Some(cam) = &mut c.camera {
                                cam.keyframe_asked = true;
                            }
                        }
                        _ => {}
                    }
                }
            }
            for m in 0..self.members.len() {
                while let Ok(event) = self.members[m].events.try_recv() {
                    moved = true;
                    if let SfuEvent::SubscriberOffer { sdp, .. } = &event {
                        self.answer(m, sdp.clone());
                    }
                    self.members[m].seen.push(event);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn answer(&mut self, member: usize, offer: String) {
        let now = self.now;
        let (id, client) = (self.members[member].id, self.members[member].subscriber);
        let pc = &mut self.clients[client].pc;
        pc.set_remote_description(
            now,
            RTCSessionDescription::offer(offer).expect("offer parses"),
        )
        .expect("offer applies");
        let answer = pc.create_answer(None).expect("answer");
        pc.set_local_description(now, answer.clone())
            .expect("local answer");
        self.engine
            .subscriber_answer(now, id, answer.sdp)
            .expect("the engine takes the answer");
        self.members[member].answers += 1;
    }
}

/// Sends the camera's next frame if it is due.
fn send_frame(now: Instant, c: &mut Client) {
    let Some(cam) = &mut c.camera else { return };
    if now < cam.next_frame {
        return;
    }
    let keyframe = cam.frame % cam.keyframe_every == 0 || cam.keyframe_asked;
    cam.keyframe_asked = false;
    cam.frame += 1;
    cam.frames_sent += 1;
    cam.keyframes_sent += u64::from(keyframe);
    cam.next_frame = now + Duration::from_micros(33_333);
    cam.timestamp = cam.timestamp.wrapping_add(3_000);
    let packets = if keyframe {
        cam.packets_per_frame * 3
    } else {
        cam.packets_per_frame
    };
    let Some(mut sender) = c.pc.rtp_sender(cam.sender) else {
        return;
    };
    for i in 0..packets {
        let mut payload = vec![0u8; cam.packet_bytes];
        if i == 0 {
            // S bit, partition 0; the VP8 header's P bit is 0 on a keyframe.
            payload[0] = 0x10;
            payload[1] = if keyframe { 0x00 } else { 0x01 };
        }
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                marker: i + 1 == packets,
                payload_type: VP8_PT,
                sequence_number: cam.seq,
                timestamp: cam.timestamp,
                ssrc: cam.ssrc,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        };
        cam.seq = cam.seq.wrapping_add(1);
        let _ = sender.write_rtp(now, packet);
    }
}

/// Whether an RTP payload starts a VP8 keyframe.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    payload.len() > 1 && payload[0] & 0x10 != 0 && payload[0] & 0x0f == 0 && payload[1] & 1 == 0
}
