// What every page is given: the signed-in user, the websocket, and navigation.

import { ApiError, type User } from './api';
import { el, replace } from './dom';
import type { Role } from './protocol';
import type { Realtime } from './realtime';

export interface App {
  /** The signed-in user, or null. */
  readonly user: User | null;
  readonly realtime: Realtime;
  /** Records a sign-in or sign-out: updates the header and starts or stops the websocket. */
  setUser(user: User | null): void;
  /**
   * Drops to the signed-out state and goes to the sign-in page, which shows `notice`: why
   * the session ended (signed out from another device, "sign out everywhere"…).
   */
  signOut(notice: string): void;
  /** The notice left by `signOut`, once; the sign-in page shows it. */
  takeNotice(): string | null;
  /**
   * Runs a request that replaces or ends this session (password change or reset, revoking
   * devices). The server closes the session's websockets before it answers; while such a
   * request is in flight the app waits for its answer instead of taking the closed socket
   * for a sign-out elsewhere.
   */
  changeSession<T>(request: Promise<T>): Promise<T>;
  /** Goes to a hash route, e.g. `#/bookings/…`. */
  navigate(hash: string): void;
}

/** Undoes what a page set up (subscriptions, timers, media) when the user leaves it. */
export type Cleanup = () => void;

/**
 * Renders a page into `root`. `params` are the route's captured path segments, `query` what
 * follows a `?` in the hash (`#/verify-email?token=…`).
 */
export type Page = (
  root: HTMLElement,
  app: App,
  params: string[],
  query: URLSearchParams,
) => Cleanup | void;

/** Shown on the sign-in page when the session ended somewhere else. */
export const SIGNED_OUT_ELSEWHERE =
  'You have been signed out: this device was signed out from another one, or your ' +
  'password was changed. Please sign in again.';

/** The name we greet a user by. */
export function displayName(user: User): string {
  return user.display_name.trim() || user.email;
}

/**
 * Shows a sign-in prompt instead of the page when nobody (or someone of another role) is
 * signed in; returns the user when the page may go on.
 */
export function requireUser(root: HTMLElement, app: App, role?: Role): User | null {
  const user = app.user;
  if (user && (!role || user.role === role)) return user;

  const who = role === 'therapist' ? 'a therapist' : role === 'client' ? 'a client' : 'someone';
  replace(
    root,
    el('h1', null, 'Please sign in'),
    el(
      'p',
      null,
      user ? `This page is for ${who}. ` : 'You need to be signed in to see this page. ',
      user ? null : el('a', { href: '#/login' }, 'Sign in'),
      user ? null : ' or ',
      user ? null : el('a', { href: '#/register' }, 'create an account'),
      user ? el('a', { href: '#/' }, 'Back to the therapist directory') : '.',
    ),
  );
  return null;
}

/**
 * Signs out, with the "signed out elsewhere" notice, when `error` says the session has
 * ended; returns whether it did, so the caller can stop there.
 */
export function endedElsewhere(app: App, error: unknown): boolean {
  if (!(error instanceof ApiError && error.code === 'unauthenticated')) return false;
  app.signOut(SIGNED_OUT_ELSEWHERE);
  return true;
}

/**
 * A hidden field naming the account, for forms that ask for a password on its own: password
 * managers then know which saved password to offer, or to update.
 */
export function usernameHint(app: App): HTMLInputElement {
  return el('input', {
    type: 'text',
    name: 'username',
    autocomplete: 'username',
    value: app.user?.email ?? '',
    hidden: true,
    readonly: true,
    tabindex: -1,
    'aria-hidden': 'true',
  });
}

/** A page-level message shown when loading fails. */
export function loadError(root: HTMLElement, title: string, message: string): void {
  replace(
    root,
    el('h1', null, title),
    el('p', { class: 'status', 'data-tone': 'error', role: 'alert' }, message),
    el('p', null, el('a', { href: '#/' }, 'Back to the therapist directory')),
  );
}

/** A user-facing phrase for any failure, to follow "Could not …: ". */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError && error.code === 'rate_limited') return rateLimited(error);
  if (error instanceof Error) return error.message;
  return 'Something went wrong. Please try again.';
}

/**
 * `messageOf` as a sentence of its own. The server writes its messages in lower case without
 * a full stop ("that password is too easy to guess…"), so that they fit inside others.
 */
export function sentenceOf(error: unknown): string {
  const text = messageOf(error).trim();
  if (!text) return 'Something went wrong. Please try again.';
  const capitalised = text[0].toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : `${capitalised}.`;
}

/** "Too many attempts: please wait 2 minutes and try again", from the `Retry-After`. */
function rateLimited(error: ApiError): string {
  const seconds = error.retryAfterSeconds;
  if (seconds === null) return 'Too many attempts. Please wait a little and try again.';
  const wait =
    seconds < 60
      ? `${seconds} second${seconds === 1 ? '' : 's'}`
      : `${Math.ceil(seconds / 60)} minute${Math.ceil(seconds / 60) === 1 ? '' : 's'}`;
  return `Too many attempts. Please wait ${wait} and try again.`;
}

/** Rewrites the address as `#<path>`, without its `?…` part, in place of the current entry. */
export function forgetQuery(path: string): void {
  // A token left in the address bar stays in the history of a shared computer; the page
  // keeps it in memory instead. replaceState fires no hashchange, so the page stays.
  history.replaceState(history.state, '', `#${path}`);
}
