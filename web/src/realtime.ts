// The app's one websocket to `/ws` (docs/protocol.md).
//
// - Reconnects with exponential backoff and jitter after any close.
// - Remembers the last `seq` seen per topic, resubscribes with `since` after a reconnect
//   (the server replays what was missed), drops events at or below that number, and on
//   `resync` asks the topic's listeners to refetch their HTTP snapshot.
// - Sends commands with client-made ids and resolves each with its `ack` (or rejects it
//   with the `error` of the same id). `message.send` frames not yet acknowledged when the
//   socket drops are sent again, with the same id, once it is back: the server dedupes them.
// - When the server ends the connection itself (a `closing` frame, sent for a session that was
//   signed out) or refuses it before `hello` (401), asks the app whether the session still
//   holds before reconnecting, so a signed-out tab stops instead of retrying forever.

import { newId } from './api';
import {
  parseServerFrame,
  type AckFrame,
  type ClientFrame,
  type CommandFrame,
  type ErrorCode,
  type Event,
  type ServerFrame,
  type Topic,
  type UserId,
} from './protocol';

/** Wait before the first reconnect attempt; doubles on each failure. */
const BACKOFF_START_MS = 500;
/** Longest wait between reconnect attempts. */
const BACKOFF_MAX_MS = 10_000;

export type ConnectionState = 'offline' | 'connecting' | 'live' | 'reconnecting';

/** A command refused by the server (an `error` frame), or lost with its connection. */
export class CommandError extends Error {
  constructor(
    readonly code: ErrorCode | 'disconnected',
    message: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface TopicListener {
  onEvent(event: Event, seq: number): void;
  /** The server could not replay what was missed: fetch a fresh snapshot over HTTP. */
  onResync?(): void;
}

export interface Subscription {
  /** Resolves with the topic's `seq` once the server confirms the subscription. */
  readonly ready: Promise<number>;
  close(): void;
}

interface TopicState {
  /** Highest sequence number applied; events at or below it are duplicates. */
  lastSeq: number | null;
  listeners: Set<TopicListener>;
  /** True for topics we `subscribe` to; room topics are joined by `room.join` instead. */
  subscribe: boolean;
  confirmed: boolean;
  waiters: Array<(seq: number) => void>;
}

interface PendingCommand {
  frame: CommandFrame;
  resolve: (ack: AckFrame) => void;
  reject: (error: CommandError) => void;
  /** Whether the frame went out on the current socket. */
  sent: boolean;
}

export class Realtime {
  private socket: WebSocket | null = null;
  private running = false;
  private helloReceived = false;
  private everConnected = false;
  private attempt = 0;
  private reconnectTimer: number | undefined;
  private readonly topics = new Map<Topic, TopicState>();
  private readonly pending = new Map<string, PendingCommand>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private state: ConnectionState = 'offline';

  /**
   * Set when the current socket got a `closing` frame (the server is ending it on purpose):
   * the session check, started at once rather than after the close handshake.
   */
  private closingCheck: Promise<boolean> | null = null;

  /** The signed-in user, as told by the server's `hello`. */
  userId: UserId | null = null;

  /**
   * @param sessionHolds asked after the server closed the connection on purpose or refused
   *   it before `hello`; resolves false when the session has ended (the app then signs out
   *   and calls `stop`), true to reconnect, including when the server cannot be reached.
   */
  constructor(private readonly sessionHolds: () => Promise<boolean> = async () => true) {
    window.addEventListener('online', () => {
      if (this.running && !this.socket) this.connectNow();
    });
  }

  /** Opens the socket (idempotent). Call once the user is signed in. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.connectNow();
  }

  /** Closes the socket for good: on sign-out. Pending commands are rejected. */
  stop(): void {
    this.running = false;
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'signed out');
    this.helloReceived = false;
    this.everConnected = false;
    this.userId = null;
    for (const command of this.pending.values()) {
      command.reject(new CommandError('disconnected', 'You are signed out.'));
    }
    this.pending.clear();
    this.topics.clear();
    this.setState('offline');
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Called after every reconnect (not the first connect), once the server said `hello`. */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /**
   * Follows a topic. `since` is the sequence number of the snapshot the caller already
   * holds: the server replays anything after it.
   */
  follow(topic: Topic, listener: TopicListener, since?: number): Subscription {
    const state = this.topicState(topic, since ?? null, true);
    state.listeners.add(listener);

    const ready = new Promise<number>((resolve) => {
      if (state.confirmed) resolve(state.lastSeq ?? 0);
      else state.waiters.push(resolve);
    });
    if (state.listeners.size === 1 && !state.confirmed) this.sendSubscribe(topic, state);

    return {
      ready,
      close: () => this.release(topic, listener),
    };
  }

  /**
   * Listens to a topic that a command subscribes this connection to (a room, after
   * `room.join`), without sending `subscribe`.
   */
  listen(topic: Topic, listener: TopicListener): () => void {
    const state = this.topicState(topic, null, false);
    state.listeners.add(listener);
    return () => this.release(topic, listener);
  }

  /** A fresh id for a command frame. */
  newCommandId(): string {
    return newId();
  }

  /**
   * Sends a command and resolves with its `ack`. While the socket is down the frame waits
   * and goes out on reconnect.
   */
  command(frame: CommandFrame): Promise<AckFrame> {
    return new Promise<AckFrame>((resolve, reject) => {
      if (!this.running) {
        reject(new CommandError('disconnected', 'Not connected: please sign in.'));
        return;
      }
      const command: PendingCommand = { frame, resolve, reject, sent: false };
      this.pending.set(frame.id, command);
      if (this.helloReceived) {
        command.sent = this.send(frame);
      }
    });
  }

  // --- connection ------------------------------------------------------------------------

  private connectNow(): void {
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (!this.running || this.socket) return;

    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    this.socket = socket;
    this.helloReceived = false;
    this.closingCheck = null;
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');

    socket.addEventListener('message', (message) => {
      if (this.socket !== socket || typeof message.data !== 'string') return;
      const frame = parseServerFrame(message.data);
      if (frame) this.handle(frame);
      else console.warn('paranimo: ignored an unreadable frame from the server');
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.onClosed();
    });
  }

  private onClosed(): void {
    const hadHello = this.helloReceived;
    this.socket = null;
    this.helloReceived = false;
    for (const state of this.topics.values()) state.confirmed = false;

    // Commands already sent on the lost socket may or may not have taken effect. Messages
    // are resent with the same id (the server dedupes them); anything else is reported.
    for (const [id, command] of this.pending) {
      if (command.frame.type === 'message.send') {
        command.sent = false;
      } else if (command.sent) {
        this.pending.delete(id);
        command.reject(new CommandError('disconnected', 'The connection was lost.'));
      }
    }

    const closingCheck = this.closingCheck;
    this.closingCheck = null;
    if (!this.running) return;
    this.setState('reconnecting');
    if (hadHello && !closingCheck) {
      this.scheduleReconnect();
      return;
    }
    // Retrying a session that was signed out would only be refused again, forever.
    void (closingCheck ?? this.sessionHolds()).then((holds) => {
      if (holds && this.running && !this.socket) this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    window.clearTimeout(this.reconnectTimer);
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    this.attempt += 1;
    // Jitter spreads reconnects out when a server restart drops everyone at once.
    this.reconnectTimer = window.setTimeout(
      () => this.connectNow(),
      delay * (0.5 + Math.random() / 2),
    );
  }

  private onHello(userId: UserId): void {
    const isReconnect = this.everConnected;
    this.helloReceived = true;
    this.everConnected = true;
    this.attempt = 0;
    this.userId = userId;
    this.setState('live');

    for (const [topic, state] of this.topics) {
      if (state.subscribe) this.sendSubscribe(topic, state);
    }
    for (const command of this.pending.values()) {
      if (!command.sent) command.sent = this.send(command.frame);
    }
    if (isReconnect) {
      for (const listener of this.reconnectListeners) listener();
    }
  }

  private send(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN || !this.helloReceived) {
      return false;
    }
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  // --- topics ----------------------------------------------------------------------------

  private topicState(topic: Topic, since: number | null, subscribe: boolean): TopicState {
    let state = this.topics.get(topic);
    if (!state) {
      state = { lastSeq: since, listeners: new Set(), subscribe, confirmed: false, waiters: [] };
      this.topics.set(topic, state);
    }
    return state;
  }

  private sendSubscribe(topic: Topic, state: TopicState): void {
    const frame: ClientFrame =
      state.lastSeq === null
        ? { type: 'subscribe', topic }
        : { type: 'subscribe', topic, since: state.lastSeq };
    this.send(frame);
  }

  private release(topic: Topic, listener: TopicListener): void {
    const state = this.topics.get(topic);
    if (!state) return;
    state.listeners.delete(listener);
    if (state.listeners.size > 0) return;
    this.topics.delete(topic);
    if (state.subscribe) this.send({ type: 'unsubscribe', topic });
  }

  // --- frames ----------------------------------------------------------------------------

  private handle(frame: ServerFrame): void {
    switch (frame.type) {
      case 'hello':
        this.onHello(frame.user_id);
        break;
      case 'subscribed': {
        const state = this.topics.get(frame.topic);
        if (!state) break;
        state.lastSeq = Math.max(state.lastSeq ?? 0, frame.seq);
        state.confirmed = true;
        for (const resolve of state.waiters.splice(0)) resolve(state.lastSeq);
        break;
      }
      case 'event': {
        const state = this.topics.get(frame.topic);
        if (!state) break;
        if (state.lastSeq !== null && frame.seq <= state.lastSeq) break; // already applied
        state.lastSeq = frame.seq;
        for (const listener of [...state.listeners]) listener.onEvent(frame.event, frame.seq);
        break;
      }
      case 'resync': {
        const state = this.topics.get(frame.topic);
        if (!state) break;
        state.lastSeq = frame.seq;
        state.confirmed = true;
        for (const resolve of state.waiters.splice(0)) resolve(frame.seq);
        for (const listener of [...state.listeners]) listener.onResync?.();
        break;
      }
      case 'ack': {
        const command = this.pending.get(frame.id);
        if (!command) break;
        this.pending.delete(frame.id);
        command.resolve(frame);
        break;
      }
      case 'error': {
        const command = frame.id === null ? undefined : this.pending.get(frame.id);
        if (command && frame.id !== null) {
          this.pending.delete(frame.id);
          command.reject(new CommandError(frame.code, frame.message));
        } else {
          console.warn(`paranimo: server error ${frame.code}: ${frame.message}`);
        }
        break;
      }
      case 'closing':
        console.info(`paranimo: the server is closing the connection (${frame.reason})`);
        this.closingCheck ??= this.sessionHolds();
        break;
      case 'unsubscribed':
      case 'pong':
        break;
    }
  }
}
