// A live list of the signed-in user's bookings: the HTTP snapshot plus `booking.created` and
// `booking.cancelled` events from a topic (`calendar:<therapist>` or `user:<client>`).
//
// Events and snapshots are merged by booking id, so applying one twice, or an event that a
// later snapshot already holds, changes nothing. A cancellation is final: a stale
// "confirmed" copy never revives a cancelled booking.

import { api } from '../api';
import { messageOf, type App } from '../app';
import { el, replace } from '../dom';
import { byInstant, formatLongRange } from '../format';
import type { Booking, Event, Topic } from '../protocol';

export interface BookingListOptions {
  topic: Topic;
  /** Whose name to show for each booking: the other party's. */
  perspective: 'therapist' | 'client';
  /** Shown when there is nothing to list. */
  emptyText: string;
}

export class BookingList {
  readonly node: HTMLElement;
  private readonly bookings = new Map<string, Booking>();
  private readonly upcoming = el('ul', { class: 'bookings', 'aria-label': 'Upcoming sessions' });
  private readonly past = el('ul', { class: 'bookings', 'aria-label': 'Past sessions' });
  private readonly pastSection: HTMLElement;
  private readonly status = el('p', { class: 'status', role: 'status' }, 'Loading…');
  /** Ids that arrived live, highlighted so the change is noticed. */
  private readonly fresh = new Set<string>();
  private closed = false;
  private readonly closeSubscription: () => void;

  constructor(
    app: App,
    private readonly options: BookingListOptions,
  ) {
    this.pastSection = el(
      'details',
      { class: 'past' },
      el('summary', null, 'Past sessions'),
      this.past,
    );
    this.node = el('div', { class: 'booking-list' }, this.status, this.upcoming, this.pastSection);

    // Subscribe first and refetch once the subscription is live, so nothing that happens
    // between the snapshot and the subscription is missed; the first fetch just shows
    // something sooner.
    const subscription = app.realtime.follow(options.topic, {
      onEvent: (event) => this.onEvent(event),
      onResync: () => void this.refetch(),
    });
    this.closeSubscription = () => subscription.close();
    void this.refetch();
    void subscription.ready.then(() => this.refetch());
  }

  close(): void {
    this.closed = true;
    this.closeSubscription();
  }

  private async refetch(): Promise<void> {
    try {
      const bookings = await api.bookings();
      if (this.closed) return;
      for (const booking of bookings) this.merge(booking);
      this.status.removeAttribute('data-tone');
      this.render();
    } catch (error) {
      if (this.closed) return;
      this.status.dataset.tone = 'error';
      this.status.textContent = `Could not load your sessions: ${messageOf(error)}`;
    }
  }

  private onEvent(event: Event): void {
    if (event.kind !== 'booking.created' && event.kind !== 'booking.cancelled') return;
    if (!this.bookings.has(event.booking.id)) this.fresh.add(event.booking.id);
    this.merge(event.booking);
    this.render();
  }

  private merge(booking: Booking): void {
    const known = this.bookings.get(booking.id);
    if (known?.status === 'cancelled' && booking.status !== 'cancelled') return;
    this.bookings.set(booking.id, booking);
  }

  private render(): void {
    const now = Date.now();
    const all = [...this.bookings.values()];
    const upcoming = all
      .filter((b) => Date.parse(b.end) > now)
      .sort((a, b) => byInstant(a.start, b.start));
    const past = all
      .filter((b) => Date.parse(b.end) <= now)
      .sort((a, b) => byInstant(b.start, a.start));

    replace(
      this.upcoming,
      upcoming.map((b) => this.item(b)),
    );
    replace(
      this.past,
      past.map((b) => this.item(b)),
    );
    this.pastSection.hidden = past.length === 0;
    this.status.textContent = upcoming.length === 0 ? this.options.emptyText : '';
  }

  private item(booking: Booking): HTMLLIElement {
    const other =
      this.options.perspective === 'therapist' ? booking.client_name : booking.therapist_name;
    const when = formatLongRange(booking.start, booking.end);
    const cancelled = booking.status === 'cancelled';
    return el(
      'li',
      {
        class: [
          'card booking',
          cancelled ? 'cancelled' : '',
          this.fresh.has(booking.id) ? 'fresh' : '',
        ]
          .filter(Boolean)
          .join(' '),
        'data-booking-id': booking.id,
      },
      el('p', { class: 'booking-when' }, when),
      el('p', null, `With ${other}`),
      el(
        'p',
        null,
        el('span', { class: `badge ${booking.status}` }, cancelled ? 'Cancelled' : 'Confirmed'),
      ),
      el(
        'a',
        {
          href: `#/bookings/${encodeURIComponent(booking.id)}`,
          'aria-label': `View booking with ${other}, ${when}`,
        },
        'View booking',
      ),
    );
  }
}
