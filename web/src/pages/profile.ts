// `#/me/profile` (therapists): the public profile and the weekly availability.

import { api, ApiError, type Profile, type ProfileInput } from '../api';
import { loadError, messageOf, requireUser, type Page } from '../app';
import { el, field, replace, StatusLine } from '../dom';
import type { WeeklyAvailability } from '../protocol';
import { AvailabilityEditor } from '../widgets/availability-editor';

const DEFAULT_TIME_ZONE = 'Europe/London';
const DEFAULT_SESSION_MINUTES = 50;
const PROFESSIONAL_BODIES = ['BACP', 'UKCP', 'BPS', 'HCPC', 'NCPS', 'BABCP'];

export const profilePage: Page = (root, app) => {
  const user = requireUser(root, app, 'therapist');
  if (!user) return;

  replace(root, el('h1', null, 'Your profile'), el('p', { role: 'status' }, 'Loading…'));
  let live = true;

  Promise.all([orNull(api.therapist(user.id)), orNull(api.myAvailability())])
    .then(([profile, availability]) => {
      if (live) render(root, profile, availability);
    })
    .catch((error: unknown) => {
      if (live) loadError(root, 'Your profile', `Could not load your profile: ${messageOf(error)}`);
    });

  return () => {
    live = false;
  };
};

/** A missing profile or availability is normal for a new therapist. */
async function orNull<T>(request: Promise<T>): Promise<T | null> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

function render(
  root: HTMLElement,
  profile: Profile | null,
  availability: WeeklyAvailability | null,
): void {
  const fullName = el('input', {
    type: 'text',
    autocomplete: 'name',
    required: true,
    value: profile?.full_name ?? '',
  });
  const body = el('input', {
    type: 'text',
    list: 'professional-bodies',
    required: true,
    value: profile?.professional_body ?? '',
  });
  const membership = el('input', {
    type: 'text',
    required: true,
    value: profile?.membership_number ?? '',
  });
  const bio = el('textarea', { rows: 6, maxlength: 4000 });
  bio.value = profile?.bio ?? '';
  const fee = el('input', {
    type: 'number',
    min: 0,
    step: '0.01',
    inputmode: 'decimal',
    required: true,
    value: profile ? (profile.fee_pence / 100).toFixed(2) : '',
  });
  const minutes = el('input', {
    type: 'number',
    min: 15,
    max: 180,
    step: 5,
    required: true,
    value: profile?.session_minutes ?? DEFAULT_SESSION_MINUTES,
  });
  const zone = timeZoneSelect(availability?.timezone ?? profile?.timezone ?? DEFAULT_TIME_ZONE);

  const editor = new AvailabilityEditor();
  if (availability) editor.setRules(availability.rules);

  const status = new StatusLine();
  const save = el('button', { type: 'submit', class: 'button' }, 'Save profile and availability');

  const form = el(
    'form',
    { class: 'form', novalidate: true },
    el(
      'section',
      { class: 'card', 'aria-labelledby': 'profile-heading' },
      el('h2', { id: 'profile-heading' }, 'About you'),
      field('Full name', fullName, 'As registered with your professional body.'),
      field('Professional body', body, 'For example BACP, UKCP or BPS.'),
      el(
        'datalist',
        { id: 'professional-bodies' },
        PROFESSIONAL_BODIES.map((name) => el('option', { value: name })),
      ),
      field('Membership number', membership),
      field('Bio', bio, 'How you work and who you help. Shown to clients.'),
      el(
        'div',
        { class: 'field-row' },
        field('Fee per session (£)', fee),
        field('Session length (minutes)', minutes),
      ),
      field('Time zone', zone, 'Your availability below is in this time zone.'),
    ),
    el(
      'section',
      { class: 'card', 'aria-labelledby': 'availability-heading' },
      el('h2', { id: 'availability-heading' }, 'Weekly availability'),
      el(
        'p',
        { class: 'hint' },
        'Clients can book sessions that fit inside these windows, ' +
          'with a 10-minute break after each.',
      ),
      editor.node,
    ),
    el('div', { class: 'actions' }, save),
    status.node,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const feePence = Math.round(Number(fee.value) * 100);
    const sessionMinutes = Number(minutes.value);
    if (!fullName.value.trim()) return status.error('Please enter your full name.');
    if (!body.value.trim() || !membership.value.trim()) {
      return status.error('Please enter your professional body and membership number.');
    }
    if (!Number.isFinite(feePence) || fee.value === '' || feePence < 0) {
      return status.error('Please enter your fee in pounds, for example 60 or 62.50.');
    }
    if (!Number.isInteger(sessionMinutes) || sessionMinutes < 15 || sessionMinutes > 180) {
      return status.error('Session length must be between 15 and 180 minutes.');
    }
    const problem = editor.problem();
    if (problem) return status.error(problem);

    const input: ProfileInput = {
      full_name: fullName.value.trim(),
      professional_body: body.value.trim(),
      membership_number: membership.value.trim(),
      bio: bio.value.trim(),
      fee_pence: feePence,
      session_minutes: sessionMinutes,
      timezone: zone.value,
    };
    save.disabled = true;
    status.info('Saving…');
    try {
      await api.saveProfile(input);
      const saved = await api.saveAvailability({ timezone: zone.value, rules: editor.rules() });
      editor.setRules(saved.rules);
      status.success('Saved. Clients can now see your profile and book your free times.');
    } catch (error) {
      status.error(`Not saved: ${messageOf(error)}`);
    } finally {
      save.disabled = false;
    }
  });

  replace(
    root,
    el('h1', null, 'Your profile'),
    el('p', { class: 'lead' }, 'This is what clients see in the directory.'),
    form,
  );
}

function timeZoneSelect(selected: string): HTMLSelectElement {
  const zones = new Set<string>(supportedTimeZones());
  zones.add(selected);
  zones.add(DEFAULT_TIME_ZONE);
  const sorted = [...zones].sort((a, b) => a.localeCompare(b));
  return el(
    'select',
    null,
    sorted.map((zone) => el('option', { value: zone, selected: zone === selected }, zone)),
  );
}

function supportedTimeZones(): string[] {
  const intl = Intl as typeof Intl & { supportedValuesOf?: (key: 'timeZone') => string[] };
  return intl.supportedValuesOf?.('timeZone') ?? ['Europe/London', 'Europe/Dublin', 'UTC'];
}
