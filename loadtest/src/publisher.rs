//! The publisher leg of a bot: one peer connection sending an Opus track and a VP8 track, the
//! latter as one encoding or, like the browser client, as simulcast layers.
//!
//! Signaling follows the client side of the contract: add sendonly transceivers, create the
//! offer, set it locally, send `publish{mid, source}` for each transceiver, then `offer`, and
//! apply the `answer`. Once connected, paced tasks send synthetic media (see
//! [`crate::media`]): audio at 50 packets/s, and each video encoding at its bitrate and the
//! frame rate with a keyframe every `keyframe_interval` and — throttled, per encoding —
//! whenever the SFU sends a PLI or FIR naming that encoding's SSRC.
//!
//! Simulcast as browsers send it: one track whose encodings each have a rid and their own SSRC
//! (the offer carries `a=rid` and `a=simulcast` lines, no SSRCs), and every packet carries the
//! mid and rid header extensions, from which the SFU learns which layer an SSRC is. (Browsers
//! stop sending them once the receiver has acknowledged the SSRC; sending them always costs a
//! dozen bytes a packet and needs no feedback.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use serde::Serialize;
use signaling::protocol::{ClientMessage, Layer, Source};
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

/// One simulcast encoding of the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerConfig {
    pub layer: Layer,
    pub width: u16,
    pub height: u16,
    pub bitrate_bps: u32,
}

impl LayerConfig {
    /// The three layers the browser client sends (`web-client/js/media.js`): a quarter, a half
    /// and the full 720p picture, at about the rates Chromium's VP8 encoder reaches for them.
    pub fn standard() -> Vec<LayerConfig> {
        vec![
            LayerConfig {
                layer: Layer::Low,
                width: 320,
                height: 180,
                bitrate_bps: 150_000,
            },
            LayerConfig {
                layer: Layer::Medium,
                width: 640,
                height: 360,
                bitrate_bps: 500_000,
            },
            LayerConfig {
                layer: Layer::High,
                width: 1280,
                height: 720,
                bitrate_bps: 1_300_000,
            },
        ]
    }
}

/// The rid a layer is sent with: the names the browser client uses.
pub fn rid_of(layer: Layer) -> &'static str {
    match layer {
        Layer::Low => "low",
        Layer::Medium => "medium",
        Layer::High => "high",
    }
}

/// What a publisher bot sends.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    pub audio: bool,
    pub video: bool,
    /// Opus payload size; 80 bytes is 32 kbit/s at 50 packets/s.
    pub audio_payload: usize,
    /// The bitrate of the one video encoding without simulcast.
    pub video_bitrate_bps: u32,
    pub fps: u32,
    /// Largest RTP payload of a video packet.
    pub max_payload: usize,
    /// The picture size of the one video encoding without simulcast.
    pub width: u16,
    pub height: u16,
    /// Send the camera as these simulcast layers (each its own SSRC and rid) instead of one
    /// encoding; empty for one encoding (`width` × `height` at `video_bitrate_bps`).
    pub simulcast: Vec<LayerConfig>,
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
            simulcast: Vec::new(),
        }
    }
}

impl PublishConfig {
    /// Audio, and the camera in the three [`LayerConfig::standard`] layers.
    pub fn simulcast() -> Self {
        PublishConfig {
            simulcast: LayerConfig::standard(),
            ..PublishConfig::default()
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
    /// Of those, the ones naming each simulcast layer (low, medium, high); a request for a
    /// stream sent without simulcast counts as high.
    pub keyframe_requests_by_layer: [AtomicU64; 3],
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
    pub keyframe_requests_by_layer: [u64; 3],
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
            keyframe_requests_by_layer: self.keyframe_requests_by_layer.each_ref().map(l),
            write_errors: l(&self.write_errors),
        }
    }
}

/// One encoding of a sending track.
#[derive(Debug, Clone, Copy)]
struct Encoding {
    ssrc: u32,
    /// `None` for the one encoding of a track sent without simulcast.
    layer: Option<LayerConfig>,
}

/// The ids the answer gave the header extensions simulcast needs.
#[derive(Debug, Clone, Copy)]
struct SimulcastExtensions {
    mid: u8,
    rid: u8,
}

/// One sending track and what it was negotiated to.
struct Outgoing {
    track: Arc<TrackLocalStaticRTP>,
    transceiver: Arc<dyn RtpTransceiver>,
    encodings: Vec<Encoding>,
    source: Source,
    mid: String,
    payload_type: u8,
    /// Set for a simulcast track once negotiated.
    extensions: Option<SimulcastExtensions>,
}

/// What one sending task needs of its track: the track, and one encoding of it.
#[derive(Clone)]
struct Stream {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    /// The mid and rid header extensions every packet carries (simulcast only).
    extensions: Option<(SimulcastExtensions, Bytes, Bytes)>,
}

impl Stream {
    fn of(out: &Outgoing, encoding: &Encoding) -> Stream {
        let extensions = out.extensions.zip(encoding.layer).map(|(ids, layer)| {
            (
                ids,
                Bytes::from(out.mid.clone()),
                Bytes::from_static(rid_of(layer.layer).as_bytes()),
            )
        });
        Stream {
            track: out.track.clone(),
            ssrc: encoding.ssrc,
            payload_type: out.payload_type,
            extensions,
        }
    }
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
                    vec![Encoding {
                        ssrc: rand::random(),
                        layer: None,
                    }],
                )
                .await?,
            );
        }
        if config.video {
            outgoing.push(add_video_track(&pc, &config.simulcast).await?);
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
            if out.encodings.len() > 1 {
                out.extensions = Some(simulcast_extensions(out).await.ok_or(
                    BotError::Protocol("the answer did not accept the mid and rid extensions"),
                )?);
            }
        }
        peer::wait_connected(&mut events.state, wait).await?;
        info!(
            "publisher connected: {}",
            outgoing
                .iter()
                .map(|o| format!(
                    "{:?} mid {} pt {} ({} encodings)",
                    o.source,
                    o.mid,
                    o.payload_type,
                    o.encodings.len()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );

        let stats = Arc::new(PublisherStats::default());
        let mut tasks = Vec::new();
        let tracks = outgoing.iter().map(|o| (o.mid.clone(), o.source)).collect();
        // Keyframe requests are read on every track: `rtc` routes a compound RTCP packet to
        // the track its first report names, which need not be the one a PLI in it is about.
        let wanted: Arc<Vec<KeyframeWanted>> = Arc::new(
            outgoing
                .iter()
                .filter(|o| o.source != Source::Microphone)
                .flat_map(|o| &o.encodings)
                .map(|e| KeyframeWanted {
                    ssrc: e.ssrc,
                    layer: e.layer.map_or(Layer::High, |l| l.layer),
                    wanted: AtomicBool::new(false),
                })
                .collect(),
        );
        for out in &outgoing {
            tasks.push(tokio::spawn(read_keyframe_requests(
                out.track.clone(),
                wanted.clone(),
                stats.clone(),
            )));
        }
        for out in &outgoing {
            for encoding in &out.encodings {
                let stream = Stream::of(out, encoding);
                if out.source == Source::Microphone {
                    tasks.push(tokio::spawn(send_audio(
                        stream,
                        config.clone(),
                        stats.clone(),
                    )));
                    continue;
                }
                let video = VideoEncoding::of(config, encoding);
                tasks.push(tokio::spawn(send_video(
                    stream,
                    video,
                    config.clone(),
                    stats.clone(),
                    wanted.clone(),
                )));
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

/// The camera track: one encoding, or one per simulcast layer, each with a rid.
async fn add_video_track(
    pc: &Arc<dyn PeerConnection>,
    layers: &[LayerConfig],
) -> Result<Outgoing, BotError> {
    let encodings: Vec<Encoding> = if layers.is_empty() {
        vec![Encoding {
            ssrc: rand::random(),
            layer: None,
        }]
    } else {
        layers
            .iter()
            .map(|&l| Encoding {
                ssrc: rand::random(),
                layer: Some(l),
            })
            .collect()
    };
    add_track(
        pc,
        RtpCodecKind::Video,
        peer::vp8_codec(),
        Source::Camera,
        encodings,
    )
    .await
}

async fn add_track(
    pc: &Arc<dyn PeerConnection>,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    source: Source,
    encodings: Vec<Encoding>,
) -> Result<Outgoing, BotError> {
    let first = encodings
        .first()
        .ok_or(BotError::Protocol("a track needs an encoding"))?
        .ssrc;
    let label = match kind {
        RtpCodecKind::Audio => "audio",
        _ => "video",
    };
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("bot-{first:08x}"),
        format!("bot-{label}-{first:08x}"),
        format!("bot {label}"),
        kind,
        encodings
            .iter()
            .map(|e| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(e.ssrc),
                    rid: e
                        .layer
                        .map(|l| rid_of(l.layer).to_owned())
                        .unwrap_or_default(),
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            })
            .collect(),
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
        encodings,
        source,
        mid: String::new(),
        payload_type: if kind == RtpCodecKind::Audio {
            OPUS_PT
        } else {
            VP8_PT
        },
        extensions: None,
    })
}

/// The ids the answer settled on for the mid and rid header extensions.
async fn simulcast_extensions(out: &Outgoing) -> Option<SimulcastExtensions> {
    let sender = out.transceiver.sender().await.ok()??;
    let params = sender.get_parameters().await.ok()?;
    let id_of = |uri: &str| {
        params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == uri)
            .and_then(|e| u8::try_from(e.id).ok())
    };
    Some(SimulcastExtensions {
        mid: id_of(SDES_MID_URI)?,
        rid: id_of(SDES_RTP_STREAM_ID_URI)?,
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
    stream: &Stream,
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: bytes::Bytes,
) -> rtp::Packet {
    let mut header = rtp::Header {
        version: 2,
        marker,
        payload_type: stream.payload_type,
        sequence_number: seq,
        timestamp,
        ssrc: stream.ssrc,
        ..Default::default()
    };
    if let Some((ids, mid, rid)) = &stream.extensions {
        // Both fit a one-byte extension (ids 1–14, at most 16 bytes): our mids are short
        // numbers and our rids at most "medium"; a failure would only drop the extension.
        for (id, value) in [(ids.mid, mid), (ids.rid, rid)] {
            if let Err(e) = header.set_extension(id, value.clone()) {
                debug!("header extension {id}: {e}");
            }
        }
    }
    rtp::Packet { header, payload }
}

/// RTP timestamp of a tick: derived from the schedule, not a frame count, so skipped ticks
/// leave a gap in time as a real capture would.
fn rtp_time(base: u32, start: Instant, tick: Instant, clock_rate: u64) -> u32 {
    let elapsed = tick.saturating_duration_since(start).as_micros() as u64;
    base.wrapping_add((elapsed * clock_rate / 1_000_000) as u32)
}

async fn send_audio(out: Stream, config: PublishConfig, stats: Arc<PublisherStats>) {
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

/// What one video encoding sends.
#[derive(Debug, Clone, Copy)]
struct VideoEncoding {
    layer: Option<Layer>,
    width: u16,
    height: u16,
    bitrate_bps: u32,
}

impl VideoEncoding {
    fn of(config: &PublishConfig, encoding: &Encoding) -> VideoEncoding {
        match encoding.layer {
            Some(l) => VideoEncoding {
                layer: Some(l.layer),
                width: l.width,
                height: l.height,
                bitrate_bps: l.bitrate_bps,
            },
            None => VideoEncoding {
                layer: None,
                width: config.width,
                height: config.height,
                bitrate_bps: config.video_bitrate_bps,
            },
        }
    }
}

/// A keyframe request pending for one video encoding.
struct KeyframeWanted {
    ssrc: u32,
    layer: Layer,
    wanted: AtomicBool,
}

/// The pending-request flag of the encoding sent on `ssrc`.
fn wanted_flag(wanted: &[KeyframeWanted], ssrc: u32) -> Option<&KeyframeWanted> {
    wanted.iter().find(|w| w.ssrc == ssrc)
}

async fn send_video(
    out: Stream,
    encoding: VideoEncoding,
    config: PublishConfig,
    stats: Arc<PublisherStats>,
    wanted: Arc<Vec<KeyframeWanted>>,
) {
    let Some(keyframe_wanted) = wanted_flag(&wanted, out.ssrc) else {
        warn!("no keyframe-request flag for SSRC {}", out.ssrc);
        return;
    };
    let keyframe_wanted = &keyframe_wanted.wanted;
    let fps = config.fps.max(1);
    let mut ticker = interval(Duration::from_secs(1) / fps);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let average = (encoding.bitrate_bps / 8 / fps) as usize;
    let mut packetizer = Vp8Packetizer::new(
        config.max_payload,
        encoding.width,
        encoding.height,
        rand::random::<u16>(),
    )
    .with_layer(encoding.layer);
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

/// Turns PLI/FIR received on `track` into a pending keyframe of the encoding each names.
async fn read_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    wanted: Arc<Vec<KeyframeWanted>>,
    stats: Arc<PublisherStats>,
) {
    while let Some(event) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        for request in packets
            .iter()
            .filter(|p| peer::is_keyframe_request(p.as_ref()))
        {
            stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            // A PLI names one media SSRC; a FIR one per entry.
            for ssrc in request.destination_ssrc() {
                let Some(w) = wanted_flag(&wanted, ssrc) else {
                    debug!("keyframe requested for an SSRC we do not send: {ssrc}");
                    continue;
                };
                stats.keyframe_requests_by_layer[w.layer.index()].fetch_add(1, Ordering::Relaxed);
                w.wanted.store(true, Ordering::Relaxed);
                debug!(ssrc, layer = ?w.layer, "keyframe requested");
            }
        }
    }
    debug!("a track's RTCP stream ended");
}
