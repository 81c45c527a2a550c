// Small DOM helpers shared by the pages. Text from the server or users is always set as text,
// never as HTML.

/**
 * Builds an element: h('button', {class: 'btn', onclick: fn, dataset: {id: 3}}, 'Label', child).
 * Attributes starting with `on` become listeners; `null`/`false` attributes are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (name === 'class') {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const SVG_NS = 'http://www.w3.org/2000/svg';

// Icons drawn on a 24×24 grid with round 2px strokes, in the page's current text colour.
const ICONS = {
  mic: ['M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z', 'M19 11a7 7 0 0 1-14 0', 'M12 18v3', 'M8 21h8'],
  micOff: ['M15 9.3V6a3 3 0 0 0-5.7-1.3', 'M9 9v3a3 3 0 0 0 4.9 2.3', 'M19 11a7 7 0 0 1-1.2 3.9', 'M5 11a7 7 0 0 0 10.6 6', 'M12 18v3', 'M8 21h8', 'M3 3l18 18'],
  camera: ['M3 7h12a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1z', 'M16 10.5l5-3v9l-5-3'],
  cameraOff: ['M10 7h5a1 1 0 0 1 1 1v5', 'M16 17H3a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1h1', 'M16 10.5l5-3v9l-5-3', 'M2 2l20 20'],
  copy: ['M9 9h10a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9a1 1 0 0 1-1-1V10a1 1 0 0 1 1-1z', 'M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1'],
  check: ['M5 12.5l4.5 4.5L19 7.5'],
  back: ['M15 5l-7 7 7 7'],
  chevron: ['M9 5l7 7-7 7'],
  users: ['M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M2 21v-1a6 6 0 0 1 6-6h2a6 6 0 0 1 6 6v1', 'M16 3.5a4 4 0 0 1 0 7.5', 'M22 21v-1a6 6 0 0 0-4-5.6'],
  school: ['M3 10l9-5 9 5-9 5-9-5z', 'M7 12.5V17c0 1.5 2.5 3 5 3s5-1.5 5-3v-4.5', 'M21 10v6'],
  teacher: ['M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M4 21v-1a7 7 0 0 1 7-7h2a7 7 0 0 1 7 7v1'],
  link: ['M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1', 'M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1'],
  plus: ['M12 5v14', 'M5 12h14'],
  refresh: ['M20 11a8 8 0 0 0-14.8-4', 'M4 4v4h4', 'M4 13a8 8 0 0 0 14.8 4', 'M20 20v-4h-4'],
  fullscreen: ['M4 9V4h5', 'M20 9V4h-5', 'M4 15v5h5', 'M20 15v5h-5'],
  fullscreenExit: ['M9 4v5H4', 'M15 4v5h5', 'M9 20v-5H4', 'M15 20v-5h5'],
  volume: ['M4 9h4l5-4v14l-5-4H4z', 'M16.5 8.5a5 5 0 0 1 0 7', 'M19 6a8.5 8.5 0 0 1 0 12'],
  broadcast: ['M12 13a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3z', 'M8.5 15a5 5 0 0 1 0-7', 'M15.5 8a5 5 0 0 1 0 7', 'M5.6 18a9 9 0 0 1 0-13', 'M18.4 5a9 9 0 0 1 0 13'],
  stop: ['M7 7h10v10H7z'],
  alert: ['M12 4l9 16H3z', 'M12 10v4', 'M12 17v.5'],
  clock: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z', 'M12 7v5l3 2'],
  hand: ['M8 13V5.5a1.5 1.5 0 0 1 3 0V12', 'M11 11.5v-8a1.5 1.5 0 0 1 3 0v8', 'M14 11.5v-6a1.5 1.5 0 0 1 3 0v7', 'M17 10.5a1.5 1.5 0 0 1 3 0V15a7 7 0 0 1-7 7h-1.5a7 7 0 0 1-5.6-2.8L3.3 15.6a1.6 1.6 0 0 1 2.5-2L8 16'],
  screen: ['M3 4h18a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z', 'M8 21h8', 'M12 17v4', 'M12 13V8', 'M9.5 10.5L12 8l2.5 2.5'],
  screenOff: ['M3 4h18a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z', 'M8 21h8', 'M12 17v4', 'M9.5 8.5l5 5', 'M14.5 8.5l-5 5'],
  trash: ['M4 7h16', 'M10 11v6', 'M14 11v6', 'M6 7l1 13h10l1-13', 'M9 7V4h6v3'],
  userRemove: ['M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M2 21v-1a6 6 0 0 1 6-6h2a6 6 0 0 1 6 6v1', 'M16 8h6'],
  chat: ['M4 5h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1h-9l-5 4v-4H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1z', 'M7 9.5h10', 'M7 12.5h6'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  stage: ['M12 3l2.6 5.6 6 .7-4.5 4.1 1.2 6L12 16.4 6.7 19.4l1.2-6L3.4 9.3l6-.7z'],
  arrowUp: ['M12 19V5', 'M6 11l6-6 6 6'],
  arrowDown: ['M12 5v14', 'M6 13l6 6 6-6'],
  leave: ['M15 4h4a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-4', 'M10 16l-4-4 4-4', 'M6 12h10'],
  calendar: ['M4 6h16a1 1 0 0 1 1 1v13a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1z', 'M3 10h18', 'M8 3v5', 'M16 3v5'],
};

/** An inline SVG icon by name (see ICONS); decorative, so hidden from screen readers. */
export function icon(name, size = 20) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', size);
  svg.setAttribute('height', size);
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon');
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** Fills every `[data-icon]` placeholder in `root` with its icon. */
export function applyIcons(root = document) {
  for (const el of root.querySelectorAll('[data-icon]')) {
    el.replaceChildren(icon(el.dataset.icon, Number(el.dataset.iconSize) || 20));
  }
}

/**
 * Shows a short message in the corner; `kind` is 'info' | 'error' | 'success'. The same message
 * while it is still on screen is not stacked again (a retry loop must not fill the screen).
 */
export function toast(message, kind = 'info', timeoutMs = 6000) {
  if (kind === 'error') console.warn(message); // kept in the console for support and tests
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', class: 'toasts', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const key = `${kind}:${message}`;
  let el = [...box.children].find((c) => c.dataset.key === key && !c.classList.contains('leaving'));
  if (!el) {
    el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: { key } },
      icon(kind === 'error' ? 'alert' : kind === 'success' ? 'check' : 'broadcast', 18),
      h('span', {}, message));
    box.append(el);
  }
  clearTimeout(el.hideTimer);
  el.hideTimer = setTimeout(() => {
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 400);
  }, timeoutMs);
  return el;
}
