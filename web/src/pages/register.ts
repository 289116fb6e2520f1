// `#/register`: the sign-up form, then "check your email". The server answers every
// well-formed registration the same way (an address already registered gets a mail instead
// of an account), so the page never learns, and never says, whether the email was known.

import { api } from '../api';
import { sentenceOf, type Page } from '../app';
import { el, field, replace, StatusLine } from '../dom';
import { NEW_PASSWORD_HINT, newPasswordInput, newPasswordProblem } from '../passwords';

export const registerPage: Page = (root) => {
  const email = el('input', {
    type: 'email',
    name: 'email',
    autocomplete: 'email',
    required: true,
  });
  const password = newPasswordInput();
  const displayName = el('input', {
    type: 'text',
    name: 'display_name',
    autocomplete: 'nickname',
    maxlength: 60,
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
    field('Password', password, NEW_PASSWORD_HINT),
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
    const address = email.value.trim();
    if (!address.includes('@')) return status.error('Please enter your email address.');
    const problem = newPasswordProblem(password.value);
    if (problem) return status.error(problem);
    if (!adult.checked)
      return status.error('Paranimo is for adults: please confirm you are 18 or over.');

    submit.disabled = true;
    status.info('Creating your account…');
    try {
      const name = displayName.value.trim();
      await api.register({
        email: address,
        password: password.value,
        role,
        adult: true,
        ...(name ? { display_name: name } : {}),
      });
      checkYourEmail(root, address);
    } catch (error) {
      submit.disabled = false;
      status.error(sentenceOf(error));
    }
  });

  replace(
    root,
    el('h1', null, 'Create your account'),
    el('p', { class: 'lead' }, 'Already have one? ', el('a', { href: '#/login' }, 'Sign in')),
    form,
  );
};

/** What a person sees once the form is accepted: the rest happens in their mailbox. */
function checkYourEmail(root: HTMLElement, address: string): void {
  replace(
    root,
    el('h1', null, 'Check your email'),
    el(
      'div',
      { class: 'card narrow' },
      el(
        'p',
        { role: 'status' },
        'We have sent a message to ',
        el('strong', null, address),
        '. Open the link in it within 48 hours to confirm your address; the link signs you in.',
      ),
      el(
        'p',
        { class: 'hint' },
        'Nothing there after a few minutes? Look in your spam folder. If the link has ' +
          'expired, sign in with your email and password and we will send a new one.',
      ),
      el(
        'p',
        null,
        el('a', { href: '#/login' }, 'Go to sign in'),
        ' · ',
        el('a', { href: '#/' }, 'Browse therapists'),
      ),
    ),
  );
}
