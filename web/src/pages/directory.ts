// `#/`: the therapist directory.

import { api, type Profile } from '../api';
import { messageOf, type Page } from '../app';
import { el, replace } from '../dom';
import { formatPence } from '../format';

export const directoryPage: Page = (root) => {
  const list = el('div', { class: 'status', role: 'status' }, 'Loading therapists…');
  replace(
    root,
    el('h1', null, 'Find a therapist'),
    el(
      'p',
      { class: 'lead' },
      'Each therapist lists their UK professional body and membership number. ',
      'Choose someone to see ',
      'their profile and the times they have free.',
    ),
    list,
  );

  let live = true;
  api
    .therapists()
    .then((profiles) => {
      if (!live) return;
      if (profiles.length === 0) {
        replace(list, 'No therapists have published a profile yet. Please check back soon.');
        return;
      }
      const cards = el('ul', { class: 'cards', 'aria-label': 'Therapists' }, profiles.map(card));
      list.replaceWith(cards);
    })
    .catch((error: unknown) => {
      if (!live) return;
      list.dataset.tone = 'error';
      list.setAttribute('role', 'alert');
      replace(list, `Could not load the directory: ${messageOf(error)}`);
    });

  return () => {
    live = false;
  };
};

function card(profile: Profile): HTMLLIElement {
  return el(
    'li',
    { class: 'card therapist-card' },
    el(
      'h2',
      null,
      el('a', { href: `#/therapists/${encodeURIComponent(profile.id)}` }, profile.full_name),
    ),
    el(
      'p',
      { class: 'meta' },
      profile.professional_body,
      profile.verified ? el('span', { class: 'badge' }, 'Verified') : null,
    ),
    el('p', { class: 'bio' }, excerpt(profile.bio, 220)),
    el(
      'p',
      { class: 'meta' },
      `${formatPence(profile.fee_pence)} for ${profile.session_minutes} minutes`,
    ),
  );
}

function excerpt(text: string, max: number): string {
  const clean = text.trim();
  return clean.length <= max ? clean : `${clean.slice(0, max).trimEnd()}…`;
}
