// Teacher console (`/`): the schedule of lessons, and the live studio for one lesson.
//
// Routes live in the fragment: `#/` is the schedule, `#/lessons/ID` one lesson. The admin key
// arrives once as `#key=...` (the link the server prints) and is then kept in localStorage.
// A teacher invite link (`/teacher#lesson=ID&token=JWT`) opens the studio for that lesson with
// its own token instead: going live works without the admin key, the admin parts are hidden.
//
// This file is the page's wiring: routing between the views, the admin-key view, who is signed
// in, what a 401 means, the language switch, and the test and support hook. The parts:
//   schedule-view.js  the schedule: the lessons and the create form
//   studio.js         the live studio's state (camera, screen, going live, the seat); it emits
//                     what changed
//   studio-view.js    renders the studio and hands the teacher's presses to it
//   invite-panel.js   the studio's invite card

import { api, ApiError, adoptAdminKey, forgetAdminKey, readAdminKey, storeAdminKey } from './api.js';
import { $, applyIcons, toast } from './dom.js';
import { t, applyI18n } from './i18n.js';
import { loadInvites } from './invites.js';
import { mountLanguageSwitch } from './langswitch.js';
import { ScheduleView } from './schedule-view.js';
import { Studio, describe } from './studio.js';
import { StudioView } from './studio-view.js';
import { InvitePanel } from './invite-panel.js';

const els = {
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
  audioSink: $('#audio-sink'),
};

/** The lesson open in the studio, with its camera and (when live) its seat in the lesson. */
let studio = null;
/** Set up once the page's texts are in place (see the end of this file). */
let schedule = null;
let invites = null;
let studioView = null;

/** Shows `next` in the studio (or none); the one before is the caller's to release. */
function setStudio(next) {
  studio = next;
  if (studioView.studio !== next) studioView.attach(next);
}

/** Lets go of the studio for good: camera, screen, seat, connections. */
function dropStudio() {
  studio.close();
  setStudio(null);
}

function show(view) {
  for (const v of [els.viewKey, els.viewLessons, els.viewLesson]) v.hidden = v !== view;
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
  if (studio) dropStudio();
  location.assign('/signin.html');
}

async function showLessons() {
  if (studio && studio.live === 'idle') dropStudio();
  document.title = `${t('app.teacherConsole')} · ${t('app.name')}`;
  show(els.viewLessons);
  await schedule.load();
}

async function openLesson(id) {
  if (studio && studio.id !== id) dropStudio();
  let lesson;
  try {
    lesson = await api.getLesson(id);
  } catch (err) {
    if (handleAuthError(err)) return;
    toast(err.status === 404 ? t('lesson.notFound') : describe(err), 'error');
    location.hash = '#/';
    return;
  }
  if (!studio) {
    const next = new Studio(lesson, els.audioSink);
    next.invites = loadInvites(id);
    setStudio(next);
  } else {
    studio.lesson = { ...studio.lesson, ...lesson };
  }
  studio.restParticipants = Array.isArray(lesson.participants) ? lesson.participants : [];
  show(els.viewLesson);
  studioView.renderLesson();
  if (!studio.ended) studio.startCamera();
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
  if (studio && (studio.id !== id || studio.inviteToken !== token)) dropStudio();
  if (!studio) {
    const next = new Studio({ id, title: t('lesson.placeholderTitle', { id }), subject: '', grade: '', mode: '', state: 'scheduled' }, els.audioSink);
    next.inviteToken = token;
    setStudio(next);
  }
  show(els.viewLesson);
  studioView.renderLesson();
  studio.startCamera();
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
  els.signout.addEventListener('click', signOut);

  mountLanguageSwitch(els.lang, () => {
    studioView.renderConnection();
    schedule.relabel();
    invites.renderForm();
    studioView.relabel();
    document.title = studio ? `${studio.lesson.title} · ${t('app.name')}` : `${t('app.teacherConsole')} · ${t('app.name')}`;
  });

  window.addEventListener('hashchange', route);
  window.addEventListener('beforeunload', () => studio?.dispose());
}

// Test and support hook: what the console is doing, without reaching into its internals.
window.teacherDebug = {
  state() {
    const room = studio?.room;
    return {
      lessonId: studio ? studio.id : null,
      lessonState: studio ? studio.lesson.state : null,
      mode: studio ? studio.mode : null,
      live: studio ? studio.live : 'idle',
      publishing: !!studio && studio.live === 'live' && studio.seat?.publisher?.connectionState === 'connected',
      sending: studio?.seat?.publisher ? [...studio.seat.publisher.sources()] : [],
      sharingScreen: !!studio?.screen.active,
      signaling: studio?.seat ? studio.seat.status : 'closed',
      participantId: room?.you ? room.you.id : null,
      participants: room ? [...room.participants.values()] : [],
      hands: room ? room.hands.map((x) => x.participant_id) : [],
      stage: room ? room.stage.slice() : [],
      invited: room ? [...room.invited] : [],
      reconnecting: room ? [...room.reconnecting] : [],
      recording: room ? room.recording : false,
      publications: room ? [...room.publications.values()] : [],
      chat: room ? room.chat.map((m) => ({ id: m.id, text: m.text, from: m.from?.name })) : [],
      tiles: studioView.tiles(),
      invites: studio?.invites ? studio.invites.length : 0,
      camera: !!studio?.stream,
    };
  },
  /** The camera's outgoing layers as the browser sends them (see `Publisher.videoLayers`). */
  async videoLayers() {
    return studio?.seat?.publisher ? studio.seat.publisher.videoLayers() : [];
  },
  /** The camera's own settings (what getUserMedia gave, before any layer scaling). */
  cameraSettings() {
    const track = studio?.stream?.getVideoTracks()[0];
    return track ? track.getSettings() : null;
  },
  /** The publisher connection's current offer and the SFU's answer (support: negotiation problems). */
  publisherSdp() {
    const pc = studio?.seat?.publisher?.pc;
    return pc ? { offer: pc.localDescription?.sdp || null, answer: pc.remoteDescription?.sdp || null } : null;
  },
  /** What one publication brought this console (packets, decoded frames); null if not received. */
  publicationStats(publicationId) {
    return studio?.seat ? studio.seat.publicationStats(publicationId) : null;
  },
};

applyI18n();
applyIcons();
adoptAdminKey();
schedule = new ScheduleView(handleAuthError);
invites = new InvitePanel(handleAuthError);
studioView = new StudioView({ invites, handleAuthError });
wire();
showAccount();
route();
