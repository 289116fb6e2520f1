// "Two-step verification" on `#/account`: an authenticator app (TOTP) as a second factor.
//
// Off → "Set up": the password again (a borrowed session alone must not be able to lock the
// owner out), then the secret as a QR code and as grouped text, then a code from the app,
// which turns it on and shows the recovery codes once. On → new recovery codes, or turn it
// off, each with a current code; accounts that must keep it are not offered "turn off".

import { api, ApiError, type MfaStatus } from '../api';
import { endedElsewhere, messageOf, usernameHint, type App } from '../app';
import { el, field, replace, StatusLine } from '../dom';
import { qrCanvas } from './qr-code';

export class TwoStepSettings {
  readonly node: HTMLElement;
  private readonly body = el('div');
  private readonly status = new StatusLine();
  private closed = false;

  constructor(private readonly app: App) {
    this.node = el(
      'section',
      { class: 'card', 'aria-labelledby': 'two-step-heading' },
      el('h2', { id: 'two-step-heading' }, 'Two-step verification'),
      this.body,
      this.status.node,
    );
    replace(this.body, el('p', { role: 'status' }, 'Loading…'));
    this.load();
  }

  close(): void {
    this.closed = true;
  }

  private load(): void {
    api.mfaStatus().then(
      (status) => {
        if (!this.closed) this.showStatus(status);
      },
      (error: unknown) => {
        if (this.closed || endedElsewhere(this.app, error)) return;
        replace(this.body);
        this.status.error(`Could not load your two-step verification: ${messageOf(error)}`);
      },
    );
  }

  /** Reports a failed request unless the session has ended (then the app signs out). */
  private failed(error: unknown, what: string): void {
    if (endedElsewhere(this.app, error)) return;
    if (error instanceof ApiError && error.code === 'invalid_code') {
      this.status.error('That code is wrong or has already been used. Try the newest one.');
    } else if (error instanceof ApiError && error.code === 'invalid_credentials') {
      this.status.error('That password is not right.');
    } else {
      this.status.error(`${what}: ${messageOf(error)}`);
    }
  }

  private showStatus(status: MfaStatus): void {
    this.status.clear();
    if (!status.enrolled) {
      const start = el(
        'button',
        { type: 'button', class: 'button' },
        'Set up two-step verification',
      );
      start.addEventListener('click', () => this.askPassword());
      replace(
        this.body,
        el(
          'p',
          null,
          'Two-step verification is off. With it on, signing in also needs a code from an ' +
            'authenticator app on your phone, so a stolen password alone is not enough.',
        ),
        status.required
          ? el(
              'p',
              { class: 'status', 'data-tone': 'error' },
              'Your account must have it: please set it up now.',
            )
          : null,
        el('div', { class: 'actions' }, start),
      );
      return;
    }

    const code = codeInput();
    const renew = el('button', { type: 'submit', class: 'button secondary' }, 'New recovery codes');
    const disable = el(
      'button',
      { type: 'button', class: 'button danger' },
      'Turn off two-step verification',
    );
    const form = el(
      'form',
      { class: 'form' },
      field(
        'Code',
        code,
        'To change anything here, enter the code your app shows now, or a recovery code.',
      ),
      el('div', { class: 'actions' }, renew, status.required ? null : disable),
    );
    const withCode = async (action: () => Promise<void>, busy: HTMLButtonElement) => {
      if (!code.value.trim()) return this.status.error('Please enter a code first.');
      busy.disabled = true;
      try {
        await action();
      } finally {
        busy.disabled = false;
      }
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void withCode(async () => {
        try {
          const { recovery_codes } = await api.mfaRecoveryCodes(code.value.trim());
          this.showRecoveryCodes(recovery_codes, 'Your new recovery codes');
        } catch (error) {
          this.failed(error, 'Could not make new recovery codes');
        }
      }, renew);
    });
    disable.addEventListener('click', () => {
      void withCode(async () => {
        try {
          await api.mfaDisable(code.value.trim());
          this.load();
          this.status.success('Two-step verification is off.');
        } catch (error) {
          this.failed(error, 'Could not turn it off');
        }
      }, disable);
    });

    const left = status.recovery_codes_left;
    replace(
      this.body,
      el(
        'p',
        null,
        el('span', { class: 'badge confirmed' }, 'On'),
        ' Signing in needs a code from your authenticator app. ',
        `You have ${left} unused recovery code${left === 1 ? '' : 's'}.`,
      ),
      status.required
        ? el('p', { class: 'hint' }, 'Your account must keep two-step verification on.')
        : null,
      form,
    );
  }

  private askPassword(): void {
    const password = el('input', {
      type: 'password',
      name: 'password',
      autocomplete: 'current-password',
      required: true,
    });
    const next = el('button', { type: 'submit', class: 'button' }, 'Continue');
    const form = el(
      'form',
      { class: 'form' },
      usernameHint(this.app),
      field('Your password', password, 'To be sure it is you before changing how you sign in.'),
      el('div', { class: 'actions' }, next, this.cancelButton()),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!password.value) return this.status.error('Please enter your password.');
      next.disabled = true;
      try {
        const enrolment = await api.mfaEnrol(password.value);
        this.status.clear();
        this.showSecret(enrolment.secret, enrolment.otpauth_url);
      } catch (error) {
        next.disabled = false;
        this.failed(error, 'Could not start the set-up');
      }
    });
    replace(this.body, form);
    this.status.clear();
    password.focus();
  }

  private showSecret(secret: string, otpauthUrl: string): void {
    const code = codeInput();
    const confirm = el('button', { type: 'submit', class: 'button' }, 'Turn on');
    const form = el(
      'form',
      { class: 'form' },
      field('Code from the app', code, 'Six digits; a new one appears every 30 seconds.'),
      el('div', { class: 'actions' }, confirm, this.cancelButton()),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!code.value.trim()) return this.status.error('Please enter the code the app shows.');
      confirm.disabled = true;
      try {
        const { recovery_codes } = await api.mfaConfirm(code.value.trim());
        this.showRecoveryCodes(recovery_codes, 'Two-step verification is on');
      } catch (error) {
        confirm.disabled = false;
        this.failed(error, 'Could not turn it on');
      }
    });

    replace(
      this.body,
      el(
        'ol',
        { class: 'steps' },
        el(
          'li',
          null,
          el(
            'p',
            null,
            'Open an authenticator app on your phone (such as Google Authenticator, ' +
              'Microsoft Authenticator or 1Password) and scan this code:',
          ),
          qrCanvas(otpauthUrl, 'QR code to add Paranimo to your authenticator app'),
        ),
        el(
          'li',
          null,
          el('p', null, 'Cannot scan it? Type this key into the app instead:'),
          el('p', null, el('code', { class: 'secret', 'aria-label': 'Key' }, groups(secret))),
        ),
        el('li', null, el('p', null, 'Enter the code the app now shows for Paranimo.'), form),
      ),
    );
    code.focus();
  }

  /** Shown once: the codes, and a confirmation that they are saved before going on. */
  private showRecoveryCodes(codes: string[], heading: string): void {
    const saved = el('input', { type: 'checkbox', id: 'recovery-saved' });
    const done = el('button', { type: 'button', class: 'button', disabled: true }, 'Done');
    saved.addEventListener('change', () => {
      done.disabled = !saved.checked;
    });
    done.addEventListener('click', () => this.load());
    replace(
      this.body,
      el('h3', null, heading),
      el(
        'p',
        null,
        'Keep these recovery codes somewhere safe, such as a password manager. If you lose ' +
          'your phone, each one lets you sign in once. They will not be shown again.',
      ),
      el(
        'ul',
        { class: 'recovery-codes', 'aria-label': 'Recovery codes' },
        codes.map((c) => el('li', null, el('code', null, c))),
      ),
      el(
        'div',
        { class: 'choice' },
        saved,
        el('label', { for: 'recovery-saved' }, 'I have saved these codes'),
      ),
      el('div', { class: 'actions' }, done),
    );
    this.status.clear();
  }

  private cancelButton(): HTMLButtonElement {
    return el(
      'button',
      {
        type: 'button',
        class: 'button secondary',
        onclick: () => this.load(),
      },
      'Cancel',
    );
  }
}

function codeInput(): HTMLInputElement {
  return el('input', {
    type: 'text',
    name: 'code',
    autocomplete: 'one-time-code',
    autocapitalize: 'characters',
    spellcheck: 'false',
    required: true,
  });
}

/** "JBSW Y3DP EHPK 3PXP", easier to read and type than one long run. */
function groups(secret: string): string {
  return (secret.replace(/\s+/g, '').match(/.{1,4}/g) ?? []).join(' ');
}
