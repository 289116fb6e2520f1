// `#/calendar` (therapists): upcoming sessions, live from `calendar:<own id>`.

import { requireUser, type Page } from '../app';
import { el, replace } from '../dom';
import { viewerTimeZone } from '../format';
import { topics } from '../protocol';
import { BookingList } from '../widgets/booking-list';

export const calendarPage: Page = (root, app) => {
  const user = requireUser(root, app, 'therapist');
  if (!user) return;

  const list = new BookingList(app, {
    topic: topics.calendar(user.id),
    perspective: 'therapist',
    emptyText: 'No upcoming sessions yet. New bookings appear here as soon as they are made.',
  });
  replace(
    root,
    el('h1', null, 'Your calendar'),
    el(
      'p',
      { class: 'lead' },
      `Upcoming sessions, in your time zone (${viewerTimeZone()}). `,
      el('a', { href: '#/me/profile' }, 'Change your availability'),
    ),
    list.node,
  );
  return () => list.close();
};
