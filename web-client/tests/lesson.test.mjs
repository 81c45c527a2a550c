// A lesson end to end in real Chromium: the teacher creates a lesson in the console, goes live
// with a (fake) camera and microphone, invites two classrooms, and both classrooms decode the
// teacher's video and receive the teacher's audio through our SFU.
//
// Needs the server binary built first (see harness.mjs). Screenshots go to
// artifacts/screenshots/ at the repository root.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, waitFor, teacherGoesLive, inviteClassroom } from './harness.mjs';

const CLASSROOMS = ['Grade 5, Shizi Village School', 'Grade 5, Hekou Township School'];

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed));

test('a lesson reaches two classrooms: video decoded and audio received', { timeout: 240_000 }, async () => {
  const consoleUrl = await lab.start();
  assert.match(consoleUrl, /#key=\S+/, 'the teacher console URL carries the admin key');

  // --- the teacher creates a lesson and goes live -------------------------------------------
  const { teacher, lessonId } = await teacherGoesLive(lab, consoleUrl, {
    title: 'Fractions on the number line',
    subject: 'Mathematics',
    grade: 'Grade 5',
  });

  // --- two classrooms are invited through the console -----------------------------------------
  const links = [];
  for (const name of CLASSROOMS) links.push(await inviteClassroom(teacher, name));

  // --- each classroom opens its link in its own browser profile -------------------------------
  const classrooms = [];
  for (const [i, link] of links.entries()) {
    classrooms.push(await lab.openPage(`classroom-${i + 1}`, link));
  }

  for (const [i, page] of classrooms.entries()) {
    const stats = await waitFor(`classroom ${i + 1} to decode video and receive audio`, async () => {
      const s = await page.evaluate(() => window.classroomDebug.stats());
      return s.videoFramesDecoded > 0 && s.audioPacketsReceived > 0 ? s : null;
    });
    assert.ok(stats.videoFrameHeight > 0, `classroom ${i + 1} knows the video's height`);
    await waitFor(`classroom ${i + 1} to show the lesson as live`, () =>
      page.evaluate(() => window.classroomDebug.state().phase === 'live'),
    );
    assert.equal(
      await page.evaluate(() => window.classroomDebug.state().lessonId),
      lessonId,
      `classroom ${i + 1} joined the lesson it was invited to`,
    );
  }

  // --- the teacher sees both classrooms present -----------------------------------------------
  await waitFor('both classrooms in the teacher’s participant list', async () => {
    const names = await teacher.locator('#participant-list .person[data-role="classroom"] .person-name').allInnerTexts();
    return CLASSROOMS.every((c) => names.some((n) => n.includes(c))) ? names : null;
  });

  await lab.screenshotAll();
  passed = true;
});
