// The invitation links the teacher made for a lesson: one per classroom, student or observer,
// each with a copy button. They are kept in this browser per lesson, so a reload keeps them
// (the server keeps only what it needs to check a token, not the link itself).

import { h, icon } from './dom.js';
import { t } from './i18n.js';

const ROLE_ICONS = { classroom: 'school', student: 'users', observer: 'users' };
/** Links kept per lesson; older ones are dropped first. */
const MAX_KEPT = 50;

function storageKey(lessonId) {
  return `classroom.invites.${lessonId}`;
}

export function loadInvites(lessonId) {
  try {
    const list = JSON.parse(localStorage.getItem(storageKey(lessonId)) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

export function saveInvites(lessonId, list) {
  try {
    localStorage.setItem(storageKey(lessonId), JSON.stringify(list.slice(-MAX_KEPT)));
  } catch {
    // Links stay on screen for this visit.
  }
}

/**
 * The link to hand out, as the server made it: classrooms open the big-screen view, students
 * and observers the student view.
 */
export function inviteUrl(role, invite) {
  if (invite.url) return invite.url;
  const page = role === 'classroom' ? 'classroom' : 'student';
  return `${location.origin}/${page}#token=${encodeURIComponent(invite.token)}`;
}

/** Fills `list` with the invitations, newest first; `empty` shows when there are none. */
export function renderInviteList(list, empty, invites) {
  list.replaceChildren(
    ...invites
      .slice()
      .reverse()
      .map((inv) => {
        const role = inv.role || 'classroom';
        const input = h('input', { class: 'invite-link', readonly: true, value: inv.url, 'aria-label': inv.name });
        input.addEventListener('focus', () => input.select());
        const copy = h('button', { class: 'btn btn-sm copy', type: 'button' }, icon('copy', 15), h('span', {}, t('invite.copy')));
        copy.addEventListener('click', () => copyLink(inv.url, input, copy));
        return h('li', { class: 'invite', 'data-classroom': inv.name, 'data-role': role },
          h('div', { class: 'invite-name' }, icon(ROLE_ICONS[role] || 'users', 17), h('span', {}, inv.name),
            h('span', { class: 'invite-role' }, t(`role.${role}`))),
          h('div', { class: 'invite-link-row' }, input, copy));
      }),
  );
  empty.hidden = invites.length > 0;
}

async function copyLink(url, input, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(url);
    ok = true;
  } catch {
    // Clipboard API refused (permissions, older browser): fall back to a selection copy.
    input.focus();
    input.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  if (!ok) return;
  button.classList.add('copied');
  button.replaceChildren(icon('check', 15), h('span', {}, t('invite.copied')));
  setTimeout(() => {
    button.classList.remove('copied');
    button.replaceChildren(icon('copy', 15), h('span', {}, t('invite.copy')));
  }, 2000);
}
