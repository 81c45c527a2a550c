// Moderation end to end in real Chromium, in a delivery lesson (every classroom sends camera
// and microphone and all see all): the teacher mutes classroom A's microphone from the console
// and classroom B stops receiving it (its inbound packet count stops growing while the
// teacher's voice keeps coming), and A's page says it was muted; unmuted, it flows again. The
// same for A's camera (decoded frames stop). Then the teacher removes A (with a confirmation):
// A's page shows it was removed, and reloading it is refused.
//
// Screenshots of the delivery console (classroom grid) and a classroom go to
// artifacts/screenshots/pages-delivery-*.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Lab, waitFor, UI_TIMEOUT_MS, teacherStartsLesson, inviteAs, pageState, switchLanguage,
  waitForSteady, waitForGrowth,
} from './harness.mjs';

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed, { shotPrefix: 'moderation-' }));

test('mute stops forwarding at once; remove ejects and the link cannot rejoin', { timeout: 180_000 }, async () => {
  const consoleUrl = await lab.start();
  const { teacher } = await teacherStartsLesson(lab, consoleUrl, {
    title: 'Singing together',
    subject: 'Music',
    grade: 'Grade 4',
    mode: 'delivery',
  });
  const linkA = await inviteAs(teacher, 'Grade 4, Shizi Village School', 'classroom');
  const linkB = await inviteAs(teacher, 'Grade 4, Hekou Township School', 'classroom');
  const a = await lab.openPage('classroom-a', linkA);
  const b = await lab.openPage('classroom-b', linkB);

  for (const [name, page] of [['A', a], ['B', b]]) {
    await waitFor(`classroom ${name} live and sending camera and microphone`, async () => {
      const s = await pageState(page);
      return s.phase === 'live' && s.sending.length === 2 && s.publisher === 'connected';
    });
  }
  const aId = (await pageState(a)).participantId;
  const bId = (await pageState(b)).participantId;
  const publication = (owner, source) => waitFor(`the ${source} of participant ${owner} at the teacher`, async () =>
    (await pageState(teacher)).publications.find((p) => p.participant_id === owner && p.source === source) || null);
  const aMic = await publication(aId, 'microphone');
  const aCam = await publication(aId, 'camera');
  const teacherId = (await pageState(teacher)).participantId;
  const teacherMic = await publication(teacherId, 'microphone');

  // --- the console's grid shows every classroom -----------------------------------------------
  await waitFor('both classrooms in the console’s grid, with video', async () => {
    const tiles = (await pageState(teacher)).tiles;
    return [aId, bId].every((id) => tiles.some((tile) => tile.participantId === id && tile.video));
  });
  await waitFor('classroom B to show A beside the teacher', async () => (await pageState(b)).strip.includes(aId));

  /** What B has received of one publication. */
  const atB = (id, field) => b.evaluate(({ id, field }) => window.classroomDebug.publicationStats(id).then((s) => (s ? s[field] : 0)), { id, field });
  const person = (id) => `#participant-list .person[data-participant-id="${id}"]`;

  // --- mute A's microphone: B stops receiving it, A is told ----------------------------------
  const before = await waitForGrowth('B to receive A’s microphone', () => atB(aMic.id, 'packetsReceived'), 0);
  await teacher.click(`${person(aId)} [data-action="mute-microphone"]`);
  await a.locator('#self-muted').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  assert.equal((await pageState(a)).micMutedByTeacher, true, 'A knows its microphone is muted');
  const teacherVoice = await atB(teacherMic.id, 'packetsReceived');
  const settled = await waitForSteady('A’s microphone packets at B to stop', () => atB(aMic.id, 'packetsReceived'));
  assert.ok(settled >= before, 'the count only stopped');
  assert.ok(await atB(teacherMic.id, 'packetsReceived') > teacherVoice, 'the teacher’s voice kept reaching B meanwhile');
  await teacher.locator(`${person(aId)} [data-action="unmute-microphone"]`).waitFor({ timeout: UI_TIMEOUT_MS });
  await lab.screenshot('classroom-a', 'pages-delivery-classroom-muted-en');

  await teacher.click(`${person(aId)} [data-action="unmute-microphone"]`);
  await waitForGrowth('A’s microphone to reach B again', () => atB(aMic.id, 'packetsReceived'), settled);
  await a.locator('#self-muted').waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });

  // --- mute A's camera: B decodes no more of it --------------------------------------------------
  await waitForGrowth('B to decode A’s camera', () => atB(aCam.id, 'framesDecoded'), 0);
  await teacher.click(`${person(aId)} [data-action="mute-camera"]`);
  await waitFor('A to know its camera is muted', async () => (await pageState(a)).camMutedByTeacher);
  await waitForSteady('A’s camera frames at B to stop', () => atB(aCam.id, 'framesDecoded'));
  await waitFor('B’s tile of A to say the camera is off', () =>
    b.locator(`#strip .tile[data-participant-id="${aId}"] .tile-badge-muted`).count().then((n) => n > 0));

  await teacher.evaluate(() => window.scrollTo(0, 0));
  await lab.screenshot('teacher', 'pages-delivery-teacher-en');
  await lab.screenshot('classroom-b', 'pages-delivery-classroom-en');
  await switchLanguage(teacher, 'zh-CN');
  await switchLanguage(b, 'zh-CN');
  await lab.screenshot('teacher', 'pages-delivery-teacher-zh');
  await lab.screenshot('classroom-b', 'pages-delivery-classroom-zh');

  // --- remove A: it is ejected, and its link is refused from now on -------------------------------
  await teacher.click(`${person(aId)} [data-action="remove"]`);
  await teacher.locator('#remove-dialog').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await teacher.click('#remove-confirm');
  await waitFor('A to show it was removed', async () => (await pageState(a)).phase === 'removed');
  assert.match(await a.locator('#center-title').innerText(), /removed/i);
  await waitFor('A gone from the teacher’s list', () => teacher.locator(person(aId)).count().then((n) => n === 0));
  await waitFor('A gone from B’s screen', async () => !(await pageState(b)).strip.includes(aId));
  await lab.screenshot('classroom-a', 'pages-removed-classroom-en');

  await a.reload();
  await waitFor('the reloaded link to be refused as removed', async () => (await pageState(a)).phase === 'removed');
  assert.equal((await pageState(a)).participantId, null, 'the removed link did not join again');
  assert.ok(!(await pageState(teacher)).participants.some((p) => p.name === 'Grade 4, Shizi Village School'),
    'nobody by that name came back');

  for (const [name, lines] of Object.entries(lab.logs)) {
    assert.deepEqual(lines.filter((l) => l.startsWith('[pageerror]')), [], `the ${name} page threw no errors`);
  }
  passed = true;
});
