// The lesson's chat as a panel: history from `joined`, new messages as they come, a form to
// write one, and for moderators a delete button on each message and a choice of audience
// (everyone, or the observers' channel). The server enforces every rule (length, rate, who may
// write where); the panel shows its refusals in words and keeps the text that was refused.
//
// A read-only panel (the classroom's big screen) shows the messages and no form.

import { h, icon } from './dom.js';
import { t, locale } from './i18n.js';

/** The server's limit (signaling/src/chat.rs); shown as a counter near it, enforced there. */
export const MAX_CHAT_CHARS = 500;
const COUNTER_FROM = 400;

export class ChatPanel {
  /**
   * @param {HTMLElement} root  an empty element the panel fills
   * @param {import('./room.js').LessonRoom} room
   * @param {{readOnly?: boolean}} [opts]
   */
  constructor(root, room, { readOnly = false } = {}) {
    this.root = root;
    this.room = room;
    this.readOnly = readOnly;
    this.error = null; // the refusal shown under the form
    // What we sent and have not seen come back, by request id: a refused one is given back.
    // Entries leave when their message arrives or is refused; a few lost to a dropped socket
    // are capped.
    this.unconfirmed = new Map();

    this.list = h('ol', { class: 'chat-list', 'aria-live': 'polite' });
    this.empty = h('p', { class: 'chat-empty' });
    this.root.classList.add('chat');
    this.root.replaceChildren(this.list, this.empty);
    if (!readOnly) this.buildForm();

    room.addEventListener('change', (e) => {
      const what = e.detail.what;
      if (what === 'chat' || what === 'joined' || what === 'grants' || what === 'participants') this.render();
    });
    room.addEventListener('chat-message', (e) => {
      const m = e.detail;
      // Our own message arrived: it was accepted, nothing to give back.
      if (room.you && m.from && m.from.id === room.you.id) {
        for (const [id, text] of this.unconfirmed) {
          if (text.trim() === m.text) {
            this.unconfirmed.delete(id);
            break;
          }
        }
      }
    });
    this.render();
  }

  buildForm() {
    this.input = h('textarea', { class: 'chat-input', rows: '2', 'data-testid': 'chat-input' });
    this.counter = h('span', { class: 'chat-counter', 'aria-live': 'polite' });
    this.audience = h('select', { class: 'chat-audience', 'aria-label': '' });
    this.send = h('button', { class: 'btn btn-primary chat-send', type: 'submit' });
    this.errorEl = h('p', { class: 'chat-error', role: 'alert', hidden: true });
    this.note = h('p', { class: 'chat-note' });
    this.form = h('form', { class: 'chat-form', autocomplete: 'off' },
      this.errorEl,
      this.input,
      h('div', { class: 'chat-form-row' }, this.audience, this.note, this.counter, this.send));
    this.root.append(this.form);

    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter starts a new line; an IME composing Chinese keeps its Enter.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => this.renderCounter());
  }

  submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    const message = { type: 'chat', text };
    if (this.room.isModerator && this.audience.value === 'observers') message.to = 'observers';
    const id = this.room.command(message, (err) => this.refused(id, err));
    if (!id) {
      this.setError(t('chat.error.offline'));
      return;
    }
    this.unconfirmed.set(id, text);
    while (this.unconfirmed.size > 20) this.unconfirmed.delete(this.unconfirmed.keys().next().value);
    this.input.value = '';
    this.renderCounter();
    this.setError(null);
  }

  refused(id, err) {
    // Nothing typed is lost: the refused text comes back unless something new was typed.
    const text = this.unconfirmed.get(id);
    this.unconfirmed.delete(id);
    if (text !== undefined && !this.input.value) {
      this.input.value = text;
      this.renderCounter();
    }
    this.setError(describeChatError(err));
  }

  setError(text) {
    this.error = text;
    if (!this.errorEl) return;
    this.errorEl.hidden = !text;
    this.errorEl.textContent = text || '';
    this.root.classList.toggle('has-error', !!text);
  }

  deleteMessage(id) {
    this.room.command({ type: 'delete_chat', message_id: id }, (err) => this.setError(describeChatError(err)));
  }

  renderCounter() {
    if (!this.counter) return;
    const n = Array.from(this.input.value.trim()).length;
    this.counter.hidden = n < COUNTER_FROM;
    this.counter.textContent = `${n} / ${MAX_CHAT_CHARS}`;
    this.counter.classList.toggle('over', n > MAX_CHAT_CHARS);
  }

  render() {
    const room = this.room;
    const nearBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const canDelete = room.isModerator && !this.readOnly;
    this.list.replaceChildren(...room.chat.map((m) => this.renderMessage(m, canDelete)));
    this.empty.hidden = room.chat.length > 0;
    this.empty.textContent = t(this.readOnly ? 'chat.emptyReadOnly' : 'chat.empty');
    if (nearBottom) this.list.scrollTop = this.list.scrollHeight;

    if (!this.form) return;
    const grant = room.grants.chat;
    const may = room.joined && grant !== 'none';
    this.form.hidden = !may;
    this.input.placeholder = t(grant === 'observers' ? 'chat.placeholderObservers' : 'chat.placeholder');
    this.input.setAttribute('aria-label', t('chat.placeholder'));
    this.send.textContent = t('chat.send');
    this.audience.hidden = !room.isModerator;
    this.audience.setAttribute('aria-label', t('chat.audience'));
    const chosen = this.audience.value || 'everyone';
    this.audience.replaceChildren(
      h('option', { value: 'everyone' }, t('chat.toEveryone')),
      h('option', { value: 'observers' }, t('chat.toObservers')),
    );
    this.audience.value = chosen;
    this.note.hidden = grant !== 'observers';
    this.note.textContent = t('chat.observersNote');
    if (this.error) this.setError(this.error);
    this.renderCounter();
  }

  renderMessage(m, canDelete) {
    const you = this.room.you;
    const mine = you && m.from && m.from.id === you.id;
    const role = m.from ? m.from.role : '';
    const head = h('div', { class: 'chat-head' },
      h('span', { class: 'chat-author' }, m.from ? m.from.name : ''),
      role ? h('span', { class: 'chat-role', 'data-role': role }, t(`role.${role}`)) : null,
      m.to === 'observers' ? h('span', { class: 'chat-channel' }, t('chat.observersTag')) : null,
      h('time', { class: 'chat-time', datetime: m.at }, formatTime(m.at)));
    const item = h('li', {
      class: `chat-message${mine ? ' mine' : ''}${m.to === 'observers' ? ' observers' : ''}`,
      'data-message-id': m.id,
      'data-role': role,
    }, head, h('p', { class: 'chat-text' }, m.text));
    if (canDelete) {
      const del = h('button', {
        class: 'chat-delete',
        type: 'button',
        title: t('chat.delete'),
        'aria-label': t('chat.delete'),
        'data-action': 'delete-chat',
      }, icon('trash', 16));
      del.addEventListener('click', () => this.deleteMessage(m.id));
      item.append(del);
    }
    return item;
  }
}

/** A refusal in words the reader understands, by its stable code. */
export function describeChatError(err) {
  switch (err && err.code) {
    case 'chat_too_long':
      return t('chat.error.tooLong', { max: MAX_CHAT_CHARS });
    case 'rate_limited':
      return t('chat.error.rateLimited');
    case 'forbidden':
      return t('chat.error.forbidden');
    case 'bad_message':
      return t('chat.error.bad');
    case 'not_found':
      return t('chat.error.gone');
    default:
      return t('chat.error.other', { message: (err && (err.message || err.code)) || '' });
  }
}

function formatTime(at) {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit' }).format(d);
}
