// `#/verify-email?token=…`: the link in the confirmation mail. Spends the token, which
// signs the person in, and then goes where a new account starts.

import { api, ApiError } from '../api';
import { forgetQuery, sentenceOf, type Page } from '../app';
import { el, replace } from '../dom';

export const verifyEmailPage: Page = (root, app, _params, query) => {
  const token = query.get('token');
  forgetQuery('/verify-email');
  if (!token) {
    replace(
      root,
      el('h1', null, 'Confirm your email address'),
      el(
        'p',
        { class: 'card narrow' },
        'This page opens from the link in the email we sent when you registered. ',
        el('a', { href: '#/login' }, 'Sign in'),
        ' if you have already confirmed your address.',
      ),
    );
    return;
  }

  replace(
    root,
    el('h1', null, 'Confirming your email address'),
    el('p', { role: 'status' }, 'One moment…'),
  );
  let live = true;
  api.verifyEmail(token).then(
    ({ user }) => {
      // Signed in either way: the answer brought the session cookie.
      app.setUser(user);
      if (!live) return;
      // Where registration led before addresses were confirmed: a new therapist's first job
      // is the profile; a client starts at the directory.
      app.navigate(user.role === 'therapist' ? '#/me/profile' : '#/');
    },
    (error: unknown) => {
      if (!live) return;
      const invalid = error instanceof ApiError && error.code === 'invalid_token';
      replace(
        root,
        el('h1', null, invalid ? 'This link does not work' : 'Could not confirm your address'),
        el(
          'div',
          { class: 'card narrow' },
          el(
            'p',
            { role: 'alert' },
            invalid
              ? 'The link is not valid: it may have been used already, or it is more than ' +
                  '48 hours old.'
              : sentenceOf(error),
          ),
          el(
            'p',
            null,
            invalid
              ? 'If you have already confirmed your address, just sign in. If not, sign in ' +
                  'with your email and password and we will send you a new link.'
              : 'Please open the link from the email again in a little while.',
          ),
          el('p', null, el('a', { class: 'button', href: '#/login' }, 'Go to sign in')),
        ),
      );
    },
  );
  return () => {
    live = false;
  };
};
