// Checks that the identity part of web/src/api.ts still matches the Rust HTTP handlers: the
// response types have the same fields as the structs the server serialises, every path the
// app calls is a route the server registers, and the password limits agree.
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
