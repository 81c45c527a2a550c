// Simulcast end to end in real Chromium: the teacher's camera goes out as three layers
// (≈180p / 360p / 720p), a classroom receives the top one, asks for the lowest
// (`set_subscription`, as a room on a poor link would), then lifts the cap again. After each
// switch the classroom must keep decoding: the SFU switches only on a keyframe of the new layer.
//
// Needs the server binary built first (see harness.mjs). Screenshots of each stage go to
// artifacts/screenshots/simulcast-*.png at the repository root.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, waitFor, teacherGoesLive, inviteClassroom } from './harness.mjs';

/** Chromium enables the top layer only once its bandwidth estimate has ramped up. */
const TOP_LAYER_TIMEOUT_MS = 40_000;
const SWITCH_TIMEOUT_MS = 30_000;
/** About 1.5 s of Chromium's fake camera (20 fps): a decoder that stalled would not get there. */
const PROGRESS_FRAMES = 30;
const HIGH_MIN_HEIGHT = 540;
const LOW_MAX_HEIGHT = 240;

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed, { shotPrefix: 'simulcast-' }));

test('a classroom follows the simulcast layer it asks for without a decoding stall', { timeout: 300_000 }, async (t) => {
  const consoleUrl = await lab.start();
  const { teacher } = await teacherGoesLive(lab, consoleUrl, {
    title: 'Rivers of Yunnan',
    subject: 'Geography',
    grade: 'Grade 6',
  });

  const camera = await teacher.evaluate(() => window.teacherDebug.cameraSettings());
  t.diagnostic(`teacher camera: ${camera.width}x${camera.height} @ ${camera.frameRate} fps`);
  assert.ok(camera.height >= 720, `the fake camera is 720p so the layers differ (got ${camera.height})`);

  const sentLayers = await waitFor('the teacher to send three simulcast layers', async () => {
    const layers = await teacher.evaluate(() => window.teacherDebug.videoLayers());
    const rids = layers.map((l) => l.rid);
    return ['low', 'medium', 'high'].every((r) => rids.includes(r)) ? layers : null;
  });
  t.diagnostic(`teacher layers at first: ${describeLayers(sentLayers)}`);

  const link = await inviteClassroom(teacher, 'Grade 6, Dali No. 3 Primary School');
  const room = await lab.openPage('classroom', link);

  /** The classroom's stats; on a timeout the error also shows what the teacher sends. */
  const stats = () => room.evaluate(() => window.classroomDebug.stats());
  const waitForVideo = async (what, ok, timeoutMs) => {
    try {
      return await waitFor(what, async () => {
        const s = await stats();
        return ok(s) ? s : null;
      }, { timeoutMs });
    } catch (err) {
      const layers = await teacher.evaluate(() => window.teacherDebug.videoLayers()).catch(() => []);
      err.message += `\nclassroom stats: ${JSON.stringify(await stats().catch(() => null))}`;
      err.message += `\nteacher layers: ${describeLayers(layers)}`;
      throw err;
    }
  };
  /** Decoding goes on at the layer `ok` accepts: frames keep coming, none of another height. */
  const keepsDecoding = async (label, from, ok) => {
    const stray = new Set();
    const s = await waitForVideo(
      `${label}: ${PROGRESS_FRAMES} more frames decoded`,
      (now) => {
        if (!ok(now)) stray.add(now.videoFrameHeight);
        return now.videoFramesDecoded >= from.videoFramesDecoded + PROGRESS_FRAMES;
      },
      SWITCH_TIMEOUT_MS,
    );
    assert.deepEqual([...stray], [], `${label}: no frames of another layer's height meanwhile`);
    t.diagnostic(
      `${label}: ${s.videoFrameWidth}x${s.videoFrameHeight}, ${s.videoFramesDecoded} frames ` +
        `(${s.videoKeyFramesDecoded} key), freezes ${s.videoFreezeCount}, PLIs ${s.videoPliCount}, ` +
        `dropped ${s.videoFramesDropped}, lost ${s.videoPacketsLost}`,
    );
    return s;
  };
  const isHigh = (s) => s.videoFrameHeight >= HIGH_MIN_HEIGHT;
  const isLow = (s) => s.videoFrameHeight > 0 && s.videoFrameHeight <= LOW_MAX_HEIGHT;

  // --- the top layer, once the teacher's browser sends it ------------------------------------
  const high = await waitForVideo(
    `the classroom to decode the top layer (height ≥ ${HIGH_MIN_HEIGHT})`,
    (s) => s.videoFramesDecoded > 0 && isHigh(s),
    TOP_LAYER_TIMEOUT_MS,
  );
  const highSteady = await keepsDecoding('high', high, isHigh);
  await waitFor('the classroom to show the lesson as live', () =>
    room.evaluate(() => window.classroomDebug.state().phase === 'live'),
  );
  t.diagnostic(`teacher layers: ${describeLayers(await teacher.evaluate(() => window.teacherDebug.videoLayers()))}`);
  await lab.screenshot('classroom', 'simulcast-high');
  await lab.screenshot('teacher', 'simulcast-teacher');

  // --- capped at the lowest layer --------------------------------------------------------------
  const limited = await room.evaluate(() => window.classroomDebug.limitVideo('low'));
  assert.equal(limited.sent, true, `set_subscription sent: ${JSON.stringify(limited)}`);
  assert.equal(limited.maxLayer, 'low');
  const low = await waitForVideo(
    `the classroom to switch to the lowest layer (height ≤ ${LOW_MAX_HEIGHT})`,
    isLow,
    SWITCH_TIMEOUT_MS,
  );
  assert.ok(low.videoFramesDecoded > highSteady.videoFramesDecoded, 'frames decoded across the switch down');
  assert.ok(low.videoKeyFramesDecoded > highSteady.videoKeyFramesDecoded, 'the switch down began on a keyframe');
  const lowSteady = await keepsDecoding('low', low, isLow);
  await lab.screenshot('classroom', 'simulcast-low');

  // --- the cap lifted: back to the top layer ---------------------------------------------------
  const released = await room.evaluate(() => window.classroomDebug.releaseVideo());
  assert.equal(released.sent, true, `set_subscription sent: ${JSON.stringify(released)}`);
  assert.equal(released.maxLayer, 'high');
  const back = await waitForVideo(
    `the classroom to return to the top layer (height ≥ ${HIGH_MIN_HEIGHT})`,
    isHigh,
    TOP_LAYER_TIMEOUT_MS,
  );
  assert.ok(back.videoFramesDecoded > lowSteady.videoFramesDecoded, 'frames decoded across the switch up');
  assert.ok(back.videoKeyFramesDecoded > lowSteady.videoKeyFramesDecoded, 'the switch up began on a keyframe');
  await keepsDecoding('released', back, isHigh);
  await lab.screenshot('classroom', 'simulcast-released');

  const errors = lab.logs.classroom.filter((l) => l.startsWith('[error]') || l.startsWith('[pageerror]'));
  assert.deepEqual(errors, [], 'the classroom page logged no errors');
  passed = true;
});

/** One line per outgoing layer: what the teacher's browser sends and why it holds back. */
function describeLayers(layers) {
  return layers
    .map(
      (l) =>
        `${l.rid || '-'}:${l.frameWidth}x${l.frameHeight} active=${l.active} frames=${l.framesEncoded} ` +
        `target=${l.targetBitrate} limit=${l.qualityLimitationReason}`,
    )
    .concat(layers.length ? [`estimate=${layers[0].availableOutgoingBitrate}`] : [])
    .join('; ');
}
