//! `loadtest` — load runs against a running Classroom server.
//!
//! ```text
//! loadtest fanout --server http://127.0.0.1:PORT --admin-token T --subscribers 50 --seconds 30 [--server-pid PID]
//! loadtest rural --server http://127.0.0.1:PORT --admin-token T --media 127.0.0.1:UDPPORT --profile rural
//! ```
//! Each prints a table, then the same figures as JSON lines.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use loadtest::fanout::{self, FanoutConfig};
use loadtest::rural::{self, RuralConfig};
use loadtest::{LayerConfig, LinkProfile, PublishConfig};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "loadtest", about = "Classroom load runs with WebRTC bots")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One publisher (Opus + VP8) to N subscribers.
    Fanout(FanoutArgs),
    /// Simulcast subscribers on an impaired link: layer settling, audio gaps, video freezes,
    /// and keyframe requests when many join at once.
    Rural(RuralArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Profile {
    /// 2 % loss, 150 ms RTT, 600 kbit/s.
    Rural,
    /// 5 % loss, 300 ms RTT, 300 kbit/s.
    Harsh,
}

#[derive(Args)]
struct RuralArgs {
    /// The server, `http://HOST:PORT`.
    #[arg(long)]
    server: String,
    #[arg(long)]
    admin_token: String,
    /// The server's media address (`Media (UDP):` in its start-up lines).
    #[arg(long)]
    media: SocketAddr,
    #[arg(long, value_enum, default_value_t = Profile::Rural)]
    profile: Profile,
    /// Seconds a layer must hold to count as settled.
    #[arg(long, default_value_t = 10)]
    settle_hold: u64,
    /// Seconds to wait for a layer to settle after a link change.
    #[arg(long, default_value_t = 120)]
    settle_timeout: u64,
    /// Seconds of the steady window on the impaired link.
    #[arg(long, default_value_t = 60)]
    steady: u64,
    /// Subscribers of the join storm; 0 skips it.
    #[arg(long, default_value_t = 50)]
    subscribers: usize,
    /// Seconds of the join storm's window.
    #[arg(long, default_value_t = 60)]
    storm: u64,
    /// Skip the adaptation run (only the join storm).
    #[arg(long)]
    no_adaptation: bool,
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

#[derive(Args)]
struct FanoutArgs {
    /// The server, `http://HOST:PORT`.
    #[arg(long)]
    server: String,
    /// The admin token the server printed (`#key=` of the teacher console URL).
    #[arg(long)]
    admin_token: String,
    #[arg(long, default_value_t = 50)]
    subscribers: usize,
    /// Length of the measured window.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// The server's process id: adds CPU per egress packet and RSS per subscriber.
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, default_value_t = 1_000_000)]
    video_bitrate: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Seconds between unrequested keyframes.
    #[arg(long, default_value_t = 5)]
    keyframe_interval: u64,
    /// Subscribers joining at once.
    #[arg(long, default_value_t = 10)]
    join_concurrency: usize,
    /// Send the camera as three simulcast layers (low, medium, high) instead of one encoding
    /// of --video-bitrate.
    #[arg(long)]
    simulcast: bool,
    /// Seconds to wait for any one join step, and for all subscribers' first media.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            // rtc logs harmless ICE/DTLS chatter at warn for every connection.
            EnvFilter::new("warn,loadtest=info,rtc_ice=error,rtc_dtls=error")
        }))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Fanout(a) => {
            let config = FanoutConfig {
                server: a.server,
                admin_token: a.admin_token,
                subscribers: a.subscribers,
                seconds: a.seconds,
                server_pid: a.server_pid,
                join_concurrency: a.join_concurrency,
                publish: PublishConfig {
                    video_bitrate_bps: a.video_bitrate,
                    fps: a.fps,
                    keyframe_interval: Duration::from_secs(a.keyframe_interval),
                    simulcast: if a.simulcast {
                        LayerConfig::standard()
                    } else {
                        Vec::new()
                    },
                    ..PublishConfig::default()
                },
                timeout: Duration::from_secs(a.timeout),
                media_timeout: Duration::from_secs(a.timeout),
            };
            let report = fanout::run(&config).await.context("fan-out run")?;
            print!("{}", report.table());
            println!("{}", report.json());
        }
        Command::Rural(a) => {
            let (name, profile) = match a.profile {
                Profile::Rural => ("rural", LinkProfile::rural()),
                Profile::Harsh => ("harsh", LinkProfile::harsh()),
            };
            let config = RuralConfig {
                server: a.server,
                admin_token: a.admin_token,
                media: a.media,
                profile_name: name.to_owned(),
                profile,
                settle_hold: Duration::from_secs(a.settle_hold),
                settle_timeout: Duration::from_secs(a.settle_timeout),
                steady: Duration::from_secs(a.steady),
                subscribers: a.subscribers,
                storm: Duration::from_secs(a.storm),
                timeout: Duration::from_secs(a.timeout),
                seed: a.seed,
            };
            if !a.no_adaptation {
                let report = rural::run_adaptation(&config)
                    .await
                    .context("adaptation run")?;
                print!("{}", report.table());
                println!("{}", serde_json::to_string(&report)?);
            }
            if config.subscribers > 0 {
                let report = rural::run_join_storm(&config).await.context("join storm")?;
                print!("{}", report.table());
                println!("{}", serde_json::to_string(&report)?);
            }
        }
    }
    Ok(())
}
