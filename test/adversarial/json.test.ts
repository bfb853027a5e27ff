/**
 * Adversarial suite, JSON level (issue 8, acceptance 1): raw HTTP bodies an SDK client
 * would never send — duplicate keys, prototype keys, unusual numbers and strings, odd
 * JSON-RPC envelopes, batches, deep nesting — against a real `capframe serve` in front
 * of a recording upstream. Each row asserts the answer and that the upstream saw nothing,
 * or exactly the arguments the proxy checked (and audited).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { auditLine, expectAnswer, expectDenial, expectForwardedExactly, idOf, metaOf, resultOf, startEdge, textOf, type Edge, type Expect } from './harness.js';

let edge: Edge;
let session: string;
let sentinelSession: string;

beforeAll(async () => {
  edge = await startEdge({
    servers: { h: { timeout: 15 } },
    rules: ['- { tool: h.echo, ttl: 60, when: [{ arg: amount, op: "<=", value: 50 }] }'],
    args: ['--max-body', String(256 * 1024)],
  });
  [session, sentinelSession] = await Promise.all([edge.session('alice'), edge.session('alice')]);
}, 90_000);

afterAll(async () => edge?.stop());

const sentinel = (marker: number) => edge.rpcCall(sentinelSession, 'alice', 'h.echo', { amount: 1, sentinel: marker });

/** A tools/call request with `params` written as JSON text. */
const call = (params: string, id = '1') => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":${params}}`;
/** A tools/call of h.echo with `args` written as JSON text. */
const echo = (args: string) => call(`{"name":"h.echo","arguments":${args}}`);

interface Row {
  name: string;
  body: string | Buffer;
  headers?: Record<string, string | undefined>;
  expect: Expect;
}

function attack(row: Row): Promise<unknown> {
  const send = () => edge.send({ key: 'alice', session, body: row.body, ...(row.headers !== undefined && { headers: row.headers }) });
  return expectAnswer(edge, send, row.expect, sentinel, { server: 'h', tool: 'echo' });
}

/** What the SDK answers when a request's params fail its schema (it reports them as an internal error). */
const INVALID_PARAMS = -32603;

const nested = (depth: number, leaf = '1') => `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;

describe('duplicate keys: the value checked is the value forwarded (JSON.parse keeps the last)', () => {
  const rows: Row[] = [
    { name: 'two "name" keys, the granted tool last', body: call('{"name":"h.slow","name":"h.echo","arguments":{"amount":1}}'), expect: { forwarded: { amount: 1 } } },
    { name: 'two "name" keys, an ungranted tool last', body: call('{"name":"h.echo","name":"h.slow","arguments":{"amount":1}}'), expect: { denied: 'no_rule' } },
    { name: 'two "amount" keys, the bad value last', body: echo('{"amount":10,"amount":100}'), expect: { denied: 'constraint_failed' } },
    { name: 'two "amount" keys, the good value last', body: echo('{"amount":100,"amount":10}'), expect: { forwarded: { amount: 10 } } },
    { name: 'two "arguments" objects, the bad one last', body: call('{"name":"h.echo","arguments":{"amount":1},"arguments":{"amount":99}}'), expect: { denied: 'constraint_failed' } },
    { name: 'two "arguments" objects, the good one last', body: call('{"name":"h.echo","arguments":{"amount":99,"x":"first"},"arguments":{"amount":2}}'), expect: { forwarded: { amount: 2 } } },
    { name: 'duplicate keys nested inside the arguments', body: echo('{"amount":1,"o":{"k":"a","k":"b"},"o2":[{"z":1,"z":2}]}'), expect: { forwarded: { amount: 1, o: { k: 'b' }, o2: [{ z: 2 }] } } },
    { name: 'two "_meta" objects, a forged token last', body: call('{"name":"h.echo","arguments":{"amount":1},"_meta":{},"_meta":{"capframe/token":"cf1.forged"}}'), expect: { denied: 'malformed_token' } },
    { name: 'two "params" objects, an ungranted tool last', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1}},"params":{"name":"h.slow","arguments":{}}}', expect: { denied: 'no_rule' } },
    { name: 'two "method" keys, tools/list last: answered as a list', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"h.echo","arguments":{"amount":1}}}', expect: { status: 200 } },
    { name: 'two "jsonrpc" keys, "1.0" last', body: '{"jsonrpc":"2.0","jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1}}}', expect: { status: 400 } },
  ];
  for (const row of rows) it(row.name, () => attack(row));
});

describe('prototype keys never reach a check or an upstream as anything but data', () => {
  const rows: Row[] = [
    { name: '"__proto__" carrying the constrained argument', body: echo('{"__proto__":{"amount":1}}'), expect: { denied: 'constraint_failed' } },
    { name: '"__proto__" beside a valid argument', body: echo('{"amount":1,"__proto__":{"isAdmin":true}}'), expect: { denied: 'constraint_failed' } },
    { name: '"__proto__" one level down', body: echo('{"amount":1,"filter":{"__proto__":{"owner":"*"}}}'), expect: { denied: 'constraint_failed' } },
    { name: '"__proto__" inside a list', body: echo('{"amount":1,"items":[{"__proto__":{"price":0}}]}'), expect: { denied: 'constraint_failed' } },
    { name: '"__proto__" spelled with an escape', body: echo('{"amount":1,"\\u005f_proto__":{"x":1}}'), expect: { denied: 'constraint_failed' } },
    { name: '"constructor"/"prototype" keys are plain data, forwarded as checked', body: echo('{"amount":1,"constructor":{"prototype":{"polluted":true}}}'), expect: { forwarded: { amount: 1, constructor: { prototype: { polluted: true } } } } },
    { name: '"__proto__" holding params.name: no tool name at all', body: call('{"__proto__":{"name":"h.echo"},"arguments":{"amount":1}}'), expect: { status: 200, rpc: INVALID_PARAMS } },
    { name: '"__proto__" holding the _meta token: not a token', body: call('{"name":"h.echo","arguments":{"amount":1},"_meta":{"__proto__":{"capframe/token":"cf1.forged"}}}'), expect: { forwarded: { amount: 1 } } },
    { name: 'after all that, Object.prototype is clean: a missing argument is still missing', body: echo('{}'), expect: { denied: 'constraint_failed' } },
  ];
  for (const row of rows) it(row.name, () => attack(row));

  it('in a batch (the SDK path), a "__proto__" key is dropped before the check: the upstream gets exactly the checked rest', async () => {
    const body = `[${echo('{"__proto__":{"amount":99},"amount":3}')}]`;
    const answer = await expectForwardedExactly(edge, () => edge.send({ key: 'alice', session, body }), { server: 'h', tool: 'echo', args: { amount: 3 } });
    expect(answer.status).toBe(200);
    expect(JSON.parse(textOf(resultOf(answer)))).toEqual({ amount: 3 });
  });
});

describe('numbers: never forwarded other than as checked', () => {
  const rows: Row[] = [
    { name: '1e400 (Infinity after parsing)', body: echo('{"amount":1e400}'), expect: { denied: 'constraint_failed' } },
    { name: '-1e400 (-Infinity: would pass "<= 50")', body: echo('{"amount":-1e400}'), expect: { denied: 'constraint_failed' } },
    { name: 'a 1000-digit integer', body: echo(`{"amount":1,"n":${'9'.repeat(1000)}}`), expect: { denied: 'constraint_failed' } },
    { name: 'a huge exponent', body: echo('{"amount":1,"n":1e99999999999}'), expect: { denied: 'constraint_failed' } },
    { name: '9007199254740993 (rounds to 2^53 when parsed)', body: echo('{"amount":1,"n":9007199254740993}'), expect: { denied: 'constraint_failed' } },
    { name: '-9007199254740993', body: echo('{"amount":1,"n":-9007199254740993}'), expect: { denied: 'constraint_failed' } },
    { name: '1e308: finite but far beyond exact integers', body: echo('{"amount":1,"n":1e308}'), expect: { denied: 'constraint_failed' } },
    { name: '2^53-1 is exact and forwarded', body: echo('{"amount":1,"n":9007199254740991}'), expect: { forwarded: { amount: 1, n: 9007199254740991 } } },
    { name: '-0 is checked as 0 and forwarded as 0', body: echo('{"amount":-0}'), expect: { forwarded: { amount: 0 } } },
    { name: '1E2 is 100 however it is spelled', body: echo('{"amount":1E2}'), expect: { denied: 'constraint_failed' } },
    { name: '0.1e1 is 1', body: echo('{"amount":0.1e1}'), expect: { forwarded: { amount: 1 } } },
    { name: '50.0000000000000001 parses as 50, and 50 is what the tool gets', body: echo('{"amount":50.0000000000000001}'), expect: { forwarded: { amount: 50 } } },
    { name: '50.000000000001 is over 50', body: echo('{"amount":50.000000000001}'), expect: { denied: 'constraint_failed' } },
    { name: '1e-400 underflows to 0, and 0 is what the tool gets', body: echo('{"amount":1e-400}'), expect: { forwarded: { amount: 0 } } },
    { name: 'NaN is not JSON', body: echo('{"amount":NaN}'), expect: { status: 400, rpc: -32700 } },
    { name: 'Infinity is not JSON', body: echo('{"amount":Infinity}'), expect: { status: 400, rpc: -32700 } },
    { name: 'a leading zero is not JSON', body: echo('{"amount":010}'), expect: { status: 400, rpc: -32700 } },
    { name: 'a plus sign is not JSON', body: echo('{"amount":+1}'), expect: { status: 400, rpc: -32700 } },
    { name: 'hex is not JSON', body: echo('{"amount":0x10}'), expect: { status: 400, rpc: -32700 } },
    { name: '"50" (a string) is not the number 50', body: echo('{"amount":"50"}'), expect: { denied: 'constraint_failed' } },
  ];
  for (const row of rows) it(row.name, () => attack(row));
});

describe('strings and bytes: what is checked is what is forwarded', () => {
  const utf8 = (prefix: string, bytes: number[], suffix: string) => Buffer.concat([Buffer.from(prefix), Buffer.from(bytes), Buffer.from(suffix)]);
  const rows: Row[] = [
    { name: 'a lone high surrogate in a value', body: echo('{"amount":1,"s":"a\\ud800b"}'), expect: { denied: 'constraint_failed' } },
    { name: 'a lone low surrogate in a value', body: echo('{"amount":1,"s":"\\udc00"}'), expect: { denied: 'constraint_failed' } },
    { name: 'a lone surrogate in a key', body: echo('{"amount":1,"\\ud800":1}'), expect: { denied: 'constraint_failed' } },
    { name: 'a lone surrogate deep in a list', body: echo('{"amount":1,"l":[[["\\udbff"]]]}'), expect: { denied: 'constraint_failed' } },
    { name: 'a paired surrogate (an emoji) is fine', body: echo('{"amount":1,"s":"\\ud83d\\ude00"}'), expect: { forwarded: { amount: 1, s: '\u{1F600}' } } },
    { name: 'an escaped NUL is data, forwarded exactly', body: echo('{"amount":1,"s":"a\\u0000b"}'), expect: { forwarded: { amount: 1, s: 'a\u0000b' } } },
    { name: 'overlong UTF-8 for "." becomes U+FFFD before the check, and so for the tool', body: utf8('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1,"p":"', [0xc0, 0xae, 0xc0, 0xae], '"}}}'), expect: { forwarded: { amount: 1, p: '\ufffd\ufffd\ufffd\ufffd' } } },
    { name: 'invalid UTF-8 bytes become U+FFFD before the check', body: utf8('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1,"p":"', [0xff, 0xfe], '"}}}'), expect: { forwarded: { amount: 1, p: '\ufffd\ufffd' } } },
    { name: 'raw U+2028 and U+2029 in a string', body: echo('{"amount":1,"s":"a\u2028b\u2029c"}'), expect: { forwarded: { amount: 1, s: 'a\u2028b\u2029c' } } },
    { name: 'a byte-order mark before the body is not JSON', body: `\ufeff${echo('{"amount":1}')}`, expect: { status: 400, rpc: -32700 } },
    { name: 'an RTL override in the tool name', body: call('{"name":"h.ech\\u202eo","arguments":{"amount":1}}'), expect: { denied: 'no_rule' } },
    { name: 'a NUL after the tool name', body: call('{"name":"h.echo\\u0000","arguments":{"amount":1}}'), expect: { denied: 'no_rule' } },
    { name: 'a trailing space after the tool name', body: call('{"name":"h.echo ","arguments":{"amount":1}}'), expect: { denied: 'no_rule' } },
    { name: 'a zero-width space inside the tool name', body: call('{"name":"h.ec\\u200bho","arguments":{"amount":1}}'), expect: { denied: 'no_rule' } },
    { name: 'a fullwidth letter in the tool name', body: call('{"name":"h.\\uff45cho","arguments":{"amount":1}}'), expect: { denied: 'no_rule' } },
    { name: 'the tool name as a number', body: call('{"name":123,"arguments":{"amount":1}}'), expect: { status: 200, rpc: INVALID_PARAMS } },
    { name: 'an empty tool name', body: call('{"name":"","arguments":{"amount":1}}'), expect: { denied: 'no_rule' } },
  ];
  for (const row of rows) it(row.name, () => attack(row));
});

describe('JSON-RPC envelopes: anything unusual is refused, never forwarded', () => {
  const rows: Row[] = [
    { name: 'jsonrpc missing', body: '{"id":1,"method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1}}}', expect: { status: 400 } },
    { name: 'jsonrpc "1.0"', body: '{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1}}}', expect: { status: 400 } },
    { name: 'jsonrpc as the number 2', body: '{"jsonrpc":2,"id":1,"method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1}}}', expect: { status: 400 } },
    { name: 'id an object', body: call('{"name":"h.echo","arguments":{"amount":1}}', '{"a":1}'), expect: { status: 400 } },
    { name: 'id a list', body: call('{"name":"h.echo","arguments":{"amount":1}}', '[1]'), expect: { status: 400 } },
    { name: 'id null', body: call('{"name":"h.echo","arguments":{"amount":1}}', 'null'), expect: { status: 400 } },
    { name: 'id true', body: call('{"name":"h.echo","arguments":{"amount":1}}', 'true'), expect: { status: 400 } },
    { name: 'id a fraction (the SDK path accepts integers only)', body: call('{"name":"h.echo","arguments":{"amount":1}}', '1.5'), expect: { status: 400 } },
    { name: 'id 1e400', body: call('{"name":"h.echo","arguments":{"amount":1}}', '1e400'), expect: { status: 400 } },
    { name: 'id beyond 2^53', body: call('{"name":"h.echo","arguments":{"amount":1}}', '9007199254740993'), expect: { status: 400 } },
    { name: 'a tools/call notification (no id) is never run', body: '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1}}}', expect: { status: 202 } },
    { name: 'method "Tools/Call"', body: '{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"h.echo","arguments":{"amount":1}}}', expect: { status: 200, rpc: -32601 } },
    { name: 'method "tools/call " with a trailing space', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call ","params":{"name":"h.echo","arguments":{"amount":1}}}', expect: { status: 200, rpc: -32601 } },
    { name: 'params as a list', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["h.echo",{"amount":1}]}', expect: { status: 400 } },
    { name: 'params missing', body: '{"jsonrpc":"2.0","id":1,"method":"tools/call"}', expect: { status: 200, rpc: INVALID_PARAMS } },
    { name: 'arguments a list', body: call('{"name":"h.echo","arguments":[{"amount":1}]}'), expect: { denied: 'constraint_failed' } },
    { name: 'arguments a string', body: call('{"name":"h.echo","arguments":"{\\"amount\\":1}"}'), expect: { denied: 'constraint_failed' } },
    { name: 'arguments null is no arguments: the constraint has nothing to hold on', body: call('{"name":"h.echo","arguments":null}'), expect: { denied: 'constraint_failed' } },
    { name: '_meta a list (the SDK path refuses it; so does the hot path)', body: call('{"name":"h.echo","arguments":{"amount":1},"_meta":["cf1.forged"]}'), expect: { status: 400, rpc: -32700 } },
    { name: '_meta a string', body: call('{"name":"h.echo","arguments":{"amount":1},"_meta":"cf1.forged"}'), expect: { status: 400, rpc: -32700 } },
    { name: '_meta null', body: call('{"name":"h.echo","arguments":{"amount":1},"_meta":null}'), expect: { status: 400, rpc: -32700 } },
    { name: 'the body a JSON string', body: '"tools/call"', expect: { status: 400 } },
    { name: 'the body a number', body: '1', expect: { status: 400 } },
    { name: 'the body null', body: 'null', expect: { status: 400 } },
    { name: 'trailing garbage after the JSON', body: `${echo('{"amount":1}')}x`, expect: { status: 400, rpc: -32700 } },
    { name: 'two JSON documents back to back', body: `${echo('{"amount":1}')}${echo('{"amount":2}')}`, expect: { status: 400, rpc: -32700 } },
    { name: 'an empty body', body: '', expect: { status: 400, rpc: -32700 } },
  ];
  for (const row of rows) it(row.name, () => attack(row));
});

describe('batches (the SDK path): each call decided on its own, nothing extra forwarded', () => {
  const rows: Row[] = [
    { name: 'an empty batch: nothing to answer', body: '[]', expect: { status: 202 } },
    { name: '101 calls (over the SDK limit of 100)', body: `[${Array.from({ length: 101 }, (_, i) => echo(`{"amount":1,"i":${i}}`).replace('"id":1', `"id":${i + 1}`)).join(',')}]`, expect: { status: 400 } },
    { name: 'a batch nested in a batch', body: `[[${echo('{"amount":1}')}]]`, expect: { status: 400 } },
    { name: 'a valid call beside an invalid message: the whole batch is refused', body: `[${echo('{"amount":1}')},{"jsonrpc":"2.0","id":2}]`, expect: { status: 400 } },
    { name: 'initialize inside a batch on an open session', body: `[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}},${echo('{"amount":1}').replace('"id":1', '"id":2')}]`, expect: { status: 400 } },
    { name: 'notifications only, tools/call among them', body: '[{"jsonrpc":"2.0","method":"tools/call","params":{"name":"h.echo","arguments":{"amount":1}}},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}]', expect: { status: 202 } },
  ];
  for (const row of rows) it(row.name, () => attack(row));

  it('a batch mixing an allowed call, a denied one and an ungranted tool: only the allowed one is forwarded, each gets its own answer', async () => {
    const body = `[${echo('{"amount":5,"batch":"ok"}').replace('"id":1', '"id":11')},${echo('{"amount":500}').replace('"id":1', '"id":12')},${call('{"name":"h.slow","arguments":{}}', '13')}]`;
    const answer = await expectForwardedExactly(edge, () => edge.send({ key: 'alice', session, body }), { server: 'h', tool: 'echo', args: { amount: 5, batch: 'ok' } });
    expect(answer.status).toBe(200);
    const byId = new Map(answer.messages.map((m) => [idOf(m), (m as { result: CallToolResult }).result]));
    expect(JSON.parse(textOf(byId.get(11)))).toEqual({ amount: 5, batch: 'ok' });
    expectDenial(byId.get(12), 'constraint_failed');
    expectDenial(byId.get(13), 'no_rule');
  });

  it('two calls with the same id in one batch: neither answer is lost or doubled, and nothing beyond the two is forwarded', async () => {
    const body = `[${echo('{"amount":7,"twin":1}')},${echo('{"amount":8,"twin":2}')}]`;
    const before = edge.calls().length;
    const answer = await edge.send({ key: 'alice', session, body });
    expect(answer.status).toBe(200);
    const seen = edge.calls().slice(before).map((c) => c.args);
    // JSON-RPC forbids reusing an id in flight; whatever the SDK makes of it, the upstream sees at most the two checked calls.
    expect(seen.length).toBeLessThanOrEqual(2);
    for (const args of seen) expect([{ amount: 7, twin: 1 }, { amount: 8, twin: 2 }]).toContainEqual(args);
    expect(answer.messages.every((m) => idOf(m) === 1)).toBe(true);
  });
});

describe('deep nesting: refused with a reason, never a crash', () => {
  const rows: Row[] = [
    { name: 'arguments nested 10,000 levels', body: echo(`{"amount":1,"x":${nested(10_000)}}`), expect: { denied: 'constraint_failed' } },
    { name: 'arguments nested 65 levels (one past the limit)', body: echo(`{"amount":1,"x":${nested(64)}}`), expect: { denied: 'constraint_failed' } },
    { name: 'lists nested 40,000 levels', body: echo(`{"amount":1,"x":${'['.repeat(40_000)}${']'.repeat(40_000)}}`), expect: { denied: 'constraint_failed' } },
    { name: '_meta nested 10,000 levels is read only for the token, never forwarded', body: call(`{"name":"h.echo","arguments":{"amount":1},"_meta":{"x":${nested(10_000)}}}`), expect: { forwarded: { amount: 1 } } },
    { name: 'an unknown params key nested 10,000 levels is ignored', body: call(`{"name":"h.echo","arguments":{"amount":1},"extra":${nested(10_000)}}`), expect: { forwarded: { amount: 1 } } },
    { name: 'the whole body nested 100,000 levels', body: `${'['.repeat(100_000)}${']'.repeat(100_000)}`, expect: { status: 400 } },
    { name: 'an invalid tool name with arguments nested 40,000 levels', body: call(`{"name":"h.ec ho","arguments":{"x":${nested(40_000)}}}`), expect: { denied: 'no_rule' } },
  ];
  for (const row of rows) it(row.name, () => attack(row));

  it('arguments nested 63 levels are within the limit and forwarded exactly', () => attack({ name: '63 levels', body: echo(`{"amount":1,"x":${nested(62)}}`), expect: { forwarded: { amount: 1, x: JSON.parse(nested(62)) as unknown } } }));

  it('the refusal names the path and the limit, and every refused call is audited with an argument fingerprint', async () => {
    const answer = await edge.send({ key: 'alice', session, body: echo(`{"amount":1,"x":${nested(10_000)}}`) });
    expect(textOf(resultOf(answer))).toMatch(/^DENIED constraint_failed: arguments\.x\.a\.a.*nested deeper than 64 levels/);
    const reason = metaOf(resultOf(answer)).decision!.reason;
    const line = await auditLine(edge, (r) => r.reason === reason, 'the deny line of the deep call');
    expect(line).toMatchObject({ decision: 'deny', code: 'constraint_failed', tool: 'h.echo', args_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const misnamed = await edge.send({ key: 'alice', session, body: call(`{"name":"h.ec ho","arguments":{"x":${nested(40_000)}}}`) });
    expectDenial(resultOf(misnamed), 'no_rule');
    const named = await auditLine(edge, (r) => r.tool === 'h.ec ho', 'the deny line of the misnamed call');
    expect(named).toMatchObject({ decision: 'deny', code: 'no_rule', args_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });
});
