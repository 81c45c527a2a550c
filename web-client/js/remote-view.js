// What the teacher sees of the others, by lesson mode (DESIGN §2):
//   delivery        a grid of every remote classroom's camera (they all send, all the time);
//   famous_teacher  the stage: whoever the teacher called up, each with a "take down" button,
//   network         and who was invited and has not answered yet.
// Anyone else who sends a camera (an assistant, a host class) is shown too. Each tile asks the
// SFU only for the simulcast layer its size needs.

import { h, icon } from './dom.js';
import { t } from './i18n.js';
import { TileGrid } from './tiles.js';

export class RemoteView {
  /**
   * @param {object} els
   * @param {HTMLElement} els.title
   * @param {HTMLElement} els.lead
   * @param {HTMLElement} els.grid  holds only tiles
   * @param {HTMLElement} els.empty
   * @param {HTMLElement} els.pending  the invitations waiting for an answer
   */
  constructor(els) {
    this.els = els;
    this.session = null;
    this.grid = new TileGrid(els.grid, () => this.askLayers());
  }

  /** @param {import('./session.js').LessonSession|null} session */
  render(session, mode) {
    this.session = session;
    const delivery = mode === 'delivery';
    this.els.title.textContent = t(delivery ? 'remote.classrooms' : 'remote.stage');
    const room = session && session.room.joined ? session.room : null;
    if (!room) {
      this.grid.clear();
      this.els.grid.hidden = true;
      this.els.pending.replaceChildren();
      this.els.empty.hidden = false;
      this.els.empty.textContent = t('remote.offline');
      this.els.lead.textContent = t(delivery ? 'remote.classroomsLead' : 'remote.stageLead', { max: stageLimit(mode) });
      return;
    }
    this.els.lead.textContent = t(delivery ? 'remote.classroomsLead' : 'remote.stageLead', { max: stageLimit(mode) });

    const cameras = new Map(); // participant id -> received camera track
    for (const r of session.received()) {
      if (r.kind === 'video' && r.source === 'camera' && r.owner) cameras.set(r.owner.id, r);
    }
    const you = room.you ? room.you.id : null;
    const shown = [];
    const seen = new Set();
    const add = (id) => {
      if (seen.has(id) || id === you) return;
      const p = room.participant(id);
      if (!p) return;
      seen.add(id);
      shown.push(p);
    };
    if (delivery) {
      for (const p of room.participants.values()) if (p.role === 'classroom') add(p.id);
    }
    for (const id of room.stage) add(id);
    for (const id of cameras.keys()) add(id);

    this.grid.sync(shown.map((p) => {
      const cam = cameras.get(p.id);
      return {
        key: String(p.id),
        track: cam ? cam.track : null,
        info: {
          participantId: p.id,
          name: p.name,
          role: p.role,
          micMuted: room.isMuted(p.id, 'microphone'),
          camMuted: room.isMuted(p.id, 'camera'),
          reconnecting: room.isReconnecting(p.id),
          onStage: room.isOnStage(p.id),
          hand: room.hasHand(p.id),
          actions: room.isOnStage(p.id) && room.isModerator ? [this.takeDown(room, p)] : [],
        },
      };
    }));
    this.els.grid.hidden = shown.length === 0;
    this.els.grid.dataset.mode = mode;
    this.els.empty.hidden = shown.length > 0;
    this.els.empty.textContent = t(delivery ? 'remote.noClassrooms' : 'remote.emptyStage');

    const pending = [...room.invited].map((id) => room.participant(id)).filter(Boolean);
    this.els.pending.replaceChildren(...pending.map((p) =>
      h('span', { class: 'pending', 'data-participant-id': p.id }, h('span', { class: 'spinner' }), t('remote.waitingFor', { name: p.name }))));
    this.askLayers();
  }

  takeDown(room, p) {
    const b = h('button', { class: 'btn btn-sm tile-btn', type: 'button', 'data-action': 'take-down' },
      icon('arrowDown', 14), h('span', {}, t('remote.takeDown')));
    b.addEventListener('click', () => room.command({ type: 'remove_from_stage', participant_id: p.id }));
    return b;
  }

  askLayers() {
    const session = this.session;
    if (!session || !session.room.joined) return;
    const camPubs = new Map();
    for (const r of session.received()) if (r.kind === 'video' && r.owner) camPubs.set(String(r.owner.id), r.publicationId);
    for (const [key, tile] of this.grid.tiles) {
      const pub = camPubs.get(key);
      const layer = tile.wantedLayer();
      if (pub !== undefined && layer) session.wishes.want(pub, layer);
    }
  }
}

/** The stage's size per mode (signaling/src/grants.rs ModePolicy), shown to the teacher. */
function stageLimit(mode) {
  return mode === 'delivery' ? 8 : 4;
}
