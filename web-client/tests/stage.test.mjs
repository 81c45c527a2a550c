// Raise hand and stage, end to end in real Chromium, in a famous-teacher lesson (where a
// classroom sends nothing until it is on stage): a classroom raises its hand with the `H` key,
// a student with the button on a phone-sized page; the teacher sees both hands in the order
// they were raised, invites the classroom, the classroom accepts with Enter (as with a TV
// remote's OK), and then its camera reaches the teacher (decoded frames) and the student.
// Taken down, it stops sending. An invitation can be declined.
//
// Screenshots of the three pages in English and Chinese go to artifacts/screenshots/pages-*.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Lab, waitFor, UI_TIMEOUT_MS, teacherStartsLesson, inviteAs, pageState, switchLanguage,
} from './harness.mjs';

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed, { shotPrefix: 'stage-' }));

test('raise hand, invite, accept: the classroom is seen on stage, then taken down', { timeout: 180_000 }, async () => {
  const consoleUrl = await lab.start();
  const { teacher } = await teacherStartsLesson(lab, consoleUrl, {
    title: 'Poems of the Tang dynasty',
    subject: 'Chinese',
    grade: 'Grade 6',
    mode: 'famous_teacher',
  });
  const classroomLink = await inviteAs(teacher, 'Grade 6, Shizi Village School', 'classroom');
  const studentLink = await inviteAs(teacher, 'Wang Fang', 'student');

  const room = await lab.openPage('classroom', classroomLink);
  const student = await lab.openPage('student', studentLink, { viewport: { width: 390, height: 844 } });
  for (const [name, page] of [['classroom', room], ['student', student]]) {
    await waitFor(`the ${name} to show the lesson live`, async () => (await pageState(page)).phase === 'live');
  }
  const roomId = (await pageState(room)).participantId;
  const studentId = (await pageState(student)).participantId;
  assert.deepEqual((await pageState(room)).sending, [], 'off stage, a classroom in this mode sends nothing');

  // --- hands, in the order they went up ---------------------------------------------------------
  await room.keyboard.press('h');
  await waitFor('the classroom’s hand at the teacher', async () => (await pageState(teacher)).hands.length === 1);
  await student.click('#hand');
  const hands = await waitFor('both hands at the teacher', async () => {
    const s = await pageState(teacher);
    return s.hands.length === 2 ? s.hands : null;
  });
  assert.deepEqual(hands, [roomId, studentId], 'hands are kept in the order they were raised');
  const rows = await teacher.locator('#hands-list .hand').evaluateAll((els) => els.map((e) => Number(e.dataset.participantId)));
  assert.deepEqual(rows, [roomId, studentId], 'the console lists them in that order');
  assert.ok(await room.locator('#hand-flag').isVisible(), 'the classroom shows that its hand is up');

  // --- the teacher invites the classroom; it accepts with the remote's OK ------------------------
  await teacher.click(`#hands-list .hand[data-participant-id="${roomId}"] [data-action="invite"]`);
  await room.locator('#invite-prompt').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  assert.equal(await room.evaluate(() => document.activeElement?.id), 'invite-accept', 'accepting has the focus');
  await room.keyboard.press('Enter');
  await waitFor('the classroom on stage, sending camera and microphone', async () => {
    const s = await pageState(room);
    return s.onStage && s.sending.includes('camera') && s.sending.includes('microphone') && s.publisher === 'connected';
  });
  assert.equal((await pageState(room)).hand, false, 'going on stage lowers the hand');

  const camera = await waitFor('the classroom’s camera publication at the teacher', async () => {
    const s = await pageState(teacher);
    return s.publications.find((p) => p.participant_id === roomId && p.source === 'camera') || null;
  });
  const decoded = await waitFor('the teacher to decode the classroom’s camera', async () => {
    const s = await teacher.evaluate((id) => window.teacherDebug.publicationStats(id), camera.id);
    return s && s.framesDecoded > 0 ? s : null;
  });
  assert.ok(decoded.frameHeight > 0, 'the teacher knows the frame height');
  await waitFor('the classroom’s tile on the console’s stage, with video', async () =>
    (await pageState(teacher)).tiles.some((tile) => tile.participantId === roomId && tile.video));
  await waitFor('the student to see the classroom on stage', async () => {
    const s = await student.evaluate((id) => window.studentDebug.publicationStats(id), camera.id);
    return s && s.framesDecoded > 0;
  });

  await teacher.evaluate(() => window.scrollTo(0, 0));
  for (const [name, page] of [['teacher', teacher], ['classroom', room], ['student', student]]) {
    await lab.screenshot(name, `pages-famous_teacher-${name}-en`);
    await switchLanguage(page, 'zh-CN');
    await lab.screenshot(name, `pages-famous_teacher-${name}-zh`);
  }

  // --- an invitation declined -----------------------------------------------------------------------
  await teacher.click(`#hands-list .hand[data-participant-id="${studentId}"] [data-action="invite"]`);
  await student.locator('#invite-prompt').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await student.click('#invite-decline');
  await waitFor('the teacher to hear the student declined', async () => (await pageState(teacher)).invited.length === 0);
  assert.equal((await pageState(student)).onStage, false);

  // --- taken down: the classroom stops sending --------------------------------------------------------
  await teacher.click(`#remote-tiles .tile[data-participant-id="${roomId}"] [data-action="take-down"]`);
  await waitFor('the classroom off stage and silent', async () => {
    const s = await pageState(room);
    return !s.onStage && s.sending.length === 0;
  });
  await waitFor('its publications gone at the teacher', async () =>
    !(await pageState(teacher)).publications.some((p) => p.participant_id === roomId));
  assert.ok(await room.locator('#self-view').isHidden(), 'the classroom no longer shows its own camera');

  // --- a TV remote: arrows move between the controls, OK presses -----------------------------------
  const focused = () => room.evaluate(() => document.activeElement?.id || document.activeElement?.textContent || '');
  await room.evaluate(() => document.activeElement?.blur());
  await room.keyboard.press('ArrowRight');
  assert.equal(await focused(), 'hand', 'the first arrow lands on the hand button');
  await room.keyboard.press('ArrowRight');
  assert.notEqual(await focused(), 'hand', 'the next arrow moves on');
  await room.keyboard.press('ArrowLeft');
  assert.equal(await focused(), 'hand', 'and back');
  await room.keyboard.press('Enter');
  await waitFor('the hand raised with the remote’s OK', async () => (await pageState(teacher)).hands.includes(roomId));

  for (const [name, lines] of Object.entries(lab.logs)) {
    const errors = lines.filter((l) => l.startsWith('[pageerror]'));
    assert.deepEqual(errors, [], `the ${name} page threw no errors`);
  }
  passed = true;
});
