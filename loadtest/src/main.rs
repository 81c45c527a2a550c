//! `loadtest` — load runs against a running Classroom server.
//!
//! ```text
//! loadtest fanout --server http://127.0.0.1:PORT --admin-token T --subscribers 50 --seconds 30 [--server-pid PID]
//! ```
//! Prints a table, then the same figures as one JSON line.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use loadtest::PublishConfig;
use loadtest::fanout::{self, FanoutConfig};
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
                    ..PublishConfig::default()
                },
                timeout: Duration::from_secs(a.timeout),
                media_timeout: Duration::from_secs(a.timeout),
            };
            let report = fanout::run(&config).await.context("fan-out run")?;
            print!("{}", report.table());
            println!("{}", report.json());
        }
    }
    Ok(())
}
