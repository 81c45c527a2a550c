//! Link impairment for tests and load runs: what a rural or mobile access link does to a
//! participant's UDP traffic, applied on loopback.
//!
//! - [`LinkProfile`] — one direction's impairments: random loss, a fixed delay, jitter (with
//!   or without reordering) and a bandwidth cap with a bounded queue. Named profiles:
//!   [`LinkProfile::clean`], [`LinkProfile::rural`], [`LinkProfile::harsh`].
//! - [`Impairment`] — one direction, sans-I/O: no socket, no clock. Datagrams go in with
//!   [`Impairment::push`] at an `Instant` the caller chooses and come out of
//!   [`Impairment::poll`] once due; [`Impairment::next_deadline`] says when to poll next. Seeded,
//!   so the same inputs at the same instants give the same outputs.
//! - [`Relay`] — a tokio UDP relay on `127.0.0.1:0` between one client and one server port,
//!   one [`Impairment`] each way, whose profile can change while it runs.
//! - [`rewrite_candidates`] — points the host candidates of a remote SDP at a relay, which is
//!   how a bot's media is made to go through one (see [`crate::BotOptions::via_relay`]).

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, trace, warn};

/// How jitter is drawn around the fixed delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitterDistribution {
    /// Uniform in `[-jitter, +jitter]`.
    Uniform,
    /// Normal with standard deviation `jitter`, cut at three deviations so one unlucky draw
    /// cannot hold a packet for seconds.
    Normal,
}

/// How much a rate-limited link may hold before it drops the newest datagram (drop tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueLimit {
    Bytes(usize),
    /// As much as the link drains in this long at its rate.
    Time(Duration),
}

/// A bandwidth cap: a token bucket in front of a bounded FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Must be above zero; [`Impairment`] treats zero as "no cap" rather than a dead link.
    pub kbit_per_s: u32,
    /// What the bucket holds when full: bytes that may pass back to back at line speed.
    pub burst_bytes: usize,
    pub queue: QueueLimit,
}

impl RateLimit {
    /// `kbit_per_s` with a 3000-byte burst (two full-size packets) and a 200 ms queue, about
    /// what a DSL or LTE modem buffers.
    pub fn kbit_per_s(kbit_per_s: u32) -> Self {
        RateLimit {
            kbit_per_s,
            burst_bytes: 3000,
            queue: QueueLimit::Time(Duration::from_millis(200)),
        }
    }

    fn bits_per_s(&self) -> u64 {
        u64::from(self.kbit_per_s) * 1000
    }

    /// How long the link takes to drain `bytes`.
    fn drain_time(&self, bytes: usize) -> Duration {
        let nanos = (bytes as u128 * 8 * 1_000_000_000) / u128::from(self.bits_per_s().max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn queue_bytes(&self) -> usize {
        match self.queue {
            QueueLimit::Bytes(b) => b,
            QueueLimit::Time(t) => {
                let bytes = u128::from(self.bits_per_s()) * t.as_nanos() / 8 / 1_000_000_000;
                usize::try_from(bytes).unwrap_or(usize::MAX)
            }
        }
    }
}

/// What one direction of a link does to datagrams. Round-trip figures in the named profiles
/// are split evenly, so a profile is applied to both directions of a [`Relay`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinkProfile {
    /// Datagrams lost at random, in percent (0–100).
    pub loss_percent: f64,
    pub delay: Duration,
    /// Spread around `delay`; zero for none.
    pub jitter: Duration,
    pub jitter_distribution: JitterDistribution,
    /// Let jitter reorder datagrams. Off, a datagram never leaves before one pushed earlier:
    /// it waits for it, as on a link with one queue.
    pub allow_reorder: bool,
    pub rate: Option<RateLimit>,
}

impl LinkProfile {
    /// Passes everything at once.
    pub fn clean() -> Self {
        LinkProfile {
            loss_percent: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            jitter_distribution: JitterDistribution::Uniform,
            allow_reorder: false,
            rate: None,
        }
    }

    /// A rural DSL or fixed-wireless link: 2 % loss, 150 ms RTT, 600 kbit/s.
    pub fn rural() -> Self {
        LinkProfile {
            loss_percent: 2.0,
            delay: Duration::from_millis(75),
            rate: Some(RateLimit::kbit_per_s(600)),
            ..LinkProfile::clean()
        }
    }

    /// A poor mobile link: 5 % loss, 300 ms RTT, 300 kbit/s.
    pub fn harsh() -> Self {
        LinkProfile {
            loss_percent: 5.0,
            delay: Duration::from_millis(150),
            rate: Some(RateLimit::kbit_per_s(300)),
            ..LinkProfile::clean()
        }
    }

    pub fn with_loss_percent(mut self, percent: f64) -> Self {
        self.loss_percent = percent;
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_jitter(mut self, jitter: Duration, distribution: JitterDistribution) -> Self {
        self.jitter = jitter;
        self.jitter_distribution = distribution;
        self
    }

    pub fn with_reorder(mut self, allow: bool) -> Self {
        self.allow_reorder = allow;
        self
    }

    pub fn with_rate(mut self, rate: Option<RateLimit>) -> Self {
        self.rate = rate;
        self
    }
}

/// What one direction did. `received = delivered + dropped() + still in flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImpairStats {
    pub received: u64,
    pub received_bytes: u64,
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// Random loss.
    pub lost: u64,
    /// Tail drops at the rate limiter's full queue.
    pub queue_dropped: u64,
    /// Drops because [`MAX_IN_FLIGHT`] datagrams were already held.
    pub overflow: u64,
}

impl ImpairStats {
    pub fn dropped(&self) -> u64 {
        self.lost + self.queue_dropped + self.overflow
    }
}

/// Datagrams one direction holds at most, whatever the profile: without a rate limit nothing
/// else bounds a long delay line. 8192 is ~5 s of a 1 Mbit/s video stream.
pub const MAX_IN_FLIGHT: usize = 8192;

/// A datagram on its way out, ordered by release time, then by arrival.
struct InFlight {
    release: Instant,
    seq: u64,
    datagram: Bytes,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    // Reversed: `BinaryHeap` is a max-heap and the earliest release must come out first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.release, other.seq).cmp(&(self.release, self.seq))
    }
}

/// The rate limiter's state, as a virtual schedule rather than a real queue: each datagram's
/// departure is computed when it arrives (the link is FIFO, so nothing later can change it).
#[derive(Default)]
struct Shaper {
    /// When the bucket will be full again given what has been admitted (GCRA's "theoretical
    /// arrival time"); `None` while it is full.
    full_at: Option<Instant>,
    /// (departure, bytes) of datagrams admitted but not yet departed, in departure order; their
    /// bytes are what the queue holds.
    waiting: VecDeque<(Instant, usize)>,
    waiting_bytes: usize,
}

impl Shaper {
    /// When a datagram of `bytes` arriving at `now` leaves the limiter, or `None` if the queue
    /// has no room for it.
    fn admit(&mut self, rate: &RateLimit, now: Instant, bytes: usize) -> Option<Instant> {
        while let Some(&(departs, b)) = self.waiting.front() {
            if departs > now {
                break;
            }
            self.waiting.pop_front();
            self.waiting_bytes -= b;
        }
        // A token bucket of depth `burst` filling at `rate`: the datagram may leave once the
        // bucket, after paying for it, would not be in debt.
        let full_at = self.full_at.map_or(now, |t| t.max(now)) + rate.drain_time(bytes);
        let burst = rate.drain_time(rate.burst_bytes);
        let departs = full_at.checked_sub(burst).map_or(now, |t| t.max(now));
        if departs > now {
            if self.waiting_bytes + bytes > rate.queue_bytes() {
                return None;
            }
            self.waiting.push_back((departs, bytes));
            self.waiting_bytes += bytes;
        }
        self.full_at = Some(full_at);
        Some(departs)
    }
}

/// One direction of an impaired link, sans-I/O.
///
/// The caller owns time: `push` a datagram at `now`, then `poll` at or after
/// [`next_deadline`](Self::next_deadline) until it returns `None`. Loss, the rate limiter's
/// admission and the delay are decided at `push`, so a profile change affects datagrams pushed
/// after it; those already held keep their release time.
pub struct Impairment {
    profile: LinkProfile,
    rng: StdRng,
    shaper: Shaper,
    held: BinaryHeap<InFlight>,
    next_seq: u64,
    /// The latest release time handed out, for keeping order when reordering is off.
    last_release: Option<Instant>,
    stats: ImpairStats,
}

impl Impairment {
    pub fn new(profile: LinkProfile, seed: u64) -> Self {
        Impairment {
            profile,
            rng: StdRng::seed_from_u64(seed),
            shaper: Shaper::default(),
            held: BinaryHeap::new(),
            next_seq: 0,
            last_release: None,
            stats: ImpairStats::default(),
        }
    }

    pub fn profile(&self) -> &LinkProfile {
        &self.profile
    }

    /// Applies to datagrams pushed from now on. The rate limiter keeps its debt if a limit
    /// remains, so a change of rate does not release a burst.
    pub fn set_profile(&mut self, profile: LinkProfile) {
        if profile.rate.is_none() {
            self.shaper = Shaper::default();
        }
        self.profile = profile;
    }

    pub fn stats(&self) -> ImpairStats {
        self.stats
    }

    /// Datagrams held, waiting for their release.
    pub fn in_flight(&self) -> usize {
        self.held.len()
    }

    /// Takes a datagram that arrived at `now`; it is dropped (and counted) or held until due.
    pub fn push(&mut self, now: Instant, datagram: Bytes) {
        let bytes = datagram.len();
        self.stats.received += 1;
        self.stats.received_bytes += bytes as u64;

        // Drawn only when needed, so a profile without loss or jitter uses no randomness and
        // the other draws stay the same when one is turned off.
        let loss = self.profile.loss_percent.clamp(0.0, 100.0) / 100.0;
        if loss > 0.0 && self.rng.random::<f64>() < loss {
            self.stats.lost += 1;
            trace!(bytes, "impairment: lost");
            return;
        }
        if self.held.len() >= MAX_IN_FLIGHT {
            self.stats.overflow += 1;
            return;
        }
        let departs = match self.profile.rate.filter(|r| r.kbit_per_s > 0) {
            Some(rate) => match self.shaper.admit(&rate, now, bytes) {
                Some(t) => t,
                None => {
                    self.stats.queue_dropped += 1;
                    trace!(bytes, "impairment: queue full");
                    return;
                }
            },
            None => now,
        };
        let mut release = departs + self.delay_sample();
        if !self.profile.allow_reorder
            && let Some(last) = self.last_release
        {
            release = release.max(last);
        }
        self.last_release = Some(self.last_release.map_or(release, |l| l.max(release)));
        self.held.push(InFlight {
            release,
            seq: self.next_seq,
            datagram,
        });
        self.next_seq += 1;
    }

    /// The fixed delay plus this datagram's jitter, never below zero.
    fn delay_sample(&mut self) -> Duration {
        let delay = self.profile.delay;
        let jitter = self.profile.jitter.as_secs_f64();
        if jitter <= 0.0 {
            return delay;
        }
        let offset = match self.profile.jitter_distribution {
            JitterDistribution::Uniform => (self.rng.random::<f64>() * 2.0 - 1.0) * jitter,
            JitterDistribution::Normal => {
                // Box–Muller; `1 - u` keeps the logarithm's argument in (0, 1].
                let u1 = 1.0 - self.rng.random::<f64>();
                let u2 = self.rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                z.clamp(-3.0, 3.0) * jitter
            }
        };
        let total = (delay.as_secs_f64() + offset).max(0.0);
        Duration::from_secs_f64(total)
    }

    /// The next datagram due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<Bytes> {
        if self.held.peek()?.release > now {
            return None;
        }
        let out = self.held.pop()?;
        self.stats.delivered += 1;
        self.stats.delivered_bytes += out.datagram.len() as u64;
        Some(out.datagram)
    }

    /// When the next held datagram is due; `None` when nothing is held.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held.peek().map(|d| d.release)
    }
}

/// Rewrites the address of every UDP candidate in `sdp` to `to`, so that ICE checks and then
/// all media go to `to` (a [`Relay`]) instead. Other lines are kept byte for byte.
///
/// Meant for the SFU's SDP: it is ICE-lite with one host candidate, so pointing that candidate
/// elsewhere moves the whole connection. A line that does not parse as a candidate is kept.
pub fn rewrite_candidates(sdp: &str, to: SocketAddr) -> String {
    let mut out = String::with_capacity(sdp.len() + 32);
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        match rewrite_candidate_line(body, to) {
            Some(rewritten) => {
                out.push_str(&rewritten);
                out.push_str(ending);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// `a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...`
fn rewrite_candidate_line(line: &str, to: SocketAddr) -> Option<String> {
    let rest = line.strip_prefix("a=candidate:")?;
    let mut fields: Vec<&str> = rest.split(' ').collect();
    if fields.len() < 6 || !fields[2].eq_ignore_ascii_case("udp") {
        return None;
    }
    let ip = to.ip().to_string();
    let port = to.port().to_string();
    fields[4] = &ip;
    fields[5] = &port;
    Some(format!("a=candidate:{}", fields.join(" ")))
}

/// Why a relay could not start or take a command.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("binding the relay's sockets: {0}")]
    Bind(#[source] std::io::Error),
    #[error("the relay has stopped")]
    Stopped,
    #[error("relay counters not as expected after {after:?}: {last:?}")]
    Timeout { after: Duration, last: RelayStats },
}

/// What a relay did, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// Client → server.
    pub up: ImpairStats,
    /// Server → client.
    pub down: ImpairStats,
    /// Datagrams from an address other than the client's, dropped: a relay serves one client.
    pub strangers: u64,
    /// Datagrams the relay could not send (the socket refused them).
    pub send_errors: u64,
    /// The client, once it has sent something.
    pub client: Option<SocketAddr>,
}

impl RelayStats {
    pub fn dropped(&self) -> u64 {
        self.up.dropped() + self.down.dropped()
    }
}

/// A profile change, acknowledged once applied.
struct SetProfiles {
    up: LinkProfile,
    down: LinkProfile,
    applied: oneshot::Sender<()>,
}

/// Profile changes are rare; a test that sends more than this without awaiting is a bug.
const COMMAND_CAPACITY: usize = 4;
/// Larger than any datagram a WebRTC peer sends (they keep under the path MTU); a larger one
/// would be cut, as on a real link with a 4 KiB MTU.
const RECV_BUFFER: usize = 4096;

/// A UDP relay on loopback between one client and one server port, impairing each direction.
///
/// The relay's [`local_addr`](Self::local_addr) is what the client sends to; the first
/// datagram's source becomes the client, and datagrams from any other address are dropped and
/// counted. Towards the server the relay uses a second socket, so the server sees that socket
/// as the peer. One relay serves one client address: a bot with two peer connections (publisher
/// and subscriber) needs one relay each.
///
/// One task owns both sockets and both [`Impairment`]s; the profile changes through a bounded
/// command channel; dropping the relay, or [`stop`](Self::stop), ends the task and closes the
/// sockets.
pub struct Relay {
    local: SocketAddr,
    upstream: SocketAddr,
    commands: mpsc::Sender<SetProfiles>,
    stats: watch::Receiver<RelayStats>,
    task: Option<JoinHandle<()>>,
}

impl Relay {
    /// The same profile both ways.
    pub async fn start(
        upstream: SocketAddr,
        profile: LinkProfile,
        seed: u64,
    ) -> Result<Relay, RelayError> {
        Relay::start_asymmetric(upstream, profile.clone(), profile, seed).await
    }

    /// `up` for client → server, `down` for server → client. Each direction draws from its own
    /// generator, both derived from `seed`.
    pub async fn start_asymmetric(
        upstream: SocketAddr,
        up: LinkProfile,
        down: LinkProfile,
        seed: u64,
    ) -> Result<Relay, RelayError> {
        let client_side = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(RelayError::Bind)?;
        let server_side = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(RelayError::Bind)?;
        // Connected: the socket then only receives from the server.
        server_side
            .connect(upstream)
            .await
            .map_err(RelayError::Bind)?;
        let local = client_side.local_addr().map_err(RelayError::Bind)?;
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (stats_tx, stats) = watch::channel(RelayStats::default());
        let task = tokio::spawn(
            RelayTask {
                client_side,
                server_side,
                client: None,
                up: Impairment::new(up, seed.wrapping_mul(2)),
                down: Impairment::new(down, seed.wrapping_mul(2).wrapping_add(1)),
                commands: command_rx,
                stats: stats_tx,
                strangers: 0,
                send_errors: 0,
            }
            .run(),
        );
        debug!(%local, %upstream, "relay started");
        Ok(Relay {
            local,
            upstream,
            commands,
            stats,
            task: Some(task),
        })
    }

    /// Where the client sends.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The client, once it has sent something.
    pub fn client(&self) -> Option<SocketAddr> {
        self.stats.borrow().client
    }

    pub fn stats(&self) -> RelayStats {
        *self.stats.borrow()
    }

    /// Waits until the relay's counters satisfy `pred`, at most `wait`; returns them.
    pub async fn wait_stats(
        &self,
        wait: Duration,
        pred: impl FnMut(&RelayStats) -> bool,
    ) -> Result<RelayStats, RelayError> {
        let mut stats = self.stats.clone();
        // Copied out in the same statement, so the borrow of `stats` ends here.
        let reached = tokio::time::timeout(wait, stats.wait_for(pred))
            .await
            .map(|r| r.map(|s| *s));
        match reached {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(_)) => Err(RelayError::Stopped),
            Err(_) => Err(RelayError::Timeout {
                after: wait,
                last: *stats.borrow(),
            }),
        }
    }

    /// Sets both directions to `profile`; returns once applied, so every datagram the relay
    /// receives afterwards sees it. (One sent just before may still be in the kernel, even on
    /// loopback: wait for it with [`wait_stats`](Self::wait_stats) if that matters.)
    pub async fn set_profile(&self, profile: LinkProfile) -> Result<(), RelayError> {
        self.set_profiles(profile.clone(), profile).await
    }

    pub async fn set_profiles(&self, up: LinkProfile, down: LinkProfile) -> Result<(), RelayError> {
        let (applied, done) = oneshot::channel();
        self.commands
            .send(SetProfiles { up, down, applied })
            .await
            .map_err(|_| RelayError::Stopped)?;
        done.await.map_err(|_| RelayError::Stopped)
    }

    /// Stops forwarding and closes the sockets; datagrams still held are discarded.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Only `JoinError::Cancelled` (or a panic, already reported) can come back.
            let _ = task.await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

struct RelayTask {
    client_side: UdpSocket,
    server_side: UdpSocket,
    client: Option<SocketAddr>,
    up: Impairment,
    down: Impairment,
    commands: mpsc::Receiver<SetProfiles>,
    /// Counters for readers, replaced once per wake-up (and only when they changed, so
    /// waiters are not woken for nothing).
    stats: watch::Sender<RelayStats>,
    strangers: u64,
    send_errors: u64,
}

impl RelayTask {
    async fn run(mut self) {
        let mut from_client = vec![0u8; RECV_BUFFER];
        let mut from_server = vec![0u8; RECV_BUFFER];
        loop {
            let deadline = match (self.up.next_deadline(), self.down.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // Never reached when `deadline` is `None`: the branch is disabled.
            let wake = tokio::time::Instant::from_std(deadline.unwrap_or_else(Instant::now));
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(c) => {
                        self.up.set_profile(c.up);
                        self.down.set_profile(c.down);
                        // The caller may have stopped waiting; the change stands anyway.
                        let _ = c.applied.send(());
                    }
                    // The `Relay` is gone.
                    None => break,
                },
                received = self.client_side.recv_from(&mut from_client) => match received {
                    Ok((n, from)) => self.take_from_client(from, &from_client[..n]),
                    // On Linux an ICMP error from an earlier send surfaces here; the socket
                    // is still usable.
                    Err(e) => debug!("relay: receiving from the client side: {e}"),
                },
                received = self.server_side.recv(&mut from_server) => match received {
                    Ok(n) => {
                        let datagram = Bytes::copy_from_slice(&from_server[..n]);
                        self.down.push(Instant::now(), datagram);
                    }
                    Err(e) => debug!("relay: receiving from the server: {e}"),
                },
                () = tokio::time::sleep_until(wake), if deadline.is_some() => {}
            }
            self.flush().await;
            self.publish();
        }
    }

    fn take_from_client(&mut self, from: SocketAddr, datagram: &[u8]) {
        let client = *self.client.get_or_insert_with(|| {
            debug!(%from, "relay client");
            from
        });
        if from == client {
            self.up
                .push(Instant::now(), Bytes::copy_from_slice(datagram));
        } else {
            self.strangers += 1;
        }
    }

    /// Sends everything due.
    async fn flush(&mut self) {
        let now = Instant::now();
        while let Some(datagram) = self.up.poll(now) {
            if let Err(e) = self.server_side.send(&datagram).await {
                self.send_error(e);
            }
        }
        while let Some(datagram) = self.down.poll(now) {
            // Nothing comes from the server before the client has spoken (ICE-lite answers
            // only), so a client is known; if not, the datagram has nowhere to go.
            let Some(client) = self.client else {
                self.send_errors += 1;
                continue;
            };
            if let Err(e) = self.client_side.send_to(&datagram, client).await {
                self.send_error(e);
            }
        }
    }

    fn send_error(&mut self, e: std::io::Error) {
        self.send_errors += 1;
        if self.send_errors.is_power_of_two() {
            warn!("relay: send failed ({} so far): {e}", self.send_errors);
        }
    }

    fn publish(&self) {
        let now = RelayStats {
            up: self.up.stats(),
            down: self.down.stats(),
            strangers: self.strangers,
            send_errors: self.send_errors,
            client: self.client,
        };
        self.stats.send_if_modified(|s| {
            let changed = *s != now;
            *s = now;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: u64 = 0x5eed;

    fn datagram(len: usize) -> Bytes {
        Bytes::from(vec![0u8; len])
    }

    /// Pushes then drains everything due, returning what came out.
    fn drain(imp: &mut Impairment, now: Instant) -> Vec<Bytes> {
        std::iter::from_fn(|| imp.poll(now)).collect()
    }

    #[test]
    fn clean_passes_everything_at_once_in_order() {
        let t0 = Instant::now();
        let mut imp = Impairment::new(LinkProfile::clean(), SEED);
        for i in 0..100u8 {
            imp.push(t0, Bytes::from(vec![i]));
        }
        let out = drain(&mut imp, t0);
        assert_eq!(out.len(), 100);
        assert!(out.iter().enumerate().all(|(i, d)| d[0] as usize == i));
        assert_eq!(imp.next_deadline(), None);
        assert_eq!(imp.stats().dropped(), 0);
    }

    #[test]
    fn loss_rate_is_within_tolerance() {
        let t0 = Instant::now();
        let mut imp = Impairment::new(LinkProfile::clean().with_loss_percent(2.0), SEED);
        let mut delivered = 0;
        for _ in 0..10_000 {
            imp.push(t0, datagram(100));
            delivered += drain(&mut imp, t0).len() as u64;
        }
        let lost = imp.stats().lost;
        // Binomial(10000, 0.02): mean 200, sd 14; the seed is fixed, the margin is 3.5 sd.
        assert!((150..=250).contains(&lost), "lost {lost} of 10000");
        assert_eq!(delivered, 10_000 - lost);
        println!("lost {lost} of 10000");
    }

    #[test]
    fn same_seed_same_losses() {
        let t0 = Instant::now();
        let run = |seed| {
            let mut imp = Impairment::new(LinkProfile::harsh(), seed);
            (0..1000u32)
                .map(|i| {
                    let at = t0 + Duration::from_millis(u64::from(i) * 10);
                    imp.push(at, Bytes::from(i.to_be_bytes().to_vec()));
                    imp.stats().dropped()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn delay_is_exact() {
        let t0 = Instant::now();
        let delay = Duration::from_millis(75);
        let mut imp = Impairment::new(LinkProfile::clean().with_delay(delay), SEED);
        imp.push(t0, datagram(10));
        imp.push(t0 + Duration::from_millis(5), datagram(20));
        assert_eq!(imp.next_deadline(), Some(t0 + delay));
        assert!(imp.poll(t0 + delay - Duration::from_nanos(1)).is_none());
        assert_eq!(imp.poll(t0 + delay).map(|d| d.len()), Some(10));
        assert!(imp.poll(t0 + delay).is_none());
        let second = t0 + Duration::from_millis(80);
        assert_eq!(imp.next_deadline(), Some(second));
        assert_eq!(imp.poll(second).map(|d| d.len()), Some(20));
        assert_eq!(imp.next_deadline(), None);
    }

    /// Pushes one numbered datagram every millisecond for a second under `profile`, then
    /// returns them in the order they come out.
    fn jittered_order(profile: LinkProfile) -> Vec<u32> {
        let t0 = Instant::now();
        let mut imp = Impairment::new(profile, SEED);
        for i in 0..1000u32 {
            imp.push(
                t0 + Duration::from_millis(u64::from(i)),
                Bytes::from(i.to_be_bytes().to_vec()),
            );
        }
        let mut order = Vec::new();
        while let Some(at) = imp.next_deadline() {
            // Never earlier than the fixed delay minus the jitter's bound.
            order.extend(
                drain(&mut imp, at)
                    .iter()
                    .map(|d| u32::from_be_bytes(d[..4].try_into().expect("4-byte datagrams"))),
            );
        }
        order
    }

    #[test]
    fn jitter_reorders_only_when_allowed() {
        for dist in [JitterDistribution::Uniform, JitterDistribution::Normal] {
            let jittery = LinkProfile::clean()
                .with_delay(Duration::from_millis(50))
                .with_jitter(Duration::from_millis(20), dist);
            let ordered = jittered_order(jittery.clone());
            assert_eq!(ordered.len(), 1000);
            assert!(
                ordered.windows(2).all(|w| w[0] < w[1]),
                "{dist:?} reordered"
            );
            let reordered = jittered_order(jittery.with_reorder(true));
            assert_eq!(reordered.len(), 1000);
            assert!(
                reordered.windows(2).any(|w| w[0] > w[1]),
                "{dist:?}: 20 ms jitter on a 1 ms spacing never reordered"
            );
        }
    }

    #[test]
    fn jitter_spreads_release_times() {
        let t0 = Instant::now();
        let delay = Duration::from_millis(50);
        let jitter = Duration::from_millis(20);
        for dist in [JitterDistribution::Uniform, JitterDistribution::Normal] {
            let profile = LinkProfile::clean()
                .with_delay(delay)
                .with_jitter(jitter, dist)
                .with_reorder(true);
            let mut imp = Impairment::new(profile, SEED);
            let mut releases = Vec::new();
            for _ in 0..2000 {
                imp.push(t0, datagram(1));
                releases.push(imp.next_deadline().expect("held"));
                drain(&mut imp, t0 + Duration::from_secs(1));
            }
            let bound = match dist {
                JitterDistribution::Uniform => jitter,
                JitterDistribution::Normal => jitter * 3,
            };
            assert!(
                releases
                    .iter()
                    .all(|r| *r >= t0 + delay - bound && *r <= t0 + delay + bound)
            );
            let mean = releases
                .iter()
                .map(|r| (*r - t0).as_secs_f64())
                .sum::<f64>()
                / releases.len() as f64;
            assert!((mean - 0.050).abs() < 0.002, "{dist:?}: mean delay {mean}");
            assert!(releases.iter().any(|r| *r < t0 + delay - jitter / 2));
            assert!(releases.iter().any(|r| *r > t0 + delay + jitter / 2));
        }
    }

    #[test]
    fn rate_cap_is_respected_over_a_window() {
        let t0 = Instant::now();
        let rate = RateLimit {
            kbit_per_s: 600,
            burst_bytes: 3000,
            queue: QueueLimit::Bytes(1_000_000),
        };
        let mut imp = Impairment::new(LinkProfile::clean().with_rate(Some(rate)), SEED);
        // 1 Mbit/s offered for 2 s: 1000-byte datagrams every 8 ms. Each comes out at exactly
        // its release time.
        let mut delivered: Vec<(Instant, usize)> = Vec::new();
        let mut take_due = |imp: &mut Impairment, until: Option<Instant>| {
            while let Some(at) = imp
                .next_deadline()
                .filter(|at| until.is_none_or(|u| *at <= u))
            {
                delivered.extend(drain(imp, at).iter().map(|d| (at, d.len())));
            }
        };
        for i in 0..250u64 {
            let now = t0 + Duration::from_millis(i * 8);
            take_due(&mut imp, Some(now));
            imp.push(now, datagram(1000));
        }
        take_due(&mut imp, None);
        assert_eq!(delivered.len(), 250, "a large queue drops nothing");
        // In any window, at most rate × window + the burst got through. Datagrams released
        // together are summed before the check that ends at the last of them.
        for i in 0..delivered.len() {
            let mut bytes = 0;
            for j in i..delivered.len() {
                bytes += delivered[j].1;
                let window = (delivered[j].0 - delivered[i].0).as_secs_f64();
                let allowed = 600_000.0 / 8.0 * window + 3000.0;
                assert!(bytes as f64 <= allowed + 1.0, "{bytes} bytes in {window} s");
            }
        }
        // And the link was kept busy: 250 kB at 75 kB/s takes ~3.3 s, less the burst.
        let (last, _) = delivered.last().copied().expect("delivered");
        let took = (last - t0).as_secs_f64();
        assert!((3.2..=3.4).contains(&took), "drained in {took} s");
    }

    #[test]
    fn full_queue_drops_the_tail_and_counts() {
        let t0 = Instant::now();
        let rate = RateLimit {
            kbit_per_s: 80, // 10 kB/s: a 1000-byte datagram every 100 ms
            burst_bytes: 1000,
            queue: QueueLimit::Bytes(3000),
        };
        let mut imp = Impairment::new(LinkProfile::clean().with_rate(Some(rate)), SEED);
        for _ in 0..10 {
            imp.push(t0, datagram(1000));
        }
        // One passes on the burst, three wait in the queue, six are dropped.
        assert_eq!(drain(&mut imp, t0).len(), 1);
        assert_eq!(imp.stats().queue_dropped, 6);
        assert_eq!(imp.in_flight(), 3);
        assert_eq!(imp.next_deadline(), Some(t0 + Duration::from_millis(100)));
        // Once one has left, there is room for one more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(drain(&mut imp, t1).len(), 1);
        imp.push(t1, datagram(1000));
        imp.push(t1, datagram(1000));
        assert_eq!(imp.stats().queue_dropped, 7);
        assert_eq!(imp.stats().received, 12);
        let mut out = 2;
        while let Some(at) = imp.next_deadline() {
            out += drain(&mut imp, at).len();
        }
        assert_eq!(out, 5);
        assert_eq!(imp.stats().delivered, 5);
    }

    #[test]
    fn queue_limit_in_time_follows_the_rate() {
        let rate = RateLimit {
            kbit_per_s: 600,
            burst_bytes: 0,
            queue: QueueLimit::Time(Duration::from_millis(200)),
        };
        assert_eq!(rate.queue_bytes(), 15_000);
        assert_eq!(rate.drain_time(75), Duration::from_millis(1));
    }

    #[test]
    fn in_flight_is_bounded() {
        let t0 = Instant::now();
        let mut imp = Impairment::new(
            LinkProfile::clean().with_delay(Duration::from_secs(1)),
            SEED,
        );
        for _ in 0..MAX_IN_FLIGHT + 10 {
            imp.push(t0, datagram(1));
        }
        assert_eq!(imp.in_flight(), MAX_IN_FLIGHT);
        assert_eq!(imp.stats().overflow, 10);
    }

    #[test]
    fn lifting_the_profile_keeps_order_and_stops_drops() {
        let t0 = Instant::now();
        let mut imp = Impairment::new(LinkProfile::harsh(), SEED);
        for i in 0..100u64 {
            imp.push(t0 + Duration::from_millis(i), datagram(200));
        }
        let dropped = imp.stats().dropped();
        let t1 = t0 + Duration::from_millis(100);
        imp.set_profile(LinkProfile::clean());
        imp.push(t1, datagram(7));
        assert_eq!(imp.stats().dropped(), dropped);
        // The new datagram waits behind those already on the link rather than overtaking.
        let mut last = None;
        while let Some(at) = imp.next_deadline() {
            last = drain(&mut imp, at).last().map(|d| d.len());
        }
        assert_eq!(last, Some(7));
    }

    #[test]
    fn rewrites_udp_candidates_only() {
        let sdp = "v=0\r\n\
            o=- 1 2 IN IP4 127.0.0.1\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            c=IN IP4 127.0.0.1\r\n\
            a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host ufrag abc\r\n\
            a=candidate:2 1 tcp 1 127.0.0.1 40001 typ host tcptype passive\r\n\
            a=candidate:bad\r\n\
            a=end-of-candidates\r\n";
        let to: SocketAddr = "127.0.0.1:5555".parse().expect("address");
        let out = rewrite_candidates(sdp, to);
        let expected = sdp.replace(
            "udp 2130706431 127.0.0.1 40000 typ",
            "udp 2130706431 127.0.0.1 5555 typ",
        );
        assert_eq!(out, expected);
        let v6: SocketAddr = "[::1]:6".parse().expect("address");
        assert_eq!(
            rewrite_candidates("a=candidate:1 1 UDP 5 10.0.0.1 9 typ host\n", v6),
            "a=candidate:1 1 UDP 5 ::1 6 typ host\n"
        );
    }
}
