// Teacher console (`/`): the schedule of lessons, and the live studio for one lesson.
//
// Routes live in the fragment: `#/` is the schedule, `#/lessons/ID` one lesson. The admin key
// arrives once as `#key=...` (the link the server prints) and is then kept in localStorage.
// A teacher invite link (`/teacher#lesson=ID&token=JWT`) opens the studio for that lesson with
// its own token instead: going live works without the admin key, the admin parts are hidden.
//
// Going live = a teacher invite token from the REST API and a seat in the lesson with it
// (session.js): camera + microphone go out on the publisher connection, a shared screen joins
// them as a publication of its own, and the others' media arrive on the subscriber connection.
// The studio shows what fits the lesson's mode (remote-view.js), raised hands (hands.js), who
// is here with the moderator's mute and remove (people.js), and the chat (chat.js).

import { api, ApiError, adoptAdminKey, forgetAdminKey, readAdminKey, storeAdminKey } from './api.js';
import { $, h, icon, applyIcons, toast } from './dom.js';
import { t, applyI18n } from './i18n.js';
import { LessonSession } from './session.js';
import { AudioSink, openCameraAndMicrophone } from './media.js';
import { ScreenShare } from './screenshare.js';
import { ChatPanel } from './chat.js';
import { HandsPanel } from './hands.js';
import { PeoplePanel } from './people.js';
import { RemoteView } from './remote-view.js';
import { renderSchedule, metaLine, scheduledAt } from './schedule.js';
import { loadInvites, saveInvites, inviteUrl, renderInviteList } from './invites.js';
import { mountLanguageSwitch } from './langswitch.js';

const NAME_STORAGE = 'classroom.teacherName';

const els = {
  connection: $('#connection'),
  connectionText: $('#connection-text'),
  lang: $('#lang'),
  account: $('#account'),
  accountName: $('#account-name'),
  signout: $('#signout'),
  viewKey: $('#view-key'),
  viewLessons: $('#view-lessons'),
  viewLesson: $('#view-lesson'),
  keyForm: $('#key-form'),
  keyInput: $('#key-input'),
  keyError: $('#key-error'),
  lessonList: $('#lesson-list'),
  lessonsStatus: $('#lessons-status'),
  refreshLessons: $('#refresh-lessons'),
  createForm: $('#create-lesson'),
  createError: $('#create-error'),
  createSubmit: $('#create-lesson-submit'),
  modeSelect: $('#lesson-mode-input'),
  modeHint: $('#mode-hint'),
  lessonTitle: $('#lesson-title'),
  lessonMeta: $('#lesson-meta'),
  lessonState: $('#lesson-state'),
  recordingBadge: $('#recording-badge'),
  recordToggle: $('#record-toggle'),
  recordInput: $('#lesson-record-input'),
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
  studio: $('#studio'),
  previewIcon: $('#preview-icon'),
  backLink: $('#back-link'),
  nameField: $('#name-field'),
  remoteCard: $('#remote-card'),
  handsCard: $('#hands-card'),
  peopleCard: $('#people-card'),
  chatCard: $('#chat-card'),
  chat: $('#chat'),
  chatOffline: $('#chat-offline'),
  inviteCard: $('#invite-card'),
  inviteTitle: $('#invite-title'),
  inviteLead: $('#invite-lead'),
  inviteForm: $('#invite-form'),
  inviteRole: $('#invite-role'),
  inviteName: $('#invite-name'),
  inviteSubmit: $('#invite-submit'),
  inviteList: $('#invite-list'),
  inviteEmpty: $('#invite-empty'),
  removeDialog: $('#remove-dialog'),
  removeTitle: $('#remove-title'),
  audioSink: $('#audio-sink'),
};

const hands = new HandsPanel(
  { list: $('#hands-list'), count: $('#hands-count'), empty: $('#hands-empty'), lowerAll: $('#lower-all') },
  null,
);
const people = new PeoplePanel(
  { list: $('#participant-list'), count: $('#participant-count'), empty: $('#participants-empty') },
  { remove: (p) => confirmRemove(p) },
);
const remote = new RemoteView({
  title: $('#remote-title'),
  lead: $('#remote-lead'),
  grid: $('#remote-tiles'),
  empty: $('#remote-empty'),
  pending: $('#remote-pending'),
});

/** The lesson open in the studio, with its camera and (when live) its seat in the lesson. */
let session = null;
/** The participant the remove dialog asks about. */
let removing = null;

// --- the studio session -------------------------------------------------------------------

class Session {
  constructor(lesson) {
    this.lesson = lesson;
    this.stream = null;
    this.cameraError = null;
    this.seat = null; // LessonSession while live
    this.chat = null; // ChatPanel of the seat
    this.restParticipants = [];
    this.live = 'idle'; // 'idle' | 'connecting' | 'live'
    this.micOn = true;
    this.camOn = true;
    this.inviteToken = null; // set when opened from a teacher invite link
    this.invites = [];
    this.screen = new ScreenShare();
    this.screen.addEventListener('change', () => this.onScreenChange());
    this.audio = new AudioSink(els.audioSink);
  }

  get id() {
    return this.lesson.id;
  }

  get room() {
    return this.seat ? this.seat.room : null;
  }

  get mode() {
    return (this.room && this.room.mode) || this.lesson.mode || '';
  }

  async startCamera() {
    if (this.stream) return;
    this.cameraError = null;
    renderPreview();
    try {
      const stream = await openCameraAndMicrophone();
      if (session !== this) {
        stream.getTracks().forEach((tr) => tr.stop());
        return;
      }
      this.stream = stream;
      this.applyToggles();
    } catch (err) {
      this.cameraError = err;
    }
    renderPreview();
    renderControls();
  }

  stopCamera() {
    if (this.stream) this.stream.getTracks().forEach((tr) => tr.stop());
    this.stream = null;
  }

  applyToggles() {
    if (!this.stream) return;
    for (const tr of this.stream.getAudioTracks()) tr.enabled = this.micOn;
    for (const tr of this.stream.getVideoTracks()) tr.enabled = this.camOn;
  }

  async goLive(name) {
    if (!this.stream || this.live !== 'idle') return;
    this.setLive('connecting');
    try {
      const token = this.inviteToken ?? (await api.createInvite(this.id, 'teacher', name)).token;
      if (this.live !== 'connecting') return; // stopped meanwhile
      this.join(token);
    } catch (err) {
      if (this.live === 'idle') return;
      toast(t('controls.liveFailed', { message: describe(err) }), 'error');
      this.stopLive();
    }
  }

  join(token) {
    const seat = new LessonSession({ token, lesson: this.id });
    this.seat = seat;
    this.chat = new ChatPanel(els.chat, seat.room);
    hands.room = seat.room;
    const mine = (fn) => (e) => {
      if (this.seat === seat) fn(e);
    };
    seat.addEventListener('status', mine(() => renderConnection()));
    seat.addEventListener('joined', mine(() => this.onJoined()));
    seat.addEventListener('publisher-state', mine((e) => {
      if (e.detail === 'connected') this.setLive('live');
      else if (e.detail === 'failed') this.setLive('connecting');
      renderConnection();
    }));
    seat.addEventListener('media', mine(() => this.onMedia()));
    seat.addEventListener('ended', mine(() => this.onEnded()));
    seat.addEventListener('removed', mine(() => {
      toast(t('lesson.youWereRemoved'), 'error');
      this.stopLive();
    }));
    seat.addEventListener('fatal', mine((e) => {
      toast(t('controls.liveFailed', { message: e.detail.message || e.detail.code }), 'error');
      this.stopLive();
    }));
    const room = seat.room;
    room.addEventListener('change', mine((e) => renderLive(e.detail.what)));
    room.addEventListener('declined', mine((e) => {
      const p = room.participant(e.detail.participantId);
      if (p) toast(t('stage.declinedBy', { name: p.name }), 'info');
    }));
    room.addEventListener('error', mine((e) => toast(t('error.signaling', { message: e.detail.message || e.detail.code }), 'error')));
    room.addEventListener('command-error', mine((e) => toast(describeCommandError(e.detail), 'error')));
    room.addEventListener('recording-error', mine((e) => toast(t('recording.failed', { message: e.detail.message }), 'error', 15000)));
    seat.start();
  }

  /** A (re)join: who is here now, then camera + microphone (and a shared screen) go out anew. */
  async onJoined() {
    const seat = this.seat;
    if (seat.room.lesson) this.lesson = { ...this.lesson, ...seat.room.lesson };
    renderLessonHead();
    renderLive('joined');
    if (!this.stream) return;
    const pub = seat.ensurePublisher();
    const items = [
      ...this.stream.getAudioTracks().map((track) => ({ track, source: 'microphone' })),
      ...this.stream.getVideoTracks().map((track) => ({ track, source: 'camera' })),
    ];
    try {
      await pub.publish(items, this.stream);
      if (this.screen.active && seat.publisher === pub) await pub.add([{ track: this.screen.track, source: 'screen' }], this.screen.stream);
    } catch (err) {
      if (seat.publisher !== pub || err.code === 'disconnected' || err.code === 'closed') return; // a rejoin follows
      toast(t('controls.liveFailed', { message: describe(err) }), 'error');
      this.stopLive();
    }
  }

  onMedia() {
    this.audio.sync(this.seat ? this.seat.received().filter((r) => r.kind === 'audio').map((r) => r.track) : []);
    renderRemote();
  }

  async toggleScreen() {
    if (this.screen.active) {
      this.screen.stop();
      return;
    }
    await this.screen.start();
    if (this.screen.error) toast(t('screen.failed', { message: describe(this.screen.error) }), 'error');
  }

  /** The share started or stopped (from the console or the browser's own bar). */
  async onScreenChange() {
    renderControls();
    renderPreview();
    const pub = this.seat?.publisher;
    if (!pub || this.live === 'idle') return;
    try {
      if (this.screen.active && !pub.sources().has('screen')) {
        await pub.add([{ track: this.screen.track, source: 'screen' }], this.screen.stream);
      } else if (!this.screen.active && pub.sources().has('screen')) {
        await pub.remove('screen');
      }
    } catch (err) {
      if (err.code === 'disconnected' || err.code === 'closed') return; // the rejoin shares it again
      toast(t('screen.failed', { message: describe(err) }), 'error');
      this.screen.stop();
    }
  }

  stopLive() {
    const seat = this.seat;
    this.seat = null;
    seat?.close();
    this.chat = null;
    hands.room = null;
    this.audio.clear();
    this.screen.stop();
    this.setLive('idle');
    renderLive('joined');
  }

  onEnded() {
    const already = this.lesson.state === 'ended';
    this.stopLive();
    this.stopCamera();
    this.lesson = { ...this.lesson, state: 'ended' };
    renderLesson();
    if (!already) toast(t('lesson.ended'), 'info');
  }

  setLive(live) {
    this.live = live;
    renderControls();
    renderConnection();
    renderPreview();
  }

  /** Everything released: camera, screen, seat, connections. */
  dispose() {
    this.stopLive();
    this.stopCamera();
  }
}

function describeCommandError(err) {
  switch (err.code) {
    case 'stage_full':
      return t('stage.full');
    case 'not_found':
      return t('people.gone');
    default:
      return t('error.signaling', { message: err.message || err.code });
  }
}

// --- rendering ----------------------------------------------------------------------------

function show(view) {
  for (const v of [els.viewKey, els.viewLessons, els.viewLesson]) v.hidden = v !== view;
}

function describe(err) {
  if (err instanceof ApiError && err.status === 0) return t('error.network');
  return (err && err.message) || String(err);
}

function stateBadge(el, state) {
  el.className = `badge badge-${state}`;
  el.textContent = t(`state.${state}`);
}

function renderConnection() {
  let status = 'offline';
  let text = t('conn.offline');
  if (session && session.live !== 'idle' && session.seat) {
    const sig = session.seat.status;
    if (sig === 'reconnecting') {
      status = 'reconnecting';
      text = t('conn.reconnecting');
    } else if (session.live === 'live' && sig === 'open') {
      status = 'live';
      text = t('conn.live');
    } else {
      status = 'connecting';
      text = t('conn.connecting');
    }
  } else if (session && session.live === 'connecting') {
    status = 'connecting';
    text = t('conn.connecting');
  }
  els.connection.dataset.status = status;
  els.connectionText.textContent = text;
}

function renderLesson() {
  renderLessonHead();
  renderPreview();
  renderControls();
  renderInvites();
  renderLive('joined');
}

function renderLessonHead() {
  if (!session) return;
  const { lesson } = session;
  els.lessonTitle.textContent = lesson.title;
  els.lessonMeta.textContent = metaLine(lesson);
  stateBadge(els.lessonState, lesson.state);
  // Inviting is an admin call; a teacher from an invite link has no key for it. Ending works
  // for both: over the socket when live.
  const admin = !session.inviteToken;
  els.endLesson.hidden = lesson.state === 'ended' || (!admin && !session.seat);
  els.inviteCard.hidden = !admin;
  els.backLink.hidden = !admin;
  els.nameField.hidden = !admin;
  els.viewLesson.dataset.mode = session.mode;
  renderRecording();
  document.title = `${lesson.title} · ${t('app.name')}`;
}

function renderPreview() {
  if (!session) return;
  const ended = session.lesson.state === 'ended';
  const stream = session.stream;
  if (els.preview.srcObject !== stream) els.preview.srcObject = stream;
  const sharing = session.screen.stream;
  if (els.previewScreen.srcObject !== sharing) els.previewScreen.srcObject = sharing;
  els.previewScreen.hidden = !sharing;
  els.studio.classList.toggle('is-sharing', !!sharing);
  let message = null;
  let retry = false;
  let spinner = false;
  if (ended) {
    message = t('lesson.ended');
  } else if (session.cameraError) {
    const name = session.cameraError.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') message = t('camera.denied');
    else if (name === 'NotFoundError' || name === 'OverconstrainedError') message = t('camera.missing');
    else message = t('camera.failed', { message: session.cameraError.message || name });
    retry = true;
  } else if (!stream) {
    message = t('camera.starting');
    spinner = true;
  } else if (!session.camOn && !sharing) {
    message = t('camera.off');
  }
  els.previewMessage.hidden = message === null;
  els.previewMessageText.textContent = message || '';
  els.previewMessage.querySelector('.spinner').hidden = !spinner;
  els.studio.classList.toggle('is-ended', ended);
  els.previewIcon.hidden = !ended;
  if (ended && !els.previewIcon.firstChild) els.previewIcon.append(icon('check', 28));
  els.cameraRetry.hidden = !retry;
  els.onAir.hidden = session.live !== 'live';
}

function renderControls() {
  if (!session) return;
  const ended = session.lesson.state === 'ended';
  const hasStream = !!session.stream;

  setToggle(els.toggleMic, session.micOn, 'mic', 'micOff', 'controls.micOn', 'controls.micOff');
  setToggle(els.toggleCam, session.camOn, 'camera', 'cameraOff', 'controls.camOn', 'controls.camOff');
  els.toggleMic.disabled = els.toggleCam.disabled = !hasStream;

  const live = session.live;
  // While connecting the button cancels: a server that keeps refusing must not trap the teacher.
  els.goLive.disabled = ended || !hasStream;
  els.goLive.classList.toggle('is-live', live !== 'idle');
  els.goLive.querySelector('[data-icon]').replaceChildren(icon(live === 'idle' ? 'broadcast' : 'stop', 20));
  els.goLiveText.textContent =
    live === 'live' ? t('controls.stop') : live === 'connecting' ? t('controls.cancel') : t('controls.goLive');
  els.teacherName.disabled = live !== 'idle' || ended;

  // A screen is shared into the lesson, so it needs the seat.
  const sharing = session.screen.active;
  const canShare = typeof navigator.mediaDevices?.getDisplayMedia === 'function';
  els.shareScreen.hidden = !canShare;
  els.shareScreen.disabled = !sharing && (live !== 'live' || session.screen.starting);
  els.shareScreen.classList.toggle('is-sharing', sharing);
  els.shareScreen.setAttribute('aria-pressed', String(sharing));
  els.shareScreen.querySelector('[data-icon]').replaceChildren(icon(sharing ? 'screenOff' : 'screen', 18));
  els.shareScreenText.textContent = t(sharing ? 'screen.stop' : 'screen.share');
  els.shareScreen.title = live === 'live' || sharing ? '' : t('screen.needsLive');

  // An ended lesson is history: nothing left to broadcast or invite to.
  els.controls.hidden = ended;
  els.inviteForm.hidden = ended;
  els.peopleCard.hidden = ended;
  els.handsCard.hidden = ended;
  els.remoteCard.hidden = ended;
  els.chatCard.hidden = ended;
  els.inviteTitle.textContent = t(ended ? 'invite.history' : 'invite.title');
  els.inviteLead.hidden = ended;
  els.onAir.hidden = live !== 'live';
}

function setToggle(button, on, iconOn, iconOff, titleOn, titleOff) {
  button.classList.toggle('is-off', !on);
  button.setAttribute('aria-pressed', String(on));
  button.title = t(on ? titleOn : titleOff);
  button.setAttribute('aria-label', button.title);
  button.querySelector('[data-icon]').replaceChildren(icon(on ? iconOn : iconOff));
}

/** The live parts: what changed in the room decides what is drawn again. */
function renderLive(what) {
  if (!session) return;
  const all = what === 'joined';
  const room = session.room;
  if (all || what === 'participants' || what === 'stage' || what === 'hands' || what === 'muted' || what === 'publications') {
    people.render(room, session.restParticipants);
  }
  if (all || what === 'hands' || what === 'stage' || what === 'participants') hands.render();
  if (all || what !== 'chat') renderRemote();
  if (all || what === 'recording') renderRecording();
  if (all) {
    els.chat.hidden = !session.chat;
    els.chatOffline.hidden = !!session.chat;
    if (!session.chat) els.chat.replaceChildren();
    renderLessonHead();
  }
}

/** The "recording" badge, and the moderator's button to start or stop it. */
function renderRecording() {
  const room = session?.room;
  const live = !!room?.joined && session.lesson.state !== 'ended';
  const recording = live && room.recording;
  els.recordingBadge.hidden = !recording;
  els.recordToggle.hidden = !live || !room.isModerator;
  els.recordToggle.textContent = t(recording ? 'recording.stop' : 'recording.start');
  els.recordToggle.dataset.recording = String(recording);
}

function toggleRecording() {
  const room = session?.room;
  if (!room?.joined) return;
  const sent = room.command({ type: room.recording ? 'stop_recording' : 'start_recording' });
  if (!sent) toast(t('error.offline'), 'error');
}

function renderRemote() {
  if (!session) return;
  remote.render(session.seat, session.mode);
}

// --- invitations ---------------------------------------------------------------------------

function renderInvites() {
  if (session) renderInviteList(els.inviteList, els.inviteEmpty, session.invites || []);
}

function renderInviteForm() {
  const role = els.inviteRole.value;
  els.inviteName.placeholder = t(role === 'classroom' ? 'invite.namePh' : 'invite.personPh');
  els.inviteName.setAttribute('aria-label', t(role === 'classroom' ? 'invite.name' : 'invite.personName'));
}

// --- moderation ---------------------------------------------------------------------------

function confirmRemove(p) {
  removing = p;
  els.removeTitle.textContent = t('people.removeTitle', { name: p.name });
  if (typeof els.removeDialog.showModal === 'function') els.removeDialog.showModal();
  else if (window.confirm(els.removeTitle.textContent)) removeParticipant();
}

function removeParticipant() {
  const p = removing;
  removing = null;
  if (!p || !session?.room) return;
  session.room.command({ type: 'remove', participant_id: p.id });
}

// --- views --------------------------------------------------------------------------------

function showKeyView(error) {
  show(els.viewKey);
  els.keyError.hidden = !error;
  els.keyError.textContent = error || '';
  els.keyInput.focus();
}

/**
 * A 401 anywhere: with a stored API key the key is wrong, so ask again; without one the
 * session is missing or over, and api.js has already sent the page to sign in.
 */
function handleAuthError(err) {
  if (!(err instanceof ApiError) || err.status !== 401) return false;
  if (readAdminKey()) {
    forgetAdminKey();
    showKeyView(t('key.invalid'));
  }
  return true;
}

/** Shows who is signed in (not with an API key, which is nobody) and offers signing out. */
async function showAccount() {
  if (readAdminKey()) return;
  try {
    const me = await api.me();
    if (!me.account) return;
    els.accountName.textContent = me.account.display_name || me.account.username || '';
    els.account.hidden = false;
  } catch {
    // Not signed in: the first API call sends the page to the sign-in page.
  }
}

async function signOut() {
  try {
    await api.signOut();
  } catch (err) {
    toast(describe(err), 'error');
    return;
  }
  session?.dispose();
  session = null;
  location.assign('/signin.html');
}

let lastLessons = null;

async function showLessons() {
  if (session && session.live === 'idle') {
    session.dispose();
    session = null;
  }
  document.title = `${t('app.teacherConsole')} · ${t('app.name')}`;
  show(els.viewLessons);
  await loadLessons();
}

async function loadLessons() {
  els.lessonsStatus.hidden = false;
  if (!els.lessonList.children.length) els.lessonsStatus.textContent = t('lessons.loading');
  try {
    const lessons = await api.listLessons();
    lastLessons = Array.isArray(lessons) ? lessons : [];
    renderLessonList();
  } catch (err) {
    if (handleAuthError(err)) return;
    els.lessonsStatus.hidden = false;
    els.lessonsStatus.textContent = t('lessons.loadFailed', { message: describe(err) });
  }
}

function renderLessonList() {
  if (!lastLessons) return;
  const shown = renderSchedule(els.lessonList, lastLessons);
  els.lessonsStatus.hidden = shown > 0;
  els.lessonsStatus.textContent = t('lessons.empty');
}

async function openLesson(id) {
  if (session && session.id !== id) {
    session.dispose();
    session = null;
  }
  let lesson;
  try {
    lesson = await api.getLesson(id);
  } catch (err) {
    if (handleAuthError(err)) return;
    toast(err.status === 404 ? t('lesson.notFound') : describe(err), 'error');
    location.hash = '#/';
    return;
  }
  if (!session) {
    session = new Session(lesson);
    session.invites = loadInvites(id);
  } else {
    session.lesson = { ...session.lesson, ...lesson };
  }
  session.restParticipants = Array.isArray(lesson.participants) ? lesson.participants : [];
  show(els.viewLesson);
  renderLesson();
  if (session.lesson.state !== 'ended') session.startCamera();
}

/** `#lesson=ID&token=JWT` from a teacher invite link, or null. */
function readTeacherInvite() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = params.get('token');
  const lesson = Number(params.get('lesson'));
  return token && Number.isSafeInteger(lesson) && lesson > 0 ? { token, lesson } : null;
}

/** The studio for a lesson we know only by its invite; the rest arrives with `joined`. */
function openInvitedStudio({ token, lesson: id }) {
  if (session && (session.id !== id || session.inviteToken !== token)) {
    session.dispose();
    session = null;
  }
  if (!session) {
    session = new Session({ id, title: t('lesson.placeholderTitle', { id }), subject: '', grade: '', mode: '', state: 'scheduled' });
    session.inviteToken = token;
  }
  show(els.viewLesson);
  renderLesson();
  session.startCamera();
}

function route() {
  const invite = readTeacherInvite();
  if (invite) {
    openInvitedStudio(invite);
    return;
  }
  // Signed in or holding the API key; with neither, the first API call goes to sign in.
  const m = location.hash.match(/^#\/lessons\/(\d+)/);
  if (m) openLesson(Number(m[1]));
  else showLessons();
}

// --- wiring -------------------------------------------------------------------------------

function wire() {
  els.keyForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = els.keyInput.value.trim();
    if (!key) return;
    storeAdminKey(key);
    els.keyInput.value = '';
    route();
  });

  els.refreshLessons.addEventListener('click', () => loadLessons());

  // Recording is on by default where the server defaults it (network lessons); the teacher may
  // change it, and a later change of mode no longer overrides that choice.
  let recordTouched = false;
  els.recordInput.addEventListener('change', () => {
    recordTouched = true;
  });
  const updateHint = () => {
    els.modeHint.textContent = t(`mode.${els.modeSelect.value}.hint`);
    if (!recordTouched) els.recordInput.checked = els.modeSelect.value === 'network';
  };
  els.modeSelect.addEventListener('change', updateHint);
  updateHint();

  els.createForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = new FormData(els.createForm);
    const body = {
      title: String(form.get('title') || '').trim(),
      subject: String(form.get('subject') || '').trim(),
      grade: String(form.get('grade') || '').trim(),
      mode: String(form.get('mode') || 'delivery'),
      record: els.recordInput.checked,
    };
    const when = scheduledAt(String(form.get('scheduled_at') || ''));
    if (when) body.scheduled_at = when;
    els.createError.hidden = true;
    els.createSubmit.disabled = true;
    try {
      const lesson = await api.createLesson(body);
      els.createForm.reset();
      recordTouched = false;
      updateHint();
      location.hash = `#/lessons/${lesson.id}`;
    } catch (err) {
      if (handleAuthError(err)) return;
      els.createError.hidden = false;
      els.createError.textContent = t('create.failed', { message: describe(err) });
    } finally {
      els.createSubmit.disabled = false;
    }
  });

  els.teacherName.value = readStored(NAME_STORAGE) || '';
  els.teacherName.addEventListener('change', () => writeStored(NAME_STORAGE, els.teacherName.value.trim()));

  els.toggleMic.addEventListener('click', () => {
    if (!session) return;
    session.micOn = !session.micOn;
    session.applyToggles();
    renderControls();
  });
  els.toggleCam.addEventListener('click', () => {
    if (!session) return;
    session.camOn = !session.camOn;
    session.applyToggles();
    renderControls();
    renderPreview();
  });
  els.shareScreen.addEventListener('click', () => session?.toggleScreen());
  els.cameraRetry.addEventListener('click', () => session?.startCamera());

  els.goLive.addEventListener('click', () => {
    if (!session) return;
    if (session.live !== 'idle') {
      session.stopLive();
      renderPreview();
      return;
    }
    const name = els.teacherName.value.trim() || t('role.teacher');
    writeStored(NAME_STORAGE, els.teacherName.value.trim());
    session.goLive(name);
  });

  els.inviteRole.addEventListener('change', renderInviteForm);
  renderInviteForm();
  els.inviteForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!session) return;
    const name = els.inviteName.value.trim();
    if (!name) return;
    const role = els.inviteRole.value;
    const lessonId = session.id;
    els.inviteSubmit.disabled = true;
    try {
      const invite = await api.createInvite(lessonId, role, name);
      const url = inviteUrl(role, invite);
      const list = [...loadInvites(lessonId), { name, role, url, expires_at: invite.expires_at }];
      saveInvites(lessonId, list);
      if (session && session.id === lessonId) {
        session.invites = list;
        renderInvites();
      }
      els.inviteName.value = '';
    } catch (err) {
      if (handleAuthError(err)) return;
      toast(t('invite.failed', { message: describe(err) }), 'error');
    } finally {
      els.inviteSubmit.disabled = false;
    }
  });

  els.endLesson.addEventListener('click', () => {
    if (typeof els.endDialog.showModal === 'function') els.endDialog.showModal();
    else if (window.confirm(t('lesson.endConfirmTitle'))) endLesson();
  });
  els.endDialog.addEventListener('close', () => {
    if (els.endDialog.returnValue === 'end') endLesson();
  });
  els.removeDialog.addEventListener('close', () => {
    if (els.removeDialog.returnValue === 'remove') removeParticipant();
    else removing = null;
  });

  mountLanguageSwitch(els.lang, () => {
    renderConnection();
    renderLessonList();
    updateHint();
    renderInviteForm();
    if (session) {
      renderLesson();
      session.chat?.render();
    }
    document.title = session ? `${session.lesson.title} · ${t('app.name')}` : `${t('app.teacherConsole')} · ${t('app.name')}`;
  });

  window.addEventListener('hashchange', route);
  window.addEventListener('beforeunload', () => session?.dispose());
}

async function endLesson() {
  if (!session) return;
  const s = session;
  // A teacher from an invite link has no REST access: the seat ends the lesson over the socket
  // and hears `lesson_ended` like everyone else.
  if (s.inviteToken) {
    if (!s.room || !s.room.command({ type: 'end_lesson' })) toast(t('lesson.endFailed', { message: t('error.offline') }), 'error');
    return;
  }
  try {
    const lesson = await api.endLesson(s.id);
    // The seat may have heard `lesson_ended` before this reply and said so already.
    const already = s.lesson.state === 'ended';
    s.lesson = { ...s.lesson, ...lesson, state: 'ended' };
    s.dispose();
    renderLesson();
    renderConnection();
    if (!already) toast(t('lesson.ended'), 'success');
  } catch (err) {
    if (handleAuthError(err)) return;
    toast(t('lesson.endFailed', { message: describe(err) }), 'error');
  }
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

// Test and support hook: what the console is doing, without reaching into its internals.
window.teacherDebug = {
  state() {
    const room = session?.room;
    return {
      lessonId: session ? session.id : null,
      lessonState: session ? session.lesson.state : null,
      mode: session ? session.mode : null,
      live: session ? session.live : 'idle',
      publishing: !!session && session.live === 'live' && session.seat?.publisher?.connectionState === 'connected',
      sending: session?.seat?.publisher ? [...session.seat.publisher.sources()] : [],
      sharingScreen: !!session?.screen.active,
      signaling: session?.seat ? session.seat.status : 'closed',
      participantId: room?.you ? room.you.id : null,
      participants: room ? [...room.participants.values()] : [],
      hands: room ? room.hands.map((x) => x.participant_id) : [],
      stage: room ? room.stage.slice() : [],
      invited: room ? [...room.invited] : [],
      reconnecting: room ? [...room.reconnecting] : [],
      recording: room ? room.recording : false,
      publications: room ? [...room.publications.values()] : [],
      chat: room ? room.chat.map((m) => ({ id: m.id, text: m.text, from: m.from?.name })) : [],
      tiles: [...remote.grid.tiles.values()].map((tile) => ({
        participantId: Number(tile.el.dataset.participantId),
        video: !!tile.track,
      })),
      invites: session?.invites ? session.invites.length : 0,
      camera: !!session?.stream,
    };
  },
  /** The camera's outgoing layers as the browser sends them (see `Publisher.videoLayers`). */
  async videoLayers() {
    return session?.seat?.publisher ? session.seat.publisher.videoLayers() : [];
  },
  /** The camera's own settings (what getUserMedia gave, before any layer scaling). */
  cameraSettings() {
    const track = session?.stream?.getVideoTracks()[0];
    return track ? track.getSettings() : null;
  },
  /** The publisher connection's current offer and the SFU's answer (support: negotiation problems). */
  publisherSdp() {
    const pc = session?.seat?.publisher?.pc;
    return pc ? { offer: pc.localDescription?.sdp || null, answer: pc.remoteDescription?.sdp || null } : null;
  },
  /** What one publication brought this console (packets, decoded frames); null if not received. */
  publicationStats(publicationId) {
    return session?.seat ? session.seat.publicationStats(publicationId) : null;
  },
};

applyI18n();
applyIcons();
adoptAdminKey();
wire();
els.signout.addEventListener('click', signOut);
els.recordToggle.addEventListener('click', toggleRecording);
showAccount();
route();
