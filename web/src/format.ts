// Formatting of money and times. Instants arrive in UTC and are shown in the viewer's own
// time zone, which pages name next to the times.

const LOCALE = 'en-GB';

/** The viewer's IANA time zone, e.g. "Europe/London". */
export function viewerTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function formatPence(pence: number): string {
  return new Intl.NumberFormat(LOCALE, { style: 'currency', currency: 'GBP' }).format(pence / 100);
}

const timeFormat = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(LOCALE, {
  weekday: 'long',
  day: 'numeric',
  month: 'long',
});
const shortDayFormat = new Intl.DateTimeFormat(LOCALE, {
  weekday: 'short',
  day: 'numeric',
  month: 'short',
});
const keyFormat = new Intl.DateTimeFormat('en-CA', {
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/** "09:00" in the viewer's zone. */
export function formatTime(instant: string): string {
  return timeFormat.format(new Date(instant));
}

/** "Thursday 4 December" in the viewer's zone. */
export function formatDay(instant: string): string {
  return dayFormat.format(new Date(instant));
}

/** "Thu 4 Dec, 09:00–09:50" in the viewer's zone. */
export function formatRange(start: string, end: string): string {
  return `${shortDayFormat.format(new Date(start))}, ${formatTime(start)}–${formatTime(end)}`;
}

/** "Thursday 4 December, 09:00–09:50" in the viewer's zone. */
export function formatLongRange(start: string, end: string): string {
  return `${formatDay(start)}, ${formatTime(start)}–${formatTime(end)}`;
}

/** The calendar day of an instant in the viewer's zone, as "YYYY-MM-DD", for grouping. */
export function localDayKey(instant: string): string {
  return keyFormat.format(new Date(instant));
}

/** "14:05" or "4 Dec, 14:05" for a chat message time. */
export function formatMessageTime(instant: string): string {
  const date = new Date(instant);
  const today = localDayKey(new Date().toISOString()) === localDayKey(instant);
  return today
    ? timeFormat.format(date)
    : `${shortDayFormat.format(date)}, ${timeFormat.format(date)}`;
}

/** Sorts instants as times, not strings (the server may vary fractional seconds). */
export function byInstant(a: string, b: string): number {
  return Date.parse(a) - Date.parse(b);
}

const dateTimeFormat = new Intl.DateTimeFormat(LOCALE, {
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});

/** "4 Dec 2025, 14:05" in the viewer's zone. */
export function formatDateTime(instant: string): string {
  return dateTimeFormat.format(new Date(instant));
}

/** "just now", "5 minutes ago", "3 hours ago", then the date and time. */
export function formatAgo(instant: string, now = Date.now()): string {
  const minutes = Math.floor((now - Date.parse(instant)) / 60_000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? '' : 's'} ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} hour${hours === 1 ? '' : 's'} ago`;
  return formatDateTime(instant);
}
