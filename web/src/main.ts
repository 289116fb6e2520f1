// Entry point: loads the session, then routes `#/…` hashes to pages. The server serves only
// index.html, so every route lives after the `#`.

import './styles.css';
import { api, ApiError, type User } from './api';
import { SIGNED_OUT_ELSEWHERE, type App, type Cleanup, type Page } from './app';
import { el, replace } from './dom';
import { bookingPage } from './pages/booking';
import { bookingsPage } from './pages/bookings';
import { calendarPage } from './pages/calendar';
import { directoryPage } from './pages/directory';
import { accountPage } from './pages/account';
import { loginPage } from './pages/login';
import { privateProfilePage } from './pages/private-profile';
import { profilePage } from './pages/profile';
import { registerPage } from './pages/register';
import { resetPasswordPage } from './pages/reset-password';
import { roomPage } from './pages/room';
import { therapistPage } from './pages/therapist';
import { verifyEmailPage } from './pages/verify-email';
import { Realtime } from './realtime';
import { mountCookieSettings } from './widgets/cookie-settings';
import { renderHeader, showConnectionState } from './widgets/header';

const ROUTES: Array<[RegExp, Page]> = [
  [/^\/$/, directoryPage],
  [/^\/register$/, registerPage],
  [/^\/login$/, loginPage],
  [/^\/verify-email$/, verifyEmailPage],
  [/^\/reset-password$/, resetPasswordPage],
  [/^\/account$/, accountPage],
  [/^\/me\/profile$/, profilePage],
  [/^\/me\/private-profile$/, privateProfilePage],
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
let notice: string | null = null;
/** Requests in flight that replace or end this session (see `App.changeSession`). */
const sessionChanges = new Set<Promise<unknown>>();

const realtime = new Realtime(sessionHolds);
realtime.onStateChange((state) => showConnectionState(header, state));

/**
 * Asked by the websocket when the server closed it on purpose or refused it: true while the
 * session is good (or the server cannot say), false once it has ended, after signing out.
 */
async function sessionHolds(): Promise<boolean> {
  // A password change closes this session's sockets before its answer sets the new cookie.
  while (sessionChanges.size > 0) await Promise.allSettled([...sessionChanges]);
  if (!user) return false;
  try {
    await api.me();
    return true;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) return true;
    if (user) app.signOut(SIGNED_OUT_ELSEWHERE);
    return false;
  }
}

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
  signOut(text) {
    notice = text;
    app.setUser(null);
    app.navigate('#/login');
  },
  takeNotice() {
    const text = notice;
    notice = null;
    return text;
  },
  async changeSession(request) {
    sessionChanges.add(request);
    try {
      return await request;
    } finally {
      sessionChanges.delete(request);
    }
  },
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

function route(): void {
  if (cleanup) cleanup();
  cleanup = undefined;

  const hash = location.hash.replace(/^#/, '') || '/';
  const queryAt = hash.indexOf('?');
  const path = queryAt < 0 ? hash : hash.slice(0, queryAt) || '/';
  const search = queryAt < 0 ? '' : hash.slice(queryAt + 1);
  renderHeader(header, app);
  for (const [pattern, page] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    replace(main);
    const params = match.slice(1).map((segment) => decodeURIComponent(segment));
    cleanup = page(main, app, params, new URLSearchParams(search));
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
