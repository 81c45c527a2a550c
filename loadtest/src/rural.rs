//! The rural-link runs (`loadtest rural`): simulcast subscribers on impaired links, against a
//! running server, with figures for `docs/benchmarks.md` ("Rural links").
//!
//! - [`run_adaptation`] — a simulcast publisher, one subscriber on a clean link and one whose
//!   link (a [`Relay`]) turns from clean to a [`LinkProfile`] and back. After the link turns
//!   bad: how long until the layer the SFU forwards to the impaired subscriber settles (no
//!   change for [`RuralConfig::settle_hold`]; "paused", audio only, counts as a layer), then a
//!   steady window: the longest audio gap, the share of time video is frozen, layer switches.
//!   After it turns clean again: how long until the subscriber decodes the high layer.
//! - [`run_join_storm`] — N subscribers, each on its own impaired link, join at once: keyframe
//!   requests reaching the publisher per minute, and how the subscribers fared meanwhile.
//!
//! Gaps and freezes are defined in [`crate::playout`]; layers are those of decoded frames
//! (what a viewer sees), with the SFU's own view from the `quality` reports alongside.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use signaling::protocol::{Layer, MediaKind, Role, ServerMessage, Source, StreamQualityInfo};
use tokio::sync::broadcast;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

use crate::bot::{Bot, BotError, BotOptions, wait_event};
use crate::client::{ClientError, RestClient};
use crate::impair::{LinkProfile, Relay, RelayError, RelayStats};
use crate::playout::PlayoutSummary;
use crate::publisher::{PublishConfig, PublisherSnapshot};
use crate::report::TrackStats;

/// What to run.
#[derive(Debug, Clone)]
pub struct RuralConfig {
    /// `http://HOST:PORT` of the server.
    pub server: String,
    pub admin_token: String,
    /// The server's media (UDP) address: impaired subscribers' relays forward to it.
    pub media: SocketAddr,
    /// The profile's name, for the report.
    pub profile_name: String,
    pub profile: LinkProfile,
    /// A layer counts as settled once unchanged this long.
    pub settle_hold: Duration,
    /// The bound on waiting for a layer to settle after a change.
    pub settle_timeout: Duration,
    /// The steady window on the impaired link, once settled.
    pub steady: Duration,
    /// Subscribers of the join storm.
    pub subscribers: usize,
    /// The storm's measured window, from the moment they all start joining.
    pub storm: Duration,
    /// The bound on each bot's waits (join, answer, connection).
    pub timeout: Duration,
    /// Seeds the relays' loss draws.
    pub seed: u64,
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RuralError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Bot(#[from] BotError),
    #[error("relay: {0}")]
    Relay(#[from] RelayError),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The first received track of `kind`.
fn first_of<'a>(tracks: &[&'a TrackStats], kind: MediaKind) -> Option<&'a TrackStats> {
    tracks.iter().copied().find(|t| t.kind == kind)
}

/// The decoded video layer, when any frame has been decoded.
fn decoded_layer(tracks: &[&TrackStats]) -> Option<Option<Layer>> {
    first_of(tracks, MediaKind::Video)
        .filter(|t| t.frames_decoded > 0)
        .map(|t| t.layer)
}

/// Follows one bot's `quality` reports about one publication: the layer the SFU forwards,
/// when it changed, and the last report.
pub struct QualityWatch {
    state: Arc<Mutex<WatchState>>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct WatchState {
    changes: Vec<(Instant, Option<Layer>)>,
    last: Option<StreamQualityInfo>,
}

/// Layer changes a watch records at most, so its memory stays bounded; the last report is kept
/// current regardless.
const WATCH_CHANGES: usize = 1024;

impl QualityWatch {
    pub fn start(mut events: broadcast::Receiver<ServerMessage>, publication: u64) -> Self {
        let state = Arc::new(Mutex::new(WatchState::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let msg = match events.recv().await {
                    Ok(msg) => msg,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!("quality watch missed {n} messages");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let ServerMessage::Quality { receiving, .. } = msg else {
                    continue;
                };
                let Some(q) = receiving
                    .into_iter()
                    .find(|q| q.publication_id == publication)
                else {
                    continue;
                };
                let mut s = lock(&shared);
                if s.changes.last().is_none_or(|(_, l)| *l != q.layer)
                    && s.changes.len() < WATCH_CHANGES
                {
                    s.changes.push((Instant::now(), q.layer));
                }
                s.last = Some(q);
            }
        });
        QualityWatch { state, task }
    }

    /// The SFU's layer changes, oldest first.
    pub fn changes(&self) -> Vec<(Instant, Option<Layer>)> {
        lock(&self.state).changes.clone()
    }

    pub fn last(&self) -> Option<StreamQualityInfo> {
        lock(&self.state).last.clone()
    }
}

impl Drop for QualityWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Audio and video of one subscriber over one window.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Window {
    pub audio: PlayoutSummary,
    pub video: PlayoutSummary,
    /// Decoded-layer changes in the window.
    pub switches: usize,
}

fn window_of(bot: &Bot, since: Instant) -> Window {
    let now = Instant::now();
    bot.subscriber().inspect(|t| Window {
        audio: first_of(t, MediaKind::Audio)
            .map(|t| t.window(now))
            .unwrap_or_default(),
        video: first_of(t, MediaKind::Video)
            .map(|t| t.window(now))
            .unwrap_or_default(),
        switches: first_of(t, MediaKind::Video).map_or(0, |t| {
            t.layer_log.iter().filter(|(at, _)| *at > since).count()
        }),
    })
}

/// Layer changes after `since`, as (seconds after `since`, layer).
fn timeline(
    changes: impl IntoIterator<Item = (Instant, Option<Layer>)>,
    since: Instant,
) -> Vec<(f64, Option<Layer>)> {
    changes
        .into_iter()
        .filter(|(at, _)| *at >= since)
        .map(|(at, l)| ((at - since).as_secs_f64(), l))
        .collect()
}

/// What a phase waits for after its link change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// The SFU's forwarded layer unchanged for `settle_hold`.
    Settle,
    /// The high layer decoded (and forwarded).
    High,
}

/// One link change and what followed.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// The link the impaired subscriber was switched to.
    pub link: String,
    pub goal: Goal,
    /// From the link change to the goal: for [`Goal::Settle`] to the last change of the SFU's
    /// layer before it held; for [`Goal::High`] to the first high frame decoded while the SFU
    /// forwards high. `None` when not reached within `settle_timeout`.
    pub reached_s: Option<f64>,
    /// The layer the SFU forwards at the end (`None`: video paused, audio only).
    pub sfu_layer: Option<Layer>,
    /// The layer of the last decoded frame at the end.
    pub decoded_layer: Option<Layer>,
    /// Decoded-layer changes, seconds after the link change.
    pub decoded_layers: Vec<(f64, Option<Layer>)>,
    /// The SFU's forwarded-layer changes (from `quality`), seconds after the link change.
    pub sfu_layers: Vec<(f64, Option<Layer>)>,
    /// From the link change until the goal was reached (for [`Goal::Settle`], until the
    /// layer had held for `settle_hold`) or the timeout.
    pub transition: Window,
    /// Settled on the impaired link: the steady window (the first change only).
    pub steady: Option<Window>,
    /// The clean subscriber over the same time (transition and steady window together).
    pub clean: Window,
    pub clean_layer: Option<Layer>,
    /// PLI/FIR reaching the publisher during the phase, and per minute.
    pub keyframe_requests: u64,
    pub keyframe_requests_per_min: f64,
    /// The last `quality` report about the impaired subscriber's video.
    pub last_quality: Option<StreamQualityInfo>,
    pub relay: RelayStats,
}

/// The adaptation run's summary.
#[derive(Debug, Clone, Serialize)]
pub struct AdaptationReport {
    pub profile: String,
    pub impaired: PhaseReport,
    pub lifted: PhaseReport,
    pub publisher: PublisherSnapshot,
}

/// The teacher's camera publication, as `bot` knows it.
fn camera_of(bot: &Bot, teacher: u64) -> Option<u64> {
    bot.roster()
        .publications
        .values()
        .find(|p| p.participant_id == teacher && p.source == Source::Camera)
        .map(|p| p.id)
}

struct Rig {
    teacher: Bot,
    clean: Bot,
    impaired: Bot,
    relay: Relay,
    /// The teacher's camera publication.
    camera: u64,
    watch: QualityWatch,
}

async fn join(
    rest: &RestClient,
    lesson: i64,
    role: Role,
    name: &str,
    config: &RuralConfig,
    tweak: impl FnOnce(BotOptions) -> BotOptions,
) -> Result<Bot, RuralError> {
    let invite = rest.create_invite(lesson, role, name, None).await?;
    let mut options = BotOptions::new(name, rest.ws_url(), invite.token);
    options.timeout = config.timeout;
    Ok(Bot::join(tweak(options)).await?)
}

async fn rig(config: &RuralConfig) -> Result<Rig, RuralError> {
    let rest = RestClient::new(&config.server, &config.admin_token)?;
    let lesson = rest.create_lesson("Rural link run", "network").await?.id;
    let teacher = join(&rest, lesson, Role::Teacher, "Teacher", config, |o| {
        o.publishing(PublishConfig::simulcast())
    })
    .await?;
    let relay = Relay::start(config.media, LinkProfile::clean(), config.seed).await?;
    let at = relay.local_addr();
    let impaired = join(&rest, lesson, Role::Classroom, "Impaired", config, |o| {
        o.via_relay(at)
    })
    .await?;
    let clean = join(&rest, lesson, Role::Classroom, "Clean", config, |o| o).await?;
    let teacher_id = teacher.you().id;
    let camera = camera_of(&impaired, teacher_id).ok_or(BotError::Protocol(
        "the impaired subscriber was not told of the teacher's camera",
    ))?;
    let watch = QualityWatch::start(impaired.events(), camera);
    Ok(Rig {
        teacher,
        clean,
        impaired,
        relay,
        camera,
        watch,
    })
}

fn keyframe_requests(bot: &Bot) -> u64 {
    bot.publisher_stats().map_or(0, |s| s.keyframe_requests)
}

/// Waits until the SFU's layer for `rig`'s camera has not changed for `hold`, counting from
/// `since` at the latest; returns when it last changed.
async fn wait_settled(
    rig: &Rig,
    events: &mut broadcast::Receiver<ServerMessage>,
    since: Instant,
    hold: Duration,
    wait: Duration,
) -> Option<Instant> {
    let mut layer = rig.watch.last().and_then(|q| q.layer);
    let mut changed = since;
    wait_event(events, wait, "a settled layer", |m| {
        let ServerMessage::Quality { receiving, .. } = m else {
            return false;
        };
        let Some(q) = receiving.iter().find(|q| q.publication_id == rig.camera) else {
            return false;
        };
        let now = Instant::now();
        if q.layer != layer {
            layer = q.layer;
            changed = now;
        }
        now - changed >= hold
    })
    .await
    .ok()?;
    Some(changed)
}

/// Waits until the impaired subscriber decodes the high layer while the SFU forwards it.
async fn wait_high(rig: &Rig, wait: Duration) -> Option<Instant> {
    rig.impaired
        .wait_media(wait, "the high layer", |t| {
            decoded_layer(t) == Some(Some(Layer::High))
                && rig
                    .watch
                    .last()
                    .is_some_and(|q| q.layer == Some(Layer::High))
        })
        .await
        .ok()?;
    Some(Instant::now())
}

/// Switches the impaired link to `link` and waits for `goal`; with `steady`, then measures a
/// steady window.
async fn phase(
    rig: &Rig,
    config: &RuralConfig,
    name: &str,
    link: LinkProfile,
    goal: Goal,
    steady: Option<Duration>,
) -> Result<PhaseReport, RuralError> {
    let requests0 = keyframe_requests(&rig.teacher);
    // Subscribed before the change, so no report after it is missed.
    let mut events = rig.impaired.events();
    let changed = Instant::now();
    for bot in [&rig.impaired, &rig.clean] {
        bot.subscriber().restart_windows(changed);
    }
    rig.relay.set_profile(link).await?;
    let reached = match goal {
        Goal::Settle => {
            wait_settled(
                rig,
                &mut events,
                changed,
                config.settle_hold,
                config.settle_timeout,
            )
            .await
        }
        Goal::High => wait_high(rig, config.settle_timeout).await,
    };
    drop(events);
    if reached.is_none() {
        warn!(
            "{name}: {goal:?} not reached within {:?}",
            config.settle_timeout
        );
    }
    let transition = window_of(&rig.impaired, changed);
    let steady = match steady {
        Some(length) => {
            let from = Instant::now();
            rig.impaired.subscriber().restart_windows(from);
            // The measured window: media flows while we wait.
            tokio::time::sleep(length).await;
            Some(window_of(&rig.impaired, from))
        }
        None => None,
    };
    let elapsed = changed.elapsed();
    let requests = keyframe_requests(&rig.teacher) - requests0;
    let (decoded_layer_now, decoded) = rig.impaired.subscriber().inspect(|t| {
        let video = first_of(t, MediaKind::Video);
        (
            video.and_then(|v| v.layer),
            timeline(
                video.map(|v| v.layer_log.clone()).unwrap_or_default(),
                changed,
            ),
        )
    });
    Ok(PhaseReport {
        link: name.to_owned(),
        goal,
        reached_s: reached.map(|at| (at - changed).as_secs_f64()),
        sfu_layer: rig.watch.last().and_then(|q| q.layer),
        decoded_layer: decoded_layer_now,
        decoded_layers: decoded,
        sfu_layers: timeline(rig.watch.changes(), changed),
        transition,
        steady,
        clean: window_of(&rig.clean, changed),
        clean_layer: rig
            .clean
            .subscriber()
            .inspect(|t| decoded_layer(t).flatten()),
        keyframe_requests: requests,
        keyframe_requests_per_min: requests as f64 * 60.0 / elapsed.as_secs_f64(),
        last_quality: rig.watch.last(),
        relay: rig.relay.stats(),
    })
}

/// Runs the adaptation scenario (see the module docs).
pub async fn run_adaptation(config: &RuralConfig) -> Result<AdaptationReport, RuralError> {
    let rig = rig(config).await?;
    // Both start on the high layer over clean links.
    for bot in [&rig.impaired, &rig.clean] {
        bot.wait_media(config.settle_timeout, "the high layer", |t| {
            decoded_layer(t) == Some(Some(Layer::High))
        })
        .await?;
    }
    info!(
        "both subscribers on the high layer; impairing one link ({})",
        config.profile_name
    );
    let impaired = phase(
        &rig,
        config,
        &config.profile_name,
        config.profile.clone(),
        Goal::Settle,
        Some(config.steady),
    )
    .await?;
    info!("lifting the impairment");
    let lifted = phase(
        &rig,
        config,
        "clean",
        LinkProfile::clean(),
        Goal::High,
        None,
    )
    .await?;
    let publisher = rig.teacher.publisher_stats().unwrap_or_default();
    let Rig {
        teacher,
        clean,
        impaired: impaired_bot,
        relay,
        watch,
        ..
    } = rig;
    drop(watch);
    for bot in [impaired_bot, clean, teacher] {
        bot.close().await;
    }
    relay.stop().await;
    Ok(AdaptationReport {
        profile: config.profile_name.clone(),
        impaired,
        lifted,
        publisher,
    })
}

/// The join storm's summary.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    pub profile: String,
    pub subscribers: usize,
    pub join_failures: usize,
    /// Length of the window, from the first join, s.
    pub seconds: f64,
    /// PLI/FIR reaching the publisher in the window, in all and per layer (low, medium, high).
    pub keyframe_requests: u64,
    pub keyframe_requests_by_layer: [u64; 3],
    pub keyframe_requests_per_min: f64,
    /// Keyframes the publisher sent on request in the window (requests coalesce).
    pub keyframes_on_request: u64,
    /// Subscribers that decoded video.
    pub with_video: usize,
    /// Decoded layer at the end: subscribers per layer.
    pub layers: BTreeMap<String, usize>,
    /// Over subscribers, from each one's first packet: the longest audio gap (median and
    /// worst), and the share of time video was frozen (median and worst), in %.
    pub audio_longest_gap_p50_ms: f64,
    pub audio_longest_gap_max_ms: f64,
    pub video_frozen_p50_pct: f64,
    pub video_frozen_max_pct: f64,
}

fn median_and_max(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    (v[(v.len() - 1) / 2], v[v.len() - 1])
}

/// Runs the join storm (see the module docs).
pub async fn run_join_storm(config: &RuralConfig) -> Result<StormReport, RuralError> {
    let rest = RestClient::new(&config.server, &config.admin_token)?;
    let lesson = rest.create_lesson("Rural join storm", "network").await?.id;
    let teacher = join(&rest, lesson, Role::Teacher, "Teacher", config, |o| {
        o.publishing(PublishConfig::simulcast())
    })
    .await?;
    let mut invites = Vec::with_capacity(config.subscribers);
    let mut relays = Vec::with_capacity(config.subscribers);
    for i in 0..config.subscribers {
        invites.push(
            rest.create_invite(
                lesson,
                Role::Classroom,
                &format!("Rural classroom {i}"),
                None,
            )
            .await?,
        );
        let seed = config.seed.wrapping_add(i as u64);
        relays.push(Relay::start(config.media, config.profile.clone(), seed).await?);
    }
    let before = teacher.publisher_stats().unwrap_or_default();
    let started = Instant::now();
    let mut joins = JoinSet::new();
    for (i, (invite, relay)) in invites.into_iter().zip(&relays).enumerate() {
        let mut options = BotOptions::new(format!("rural{i}"), rest.ws_url(), invite.token)
            .via_relay(relay.local_addr());
        options.timeout = config.timeout;
        joins.spawn(Bot::join(options));
    }
    let mut bots = Vec::new();
    let mut join_failures = 0;
    while let Some(joined) = joins.join_next().await {
        match joined {
            Ok(Ok(bot)) => bots.push(bot),
            Ok(Err(e)) => {
                join_failures += 1;
                warn!("a subscriber could not join: {e}");
            }
            Err(e) => {
                join_failures += 1;
                warn!("a join task failed: {e}");
            }
        }
    }
    info!(
        "{} of {} subscribers joined in {:.1} s",
        bots.len(),
        config.subscribers,
        started.elapsed().as_secs_f64()
    );
    // The measured window: media flows while we wait.
    tokio::time::sleep_until(tokio::time::Instant::from_std(started + config.storm)).await;
    let seconds = started.elapsed().as_secs_f64();
    let after = teacher.publisher_stats().unwrap_or_default();
    let now = Instant::now();
    let mut layers = BTreeMap::new();
    let mut gaps = Vec::new();
    let mut frozen = Vec::new();
    let mut with_video = 0;
    for bot in &bots {
        bot.subscriber().inspect(|t| {
            if let Some(a) = first_of(t, MediaKind::Audio) {
                gaps.push(a.window(now).longest_gap_ms);
            }
            if let Some(v) = first_of(t, MediaKind::Video).filter(|v| v.frames_decoded > 0) {
                with_video += 1;
                frozen.push(v.window(now).frozen_pct);
                *layers.entry(layer_name(v.layer).to_owned()).or_insert(0) += 1;
            }
        });
    }
    let (gap_p50, gap_max) = median_and_max(gaps);
    let (frozen_p50, frozen_max) = median_and_max(frozen);
    let requests = after.keyframe_requests - before.keyframe_requests;
    let report = StormReport {
        profile: config.profile_name.clone(),
        subscribers: config.subscribers,
        join_failures,
        seconds,
        keyframe_requests: requests,
        keyframe_requests_by_layer: [0, 1, 2]
            .map(|i| after.keyframe_requests_by_layer[i] - before.keyframe_requests_by_layer[i]),
        keyframe_requests_per_min: requests as f64 * 60.0 / seconds,
        keyframes_on_request: after.keyframes_on_request - before.keyframes_on_request,
        with_video,
        layers,
        audio_longest_gap_p50_ms: gap_p50,
        audio_longest_gap_max_ms: gap_max,
        video_frozen_p50_pct: frozen_p50,
        video_frozen_max_pct: frozen_max,
    };
    let mut closing = JoinSet::new();
    for bot in bots {
        closing.spawn(bot.close());
    }
    while closing.join_next().await.is_some() {}
    teacher.close().await;
    for relay in relays {
        relay.stop().await;
    }
    Ok(report)
}

fn layer_name(l: Option<Layer>) -> &'static str {
    match l {
        None => "none",
        Some(Layer::Low) => "low",
        Some(Layer::Medium) => "medium",
        Some(Layer::High) => "high",
    }
}

fn layers_text(v: &[(f64, Option<Layer>)]) -> String {
    if v.is_empty() {
        return "(no change)".to_owned();
    }
    v.iter()
        .map(|(s, l)| format!("{s:.1}s {}", layer_name(*l)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl AdaptationReport {
    /// A summary for people.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for p in [&self.impaired, &self.lifted] {
            let reached = match (p.goal, p.reached_s) {
                (Goal::Settle, Some(s)) => format!("settled after {s:.1} s"),
                (Goal::High, Some(s)) => format!("high decoded after {s:.1} s"),
                (Goal::Settle, None) => "did not settle".to_owned(),
                (Goal::High, None) => "did not reach high".to_owned(),
            };
            let _ = writeln!(
                out,
                "link -> {}: {reached}; SFU forwards {}, last frame decoded {}",
                p.link,
                layer_name(p.sfu_layer),
                layer_name(p.decoded_layer),
            );
            let _ = writeln!(
                out,
                "  SFU layers: {}; decoded layers: {}",
                layers_text(&p.sfu_layers),
                layers_text(&p.decoded_layers),
            );
            let w = &p.transition;
            let _ = writeln!(
                out,
                "  transition {:.1} s: longest audio gap {:.0} ms; video frozen {:.1} % ({} freezes)",
                w.video.span_s.max(w.audio.span_s),
                w.audio.longest_gap_ms,
                w.video.frozen_pct,
                w.video.freezes
            );
            if let Some(w) = &p.steady {
                let _ = writeln!(
                    out,
                    "  steady {:.1} s: longest audio gap {:.0} ms; video frozen {:.2} % ({} freezes, {} frames); {} layer switches",
                    w.audio.span_s,
                    w.audio.longest_gap_ms,
                    w.video.frozen_pct,
                    w.video.freezes,
                    w.video.events,
                    w.switches
                );
            }
            let _ = writeln!(
                out,
                "  clean subscriber: on {}, longest audio gap {:.0} ms, video frozen {:.2} %",
                layer_name(p.clean_layer),
                p.clean.audio.longest_gap_ms,
                p.clean.video.frozen_pct
            );
            let _ = writeln!(
                out,
                "  keyframe requests at the publisher: {} ({:.1}/min); relay down: {} in, {} lost, {} queue drops",
                p.keyframe_requests,
                p.keyframe_requests_per_min,
                p.relay.down.received,
                p.relay.down.lost,
                p.relay.down.queue_dropped
            );
            if let Some(q) = &p.last_quality {
                let _ = writeln!(
                    out,
                    "  last quality report: layer {}, {} kbit/s, loss {:.1} %, rtt {:?} ms, {} freezes ({:.1} s) in all",
                    layer_name(q.layer),
                    q.bitrate_bps / 1000,
                    100.0 * q.loss,
                    q.rtt_ms,
                    q.freezes,
                    q.frozen_ms as f64 / 1000.0
                );
            }
        }
        out
    }
}

impl StormReport {
    /// A summary for people.
    pub fn table(&self) -> String {
        format!(
            "join storm, {} subscribers on {} links ({} failed to join), {:.0} s from the first join:\n  \
             keyframe requests at the publisher: {} ({:.1}/min; low {}, medium {}, high {}), {} keyframes sent on request\n  \
             {} decoding video, layers at the end {:?}; longest audio gap p50 {:.0} ms, max {:.0} ms; \
             video frozen p50 {:.2} %, max {:.2} %\n",
            self.subscribers,
            self.profile,
            self.join_failures,
            self.seconds,
            self.keyframe_requests,
            self.keyframe_requests_per_min,
            self.keyframe_requests_by_layer[0],
            self.keyframe_requests_by_layer[1],
            self.keyframe_requests_by_layer[2],
            self.keyframes_on_request,
            self.with_video,
            self.layers,
            self.audio_longest_gap_p50_ms,
            self.audio_longest_gap_max_ms,
            self.video_frozen_p50_pct,
            self.video_frozen_max_pct,
        )
    }
}
