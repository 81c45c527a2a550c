// Screen share end to end in real Chromium (headless: the fake-UI flag picks the screen): the
// teacher shares a screen from the console as a publication of its own (source `screen`, added
// to the running publisher connection); a classroom decodes it and shows it large with the
// teacher's camera small in the corner, and a student on a phone does the same. When sharing
// stops, the camera returns to full size in the same video element (no reload, frames keep
// coming). A second share works the same way. (Adding the screen renegotiates the teacher's
// publisher connection, which renews the camera's publication: see `Publisher.negotiate`.)
//
// Screenshots go to artifacts/screenshots/pages-screen-*.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, waitFor, teacherStartsLesson, inviteAs, pageState, waitForGrowth } from './harness.mjs';

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed, { shotPrefix: 'screen-' }));

/** The on-screen boxes of the camera and the screen videos. */
const boxes = (page) => page.evaluate(() => {
  const box = (sel) => {
    const r = document.querySelector(sel).getBoundingClientRect();
    return { width: r.width, height: r.height };
  };
  return { camera: box('#teacher-video'), screen: box('#screen-video'), viewport: window.innerWidth };
});

test('a shared screen is shown large, the camera small, and back again', { timeout: 180_000 }, async () => {
  const consoleUrl = await lab.start();
  const { teacher } = await teacherStartsLesson(lab, consoleUrl, {
    title: 'Reading a map',
    subject: 'Geography',
    grade: 'Grade 6',
    mode: 'famous_teacher',
  });
  const room = await lab.openPage('classroom', await inviteAs(teacher, 'Grade 6, Dali No. 3 Primary School', 'classroom'));
  const student = await lab.openPage('student', await inviteAs(teacher, 'Zhang Wei', 'student'), { viewport: { width: 390, height: 844 } });
  for (const page of [room, student]) await waitFor('the page to show the lesson live', async () => (await pageState(page)).phase === 'live');

  assert.ok((await pageState(room)).cameraPublicationId, 'the classroom shows the teacher’s camera');
  /** Frames the classroom decoded of the teacher's camera as shown now. */
  const cameraFrames = () => room.evaluate(() => {
    const id = window.classroomDebug.state().cameraPublicationId;
    return id === null ? 0 : window.classroomDebug.publicationStats(id).then((s) => s?.framesDecoded || 0);
  });

  for (const round of [1, 2]) {
    // --- the teacher shares -------------------------------------------------------------------------
    await teacher.click('#share-screen');
    await waitFor('the teacher to send the screen', async () => {
      const s = await pageState(teacher);
      return s.sharingScreen && s.sending.includes('screen');
    });
    const screen = await waitFor('the classroom to receive the screen publication', async () => {
      const s = await pageState(room);
      const pub = s.publications.find((p) => p.source === 'screen');
      return pub && s.screenPublicationId === pub.id ? pub.id : null;
    });
    await waitFor('the classroom to decode the screen', async () => {
      const s = await room.evaluate((id) => window.classroomDebug.publicationStats(id), screen);
      return s && s.framesDecoded > 0;
    });
    await waitFor('the classroom to show the screen', async () => (await pageState(room)).screenShown);
    // The camera glides into its corner (a CSS transition): wait for it to settle small.
    const shared = await waitFor('the camera small and the screen large', async () => {
      const b = await boxes(room);
      return b.screen.width > 0.6 * b.viewport && b.camera.width < 0.3 * b.screen.width ? b : null;
    });
    assert.ok(shared.camera.width > 0, 'the camera stays on screen, in its corner');
    await waitForGrowth('the camera to play in the corner', cameraFrames, 0);
    const framesShared = await cameraFrames();
    await waitForGrowth('the camera to keep playing in the corner', cameraFrames, framesShared);
    // From here the camera's element must keep its stream: a reload would show as a new one.
    await room.evaluate(() => {
      window.cameraStreamInCorner = document.querySelector('#teacher-video').srcObject;
    });
    await waitFor('the student to show the screen', async () => (await pageState(student)).screenShown);
    if (round === 1) {
      await lab.screenshot('classroom', 'pages-screen-classroom-en');
      await lab.screenshot('student', 'pages-screen-student-en');
      await teacher.evaluate(() => window.scrollTo(0, 0));
      await lab.screenshot('teacher', 'pages-screen-teacher-en');
    }

    // --- sharing stops: the camera comes back, smoothly ------------------------------------------------
    await teacher.click('#share-screen');
    await waitFor('the teacher to stop sending the screen', async () => !(await pageState(teacher)).sending.includes('screen'));
    await waitFor('the classroom to drop the screen', async () => (await pageState(room)).screenPublicationId === null);
    await waitFor('the camera full size again', async () => {
      const b = await boxes(room);
      return b.camera.width > 0.9 * b.viewport;
    });
    assert.equal((await pageState(room)).phase, 'live', 'the lesson stayed live throughout');
    assert.ok(await room.evaluate(() => document.querySelector('#teacher-video').srcObject === window.cameraStreamInCorner),
      'the camera’s video element kept its stream on the way back: no reload');
    const framesBack = await cameraFrames();
    await waitForGrowth('the camera to keep playing full size', cameraFrames, framesBack);
    await waitFor('the student back to the camera', async () => (await pageState(student)).screenPublicationId === null);
  }

  for (const [name, lines] of Object.entries(lab.logs)) {
    assert.deepEqual(lines.filter((l) => l.startsWith('[pageerror]')), [], `the ${name} page threw no errors`);
  }
  passed = true;
});
