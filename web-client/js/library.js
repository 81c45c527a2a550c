// The lesson library (/library.html): recorded lessons as cards (thumbnail, title, teacher,
// date, duration), searched and filtered through GET /api/library. A card opens the replay page.
// For anyone signed in (teachers, operators, admins) or holding the API key.

import { ApiError, adoptAdminKey } from './api.js';
import { formatDuration, getJson } from './library-api.js';
import { $, applyIcons, h, icon } from './dom.js';
import { applyI18n, locale, t } from './i18n.js';
import { mountLanguageSwitch } from './langswitch.js';

const els = {
  lang: $('#lang'),
  form: $('#filters'),
  status: $('#library-status'),
  grid: $('#library-grid'),
};

const FILTERS = ['q', 'subject', 'grade', 'teacher', 'school', 'from', 'to'];

const state = { recordings: null, error: null, loading: false };

function formatDate(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(locale(), { dateStyle: 'medium', timeStyle: 'short' });
}

/** The filters in the form, as the address and the API take them. */
function readFilters() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = els.form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function fillFilters(params) {
  for (const name of FILTERS) els.form.elements[name].value = params.get(name) ?? '';
}

function card(rec) {
  const thumb = h('div', { class: 'recording-thumb' });
  if (rec.files.thumbnail) {
    thumb.append(h('img', { src: `/media/${encodeURIComponent(rec.id)}/${rec.files.thumbnail}`, alt: '', loading: 'lazy' }));
  } else {
    thumb.append(h('span', { class: 'placeholder' }, icon('camera', 28), t('library.noThumbnail')));
  }
  thumb.append(h('span', { class: 'recording-duration' }, formatDuration(rec.duration_ms)));
  const tags = [rec.subject, rec.grade].filter(Boolean).map((text) => h('span', { class: 'badge' }, text));
  if (rec.state !== 'complete') {
    tags.push(h('span', { class: `badge badge-${rec.state}`, dataset: { state: rec.state } }, t(`library.state.${rec.state}`)));
  }
  const who = [rec.teacher || t('library.noTeacher'), rec.school].filter(Boolean).join(' · ');
  return h(
    'li',
    { dataset: { id: rec.id } },
    h(
      'a',
      {
        class: 'recording-card',
        href: `/replay.html?id=${encodeURIComponent(rec.id)}`,
        'aria-label': t('library.watch', { title: rec.title }),
      },
      thumb,
      h(
        'div',
        { class: 'recording-body' },
        h('h2', { class: 'recording-title' }, rec.title),
        h('p', { class: 'recording-meta' }, who),
        h('p', { class: 'recording-meta' }, formatDate(rec.started_at)),
        tags.length ? h('div', { class: 'recording-tags' }, tags) : null,
      ),
    ),
  );
}

function render() {
  document.title = t('library.pageTitle');
  if (state.error) {
    els.status.textContent = t('library.loadFailed', { message: state.error });
  } else if (state.loading || !state.recordings) {
    els.status.textContent = t('library.loading');
  } else if (!state.recordings.length) {
    els.status.textContent = t('library.empty');
  } else {
    els.status.textContent = t('library.count', { count: state.recordings.length });
  }
  els.grid.replaceChildren(...(state.recordings || []).map(card));
}

async function load() {
  const params = readFilters();
  const query = params.toString();
  history.replaceState(null, '', location.pathname + (query ? `?${query}` : ''));
  state.loading = true;
  state.error = null;
  render();
  try {
    state.recordings = await getJson(`/api/library${params.size ? `?${params}` : ''}`);
  } catch (err) {
    state.error = err instanceof ApiError ? err.message : String(err);
  }
  state.loading = false;
  render();
}

function start() {
  adoptAdminKey();
  applyI18n();
  applyIcons();
  mountLanguageSwitch(els.lang, () => render());
  fillFilters(new URLSearchParams(location.search));
  els.form.addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
  els.form.addEventListener('reset', () => {
    // After the browser cleared the fields.
    setTimeout(load, 0);
  });
  window.libraryDebug = {
    state: () => ({ loading: state.loading, error: state.error, ids: (state.recordings || []).map((r) => r.id) }),
  };
  load();
}

start();
