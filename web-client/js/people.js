// Who is in the lesson, for the teacher: each participant with what is going on with it
// (reconnecting, on stage, hand up, muted) and the moderator's actions on it: mute or unmute
// its microphone and camera (the SFU stops forwarding at once), and remove it (with a
// confirmation; its link cannot rejoin).

import { h, icon } from './dom.js';
import { t } from './i18n.js';

const ROLE_ICONS = { teacher: 'teacher', assistant: 'teacher', classroom: 'school' };
const ORDER = { teacher: 0, assistant: 1, classroom: 2, student: 3, observer: 4, operator: 5, recorder: 6 };
/** A network lesson can have thousands: the list shows this many and a count. */
const MAX_SHOWN = 300;

export class PeoplePanel {
  /**
   * @param {object} els
   * @param {HTMLElement} els.list
   * @param {HTMLElement} els.count
   * @param {HTMLElement} els.empty
   * @param {object} actions
   * @param {(participant: object) => void} actions.remove  asks to confirm, then removes
   */
  constructor(els, actions) {
    this.els = els;
    this.actions = actions;
  }

  /**
   * @param {import('./room.js').LessonRoom|null} room  the live lesson, or null when not live
   * @param {object[]} offline  who the REST API says is here, shown while not live
   */
  render(room, offline) {
    const live = !!room && room.joined;
    const list = live ? [...room.participants.values()] : offline.slice();
    list.sort((a, b) => (ORDER[a.role] ?? 9) - (ORDER[b.role] ?? 9) || String(a.name).localeCompare(String(b.name)));
    const rows = list.slice(0, MAX_SHOWN).map((p) => this.row(p, live ? room : null));
    if (list.length > MAX_SHOWN) rows.push(h('li', { class: 'person-more muted small' }, t('people.more', { count: list.length - MAX_SHOWN })));
    this.els.list.replaceChildren(...rows);
    this.els.count.textContent = String(list.length);
    this.els.empty.hidden = list.length > 0;
    this.els.empty.textContent = live ? t('people.empty') : t('people.offline');
  }

  row(p, room) {
    const you = room && room.you && p.id === room.you.id;
    const tags = [];
    const actions = [];
    if (room) {
      if (room.isReconnecting(p.id)) tags.push(h('span', { class: 'tag tag-warn' }, t('people.reconnecting')));
      if (room.isOnStage(p.id)) tags.push(h('span', { class: 'tag tag-stage' }, t('people.onStage')));
      if (room.hasHand(p.id)) tags.push(h('span', { class: 'tag tag-hand' }, icon('hand', 13), t('people.hand')));
      if (!you && room.isModerator) {
        for (const source of ['microphone', 'camera']) {
          const b = this.muteButton(room, p, source);
          if (b) actions.push(b);
        }
        const remove = h('button', {
          class: 'btn-icon btn-icon-sm danger',
          type: 'button',
          'data-action': 'remove',
          title: t('people.remove', { name: p.name }),
          'aria-label': t('people.remove', { name: p.name }),
        }, icon('userRemove', 16));
        remove.addEventListener('click', () => this.actions.remove(p));
        actions.push(remove);
      }
    }
    return h('li', { class: 'person', 'data-role': p.role, 'data-participant-id': p.id },
      h('span', { class: 'person-avatar' }, icon(ROLE_ICONS[p.role] || 'users', 18)),
      h('span', { class: 'person-main' },
        h('span', { class: 'person-name' }, p.name, you ? h('span', { class: 'you' }, ` (${t('people.you')})`) : null),
        h('span', { class: 'person-sub' }, h('span', { class: 'person-role' }, t(`role.${p.role}`)), ...tags)),
      actions.length ? h('span', { class: 'person-actions' }, ...actions) : null);
  }

  /** A mute toggle for a source the participant sends now; none for one it does not. */
  muteButton(room, p, source) {
    if (!room.publicationOf(p.id, source)) return null;
    const muted = room.isMuted(p.id, source);
    const mic = source === 'microphone';
    const label = t(`people.${muted ? 'un' : ''}mute${mic ? 'Mic' : 'Cam'}`, { name: p.name });
    const b = h('button', {
      class: `btn-icon btn-icon-sm${muted ? ' is-off' : ''}`,
      type: 'button',
      'data-action': `${muted ? 'unmute' : 'mute'}-${source}`,
      'aria-pressed': String(muted),
      title: label,
      'aria-label': label,
    }, icon(mic ? (muted ? 'micOff' : 'mic') : (muted ? 'cameraOff' : 'camera'), 16));
    b.addEventListener('click', () => room.command({ type: muted ? 'unmute' : 'mute', participant_id: p.id, source }));
    return b;
  }
}
