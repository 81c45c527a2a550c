// The replay page (/replay.html?id=…): a recorded lesson from the library. The teacher's video
// (with the mixed sound of everyone who spoke) plays with seeking; the screen share, recorded on
// the same clock, plays in step beside it; the chat and events scroll with playback, and a click
// on one jumps there. Speed and download below the video.
//
// The media is served with HTTP Range, so seeking fetches only what it needs. It rides on the
// session cookie; a browser that only holds the API key (which a <video> cannot send) gets
// each file through fetch instead.

import { ApiError, adoptAdminKey, readAdminKey } from './api.js';
import { $, applyIcons, h } from './dom.js';
import { applyI18n, locale, t } from './i18n.js';
import { mountLanguageSwitch } from './langswitch.js';
import { formatDuration, getJson } from './library-api.js';

const els = {
  lang: $('#lang'),
  status: $('#replay-status'),
  content: $('#replay-content'),
  title: $('#replay-title'),
  meta: $('#replay-meta'),
  notice: $('#replay-notice'),
  stage: $('#replay-stage'),
  main: $('#main-video'),
  screenFigure: $('#screen-figure'),
  screen: $('#screen-video'),
  speed: $('#speed'),
  download: $('#download'),
  timeline: $('#timeline'),
};

/** How far the screen share may drift from the main video before it is put back in step. */
const MAX_DRIFT_S = 0.25;

const state = {
  id: new URLSearchParams(location.search).get('id'),
  rec: null,
  error: null,
  entries: [], // timeline entries shown, in time order
  current: -1,
  // Figures for docs/benchmarks.md: page start to first frame playing, and each seek's time.
  startMs: null,
  seekMs: null,
  seekStartedAt: null,
};

/** A media file's address the <video> can load: as is with a session, else fetched. */
async function playableUrl(url) {
  const head = await fetch(url, { method: 'HEAD', credentials: 'same-origin' }).catch(() => null);
  const key = readAdminKey();
  if (head && head.status === 401 && key) {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${key}` } });
    if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, res.statusText);
    return URL.createObjectURL(await res.blob());
  }
  return url;
}

function eventText(entry) {
  switch (entry.type) {
    case 'chat':
      return null;
    case 'hand_raised':
    case 'hand_lowered':
    case 'screen_share_started':
    case 'screen_share_stopped':
      return t(`replay.event.${entry.type}`, { name: entry.participant });
    case 'stage_changed':
      return entry.on_stage.length
        ? t('replay.event.stage_changed', { names: entry.on_stage.join(locale() === 'zh-CN' ? '、' : ', ') })
        : t('replay.event.stage_empty');
    case 'recording_started':
    case 'recording_stopped':
      return t(`replay.event.${entry.type}`);
    default:
      return t('replay.event.custom', { kind: entry.kind || entry.type });
  }
}

function renderTimeline() {
  if (!state.entries.length) {
    els.timeline.replaceChildren(h('li', { class: 'timeline-empty muted' }, t('replay.timelineEmpty')));
    return;
  }
  els.timeline.replaceChildren(
    ...state.entries.map((entry, i) => {
      const time = formatDuration(entry.t_ms);
      const text = eventText(entry);
      const body =
        entry.type === 'chat'
          ? h('span', { class: 'timeline-text' }, h('span', { class: 'timeline-name' }, entry.name), entry.text)
          : h('span', { class: 'timeline-text' }, text);
      return h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            class: `timeline-entry ${entry.type === 'chat' ? 'chat' : 'event'}`,
            dataset: { index: i, t: entry.t_ms, type: entry.type },
            title: t('replay.jump', { time }),
            onclick: () => jump(entry.t_ms / 1000),
          },
          h('span', { class: 'timeline-time' }, time),
          body,
        ),
      );
    }),
  );
  state.current = -1;
  followPlayback();
}

/** Marks the entry playback has reached and keeps it in view. */
function followPlayback() {
  const now = els.main.currentTime * 1000;
  let current = -1;
  for (let i = 0; i < state.entries.length && state.entries[i].t_ms <= now; i++) current = i;
  const buttons = els.timeline.querySelectorAll('.timeline-entry');
  buttons.forEach((b, i) => {
    b.classList.toggle('past', i < current);
    b.classList.toggle('current', i === current);
  });
  if (current !== state.current && current >= 0 && buttons[current]) {
    buttons[current].scrollIntoView({ block: 'nearest' });
  }
  state.current = current;
}

function seek(seconds) {
  state.seekStartedAt = performance.now();
  els.main.currentTime = Math.max(0, Math.min(seconds, els.main.duration || seconds));
}

function jump(seconds) {
  seek(seconds);
  els.main.play().catch(() => {});
}

/** Puts the screen share in step with the main video. */
function syncScreen() {
  if (els.screenFigure.hidden) return;
  const main = els.main;
  const screen = els.screen;
  screen.playbackRate = main.playbackRate;
  if (Math.abs(screen.currentTime - main.currentTime) > MAX_DRIFT_S) screen.currentTime = main.currentTime;
  if (main.paused !== screen.paused) {
    if (main.paused) screen.pause();
    else screen.play().catch(() => {});
  }
}

function renderHead() {
  const rec = state.rec;
  document.title = `${rec.title} · ${t('replay.pageTitle')}`;
  els.title.textContent = rec.title;
  const date = new Date(rec.started_at);
  const when = Number.isNaN(date.getTime())
    ? rec.started_at
    : date.toLocaleString(locale(), { dateStyle: 'medium', timeStyle: 'short' });
  els.meta.textContent = [rec.teacher, rec.school, rec.subject, rec.grade, when, formatDuration(rec.duration_ms)]
    .filter(Boolean)
    .join(' · ');
  els.notice.hidden = rec.state === 'complete';
  if (rec.state === 'interrupted') els.notice.textContent = t('replay.interrupted');
  else if (rec.state === 'failed') els.notice.textContent = t('replay.failed', { message: rec.error ? rec.error.message : '' });
  else if (rec.state === 'recording') els.notice.textContent = t('library.state.recording');
}

function render() {
  if (state.error) {
    els.status.hidden = false;
    els.status.textContent = t('replay.loadFailed', { message: state.error });
    return;
  }
  if (!state.rec) return;
  renderHead();
  renderTimeline();
}

async function load() {
  if (!state.id) {
    state.error = 'no recording named';
    render();
    return;
  }
  try {
    state.rec = await getJson(`/api/library/${encodeURIComponent(state.id)}`);
  } catch (err) {
    state.error = err instanceof ApiError ? err.message : String(err);
    render();
    return;
  }
  const rec = state.rec;
  state.entries = (rec.timeline || []).slice().sort((a, b) => a.t_ms - b.t_ms);
  if (!rec.urls.main) {
    els.status.textContent = t('replay.notReady');
    return;
  }
  els.status.hidden = true;
  els.content.hidden = false;
  els.download.href = rec.urls.main;
  els.download.setAttribute('download', `${rec.title || rec.id}.webm`);
  if (rec.urls.screen) {
    els.screenFigure.hidden = false;
    els.stage.classList.add('with-screen');
    els.screen.src = await playableUrl(rec.urls.screen);
  }
  render();
  els.main.src = await playableUrl(rec.urls.main);
  // Browsers may refuse to start sound without a gesture; the controls are there then.
  els.main.play().catch(() => {});
}

function start() {
  adoptAdminKey();
  applyI18n();
  applyIcons();
  mountLanguageSwitch(els.lang, () => render());
  els.main.addEventListener('playing', () => {
    if (state.startMs === null) state.startMs = performance.now();
    syncScreen();
  });
  els.main.addEventListener('seeked', () => {
    if (state.seekStartedAt !== null) {
      state.seekMs = performance.now() - state.seekStartedAt;
      state.seekStartedAt = null;
    }
    followPlayback();
    syncScreen();
  });
  els.main.addEventListener('timeupdate', () => {
    followPlayback();
    syncScreen();
  });
  for (const name of ['play', 'pause', 'ratechange']) els.main.addEventListener(name, syncScreen);
  els.speed.addEventListener('change', () => {
    els.main.playbackRate = Number(els.speed.value) || 1;
  });
  window.replayDebug = {
    state: () => ({
      id: state.id,
      error: state.error,
      ready: els.main.readyState,
      duration: els.main.duration,
      currentTime: els.main.currentTime,
      paused: els.main.paused,
      playbackRate: els.main.playbackRate,
      startMs: state.startMs,
      seekMs: state.seekMs,
      seeking: state.seekStartedAt !== null,
      entries: state.entries.length,
      current: state.current,
      screen: !els.screenFigure.hidden,
    }),
    seek,
  };
  load();
}

start();
