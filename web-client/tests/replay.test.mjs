// The library and the replay page in real Chromium, on a lesson really recorded: the teacher
// goes live in a network-mode lesson (recorded by default) with the fake camera and microphone,
// writes in the chat, and ends the lesson. Signed in with a session (as people are), the library
// lists the recording; the replay page plays it, a seek to the middle lands within 0.5 s of the
// target, and clicking the chat message in the timeline jumps there. Prints the replay start and
// seek times (docs/benchmarks.md, "Library") and takes screenshots of both pages in English and
// Chinese.
//
// Needs the server binary built first (see harness.mjs).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { Lab, waitFor, firstSignInLink, switchLanguage, teacherStartsLesson, UI_TIMEOUT_MS, MEDIA_TIMEOUT_MS } from './harness.mjs';

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed, { shotPrefix: 'replay-' }));

/** The lesson's length on each side of the chat message (it is the scenario, not a wait). */
const HALF_LESSON_MS = 3000;

const replayState = (page) => page.evaluate(() => window.replayDebug.state());

test('a recorded lesson in the library: replay plays, seeks, timeline jumps', { timeout: 240_000 }, async () => {
  const consoleUrl = await lab.start();
  const { teacher, lessonId } = await teacherStartsLesson(lab, consoleUrl, {
    title: 'The water cycle',
    subject: 'Science',
    grade: 'Grade 5',
    mode: 'network',
  });
  const apiAsTeacher = (method, path) =>
    teacher.evaluate(
      async ({ method, path }) => {
        const key = localStorage.getItem('classroom.adminKey');
        const res = await fetch(path, { method, headers: { Authorization: `Bearer ${key}` } });
        return { status: res.status, body: await res.json() };
      },
      { method, path },
    );
  await waitFor('the lesson to be recording', async () => {
    const { body } = await apiAsTeacher('GET', '/api/library');
    return body.some((r) => r.lesson_id === lessonId && r.state === 'recording');
  }, { timeoutMs: UI_TIMEOUT_MS });

  await delay(HALF_LESSON_MS);
  await teacher.fill('#chat .chat-input', 'Evaporation comes first');
  await teacher.press('#chat .chat-input', 'Enter');
  await teacher.locator('#chat .chat-message', { hasText: 'Evaporation comes first' }).waitFor({ timeout: UI_TIMEOUT_MS });
  await delay(HALF_LESSON_MS);
  const ended = await apiAsTeacher('POST', `/api/lessons/${lessonId}/end`);
  assert.equal(ended.status, 200, JSON.stringify(ended.body));

  const { body: list } = await apiAsTeacher('GET', '/api/library');
  assert.equal(list.length, 1, JSON.stringify(list));
  const rec = list[0];
  assert.equal(rec.state, 'complete');
  assert.ok(rec.duration_ms > 2 * HALF_LESSON_MS - 1000, `duration ${rec.duration_ms} ms`);

  // Signed in as the admin (a session cookie, which <video> sends), not with the API key.
  const link = await firstSignInLink(lab);
  const origin = new URL(link).origin;
  const token = new URL(link).hash.replace(/^#once=/, '');
  const viewer = await lab.openPage('library', `${origin}/favicon.svg`);
  const signedIn = await viewer.evaluate(async (token) => {
    const res = await fetch('/api/auth/once', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    return res.status;
  }, token);
  assert.equal(signedIn, 200, 'the one-time link signs the viewer in');

  await viewer.goto(`${origin}/library.html`);
  const card = viewer.locator(`#library-grid li[data-id="${rec.id}"] a.recording-card`);
  await card.waitFor({ timeout: UI_TIMEOUT_MS });
  assert.match(await card.innerText(), /The water cycle/);
  // A search that matches nothing, then back.
  await viewer.fill('#f-q', 'volcanoes');
  await viewer.click('#f-apply');
  await waitFor('the search to find nothing', () => viewer.evaluate(() => !window.libraryDebug.state().loading && window.libraryDebug.state().ids.length === 0), { timeoutMs: UI_TIMEOUT_MS });
  await viewer.fill('#f-q', 'water');
  await viewer.click('#f-apply');
  await card.waitFor({ timeout: UI_TIMEOUT_MS });
  await lab.screenshot('library', 'library-en');
  await switchLanguage(viewer, 'zh-CN');
  await lab.screenshot('library', 'library-zh-CN');
  await switchLanguage(viewer, 'en');

  // The replay: from the click to the first frame playing.
  await card.click();
  await waitFor('the replay page', () => new URL(viewer.url()).pathname === '/replay.html', { timeoutMs: UI_TIMEOUT_MS });
  const started = await waitFor('the replay to play', async () => {
    const s = await replayState(viewer);
    return s.startMs !== null && !s.paused ? s : null;
  }, { timeoutMs: MEDIA_TIMEOUT_MS });
  assert.ok(started.duration > 4, `duration ${started.duration}`);

  // A seek to the middle.
  const target = started.duration / 2;
  await viewer.evaluate((s) => window.replayDebug.seek(s), target);
  const afterSeek = await waitFor('the seek to land', async () => {
    const s = await replayState(viewer);
    return s.seekMs !== null && !s.seeking ? s : null;
  }, { timeoutMs: MEDIA_TIMEOUT_MS });
  assert.ok(Math.abs(afterSeek.currentTime - target) <= 0.5, `seek to ${target.toFixed(2)} s landed at ${afterSeek.currentTime.toFixed(2)} s`);
  const seekMs = afterSeek.seekMs;

  // The chat message in the timeline jumps there.
  const chat = viewer.locator('#timeline .timeline-entry.chat', { hasText: 'Evaporation comes first' });
  await chat.waitFor({ timeout: UI_TIMEOUT_MS });
  const chatS = Number(await chat.getAttribute('data-t')) / 1000;
  assert.ok(chatS > 1 && chatS < started.duration - 1, `chat at ${chatS} s`);
  await chat.click();
  const jumped = await waitFor('the jump to the chat message', async () => {
    const s = await replayState(viewer);
    return !s.seeking && Math.abs(s.currentTime - chatS) <= 0.5 ? s : null;
  }, { timeoutMs: MEDIA_TIMEOUT_MS, intervalMs: 50 });
  assert.ok(Math.abs(jumped.currentTime - chatS) <= 0.5);
  await waitFor('the chat entry to be marked current', () => chat.evaluate((el) => el.classList.contains('current')), { timeoutMs: UI_TIMEOUT_MS });

  // Speed.
  await viewer.selectOption('#speed', '1.5');
  assert.equal((await replayState(viewer)).playbackRate, 1.5);
  assert.equal(await viewer.getAttribute('#download', 'href'), `/media/${rec.id}/main.webm`);

  await lab.screenshot('library', 'replay-en');
  await switchLanguage(viewer, 'zh-CN');
  await lab.screenshot('library', 'replay-zh-CN');

  console.log(`replay start: ${Math.round(started.startMs)} ms after the replay page opened; seek: ${Math.round(seekMs)} ms`);
  passed = true;
});
