// The live studio on screen: renders what a Studio (studio.js) announces and hands the teacher's
// presses back to it. Owns the lesson's heading and recording badge, the preview and its
// messages, the studio controls (microphone, camera, screen, name, go live), the connection pill,
// and the live panels: what fits the lesson's mode (remote-view.js), raised hands (hands.js), who
// is here with the moderator's mute and remove (people.js, and the remove dialog), the chat
// (chat.js), and the end-lesson dialog. The invite panel (invite-panel.js) draws its own card;
// this view tells it when the studio changed.

import { $, icon, toast } from './dom.js';
import { t } from './i18n.js';
import { ChatPanel } from './chat.js';
import { HandsPanel } from './hands.js';
import { PeoplePanel } from './people.js';
import { RemoteView } from './remote-view.js';
import { metaLine } from './schedule.js';
import { describe } from './studio.js';

const NAME_STORAGE = 'classroom.teacherName';

export class StudioView {
  /**
   * @param {object} opts
   * @param {import('./invite-panel.js').InvitePanel} opts.invites
   * @param {(err: unknown) => boolean} opts.handleAuthError  true when it dealt with a 401
   */
  constructor({ invites, handleAuthError }) {
    this.invites = invites;
    this.handleAuthError = handleAuthError;
    /** @type {import('./studio.js').Studio|null} the studio shown */
    this.studio = null;
    this.chat = null; // ChatPanel of the studio's seat
    /** The participant the remove dialog asks about. */
    this.removing = null;
    this.els = {
      connection: $('#connection'),
      connectionText: $('#connection-text'),
      viewLesson: $('#view-lesson'),
      lessonTitle: $('#lesson-title'),
      lessonMeta: $('#lesson-meta'),
      lessonState: $('#lesson-state'),
      recordingBadge: $('#recording-badge'),
      recordToggle: $('#record-toggle'),
      endLesson: $('#end-lesson'),
      endDialog: $('#end-dialog'),
      preview: $('#preview'),
      previewScreen: $('#preview-screen'),
      previewMessage: $('#preview-message'),
      previewMessageText: $('#preview-message-text'),
      cameraRetry: $('#camera-retry'),
      onAir: $('#on-air'),
      toggleMic: $('#toggle-mic'),
      toggleCam: $('#toggle-cam'),
      shareScreen: $('#share-screen'),
      shareScreenText: $('#share-screen-text'),
      teacherName: $('#teacher-name'),
      goLive: $('#go-live'),
      goLiveText: $('#go-live-text'),
      controls: $('#studio-controls'),
      studioCard: $('#studio'),
      previewIcon: $('#preview-icon'),
      backLink: $('#back-link'),
      nameField: $('#name-field'),
      remoteCard: $('#remote-card'),
      handsCard: $('#hands-card'),
      peopleCard: $('#people-card'),
      chatCard: $('#chat-card'),
      chat: $('#chat'),
      chatOffline: $('#chat-offline'),
      removeDialog: $('#remove-dialog'),
      removeTitle: $('#remove-title'),
    };
    this.hands = new HandsPanel(
      { list: $('#hands-list'), count: $('#hands-count'), empty: $('#hands-empty'), lowerAll: $('#lower-all') },
      null,
    );
    this.people = new PeoplePanel(
      { list: $('#participant-list'), count: $('#participant-count'), empty: $('#participants-empty') },
      { remove: (p) => this.confirmRemove(p) },
    );
    this.remote = new RemoteView({
      title: $('#remote-title'),
      lead: $('#remote-lead'),
      grid: $('#remote-tiles'),
      empty: $('#remote-empty'),
      pending: $('#remote-pending'),
    });
    this.wire();
  }

  /** Shows `studio` (or none), and from now on what it announces. */
  attach(studio) {
    this.studio = studio;
    this.chat = null;
    this.hands.room = null;
    this.invites.attach(studio);
    if (!studio) return;
    studio.addEventListener('seat', (e) => {
      if (studio !== this.studio) return;
      const seat = e.detail.seat;
      this.chat = seat ? new ChatPanel(this.els.chat, seat.room) : null;
      this.hands.room = seat ? seat.room : null;
    });
    studio.addEventListener('notice', (e) => {
      if (studio === this.studio) toast(e.detail.text, e.detail.kind, e.detail.ms);
    });
    studio.addEventListener('change', (e) => {
      if (studio === this.studio) this.onChange(e.detail);
    });
  }

  onChange({ part, what }) {
    switch (part) {
      case 'camera-starting':
        this.renderPreview();
        break;
      case 'camera':
        this.renderPreview();
        this.renderControls();
        break;
      case 'mic':
        this.renderControls();
        break;
      case 'cam':
      case 'screen':
        this.renderControls();
        this.renderPreview();
        break;
      case 'live':
        this.renderControls();
        this.renderConnection();
        this.renderPreview();
        break;
      case 'connection':
        this.renderConnection();
        break;
      case 'joined':
        this.renderLessonHead();
        this.renderLive('joined');
        break;
      case 'room':
        this.renderLive(what);
        break;
      case 'media':
        this.renderRemote();
        break;
      case 'lesson':
        this.renderLesson();
        break;
      case 'ended':
        this.renderLesson();
        this.renderConnection();
        break;
      default:
    }
  }

  /** Redraws everything written in the old language. */
  relabel() {
    if (!this.studio) return;
    this.renderLesson();
    this.chat?.render();
  }

  /** The tiles of the others, for the test and support hook. */
  tiles() {
    return [...this.remote.grid.tiles.values()].map((tile) => ({
      participantId: Number(tile.el.dataset.participantId),
      video: !!tile.track,
    }));
  }

  // --- rendering --------------------------------------------------------------------------

  renderConnection() {
    const studio = this.studio;
    let status = 'offline';
    let text = t('conn.offline');
    if (studio && studio.live !== 'idle' && studio.seat) {
      const sig = studio.seat.status;
      if (sig === 'reconnecting') {
        status = 'reconnecting';
        text = t('conn.reconnecting');
      } else if (studio.live === 'live' && sig === 'open') {
        status = 'live';
        text = t('conn.live');
      } else {
        status = 'connecting';
        text = t('conn.connecting');
      }
    } else if (studio && studio.live === 'connecting') {
      status = 'connecting';
      text = t('conn.connecting');
    }
    this.els.connection.dataset.status = status;
    this.els.connectionText.textContent = text;
  }

  renderLesson() {
    this.renderLessonHead();
    this.renderPreview();
    this.renderControls();
    this.invites.renderList();
    this.renderLive('joined');
  }

  renderLessonHead() {
    const studio = this.studio;
    if (!studio) return;
    const { els } = this;
    const { lesson } = studio;
    els.lessonTitle.textContent = lesson.title;
    els.lessonMeta.textContent = metaLine(lesson);
    els.lessonState.className = `badge badge-${lesson.state}`;
    els.lessonState.textContent = t(`state.${lesson.state}`);
    // Inviting is an admin call; a teacher from an invite link has no key for it. Ending works
    // for both: over the socket when live.
    const admin = studio.admin;
    els.endLesson.hidden = lesson.state === 'ended' || (!admin && !studio.seat);
    this.invites.renderCard();
    els.backLink.hidden = !admin;
    els.nameField.hidden = !admin;
    els.viewLesson.dataset.mode = studio.mode;
    this.renderRecording();
    document.title = `${lesson.title} · ${t('app.name')}`;
  }

  renderPreview() {
    const studio = this.studio;
    if (!studio) return;
    const { els } = this;
    const ended = studio.ended;
    const stream = studio.stream;
    if (els.preview.srcObject !== stream) els.preview.srcObject = stream;
    const sharing = studio.screen.stream;
    if (els.previewScreen.srcObject !== sharing) els.previewScreen.srcObject = sharing;
    els.previewScreen.hidden = !sharing;
    els.studioCard.classList.toggle('is-sharing', !!sharing);
    let message = null;
    let retry = false;
    let spinner = false;
    if (ended) {
      message = t('lesson.ended');
    } else if (studio.cameraError) {
      const name = studio.cameraError.name;
      if (name === 'NotAllowedError' || name === 'SecurityError') message = t('camera.denied');
      else if (name === 'NotFoundError' || name === 'OverconstrainedError') message = t('camera.missing');
      else message = t('camera.failed', { message: studio.cameraError.message || name });
      retry = true;
    } else if (!stream) {
      message = t('camera.starting');
      spinner = true;
    } else if (!studio.camOn && !sharing) {
      message = t('camera.off');
    }
    els.previewMessage.hidden = message === null;
    els.previewMessageText.textContent = message || '';
    els.previewMessage.querySelector('.spinner').hidden = !spinner;
    els.studioCard.classList.toggle('is-ended', ended);
    els.previewIcon.hidden = !ended;
    if (ended && !els.previewIcon.firstChild) els.previewIcon.append(icon('check', 28));
    els.cameraRetry.hidden = !retry;
    els.onAir.hidden = studio.live !== 'live';
  }

  renderControls() {
    const studio = this.studio;
    if (!studio) return;
    const { els } = this;
    const ended = studio.ended;
    const hasStream = !!studio.stream;

    setToggle(els.toggleMic, studio.micOn, 'mic', 'micOff', 'controls.micOn', 'controls.micOff');
    setToggle(els.toggleCam, studio.camOn, 'camera', 'cameraOff', 'controls.camOn', 'controls.camOff');
    els.toggleMic.disabled = els.toggleCam.disabled = !hasStream;

    const live = studio.live;
    // While connecting the button cancels: a server that keeps refusing must not trap the teacher.
    els.goLive.disabled = ended || !hasStream;
    els.goLive.classList.toggle('is-live', live !== 'idle');
    els.goLive.querySelector('[data-icon]').replaceChildren(icon(live === 'idle' ? 'broadcast' : 'stop', 20));
    els.goLiveText.textContent =
      live === 'live' ? t('controls.stop') : live === 'connecting' ? t('controls.cancel') : t('controls.goLive');
    els.teacherName.disabled = live !== 'idle' || ended;

    // A screen is shared into the lesson, so it needs the seat.
    const sharing = studio.screen.active;
    const canShare = typeof navigator.mediaDevices?.getDisplayMedia === 'function';
    els.shareScreen.hidden = !canShare;
    els.shareScreen.disabled = !sharing && (live !== 'live' || studio.screen.starting);
    els.shareScreen.classList.toggle('is-sharing', sharing);
    els.shareScreen.setAttribute('aria-pressed', String(sharing));
    els.shareScreen.querySelector('[data-icon]').replaceChildren(icon(sharing ? 'screenOff' : 'screen', 18));
    els.shareScreenText.textContent = t(sharing ? 'screen.stop' : 'screen.share');
    els.shareScreen.title = live === 'live' || sharing ? '' : t('screen.needsLive');

    // An ended lesson is history: nothing left to broadcast or invite to.
    els.controls.hidden = ended;
    this.invites.renderEnded(ended);
    els.peopleCard.hidden = ended;
    els.handsCard.hidden = ended;
    els.remoteCard.hidden = ended;
    els.chatCard.hidden = ended;
    els.onAir.hidden = live !== 'live';
  }

  /** The live parts: what changed in the room decides what is drawn again. */
  renderLive(what) {
    const studio = this.studio;
    if (!studio) return;
    const all = what === 'joined';
    const room = studio.room;
    if (all || what === 'participants' || what === 'stage' || what === 'hands' || what === 'muted' || what === 'publications') {
      this.people.render(room, studio.restParticipants);
    }
    if (all || what === 'hands' || what === 'stage' || what === 'participants') this.hands.render();
    if (all || what !== 'chat') this.renderRemote();
    if (all || what === 'recording') this.renderRecording();
    if (all) {
      const { els } = this;
      els.chat.hidden = !this.chat;
      els.chatOffline.hidden = !!this.chat;
      if (!this.chat) els.chat.replaceChildren();
      this.renderLessonHead();
    }
  }

  /** The "recording" badge, and the moderator's button to start or stop it. */
  renderRecording() {
    const studio = this.studio;
    const room = studio?.room;
    const live = !!room?.joined && !studio.ended;
    const recording = live && room.recording;
    this.els.recordingBadge.hidden = !recording;
    this.els.recordToggle.hidden = !live || !room.isModerator;
    this.els.recordToggle.textContent = t(recording ? 'recording.stop' : 'recording.start');
    this.els.recordToggle.dataset.recording = String(recording);
  }

  renderRemote() {
    const studio = this.studio;
    if (!studio) return;
    this.remote.render(studio.seat, studio.mode);
  }

  // --- the teacher's presses ----------------------------------------------------------------

  confirmRemove(p) {
    const { els } = this;
    this.removing = p;
    els.removeTitle.textContent = t('people.removeTitle', { name: p.name });
    if (typeof els.removeDialog.showModal === 'function') els.removeDialog.showModal();
    else if (window.confirm(els.removeTitle.textContent)) this.removeParticipant();
  }

  removeParticipant() {
    const p = this.removing;
    this.removing = null;
    this.studio?.remove(p);
  }

  async endLesson() {
    const studio = this.studio;
    if (!studio) return;
    try {
      await studio.end();
    } catch (err) {
      if (this.handleAuthError(err)) return;
      toast(t('lesson.endFailed', { message: describe(err) }), 'error');
    }
  }

  wire() {
    const { els } = this;
    els.teacherName.value = readStored(NAME_STORAGE) || '';
    els.teacherName.addEventListener('change', () => writeStored(NAME_STORAGE, els.teacherName.value.trim()));

    els.toggleMic.addEventListener('click', () => this.studio?.toggleMic());
    els.toggleCam.addEventListener('click', () => this.studio?.toggleCam());
    els.shareScreen.addEventListener('click', () => this.studio?.toggleScreen());
    els.cameraRetry.addEventListener('click', () => this.studio?.startCamera());

    els.goLive.addEventListener('click', () => {
      const studio = this.studio;
      if (!studio) return;
      if (studio.live !== 'idle') {
        studio.stopLive();
        this.renderPreview();
        return;
      }
      const name = els.teacherName.value.trim() || t('role.teacher');
      writeStored(NAME_STORAGE, els.teacherName.value.trim());
      studio.goLive(name);
    });

    els.recordToggle.addEventListener('click', () => {
      if (this.studio && !this.studio.toggleRecording()) toast(t('error.offline'), 'error');
    });

    els.endLesson.addEventListener('click', () => {
      if (typeof els.endDialog.showModal === 'function') els.endDialog.showModal();
      else if (window.confirm(t('lesson.endConfirmTitle'))) this.endLesson();
    });
    els.endDialog.addEventListener('close', () => {
      if (els.endDialog.returnValue === 'end') this.endLesson();
    });
    els.removeDialog.addEventListener('close', () => {
      if (els.removeDialog.returnValue === 'remove') this.removeParticipant();
      else this.removing = null;
    });
  }
}

function setToggle(button, on, iconOn, iconOff, titleOn, titleOff) {
  button.classList.toggle('is-off', !on);
  button.setAttribute('aria-pressed', String(on));
  button.title = t(on ? titleOn : titleOff);
  button.setAttribute('aria-label', button.title);
  button.querySelector('[data-icon]').replaceChildren(icon(on ? iconOn : iconOff));
}

function readStored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeStored(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Not remembered; nothing else depends on it.
  }
}
