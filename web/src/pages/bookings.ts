// `#/bookings` (clients): the client's sessions, live from `user:<own id>`.

import { requireUser, type Page } from '../app';
import { el, replace } from '../dom';
import { viewerTimeZone } from '../format';
import { topics } from '../protocol';
import { BookingList } from '../widgets/booking-list';

export const bookingsPage: Page = (root, app) => {
  const user = requireUser(root, app, 'client');
  if (!user) return;

  const list = new BookingList(app, {
    topic: topics.user(user.id),
    perspective: 'client',
    emptyText: 'You have no upcoming sessions.',
  });
  replace(
    root,
    el('h1', null, 'My bookings'),
    el(
      'p',
      { class: 'lead' },
      `Times are in your time zone (${viewerTimeZone()}). `,
      el('a', { href: '#/' }, 'Find a therapist'),
    ),
    list.node,
  );
  return () => list.close();
};
