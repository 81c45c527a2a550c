// Video tiles: one participant's picture with its name and what is going on with it (muted by
// the teacher, reconnecting, on stage, hand up), laid out in a grid. The teacher console shows
// its classrooms and the stage this way; the classroom and student views show others on stage.
//
// Tiles are kept by key across renders, so a video element that plays is never rebuilt: a
// re-render only changes labels. Each tile knows the simulcast layer its size needs.

import { h, icon } from './dom.js';
import { t } from './i18n.js';
import { layerForHeight, shownHeight } from './media.js';

export class VideoTile {
  constructor(key) {
    this.key = key;
    this.track = null;
    this.video = h('video', { autoplay: true, muted: true, playsinline: true });
    this.video.muted = true; // the attribute alone does not mute a MediaStream in every engine
    this.placeholder = h('div', { class: 'tile-placeholder' });
    this.name = h('span', { class: 'tile-name' });
    this.badges = h('span', { class: 'tile-badges' });
    this.actions = h('div', { class: 'tile-actions' });
    this.away = h('div', { class: 'tile-away', hidden: true });
    this.el = h('figure', { class: 'tile' },
      this.video, this.placeholder, this.away,
      h('figcaption', { class: 'tile-bar' }, this.name, this.badges),
      this.actions);
  }

  setTrack(track) {
    if (track === this.track) return;
    this.track = track;
    this.video.srcObject = track ? new MediaStream([track]) : null;
    if (track) this.video.play().catch(() => {});
    this.el.classList.toggle('has-video', !!track);
  }

  /**
   * @param {object} info
   * @param {number} info.participantId
   * @param {string} info.name
   * @param {string} [info.role]
   * @param {boolean} [info.micMuted]  a moderator muted its microphone
   * @param {boolean} [info.camMuted]  a moderator muted its camera
   * @param {boolean} [info.reconnecting]
   * @param {boolean} [info.onStage]
   * @param {boolean} [info.hand]
   * @param {Node[]} [info.actions]  buttons shown on the tile
   */
  update(info) {
    this.el.dataset.participantId = String(info.participantId);
    if (info.role) this.el.dataset.role = info.role;
    this.name.textContent = info.name;
    this.el.classList.toggle('is-reconnecting', !!info.reconnecting);
    // A camera the teacher turned off shows its last frame frozen: say so instead.
    this.el.classList.toggle('cam-muted', !!info.camMuted);
    this.el.classList.toggle('on-stage', !!info.onStage);
    this.away.hidden = !info.reconnecting;
    this.away.replaceChildren(h('div', { class: 'spinner' }), h('span', {}, t('tile.reconnecting')));
    this.placeholder.replaceChildren(
      icon(info.role === 'classroom' ? 'school' : 'teacher', 34),
      h('span', {}, info.camMuted ? t('tile.cameraMuted') : t('tile.noVideo')),
    );
    const badges = [];
    if (info.hand) badges.push(badge('hand', t('tile.hand'), 'hand'));
    if (info.micMuted) badges.push(badge('micOff', t('tile.micMuted'), 'muted'));
    if (info.camMuted) badges.push(badge('cameraOff', t('tile.cameraMuted'), 'muted'));
    this.badges.replaceChildren(...badges);
    this.actions.replaceChildren(...(info.actions || []));
  }

  /** The best simulcast layer worth receiving at the tile's size now. */
  wantedLayer() {
    const px = shownHeight(this.video);
    return px > 0 ? layerForHeight(px) : null;
  }

  destroy() {
    this.video.srcObject = null;
    this.el.remove();
  }
}

function badge(iconName, label, kind) {
  return h('span', { class: `tile-badge tile-badge-${kind}`, title: label, 'aria-label': label, role: 'img' }, icon(iconName, 16));
}

/** Tiles in a container, in the order given, kept by key. */
export class TileGrid {
  /**
   * @param {HTMLElement} container
   * @param {() => void} [onResize]  called when the tiles' size changes (to re-ask layers)
   */
  constructor(container, onResize = null) {
    this.container = container;
    this.tiles = new Map(); // key -> VideoTile
    if (onResize && typeof ResizeObserver !== 'undefined') {
      let pending = false;
      new ResizeObserver(() => {
        // Coalesced: a window drag resizes many times a frame.
        if (pending) return;
        pending = true;
        requestAnimationFrame(() => {
          pending = false;
          onResize();
        });
      }).observe(container);
    }
  }

  /**
   * Shows exactly these tiles, in this order.
   * @param {{key: string, track: MediaStreamTrack|null, info: object}[]} items
   */
  sync(items) {
    const keep = new Set(items.map((i) => i.key));
    for (const [key, tile] of [...this.tiles]) {
      if (keep.has(key)) continue;
      tile.destroy();
      this.tiles.delete(key);
    }
    items.forEach((item, index) => {
      let tile = this.tiles.get(item.key);
      if (!tile) {
        tile = new VideoTile(item.key);
        this.tiles.set(item.key, tile);
      }
      tile.setTrack(item.track);
      tile.update(item.info);
      // Moved only when out of place: re-inserting a playing video pauses it in some engines.
      if (this.container.children[index] !== tile.el) this.container.insertBefore(tile.el, this.container.children[index] || null);
    });
    this.container.dataset.count = String(items.length);
  }

  get size() {
    return this.tiles.size;
  }

  clear() {
    this.sync([]);
  }
}
