// A lesson end to end in real Chromium: the teacher creates a lesson in the console, goes live
// with a (fake) camera and microphone, invites two classrooms, and both classrooms decode the
// teacher's video and receive the teacher's audio through our SFU.
//
// Needs the server binary built first (`cargo build -p signaling --bin classroom`); the path can
// be overridden with CLASSROOM_BIN, the browser with CHROMIUM_PATH. Screenshots go to
// artifacts/screenshots/ at the repository root.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const BIN = process.env.CLASSROOM_BIN || path.join(REPO, 'target', 'debug', 'classroom');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = path.join(REPO, 'artifacts', 'screenshots');

const STARTUP_TIMEOUT_MS = 60_000;
const MEDIA_TIMEOUT_MS = 30_000;
const UI_TIMEOUT_MS = 15_000;

const CLASSROOMS = ['Grade 5, Shizi Village School', 'Grade 5, Hekou Township School'];

let server = null;
let browser = null;
let dataDir = null;
const pages = {}; // name -> page, for screenshots and logs
const logs = {}; // name -> lines from the page console
let passed = false;

/** Keeps the last `max` characters of a stream, so failures can show the server's own words. */
function tail(stream, max = 16_000) {
  const buf = { text: '' };
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf.text = (buf.text + chunk).slice(-max);
  });
  return buf;
}

/** Starts the server on OS-chosen ports; resolves with the teacher console URL it prints. */
async function startServer() {
  if (!existsSync(BIN)) {
    throw new Error(`server binary not found at ${BIN}; build it with \`cargo build -p signaling --bin classroom\` or set CLASSROOM_BIN`);
  }
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'classroom-test-'));
  const child = spawn(BIN, ['--http', '127.0.0.1:0', '--udp', '127.0.0.1:0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
  });
  const stdout = tail(child.stdout);
  const stderr = tail(child.stderr);
  server = { child, stdout, stderr };

  const consoleUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no "Teacher console:" line from the server within ${STARTUP_TIMEOUT_MS / 1000} s\n--- stdout ---\n${stdout.text}\n--- stderr ---\n${stderr.text}`));
    }, STARTUP_TIMEOUT_MS);
    const onData = () => {
      const m = stdout.text.match(/Teacher console: (http:\/\/\S+)/);
      if (m) {
        cleanup();
        resolve(m[1]);
      }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`the server exited before it was ready (code ${code}, signal ${signal})\n--- stdout ---\n${stdout.text}\n--- stderr ---\n${stderr.text}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout.on('data', onData);
    child.on('exit', onExit);
    onData();
  });
  return consoleUrl;
}

async function stopServer() {
  if (!server) return;
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timeout = delay(10_000).then(() => 'timeout');
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

/**
 * Polls `probe` until it returns a truthy value, or fails after `timeoutMs` naming what it
 * waited for and the last value seen. Polling is the synchronisation: no fixed sleeps.
 */
async function waitFor(what, probe, { timeoutMs = MEDIA_TIMEOUT_MS, intervalMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${seen}`);
    }
    await delay(intervalMs);
  }
}

async function openPage(name, context, url) {
  const page = await context.newPage();
  pages[name] = page;
  logs[name] = [];
  page.on('console', (msg) => logs[name].push(`[${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => logs[name].push(`[pageerror] ${err.message}`));
  await page.goto(url);
  return page;
}

async function screenshotAll() {
  mkdirSync(SHOTS, { recursive: true });
  for (const [name, page] of Object.entries(pages)) {
    try {
      // A moved pointer brings back the classroom overlays (title, teacher) that hide when idle;
      // with animations disabled the shot shows them fully faded in.
      await page.mouse.move(40, 40);
      await page.screenshot({ path: path.join(SHOTS, `${name}.png`), animations: 'disabled', timeout: 10_000 });
    } catch (err) {
      console.error(`could not screenshot ${name}: ${err.message}`);
    }
  }
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  if (!passed) {
    await screenshotAll();
    for (const [name, page] of Object.entries(pages)) {
      const state = await page
        .evaluate(() => (window.teacherDebug || window.classroomDebug)?.state?.())
        .catch((err) => `unavailable: ${err.message}`);
      console.error(`--- ${name} page state ---\n${JSON.stringify(state)}`);
    }
    for (const [name, lines] of Object.entries(logs)) {
      if (lines.length) console.error(`--- ${name} page console ---\n${lines.slice(-60).join('\n')}`);
    }
    if (server) {
      console.error(`--- server stdout ---\n${server.stdout.text}\n--- server stderr (tail) ---\n${server.stderr.text}`);
    }
  }
  if (browser) await browser.close().catch(() => {});
  await stopServer();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('a lesson reaches two classrooms: video decoded and audio received', { timeout: 240_000 }, async () => {
  const consoleUrl = await startServer();
  assert.match(consoleUrl, /#key=\S+/, 'the teacher console URL carries the admin key');

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });

  // --- the teacher creates a lesson and goes live -------------------------------------------
  const teacherContext = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const teacher = await openPage('teacher', teacherContext, consoleUrl);
  await teacher.locator('#view-lessons').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  assert.ok(!teacher.url().includes('key='), 'the admin key is removed from the address bar');

  await teacher.fill('#lesson-title-input', 'Fractions on the number line');
  await teacher.fill('#lesson-subject-input', 'Mathematics');
  await teacher.fill('#lesson-grade-input', 'Grade 5');
  await teacher.selectOption('#lesson-mode-input', 'delivery');
  await teacher.click('#create-lesson-submit');

  await teacher.locator('#view-lesson').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  const lessonId = await waitFor('the lesson to open in the studio', () =>
    teacher.evaluate(() => window.teacherDebug.state().lessonId),
  { timeoutMs: UI_TIMEOUT_MS });
  await waitFor('the camera preview', () => teacher.evaluate(() => window.teacherDebug.state().camera), {
    timeoutMs: UI_TIMEOUT_MS,
  });

  await teacher.fill('#teacher-name', 'Li Wei');
  await teacher.click('#go-live');
  await waitFor('the teacher to be publishing', () =>
    teacher.evaluate(() => window.teacherDebug.state().publishing),
  );

  // --- two classrooms are invited through the console -----------------------------------------
  const links = [];
  for (const name of CLASSROOMS) {
    await teacher.fill('#invite-name', name);
    await teacher.click('#invite-submit');
    const input = teacher.locator(`.invite[data-classroom="${name}"] input.invite-link`);
    await input.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    const link = await input.inputValue();
    assert.match(link, /\/classroom#token=\S+/, `an invitation link for ${name}`);
    links.push(link);
  }

  // --- each classroom opens its link in its own browser profile -------------------------------
  const classrooms = [];
  for (const [i, link] of links.entries()) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    classrooms.push(await openPage(`classroom-${i + 1}`, context, link));
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

  await screenshotAll();
  passed = true;
});
