// Chat end to end in real Chromium, in a network lesson: a student on a phone-sized page writes,
// the teacher and a classroom see it; the teacher answers; a student who joins later finds both
// in the history; the teacher deletes one and it disappears everywhere. A message over the
// limit and a burst over the rate limit are refused with their own clear words, and the refused
// text stays in the box. An observer's notes reach the teacher only, and the teacher can answer
// in the observers' channel.
//
// Screenshots of the network-lesson console and the student view (English and Chinese) go to
// artifacts/screenshots/pages-network-*.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Lab, waitFor, UI_TIMEOUT_MS, teacherStartsLesson, inviteAs, pageState, switchLanguage,
} from './harness.mjs';

const PHONE = { width: 390, height: 844 };

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed, { shotPrefix: 'chat-' }));

/** Writes in the page's chat box and sends with Enter, as a person would. */
async function say(page, text) {
  await page.fill('#chat .chat-input', text);
  await page.press('#chat .chat-input', 'Enter');
}

const texts = async (page) => (await pageState(page)).chat.map((m) => m.text);

test('chat: round trip, history, delete, limits, observers’ channel', { timeout: 180_000 }, async () => {
  const consoleUrl = await lab.start();
  const { teacher } = await teacherStartsLesson(lab, consoleUrl, {
    title: 'The water cycle',
    subject: 'Science',
    grade: 'Grade 5',
    mode: 'network',
  });
  const roomLink = await inviteAs(teacher, 'Grade 5, Hekou Township School', 'classroom');
  const wangLink = await inviteAs(teacher, 'Wang Fang', 'student');
  const liLink = await inviteAs(teacher, 'Li Ming', 'student');
  const observerLink = await inviteAs(teacher, 'Inspector Zhao', 'observer');

  const room = await lab.openPage('classroom', roomLink);
  const wang = await lab.openPage('student', wangLink, { viewport: PHONE });
  for (const page of [room, wang]) await waitFor('the page to join', async () => (await pageState(page)).phase === 'live');

  // --- a round trip -----------------------------------------------------------------------------
  await say(wang, '老师好！What makes clouds?');
  for (const [name, page] of [['teacher', teacher], ['classroom', room], ['student', wang]]) {
    await waitFor(`the student’s message at the ${name}`, async () => (await texts(page)).includes('老师好！What makes clouds?'));
  }
  assert.equal(await wang.inputValue('#chat .chat-input'), '', 'a sent message leaves the box');
  await say(teacher, 'Water vapour that cools down.');
  await waitFor('the teacher’s answer at the student', async () => (await texts(wang)).includes('Water vapour that cools down.'));
  await teacher.locator('#chat .chat-message', { hasText: 'Water vapour' }).waitFor({ timeout: UI_TIMEOUT_MS });

  // --- history for a late joiner ------------------------------------------------------------------
  const li = await lab.openPage('student-late', liLink, { viewport: PHONE });
  await waitFor('the late student to see the history', async () => {
    const t = await texts(li);
    return t.includes('老师好！What makes clouds?') && t.includes('Water vapour that cools down.');
  });
  assert.equal(await li.locator('#chat .chat-message').count(), 2, 'the history is on the page');

  // --- the teacher deletes a message: gone everywhere ---------------------------------------------
  const question = teacher.locator('#chat .chat-message', { hasText: 'What makes clouds' });
  await question.locator('[data-action="delete-chat"]').click();
  for (const [name, page] of [['teacher', teacher], ['classroom', room], ['student', wang], ['late student', li]]) {
    await waitFor(`the deleted message gone at the ${name}`, async () => !(await texts(page)).includes('老师好！What makes clouds?'));
  }
  assert.equal(await wang.locator('#chat .chat-message', { hasText: 'What makes clouds' }).count(), 0);
  assert.equal(await li.locator('[data-action="delete-chat"]').count(), 0, 'students cannot delete');

  // --- a message over the limit: refused in words, nothing lost -------------------------------------
  const long = '云'.repeat(501);
  await say(li, long);
  const error = li.locator('#chat .chat-error');
  await error.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  assert.match(await error.innerText(), /500/, 'the error names the limit');
  assert.equal(await li.inputValue('#chat .chat-input'), long, 'the refused text is still in the box');
  assert.ok(!(await texts(teacher)).includes(long), 'nobody received it');

  // --- a burst over the rate limit: refused in words --------------------------------------------------
  await li.evaluate(() => {
    const input = document.querySelector('#chat .chat-input');
    const form = document.querySelector('#chat .chat-form');
    // Six at once, in one task: the server allows five in ten seconds.
    for (let i = 1; i <= 6; i++) {
      input.value = `drop ${i}`;
      form.requestSubmit();
    }
  });
  await waitFor('the rate limit error on the student page', async () => /too many|slow down/i.test(await error.innerText()));
  await waitFor('five of the six at the teacher', async () => (await texts(teacher)).filter((t) => t.startsWith('drop ')).length === 5);
  assert.equal(await li.inputValue('#chat .chat-input'), 'drop 6', 'the refused one is back in the box');

  // --- observers: their notes reach the teacher, not the classrooms ---------------------------------
  const observer = await lab.openPage('observer', observerLink, { viewport: PHONE });
  await waitFor('the observer to join', async () => (await pageState(observer)).phase === 'live');
  assert.ok(await observer.locator('#hand').isHidden(), 'an observer has no hand to raise');
  await say(observer, 'Good pacing so far.');
  await waitFor('the observer’s note at the teacher', async () => (await texts(teacher)).includes('Good pacing so far.'));
  await teacher.locator('#chat .chat-message.observers', { hasText: 'Good pacing' }).waitFor({ timeout: UI_TIMEOUT_MS });
  await teacher.selectOption('#chat .chat-audience', 'observers');
  await say(teacher, 'Thanks, noted.');
  await waitFor('the teacher’s reply at the observer', async () => (await texts(observer)).includes('Thanks, noted.'));
  await say(teacher, 'Now let us draw the cycle.'); // still to the observers only
  await waitFor('the second reply at the observer', async () => (await texts(observer)).includes('Now let us draw the cycle.'));
  for (const [name, page] of [['classroom', room], ['student', wang]]) {
    const seen = await texts(page);
    assert.ok(!seen.some((t) => ['Good pacing so far.', 'Thanks, noted.', 'Now let us draw the cycle.'].includes(t)),
      `the ${name} saw nothing of the observers’ channel`);
  }

  await room.keyboard.press('c');
  await room.locator('#chat-drawer').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await teacher.evaluate(() => window.scrollTo(0, 0));
  for (const [name, page] of [['teacher', teacher], ['student', wang], ['classroom', room]]) {
    await lab.screenshot(name, `pages-network-${name}-en`);
    await switchLanguage(page, 'zh-CN');
    await lab.screenshot(name, `pages-network-${name}-zh`);
  }

  for (const [name, lines] of Object.entries(lab.logs)) {
    assert.deepEqual(lines.filter((l) => l.startsWith('[pageerror]')), [], `the ${name} page threw no errors`);
  }
  passed = true;
});
