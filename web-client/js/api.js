// REST client for /api (DESIGN §5). Every call carries the admin key as a Bearer token until
// accounts arrive; errors come back as `{"error": {"code", "message"}}` and become ApiError.

const KEY_STORAGE = 'classroom.adminKey';

/** A failed API call: `status` 0 means the server could not be reached at all. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
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
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
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

async function call(method, path, body) {
  const key = readAdminKey() ?? memoryKey;
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
    throw new ApiError(
      res.status,
      (e && e.code) || `http_${res.status}`,
      (e && e.message) || text || res.statusText,
    );
  }
  return data;
}

export const api = {
  listLessons: () => call('GET', '/api/lessons'),
  getLesson: (id) => call('GET', `/api/lessons/${encodeURIComponent(id)}`),
  createLesson: (lesson) => call('POST', '/api/lessons', lesson),
  createInvite: (id, role, name) =>
    call('POST', `/api/lessons/${encodeURIComponent(id)}/invites`, { role, name }),
  endLesson: (id) => call('POST', `/api/lessons/${encodeURIComponent(id)}/end`),
};
