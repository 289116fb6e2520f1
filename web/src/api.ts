// The HTTP API (docs/api.md): a JSON fetch wrapper and one typed function per endpoint.
// Requests are same-origin and carry the session cookie; the browser adds the Origin header
// the server requires on writes.

import type {
  Booking,
  BookingId,
  ChatMessage,
  Instant,
  Role,
  Slot,
  TherapistId,
  UserId,
  WeeklyAvailability,
} from './protocol';

/** An error answered by the server (`{"error":{code,message}}`) or a failed request. */
export class ApiError extends Error {
  constructor(
    /** HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
    /** The server's stable code (`slot_taken`, `validation`…), or `network`/`bad_response`. */
    readonly code: string,
    message: string,
    /** For `rate_limited`: the seconds the server's `Retry-After` asks us to wait. */
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface User {
  id: UserId;
  email: string;
  role: Role;
  display_name: string;
}

/** The answer to requests that must not reveal whether an account exists. */
export interface Accepted {
  status: 'check_your_email';
}

/** The first step of a sign-in with a second factor: no session yet. */
export interface SecondFactorNeeded {
  mfa_required: true;
  /** Send back with the code to `/api/auth/login/mfa`; valid for five minutes. */
  challenge: string;
}

/** One signed-in browser or app ("Your devices"). */
export interface Device {
  id: string;
  created_at: Instant;
  last_seen_at: Instant;
  /** The browser's own description of itself, shortened by the server. */
  user_agent: string | null;
  /** True for the session making the request. */
  current: boolean;
}

export interface MfaStatus {
  enrolled: boolean;
  /** True when the account may not switch it off (staff, admins). */
  required: boolean;
  recovery_codes_left: number;
}

/** What an authenticator app needs: shown once. */
export interface Enrolment {
  /** Base32, for typing into the app by hand. */
  secret: string;
  /** `otpauth://totp/…`, for a QR code. */
  otpauth_url: string;
}

export interface RecoveryCodes {
  /** `XXXX-XXXX-XXXX`, each usable once. */
  recovery_codes: string[];
}

export interface Profile {
  id: TherapistId;
  full_name: string;
  professional_body: string;
  membership_number: string;
  bio: string;
  fee_pence: number;
  session_minutes: number;
  timezone: string;
  verified: boolean;
}

export type ProfileInput = Omit<Profile, 'id' | 'verified'>;

/** Longest value of one private-profile field, in characters (Unicode scalar values). */
export const MAX_PROFILE_FIELD_CHARS = 4000;

/**
 * A client's private profile (policy 3.8.4): optional free text that a therapist may read
 * only while the client consents. `null` is "not given". It may hold health information, so
 * it is shown and dropped, never logged or stored by the browser.
 */
export interface ClientProfile {
  client_id: UserId;
  bio: string | null;
  goals: string | null;
  frustrations: string | null;
  /** Medical and mental-health information the client chooses to share. */
  health_notes: string | null;
  /** When the client last saved it; `null` if never. */
  updated_at: Instant | null;
}

/** The four free-text fields of a private profile, in the order pages show them. */
export const CLIENT_PROFILE_FIELDS = ['bio', 'goals', 'frustrations', 'health_notes'] as const;
export type ClientProfileField = (typeof CLIENT_PROFILE_FIELDS)[number];

/** The whole profile, replacing what was there: a missing, `null` or blank field is cleared. */
export type ClientProfileUpdate = Partial<Record<ClientProfileField, string | null>>;

/** A therapist the client lets read their private profile, until they stop sharing. */
export interface ClientConsent {
  therapist_id: TherapistId;
  therapist_name: string;
  granted_at: Instant;
}

export interface SlotsSnapshot {
  therapist_id: TherapistId;
  /** The `availability:` topic's sequence number when the snapshot was taken. */
  seq: number;
  slots: Slot[];
}

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface ErrorBody {
  error?: { code?: unknown; message?: unknown };
}

/** Sends one request and returns the parsed JSON body (undefined for 204). */
export async function request<T>(
  method: Method,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...headers },
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
  }

  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(
      0,
      'network',
      'Could not reach Paranimo. Check your connection and try again.',
    );
  }

  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }

  if (!response.ok) {
    const error = (parsed as ErrorBody | undefined)?.error;
    const code = typeof error?.code === 'string' ? error.code : `http_${response.status}`;
    const message =
      typeof error?.message === 'string'
        ? error.message
        : `The request failed (${response.status}).`;
    throw new ApiError(response.status, code, message, retryAfter(response));
  }
  if (parsed === undefined && text) {
    throw new ApiError(response.status, 'bad_response', 'The server sent an unreadable answer.');
  }
  return parsed as T;
}

/** `Retry-After` in seconds (the server sends seconds, never a date); null when absent. */
function retryAfter(response: Response): number | null {
  const value = Number(response.headers.get('Retry-After'));
  return Number.isFinite(value) && value > 0 ? Math.ceil(value) : null;
}

/** A fresh id for idempotency keys and websocket frames. */
export function newId(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // randomUUID needs a secure context; plain-HTTP development hosts fall back to this.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export const api = {
  // Accounts
  register: (input: {
    email: string;
    password: string;
    role: 'client' | 'therapist';
    adult: boolean;
    display_name?: string;
  }) => request<Accepted>('POST', '/api/auth/register', input),
  verifyEmail: (token: string) =>
    request<{ user: User }>('POST', '/api/auth/verify-email', { token }),
  login: (email: string, password: string) =>
    request<{ user: User } | SecondFactorNeeded>('POST', '/api/auth/login', { email, password }),
  loginSecondFactor: (challenge: string, code: string) =>
    request<{ user: User }>('POST', '/api/auth/login/mfa', { challenge, code }),
  logout: () => request<void>('POST', '/api/auth/logout'),
  me: () => request<{ user: User }>('GET', '/api/me'),
  changePassword: (currentPassword: string, newPassword: string) =>
    request<{ user: User }>('POST', '/api/auth/password', {
      current_password: currentPassword,
      new_password: newPassword,
    }),
  requestPasswordReset: (email: string) =>
    request<Accepted>('POST', '/api/auth/password-reset', { email }),
  confirmPasswordReset: (token: string, newPassword: string) =>
    request<void>('POST', '/api/auth/password-reset/confirm', {
      token,
      new_password: newPassword,
    }),

  // Devices
  devices: () => request<Device[]>('GET', '/api/sessions'),
  revokeDevice: (id: string) => request<void>('DELETE', `/api/sessions/${enc(id)}`),
  revokeAllDevices: () => request<void>('POST', '/api/sessions/revoke-all'),

  // Two-step verification
  mfaStatus: () => request<MfaStatus>('GET', '/api/mfa'),
  mfaEnrol: (password: string) => request<Enrolment>('POST', '/api/mfa/enrol', { password }),
  mfaConfirm: (code: string) => request<RecoveryCodes>('POST', '/api/mfa/confirm', { code }),
  mfaDisable: (code: string) => request<void>('POST', '/api/mfa/disable', { code }),
  mfaRecoveryCodes: (code: string) =>
    request<RecoveryCodes>('POST', '/api/mfa/recovery-codes', { code }),

  // Therapists
  therapists: () => request<Profile[]>('GET', '/api/therapists'),
  therapist: (id: TherapistId) => request<Profile>('GET', `/api/therapists/${enc(id)}`),
  saveProfile: (input: ProfileInput) =>
    request<Profile>('PUT', '/api/therapists/me/profile', input),
  myAvailability: () => request<WeeklyAvailability>('GET', '/api/therapists/me/availability'),
  saveAvailability: (input: WeeklyAvailability) =>
    request<WeeklyAvailability>('PUT', '/api/therapists/me/availability', input),
  slots: (id: TherapistId) => request<SlotsSnapshot>('GET', `/api/therapists/${enc(id)}/slots`),

  // Bookings
  book: (therapistId: TherapistId, start: Instant, idempotencyKey: string) =>
    request<Booking>(
      'POST',
      '/api/bookings',
      { therapist_id: therapistId, start },
      { 'Idempotency-Key': idempotencyKey },
    ),
  bookings: () => request<Booking[]>('GET', '/api/bookings'),
  booking: (id: BookingId) => request<Booking>('GET', `/api/bookings/${enc(id)}`),
  cancel: (id: BookingId) => request<Booking>('POST', `/api/bookings/${enc(id)}/cancel`),
  messages: (id: BookingId) => request<ChatMessage[]>('GET', `/api/bookings/${enc(id)}/messages`),

  // Client private profile and consents (docs/api.md, "Client profiles and consent")
  ownClientProfile: () => request<ClientProfile>('GET', '/api/clients/me/profile'),
  saveOwnClientProfile: (input: ClientProfileUpdate) =>
    request<ClientProfile>('PUT', '/api/clients/me/profile', input),
  consents: () => request<ClientConsent[]>('GET', '/api/clients/me/consents'),
  grantConsent: (therapistId: TherapistId) =>
    request<ClientConsent>('POST', '/api/clients/me/consents', { therapist_id: therapistId }),
  revokeConsent: (therapistId: TherapistId) =>
    request<void>('DELETE', `/api/clients/me/consents/${enc(therapistId)}`),
  /** For a therapist: 200 only while the client consents, else 404 `not_found`. */
  clientProfile: (clientId: UserId) =>
    request<ClientProfile>('GET', `/api/clients/${enc(clientId)}/profile`),

  // Video
  iceServers: () => request<{ ice_servers: IceServer[] }>('GET', '/api/rtc/ice-servers'),
};

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
