// Student view (`/student#token=JWT`): the lesson on a phone or a laptop at home.
//
// The teacher's video on top (a shared screen large, the camera in its corner), the others on
// stage below it, a raise-hand button, and the chat filling the rest. A stage invitation comes
// up as a sheet; on stage the page sends the student's camera and microphone (js/stage.js).
// An observer (a teaching researcher) opens the same page: hidden, no hand, and its chat stays
// in the observers' channel (the server decides both; the page only shows it).
//
// Joining and watching (the seat, the picture, the phase, the toasts every watcher gets) are
// watch.js, shared with the classroom view; this file owns the phone layout: the centre message
// and the end notice, the seat's notes under the hand button, and the invitation sheet.

import { $, h, icon, applyIcons } from './dom.js';
import { t, applyI18n } from './i18n.js';
import { LessonWatch, PhaseVisual, PHASE_VIEW, FINAL_PHASES, mutedNotes } from './watch.js';
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

const watch = new LessonWatch({
  picture: {
    picture: els.picture,
    camera: els.video,
    screen: els.screenVideo,
    strip: els.strip,
    audio: els.audioSink,
  },
  chat: els.chat,
  selfVideo: els.selfVideo,
});
const visual = new PhaseVisual([els.centerVisual, els.noticeVisual], 40);

// --- rendering ----------------------------------------------------------------------------

function render() {
  const p = watch.phase();
  const view = PHASE_VIEW[p];
  const over = FINAL_PHASES.has(p);
  els.main.dataset.phase = p;
  document.body.dataset.phase = p;
  els.recordingFlag.hidden = !(p === 'live' && watch.room?.recording);
  watch.renderStatus(els, view);

  let title = view.title ? t(view.title) : '';
  let detail = view.detail ? t(view.detail) : '';
  if (p === 'error') ({ title, detail } = watch.errorText());
  visual.render(view);
  els.center.hidden = p === 'live' || over;
  els.centerTitle.textContent = title;
  els.centerDetail.textContent = detail;
  els.notice.hidden = !over;
  els.main.hidden = over && !watch.room?.joined;
  els.noticeTitle.textContent = title;
  els.noticeDetail.textContent = detail;

  if (!watch.renderLessonHeading(els)) {
    els.lessonTitle.textContent = p === 'error' ? t('classroom.pageTitle') : t('classroom.joining');
  }
  watch.renderEnableSound(els.enableSound, over);
  renderSeat(over);
}

function renderSeat(over) {
  const seat = watch.seat;
  const room = seat?.room;
  const joined = watch.takingPart(over);
  watch.renderHand(els, joined, { raise: 'hand.raise', lower: 'hand.lower' });

  els.invitePrompt.hidden = !(joined && seat.invitation);

  watch.renderSelfView(els, joined);

  const notes = [];
  if (joined && seat.handUp) notes.push(h('p', { class: 's-note s-note-hand' }, icon('hand', 18), h('span', {}, t('hand.raisedWaiting'))));
  for (const m of mutedNotes(seat)) notes.push(h('p', { class: 's-note s-note-muted' }, icon(m.icon, 18), h('span', {}, m.text)));
  if (joined && room.grants.hidden) notes.push(h('p', { class: 's-note' }, icon('users', 18), h('span', {}, t('student.observerNote'))));
  els.notes.replaceChildren(...(joined ? notes : []));
}

function wire() {
  watch.wireSeatControls(els);
  // Any touch or key is the gesture a browser wants before playing sound.
  document.addEventListener('keydown', () => watch.unlockSound());
  mountLanguageSwitch(els.lang, () => {
    watch.relabel();
    render();
  });
}

// Test and support hook: what this page has received, shows and sends.
window.studentDebug = {
  state() {
    return watch.debugState();
  },
  stats() {
    return watch.session?.stats();
  },
  publicationStats(publicationId) {
    return watch.publicationStats(publicationId);
  },
};

applyI18n();
applyIcons();
wire();

watch.addEventListener('change', render);
watch.start();
render();
