//! The forwarding core's top-level type.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rtc::rtp;
use rtc::shared::marshal::MarshalSize;

use super::allocator::{LayerDecision, LinkShare, VideoOffer};
use super::downlink::EstimateChange;
use super::freeze::Freezes;
use super::layer::Layer;
use super::lesson::{Lesson, Member};
use super::publication::{Offered, Publication};
use super::quality::QualitySample;
use super::rewrite::LegFormat;
use super::subscription::Subscription;
use super::vp8::Vp8Descriptor;
use super::{MediaKind, Source};
use crate::ids::{LessonId, ParticipantId, PublicationId};

/// Tunables of the forwarding core.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The shortest interval between two keyframe requests to one layer of a publication.
    pub keyframe_interval: Duration,
    /// How long a video subscription waits for a keyframe before asking again (the first
    /// request or the keyframe itself may have been lost).
    pub keyframe_retry: Duration,
    /// How often each subscriber's link is shared out again among its video subscriptions
    /// (layers appear and vanish, estimates move, up-switch holds expire).
    pub allocation_interval: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            keyframe_interval: Duration::from_millis(500),
            keyframe_retry: Duration::from_millis(1000),
            allocation_interval: Duration::from_millis(500),
        }
    }
}

/// Work the core decided on, drained with [`Router::poll_output`].
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open a sender for `publication` on the subscriber's connection, then call
    /// [`Router::attach_subscription`] with its format.
    SubscriptionAdded {
        subscriber: ParticipantId,
        publication: PublicationId,
        kind: MediaKind,
        source: Source,
    },
    /// Close the subscriber's sender for `publication`.
    SubscriptionRemoved {
        subscriber: ParticipantId,
        publication: PublicationId,
    },
    /// Send this packet, already rewritten for the subscriber's leg.
    Forward {
        subscriber: ParticipantId,
        publication: PublicationId,
        packet: rtp::Packet,
    },
    /// Ask the publisher for a keyframe on `media_ssrc` (the SSRC of one layer).
    RequestKeyframe {
        publisher: ParticipantId,
        publication: PublicationId,
        media_ssrc: u32,
    },
    /// What a subscriber receives of a video publication changed: a layer, or `None` when
    /// its video is paused (by its own choice or because its link cannot carry any layer).
    LayerChanged {
        subscriber: ParticipantId,
        publication: PublicationId,
        layer: Option<Layer>,
    },
    /// A publication is gone (unpublished or its owner left).
    PublicationRemoved {
        owner: ParticipantId,
        publication: PublicationId,
    },
}

/// Why the core refused a request. These are caller mistakes (stale ids after a leave, a
/// duplicate join) and are reported, never panicked on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("participant {0} is already in a lesson")]
    AlreadyJoined(ParticipantId),
    #[error("no participant {0}")]
    NoSuchParticipant(ParticipantId),
    #[error("no publication {0}")]
    NoSuchPublication(PublicationId),
    #[error("participant {subscriber} does not subscribe to publication {publication}")]
    NoSuchSubscription {
        subscriber: ParticipantId,
        publication: PublicationId,
    },
}

/// Every lesson's forwarding state. See the module docs of [`crate::core`].
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    lessons: HashMap<LessonId, Lesson>,
    participants: HashMap<ParticipantId, LessonId>,
    publications: HashMap<PublicationId, Publication>,
    /// Each subscriber's estimated downlink in bits per second, when its transport has one.
    estimates: HashMap<ParticipantId, u64>,
    /// Subscribers whose estimate is a start guess ([`Router::set_start_estimate`]).
    starting: HashSet<ParticipantId>,
    /// Sources a moderator muted ([`Router::set_source_muted`]): their publications, present
    /// and future, forward nothing.
    muted_sources: HashSet<(ParticipantId, Source)>,
    next_publication: u64,
    outputs: VecDeque<Output>,
    /// The earliest instant a pending keyframe request or a keyframe wait needs attention.
    wake_at: Option<Instant>,
    /// When the links are next shared out again; `None` while no video is subscribed.
    next_allocation: Option<Instant>,
    /// Keyframe requests coalesced by a layer's gate, since start.
    keyframe_requests_throttled: u64,
}

impl Router {
    pub fn new(config: RouterConfig) -> Self {
        Router {
            config,
            lessons: HashMap::new(),
            participants: HashMap::new(),
            publications: HashMap::new(),
            estimates: HashMap::new(),
            starting: HashSet::new(),
            muted_sources: HashSet::new(),
            next_publication: 1,
            outputs: VecDeque::new(),
            wake_at: None,
            next_allocation: None,
            keyframe_requests_throttled: 0,
        }
    }

    /// Adds a participant to a lesson. When `subscribes`, it gets a subscription to every
    /// publication already in the lesson.
    pub fn add_participant(
        &mut self,
        lesson: LessonId,
        participant: ParticipantId,
        subscribes: bool,
    ) -> Result<(), RouterError> {
        if self.participants.contains_key(&participant) {
            return Err(RouterError::AlreadyJoined(participant));
        }
        self.participants.insert(participant, lesson);
        let room = self.lessons.entry(lesson).or_default();
        room.members.insert(participant, Member { subscribes });
        if subscribes {
            for &id in &room.publications {
                let Some(publication) = self.publications.get_mut(&id) else {
                    continue;
                };
                publication
                    .subscriptions
                    .push(Subscription::new(participant));
                self.outputs.push_back(Output::SubscriptionAdded {
                    subscriber: participant,
                    publication: id,
                    kind: publication.kind,
                    source: publication.source,
                });
            }
        }
        Ok(())
    }

    /// Removes a participant: its subscriptions end and its publications are removed (their
    /// subscribers are told with [`Output::SubscriptionRemoved`]).
    pub fn remove_participant(&mut self, participant: ParticipantId) -> Result<(), RouterError> {
        let lesson = self
            .participants
            .remove(&participant)
            .ok_or(RouterError::NoSuchParticipant(participant))?;
        self.estimates.remove(&participant);
        self.starting.remove(&participant);
        self.muted_sources
            .retain(|&(owner, _)| owner != participant);
        let Some(room) = self.lessons.get_mut(&lesson) else {
            return Ok(());
        };
        room.members.remove(&participant);
        let owned: Vec<PublicationId> = room
            .publications
            .iter()
            .copied()
            .filter(|id| {
                self.publications
                    .get(id)
                    .is_some_and(|p| p.owner == participant)
            })
            .collect();
        for id in &room.publications {
            if let Some(publication) = self.publications.get_mut(id) {
                publication
                    .subscriptions
                    .retain(|s| s.subscriber != participant);
            }
        }
        let empty = room.members.is_empty();
        for id in owned {
            self.remove_publication(id)?;
        }
        if empty {
            self.lessons.remove(&lesson);
        }
        Ok(())
    }

    /// Registers a track a participant sends. Every other subscribing member of its lesson
    /// gets a subscription.
    pub fn add_publication(
        &mut self,
        owner: ParticipantId,
        source: Source,
        kind: MediaKind,
    ) -> Result<PublicationId, RouterError> {
        let lesson = *self
            .participants
            .get(&owner)
            .ok_or(RouterError::NoSuchParticipant(owner))?;
        let id = PublicationId(self.next_publication);
        self.next_publication += 1;
        let room = self.lessons.entry(lesson).or_default();
        room.publications.push(id);
        let mut publication =
            Publication::new(lesson, owner, source, kind, self.config.keyframe_interval);
        // Muted before it existed: not even its first packet is forwarded.
        publication.muted = self.muted_sources.contains(&(owner, source));
        for (&member, info) in &room.members {
            if member != owner && info.subscribes {
                publication.subscriptions.push(Subscription::new(member));
                self.outputs.push_back(Output::SubscriptionAdded {
                    subscriber: member,
                    publication: id,
                    kind,
                    source,
                });
            }
        }
        self.publications.insert(id, publication);
        Ok(id)
    }

    /// Removes a publication; each subscriber is told to close its sender.
    pub fn remove_publication(&mut self, id: PublicationId) -> Result<(), RouterError> {
        let publication = self
            .publications
            .remove(&id)
            .ok_or(RouterError::NoSuchPublication(id))?;
        if let Some(room) = self.lessons.get_mut(&publication.lesson) {
            room.publications.retain(|p| *p != id);
        }
        for sub in publication.subscriptions {
            self.outputs.push_back(Output::SubscriptionRemoved {
                subscriber: sub.subscriber,
                publication: id,
            });
        }
        self.outputs.push_back(Output::PublicationRemoved {
            owner: publication.owner,
            publication: id,
        });
        Ok(())
    }

    /// The transport opened the subscriber's sender: from now on packets flow to it, in
    /// `format`. Video starts at the best layer the subscriber accepts and its link carries,
    /// from that layer's next keyframe, which is requested.
    pub fn attach_subscription(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
        format: LegFormat,
    ) -> Result<(), RouterError> {
        let (kind, sub) = subscription_mut(&mut self.publications, subscriber, publication)?;
        sub.attach(format);
        if kind == MediaKind::Video {
            self.allocate(now, subscriber);
            if self.next_allocation.is_none() {
                let at = now + self.config.allocation_interval;
                self.next_allocation = Some(at);
                self.wake_no_later_than(at);
            }
        }
        Ok(())
    }

    /// A moderator mutes (or unmutes) one of a participant's sources: every publication of it,
    /// present or future, forwards nothing while it is muted (a publication made later starts
    /// muted, so not even its first packet goes out). Unmuting resumes as
    /// [`Router::set_muted`] does. The mute is forgotten when the participant leaves the
    /// router: whoever holds the lesson's mutes sets them again after it joins.
    pub fn set_source_muted(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        source: Source,
        muted: bool,
    ) -> Result<(), RouterError> {
        if !self.participants.contains_key(&participant) {
            return Err(RouterError::NoSuchParticipant(participant));
        }
        if muted {
            self.muted_sources.insert((participant, source));
        } else {
            self.muted_sources.remove(&(participant, source));
        }
        let mut ids: Vec<PublicationId> = self
            .publications
            .iter()
            .filter(|(_, p)| p.owner == participant && p.source == source)
            .map(|(&id, _)| id)
            .collect();
        ids.sort();
        for id in ids {
            self.set_muted(now, id, muted)?;
        }
        Ok(())
    }

    /// A moderator mutes (or unmutes) a publication: forwarding stops at once, for everyone.
    /// On unmute each subscriber continues its numbering without a gap, and video restarts
    /// from a keyframe, which is requested.
    pub fn set_muted(
        &mut self,
        now: Instant,
        publication: PublicationId,
        muted: bool,
    ) -> Result<(), RouterError> {
        let pubn = self
            .publications
            .get_mut(&publication)
            .ok_or(RouterError::NoSuchPublication(publication))?;
        if pubn.muted == muted {
            return Ok(());
        }
        pubn.muted = muted;
        if muted {
            return Ok(());
        }
        let video = pubn.kind == MediaKind::Video;
        let mut layers = Vec::new();
        for sub in &mut pubn.subscriptions {
            if let Some(rewriter) = sub.rewriter() {
                rewriter.resync();
            }
            if video && let Some(target) = sub.selector.target {
                sub.selector.current = None;
                sub.waiting_since = Some(now);
                layers.push(target);
            }
        }
        layers.sort();
        layers.dedup();
        for layer in layers {
            self.request_keyframe(now, publication, layer);
        }
        if video {
            self.wake_no_later_than(now + self.config.keyframe_retry);
        }
        Ok(())
    }

    /// A subscriber's own wishes for one video publication: the best layer it wants (its
    /// video element is small, say) and whether to pause it altogether.
    pub fn set_subscription(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
        max_layer: Layer,
        paused: bool,
    ) -> Result<(), RouterError> {
        let (_, sub) = subscription_mut(&mut self.publications, subscriber, publication)?;
        sub.selector.max_layer = max_layer;
        sub.selector.paused = paused;
        self.allocate(now, subscriber);
        Ok(())
    }

    /// The subscriber's downlink estimate (bits per second), or None when its link shows no
    /// limit; its video layers follow it, down at once, up after a hold. The transport feeds
    /// the lower of a loss-based estimate ([`super::LossEstimate`]) and the capacity its
    /// packet trains measure ([`super::LinkCapacity`]).
    pub fn set_estimate(&mut self, now: Instant, subscriber: ParticipantId, bitrate: Option<u64>) {
        if !self.participants.contains_key(&subscriber) {
            return;
        }
        let changed = match bitrate {
            Some(b) => self.estimates.insert(subscriber, b) != Some(b),
            None => self.estimates.remove(&subscriber).is_some(),
        };
        if changed {
            self.allocate(now, subscriber);
        }
    }

    /// A new subscriber's link is unknown: until [`Router::set_first_estimate`], its videos
    /// get the best layers `bitrate` allows, but never less than their lowest one: a video
    /// must flow for its link to be measured (and a publication without simulcast has only
    /// one layer, which the guess may not cover).
    pub fn set_start_estimate(&mut self, now: Instant, subscriber: ParticipantId, bitrate: u64) {
        if !self.participants.contains_key(&subscriber) {
            return;
        }
        self.starting.insert(subscriber);
        self.estimates.insert(subscriber, bitrate);
        self.allocate(now, subscriber);
    }

    /// Like [`Router::set_estimate`], for the first estimate measured after the start guess:
    /// the layers follow it at once, up too, since the guess was not a link seen short.
    pub fn set_first_estimate(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        bitrate: Option<u64>,
    ) {
        if !self.participants.contains_key(&subscriber) {
            return;
        }
        self.starting.remove(&subscriber);
        for pubn in self.publications.values_mut() {
            if let Some(sub) = pubn.subscription(subscriber) {
                sub.selector.choose_afresh();
            }
        }
        match bitrate {
            Some(b) => self.estimates.insert(subscriber, b),
            None => self.estimates.remove(&subscriber),
        };
        self.allocate(now, subscriber);
    }

    /// Hands on what a subscriber's [`super::DownlinkEstimator`] decided: the first measured
    /// estimate to [`Router::set_first_estimate`], a later move to [`Router::set_estimate`].
    pub fn apply_estimate(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        change: EstimateChange,
    ) {
        match change {
            EstimateChange::First(bitrate) => self.set_first_estimate(now, subscriber, bitrate),
            EstimateChange::Moved(bitrate) => self.set_estimate(now, subscriber, bitrate),
        }
    }

    /// Whether the estimate holds one of `subscriber`'s videos below the best layer it wants
    /// that the publisher sends: only a measurement of its link can let it climb.
    pub fn held_back(&mut self, now: Instant, subscriber: ParticipantId) -> bool {
        let Some(room) = self
            .participants
            .get(&subscriber)
            .and_then(|lesson| self.lessons.get(lesson))
        else {
            return false;
        };
        for id in &room.publications {
            let Some(pubn) = self.publications.get_mut(id) else {
                continue;
            };
            if pubn.kind != MediaKind::Video {
                continue;
            }
            let Some(wanted) = pubn
                .subscription(subscriber)
                .and_then(|s| s.selector.wanted())
            else {
                continue;
            };
            let best = wanted.at_or_below().find(|&l| pubn.available(now, l));
            if pubn
                .subscription(subscriber)
                .is_some_and(|s| s.attached() && best.is_some() && s.selector.target < best)
            {
                return true;
            }
        }
        false
    }

    /// One RTP packet of one layer from a publisher (a track sent without simulcast is
    /// [`Layer::High`]). Forwards it to every subscription that receives that layer.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        publication: PublicationId,
        layer: Layer,
        packet: rtp::Packet,
    ) -> Result<(), RouterError> {
        let pubn = self
            .publications
            .get_mut(&publication)
            .ok_or(RouterError::NoSuchPublication(publication))?;
        let kind = pubn.kind;
        let size = packet.payload.len() + packet.header.marshal_size();
        pubn.layer(layer).on_packet(now, kind, &packet.header, size);
        if pubn.muted {
            return Ok(());
        }
        if pubn.kind == MediaKind::Audio {
            for sub in &mut pubn.subscriptions {
                let subscriber = sub.subscriber;
                let Some(rewriter) = sub.rewriter() else {
                    continue;
                };
                let mut out = packet.clone();
                rewriter.rewrite(now, &mut out);
                self.outputs.push_back(Output::Forward {
                    subscriber,
                    publication,
                    packet: out,
                });
            }
            return Ok(());
        }
        let desc = Vp8Descriptor::parse(&packet.payload);
        let keyframe = desc.is_some_and(|d| d.keyframe);
        for sub in &mut pubn.subscriptions {
            if !sub.attached() {
                continue;
            }
            let this = Some(layer);
            if sub.selector.target == this && sub.selector.current != this {
                // Meanwhile the old layer goes on (below); the new one starts cleanly.
                if !keyframe {
                    continue;
                }
                if sub.selector.current.is_none()
                    && let Some(rewriter) = sub.rewriter()
                {
                    // Resuming after a pause: no gap for the subscriber to ask about.
                    rewriter.resync();
                }
                sub.selector.current = this;
                sub.waiting_since = None;
                sub.freezes.resume(now);
                self.outputs.push_back(Output::LayerChanged {
                    subscriber: sub.subscriber,
                    publication,
                    layer: this,
                });
            } else if sub.selector.current != this {
                continue;
            }
            let subscriber = sub.subscriber;
            let mut out = packet.clone();
            if let Some(desc) = &desc {
                if sub.last_source != Some(packet.header.ssrc) {
                    sub.vp8.switch_source(desc);
                }
                out.payload = sub.vp8.rewrite(&packet.payload, desc);
            }
            sub.last_source = Some(packet.header.ssrc);
            if keyframe {
                sub.freezes.resume(now);
            }
            let Some(rewriter) = sub.rewriter() else {
                continue;
            };
            rewriter.rewrite(now, &mut out);
            self.outputs.push_back(Output::Forward {
                subscriber,
                publication,
                packet: out,
            });
        }
        Ok(())
    }

    /// A subscriber asked for a keyframe (PLI/FIR) of a publication it receives: the layer
    /// it receives (or is switching to) is asked.
    pub fn handle_keyframe_request(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
    ) -> Result<(), RouterError> {
        let (_, sub) = subscription_mut(&mut self.publications, subscriber, publication)?;
        // A subscriber that was shown a picture and asks for a keyframe has lost it.
        if sub.selector.current.is_some() && sub.selector.target.is_some() {
            sub.freezes.stop(now);
        }
        if let Some(layer) = sub.selector.target.or(sub.selector.current) {
            self.request_keyframe(now, publication, layer);
        }
        Ok(())
    }

    /// Sends throttled keyframe requests, re-asks for keyframes that have not come, and
    /// shares out each subscriber's link again when that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.wake_at {
            Some(at) if now >= at => {}
            _ => return,
        }
        self.wake_at = None;
        if self.next_allocation.is_some_and(|at| now >= at) {
            self.next_allocation = None;
            let mut subscribers: Vec<ParticipantId> = self
                .publications
                .values()
                .filter(|p| p.kind == MediaKind::Video)
                .flat_map(|p| p.subscriptions.iter())
                .filter(|s| s.attached())
                .map(|s| s.subscriber)
                .collect();
            subscribers.sort();
            subscribers.dedup();
            if !subscribers.is_empty() {
                self.next_allocation = Some(now + self.config.allocation_interval);
            }
            for subscriber in subscribers {
                self.allocate(now, subscriber);
            }
        }
        let retry = self.config.keyframe_retry;
        let mut again = Vec::new();
        let mut next: Option<Instant> = self.next_allocation;
        let earliest = |next: &mut Option<Instant>, at: Instant| {
            *next = Some(next.map_or(at, |n| n.min(at)));
        };
        for (&id, pubn) in &mut self.publications {
            let owner = pubn.owner;
            for layer in Layer::ALL {
                let state = pubn.layer(layer);
                if state.keyframes.poll_pending(now)
                    && let Some(media_ssrc) = state.ssrc
                {
                    self.outputs.push_back(Output::RequestKeyframe {
                        publisher: owner,
                        publication: id,
                        media_ssrc,
                    });
                }
                if let Some(due) = state.keyframes.due_at() {
                    earliest(&mut next, due);
                }
            }
            for sub in &mut pubn.subscriptions {
                if let (Some(since), Some(layer)) = (sub.waiting_since, sub.selector.target) {
                    if now >= since + retry {
                        sub.waiting_since = Some(now);
                        again.push((id, layer));
                    }
                    earliest(&mut next, sub.waiting_since.unwrap_or(now) + retry);
                }
            }
        }
        again.sort();
        again.dedup();
        for (id, layer) in again {
            self.request_keyframe(now, id, layer);
        }
        if let Some(at) = next {
            self.wake_no_later_than(at);
        }
    }

    /// The next instant [`Router::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wake_at
    }

    /// How many keyframe requests the per-layer gates have coalesced since start.
    pub fn keyframe_requests_throttled(&self) -> u64 {
        self.keyframe_requests_throttled
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// How often, and how long, `subscriber`'s picture of `publication` has stood still.
    pub fn freezes(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        publication: PublicationId,
    ) -> Option<Freezes> {
        let pubn = self.publications.get_mut(&publication)?;
        if pubn.kind != MediaKind::Video {
            return None;
        }
        Some(pubn.subscription(subscriber)?.freezes.totals(now))
    }

    /// How each stream `owner` publishes was received over the report interval that ends
    /// now (`elapsed` long), then starts the next one: by publication, then layer (`None` for
    /// audio). Only streams that have received a packet are reported.
    pub fn publishing_quality(
        &mut self,
        owner: ParticipantId,
        elapsed: Duration,
    ) -> Vec<(PublicationId, Option<Layer>, QualitySample)> {
        let mut ids: Vec<PublicationId> = self
            .publications
            .iter()
            .filter(|(_, p)| p.owner == owner)
            .map(|(&id, _)| id)
            .collect();
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            let Some(pubn) = self.publications.get_mut(&id) else {
                continue;
            };
            let video = pubn.kind == MediaKind::Video;
            for layer in Layer::ALL {
                if let Some(stats) = &mut pubn.layer(layer).received {
                    out.push((id, video.then_some(layer), stats.interval(elapsed)));
                }
            }
        }
        out
    }

    /// The lesson a participant is in.
    pub fn lesson_of(&self, participant: ParticipantId) -> Option<LessonId> {
        self.participants.get(&participant).copied()
    }

    /// Who publishes `publication`, and its source.
    pub fn publication(&self, id: PublicationId) -> Option<(ParticipantId, Source, MediaKind)> {
        self.publications
            .get(&id)
            .map(|p| (p.owner, p.source, p.kind))
    }

    /// Shares one subscriber's link out among its subscriptions ([`LinkShare`]): audio
    /// first, then video by priority (screen, then cameras, in order of publication); each
    /// video subscription gets the best available layer it accepts that still fits, or is
    /// paused when none does. Without an estimate the link is taken to carry everything.
    /// Carries out each [`LayerDecision`].
    fn allocate(&mut self, now: Instant, subscriber: ParticipantId) {
        let Some(lesson) = self.participants.get(&subscriber) else {
            return;
        };
        let Some(room) = self.lessons.get(lesson) else {
            return;
        };
        let estimate = self.estimates.get(&subscriber).copied();
        let mut share = LinkShare::new(estimate, self.starting.contains(&subscriber));
        let mut videos = Vec::new();
        for &id in &room.publications {
            let Some(pubn) = self.publications.get_mut(&id) else {
                continue;
            };
            if pubn.subscription(subscriber).is_none_or(|s| !s.attached()) {
                continue;
            }
            match pubn.kind {
                MediaKind::Audio => {
                    share.reserve_audio(pubn.layers[Layer::High.index()].rate.bitrate(now));
                }
                MediaKind::Video => videos.push((pubn.priority(), id)),
            }
        }
        videos.sort();
        let mut requests = Vec::new();
        for (_, id) in videos {
            let Some(pubn) = self.publications.get_mut(&id) else {
                continue;
            };
            let Publication {
                layers,
                subscriptions,
                ..
            } = pubn;
            let Some(sub) = subscriptions
                .iter_mut()
                .find(|s| s.subscriber == subscriber)
            else {
                continue;
            };
            let mut offer = Offered { layers, now };
            // The layer it shows stopped arriving: its picture stands until another starts.
            let current_gone = sub
                .selector
                .current
                .is_some_and(|layer| !offer.available(layer));
            let decision = share.allot(now, &mut sub.selector, &mut offer);
            match sub.selector.target {
                Some(_) if current_gone => sub.freezes.stop(now),
                Some(_) => {}
                None => sub.freezes.resume(now),
            }
            if let Some(due) = sub.selector.up_switch_due() {
                self.wake_at = Some(self.wake_at.map_or(due, |w| w.min(due)));
            }
            match decision {
                LayerDecision::Keep => {}
                LayerDecision::SwitchTo(layer) => {
                    sub.waiting_since = Some(now);
                    requests.push((id, layer));
                }
                LayerDecision::Settle(_) => sub.waiting_since = None,
                LayerDecision::Pause { stopped } => {
                    sub.waiting_since = None;
                    if stopped {
                        self.outputs.push_back(Output::LayerChanged {
                            subscriber,
                            publication: id,
                            layer: None,
                        });
                    }
                }
            }
        }
        for (id, layer) in requests {
            self.request_keyframe(now, id, layer);
            self.wake_no_later_than(now + self.config.keyframe_retry);
        }
    }

    fn request_keyframe(&mut self, now: Instant, id: PublicationId, layer: Layer) {
        let Some(pubn) = self.publications.get_mut(&id) else {
            return;
        };
        let owner = pubn.owner;
        let state = pubn.layer(layer);
        if state.keyframes.allow(now) {
            // Before the first packet the SSRC is unknown; the publisher's encoder starts
            // with a keyframe anyway, and the retry timer asks again.
            if let Some(media_ssrc) = state.ssrc {
                self.outputs.push_back(Output::RequestKeyframe {
                    publisher: owner,
                    publication: id,
                    media_ssrc,
                });
            }
        } else {
            self.keyframe_requests_throttled += 1;
            if let Some(due) = state.keyframes.due_at() {
                self.wake_no_later_than(due);
            }
        }
    }

    fn wake_no_later_than(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

/// One subscriber's subscription to one publication, and the publication's kind.
fn subscription_mut(
    publications: &mut HashMap<PublicationId, Publication>,
    subscriber: ParticipantId,
    publication: PublicationId,
) -> Result<(MediaKind, &mut Subscription), RouterError> {
    let pubn = publications
        .get_mut(&publication)
        .ok_or(RouterError::NoSuchPublication(publication))?;
    let kind = pubn.kind;
    let sub = pubn
        .subscription(subscriber)
        .ok_or(RouterError::NoSuchSubscription {
            subscriber,
            publication,
        })?;
    Ok((kind, sub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const KEY: &[u8] = &[0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
    const DELTA: &[u8] = &[0x10, 0x11, 0x00];
    const OPUS: &[u8] = &[0xfc, 0xff, 0xfe];

    fn rtp(ssrc: u32, seq: u16, payload: &'static [u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type: 120,
                sequence_number: seq,
                timestamp: seq as u32 * 3000,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        }
    }

    fn format(ssrc: u32, payload_type: u8) -> LegFormat {
        LegFormat {
            ssrc,
            payload_type,
            clock_rate: 90_000,
        }
    }

    fn drain(router: &mut Router) -> Vec<Output> {
        std::iter::from_fn(|| router.poll_output()).collect()
    }

    fn forwards(outputs: &[Output]) -> Vec<(ParticipantId, u32, u16, u8)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Forward {
                    subscriber, packet, ..
                } => Some((
                    *subscriber,
                    packet.header.ssrc,
                    packet.header.sequence_number,
                    packet.header.payload_type,
                )),
                _ => None,
            })
            .collect()
    }

    const LESSON: LessonId = LessonId(1);

    /// A router with these participants in `LESSON`, all subscribing.
    fn lesson_with(members: &[ParticipantId]) -> Router {
        let mut r = Router::new(RouterConfig::default());
        for &member in members {
            r.add_participant(LESSON, member, true).unwrap();
        }
        r
    }
    const TEACHER: ParticipantId = ParticipantId(1);
    const ROOM_A: ParticipantId = ParticipantId(2);
    const ROOM_B: ParticipantId = ParticipantId(3);

    /// A teacher publishing audio in a lesson with two classrooms, all attached.
    fn lesson_with_audio(t0: Instant) -> (Router, PublicationId) {
        let mut r = lesson_with(&[TEACHER, ROOM_A, ROOM_B]);
        let audio = r
            .add_publication(TEACHER, Source::Microphone, MediaKind::Audio)
            .unwrap();
        let out = drain(&mut r);
        assert_eq!(
            out,
            vec![
                Output::SubscriptionAdded {
                    subscriber: ROOM_A,
                    publication: audio,
                    kind: MediaKind::Audio,
                    source: Source::Microphone
                },
                Output::SubscriptionAdded {
                    subscriber: ROOM_B,
                    publication: audio,
                    kind: MediaKind::Audio,
                    source: Source::Microphone
                },
            ],
            "everyone but the publisher subscribes"
        );
        r.attach_subscription(t0, ROOM_A, audio, format(0xA, 111))
            .unwrap();
        r.attach_subscription(t0, ROOM_B, audio, format(0xB, 109))
            .unwrap();
        (r, audio)
    }

    #[test]
    fn routes_to_every_subscriber_with_per_leg_rewriting() {
        let t0 = Instant::now();
        let (mut r, audio) = lesson_with_audio(t0);
        assert_eq!(drain(&mut r), vec![], "audio needs no keyframe");
        r.handle_rtp(t0, audio, Layer::High, rtp(0x7777, 500, OPUS))
            .unwrap();
        r.handle_rtp(t0, audio, Layer::High, rtp(0x7777, 501, OPUS))
            .unwrap();
        let out = drain(&mut r);
        assert_eq!(
            forwards(&out),
            vec![
                (ROOM_A, 0xA, 500, 111),
                (ROOM_B, 0xB, 500, 109),
                (ROOM_A, 0xA, 501, 111),
                (ROOM_B, 0xB, 501, 109),
            ]
        );
        for o in &out {
            if let Output::Forward { packet, .. } = o {
                assert_eq!(&packet.payload[..], OPUS, "payload intact");
            }
        }
    }

    #[test]
    fn unattached_subscription_receives_nothing() {
        let t0 = Instant::now();
        let mut r = lesson_with(&[TEACHER, ROOM_A]);
        let audio = r
            .add_publication(TEACHER, Source::Microphone, MediaKind::Audio)
            .unwrap();
        drain(&mut r);
        r.handle_rtp(t0, audio, Layer::High, rtp(1, 1, OPUS))
            .unwrap();
        assert_eq!(forwards(&drain(&mut r)), vec![]);
    }

    #[test]
    fn lessons_are_isolated() {
        let t0 = Instant::now();
        let (mut r, audio) = lesson_with_audio(t0);
        r.add_participant(LessonId(2), ParticipantId(9), true)
            .unwrap();
        assert_eq!(drain(&mut r), vec![], "no subscription across lessons");
        r.handle_rtp(t0, audio, Layer::High, rtp(1, 1, OPUS))
            .unwrap();
        assert!(
            forwards(&drain(&mut r))
                .iter()
                .all(|(who, ..)| *who != ParticipantId(9))
        );
    }

    #[test]
    fn late_video_subscriber_waits_for_keyframe_and_asks_for_one() {
        let t0 = Instant::now();
        let mut r = lesson_with(&[TEACHER]);
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        r.handle_rtp(t0, cam, Layer::High, rtp(0x55, 1, KEY))
            .unwrap();
        r.handle_rtp(t0, cam, Layer::High, rtp(0x55, 2, DELTA))
            .unwrap();
        // A classroom joins late.
        r.add_participant(LESSON, ROOM_A, true).unwrap();
        assert_eq!(
            drain(&mut r),
            vec![Output::SubscriptionAdded {
                subscriber: ROOM_A,
                publication: cam,
                kind: MediaKind::Video,
                source: Source::Camera
            }]
        );
        let t1 = t0 + Duration::from_secs(5);
        r.handle_rtp(t1, cam, Layer::High, rtp(0x55, 3, DELTA))
            .unwrap();
        r.attach_subscription(t1, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        assert_eq!(
            drain(&mut r),
            vec![Output::RequestKeyframe {
                publisher: TEACHER,
                publication: cam,
                media_ssrc: 0x55
            }]
        );
        // Delta frames are held back until the keyframe.
        r.handle_rtp(t1, cam, Layer::High, rtp(0x55, 3, DELTA))
            .unwrap();
        assert_eq!(forwards(&drain(&mut r)), vec![]);
        r.handle_rtp(t1, cam, Layer::High, rtp(0x55, 4, KEY))
            .unwrap();
        r.handle_rtp(t1, cam, Layer::High, rtp(0x55, 5, DELTA))
            .unwrap();
        assert_eq!(
            forwards(&drain(&mut r)),
            vec![(ROOM_A, 0xA, 4, 96), (ROOM_A, 0xA, 5, 96)]
        );
    }

    #[test]
    fn keyframe_requests_are_throttled_per_publication_and_never_lost() {
        let t0 = Instant::now();
        let mut r = lesson_with(&[TEACHER]);
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        let mut rooms = vec![];
        for i in 0..20 {
            let room = ParticipantId(100 + i);
            r.add_participant(LESSON, room, true).unwrap();
            rooms.push(room);
        }
        r.handle_rtp(t0, cam, Layer::High, rtp(0x55, 1, KEY))
            .unwrap();
        drain(&mut r);
        // Twenty classrooms attach (and so ask for a keyframe) within 100 ms.
        for (i, room) in rooms.iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64 * 5);
            r.attach_subscription(at, *room, cam, format(i as u32, 96))
                .unwrap();
        }
        // PLIs from subscribers coalesce too.
        for room in &rooms {
            r.handle_keyframe_request(t0 + Duration::from_millis(150), *room, cam)
                .unwrap();
        }
        let requests = |out: &[Output]| {
            out.iter()
                .filter(|o| matches!(o, Output::RequestKeyframe { .. }))
                .count()
        };
        assert_eq!(requests(&drain(&mut r)), 1, "one request for the storm");
        assert_eq!(
            r.keyframe_requests_throttled(),
            39,
            "the other 39 were coalesced"
        );
        let due = r
            .poll_timeout()
            .expect("the coalesced request is scheduled");
        assert_eq!(due, t0 + Duration::from_millis(500));
        r.handle_timeout(due);
        assert_eq!(
            requests(&drain(&mut r)),
            1,
            "the coalesced request goes out"
        );
        r.handle_timeout(due + Duration::from_millis(100));
        assert_eq!(requests(&drain(&mut r)), 0, "and only once");
        assert!(
            r.handle_keyframe_request(t0, ParticipantId(999), cam)
                .is_err(),
            "a stranger cannot ask"
        );
    }

    #[test]
    fn keyframe_wait_is_retried_until_a_keyframe_arrives() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = lesson_with(&[TEACHER, ROOM_A]);
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        r.handle_rtp(t0, cam, Layer::High, rtp(0x55, 1, DELTA))
            .unwrap();
        r.attach_subscription(t0, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        let requests = |out: Vec<Output>| {
            out.iter()
                .filter(|o| matches!(o, Output::RequestKeyframe { .. }))
                .count()
        };
        assert_eq!(requests(drain(&mut r)), 1, "asked at once");
        // Delta frames every 100 ms, no keyframe: the request is repeated each second.
        let mut asked = 0;
        let mut seq = 2;
        for step in 1..=25u64 {
            let now = t0 + ms(step * 100);
            r.handle_rtp(now, cam, Layer::High, rtp(0x55, seq, DELTA))
                .unwrap();
            seq += 1;
            if r.poll_timeout().is_some_and(|at| at <= now) {
                r.handle_timeout(now);
            }
            asked += requests(drain(&mut r));
        }
        assert_eq!(asked, 2, "re-asked at 1 s and 2 s");
        let now = t0 + ms(2600);
        r.handle_rtp(now, cam, Layer::High, rtp(0x55, seq, KEY))
            .unwrap();
        let out = drain(&mut r);
        assert!(out.contains(&Output::LayerChanged {
            subscriber: ROOM_A,
            publication: cam,
            layer: Some(Layer::High)
        }));
        assert_eq!(forwards(&out).len(), 1, "the keyframe is forwarded");
        let mut asked = 0;
        for step in 27..=80u64 {
            let now = t0 + ms(step * 100);
            seq += 1;
            r.handle_rtp(now, cam, Layer::High, rtp(0x55, seq, DELTA))
                .unwrap();
            if r.poll_timeout().is_some_and(|at| at <= now) {
                r.handle_timeout(now);
            }
            asked += requests(drain(&mut r));
        }
        assert_eq!(asked, 0, "no more requests once the keyframe came");
    }

    #[test]
    fn a_leaving_subscriber_stops_receiving_and_a_leaving_publisher_ends_its_publications() {
        let t0 = Instant::now();
        let (mut r, audio) = lesson_with_audio(t0);
        r.remove_participant(ROOM_A).unwrap();
        assert_eq!(drain(&mut r), vec![]);
        r.handle_rtp(t0, audio, Layer::High, rtp(1, 1, OPUS))
            .unwrap();
        assert_eq!(forwards(&drain(&mut r)), vec![(ROOM_B, 0xB, 1, 109)]);
        assert_eq!(
            r.remove_participant(ROOM_A),
            Err(RouterError::NoSuchParticipant(ROOM_A))
        );
        r.remove_participant(TEACHER).unwrap();
        assert_eq!(
            drain(&mut r),
            vec![
                Output::SubscriptionRemoved {
                    subscriber: ROOM_B,
                    publication: audio
                },
                Output::PublicationRemoved {
                    owner: TEACHER,
                    publication: audio
                },
            ]
        );
        assert_eq!(
            r.handle_rtp(t0, audio, Layer::High, rtp(1, 2, OPUS)),
            Err(RouterError::NoSuchPublication(audio))
        );
    }

    /// A simulcast camera: each layer on its own SSRC with its own picture ids, one packet
    /// per layer every 10 ms; sizes make Low ~0.13, Medium ~0.41, High ~1.2 Mbit/s.
    struct Simulcast {
        seq: [u16; 3],
        pid: [u16; 3],
    }

    const LAYER_SSRC: [u32; 3] = [0x10, 0x20, 0x30];

    impl Simulcast {
        fn packet(&mut self, layer: Layer, key: bool) -> rtp::Packet {
            let i = layer.index();
            self.seq[i] = self.seq[i].wrapping_add(1);
            self.pid[i] = (self.pid[i] + 1) % 0x8000;
            let pid = self.pid[i];
            let size = [150, 500, 1500][i];
            let mut payload = vec![0x90, 0x80, 0x80 | (pid >> 8) as u8, pid as u8];
            payload.push(if key { 0x00 } else { 0x01 });
            payload.resize(size, 0xEE);
            rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    payload_type: 96,
                    sequence_number: self.seq[i],
                    timestamp: self.seq[i] as u32 * 900,
                    ssrc: LAYER_SSRC[i],
                    ..Default::default()
                },
                payload: Bytes::from(payload),
            }
        }
    }

    /// Runs `ms` milliseconds of simulcast from `from`; `key(layer)` says whether the next
    /// packet of that layer is a keyframe. Returns the outputs and the end time.
    fn run(
        r: &mut Router,
        cam: PublicationId,
        sim: &mut Simulcast,
        from: Instant,
        ms: u64,
        key: &mut dyn FnMut(Layer) -> bool,
    ) -> (Vec<Output>, Instant) {
        let mut out = vec![];
        let mut now = from;
        for _ in 0..ms / 10 {
            now += Duration::from_millis(10);
            for layer in Layer::ALL {
                let p = sim.packet(layer, key(layer));
                r.handle_rtp(now, cam, layer, p).unwrap();
            }
            if r.poll_timeout().is_some_and(|at| at <= now) {
                r.handle_timeout(now);
            }
            out.extend(drain(r));
        }
        (out, now)
    }

    fn forwarded_sources(out: &[Output]) -> Vec<u32> {
        let mut v: Vec<u32> = vec![];
        for o in out {
            if let Output::Forward { packet, .. } = o {
                // Sources are told apart by the payload size the test gives each layer.
                let src = match packet.payload.len() {
                    150 => 0x10,
                    500 => 0x20,
                    _ => 0x30,
                };
                if v.last() != Some(&src) {
                    v.push(src);
                }
            }
        }
        v
    }

    fn requested(out: &[Output]) -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                Output::RequestKeyframe { media_ssrc, .. } => Some(*media_ssrc),
                _ => None,
            })
            .collect()
    }

    /// The teacher's camera in a lesson with `members`, before any packet.
    fn teacher_camera(members: &[ParticipantId]) -> (Router, PublicationId, Simulcast) {
        let mut r = lesson_with(members);
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        let sim = Simulcast {
            seq: [1000, 2000, 3000],
            pid: [10, 2000, 30000],
        };
        (r, cam, sim)
    }

    fn simulcast_lesson(t0: Instant) -> (Router, PublicationId, Simulcast, Instant) {
        let (mut r, cam, mut sim) = teacher_camera(&[TEACHER, ROOM_A]);
        // Media flows before the classroom's leg is up.
        let (_, now) = run(&mut r, cam, &mut sim, t0, 1000, &mut |_| false);
        r.attach_subscription(now, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        let out = drain(&mut r);
        assert_eq!(requested(&out), vec![0x30], "best layer, keyframe asked");
        let mut first = true;
        let (out, now) = run(&mut r, cam, &mut sim, now, 100, &mut |l| {
            let k = first && l == Layer::High;
            first &= !k;
            k
        });
        assert_eq!(forwarded_sources(&out), vec![0x30]);
        (r, cam, sim, now)
    }

    #[test]
    fn a_short_link_switches_down_on_a_keyframe_with_continuous_numbering() {
        let t0 = Instant::now();
        let (mut r, cam, mut sim, now) = simulcast_lesson(t0);
        // The link shrinks to 600 kbit/s: Medium fits, High does not.
        r.set_estimate(now, ROOM_A, Some(600_000));
        assert_eq!(requested(&drain(&mut r)), vec![0x20], "down at once");
        // High goes on until Medium's keyframe comes 50 ms later.
        let mut medium_packets = 0;
        let (out, _) = run(&mut r, cam, &mut sim, now, 200, &mut |l| {
            medium_packets += (l == Layer::Medium) as u32;
            l == Layer::Medium && medium_packets == 5
        });
        assert_eq!(forwarded_sources(&out), vec![0x30, 0x20]);
        assert!(out.contains(&Output::LayerChanged {
            subscriber: ROOM_A,
            publication: cam,
            layer: Some(Layer::Medium)
        }));
        let forwarded: Vec<&rtp::Packet> = out
            .iter()
            .filter_map(|o| match o {
                Output::Forward { packet, .. } => Some(packet),
                _ => None,
            })
            .collect();
        for pair in forwarded.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_eq!(
                b.header.sequence_number,
                a.header.sequence_number.wrapping_add(1)
            );
            assert_eq!(b.header.ssrc, 0xA);
            assert!(b.header.timestamp.wrapping_sub(a.header.timestamp) < 0x8000_0000);
            let pid = |p: &rtp::Packet| {
                Vp8Descriptor::parse(&p.payload)
                    .and_then(|d| d.picture_id)
                    .map(|(pid, ..)| pid)
            };
            assert_eq!(
                pid(b),
                pid(a).map(|p| (p + 1) % 0x8000),
                "picture ids continue"
            );
        }
    }

    #[test]
    fn a_lost_picture_is_a_freeze_until_the_next_keyframe_and_a_pause_is_not() {
        let t0 = Instant::now();
        let (mut r, cam, mut sim, now) = simulcast_lesson(t0);
        let (_, now) = run(&mut r, cam, &mut sim, now, 600, &mut |_| false);
        assert_eq!(r.freezes(now, ROOM_A, cam), Some(Freezes::default()));
        // The classroom's decoder lost the stream: it asks for a keyframe.
        r.handle_keyframe_request(now, ROOM_A, cam).unwrap();
        assert_eq!(requested(&drain(&mut r)), vec![0x30]);
        let (_, later) = run(&mut r, cam, &mut sim, now, 300, &mut |_| false);
        let frozen = r.freezes(later, ROOM_A, cam).unwrap();
        assert_eq!(frozen.count, 1);
        assert_eq!(frozen.frozen, later - now, "still frozen");
        // The keyframe comes 100 ms later: the freeze ends there.
        let mut first = true;
        let (_, end) = run(&mut r, cam, &mut sim, later, 500, &mut |l| {
            let k = first && l == Layer::High;
            first &= !k;
            k
        });
        let thawed = r.freezes(end, ROOM_A, cam).unwrap();
        assert_eq!(thawed.count, 1);
        assert_eq!(thawed.frozen, later + Duration::from_millis(10) - now);
        // Audio-only by the link is a pause, not a freeze.
        r.set_estimate(end, ROOM_A, Some(50_000));
        let (_, end2) = run(&mut r, cam, &mut sim, end, 2000, &mut |_| true);
        assert_eq!(r.freezes(end2, ROOM_A, cam), Some(thawed));
    }

    #[test]
    fn a_layer_that_stops_arriving_freezes_the_picture_until_another_starts() {
        let t0 = Instant::now();
        let (mut r, cam, mut sim, now) = simulcast_lesson(t0);
        // The publisher drops High (its own link or CPU): only Low and Medium go on.
        let mut out = vec![];
        let mut at = now;
        for _ in 0..250 {
            at += Duration::from_millis(10);
            for layer in [Layer::Low, Layer::Medium] {
                r.handle_rtp(at, cam, layer, sim.packet(layer, false))
                    .unwrap();
            }
            if r.poll_timeout().is_some_and(|t| t <= at) {
                r.handle_timeout(at);
            }
            out.extend(drain(&mut r));
        }
        let asked = requested(&out);
        assert!(
            !asked.is_empty() && asked.iter().all(|&s| s == 0x20),
            "Medium asked: {asked:?}"
        );
        let stuck = r.freezes(at, ROOM_A, cam).unwrap();
        assert_eq!(stuck.count, 1);
        assert!(stuck.frozen > Duration::ZERO);
        let (out, end) = run(&mut r, cam, &mut sim, at, 100, &mut |l| l == Layer::Medium);
        assert_eq!(forwarded_sources(&out), vec![0x20]);
        let total = r
            .freezes(end + Duration::from_secs(1), ROOM_A, cam)
            .unwrap();
        assert_eq!(
            (total.count, total.frozen),
            (1, stuck.frozen + Duration::from_millis(10))
        );
    }

    #[test]
    fn a_start_estimate_holds_a_new_subscriber_low_until_its_link_is_measured() {
        let t0 = Instant::now();
        let (mut r, cam, mut sim) = teacher_camera(&[TEACHER]);
        let (_, now) = run(&mut r, cam, &mut sim, t0, 1000, &mut |_| false);
        // A classroom joins on the start estimate: the low layer only.
        r.add_participant(LESSON, ROOM_A, true).unwrap();
        r.set_start_estimate(now, ROOM_A, 300_000);
        drain(&mut r);
        assert!(!r.held_back(now, ROOM_A), "nothing attached yet");
        r.attach_subscription(now, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        assert_eq!(requested(&drain(&mut r)), vec![0x10]);
        assert!(r.held_back(now, ROOM_A), "High is sent and wanted");
        let (out, now) = run(&mut r, cam, &mut sim, now, 200, &mut |l| l == Layer::Low);
        assert_eq!(forwarded_sources(&out), vec![0x10]);
        // Its link is measured: nothing limits it, and it goes to High without the hold.
        r.set_first_estimate(now, ROOM_A, None);
        assert_eq!(requested(&drain(&mut r)), vec![0x30]);
        let (out, now) = run(&mut r, cam, &mut sim, now, 100, &mut |l| l == Layer::High);
        assert_eq!(forwarded_sources(&out), vec![0x10, 0x30]);
        assert!(!r.held_back(now, ROOM_A));
        // The subscriber's own cap is not the link holding it back.
        r.set_subscription(now, ROOM_A, cam, Layer::Low, false)
            .unwrap();
        assert!(!r.held_back(now, ROOM_A));
    }

    #[test]
    fn a_single_layer_video_flows_on_the_start_estimate() {
        let t0 = Instant::now();
        // No simulcast: one High layer of ~1.2 Mbit/s, more than the start estimate.
        let (mut r, cam, mut sim) = teacher_camera(&[TEACHER]);
        let mut now = t0;
        for _ in 0..100 {
            now += Duration::from_millis(10);
            r.handle_rtp(now, cam, Layer::High, sim.packet(Layer::High, false))
                .unwrap();
        }
        r.add_participant(LESSON, ROOM_A, true).unwrap();
        r.set_start_estimate(now, ROOM_A, 300_000);
        drain(&mut r);
        r.attach_subscription(now, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        assert_eq!(requested(&drain(&mut r)), vec![0x30], "its only layer");
        r.handle_rtp(now, cam, Layer::High, sim.packet(Layer::High, true))
            .unwrap();
        assert_eq!(forwarded_sources(&drain(&mut r)), vec![0x30]);
        // Measured short: now the link decides, and pauses it.
        r.set_first_estimate(now, ROOM_A, Some(300_000));
        assert!(drain(&mut r).contains(&Output::LayerChanged {
            subscriber: ROOM_A,
            publication: cam,
            layer: None
        }));
    }

    #[test]
    fn going_up_waits_for_the_link_to_hold_then_climbs() {
        let t0 = Instant::now();
        let (mut r, cam, mut sim, now) = simulcast_lesson(t0);
        r.set_estimate(now, ROOM_A, Some(250_000));
        let (out, now) = run(&mut r, cam, &mut sim, now, 1000, &mut |l| l == Layer::Low);
        assert_eq!(
            forwarded_sources(&out).last(),
            Some(&0x10),
            "settled on Low"
        );
        // The link recovers; a noisy estimate must not make it climb at once.
        r.set_estimate(now, ROOM_A, Some(5_000_000));
        let (out, now) = run(&mut r, cam, &mut sim, now, 2500, &mut |_| true);
        assert_eq!(forwarded_sources(&out), vec![0x10], "held for 2.5 s");
        let (out, _) = run(&mut r, cam, &mut sim, now, 1000, &mut |_| true);
        assert_eq!(
            forwarded_sources(&out).last(),
            Some(&0x30),
            "climbed after the hold"
        );
    }

    #[test]
    fn below_the_lowest_layer_video_pauses_and_audio_goes_on() {
        let t0 = Instant::now();
        let (mut r, cam, mut sim, now) = simulcast_lesson(t0);
        let voice = r
            .add_publication(TEACHER, Source::Microphone, MediaKind::Audio)
            .unwrap();
        drain(&mut r);
        r.attach_subscription(now, ROOM_A, voice, format(0xB, 111))
            .unwrap();
        r.set_estimate(now, ROOM_A, Some(100_000));
        let out = drain(&mut r);
        assert!(out.contains(&Output::LayerChanged {
            subscriber: ROOM_A,
            publication: cam,
            layer: None
        }));
        let (out, now) = run(&mut r, cam, &mut sim, now, 500, &mut |_| true);
        assert!(forwarded_sources(&out).is_empty(), "no video");
        r.handle_rtp(now, voice, Layer::High, rtp(0x99, 1, OPUS))
            .unwrap();
        assert_eq!(
            forwards(&drain(&mut r)),
            vec![(ROOM_A, 0xB, 1, 111)],
            "audio on"
        );
        // The link comes back: video returns after the hold, from a keyframe.
        r.set_estimate(now, ROOM_A, Some(2_000_000));
        let (out, _) = run(&mut r, cam, &mut sim, now, 3500, &mut |_| true);
        assert_eq!(forwarded_sources(&out), vec![0x30]);
    }

    #[test]
    fn the_subscribers_own_cap_and_pause_are_honoured_at_once() {
        let t0 = Instant::now();
        let (mut r, cam, mut sim, now) = simulcast_lesson(t0);
        r.set_subscription(now, ROOM_A, cam, Layer::Low, false)
            .unwrap();
        let (out, now) = run(&mut r, cam, &mut sim, now, 200, &mut |_| true);
        assert_eq!(forwarded_sources(&out).last(), Some(&0x10));
        r.set_subscription(now, ROOM_A, cam, Layer::High, true)
            .unwrap();
        let (out, now) = run(&mut r, cam, &mut sim, now, 200, &mut |_| true);
        assert!(forwarded_sources(&out).is_empty(), "paused");
        r.set_subscription(now, ROOM_A, cam, Layer::High, false)
            .unwrap();
        let (out, _) = run(&mut r, cam, &mut sim, now, 200, &mut |_| true);
        assert_eq!(
            forwarded_sources(&out),
            vec![0x30],
            "resumed without a hold"
        );
    }

    #[test]
    fn a_short_link_serves_the_screen_before_the_camera() {
        let t0 = Instant::now();
        let mut r = lesson_with(&[TEACHER, ROOM_A]);
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        let screen = r
            .add_publication(TEACHER, Source::Screen, MediaKind::Video)
            .unwrap();
        drain(&mut r);
        // Room for one stream of ~1.5 Mbit/s (defaults, nothing measured yet).
        r.set_estimate(t0, ROOM_A, Some(1_600_000));
        r.attach_subscription(t0, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        r.attach_subscription(t0, ROOM_A, screen, format(0xC, 96))
            .unwrap();
        // Re-share now that both are attached.
        r.set_estimate(t0, ROOM_A, Some(1_600_000));
        drain(&mut r);
        let key = rtp(0x55, 1, KEY);
        r.handle_rtp(t0, screen, Layer::High, key.clone()).unwrap();
        r.handle_rtp(t0, cam, Layer::High, key).unwrap();
        let subscribers: Vec<u32> = forwards(&drain(&mut r)).iter().map(|f| f.1).collect();
        assert_eq!(subscribers, vec![0xC], "the screen fits, the camera waits");
    }

    #[test]
    fn a_muted_publication_is_not_forwarded_and_resumes_without_a_gap() {
        let t0 = Instant::now();
        let (mut r, audio) = lesson_with_audio(t0);
        r.handle_rtp(t0, audio, Layer::High, rtp(7, 10, OPUS))
            .unwrap();
        drain(&mut r);
        r.set_muted(t0, audio, true).unwrap();
        for seq in 11..20 {
            r.handle_rtp(t0, audio, Layer::High, rtp(7, seq, OPUS))
                .unwrap();
        }
        assert_eq!(forwards(&drain(&mut r)), vec![], "muted at once");
        r.set_muted(t0, audio, false).unwrap();
        r.handle_rtp(t0, audio, Layer::High, rtp(7, 20, OPUS))
            .unwrap();
        assert_eq!(
            forwards(&drain(&mut r)),
            vec![(ROOM_A, 0xA, 11, 111), (ROOM_B, 0xB, 11, 109)],
            "numbering continues after the last packet sent"
        );
        assert_eq!(
            r.set_muted(t0, PublicationId(77), true),
            Err(RouterError::NoSuchPublication(PublicationId(77)))
        );
    }

    #[test]
    fn a_muted_source_forwards_nothing_even_from_a_publication_made_later() {
        let t0 = Instant::now();
        let mut r = lesson_with(&[TEACHER, ROOM_A]);
        r.set_source_muted(t0, TEACHER, Source::Camera, true)
            .unwrap();
        let cam = r
            .add_publication(TEACHER, Source::Camera, MediaKind::Video)
            .unwrap();
        let voice = r
            .add_publication(TEACHER, Source::Microphone, MediaKind::Audio)
            .unwrap();
        drain(&mut r);
        r.attach_subscription(t0, ROOM_A, cam, format(0xA, 96))
            .unwrap();
        r.attach_subscription(t0, ROOM_A, voice, format(0xB, 111))
            .unwrap();
        drain(&mut r);
        let mut sim = Simulcast {
            seq: [1000, 2000, 3000],
            pid: [10, 2000, 30000],
        };
        // Keyframes on every layer from the very first packet: still nothing.
        let (out, now) = run(&mut r, cam, &mut sim, t0, 500, &mut |_| true);
        assert!(forwards(&out).is_empty(), "not even the first packet");
        // The participant's other sources are not muted.
        r.handle_rtp(now, voice, Layer::High, rtp(0x99, 1, OPUS))
            .unwrap();
        assert_eq!(forwards(&drain(&mut r)), vec![(ROOM_A, 0xB, 1, 111)]);
        // Unmuted: delta frames wait for a keyframe, which then starts the picture.
        r.set_source_muted(now, TEACHER, Source::Camera, false)
            .unwrap();
        let (out, now) = run(&mut r, cam, &mut sim, now, 200, &mut |_| false);
        assert!(forwards(&out).is_empty(), "waits for a keyframe");
        let (out, now) = run(&mut r, cam, &mut sim, now, 100, &mut |l| l == Layer::High);
        assert_eq!(forwarded_sources(&out), vec![0x30]);
        // Muted again: the live publication stops at once.
        r.set_source_muted(now, TEACHER, Source::Camera, true)
            .unwrap();
        let (out, _) = run(&mut r, cam, &mut sim, now, 200, &mut |_| true);
        assert!(forwards(&out).is_empty(), "muted at once");
        assert_eq!(
            r.set_source_muted(now, ParticipantId(77), Source::Camera, true),
            Err(RouterError::NoSuchParticipant(ParticipantId(77)))
        );
    }

    #[test]
    fn each_received_stream_is_metered_once_for_quality_reports() {
        let t0 = Instant::now();
        let (mut r, audio) = lesson_with_audio(t0);
        // Ten packets of 15 bytes on the wire, two of them lost on the way in.
        for seq in (1..=10).filter(|s| *s != 4 && *s != 7) {
            r.handle_rtp(
                t0 + Duration::from_millis(20 * u64::from(seq)),
                audio,
                Layer::High,
                rtp(7, seq, OPUS),
            )
            .unwrap();
        }
        let q = r.publishing_quality(TEACHER, Duration::from_secs(1));
        assert_eq!(q.len(), 1);
        let (id, layer, sample) = q[0];
        assert_eq!((id, layer), (audio, None), "audio has no layer");
        assert!((sample.loss - 0.2).abs() < 1e-6, "{}", sample.loss);
        assert_eq!(sample.bitrate_bps, 8 * 15 * 8);
        // The next interval starts empty.
        let q = r.publishing_quality(TEACHER, Duration::from_secs(1));
        assert_eq!((q[0].2.loss, q[0].2.bitrate_bps), (0.0, 0));
        // A new SSRC (an encoder restart) starts afresh: its first sequence number is no gap.
        r.handle_rtp(t0, audio, Layer::High, rtp(8, 5000, OPUS))
            .unwrap();
        let q = r.publishing_quality(TEACHER, Duration::from_secs(1));
        assert_eq!((q[0].2.loss, q[0].2.bitrate_bps), (0.0, 15 * 8));
        assert!(
            r.publishing_quality(ROOM_A, Duration::from_secs(1))
                .is_empty()
        );
    }
}
