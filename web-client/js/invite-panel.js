// The studio's invite card: the form that makes an invitation link for a classroom, student or
// observer (an admin REST call), and the links made so far for the lesson open in the studio
// (kept in this browser by invites.js). Hidden for a teacher who came from an invite link, and
// history only once the lesson ended.

import { $, toast } from './dom.js';
import { t } from './i18n.js';
import { api } from './api.js';
import { loadInvites, saveInvites, inviteUrl, renderInviteList } from './invites.js';
import { describe } from './studio.js';

export class InvitePanel {
  /** @param {(err: unknown) => boolean} handleAuthError  true when it dealt with a 401 */
  constructor(handleAuthError) {
    this.handleAuthError = handleAuthError;
    /** @type {import('./studio.js').Studio|null} whose invitations are shown */
    this.studio = null;
    this.els = {
      card: $('#invite-card'),
      title: $('#invite-title'),
      lead: $('#invite-lead'),
      form: $('#invite-form'),
      role: $('#invite-role'),
      name: $('#invite-name'),
      submit: $('#invite-submit'),
      list: $('#invite-list'),
      empty: $('#invite-empty'),
    };
    this.els.role.addEventListener('change', () => this.renderForm());
    this.renderForm();
    this.els.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.create();
    });
  }

  attach(studio) {
    this.studio = studio;
  }

  /** The links made for the lesson, newest first. */
  renderList() {
    if (this.studio) renderInviteList(this.els.list, this.els.empty, this.studio.invites || []);
  }

  /** The card is there for an admin only: a teacher from an invite link cannot make links. */
  renderCard() {
    if (this.studio) this.els.card.hidden = !this.studio.admin;
  }

  /** An ended lesson keeps its links as history, with nothing left to invite to. */
  renderEnded(ended) {
    this.els.form.hidden = ended;
    this.els.title.textContent = t(ended ? 'invite.history' : 'invite.title');
    this.els.lead.hidden = ended;
  }

  /** The name field's words follow the role: a classroom's name or a person's. */
  renderForm() {
    const role = this.els.role.value;
    this.els.name.placeholder = t(role === 'classroom' ? 'invite.namePh' : 'invite.personPh');
    this.els.name.setAttribute('aria-label', t(role === 'classroom' ? 'invite.name' : 'invite.personName'));
  }

  async create() {
    const studio = this.studio;
    if (!studio) return;
    const { els } = this;
    const name = els.name.value.trim();
    if (!name) return;
    const role = els.role.value;
    const lessonId = studio.id;
    els.submit.disabled = true;
    try {
      const invite = await api.createInvite(lessonId, role, name);
      const url = inviteUrl(role, invite);
      const list = [...loadInvites(lessonId), { name, role, url, expires_at: invite.expires_at }];
      saveInvites(lessonId, list);
      if (this.studio && this.studio.id === lessonId) {
        this.studio.invites = list;
        this.renderList();
      }
      els.name.value = '';
    } catch (err) {
      if (this.handleAuthError(err)) return;
      toast(t('invite.failed', { message: describe(err) }), 'error');
    } finally {
      els.submit.disabled = false;
    }
  }
}
