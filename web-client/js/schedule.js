// The teacher's schedule: lessons grouped as live now, upcoming (soonest first) and past
// (latest first), grouped here on each lesson's `state` so it works whatever the server
// filters. Also turns the create form's local date and time into the API's RFC 3339.

import { h, icon } from './dom.js';
import { t, locale } from './i18n.js';

const GROUPS = ['live', 'scheduled', 'ended'];
/** Past lessons beyond this many are left to the library. */
const MAX_PAST = 30;

/**
 * Fills `container` with the grouped lessons; returns how many it shows.
 * @param {HTMLElement} container
 * @param {object[]} lessons  as `GET /api/lessons` returns them
 */
export function renderSchedule(container, lessons) {
  const by = { live: [], scheduled: [], ended: [] };
  for (const l of lessons) (by[l.state] || by.scheduled).push(l);
  const when = (l) => Date.parse(l.scheduled_at || '') || Infinity;
  by.live.sort((a, b) => b.id - a.id);
  // Unscheduled upcoming lessons after the dated ones, newest first among themselves.
  by.scheduled.sort((a, b) => when(a) - when(b) || b.id - a.id);
  by.ended.sort((a, b) => (Date.parse(b.ended_at || '') || b.id) - (Date.parse(a.ended_at || '') || a.id) || b.id - a.id);
  by.ended = by.ended.slice(0, MAX_PAST);

  const sections = GROUPS.filter((g) => by[g].length).map((g) =>
    h('section', { class: 'lesson-group', 'data-group': g },
      h('h3', { class: 'lesson-group-title' }, t(`schedule.${g}`), h('span', { class: 'count' }, String(by[g].length))),
      h('ul', { class: 'lesson-list' }, ...by[g].map(row))));
  container.replaceChildren(...sections);
  return by.live.length + by.scheduled.length + by.ended.length;
}

function row(lesson) {
  return h('li', {},
    h('a', { class: 'lesson-row', href: `#/lessons/${lesson.id}`, 'data-state': lesson.state, 'data-lesson-id': lesson.id },
      h('span', { class: 'lesson-avatar', 'aria-hidden': 'true' }, initial(lesson.subject || lesson.title)),
      h('span', { class: 'lesson-row-text' },
        h('div', { class: 'lesson-row-title' }, lesson.title),
        h('div', { class: 'lesson-row-meta' }, metaLine(lesson))),
      h('span', { class: 'lesson-row-when' }, whenLine(lesson)),
      h('span', { class: `badge badge-${lesson.state}` }, t(`state.${lesson.state}`)),
      chevron()));
}

/** "Mathematics · Grade 5 · Specialised delivery classroom", skipping what is not set. */
export function metaLine(lesson) {
  return [lesson.subject, lesson.grade, lesson.mode ? t(`mode.${lesson.mode}`) : ''].filter((x) => x).join(' · ');
}

/** When the lesson is, was, or started, in the reader's language. */
export function whenLine(lesson) {
  if (lesson.state === 'live' && lesson.started_at) return t('schedule.startedAt', { time: formatDateTime(lesson.started_at) });
  if (lesson.state === 'ended' && lesson.ended_at) return formatDateTime(lesson.ended_at);
  if (lesson.scheduled_at) return formatDateTime(lesson.scheduled_at);
  return lesson.state === 'scheduled' ? t('schedule.unscheduled') : '';
}

export function formatDateTime(at) {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

/**
 * A `datetime-local` value (the teacher's own clock) as RFC 3339 in UTC, whole seconds;
 * null for an empty or unreadable value.
 */
export function scheduledAt(value) {
  if (!value) return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function initial(text) {
  const s = String(text || '').trim();
  return s ? Array.from(s)[0].toUpperCase() : '·';
}

function chevron() {
  const svg = icon('chevron', 18);
  svg.classList.add('chevron');
  return svg;
}
