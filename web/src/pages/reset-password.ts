// `#/reset-password`: asks for an email and sends a reset link to it (the answer is the same
// whether or not the address has an account). `#/reset-password?token=…`, the link in that
// mail: choose a new password, which signs the account out on every device.

import { api, ApiError } from '../api';
import { forgetQuery, sentenceOf, type App, type Page } from '../app';
import { el, field, replace, StatusLine } from '../dom';
import { NEW_PASSWORD_HINT, newPasswordInput, newPasswordProblem } from '../passwords';

export const resetPasswordPage: Page = (root, app, _params, query) => {
  const token = query.get('token');
  if (token) {
    forgetQuery('/reset-password');
    newPasswordForm(root, app, token);
  } else {
    requestForm(root);
  }
};

function requestForm(root: HTMLElement): void {
  const email = el('input', {
    type: 'email',
    name: 'email',
    autocomplete: 'email',
    required: true,
  });
  const status = new StatusLine();
  const submit = el('button', { type: 'submit', class: 'button' }, 'Send me a link');
  const form = el(
    'form',
    { class: 'card form narrow', novalidate: true },
    field('Email', email, 'The address you registered with.'),
    status.node,
    submit,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const address = email.value.trim();
    if (!address.includes('@')) return status.error('Please enter your email address.');
    submit.disabled = true;
    status.info('Sending…');
    try {
      await api.requestPasswordReset(address);
      replace(
        root,
        el('h1', null, 'Check your email'),
        el(
          'div',
          { class: 'card narrow' },
          el(
            'p',
            { role: 'status' },
            'If an account exists for ',
            el('strong', null, address),
            ', we have sent it a link to choose a new password. The link works for 30 minutes.',
          ),
          el(
            'p',
            { class: 'hint' },
            'Nothing there after a few minutes? Look in your spam folder.',
          ),
          el('p', null, el('a', { href: '#/login' }, 'Back to sign in')),
        ),
      );
    } catch (error) {
      submit.disabled = false;
      status.error(sentenceOf(error));
    }
  });

  replace(
    root,
    el('h1', null, 'Reset your password'),
    el(
      'p',
      { class: 'lead' },
      'We will email you a link to choose a new one. Remembered it? ',
      el('a', { href: '#/login' }, 'Sign in'),
    ),
    form,
  );
}

function newPasswordForm(root: HTMLElement, app: App, token: string): void {
  const password = newPasswordInput();
  const status = new StatusLine();
  const submit = el('button', { type: 'submit', class: 'button' }, 'Set new password');
  const form = el(
    'form',
    { class: 'card form narrow', novalidate: true },
    field('New password', password, NEW_PASSWORD_HINT),
    status.node,
    submit,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const problem = newPasswordProblem(password.value);
    if (problem) return status.error(problem);
    submit.disabled = true;
    status.info('Saving…');
    try {
      // Every session of the account ends, including one this browser may hold.
      await app.changeSession(api.confirmPasswordReset(token, password.value));
    } catch (error) {
      submit.disabled = false;
      if (error instanceof ApiError && error.code === 'invalid_token') {
        linkExpired(root);
      } else {
        status.error(sentenceOf(error));
      }
      return;
    }
    if (app.user) app.setUser(null);
    replace(
      root,
      el('h1', null, 'Password changed'),
      el(
        'div',
        { class: 'card narrow' },
        el(
          'p',
          { role: 'status' },
          'Your new password is set, and you have been signed out on every device.',
        ),
        el('p', null, el('a', { class: 'button', href: '#/login' }, 'Sign in')),
      ),
    );
  });

  replace(
    root,
    el('h1', null, 'Choose a new password'),
    el('p', { class: 'lead' }, 'Saving it signs you out on every device.'),
    form,
  );
  password.focus();
}

function linkExpired(root: HTMLElement): void {
  replace(
    root,
    el('h1', null, 'This link does not work'),
    el(
      'div',
      { class: 'card narrow' },
      el(
        'p',
        { role: 'alert' },
        'The reset link is not valid: it may have been used already, or it is more than ' +
          '30 minutes old.',
      ),
      el(
        'p',
        null,
        el(
          'button',
          { type: 'button', class: 'button', onclick: () => requestForm(root) },
          'Ask for a new link',
        ),
      ),
    ),
  );
}
