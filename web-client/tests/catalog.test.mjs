// The message catalog against every page: each key a page names (in markup, in `t('…')`, and
// the phase and status keys the watching pages build) exists in English and in Chinese, so no
// page ever shows a raw key or falls back to English in a Chinese classroom.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

globalThis.location = { search: '' };
globalThis.navigator = { languages: ['en-US'] };

const { catalogs } = await import('../js/i18n.js');
const { PHASE_VIEW } = await import('../js/phase.js');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const files = [
  ...readdirSync(ROOT).filter((f) => f.endsWith('.html')),
  // The catalog itself is left out: its comments show `t('key')` as an example.
  ...readdirSync(path.join(ROOT, 'js')).filter((f) => f.endsWith('.js') && f !== 'i18n.js').map((f) => `js/${f}`),
];

function keysNamedIn(text) {
  const keys = new Set();
  for (const m of text.matchAll(/(?:\bt\(|data-i18n(?:-[a-z-]+)?=)['"]([\w.]+)['"]/g)) keys.add(m[1]);
  // t(cond ? 'a' : 'b') names both.
  for (const m of text.matchAll(/\bt\(\s*[\w.?]+\s*\?\s*'([\w.]+)'\s*:\s*'([\w.]+)'/g)) keys.add(m[1]).add(m[2]);
  return keys;
}

test('every key a page names exists in every locale', () => {
  const used = new Map(); // key -> file
  for (const f of files) for (const k of keysNamedIn(readFileSync(path.join(ROOT, f), 'utf8'))) used.set(k, f);
  assert.ok(used.size > 150, `found ${used.size} keys in use`);
  for (const [name, catalog] of Object.entries(catalogs)) {
    const missing = [...used].filter(([k]) => !(k in catalog)).map(([k, f]) => `${k} (${f})`);
    assert.deepEqual(missing, [], `missing from ${name}`);
  }
});

test('every phase of a watching page has its words in every locale', () => {
  for (const [phase, view] of Object.entries(PHASE_VIEW)) {
    const keys = [`classroom.status.${view.statusKey}`, view.title, view.detail].filter(Boolean);
    for (const [name, catalog] of Object.entries(catalogs)) {
      for (const k of keys) assert.ok(k in catalog, `${name} lacks ${k} (phase ${phase})`);
    }
  }
});

test('keys built from names exist: roles, states, modes, schedule groups, chat errors', () => {
  const built = [
    ...['teacher', 'assistant', 'classroom', 'student', 'observer', 'operator', 'recorder'].map((r) => `role.${r}`),
    ...['scheduled', 'live', 'ended'].flatMap((s) => [`state.${s}`, `schedule.${s}`]),
    ...['delivery', 'famous_teacher', 'network'].flatMap((m) => [`mode.${m}`, `mode.${m}.hint`]),
    ...['Mic', 'Cam'].flatMap((s) => [`people.mute${s}`, `people.unmute${s}`]),
    'stage.micMutedByTeacher', 'stage.camMutedByTeacher', 'stage.micUnmuted', 'stage.camUnmuted',
    'hand.raise', 'hand.lower', 'hand.raiseKey', 'hand.lowerKey', 'chat.empty', 'chat.emptyReadOnly',
  ];
  for (const [name, catalog] of Object.entries(catalogs)) {
    assert.deepEqual(built.filter((k) => !(k in catalog)), [], `missing from ${name}`);
  }
});
