// Teacher console (`/`): lessons, the live studio for one lesson, classroom invitations.
//
// Routes live in the fragment: `#/` is the lesson list, `#/lessons/ID` one lesson. The admin key
// arrives once as `#key=...` (the link the server prints) and is then kept in localStorage.
// A teacher invite link (`/teacher#lesson=ID&token=JWT`) opens the studio for that lesson with
// its own token instead: going live works without the admin key, the admin parts are hidden.
//
// Going live = a teacher invite token from the REST API, a seat over /ws with it, and a
// publisher peer connection carrying camera + microphone. The seat rejoins by itself after a
// network drop; every `joined` rebuilds the peer connections (see signaling.js).

import { api, ApiError, adoptAdminKey, forgetAdminKey, readAdminKey, storeAdminKey } from './api.js';
import { $, h, icon, applyIcons, toast } from './dom.js';
import { t, applyI18n } from './i18n.js';
import { SignalingClient } from './signaling.js';
import { Publisher, Subscriber, openCameraAndMicrophone } from './media.js';

const NAME_STORAGE = 'classroom.teacherName';
const ROLE_ICONS = { teacher: 'teacher', classroom: 'school' };

const els = {
  connection: $('#connection'),
  connectionText: $('#connection-text'),
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
  endLesson: $('#end-lesson'),
  endDialog: $('#end-dialog'),
  preview: $('#preview'),
  previewMessage: $('#preview-message'),
  previewMessageText: $('#preview-message-text'),
  cameraRetry: $('#camera-retry'),
  onAir: $('#on-air'),
  toggleMic: $('#toggle-mic'),
  toggleCam: $('#toggle-cam'),
  teacherName: $('#teacher-name'),
  goLive: $('#go-live'),
  goLiveText: $('#go-live-text'),
  controls: $('#studio-controls'),
  inviteCard: $('#invite-card'),
  inviteTitle: $('#invite-title'),
  inviteLead: $('#invite-lead'),
  studio: $('#studio'),
  previewIcon: $('#preview-icon'),
  peopleCard: $('#people-card'),
  backLink: $('#back-link'),
  nameField: $('#name-field'),
  inviteForm: $('#invite-form'),
  inviteName: $('#invite-name'),
  inviteSubmit: $('#invite-submit'),
  inviteList: $('#invite-list'),
  inviteEmpty: $('#invite-empty'),
  participantList: $('#participant-list'),
  participantCount: $('#participant-count'),
  participantsEmpty: $('#participants-empty'),
};

/** The lesson open in the studio, with its camera and (when live) its seat in the lesson. */
let session = null;

// --- the studio session -------------------------------------------------------------------

class Session {
  constructor(lesson) {
    this.lesson = lesson;
    this.stream = null;
    this.cameraError = null;
    this.signaling = null;
    this.publisher = null;
    this.subscriber = null;
    this.you = null;
    this.participants = new Map(); // id -> ParticipantInfo
    this.restParticipants = [];
    this.live = 'idle'; // 'idle' | 'connecting' | 'live'
    this.micOn = true;
    this.camOn = true;
    this.inviteToken = null; // set when opened from a teacher invite link
    this.invites = [];
  }

  get id() {
    return this.lesson.id;
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
      const sig = new SignalingClient({ token, lesson: this.id });
      this.signaling = sig;
      sig.addEventListener('status', () => renderConnection());
      sig.addEventListener('joined', (e) => this.onJoined(e.detail));
      sig.addEventListener('participant_joined', (e) => {
        this.participants.set(e.detail.participant.id, e.detail.participant);
        renderParticipants();
      });
      sig.addEventListener('participant_left', (e) => {
        this.participants.delete(e.detail.participant_id);
        renderParticipants();
      });
      sig.addEventListener('offer', (e) => this.onServerOffer(e.detail));
      sig.addEventListener('candidate', (e) => this.subscriber?.addCandidate(e.detail.candidate));
      sig.addEventListener('lesson_ended', () => this.onEnded());
      sig.addEventListener('server-error', (e) =>
        toast(t('error.signaling', { message: e.detail.message || e.detail.code }), 'error'),
      );
      sig.addEventListener('fatal', (e) => {
        if (e.detail.code === 'lesson_ended') {
          this.onEnded();
          return;
        }
        toast(t('controls.liveFailed', { message: e.detail.message || e.detail.code }), 'error');
        this.stopLive();
      });
      await sig.start();
    } catch (err) {
      if (this.live === 'idle') return;
      toast(t('controls.liveFailed', { message: describe(err) }), 'error');
      this.stopLive();
    }
  }

  /** A (re)join: who is here now, then publish camera + microphone on a fresh connection. */
  async onJoined(joined) {
    this.you = joined.you;
    this.participants = new Map();
    for (const p of [joined.you, ...(joined.participants || [])]) this.participants.set(p.id, p);
    if (joined.lesson) this.lesson = { ...this.lesson, ...joined.lesson };
    renderLessonHead();
    renderParticipants();

    this.subscriber?.close();
    this.subscriber = null;
    this.publisher?.close();
    if (!this.stream) return;
    const pub = new Publisher(this.signaling);
    this.publisher = pub;
    pub.addEventListener('state', (e) => {
      if (this.publisher !== pub) return;
      if (e.detail === 'connected') this.setLive('live');
      else if (e.detail === 'failed') {
        // The media path broke while signaling still works: a fresh seat starts clean.
        this.setLive('connecting');
        this.signaling?.dropSocket();
      }
      renderConnection();
    });
    const items = [
      ...this.stream.getAudioTracks().map((track) => ({ track, source: 'microphone' })),
      ...this.stream.getVideoTracks().map((track) => ({ track, source: 'camera' })),
    ];
    try {
      await pub.publish(items, this.stream);
    } catch (err) {
      if (this.publisher !== pub || err.code === 'disconnected') return; // a rejoin follows
      toast(t('controls.liveFailed', { message: describe(err) }), 'error');
      this.stopLive();
    }
  }

  /** Others' media (classrooms that publish, in later modes): answer so the SFU is satisfied. */
  onServerOffer(msg) {
    if (!this.subscriber) this.subscriber = new Subscriber(this.signaling);
    this.subscriber.handleOffer(msg);
  }

  stopLive() {
    this.signaling?.close();
    this.signaling = null;
    this.publisher?.close();
    this.publisher = null;
    this.subscriber?.close();
    this.subscriber = null;
    this.participants = new Map();
    this.you = null;
    this.setLive('idle');
    renderParticipants();
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
  }

  /** Everything released: camera, seat, connections. */
  dispose() {
    this.stopLive();
    this.stopCamera();
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

function modeLabel(mode) {
  return mode ? t(`mode.${mode}`) : '';
}

/** "Mathematics · Grade 5 · Specialised delivery classroom", skipping what is not set. */
function metaLine(lesson) {
  return [lesson.subject, lesson.grade, modeLabel(lesson.mode)].filter((x) => x).join(' · ');
}

function stateBadge(el, state) {
  el.className = `badge badge-${state}`;
  el.textContent = t(`state.${state}`);
}

function renderConnection() {
  let status = 'offline';
  let text = t('conn.offline');
  if (session && session.live !== 'idle' && session.signaling) {
    const sig = session.signaling.status;
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

function renderLessonList(lessons) {
  els.lessonList.replaceChildren(
    ...lessons.map((lesson) =>
      h('li', {},
        h('a', { class: 'lesson-row', href: `#/lessons/${lesson.id}`, 'data-state': lesson.state, 'data-lesson-id': lesson.id },
          h('span', { class: 'lesson-avatar', 'aria-hidden': 'true' }, initial(lesson.subject || lesson.title)),
          h('span', { class: 'lesson-row-text' },
            h('div', { class: 'lesson-row-title' }, lesson.title),
            h('div', { class: 'lesson-row-meta' }, metaLine(lesson))),
          h('span', { class: `badge badge-${lesson.state}` }, t(`state.${lesson.state}`)),
          chevron())),
    ),
  );
  els.lessonsStatus.hidden = lessons.length > 0;
  els.lessonsStatus.textContent = t('lessons.empty');
}

function chevron() {
  const svg = icon('chevron', 18);
  svg.classList.add('chevron');
  return svg;
}

function initial(text) {
  const s = String(text || '').trim();
  return s ? Array.from(s)[0].toUpperCase() : '·';
}

function renderLesson() {
  renderLessonHead();
  renderPreview();
  renderControls();
  renderInvites();
  renderParticipants();
}

function renderLessonHead() {
  if (!session) return;
  const { lesson } = session;
  els.lessonTitle.textContent = lesson.title;
  els.lessonMeta.textContent = metaLine(lesson);
  stateBadge(els.lessonState, lesson.state);
  // Ending and inviting are admin calls; a teacher from an invite link has no key for them.
  const admin = !session.inviteToken;
  els.endLesson.hidden = lesson.state === 'ended' || !admin;
  els.inviteCard.hidden = !admin;
  els.backLink.hidden = !admin;
  els.nameField.hidden = !admin;
  document.title = `${lesson.title} · ${t('app.name')}`;
}

function renderPreview() {
  if (!session) return;
  const ended = session.lesson.state === 'ended';
  const stream = session.stream;
  if (els.preview.srcObject !== stream) els.preview.srcObject = stream;
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
  } else if (!session.camOn) {
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
  // An ended lesson is history: nothing left to broadcast or invite to.
  els.controls.hidden = ended;
  els.inviteForm.hidden = ended;
  els.peopleCard.hidden = ended;
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

function renderParticipants() {
  if (!session) return;
  const live = session.live !== 'idle' && session.you;
  const list = live ? [...session.participants.values()] : session.restParticipants;
  const order = { teacher: 0, assistant: 1, classroom: 2, student: 3 };
  list.sort(
    (a, b) => (order[a.role] ?? 9) - (order[b.role] ?? 9) || String(a.name).localeCompare(String(b.name)),
  );
  els.participantList.replaceChildren(
    ...list.map((p) =>
      h('li', { class: 'person', 'data-role': p.role, 'data-participant-id': p.id },
        h('span', { class: 'person-avatar' }, icon(ROLE_ICONS[p.role] || 'users', 18)),
        h('span', { class: 'person-name' }, p.name,
          session.you && p.id === session.you.id ? h('span', { class: 'you' }, ` (${t('people.you')})`) : null),
        h('span', { class: 'person-role' }, t(`role.${p.role}`))),
    ),
  );
  els.participantCount.textContent = String(list.length);
  els.participantsEmpty.hidden = list.length > 0;
  els.participantsEmpty.textContent = live ? t('people.empty') : t('people.offline');
}

// --- invitations (kept per lesson so a reload keeps the links) ----------------------------

function inviteKey(lessonId) {
  return `classroom.invites.${lessonId}`;
}

function loadInvites(lessonId) {
  try {
    const list = JSON.parse(localStorage.getItem(inviteKey(lessonId)) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function saveInvites(lessonId, list) {
  try {
    localStorage.setItem(inviteKey(lessonId), JSON.stringify(list.slice(-50)));
  } catch {
    // Links stay on screen for this visit.
  }
}

function renderInvites() {
  if (!session) return;
  const invites = session.invites || [];
  els.inviteList.replaceChildren(
    ...invites
      .slice()
      .reverse()
      .map((inv) => {
        const input = h('input', { class: 'invite-link', readonly: true, value: inv.url, 'aria-label': inv.name });
        input.addEventListener('focus', () => input.select());
        const copy = h('button', { class: 'btn btn-sm copy', type: 'button' }, icon('copy', 15), h('span', {}, t('invite.copy')));
        copy.addEventListener('click', () => copyLink(inv.url, input, copy));
        return h('li', { class: 'invite', 'data-classroom': inv.name },
          h('div', { class: 'invite-name' }, icon('school', 17), h('span', {}, inv.name)),
          h('div', { class: 'invite-link-row' }, input, copy));
      }),
  );
  els.inviteEmpty.hidden = invites.length > 0;
}

async function copyLink(url, input, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(url);
    ok = true;
  } catch {
    // Clipboard API refused (permissions, older browser): fall back to a selection copy.
    input.focus();
    input.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  if (!ok) return;
  button.classList.add('copied');
  button.replaceChildren(icon('check', 15), h('span', {}, t('invite.copied')));
  setTimeout(() => {
    button.classList.remove('copied');
    button.replaceChildren(icon('copy', 15), h('span', {}, t('invite.copy')));
  }, 2000);
}

// --- views --------------------------------------------------------------------------------

function showKeyView(error) {
  show(els.viewKey);
  els.keyError.hidden = !error;
  els.keyError.textContent = error || '';
  els.keyInput.focus();
}

/** A 401 anywhere means the stored key is wrong: ask again. */
function handleAuthError(err) {
  if (err instanceof ApiError && err.status === 401) {
    forgetAdminKey();
    showKeyView(t('key.invalid'));
    return true;
  }
  return false;
}

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
    // Live first, then upcoming, then the newest ended.
    const rank = { live: 0, scheduled: 1, ended: 2 };
    lessons.sort((a, b) => (rank[a.state] ?? 3) - (rank[b.state] ?? 3) || b.id - a.id);
    renderLessonList(lessons);
  } catch (err) {
    if (handleAuthError(err)) return;
    els.lessonsStatus.hidden = false;
    els.lessonsStatus.textContent = t('lessons.loadFailed', { message: describe(err) });
  }
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
    session.lesson = lesson;
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
  if (!readAdminKey()) {
    showKeyView();
    return;
  }
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

  const updateHint = () => {
    els.modeHint.textContent = t(`mode.${els.modeSelect.value}.hint`);
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
    };
    els.createError.hidden = true;
    els.createSubmit.disabled = true;
    try {
      const lesson = await api.createLesson(body);
      els.createForm.reset();
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

  els.inviteForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!session) return;
    const name = els.inviteName.value.trim();
    if (!name) return;
    const lessonId = session.id;
    els.inviteSubmit.disabled = true;
    try {
      const invite = await api.createInvite(lessonId, 'classroom', name);
      const url = invite.url || `${location.origin}/classroom#token=${encodeURIComponent(invite.token)}`;
      const list = [...loadInvites(lessonId), { name, url, expires_at: invite.expires_at }];
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

  window.addEventListener('hashchange', route);
  window.addEventListener('beforeunload', () => session?.dispose());
}

async function endLesson() {
  if (!session) return;
  const s = session;
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
    return {
      lessonId: session ? session.id : null,
      lessonState: session ? session.lesson.state : null,
      live: session ? session.live : 'idle',
      publishing: !!session && session.live === 'live' && session.publisher?.connectionState === 'connected',
      signaling: session?.signaling ? session.signaling.status : 'closed',
      participantId: session?.you ? session.you.id : null,
      participants: session ? [...session.participants.values()] : [],
      invites: session?.invites ? session.invites.length : 0,
      camera: !!session?.stream,
    };
  },
  /** The camera's outgoing layers as the browser sends them (see `Publisher.videoLayers`). */
  async videoLayers() {
    return session?.publisher ? session.publisher.videoLayers() : [];
  },
  /** The camera's own settings (what getUserMedia gave, before any layer scaling). */
  cameraSettings() {
    const track = session?.stream?.getVideoTracks()[0];
    return track ? track.getSettings() : null;
  },
};

applyI18n();
applyIcons();
adoptAdminKey();
wire();
route();
