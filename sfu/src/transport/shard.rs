//! (being written) — a placeholder loop so the crate builds while the transport is written.
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Command, SfuConfig, SfuError, SfuStats};

pub(crate) async fn spawn(
    config: SfuConfig,
    mut commands: mpsc::Receiver<Command>,
    _stats: Arc<SfuStats>,
) -> Result<SocketAddr, SfuError> {
    let socket = tokio::net::UdpSocket::bind(config.udp_bind)
        .await
        .map_err(SfuError::Bind)?;
    let addr = socket.local_addr().map_err(SfuError::Bind)?;
    tokio::spawn(async move {
        while let Some(cmd) = commands.recv().await {
            match cmd {
                Command::Join { reply, .. } => drop(reply.send(Err(SfuError::Closed))),
                Command::PublisherOffer { reply, .. } => drop(reply.send(Err(SfuError::Closed))),
                Command::Unpublish { reply, .. } => drop(reply.send(Err(SfuError::Closed))),
                Command::SubscriberAnswer { reply, .. } => drop(reply.send(Err(SfuError::Closed))),
                Command::Leave { .. } => {}
                Command::Shutdown { done } => {
                    let _ = done.send(());
                    break;
                }
            }
        }
        drop(socket);
    });
    Ok(addr)
}
