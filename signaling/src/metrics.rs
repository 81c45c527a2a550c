//! Prometheus metrics in a registry of our own (never the process-global default, so tests
//! that start several servers in one process do not collide). Every name starts `classroom_`.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::protocol::ErrorCode;

/// The control plane's metrics.
pub struct Metrics {
    registry: Registry,
    pub ws_connections: IntGauge,
    pub ws_rejected: IntCounter,
    pub participants: IntGauge,
    /// Lessons with at least one participant connected.
    pub live_lessons: IntGauge,
    pub ws_messages_in: IntCounterVec,
    pub ws_messages_out: IntCounterVec,
    pub ws_errors_sent: IntCounterVec,
    pub participants_left: IntCounterVec,
    pub slow_consumer_disconnects: IntCounter,
    pub peer_state_changes: IntCounterVec,
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
        let metrics = Metrics {
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
            registry,
        };
        Ok(metrics)
    }

    /// Exports the media plane's counters too, read at each scrape.
    pub fn export_sfu(&self, sfu: sfu::SfuHandle) -> Result<(), MetricsError> {
        self.registry.register(Box::new(SfuCollector::new(sfu)?))
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

const SFU_STATS: [(&str, &str, StatKind, StatField); 15] = [
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
