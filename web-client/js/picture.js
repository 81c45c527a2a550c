// What a watching page (classroom, student) shows of the lesson: the teacher's camera, a shared
// screen, the others on stage, and every voice.
//
// A shared screen fills the picture and the teacher's camera moves to a corner (the page's CSS
// does it on `.has-screen`): both stay in their own <video> elements, so switching back is a
// transition, not a reload of the camera. Each video asks the SFU only for the simulcast layer
// its size needs (the corner and small tiles need the lowest).
//
// Events: 'change' (what is shown, or whether it plays, changed).

import { TileGrid } from './tiles.js';
import { AudioSink, lowerLayer, layerForHeight, shownHeight } from './media.js';

export class LessonPicture extends EventTarget {
  /**
   * @param {object} els
   * @param {HTMLElement} els.picture  gets `.has-screen` while a screen is shown
   * @param {HTMLVideoElement} els.camera
   * @param {HTMLVideoElement} els.screen
   * @param {HTMLElement} els.strip  the others' tiles
   * @param {HTMLElement} els.audio  where the <audio> players live
   */
  constructor(els) {
    super();
    this.els = els;
    this.session = null;
    this.audio = new AudioSink(els.audio);
    this.strip = new TileGrid(els.strip, () => this.askLayers());
    this.camera = null; // {publicationId, track}
    this.screen = null;
    this.cameraPlaying = false;
    this.screenPlaying = false;
    // The best layer wanted of the teacher's camera: the smaller of a support/test cap
    // (`limit`) and what the picture's size can show.
    this.layerCap = null;
    this.sizeLayer = 'high';

    const playing = (which) => () => {
      if (this[which]) return;
      this[which] = true;
      this.changed();
    };
    for (const [el, which] of [[els.camera, 'cameraPlaying'], [els.screen, 'screenPlaying']]) {
      el.addEventListener('playing', playing(which));
      el.addEventListener('resize', () => {
        if (el.videoWidth > 0) playing(which)();
      });
    }
    this.audio.addEventListener('blocked', () => this.changed());
    if (typeof ResizeObserver !== 'undefined') {
      new ResizeObserver(() => {
        const px = shownHeight(els.camera);
        if (px === 0) return; // hidden: keep the last wish
        const layer = layerForHeight(px);
        if (layer === this.sizeLayer) return;
        this.sizeLayer = layer;
        this.askLayers();
      }).observe(els.camera);
    }
  }

  /** Follows a session's received media from now on. */
  attach(session) {
    this.session = session;
    session.addEventListener('joined', () => {
      this.reset();
      this.update();
    });
    session.addEventListener('media', () => this.update());
    for (const type of ['ended', 'removed', 'fatal']) session.addEventListener(type, () => this.reset());
    session.room.addEventListener('change', (e) => {
      if (['participants', 'muted', 'stage', 'hands'].includes(e.detail.what)) this.renderStrip();
    });
  }

  /** Whether a picture (camera or screen) is playing. */
  get shown() {
    return !!((this.camera && this.cameraPlaying) || (this.screen && this.screenPlaying));
  }

  /** The layer wanted of the teacher's camera now. */
  wantedLayer() {
    return this.layerCap ? lowerLayer(this.layerCap, this.sizeLayer) : this.sizeLayer;
  }

  /** Places what the subscriber receives now. */
  update() {
    const session = this.session;
    if (!session || session.ended || session.removed) return;
    const media = session.media();
    this.camera = this.place(this.els.camera, this.camera, media.teacherCamera, 'cameraPlaying');
    this.screen = this.place(this.els.screen, this.screen, media.screen, 'screenPlaying');
    this.els.picture.classList.toggle('has-screen', !!this.screen);
    this.renderStrip(media.others);
    this.audio.sync(media.audio);
    this.askLayers();
    this.changed();
  }

  place(video, was, now, playingFlag) {
    if ((now?.track || null) !== (was?.track || null)) {
      this[playingFlag] = false;
      video.srcObject = now ? new MediaStream([now.track]) : null;
      if (now) video.play().catch(() => {});
    }
    return now ? { publicationId: now.publicationId, track: now.track } : null;
  }

  renderStrip(others = null) {
    const session = this.session;
    if (!session) return;
    const room = session.room;
    const list = others || session.media().others;
    this.strip.sync(
      list.map((r) => ({
        key: String(r.publicationId),
        track: r.track,
        info: {
          participantId: r.owner.id,
          name: r.owner.name,
          role: r.owner.role,
          micMuted: room.isMuted(r.owner.id, 'microphone'),
          camMuted: room.isMuted(r.owner.id, 'camera'),
          reconnecting: room.isReconnecting(r.owner.id),
          onStage: room.isOnStage(r.owner.id),
        },
      })),
    );
    this.els.strip.hidden = this.strip.size === 0;
  }

  /** Tells the SFU what each video on screen needs. Returns false if the socket is down. */
  askLayers() {
    const session = this.session;
    if (!session) return false;
    let sent = true;
    if (this.camera) sent = session.wishes.want(this.camera.publicationId, this.wantedLayer());
    const shown = [this.camera?.publicationId];
    for (const [key, tile] of this.strip.tiles) {
      const layer = tile.wantedLayer();
      if (layer) session.wishes.want(Number(key), layer);
      shown.push(Number(key));
    }
    session.wishes.keepOnly(shown);
    return sent;
  }

  /** Caps the teacher's camera at `layer` (null lifts the cap); returns what was asked. */
  limit(layer) {
    this.layerCap = layer;
    const sent = !!this.camera && this.askLayers();
    return { publicationId: this.camera ? this.camera.publicationId : null, maxLayer: this.wantedLayer(), sent };
  }

  reset() {
    this.camera = null;
    this.screen = null;
    this.cameraPlaying = false;
    this.screenPlaying = false;
    this.els.camera.srcObject = null;
    this.els.screen.srcObject = null;
    this.els.picture.classList.remove('has-screen');
    this.audio.clear();
    this.strip.clear();
    this.els.strip.hidden = true;
    this.changed();
  }

  changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }
}
