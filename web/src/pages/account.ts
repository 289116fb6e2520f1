// `#/register` and `#/login`.

import { api, ApiError } from '../api';
import { messageOf, type Page } from '../app';
import { el, field, replace, StatusLine } from '../dom';

/** The server refuses shorter passwords; checked here too so the user learns it at once. */
const MIN_PASSWORD_CHARS = 12;

export const registerPage: Page = (root, app) => {
  const email = el('input', {
    type: 'email',
    name: 'email',
    autocomplete: 'email',
    required: true,
  });
  const password = el('input', {
    type: 'password',
    name: 'password',
    autocomplete: 'new-password',
    minlength: MIN_PASSWORD_CHARS,
    required: true,
  });
  const displayName = el('input', {
    type: 'text',
    name: 'display_name',
    autocomplete: 'nickname',
    maxlength: 100,
  });
  const adult = el('input', {
    type: 'checkbox',
    name: 'adult',
    id: 'register-adult',
    required: true,
  });
  const roleClient = el('input', {
    type: 'radio',
    name: 'role',
    value: 'client',
    id: 'role-client',
    checked: true,
  });
  const roleTherapist = el('input', {
    type: 'radio',
    name: 'role',
    value: 'therapist',
    id: 'role-therapist',
  });
  const status = new StatusLine();
  const submit = el('button', { type: 'submit', class: 'button' }, 'Create account');

  const form = el(
    'form',
    { class: 'card form narrow', novalidate: true },
    el(
      'fieldset',
      { class: 'choices' },
      el('legend', null, 'I am joining as'),
      el(
        'div',
        { class: 'choice' },
        roleClient,
        el('label', { for: 'role-client' }, 'A client looking for support'),
      ),
      el(
        'div',
        { class: 'choice' },
        roleTherapist,
        el('label', { for: 'role-therapist' }, 'A therapist'),
      ),
    ),
    field('Email', email),
    field('Password', password, `At least ${MIN_PASSWORD_CHARS} characters.`),
    field(
      'Display name (optional)',
      displayName,
      'Shown to your therapist or clients. A first name or pseudonym is fine.',
    ),
    el(
      'div',
      { class: 'choice' },
      adult,
      el('label', { for: 'register-adult' }, 'I am 18 or over'),
    ),
    status.node,
    submit,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const role = roleTherapist.checked ? 'therapist' : 'client';
    if (!email.value.includes('@')) return status.error('Please enter your email address.');
    if (password.value.length < MIN_PASSWORD_CHARS) {
      return status.error(`Your password needs at least ${MIN_PASSWORD_CHARS} characters.`);
    }
    if (!adult.checked)
      return status.error('Paranimo is for adults: please confirm you are 18 or over.');

    submit.disabled = true;
    status.info('Creating your account…');
    try {
      const name = displayName.value.trim();
      const { user } = await api.register({
        email: email.value.trim(),
        password: password.value,
        role,
        adult: true,
        ...(name ? { display_name: name } : {}),
      });
      app.setUser(user);
      app.navigate(user.role === 'therapist' ? '#/me/profile' : '#/');
    } catch (error) {
      submit.disabled = false;
      status.error(
        error instanceof ApiError && error.code === 'email_taken'
          ? 'An account with this email already exists. Try signing in instead.'
          : messageOf(error),
      );
    }
  });

  replace(
    root,
    el('h1', null, 'Create your account'),
    el('p', { class: 'lead' }, 'Already have one? ', el('a', { href: '#/login' }, 'Sign in')),
    form,
  );
};

export const loginPage: Page = (root, app) => {
  const email = el('input', {
    type: 'email',
    name: 'email',
    autocomplete: 'email',
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
    submit,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.info('Signing in…');
    try {
      const { user } = await api.login(email.value.trim(), password.value);
      app.setUser(user);
      app.navigate(user.role === 'therapist' ? '#/calendar' : '#/');
    } catch (error) {
      submit.disabled = false;
      status.error(
        error instanceof ApiError && error.code === 'invalid_credentials'
          ? 'That email and password do not match an account.'
          : messageOf(error),
      );
    }
  });

  replace(
    root,
    el('h1', null, 'Sign in'),
    el(
      'p',
      { class: 'lead' },
      'New to Paranimo? ',
      el('a', { href: '#/register' }, 'Create an account'),
    ),
    form,
  );
};
