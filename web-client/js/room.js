// The lesson as this page knows it: who is here, what they publish, raised hands, the stage,
// chat, mutes and this participant's grants, kept from `joined` and the messages after it
// (signaling/src/protocol.rs). Pages render from it; none of them patch state themselves.
//
// Every `joined` replaces everything (a rejoin may have missed messages). After that, each
// server message updates one part and fires 'change' with `detail.what` naming it:
//   'joined' | 'participants' | 'publications' | 'hands' | 'stage' | 'grants' | 'muted' | 'chat'
//   | 'recording' | 'quality'
// and a few events that pages act on rather than render:
//   'invited'   detail {participantId}: a stage invitation (to the invitee and to moderators)
//   'declined'  detail {participantId}: to moderators
//   'muted'     detail: the `muted` message (someone's source muted or unmuted)
//   'chat-message' detail: a new ChatMessage
//   'removed'   this participant was removed by a moderator (now or before this join)
//   'ended'     the lesson ended
//   'recording-error' detail {code, message}: the recording stopped on its own (moderators)
//   'command-error' detail {code, message, type}: a request sent with `command()` was refused
//   'error'     detail: any other server `error` that answers no request

/** Requests whose refusal is still expected; an older one is forgotten (its reply is long due). */
const COMMAND_TTL_MS = 30_000;
const MAX_PENDING_COMMANDS = 200;

export class LessonRoom extends EventTarget {
  /** @param {import('./signaling.js').SignalingClient} signaling */
  constructor(signaling) {
    super();
    this.signaling = signaling;
    this.reset();
    this.pending = new Map(); // command id -> {type, at, onError}
    this.nextCommand = 1;
    this.wire();
  }

  reset() {
    this.joined = false;
    this.you = null;
    this.lesson = null;
    this.participants = new Map(); // id -> ParticipantInfo
    this.publications = new Map(); // id -> PublicationInfo
    this.hands = []; // [{participant_id, at}], oldest first
    this.stage = []; // participant ids, in the order they came on stage
    this.invited = new Set(); // participant ids with an unanswered invitation (as far as we know)
    this.reconnecting = new Set(); // participant ids whose connection dropped
    this.mutedSources = new Set(); // `${participant id}:${source}` a moderator muted
    this.chat = []; // ChatMessage, oldest first
    this.recording = false; // the lesson is being recorded into the library
    this.quality = null; // the latest `quality` report: how this page's streams fare
    this.grants = { publish: [], subscribe: false, chat: 'none', moderate: false, hidden: false };
  }

  // --- questions pages ask -----------------------------------------------------------------

  get mode() {
    return this.lesson ? this.lesson.mode : '';
  }

  get isModerator() {
    return !!this.grants.moderate;
  }

  participant(id) {
    return this.participants.get(id) || null;
  }

  /** The teacher (the first one, if a lesson somehow has two). */
  teacher() {
    for (const p of this.participants.values()) if (p.role === 'teacher') return p;
    return null;
  }

  hasHand(id) {
    return this.hands.some((h) => h.participant_id === id);
  }

  isOnStage(id) {
    return this.stage.includes(id);
  }

  isReconnecting(id) {
    return this.reconnecting.has(id);
  }

  isMuted(participantId, source) {
    return this.mutedSources.has(`${participantId}:${source}`);
  }

  /** The publication `participantId` has of `source` now, or null. */
  publicationOf(participantId, source) {
    for (const p of this.publications.values()) {
      if (p.participant_id === participantId && p.source === source) return p;
    }
    return null;
  }

  mayPublish(source) {
    return Array.isArray(this.grants.publish) && this.grants.publish.includes(source);
  }

  // --- requests ------------------------------------------------------------------------------

  /**
   * Sends a request that succeeds silently (the server answers only a refusal). A refusal
   * calls `onError({code, message})`, or else fires 'command-error'. Returns the request's id,
   * or null when the socket is down and nothing was sent.
   */
  command(message, onError = null) {
    const id = `cmd-${this.nextCommand++}`;
    this.prunePending();
    if (!this.signaling.send({ ...message, id })) return null;
    this.pending.set(id, { type: message.type, at: Date.now(), onError });
    return id;
  }

  prunePending() {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (now - p.at > COMMAND_TTL_MS || this.pending.size >= MAX_PENDING_COMMANDS) this.pending.delete(id);
      else break; // in insertion order: the rest are newer
    }
  }

  // --- server messages -----------------------------------------------------------------------

  wire() {
    const on = (type, fn) => this.signaling.addEventListener(type, (e) => fn(e.detail));
    on('joined', (m) => this.onJoined(m));
    on('participant_joined', (m) => {
      this.participants.set(m.participant.id, m.participant);
      this.reconnecting.delete(m.participant.id);
      this.changed('participants');
    });
    on('participant_left', (m) => {
      const id = m.participant_id;
      this.participants.delete(id);
      this.reconnecting.delete(id);
      this.invited.delete(id);
      for (const key of [...this.mutedSources]) if (key.startsWith(`${id}:`)) this.mutedSources.delete(key);
      // The server says hand_lowered and stage_changed first; this only tidies up after a
      // message that was lost to a rejoin.
      this.hands = this.hands.filter((h) => h.participant_id !== id);
      this.stage = this.stage.filter((p) => p !== id);
      this.changed('participants');
    });
    on('participant_reconnecting', (m) => {
      this.reconnecting.add(m.participant_id);
      this.changed('participants');
    });
    on('participant_resumed', (m) => {
      this.participants.set(m.participant.id, m.participant);
      this.reconnecting.delete(m.participant.id);
      this.changed('participants');
    });
    on('publication_added', (m) => {
      this.publications.set(m.publication.id, m.publication);
      this.changed('publications');
    });
    on('publication_removed', (m) => {
      this.publications.delete(m.publication_id);
      this.changed('publications');
    });
    on('hand_raised', (m) => {
      if (!this.hasHand(m.participant_id)) this.hands.push({ participant_id: m.participant_id, at: m.at });
      this.changed('hands');
    });
    on('hand_lowered', (m) => {
      this.hands = this.hands.filter((h) => h.participant_id !== m.participant_id);
      this.changed('hands');
    });
    on('stage_invited', (m) => {
      this.invited.add(m.participant_id);
      this.changed('stage');
      this.emit('invited', { participantId: m.participant_id });
    });
    on('stage_declined', (m) => {
      this.invited.delete(m.participant_id);
      this.changed('stage');
      this.emit('declined', { participantId: m.participant_id });
    });
    on('stage_changed', (m) => {
      this.stage = Array.isArray(m.stage) ? m.stage : [];
      for (const id of this.stage) this.invited.delete(id);
      this.changed('stage');
    });
    on('grants_changed', (m) => {
      this.grants = m.grants || this.grants;
      this.changed('grants');
    });
    on('muted', (m) => {
      const key = `${m.participant_id}:${m.source}`;
      if (m.muted) this.mutedSources.add(key);
      else this.mutedSources.delete(key);
      this.changed('muted');
      this.emit('muted', m);
    });
    on('chat', (m) => {
      if (!m.message || this.chat.some((c) => c.id === m.message.id)) return;
      this.chat.push(m.message);
      // As many as `joined` carries at most: a long lesson does not grow the page.
      if (this.chat.length > 200) this.chat.splice(0, this.chat.length - 200);
      this.changed('chat');
      this.emit('chat-message', m.message);
    });
    on('chat_deleted', (m) => {
      this.chat = this.chat.filter((c) => c.id !== m.message_id);
      this.changed('chat');
    });
    on('recording_changed', (m) => {
      this.recording = !!m.recording;
      this.changed('recording');
      if (m.error) this.emit('recording-error', m.error);
    });
    on('quality', (m) => {
      this.quality = { publishing: m.publishing || [], receiving: m.receiving || [], at: Date.now() };
      this.changed('quality');
    });
    on('removed', () => this.emit('removed'));
    on('lesson_ended', () => {
      if (this.lesson) this.lesson = { ...this.lesson, state: 'ended' };
      this.emit('ended');
    });
    on('server-error', (m) => this.onError(m));
  }

  onJoined(m) {
    this.reset();
    this.joined = true;
    this.you = m.you;
    this.lesson = m.lesson;
    for (const p of m.participants || []) this.participants.set(p.id, p);
    this.participants.set(m.you.id, m.you);
    for (const p of m.publications || []) this.publications.set(p.id, p);
    this.hands = Array.isArray(m.hands) ? m.hands.slice() : [];
    this.stage = Array.isArray(m.stage) ? m.stage.slice() : [];
    this.chat = Array.isArray(m.chat) ? m.chat.slice() : [];
    this.recording = !!m.recording;
    if (m.grants) this.grants = m.grants;
    for (const id of m.reconnecting || []) this.reconnecting.add(id);
    for (const id of m.muted || []) {
      const p = this.publications.get(id);
      if (p) this.mutedSources.add(`${p.participant_id}:${p.source}`);
    }
    this.changed('joined');
    if (m.lesson && m.lesson.state === 'ended') this.emit('ended');
  }

  onError(m) {
    // A join refused because a moderator removed this invite (a reload after removal).
    if (m.code === 'removed') {
      this.emit('removed');
      return;
    }
    const pending = m.id !== undefined ? this.pending.get(m.id) : undefined;
    if (pending) {
      this.pending.delete(m.id);
      const detail = { code: m.code, message: m.message, type: pending.type };
      if (pending.onError) pending.onError(detail);
      else this.emit('command-error', detail);
      return;
    }
    this.emit('error', m);
  }

  changed(what) {
    this.emit('change', { what });
  }

  emit(type, detail = null) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
