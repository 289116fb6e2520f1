// Checks that web/src/protocol.ts mirrors the Rust wire types in actors/src/protocol.rs and
// actors/src/domain.rs: every frame, event and error code, with the same field names.
// Run with `npm test` (node's built-in test runner; no browser or server needed).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const rustProtocol = readFileSync(join(repo, 'actors/src/protocol.rs'), 'utf8');
const rustDomain = readFileSync(join(repo, 'actors/src/domain.rs'), 'utf8');
const ts = readFileSync(join(repo, 'web/src/protocol.ts'), 'utf8');

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

/** Field names in a Rust struct or struct-variant body, ignoring attributes and comments. */
function rustFields(body) {
  const clean = body.replace(/\/\/.*$/gm, '').replace(/#\[[^\]]*\]/g, '');
  return [...clean.matchAll(/(?:pub\s+)?(\w+)\s*:(?!:)/g)].map((m) => m[1]).sort();
}

/** Field names in a TypeScript interface body. */
function tsFields(body) {
  const clean = body.replace(/\/\*\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  return [...clean.matchAll(/^\s*(\w+)\??\s*:/gm)].map((m) => m[1]).sort();
}

/** Rust enum `name`: each renamed variant's wire name and field names. */
function rustVariants(source, name) {
  const start = source.indexOf(`pub enum ${name} {`);
  assert.ok(start >= 0, `enum ${name} not found in Rust`);
  const body = braced(source, start);
  const variants = new Map();
  const re = /#\[serde\(rename = "([^"]+)"\)\]\s*(?:#\[[^\]]*\]\s*|\/\/\/.*\n\s*)*(\w+)\s*(\{)?/g;
  for (const m of body.matchAll(re)) {
    const fields = m[3] ? rustFields(braced(body, m.index + m[0].length - 1)) : [];
    variants.set(m[1], fields);
  }
  return variants;
}

/** TypeScript interfaces tagged `<tag>: '<name>'`, by name, with their field names less the tag. */
function tsTagged(tag) {
  const found = new Map();
  for (const m of ts.matchAll(/export interface (\w+) \{/g)) {
    const body = braced(ts, m.index);
    const tagged = new RegExp(`^\\s*${tag}: '([^']+)';`, 'm').exec(body);
    if (tagged)
      found.set(
        tagged[1],
        tsFields(body).filter((f) => f !== tag),
      );
  }
  return found;
}

function rustStruct(source, name) {
  const start = source.indexOf(`pub struct ${name} {`);
  assert.ok(start >= 0, `struct ${name} not found in Rust`);
  return rustFields(braced(source, start));
}

function tsInterface(name) {
  const start = ts.indexOf(`export interface ${name} {`);
  assert.ok(start >= 0, `interface ${name} not found in protocol.ts`);
  return tsFields(braced(ts, start));
}

for (const [rustEnum, tag] of [
  ['ClientFrame', 'type'],
  ['ServerFrame', 'type'],
  ['Event', 'kind'],
]) {
  test(`every ${rustEnum} variant has a TypeScript type with the same fields`, () => {
    const rust = rustVariants(rustProtocol, rustEnum);
    assert.ok(rust.size > 0, `no variants parsed from ${rustEnum}`);
    const mirrored = tsTagged(tag);
    for (const [wireName, fields] of rust) {
      assert.ok(
        mirrored.has(wireName),
        `protocol.ts has no interface tagged ${tag}: '${wireName}'`,
      );
      assert.deepEqual(mirrored.get(wireName), fields, `fields of '${wireName}' differ`);
    }
  });
}

test('the shared value types have the same fields', () => {
  for (const name of ['ChatMessage', 'RoomState']) {
    assert.deepEqual(tsInterface(name), rustStruct(rustProtocol, name), `${name} differs`);
  }
  for (const name of ['Slot', 'Booking', 'AvailabilityRule', 'WeeklyAvailability']) {
    assert.deepEqual(tsInterface(name), rustStruct(rustDomain, name), `${name} differs`);
  }
});

test('every error code is listed', () => {
  const start = rustProtocol.indexOf('pub enum ErrorCode {');
  const variants = [
    ...braced(rustProtocol, start)
      .replace(/\/\/.*$/gm, '')
      .matchAll(/(\w+),/g),
  ].map((m) =>
    m[1].replace(/[A-Z]/g, (c, i) => (i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`)),
  );
  assert.ok(variants.length > 0);
  const tsCodes = /export type ErrorCode =([^;]+);/.exec(ts)[1];
  for (const code of variants)
    assert.ok(tsCodes.includes(`'${code}'`), `ErrorCode '${code}' missing`);
});

test('the protocol version and limits agree', () => {
  const version = /PROTOCOL_VERSION: u32 = (\d+);/.exec(rustProtocol)[1];
  assert.ok(ts.includes(`PROTOCOL_VERSION = ${version};`), 'PROTOCOL_VERSION differs');
  const maxChars = /MAX_MESSAGE_CHARS: usize = (\d+);/.exec(rustProtocol)[1];
  assert.ok(ts.includes(`MAX_MESSAGE_CHARS = ${maxChars};`), 'MAX_MESSAGE_CHARS differs');
});
