// One page's seat in a lesson: the signaling client, the lesson as it knows it (LessonRoom),
// and its two media connections (DESIGN §4). The teacher console, the classroom view and the
// student view each hold one while they take part.
//
// Every `joined` (the first one and each rejoin) starts the media over: the server closed the
// old connections, so both are dropped here and pages publish again from 'joined'.
//
// Events: 'joined' (after the room took the snapshot), 'status' (detail: signaling status),
// 'media' (the set of received tracks changed), 'ended', 'removed', 'fatal' (detail {code,
// message}: the seat cannot be (re)joined), 'publisher-state' (detail: connectionState).

import { SignalingClient } from './signaling.js';
import { LessonRoom } from './room.js';
import { Publisher, Subscriber, LayerWishes, emptyStats } from './media.js';

export class LessonSession extends EventTarget {
  /**
   * @param {object} opts
   * @param {string} opts.token  the invite token
   * @param {number} [opts.lesson]  the lesson the page means to join
   */
  constructor({ token, lesson = null }) {
    super();
    this.signaling = new SignalingClient({ token, lesson });
    // The room listens first, so it has the new state when the session's own listeners run.
    this.room = new LessonRoom(this.signaling);
    this.subscriber = null;
    this.publisher = null;
    this.wishes = new LayerWishes(this.signaling);
    this.ended = false;
    this.removed = false;
    this.fatal = null; // {code, message} once the seat cannot be joined
    this.wire();
  }

  get status() {
    return this.signaling.status;
  }

  get you() {
    return this.room.you;
  }

  start() {
    return this.signaling.start().catch(() => {
      // Reported through 'fatal'.
    });
  }

  /** Leaves the lesson: socket and connections closed, nothing reconnects. */
  close() {
    this.signaling.close();
    this.resetMedia();
  }

  wire() {
    const sig = this.signaling;
    sig.addEventListener('status', (e) => this.emit('status', e.detail));
    sig.addEventListener('joined', () => {
      this.resetMedia();
      this.emit('joined');
      this.emit('media');
    });
    sig.addEventListener('offer', (e) => this.ensureSubscriber().handleOffer(e.detail));
    sig.addEventListener('candidate', (e) => this.subscriber?.addCandidate(e.detail.candidate));
    sig.addEventListener('fatal', (e) => {
      if (e.detail.code === 'lesson_ended') {
        this.onEnded();
        return;
      }
      this.fatal = { code: e.detail.code, message: e.detail.message };
      this.resetMedia();
      this.emit('fatal', this.fatal);
    });
    this.room.addEventListener('ended', () => this.onEnded());
    this.room.addEventListener('removed', () => {
      // Stops the reconnects too: the server refuses this invite from now on.
      this.removed = true;
      this.close();
      this.emit('removed');
    });
    this.room.addEventListener('change', (e) => {
      // A publication's owner decides where it is shown: pages re-place tracks on either.
      if (e.detail.what === 'publications' || e.detail.what === 'participants') this.emit('media');
    });
  }

  onEnded() {
    if (this.ended) return;
    this.ended = true;
    this.close();
    this.emit('ended');
  }

  ensureSubscriber() {
    if (this.subscriber) return this.subscriber;
    const sub = new Subscriber(this.signaling);
    sub.addEventListener('tracks', () => this.emit('media'));
    sub.addEventListener('state', (e) => {
      // Media broke while the socket lives: a fresh seat renegotiates everything.
      if (e.detail === 'failed' && this.subscriber === sub) this.signaling.dropSocket();
    });
    sub.addEventListener('failed', (e) => this.emit('media-error', e.detail));
    this.subscriber = sub;
    return sub;
  }

  /** The publisher connection, opened on first use (nothing is sent until tracks are added). */
  ensurePublisher() {
    if (this.publisher) return this.publisher;
    const pub = new Publisher(this.signaling);
    pub.addEventListener('state', (e) => {
      if (this.publisher !== pub) return;
      if (e.detail === 'failed') this.signaling.dropSocket();
      this.emit('publisher-state', e.detail);
    });
    this.publisher = pub;
    return pub;
  }

  resetMedia() {
    this.subscriber?.close();
    this.subscriber = null;
    this.publisher?.close();
    this.publisher = null;
    this.wishes.reset();
  }

  /**
   * The tracks received now, each with its publication and owner:
   * [{publicationId, track, kind, source, owner}] (owner may be null while a message is due).
   */
  received() {
    const list = this.subscriber ? this.subscriber.receivers() : [];
    return list.map((r) => {
      const pub = this.room.publications.get(r.publicationId) || null;
      const owner = pub ? this.room.participant(pub.participant_id) : null;
      return {
        publicationId: r.publicationId,
        track: r.track,
        kind: r.track.kind,
        source: pub ? pub.source : null,
        owner,
      };
    });
  }

  /**
   * What a watching page shows: the teacher's camera, a shared screen, everyone else's
   * cameras, and every voice. Any video beats a black screen when the lists are out of date.
   */
  media() {
    const all = this.received();
    const videos = all.filter((r) => r.kind === 'video');
    const isTeacher = (r) => r.owner && (r.owner.role === 'teacher' || r.owner.role === 'assistant');
    const rank = (r) => (isTeacher(r) ? 0 : 2) + (r.source === 'camera' ? 0 : 1);
    const screens = videos.filter((r) => r.source === 'screen');
    const screen = screens.find(isTeacher) || screens[0] || null;
    const cameras = videos.filter((r) => r !== screen).sort((a, b) => rank(a) - rank(b));
    const teacherCamera = cameras.find((r) => isTeacher(r)) || (cameras.length && !cameras[0].owner ? cameras[0] : null);
    const others = cameras.filter((r) => r !== teacherCamera && r.owner);
    return {
      teacherCamera,
      screen,
      others,
      audio: all.filter((r) => r.kind === 'audio').map((r) => r.track),
    };
  }

  async stats() {
    return this.subscriber ? this.subscriber.stats() : emptyStats();
  }

  async publicationStats(publicationId) {
    return this.subscriber ? this.subscriber.publicationStats(publicationId) : null;
  }

  emit(type, detail = null) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
