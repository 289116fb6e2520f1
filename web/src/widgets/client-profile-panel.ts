// On a therapist's booking page: the client's private profile, shown only while the client
// consents (docs/api.md, "Client profiles and consent").
//
// The profile is fetched only once the `user:<therapist>` subscription is confirmed, so that
// every consent change after the read reaches this panel: a `consent.revoked` that slipped in
// between could otherwise leave withdrawn text on screen. On `consent.revoked` the text is
// taken out of the page at once, and a read still in flight is discarded when it lands. The
// text is kept nowhere but in the panel's DOM nodes: no field, console line, address or
// storage holds it, so removing the nodes drops the page's last reference to it.

import {
  api,
  ApiError,
  CLIENT_PROFILE_FIELDS,
  type ClientProfile,
  type ClientProfileField,
} from '../api';
import { endedElsewhere, messageOf, type App } from '../app';
import { el, replace } from '../dom';
import { formatDateTime } from '../format';
import { topics, type Booking, type Event } from '../protocol';

const LABELS: Record<ClientProfileField, string> = {
  bio: 'About them',
  goals: 'Goals',
  frustrations: 'Frustrations',
  health_notes: 'Health notes',
};

/** How long the live connection may take before the panel says what it is waiting for. */
const SLOW_CONNECTION_MS = 3_000;
const WAITING_FOR_CONNECTION =
  'Waiting for the live connection: the profile is shown only while this page would hear ' +
  'at once if the client stopped sharing it.';

export class ClientProfilePanel {
  readonly node: HTMLElement;
  /** Where the profile or the reason it is not shown goes; emptied on every change. */
  private readonly body = el('div', { class: 'client-profile-body' });
  /** Bumped on every read and every revocation: a read answered after either is dropped. */
  private generation = 0;
  private closed = false;
  private readonly closeSubscription: () => void;
  private readonly cancelSlowNotice: () => void;

  constructor(
    private readonly app: App,
    private readonly booking: Booking,
  ) {
    this.node = el(
      'section',
      { class: 'card client-profile', 'aria-labelledby': 'client-profile-heading' },
      el('h2', { id: 'client-profile-heading' }, "Client's private profile"),
      this.body,
    );
    this.message('Loading…');

    const subscription = app.realtime.follow(topics.user(booking.therapist_id), {
      onEvent: (event) => this.onEvent(event),
      // Events were lost: the server's answer is the truth again.
      onResync: () => void this.load(),
    });
    this.closeSubscription = () => subscription.close();
    const slow = window.setTimeout(() => this.message(WAITING_FOR_CONNECTION), SLOW_CONNECTION_MS);
    void subscription.ready.then(() => {
      window.clearTimeout(slow);
      void this.load();
    });
    this.cancelSlowNotice = () => window.clearTimeout(slow);
  }

  close(): void {
    this.closed = true;
    this.generation += 1;
    this.cancelSlowNotice();
    this.closeSubscription();
    replace(this.body);
  }

  private onEvent(event: Event): void {
    if (event.kind !== 'consent.granted' && event.kind !== 'consent.revoked') return;
    if (event.client_id !== this.booking.client_id) return;
    if (event.therapist_id !== this.booking.therapist_id) return;

    if (event.kind === 'consent.revoked') {
      this.generation += 1;
      this.message('Access withdrawn by the client.', 'status');
    } else {
      void this.load();
    }
  }

  private async load(): Promise<void> {
    if (this.closed) return;
    this.generation += 1;
    const generation = this.generation;
    let profile: ClientProfile;
    try {
      profile = await api.clientProfile(this.booking.client_id);
    } catch (error) {
      if (this.closed || generation !== this.generation) return;
      if (error instanceof ApiError && error.status === 404) {
        this.message(`${this.booking.client_name} has not shared their private profile with you.`);
      } else if (!endedElsewhere(this.app, error)) {
        this.message(`Could not load it: ${messageOf(error)}`, 'alert');
      }
      return;
    }
    if (this.closed || generation !== this.generation) return;
    this.show(profile);
  }

  private show(profile: ClientProfile): void {
    const given = CLIENT_PROFILE_FIELDS.filter((name) => profile[name]);
    if (given.length === 0) {
      this.message(
        `${this.booking.client_name} shares their private profile with you, ` +
          'but has not written anything in it yet.',
      );
      return;
    }
    replace(
      this.body,
      el(
        'p',
        { class: 'hint' },
        `Shared with you by ${this.booking.client_name}, who can withdraw it at any time. ` +
          'Please do not copy it elsewhere.',
      ),
      el(
        'dl',
        { class: 'client-profile-fields' },
        given.flatMap((name) => [
          el('dt', null, LABELS[name]),
          el('dd', { class: 'bio' }, profile[name] ?? ''),
        ]),
      ),
      profile.updated_at
        ? el('p', { class: 'meta' }, `Last updated ${formatDateTime(profile.updated_at)}.`)
        : null,
    );
  }

  /** Replaces whatever the panel shows with one line; `role` makes it announced. */
  private message(text: string, role?: 'status' | 'alert'): void {
    replace(this.body, el('p', { class: 'client-profile-note', role: role ?? null }, text));
  }
}
