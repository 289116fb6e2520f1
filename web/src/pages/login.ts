// `#/login`: email and password, then, for accounts with two-step verification, a code from
// the authenticator app (or a recovery code). Shows the notice left by a sign-out that
// happened elsewhere.

import { api, ApiError, type User } from '../api';
import { sentenceOf, type App, type Page } from '../app';
import { el, field, replace, StatusLine } from '../dom';

export const loginPage: Page = (root, app) => {
  const notice = app.takeNotice();
  const email = el('input', {
    type: 'email',
    name: 'email',
    autocomplete: 'username',
    required: true,
  });
  const password = el('input', {
    type: 'password',
    name: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const status = new StatusLine();
  const submit = el('button', { type: 'submit', class: 'button' }, 'Sign in');

  const form = el(
    'form',
    { class: 'card form narrow' },
    field('Email', email),
    field('Password', password),
    status.node,
    el(
      'div',
      { class: 'actions' },
      submit,
      el('a', { href: '#/reset-password' }, 'Forgotten your password?'),
    ),
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.info('Signing in…');
    try {
      const answer = await api.login(email.value.trim(), password.value);
      if ('user' in answer) return signedIn(app, answer.user);
      secondStep(root, app, answer.challenge);
    } catch (error) {
      submit.disabled = false;
      status.error(loginFailure(error));
    }
  });

  replace(
    root,
    el('h1', null, 'Sign in'),
    notice ? el('p', { class: 'card narrow notice', role: 'status' }, notice) : null,
    el(
      'p',
      { class: 'lead' },
      'New to Paranimo? ',
      el('a', { href: '#/register' }, 'Create an account'),
    ),
    form,
  );
};

function loginFailure(error: unknown): string {
  if (error instanceof ApiError && error.code === 'invalid_credentials') {
    return 'That email and password do not match an account.';
  }
  if (error instanceof ApiError && error.code === 'email_unverified') {
    return (
      'Please confirm your email address first. We have sent you a new link: ' +
      'open it to finish signing in.'
    );
  }
  return sentenceOf(error);
}

/** The second step: a code for the challenge the password earned. */
function secondStep(root: HTMLElement, app: App, challenge: string): void {
  const code = el('input', {
    type: 'text',
    name: 'code',
    autocomplete: 'one-time-code',
    autocapitalize: 'characters',
    spellcheck: 'false',
    required: true,
  });
  const status = new StatusLine();
  const submit = el('button', { type: 'submit', class: 'button' }, 'Verify');
  const form = el(
    'form',
    { class: 'card form narrow' },
    field(
      'Code',
      code,
      'The 6-digit code your authenticator app shows now, or one of your recovery codes.',
    ),
    status.node,
    el(
      'div',
      { class: 'actions' },
      submit,
      el(
        'button',
        { type: 'button', class: 'button link', onclick: () => app.navigate('#/login') },
        'Start again',
      ),
    ),
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!code.value.trim()) return status.error('Please enter the code.');
    submit.disabled = true;
    status.info('Checking the code…');
    try {
      const { user } = await api.loginSecondFactor(challenge, code.value.trim());
      signedIn(app, user);
    } catch (error) {
      submit.disabled = false;
      // A wrong code and a challenge that has run out (five minutes, a few tries) are
      // told apart by nobody: the server answers both the same way.
      status.error(
        error instanceof ApiError && error.code === 'invalid_credentials'
          ? 'That code did not work. Check it and try again, or start again if it keeps failing.'
          : sentenceOf(error),
      );
      code.select();
    }
  });

  replace(
    root,
    el('h1', null, 'Two-step verification'),
    el('p', { class: 'lead' }, 'Your password was right. One more step to sign in.'),
    form,
  );
  code.focus();
}

function signedIn(app: App, user: User): void {
  app.setUser(user);
  app.navigate(user.role === 'therapist' ? '#/calendar' : '#/');
}
