// Accounts in real Chromium: the first admin opens the one-time link the server printed,
// chooses a password and lands on the admin page; creates a school, a classroom and a teacher;
// the teacher opens its own link, chooses a password and lands on the console; signs out and
// signs in again; a page that needs a session sends a signed-out browser to sign in and back.
// Checks that Chromium keeps the Secure, HttpOnly session cookie on http://127.0.0.1, and takes
// screenshots of the sign-in and admin pages in English and Chinese.
//
// Needs the server binary built first (see harness.mjs).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, waitFor, firstSignInLink, UI_TIMEOUT_MS } from './harness.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ADMIN_PASSWORD = 'the admin’s own password';
const TEACHER_PASSWORD = '李老师的密码 2026';

const lab = new Lab();
let passed = false;

after(() => lab.finish(passed, { shotPrefix: 'signin-' }));

const visible = (page, selector) => page.locator(selector).waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });

/** What /api/auth/me says in this page's browser profile (its cookie), or the refusal code. */
const whoAmI = (page) =>
  page.evaluate(async () => {
    const res = await fetch('/api/auth/me', { credentials: 'same-origin' });
    const body = await res.json();
    return res.ok ? { role: body.role, username: body.account && body.account.username } : { error: body.error.code };
  });

async function waitForPath(page, pathname) {
  await waitFor(`the page to reach ${pathname}`, () => new URL(page.url()).pathname === pathname, {
    timeoutMs: UI_TIMEOUT_MS,
  });
}

/** On the choose-password form: a mismatch is refused on the page, then the password is saved. */
async function choosePassword(page, password) {
  await visible(page, '#choose-form');
  assert.ok(!page.url().includes('once='), 'the one-time token is removed from the address bar');
  await page.fill('#choose-new', password);
  await page.fill('#choose-confirm', `${password}x`);
  await page.click('#choose-submit');
  await visible(page, '#choose-error');
  await page.fill('#choose-confirm', password);
  await page.click('#choose-submit');
}

test('first sign-in link, admin page, a teacher signs in, out and in again', { timeout: 180_000 }, async () => {
  await lab.start();
  const link = await firstSignInLink(lab);
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/signin\.html#once=[0-9a-f]{64}$/);
  const origin = new URL(link).origin;

  // --- the admin's first sign-in --------------------------------------------------------------
  const admin = await lab.openPage('admin', link, { viewport: { width: 1440, height: 900 } });
  await choosePassword(admin, ADMIN_PASSWORD);
  await waitForPath(admin, '/admin.html');
  await visible(admin, '#admin-content');
  assert.deepEqual(await whoAmI(admin), { role: 'admin', username: 'admin' });

  // Chromium keeps the Secure cookie on plain http://127.0.0.1, and scripts cannot read it.
  const cookies = await admin.context().cookies(origin);
  const session = cookies.find((c) => c.name === 'classroom_session');
  assert.ok(session, `a session cookie: ${JSON.stringify(cookies)}`);
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Lax');
  assert.equal(session.path, '/');
  assert.equal(await admin.evaluate(() => document.cookie), '');

  // The link worked once: opened again (another browser), it is refused with a clear message.
  const again = await lab.openPage('link-again', link);
  await visible(again, '#signin-error');
  assert.match(await again.locator('#signin-error').innerText(), /used or has expired/);

  // --- the admin registers a school, a classroom and a teacher ------------------------------
  await admin.fill('#new-school-name', 'Shizi Village Primary School');
  await admin.click('#create-school-submit');
  const school = admin.locator('.school-item[data-school="Shizi Village Primary School"]');
  await school.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
  await school.locator('input.classroom-name').fill('Grade 5');
  await school.locator('button[type="submit"]').click();
  await school.locator('.classroom-chip', { hasText: 'Grade 5' }).waitFor({ timeout: UI_TIMEOUT_MS });

  await admin.fill('#new-username', 'LiWei');
  await admin.fill('#new-name', '李伟');
  await admin.selectOption('#new-role', 'teacher');
  await admin.selectOption('#new-school', { label: 'Shizi Village Primary School' });
  await admin.click('#create-account-submit');
  await visible(admin, '#link-dialog');
  const teacherLink = await admin.inputValue('#link-url');
  assert.match(teacherLink, new RegExp(`^${origin}/signin\\.html#once=[0-9a-f]{64}$`));
  assert.match(await admin.locator('#link-title').innerText(), /李伟/);
  await lab.screenshot('admin', 'admin-link-en');
  await admin.click('#link-close');
  const row = admin.locator('#accounts-body tr[data-username="liwei"]');
  await row.waitFor({ timeout: UI_TIMEOUT_MS });
  assert.match(await row.innerText(), /Shizi Village Primary School/);
  assert.match(await row.innerText(), /Awaiting first sign-in/);

  await lab.screenshot('admin', 'admin-en');
  await admin.click('#lang .lang-option[data-locale="zh-CN"]');
  await waitFor('the admin page in Chinese', async () => (await admin.locator('#accounts-title').innerText()) === '账号', {
    timeoutMs: UI_TIMEOUT_MS,
  });
  assert.match(await row.innerText(), /等待首次登录/);
  await lab.screenshot('admin', 'admin-zh-CN');
  await admin.click('#lang .lang-option[data-locale="en"]');

  // --- the teacher's first sign-in lands on the console --------------------------------------
  const teacher = await lab.openPage('teacher', teacherLink, { viewport: { width: 1280, height: 800 } });
  await visible(teacher, '#choose-form');
  await lab.screenshot('teacher', 'signin-choose-en');
  await choosePassword(teacher, TEACHER_PASSWORD);
  await waitForPath(teacher, '/');
  assert.deepEqual(await whoAmI(teacher), { role: 'teacher', username: 'liwei' });
  // The console works on the session alone (no API key): the lesson list and who is signed in.
  await visible(teacher, '#view-lessons');
  await waitFor('the console to name the signed-in teacher', async () =>
    (await teacher.locator('#account-name').innerText()) === '李伟', { timeoutMs: UI_TIMEOUT_MS });
  assert.ok(await teacher.locator('#view-key').isHidden(), 'no access-key prompt for a signed-in teacher');
  await lab.screenshot('teacher', 'console-signed-in-en');
  await waitFor('the admin page to show the teacher as active', async () => {
    await admin.reload();
    await visible(admin, '#admin-content');
    return /Active/.test(await admin.locator('#accounts-body tr[data-username="liwei"]').innerText());
  }, { timeoutMs: UI_TIMEOUT_MS });

  // --- sign out, then a wrong password, then the right one -------------------------------------
  await teacher.goto(`${origin}/signin.html`);
  await visible(teacher, '#view-signed-in');
  assert.match(await teacher.locator('#signed-in-lead').innerText(), /李伟/);
  await teacher.click('#signout');
  await visible(teacher, '#signin-notice');
  assert.deepEqual(await whoAmI(teacher), { error: 'unauthorized' });

  await teacher.fill('#signin-username', 'liwei');
  await teacher.fill('#signin-password', 'not the password');
  await teacher.click('#signin-submit');
  await visible(teacher, '#signin-error');
  assert.match(await teacher.locator('#signin-error').innerText(), /Wrong username or password/);
  assert.deepEqual(await whoAmI(teacher), { error: 'unauthorized' });

  await teacher.fill('#signin-password', TEACHER_PASSWORD);
  await teacher.click('#signin-submit');
  await waitForPath(teacher, '/');
  assert.deepEqual(await whoAmI(teacher), { role: 'teacher', username: 'liwei' });
  // The console works on the session alone (no API key): the lesson list and who is signed in.
  await visible(teacher, '#view-lessons');
  await waitFor('the console to name the signed-in teacher', async () =>
    (await teacher.locator('#account-name').innerText()) === '李伟', { timeoutMs: UI_TIMEOUT_MS });
  assert.ok(await teacher.locator('#view-key').isHidden(), 'no access-key prompt for a signed-in teacher');
  await lab.screenshot('teacher', 'console-signed-in-en');

  // A teacher is no admin: the admin page says so.
  await teacher.goto(`${origin}/admin.html`);
  await visible(teacher, '#admin-denied');
  assert.match(await teacher.locator('#admin-denied-text').innerText(), /for administrators/);

  // --- a signed-out browser is sent to sign in, and back where it was -------------------------
  const stranger = await lab.openPage('stranger', `${origin}/admin.html`);
  await waitForPath(stranger, '/signin.html');
  assert.equal(new URL(stranger.url()).searchParams.get('next'), '/admin.html');
  await visible(stranger, '#signin-form');
  await lab.screenshot('stranger', 'signin-en');
  await stranger.fill('#signin-username', 'admin');
  await stranger.fill('#signin-password', ADMIN_PASSWORD);
  await stranger.click('#signin-submit');
  await waitForPath(stranger, '/admin.html');
  await visible(stranger, '#admin-content');

  // The sign-in page in Chinese.
  const zh = await lab.openPage('signin-zh', `${origin}/signin.html?lang=zh-CN`);
  await visible(zh, '#signin-form');
  assert.equal(await zh.locator('#signin-submit').innerText(), '登录');
  await lab.screenshot('signin-zh', 'signin-zh-CN');

  passed = true;
});

test('every sign-in and admin string exists in English and Chinese', async () => {
  globalThis.location ??= { search: '' };
  if (!globalThis.navigator) globalThis.navigator = { languages: ['en-US'] };
  const { catalogs } = await import('../js/i18n.js');
  const used = new Set();
  for (const file of ['signin.html', 'admin.html', 'js/signin.js', 'js/admin.js']) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/data-i18n(?:-placeholder|-title|-aria-label)?="([^"]+)"/g)) used.add(m[1]);
    for (const m of text.matchAll(/\bt\(\s*'([^']+)'/g)) used.add(m[1]);
  }
  // Keys built at run time from server codes and roles.
  for (const code of ['invalid_credentials', 'account_disabled', 'link_invalid', 'rate_limited']) used.add(`signin.error.${code}`);
  for (const role of ['teacher', 'operator', 'admin']) {
    used.add(`signin.role.${role}`);
    used.add(`admin.role.${role}`);
  }
  for (const status of ['active', 'noPassword', 'disabled']) used.add(`admin.status.${status}`);
  for (const code of ['username_taken', 'name_taken', 'last_admin', 'weak_password']) used.add(`admin.error.${code}`);
  assert.ok(used.size > 60, `found the keys (${used.size})`);
  for (const [name, catalog] of Object.entries(catalogs)) {
    const missing = [...used].filter((k) => !(k in catalog));
    assert.deepEqual(missing, [], `${name} is missing keys`);
  }
});
