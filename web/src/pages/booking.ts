// `#/bookings/<id>`: one session's details, cancelling, the conversation and the way into
// the video room. Either party may open it; the server answers 404 to anyone else. The client
// also finds the switch that shares their private profile with this therapist; the therapist
// sees that profile while it is shared.

import { api, ApiError } from '../api';
import { loadError, messageOf, requireUser, type App, type Page } from '../app';
import { el, replace, StatusLine } from '../dom';
import { formatLongRange, viewerTimeZone } from '../format';
import { topics, type Booking } from '../protocol';
import { ClientProfilePanel } from '../widgets/client-profile-panel';
import { ConsentToggle } from '../widgets/consent-toggle';
import { Conversation } from '../widgets/conversation';

export const bookingPage: Page = (root, app, [bookingId]) => {
  const user = requireUser(root, app);
  if (!user) return;

  replace(root, el('p', { role: 'status' }, 'Loading…'));
  let closed = false;
  const cleanups: Array<() => void> = [];

  api
    .booking(bookingId)
    .then((booking) => {
      if (closed) return;
      const details = new BookingDetails(app, booking);
      const other = user.id === booking.client_id ? booking.therapist_name : booking.client_name;
      const privateProfile =
        user.id === booking.client_id
          ? new ConsentToggle(app, booking.therapist_id, booking.therapist_name)
          : user.id === booking.therapist_id
            ? new ClientProfilePanel(app, booking)
            : null;
      const conversation = new Conversation(app, booking.id, user.id, other);
      cleanups.push(
        () => details.close(),
        () => privateProfile?.close(),
        () => conversation.close(),
      );
      replace(root, details.node, privateProfile?.node, conversation.node);
    })
    .catch((error: unknown) => {
      if (closed) return;
      const notFound = error instanceof ApiError && error.status === 404;
      loadError(root, 'Booking', notFound ? 'We could not find this booking.' : messageOf(error));
    });

  return () => {
    closed = true;
    for (const cleanup of cleanups) cleanup();
  };
};

/** The session's time, parties and status, with cancel and join; follows cancellations. */
class BookingDetails {
  readonly node: HTMLElement;
  private readonly body = el('div');
  private readonly status = new StatusLine();
  private readonly closeSubscription: () => void;
  private confirming = false;

  constructor(
    private readonly app: App,
    private booking: Booking,
  ) {
    this.node = el(
      'section',
      { class: 'card booking-details', 'aria-labelledby': 'booking-heading' },
      this.body,
      this.status.node,
    );
    const me = app.user?.id ?? '';
    const subscription = app.realtime.follow(topics.user(me), {
      onEvent: (event) => {
        if (event.kind === 'booking.cancelled' && event.booking.id === this.booking.id) {
          this.update(event.booking);
        }
      },
      onResync: () =>
        void api.booking(this.booking.id).then(
          (b) => this.update(b),
          () => {},
        ),
    });
    this.closeSubscription = () => subscription.close();
    this.render();
  }

  close(): void {
    this.closeSubscription();
  }

  private update(booking: Booking): void {
    this.booking = booking;
    this.confirming = false;
    this.render();
  }

  private render(): void {
    const b = this.booking;
    const isClient = this.app.user?.id === b.client_id;
    const other = isClient ? b.therapist_name : b.client_name;
    const cancelled = b.status === 'cancelled';
    const started = Date.parse(b.start) <= Date.now();
    const ended = Date.parse(b.end) <= Date.now();

    replace(
      this.body,
      el('h1', { id: 'booking-heading' }, `Session with ${other}`),
      el(
        'p',
        { class: 'booking-when' },
        formatLongRange(b.start, b.end),
        el('span', { class: 'hint' }, ` (${viewerTimeZone()})`),
      ),
      el(
        'p',
        null,
        'Status: ',
        el('span', { class: `badge ${b.status}` }, cancelled ? 'Cancelled' : 'Confirmed'),
      ),
      el(
        'div',
        { class: 'actions' },
        !cancelled && !ended
          ? el('a', { href: `#/room/${encodeURIComponent(b.id)}`, class: 'button' }, 'Join session')
          : null,
        !cancelled && !started ? this.cancelControls() : null,
        isClient
          ? el(
              'a',
              { href: `#/therapists/${encodeURIComponent(b.therapist_id)}` },
              `Book another session with ${b.therapist_name}`,
            )
          : el('a', { href: '#/calendar' }, 'Back to your calendar'),
      ),
    );
  }

  /** "Cancel this session", then an explicit yes / no before anything is sent. */
  private cancelControls(): HTMLElement {
    if (!this.confirming) {
      return el(
        'button',
        {
          type: 'button',
          class: 'button secondary',
          onclick: () => {
            this.confirming = true;
            this.render();
            this.body.querySelector<HTMLButtonElement>('.confirm-cancel')?.focus();
          },
        },
        'Cancel this session',
      );
    }
    const yes = el(
      'button',
      { type: 'button', class: 'button danger confirm-cancel' },
      'Yes, cancel it',
    );
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      this.status.info('Cancelling…');
      try {
        this.update(await api.cancel(this.booking.id));
        this.status.success('The session is cancelled and the time is free again.');
      } catch (error) {
        yes.disabled = false;
        this.status.error(
          error instanceof ApiError && error.code === 'already_started'
            ? 'This session has already started and can no longer be cancelled.'
            : `Could not cancel: ${messageOf(error)}`,
        );
      }
    });
    const no = el(
      'button',
      {
        type: 'button',
        class: 'button secondary',
        onclick: () => {
          this.confirming = false;
          this.render();
        },
      },
      'Keep it',
    );
    return el(
      'span',
      { class: 'confirm', role: 'group', 'aria-label': 'Cancel this session?' },
      'Cancel this session? ',
      yes,
      ' ',
      no,
    );
  }
}
