// `#/room/<booking id>`: the video room for one session.
//
// Negotiation follows the "perfect negotiation" pattern. The server names the `offerer`
// (the therapist): that side is impolite and adds its camera and microphone once the other
// person is present, which sends the first offer. The other side is polite: it answers that
// offer and only then adds its own media, whose follow-up offer the pattern handles.
// Letting one side go first avoids both sides offering at once, which was seen to leave the
// polite side without ICE candidates now and then. Signals travel as `room.signal` frames.

import { api, ApiError, type IceServer } from '../api';
import { messageOf, requireUser, type App, type Page } from '../app';
import { el, replace, StatusLine } from '../dom';
import { formatLongRange } from '../format';
import { CommandError } from '../realtime';
import {
  isSignalPayload,
  topics,
  type Booking,
  type BookingId,
  type Event,
  type RoomState,
  type SignalPayload,
  type UserId,
} from '../protocol';

/** What the browser test reads to check that video really flows. */
export interface CallProbe {
  readonly pc: RTCPeerConnection | null;
  stats(): Promise<CallStats>;
}

export interface CallStats {
  connectionState: RTCPeerConnectionState | 'none';
  /** Video frames decoded from the other person (inbound-rtp). */
  framesDecoded: number;
  bytesReceived: number;
  remoteReadyState: number;
  remotePaused: boolean;
}

declare global {
  interface Window {
    __paranimoCall?: CallProbe;
  }
}

export const roomPage: Page = (root, app, [bookingId]) => {
  const user = requireUser(root, app);
  if (!user) return;
  const room = new Room(root, app, bookingId, user.id);
  void room.start();
  return () => room.close();
};

class Room {
  pc: RTCPeerConnection | null = null;
  private iceServers: RTCIceServer[] = [];
  private localStream: MediaStream | null = null;
  private booking: Booking | null = null;

  // Perfect negotiation state for the current peer connection.
  private polite = true;
  private makingOffer = false;
  private ignoreOffer = false;
  private tracksAdded = false;
  /** Signals are handled one at a time, in the order they arrived. */
  private signalChain: Promise<void> = Promise.resolve();

  private otherWasPresent = false;
  private joined = false;
  /**
   * Presence events that arrive before our `room.join` is acknowledged. The server sends
   * them as soon as it subscribes us, but refuses our signals until the join completes, so
   * acting on them early could lose the first offer. They are newer than the state in the
   * ack (we were subscribed first), so they are applied after it, in order.
   */
  private earlyPresence: RoomState[] = [];
  /** Signals that arrive before the join is acknowledged, when there is no peer yet. */
  private earlySignals: SignalPayload[] = [];
  private closed = false;
  private readonly cleanups: Array<() => void> = [];

  private readonly status = new StatusLine('status call-status');
  private readonly title = el('h1', null, 'Session');
  private readonly when = el('p', { class: 'hint' });
  private readonly localVideo = el('video', {
    id: 'local-video',
    autoplay: true,
    playsinline: true,
    muted: true,
  });
  private readonly remoteVideo = el('video', {
    id: 'remote-video',
    autoplay: true,
    playsinline: true,
  });
  private readonly remoteCaption = el('figcaption', null, 'The other person');
  private readonly playButton = el(
    'button',
    { type: 'button', class: 'button', hidden: true },
    'Start video and sound',
  );
  private readonly controls = el('div', { class: 'actions call-controls' });

  constructor(
    private readonly root: HTMLElement,
    private readonly app: App,
    private readonly bookingId: BookingId,
    private readonly me: UserId,
  ) {
    // The `muted` attribute only sets the default; the property is what silences playback.
    this.localVideo.muted = true;
    this.playButton.addEventListener('click', () => {
      this.playButton.hidden = true;
      void this.remoteVideo.play().catch(() => (this.playButton.hidden = false));
    });
  }

  async start(): Promise<void> {
    this.render();
    this.status.info('Joining the room…');
    this.exposeProbe();

    this.cleanups.push(
      this.app.realtime.listen(topics.room(this.bookingId), {
        onEvent: (event) => this.onEvent(event),
      }),
      this.app.realtime.onReconnect(() => void this.rejoin()),
    );

    try {
      const [booking, ice] = await Promise.all([api.booking(this.bookingId), api.iceServers()]);
      this.booking = booking;
      this.iceServers = ice.ice_servers.map(toRtcIceServer);
    } catch (error) {
      if (this.closed) return;
      const notFound = error instanceof ApiError && error.status === 404;
      this.status.error(
        notFound
          ? 'We could not find this session.'
          : `Could not open the room: ${messageOf(error)}`,
      );
      return;
    }
    if (this.closed) return;
    this.title.textContent = `Session with ${this.otherName()}`;
    this.when.textContent = formatLongRange(this.booking.start, this.booking.end);
    this.remoteCaption.textContent = this.otherName();

    await this.openCamera();
    if (this.closed) return;
    await this.join();
  }

  /** Leaves the room, releases the camera, and goes back to the booking. */
  leave(): void {
    this.close();
    this.app.navigate(`#/bookings/${encodeURIComponent(this.bookingId)}`);
  }

  /** Runs when the page is left any way at all: idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.joined) {
      this.app.realtime
        .command({
          type: 'room.leave',
          id: this.app.realtime.newCommandId(),
          booking_id: this.bookingId,
        })
        .catch(() => {
          // The socket closing also takes us out of the room.
        });
    }
    this.joined = false;
    this.closePeer();
    this.localStream?.getTracks().forEach((track) => track.stop());
    this.localStream = null;
    this.localVideo.srcObject = null;
    for (const cleanup of this.cleanups) cleanup();
    delete window.__paranimoCall;
  }

  // --- room membership -----------------------------------------------------------------------

  private async join(): Promise<void> {
    try {
      const ack = await this.app.realtime.command({
        type: 'room.join',
        id: this.app.realtime.newCommandId(),
        booking_id: this.bookingId,
      });
      if (this.closed) return;
      this.joined = true;
      const early = this.earlyPresence.splice(0);
      if (ack.room) this.applyRoom(ack.room);
      for (const room of early) this.applyRoom(room);
      for (const payload of this.earlySignals.splice(0)) this.queueSignal(payload);
    } catch (error) {
      this.earlyPresence = [];
      this.earlySignals = [];
      if (this.closed) return;
      if (error instanceof CommandError && error.code === 'room_closed') {
        this.status.error(
          'The room is not open yet. It opens 10 minutes before the session starts.',
        );
      } else if (error instanceof CommandError && error.code === 'not_found') {
        this.status.error('This room is not available to you.');
      } else if (!(error instanceof CommandError && error.code === 'disconnected')) {
        this.status.error(`Could not join the room: ${messageOf(error)}`);
      }
      // A lost connection is handled by `rejoin` once the socket is back.
    }
  }

  /** After a reconnect the server has taken us out of the room: start afresh. */
  private async rejoin(): Promise<void> {
    if (this.closed || !this.booking) return;
    this.status.info('Reconnecting to the room…');
    this.joined = false;
    this.earlyPresence = [];
    this.earlySignals = [];
    this.otherWasPresent = false;
    this.closePeer();
    await this.join();
  }

  private onEvent(event: Event): void {
    if (this.closed) return;
    if (event.kind === 'room.presence' && event.room.booking_id === this.bookingId) {
      if (this.joined) this.applyRoom(event.room);
      else this.earlyPresence.push(event.room);
    } else if (event.kind === 'room.signal' && event.booking_id === this.bookingId) {
      // The server may echo our own signals to the room: only the other side's matter.
      if (event.from === this.me || !isSignalPayload(event.payload)) return;
      if (this.joined) this.queueSignal(event.payload);
      else this.earlySignals.push(event.payload);
    }
  }

  private queueSignal(payload: SignalPayload): void {
    this.signalChain = this.signalChain
      .then(() => this.handleSignal(payload))
      .catch((error: unknown) => console.warn('paranimo: signalling failed', error));
  }

  private applyRoom(room: RoomState): void {
    this.polite = room.offerer !== this.me;
    if (!this.pc) this.createPeer();
    const otherPresent = room.present.some((id) => id !== this.me);

    if (otherPresent) {
      this.otherWasPresent = true;
      if (this.pc?.connectionState !== 'connected')
        this.status.info(`Connecting you with ${this.otherName()}…`);
      // The impolite side goes first; the polite side adds its media after answering.
      if (!this.polite && !this.tracksAdded) this.addLocalTracks();
    } else if (this.otherWasPresent) {
      // Start a fresh connection so that a rejoin negotiates from scratch.
      this.otherWasPresent = false;
      this.closePeer();
      this.createPeer();
      this.status.info('The other person left. You can wait here for them to rejoin.');
    } else {
      this.status.info(`Waiting for ${this.otherName()} to join…`);
    }
  }

  // --- peer connection -----------------------------------------------------------------------

  private createPeer(): void {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.tracksAdded = false;

    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        if (this.pc === pc && pc.localDescription)
          this.signal({ description: pc.localDescription.toJSON() });
      } catch (error) {
        console.warn('paranimo: could not make an offer', error);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (this.pc === pc && candidate) this.signal({ candidate: candidate.toJSON() });
    };
    // Attach remote media as soon as tracks arrive: after a rollback they can stay `muted`
    // while frames do decode, so waiting for `unmute` would leave the video blank.
    pc.ontrack = ({ track, streams }) => {
      if (this.pc !== pc) return;
      const current = this.remoteVideo.srcObject;
      if (streams[0]) {
        if (current !== streams[0]) this.remoteVideo.srcObject = streams[0];
      } else if (current instanceof MediaStream) {
        current.addTrack(track);
      } else {
        this.remoteVideo.srcObject = new MediaStream([track]);
      }
      this.playRemote();
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      switch (pc.connectionState) {
        case 'connected':
          this.status.success(`You are connected with ${this.otherName()}.`);
          break;
        case 'disconnected':
          this.status.info('The connection dropped. Trying to reconnect…');
          break;
        case 'failed':
          this.status.error('The connection failed. Trying again…');
          pc.restartIce();
          break;
        default:
          break;
      }
    };
  }

  private closePeer(): void {
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.onnegotiationneeded = null;
      pc.onicecandidate = null;
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    this.remoteVideo.srcObject = null;
    this.tracksAdded = false;
  }

  private addLocalTracks(): void {
    const pc = this.pc;
    if (!pc || this.tracksAdded) return;
    this.tracksAdded = true;
    if (this.localStream) {
      for (const track of this.localStream.getTracks()) pc.addTrack(track, this.localStream);
    } else {
      // Without a camera we can still see and hear the other person.
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
  }

  private async handleSignal(payload: SignalPayload): Promise<void> {
    let pc = this.pc;
    if (!pc || this.closed) return;

    if ('description' in payload) {
      const description = payload.description;
      const offerCollision =
        description.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;

      // On the polite side a colliding offer rolls our own back implicitly.
      try {
        await pc.setRemoteDescription(description);
      } catch (error) {
        // An offer from a fresh connection on the other side (they rejoined before we saw
        // them leave) does not fit ours: start over with a new connection and take it there.
        if (description.type !== 'offer' || this.pc !== pc) throw error;
        console.info('paranimo: starting a new peer connection for a fresh offer', error);
        this.closePeer();
        this.createPeer();
        pc = this.pc as RTCPeerConnection | null;
        if (!pc) return;
        await pc.setRemoteDescription(description);
      }
      if (description.type === 'offer') {
        await pc.setLocalDescription();
        if (this.pc === pc && pc.localDescription)
          this.signal({ description: pc.localDescription.toJSON() });
        if (this.polite && !this.tracksAdded) this.addLocalTracks();
      }
    } else {
      try {
        await pc.addIceCandidate(payload.candidate);
      } catch (error) {
        // Candidates for an offer we chose to ignore are expected to fail.
        if (!this.ignoreOffer) console.warn('paranimo: could not add an ICE candidate', error);
      }
    }
  }

  private signal(payload: SignalPayload): void {
    this.app.realtime
      .command({
        type: 'room.signal',
        id: this.app.realtime.newCommandId(),
        booking_id: this.bookingId,
        payload,
      })
      .catch((error: unknown) => console.warn('paranimo: a signal was not delivered', error));
  }

  // --- media ---------------------------------------------------------------------------------

  private async openCamera(): Promise<void> {
    try {
      this.localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    } catch (error) {
      this.status.error(
        `Could not use your camera or microphone (${messageOf(error)}). ` +
          'You can still see and hear the other person.',
      );
      return;
    }
    if (this.closed) {
      this.localStream.getTracks().forEach((track) => track.stop());
      this.localStream = null;
      return;
    }
    this.localVideo.srcObject = this.localStream;
    void this.localVideo.play().catch(() => {});
    this.renderControls();
  }

  private playRemote(): void {
    this.remoteVideo.play().then(
      () => (this.playButton.hidden = true),
      // Autoplay with sound can be refused until the user interacts with the page.
      () => (this.playButton.hidden = false),
    );
  }

  // --- view ----------------------------------------------------------------------------------

  private otherName(): string {
    if (!this.booking) return 'the other person';
    return this.me === this.booking.client_id
      ? this.booking.therapist_name
      : this.booking.client_name;
  }

  private render(): void {
    replace(
      this.root,
      el(
        'section',
        { class: 'room', 'aria-labelledby': 'room-heading' },
        this.title,
        this.when,
        this.status.node,
        el(
          'div',
          { class: 'videos' },
          el('figure', { class: 'video remote' }, this.remoteVideo, this.remoteCaption),
          el('figure', { class: 'video local' }, this.localVideo, el('figcaption', null, 'You')),
        ),
        this.playButton,
        this.controls,
      ),
    );
    this.title.id = 'room-heading';
    this.renderControls();
  }

  private renderControls(): void {
    const leave = el(
      'button',
      { type: 'button', class: 'button danger', onclick: () => this.leave() },
      'Leave session',
    );
    const toggles = this.localStream
      ? (['audio', 'video'] as const).map((kind) => this.toggle(kind))
      : [];
    replace(this.controls, toggles, leave);
  }

  /** A button that turns the microphone or the camera off and on again. */
  private toggle(kind: 'audio' | 'video'): HTMLButtonElement {
    const tracks = () => this.localStream?.getTracks().filter((t) => t.kind === kind) ?? [];
    const label = () => {
      const on = tracks().some((t) => t.enabled);
      if (kind === 'audio') return on ? 'Mute microphone' : 'Unmute microphone';
      return on ? 'Turn camera off' : 'Turn camera on';
    };
    const button = el('button', { type: 'button', class: 'button secondary' }, label());
    button.addEventListener('click', () => {
      const enable = !tracks().some((t) => t.enabled);
      tracks().forEach((t) => (t.enabled = enable));
      button.textContent = label();
      button.setAttribute('aria-pressed', String(!enable));
    });
    return button;
  }

  private exposeProbe(): void {
    const currentPc = () => this.pc;
    const remote = this.remoteVideo;
    window.__paranimoCall = {
      get pc() {
        return currentPc();
      },
      async stats(): Promise<CallStats> {
        const pc = currentPc();
        const stats: CallStats = {
          connectionState: pc?.connectionState ?? 'none',
          framesDecoded: 0,
          bytesReceived: 0,
          remoteReadyState: remote.readyState,
          remotePaused: remote.paused,
        };
        if (!pc) return stats;
        const report = await pc.getStats();
        report.forEach(
          (entry: {
            type?: string;
            kind?: string;
            framesDecoded?: number;
            bytesReceived?: number;
          }) => {
            if (entry.type === 'inbound-rtp' && entry.kind === 'video') {
              stats.framesDecoded += entry.framesDecoded ?? 0;
              stats.bytesReceived += entry.bytesReceived ?? 0;
            }
          },
        );
        return stats;
      },
    };
  }
}

function toRtcIceServer(server: IceServer): RTCIceServer {
  const ice: RTCIceServer = { urls: server.urls };
  if (server.username !== undefined) ice.username = server.username;
  if (server.credential !== undefined) ice.credential = server.credential;
  return ice;
}
