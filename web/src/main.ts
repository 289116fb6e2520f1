// Entry point: loads the session, then routes `#/…` hashes to pages. The server serves only
// index.html, so every route lives after the `#`.

import './styles.css';
import { api, ApiError, type User } from './api';
import type { App, Cleanup, Page } from './app';
import { el, replace } from './dom';
import { bookingPage } from './pages/booking';
import { bookingsPage } from './pages/bookings';
import { calendarPage } from './pages/calendar';
import { directoryPage } from './pages/directory';
import { loginPage, registerPage } from './pages/account';
import { profilePage } from './pages/profile';
import { roomPage } from './pages/room';
import { therapistPage } from './pages/therapist';
import { Realtime } from './realtime';
import { mountCookieSettings } from './widgets/cookie-settings';
import { renderHeader, showConnectionState } from './widgets/header';

const ROUTES: Array<[RegExp, Page]> = [
  [/^\/$/, directoryPage],
  [/^\/register$/, registerPage],
  [/^\/login$/, loginPage],
  [/^\/me\/profile$/, profilePage],
  [/^\/therapists\/([^/]+)$/, therapistPage],
  [/^\/calendar$/, calendarPage],
  [/^\/bookings$/, bookingsPage],
  [/^\/bookings\/([^/]+)$/, bookingPage],
  [/^\/room\/([^/]+)$/, roomPage],
];

const header = document.getElementById('site-header') as HTMLElement;
const main = document.getElementById('main') as HTMLElement;

let user: User | null = null;
let cleanup: Cleanup | void = undefined;
let firstRoute = true;

const realtime = new Realtime(() => {
  // The socket closed before the server greeted us: perhaps the session ended elsewhere.
  api.me().catch((error: unknown) => {
    if (error instanceof ApiError && error.status === 401) {
      app.setUser(null);
      app.navigate('#/login');
    }
  });
});
realtime.onStateChange((state) => showConnectionState(header, state));

const app: App = {
  get user() {
    return user;
  },
  realtime,
  setUser(next) {
    const changed = next?.id !== user?.id;
    user = next;
    if (changed) realtime.stop();
    if (next) realtime.start();
    renderHeader(header, app);
  },
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

function route(): void {
  if (cleanup) cleanup();
  cleanup = undefined;

  const path = location.hash.replace(/^#/, '') || '/';
  renderHeader(header, app);
  for (const [pattern, page] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    replace(main);
    const params = match.slice(1).map((segment) => decodeURIComponent(segment));
    cleanup = page(main, app, params);
    moveFocus();
    return;
  }
  replace(
    main,
    el('h1', null, 'Page not found'),
    el('p', null, el('a', { href: '#/' }, 'Go to the therapist directory')),
  );
}

/** After in-app navigation, start keyboard and screen-reader users at the new content. */
function moveFocus(): void {
  if (firstRoute) {
    firstRoute = false;
    return;
  }
  window.scrollTo(0, 0);
  main.focus({ preventScroll: true });
}

/** Keeps the tab title in step with the page's heading, for tabs, history and screen readers. */
function followHeadingInTitle(): void {
  const update = () => {
    const heading = main.querySelector('h1')?.textContent?.trim();
    document.title = heading ? `${heading} – Paranimo` : 'Paranimo';
  };
  new MutationObserver(update).observe(main, {
    childList: true,
    subtree: true,
    characterData: true,
  });
}

async function start(): Promise<void> {
  followHeadingInTitle();
  mountCookieSettings();
  document.getElementById('skip-link')?.addEventListener('click', (event) => {
    // A plain #main link would change the route, so move focus by hand.
    event.preventDefault();
    main.focus();
  });

  try {
    user = (await api.me()).user;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      console.warn('paranimo: could not load the session', error);
    }
    user = null;
  }
  if (user) realtime.start();
  window.addEventListener('hashchange', route);
  route();
}

void start();
