// The live studio's state for one lesson: the teacher's camera and microphone and their toggles,
// a shared screen, going live (a teacher invite token from the REST API, or the one the teacher
// invite link brought) and the seat in the lesson that follows (session.js), the sound of the
// others, and ending the lesson. It draws nothing: studio-view.js renders what it announces.
//
// Going live = camera + microphone out on the publisher connection, a shared screen joining them
// as a publication of its own, the others' media arriving on the subscriber connection. Every
// (re)join publishes anew, since the server closed the old connections.
//
// Events (`detail` says what):
//   'change'  {part}: 'camera-starting' | 'camera' | 'mic' | 'cam' | 'screen' | 'live' (going
//             live, connected, stopped) | 'connection' (the seat's signaling or publisher) |
//             'joined' | 'room' (with `what`, the room's own change) | 'media' | 'lesson' (all
//             of it, e.g. after it ended) | 'ended' (ended from this console, connection too)
//   'seat'    {seat}: a seat in the lesson was taken (LessonSession) or given up (null); sent
//             before the studio listens to it, so panels that follow the room hear it first
//   'notice'  {text, kind, ms}: something to tell the teacher in a toast

import { api, ApiError } from './api.js';
import { t } from './i18n.js';
import { LessonSession } from './session.js';
import { AudioSink, openCameraAndMicrophone } from './media.js';
import { ScreenShare } from './screenshare.js';

/** An error in the teacher's words: a lost network says so, anything else its own message. */
export function describe(err) {
  if (err instanceof ApiError && err.status === 0) return t('error.network');
  return (err && err.message) || String(err);
}

function describeCommandError(err) {
  switch (err.code) {
    case 'stage_full':
      return t('stage.full');
    case 'not_found':
      return t('people.gone');
    default:
      return t('error.signaling', { message: err.message || err.code });
  }
}

export class Studio extends EventTarget {
  /**
   * @param {object} lesson  as the REST API gives it (or a placeholder for an invite link)
   * @param {HTMLElement} audioSink  where the others' <audio> players live
   */
  constructor(lesson, audioSink) {
    super();
    this.lesson = lesson;
    this.stream = null;
    this.cameraError = null;
    this.seat = null; // LessonSession while live
    this.restParticipants = [];
    this.live = 'idle'; // 'idle' | 'connecting' | 'live'
    this.micOn = true;
    this.camOn = true;
    this.inviteToken = null; // set when opened from a teacher invite link
    this.invites = [];
    this.closed = false; // the page let go of this studio
    this.screen = new ScreenShare();
    this.screen.addEventListener('change', () => this.onScreenChange());
    this.audio = new AudioSink(audioSink);
  }

  get id() {
    return this.lesson.id;
  }

  get room() {
    return this.seat ? this.seat.room : null;
  }

  get mode() {
    return (this.room && this.room.mode) || this.lesson.mode || '';
  }

  get ended() {
    return this.lesson.state === 'ended';
  }

  /** Opened from a teacher invite link: no admin key, so no REST calls of the admin's. */
  get admin() {
    return !this.inviteToken;
  }

  changed(part, extra = {}) {
    this.dispatchEvent(new CustomEvent('change', { detail: { part, ...extra } }));
  }

  notice(text, kind, ms) {
    this.dispatchEvent(new CustomEvent('notice', { detail: { text, kind, ms } }));
  }

  async startCamera() {
    if (this.stream) return;
    this.cameraError = null;
    this.changed('camera-starting');
    try {
      const stream = await openCameraAndMicrophone();
      if (this.closed) {
        stream.getTracks().forEach((tr) => tr.stop());
        return;
      }
      this.stream = stream;
      this.applyToggles();
    } catch (err) {
      this.cameraError = err;
    }
    this.changed('camera');
  }

  stopCamera() {
    if (this.stream) this.stream.getTracks().forEach((tr) => tr.stop());
    this.stream = null;
  }

  toggleMic() {
    this.micOn = !this.micOn;
    this.applyToggles();
    this.changed('mic');
  }

  toggleCam() {
    this.camOn = !this.camOn;
    this.applyToggles();
    this.changed('cam');
  }

  applyToggles() {
    if (!this.stream) return;
    for (const tr of this.stream.getAudioTracks()) tr.enabled = this.micOn;
    for (const tr of this.stream.getVideoTracks()) tr.enabled = this.camOn;
  }

  async goLive(name) {
    if (!this.stream || this.live !== 'idle') return;
    this.setLive('connecting');
    try {
      const token = this.inviteToken ?? (await api.createInvite(this.id, 'teacher', name)).token;
      if (this.live !== 'connecting') return; // stopped meanwhile
      this.join(token);
    } catch (err) {
      if (this.live === 'idle') return;
      this.notice(t('controls.liveFailed', { message: describe(err) }), 'error');
      this.stopLive();
    }
  }

  join(token) {
    const seat = new LessonSession({ token, lesson: this.id });
    this.seat = seat;
    this.dispatchEvent(new CustomEvent('seat', { detail: { seat } }));
    const mine = (fn) => (e) => {
      if (this.seat === seat) fn(e);
    };
    seat.addEventListener('status', mine(() => this.changed('connection')));
    seat.addEventListener('joined', mine(() => this.onJoined()));
    seat.addEventListener('publisher-state', mine((e) => {
      if (e.detail === 'connected') this.setLive('live');
      else if (e.detail === 'failed') this.setLive('connecting');
      this.changed('connection');
    }));
    seat.addEventListener('media', mine(() => this.onMedia()));
    seat.addEventListener('ended', mine(() => this.onEnded()));
    seat.addEventListener('removed', mine(() => {
      this.notice(t('lesson.youWereRemoved'), 'error');
      this.stopLive();
    }));
    seat.addEventListener('fatal', mine((e) => {
      this.notice(t('controls.liveFailed', { message: e.detail.message || e.detail.code }), 'error');
      this.stopLive();
    }));
    const room = seat.room;
    room.addEventListener('change', mine((e) => this.changed('room', { what: e.detail.what })));
    room.addEventListener('declined', mine((e) => {
      const p = room.participant(e.detail.participantId);
      if (p) this.notice(t('stage.declinedBy', { name: p.name }), 'info');
    }));
    room.addEventListener('error', mine((e) => this.notice(t('error.signaling', { message: e.detail.message || e.detail.code }), 'error')));
    room.addEventListener('command-error', mine((e) => this.notice(describeCommandError(e.detail), 'error')));
    room.addEventListener('recording-error', mine((e) => this.notice(t('recording.failed', { message: e.detail.message }), 'error', 15000)));
    seat.start();
  }

  /** A (re)join: who is here now, then camera + microphone (and a shared screen) go out anew. */
  async onJoined() {
    const seat = this.seat;
    if (seat.room.lesson) this.lesson = { ...this.lesson, ...seat.room.lesson };
    this.changed('joined');
    if (!this.stream) return;
    const pub = seat.ensurePublisher();
    const items = [
      ...this.stream.getAudioTracks().map((track) => ({ track, source: 'microphone' })),
      ...this.stream.getVideoTracks().map((track) => ({ track, source: 'camera' })),
    ];
    try {
      await pub.publish(items, this.stream);
      if (this.screen.active && seat.publisher === pub) await pub.add([{ track: this.screen.track, source: 'screen' }], this.screen.stream);
    } catch (err) {
      if (seat.publisher !== pub || err.code === 'disconnected' || err.code === 'closed') return; // a rejoin follows
      this.notice(t('controls.liveFailed', { message: describe(err) }), 'error');
      this.stopLive();
    }
  }

  onMedia() {
    this.audio.sync(this.seat ? this.seat.received().filter((r) => r.kind === 'audio').map((r) => r.track) : []);
    this.changed('media');
  }

  async toggleScreen() {
    if (this.screen.active) {
      this.screen.stop();
      return;
    }
    await this.screen.start();
    if (this.screen.error) this.notice(t('screen.failed', { message: describe(this.screen.error) }), 'error');
  }

  /** The share started or stopped (from the console or the browser's own bar). */
  async onScreenChange() {
    this.changed('screen');
    const pub = this.seat?.publisher;
    if (!pub || this.live === 'idle') return;
    try {
      if (this.screen.active && !pub.sources().has('screen')) {
        await pub.add([{ track: this.screen.track, source: 'screen' }], this.screen.stream);
      } else if (!this.screen.active && pub.sources().has('screen')) {
        await pub.remove('screen');
      }
    } catch (err) {
      if (err.code === 'disconnected' || err.code === 'closed') return; // the rejoin shares it again
      this.notice(t('screen.failed', { message: describe(err) }), 'error');
      this.screen.stop();
    }
  }

  stopLive() {
    const seat = this.seat;
    this.seat = null;
    seat?.close();
    this.dispatchEvent(new CustomEvent('seat', { detail: { seat: null } }));
    this.audio.clear();
    this.screen.stop();
    this.setLive('idle');
    this.changed('room', { what: 'joined' });
  }

  onEnded() {
    const already = this.ended;
    this.stopLive();
    this.stopCamera();
    this.lesson = { ...this.lesson, state: 'ended' };
    this.changed('lesson');
    if (!already) this.notice(t('lesson.ended'), 'info');
  }

  setLive(live) {
    this.live = live;
    this.changed('live');
  }

  /** Starts or stops recording (moderators); false when the seat cannot say so now. */
  toggleRecording() {
    const room = this.room;
    if (!room?.joined) return true;
    return room.command({ type: room.recording ? 'stop_recording' : 'start_recording' });
  }

  /** Removes a participant from the lesson (moderators). */
  remove(participant) {
    if (!participant || !this.room) return;
    this.room.command({ type: 'remove', participant_id: participant.id });
  }

  /**
   * Ends the lesson. A teacher from an invite link has no REST access: the seat ends the lesson
   * over the socket and hears `lesson_ended` like everyone else. Throws what the REST call threw.
   */
  async end() {
    if (this.inviteToken) {
      if (!this.room || !this.room.command({ type: 'end_lesson' })) this.notice(t('lesson.endFailed', { message: t('error.offline') }), 'error');
      return;
    }
    const lesson = await api.endLesson(this.id);
    // The seat may have heard `lesson_ended` before this reply and said so already.
    const already = this.ended;
    this.lesson = { ...this.lesson, ...lesson, state: 'ended' };
    this.dispose();
    this.changed('ended');
    if (!already) this.notice(t('lesson.ended'), 'success');
  }

  /** Everything released: camera, screen, seat, connections. */
  dispose() {
    this.stopLive();
    this.stopCamera();
  }

  /** Released for good: the page opened another lesson or none (a camera still opening stops). */
  close() {
    this.closed = true;
    this.dispose();
  }
}
