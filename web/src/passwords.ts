// New passwords, wherever one is chosen (registration, reset, change). The browser checks
// only the length; the strength estimate (zxcvbn, with the person's email and name as
// clues) is the server's, whose dictionaries are too large to ship to every visitor. Its
// refusal comes back as a `validation` error whose message we show as it is.

import { el } from './dom';

/** The server refuses shorter passwords (`MIN_PASSWORD_CHARS` in src/http/accounts.rs). */
export const MIN_PASSWORD_CHARS = 12;

/** The server refuses longer ones (`MAX_PASSWORD_CHARS`). */
export const MAX_PASSWORD_CHARS = 256;

/** The hint under every new-password field. */
export const NEW_PASSWORD_HINT =
  `At least ${MIN_PASSWORD_CHARS} characters and hard to guess: ` +
  'three or four unrelated words work well.';

/** A password input that password managers recognise as a new password. */
export function newPasswordInput(): HTMLInputElement {
  return el('input', {
    type: 'password',
    name: 'new-password',
    autocomplete: 'new-password',
    minlength: MIN_PASSWORD_CHARS,
    maxlength: MAX_PASSWORD_CHARS,
    required: true,
  });
}

/** What is wrong with a new password that the browser can already tell, or null. */
export function newPasswordProblem(password: string): string | null {
  // Count characters, not UTF-16 units, as the server does.
  const chars = [...password].length;
  if (chars < MIN_PASSWORD_CHARS) {
    return `Your password needs at least ${MIN_PASSWORD_CHARS} characters.`;
  }
  if (chars > MAX_PASSWORD_CHARS) {
    return `Your password can have at most ${MAX_PASSWORD_CHARS} characters.`;
  }
  return null;
}
