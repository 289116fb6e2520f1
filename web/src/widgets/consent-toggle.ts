// On a client's booking page: the switch that shares their private profile with the booking's
// therapist, or stops sharing it. Consent is per therapist, not per booking, so it holds for
// every session with them. Both requests are idempotent on the server, so a switch left stale
// by a change made in another tab still does what it says.

import { api, type ClientConsent } from '../api';
import { endedElsewhere, messageOf, type App } from '../app';
import { el, fieldId, StatusLine } from '../dom';
import type { TherapistId } from '../protocol';

export class ConsentToggle {
  readonly node: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly state = el('p', { class: 'meta' });
  private readonly status = new StatusLine();
  private closed = false;

  constructor(
    private readonly app: App,
    private readonly therapistId: TherapistId,
    private readonly therapistName: string,
  ) {
    const id = fieldId('share-profile');
    const hintId = `${id}-hint`;
    this.input = el('input', {
      type: 'checkbox',
      role: 'switch',
      id,
      disabled: true,
      'aria-describedby': hintId,
    });
    this.input.addEventListener('change', () => void this.apply(this.input.checked));

    this.node = el(
      'section',
      { class: 'card consent-card', 'aria-labelledby': 'consent-heading' },
      el('h2', { id: 'consent-heading' }, 'Your private profile'),
      el(
        'div',
        { class: 'choice switch' },
        this.input,
        el('label', { for: id }, `Share my private profile with ${therapistName}`),
      ),
      this.state,
      el(
        'p',
        { class: 'hint', id: hintId },
        `While this is on, ${therapistName} can read your private profile, for all your ` +
          'sessions with them. Turning it off takes effect at once. ',
        el('a', { href: '#/me/private-profile' }, 'See or change your private profile'),
      ),
      this.status.node,
    );
    this.state.textContent = 'Checking…';
    void this.load();
  }

  close(): void {
    this.closed = true;
  }

  private async load(): Promise<void> {
    let consents: ClientConsent[];
    try {
      consents = await api.consents();
    } catch (error) {
      if (this.closed || endedElsewhere(this.app, error)) return;
      this.state.textContent = '';
      this.status.error(`Could not check whether you share it: ${messageOf(error)}`);
      return;
    }
    if (this.closed) return;
    this.show(consents.some((c) => c.therapist_id === this.therapistId));
    this.input.disabled = false;
  }

  private async apply(share: boolean): Promise<void> {
    this.input.disabled = true;
    this.status.info(share ? 'Sharing…' : 'Stopping…');
    try {
      if (share) await api.grantConsent(this.therapistId);
      else await api.revokeConsent(this.therapistId);
    } catch (error) {
      if (this.closed || endedElsewhere(this.app, error)) return;
      this.show(!share);
      this.input.disabled = false;
      this.status.error(`Could not ${share ? 'share it' : 'stop sharing it'}: ${messageOf(error)}`);
      return;
    }
    if (this.closed) return;
    this.show(share);
    this.input.disabled = false;
    this.status.success(
      share
        ? `Shared. ${this.therapistName} can now read your private profile.`
        : `Stopped. ${this.therapistName} can no longer read your private profile.`,
    );
  }

  private show(shared: boolean): void {
    this.input.checked = shared;
    this.state.textContent = shared
      ? `On: ${this.therapistName} can read it.`
      : `Off: ${this.therapistName} cannot read it.`;
  }
}
