// A participant's own part in the stage (DESIGN §3 "Stage"), for the classroom and student
// views: raising and lowering its hand, answering an invitation, and sending camera and
// microphone exactly while its grants allow (on stage in most modes; always for a classroom in
// a delivery lesson). The grants decide, not the buttons: when the teacher takes it off the
// stage, `grants_changed` arrives and the camera stops here too.
//
// Events: 'change' (anything a page shows changed), 'error' (detail {code, message}: a request
// was refused, or the camera could not start).

import { openMedia } from './media.js';
import { t } from './i18n.js';

/** What the stage lets a participant send. */
const STAGE_SOURCES = ['camera', 'microphone'];

export class StageSeat extends EventTarget {
  /** @param {import('./session.js').LessonSession} session */
  constructor(session) {
    super();
    this.session = session;
    this.room = session.room;
    this.invitation = false; // the teacher's invitation waits for our answer
    this.stream = null; // our camera and microphone while we may send them
    this.sending = false; // the SFU has our answer-applied offer for them
    this.mediaError = null;
    // Changes to what we send run one after another (grants can change twice quickly).
    this.work = Promise.resolve();

    this.room.addEventListener('invited', (e) => {
      if (this.room.you && e.detail.participantId === this.room.you.id) {
        this.invitation = true;
        this.changed();
      }
    });
    this.room.addEventListener('change', (e) => {
      const what = e.detail.what;
      if (what === 'stage' && this.onStage) this.invitation = false;
      if (what === 'joined') this.invitation = false;
      if (what === 'grants' || what === 'joined') this.sync();
      this.changed();
    });
    // The media connections start over on every join: whatever we may send goes out anew.
    session.addEventListener('joined', () => {
      this.sending = false;
      this.sync();
    });
    session.addEventListener('ended', () => this.stopMedia());
    session.addEventListener('removed', () => this.stopMedia());
  }

  get you() {
    return this.room.you;
  }

  /** Hidden participants and moderators take no part in hands (the server says so too). */
  get mayRaiseHand() {
    return this.room.joined && !this.room.grants.hidden && !this.room.grants.moderate;
  }

  get handUp() {
    return !!this.you && this.room.hasHand(this.you.id);
  }

  get onStage() {
    return !!this.you && this.room.isOnStage(this.you.id);
  }

  /** The sources our grants let us send now. */
  get allowed() {
    return STAGE_SOURCES.filter((s) => this.room.mayPublish(s));
  }

  /** Whether a moderator muted our `source`. */
  mutedByTeacher(source) {
    return !!this.you && this.room.isMuted(this.you.id, source);
  }

  toggleHand() {
    if (!this.mayRaiseHand || this.onStage) return false;
    return this.command({ type: this.handUp ? 'lower_hand' : 'raise_hand' });
  }

  accept() {
    this.invitation = false;
    this.changed();
    return this.command({ type: 'accept_stage' });
  }

  decline() {
    this.invitation = false;
    this.changed();
    return this.command({ type: 'decline_stage' });
  }

  leave() {
    return this.command({ type: 'leave_stage' });
  }

  command(message) {
    const sent = this.room.command(message, (err) => this.emit('error', err));
    if (!sent) this.emit('error', { code: 'disconnected', message: 'not connected' });
    return sent;
  }

  /** Sends what the grants allow and stops what they no longer do. */
  sync() {
    this.work = this.work.then(() => this.apply()).catch((err) => {
      console.warn('stage: could not change what this page sends', err);
    });
    return this.work;
  }

  async apply() {
    if (!this.room.joined || this.session.ended || this.session.removed) return;
    const allowed = this.allowed;
    if (allowed.length === 0) {
      await this.stopSending();
      return;
    }
    const kinds = { camera: 'video', microphone: 'audio' };
    const have = (source) => this.stream && this.stream.getTracks().some((tr) => tr.kind === kinds[source] && tr.readyState === 'live');
    const missing = allowed.filter((s) => !have(s));
    if (missing.length) {
      try {
        const fresh = await openMedia({ camera: missing.includes('camera'), microphone: missing.includes('microphone') });
        // The grants may have changed while the browser asked.
        if (this.allowed.length === 0 || this.session.ended || this.session.removed) {
          fresh.getTracks().forEach((tr) => tr.stop());
          return;
        }
        if (!this.stream) this.stream = new MediaStream();
        for (const tr of fresh.getTracks()) this.stream.addTrack(tr);
        this.mediaError = null;
      } catch (err) {
        this.mediaError = err;
        this.changed();
        this.emit('error', { code: 'camera', message: err.message || err.name });
        return;
      }
    }
    const publisher = this.session.ensurePublisher();
    const sending = publisher.sources();
    const items = [];
    for (const source of allowed) {
      if (sending.has(source)) continue;
      const track = this.stream.getTracks().find((tr) => tr.kind === kinds[source] && tr.readyState === 'live');
      if (track) items.push({ track, source });
    }
    for (const source of sending) if (STAGE_SOURCES.includes(source) && !allowed.includes(source)) await publisher.remove(source);
    if (items.length) {
      try {
        await publisher.add(items, this.stream);
      } catch (err) {
        // A rejoin is under way (it publishes again) or the server refused: say so.
        if (err.code !== 'disconnected' && err.code !== 'closed') this.emit('error', { code: err.code, message: err.message });
        return;
      }
    }
    this.sending = true;
    this.changed();
  }

  async stopSending() {
    const publisher = this.session.publisher;
    if (publisher) for (const source of STAGE_SOURCES) if (publisher.sources().has(source)) await publisher.remove(source);
    this.stopMedia();
  }

  stopMedia() {
    if (this.stream) this.stream.getTracks().forEach((tr) => tr.stop());
    this.stream = null;
    this.sending = false;
    this.changed();
  }

  changed() {
    this.emit('change');
  }

  emit(type, detail = null) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** A refused stage request or a camera that would not start, in words. */
export function describeStageError(err) {
  if (err.code === 'stage_full') return t('stage.full');
  if (err.code === 'camera') return t('stage.cameraFailed', { message: err.message });
  if (err.code === 'disconnected') return t('error.offline');
  return t('error.signaling', { message: err.message || err.code });
}

/** What a moderator muted of ours, as notes to show: [{icon, text}]. */
export function mutedNotes(seat) {
  const notes = [];
  if (seat?.mutedByTeacher('microphone')) notes.push({ icon: 'micOff', text: t('stage.micMutedByTeacher') });
  if (seat?.mutedByTeacher('camera')) notes.push({ icon: 'cameraOff', text: t('stage.camMutedByTeacher') });
  return notes;
}
