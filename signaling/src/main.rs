//! `classroom`: the whole system in one process — REST, WebSocket signaling, the SFU, the web
//! client. Prints its "ready" lines on stdout once listening (tests and scripts parse them);
//! logs go to stderr (`RUST_LOG`, default `info`). On the very first start it also creates the
//! `admin` account and prints a one-time sign-in link for it.
//!
//! `classroom admin …` manages accounts, schools and classrooms in the same data directory
//! instead of serving (see `signaling::admin`).

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use signaling::admin::AdminCommand;
use signaling::{Config, Server};
use tracing_subscriber::EnvFilter;

/// Flags override the config file; each flag can also come from its environment variable.
/// They may stand before or after `admin`.
#[derive(Debug, Parser)]
#[command(name = "classroom", version, about = "Live classroom streaming server")]
struct Cli {
    /// A TOML file with any `Config` fields; flags given here override it.
    #[arg(long, env = "CLASSROOM_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// HTTP address (REST, WebSocket, pages, metrics) [default: 127.0.0.1:8080].
    #[arg(long, env = "CLASSROOM_HTTP", value_name = "ADDR", global = true)]
    http: Option<SocketAddr>,
    /// Media UDP address [default: 127.0.0.1:5000]. Binding 0.0.0.0 needs --public-ip.
    #[arg(long, env = "CLASSROOM_UDP", value_name = "ADDR", global = true)]
    udp: Option<SocketAddr>,
    /// Data directory: database, signing secret, API key [default: ./data].
    #[arg(long, env = "CLASSROOM_DATA", value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    /// The address clients reach the media port at, when it is not the bound one.
    #[arg(long, env = "CLASSROOM_PUBLIC_IP", value_name = "IP", global = true)]
    public_ip: Option<IpAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage accounts, schools and classrooms in the data directory (also while serving).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

impl Cli {
    fn to_config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(http) = self.http {
            config.http = http;
        }
        if let Some(udp) = self.udp {
            config.udp = udp;
        }
        if let Some(data) = &self.data {
            config.data_dir = data.clone();
        }
        if let Some(ip) = self.public_ip {
            config.public_ip = Some(ip);
        }
        // `Server::start` validates it, once, for every embedder alike.
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files or CI output.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let cli = Cli::parse();
    let config = cli.to_config()?;
    if let Some(Command::Admin { command }) = cli.command {
        let link_addr = config.reachable(config.http);
        let mut input = std::io::stdin().lock();
        if input.is_terminal() && reads_password(&command) {
            eprintln!("Type the password and press Enter (it is shown as you type):");
        }
        let mut out = std::io::stdout().lock();
        signaling::admin::run(&config, link_addr, command, &mut input, &mut out).await?;
        return Ok(());
    }

    let server = Server::start(config).await.context("starting the server")?;

    // Links must be ones a browser can open: not 0.0.0.0.
    let console = server.state().config.reachable(server.http_addr());
    let mut out = std::io::stdout().lock();
    writeln!(out, "Classroom is ready.")?;
    writeln!(
        out,
        "  Teacher console: http://{console}/#key={}",
        server.admin_token()
    )?;
    if let Some(token) = server.first_signin_token() {
        writeln!(
            out,
            "  First sign-in (admin, one-time, 24 h): {}",
            signaling::services::signin::signin_url(&console.to_string(), token)
        )?;
    }
    writeln!(out, "  Media (UDP):     {}", server.media_addr())?;
    // Scripts wait for these lines through a pipe, where stdout is block-buffered.
    out.flush()?;
    drop(out);

    wait_for_signal().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

fn reads_password(command: &AdminCommand) -> bool {
    matches!(
        command,
        AdminCommand::SetPassword { .. }
            | AdminCommand::CreateUser {
                password_stdin: true,
                ..
            }
    )
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("listening for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("listening for Ctrl-C")?;
    Ok(())
}
