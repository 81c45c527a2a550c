// The message catalog: every locale has every key, placeholders survive translation, and every
// key the pages use exists.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

globalThis.location = { search: '' };
globalThis.navigator = { languages: ['en-US'] };

const { catalogs, t } = await import('../js/i18n.js');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('every locale has exactly the English keys, with the same placeholders', () => {
  const en = catalogs.en;
  for (const [name, catalog] of Object.entries(catalogs)) {
    assert.deepEqual(Object.keys(catalog).sort(), Object.keys(en).sort(), `${name} keys`);
    for (const key of Object.keys(en)) {
      assert.deepEqual(placeholders(catalog[key]), placeholders(en[key]), `${name} ${key} placeholders`);
    }
  }
});

test('every key the pages name exists', () => {
  const files = ['index.html', 'classroom.html', 'js/teacher.js', 'js/classroom.js', 'js/dom.js'];
  const used = new Set();
  for (const f of files) {
    const text = readFileSync(path.join(ROOT, f), 'utf8');
    for (const m of text.matchAll(/(?:\bt\(|data-i18n(?:-[a-z-]+)?=)['"]([\w.]+)['"]/g)) used.add(m[1]);
    for (const m of text.matchAll(/(?:title|detail): '(classroom\.msg\.[\w.]+)'/g)) used.add(m[1]);
  }
  assert.ok(used.size > 50, `found ${used.size} keys in use`);
  const missing = [...used].filter((k) => !(k in catalogs.en));
  assert.deepEqual(missing, []);
});

test('t() fills placeholders and falls back to the key', () => {
  assert.equal(t('classroom.with', { teacher: 'Li Wei' }), 'with Li Wei');
  assert.equal(t('no.such.key'), 'no.such.key');
});
