//! A bot: one participant that joins a lesson through the real signaling and, as configured,
//! publishes ([`crate::publisher`]) and receives ([`crate::subscriber`]) media.
//!
//! After `join`, one message-loop task owns the signaling inbox: it answers the server's
//! subscriber `offer`s, routes replies (`answer`, `error` with an id) to whoever sent the
//! request, keeps the roster, sends a `ping` now and then, and republishes every server message
//! on a broadcast channel that tests read with [`wait_event`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use signaling::protocol::{
    ClientMessage, ErrorCode, ParticipantInfo, PublicationInfo, ServerMessage,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info_span, warn};

use crate::client::{ClientError, Joined, SignalingClient, SignalingSender};
use crate::impair;
use crate::peer::PeerWaitError;
use crate::publisher::{PublishConfig, PublisherLeg, PublisherSnapshot};
use crate::report::TrackStats;
use crate::subscriber::{SubscribeConfig, SubscriberLeg, SubscriberShared};

/// Why a bot could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("media connection: {0}")]
    Peer(#[from] PeerWaitError),
    #[error("protocol: {0}")]
    Protocol(&'static str),
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Reply = Result<String, (ErrorCode, String)>;

/// Requests waiting for their reply (`answer` or `error` with the same id).
#[derive(Clone, Default)]
pub(crate) struct PendingReplies {
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>,
    next: Arc<AtomicU64>,
}

impl PendingReplies {
    /// Sends the message `make(id)` builds and waits for the SDP of its `answer`.
    pub(crate) async fn request(
        &self,
        signal: &SignalingSender,
        what: &str,
        wait: Duration,
        make: impl FnOnce(String) -> ClientMessage,
    ) -> Result<String, BotError> {
        let id = format!("{what}-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id.clone(), tx);
        signal.send(&make(id.clone())).await?;
        let reply = tokio::time::timeout(wait, rx).await;
        lock(&self.waiting).remove(&id);
        match reply {
            Err(_) => Err(BotError::Timeout {
                what: format!("the reply to {id}"),
                after: wait,
            }),
            Ok(Err(_)) => Err(ClientError::Closed.into()),
            Ok(Ok(Ok(sdp))) => Ok(sdp),
            Ok(Ok(Err((code, message)))) => Err(ClientError::Refused { code, message }.into()),
        }
    }

    /// Hands a reply to its waiter; false if nobody waits for `id`.
    fn deliver(&self, id: &str, reply: Reply) -> bool {
        match lock(&self.waiting).remove(id) {
            Some(tx) => {
                let _ = tx.send(reply);
                true
            }
            None => false,
        }
    }
}

/// How a bot joins and what it does.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// For logs.
    pub name: String,
    /// `ws://HOST:PORT/ws`.
    pub ws_url: String,
    pub token: String,
    /// Publish audio and/or video.
    pub publish: Option<PublishConfig>,
    pub subscribe: SubscribeConfig,
    /// Where the bot's peer connections bind.
    pub bind_ip: IpAddr,
    /// The bound on each wait: the handshake, `joined`, the answer, ICE + DTLS.
    pub timeout: Duration,
    /// How often to send `ping`; `None` sends none.
    pub ping_interval: Option<Duration>,
    /// Send all media through this UDP relay (an [`impair::Relay`]): the SFU's candidates in
    /// every SDP the bot receives are rewritten to this address before they are applied.
    pub via_relay: Option<SocketAddr>,
}

impl BotOptions {
    pub fn new(
        name: impl Into<String>,
        ws_url: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        BotOptions {
            name: name.into(),
            ws_url: ws_url.into(),
            token: token.into(),
            publish: None,
            subscribe: SubscribeConfig::default(),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(5)),
            via_relay: None,
        }
    }

    pub fn publishing(mut self, config: PublishConfig) -> Self {
        self.publish = Some(config);
        self
    }

    /// Media through the relay at `relay`; see [`BotOptions::via_relay`].
    pub fn via_relay(mut self, relay: SocketAddr) -> Self {
        self.via_relay = Some(relay);
        self
    }
}

/// Who is in the lesson and what they publish, as this bot was told.
#[derive(Debug, Default, Clone)]
pub struct Roster {
    pub participants: HashMap<u64, ParticipantInfo>,
    pub publications: HashMap<u64, PublicationInfo>,
    /// `error` messages that answered no pending request.
    pub errors: Vec<(Option<String>, ErrorCode, String)>,
    /// The signaling connection has closed.
    pub closed: bool,
}

/// Server messages kept for subscribers of [`Bot::events`]; a test that falls this far behind
/// sees `Lagged` and fails loudly rather than silently missing one.
const EVENT_BACKLOG: usize = 1024;

/// A joined participant.
pub struct Bot {
    pub name: String,
    pub joined: Joined,
    /// When `join` was sent.
    pub joined_at: Instant,
    signal: SignalingSender,
    replies: PendingReplies,
    events: broadcast::Sender<ServerMessage>,
    roster: Arc<Mutex<Roster>>,
    subscriber: Arc<SubscriberShared>,
    publisher: Option<PublisherLeg>,
    // Options only so that `close` can take them out of a type that implements `Drop`.
    message_loop: Option<JoinHandle<SubscriberLeg>>,
    pump: Option<JoinHandle<()>>,
    timeout: Duration,
}

impl Bot {
    /// Connects, joins, and — if configured — publishes and waits until the publisher
    /// connection is up.
    pub async fn join(options: BotOptions) -> Result<Bot, BotError> {
        let joined_at = Instant::now();
        let mut client = SignalingClient::connect(&options.ws_url, options.timeout).await?;
        let joined = client.join(&options.token, options.timeout).await?;
        let (signal, inbox, pump) = client.into_parts();

        let roster = Arc::new(Mutex::new(Roster {
            participants: joined
                .participants
                .iter()
                .map(|p| (p.id, p.clone()))
                .collect(),
            publications: joined
                .publications
                .iter()
                .map(|p| (p.id, p.clone()))
                .collect(),
            ..Default::default()
        }));
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let replies = PendingReplies::default();
        let subscriber = Arc::new(SubscriberShared::default());
        let leg = SubscriberLeg::new(
            options.bind_ip,
            options.subscribe.clone(),
            subscriber.clone(),
        );
        let span = info_span!("bot", name = %options.name, id = joined.you.id);
        let message_loop = tokio::spawn(
            run_messages(MessageLoop {
                inbox,
                signal: signal.clone(),
                replies: replies.clone(),
                events: events.clone(),
                roster: roster.clone(),
                leg,
                ping_interval: options.ping_interval,
                via_relay: options.via_relay,
            })
            .instrument(span.clone()),
        );

        let publisher = match &options.publish {
            Some(config) => Some(
                PublisherLeg::start(&signal, &replies, config, options.bind_ip, options.timeout)
                    .instrument(span)
                    .await?,
            ),
            None => None,
        };
        Ok(Bot {
            name: options.name,
            joined,
            joined_at,
            signal,
            replies,
            events,
            roster,
            subscriber,
            publisher,
            message_loop: Some(message_loop),
            pump: Some(pump),
            timeout: options.timeout,
        })
    }

    /// This participant as the server named it.
    pub fn you(&self) -> &ParticipantInfo {
        &self.joined.you
    }

    /// Every server message from now on.
    pub fn events(&self) -> broadcast::Receiver<ServerMessage> {
        self.events.subscribe()
    }

    /// For sending messages of one's own on this bot's socket.
    pub fn signal(&self) -> &SignalingSender {
        &self.signal
    }

    pub fn roster(&self) -> Roster {
        lock(&self.roster).clone()
    }

    pub fn publisher_stats(&self) -> Option<PublisherSnapshot> {
        self.publisher.as_ref().map(|p| p.stats())
    }

    /// `(mid, source)` of each track this bot publishes.
    pub fn published_tracks(&self) -> Vec<(String, signaling::protocol::Source)> {
        self.publisher
            .as_ref()
            .map(|p| p.tracks.clone())
            .unwrap_or_default()
    }

    /// A copy of the statistics of every track received.
    pub fn tracks(&self) -> Vec<TrackStats> {
        self.subscriber.snapshot()
    }

    pub fn subscriber(&self) -> &SubscriberShared {
        &self.subscriber
    }

    /// Sends a request with an id and waits for its `answer` (for renegotiation by hand).
    pub async fn request_answer(
        &self,
        what: &str,
        make: impl FnOnce(String) -> ClientMessage,
    ) -> Result<String, BotError> {
        self.replies
            .request(&self.signal, what, self.timeout, make)
            .await
    }

    /// Waits until `pred` holds over the received tracks, re-checking on every packet.
    pub async fn wait_media(
        &self,
        wait: Duration,
        what: &str,
        pred: impl Fn(&[&TrackStats]) -> bool,
    ) -> Result<(), BotError> {
        let shared = &self.subscriber;
        tokio::time::timeout(wait, async {
            loop {
                // Registered before the check, so a packet between check and await still wakes.
                let notified = shared.progress.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if shared.inspect(&pred) {
                    return;
                }
                notified.await;
            }
        })
        .await
        .map_err(|_| BotError::Timeout {
            what: format!("{what} (bot {})", self.name),
            after: wait,
        })
    }

    /// Leaves cleanly: closes the media connections, then the socket with a close frame.
    pub async fn close(mut self) {
        if let Some(p) = self.publisher.take() {
            p.close().await;
        }
        self.signal.close().await;
        if let Some(pump) = self.pump.take() {
            let _ = tokio::time::timeout(self.timeout, pump).await;
        }
        // The loop ends once the pump has closed its inbox.
        if let Some(message_loop) = self.message_loop.take() {
            match tokio::time::timeout(self.timeout, message_loop).await {
                Ok(Ok(mut leg)) => leg.close().await,
                Ok(Err(e)) => warn!("bot message loop failed: {e}"),
                Err(_) => warn!("bot message loop did not end"),
            }
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        // Tasks must not outlive a bot dropped without `close` (a failed test, say).
        if let Some(t) = &self.message_loop {
            t.abort();
        }
        if let Some(t) = &self.pump {
            t.abort();
        }
        if let Some(p) = self.publisher.take() {
            p.abort();
        }
    }
}

/// Waits for the first message on `events` that `pred` accepts.
pub async fn wait_event(
    events: &mut broadcast::Receiver<ServerMessage>,
    wait: Duration,
    what: &str,
    mut pred: impl FnMut(&ServerMessage) -> bool,
) -> Result<ServerMessage, BotError> {
    tokio::time::timeout(wait, async {
        loop {
            match events.recv().await {
                Ok(msg) if pred(&msg) => return Ok(msg),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!("missed {n} server messages while waiting for {what}");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(BotError::Client(ClientError::Closed));
                }
            }
        }
    })
    .await
    .map_err(|_| BotError::Timeout {
        what: what.to_owned(),
        after: wait,
    })?
}

struct MessageLoop {
    inbox: mpsc::Receiver<ServerMessage>,
    signal: SignalingSender,
    replies: PendingReplies,
    events: broadcast::Sender<ServerMessage>,
    roster: Arc<Mutex<Roster>>,
    leg: SubscriberLeg,
    ping_interval: Option<Duration>,
    via_relay: Option<SocketAddr>,
}

/// Runs until the socket closes; hands the subscriber leg back so `close` can close it.
async fn run_messages(mut ml: MessageLoop) -> SubscriberLeg {
    let period = ml.ping_interval.unwrap_or(Duration::from_secs(3600));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            msg = ml.inbox.recv() => match msg {
                Some(msg) => ml.handle(msg).await,
                None => break,
            },
            _ = ping.tick(), if ml.ping_interval.is_some() => {
                // A failed send means the socket is gone; the inbox will end the loop.
                let _ = ml.signal.send(&ClientMessage::Ping { id: None }).await;
            }
        }
    }
    lock(&ml.roster).closed = true;
    debug!("signaling closed");
    ml.leg
}

impl MessageLoop {
    /// A remote SDP as the bot's connections should see it. Every server SDP (the answer to a
    /// publisher offer, each subscriber offer) reaches the bot through this loop, so this is
    /// the one place media is pointed at a relay.
    fn remote_sdp<'a>(&self, sdp: &'a str) -> Cow<'a, str> {
        match self.via_relay {
            Some(relay) => Cow::Owned(impair::rewrite_candidates(sdp, relay)),
            None => Cow::Borrowed(sdp),
        }
    }

    fn deliver_answer(&self, id: &str, sdp: &str) {
        let sdp = self.remote_sdp(sdp).into_owned();
        if !self.replies.deliver(id, Ok(sdp)) {
            warn!("answer to an unknown request {id:?}");
        }
    }

    async fn handle(&mut self, msg: ServerMessage) {
        match &msg {
            ServerMessage::Offer { sdp, tracks } => {
                let sdp = self.remote_sdp(sdp).into_owned();
                match self.leg.handle_offer(&sdp, tracks).await {
                    Ok(answer) => {
                        let reply = ClientMessage::Answer {
                            id: None,
                            sdp: answer,
                        };
                        if let Err(e) = self.signal.send(&reply).await {
                            warn!("sending answer: {e}");
                        }
                    }
                    Err(e) => warn!("could not answer the subscriber offer: {e}"),
                }
            }
            ServerMessage::Answer { id: Some(id), sdp } => self.deliver_answer(id, sdp),
            ServerMessage::Error { id, code, message } => {
                let delivered = id
                    .as_deref()
                    .is_some_and(|id| self.replies.deliver(id, Err((*code, message.clone()))));
                if !delivered {
                    debug!("server error {code:?}: {message}");
                    lock(&self.roster)
                        .errors
                        .push((id.clone(), *code, message.clone()));
                }
            }
            ServerMessage::ParticipantJoined { participant } => {
                lock(&self.roster)
                    .participants
                    .insert(participant.id, participant.clone());
            }
            ServerMessage::ParticipantLeft { participant_id, .. } => {
                lock(&self.roster).participants.remove(participant_id);
            }
            ServerMessage::PublicationAdded { publication } => {
                lock(&self.roster)
                    .publications
                    .insert(publication.id, publication.clone());
            }
            ServerMessage::PublicationRemoved { publication_id } => {
                lock(&self.roster).publications.remove(publication_id);
            }
            _ => {}
        }
        // Nobody listening is fine.
        let _ = self.events.send(msg);
    }
}
