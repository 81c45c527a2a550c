// Classroom view (`/classroom#token=JWT`): the teacher on the big screen, with sound.
//
// The page joins with the invite token from its link, answers the SFU's offers on a subscriber
// connection and shows the teacher's camera full screen; the teacher's microphone plays through
// an <audio> element. It never publishes (classrooms speak on stage in a later issue).
//
// What the room sees is one of a few phases, derived from what we know rather than stored:
//   connecting → waiting (no teacher yet) → starting (teacher here, no picture yet) → live,
//   and reconnecting / ended / error.

import { $, icon, applyIcons, toast } from './dom.js';
import { t, applyI18n } from './i18n.js';
import { SignalingClient } from './signaling.js';
import { Subscriber, emptyStats } from './media.js';

const IDLE_MS = 4000;

/** Simulcast layers, worst first (the SFU's `max_layer` values). */
const LAYERS = ['low', 'medium', 'high'];

const els = {
  stage: $('#stage'),
  video: $('#teacher-video'),
  audio: $('#teacher-audio'),
  centerVisual: $('#center-visual'),
  centerTitle: $('#center-title'),
  centerDetail: $('#center-detail'),
  lessonTitle: $('#lesson-title'),
  lessonSub: $('#lesson-sub'),
  status: $('#status'),
  statusText: $('#status-text'),
  enableSound: $('#enable-sound'),
  classroomName: $('#classroom-name'),
  fullscreen: $('#fullscreen'),
};

const state = {
  signaling: null,
  subscriber: null,
  joined: null,
  you: null,
  lesson: null,
  participants: new Map(), // id -> ParticipantInfo
  publications: new Map(), // id -> PublicationInfo
  videoTrack: null,
  videoPublicationId: null, // the publication shown on the big screen
  // The best layer this room wants: the smaller of a support/test cap (`limitVideo`) and what
  // the screen can show; and what the SFU was last told, so a wish is sent once.
  layerCap: null,
  screenLayer: 'high',
  sentSubscription: null, // {publicationId, maxLayer}
  audioTracks: [],
  videoPlaying: false,
  soundBlocked: false,
  ended: false,
  error: null, // {title, detail}
};

// --- link parsing -------------------------------------------------------------------------

/** The invite token and lesson id from `#token=...` (or `?token=`), `?lesson=ID` / `#lesson=ID`. */
function readLink() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
  const query = new URLSearchParams(location.search);
  const lesson = Number(query.get('lesson') || hash.get('lesson'));
  return {
    token: hash.get('token') || query.get('token'),
    lesson: Number.isSafeInteger(lesson) && lesson > 0 ? lesson : null,
  };
}

// --- phases and rendering -----------------------------------------------------------------

function teacher() {
  for (const p of state.participants.values()) if (p.role === 'teacher') return p;
  return null;
}

function phase() {
  if (state.error) return 'error';
  if (state.ended) return 'ended';
  const sig = state.signaling ? state.signaling.status : 'connecting';
  if (sig === 'reconnecting') return 'reconnecting';
  if (!state.joined || sig !== 'open') return 'connecting';
  if (state.videoTrack && state.videoPlaying) return 'live';
  return teacher() ? 'starting' : 'waiting';
}

const PHASE_VIEW = {
  connecting: { status: 'connecting', statusKey: 'connecting', title: 'classroom.msg.connecting', detail: 'classroom.msg.connectingDetail', visual: 'spinner' },
  reconnecting: { status: 'reconnecting', statusKey: 'reconnecting', title: 'classroom.msg.reconnecting', detail: 'classroom.msg.reconnectingDetail', visual: 'spinner' },
  waiting: { status: 'waiting', statusKey: 'waiting', title: 'classroom.msg.waiting', detail: 'classroom.msg.waitingDetail', visual: 'clock' },
  starting: { status: 'connecting', statusKey: 'connecting', title: 'classroom.msg.starting', detail: 'classroom.msg.startingDetail', visual: 'spinner' },
  live: { status: 'live', statusKey: 'live', title: null, detail: null, visual: null },
  ended: { status: 'ended', statusKey: 'ended', title: 'classroom.msg.ended', detail: 'classroom.msg.endedDetail', visual: 'check' },
  error: { status: 'error', statusKey: 'error', title: null, detail: null, visual: 'alert' },
};

let renderedVisual = null;

function render() {
  const p = phase();
  const view = PHASE_VIEW[p];
  els.stage.dataset.phase = p;
  els.status.dataset.status = view.status;
  els.statusText.textContent = t(`classroom.status.${view.statusKey}`);

  if (p === 'error') {
    els.centerTitle.textContent = state.error.title;
    els.centerDetail.textContent = state.error.detail;
  } else if (view.title) {
    els.centerTitle.textContent = t(view.title);
    els.centerDetail.textContent = t(view.detail);
  }
  if (view.visual && view.visual !== renderedVisual) {
    renderedVisual = view.visual;
    els.centerVisual.replaceChildren(
      view.visual === 'spinner' ? Object.assign(document.createElement('div'), { className: 'spinner' }) : icon(view.visual, 64),
    );
  }

  const lesson = state.lesson;
  // Without a lesson there is no title to show; "Joining…" would be wrong once joining failed.
  els.lessonTitle.hidden = !lesson && p === 'error';
  if (lesson) {
    els.lessonTitle.textContent = lesson.title;
    const parts = [];
    const tch = teacher();
    if (tch) parts.push(t('classroom.with', { teacher: tch.name }));
    if (lesson.subject) parts.push(lesson.subject);
    if (lesson.grade) parts.push(lesson.grade);
    els.lessonSub.textContent = parts.join(' · ');
    document.title = `${lesson.title} · ${t('classroom.pageTitle')}`;
  }
  if (state.you) {
    els.classroomName.replaceChildren(icon('school', 22), document.createTextNode(state.you.name));
  }
  els.enableSound.hidden = !(state.soundBlocked && state.audioTracks.length > 0 && p !== 'ended');
}

// --- media --------------------------------------------------------------------------------

/** Chooses what to show and play from the tracks the subscriber receives now. */
function attachMedia() {
  const received = state.subscriber ? state.subscriber.receivers() : [];
  const withInfo = received.map((r) => {
    const pub = state.publications.get(r.publicationId);
    const owner = pub ? state.participants.get(pub.participant_id) : null;
    return { ...r, pub, owner };
  });
  const videos = withInfo.filter((r) => r.track.kind === 'video');
  // The teacher's camera first; any video beats a black screen if the list is out of date.
  const rank = (r) =>
    (r.owner && r.owner.role === 'teacher' ? 0 : 2) + (r.pub && r.pub.source === 'camera' ? 0 : 1);
  videos.sort((a, b) => rank(a) - rank(b));
  const video = videos.length ? videos[0].track : null;
  state.videoPublicationId = videos.length ? videos[0].publicationId : null;

  if (video !== state.videoTrack) {
    state.videoTrack = video;
    state.videoPlaying = false;
    els.video.srcObject = video ? new MediaStream([video]) : null;
    if (video) els.video.play().catch(() => {});
  }

  const audio = withInfo.filter((r) => r.track.kind === 'audio').map((r) => r.track);
  const changed =
    audio.length !== state.audioTracks.length || audio.some((tr, i) => tr !== state.audioTracks[i]);
  if (changed) {
    state.audioTracks = audio;
    els.audio.srcObject = audio.length ? new MediaStream(audio) : null;
    if (audio.length) playAudio();
  }
  syncSubscription();
  render();
}

// --- which layer to ask for ----------------------------------------------------------------

function lowerLayer(a, b) {
  return LAYERS[Math.min(LAYERS.indexOf(a), LAYERS.indexOf(b))];
}

/**
 * The layer a picture of this many device pixels in height needs: the SFU's layers are about
 * 180p / 360p / 720p, and each may be stretched up to 1.5× before it looks soft.
 */
function layerForHeight(px) {
  if (px <= 270) return 'low';
  if (px <= 540) return 'medium';
  return 'high';
}

/** Follows the size of the video on screen: a small window (or a thumbnail) needs less. */
function watchScreenSize() {
  if (typeof ResizeObserver === 'undefined') return;
  new ResizeObserver(() => {
    const box = els.video.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return; // hidden: keep the last wish
    // object-fit: contain shows a 16:9 picture at most this tall in the box.
    const shown = Math.min(box.height, (box.width * 9) / 16) * (window.devicePixelRatio || 1);
    const layer = layerForHeight(shown);
    if (layer === state.screenLayer) return;
    state.screenLayer = layer;
    syncSubscription();
  }).observe(els.video);
}

/** The layer this room wants for the teacher's video now. */
function wantedLayer() {
  return state.layerCap ? lowerLayer(state.layerCap, state.screenLayer) : state.screenLayer;
}

/**
 * Tells the SFU the wanted layer of the publication on screen, when it differs from what it was
 * last told. A fresh subscription starts at `high` on the server, so that needs no message.
 * The server answers only a refusal (an `error`, shown as a toast).
 */
function syncSubscription() {
  const publicationId = state.videoPublicationId;
  if (publicationId === null || publicationId === undefined || !state.signaling) return false;
  const maxLayer = wantedLayer();
  const sent = state.sentSubscription;
  if (sent && sent.publicationId === publicationId) {
    if (sent.maxLayer === maxLayer) return true;
  } else if (maxLayer === 'high') {
    state.sentSubscription = { publicationId, maxLayer };
    return true;
  }
  const ok = state.signaling.send({
    type: 'set_subscription',
    publication_id: publicationId,
    max_layer: maxLayer,
    paused: false,
  });
  // Not sent (socket down): the rejoin that follows starts a fresh subscription and asks again.
  if (ok) state.sentSubscription = { publicationId, maxLayer };
  return ok;
}

/** Starts sound; a browser that wants a gesture first gets the "turn on sound" prompt. */
async function playAudio() {
  try {
    await els.audio.play();
    state.soundBlocked = false;
  } catch (err) {
    if (err && err.name === 'NotAllowedError') state.soundBlocked = true;
  }
  render();
}

function resetMedia() {
  state.subscriber?.close();
  state.subscriber = null;
  state.videoTrack = null;
  state.videoPublicationId = null;
  state.sentSubscription = null;
  state.videoPlaying = false;
  state.audioTracks = [];
  els.video.srcObject = null;
  els.audio.srcObject = null;
}

// --- signaling ----------------------------------------------------------------------------

function join(token, lesson) {
  const sig = new SignalingClient({ token, lesson });
  state.signaling = sig;

  sig.addEventListener('status', render);
  sig.addEventListener('joined', (e) => {
    // A (re)join is a fresh seat: forget the old connection and what it knew.
    const joined = e.detail;
    resetMedia();
    state.joined = joined;
    state.you = joined.you;
    state.lesson = joined.lesson;
    state.participants = new Map((joined.participants || []).map((p) => [p.id, p]));
    state.participants.set(joined.you.id, joined.you);
    state.publications = new Map((joined.publications || []).map((p) => [p.id, p]));
    if (joined.lesson && joined.lesson.state === 'ended') onEnded();
    render();
  });
  sig.addEventListener('participant_joined', (e) => {
    state.participants.set(e.detail.participant.id, e.detail.participant);
    attachMedia();
  });
  sig.addEventListener('participant_left', (e) => {
    state.participants.delete(e.detail.participant_id);
    attachMedia();
  });
  sig.addEventListener('publication_added', (e) => {
    state.publications.set(e.detail.publication.id, e.detail.publication);
    attachMedia();
  });
  sig.addEventListener('publication_removed', (e) => {
    state.publications.delete(e.detail.publication_id);
    attachMedia();
  });
  sig.addEventListener('offer', (e) => {
    if (!state.subscriber) {
      const sub = new Subscriber(sig);
      sub.addEventListener('tracks', attachMedia);
      sub.addEventListener('state', (ev) => {
        // Media broke while the socket lives: a fresh seat renegotiates everything.
        if (ev.detail === 'failed' && state.subscriber === sub) sig.dropSocket();
      });
      sub.addEventListener('failed', (ev) =>
        toast(t('error.signaling', { message: String(ev.detail?.message || ev.detail) }), 'error'),
      );
      state.subscriber = sub;
    }
    state.subscriber.handleOffer(e.detail);
  });
  sig.addEventListener('candidate', (e) => state.subscriber?.addCandidate(e.detail.candidate));
  sig.addEventListener('lesson_ended', onEnded);
  sig.addEventListener('server-error', (e) =>
    toast(t('error.signaling', { message: e.detail.message || e.detail.code }), 'error'),
  );
  sig.addEventListener('fatal', (e) => {
    const code = e.detail.code;
    if (code === 'lesson_ended') {
      onEnded();
      return;
    }
    if (['invalid_token', 'token_expired', 'wrong_lesson', 'no_such_lesson', 'forbidden'].includes(code)) {
      state.error = { title: t('classroom.msg.badToken'), detail: t('classroom.msg.badTokenDetail') };
    } else {
      state.error = { title: t('classroom.msg.failed'), detail: e.detail.message || code };
    }
    resetMedia();
    render();
  });

  sig.start().catch(() => {
    // Reported through the 'fatal' event above.
  });
}

function onEnded() {
  state.ended = true;
  state.signaling?.close();
  resetMedia();
  render();
}

// --- room controls ------------------------------------------------------------------------

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else document.documentElement.requestFullscreen?.().catch(() => {});
}

function renderFullscreenButton() {
  const on = !!document.fullscreenElement;
  const label = t(on ? 'classroom.exitFullscreen' : 'classroom.fullscreen');
  els.fullscreen.title = label;
  els.fullscreen.setAttribute('aria-label', label);
  els.fullscreen.replaceChildren(icon(on ? 'fullscreenExit' : 'fullscreen', 26));
}

let idleTimer = null;
function wake() {
  els.stage.classList.remove('idle');
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => els.stage.classList.add('idle'), IDLE_MS);
}

function wire() {
  els.video.addEventListener('playing', () => {
    state.videoPlaying = true;
    render();
  });
  els.video.addEventListener('resize', () => {
    if (els.video.videoWidth > 0 && !state.videoPlaying) {
      state.videoPlaying = true;
      render();
    }
  });
  els.fullscreen.addEventListener('click', (e) => {
    e.stopPropagation();
    toggleFullscreen();
  });
  document.addEventListener('fullscreenchange', renderFullscreenButton);

  // Any touch, click or key is the gesture a browser wants before playing sound.
  const unlockSound = () => {
    if (state.soundBlocked) playAudio();
  };
  els.enableSound.addEventListener('click', unlockSound);
  document.addEventListener('pointerdown', unlockSound);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'f' || e.key === 'F') {
      if (!e.ctrlKey && !e.metaKey && !e.altKey) toggleFullscreen();
    }
    unlockSound();
    wake();
  });
  document.addEventListener('pointermove', wake);
  document.addEventListener('pointerdown', wake);
  wake();
  watchScreenSize();
}

// Test and support hook: what this classroom has actually received and decoded.
window.classroomDebug = {
  async stats() {
    const stats = state.subscriber ? await state.subscriber.stats() : emptyStats();
    return { ...stats, videoMaxLayer: wantedLayer(), videoPublicationId: state.videoPublicationId };
  },
  /**
   * Caps the teacher's video at `maxLayer` ('low' | 'medium' | 'high'), as a room on a poor link
   * would. Returns what was asked: `sent` is false while there is no video (it is sent once
   * one arrives) or the socket is down.
   */
  limitVideo(maxLayer) {
    if (!LAYERS.includes(maxLayer)) throw new Error(`unknown layer ${maxLayer}`);
    state.layerCap = maxLayer;
    const sent = syncSubscription();
    return { publicationId: state.videoPublicationId, maxLayer: wantedLayer(), sent };
  },
  /** Lifts the cap of `limitVideo`: the size of the screen decides again. */
  releaseVideo() {
    state.layerCap = null;
    const sent = syncSubscription();
    return { publicationId: state.videoPublicationId, maxLayer: wantedLayer(), sent };
  },
  state() {
    return {
      phase: phase(),
      participantId: state.you ? state.you.id : null,
      lessonId: state.lesson ? state.lesson.id : null,
      soundBlocked: state.soundBlocked,
      receiving: state.subscriber ? state.subscriber.receivers().length : 0,
    };
  },
};

applyI18n();
applyIcons();
renderFullscreenButton();
wire();

const link = readLink();
if (!link.token) {
  state.error = { title: t('classroom.msg.noToken'), detail: t('classroom.msg.noTokenDetail') };
  render();
} else {
  render();
  join(link.token, link.lesson);
}
