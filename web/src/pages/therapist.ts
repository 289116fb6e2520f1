// `#/therapists/<id>`: a therapist's public profile and free slots, kept live.
//
// The slots snapshot carries the `availability:` topic's `seq`; we follow the topic from
// there, so a slot someone else books disappears at once and a cancelled one comes back.

import { api, ApiError, newId, type Profile, type SlotsSnapshot } from '../api';
import { loadError, messageOf, type App, type Page } from '../app';
import { el, replace, StatusLine } from '../dom';
import {
  byInstant,
  formatDay,
  formatPence,
  formatRange,
  formatTime,
  localDayKey,
  viewerTimeZone,
} from '../format';
import { topics, type Event, type Slot, type TherapistId } from '../protocol';

export const therapistPage: Page = (root, app, [therapistId]) => {
  replace(root, el('p', { role: 'status' }, 'Loading…'));
  const view = new TherapistView(root, app, therapistId);
  void view.load();
  return () => view.close();
};

class TherapistView {
  private slots: Slot[] = [];
  /** Events at or below the snapshot's sequence number are already in `slots`. */
  private snapshotSeq = 0;
  private closed = false;
  private unsubscribe: (() => void) | null = null;
  private readonly slotList = el('div', { class: 'slot-days' });
  private readonly status = new StatusLine();

  constructor(
    private readonly root: HTMLElement,
    private readonly app: App,
    private readonly therapistId: TherapistId,
  ) {}

  async load(): Promise<void> {
    let profile: Profile;
    let snapshot: SlotsSnapshot;
    try {
      [profile, snapshot] = await Promise.all([
        api.therapist(this.therapistId),
        api.slots(this.therapistId),
      ]);
    } catch (error) {
      if (this.closed) return;
      const notFound = error instanceof ApiError && error.status === 404;
      loadError(
        this.root,
        'Therapist',
        notFound ? 'We could not find this therapist.' : messageOf(error),
      );
      return;
    }
    if (this.closed) return;

    this.renderPage(profile);
    this.applySnapshot(snapshot);

    // Only signed-in users may follow availability; everyone else sees the snapshot.
    if (this.app.user) {
      const subscription = this.app.realtime.follow(
        topics.availability(this.therapistId),
        { onEvent: (event, seq) => this.onEvent(event, seq), onResync: () => void this.refetch() },
        snapshot.seq,
      );
      this.unsubscribe = () => subscription.close();
    }
  }

  close(): void {
    this.closed = true;
    this.unsubscribe?.();
  }

  private renderPage(profile: Profile): void {
    const user = this.app.user;
    const note =
      user?.role === 'client'
        ? null
        : el(
            'p',
            { class: 'hint' },
            user ? 'Only clients can book sessions.' : 'To book, ',
            user ? null : el('a', { href: '#/login' }, 'sign in'),
            user ? null : ' or ',
            user ? null : el('a', { href: '#/register' }, 'create a client account'),
            user ? null : '.',
          );

    replace(
      this.root,
      el(
        'article',
        { class: 'card profile' },
        el('h1', null, profile.full_name),
        el(
          'p',
          { class: 'meta' },
          `${profile.professional_body}, membership ${profile.membership_number}`,
          profile.verified ? el('span', { class: 'badge' }, 'Verified') : null,
        ),
        el(
          'p',
          { class: 'meta' },
          `${formatPence(profile.fee_pence)} for a ${profile.session_minutes}-minute session`,
        ),
        el('p', { class: 'bio' }, profile.bio),
      ),
      el(
        'section',
        { class: 'card', 'aria-labelledby': 'slots-heading' },
        el('h2', { id: 'slots-heading' }, 'Free times'),
        el('p', { class: 'hint' }, `Times are shown in your time zone, ${viewerTimeZone()}.`),
        note,
        this.status.node,
        this.slotList,
      ),
    );
  }

  private applySnapshot(snapshot: SlotsSnapshot): void {
    this.snapshotSeq = snapshot.seq;
    this.slots = [...snapshot.slots].sort((a, b) => byInstant(a.start, b.start));
    this.renderSlots();
  }

  private async refetch(): Promise<void> {
    try {
      const snapshot = await api.slots(this.therapistId);
      if (!this.closed) this.applySnapshot(snapshot);
    } catch (error) {
      if (!this.closed) this.status.error(`Could not refresh the free times: ${messageOf(error)}`);
    }
  }

  private onEvent(event: Event, seq: number): void {
    if (seq <= this.snapshotSeq) return;
    switch (event.kind) {
      case 'slot.taken':
        this.removeSlot(event.slot.start);
        break;
      case 'slot.freed':
        this.addSlot(event.slot);
        break;
      case 'availability.changed':
        void this.refetch();
        break;
      default:
        break;
    }
  }

  private removeSlot(start: string): void {
    const at = Date.parse(start);
    const before = this.slots.length;
    this.slots = this.slots.filter((slot) => Date.parse(slot.start) !== at);
    if (this.slots.length !== before) this.renderSlots();
  }

  private addSlot(slot: Slot): void {
    const at = Date.parse(slot.start);
    if (at <= Date.now() || this.slots.some((s) => Date.parse(s.start) === at)) return;
    this.slots = [...this.slots, slot].sort((a, b) => byInstant(a.start, b.start));
    this.renderSlots();
  }

  /** Draws the slots grouped by local day, keeping focus on the same slot if it survives. */
  private renderSlots(): void {
    const focusedStart = (document.activeElement as HTMLElement | null)?.dataset?.slotStart;

    if (this.slots.length === 0) {
      replace(this.slotList, el('p', null, 'No free times in the next two weeks.'));
      return;
    }
    const days = new Map<string, Slot[]>();
    for (const slot of this.slots) {
      const key = localDayKey(slot.start);
      const day = days.get(key) ?? [];
      day.push(slot);
      days.set(key, day);
    }
    const canBook = this.app.user?.role === 'client';
    replace(
      this.slotList,
      [...days.values()].map((daySlots) => {
        const headingId = `day-${localDayKey(daySlots[0].start)}`;
        return el(
          'section',
          { class: 'slot-day', 'aria-labelledby': headingId },
          el('h3', { id: headingId }, formatDay(daySlots[0].start)),
          el(
            'ul',
            { class: 'slots' },
            daySlots.map((slot) => this.slotItem(slot, canBook)),
          ),
        );
      }),
    );

    if (focusedStart) {
      this.slotList
        .querySelector<HTMLElement>(`[data-slot-start="${CSS.escape(focusedStart)}"]`)
        ?.focus();
    }
  }

  private slotItem(slot: Slot, canBook: boolean): HTMLLIElement {
    if (!canBook) {
      return el(
        'li',
        { class: 'slot' },
        el('span', { class: 'slot-time' }, `${formatTime(slot.start)}–${formatTime(slot.end)}`),
      );
    }
    const button = el(
      'button',
      {
        type: 'button',
        class: 'button slot-button',
        'data-slot-start': slot.start,
        'aria-label': `Book ${formatTime(slot.start)}, ${formatDay(slot.start)}`,
      },
      `Book ${formatTime(slot.start)}`,
    );
    button.addEventListener('click', () => void this.book(slot, button));
    return el('li', { class: 'slot' }, button);
  }

  private async book(slot: Slot, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    this.status.info(`Booking ${formatRange(slot.start, slot.end)}…`);
    try {
      // One key per click: a retried request (say after a network blip) cannot book twice.
      const booking = await api.book(this.therapistId, slot.start, newId());
      this.app.navigate(`#/bookings/${encodeURIComponent(booking.id)}`);
    } catch (error) {
      button.disabled = false;
      if (this.closed) return;
      if (error instanceof ApiError && error.code === 'slot_taken') {
        this.status.error('That slot has just been taken. Please choose another time.');
        this.removeSlot(slot.start);
      } else if (
        error instanceof ApiError &&
        (error.code === 'slot_unavailable' || error.code === 'in_past')
      ) {
        this.status.error('That time is no longer available. The list has been refreshed.');
        void this.refetch();
      } else {
        this.status.error(`Could not book: ${messageOf(error)}`);
      }
    }
  }
}
