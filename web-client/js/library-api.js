// What the library and replay pages share: their GET calls to /api (with the session cookie or
// the API key, like api.js) and how a media time is written.

import { ApiError, readAdminKey, signinUrl } from './api.js';

/**
 * GET `path` from /api as this browser may (its session cookie, or the API key); the library's
 * two calls. A refusal becomes an ApiError; not signed in sends the page to sign in.
 */
export async function getJson(path) {
  const key = readAdminKey();
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  let res;
  try {
    res = await fetch(path, { headers, cache: 'no-store', credentials: 'same-origin' });
  } catch (err) {
    throw new ApiError(0, 'network', String(err && err.message ? err.message : err));
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data && data.error;
    if (res.status === 401 && !key) location.assign(signinUrl());
    throw new ApiError(res.status, (e && e.code) || `http_${res.status}`, (e && e.message) || res.statusText);
  }
  return data;
}

/** `m:ss` or `h:mm:ss` for a duration in milliseconds. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

