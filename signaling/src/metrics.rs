//! Prometheus metrics in a registry of our own (never the process-global default, so tests
//! that start several servers in one process do not collide). Every name starts `classroom_`.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::protocol::ErrorCode;

/// The control plane's metrics.
pub struct Metrics {
    registry: Registry,
    pub ws_connections: IntGauge,
    pub ws_rejected: IntCounter,
    pub participants: IntGauge,
    /// Participants whose connection dropped and who still hold their place.
    pub participants_away: IntGauge,
    /// Participants that came back within the grace.
    pub participants_resumed: IntCounter,
    /// Lessons with at least one participant connected.
    pub live_lessons: IntGauge,
    pub ws_messages_in: IntCounterVec,
    pub ws_messages_out: IntCounterVec,
    pub ws_errors_sent: IntCounterVec,
    pub participants_left: IntCounterVec,
    pub slow_consumer_disconnects: IntCounter,
    /// Per-stream quality samples (every `sfu::QUALITY_INTERVAL`), by direction: `publishing`
    /// (publisher → server, as the server receives it) or `receiving` (server → subscriber,
    /// as the subscriber reports it). Histograms, so a county's worth of classrooms stays a
    /// handful of series; per-classroom detail goes to the pages and the operator view.
    pub stream_loss: HistogramVec,
    pub stream_jitter: HistogramVec,
    pub stream_rtt: HistogramVec,
    pub peer_state_changes: IntCounterVec,
    /// Lessons being recorded now.
    pub recordings_active: IntGauge,
    /// Recordings stopped by an error (a full disk); the operator's alert.
    pub recordings_failed: IntCounter,
    /// Inputs a recording lost because its queue was full (packets, timeline events).
    pub recording_inputs_dropped: IntCounter,
}

/// Why a metric could not be set up: a duplicate or malformed name, a programming error caught
/// by the first test that starts a server.
pub type MetricsError = prometheus::Error;

impl Metrics {
    /// Creates the control plane's metrics; see [`Metrics::export_sfu`] for the media plane's.
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| -> Result<IntGauge, MetricsError> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, MetricsError> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let counter_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, MetricsError> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let histogram_vec =
            |name: &str, help: &str, buckets: Vec<f64>| -> Result<HistogramVec, MetricsError> {
                let h = HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets),
                    &["direction", "kind"],
                )?;
                registry.register(Box::new(h.clone()))?;
                Ok(h)
            };
        let metrics = Metrics {
            stream_loss: histogram_vec(
                "classroom_stream_loss_ratio",
                "Packet loss per stream and quality interval, by direction and kind.",
                vec![0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            )?,
            stream_jitter: histogram_vec(
                "classroom_stream_jitter_seconds",
                "Interarrival jitter per stream and quality interval, by direction and kind.",
                vec![0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2],
            )?,
            stream_rtt: histogram_vec(
                "classroom_stream_rtt_seconds",
                "Round trip to the subscriber per stream and quality interval.",
                vec![0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0],
            )?,
            ws_connections: gauge(
                "classroom_ws_connections",
                "WebSocket connections open now.",
            )?,
            ws_rejected: counter(
                "classroom_ws_rejected_total",
                "WebSocket upgrades refused because the connection limit was reached.",
            )?,
            participants: gauge(
                "classroom_participants",
                "Participants joined to a lesson now.",
            )?,
            participants_away: gauge(
                "classroom_participants_reconnecting",
                "Participants whose connection dropped and who may still come back now.",
            )?,
            participants_resumed: counter(
                "classroom_participants_resumed_total",
                "Participants that came back to their place after their connection dropped.",
            )?,
            live_lessons: gauge(
                "classroom_live_lessons",
                "Lessons with at least one participant connected now.",
            )?,
            ws_messages_in: counter_vec(
                "classroom_ws_messages_in_total",
                "WebSocket messages received, by type (`invalid` for unreadable ones).",
                &["type"],
            )?,
            ws_messages_out: counter_vec(
                "classroom_ws_messages_out_total",
                "WebSocket messages queued to clients, by type.",
                &["type"],
            )?,
            ws_errors_sent: counter_vec(
                "classroom_ws_errors_sent_total",
                "`error` messages sent to clients, by code.",
                &["code"],
            )?,
            participants_left: counter_vec(
                "classroom_participants_left_total",
                "Participants that left a lesson, by reason.",
                &["reason"],
            )?,
            slow_consumer_disconnects: counter(
                "classroom_slow_consumer_disconnects_total",
                "Participants disconnected because their outbound queue was full.",
            )?,
            peer_state_changes: counter_vec(
                "classroom_peer_state_changes_total",
                "Media connection state changes reported by the SFU, by leg and state.",
                &["leg", "state"],
            )?,
            recordings_active: gauge("classroom_recordings_active", "Lessons being recorded now.")?,
            recordings_failed: counter(
                "classroom_recordings_failed_total",
                "Recordings stopped by an error such as a full disk (what was recorded is kept).",
            )?,
            recording_inputs_dropped: counter(
                "classroom_recording_inputs_dropped_total",
                "Packets and timeline events a recording dropped because its queue was full.",
            )?,
            registry,
        };
        Ok(metrics)
    }

    /// Exports the media plane's counters too, read at each scrape.
    pub fn export_sfu(&self, sfu: sfu::SfuHandle) -> Result<(), MetricsError> {
        self.registry.register(Box::new(SfuCollector::new(sfu)?))
    }

    /// Records one participant's quality report.
    pub fn observe_quality(
        &self,
        publishing: &[sfu::StreamQuality],
        receiving: &[sfu::StreamQuality],
    ) {
        for (direction, streams) in [("publishing", publishing), ("receiving", receiving)] {
            for q in streams {
                let kind = if q.layer.is_some() { "video" } else { "audio" };
                let labels = [direction, kind];
                self.stream_loss
                    .with_label_values(&labels)
                    .observe(f64::from(q.loss));
                self.stream_jitter
                    .with_label_values(&labels)
                    .observe(f64::from(q.jitter_ms) / 1000.0);
                if let Some(rtt) = q.rtt_ms {
                    self.stream_rtt
                        .with_label_values(&labels)
                        .observe(f64::from(rtt) / 1000.0);
                }
            }
        }
    }

    pub fn error_sent(&self, code: ErrorCode) {
        self.ws_errors_sent
            .with_label_values(&[code.as_str()])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

type StatField = fn(&sfu::SfuStats) -> &AtomicU64;

/// Whether a stat only grows or goes up and down.
#[derive(Clone, Copy)]
enum StatKind {
    Counter,
    Gauge,
}

/// The media plane's [`sfu::SfuStats`], read at scrape time so the packet path only ever
/// touches its own atomics.
struct SfuCollector {
    sfu: sfu::SfuHandle,
    stats: Vec<SfuStat>,
}

struct SfuStat {
    name: &'static str,
    help: &'static str,
    kind: StatKind,
    field: StatField,
    /// A zero-valued metric of the same name and help, owning the descriptor.
    template: Box<dyn Collector>,
}

const SFU_STATS: [(&str, &str, StatKind, StatField); 20] = [
    (
        "classroom_sfu_rtp_packets_in_total",
        "RTP packets received.",
        StatKind::Counter,
        |s| &s.rtp_packets_in,
    ),
    (
        "classroom_sfu_rtp_bytes_in_total",
        "RTP bytes received.",
        StatKind::Counter,
        |s| &s.rtp_bytes_in,
    ),
    (
        "classroom_sfu_rtp_packets_out_total",
        "RTP packets forwarded.",
        StatKind::Counter,
        |s| &s.rtp_packets_out,
    ),
    (
        "classroom_sfu_rtp_bytes_out_total",
        "RTP bytes forwarded.",
        StatKind::Counter,
        |s| &s.rtp_bytes_out,
    ),
    (
        "classroom_sfu_forward_errors_total",
        "Packets chosen for forwarding that a peer connection refused.",
        StatKind::Counter,
        |s| &s.forward_errors,
    ),
    (
        "classroom_sfu_keyframe_requests_sent_total",
        "Keyframe requests sent to publishers.",
        StatKind::Counter,
        |s| &s.keyframe_requests_sent,
    ),
    (
        "classroom_sfu_keyframe_requests_received_total",
        "Keyframe requests received from subscribers.",
        StatKind::Counter,
        |s| &s.keyframe_requests_received,
    ),
    (
        "classroom_sfu_keyframe_requests_throttled_total",
        "Keyframe requests coalesced by the per-publication throttle.",
        StatKind::Counter,
        |s| &s.keyframe_requests_throttled,
    ),
    (
        "classroom_sfu_retransmissions_total",
        "NACKed packets passed on to be resent to subscribers (when still buffered).",
        StatKind::Counter,
        |s| &s.retransmissions,
    ),
    (
        "classroom_sfu_retransmissions_suppressed_total",
        "NACKed packets not resent because they had been within a round trip.",
        StatKind::Counter,
        |s| &s.retransmissions_suppressed,
    ),
    (
        "classroom_sfu_rtx_packets_total",
        "Retransmissions sent on an RTX stream, where the subscriber negotiated RTX.",
        StatKind::Counter,
        |s| &s.rtx_packets,
    ),
    (
        "classroom_sfu_probe_packets_total",
        "Packets resent back to back to measure a subscriber's link while a video is held below its layer.",
        StatKind::Counter,
        |s| &s.probe_packets,
    ),
    (
        "classroom_sfu_video_freezes_total",
        "Times a subscriber's picture stood still until a keyframe (decoder lost, layer gone).",
        StatKind::Counter,
        |s| &s.video_freezes,
    ),
    (
        "classroom_sfu_udp_datagrams_in_total",
        "UDP datagrams received.",
        StatKind::Counter,
        |s| &s.udp_datagrams_in,
    ),
    (
        "classroom_sfu_udp_unmatched_total",
        "UDP datagrams that matched no connection.",
        StatKind::Counter,
        |s| &s.udp_unmatched,
    ),
    (
        "classroom_sfu_udp_send_errors_total",
        "UDP sends that failed.",
        StatKind::Counter,
        |s| &s.udp_send_errors,
    ),
    (
        "classroom_sfu_events_dropped_total",
        "SFU events dropped because a participant's event queue was full.",
        StatKind::Counter,
        |s| &s.events_dropped,
    ),
    (
        "classroom_sfu_peer_connections",
        "Peer connections open now.",
        StatKind::Gauge,
        |s| &s.peer_connections,
    ),
    (
        "classroom_sfu_participants",
        "Participants in the media plane now.",
        StatKind::Gauge,
        |s| &s.participants,
    ),
    (
        "classroom_sfu_publications",
        "Publications forwarded now.",
        StatKind::Gauge,
        |s| &s.publications,
    ),
];

impl SfuCollector {
    fn new(sfu: sfu::SfuHandle) -> Result<SfuCollector, MetricsError> {
        let stats = SFU_STATS
            .into_iter()
            .map(|(name, help, kind, field)| {
                Ok(SfuStat {
                    name,
                    help,
                    kind,
                    field,
                    template: make_metric(name, help, kind, 0)?,
                })
            })
            .collect::<Result<_, MetricsError>>()?;
        Ok(SfuCollector { sfu, stats })
    }
}

fn make_metric(
    name: &str,
    help: &str,
    kind: StatKind,
    value: u64,
) -> Result<Box<dyn Collector>, MetricsError> {
    Ok(match kind {
        StatKind::Counter => {
            let c = IntCounter::new(name, help)?;
            c.inc_by(value);
            Box::new(c)
        }
        StatKind::Gauge => {
            let g = IntGauge::new(name, help)?;
            g.set(i64::try_from(value).unwrap_or(i64::MAX));
            Box::new(g)
        }
    })
}

impl Collector for SfuCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.stats.iter().flat_map(|s| s.template.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = self.sfu.stats();
        self.stats
            .iter()
            .filter_map(|s| {
                let value = (s.field)(stats).load(Ordering::Relaxed);
                // The names and help were accepted once already in `new`, so this cannot fail.
                make_metric(s.name, s.help, s.kind, value).ok()
            })
            .flat_map(|m| m.collect())
            .collect()
    }
}
