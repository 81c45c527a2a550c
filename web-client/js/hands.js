// The teacher's queue of raised hands, in the order they were raised (the server keeps that
// order). Each hand can be invited to the stage or lowered; all can be lowered at once.
// An invitation waits for the participant's answer; the row says so until it comes.

import { h, icon } from './dom.js';
import { t, locale } from './i18n.js';

/** A queue longer than this shows its first ones and a count (a network lesson can be huge). */
const MAX_SHOWN = 100;

export class HandsPanel {
  /**
   * @param {object} els
   * @param {HTMLElement} els.list
   * @param {HTMLElement} els.count
   * @param {HTMLElement} els.empty
   * @param {HTMLButtonElement} els.lowerAll
   * @param {import('./room.js').LessonRoom|null} room  the live lesson; set `room` when it changes
   */
  constructor(els, room) {
    this.els = els;
    this.room = room;
    els.lowerAll.addEventListener('click', () => this.room?.command({ type: 'lower_all_hands' }));
  }

  render() {
    const room = this.room;
    const joined = !!room && room.joined;
    const hands = joined ? room.hands : [];
    const rows = hands.slice(0, MAX_SHOWN).map((hand, i) => this.row(hand, i + 1));
    if (hands.length > MAX_SHOWN) {
      rows.push(h('li', { class: 'hand-more muted small' }, t('hands.more', { count: hands.length - MAX_SHOWN })));
    }
    this.els.list.replaceChildren(...rows);
    this.els.count.textContent = String(hands.length);
    this.els.empty.hidden = hands.length > 0;
    this.els.empty.textContent = joined ? t('hands.none') : t('hands.offline');
    this.els.lowerAll.hidden = hands.length < 2;
  }

  row(hand, position) {
    const room = this.room;
    const id = hand.participant_id;
    const p = room.participant(id);
    const invited = room.invited.has(id);
    const onStage = room.isOnStage(id);
    const invite = h('button', { class: 'btn btn-sm btn-primary', type: 'button', 'data-action': 'invite', disabled: invited || onStage },
      icon('stage', 15), h('span', {}, invited ? t('hands.invited') : t('hands.invite')));
    invite.addEventListener('click', () => room.command({ type: 'invite_to_stage', participant_id: id }));
    const lower = h('button', {
      class: 'btn btn-sm btn-ghost',
      type: 'button',
      'data-action': 'lower',
      title: t('hands.lower'),
      'aria-label': t('hands.lower'),
    }, icon('arrowDown', 15));
    lower.addEventListener('click', () => room.command({ type: 'lower_hand', participant_id: id }));
    return h('li', { class: 'hand', 'data-participant-id': id, 'data-role': p ? p.role : '' },
      h('span', { class: 'hand-pos' }, String(position)),
      h('span', { class: 'hand-who' },
        h('span', { class: 'hand-name' }, p ? p.name : t('hands.unknown')),
        h('span', { class: 'hand-meta' }, [p ? t(`role.${p.role}`) : '', formatTime(hand.at)].filter(Boolean).join(' · '),
          room.isReconnecting(id) ? h('span', { class: 'tag tag-warn' }, t('people.reconnecting')) : null)),
      h('span', { class: 'hand-actions' }, invite, lower));
  }
}

function formatTime(at) {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit' }).format(d);
}
