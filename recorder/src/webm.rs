//! Crash-safe WebM files, written with `webm-iterable` (all EBML encoding is the crate's).
//!
//! While recording, a file is `NAME.webm.part`: the EBML header, a Segment of unknown size,
//! a reserved `Void` where the SeekHead will go, `Info` with a `Void` where the Duration will
//! go, `Tracks`, then clusters. Each cluster is appended whole and synced, so the file is a
//! playable live-style WebM after every cluster; a crash can only tear the cluster being
//! written.
//!
//! Sealing is done in place, so it needs almost no free space (it must work on a full disk):
//! cut the file after the last complete cluster, append `Cues`, sync, then overwrite the
//! reserved `Void`s with the SeekHead and the Duration and patch the Segment's size (same
//! byte lengths), sync, and rename to `NAME.webm`. A crash during sealing leaves a `.part`
//! that sealing again repairs: the parser stops at the last complete cluster.
//!
//! Every video keyframe starts a new cluster, so each cue points at a cluster that begins with
//! a keyframe; a replay's seek lands on a decodable frame without scanning.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ebml_iterable::tools::{Vint, read_vint};
use webm_iterable::matroska_spec::{Master, MatroskaSpec, SimpleBlock};
use webm_iterable::{WebmIterator, WebmWriter, WriteOptions};

use crate::error::RecorderError;
use crate::storage::{Storage, StorageFile};

/// Video track number in both files.
pub(crate) const VIDEO_TRACK: u64 = 1;
/// Audio track number in `main.webm`.
pub(crate) const AUDIO_TRACK: u64 = 2;

/// A cluster is closed after this much media, so a crash loses at most about this much.
const CLUSTER_MS: i64 = 1000;
const CLUSTER_MAX_BYTES: usize = 4 << 20;
/// Room reserved for the SeekHead (three entries need at most 68 bytes).
const SEEK_HEAD_ROOM: usize = 90;
/// `Void` with 9 bytes of payload: 11 bytes, exactly a Duration element (2 + 1 + 8).
const DURATION_ROOM: usize = 9;
const TIMESTAMP_SCALE_NS: u64 = 1_000_000;
const ID_INFO: u32 = 0x1549_A966;
const ID_TRACKS: u32 = 0x1654_AE6B;
const ID_CUES: u32 = 0x1C53_BB6B;
const ID_CLUSTER: u32 = 0x1F43_B675;

/// A track of a WebM file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TrackSpec {
    Vp8 { width: u16, height: u16 },
    Opus { pre_skip: u16 },
}

impl TrackSpec {
    fn number(&self) -> u64 {
        match self {
            Self::Vp8 { .. } => VIDEO_TRACK,
            Self::Opus { .. } => AUDIO_TRACK,
        }
    }

    fn entry(&self) -> MatroskaSpec {
        let n = self.number();
        let mut children = vec![
            MatroskaSpec::TrackNumber(n),
            MatroskaSpec::TrackUID(n),
            MatroskaSpec::FlagLacing(0),
        ];
        match *self {
            Self::Vp8 { width, height } => children.extend([
                MatroskaSpec::TrackType(1),
                MatroskaSpec::CodecID("V_VP8".into()),
                MatroskaSpec::Video(Master::Full(vec![
                    MatroskaSpec::PixelWidth(u64::from(width)),
                    MatroskaSpec::PixelHeight(u64::from(height)),
                ])),
            ]),
            Self::Opus { pre_skip } => children.extend([
                MatroskaSpec::TrackType(2),
                MatroskaSpec::CodecID("A_OPUS".into()),
                MatroskaSpec::CodecPrivate(opus_head(pre_skip)),
                MatroskaSpec::CodecDelay(u64::from(pre_skip) * 1_000_000_000 / 48_000),
                // 80 ms of pre-roll lets the decoder converge after a seek (RFC 7845 §4.6).
                MatroskaSpec::SeekPreRoll(80_000_000),
                MatroskaSpec::Audio(Master::Full(vec![
                    MatroskaSpec::SamplingFrequency(48_000.0),
                    MatroskaSpec::Channels(1),
                ])),
            ]),
        }
        MatroskaSpec::TrackEntry(Master::Full(children))
    }
}

/// The Opus identification header (RFC 7845 §5.1) that WebM carries as CodecPrivate: one
/// channel, 48 kHz, mapping family 0.
fn opus_head(pre_skip: u16) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(1);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// One encoded frame on its way into a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block {
    pub track: u64,
    pub ts_ms: i64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// Where the patchable parts of a `.part` file are, in absolute file offsets.
#[derive(Debug, Clone)]
struct Layout {
    segment_size_pos: u64,
    segment_data_start: u64,
    reserved_pos: u64,
    reserved_len: u64,
    info_pos: u64,
    info_len: u64,
    /// Info's children other than the Duration placeholder.
    info_children: Vec<MatroskaSpec>,
    tracks_pos: u64,
    has_video: bool,
    has_audio: bool,
}

#[derive(Debug, Clone, Copy)]
struct ClusterEntry {
    /// Offset from the Segment's data start (what cues and the SeekHead store).
    rel_pos: u64,
    ts_ms: u64,
    starts_with_keyframe: bool,
    has_audio: bool,
}

/// What is known about a `.part` file's complete content, enough to seal it.
#[derive(Debug, Clone)]
struct PartIndex {
    layout: Layout,
    clusters: Vec<ClusterEntry>,
    /// End of the last complete cluster.
    valid_end: u64,
    /// End of the last block, in ms.
    end_ms: u64,
}

#[derive(Debug)]
struct OpenCluster {
    ts_ms: i64,
    blocks: Vec<MatroskaSpec>,
    bytes: usize,
    starts_with_keyframe: bool,
    has_audio: bool,
}

/// The result of sealing a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sealed {
    pub duration_ms: u64,
    pub cues: bool,
}

/// A WebM file being recorded.
#[derive(Debug)]
pub(crate) struct WebmPart {
    path: PathBuf,
    file: Box<dyn StorageFile>,
    tracks: Vec<TrackSpec>,
    layout: Option<Layout>,
    clusters: Vec<ClusterEntry>,
    cluster: Option<OpenCluster>,
    valid_end: u64,
    end_ms: u64,
    last_ts: [i64; 3],
    pub clusters_written: u64,
    pub bytes_written: u64,
}

impl WebmPart {
    /// Creates `path` (a `.part`); nothing is written until the first cluster, so that the
    /// header can carry what the first frames tell (the video size).
    pub fn create(storage: &dyn Storage, path: PathBuf) -> Result<Self, RecorderError> {
        let file = storage
            .create(&path)
            .map_err(|e| RecorderError::io("create", &path, e))?;
        Ok(Self {
            path,
            file,
            tracks: Vec::new(),
            layout: None,
            clusters: Vec::new(),
            cluster: None,
            valid_end: 0,
            end_ms: 0,
            last_ts: [i64::MIN; 3],
            clusters_written: 0,
            bytes_written: 0,
        })
    }

    /// Sets the tracks the header will declare; ignored once the header is written.
    pub fn set_tracks(&mut self, tracks: Vec<TrackSpec>) {
        if self.layout.is_none() {
            self.tracks = tracks;
        }
    }

    pub fn header_written(&self) -> bool {
        self.layout.is_some()
    }

    /// Adds a block, closing (appending and syncing) the open cluster when due.
    pub fn write_block(&mut self, mut block: Block) -> Result<(), RecorderError> {
        let slot = (block.track as usize).min(2);
        // Timestamps never go backwards within a track.
        block.ts_ms = block.ts_ms.max(self.last_ts[slot]).max(0);
        self.last_ts[slot] = block.ts_ms;
        let video_key = block.keyframe && block.track == VIDEO_TRACK;
        let close = self.cluster.as_ref().is_some_and(|c| {
            video_key
                || block.ts_ms - c.ts_ms >= CLUSTER_MS
                || block.ts_ms < c.ts_ms
                || c.bytes >= CLUSTER_MAX_BYTES
        });
        if close {
            self.close_cluster()?;
        }
        let cluster = self.cluster.get_or_insert_with(|| OpenCluster {
            ts_ms: block.ts_ms,
            blocks: Vec::new(),
            bytes: 0,
            starts_with_keyframe: video_key,
            has_audio: false,
        });
        cluster.has_audio |= block.track == AUDIO_TRACK;
        // Within a cluster of at most CLUSTER_MS this fits an i16.
        let rel = i16::try_from(block.ts_ms - cluster.ts_ms).unwrap_or(i16::MAX);
        cluster.bytes += block.data.len() + 16;
        let simple = SimpleBlock::new_uncheked(
            &block.data,
            block.track,
            rel,
            false,
            None,
            false,
            block.keyframe || block.track == AUDIO_TRACK,
        );
        cluster.blocks.push(simple.into());
        let end = block.ts_ms as u64 + if block.track == AUDIO_TRACK { 20 } else { 0 };
        self.end_ms = self.end_ms.max(end);
        Ok(())
    }

    /// Closes the open cluster if it is older than a cluster's span at `now_ms`, so a quiet
    /// track (a still screen) is on disk within about a second too.
    pub fn flush_idle(&mut self, now_ms: i64) -> Result<(), RecorderError> {
        if self
            .cluster
            .as_ref()
            .is_some_and(|c| now_ms - c.ts_ms >= CLUSTER_MS)
        {
            self.close_cluster()?;
        }
        Ok(())
    }

    fn write_header(&mut self) -> Result<(), RecorderError> {
        let mut bytes = encode_top(&ebml_header())?;
        let prefix = segment_prefix()?;
        let segment_size_pos = bytes.len() as u64 + 4;
        bytes.extend_from_slice(&prefix);
        let segment_data_start = bytes.len() as u64;
        let reserved = encode_in_segment(&[MatroskaSpec::Void(vec![0; SEEK_HEAD_ROOM])])?;
        let reserved_pos = bytes.len() as u64;
        bytes.extend_from_slice(&reserved);
        let info_children = vec![
            MatroskaSpec::TimestampScale(TIMESTAMP_SCALE_NS),
            MatroskaSpec::MuxingApp("classroom-recorder".into()),
            MatroskaSpec::WritingApp("classroom-recorder".into()),
        ];
        let mut with_room = info_children.clone();
        with_room.push(MatroskaSpec::Void(vec![0; DURATION_ROOM]));
        let info = encode_in_segment(&[MatroskaSpec::Info(Master::Full(with_room))])?;
        let info_pos = bytes.len() as u64;
        bytes.extend_from_slice(&info);
        let tracks_pos = bytes.len() as u64;
        let entries = self.tracks.iter().map(TrackSpec::entry).collect();
        bytes.extend_from_slice(&encode_in_segment(&[MatroskaSpec::Tracks(Master::Full(
            entries,
        ))])?);
        self.append(&bytes)?;
        self.layout = Some(Layout {
            segment_size_pos,
            segment_data_start,
            reserved_pos,
            reserved_len: reserved.len() as u64,
            info_pos,
            info_len: info.len() as u64,
            info_children,
            tracks_pos,
            has_video: self.tracks.iter().any(|t| t.number() == VIDEO_TRACK),
            has_audio: self.tracks.iter().any(|t| t.number() == AUDIO_TRACK),
        });
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), RecorderError> {
        self.file
            .append(bytes)
            .map_err(|e| RecorderError::io("write", &self.path, e))?;
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }

    /// Appends the open cluster and syncs the file.
    pub fn close_cluster(&mut self) -> Result<(), RecorderError> {
        let Some(open) = self.cluster.take() else {
            return Ok(());
        };
        if self.layout.is_none() {
            self.write_header()?;
            self.valid_end = self.file.len();
        }
        let mut children = Vec::with_capacity(open.blocks.len() + 1);
        children.push(MatroskaSpec::Timestamp(open.ts_ms.max(0) as u64));
        children.extend(open.blocks);
        let bytes = encode_in_segment(&[MatroskaSpec::Cluster(Master::Full(children))])?;
        let start = self.file.len();
        self.append(&bytes)?;
        self.file
            .sync()
            .map_err(|e| RecorderError::io("sync", &self.path, e))?;
        let data_start = self.layout.as_ref().map_or(0, |l| l.segment_data_start);
        self.clusters.push(ClusterEntry {
            rel_pos: start - data_start,
            ts_ms: open.ts_ms.max(0) as u64,
            starts_with_keyframe: open.starts_with_keyframe,
            has_audio: open.has_audio,
        });
        self.valid_end = self.file.len();
        self.clusters_written += 1;
        Ok(())
    }

    /// Closes the last cluster, then seals and renames the file to `final_path`.
    /// `duration_ms` extends the Duration past the last block (the lesson's end).
    /// Returns `None` if nothing was ever written (the `.part` is removed).
    pub fn finish(
        mut self,
        storage: &dyn Storage,
        final_path: &Path,
        duration_ms: u64,
    ) -> Result<Option<Sealed>, RecorderError> {
        self.close_cluster()?;
        self.seal_into(storage, final_path, duration_ms)
    }

    /// After a write error: drop the open cluster and seal what is on disk.
    pub fn abandon(
        mut self,
        storage: &dyn Storage,
        final_path: &Path,
    ) -> Result<Option<Sealed>, RecorderError> {
        self.cluster = None;
        self.seal_into(storage, final_path, 0)
    }

    fn seal_into(
        mut self,
        storage: &dyn Storage,
        final_path: &Path,
        duration_ms: u64,
    ) -> Result<Option<Sealed>, RecorderError> {
        let Some(layout) = self.layout.take() else {
            drop(self.file);
            let _ = storage.remove_file(&self.path);
            return Ok(None);
        };
        let index = PartIndex {
            layout,
            clusters: std::mem::take(&mut self.clusters),
            valid_end: self.valid_end,
            end_ms: self.end_ms.max(duration_ms),
        };
        let sealed = seal(&mut *self.file, &self.path, &index)?;
        drop(self.file);
        publish(storage, &self.path, final_path)?;
        Ok(Some(sealed))
    }
}

/// Renames a sealed `.part` into place and makes the rename durable.
fn publish(storage: &dyn Storage, part: &Path, final_path: &Path) -> Result<(), RecorderError> {
    storage
        .rename(part, final_path)
        .map_err(|e| RecorderError::io("rename", part, e))?;
    if let Some(dir) = final_path.parent() {
        storage
            .sync_dir(dir)
            .map_err(|e| RecorderError::io("sync", dir, e))?;
    }
    Ok(())
}

/// Seals a `.part` in place (see the module docs). Cues are best effort: on a full disk the
/// file is sealed without them and stays playable.
fn seal(
    file: &mut dyn StorageFile,
    path: &Path,
    index: &PartIndex,
) -> Result<Sealed, RecorderError> {
    let io = |op| move |e| RecorderError::io(op, path, e);
    let layout = &index.layout;
    file.truncate(index.valid_end).map_err(io("truncate"))?;
    let cues_rel = index.valid_end - layout.segment_data_start;
    let cue_bytes = cues(index)?;
    let cues = match cue_bytes {
        Some(bytes) => match file.append(&bytes) {
            Ok(()) => true,
            Err(_) => {
                file.truncate(index.valid_end).map_err(io("truncate"))?;
                false
            }
        },
        None => false,
    };
    file.sync().map_err(io("sync"))?;

    let rel = |pos: u64| pos - layout.segment_data_start;
    let mut seeks = vec![
        seek_entry(ID_INFO, rel(layout.info_pos)),
        seek_entry(ID_TRACKS, rel(layout.tracks_pos)),
    ];
    if cues {
        seeks.push(seek_entry(ID_CUES, cues_rel));
    }
    let mut seek_head = encode_in_segment(&[MatroskaSpec::SeekHead(Master::Full(seeks))])?;
    let room = layout.reserved_len as usize;
    if seek_head.len() + 2 <= room {
        seek_head.extend(encode_in_segment(&[MatroskaSpec::Void(vec![
            0;
            room - seek_head.len()
                - 2
        ])])?);
    }
    let mut info_children = layout.info_children.clone();
    info_children.push(MatroskaSpec::Duration(index.end_ms as f64));
    let info = encode_in_segment(&[MatroskaSpec::Info(Master::Full(info_children))])?;
    let segment_size = (file.len() - layout.segment_data_start)
        .as_vint_with_length::<8>()
        .map_err(|e| RecorderError::Webm(e.to_string()))?;
    // Patches only where the new bytes have exactly the reserved length.
    if seek_head.len() == room {
        file.overwrite(layout.reserved_pos, &seek_head)
            .map_err(io("write"))?;
    }
    if info.len() as u64 == layout.info_len {
        file.overwrite(layout.info_pos, &info)
            .map_err(io("write"))?;
    }
    file.overwrite(layout.segment_size_pos, &segment_size)
        .map_err(io("write"))?;
    file.sync().map_err(io("sync"))?;
    Ok(Sealed {
        duration_ms: index.end_ms,
        cues,
    })
}

fn seek_entry(id: u32, rel_pos: u64) -> MatroskaSpec {
    MatroskaSpec::Seek(Master::Full(vec![
        MatroskaSpec::SeekID(id.to_be_bytes().to_vec()),
        MatroskaSpec::SeekPosition(rel_pos),
    ]))
}

/// Cue points: every cluster that starts with a video keyframe; for a file without any,
/// every cluster holding audio (so an audio-only recording seeks too).
fn cues(index: &PartIndex) -> Result<Option<Vec<u8>>, RecorderError> {
    let layout = &index.layout;
    let video: Vec<_> = index
        .clusters
        .iter()
        .filter(|c| layout.has_video && c.starts_with_keyframe)
        .map(|c| (VIDEO_TRACK, c))
        .collect();
    let points: Vec<_> = if video.is_empty() {
        index
            .clusters
            .iter()
            .filter(|c| layout.has_audio && c.has_audio)
            .map(|c| (AUDIO_TRACK, c))
            .collect()
    } else {
        video
    };
    if points.is_empty() {
        return Ok(None);
    }
    let points = points
        .into_iter()
        .map(|(track, c)| {
            MatroskaSpec::CuePoint(Master::Full(vec![
                MatroskaSpec::CueTime(c.ts_ms),
                MatroskaSpec::CueTrackPositions(Master::Full(vec![
                    MatroskaSpec::CueTrack(track),
                    MatroskaSpec::CueClusterPosition(c.rel_pos),
                ])),
            ]))
        })
        .collect();
    Ok(Some(encode_in_segment(&[MatroskaSpec::Cues(
        Master::Full(points),
    )])?))
}

fn ebml_header() -> MatroskaSpec {
    MatroskaSpec::Ebml(Master::Full(vec![
        MatroskaSpec::EbmlVersion(1),
        MatroskaSpec::EbmlReadVersion(1),
        MatroskaSpec::EbmlMaxIdLength(4),
        MatroskaSpec::EbmlMaxSizeLength(8),
        MatroskaSpec::DocType("webm".into()),
        MatroskaSpec::DocTypeVersion(4),
        MatroskaSpec::DocTypeReadVersion(2),
    ]))
}

fn encode_top(tag: &MatroskaSpec) -> Result<Vec<u8>, RecorderError> {
    let mut writer = WebmWriter::new(Vec::new());
    writer.write(tag)?;
    Ok(writer.into_inner()?)
}

/// The Segment's id and an 8-byte "unknown" size, which sealing patches to the real size.
fn segment_prefix() -> Result<Vec<u8>, RecorderError> {
    let mut writer = WebmWriter::new(Vec::new());
    writer.write_advanced(
        &MatroskaSpec::Segment(Master::Start),
        WriteOptions::is_unknown_sized_element(),
    )?;
    Ok(writer.into_inner()?)
}

/// Encodes Segment children. The writer checks each element's place in the hierarchy, so
/// they are written inside an unknown-sized Segment whose prefix is then cut off.
fn encode_in_segment(tags: &[MatroskaSpec]) -> Result<Vec<u8>, RecorderError> {
    let mut writer = WebmWriter::new(Vec::new());
    writer.write_advanced(
        &MatroskaSpec::Segment(Master::Start),
        WriteOptions::is_unknown_sized_element(),
    )?;
    for tag in tags {
        writer.write(tag)?;
    }
    let bytes = writer.into_inner()?;
    let prefix = segment_prefix()?.len();
    Ok(bytes.get(prefix..).unwrap_or_default().to_vec())
}

/// Reads the header of the element at `pos`: (id, header length, data size).
fn element_header_at(file: &mut File, pos: u64) -> Option<(u64, u64, u64)> {
    let mut head = [0u8; 12];
    file.seek(SeekFrom::Start(pos)).ok()?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    let (_, id_len) = read_vint(&head[..filled]).ok()??;
    let id = head[..id_len]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let (size, size_len) = read_vint(head.get(id_len..filled)?).ok()??;
    Some((id, (id_len + size_len) as u64, size))
}

/// The iterator reports a buffered (`Full`) master at the offset of its data; finds the
/// element's start and total length from there. All our top-level ids are 4 bytes long.
fn full_master_at(file: &mut File, data_pos: u64, id: u32) -> Option<(u64, u64)> {
    (1..=8u64).find_map(|size_len| {
        let start = data_pos.checked_sub(4 + size_len)?;
        match element_header_at(file, start)? {
            (found, header, size) if found == u64::from(id) && header == 4 + size_len => {
                Some((start, header + size))
            }
            _ => None,
        }
    })
}

/// Parses an unfinished `.part` up to its last complete cluster.
fn index_part(path: &Path) -> Result<PartIndex, RecorderError> {
    let not = |reason: &str| RecorderError::NotRecoverable {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let file = File::open(path).map_err(|e| RecorderError::io("open", path, e))?;
    let mut sizes = File::open(path).map_err(|e| RecorderError::io("open", path, e))?;
    let mut tags = WebmIterator::new(
        BufReader::new(file),
        &[
            MatroskaSpec::Info(Master::Start),
            MatroskaSpec::Tracks(Master::Start),
            MatroskaSpec::Cluster(Master::Start),
        ],
    );
    // A corrupt size must not turn into a huge allocation.
    tags.set_max_allowable_tag_size(Some(64 << 20));
    tags.emit_master_end_when_eof(false);

    let mut segment_pos = None;
    let mut reserved = None;
    let mut info = None;
    let mut tracks = None;
    let mut clusters = Vec::new();
    let mut valid_end = 0;
    let mut end_ms = 0;
    while let Some(tag) = tags.next() {
        let Ok(tag) = tag else { break };
        let pos = tags.last_emitted_tag_offset() as u64;
        match tag {
            MatroskaSpec::Segment(Master::Start) => segment_pos = Some(pos),
            MatroskaSpec::Void(_) | MatroskaSpec::SeekHead(_) if info.is_none() => {
                reserved.get_or_insert(pos);
            }
            MatroskaSpec::Info(Master::Full(children)) => {
                let (start, len) =
                    full_master_at(&mut sizes, pos, ID_INFO).ok_or_else(|| not("info"))?;
                info = Some((start, len, children));
            }
            MatroskaSpec::Tracks(Master::Full(entries)) => {
                let (start, len) =
                    full_master_at(&mut sizes, pos, ID_TRACKS).ok_or_else(|| not("tracks"))?;
                tracks = Some((start, entries));
                valid_end = start + len;
            }
            MatroskaSpec::Cluster(Master::Full(children)) => {
                let Some((start, len)) = full_master_at(&mut sizes, pos, ID_CLUSTER) else {
                    break;
                };
                let Some(seg) = segment_pos else { break };
                let (entry, last_ms) = cluster_entry(start - (seg + 12), &children);
                clusters.push(entry);
                end_ms = end_ms.max(last_ms);
                valid_end = start + len;
            }
            MatroskaSpec::SeekHead(_) | MatroskaSpec::Void(_) | MatroskaSpec::Ebml(_) => {}
            // Cues of an interrupted sealing, or anything else: the media ends here.
            _ if !clusters.is_empty() => break,
            _ => {}
        }
    }
    let segment_pos = segment_pos.ok_or_else(|| not("no segment"))?;
    let (info_pos, info_len, info_children) = info.ok_or_else(|| not("no Info element"))?;
    let (tracks_pos, entries) = tracks.ok_or_else(|| not("no Tracks element"))?;
    let segment_data_start = segment_pos + 12;
    let reserved_pos = reserved.ok_or_else(|| not("no room for a SeekHead"))?;
    let track_numbers: Vec<u64> = entries
        .iter()
        .filter_map(|e| match e {
            MatroskaSpec::TrackEntry(Master::Full(c)) => c.iter().find_map(|t| match t {
                MatroskaSpec::TrackNumber(n) => Some(*n),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    Ok(PartIndex {
        layout: Layout {
            segment_size_pos: segment_pos + 4,
            segment_data_start,
            reserved_pos,
            reserved_len: info_pos - reserved_pos,
            info_pos,
            info_len,
            info_children: info_children
                .into_iter()
                .filter(|t| !matches!(t, MatroskaSpec::Void(_) | MatroskaSpec::Duration(_)))
                .collect(),
            tracks_pos,
            has_video: track_numbers.contains(&VIDEO_TRACK),
            has_audio: track_numbers.contains(&AUDIO_TRACK),
        },
        clusters,
        valid_end,
        end_ms,
    })
}

fn cluster_entry(rel_pos: u64, children: &[MatroskaSpec]) -> (ClusterEntry, u64) {
    let ts_ms = children
        .iter()
        .find_map(|c| match c {
            MatroskaSpec::Timestamp(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(0);
    let mut entry = ClusterEntry {
        rel_pos,
        ts_ms,
        starts_with_keyframe: false,
        has_audio: false,
    };
    let mut last_ms = ts_ms;
    let mut first_video = true;
    for child in children {
        let Ok(block) = SimpleBlock::try_from(child) else {
            continue;
        };
        let at = (ts_ms as i64 + i64::from(block.timestamp)).max(0) as u64;
        if block.track == AUDIO_TRACK {
            entry.has_audio = true;
            let samples =
                opus::packet::get_nb_samples(block.raw_frame_data(), 48_000).unwrap_or(960) as u64;
            last_ms = last_ms.max(at + samples / 48);
        } else if block.track == VIDEO_TRACK {
            if first_video {
                entry.starts_with_keyframe = block.keyframe;
                first_video = false;
            }
            last_ms = last_ms.max(at);
        }
    }
    (entry, last_ms)
}

/// Recovers an unfinished `.part`: seals what it holds and renames it to `final_path`.
pub(crate) fn recover_part(
    storage: &dyn Storage,
    part: &Path,
    final_path: &Path,
) -> Result<Sealed, RecorderError> {
    let index = index_part(part)?;
    if index.clusters.is_empty() {
        return Err(RecorderError::NotRecoverable {
            path: part.to_owned(),
            reason: "no complete cluster".into(),
        });
    }
    let mut file = storage
        .open_existing(part)
        .map_err(|e| RecorderError::io("open", part, e))?;
    let sealed = seal(&mut *file, part, &index)?;
    drop(file);
    publish(storage, part, final_path)?;
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FileStorage;

    fn audio(ts_ms: i64) -> Block {
        // A 20 ms Opus CELT silence frame (TOC 0xf8: config 31, mono, one frame).
        Block {
            track: AUDIO_TRACK,
            ts_ms,
            keyframe: true,
            data: vec![0xf8, 0xff, 0xfe],
        }
    }

    #[test]
    fn sealing_an_interrupted_part_matches_a_normal_finish() {
        let dir = tempfile::tempdir().unwrap();
        let mut part = WebmPart::create(&FileStorage, dir.path().join("a.webm.part")).unwrap();
        part.set_tracks(vec![TrackSpec::Opus { pre_skip: 312 }]);
        for i in 0..150 {
            part.write_block(audio(i * 20)).unwrap();
        }
        // Two complete clusters are on disk; the third is still open (lost on a crash).
        assert_eq!(part.clusters_written, 2);
        let index = index_part(&dir.path().join("a.webm.part")).unwrap();
        assert_eq!(index.clusters.len(), 2);
        assert_eq!(index.end_ms, 2000);
        assert_eq!(index.valid_end, part.valid_end);
        assert_eq!(
            index.layout.info_pos,
            part.layout.as_ref().unwrap().info_pos
        );
        assert_eq!(
            index.layout.reserved_len,
            part.layout.as_ref().unwrap().reserved_len
        );
        // A torn cluster at the end is cut off.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("a.webm.part"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, &[0x1f, 0x43, 0xb6, 0x75, 0x88]))
            .unwrap();
        let sealed = recover_part(
            &FileStorage,
            &dir.path().join("a.webm.part"),
            &dir.path().join("a.webm"),
        )
        .unwrap();
        assert_eq!(
            sealed,
            Sealed {
                duration_ms: 2000,
                cues: true
            }
        );
        // Sealing again (a crash after sealing, before the rename) is harmless.
        std::fs::copy(dir.path().join("a.webm"), dir.path().join("b.webm.part")).unwrap();
        let again = recover_part(
            &FileStorage,
            &dir.path().join("b.webm.part"),
            &dir.path().join("b.webm"),
        )
        .unwrap();
        assert_eq!(again, sealed);
        assert_eq!(
            std::fs::read(dir.path().join("a.webm")).unwrap(),
            std::fs::read(dir.path().join("b.webm")).unwrap()
        );
    }

    #[test]
    fn opus_head_is_19_bytes() {
        let head = opus_head(312);
        assert_eq!(head.len(), 19);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(u16::from_le_bytes([head[10], head[11]]), 312);
    }
}
