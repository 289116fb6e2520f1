// A booking's conversation: the stored messages, live `message.created` events from the
// user's topic, and sending over the websocket.
//
// A message being sent is shown as pending under its client-made id until the server's
// `ack` (or the `message.created` echo, whichever comes first) replaces it with the stored
// message. Messages are keyed by their server id, so replays and refetches never duplicate.

import { api } from '../api';
import { messageOf, type App } from '../app';
import { el, fieldId, replace, StatusLine } from '../dom';
import { byInstant, formatMessageTime } from '../format';
import {
  MAX_MESSAGE_CHARS,
  topics,
  type BookingId,
  type ChatMessage,
  type Event,
  type UserId,
} from '../protocol';

interface PendingMessage {
  clientId: string;
  body: string;
  failed: string | null;
}

export class Conversation {
  readonly node: HTMLElement;
  private readonly messages = new Map<string, ChatMessage>();
  private readonly pending = new Map<string, PendingMessage>();
  private readonly list = el('ol', { class: 'messages', 'aria-label': 'Messages' });
  private readonly input: HTMLTextAreaElement;
  private readonly status = new StatusLine();
  /** Tells screen readers about incoming messages without re-reading the whole list. */
  private readonly announcer = el('p', { class: 'visually-hidden', role: 'status' });
  private readonly closeSubscription: () => void;
  private closed = false;

  constructor(
    private readonly app: App,
    private readonly bookingId: BookingId,
    private readonly me: UserId,
    /** The other party's name, for labelling their messages. */
    private readonly otherName: string,
  ) {
    const inputId = fieldId('message');
    this.input = el('textarea', {
      id: inputId,
      rows: 3,
      maxlength: MAX_MESSAGE_CHARS,
      required: true,
    });
    const form = el(
      'form',
      { class: 'message-form' },
      el('div', { class: 'field' }, el('label', { for: inputId }, 'Message'), this.input),
      el('button', { type: 'submit', class: 'button' }, 'Send'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.send();
      }
    });

    this.node = el(
      'section',
      { class: 'card conversation', 'aria-labelledby': 'conversation-heading' },
      el('h2', { id: 'conversation-heading' }, 'Messages'),
      el('p', { class: 'hint' }, `Only you and ${otherName} can read these.`),
      this.list,
      this.announcer,
      this.status.node,
      form,
    );

    const subscription = app.realtime.follow(topics.user(me), {
      onEvent: (event) => this.onEvent(event),
      onResync: () => void this.refetch(),
    });
    this.closeSubscription = () => subscription.close();
    void this.refetch();
    // Fetch again once the subscription is live, to cover messages sent in between.
    void subscription.ready.then(() => this.refetch());
    this.render();
  }

  close(): void {
    this.closed = true;
    this.closeSubscription();
  }

  private async refetch(): Promise<void> {
    try {
      const messages = await api.messages(this.bookingId);
      if (this.closed) return;
      for (const message of messages) this.store(message);
      this.render();
    } catch (error) {
      if (!this.closed) this.status.error(`Could not load messages: ${messageOf(error)}`);
    }
  }

  private onEvent(event: Event): void {
    if (event.kind !== 'message.created' || event.message.booking_id !== this.bookingId) return;
    const isNew = !this.messages.has(event.message.id);
    this.store(event.message);
    if (isNew && event.message.sender_id !== this.me)
      this.announcer.textContent = `New message from ${this.otherName}`;
    this.render();
  }

  private store(message: ChatMessage): void {
    this.messages.set(message.id, message);
    if (message.sender_id === this.me) this.pending.delete(message.client_msg_id);
  }

  private send(existing?: PendingMessage): void {
    const body = existing ? existing.body : this.input.value.trim();
    if (!body) {
      this.status.error('Please write a message first.');
      return;
    }
    if (body.length > MAX_MESSAGE_CHARS) {
      this.status.error(`Messages can be at most ${MAX_MESSAGE_CHARS} characters.`);
      return;
    }
    this.status.clear();

    // A retry reuses the id, so the server recognises it if the first attempt got through.
    const pending: PendingMessage = existing ?? {
      clientId: this.app.realtime.newCommandId(),
      body,
      failed: null,
    };
    pending.failed = null;
    this.pending.set(pending.clientId, pending);
    if (!existing) this.input.value = '';
    this.render();

    this.app.realtime
      .command({ type: 'message.send', id: pending.clientId, booking_id: this.bookingId, body })
      .then((ack) => {
        if (this.closed) return;
        if (ack.message) this.store(ack.message);
        else this.pending.delete(pending.clientId);
        this.render();
      })
      .catch((error: unknown) => {
        if (this.closed || !this.pending.has(pending.clientId)) return;
        pending.failed = messageOf(error);
        this.render();
      });
  }

  private render(): void {
    const stored = [...this.messages.values()].sort(
      (a, b) => byInstant(a.created_at, b.created_at) || a.id.localeCompare(b.id),
    );
    const items = stored.map((message) => {
      const mine = message.sender_id === this.me;
      return el(
        'li',
        { class: `message${mine ? ' mine' : ''}`, 'data-message-id': message.id },
        el(
          'p',
          { class: 'message-meta' },
          el('strong', null, mine ? 'You' : this.otherName),
          ' · ',
          el('time', { datetime: message.created_at }, formatMessageTime(message.created_at)),
        ),
        el('p', { class: 'message-body' }, message.body),
      );
    });
    const waiting = [...this.pending.values()].map((p) =>
      el(
        'li',
        { class: `message mine pending${p.failed ? ' failed' : ''}` },
        el(
          'p',
          { class: 'message-meta' },
          el('strong', null, 'You'),
          ' · ',
          p.failed ? `Not sent: ${p.failed} ` : 'Sending…',
          p.failed
            ? el(
                'button',
                { type: 'button', class: 'button link', onclick: () => this.send(p) },
                'Try again',
              )
            : null,
        ),
        el('p', { class: 'message-body' }, p.body),
      ),
    );

    if (items.length === 0 && waiting.length === 0) {
      replace(this.list, el('li', { class: 'hint' }, 'No messages yet.'));
    } else {
      replace(this.list, items, waiting);
    }
    this.list.scrollTop = this.list.scrollHeight;
  }
}
