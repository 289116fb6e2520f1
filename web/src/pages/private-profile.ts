// `#/me/private-profile` (clients): the private profile a client may share with therapists
// of their choosing (privacy policy 3.6, 3.8.4 and 5.4.2), and who can read it now.
//
// Everything in it is optional. Sharing is chosen per therapist on a booking's page; this page
// lists who it is shared with and stops sharing at once. The text lives in the form fields
// only: it never goes into the address, the console or the browser's storage.

import {
  api,
  CLIENT_PROFILE_FIELDS,
  MAX_PROFILE_FIELD_CHARS,
  type ClientConsent,
  type ClientProfile,
  type ClientProfileField,
  type ClientProfileUpdate,
} from '../api';
import { endedElsewhere, loadError, messageOf, requireUser, type App, type Page } from '../app';
import { el, fieldId, replace, StatusLine } from '../dom';
import { formatDateTime } from '../format';

/** What the client is asked for in each field, and a line on what it is for. */
const FIELDS: Record<ClientProfileField, { label: string; hint: string }> = {
  bio: {
    label: 'About you',
    hint: 'Anything about yourself you would like a therapist to know before you meet.',
  },
  goals: {
    label: 'Your goals',
    hint: 'What you would like to get from therapy.',
  },
  frustrations: {
    label: 'Frustrations',
    hint: 'What is getting in your way, or what has not helped before.',
  },
  health_notes: {
    label: 'Health notes',
    hint: 'Medical or mental-health information you choose to share, such as medication.',
  },
};

const TITLE = 'Your private profile';

export const privateProfilePage: Page = (root, app) => {
  const user = requireUser(root, app, 'client');
  if (!user) return;

  replace(root, el('h1', null, TITLE), el('p', { role: 'status' }, 'Loading…'));
  let live = true;
  let sharing: SharingList | null = null;

  Promise.all([api.ownClientProfile(), api.consents()])
    .then(([profile, consents]) => {
      if (!live) return;
      sharing = new SharingList(app, consents);
      replace(
        root,
        el('h1', null, TITLE),
        el(
          'p',
          { class: 'lead' },
          'Everything here is optional. Tell your therapist only what you are comfortable with.',
        ),
        el(
          'div',
          { class: 'narrow-column' },
          el(
            'p',
            null,
            'Only the therapists you choose can read it, and only until you stop sharing it ' +
              'with them. You can also keep it blank and talk in your sessions instead.',
          ),
          profileForm(app, profile),
          sharing.node,
        ),
      );
    })
    .catch((error: unknown) => {
      if (!live || endedElsewhere(app, error)) return;
      loadError(root, TITLE, `Could not load your private profile: ${messageOf(error)}`);
    });

  return () => {
    live = false;
    sharing?.close();
  };
};

/** Characters as the server counts them: Unicode scalar values, after trimming. */
function countChars(text: string): number {
  return [...text.trim()].length;
}

/** A labelled textarea with its hint and a running character count. */
interface TextField {
  node: HTMLElement;
  textarea: HTMLTextAreaElement;
  /** The count over the limit, or 0. */
  excess(): number;
  refresh(): void;
}

function textField(name: ClientProfileField, value: string | null): TextField {
  const { label, hint } = FIELDS[name];
  const id = fieldId(`private-${name}`);
  const hintNode = el('p', { class: 'hint', id: `${id}-hint` }, hint);
  const count = el('p', { class: 'hint char-count', id: `${id}-count` });
  // No maxlength: it would silently cut pasted text short. The count says when it is too long.
  const textarea = el('textarea', {
    id,
    name,
    rows: 5,
    autocomplete: 'off',
    'aria-describedby': `${hintNode.id} ${count.id}`,
  });
  textarea.value = value ?? '';

  const excess = () => Math.max(0, countChars(textarea.value) - MAX_PROFILE_FIELD_CHARS);
  const refresh = () => {
    const used = countChars(textarea.value);
    const over = excess();
    count.textContent =
      `${used.toLocaleString('en-GB')} of ${MAX_PROFILE_FIELD_CHARS.toLocaleString('en-GB')} ` +
      `characters${over > 0 ? `: ${over.toLocaleString('en-GB')} too many` : ''}`;
    count.dataset.tone = over > 0 ? 'error' : '';
    textarea.setAttribute('aria-invalid', String(over > 0));
  };
  textarea.addEventListener('input', refresh);
  refresh();

  return {
    node: el(
      'div',
      { class: 'field private-field' },
      el('label', { for: id }, label),
      hintNode,
      textarea,
      count,
    ),
    textarea,
    excess,
    refresh,
  };
}

function profileForm(app: App, profile: ClientProfile): HTMLElement {
  const fields = new Map<ClientProfileField, TextField>(
    CLIENT_PROFILE_FIELDS.map((name) => [name, textField(name, profile[name])]),
  );
  const saved = el('p', { class: 'meta' });
  const showSaved = (at: string | null) => {
    saved.textContent = at ? `Last saved ${formatDateTime(at)}.` : 'Not saved yet.';
  };
  showSaved(profile.updated_at);

  const status = new StatusLine();
  const submit = el('button', { type: 'submit', class: 'button' }, 'Save private profile');
  const form = el(
    'form',
    { class: 'form', novalidate: true },
    [...fields.values()].map((f) => f.node),
    el('p', { class: 'hint' }, 'Leave a box empty to remove what it held.'),
    status.node,
    el('div', { class: 'actions' }, submit, saved),
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const [name, f] of fields) {
      if (f.excess() > 0) {
        f.textarea.focus();
        return status.error(
          `${FIELDS[name].label} is too long: please keep it to ` +
            `${MAX_PROFILE_FIELD_CHARS.toLocaleString('en-GB')} characters.`,
        );
      }
    }
    const update: ClientProfileUpdate = {};
    for (const [name, f] of fields) update[name] = f.textarea.value.trim() || null;

    submit.disabled = true;
    status.info('Saving…');
    try {
      const stored = await api.saveOwnClientProfile(update);
      // Show what the server kept (trimmed, blanks cleared).
      for (const [name, f] of fields) {
        f.textarea.value = stored[name] ?? '';
        f.refresh();
      }
      showSaved(stored.updated_at);
      status.success('Saved. Therapists you share it with see the new version straight away.');
    } catch (error) {
      if (endedElsewhere(app, error)) return;
      status.error(`Not saved: ${messageOf(error)}`);
    } finally {
      submit.disabled = false;
    }
  });

  return el(
    'section',
    { class: 'card', 'aria-labelledby': 'private-profile-heading' },
    el('h2', { id: 'private-profile-heading' }, 'What you would like a therapist to know'),
    form,
  );
}

/** The therapists who may read the profile now, each with "Stop sharing". */
class SharingList {
  readonly node: HTMLElement;
  private readonly list = el('ul', { class: 'consents', 'aria-label': 'Shared with' });
  private readonly status = new StatusLine();
  private closed = false;

  constructor(
    private readonly app: App,
    private consents: ClientConsent[],
  ) {
    this.node = el(
      'section',
      { class: 'card', 'aria-labelledby': 'sharing-heading' },
      el('h2', { id: 'sharing-heading' }, 'Who can read it'),
      el(
        'p',
        { class: 'hint' },
        'You choose to share it with a therapist on the page of a session booked with them. ' +
          'Stopping takes effect at once, and closes it on their screen too.',
      ),
      this.list,
      this.status.node,
    );
    this.render();
  }

  close(): void {
    this.closed = true;
  }

  private render(): void {
    if (this.consents.length === 0) {
      replace(
        this.list,
        el('li', { class: 'hint' }, 'You are not sharing your private profile with anyone.'),
      );
      return;
    }
    replace(
      this.list,
      this.consents.map((consent) => this.row(consent)),
    );
  }

  private row(consent: ClientConsent): HTMLElement {
    const nameId = fieldId('consent');
    const stop = el(
      'button',
      { type: 'button', class: 'button secondary', 'aria-describedby': nameId },
      'Stop sharing',
    );
    stop.addEventListener('click', () => void this.stop(consent, stop));
    return el(
      'li',
      { class: 'consent' },
      el(
        'div',
        null,
        el('p', { class: 'consent-name', id: nameId }, consent.therapist_name),
        el('p', { class: 'meta' }, `Shared since ${formatDateTime(consent.granted_at)}`),
      ),
      stop,
    );
  }

  private async stop(consent: ClientConsent, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    this.status.info('Stopping…');
    try {
      await api.revokeConsent(consent.therapist_id);
    } catch (error) {
      if (this.closed || endedElsewhere(this.app, error)) return;
      button.disabled = false;
      this.status.error(`Could not stop sharing: ${messageOf(error)}`);
      return;
    }
    if (this.closed) return;
    this.consents = this.consents.filter((c) => c.therapist_id !== consent.therapist_id);
    this.render();
    this.status.success(`${consent.therapist_name} can no longer read your private profile.`);
  }
}
