//! One lesson's recording: RTP and events in, files out. No clock and no thread of its own —
//! every input carries its `Instant` — so it is tested with virtual time; [`RecorderHandle`]
//! runs it on a thread of its own.
//!
//! [`RecorderHandle`]: crate::RecorderHandle

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::rtp::Packet;

use crate::clock::TrackClock;
use crate::error::RecorderError;
use crate::jitter::{ReorderBuffer, ReorderStats};
use crate::meta::{
    ErrorInfo, LessonMeta, META_FILE, RecordingFiles, RecordingId, RecordingMeta, RecordingState,
    RecordingSummary, TrackId, TrackKind,
};
use crate::mixer::{Mixer, Stamped};
use crate::stats::RecordingStats;
use crate::storage::{FileStorage, Storage, write_atomic};
use crate::timeline::{TIMELINE_FILE, TimelineEntry, TimelineEvent, TimelineWriter};
use crate::vp8::{VideoStats, Vp8Assembler, keyframe_dimensions};
use crate::webm::{AUDIO_TRACK, Block, Sealed, TrackSpec, VIDEO_TRACK, WebmPart};

pub(crate) const MAIN_FILE: &str = "main.webm";
pub(crate) const SCREEN_FILE: &str = "screen.webm";
pub(crate) const RESERVE_FILE: &str = ".reserve";
/// Video size declared when the camera has not shown a keyframe before the first cluster;
/// decoders take the real size from the bitstream.
const DEFAULT_VIDEO_SIZE: (u16, u16) = (1280, 720);
const MAX_OUTPUTS: usize = 64;

/// Tunables of a recording. The defaults suit WebRTC lessons.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Bit rate of the mixed Opus audio.
    pub audio_bitrate: i32,
    /// Opus encoder complexity (0-10): CPU per recording against quality.
    pub opus_complexity: i32,
    /// How long a gap in sequence numbers holds later packets (retransmissions arrive about
    /// one round trip late).
    pub reorder_wait: Duration,
    /// How many packets a track may hold while waiting.
    pub reorder_packets: usize,
    /// How far behind real time the audio is mixed; longer than `reorder_wait`.
    pub mix_latency: Duration,
    /// Ask the SFU for a camera/screen keyframe this often so the replay can seek; `None` to
    /// rely on the publisher.
    pub keyframe_interval: Option<Duration>,
    /// Tracks (voices, cameras, screens) one recording follows at once; more are ignored.
    pub max_tracks: usize,
    /// A voice that sent nothing for this long is forgotten (its decoder freed).
    pub idle_voice: Duration,
    /// Bytes set aside at start and released when the recording stops, so that sealing
    /// (cues, meta.json) succeeds even on a full disk.
    pub reserve_bytes: u64,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            audio_bitrate: 48_000,
            opus_complexity: 5,
            reorder_wait: Duration::from_millis(300),
            reorder_packets: 512,
            mix_latency: Duration::from_millis(400),
            keyframe_interval: Some(Duration::from_secs(5)),
            max_tracks: 32,
            idle_voice: Duration::from_secs(10),
            reserve_bytes: 256 * 1024,
        }
    }
}

/// Something the recording asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingOutput {
    /// Ask this track's publisher for a keyframe (the SFU throttles PLIs anyway).
    KeyframeRequest(TrackId),
}

#[derive(Debug)]
struct VideoTrack {
    kind: TrackKind,
    clock: TrackClock,
    reorder: ReorderBuffer<Stamped>,
    assembler: Vp8Assembler,
    last_frame_at: Option<Instant>,
    last_keyframe_at: Option<Instant>,
    last_request_at: Option<Instant>,
}

/// A recording in progress. See the crate docs for the files it writes.
#[derive(Debug)]
pub struct Recording {
    id: RecordingId,
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    config: RecorderConfig,
    origin: Instant,
    lesson: LessonMeta,
    main: Option<WebmPart>,
    screen: Option<WebmPart>,
    timeline: Option<TimelineWriter>,
    mixer: Mixer,
    videos: HashMap<TrackId, VideoTrack>,
    active_camera: Option<TrackId>,
    active_screen: Option<TrackId>,
    camera_size: Option<(u16, u16)>,
    pending_audio: VecDeque<Block>,
    pending_video: VecDeque<Block>,
    outputs: VecDeque<RecordingOutput>,
    stats: RecordingStats,
    gone_video: (ReorderStats, VideoStats),
    last_timeline_sync: Instant,
    stopped: Option<RecordingSummary>,
}

fn media_us(origin: Instant, now: Instant) -> i64 {
    now.saturating_duration_since(origin).as_micros() as i64
}

impl Recording {
    /// Starts recording into `library/<id>/` on the local disk; `now` is media time zero.
    pub fn create(
        library: &Path,
        id: RecordingId,
        lesson: LessonMeta,
        now: Instant,
    ) -> Result<Self, RecorderError> {
        Self::create_with(
            Arc::new(FileStorage),
            library,
            id,
            lesson,
            now,
            RecorderConfig::default(),
        )
    }

    /// Starts recording through `storage`, with `config`.
    pub fn create_with(
        storage: Arc<dyn Storage>,
        library: &Path,
        id: RecordingId,
        lesson: LessonMeta,
        now: Instant,
        config: RecorderConfig,
    ) -> Result<Self, RecorderError> {
        let dir = library.join(id.as_str());
        if dir.exists() {
            return Err(RecorderError::AlreadyExists(id.to_string()));
        }
        storage
            .create_dir_all(&dir)
            .map_err(|e| RecorderError::io("create", &dir, e))?;
        let meta = RecordingMeta {
            id: id.clone(),
            lesson: lesson.clone(),
            state: RecordingState::Recording,
            duration_ms: 0,
            seekable: false,
            error: None,
            files: RecordingFiles::default(),
            stats: None,
        };
        let meta_path = dir.join(META_FILE);
        write_atomic(&*storage, &meta_path, &meta.to_json(&dir)?)
            .map_err(|e| RecorderError::io("write", &meta_path, e))?;
        let reserve = dir.join(RESERVE_FILE);
        let mut file = storage
            .create(&reserve)
            .map_err(|e| RecorderError::io("create", &reserve, e))?;
        file.append(&vec![0; config.reserve_bytes as usize])
            .and_then(|()| file.sync())
            .map_err(|e| RecorderError::io("write", &reserve, e))?;
        drop(file);
        let main = WebmPart::create(&*storage, part_path(&dir, MAIN_FILE))?;
        let mut timeline = TimelineWriter::create(&*storage, part_path(&dir, TIMELINE_FILE))?;
        timeline.append(&TimelineEntry {
            t_ms: 0,
            event: TimelineEvent::RecordingStarted,
        })?;
        timeline.sync()?;
        storage
            .sync_dir(&dir)
            .map_err(|e| RecorderError::io("sync", &dir, e))?;
        let mixer = Mixer::new(
            config.audio_bitrate,
            config.opus_complexity,
            config.reorder_packets,
            config.reorder_wait,
        )?;
        Ok(Self {
            id,
            dir,
            storage,
            config,
            origin: now,
            lesson,
            main: Some(main),
            screen: None,
            timeline: Some(timeline),
            mixer,
            videos: HashMap::new(),
            active_camera: None,
            active_screen: None,
            camera_size: None,
            pending_audio: VecDeque::new(),
            pending_video: VecDeque::new(),
            outputs: VecDeque::new(),
            stats: RecordingStats {
                events: 1,
                ..RecordingStats::default()
            },
            gone_video: Default::default(),
            last_timeline_sync: now,
            stopped: None,
        })
    }

    /// The recording's id.
    pub fn id(&self) -> &RecordingId {
        &self.id
    }

    /// The recording's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Media time (ms) at `now`.
    pub fn media_ms(&self, now: Instant) -> u64 {
        (media_us(self.origin, now) / 1000) as u64
    }

    fn check_running(&self) -> Result<(), RecorderError> {
        match &self.stopped {
            Some(meta) => Err(RecorderError::Stopped(
                meta.error
                    .as_ref()
                    .map_or_else(|| "finished".to_owned(), |e| e.message.clone()),
            )),
            None => Ok(()),
        }
    }

    /// Takes one RTP packet of `track` that arrived at `now`.
    ///
    /// An error means the recording stopped (a full disk): what was written is sealed and
    /// playable, `meta.json` says `failed`; later calls return [`RecorderError::Stopped`].
    pub fn push_rtp(
        &mut self,
        now: Instant,
        track: TrackId,
        kind: TrackKind,
        packet: Packet,
    ) -> Result<(), RecorderError> {
        self.check_running()?;
        self.stats.packets += 1;
        let arrival = media_us(self.origin, now);
        let tracks = self.mixer.voices() + self.videos.len();
        let known = self.videos.contains_key(&track);
        match kind {
            TrackKind::Voice => {
                if tracks >= self.config.max_tracks && !known {
                    self.stats.ignored_packets += 1;
                    return Ok(());
                }
                let result = self.mixer.push(now, track, arrival, packet);
                self.guard(now, result)?;
            }
            TrackKind::Camera | TrackKind::Screen => {
                if !known && tracks >= self.config.max_tracks {
                    self.stats.ignored_packets += 1;
                    return Ok(());
                }
                let video = self.videos.entry(track).or_insert_with(|| VideoTrack {
                    kind,
                    clock: TrackClock::new(90_000),
                    reorder: ReorderBuffer::new(
                        self.config.reorder_packets,
                        self.config.reorder_wait,
                    ),
                    assembler: Vp8Assembler::new(),
                    last_frame_at: None,
                    last_keyframe_at: None,
                    last_request_at: None,
                });
                let (media_us, ext_ts) = video.clock.map(packet.header.timestamp, arrival);
                let seq = packet.header.sequence_number;
                video.reorder.push(
                    now,
                    seq,
                    Stamped {
                        packet,
                        media_us,
                        ext_ts,
                    },
                );
                let result = self.drain_video(now, track, false);
                self.guard(now, result)?;
            }
        }
        let result = self.pump(now, false);
        self.guard(now, result)
    }

    /// Adds an event to the timeline at `now`'s media time.
    pub fn push_event(&mut self, now: Instant, event: TimelineEvent) -> Result<(), RecorderError> {
        self.check_running()?;
        let entry = TimelineEntry {
            t_ms: self.media_ms(now),
            event,
        };
        let result = match self.timeline.as_mut() {
            Some(t) => t.append(&entry),
            None => Ok(()),
        };
        self.stats.events += 1;
        self.guard(now, result)
    }

    /// Forgets a track whose publication ended.
    pub fn remove_track(&mut self, now: Instant, track: TrackId) -> Result<(), RecorderError> {
        self.check_running()?;
        self.mixer.remove(now, track);
        let result = self.drain_video(now, track, true);
        self.guard(now, result)?;
        if let Some(v) = self.videos.remove(&track) {
            self.gone_video.0 = add_reorder(self.gone_video.0, v.reorder.stats());
            self.gone_video.1 = add_video(self.gone_video.1, v.assembler.stats());
            if self.active_camera == Some(track) {
                self.active_camera = None;
            }
            if self.active_screen == Some(track) {
                self.active_screen = None;
            }
        }
        Ok(())
    }

    /// Advances time: releases what waited long enough, mixes, writes.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RecorderError> {
        self.check_running()?;
        self.mixer.handle_timeout(now);
        let tracks: Vec<TrackId> = self.videos.keys().copied().collect();
        for track in tracks {
            let result = self.drain_video(now, track, false);
            self.guard(now, result)?;
        }
        let result = self.pump(now, false);
        self.guard(now, result)
    }

    /// When [`Recording::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped.is_some() {
            return None;
        }
        // The next mixed frame is due one frame after the last, `mix_latency` late.
        let next_mix = self.origin
            + Duration::from_micros(self.mixer.next_frame_end_us() as u64)
            + self.config.mix_latency;
        self.videos
            .values()
            .filter_map(|v| v.reorder.poll_timeout())
            .chain(self.mixer.poll_timeout())
            .chain([next_mix])
            .min()
    }

    /// The next request for the caller, if any.
    pub fn poll_output(&mut self) -> Option<RecordingOutput> {
        self.outputs.pop_front()
    }

    /// Counters so far.
    pub fn stats(&self) -> RecordingStats {
        let mut stats = self.stats.clone();
        let mix = self.mixer.stats();
        let (mut reorder, mut video) = self.gone_video;
        for v in self.videos.values() {
            reorder = add_reorder(reorder, v.reorder.stats());
            video = add_video(video, v.assembler.stats());
        }
        reorder = add_reorder(reorder, self.mixer.reorder_stats());
        stats.late_packets = reorder.late;
        stats.lost_packets = reorder.lost;
        stats.duplicate_packets = reorder.duplicate;
        stats.audio_frames = mix.frames;
        stats.concealed_ms = mix.concealed_samples / 48;
        stats.decode_errors = mix.decode_errors;
        stats.late_samples = mix.late_samples;
        stats.limited_frames = mix.limited_frames;
        stats.video_frames = video.frames;
        stats.incomplete_frames = video.incomplete;
        stats.skipped_frames = video.skipped_waiting_keyframe;
        for part in [&self.main, &self.screen].into_iter().flatten() {
            stats.clusters += part.clusters_written;
            stats.media_bytes += part.bytes_written;
        }
        stats
    }

    /// Finishes at `now`: everything still buffered is written, files are sealed (cues,
    /// duration) and renamed, `meta.json` says `complete`. After a failure, returns the
    /// failed recording's record.
    pub fn finish(mut self, now: Instant) -> Result<RecordingSummary, RecorderError> {
        if let Some(meta) = self.stopped.take() {
            return Ok(meta);
        }
        match self.finish_inner(now) {
            Ok(meta) => Ok(meta),
            Err(e) => {
                self.fail(now, &e);
                Err(e)
            }
        }
    }

    fn finish_inner(&mut self, now: Instant) -> Result<RecordingSummary, RecorderError> {
        self.mixer.handle_timeout(now);
        let tracks: Vec<TrackId> = self.videos.keys().copied().collect();
        for track in tracks {
            self.drain_video(now, track, true)?;
        }
        let voices: Vec<TrackId> = self.mixer.voice_ids();
        for voice in voices {
            self.mixer.remove(now, voice);
        }
        self.pump(now, true)?;
        let end_ms = self.media_ms(now);
        if let Some(t) = self.timeline.as_mut() {
            t.append(&TimelineEntry {
                t_ms: end_ms,
                event: TimelineEvent::RecordingStopped {
                    reason: "complete".into(),
                },
            })?;
            t.sync()?;
        }
        self.stats.events += 1;
        self.release_reserve();
        let stats = self.stats();
        let (files, sealed) = self.seal_all(Some(end_ms))?;
        let meta = RecordingMeta {
            id: self.id.clone(),
            lesson: self.lesson.clone(),
            state: RecordingState::Complete,
            duration_ms: sealed.map_or(end_ms, |s| s.duration_ms),
            seekable: sealed.is_some_and(|s| s.cues),
            error: None,
            files,
            stats: Some(stats),
        };
        self.write_meta(&meta)?;
        Ok(meta)
    }

    /// Seals and renames every file; `end_ms` is the lesson's end (`None` after a failure:
    /// the open cluster is dropped, what is on disk is kept).
    fn seal_all(
        &mut self,
        end_ms: Option<u64>,
    ) -> Result<(RecordingFiles, Option<Sealed>), RecorderError> {
        let storage = self.storage.clone();
        let mut files = RecordingFiles::default();
        let mut first_error = None;
        let mut main_sealed = None;
        for (part, name) in [
            (self.main.take(), MAIN_FILE),
            (self.screen.take(), SCREEN_FILE),
        ] {
            let Some(part) = part else { continue };
            let target = self.dir.join(name);
            let result = match end_ms {
                Some(end) => part.finish(&*storage, &target, end),
                None => part.abandon(&*storage, &target),
            };
            match result {
                Ok(Some(sealed)) => {
                    files_slot(&mut files, name).replace(name.to_owned());
                    if name == MAIN_FILE {
                        main_sealed = Some(sealed);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(mut timeline) = self.timeline.take() {
            timeline.trim();
            let part = timeline.path().to_owned();
            drop(timeline);
            let target = self.dir.join(TIMELINE_FILE);
            match storage.rename(&part, &target) {
                Ok(()) => files.timeline = Some(TIMELINE_FILE.to_owned()),
                Err(e) => {
                    first_error.get_or_insert(RecorderError::io("rename", &part, e));
                }
            }
        }
        let _ = storage.sync_dir(&self.dir);
        match first_error {
            Some(e) => Err(e),
            None => Ok((files, main_sealed)),
        }
    }

    fn release_reserve(&self) {
        let _ = self.storage.remove_file(&self.dir.join(RESERVE_FILE));
    }

    fn write_meta(&self, meta: &RecordingMeta) -> Result<(), RecorderError> {
        let path = self.dir.join(META_FILE);
        write_atomic(&*self.storage, &path, &meta.to_json(&self.dir)?)
            .map_err(|e| RecorderError::io("write", &path, e))
    }

    /// Turns an error into a stopped recording (once), passing the error on.
    fn guard(
        &mut self,
        now: Instant,
        result: Result<(), RecorderError>,
    ) -> Result<(), RecorderError> {
        if let Err(e) = &result {
            self.fail(now, e);
        }
        result
    }

    /// Stops after an error: frees the reserve, seals what is on disk, records `failed`.
    fn fail(&mut self, now: Instant, error: &RecorderError) {
        if self.stopped.is_some() {
            return;
        }
        tracing::error!(recording = %self.id, code = error.code(), "recording stopped: {error}");
        self.release_reserve();
        let t_ms = self.media_ms(now);
        if let Some(t) = self.timeline.as_mut() {
            t.trim();
            let _ = t.append(&TimelineEntry {
                t_ms,
                event: TimelineEvent::RecordingStopped {
                    reason: error.code().to_owned(),
                },
            });
            let _ = t.sync();
        }
        let stats = self.stats();
        let (files, sealed) = match self.seal_all(None) {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(recording = %self.id, "sealing after a failure: {e}");
                (RecordingFiles::default(), None)
            }
        };
        let meta = RecordingMeta {
            id: self.id.clone(),
            lesson: self.lesson.clone(),
            state: RecordingState::Failed,
            duration_ms: sealed.map_or(0, |s| s.duration_ms),
            seekable: sealed.is_some_and(|s| s.cues),
            error: Some(ErrorInfo::from(error)),
            files,
            stats: Some(stats),
        };
        if let Err(e) = self.write_meta(&meta) {
            tracing::error!(recording = %self.id, "meta.json after a failure: {e}");
        }
        self.stopped = Some(meta);
    }

    fn drain_video(
        &mut self,
        now: Instant,
        track: TrackId,
        all: bool,
    ) -> Result<(), RecorderError> {
        let Some(video) = self.videos.get_mut(&track) else {
            return Ok(());
        };
        let released = if all {
            video.reorder.drain()
        } else {
            std::iter::from_fn(|| video.reorder.pop(now)).collect()
        };
        let mut frames = Vec::new();
        for r in released {
            if let Some(frame) = video.assembler.push(&r.item.packet, r.lost_before) {
                frames.push((frame, r.item.media_us));
            }
        }
        let kind = video.kind;
        for (frame, media_us) in frames {
            self.deliver_frame(now, track, kind, frame, media_us)?;
        }
        Ok(())
    }

    /// Routes a complete frame to its file, if `track` is the active camera or screen.
    fn deliver_frame(
        &mut self,
        now: Instant,
        track: TrackId,
        kind: TrackKind,
        frame: crate::vp8::Vp8Frame,
        media_us: i64,
    ) -> Result<(), RecorderError> {
        let active_slot = if kind == TrackKind::Screen {
            self.active_screen
        } else {
            self.active_camera
        };
        // Another track takes over only with a keyframe, after the active one fell silent.
        let active_silent = active_slot
            .and_then(|a| self.videos.get(&a))
            .and_then(|v| v.last_frame_at)
            .is_none_or(|at| now.saturating_duration_since(at) > Duration::from_secs(2));
        let is_active = active_slot == Some(track) || (frame.keyframe && active_silent);
        if let Some(v) = self.videos.get_mut(&track) {
            v.last_frame_at = Some(now);
            if frame.keyframe {
                v.last_keyframe_at = Some(now);
            }
        }
        if !is_active {
            return Ok(());
        }
        let block = Block {
            track: VIDEO_TRACK,
            ts_ms: media_us / 1000,
            keyframe: frame.keyframe,
            data: frame.data,
        };
        if kind == TrackKind::Screen {
            self.active_screen = Some(track);
            if self.screen.is_none() {
                let Some((width, height)) = keyframe_dimensions(&block.data) else {
                    return Ok(());
                };
                let mut part = WebmPart::create(&*self.storage, part_path(&self.dir, SCREEN_FILE))?;
                part.set_tracks(vec![TrackSpec::Vp8 { width, height }]);
                self.screen = Some(part);
            }
            if let Some(screen) = self.screen.as_mut() {
                screen.write_block(block)?;
            }
        } else {
            self.active_camera = Some(track);
            if self.camera_size.is_none() {
                self.camera_size = keyframe_dimensions(&block.data);
            }
            self.pending_video.push_back(block);
        }
        Ok(())
    }

    /// Mixes what is due, interleaves audio and camera by timestamp into `main.webm`, syncs
    /// the timeline and asks for keyframes. `flush` writes everything (the end).
    fn pump(&mut self, now: Instant, flush: bool) -> Result<(), RecorderError> {
        let now_us = media_us(self.origin, now);
        let latency = self.config.mix_latency.as_micros() as i64;
        let mix_to = if flush { now_us } else { now_us - latency };
        for f in self.mixer.mix_until(mix_to)? {
            self.pending_audio.push_back(Block {
                track: AUDIO_TRACK,
                ts_ms: f.ts_ms,
                keyframe: true,
                data: f.data,
            });
        }
        // Video frames can trail their timestamps by up to the reorder wait; audio waits
        // that long again so both go out in timestamp order.
        let watermark_ms = if flush {
            i64::MAX
        } else {
            (now_us - latency - self.config.reorder_wait.as_micros() as i64) / 1000
        };
        let (width, height) = self.camera_size.unwrap_or(DEFAULT_VIDEO_SIZE);
        let pre_skip = self.mixer.pre_skip();
        if let Some(main) = self.main.as_mut() {
            if !main.header_written() {
                main.set_tracks(vec![
                    TrackSpec::Vp8 { width, height },
                    TrackSpec::Opus { pre_skip },
                ]);
            }
            loop {
                let a = self.pending_audio.front().map(|b| b.ts_ms);
                let v = self.pending_video.front().map(|b| b.ts_ms);
                let take_video = match (a, v) {
                    (Some(a), Some(v)) => v <= a,
                    (None, Some(v)) if v <= watermark_ms => true,
                    (Some(a), None) if a <= watermark_ms => false,
                    _ => break,
                };
                let queue = if take_video {
                    &mut self.pending_video
                } else {
                    &mut self.pending_audio
                };
                if let Some(block) = queue.pop_front() {
                    main.write_block(block)?;
                }
            }
            if flush {
                main.close_cluster()?;
            }
        }
        if let Some(screen) = self.screen.as_mut() {
            screen.flush_idle(now_us / 1000)?;
        }
        if now.saturating_duration_since(self.last_timeline_sync) >= Duration::from_secs(1) {
            if let Some(t) = self.timeline.as_mut() {
                t.sync()?;
            }
            self.last_timeline_sync = now;
        }
        self.mixer.reap_idle(
            now.checked_sub(self.config.idle_voice)
                .unwrap_or(self.origin),
        );
        self.request_keyframes(now);
        Ok(())
    }

    fn request_keyframes(&mut self, now: Instant) {
        let interval = self.config.keyframe_interval;
        let active = [self.active_camera, self.active_screen];
        for (&track, v) in self.videos.iter_mut() {
            let since = |at: Option<Instant>| at.map(|t| now.saturating_duration_since(t));
            let since_request = since(v.last_request_at);
            let want = if v.assembler.waiting_for_keyframe() {
                since_request.is_none_or(|d| d >= Duration::from_secs(1))
            } else if let (Some(interval), true) = (interval, active.contains(&Some(track))) {
                since(v.last_keyframe_at).is_some_and(|d| d >= interval)
                    && since_request.is_none_or(|d| d >= interval)
            } else {
                false
            };
            if want {
                v.last_request_at = Some(now);
                self.stats.keyframe_requests += 1;
                if self.outputs.len() >= MAX_OUTPUTS {
                    self.outputs.pop_front();
                }
                self.outputs
                    .push_back(RecordingOutput::KeyframeRequest(track));
            }
        }
    }
}

fn files_slot<'a>(files: &'a mut RecordingFiles, name: &str) -> &'a mut Option<String> {
    if name == SCREEN_FILE {
        &mut files.screen
    } else {
        &mut files.main
    }
}

pub(crate) fn part_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.part"))
}

fn add_reorder(a: ReorderStats, b: ReorderStats) -> ReorderStats {
    ReorderStats {
        released: a.released + b.released,
        lost: a.lost + b.lost,
        late: a.late + b.late,
        duplicate: a.duplicate + b.duplicate,
    }
}

fn add_video(a: VideoStats, b: VideoStats) -> VideoStats {
    VideoStats {
        frames: a.frames + b.frames,
        keyframes: a.keyframes + b.keyframes,
        incomplete: a.incomplete + b.incomplete,
        skipped_waiting_keyframe: a.skipped_waiting_keyframe + b.skipped_waiting_keyframe,
    }
}
