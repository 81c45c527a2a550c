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
// Joining and watching (the seat, the picture, the phase, the toasts every watcher gets) are
// watch.js, shared with the student view; this file owns the big screen's layout, its remote-control
// keys and focus, the chat ticker and drawer, full screen, and the link-quality badge.

import { $, h, icon, applyIcons, toast } from './dom.js';
import { t, applyI18n } from './i18n.js';
import { LessonWatch, PhaseVisual, PHASE_VIEW, FINAL_PHASES, mutedNotes } from './watch.js';
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

const watch = new LessonWatch({
  picture: {
    picture: els.picture,
    camera: els.video,
    screen: els.screenVideo,
    strip: els.strip,
    audio: els.audioSink,
  },
  chat: els.chat,
  readOnlyChat: true,
  selfVideo: els.selfVideo,
});
const visual = new PhaseVisual([els.centerVisual], 64);

// --- rendering ----------------------------------------------------------------------------

function render() {
  const p = watch.phase();
  const view = PHASE_VIEW[p];
  els.stage.dataset.phase = p;
  watch.renderStatus(els, view);
  const live = p === 'live' || p === 'teacherAway';
  els.recordingFlag.hidden = !(live && watch.room?.recording);
  if (live) renderLinkQuality(els.linkQuality, watch.room.quality, t);
  else els.linkQuality.hidden = true;

  if (p === 'error') {
    const err = watch.errorText();
    els.centerTitle.textContent = err.title;
    els.centerDetail.textContent = err.detail;
  } else if (view.title) {
    els.centerTitle.textContent = t(view.title);
    els.centerDetail.textContent = t(view.detail);
  }
  visual.render(view);

  const room = watch.room;
  // Without a lesson there is no title to show; "Joining…" would be wrong once joining failed.
  els.lessonTitle.hidden = !room?.lesson && p === 'error';
  if (!watch.renderLessonHeading(els) && p !== 'error') els.lessonTitle.textContent = t('classroom.joining');
  if (room?.you) {
    els.classroomName.replaceChildren(icon('school', 22), document.createTextNode(room.you.name));
  }
  const over = FINAL_PHASES.has(p);
  watch.renderEnableSound(els.enableSound, over);
  els.strip.setAttribute('aria-label', t('classroom.others'));
  renderSeat(over);
}

/** The room's own part: hand, stage, its camera, what the teacher muted. */
function renderSeat(over) {
  const seat = watch.seat;
  const joined = watch.takingPart(over);
  watch.renderHand(els, joined, { raise: 'hand.raiseKey', lower: 'hand.lowerKey' });
  els.handFlag.hidden = !(joined && seat.handUp);
  els.handFlagText.textContent = t('hand.raisedWaiting');
  els.chatToggle.hidden = over;

  const prompt = joined && seat.invitation;
  if (prompt && els.invitePrompt.hidden) {
    els.invitePrompt.hidden = false;
    els.inviteAccept.focus();
  } else if (!prompt && !els.invitePrompt.hidden) {
    els.invitePrompt.hidden = true;
    if (document.activeElement && els.invitePrompt.contains(document.activeElement)) focusFirstControl();
  }

  watch.renderSelfView(els, joined);
  const muted = mutedNotes(seat);
  els.selfMuted.hidden = muted.length === 0;
  els.selfMuted.replaceChildren(...muted.map((m) => h('div', {}, icon(m.icon, 22), h('span', {}, m.text))));
  els.selfView.classList.toggle('is-muted', muted.length > 0);
}

/** What only the big screen adds to the seat: media trouble in words, new messages on screen. */
function extend(session) {
  session.addEventListener('media-error', (e) =>
    toast(t('error.signaling', { message: String(e.detail?.message || e.detail) }), 'error'),
  );
  session.room.addEventListener('chat-message', (e) => showTicker(e.detail));
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
    watch.chat?.render();
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
  watch.unlockSound();
  wake();
  const key = e.key;
  if (!els.invitePrompt.hidden) {
    if (key === 'Escape' || key === 'Backspace' || key === 'BrowserBack') {
      e.preventDefault();
      watch.seat?.decline();
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
      if (!els.hand.hidden) watch.seat?.toggleHand();
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
  els.chatToggle.addEventListener('click', () => toggleChat());
  // Hand, stage, invitation and sound; keys unlock sound in onKey.
  watch.wireSeatControls(els);
  document.addEventListener('keydown', onKey);
  document.addEventListener('pointermove', wake);
  document.addEventListener('pointerdown', wake);
  wake();
  mountLanguageSwitch(els.lang, () => {
    renderFullscreenButton();
    watch.relabel();
    render();
  });
}

// Test and support hook: what this classroom has actually received, decoded and sent.
window.classroomDebug = {
  async stats() {
    const stats = watch.session ? await watch.session.stats() : emptyStats();
    const camera = watch.picture.camera;
    return { ...stats, videoMaxLayer: watch.picture.wantedLayer(), videoPublicationId: camera ? camera.publicationId : null };
  },
  /** What one publication brought this page (packets, decoded frames); null if not received. */
  publicationStats(publicationId) {
    return watch.publicationStats(publicationId);
  },
  /**
   * Caps the teacher's video at `maxLayer` ('low' | 'medium' | 'high'), as a room on a poor link
   * would. Returns what was asked: `sent` is false while there is no video (it is sent once
   * one arrives) or the socket is down.
   */
  limitVideo(maxLayer) {
    if (!LAYERS.includes(maxLayer)) throw new Error(`unknown layer ${maxLayer}`);
    return watch.picture.limit(maxLayer);
  },
  /** Lifts the cap of `limitVideo`: the size of the screen decides again. */
  releaseVideo() {
    return watch.picture.limit(null);
  },
  state() {
    return watch.debugState();
  },
};

applyI18n();
applyIcons();
renderFullscreenButton();
wire();

watch.addEventListener('change', render);
watch.start(extend);
render();
