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
  /** Goes to a hash route, e.g. `#/bookings/…`. */
  navigate(hash: string): void;
}

/** Undoes what a page set up (subscriptions, timers, media) when the user leaves it. */
export type Cleanup = () => void;

/** Renders a page into `root`. `params` are the route's captured path segments. */
export type Page = (root: HTMLElement, app: App, params: string[]) => Cleanup | void;

/** The name we greet a user by. */
export function displayName(user: User): string {
  return user.display_name?.trim() || user.email;
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

/** A page-level message shown when loading fails. */
export function loadError(root: HTMLElement, title: string, message: string): void {
  replace(
    root,
    el('h1', null, title),
    el('p', { class: 'status', 'data-tone': 'error', role: 'alert' }, message),
    el('p', null, el('a', { href: '#/' }, 'Back to the therapist directory')),
  );
}

/** A user-facing sentence for any failure. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return 'Something went wrong. Please try again.';
}
