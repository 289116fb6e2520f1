// Checks that the identity and client-profile parts of web/src/api.ts still match the Rust
// HTTP handlers: the response types have the same fields as the structs the server
// serialises, every path the app calls is a route the server registers, and the password and
// profile-field limits agree.
// Run with `npm test` (no browser or server needed).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path) => readFileSync(join(repo, path), 'utf8');
const rust = {
  accounts: read('src/http/accounts.rs'),
  devices: read('src/http/devices.rs'),
  mfa: read('src/http/mfa.rs'),
  sessions: read('src/store/sessions.rs'),
  clientProfiles: read('src/http/client_profiles.rs'),
};
const api = read('web/src/api.ts');
const passwords = read('web/src/passwords.ts');

/** The text between the `{` at or after `from` and its matching `}`. */
function braced(text, from) {
  const open = text.indexOf('{', from);
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === '{') depth += 1;
    if (text[i] === '}') {
      depth -= 1;
      if (depth === 0) return text.slice(open + 1, i);
    }
  }
  throw new Error(`unbalanced braces after offset ${from}`);
}

function rustStruct(source, name) {
  const start = source.indexOf(`pub struct ${name} {`);
  assert.ok(start >= 0, `struct ${name} not found in Rust`);
  const clean = braced(source, start)
    .replace(/\/\/.*$/gm, '')
    .replace(/#\[[^\]]*\]/g, '');
  return [...clean.matchAll(/(?:pub\s+)?(\w+)\s*:(?!:)/g)].map((m) => m[1]).sort();
}

function tsInterface(name) {
  const start = api.indexOf(`export interface ${name} {`);
  assert.ok(start >= 0, `interface ${name} not found in api.ts`);
  const clean = braced(api, start)
    .replace(/\/\*\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
  return [...clean.matchAll(/^\s*(\w+)\??\s*:/gm)].map((m) => m[1]).sort();
}

test('the identity response types have the fields the server sends', () => {
  const pairs = [
    ['User', rust.accounts, 'UserView'],
    ['Accepted', rust.accounts, 'Accepted'],
    ['SecondFactorNeeded', rust.accounts, 'SecondFactorNeeded'],
    ['Device', rust.sessions, 'Device'],
    ['MfaStatus', rust.mfa, 'MfaStatusView'],
    ['Enrolment', rust.mfa, 'EnrolmentView'],
    ['RecoveryCodes', rust.mfa, 'RecoveryCodesView'],
  ];
  for (const [ts, source, rustName] of pairs) {
    assert.deepEqual(tsInterface(ts), rustStruct(source, rustName), `${ts} ≠ ${rustName}`);
  }
});

test('the accepted answer says "check_your_email", as the server does', () => {
  assert.ok(rust.accounts.includes('status: "check_your_email"'));
  assert.ok(api.includes("status: 'check_your_email';"));
});

test('every identity path the app calls is a route of the server', () => {
  const routes = new Set();
  for (const source of [rust.accounts, rust.devices, rust.mfa]) {
    for (const m of source.matchAll(/\.route\(\s*"([^"]+)"/g)) {
      routes.add(`/api${m[1].replace(/\{\w+\}/g, '{}')}`);
    }
  }
  // '/api/auth/login' as written, or `/api/sessions/${enc(id)}` with its parameter as {}.
  const called = [...api.matchAll(/['`](\/api\/(?:auth|me|sessions|mfa)[^'`]*)['`]/g)].map((m) =>
    m[1].replace(/\$\{[^}]+\}/g, '{}'),
  );
  assert.ok(called.length >= 15, `only ${called.length} identity calls found in api.ts`);
  for (const path of called) assert.ok(routes.has(path), `${path} is not a server route`);
});

test('the password limits agree', () => {
  for (const name of ['MIN_PASSWORD_CHARS', 'MAX_PASSWORD_CHARS']) {
    const server = new RegExp(`${name}: usize = (\\d+);`).exec(rust.accounts)?.[1];
    assert.ok(server, `${name} not found in accounts.rs`);
    assert.ok(passwords.includes(`${name} = ${server};`), `${name} differs from the server's`);
  }
});

test('the client profile types have the fields the server sends and takes', () => {
  for (const name of ['ClientProfile', 'ClientConsent']) {
    assert.deepEqual(tsInterface(name), rustStruct(rust.clientProfiles, name), `${name} differs`);
  }
  const fields = /CLIENT_PROFILE_FIELDS = \[([^\]]+)\]/.exec(api)?.[1];
  assert.ok(fields, 'CLIENT_PROFILE_FIELDS not found in api.ts');
  const listed = [...fields.matchAll(/'(\w+)'/g)].map((m) => m[1]).sort();
  assert.deepEqual(listed, rustStruct(rust.clientProfiles, 'ClientProfileUpdate'));
  assert.deepEqual(
    rustStruct(rust.clientProfiles, 'ConsentRequest'),
    ['therapist_id'],
    'the consent request body changed',
  );
});

test('every client profile path the app calls is a route of the server', () => {
  const routes = new Set();
  const registered = rust.clientProfiles.matchAll(/\.route\(\s*"([^"]+)",\s*web::(\w+)\(\)/g);
  for (const m of registered) {
    routes.add(`${m[2].toUpperCase()} /api${m[1].replace(/\{\w+\}/g, '{}')}`);
  }
  const called = [
    ...api.matchAll(/request<[^>]*>\(\s*'(\w+)',\s*['`](\/api\/clients\/[^'`]*)['`]/g),
  ].map((m) => `${m[1]} ${m[2].replace(/\$\{[^}]+\}/g, '{}')}`);
  assert.equal(called.length, 6, `expected 6 client profile calls in api.ts, found ${called}`);
  for (const call of called) assert.ok(routes.has(call), `${call} is not a server route`);
});

test('the profile field limit agrees', () => {
  const server = /MAX_FIELD_CHARS: usize = (\d+);/.exec(rust.clientProfiles)?.[1];
  assert.ok(server, 'MAX_FIELD_CHARS not found in client_profiles.rs');
  assert.ok(api.includes(`MAX_PROFILE_FIELD_CHARS = ${server};`), 'the field limit differs');
});
