// The teacher's screen share: a screen or window the browser lets the teacher pick, sent as a
// publication of its own (source `screen`) beside the camera. Classrooms then show it large
// with the teacher's camera small.
//
// Stopping — from the console or from the browser's own "Stop sharing" bar — ends the
// publication; the classrooms go back to the camera.
//
// Events: 'change' (started, stopped, or failed; read `active`, `error`).

import { openScreen } from './media.js';

export class ScreenShare extends EventTarget {
  constructor() {
    super();
    this.stream = null;
    this.starting = false;
    this.error = null; // the last failure other than the teacher changing their mind
  }

  get active() {
    return !!this.stream;
  }

  get track() {
    return this.stream ? this.stream.getVideoTracks()[0] || null : null;
  }

  async start() {
    if (this.stream || this.starting) return;
    this.starting = true;
    this.error = null;
    this.changed();
    try {
      const stream = await openScreen();
      const track = stream.getVideoTracks()[0];
      // Slides and text: the encoder keeps detail rather than motion.
      if (track && 'contentHint' in track) track.contentHint = 'detail';
      track?.addEventListener('ended', () => {
        if (this.stream === stream) this.stop();
      });
      this.stream = stream;
    } catch (err) {
      // Cancelling the browser's picker is a choice, not a failure.
      if (!err || err.name !== 'NotAllowedError') this.error = err;
    } finally {
      this.starting = false;
      this.changed();
    }
  }

  stop() {
    if (!this.stream) return;
    this.stream.getTracks().forEach((tr) => tr.stop());
    this.stream = null;
    this.changed();
  }

  changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }
}
