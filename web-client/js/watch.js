// Joining and watching a lesson from an invite link, for the two watching pages: the classroom's
// big screen (classroom.js) and a student's phone or laptop (student.js).
//
// Owns what both pages do alike: reading the link, the seat in the lesson (LessonSession, its
// StageSeat, the chat panel and the LessonPicture), the phase derived from them (phase.js), the
// toasts every watcher gets (mutes, refusals, signaling errors), the sound-unlocking gesture, the
// state for the test and support hooks, and the parts of the page both draw the same way: the
// status pill, the lesson heading, the picture of the centre message, the hand and "leave the
// stage" buttons and the page's own camera. Each page keeps its layout and its own controls.
//
// Events: 'change' (anything a page shows may have changed: draw again).

import { h, icon, toast } from './dom.js';
import { t } from './i18n.js';
import { LessonSession } from './session.js';
import { PHASE_VIEW, FINAL_PHASES, watchPhase, watchState, describeFatal } from './phase.js';
import { StageSeat, describeStageError, mutedNotes } from './stage.js';
import { ChatPanel } from './chat.js';
import { LessonPicture } from './picture.js';

export { PHASE_VIEW, FINAL_PHASES, mutedNotes };

/** The invite token and lesson id from `#token=...` (or `?token=`), `?lesson=ID` / `#lesson=ID`. */
export function readLessonLink() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
  const query = new URLSearchParams(location.search);
  const lesson = Number(query.get('lesson') || hash.get('lesson'));
  return {
    token: hash.get('token') || query.get('token'),
    lesson: Number.isSafeInteger(lesson) && lesson > 0 ? lesson : null,
  };
}

export class LessonWatch extends EventTarget {
  /**
   * @param {object} opts
   * @param {object} opts.picture  the elements LessonPicture draws into (picture.js)
   * @param {HTMLElement} opts.chat  where the chat panel lives
   * @param {boolean} [opts.readOnlyChat]  a screen without a keyboard shows the chat only
   * @param {HTMLVideoElement} opts.selfVideo  the page's own camera, let go when the lesson is over
   */
  constructor({ picture, chat, readOnlyChat = false, selfVideo }) {
    super();
    this.session = null;
    this.seat = null;
    this.chat = null;
    this.picture = new LessonPicture(picture);
    this.chatRoot = chat;
    this.readOnlyChat = readOnlyChat;
    this.selfVideo = selfVideo;
    this.error = null; // {title, detail}: why this page cannot join at all
  }

  /**
   * Joins the lesson the page's link names, or notes why it cannot. `extend(session)` adds a
   * page's own listeners before the session starts.
   */
  start(extend = () => {}) {
    const link = readLessonLink();
    if (!link.token) {
      this.error = { title: t('classroom.msg.noToken'), detail: t('classroom.msg.noTokenDetail') };
      return;
    }
    this.join(link.token, link.lesson, extend);
  }

  join(token, lesson, extend) {
    const changed = () => this.changed();
    const session = new LessonSession({ token, lesson });
    this.session = session;
    this.seat = new StageSeat(session);
    this.chat = new ChatPanel(this.chatRoot, session.room, { readOnly: this.readOnlyChat });
    this.picture.attach(session);

    session.addEventListener('status', changed);
    for (const type of ['ended', 'removed', 'fatal']) {
      session.addEventListener(type, () => {
        this.selfVideo.srcObject = null;
        this.changed();
      });
    }
    const room = session.room;
    room.addEventListener('change', changed);
    room.addEventListener('muted', (e) => {
      const m = e.detail;
      if (!room.you || m.participant_id !== room.you.id) return;
      const key = `${m.source === 'camera' ? 'stage.cam' : 'stage.mic'}${m.muted ? 'MutedByTeacher' : 'Unmuted'}`;
      toast(t(key), m.muted ? 'error' : 'info');
    });
    room.addEventListener('error', (e) => toast(t('error.signaling', { message: e.detail.message || e.detail.code }), 'error'));
    room.addEventListener('command-error', (e) => toast(describeStageError(e.detail), 'error'));
    this.seat.addEventListener('change', changed);
    this.seat.addEventListener('error', (e) => toast(describeStageError(e.detail), 'error'));
    this.picture.addEventListener('change', changed);
    extend(session);
    session.start();
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }

  get room() {
    return this.session ? this.session.room : null;
  }

  phase() {
    if (!this.session) return 'error';
    return watchPhase(this.session, { error: this.error, pictureShown: this.picture.shown });
  }

  /** Why the page shows the error phase: `{title, detail}`. */
  errorText() {
    return this.error || describeFatal(this.session?.fatal);
  }

  /** Whether the seat takes part now (joined, and the lesson not over for this page). */
  takingPart(over) {
    return !!this.seat && this.seat.room.joined && !over;
  }

  /** Any touch, click or key is the gesture a browser wants before playing sound. */
  unlockSound() {
    this.picture.audio.unlock();
  }

  /** Redraws what the panels wrote in the old language. */
  relabel() {
    this.chat?.render();
    this.picture.renderStrip();
  }

  /** For the test and support hooks: the seat, what it receives, shows and sends, the phase. */
  debugState() {
    return { ...watchState(this.session, this.seat, this.picture), phase: this.phase() };
  }

  publicationStats(publicationId) {
    return this.session ? this.session.publicationStats(publicationId) : null;
  }

  // --- the parts both pages draw alike ------------------------------------------------------

  /** The status pill: `els.status` (its `data-status`) and `els.statusText`. */
  renderStatus(els, view) {
    els.status.dataset.status = view.status;
    els.statusText.textContent = t(`classroom.status.${view.statusKey}`);
  }

  /**
   * The lesson's title and "with the teacher · subject · grade" line, and the window's title;
   * false while the lesson is not known yet (the page says what it shows instead).
   */
  renderLessonHeading(els) {
    const room = this.room;
    const lesson = room?.lesson;
    if (!lesson) return false;
    els.lessonTitle.textContent = lesson.title;
    const parts = [];
    const tch = room.teacher();
    if (tch) parts.push(t('classroom.with', { teacher: tch.name }));
    if (lesson.subject) parts.push(lesson.subject);
    if (lesson.grade) parts.push(lesson.grade);
    els.lessonSub.textContent = parts.join(' · ');
    document.title = `${lesson.title} · ${t('classroom.pageTitle')}`;
    return true;
  }

  /** The "enable sound" button: while the browser blocks sound that is there to play. */
  renderEnableSound(button, over) {
    const audio = this.picture.audio;
    button.hidden = !(audio.blocked && audio.count > 0 && !over);
  }

  /**
   * The hand button (`els.hand`, `els.handText`) with the page's words for it (`keys.raise`,
   * `keys.lower`), and "leave the stage" (`els.leaveStage`).
   */
  renderHand(els, joined, keys) {
    const seat = this.seat;
    els.hand.hidden = !(joined && seat.mayRaiseHand && !seat.onStage);
    els.hand.classList.toggle('is-up', !!seat?.handUp);
    els.hand.setAttribute('aria-pressed', String(!!seat?.handUp));
    els.handText.textContent = t(seat?.handUp ? keys.lower : keys.raise);
    els.leaveStage.hidden = !(joined && seat.onStage);
  }

  /** The page's own camera while it sends one (`els.selfView`, `els.selfVideo`, `els.selfLabel`). */
  renderSelfView(els, joined) {
    const seat = this.seat;
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
  }

  /** Answers to the stage and hand controls both pages have. */
  wireSeatControls(els) {
    els.hand.addEventListener('click', () => this.seat?.toggleHand());
    els.leaveStage.addEventListener('click', () => this.seat?.leave());
    els.inviteAccept.addEventListener('click', () => this.seat?.accept());
    els.inviteDecline.addEventListener('click', () => this.seat?.decline());
    els.enableSound.addEventListener('click', () => this.unlockSound());
    document.addEventListener('pointerdown', () => this.unlockSound());
  }
}

/** The centre message's picture (a spinner or an icon) in `targets`, redrawn only when it changes. */
export class PhaseVisual {
  constructor(targets, size) {
    this.targets = targets;
    this.size = size;
    this.shown = null;
  }

  render(view) {
    if (!view.visual || view.visual === this.shown) return;
    this.shown = view.visual;
    for (const el of this.targets) {
      el.replaceChildren(view.visual === 'spinner' ? h('div', { class: 'spinner' }) : icon(view.visual, this.size));
    }
  }
}
