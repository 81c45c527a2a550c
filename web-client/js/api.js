// REST client for /api (DESIGN §5). A call is authenticated by one of two things:
// - the session cookie a sign-in set (HttpOnly: this code never sees it; `credentials:
//   'same-origin'` makes the browser send it), or
// - the API key (the admin token printed in the server's "Teacher console" link), sent as a
//   Bearer token when this browser has one. Scripts, bots and the tests use it; people sign in.
// Errors come back as `{"error": {"code", "message"}}` and become ApiError. A call refused as
// `unauthorized` without an API key means "not signed in": the page goes to the sign-in page,
// which comes back here afterwards.

const KEY_STORAGE = 'classroom.adminKey';

/**
 * A failed API call: `status` 0 means the server could not be reached at all. `retryAfter` is
 * the seconds a `rate_limited` refusal asks to wait, when it says.
 */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * Takes `#key=...` from the address (the link the server prints), keeps it in localStorage and
 * removes it from the address bar so it does not linger in history or screenshots.
 * Returns the key to use, or null when there is none.
 */
export function adoptAdminKey() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const fromUrl = params.get('key');
  if (fromUrl) {
    storeAdminKey(fromUrl);
    params.delete('key');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  }
  return readAdminKey();
}

export function readAdminKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? memoryKey;
  } catch {
    return memoryKey;
  }
}

export function storeAdminKey(key) {
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Without storage the key lives for this page only; the console still works.
  }
  memoryKey = key;
}

export function forgetAdminKey() {
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Nothing stored.
  }
  memoryKey = null;
}

let memoryKey = null;

/**
 * Where a page goes to sign in, coming back to `back` (this page by default) afterwards. Only
 * hash routes (`#/…`) travel along: other fragments may hold tokens.
 */
export function signinUrl(back = location.pathname + location.search + (location.hash.startsWith('#/') ? location.hash : '')) {
  return `/signin.html?next=${encodeURIComponent(back)}`;
}

/**
 * The path to go to after signing in: `next` when it names a page of this site, else `fallback`.
 * Anything else (another host, `//evil`, `javascript:`) is ignored, so a crafted link cannot
 * send someone elsewhere after they sign in.
 */
export function safeNext(next, fallback) {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) {
    return fallback;
  }
  return next;
}

async function call(method, path, body, { redirect = true } = {}) {
  const key = readAdminKey();
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch (err) {
    throw new ApiError(0, 'network', String(err && err.message ? err.message : err));
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = data && data.error;
    const retryAfter = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
    const error = new ApiError(
      res.status,
      (e && e.code) || `http_${res.status}`,
      (e && e.message) || text || res.statusText,
      Number.isFinite(retryAfter) ? retryAfter : null,
    );
    // Not signed in (or the session ended): sign in, then come back. With an API key the
    // key itself is wrong, which the page handles.
    if (redirect && res.status === 401 && error.code === 'unauthorized' && !key) {
      location.assign(signinUrl());
    }
    throw error;
  }
  return data;
}

const id = (value) => encodeURIComponent(value);

export const api = {
  // Lessons. `state` (scheduled, live, ended) lists one state in its reading order.
  listLessons: (state) => call('GET', state ? `/api/lessons?state=${id(state)}` : '/api/lessons'),
  getLesson: (lesson) => call('GET', `/api/lessons/${id(lesson)}`),
  createLesson: (lesson) => call('POST', '/api/lessons', lesson),
  /** An invite link; `classroomId` names it after a registered classroom (`name` may then be omitted). */
  createInvite: (lesson, role, name, { classroomId, ttlSecs } = {}) =>
    call('POST', `/api/lessons/${id(lesson)}/invites`, {
      role,
      ...(name ? { name } : {}),
      ...(classroomId !== undefined && classroomId !== null ? { classroom_id: classroomId } : {}),
      ...(ttlSecs ? { ttl_secs: ttlSecs } : {}),
    }),
  endLesson: (lesson) => call('POST', `/api/lessons/${id(lesson)}/end`),

  // Signing in. These never send the page to the sign-in page: they are how it signs in.
  me: () => call('GET', '/api/auth/me', undefined, { redirect: false }),
  signIn: (username, password) => call('POST', '/api/auth/signin', { username, password }, { redirect: false }),
  useSigninLink: (token) => call('POST', '/api/auth/once', { token }, { redirect: false }),
  signOut: () => call('POST', '/api/auth/signout', undefined, { redirect: false }),
  /** Sets the signed-in account's password; `current` is needed unless signed in by a link. */
  setPassword: (next, current) =>
    call('POST', '/api/auth/password', current ? { current, new: next } : { new: next }, { redirect: false }),

  // Accounts (admins).
  listAccounts: () => call('GET', '/api/accounts'),
  /** `{username, display_name?, role, school_id?, password?}`; without a password the answer carries a one-time link. */
  createAccount: (account) => call('POST', '/api/accounts', account),
  /** `{display_name?, role?, school_id? (null clears), disabled?}` */
  updateAccount: (account, patch) => call('PATCH', `/api/accounts/${id(account)}`, patch),
  newSigninLink: (account) => call('POST', `/api/accounts/${id(account)}/signin-link`),

  // Schools and classrooms (anyone signed in reads; admins add).
  listSchools: () => call('GET', '/api/schools'),
  createSchool: (name) => call('POST', '/api/schools', { name }),
  listClassrooms: (school) => call('GET', `/api/schools/${id(school)}/classrooms`),
  createClassroom: (school, name) => call('POST', `/api/schools/${id(school)}/classrooms`, { name }),
};
