// Unit tests of the browser signaling client (js/signaling.js) against a scripted stand-in for
// the browser's WebSocket: joining, request/reply matching, refusals, rejoining after a drop,
// pings. No server and no browser needed.

import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

/** A WebSocket the test drives: it opens, receives and closes when told to. */
class ScriptedSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static all = [];

  constructor(url) {
    this.url = url;
    this.readyState = ScriptedSocket.CONNECTING;
    this.sent = [];
    ScriptedSocket.all.push(this);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code = 1005, reason = '') {
    if (this.readyState === ScriptedSocket.CLOSED) return;
    this.readyState = ScriptedSocket.CLOSED;
    this.closedWith = { code, reason };
    this.onclose?.({ code: 1006 });
  }

  /** The server closes the socket with `code`. */
  serverClose(code, reason = '') {
    this.readyState = ScriptedSocket.CLOSED;
    this.onclose?.({ code, reason });
  }

  // --- what the "server" does ---
  open() {
    this.readyState = ScriptedSocket.OPEN;
    this.onopen?.();
  }

  receive(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  lastSent(type) {
    return this.sent.filter((m) => m.type === type).at(-1);
  }
}

globalThis.WebSocket = ScriptedSocket;
globalThis.location = { protocol: 'http:', host: '127.0.0.1:8080' };

const { SignalingClient, SignalingError, defaultSignalingUrl } = await import('../js/signaling.js');

/** Polls `probe` until truthy; every wait in these tests is bounded. */
async function until(what, probe, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

const JOINED = {
  type: 'joined',
  you: { id: 7, name: 'Grade 5', role: 'classroom' },
  lesson: { id: 3, title: 'Fractions', subject: 'Maths', grade: '5', mode: 'delivery', state: 'live' },
  participants: [],
  publications: [],
};

let client = null;

beforeEach(() => {
  ScriptedSocket.all = [];
});

afterEach(() => {
  client?.close();
  client = null;
});

/** Starts a client and answers its join; returns [client, socket, joined]. */
async function joinedClient(opts = {}) {
  client = new SignalingClient({ token: 'jwt-1', ...opts });
  const started = client.start();
  const ws = ScriptedSocket.all[0];
  ws.open();
  const join = ws.lastSent('join');
  ws.receive({ ...JOINED, id: join.id });
  return [client, ws, await started];
}

test('the default address is this host\'s /ws', () => {
  assert.equal(defaultSignalingUrl(), 'ws://127.0.0.1:8080/ws');
});

test('joins with the token, the lesson and a request id', async () => {
  const [, ws, joined] = await joinedClient({ lesson: 3 });
  const join = ws.lastSent('join');
  assert.equal(join.token, 'jwt-1');
  assert.equal(join.lesson, 3);
  assert.ok(join.id, 'the join carries an id so a refusal can echo it');
  assert.equal(joined.you.id, 7);
  assert.equal(client.status, 'open');
});

test('leaves the lesson out of the join when the page does not know it', async () => {
  const [, ws] = await joinedClient();
  assert.equal('lesson' in ws.lastSent('join'), false);
});

test('a reply is matched to its request by id, an error reply rejects with its code', async () => {
  const [c, ws] = await joinedClient();
  const answered = c.request({ type: 'offer', sdp: 'v=0' });
  const refused = c.request({ type: 'offer', sdp: 'bad' });
  const [first, second] = ws.sent.filter((m) => m.type === 'offer');
  assert.notEqual(first.id, second.id);
  ws.receive({ type: 'error', id: second.id, code: 'bad_sdp', message: 'no m-lines' });
  ws.receive({ type: 'answer', id: first.id, sdp: 'v=0 answer' });
  assert.equal((await answered).sdp, 'v=0 answer');
  await assert.rejects(refused, (err) => err instanceof SignalingError && err.code === 'bad_sdp');
});

test('an error that answers no request is reported as server-error', async () => {
  const [c, ws] = await joinedClient();
  const seen = new Promise((resolve) => c.addEventListener('server-error', (e) => resolve(e.detail)));
  ws.receive({ type: 'error', code: 'rate_limited', message: 'slow down' });
  assert.equal((await seen).code, 'rate_limited');
});

test('server messages are dispatched by type', async () => {
  const [c, ws] = await joinedClient();
  const got = new Promise((resolve) => c.addEventListener('participant_joined', (e) => resolve(e.detail)));
  ws.receive({ type: 'participant_joined', participant: { id: 9, name: 'Li', role: 'teacher' } });
  assert.equal((await got).participant.name, 'Li');
});

test('a refused token stops for good: start rejects and nothing reconnects', async () => {
  client = new SignalingClient({ token: 'expired' });
  const fatal = new Promise((resolve) => client.addEventListener('fatal', (e) => resolve(e.detail)));
  const started = client.start();
  const ws = ScriptedSocket.all[0];
  ws.open();
  ws.receive({ type: 'error', id: ws.lastSent('join').id, code: 'token_expired', message: 'expired' });
  await assert.rejects(started, (err) => err.code === 'token_expired');
  assert.equal((await fatal).code, 'token_expired');
  assert.equal(client.status, 'closed');
  // The backoff's first retry would come within a second; give it that long to prove it doesn't.
  await delay(1100);
  assert.equal(ScriptedSocket.all.length, 1);
});

test('a dropped socket rejoins with the same token and reports a fresh joined', async () => {
  const [c, ws] = await joinedClient();
  const statuses = [];
  c.addEventListener('status', (e) => statuses.push(e.detail.status));
  const pending = c.request({ type: 'offer', sdp: 'v=0' });
  ws.close();
  await assert.rejects(pending, (err) => err.code === 'disconnected');
  assert.equal(c.status, 'reconnecting');

  const second = await until('a second socket', () => ScriptedSocket.all[1]);
  const rejoined = new Promise((resolve) => c.addEventListener('joined', (e) => resolve(e.detail)));
  second.open();
  const join = second.lastSent('join');
  assert.equal(join.token, 'jwt-1');
  second.receive({ ...JOINED, id: join.id, you: { ...JOINED.you, id: 8 } });
  assert.equal((await rejoined).you.id, 8);
  assert.deepEqual(statuses, ['reconnecting', 'open']);
});

test('a busy server (unavailable) is retried rather than given up', async () => {
  client = new SignalingClient({ token: 'jwt-1' });
  client.start().catch(() => {});
  const ws = ScriptedSocket.all[0];
  ws.open();
  ws.receive({ type: 'error', id: ws.lastSent('join').id, code: 'unavailable', message: 'busy' });
  const again = await until('a retry', () => ScriptedSocket.all[1]);
  again.open();
  assert.equal(again.lastSent('join').token, 'jwt-1');
});

test('pings while open, and gives up on a socket that stays silent', async () => {
  const [, ws] = await joinedClient({ pingIntervalMs: 20 });
  await until('a ping', () => ws.lastSent('ping'));
  // Nothing answers: after three silent intervals the socket counts as dead and is replaced.
  await until('a reconnect after silence', () => ScriptedSocket.all.length > 1, 5000);
  assert.equal(ws.onmessage, null, 'the dead socket is detached');
  assert.equal(ws.closedWith.code, 4000, 'closed as reconnecting, so the server keeps the seat');
});

test('leaving closes with 1000, which the server takes as leaving', async () => {
  const [c, ws] = await joinedClient();
  c.close();
  assert.equal(ws.closedWith.code, 1000);
});

test('a seat taken over by another page stops for good', async () => {
  const [c, ws] = await joinedClient();
  const fatal = new Promise((resolve) => c.addEventListener('fatal', (e) => resolve(e.detail)));
  ws.serverClose(4409, 'this invite joined again from another page');
  assert.equal((await fatal).code, 'replaced');
  assert.equal(c.status, 'closed');
  await delay(1100);
  assert.equal(ScriptedSocket.all.length, 1, 'no rejoin that would take the seat back');
});

test('close() stops everything and rejects what was pending', async () => {
  const [c] = await joinedClient();
  const pending = c.request({ type: 'ping' });
  c.close();
  await assert.rejects(pending, (err) => err.code === 'closed');
  assert.equal(c.status, 'closed');
  assert.equal(c.send({ type: 'ping' }), false);
});
