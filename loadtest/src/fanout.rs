//! The fan-out load run: one publisher (Opus + ~1 Mbit/s VP8) to N subscribers through a running
//! server, then a summary of delivery, forward latency and — given the server's pid — what the
//! server spent: CPU per egress packet and memory per subscriber.
//!
//! Order of a run:
//! 1. create a lesson and invites over REST (admin token);
//! 2. join the publisher and wait until it sends; read the server's RSS;
//! 3. join the subscribers, a few at a time, and wait (bounded) until each has audio and a
//!    video keyframe; read the RSS again;
//! 4. measure for `seconds`: server CPU time (`/proc/PID/stat`), egress packets (the
//!    `classroom_sfu_rtp_packets_out` counter of `/metrics`, else what the subscribers got);
//! 5. close every bot and sum up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling::protocol::{MediaKind, Role};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::bot::{Bot, BotError, BotOptions};
use crate::client::{ClientError, RestClient, metric_sum};
use crate::publisher::PublishConfig;
use crate::report::{FanoutReport, ServerCost, TrackStats};

/// The server counter of RTP packets sent to subscribers.
pub const EGRESS_METRIC: &str = "classroom_sfu_rtp_packets_out";

/// What to run.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// `http://HOST:PORT` of the server.
    pub server: String,
    pub admin_token: String,
    pub subscribers: usize,
    /// Length of the measured window.
    pub seconds: u64,
    /// The server process, for CPU and RSS; without it only delivery and latency are reported.
    pub server_pid: Option<u32>,
    /// Subscribers joining at the same time.
    pub join_concurrency: usize,
    pub publish: PublishConfig,
    /// The bound on each bot's waits (join, answer, connection).
    pub timeout: Duration,
    /// The bound on waiting for every subscriber's first media.
    pub media_timeout: Duration,
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Bot(#[from] BotError),
    #[error("no subscriber could join")]
    NobodyJoined,
}

/// CPU time and resident memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub cpu: Duration,
    pub rss_kib: Option<u64>,
    pub at: Instant,
}

/// Clock ticks per second of `/proc/PID/stat` times: `getconf CLK_TCK`, 100 when unknown
/// (the value on every Linux we run on).
fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Reads utime + stime and VmRSS of `pid`.
pub fn sample_process(pid: u32, ticks_per_s: u64) -> std::io::Result<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line; the first after ')' is field 3.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    let (Some(utime), Some(stime)) = (ticks(11), ticks(12)) else {
        return Err(std::io::Error::other(format!(
            "unexpected /proc/{pid}/stat: {stat}"
        )));
    };
    let cpu = Duration::from_secs_f64((utime + stime) as f64 / ticks_per_s as f64);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok());
    Ok(ProcSample { cpu, rss_kib, at })
}

async fn egress_counter(rest: &RestClient) -> Option<f64> {
    let text = rest.metrics().await.ok()?;
    metric_sum(&text, EGRESS_METRIC)
        .or_else(|| metric_sum(&text, &format!("{EGRESS_METRIC}_total")))
}

fn received_packets(bots: &[Bot]) -> u64 {
    bots.iter()
        .map(|b| {
            b.subscriber()
                .inspect(|t| t.iter().map(|t| t.packets).sum::<u64>())
        })
        .sum()
}

/// Runs the fan-out and returns its summary.
pub async fn run(config: &FanoutConfig) -> Result<FanoutReport, FanoutError> {
    let rest = RestClient::new(&config.server, &config.admin_token)?;
    let ticks = clock_ticks();
    let sample = |what: &str| {
        config
            .server_pid
            .and_then(|pid| match sample_process(pid, ticks) {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!("reading server process {pid} {what}: {e}");
                    None
                }
            })
    };

    let lesson = rest.create_lesson("Fan-out load test", "network").await?;
    let teacher = rest
        .create_invite(lesson.id, Role::Teacher, "Load-test teacher", None)
        .await?;
    let mut invites = Vec::with_capacity(config.subscribers);
    for i in 0..config.subscribers {
        let name = format!("Classroom bot {i}");
        invites.push(
            rest.create_invite(lesson.id, Role::Classroom, &name, None)
                .await?,
        );
    }
    info!(
        "lesson {} with {} subscriber invites",
        lesson.id,
        invites.len()
    );

    let mut options = BotOptions::new("publisher", rest.ws_url(), teacher.token);
    options.timeout = config.timeout;
    let publisher = Bot::join(options.publishing(config.publish.clone())).await?;
    let before_join = sample("before join");

    let join_started = Instant::now();
    let limit = Arc::new(Semaphore::new(config.join_concurrency.max(1)));
    let mut joins = JoinSet::new();
    for (i, invite) in invites.into_iter().enumerate() {
        let mut options = BotOptions::new(format!("sub{i}"), rest.ws_url(), invite.token);
        options.timeout = config.timeout;
        let limit = limit.clone();
        joins.spawn(async move {
            // The semaphore lives as long as the run.
            let _permit = limit.acquire_owned().await;
            (i, Bot::join(options).await)
        });
    }
    let mut subscribers: Vec<(usize, Bot)> = Vec::new();
    let mut join_failures = 0;
    while let Some(joined) = joins.join_next().await {
        match joined {
            Ok((i, Ok(bot))) => subscribers.push((i, bot)),
            Ok((i, Err(e))) => {
                join_failures += 1;
                warn!("subscriber {i} could not join: {e}");
            }
            Err(e) => {
                join_failures += 1;
                warn!("a join task failed: {e}");
            }
        }
    }
    subscribers.sort_by_key(|(i, _)| *i);
    let subscribers: Vec<Bot> = subscribers.into_iter().map(|(_, b)| b).collect();
    if subscribers.is_empty() {
        publisher.close().await;
        return Err(FanoutError::NobodyJoined);
    }
    info!(
        "{} subscribers joined in {:.1} s",
        subscribers.len(),
        join_started.elapsed().as_secs_f64()
    );

    // Bounded by one deadline for all, so a run with a broken SFU still ends and reports.
    let deadline = tokio::time::Instant::now() + config.media_timeout;
    let want_video = config.publish.video;
    let want_audio = config.publish.audio;
    let mut without_media = 0;
    for bot in &subscribers {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ready = bot
            .wait_media(left, "first audio and video keyframe", |tracks| {
                let has = |kind: MediaKind, keyframe: bool| {
                    tracks
                        .iter()
                        .any(|t| t.kind == kind && t.unique > 0 && (!keyframe || t.keyframes > 0))
                };
                (!want_audio || has(MediaKind::Audio, false))
                    && (!want_video || has(MediaKind::Video, true))
            })
            .await;
        if let Err(e) = ready {
            without_media += 1;
            warn!("{e}");
        }
    }
    if without_media > 0 {
        warn!("{without_media} subscribers have no media yet; measuring anyway");
    }
    let after_join = sample("after join");

    let cpu0 = sample("at window start");
    let bots0 = sample_process(std::process::id(), ticks).ok();
    let egress0 = egress_counter(&rest).await;
    let rx0 = received_packets(&subscribers);
    let window_start = Instant::now();
    // The measured window: the workload runs while we wait.
    tokio::time::sleep(Duration::from_secs(config.seconds)).await;
    let window = window_start.elapsed();
    let cpu1 = sample("at window end");
    let bots1 = sample_process(std::process::id(), ticks).ok();
    let egress1 = egress_counter(&rest).await;
    let rx1 = received_packets(&subscribers);

    let sent = publisher.publisher_stats().unwrap_or_default();
    let tracks: Vec<Vec<TrackStats>> = subscribers.iter().map(|b| b.tracks()).collect();
    let joined_at: Vec<Instant> = subscribers.iter().map(|b| b.joined_at).collect();

    let (egress_packets, egress_source) = match (egress0, egress1) {
        (Some(a), Some(b)) if b >= a => ((b - a) as u64, "metrics"),
        _ => (rx1.saturating_sub(rx0), "subscribers"),
    };
    let cpu_s = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b.cpu.saturating_sub(a.cpu).as_secs_f64()),
        _ => None,
    };
    let rss_before = before_join.and_then(|s| s.rss_kib);
    let rss_after = after_join.and_then(|s| s.rss_kib);
    let server = ServerCost {
        cpu_s,
        window_s: window.as_secs_f64(),
        egress_packets,
        egress_source,
        cpu_us_per_egress_packet: cpu_s
            .filter(|_| egress_packets > 0)
            .map(|cpu| cpu * 1e6 / egress_packets as f64),
        cpu_pct_of_core: cpu_s.map(|cpu| 100.0 * cpu / window.as_secs_f64()),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        rss_per_subscriber_kib: match (rss_before, rss_after) {
            (Some(a), Some(b)) => Some((b as f64 - a as f64) / subscribers.len() as f64),
            _ => None,
        },
    };
    let mut report = FanoutReport::build(
        window.as_secs_f64(),
        &joined_at,
        &tracks,
        sent.audio_packets,
        sent.video_packets,
        server,
    );
    report.join_failures = join_failures;
    report.bots_cpu_pct_of_core = match (bots0, bots1) {
        (Some(a), Some(b)) => {
            Some(100.0 * b.cpu.saturating_sub(a.cpu).as_secs_f64() / window.as_secs_f64())
        }
        _ => None,
    };
    report.publisher = Some(sent);

    let mut closing = JoinSet::new();
    for bot in subscribers {
        closing.spawn(bot.close());
    }
    while closing.join_next().await.is_some() {}
    publisher.close().await;
    Ok(report)
}
