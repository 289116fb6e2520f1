// The site header: brand, navigation for the signed-in role, the connection state, and the
// sign-in links or the user's name with a sign-out button.

import { api } from '../api';
import { displayName, type App } from '../app';
import { el, replace } from '../dom';
import type { ConnectionState } from '../realtime';

const CONNECTION_TEXT: Record<ConnectionState, string> = {
  offline: '',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
};

export function renderHeader(header: HTMLElement, app: App): void {
  const user = app.user;
  const links: Array<[string, string]> = [['#/', 'Find a therapist']];
  if (user?.role === 'therapist') {
    links.push(['#/calendar', 'My calendar'], ['#/me/profile', 'My profile']);
  } else if (user?.role === 'client') {
    links.push(['#/bookings', 'My bookings'], ['#/me/private-profile', 'Private profile']);
  }
  if (user) links.push(['#/account', 'Account']);

  const current = location.hash || '#/';
  const nav = el(
    'nav',
    { class: 'site-nav', 'aria-label': 'Main' },
    el(
      'ul',
      null,
      links.map(([href, text]) =>
        el('li', null, el('a', { href, 'aria-current': href === current ? 'page' : null }, text)),
      ),
    ),
  );

  const connection = el('span', {
    class: 'connection',
    'data-state': app.realtime.connectionState,
  });
  connection.textContent = CONNECTION_TEXT[app.realtime.connectionState];

  const account = user
    ? el(
        'div',
        { class: 'account' },
        connection,
        el('span', { class: 'account-name' }, `Signed in as ${displayName(user)}`),
        el(
          'button',
          {
            type: 'button',
            class: 'button secondary',
            onclick: async () => {
              try {
                await api.logout();
              } catch {
                // Signing out locally is still right if the server could not be reached.
              }
              app.setUser(null);
              app.navigate('#/');
            },
          },
          'Sign out',
        ),
      )
    : el(
        'div',
        { class: 'account' },
        el('a', { href: '#/login' }, 'Sign in'),
        el('a', { href: '#/register', class: 'button' }, 'Create an account'),
      );

  replace(
    header,
    el(
      'div',
      { class: 'header-inner' },
      el('a', { href: '#/', class: 'brand' }, 'Paranimo'),
      nav,
      account,
    ),
  );
}

/** Keeps the header's connection badge current without re-rendering the header. */
export function showConnectionState(header: HTMLElement, state: ConnectionState): void {
  const badge = header.querySelector<HTMLElement>('.connection');
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = CONNECTION_TEXT[state];
}
