// Student view (`/student#token=JWT`): the lesson on a phone or a laptop at home.
//
// The teacher's video on top (a shared screen large, the camera in its corner), the others on
// stage below it, a raise-hand button, and the chat filling the rest. A stage invitation comes
// up as a sheet; on stage the page sends the student's camera and microphone (js/stage.js).
// An observer (a teaching researcher) opens the same page: hidden, no hand, and its chat stays
// in the observers' channel (the server decides both; the page only shows it).

import { $, h, icon, applyIcons, toast } from './dom.js';
import { t, applyI18n } from './i18n.js';
import { LessonSession } from './session.js';
import { PHASE_VIEW, FINAL_PHASES, watchPhase, watchState, describeFatal } from './phase.js';
import { StageSeat, describeStageError, mutedNotes } from './stage.js';
import { ChatPanel } from './chat.js';
import { LessonPicture } from './picture.js';
import { mountLanguageSwitch } from './langswitch.js';

const els = {
  recordingFlag: $('#recording-flag'),
  main: $('#main'),
  picture: $('#picture'),
  video: $('#teacher-video'),
  screenVideo: $('#screen-video'),
  audioSink: $('#audio-sink'),
  strip: $('#strip'),
  selfView: $('#self-view'),
  selfVideo: $('#self-video'),
  selfLabel: $('#self-label-text'),
  center: $('#center'),
  centerVisual: $('#center-visual'),
  centerTitle: $('#center-title'),
  centerDetail: $('#center-detail'),
  enableSound: $('#enable-sound'),
  lessonTitle: $('#lesson-title'),
  lessonSub: $('#lesson-sub'),
  status: $('#status'),
  statusText: $('#status-text'),
  lang: $('#lang'),
  hand: $('#hand'),
  handText: $('#hand-text'),
  leaveStage: $('#leave-stage'),
  notes: $('#seat-notes'),
  chat: $('#chat'),
  notice: $('#notice'),
  noticeVisual: $('#notice-visual'),
  noticeTitle: $('#notice-title'),
  noticeDetail: $('#notice-detail'),
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

function readToken() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
  const query = new URLSearchParams(location.search);
  const lesson = Number(query.get('lesson') || hash.get('lesson'));
  return {
    token: hash.get('token') || query.get('token'),
    lesson: Number.isSafeInteger(lesson) && lesson > 0 ? lesson : null,
  };
}

function phase() {
  if (!state.session) return 'error';
  return watchPhase(state.session, { error: state.error, pictureShown: state.picture.shown });
}

// --- rendering ----------------------------------------------------------------------------

let renderedVisual = null;

function render() {
  const p = phase();
  const view = PHASE_VIEW[p];
  const over = FINAL_PHASES.has(p);
  els.main.dataset.phase = p;
  document.body.dataset.phase = p;
  els.recordingFlag.hidden = !(p === 'live' && state.session?.room.recording);
  els.status.dataset.status = view.status;
  els.statusText.textContent = t(`classroom.status.${view.statusKey}`);

  let title = view.title ? t(view.title) : '';
  let detail = view.detail ? t(view.detail) : '';
  if (p === 'error') ({ title, detail } = state.error || describeFatal(state.session?.fatal));
  if (view.visual && view.visual !== renderedVisual) {
    renderedVisual = view.visual;
    const visual = () => (view.visual === 'spinner' ? h('div', { class: 'spinner' }) : icon(view.visual, 40));
    els.centerVisual.replaceChildren(visual());
    els.noticeVisual.replaceChildren(visual());
  }
  els.center.hidden = p === 'live' || over;
  els.centerTitle.textContent = title;
  els.centerDetail.textContent = detail;
  els.notice.hidden = !over;
  els.main.hidden = over && !state.session?.room.joined;
  els.noticeTitle.textContent = title;
  els.noticeDetail.textContent = detail;

  const room = state.session?.room;
  const lesson = room?.lesson;
  if (lesson) {
    els.lessonTitle.textContent = lesson.title;
    const parts = [];
    const tch = room.teacher();
    if (tch) parts.push(t('classroom.with', { teacher: tch.name }));
    if (lesson.subject) parts.push(lesson.subject);
    if (lesson.grade) parts.push(lesson.grade);
    els.lessonSub.textContent = parts.join(' · ');
    document.title = `${lesson.title} · ${t('classroom.pageTitle')}`;
  } else {
    els.lessonTitle.textContent = p === 'error' ? t('classroom.pageTitle') : t('classroom.joining');
  }
  const audio = state.picture.audio;
  els.enableSound.hidden = !(audio.blocked && audio.count > 0 && !over);
  renderSeat(over);
}

function renderSeat(over) {
  const seat = state.seat;
  const room = seat?.room;
  const joined = !!seat && room.joined && !over;
  els.hand.hidden = !(joined && seat.mayRaiseHand && !seat.onStage);
  els.hand.classList.toggle('is-up', !!seat?.handUp);
  els.hand.setAttribute('aria-pressed', String(!!seat?.handUp));
  els.handText.textContent = t(seat?.handUp ? 'hand.lower' : 'hand.raise');
  els.leaveStage.hidden = !(joined && seat.onStage);

  els.invitePrompt.hidden = !(joined && seat.invitation);

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

  const notes = [];
  if (joined && seat.handUp) notes.push(h('p', { class: 's-note s-note-hand' }, icon('hand', 18), h('span', {}, t('hand.raisedWaiting'))));
  for (const m of mutedNotes(seat)) notes.push(h('p', { class: 's-note s-note-muted' }, icon(m.icon, 18), h('span', {}, m.text)));
  if (joined && room.grants.hidden) notes.push(h('p', { class: 's-note' }, icon('users', 18), h('span', {}, t('student.observerNote'))));
  els.notes.replaceChildren(...(joined ? notes : []));
}

// --- joining ------------------------------------------------------------------------------

function join(token, lesson) {
  const session = new LessonSession({ token, lesson });
  state.session = session;
  state.seat = new StageSeat(session);
  state.chat = new ChatPanel(els.chat, session.room);
  state.picture.attach(session);

  session.addEventListener('status', render);
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
  room.addEventListener('error', (e) => toast(t('error.signaling', { message: e.detail.message || e.detail.code }), 'error'));
  room.addEventListener('command-error', (e) => toast(describeStageError(e.detail), 'error'));
  state.seat.addEventListener('change', render);
  state.seat.addEventListener('error', (e) => toast(describeStageError(e.detail), 'error'));
  state.picture.addEventListener('change', render);
  session.start();
}

function wire() {
  els.hand.addEventListener('click', () => state.seat?.toggleHand());
  els.leaveStage.addEventListener('click', () => state.seat?.leave());
  els.inviteAccept.addEventListener('click', () => state.seat?.accept());
  els.inviteDecline.addEventListener('click', () => state.seat?.decline());
  els.enableSound.addEventListener('click', () => state.picture.audio.unlock());
  // Any touch or key is the gesture a browser wants before playing sound.
  document.addEventListener('pointerdown', () => state.picture.audio.unlock());
  document.addEventListener('keydown', () => state.picture.audio.unlock());
  mountLanguageSwitch(els.lang, () => {
    state.chat?.render();
    state.picture.renderStrip();
    render();
  });
}

// Test and support hook: what this page has received, shows and sends.
window.studentDebug = {
  state() {
    return { ...watchState(state.session, state.seat, state.picture), phase: phase() };
  },
  stats() {
    return state.session?.stats();
  },
  publicationStats(publicationId) {
    return state.session ? state.session.publicationStats(publicationId) : null;
  },
};

applyI18n();
applyIcons();
wire();

const link = readToken();
if (!link.token) {
  state.error = { title: t('classroom.msg.noToken'), detail: t('classroom.msg.noTokenDetail') };
} else {
  join(link.token, link.lesson);
}
render();
