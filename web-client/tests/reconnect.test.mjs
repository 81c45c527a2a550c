// A classroom whose network drops comes back to its place, in real Chromium: the classroom is
// on stage in a famous-teacher lesson, its page reaches the server through a TCP relay the test
// controls, and the relay cuts every connection (a reset, as when a rural link goes down) and
// refuses new ones for a while. The teacher sees the classroom as reconnecting — still listed,
// still on stage, never "left"; the classroom's page says it is reconnecting. When the relay lets
// connections through again, the page rejoins by itself with the same participant id, is still on
// stage, publishes again, and the teacher decodes its camera again. Nobody reloads anything.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  Lab, waitFor, UI_TIMEOUT_MS, teacherStartsLesson, inviteAs, pageState,
} from './harness.mjs';

const lab = new Lab();
let passed = false;
let relay = null;

after(async () => {
  relay?.close();
  await lab.finish(passed, { shotPrefix: 'reconnect-' });
});

/** A TCP relay to `target` that can cut its connections and refuse new ones. */
function startRelay(target) {
  const sockets = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.hostname);
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        /** Resets every connection and refuses new ones until `allow()`. */
        cut() {
          refusing = true;
          for (const s of sockets) s.resetAndDestroy();
        },
        allow() {
          refusing = false;
        },
        close() {
          for (const s of sockets) s.destroy();
          server.close();
        },
      });
    });
  });
}

async function cameraDecodedAtTeacher(teacher, roomId, notPublication = null) {
  const camera = await waitFor('the classroom’s camera publication at the teacher', async () => {
    const s = await pageState(teacher);
    return s.publications.find((p) => p.participant_id === roomId && p.source === 'camera' && p.id !== notPublication) || null;
  });
  await waitFor('the teacher to decode the classroom’s camera', async () => {
    const s = await teacher.evaluate((id) => window.teacherDebug.publicationStats(id), camera.id);
    return s && s.framesDecoded > 0;
  });
  return camera.id;
}

test('a classroom on stage loses its network and comes back to its place', { timeout: 180_000 }, async () => {
  const consoleUrl = await lab.start();
  const { teacher } = await teacherStartsLesson(lab, consoleUrl, {
    title: 'Fractions on a number line',
    subject: 'Maths',
    grade: 'Grade 4',
    mode: 'famous_teacher',
  });
  const link = new URL(await inviteAs(teacher, 'Grade 4, Hongxing School', 'classroom'));
  relay = await startRelay(new URL(link.href));
  link.port = String(relay.port);
  const room = await lab.openPage('classroom', link.href);
  await waitFor('the classroom to show the lesson live', async () => (await pageState(room)).phase === 'live');
  const roomId = (await pageState(room)).participantId;

  // On stage: hand up with the remote's key, invited, accepted with OK.
  await room.keyboard.press('h');
  await waitFor('the hand at the teacher', async () => (await pageState(teacher)).hands.includes(roomId));
  await teacher.click(`#hands-list .hand[data-participant-id="${roomId}"] [data-action="invite"]`);
  await room.locator('#invite-prompt').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await room.keyboard.press('Enter');
  await waitFor('the classroom on stage and sending', async () => {
    const s = await pageState(room);
    return s.onStage && s.sending.includes('camera') && s.sending.includes('microphone');
  });
  const firstCamera = await cameraDecodedAtTeacher(teacher, roomId);

  // The link goes down.
  relay.cut();
  const away = await waitFor('the teacher to show the classroom reconnecting', async () => {
    const s = await pageState(teacher);
    return s.reconnecting.includes(roomId) ? s : null;
  });
  assert.ok(away.participants.some((p) => p.id === roomId), 'still listed, not gone');
  assert.deepEqual(away.stage, [roomId], 'still on stage');
  await waitFor('the classroom page to say it is reconnecting', async () => (await pageState(room)).phase === 'reconnecting');
  await lab.screenshot('teacher', 'reconnect-teacher-sees-reconnecting');
  await lab.screenshot('classroom', 'reconnect-classroom-reconnecting');

  // The link comes back: the page rejoins by itself.
  relay.allow();
  await waitFor('the classroom back, live, on stage and sending', async () => {
    const s = await pageState(room);
    return s.phase === 'live' && s.onStage && s.sending.includes('camera') && s.sending.includes('microphone');
  });
  assert.equal((await pageState(room)).participantId, roomId, 'the same participant, not a new one');
  const back = await waitFor('the teacher to show the classroom back', async () => {
    const s = await pageState(teacher);
    return s.reconnecting.length === 0 ? s : null;
  });
  assert.deepEqual(back.stage, [roomId], 'its stage place kept');
  await cameraDecodedAtTeacher(teacher, roomId, firstCamera);

  for (const [name, lines] of Object.entries(lab.logs)) {
    const errors = lines.filter((l) => l.startsWith('[pageerror]'));
    assert.deepEqual(errors, [], `the ${name} page threw no errors`);
  }
  passed = true;
});
