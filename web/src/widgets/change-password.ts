// "Change your password" on `#/account`. The server signs out every other device and gives
// this one a fresh session cookie; the websocket it closes on the way reconnects with it.

import { api, ApiError } from '../api';
import { endedElsewhere, sentenceOf, usernameHint, type App } from '../app';
import { el, field, StatusLine } from '../dom';
import { NEW_PASSWORD_HINT, newPasswordInput, newPasswordProblem } from '../passwords';

/** The form; `onChanged` runs after a change, when the other devices are gone. */
export function changePasswordForm(app: App, onChanged: () => void): HTMLElement {
  const current = el('input', {
    type: 'password',
    name: 'current-password',
    autocomplete: 'current-password',
    required: true,
  });
  const next = newPasswordInput();
  const status = new StatusLine();
  const submit = el('button', { type: 'submit', class: 'button' }, 'Change password');
  const form = el(
    'form',
    { class: 'form', novalidate: true },
    usernameHint(app),
    field('Current password', current),
    field('New password', next, NEW_PASSWORD_HINT),
    status.node,
    submit,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!current.value) return status.error('Please enter your current password.');
    const problem = newPasswordProblem(next.value);
    if (problem) return status.error(problem);
    submit.disabled = true;
    status.info('Changing your password…');
    try {
      const { user } = await app.changeSession(api.changePassword(current.value, next.value));
      app.setUser(user);
      current.value = '';
      next.value = '';
      status.success('Password changed. Every other device has been signed out.');
      onChanged();
    } catch (error) {
      if (endedElsewhere(app, error)) return;
      status.error(
        error instanceof ApiError && error.code === 'invalid_credentials'
          ? 'Your current password is not right.'
          : sentenceOf(error),
      );
    } finally {
      submit.disabled = false;
    }
  });

  return el(
    'section',
    { class: 'card', 'aria-labelledby': 'password-heading' },
    el('h2', { id: 'password-heading' }, 'Password'),
    form,
  );
}
