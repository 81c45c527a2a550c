// Classroom view (`/classroom#token=JWT`): the lesson on a rural classroom's big screen.
//
// The room sees the teacher full screen and hears the teacher; when the teacher shares a
// screen, the screen fills the picture and the teacher's camera moves to a corner. The room
// raises its hand with one big button (or `H` on a keyboard, OK on a TV remote), answers the
// teacher's stage invitation, and while its grants allow (on stage, or always in a delivery
// lesson) sends its own camera and microphone (js/stage.js). Chat is read-only here: the room
// has a remote control, not a keyboard, so messages show briefly and in a drawer (`C`).
//
// Keys: H hand, C chat, F full screen, arrows move between the controls, Enter/OK presses,
// Escape closes the drawer or declines an invitation.
//
// What the room sees is a phase derived from what is known (session.js `watchPhase`).

import { $, h, icon, applyIcons, toast } from './dom.js';
import { t, applyI18n } from './i18n.js';
import { LessonSession } from './session.js';
import { PHASE_VIEW, FINAL_PHASES, watchPhase, watchState, describeFatal } from './phase.js';
import { StageSeat, describeStageError, mutedNotes } from './stage.js';
import { ChatPanel } from './chat.js';
import { LessonPicture } from './picture.js';
import { LAYERS, emptyStats } from './media.js';
import { mountLanguageSwitch } from './langswitch.js';
import { renderLinkQuality } from './linkquality.js';

const IDLE_MS = 4000;
/** How long a new chat message stays on the big screen while the drawer is closed. */
const TICKER_MS = 12_000;
const TICKER_MAX = 3;

const els = {
  recordingFlag: $('#recording-flag'),
  linkQuality: $('#link-quality'),
  stage: $('#stage'),
  picture: $('#picture'),
  video: $('#teacher-video'),
  screenVideo: $('#screen-video'),
  audioSink: $('#audio-sink'),
  strip: $('#strip'),
  selfView: $('#self-view'),
  selfVideo: $('#self-video'),
  selfLabel: $('#self-label-text'),
  selfMuted: $('#self-muted'),
  centerVisual: $('#center-visual'),
  centerTitle: $('#center-title'),
  centerDetail: $('#center-detail'),
  lessonTitle: $('#lesson-title'),
  lessonSub: $('#lesson-sub'),
  status: $('#status'),
  statusText: $('#status-text'),
  enableSound: $('#enable-sound'),
  classroomName: $('#classroom-name'),
  controls: $('#room-controls'),
  hand: $('#hand'),
  handText: $('#hand-text'),
  handFlag: $('#hand-flag'),
  handFlagText: $('#hand-flag-text'),
  leaveStage: $('#leave-stage'),
  chatToggle: $('#chat-toggle'),
  chatDrawer: $('#chat-drawer'),
  chat: $('#chat'),
  ticker: $('#chat-ticker'),
  lang: $('#lang'),
  fullscreen: $('#fullscreen'),
  invitePrompt: $('#invite-prompt'),
  inviteAccept: $('#invite-accept'),
  inviteDecline: $('#invite-decline'),
};

const state = {
  session: null,
  seat: null,
  chat: null,
  picture: new LessonPicture({
    picture: els.picture,
    camera: els.video,
    screen: els.screenVideo,
    strip: els.strip,
    audio: els.audioSink,
  }),
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

function phase() {
  if (!state.session) return 'error';
  return watchPhase(state.session, { error: state.error, pictureShown: state.picture.shown });
}

let renderedVisual = null;

function render() {
  const p = phase();
  const view = PHASE_VIEW[p];
  els.stage.dataset.phase = p;
  els.status.dataset.status = view.status;
  els.statusText.textContent = t(`classroom.status.${view.statusKey}`);
  const live = p === 'live' || p === 'teacherAway';
  els.recordingFlag.hidden = !(live && state.session?.room.recording);
  if (live) renderLinkQuality(els.linkQuality, state.session.room.quality, t);
  else els.linkQuality.hidden = true;

  if (p === 'error') {
    const err = state.error || describeFatal(state.session?.fatal);
    els.centerTitle.textContent = err.title;
    els.centerDetail.textContent = err.detail;
  } else if (view.title) {
    els.centerTitle.textContent = t(view.title);
    els.centerDetail.textContent = t(view.detail);
  }
  if (view.visual && view.visual !== renderedVisual) {
    renderedVisual = view.visual;
    els.centerVisual.replaceChildren(
      view.visual === 'spinner' ? h('div', { class: 'spinner' }) : icon(view.visual, 64),
    );
  }

  const room = state.session?.room;
  const lesson = room?.lesson;
  // Without a lesson there is no title to show; "Joining…" would be wrong once joining failed.
  els.lessonTitle.hidden = !lesson && p === 'error';
  if (lesson) {
    els.lessonTitle.textContent = lesson.title;
    const parts = [];
    const tch = room.teacher();
    if (tch) parts.push(t('classroom.with', { teacher: tch.name }));
    if (lesson.subject) parts.push(lesson.subject);
    if (lesson.grade) parts.push(lesson.grade);
    els.lessonSub.textContent = parts.join(' · ');
    document.title = `${lesson.title} · ${t('classroom.pageTitle')}`;
  } else if (p !== 'error') {
    els.lessonTitle.textContent = t('classroom.joining');
  }
  if (room?.you) {
    els.classroomName.replaceChildren(icon('school', 22), document.createTextNode(room.you.name));
  }
  const over = FINAL_PHASES.has(p);
  const audio = state.picture.audio;
  els.enableSound.hidden = !(audio.blocked && audio.count > 0 && !over);
  els.strip.setAttribute('aria-label', t('classroom.others'));
  renderSeat(over);
}

/** The room's own part: hand, stage, its camera, what the teacher muted. */
function renderSeat(over) {
  const seat = state.seat;
  const joined = !!seat && seat.room.joined && !over;
  const mayHand = joined && seat.mayRaiseHand && !seat.onStage;
  els.hand.hidden = !mayHand;
  els.hand.classList.toggle('is-up', !!seat?.handUp);
  els.hand.setAttribute('aria-pressed', String(!!seat?.handUp));
  els.handText.textContent = t(seat?.handUp ? 'hand.lowerKey' : 'hand.raiseKey');
  els.handFlag.hidden = !(joined && seat.handUp);
  els.handFlagText.textContent = t('hand.raisedWaiting');
  els.leaveStage.hidden = !(joined && seat.onStage);
  els.chatToggle.hidden = over;

  const prompt = joined && seat.invitation;
  if (prompt && els.invitePrompt.hidden) {
    els.invitePrompt.hidden = false;
    els.inviteAccept.focus();
  } else if (!prompt && !els.invitePrompt.hidden) {
    els.invitePrompt.hidden = true;
    if (document.activeElement && els.invitePrompt.contains(document.activeElement)) focusFirstControl();
  }

  const stream = joined && seat.sending ? seat.stream : null;
  const hasCamera = !!stream && stream.getVideoTracks().length > 0;
  els.selfView.hidden = !hasCamera;
  if (hasCamera && els.selfVideo.srcObject !== stream) {
    els.selfVideo.srcObject = stream;
    els.selfVideo.play().catch(() => {});
  } else if (!hasCamera && els.selfVideo.srcObject) {
    els.selfVideo.srcObject = null;
  }
  els.selfLabel.textContent = t(seat?.onStage ? 'stage.youAreOn' : 'stage.othersSeeYou');
  const muted = mutedNotes(seat);
  els.selfMuted.hidden = muted.length === 0;
  els.selfMuted.replaceChildren(...muted.map((m) => h('div', {}, icon(m.icon, 22), h('span', {}, m.text))));
  els.selfView.classList.toggle('is-muted', muted.length > 0);
}

// --- signaling ----------------------------------------------------------------------------

function join(token, lesson) {
  const session = new LessonSession({ token, lesson });
  state.session = session;
  state.seat = new StageSeat(session);
  state.chat = new ChatPanel(els.chat, session.room, { readOnly: true });
  state.picture.attach(session);

  session.addEventListener('status', render);
  session.addEventListener('media-error', (e) =>
    toast(t('error.signaling', { message: String(e.detail?.message || e.detail) }), 'error'),
  );
  for (const type of ['ended', 'removed', 'fatal']) {
    session.addEventListener(type, () => {
      els.selfVideo.srcObject = null;
      render();
    });
  }
  const room = session.room;
  room.addEventListener('change', render);
  room.addEventListener('muted', (e) => {
    const m = e.detail;
    if (!room.you || m.participant_id !== room.you.id) return;
    const key = `${m.source === 'camera' ? 'stage.cam' : 'stage.mic'}${m.muted ? 'MutedByTeacher' : 'Unmuted'}`;
    toast(t(key), m.muted ? 'error' : 'info');
  });
  room.addEventListener('chat-message', (e) => showTicker(e.detail));
  room.addEventListener('error', (e) => toast(t('error.signaling', { message: e.detail.message || e.detail.code }), 'error'));
  room.addEventListener('command-error', (e) => toast(describeStageError(e.detail), 'error'));
  state.seat.addEventListener('change', render);
  state.seat.addEventListener('error', (e) => toast(describeStageError(e.detail), 'error'));
  state.picture.addEventListener('change', render);

  session.start();
}

// --- chat on the big screen ---------------------------------------------------------------

function showTicker(message) {
  if (!els.chatDrawer.hidden || !message) return;
  const item = h('div', { class: 'ticker-item' },
    h('span', { class: 'ticker-author' }, message.from?.name || ''),
    h('span', { class: 'ticker-text' }, message.text));
  els.ticker.append(item);
  while (els.ticker.children.length > TICKER_MAX) els.ticker.firstElementChild.remove();
  setTimeout(() => {
    item.classList.add('leaving');
    setTimeout(() => item.remove(), 500);
  }, TICKER_MS);
}

function toggleChat(open = els.chatDrawer.hidden) {
  els.chatDrawer.hidden = !open;
  els.stage.classList.toggle('chat-open', open);
  els.chatToggle.setAttribute('aria-pressed', String(open));
  if (open) {
    els.ticker.replaceChildren();
    state.chat.render();
  }
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

/** The controls a remote's arrows move between: the prompt's while it is open. */
function focusables() {
  const scope = els.invitePrompt.hidden ? els.controls : els.invitePrompt;
  return [...scope.querySelectorAll('button')].filter((b) => !b.hidden && !b.disabled && b.offsetParent !== null);
}

function focusFirstControl() {
  const list = focusables();
  (list.find((b) => b === els.hand) || list[0])?.focus();
}

function moveFocus(step) {
  const list = focusables();
  if (list.length === 0) return;
  // Focus left on a control that has since gone (the prompt, "leave the stage") starts over.
  const at = list.indexOf(document.activeElement);
  if (at === -1) {
    focusFirstControl();
    return;
  }
  list[(at + step + list.length) % list.length].focus();
}

let idleTimer = null;
function wake() {
  els.stage.classList.remove('idle');
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => els.stage.classList.add('idle'), IDLE_MS);
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  state.picture.audio.unlock();
  wake();
  const key = e.key;
  if (!els.invitePrompt.hidden) {
    if (key === 'Escape' || key === 'Backspace' || key === 'BrowserBack') {
      e.preventDefault();
      state.seat?.decline();
    } else if (key.startsWith('Arrow')) {
      e.preventDefault();
      moveFocus(key === 'ArrowLeft' || key === 'ArrowUp' ? -1 : 1);
    }
    return;
  }
  switch (key) {
    case 'f':
    case 'F':
      toggleFullscreen();
      break;
    case 'h':
    case 'H':
      if (!els.hand.hidden) state.seat?.toggleHand();
      break;
    case 'c':
    case 'C':
      toggleChat();
      break;
    case 'Escape':
      if (!els.chatDrawer.hidden) toggleChat(false);
      break;
    case 'ArrowLeft':
    case 'ArrowUp':
      e.preventDefault();
      moveFocus(-1);
      break;
    case 'ArrowRight':
    case 'ArrowDown':
      e.preventDefault();
      moveFocus(1);
      break;
    default:
  }
}

function wire() {
  els.fullscreen.addEventListener('click', (e) => {
    e.stopPropagation();
    toggleFullscreen();
  });
  document.addEventListener('fullscreenchange', renderFullscreenButton);
  els.hand.addEventListener('click', () => state.seat?.toggleHand());
  els.leaveStage.addEventListener('click', () => state.seat?.leave());
  els.inviteAccept.addEventListener('click', () => state.seat?.accept());
  els.inviteDecline.addEventListener('click', () => state.seat?.decline());
  els.chatToggle.addEventListener('click', () => toggleChat());

  // Any touch, click or key is the gesture a browser wants before playing sound.
  els.enableSound.addEventListener('click', () => state.picture.audio.unlock());
  document.addEventListener('pointerdown', () => state.picture.audio.unlock());
  document.addEventListener('keydown', onKey);
  document.addEventListener('pointermove', wake);
  document.addEventListener('pointerdown', wake);
  wake();
  mountLanguageSwitch(els.lang, () => {
    renderFullscreenButton();
    state.chat?.render();
    state.picture.renderStrip();
    render();
  });
}

// Test and support hook: what this classroom has actually received, decoded and sent.
window.classroomDebug = {
  async stats() {
    const stats = state.session ? await state.session.stats() : emptyStats();
    const camera = state.picture.camera;
    return { ...stats, videoMaxLayer: state.picture.wantedLayer(), videoPublicationId: camera ? camera.publicationId : null };
  },
  /** What one publication brought this page (packets, decoded frames); null if not received. */
  publicationStats(publicationId) {
    return state.session ? state.session.publicationStats(publicationId) : null;
  },
  /**
   * Caps the teacher's video at `maxLayer` ('low' | 'medium' | 'high'), as a room on a poor link
   * would. Returns what was asked: `sent` is false while there is no video (it is sent once
   * one arrives) or the socket is down.
   */
  limitVideo(maxLayer) {
    if (!LAYERS.includes(maxLayer)) throw new Error(`unknown layer ${maxLayer}`);
    return state.picture.limit(maxLayer);
  },
  /** Lifts the cap of `limitVideo`: the size of the screen decides again. */
  releaseVideo() {
    return state.picture.limit(null);
  },
  state() {
    return { ...watchState(state.session, state.seat, state.picture), phase: phase() };
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
  join(link.token, link.lesson);
  render();
}
