//! The publisher leg of a bot: one peer connection sending an Opus track and a VP8 track.
//!
//! Signaling follows the client side of the contract: add sendonly transceivers, create the
//! offer, set it locally, send `publish{mid, source}` for each transceiver, then `offer`, and
//! apply the `answer`. Once connected, two paced tasks send synthetic media (see
//! [`crate::media`]): audio at 50 packets/s, video at a configured bitrate and frame rate with
//! a keyframe every `keyframe_interval` and — throttled — whenever the SFU sends a PLI or FIR.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde::Serialize;
use signaling::protocol::{ClientMessage, Source};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval};
use tracing::{debug, info, warn};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpTransceiver;

use crate::bot::{BotError, PendingReplies};
use crate::client::SignalingSender;
use crate::media::{self, Vp8Packetizer};
use crate::peer::{self, OPUS_PT, VP8_PT};

/// What a publisher bot sends.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    pub audio: bool,
    pub video: bool,
    /// Opus payload size; 80 bytes is 32 kbit/s at 50 packets/s.
    pub audio_payload: usize,
    pub video_bitrate_bps: u32,
    pub fps: u32,
    /// Largest RTP payload of a video packet.
    pub max_payload: usize,
    pub width: u16,
    pub height: u16,
    /// A keyframe at least this often, requested or not.
    pub keyframe_interval: Duration,
    /// The shortest gap between two keyframes sent on request: PLIs from many subscribers
    /// coalesce into one keyframe, as an encoder does.
    pub keyframe_request_min_interval: Duration,
    /// A keyframe is this many times the average frame size.
    pub keyframe_size_factor: usize,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            audio: true,
            video: true,
            audio_payload: 80,
            video_bitrate_bps: 1_000_000,
            fps: 30,
            max_payload: 1100,
            width: 1280,
            height: 720,
            keyframe_interval: Duration::from_secs(5),
            keyframe_request_min_interval: Duration::from_millis(200),
            keyframe_size_factor: 3,
        }
    }
}

/// Counters of what a publisher sent; shared with its tasks.
#[derive(Debug, Default)]
pub struct PublisherStats {
    pub audio_packets: AtomicU64,
    pub audio_bytes: AtomicU64,
    pub video_packets: AtomicU64,
    pub video_bytes: AtomicU64,
    pub video_frames: AtomicU64,
    pub keyframes: AtomicU64,
    /// Keyframes sent because of a PLI/FIR.
    pub keyframes_on_request: AtomicU64,
    /// PLI and FIR packets received.
    pub keyframe_requests: AtomicU64,
    /// `write_rtp` calls the connection refused.
    pub write_errors: AtomicU64,
}

/// A point-in-time copy of [`PublisherStats`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PublisherSnapshot {
    pub audio_packets: u64,
    pub audio_bytes: u64,
    pub video_packets: u64,
    pub video_bytes: u64,
    pub video_frames: u64,
    pub keyframes: u64,
    pub keyframes_on_request: u64,
    pub keyframe_requests: u64,
    pub write_errors: u64,
}

impl PublisherStats {
    pub fn snapshot(&self) -> PublisherSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PublisherSnapshot {
            audio_packets: l(&self.audio_packets),
            audio_bytes: l(&self.audio_bytes),
            video_packets: l(&self.video_packets),
            video_bytes: l(&self.video_bytes),
            video_frames: l(&self.video_frames),
            keyframes: l(&self.keyframes),
            keyframes_on_request: l(&self.keyframes_on_request),
            keyframe_requests: l(&self.keyframe_requests),
            write_errors: l(&self.write_errors),
        }
    }
}

/// One sending track and what it was negotiated to.
struct Outgoing {
    track: Arc<TrackLocalStaticRTP>,
    transceiver: Arc<dyn RtpTransceiver>,
    ssrc: u32,
    source: Source,
    mid: String,
    payload_type: u8,
}

/// A running publisher connection.
pub struct PublisherLeg {
    pc: Arc<dyn PeerConnection>,
    stats: Arc<PublisherStats>,
    tasks: Vec<JoinHandle<()>>,
    /// `(mid, source)` of each published track.
    pub tracks: Vec<(String, Source)>,
}

impl PublisherLeg {
    /// Negotiates through `signal`, waits until connected, then starts sending.
    pub(crate) async fn start(
        signal: &SignalingSender,
        replies: &PendingReplies,
        config: &PublishConfig,
        bind_ip: std::net::IpAddr,
        wait: Duration,
    ) -> Result<PublisherLeg, BotError> {
        let (pc, mut events) = peer::new_peer(bind_ip, true).await?;
        let mut outgoing = Vec::new();
        if config.audio {
            outgoing.push(
                add_track(
                    &pc,
                    RtpCodecKind::Audio,
                    peer::opus_codec(),
                    Source::Microphone,
                )
                .await?,
            );
        }
        if config.video {
            outgoing.push(
                add_track(&pc, RtpCodecKind::Video, peer::vp8_codec(), Source::Camera).await?,
            );
        }

        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        for out in &mut outgoing {
            out.mid = out.transceiver.mid().await?.ok_or(BotError::Protocol(
                "a transceiver has no mid after the offer",
            ))?;
            signal
                .send(&ClientMessage::Publish {
                    id: None,
                    mid: out.mid.clone(),
                    source: out.source,
                })
                .await?;
        }
        let sdp = pc
            .local_description()
            .await
            .ok_or(BotError::Protocol("no local description after setting it"))?
            .sdp;
        let answer = replies
            .request(signal, "publish-offer", wait, |id| ClientMessage::Offer {
                id: Some(id),
                sdp,
            })
            .await?;
        pc.set_remote_description(RTCSessionDescription::answer(answer)?)
            .await?;

        for out in &mut outgoing {
            out.payload_type = negotiated_pt(out).await.unwrap_or(out.payload_type);
        }
        peer::wait_connected(&mut events.state, wait).await?;
        info!(
            "publisher connected: {}",
            outgoing
                .iter()
                .map(|o| format!("{:?} mid {} pt {}", o.source, o.mid, o.payload_type))
                .collect::<Vec<_>>()
                .join(", ")
        );

        let stats = Arc::new(PublisherStats::default());
        let mut tasks = Vec::new();
        let tracks = outgoing.iter().map(|o| (o.mid.clone(), o.source)).collect();
        for out in outgoing {
            match out.source {
                Source::Microphone => {
                    tasks.push(tokio::spawn(send_audio(out, config.clone(), stats.clone())))
                }
                _ => {
                    let wanted = Arc::new(AtomicBool::new(false));
                    tasks.push(tokio::spawn(read_keyframe_requests(
                        out.track.clone(),
                        wanted.clone(),
                        stats.clone(),
                    )));
                    tasks.push(tokio::spawn(send_video(
                        out,
                        config.clone(),
                        stats.clone(),
                        wanted,
                    )));
                }
            }
        }
        Ok(PublisherLeg {
            pc,
            stats,
            tasks,
            tracks,
        })
    }

    pub fn stats(&self) -> PublisherSnapshot {
        self.stats.snapshot()
    }

    /// Stops sending; the connection closes when dropped.
    pub(crate) fn abort(self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Stops sending and closes the connection.
    pub async fn close(self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Err(e) = self.pc.close().await {
            debug!("closing publisher connection: {e}");
        }
    }
}

async fn add_track(
    pc: &Arc<dyn PeerConnection>,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    source: Source,
) -> Result<Outgoing, BotError> {
    let ssrc = rand::random::<u32>();
    let label = match kind {
        RtpCodecKind::Audio => "audio",
        _ => "video",
    };
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("bot-{ssrc:08x}"),
        format!("bot-{label}-{ssrc:08x}"),
        format!("bot {label}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )));
    let transceiver = pc
        .add_transceiver_from_track(
            track.clone() as Arc<dyn TrackLocal>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                ..Default::default()
            }),
        )
        .await?;
    Ok(Outgoing {
        track,
        transceiver,
        ssrc,
        source,
        mid: String::new(),
        payload_type: if kind == RtpCodecKind::Audio {
            OPUS_PT
        } else {
            VP8_PT
        },
    })
}

/// The payload type the answer settled on for this track's codec.
async fn negotiated_pt(out: &Outgoing) -> Option<u8> {
    let sender = out.transceiver.sender().await.ok()??;
    let params = sender.get_parameters().await.ok()?;
    let mime = if out.source == Source::Microphone {
        peer::opus_codec().mime_type
    } else {
        peer::vp8_codec().mime_type
    };
    params
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&mime))
        .map(|c| c.payload_type)
}

fn packet(
    out: &Outgoing,
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: bytes::Bytes,
) -> rtp::Packet {
    rtp::Packet {
        header: rtp::Header {
            version: 2,
            marker,
            payload_type: out.payload_type,
            sequence_number: seq,
            timestamp,
            ssrc: out.ssrc,
            ..Default::default()
        },
        payload,
    }
}

/// RTP timestamp of a tick: derived from the schedule, not a frame count, so skipped ticks
/// leave a gap in time as a real capture would.
fn rtp_time(base: u32, start: Instant, tick: Instant, clock_rate: u64) -> u32 {
    let elapsed = tick.saturating_duration_since(start).as_micros() as u64;
    base.wrapping_add((elapsed * clock_rate / 1_000_000) as u32)
}

async fn send_audio(out: Outgoing, config: PublishConfig, stats: Arc<PublisherStats>) {
    let mut ticker = interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let start = Instant::now();
    let base = rand::random::<u32>();
    let mut seq = rand::random::<u16>();
    let mut counter = 0u64;
    loop {
        let tick = ticker.tick().await;
        let payload = media::opus_payload(counter, media::now_us(), config.audio_payload);
        let len = payload.len() as u64;
        // Marker: the start of a talk spurt, i.e. the first packet.
        let pkt = packet(
            &out,
            seq,
            rtp_time(base, start, tick, 48_000),
            counter == 0,
            payload,
        );
        match out.track.write_rtp(pkt).await {
            Ok(()) => {
                stats.audio_packets.fetch_add(1, Ordering::Relaxed);
                stats.audio_bytes.fetch_add(len, Ordering::Relaxed);
            }
            Err(e) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                debug!("audio write_rtp: {e}");
            }
        }
        seq = seq.wrapping_add(1);
        counter += 1;
    }
}

async fn send_video(
    out: Outgoing,
    config: PublishConfig,
    stats: Arc<PublisherStats>,
    keyframe_wanted: Arc<AtomicBool>,
) {
    let fps = config.fps.max(1);
    let mut ticker = interval(Duration::from_secs(1) / fps);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let average = (config.video_bitrate_bps / 8 / fps) as usize;
    let mut packetizer = Vp8Packetizer::new(
        config.max_payload,
        config.width,
        config.height,
        rand::random::<u16>(),
    );
    let start = Instant::now();
    let base = rand::random::<u32>();
    let mut seq = rand::random::<u16>();
    let mut counter = 0u64;
    let mut last_keyframe: Option<Instant> = None;
    loop {
        let tick = ticker.tick().await;
        let since_keyframe = last_keyframe.map(|k| tick.saturating_duration_since(k));
        let periodic = since_keyframe.is_none_or(|d| d >= config.keyframe_interval);
        // A request arriving too soon after a keyframe stays pending until the gap has passed.
        let requested = since_keyframe.is_none_or(|d| d >= config.keyframe_request_min_interval)
            && keyframe_wanted.swap(false, Ordering::Relaxed);
        let keyframe = periodic || requested;
        if keyframe {
            last_keyframe = Some(tick);
            stats.keyframes.fetch_add(1, Ordering::Relaxed);
            if requested && !periodic {
                stats.keyframes_on_request.fetch_add(1, Ordering::Relaxed);
            }
        }
        let size = if keyframe {
            average * config.keyframe_size_factor.max(1)
        } else {
            average
        };
        let payloads = packetizer.frame(keyframe, size, &mut counter, media::now_us());
        let timestamp = rtp_time(base, start, tick, 90_000);
        let last = payloads.len() - 1;
        for (i, payload) in payloads.into_iter().enumerate() {
            let len = payload.len() as u64;
            let pkt = packet(&out, seq, timestamp, i == last, payload);
            seq = seq.wrapping_add(1);
            match out.track.write_rtp(pkt).await {
                Ok(()) => {
                    stats.video_packets.fetch_add(1, Ordering::Relaxed);
                    stats.video_bytes.fetch_add(len, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    debug!("video write_rtp: {e}");
                }
            }
        }
        stats.video_frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// Turns PLI/FIR received about the video track into a pending keyframe.
async fn read_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    wanted: Arc<AtomicBool>,
    stats: Arc<PublisherStats>,
) {
    while let Some(event) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        let requests = packets
            .iter()
            .filter(|p| peer::is_keyframe_request(p.as_ref()))
            .count();
        if requests > 0 {
            stats
                .keyframe_requests
                .fetch_add(requests as u64, Ordering::Relaxed);
            wanted.store(true, Ordering::Relaxed);
            debug!("keyframe requested");
        }
    }
    warn!("video track's RTCP stream ended");
}
