// The admin page (/admin.html): accounts (create, one-time sign-in link, disable/enable) and
// schools with their classrooms. Everything goes through /api as the signed-in admin (or the
// API key); anyone else is told the page is not for them.

import { api, ApiError, signinUrl } from './api.js';
import { $, applyIcons, h, toast } from './dom.js';
import { applyI18n, t } from './i18n.js';
import { mountLanguageSwitch } from './langswitch.js';

const els = {
  lang: $('#lang'),
  whoami: $('#whoami'),
  signout: $('#signout'),
  status: $('#admin-status'),
  denied: $('#admin-denied'),
  deniedText: $('#admin-denied-text'),
  content: $('#admin-content'),
  accountsBody: $('#accounts-body'),
  createAccount: $('#create-account'),
  newUsername: $('#new-username'),
  newName: $('#new-name'),
  newRole: $('#new-role'),
  newSchool: $('#new-school'),
  createAccountSubmit: $('#create-account-submit'),
  createSchool: $('#create-school'),
  newSchoolName: $('#new-school-name'),
  schoolsEmpty: $('#schools-empty'),
  schoolList: $('#school-list'),
  linkDialog: $('#link-dialog'),
  linkTitle: $('#link-title'),
  linkHint: $('#link-hint'),
  linkUrl: $('#link-url'),
  linkCopy: $('#link-copy'),
  linkCopyText: $('#link-copy-text'),
};

const state = {
  me: null, // the /api/auth/me answer
  accounts: [],
  schools: [], // each with its `classroomList`
  link: null, // { name, url } shown in the dialog
};

/** A refusal as something to read. */
function describe(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t('signin.error.network');
    if (['username_taken', 'name_taken', 'last_admin', 'weak_password'].includes(err.code)) {
      return t(`admin.error.${err.code}`);
    }
  }
  return t('admin.error.other', { message: err && err.message ? err.message : String(err) });
}

async function attempt(action) {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'unauthorized')) toast(describe(err), 'error');
    return undefined;
  }
}

async function load() {
  let me;
  try {
    me = await api.me();
  } catch (err) {
    if (err instanceof ApiError && err.code === 'unauthorized') {
      location.assign(signinUrl());
    } else {
      els.status.textContent = describe(err);
    }
    return;
  }
  state.me = me;
  renderWho();
  if (me.role !== 'admin') {
    els.status.hidden = true;
    els.denied.hidden = false;
    renderDenied();
    return;
  }
  await refresh();
  els.status.hidden = true;
  els.content.hidden = false;
}

async function refresh() {
  const loaded = await attempt(async () => {
    const [accounts, schools] = await Promise.all([api.listAccounts(), api.listSchools()]);
    const classroomLists = await Promise.all(schools.map((s) => api.listClassrooms(s.id)));
    schools.forEach((s, i) => {
      s.classroomList = classroomLists[i];
    });
    return { accounts, schools };
  });
  if (!loaded) return;
  state.accounts = loaded.accounts;
  state.schools = loaded.schools;
  render();
}

function renderWho() {
  const account = state.me && state.me.account;
  els.whoami.textContent = account ? account.display_name : '';
  // The API key is no session: there is nothing to sign out of.
  els.signout.hidden = !account;
}

function renderDenied() {
  const account = state.me.account;
  els.deniedText.textContent = t('admin.notAdmin', {
    name: account ? account.display_name : '',
    role: t(`signin.role.${state.me.role}`),
  });
}

function schoolName(id) {
  const school = state.schools.find((s) => s.id === id);
  return school ? school.name : '—';
}

function statusOf(account) {
  if (account.disabled) return 'disabled';
  return account.has_password ? 'active' : 'noPassword';
}

function renderAccounts() {
  const myId = state.me && state.me.account ? state.me.account.id : null;
  const rows = state.accounts.map((a) => {
    const status = statusOf(a);
    const toggle = a.disabled
      ? h('button', { class: 'btn btn-ghost btn-sm', type: 'button', 'data-action': 'enable', onclick: () => setDisabled(a, false) }, t('admin.action.enable'))
      : h('button', { class: 'btn btn-danger-quiet btn-sm', type: 'button', 'data-action': 'disable', onclick: () => setDisabled(a, true) }, t('admin.action.disable'));
    return h(
      'tr',
      { dataset: { username: a.username }, class: a.disabled ? 'is-disabled' : null },
      h('td', { class: 'mono' }, a.username, a.id === myId ? h('span', { class: 'you' }, t('admin.you')) : null),
      h('td', {}, a.display_name),
      h('td', {}, t(`admin.role.${a.role}`)),
      h('td', { class: 'school' }, a.school_id === null ? '—' : schoolName(a.school_id)),
      h('td', {}, h('span', { class: `state state-${status}` }, t(`admin.status.${status}`))),
      h(
        'td',
        { class: 'actions' },
        h(
          'div',
          { class: 'actions-inner' },
          a.disabled
            ? null
            : h('button', { class: 'btn btn-ghost btn-sm', type: 'button', 'data-action': 'link', onclick: () => newLink(a) }, t('admin.action.link')),
          toggle,
        ),
      ),
    );
  });
  els.accountsBody.replaceChildren(...rows);
}

function renderSchoolOptions() {
  const chosen = els.newSchool.value;
  els.newSchool.replaceChildren(
    h('option', { value: '' }, t('admin.create.noSchool')),
    ...state.schools.map((s) => h('option', { value: String(s.id) }, s.name)),
  );
  if ([...els.newSchool.options].some((o) => o.value === chosen)) els.newSchool.value = chosen;
}

function renderSchools() {
  els.schoolsEmpty.hidden = state.schools.length > 0;
  const items = state.schools.map((school) => {
    const input = h('input', {
      maxlength: 100,
      required: true,
      placeholder: t('admin.classroom.namePh'),
      'aria-label': t('admin.classroom.namePh'),
      class: 'classroom-name',
    });
    const form = h(
      'form',
      {
        class: 'inline-form compact',
        novalidate: true,
        onsubmit: async (e) => {
          e.preventDefault();
          const name = input.value.trim();
          if (!name) return input.focus();
          const made = await attempt(() => api.createClassroom(school.id, name));
          if (made) await refresh();
        },
      },
      input,
      h('button', { class: 'btn btn-ghost btn-sm', type: 'submit' }, t('admin.classroom.add')),
    );
    const classrooms = school.classroomList.length
      ? h('ul', { class: 'classroom-chips' }, school.classroomList.map((c) => h('li', { class: 'classroom-chip' }, c.name)))
      : h('p', { class: 'muted small' }, t('admin.classrooms.empty'));
    return h(
      'li',
      { class: 'school-item', dataset: { school: school.name } },
      h('div', { class: 'school-name' }, h('span', { 'data-icon': 'school', 'data-icon-size': 16 }), h('strong', {}, school.name)),
      classrooms,
      form,
    );
  });
  els.schoolList.replaceChildren(...items);
  applyIcons(els.schoolList);
}

function renderLink() {
  if (!state.link) return;
  els.linkTitle.textContent = t('admin.link.title', { name: state.link.name });
  els.linkHint.textContent = t('admin.link.hint', { name: state.link.name });
  els.linkUrl.value = state.link.url;
}

function render() {
  document.title = `${t('admin.pageTitle')} · ${t('app.name')}`;
  if (state.me) {
    renderWho();
    if (state.me.role !== 'admin') renderDenied();
  }
  renderAccounts();
  renderSchoolOptions();
  renderSchools();
  renderLink();
}

/** Shows a one-time link. Built on this page's own origin, which is the one people reach. */
function showLink(account, token) {
  state.link = { name: account.display_name, url: `${location.origin}/signin.html#once=${token}` };
  els.linkCopyText.textContent = t('admin.link.copy');
  renderLink();
  if (!els.linkDialog.open) els.linkDialog.showModal();
  els.linkUrl.select();
}

async function newLink(account) {
  const link = await attempt(() => api.newSigninLink(account.id));
  if (link) showLink(account, link.token);
}

async function setDisabled(account, disabled) {
  if (disabled && !window.confirm(t('admin.confirmDisable', { name: account.display_name }))) return;
  const changed = await attempt(() => api.updateAccount(account.id, { disabled }));
  if (changed) await refresh();
}

async function createAccount(event) {
  event.preventDefault();
  const username = els.newUsername.value.trim();
  if (!username) {
    els.newUsername.focus();
    return;
  }
  const body = { username, role: els.newRole.value };
  const name = els.newName.value.trim();
  if (name) body.display_name = name;
  if (els.newSchool.value) body.school_id = Number(els.newSchool.value);
  els.createAccountSubmit.disabled = true;
  const created = await attempt(() => api.createAccount(body));
  els.createAccountSubmit.disabled = false;
  if (!created) return;
  els.createAccount.reset();
  toast(t('admin.created', { name: created.account.display_name }), 'success');
  await refresh();
  if (created.signin_link) showLink(created.account, created.signin_link.token);
}

async function createSchool(event) {
  event.preventDefault();
  const name = els.newSchoolName.value.trim();
  if (!name) {
    els.newSchoolName.focus();
    return;
  }
  const made = await attempt(() => api.createSchool(name));
  if (!made) return;
  els.newSchoolName.value = '';
  await refresh();
}

async function copyLink() {
  els.linkUrl.select();
  try {
    await navigator.clipboard.writeText(els.linkUrl.value);
  } catch {
    // No clipboard permission (plain HTTP on another host): the text is selected to copy by hand.
    document.execCommand?.('copy');
  }
  els.linkCopyText.textContent = t('admin.link.copied');
}

async function signOut() {
  await attempt(() => api.signOut());
  location.assign('/signin.html');
}

els.createAccount.addEventListener('submit', createAccount);
els.createSchool.addEventListener('submit', createSchool);
els.linkCopy.addEventListener('click', copyLink);
els.signout.addEventListener('click', signOut);

/** For the browser tests: what the page holds. */
window.adminDebug = {
  state: () => ({
    me: state.me,
    accounts: state.accounts.map((a) => a.username),
    schools: state.schools.map((s) => ({ name: s.name, classrooms: s.classroomList.map((c) => c.name) })),
    link: state.link,
  }),
};

applyI18n();
applyIcons();
mountLanguageSwitch(els.lang, render);
load();
