//! The subscriber leg of a bot: one peer connection, created on the server's first `offer` and
//! renegotiated on every later one, that receives and checks every track the SFU forwards.
//!
//! Each remote track gets a reader task that feeds its packets to a [`TrackStats`]. A video
//! reader can behave like a browser's: while it has no keyframe, or while its decoding has
//! been stuck on a frame that lost a packet for longer than retransmission takes, it sends PLI
//! (at most every 500 ms).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::protocol::{MediaKind, TrackMapping};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;

use crate::bot::BotError;
use crate::media;
use crate::peer;
use crate::report::TrackStats;

/// How a subscriber bot behaves.
#[derive(Debug, Clone)]
pub struct SubscribeConfig {
    /// Send PLI while no keyframe has arrived on a video track, or while decoding is stalled
    /// (see `stall_before_keyframe_request`), as a browser does.
    pub request_keyframes: bool,
    /// The shortest gap between two such PLIs.
    pub keyframe_request_interval: Duration,
    /// How long frames may wait on a lost packet before a keyframe is asked for instead: long
    /// enough for a NACK and its retransmission on a 300 ms round trip, short enough that a
    /// packet lost for good freezes the picture for about half a second, not until the next
    /// periodic keyframe.
    pub stall_before_keyframe_request: Duration,
}

impl Default for SubscribeConfig {
    fn default() -> Self {
        SubscribeConfig {
            request_keyframes: true,
            keyframe_request_interval: Duration::from_millis(500),
            stall_before_keyframe_request: Duration::from_millis(500),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A reader that panicked left its counters as they were; they are still worth reading.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the subscriber leg shares with its bot: per-track statistics and the mid → publication
/// map of the last offer.
///
/// Each track's stats sit behind their own mutex, taken per packet by that track's reader
/// only; a snapshot takes them one at a time. The locks are never held across an `.await`.
#[derive(Default)]
pub struct SubscriberShared {
    tracks: Mutex<Vec<Arc<Mutex<TrackStats>>>>,
    mids: Mutex<HashMap<String, u64>>,
    /// Woken on every received packet, for tests that wait for media.
    pub(crate) progress: Notify,
    pub offers_answered: AtomicU64,
    pub pli_sent: AtomicU64,
}

impl SubscriberShared {
    /// A copy of every track's statistics.
    pub fn snapshot(&self) -> Vec<TrackStats> {
        let tracks: Vec<_> = lock(&self.tracks).clone();
        tracks.iter().map(|t| lock(t).clone()).collect()
    }

    /// Runs `f` over the tracks without copying them.
    pub fn inspect<R>(&self, f: impl FnOnce(&[&TrackStats]) -> R) -> R {
        let tracks: Vec<_> = lock(&self.tracks).clone();
        let guards: Vec<_> = tracks.iter().map(|t| lock(t)).collect();
        let refs: Vec<&TrackStats> = guards.iter().map(|g| &**g).collect();
        f(&refs)
    }

    /// Starts a new measuring window on every track (see [`TrackStats::window`]).
    pub fn restart_windows(&self, now: Instant) {
        let tracks: Vec<_> = lock(&self.tracks).clone();
        for t in &tracks {
            lock(t).restart_window(now);
        }
    }

    /// The publication a mid carried in the last offer.
    pub fn publication_of(&self, mid: &str) -> Option<u64> {
        lock(&self.mids).get(mid).copied()
    }
}

/// The subscriber connection, owned by the bot's message loop.
pub(crate) struct SubscriberLeg {
    bind_ip: IpAddr,
    config: SubscribeConfig,
    shared: Arc<SubscriberShared>,
    pc: Option<Arc<dyn PeerConnection>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl SubscriberLeg {
    pub(crate) fn new(
        bind_ip: IpAddr,
        config: SubscribeConfig,
        shared: Arc<SubscriberShared>,
    ) -> Self {
        SubscriberLeg {
            bind_ip,
            config,
            shared,
            pc: None,
            tasks: Arc::default(),
        }
    }

    /// Applies a server offer and returns the answer's SDP.
    pub(crate) async fn handle_offer(
        &mut self,
        sdp: &str,
        tracks: &[TrackMapping],
    ) -> Result<String, BotError> {
        {
            let mut mids = lock(&self.shared.mids);
            mids.clear();
            mids.extend(tracks.iter().map(|t| (t.mid.clone(), t.publication_id)));
        }
        let pc = match &self.pc {
            Some(pc) => pc.clone(),
            None => {
                let (pc, events) = peer::new_peer(self.bind_ip, false).await?;
                let accept = tokio::spawn(accept_tracks(
                    Arc::downgrade(&pc),
                    events.tracks,
                    self.shared.clone(),
                    self.config.clone(),
                    self.tasks.clone(),
                ));
                lock(&self.tasks).push(accept);
                // Connection state is only logged: media arriving is what the bot measures.
                let mut state = events.state;
                lock(&self.tasks).push(tokio::spawn(async move {
                    while state.changed().await.is_ok() {
                        let s = *state.borrow();
                        debug!("subscriber connection {s}");
                    }
                }));
                self.pc = Some(pc.clone());
                pc
            }
        };
        pc.set_remote_description(RTCSessionDescription::offer(sdp.to_owned())?)
            .await?;
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer).await?;
        let sdp = pc
            .local_description()
            .await
            .ok_or(BotError::Protocol("no local description after setting it"))?
            .sdp;
        self.shared.offers_answered.fetch_add(1, Ordering::Relaxed);
        Ok(sdp)
    }

    pub(crate) async fn close(&mut self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        if let Some(pc) = self.pc.take()
            && let Err(e) = pc.close().await
        {
            debug!("closing subscriber connection: {e}");
        }
    }
}

impl Drop for SubscriberLeg {
    fn drop(&mut self) {
        // Readers must not outlive the bot (a test that failed, a bot aborted).
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }
}

/// Starts a reader for each remote track the connection announces.
async fn accept_tracks(
    pc: std::sync::Weak<dyn PeerConnection>,
    mut tracks: mpsc::Receiver<Arc<dyn TrackRemote>>,
    shared: Arc<SubscriberShared>,
    config: SubscribeConfig,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while let Some(track) = tracks.recv().await {
        let Some(pc) = pc.upgrade() else { break };
        let mid = mid_of(&pc, &track).await.unwrap_or_else(|| {
            warn!("no transceiver found for a remote track");
            String::from("?")
        });
        drop(pc);
        let kind = match track.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        };
        debug!("receiving {kind:?} on mid {mid}");
        let stats = Arc::new(Mutex::new(TrackStats::new(mid, kind)));
        lock(&shared.tracks).push(stats.clone());
        let reader = tokio::spawn(read_track(track, stats, shared.clone(), config.clone()));
        let mut tasks = lock(&tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(reader);
    }
}

/// The mid of the transceiver whose receiver carries `track`.
async fn mid_of(pc: &Arc<dyn PeerConnection>, track: &Arc<dyn TrackRemote>) -> Option<String> {
    let id = track.track_id().await;
    for t in pc.get_transceivers().await {
        let Ok(Some(receiver)) = t.receiver().await else {
            continue;
        };
        if receiver.track().track_id().await == id {
            return t.mid().await.ok().flatten();
        }
    }
    None
}

async fn read_track(
    track: Arc<dyn TrackRemote>,
    stats: Arc<Mutex<TrackStats>>,
    shared: Arc<SubscriberShared>,
    config: SubscribeConfig,
) {
    let video = lock(&stats).kind == MediaKind::Video;
    let mut last_pli: Option<Instant> = None;
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(pkt) => {
                let now = Instant::now();
                let need_keyframe = {
                    let mut s = lock(&stats);
                    s.record(
                        now,
                        media::now_us(),
                        pkt.header.sequence_number,
                        pkt.header.marker,
                        &pkt.payload,
                    );
                    video
                        && (s.first_keyframe_at.is_none()
                            || s.stalled_for(now)
                                .is_some_and(|d| d >= config.stall_before_keyframe_request))
                };
                shared.progress.notify_waiters();
                if need_keyframe
                    && config.request_keyframes
                    && last_pli.is_none_or(|t| now - t >= config.keyframe_request_interval)
                {
                    last_pli = Some(now);
                    let pli = PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc: pkt.header.ssrc,
                    };
                    match track.write_rtcp(vec![Box::new(pli)]).await {
                        Ok(()) => {
                            shared.pli_sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => debug!("sending PLI: {e}"),
                    }
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    let mid = lock(&stats).mid.clone();
    debug!("remote track on mid {mid} ended");
}
