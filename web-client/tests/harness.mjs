// Shared pieces of the browser tests: our server on OS-chosen ports, headless Chromium with fake
// camera and microphone, bounded polling, screenshots, and the teacher's usual first steps.
//
// Each test file runs in its own process (`node --test`), so one `Lab` per file holds that
// file's server, browser and pages. On failure `finish(false)` prints what every page and the
// server last said and keeps screenshots of every page.
//
// Needs the server binary built first (`cargo build -p signaling --bin classroom`); the path can
// be overridden with CLASSROOM_BIN, the browser with CHROMIUM_PATH. Screenshots go to
// artifacts/screenshots/ at the repository root.

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
export const SHOTS = path.join(REPO, 'artifacts', 'screenshots');

const STARTUP_TIMEOUT_MS = 60_000;
export const MEDIA_TIMEOUT_MS = 30_000;
export const UI_TIMEOUT_MS = 15_000;

const CHROMIUM_ARGS = [
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
];

/** Keeps the last `max` characters of a stream, so failures can show the server's own words. */
function tail(stream, max = 16_000) {
  const buf = { text: '' };
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf.text = (buf.text + chunk).slice(-max);
  });
  return buf;
}

/**
 * Polls `probe` until it returns a truthy value, or fails after `timeoutMs` naming what it
 * waited for and the last value seen. Polling is the synchronisation: no fixed sleeps.
 */
export async function waitFor(what, probe, { timeoutMs = MEDIA_TIMEOUT_MS, intervalMs = 250 } = {}) {
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

/** One server, one browser and the pages a test opened in it. */
export class Lab {
  constructor() {
    this.server = null;
    this.browser = null;
    this.dataDir = null;
    this.pages = {}; // name -> page, for screenshots and logs
    this.logs = {}; // name -> lines from the page console
  }

  /** Starts the server and the browser; resolves with the teacher console URL. */
  async start() {
    mkdirSync(SHOTS, { recursive: true });
    const consoleUrl = await this.startServer();
    this.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    return consoleUrl;
  }

  /** Starts the server on OS-chosen ports; resolves with the teacher console URL it prints. */
  async startServer() {
    if (!existsSync(BIN)) {
      throw new Error(`server binary not found at ${BIN}; build it with \`cargo build -p signaling --bin classroom\` or set CLASSROOM_BIN`);
    }
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), 'classroom-test-'));
    const child = spawn(BIN, ['--http', '127.0.0.1:0', '--udp', '127.0.0.1:0', '--data', this.dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
    });
    const stdout = tail(child.stdout);
    const stderr = tail(child.stderr);
    this.server = { child, stdout, stderr };

    return new Promise((resolve, reject) => {
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
  }

  async stopServer() {
    if (!this.server) return;
    const { child } = this.server;
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

  /** Opens `url` in a fresh browser profile (its own context) and keeps its console. */
  async openPage(name, url, { viewport = { width: 1280, height: 720 } } = {}) {
    const context = await this.browser.newContext({ viewport });
    const page = await context.newPage();
    this.pages[name] = page;
    this.logs[name] = [];
    page.on('console', (msg) => this.logs[name].push(`[${msg.type()}] ${msg.text()}`));
    page.on('pageerror', (err) => this.logs[name].push(`[pageerror] ${err.message}`));
    await page.goto(url);
    return page;
  }

  /** Saves a screenshot of one page as `file` (no extension) under artifacts/screenshots/. */
  async screenshot(name, file = name) {
    const page = this.pages[name];
    // A moved pointer brings back the classroom overlays (title, teacher) that hide when idle;
    // with animations disabled the shot shows them fully faded in.
    await page.mouse.move(40, 40);
    await page.screenshot({ path: path.join(SHOTS, `${file}.png`), animations: 'disabled', timeout: 10_000 });
  }

  /** Screenshots of every page, named `${prefix}${page name}.png`; failures are only logged. */
  async screenshotAll(prefix = '') {
    for (const name of Object.keys(this.pages)) {
      try {
        await this.screenshot(name, `${prefix}${name}`);
      } catch (err) {
        console.error(`could not screenshot ${name}: ${err.message}`);
      }
    }
  }

  /** Tears everything down; after a failure first prints what each page and the server said. */
  async finish(passed, { shotPrefix = '' } = {}) {
    if (!passed) {
      await this.screenshotAll(`${shotPrefix}failed-`);
      for (const [name, page] of Object.entries(this.pages)) {
        const state = await page
          .evaluate(() => (window.teacherDebug || window.classroomDebug)?.state?.())
          .catch((err) => `unavailable: ${err.message}`);
        console.error(`--- ${name} page state ---\n${JSON.stringify(state)}`);
      }
      for (const [name, lines] of Object.entries(this.logs)) {
        if (lines.length) console.error(`--- ${name} page console ---\n${lines.slice(-60).join('\n')}`);
      }
      if (this.server) {
        console.error(`--- server stdout ---\n${this.server.stdout.text}\n--- server stderr (tail) ---\n${this.server.stderr.text}`);
      }
    }
    if (this.browser) await this.browser.close().catch(() => {});
    await this.stopServer();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * The teacher opens the console, creates a lesson and goes live with the fake camera and
 * microphone. Resolves with the teacher's page and the lesson id once it is publishing.
 */
export async function teacherGoesLive(lab, consoleUrl, { title, subject, grade, name = 'Li Wei' }) {
  const teacher = await lab.openPage('teacher', consoleUrl, { viewport: { width: 1440, height: 900 } });
  await teacher.locator('#view-lessons').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  assert.ok(!teacher.url().includes('key='), 'the admin key is removed from the address bar');

  await teacher.fill('#lesson-title-input', title);
  await teacher.fill('#lesson-subject-input', subject);
  await teacher.fill('#lesson-grade-input', grade);
  await teacher.selectOption('#lesson-mode-input', 'delivery');
  await teacher.click('#create-lesson-submit');

  await teacher.locator('#view-lesson').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  const lessonId = await waitFor('the lesson to open in the studio', () =>
    teacher.evaluate(() => window.teacherDebug.state().lessonId),
  { timeoutMs: UI_TIMEOUT_MS });
  await waitFor('the camera preview', () => teacher.evaluate(() => window.teacherDebug.state().camera), {
    timeoutMs: UI_TIMEOUT_MS,
  });

  await teacher.fill('#teacher-name', name);
  await teacher.click('#go-live');
  await waitFor('the teacher to be publishing', () =>
    teacher.evaluate(() => window.teacherDebug.state().publishing),
  );
  return { teacher, lessonId };
}

/** Invites a classroom through the teacher console; resolves with its invitation link. */
export async function inviteClassroom(teacher, name) {
  await teacher.fill('#invite-name', name);
  await teacher.click('#invite-submit');
  const input = teacher.locator(`.invite[data-classroom="${name}"] input.invite-link`);
  await input.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  const link = await input.inputValue();
  assert.match(link, /\/classroom#token=\S+/, `an invitation link for ${name}`);
  return link;
}

/**
 * The one-time sign-in link the server printed on its first start (for the `admin` account it
 * made), from the lab's server output.
 */
export async function firstSignInLink(lab) {
  return waitFor('the "First sign-in" line from the server', () => {
    const m = lab.server.stdout.text.match(/First sign-in \(admin, one-time, 24 h\): (http:\/\/\S+)/);
    return m && m[1];
  }, { timeoutMs: UI_TIMEOUT_MS });
}

// --- helpers for the lesson pages' tests (stage, moderation, chat, screen share) -------------

/**
 * Like `teacherGoesLive`, for a lesson of any mode: creates it in the console and goes live.
 * Resolves with the teacher's page and the lesson id once camera and microphone go out.
 */
export async function teacherStartsLesson(lab, consoleUrl, { title, subject = '', grade = '', mode, name = 'Li Wei' }) {
  const teacher = await lab.openPage('teacher', consoleUrl, { viewport: { width: 1440, height: 900 } });
  await teacher.locator('#view-lessons').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await teacher.fill('#lesson-title-input', title);
  await teacher.fill('#lesson-subject-input', subject);
  await teacher.fill('#lesson-grade-input', grade);
  await teacher.selectOption('#lesson-mode-input', mode);
  await teacher.click('#create-lesson-submit');
  await teacher.locator('#view-lesson').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  const lessonId = await waitFor('the lesson to open in the studio', () =>
    teacher.evaluate(() => window.teacherDebug.state().lessonId),
  { timeoutMs: UI_TIMEOUT_MS });
  await waitFor('the camera preview', () => teacher.evaluate(() => window.teacherDebug.state().camera), {
    timeoutMs: UI_TIMEOUT_MS,
  });
  await teacher.fill('#teacher-name', name);
  await teacher.click('#go-live');
  await waitFor('the teacher to be publishing', () => teacher.evaluate(() => window.teacherDebug.state().publishing));
  return { teacher, lessonId };
}

/**
 * Invites someone through the console's invite form: `role` is classroom, student or observer.
 * Resolves with the link (a classroom's opens the big-screen view, the others the student view).
 */
export async function inviteAs(teacher, name, role) {
  await teacher.selectOption('#invite-role', role);
  await teacher.fill('#invite-name', name);
  await teacher.click('#invite-submit');
  const input = teacher.locator(`.invite[data-classroom="${name}"] input.invite-link`);
  await input.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  const link = await input.inputValue();
  const page = role === 'classroom' ? 'classroom' : 'student';
  assert.match(link, new RegExp(`/${page}#token=\\S+`), `a ${role} link for ${name}`);
  return link;
}

/** The debug hook of whichever page this is (teacher console, classroom or student view). */
export function pageState(page) {
  return page.evaluate(() => (window.teacherDebug || window.classroomDebug || window.studentDebug).state());
}

/** Switches a page's language with its own language switch (`en` or `zh-CN`). */
export async function switchLanguage(page, locale) {
  await page.locator(`.lang-switch [data-locale="${locale}"]`).first().click();
  await waitFor(`the page to be in ${locale}`, () => page.evaluate((l) => document.documentElement.lang === l, locale), {
    timeoutMs: UI_TIMEOUT_MS,
  });
}

/**
 * Waits until a counter read by `probe` stops growing: the same value over `samples`
 * consecutive reads `intervalMs` apart (so at least (samples - 1) × intervalMs of silence).
 * Bounded; resolves with the settled value. Used where the claim is "nothing more arrives".
 */
export async function waitForSteady(what, probe, { samples = 5, intervalMs = 400, timeoutMs = MEDIA_TIMEOUT_MS } = {}) {
  const seen = [];
  return waitFor(what, async () => {
    seen.push(await probe());
    if (seen.length > samples) seen.shift();
    return seen.length === samples && seen.every((v) => v === seen[0]) ? { value: seen[0] } : null;
  }, { timeoutMs, intervalMs }).then((r) => r.value);
}

/** Waits until a counter read by `probe` grows past `from`; resolves with the new value. */
export async function waitForGrowth(what, probe, from, { timeoutMs = MEDIA_TIMEOUT_MS } = {}) {
  return waitFor(what, async () => {
    const v = await probe();
    return v > from ? v : null;
  }, { timeoutMs });
}
