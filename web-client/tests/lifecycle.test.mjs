// A lesson's life in the console, end to end in real Chromium: the teacher schedules one lesson
// for tomorrow (date and time in the create form) and it is listed under "Upcoming" with its
// time; another goes live and is listed under "Live now"; a classroom and a student join it;
// the teacher ends it for everyone: both pages show the ended screen (a reload too), and the
// lesson moves to "Past".
//
// Screenshots of the schedule (English and Chinese) and the ended pages go to
// artifacts/screenshots/pages-schedule-* and pages-ended-*.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, waitFor, UI_TIMEOUT_MS, inviteAs, pageState, switchLanguage } from './harness.mjs';

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed, { shotPrefix: 'lifecycle-' }));

/** Tomorrow at 09:30 on the browser's clock, as a datetime-local input takes it. */
function tomorrowMorning() {
  const d = new Date(Date.now() + 24 * 3600 * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T09:30`;
}

async function createLesson(teacher, { title, mode, when = '' }) {
  await teacher.locator('#view-lessons').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await teacher.fill('#lesson-title-input', title);
  await teacher.fill('#lesson-subject-input', 'Mathematics');
  await teacher.fill('#lesson-grade-input', 'Grade 5');
  await teacher.selectOption('#lesson-mode-input', mode);
  if (when) await teacher.fill('#lesson-when-input', when);
  await teacher.click('#create-lesson-submit');
  await teacher.locator('#view-lesson').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  return waitFor('the new lesson in the studio', async () => (await pageState(teacher)).lessonId, { timeoutMs: UI_TIMEOUT_MS });
}

const row = (group, id) => `.lesson-group[data-group="${group}"] .lesson-row[data-lesson-id="${id}"]`;

test('schedule, go live, end for everyone', { timeout: 180_000 }, async () => {
  const consoleUrl = await lab.start();
  const teacher = await lab.openPage('teacher', consoleUrl, { viewport: { width: 1440, height: 900 } });

  // --- a lesson for tomorrow ------------------------------------------------------------------
  const when = tomorrowMorning();
  const planned = await createLesson(teacher, { title: 'Fractions on the number line', mode: 'famous_teacher', when });
  await teacher.click('#back-link');
  const upcoming = teacher.locator(row('scheduled', planned));
  await upcoming.waitFor({ timeout: UI_TIMEOUT_MS });
  const shown = await upcoming.locator('.lesson-row-when').innerText();
  assert.match(shown, /9:30|09:30/, `the scheduled time is shown (got "${shown}")`);

  // --- another lesson goes live ------------------------------------------------------------------
  const live = await createLesson(teacher, { title: 'Decimals in the market', mode: 'delivery' });
  await waitFor('the camera preview', async () => (await pageState(teacher)).camera, { timeoutMs: UI_TIMEOUT_MS });
  await teacher.fill('#teacher-name', 'Li Wei');
  await teacher.click('#go-live');
  await waitFor('the teacher to be publishing', async () => (await pageState(teacher)).publishing);
  const room = await lab.openPage('classroom', await inviteAs(teacher, 'Grade 5, Shizi Village School', 'classroom'));
  const student = await lab.openPage('student', await inviteAs(teacher, 'Wang Fang', 'student'), { viewport: { width: 390, height: 844 } });
  for (const page of [room, student]) await waitFor('the page to show the lesson live', async () => (await pageState(page)).phase === 'live');

  // The schedule while live: the studio keeps broadcasting behind it.
  await teacher.click('#back-link');
  await teacher.locator(row('live', live)).waitFor({ timeout: UI_TIMEOUT_MS });
  await teacher.locator(row('scheduled', planned)).waitFor({ timeout: UI_TIMEOUT_MS });
  assert.equal((await pageState(teacher)).live, 'live', 'still on air while looking at the schedule');
  await lab.screenshot('teacher', 'pages-schedule-en');
  await switchLanguage(teacher, 'zh-CN');
  await teacher.locator('.lesson-group[data-group="live"] .lesson-group-title', { hasText: '正在直播' }).waitFor({ timeout: UI_TIMEOUT_MS });
  await lab.screenshot('teacher', 'pages-schedule-zh');
  await switchLanguage(teacher, 'en');
  await teacher.click(row('live', live));
  await teacher.locator('#view-lesson').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });

  // --- the teacher ends it for everyone ------------------------------------------------------------
  await teacher.click('#end-lesson');
  await teacher.locator('#end-dialog').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await teacher.click('#end-confirm');
  for (const [name, page] of [['classroom', room], ['student', student]]) {
    await waitFor(`the ${name} to show the ended screen`, async () => (await pageState(page)).phase === 'ended');
  }
  assert.ok(await student.locator('#notice').isVisible(), 'the student page shows the ended notice');
  assert.ok(await room.locator('#center-title').isVisible(), 'the classroom shows the ended message');
  await waitFor('the console to show the lesson ended', async () => (await pageState(teacher)).lessonState === 'ended');
  await lab.screenshot('classroom', 'pages-ended-classroom-en');
  await lab.screenshot('student', 'pages-ended-student-en');
  await switchLanguage(student, 'zh-CN');
  await lab.screenshot('student', 'pages-ended-student-zh');

  await room.reload();
  await waitFor('the reloaded classroom to show the ended screen', async () => (await pageState(room)).phase === 'ended');

  await teacher.click('#back-link');
  await teacher.locator(row('ended', live)).waitFor({ timeout: UI_TIMEOUT_MS });
  await teacher.locator(row('scheduled', planned)).waitFor({ timeout: UI_TIMEOUT_MS });

  for (const [name, lines] of Object.entries(lab.logs)) {
    assert.deepEqual(lines.filter((l) => l.startsWith('[pageerror]')), [], `the ${name} page threw no errors`);
  }
  passed = true;
});
