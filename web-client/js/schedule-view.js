// The console's schedule view (`#/`): the teacher's lessons loaded from the REST API and drawn
// in groups (schedule.js), with their loading, empty and failed states, and the form that
// creates a lesson (its mode's hint, and recording on by default where the server defaults it).

import { $ } from './dom.js';
import { t } from './i18n.js';
import { api } from './api.js';
import { renderSchedule, scheduledAt } from './schedule.js';
import { describe } from './studio.js';

export class ScheduleView {
  /** @param {(err: unknown) => boolean} handleAuthError  true when it dealt with a 401 */
  constructor(handleAuthError) {
    this.handleAuthError = handleAuthError;
    this.lessons = null; // the last list loaded
    // Recording is on by default where the server defaults it (network lessons); the teacher
    // may change it, and a later change of mode no longer overrides that choice.
    this.recordTouched = false;
    this.els = {
      view: $('#view-lessons'),
      list: $('#lesson-list'),
      status: $('#lessons-status'),
      refresh: $('#refresh-lessons'),
      createForm: $('#create-lesson'),
      createError: $('#create-error'),
      createSubmit: $('#create-lesson-submit'),
      modeSelect: $('#lesson-mode-input'),
      modeHint: $('#mode-hint'),
      recordInput: $('#lesson-record-input'),
    };
    this.wire();
  }

  async load() {
    const { els } = this;
    els.status.hidden = false;
    if (!els.list.children.length) els.status.textContent = t('lessons.loading');
    try {
      const lessons = await api.listLessons();
      this.lessons = Array.isArray(lessons) ? lessons : [];
      this.renderList();
    } catch (err) {
      if (this.handleAuthError(err)) return;
      els.status.hidden = false;
      els.status.textContent = t('lessons.loadFailed', { message: describe(err) });
    }
  }

  renderList() {
    if (!this.lessons) return;
    const shown = renderSchedule(this.els.list, this.lessons);
    this.els.status.hidden = shown > 0;
    this.els.status.textContent = t('lessons.empty');
  }

  renderModeHint() {
    const { els } = this;
    els.modeHint.textContent = t(`mode.${els.modeSelect.value}.hint`);
    if (!this.recordTouched) els.recordInput.checked = els.modeSelect.value === 'network';
  }

  /** Redraws what was written in the old language. */
  relabel() {
    this.renderList();
    this.renderModeHint();
  }

  async create() {
    const { els } = this;
    const form = new FormData(els.createForm);
    const body = {
      title: String(form.get('title') || '').trim(),
      subject: String(form.get('subject') || '').trim(),
      grade: String(form.get('grade') || '').trim(),
      mode: String(form.get('mode') || 'delivery'),
      record: els.recordInput.checked,
    };
    const when = scheduledAt(String(form.get('scheduled_at') || ''));
    if (when) body.scheduled_at = when;
    els.createError.hidden = true;
    els.createSubmit.disabled = true;
    try {
      const lesson = await api.createLesson(body);
      els.createForm.reset();
      this.recordTouched = false;
      this.renderModeHint();
      location.hash = `#/lessons/${lesson.id}`;
    } catch (err) {
      if (this.handleAuthError(err)) return;
      els.createError.hidden = false;
      els.createError.textContent = t('create.failed', { message: describe(err) });
    } finally {
      els.createSubmit.disabled = false;
    }
  }

  wire() {
    const { els } = this;
    els.refresh.addEventListener('click', () => this.load());
    els.recordInput.addEventListener('change', () => {
      this.recordTouched = true;
    });
    els.modeSelect.addEventListener('change', () => this.renderModeHint());
    this.renderModeHint();
    els.createForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.create();
    });
  }
}
