// "Your devices" on `#/account`: every signed-in browser of the account, with a button to
// sign each out and one to sign out everywhere. A device signed out here has its websockets
// closed by the server at once, so its open pages drop to the sign-in page.

import { api, type Device } from '../api';
import { endedElsewhere, messageOf, type App } from '../app';
import { el, replace, StatusLine } from '../dom';
import { formatAgo, formatDateTime } from '../format';
import { describeBrowser } from '../user-agent';

export class DeviceList {
  readonly node: HTMLElement;
  private readonly list = el('ul', { class: 'devices', 'aria-label': 'Signed-in devices' });
  private readonly everywhere = el('div', { class: 'actions' });
  private readonly status = new StatusLine();
  private closed = false;

  constructor(private readonly app: App) {
    this.node = el(
      'section',
      { class: 'card', 'aria-labelledby': 'devices-heading' },
      el('h2', { id: 'devices-heading' }, 'Your devices'),
      el(
        'p',
        { class: 'hint' },
        'Where your account is signed in now. Sign out any device you do not recognise, ' +
          'then change your password.',
      ),
      this.list,
      this.status.node,
      this.everywhere,
    );
    replace(this.list, el('li', { role: 'status' }, 'Loading…'));
    this.renderEverywhere(false);
    this.load();
  }

  close(): void {
    this.closed = true;
  }

  /** Fetches the list again (after a password change, say). */
  load(): void {
    api.devices().then(
      (devices) => {
        if (!this.closed) this.render(devices);
      },
      (error: unknown) => {
        if (this.closed || endedElsewhere(this.app, error)) return;
        replace(this.list);
        this.status.error(`Could not load your devices: ${messageOf(error)}`);
      },
    );
  }

  private render(devices: Device[]): void {
    // The server lists the most recently used first; this device leads all the same.
    const sorted = [...devices].sort((a, b) => Number(b.current) - Number(a.current));
    replace(
      this.list,
      sorted.map((device) => this.row(device)),
    );
  }

  private row(device: Device): HTMLElement {
    const name = describeBrowser(device.user_agent);
    const nameId = `device-${device.id}`;
    const revoke = el(
      'button',
      {
        type: 'button',
        class: 'button secondary',
        'aria-describedby': nameId,
      },
      'Revoke',
    );
    revoke.addEventListener('click', () => void this.revoke(device, revoke));
    return el(
      'li',
      { class: 'device' },
      el(
        'div',
        null,
        el(
          'p',
          { class: 'device-name', id: nameId },
          name,
          device.current ? el('span', { class: 'badge confirmed' }, 'This device') : null,
        ),
        el(
          'p',
          { class: 'meta' },
          `Signed in ${formatDateTime(device.created_at)} · ` +
            `last active ${device.current ? 'now' : formatAgo(device.last_seen_at)}`,
        ),
      ),
      revoke,
    );
  }

  private async revoke(device: Device, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    this.status.info('Signing that device out…');
    try {
      const request = api.revokeDevice(device.id);
      await (device.current ? this.app.changeSession(request) : request);
    } catch (error) {
      if (endedElsewhere(this.app, error)) return;
      button.disabled = false;
      this.status.error(`Could not sign that device out: ${messageOf(error)}`);
      return;
    }
    if (device.current) {
      this.app.signOut('You have signed out this device.');
      return;
    }
    this.status.success(`${describeBrowser(device.user_agent)} has been signed out.`);
    this.load();
  }

  /** "Sign out everywhere", then an explicit yes / no: it signs this device out too. */
  private renderEverywhere(confirming: boolean): void {
    if (!confirming) {
      replace(
        this.everywhere,
        el(
          'button',
          {
            type: 'button',
            class: 'button secondary',
            onclick: () => {
              this.renderEverywhere(true);
              this.everywhere.querySelector<HTMLButtonElement>('.button.danger')?.focus();
            },
          },
          'Sign out everywhere',
        ),
      );
      return;
    }
    const yes = el(
      'button',
      { type: 'button', class: 'button danger' },
      'Yes, sign out everywhere',
    );
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      this.status.info('Signing out every device…');
      try {
        await this.app.changeSession(api.revokeAllDevices());
      } catch (error) {
        if (endedElsewhere(this.app, error)) return;
        yes.disabled = false;
        this.status.error(`Could not sign out everywhere: ${messageOf(error)}`);
        return;
      }
      this.app.signOut('You have signed out on every device, this one included.');
    });
    const no = el(
      'button',
      { type: 'button', class: 'button secondary', onclick: () => this.renderEverywhere(false) },
      'Keep them',
    );
    replace(
      this.everywhere,
      el(
        'span',
        { class: 'confirm', role: 'group', 'aria-label': 'Sign out everywhere?' },
        'Sign out every device, this one included? ',
        yes,
        ' ',
        no,
      ),
    );
  }
}
