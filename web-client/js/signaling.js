// WebSocket signaling client for `/ws` (DESIGN §5, signaling/src/protocol.rs).
//
// One SignalingClient is one seat in a lesson: it joins with an invite token, matches replies to
// requests by `id`, pings every 5 s so the server's liveness check keeps the seat, and rejoins
// with the same token when the socket drops. Within the server's reconnect grace (30 s) a rejoin
// gets the same participant id, hand and stage place back, and the others see it as
// "reconnecting" rather than leaving; its peer connections are new all the same, so every
// `joined` event means "start over": pages rebuild their peer connections from it rather than
// patching the old ones.
//
// How a socket closes tells the server what happened: 1000 ("bye", from close()) is leaving;
// any other code (4000 when this client gives up on a silent socket, 1001 when the page
// unloads or reloads) keeps the seat for a rejoin. The server closes with 4409 when the same
// invite joined from another page; that page now holds the seat, so this one stops.
//
// Events (CustomEvent, `detail` = the server message as parsed JSON):
//   every server message type by name: 'joined', 'offer', 'answer', 'participant_joined', ...
//   'status'       detail {status: 'connecting'|'open'|'reconnecting'|'closed', code?, message?}
//   'server-error' an `error` message that answers no pending request
//   'fatal'        detail {code, message}: the seat cannot be (re)joined; no more reconnects

/** Join refusals that another attempt with the same token cannot fix. */
/** Our close code for a socket given up to reconnect (the server keeps the seat). */
const CLOSE_RECONNECTING = 4000;
/** The server's close code when the same invite joined from another page. */
const CLOSE_REPLACED = 4409;

const FATAL_JOIN_CODES = new Set([
  'invalid_token',
  'token_expired',
  'wrong_lesson',
  'no_such_lesson',
  'lesson_ended',
  'forbidden',
]);
// `removed` is not among them: LessonRoom turns it into its 'removed' event, and the page's
// session closes the client (session.js), so a removed link never retries.

/** A request that got an `error` reply, or none in time. */
export class SignalingError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SignalingError';
    this.code = code;
  }
}

/** The `/ws` address on the server that served this page. */
export function defaultSignalingUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

export class SignalingClient extends EventTarget {
  /**
   * @param {object} opts
   * @param {string} opts.token  the invite token (JWT)
   * @param {number} [opts.lesson]  the lesson the page means to join; the server then refuses a
   *   token for another lesson (`wrong_lesson`) instead of joining that one
   * @param {string} [opts.url]  defaults to this host's /ws
   */
  constructor({
    token,
    lesson = null,
    url = defaultSignalingUrl(),
    pingIntervalMs = 5000,
    requestTimeoutMs = 15000,
    reconnect = true,
  }) {
    super();
    this.token = token;
    this.lesson = lesson;
    this.url = url;
    this.pingIntervalMs = pingIntervalMs;
    this.requestTimeoutMs = requestTimeoutMs;
    this.reconnect = reconnect;

    this.status = 'closed';
    this.joined = null; // the latest `joined` message
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map(); // request id -> {resolve, reject, timer}
    this.pingTimer = null;
    this.retryTimer = null;
    this.retries = 0;
    this.lastHeardAt = 0;
    this.stopped = false;
  }

  /** Connects and joins; resolves with the first `joined` message, rejects if refused. */
  start() {
    this.stopped = false;
    return new Promise((resolve, reject) => {
      const onJoined = (e) => {
        cleanup();
        resolve(e.detail);
      };
      const onFatal = (e) => {
        cleanup();
        reject(new SignalingError(e.detail.code, e.detail.message));
      };
      const cleanup = () => {
        this.removeEventListener('joined', onJoined);
        this.removeEventListener('fatal', onFatal);
      };
      this.addEventListener('joined', onJoined);
      this.addEventListener('fatal', onFatal);
      this.open();
    });
  }

  /** Leaves for good: closes the socket and stops reconnecting. */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopPing();
    this.failPending('closed', 'the connection was closed');
    if (this.ws) {
      this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
      this.ws.close(1000, 'bye');
      this.ws = null;
    }
    this.setStatus('closed');
  }

  /** Sends a message that expects no reply. Returns false when the socket is not open. */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Sends a message with a fresh `id`; resolves with the reply that echoes it. */
  request(message) {
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      if (!this.send({ ...message, id })) {
        reject(new SignalingError('disconnected', 'not connected to the server'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalingError('timeout', `no reply to ${message.type} in time`));
      }, this.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  // --- internals -------------------------------------------------------------------------

  open() {
    this.setStatus(this.joined ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastHeardAt = performance.now();
      // The join carries a request id so a refusal comes back as an `error` echoing it.
      const id = String(this.nextId++);
      this.joinId = id;
      const join = { type: 'join', id, token: this.token };
      if (Number.isSafeInteger(this.lesson)) join.lesson = this.lesson;
      ws.send(JSON.stringify(join));
      this.startPing();
    };
    ws.onmessage = (e) => this.onMessage(e.data);
    ws.onerror = () => {
      // Always followed by `close`, which decides what happens next.
    };
    ws.onclose = (e) => {
      if (e.code === CLOSE_REPLACED) {
        this.stopped = true;
        this.dropSocket();
        const detail = { code: 'replaced', message: e.reason || 'this invite joined from another page' };
        this.setStatus('closed', detail.code, detail.message);
        this.dispatchEvent(new CustomEvent('fatal', { detail }));
        return;
      }
      this.dropSocket();
    };
  }

  /** Forgets the current socket (closing it if needed) and, unless stopped, reconnects. */
  dropSocket() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    // Detached first: a half-dead socket can take long to report `close`, and the reconnect
    // should not wait for it.
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
      ws.close(CLOSE_RECONNECTING, 'reconnecting');
    }
    this.stopPing();
    this.failPending('disconnected', 'the connection to the server was lost');
    if (this.stopped) this.setStatus('closed');
    else this.scheduleReconnect();
  }

  onMessage(text) {
    this.lastHeardAt = performance.now();
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      console.warn('signaling: ignoring a frame that is not JSON');
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;

    if (msg.type === 'joined') {
      this.joined = msg;
      this.retries = 0;
      this.setStatus('open');
    }
    if (msg.type === 'error' && msg.id !== undefined && msg.id === this.joinId) {
      this.onJoinRefused(msg);
      return;
    }
    if (msg.id !== undefined && this.pending.has(msg.id)) {
      const { resolve, reject, timer } = this.pending.get(msg.id);
      clearTimeout(timer);
      this.pending.delete(msg.id);
      if (msg.type === 'error') reject(new SignalingError(msg.code, msg.message));
      else resolve(msg);
      return;
    }
    if (msg.type === 'error') {
      this.dispatchEvent(new CustomEvent('server-error', { detail: msg }));
      return;
    }
    if (msg.type === 'lesson_ended') this.stopped = true;
    this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
  }

  onJoinRefused(msg) {
    if (FATAL_JOIN_CODES.has(msg.code)) {
      this.stopped = true;
      this.close();
      this.setStatus('closed', msg.code, msg.message);
      this.dispatchEvent(new CustomEvent('fatal', { detail: msg }));
    } else {
      // Overloaded or briefly unavailable: the socket is dropped and the join retried.
      this.dispatchEvent(new CustomEvent('server-error', { detail: msg }));
      this.dropSocket();
    }
  }

  scheduleReconnect() {
    if (!this.reconnect) {
      this.setStatus('closed', 'disconnected');
      this.dispatchEvent(
        new CustomEvent('fatal', { detail: { code: 'disconnected', message: 'connection lost' } }),
      );
      return;
    }
    this.setStatus(this.joined ? 'reconnecting' : 'connecting');
    // Exponential backoff with jitter, capped: a restarting server is not stampeded by every
    // classroom at once, and a classroom never waits more than ~10 s once it is back.
    const base = Math.min(10000, 500 * 2 ** this.retries);
    const delay = base / 2 + Math.random() * (base / 2);
    this.retries = Math.min(this.retries + 1, 10);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) this.open();
    }, delay);
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      // A socket that has heard nothing (not even pongs) for three intervals is dead even if
      // the OS has not noticed yet; closing it starts a reconnect.
      if (performance.now() - this.lastHeardAt > 3 * this.pingIntervalMs) {
        this.dropSocket();
        return;
      }
      this.send({ type: 'ping' });
    }, this.pingIntervalMs);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  failPending(code, message) {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new SignalingError(code, message));
    }
    this.pending.clear();
  }

  setStatus(status, code, message) {
    if (this.status === status && !code) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: { status, code, message } }));
  }
}
