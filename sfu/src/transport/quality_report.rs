//! Quality reports: every [`QUALITY_INTERVAL`] each participant is told how what it publishes
//! arrives (from the core's meter of each received stream) and how what it receives fares (from
//! its subscriber's receiver reports, NACKs and keyframe requests, and the core's freeze
//! count). The same pass drains the link counters the interceptors keep into the media
//! plane's metrics, hands the throttle its round trip, and feeds the downlink the loss of
//! what was received, weighted by rate.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::engine::Engine;
use super::{QUALITY_INTERVAL, SfuEvent, SfuStats, StreamQuality};

impl Engine {
    /// Tells every participant how its streams fared since the last report.
    pub(super) fn report_quality(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.quality_at);
        self.quality_at = now;
        self.next_quality = now + QUALITY_INTERVAL;
        let mut reports = Vec::new();
        for (&participant, p) in self.participants.iter_mut() {
            // The core meters each received stream (`Router::publishing_quality`).
            let mut publishing: Vec<StreamQuality> = self
                .router
                .publishing_quality(participant, elapsed)
                .into_iter()
                .map(|(publication, layer, sample)| StreamQuality {
                    publication,
                    layer,
                    bitrate_bps: sample.bitrate_bps,
                    loss: sample.loss,
                    jitter_ms: sample.jitter_ms,
                    rtt_ms: None,
                    nacks: 0,
                    keyframe_requests: 0,
                    freezes: 0,
                    frozen_ms: 0,
                })
                .collect();
            let mut receiving = Vec::new();
            if let Some(peer) = self.peers.get_mut(&p.subscriber) {
                // The throttle holds a resend for most of a round trip: the longest of the
                // streams' (they share the link; audio reports arrive more often).
                let rtt = peer
                    .senders
                    .values()
                    .filter_map(|s| s.stats.rtt())
                    .max()
                    .map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
                peer.link.rtt_ms.store(rtt, Ordering::Relaxed);
                let link = &peer.link;
                let resent = link.retransmissions.swap(0, Ordering::Relaxed);
                let struck = link.retransmissions_suppressed.swap(0, Ordering::Relaxed);
                SfuStats::add(&self.stats.retransmissions, resent);
                SfuStats::add(&self.stats.retransmissions_suppressed, struck);
                let rtx = link.rtx_sent.swap(0, Ordering::Relaxed);
                SfuStats::add(&self.stats.rtx_packets, rtx);
                let probes = link.probe_packets.swap(0, Ordering::Relaxed);
                SfuStats::add(&self.stats.probe_packets, probes);
                for (&publication, sender) in peer.senders.iter_mut().filter(|(_, s)| s.attached) {
                    let sample = sender.stats.interval(elapsed);
                    let freezes = self
                        .router
                        .freezes(now, participant, publication)
                        .unwrap_or_default();
                    let began = freezes.count.saturating_sub(sender.freezes_reported);
                    sender.freezes_reported = freezes.count;
                    SfuStats::add(&self.stats.video_freezes, began);
                    receiving.push(StreamQuality {
                        publication,
                        layer: sender.layer,
                        bitrate_bps: sample.bitrate_bps,
                        loss: sample.loss,
                        jitter_ms: sample.jitter_ms,
                        rtt_ms: sample
                            .rtt
                            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
                        nacks: sender.stats.nacks,
                        keyframe_requests: sender.stats.keyframe_requests,
                        freezes: freezes.count,
                        frozen_ms: u64::try_from(freezes.frozen.as_millis()).unwrap_or(u64::MAX),
                    });
                }
            }
            // What it received feeds its downlink estimator (which weights the loss by rate).
            let capacity = self
                .peers
                .get(&p.subscriber)
                .and_then(|peer| peer.link.capacity());
            p.downlink.on_receiver_reports(
                now,
                receiving.iter().map(|q| (q.loss, q.bitrate_bps)),
                capacity,
            );
            if !publishing.is_empty() || !receiving.is_empty() {
                publishing.sort_by_key(|q| (q.publication, q.layer));
                receiving.sort_by_key(|q| q.publication);
                reports.push((
                    participant,
                    SfuEvent::Quality {
                        publishing,
                        receiving,
                    },
                ));
            }
        }
        for (participant, report) in reports {
            self.emit(participant, report);
        }
        self.apply_estimates(now);
    }
}
