// The cookie settings control the cookie policy promises: a cog at the bottom left of every
// page (in the footer, so it never covers content) that opens a list of the cookies Paranimo sets. Paranimo sets only one, the
// strictly necessary sign-in cookie, so there is nothing optional to switch off; the panel
// says so plainly rather than offering switches that would do nothing.

import { el } from '../dom';

export function mountCookieSettings(): void {
  const close = el('button', { type: 'button', class: 'button secondary' }, 'Close');
  const dialog = el(
    'dialog',
    { class: 'cookie-dialog', 'aria-labelledby': 'cookie-heading' },
    el('h2', { id: 'cookie-heading' }, 'Cookie settings'),
    el(
      'p',
      null,
      'Paranimo uses one cookie, and only to keep you signed in. It is strictly necessary: ',
      'without it you cannot register, sign in or book. We set no advertising or tracking cookies.',
    ),
    el(
      'table',
      { class: 'cookie-table' },
      el('caption', { class: 'visually-hidden' }, 'Cookies Paranimo sets'),
      el(
        'thead',
        null,
        el(
          'tr',
          null,
          el('th', { scope: 'col' }, 'Name'),
          el('th', { scope: 'col' }, 'Purpose'),
          el('th', { scope: 'col' }, 'Kind'),
        ),
      ),
      el(
        'tbody',
        null,
        el(
          'tr',
          null,
          el('td', null, el('code', null, 'paranimo_session')),
          el(
            'td',
            null,
            'Keeps you signed in. Removed when you sign out, or after a period without use.',
          ),
          el('td', null, 'Strictly necessary (always on)'),
        ),
      ),
    ),
    el(
      'p',
      { class: 'hint' },
      'You can also remove cookies in your browser settings; you will then be signed out.',
    ),
    el('div', { class: 'actions' }, close),
  );
  close.addEventListener('click', () => dialog.close());

  const open = el(
    'button',
    { type: 'button', class: 'button link cookie-cog' },
    el('span', { 'aria-hidden': 'true' }, '⚙ '),
    'Cookie settings',
  );
  open.addEventListener('click', () => dialog.showModal());
  document.body.append(el('footer', { class: 'site-footer' }, open), dialog);
}
