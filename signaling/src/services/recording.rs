//! Recording lessons into the library: the glue between a live lesson and the `recorder`
//! crate (DESIGN §4, issue 6).
//!
//! A lesson is recorded when it goes live and its policy says so (`lessons.record`, on by
//! default in `network` mode), or when a moderator says `start_recording`; it stops on
//! `stop_recording`, when the lesson ends, at shutdown, or on its own on an error such as a
//! full disk. Everyone in the lesson hears `recording_changed`; an error goes to the
//! moderators too and is logged for the operators (`classroom_recordings_failed_total`).
//!
//! Each recording is one task here and one recorder thread (`recorder::RecorderHandle`):
//! - media comes from an SFU *tap* (a connection-less subscriber of every publication of the
//!   lesson), so nothing passes through another WebRTC hop: every microphone is a `Voice` of
//!   the mix, the teacher's camera is the video of `main.webm`, the teacher's screen goes to
//!   `screen.webm`; the recorder's keyframe requests go back to the SFU as PLIs;
//! - the timeline comes from the lesson hub, which shows this module every message it
//!   delivers ([`Hub::set_observer`]): chat to everyone, hands, the stage; the tap adds
//!   screen-share starts and stops.
//!
//! Every queue is bounded and drops count in `classroom_recording_inputs_dropped_total`: a
//! recorder that falls behind loses packets (the video recovers on the next keyframe, the mix
//! conceals), never the lesson.
//!
//! At start-up [`Recordings::recover`] seals what a killed process left behind and lists it
//! as `interrupted`. Files live in `DATA/library/<id>/`; `GET /api/library` lists them.
//!
//! The library's quota (`library_quota_bytes`), when set, is a byte budget at the recorder's
//! storage boundary (`recorder::QuotaStorage`), which fails with ENOSPC exactly as a full disk
//! does, so a quota hit takes the full-disk path end to end (`disk_full`, the recording marked
//! `failed`, what was recorded kept). The budget is what the quota leaves after the bytes
//! already under `DATA/library`, counted once as each recording starts: recordings running at
//! the same time each get that budget, and files others write meanwhile (a thumbnail) are not
//! charged to it, so the library can pass its quota by about one recording's reserve — simple,
//! and close enough for a limit an operator sets well below the disk's size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use recorder::{
    ErrorInfo, LessonMeta, QuotaStorage, RecorderConfig, RecorderHandle, RecorderNotice, Recording,
    RecordingId, RecordingMeta, RecordingState, Storage, TimelineEvent, TrackId, TrackKind,
};
use sfu::{LessonId, MediaKind, ParticipantId, PublicationId, SfuHandle, Source, TapEvent};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::domain::lesson::{Lesson, LessonKey, LessonState};
use crate::domain::timestamp::Timestamp;
use crate::live::Hub;
use crate::metrics::Metrics;
use crate::protocol::{ChatAudience, Role, ServerMessage};
use crate::store::{LibraryFiles, RecordingOutcome, Store, StoreError};

/// The thumbnail's file name in a recording's directory.
pub const THUMBNAIL_FILE: &str = "thumbnail.jpg";

/// Packets and events one recorder thread may have queued (a few seconds of a lesson).
const RECORDER_QUEUE: usize = 8192;
/// Tap events the SFU may have queued for one recording before it drops and counts.
const TAP_QUEUE: usize = 8192;
/// Timeline messages from the hub waiting for a recording's task.
const CONTROL_QUEUE: usize = 1024;
/// Notices (keyframe requests, failure) from a recorder thread.
const NOTICE_QUEUE: usize = 256;
/// How long taking a thumbnail may take before it is given up.
const THUMBNAIL_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a recording could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("lesson {0} is already being recorded")]
    AlreadyRecording(LessonKey),
    #[error("lesson {0} is not being recorded")]
    NotRecording(LessonKey),
    #[error("lesson {0} has ended")]
    LessonEnded(LessonKey),
    #[error("the recorder could not start: {0}")]
    Recorder(#[from] recorder::RecorderError),
    #[error("the media server refused the recording: {0}")]
    Sfu(#[from] sfu::SfuError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("the recording did not stop in time")]
    Timeout,
}

/// Every recording in progress, and where the library lives.
pub struct Recordings {
    library: PathBuf,
    storage: Arc<dyn Storage>,
    /// The most bytes the library may hold (`Config::library_quota_bytes`).
    quota: Option<u64>,
    store: Store,
    sfu: SfuHandle,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    sfu_timeout: Duration,
    /// By lesson. A std mutex: held for a lookup or an insert, never across an `.await`, and
    /// taken inside the hub's lock by the observer (so this module never calls the hub while
    /// holding it).
    active: Mutex<HashMap<LessonKey, Active>>,
    tasks: TaskTracker,
}

struct Active {
    id: RecordingId,
    control: mpsc::Sender<Control>,
}

enum Control {
    /// A message the hub delivered in the lesson, at the time it did.
    Delivered(Instant, Box<ServerMessage>),
    /// Stop and tell `done` once the files are sealed and the library updated.
    Stop(oneshot::Sender<()>),
}

impl Recordings {
    /// Recordings into `library` through `storage`, or, with a `quota`, through a
    /// `QuotaStorage` on the local disk holding what the quota leaves; also makes the hub show
    /// it every delivered message, for the timeline.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        library: PathBuf,
        storage: Arc<dyn Storage>,
        quota: Option<u64>,
        store: Store,
        sfu: SfuHandle,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        sfu_timeout: Duration,
    ) -> Arc<Recordings> {
        let recordings = Arc::new(Recordings {
            library,
            storage,
            quota,
            store,
            sfu,
            hub: hub.clone(),
            metrics,
            sfu_timeout,
            active: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
        });
        // Weak: the hub lives in the recordings, which must not be kept alive by it.
        let weak: Weak<Recordings> = Arc::downgrade(&recordings);
        hub.set_observer(Box::new(move |lesson, message| {
            if let Some(recordings) = weak.upgrade() {
                recordings.observe(lesson, message);
            }
        }));
        recordings
    }

    /// The library's directory.
    pub fn library(&self) -> &Path {
        &self.library
    }

    fn active(&self) -> MutexGuard<'_, HashMap<LessonKey, Active>> {
        // Every update is one insert or remove; a panic elsewhere leaves the map sound.
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `lesson` is being recorded now.
    pub fn is_recording(&self, lesson: LessonKey) -> bool {
        self.active().contains_key(&lesson)
    }

    /// The lesson just went live (its teacher arrived): records it if its policy says so.
    /// A recording that cannot start is logged and the moderators are told; the lesson goes
    /// on.
    pub async fn lesson_went_live(self: &Arc<Self>, lesson: &Lesson) {
        match self.store.lesson_records_itself(lesson.id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(lesson = lesson.id, error = %e, "could not read the recording policy");
                return;
            }
        }
        if let Err(e) = self.start(lesson).await {
            tracing::error!(lesson = lesson.id, error = %e, "could not start recording");
            // A recorder error keeps its own code: a library already full says `disk_full`.
            let error = match &e {
                RecordingError::Recorder(e) => ErrorInfo::from(e),
                _ => ErrorInfo {
                    code: "recording_failed".into(),
                    message: e.to_string(),
                },
            };
            self.hub.set_recording(lesson.id, false, Some(error));
        }
    }

    /// Starts recording `lesson` now.
    pub async fn start(self: &Arc<Self>, lesson: &Lesson) -> Result<RecordingId, RecordingError> {
        if lesson.state == LessonState::Ended {
            return Err(RecordingError::LessonEnded(lesson.id));
        }
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let id = RecordingId::new(format!("lesson{}-{started}", lesson.id))?;
        let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
        {
            let mut active = self.active();
            if active.contains_key(&lesson.id) {
                return Err(RecordingError::AlreadyRecording(lesson.id));
            }
            active.insert(
                lesson.id,
                Active {
                    id: id.clone(),
                    control,
                },
            );
        }
        match self.launch(lesson, id.clone(), control_rx).await {
            Ok(()) => {
                self.metrics.recordings_active.inc();
                self.hub.set_recording(lesson.id, true, None);
                tracing::info!(lesson = lesson.id, recording = %id, "recording started");
                Ok(id)
            }
            Err(e) => {
                self.forget(lesson.id, &id);
                Err(e)
            }
        }
    }

    /// Creates the recording's files, taps the lesson and spawns its task.
    async fn launch(
        self: &Arc<Self>,
        lesson: &Lesson,
        id: RecordingId,
        control: mpsc::Receiver<Control>,
    ) -> Result<(), RecordingError> {
        let now_wall = Timestamp::now();
        self.store
            .insert_recording(id.as_str(), lesson.id, now_wall)
            .await?;
        let entry = self.store.library_entry(id.as_str()).await?;
        let meta = LessonMeta {
            lesson_id: lesson.id.to_string(),
            title: lesson.title.clone(),
            subject: lesson.subject.clone(),
            grade: lesson.grade.clone(),
            teacher: entry
                .as_ref()
                .map(|e| e.teacher.clone())
                .unwrap_or_default(),
            school: entry.map(|e| e.school).unwrap_or_default(),
            started_at: now_wall.to_string(),
        };
        let origin = Instant::now();
        let (storage, library, rec_id) = (self.storage.clone(), self.library.clone(), id.clone());
        let quota = self.quota;
        let created = tokio::task::spawn_blocking(move || {
            let storage = match quota {
                Some(quota) => {
                    let left = quota.saturating_sub(bytes_under(&library));
                    Arc::new(QuotaStorage::new(left)) as Arc<dyn Storage>
                }
                None => storage,
            };
            Recording::create_with(
                storage,
                &library,
                rec_id,
                meta,
                origin,
                RecorderConfig::default(),
            )
        })
        .await
        .map_err(|e| recorder::RecorderError::ThreadGone(e.to_string()));
        let recording = match created.and_then(|r| r) {
            Ok(recording) => recording,
            Err(e) => {
                // Listed as failed like one that stopped later, so counted alike.
                self.metrics.recordings_failed.inc();
                self.record_outcome(&id, lesson.id, now_wall, failed_outcome(&e))
                    .await;
                return Err(e.into());
            }
        };
        let (notice_tx, notices) = mpsc::channel(NOTICE_QUEUE);
        let dropped = self.metrics.recording_inputs_dropped.clone();
        let handle = RecorderHandle::spawn(recording, RECORDER_QUEUE, move |notice| {
            // Keyframe requests may be lost when many queue up (the next one comes); a
            // failure is sent once per recording, into a queue that is drained all along.
            if notice_tx.try_send(notice).is_err() {
                dropped.inc();
            }
        })?;

        // A tap is named like a participant, by an id the media plane hands out.
        let tap = self.sfu.new_participant_id();
        let (tap_tx, tap_rx) = mpsc::channel(TAP_QUEUE);
        let sfu_lesson = LessonId(u64::try_from(lesson.id).unwrap_or(0));
        let tapped = tokio::time::timeout(self.sfu_timeout, self.sfu.tap(sfu_lesson, tap, tap_tx))
            .await
            .unwrap_or(Err(sfu::SfuError::Overloaded));
        if let Err(e) = tapped {
            let summary = finish_blocking(handle).await;
            let outcome = summary.map_or_else(|e| failed_outcome(&e), |m| outcome_of(&m));
            self.record_outcome(&id, lesson.id, now_wall, outcome).await;
            return Err(e.into());
        }

        let names = self
            .hub
            .participants(lesson.id)
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        let task = Task {
            recordings: self.clone(),
            lesson: lesson.id,
            id,
            started_at: now_wall,
            tap,
            handle: Some(handle),
            tracks: HashMap::new(),
            names,
        };
        self.tasks.spawn(task.run(tap_rx, notices, control));
        Ok(())
    }

    fn forget(&self, lesson: LessonKey, id: &RecordingId) {
        let mut active = self.active();
        if active.get(&lesson).is_some_and(|a| &a.id == id) {
            active.remove(&lesson);
        }
    }

    /// Stops recording `lesson` and waits (up to `wait`) until its files are sealed.
    pub async fn stop(&self, lesson: LessonKey, wait: Duration) -> Result<(), RecordingError> {
        let control = self
            .active()
            .get(&lesson)
            .map(|a| a.control.clone())
            .ok_or(RecordingError::NotRecording(lesson))?;
        let (done, finished) = oneshot::channel();
        let stopped = async {
            // The task may already be stopping on its own; then `finished` resolves when the
            // task drops the sender it never got, or it never was sent: both end the wait.
            if control.send(Control::Stop(done)).await.is_err() {
                return;
            }
            let _ = finished.await;
        };
        tokio::time::timeout(wait, stopped)
            .await
            .map_err(|_| RecordingError::Timeout)
    }

    /// Stops every recording (at shutdown), waiting at most `wait` for them all.
    pub async fn stop_all(&self, wait: Duration) {
        let lessons: Vec<LessonKey> = self.active().keys().copied().collect();
        let stops = lessons.into_iter().map(|lesson| self.stop(lesson, wait));
        for result in futures_util::future::join_all(stops).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "a recording did not stop cleanly at shutdown");
            }
        }
        self.tasks.close();
        let _ = tokio::time::timeout(wait, self.tasks.wait()).await;
    }

    /// Seals what a killed process left in the library, lists each as `interrupted`, and
    /// marks any other unfinished row so. Call once at start-up, before serving.
    pub async fn recover(self: &Arc<Self>) -> Result<(), StoreError> {
        let library = self.library.clone();
        let storage = self.storage.clone();
        let found =
            tokio::task::spawn_blocking(move || recorder::recover_with(storage.as_ref(), &library))
                .await
                .unwrap_or_default();
        for recovered in found {
            let meta = match recovered.result {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::error!(recording = %recovered.dir_name, error = %e, "recording could not be recovered");
                    continue;
                }
            };
            let lesson = meta.lesson.lesson_id.parse::<LessonKey>().ok();
            let started = Timestamp::parse_rfc3339(&meta.lesson.started_at)
                .unwrap_or_else(|_| Timestamp::now());
            let outcome = outcome_of(&meta);
            self.store
                .finish_recording(meta.id.as_str(), lesson, started, &outcome)
                .await?;
            tracing::warn!(recording = %meta.id, state = ?meta.state, duration_ms = meta.duration_ms, "recovered an unfinished recording");
            if outcome.files.main.is_some() {
                let this = self.clone();
                self.tasks
                    .spawn(async move { this.thumbnail(&meta.id).await });
            }
        }
        let lost = self.store.interrupt_unfinished_recordings().await?;
        if lost > 0 {
            tracing::warn!(
                count = lost,
                "recordings left unfinished with nothing to recover"
            );
        }
        Ok(())
    }

    async fn record_outcome(
        &self,
        id: &RecordingId,
        lesson: LessonKey,
        started_at: Timestamp,
        outcome: RecordingOutcome,
    ) {
        if let Err(e) = self
            .store
            .finish_recording(id.as_str(), Some(lesson), started_at, &outcome)
            .await
        {
            tracing::error!(recording = %id, error = %e, "could not store how a recording ended");
        }
    }

    /// Takes a still from `main.webm` with `ffmpeg`, when it is installed; the library page
    /// shows a placeholder otherwise.
    async fn thumbnail(&self, id: &RecordingId) {
        let dir = self.library.join(id.as_str());
        let input = dir.join("main.webm");
        let output = dir.join(THUMBNAIL_FILE);
        // One second in, past the first frames; a shorter recording gets its first frame.
        for seek in ["1", "0"] {
            let run = tokio::process::Command::new("ffmpeg")
                .args(["-nostdin", "-loglevel", "error", "-y", "-ss", seek, "-i"])
                .arg(&input)
                .args(["-frames:v", "1", "-vf", "scale=320:-2"])
                .arg(&output)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .status();
            match tokio::time::timeout(THUMBNAIL_TIMEOUT, run).await {
                Ok(Ok(status)) if status.success() && output.exists() => {
                    if let Err(e) = self
                        .store
                        .set_recording_thumbnail(id.as_str(), THUMBNAIL_FILE)
                        .await
                    {
                        tracing::warn!(recording = %id, error = %e, "could not store a thumbnail");
                    }
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::debug!("no ffmpeg on PATH: recordings get no thumbnail");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(recording = %id, error = %e, "could not run ffmpeg");
                    return;
                }
                Err(_) => {
                    tracing::warn!(recording = %id, "ffmpeg took too long for a thumbnail");
                    return;
                }
            }
        }
        tracing::debug!(recording = %id, "ffmpeg found no frame for a thumbnail");
    }

    /// The hub delivered `message` in `lesson`: the ones the timeline keeps go to the
    /// lesson's recording, if any. Runs under the hub's lock: a lookup and a `try_send`.
    fn observe(&self, lesson: LessonKey, message: &ServerMessage) {
        let wanted = match message {
            ServerMessage::Chat { message } => message.to == ChatAudience::Everyone,
            ServerMessage::HandRaised { .. }
            | ServerMessage::HandLowered { .. }
            | ServerMessage::StageChanged { .. }
            | ServerMessage::ParticipantJoined { .. }
            | ServerMessage::ParticipantResumed { .. } => true,
            _ => false,
        };
        if !wanted {
            return;
        }
        let active = self.active();
        let Some(recording) = active.get(&lesson) else {
            return;
        };
        let item = Control::Delivered(Instant::now(), Box::new(message.clone()));
        if recording.control.try_send(item).is_err() {
            self.metrics.recording_inputs_dropped.inc();
        }
    }
}

/// One recording in progress: its tap, its recorder thread, what each publication is.
struct Task {
    recordings: Arc<Recordings>,
    lesson: LessonKey,
    id: RecordingId,
    started_at: Timestamp,
    tap: ParticipantId,
    handle: Option<RecorderHandle>,
    /// What each tapped publication is recorded as; publications not recorded are absent.
    tracks: HashMap<PublicationId, Tapped>,
    /// Display names by participant id, for the timeline.
    names: HashMap<u64, String>,
}

#[derive(Clone)]
struct Tapped {
    kind: Option<TrackKind>,
    /// Who shares, when it is a screen share (for the timeline).
    sharer: Option<String>,
}

/// Why a recording's task ended.
enum Ending {
    Asked(oneshot::Sender<()>),
    Failed(ErrorInfo),
    /// The media plane closed the tap (it is shutting down) or every sender went away.
    Closed,
}

impl Task {
    async fn run(
        mut self,
        mut tap: mpsc::Receiver<TapEvent>,
        mut notices: mpsc::Receiver<RecorderNotice>,
        mut control: mpsc::Receiver<Control>,
    ) {
        let ending = loop {
            tokio::select! {
                event = tap.recv() => match event {
                    Some(event) => self.on_tap(event),
                    None => break Ending::Closed,
                },
                notice = notices.recv() => match notice {
                    Some(RecorderNotice::KeyframeRequest { track, .. }) => self.request_keyframe(track),
                    Some(RecorderNotice::Failed { error, .. }) => break Ending::Failed(error),
                    Some(RecorderNotice::Finished(_)) => {}
                    None => break Ending::Closed,
                },
                item = control.recv() => match item {
                    Some(Control::Delivered(at, message)) => self.on_message(at, *message),
                    Some(Control::Stop(done)) => break Ending::Asked(done),
                    None => break Ending::Closed,
                },
            }
        };
        self.finish(ending).await;
    }

    fn push_event(&self, at: Instant, event: TimelineEvent) {
        if let Some(handle) = &self.handle
            && !handle.push_event(at, event)
        {
            self.recordings.metrics.recording_inputs_dropped.inc();
        }
    }

    fn name(&self, participant: u64) -> String {
        self.names
            .get(&participant)
            .cloned()
            .unwrap_or_else(|| participant.to_string())
    }

    fn on_tap(&mut self, event: TapEvent) {
        match event {
            TapEvent::PublicationAdded {
                publication,
                owner,
                source,
                kind,
            } => {
                // The owner is named by its media connection; the hub knows whose it is. It
                // joined the hub before it could publish, so it is there unless it just left.
                let member = self
                    .recordings
                    .hub
                    .member_by_connection(self.lesson, owner.0);
                let teacher = member.as_ref().is_some_and(|m| m.role == Role::Teacher);
                let track = match (kind, source) {
                    (MediaKind::Audio, _) => Some(TrackKind::Voice),
                    (MediaKind::Video, Source::Camera) if teacher => Some(TrackKind::Camera),
                    (MediaKind::Video, Source::Screen) if teacher => Some(TrackKind::Screen),
                    _ => None,
                };
                let sharer = (source == Source::Screen).then(|| {
                    member
                        .as_ref()
                        .map_or_else(|| owner.0.to_string(), |m| m.name.clone())
                });
                if let Some(name) = &sharer {
                    self.push_event(
                        Instant::now(),
                        TimelineEvent::ScreenShareStarted {
                            participant: name.clone(),
                        },
                    );
                }
                self.tracks.insert(
                    publication,
                    Tapped {
                        kind: track,
                        sharer,
                    },
                );
            }
            TapEvent::Packet {
                publication,
                at,
                packet,
            } => {
                let Some(kind) = self.tracks.get(&publication).and_then(|t| t.kind) else {
                    return;
                };
                if let Some(handle) = &self.handle
                    && !handle.push_rtp(at, TrackId(publication.0), kind, packet)
                {
                    self.recordings.metrics.recording_inputs_dropped.inc();
                }
            }
            TapEvent::PublicationRemoved { publication } => {
                let Some(tapped) = self.tracks.remove(&publication) else {
                    return;
                };
                let now = Instant::now();
                if tapped.kind.is_some()
                    && let Some(handle) = &self.handle
                    && !handle.remove_track(now, TrackId(publication.0))
                {
                    self.recordings.metrics.recording_inputs_dropped.inc();
                }
                if let Some(participant) = tapped.sharer {
                    self.push_event(now, TimelineEvent::ScreenShareStopped { participant });
                }
            }
        }
    }

    /// A message the hub delivered; hands and the stage are written with display names (the
    /// replay shows them to people; participant ids mean nothing after the lesson).
    fn on_message(&mut self, at: Instant, message: ServerMessage) {
        let event = match message {
            ServerMessage::ParticipantJoined { participant }
            | ServerMessage::ParticipantResumed { participant } => {
                self.names.insert(participant.id, participant.name);
                return;
            }
            ServerMessage::Chat { message } => TimelineEvent::Chat {
                participant: message.from.id.to_string(),
                name: message.from.name,
                text: message.text,
            },
            ServerMessage::HandRaised { participant_id, .. } => TimelineEvent::HandRaised {
                participant: self.name(participant_id),
            },
            ServerMessage::HandLowered { participant_id } => TimelineEvent::HandLowered {
                participant: self.name(participant_id),
            },
            ServerMessage::StageChanged { stage } => TimelineEvent::StageChanged {
                on_stage: stage.iter().map(|p| self.name(*p)).collect(),
            },
            _ => return,
        };
        self.push_event(at, event);
    }

    fn request_keyframe(&self, track: TrackId) {
        let sfu = self.recordings.sfu.clone();
        let (tap, timeout) = (self.tap, self.recordings.sfu_timeout);
        // Not awaited here: the task keeps draining the tap meanwhile.
        tokio::spawn(async move {
            let asked = sfu.request_keyframe(tap, PublicationId(track.0));
            match tokio::time::timeout(timeout, asked).await {
                Ok(Ok(())) | Err(_) => {}
                // The publication ended meanwhile.
                Ok(Err(e)) => tracing::debug!(error = %e, "recorder keyframe request"),
            }
        });
    }

    async fn finish(mut self, ending: Ending) {
        let recordings = self.recordings.clone();
        let _ = tokio::time::timeout(recordings.sfu_timeout, recordings.sfu.leave(self.tap)).await;
        let summary = match self.handle.take() {
            Some(handle) => finish_blocking(handle).await,
            None => Err(recorder::RecorderError::ThreadGone(self.id.to_string())),
        };
        let mut outcome = match &summary {
            Ok(meta) => outcome_of(meta),
            Err(e) => failed_outcome(e),
        };
        let error = match &ending {
            Ending::Failed(error) => {
                outcome.state = RecordingState::Failed;
                outcome.error.get_or_insert_with(|| error.clone());
                Some(error.clone())
            }
            _ => outcome.error.clone(),
        };
        recordings
            .record_outcome(&self.id, self.lesson, self.started_at, outcome.clone())
            .await;
        if let Some(error) = &error {
            recordings.metrics.recordings_failed.inc();
            tracing::error!(
                lesson = self.lesson,
                recording = %self.id,
                code = %error.code,
                "recording stopped: {}; what was recorded is kept",
                error.message
            );
        } else {
            tracing::info!(lesson = self.lesson, recording = %self.id, duration_ms = outcome.duration_ms, "recording finished");
        }
        recordings.hub.set_recording(self.lesson, false, error);
        recordings.forget(self.lesson, &self.id);
        recordings.metrics.recordings_active.dec();
        if outcome.files.main.is_some() {
            recordings.thumbnail(&self.id).await;
        }
        if let Ending::Asked(done) = ending {
            let _ = done.send(());
        }
    }
}

/// Bytes in the files under `dir`, at any depth; what cannot be read counts as nothing (a
/// directory removed meanwhile). Symbolic links are not followed.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&entry.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// Finishes a recorder thread's recording without blocking the runtime.
async fn finish_blocking(handle: RecorderHandle) -> Result<RecordingMeta, recorder::RecorderError> {
    let id = handle.id().to_string();
    tokio::task::spawn_blocking(move || handle.finish(Instant::now()))
        .await
        .unwrap_or(Err(recorder::RecorderError::ThreadGone(id)))
}

fn outcome_of(meta: &RecordingMeta) -> RecordingOutcome {
    RecordingOutcome {
        state: meta.state,
        duration_ms: meta.duration_ms,
        seekable: meta.seekable,
        error: meta.error.clone(),
        files: LibraryFiles {
            main: meta.files.main.clone(),
            screen: meta.files.screen.clone(),
            timeline: meta.files.timeline.clone(),
            thumbnail: None,
        },
    }
}

fn failed_outcome(e: &recorder::RecorderError) -> RecordingOutcome {
    RecordingOutcome {
        state: RecordingState::Failed,
        duration_ms: 0,
        seekable: false,
        error: Some(ErrorInfo::from(e)),
        files: LibraryFiles::default(),
    }
}
