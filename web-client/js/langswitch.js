// The language switch every page shows: Chinese (zh-CN) and English, from the one message
// catalog (i18n.js). Each language is named in itself, so a reader who cannot read the current
// one still finds their own. The choice is kept for the next visit.

import { h } from './dom.js';
import { t, locale, setLocale } from './i18n.js';

const NAMES = { 'zh-CN': '中文', en: 'EN' };

/**
 * Fills `container` with the switch. `onChange` runs after the locale changed and the static
 * markup was translated: pages re-render what they built themselves.
 */
export function mountLanguageSwitch(container, onChange = () => {}) {
  const buttons = Object.entries(NAMES).map(([code, name]) => {
    const b = h('button', { type: 'button', class: 'lang-option', lang: code, 'data-locale': code }, name);
    b.addEventListener('click', () => {
      if (locale() === code) return;
      setLocale(code);
      render();
      onChange(code);
    });
    return b;
  });
  container.classList.add('lang-switch');
  container.setAttribute('role', 'group');
  container.replaceChildren(...buttons);
  const render = () => {
    container.setAttribute('aria-label', t('lang.label'));
    container.title = t('lang.label');
    for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.locale === locale()));
  };
  render();
  return { render };
}
