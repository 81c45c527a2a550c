//! The shard's event loop: the only code of the transport that touches the UDP socket, the
//! command channel, the thread it runs on or the clock. Each turn it reads the time, feeds
//! the [`Engine`] whatever came first — a command from the control plane, a batch of
//! datagrams, or the engine's own deadline — and sends the datagrams the engine queued.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use super::engine::Engine;
use super::{Command, SfuConfig, SfuError, SfuStats};

/// Datagrams read per wake-up before the loop looks at commands and timers again.
const RECV_BATCH: usize = 64;
/// Larger than any datagram a WebRTC peer sends (they keep under the path MTU).
const RECV_BUFFER: usize = 4096;

/// Binds the shard's socket and starts its loop on a dedicated thread. Returns the address
/// advertised in ICE candidates.
pub(crate) async fn spawn(
    config: SfuConfig,
    commands: mpsc::Receiver<Command>,
    stats: Arc<SfuStats>,
) -> Result<SocketAddr, SfuError> {
    if config.udp_bind.ip().is_unspecified() && config.public_ip.is_none() {
        return Err(SfuError::BadConfig(
            "binding media to an unspecified address needs a public IP for ICE candidates".into(),
        ));
    }
    let socket = std::net::UdpSocket::bind(config.udp_bind).map_err(SfuError::Bind)?;
    socket.set_nonblocking(true).map_err(SfuError::Bind)?;
    let bound = socket.local_addr().map_err(SfuError::Bind)?;
    let advertised = SocketAddr::new(config.public_ip.unwrap_or(bound.ip()), bound.port());
    let (started_tx, started_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("sfu-shard-0".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = started_tx.send(Err(SfuError::Bind(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let socket = match UdpSocket::from_std(socket) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = started_tx.send(Err(SfuError::Bind(e)));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(()));
                // Wall-clock time is read once, here; the engine carries it forward on the
                // monotonic clock.
                let since_unix_epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let engine =
                    Engine::new(&config, advertised, stats, Instant::now(), since_unix_epoch);
                run(engine, socket, commands).await;
            });
        })
        .map_err(SfuError::Bind)?;
    started_rx.await.map_err(|_| SfuError::Closed)??;
    info!(%advertised, %bound, "media shard listening");
    Ok(advertised)
}

async fn run(mut engine: Engine, socket: UdpSocket, mut commands: mpsc::Receiver<Command>) {
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        engine.handle_timeout(Instant::now());
        transmit(&mut engine, &socket);
        let deadline = engine.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(Command::Shutdown { done }) => {
                    engine.close_all(Instant::now());
                    transmit(&mut engine, &socket);
                    let _ = done.send(());
                    return;
                }
                Some(command) => engine.handle_command(Instant::now(), command),
                // Every handle is gone: nobody can use the media plane any more.
                None => {
                    engine.close_all(Instant::now());
                    transmit(&mut engine, &socket);
                    return;
                }
            },
            received = socket.recv_from(&mut buf) => {
                match received {
                    Ok((n, from)) => engine.handle_datagram(Instant::now(), from, &buf[..n]),
                    Err(e) => debug!(error = %e, "udp receive failed"),
                }
                transmit(&mut engine, &socket);
                for _ in 1..RECV_BATCH {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, from)) => engine.handle_datagram(Instant::now(), from, &buf[..n]),
                        Err(_) => break,
                    }
                    transmit(&mut engine, &socket);
                }
            }
            () = sleep => {}
        }
        transmit(&mut engine, &socket);
    }
}

/// Sends what the engine queued. `try_send_to` never waits: when the kernel buffer is full the
/// datagram is dropped (and counted) rather than stalling every other connection of the shard.
fn transmit(engine: &mut Engine, socket: &UdpSocket) {
    while let Some(t) = engine.poll_transmit() {
        if let Err(e) = socket.try_send_to(&t.contents, t.destination) {
            SfuStats::add(&engine.stats().udp_send_errors, 1);
            debug!(error = %e, to = %t.destination, "udp send failed");
        }
    }
}
