// The sign-in page (/signin.html): username and password; or `#once=TOKEN`, a one-time link
// from an admin (or printed at first start), which signs in and then asks for a password.
// Afterwards the page goes to `?next=` (a page of this site) or, by role, to the admin page or
// the teacher console.

import { api, ApiError, safeNext } from './api.js';
import { $, applyIcons } from './dom.js';
import { applyI18n, t } from './i18n.js';
import { mountLanguageSwitch } from './langswitch.js';

const MIN_PASSWORD_CHARS = 8;

const els = {
  lang: $('#lang'),
  opening: $('#view-opening'),
  signinForm: $('#signin-form'),
  signinNotice: $('#signin-notice'),
  signinError: $('#signin-error'),
  username: $('#signin-username'),
  password: $('#signin-password'),
  signinSubmit: $('#signin-submit'),
  chooseForm: $('#choose-form'),
  chooseLead: $('#choose-lead'),
  chooseError: $('#choose-error'),
  chooseUsername: $('#choose-username'),
  chooseNew: $('#choose-new'),
  chooseConfirm: $('#choose-confirm'),
  chooseSubmit: $('#choose-submit'),
  signedIn: $('#view-signed-in'),
  signedInLead: $('#signed-in-lead'),
  continueLink: $('#continue'),
  signout: $('#signout'),
};

// What is on screen, so a language switch can re-render the parts built here.
const state = {
  view: null, // 'opening' | 'signin' | 'choose' | 'signed-in'
  account: null,
  error: null, // { key, params } shown on the current form
  notice: null, // { key, params }
};

/** Where to go once signed in: `?next=` when it is a page of ours, else by role. */
function destination(account) {
  const next = new URLSearchParams(location.search).get('next');
  return safeNext(next, account && account.role === 'admin' ? '/admin.html' : '/');
}

/** A refusal as a message key for the person reading it. */
function describe(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return { key: 'signin.error.network' };
    if (err.code === 'rate_limited') {
      return { key: 'signin.error.rate_limited', params: { minutes: Math.max(1, Math.ceil((err.retryAfter ?? 60) / 60)) } };
    }
    if (['invalid_credentials', 'account_disabled', 'link_invalid'].includes(err.code)) {
      return { key: `signin.error.${err.code}` };
    }
  }
  return { key: 'signin.error.other', params: { message: err && err.message ? err.message : String(err) } };
}

function roleName(account) {
  return t(`signin.role.${account.role}`);
}

function render() {
  document.title = `${t('signin.pageTitle')} · ${t('app.name')}`;
  const views = { opening: els.opening, signin: els.signinForm, choose: els.chooseForm, 'signed-in': els.signedIn };
  for (const [name, el] of Object.entries(views)) el.hidden = name !== state.view;
  const message = (el, m) => {
    el.hidden = !m;
    el.textContent = m ? t(m.key, m.params) : '';
  };
  if (state.view === 'signin') {
    message(els.signinError, state.error);
    message(els.signinNotice, state.notice);
  }
  if (state.view === 'choose') {
    message(els.chooseError, state.error);
    els.chooseLead.textContent = t('signin.choose.lead', { name: state.account.display_name });
    els.chooseUsername.value = state.account.username;
  }
  if (state.view === 'signed-in') {
    els.signedInLead.textContent = t('signin.signedIn.lead', {
      name: state.account.display_name,
      role: roleName(state.account),
    });
    els.continueLink.href = destination(state.account);
  }
}

function show(view, { account = state.account, error = null, notice = null } = {}) {
  Object.assign(state, { view, account, error, notice });
  render();
  const focus = { signin: els.username.value ? els.password : els.username, choose: els.chooseNew }[view];
  if (focus) focus.focus();
}

/** `#once=TOKEN` from the address, removed from it at once so it stays out of history. */
function takeOnceToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = params.get('once');
  if (token) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

async function start() {
  const once = takeOnceToken();
  if (once) {
    show('opening');
    try {
      const signedIn = await api.useSigninLink(once);
      show('choose', { account: signedIn.account });
    } catch (err) {
      show('signin', { error: describe(err) });
    }
    return;
  }
  try {
    const me = await api.me();
    if (me.account && me.must_set_password) show('choose', { account: me.account });
    else if (me.account) show('signed-in', { account: me.account });
    else show('signin');
  } catch {
    // Not signed in (401), or the server is away: the form says so when it is used.
    show('signin');
  }
}

function busy(button, labelKey, on) {
  button.disabled = on;
  button.textContent = t(labelKey);
}

async function signIn(event) {
  event.preventDefault();
  const username = els.username.value.trim();
  const password = els.password.value;
  if (!username || !password) {
    (username ? els.password : els.username).focus();
    return;
  }
  busy(els.signinSubmit, 'signin.signingIn', true);
  try {
    const signedIn = await api.signIn(username, password);
    els.password.value = '';
    if (signedIn.must_set_password) {
      show('choose', { account: signedIn.account });
    } else {
      location.assign(destination(signedIn.account));
    }
  } catch (err) {
    els.password.value = '';
    show('signin', { error: describe(err) });
  } finally {
    busy(els.signinSubmit, 'signin.submit', false);
  }
}

async function choosePassword(event) {
  event.preventDefault();
  const next = els.chooseNew.value;
  if ([...next].length < MIN_PASSWORD_CHARS) {
    show('choose', { error: { key: 'signin.choose.tooShort' } });
    return;
  }
  if (next !== els.chooseConfirm.value) {
    show('choose', { error: { key: 'signin.choose.mismatch' } });
    els.chooseConfirm.focus();
    return;
  }
  busy(els.chooseSubmit, 'signin.choose.saving', true);
  try {
    const signedIn = await api.setPassword(next);
    els.chooseNew.value = '';
    els.chooseConfirm.value = '';
    location.assign(destination(signedIn.account));
  } catch (err) {
    if (err instanceof ApiError && err.code === 'unauthorized') {
      // The link's session ended meanwhile: signing in again is the only way on.
      show('signin', { error: { key: 'signin.error.link_invalid' } });
    } else if (err instanceof ApiError && err.code === 'weak_password') {
      show('choose', { error: { key: 'signin.choose.tooShort' } });
    } else {
      show('choose', { error: describe(err) });
    }
  } finally {
    busy(els.chooseSubmit, 'signin.choose.submit', false);
  }
}

async function signOut() {
  try {
    await api.signOut();
  } catch {
    // Signing out always succeeds server-side; an unreachable server changes nothing here.
  }
  els.username.value = state.account ? state.account.username : '';
  show('signin', { account: null, notice: { key: 'signin.signedOut' } });
}

els.signinForm.addEventListener('submit', signIn);
els.chooseForm.addEventListener('submit', choosePassword);
els.signout.addEventListener('click', signOut);

/** For the browser tests: what the page shows. */
window.signinDebug = {
  state: () => ({ view: state.view, account: state.account, error: state.error }),
};

applyI18n();
applyIcons();
mountLanguageSwitch(els.lang, render);
start();
