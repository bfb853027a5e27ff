/**
 * Adversarial suite, HTTP level (issue 8, acceptance 1): what a hostile client can do with
 * headers, methods, paths, body framing and sessions — credentials sent twice, tokens in
 * both places, foreign Host and Origin names (DNS rebinding), content types, oversized and
 * slow bodies, other agents' sessions — against a real `capframe serve` in front of a
 * recording upstream. Each row asserts the answer and what the upstream saw.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { expectAnswer, expectDenial, KEYS, metaOf, poll, PROTOCOL, sendTcp, startEdge, type Edge, type Expect, type Send } from './harness.js';

const MAX_BODY = 64 * 1024;
let edge: Edge;
let alice: string;
let bob: string;
let carol: string;
let sentinelSession: string;
let carolToken: string;
let carolToken2: string;

beforeAll(async () => {
  edge = await startEdge({
    servers: { h: { timeout: 15 } },
    rules: ['- { tool: h.echo, ttl: 60, when: [{ arg: amount, op: "<=", value: 50 }] }'],
    args: ['--max-body', String(MAX_BODY), '--max-sessions-per-agent', '4'],
  });
  [alice, bob, carol, sentinelSession] = await Promise.all([edge.session('alice'), edge.session('bob'), edge.session('carol'), edge.session('alice')]);
  const issue = async () => {
    const r = await edge.rpcCall(carol, 'carol', 'capframe.request_token', { tool: 'h.echo' });
    return (r.result!.structuredContent as { token: string }).token;
  };
  [carolToken, carolToken2] = [await issue(), await issue()];
}, 90_000);

afterAll(async () => edge?.stop());

const sentinel = (marker: number) => edge.rpcCall(sentinelSession, 'alice', 'h.echo', { amount: 1, sentinel: marker });
const callBody = (args: Record<string, unknown>, meta?: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'h.echo', arguments: args, ...(meta !== undefined && { _meta: meta }) },
});

interface Row {
  name: string;
  /** The request; by default alice's lone tools/call of h.echo {amount: 1, row: name} on her session. */
  send: Partial<Send>;
  expect: Expect;
}

let rowNumber = 0;
function attack(row: Row): Promise<unknown> {
  const args = { amount: 1, row: ++rowNumber };
  const r: Send = { key: 'alice', session: alice, body: callBody(args), ...row.send };
  const want: Expect = 'forwarded' in row.expect && Object.keys(row.expect.forwarded).length === 0 ? { ...row.expect, forwarded: args } : row.expect;
  return expectAnswer(edge, () => edge.send(r), want, sentinel, { server: 'h', tool: 'echo' });
}
/** The row's own arguments, forwarded exactly. */
const FORWARDED: Expect = { forwarded: {} };

describe('DNS rebinding: a foreign Host or Origin is refused before anything else (403)', () => {
  const hosts = [
    '127.0.0.1.evil.com',
    'localhost.',
    'localhost.evil.com',
    'evil.com',
    'evil.com:80',
    '[::ffff:127.0.0.1]',
    '127.1',
    '2130706433',
    '0.0.0.0',
    '[::]',
    'localhost:80@evil.com',
    'xn--localhost-.com',
  ];
  for (const host of hosts) it(`Host: ${host}`, () => attack({ name: host, send: { headers: { host } }, expect: { status: 403 } }));

  const origins = [
    'null',
    'http://evil.com',
    'http://localhost.evil.com',
    'http://127.0.0.1.evil.com',
    'http://user@localhost',
    'http://localhost@evil.com',
    'http://localhost:8080/path',
    'file://',
    'http://[::ffff:127.0.0.1]',
    'chrome-extension://abcdefghijklmnop',
    'https://localhost .evil.com',
  ];
  for (const origin of origins) it(`Origin: ${origin}`, () => attack({ name: origin, send: { headers: { origin } }, expect: { status: 403 } }));

  it('even without a key or a session: the guard answers first', () => attack({ name: 'guard first', send: { key: undefined, session: undefined, headers: { origin: 'http://evil.com' } }, expect: { status: 403 } }));
  it('a loopback Host in upper case, with a port, is a local client', () => attack({ name: 'LOCALHOST', send: { headers: { host: 'LOCALHOST:1' } }, expect: FORWARDED }));
  it('a loopback Origin is a local page', () => attack({ name: 'loopback origin', send: { headers: { origin: 'http://127.0.0.1:5173' } }, expect: FORWARDED }));
  it('a request with no Host header at all (HTTP/1.0) is refused', async () => {
    const body = JSON.stringify(callBody({ amount: 1 }));
    const { status } = await sendTcp(
      edge.base,
      `POST /mcp HTTP/1.0\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nAuthorization: Bearer ${KEYS.alice}\r\nMcp-Session-Id: ${alice}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    expect(status).toBe(403);
  });
});

describe('credentials: one agent key, one token, no guessing which', () => {
  const rows: Row[] = [
    { name: 'two Authorization headers, the valid key first', send: { key: undefined, headers: { authorization: [`Bearer ${KEYS.alice}`, 'Bearer cfk_forged'] } }, expect: { status: 401, rpc: -32001 } },
    { name: 'two Authorization headers, the valid key last', send: { key: undefined, headers: { authorization: ['Bearer cfk_forged', `Bearer ${KEYS.alice}`] } }, expect: { status: 401, rpc: -32001 } },
    { name: 'the same Authorization header twice', send: { key: undefined, headers: { authorization: [`Bearer ${KEYS.alice}`, `Bearer ${KEYS.alice}`] } }, expect: { status: 401, rpc: -32001 } },
    { name: 'bob\'s key and alice\'s key, alice\'s session', send: { key: undefined, headers: { authorization: [`Bearer ${KEYS.bob}`, `Bearer ${KEYS.alice}`] } }, expect: { status: 401, rpc: -32001 } },
    { name: '"bearer" in lower case is the same scheme (RFC 7235)', send: { key: undefined, headers: { authorization: `bearer ${KEYS.alice}` } }, expect: FORWARDED },
    { name: 'extra spaces after "Bearer"', send: { key: undefined, headers: { authorization: `Bearer    ${KEYS.alice}` } }, expect: FORWARDED },
    { name: 'a second word after the key', send: { key: undefined, headers: { authorization: `Bearer ${KEYS.alice} ${KEYS.bob}` } }, expect: { status: 401 } },
    { name: 'two keys joined by a comma', send: { key: undefined, headers: { authorization: `Bearer ${KEYS.alice},${KEYS.bob}` } }, expect: { status: 401 } },
    { name: '"Bearer" and no key', send: { key: undefined, headers: { authorization: 'Bearer' } }, expect: { status: 401 } },
    { name: 'Basic credentials', send: { key: undefined, headers: { authorization: `Basic ${Buffer.from(`alice:${KEYS.alice}`).toString('base64')}` } }, expect: { status: 401 } },
    { name: 'the key in another letter case', send: { key: KEYS.alice.toUpperCase() }, expect: { status: 401 } },
    { name: 'the key with one character dropped', send: { key: KEYS.alice.slice(0, -1) }, expect: { status: 401 } },
    { name: 'the key sent as Capframe-Token instead', send: { key: undefined, headers: { 'capframe-token': KEYS.alice } }, expect: { status: 401 } },
    { name: 'a 20 KiB Authorization header', send: { key: `cfk_${'a'.repeat(20 * 1024)}` }, expect: { status: 431 } },
  ];
  for (const row of rows) it(row.name, () => attack(row));

  it('the 401 for two Authorization headers says so', async () => {
    const answer = await edge.send({ session: alice, body: callBody({ amount: 1 }), headers: { authorization: [`Bearer ${KEYS.alice}`, 'Bearer x'] } });
    expect(answer.headers['www-authenticate']).toMatch(/^Bearer realm="capframe"/);
    expect((answer.messages[0] as { error: { message: string } }).error.message).toMatch(/^agent_unknown: more than one Authorization header was sent/);
  });

  // Carol has no auto_mint: the token she presents is what authorizes her call.
  const carolCall = (send: Partial<Send>): Partial<Send> => ({ key: 'carol', session: carol, ...send });
  const tokenRows: { name: string; send: () => Partial<Send>; expect: Expect }[] = [
    { name: 'Capframe-Token header alone', send: () => carolCall({ headers: { 'capframe-token': carolToken } }), expect: FORWARDED },
    { name: 'the same token in the header and in _meta', send: () => carolCall({ headers: { 'capframe-token': carolToken }, body: callBody({ amount: 1, row: rowNumber + 1 }, { 'capframe/token': carolToken }) }), expect: FORWARDED },
    { name: 'two different valid tokens, header and _meta', send: () => carolCall({ headers: { 'capframe-token': carolToken }, body: callBody({ amount: 1 }, { 'capframe/token': carolToken2 }) }), expect: { denied: 'malformed_token' } },
    { name: 'a forged header token beside a valid _meta token', send: () => carolCall({ headers: { 'capframe-token': 'cf1.forged' }, body: callBody({ amount: 1 }, { 'capframe/token': carolToken }) }), expect: { denied: 'malformed_token' } },
    { name: 'Capframe-Token sent twice (joined by the server into one value)', send: () => carolCall({ headers: { 'capframe-token': [carolToken, carolToken] } }), expect: { denied: 'malformed_token' } },
    { name: 'an empty Capframe-Token header is no token', send: () => carolCall({ headers: { 'capframe-token': '' } }), expect: { denied: 'missing_token' } },
    { name: 'an empty _meta token falls back to the header token', send: () => carolCall({ headers: { 'capframe-token': carolToken }, body: callBody({ amount: 1, row: rowNumber + 1 }, { 'capframe/token': '' }) }), expect: FORWARDED },
    { name: '_meta token a number (with a valid header token beside it)', send: () => carolCall({ headers: { 'capframe-token': carolToken }, body: callBody({ amount: 1 }, { 'capframe/token': 12345 }) }), expect: { denied: 'malformed_token' } },
    { name: '_meta token a list of tokens', send: () => carolCall({ body: callBody({ amount: 1 }, { 'capframe/token': [carolToken] }) }), expect: { denied: 'malformed_token' } },
    { name: '_meta token null', send: () => carolCall({ body: callBody({ amount: 1 }, { 'capframe/token': null }) }), expect: { denied: 'malformed_token' } },
    { name: '_meta token an object', send: () => carolCall({ body: callBody({ amount: 1 }, { 'capframe/token': { token: carolToken } }) }), expect: { denied: 'malformed_token' } },
    { name: 'a _meta token under another letter case is not read', send: () => carolCall({ body: callBody({ amount: 1 }, { 'Capframe/Token': carolToken }) }), expect: { denied: 'missing_token' } },
    { name: 'a token inside the arguments is not a token', send: () => carolCall({ body: callBody({ amount: 1, 'capframe/token': carolToken }) }), expect: { denied: 'missing_token' } },
    { name: 'carol\'s token presented on alice\'s behalf', send: () => ({ headers: { 'capframe-token': carolToken } }), expect: { denied: 'agent_not_allowed' } },
  ];
  for (const row of tokenRows) {
    it(`token: ${row.name}`, () => {
      const send = row.send();
      // FORWARDED rows must carry the row's own arguments: build them the way attack() does.
      return attack({ name: row.name, send, expect: row.expect });
    });
  }

  it('auto_mint does not step in for a malformed _meta token: alice gets malformed_token, not a fresh token', () =>
    attack({ name: 'alice non-string token', send: { body: callBody({ amount: 1 }, { 'capframe/token': 7 }) }, expect: { denied: 'malformed_token' } }));
});

describe('content types, Accept, methods and paths', () => {
  const rows: Row[] = [
    { name: 'Content-Type text/plain (a browser sends it without asking)', send: { headers: { 'content-type': 'text/plain' } }, expect: { status: 415 } },
    { name: 'Content-Type text/plain with application/json as a parameter', send: { headers: { 'content-type': 'text/plain; x=application/json' } }, expect: { status: 415 } },
    { name: 'Content-Type application/jsonp', send: { headers: { 'content-type': 'application/jsonp' } }, expect: { status: 415 } },
    { name: 'Content-Type application/x-www-form-urlencoded', send: { headers: { 'content-type': 'application/x-www-form-urlencoded' } }, expect: { status: 415 } },
    { name: 'Content-Type multipart/form-data', send: { headers: { 'content-type': 'multipart/form-data; boundary=x' } }, expect: { status: 415 } },
    { name: 'no Content-Type', send: { headers: { 'content-type': undefined } }, expect: { status: 415 } },
    { name: 'no Content-Type on an initialize (no session yet)', send: { session: undefined, headers: { 'content-type': undefined }, body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'x', version: '1' } } } }, expect: { status: 415 } },
    { name: 'Content-Type application/json; charset=utf-8', send: { headers: { 'content-type': 'application/json; charset=utf-8' } }, expect: FORWARDED },
    { name: 'Content-Type APPLICATION/JSON', send: { headers: { 'content-type': 'APPLICATION/JSON' } }, expect: FORWARDED },
    { name: 'Content-Type claims UTF-16; the bytes are read as UTF-8 either way', send: { headers: { 'content-type': 'application/json; charset=utf-16' } }, expect: FORWARDED },
    { name: 'Accept: application/json only (the hot path answers plain JSON)', send: { headers: { accept: 'application/json' } }, expect: FORWARDED },
    { name: 'Accept: text/event-stream only', send: { headers: { accept: 'text/event-stream' } }, expect: { status: 406 } },
    { name: 'Accept: */*', send: { headers: { accept: '*/*' } }, expect: { status: 406 } },
    { name: 'no Accept', send: { headers: { accept: undefined } }, expect: { status: 406 } },
    { name: 'an unknown MCP-Protocol-Version', send: { headers: { 'mcp-protocol-version': '1999-01-01' } }, expect: { status: 400 } },
    { name: 'PUT', send: { method: 'PUT' }, expect: { status: 405 } },
    { name: 'PATCH', send: { method: 'PATCH' }, expect: { status: 405 } },
    { name: 'OPTIONS (no CORS preflight is answered)', send: { method: 'OPTIONS' }, expect: { status: 405 } },
    { name: 'GET asking for JSON instead of the SSE stream', send: { method: 'GET', headers: { accept: 'application/json' } }, expect: { status: 406 } },
    { name: 'POST /mcp/', send: { path: '/mcp/' }, expect: { status: 404 } },
    { name: 'POST /MCP', send: { path: '/MCP' }, expect: { status: 404 } },
    { name: 'POST //mcp', send: { path: '//mcp' }, expect: { status: 404 } },
    { name: 'POST /%6Dcp', send: { path: '/%6Dcp' }, expect: { status: 404 } },
    { name: 'POST /mcp/../mcp', send: { path: '/mcp/../mcp' }, expect: { status: 404 } },
    { name: 'POST /mcp?x=1 is /mcp', send: { path: '/mcp?x=1' }, expect: FORWARDED },
    { name: 'POST / is the same endpoint', send: { path: '/' }, expect: FORWARDED },
    { name: 'POST /v1/tokens with a tools/call body', send: { path: '/v1/tokens' }, expect: { status: 403 } },
  ];
  for (const row of rows) it(row.name, () => attack(row));
});

describe('sessions: only the agent that opened one may use it', () => {
  const rows: { name: string; send: () => Partial<Send>; expect: Expect }[] = [
    { name: 'a guessed session id', send: () => ({ session: randomUUID() }), expect: { status: 404, rpc: -32001 } },
    { name: 'bob on alice\'s session', send: () => ({ key: 'bob' }), expect: { status: 404, rpc: -32001 } },
    { name: 'alice on bob\'s session', send: () => ({ session: bob }), expect: { status: 404, rpc: -32001 } },
    { name: 'no key on alice\'s session', send: () => ({ key: undefined }), expect: { status: 401, rpc: -32001 } },
    { name: 'alice\'s session id in upper case', send: () => ({ session: alice.toUpperCase() }), expect: { status: 404 } },
    { name: 'alice\'s session id with a suffix', send: () => ({ session: `${alice}x` }), expect: { status: 404 } },
    { name: 'alice\'s and bob\'s session ids, two headers', send: () => ({ headers: { 'mcp-session-id': [alice, bob] } }), expect: { status: 404 } },
    { name: 'alice\'s session id twice', send: () => ({ headers: { 'mcp-session-id': [alice, alice] } }), expect: { status: 404 } },
    { name: 'a 10 KiB session id', send: () => ({ session: 'a'.repeat(10 * 1024) }), expect: { status: 404 } },
    { name: 'bob GETs alice\'s SSE stream', send: () => ({ key: 'bob', method: 'GET', body: undefined, headers: { accept: 'text/event-stream' } }), expect: { status: 404 } },
    { name: 'bob DELETEs alice\'s session', send: () => ({ key: 'bob', method: 'DELETE', body: undefined }), expect: { status: 404 } },
    { name: 'a tools/call without any session', send: () => ({ session: undefined }), expect: { status: 400 } },
    { name: 'initialize again on alice\'s open session', send: () => ({ body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'x', version: '1' } } } }), expect: { status: 400 } },
    { name: 'bob initializes with alice\'s session id', send: () => ({ key: 'bob', body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'x', version: '1' } } } }), expect: { status: 404 } },
  ];
  for (const row of rows) it(row.name, () => attack({ name: row.name, send: row.send(), expect: row.expect }));

  it('alice\'s session survived all of it, and after her DELETE it is gone for her too', async () => {
    await attack({ name: 'still works', send: {}, expect: FORWARDED });
    const own = await edge.session('alice');
    expect((await edge.send({ key: 'alice', session: own, method: 'DELETE' })).status).toBe(200);
    await attack({ name: 'deleted session', send: { session: own }, expect: { status: 404 } });
  });
});

describe('body framing and size', () => {
  const padded = (bytes: number) => {
    const base = JSON.stringify(callBody({ amount: 1, pad: '' }));
    return JSON.stringify(callBody({ amount: 1, pad: 'x'.repeat(bytes - base.length) }));
  };
  const rows: Row[] = [
    { name: 'a body one byte over --max-body, declared', send: { body: padded(MAX_BODY + 1) }, expect: { status: 413 } },
    { name: 'a body far over --max-body, declared', send: { body: padded(4 * MAX_BODY) }, expect: { status: 413 } },
    { name: 'a body over --max-body, chunked (no length declared)', send: { body: undefined, chunks: Array.from({ length: 5 }, () => 'x'.repeat(MAX_BODY / 2)) }, expect: { status: 413 } },
    { name: 'a body exactly at --max-body is read', send: { body: padded(MAX_BODY) }, expect: { forwarded: { amount: 1, pad: 'x'.repeat(MAX_BODY - JSON.stringify(callBody({ amount: 1, pad: '' })).length) } } },
    { name: 'a valid body sent in many small chunks', send: { body: undefined, chunks: [...JSON.stringify(callBody({ amount: 2, chunked: true }))] }, expect: { forwarded: { amount: 2, chunked: true } } },
  ];
  for (const row of rows) it(row.name, () => attack(row));

  const tcp = (lines: string[], body: string) => `${lines.join('\r\n')}\r\n\r\n${body}`;
  const head = (extra: string[]) => [
    'POST /mcp HTTP/1.1',
    'Host: 127.0.0.1',
    'Content-Type: application/json',
    'Accept: application/json, text/event-stream',
    `Authorization: Bearer ${KEYS.alice}`,
    `Mcp-Session-Id: ${alice}`,
    `MCP-Protocol-Version: ${PROTOCOL}`,
    ...extra,
  ];
  const tcpRows: { name: string; bytes: () => string; status: number }[] = [
    {
      name: 'Content-Length and Transfer-Encoding both (request smuggling)',
      bytes: () => {
        const body = JSON.stringify(callBody({ amount: 1, smuggled: true }));
        return tcp(head([`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked']), `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
      },
      status: 400,
    },
    { name: 'a malformed chunk size', bytes: () => tcp(head(['Transfer-Encoding: chunked']), 'zz\r\n{}\r\n0\r\n\r\n'), status: 400 },
    { name: 'a Content-Length shorter than the body (the rest is not a request)', bytes: () => tcp(head(['Content-Length: 10']), JSON.stringify(callBody({ amount: 1, short: true }))), status: 400 },
    { name: 'two different Content-Length headers', bytes: () => tcp(head(['Content-Length: 5', 'Content-Length: 6']), '{}'), status: 400 },
    { name: 'a header folded onto the next line (obs-fold)', bytes: () => tcp(head(['X-Folded: a', ' b', 'Content-Length: 2']), '{}'), status: 400 },
    { name: 'a NUL in a header value', bytes: () => tcp(head(['X-Nul: a\u0000b', 'Content-Length: 2']), '{}'), status: 400 },
  ];
  for (const row of tcpRows) {
    it(`raw TCP: ${row.name}`, async () => {
      const before = edge.calls().length;
      const { status } = await sendTcp(edge.base, row.bytes());
      expect(status).toBe(row.status);
      await sentinel(0);
      expect(edge.calls().slice(before).map((c) => c.args)).toEqual([{ amount: 1, sentinel: 0 }]);
    });
  }

  it('Expect: 100-continue with a declared length over the limit is refused without the body being sent', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(new URL('/mcp', edge.base), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${KEYS.alice}`,
          'mcp-session-id': alice,
          'content-length': String(10 * MAX_BODY),
          expect: '100-continue',
        },
      });
      req.on('continue', () => req.end('x'.repeat(10 * MAX_BODY)));
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
  });

  it('bodies held open (slowloris) hold no session place: with 4 stalled initializes in flight, a fifth opens a session', async () => {
    // carol may hold 4 sessions (--max-sessions-per-agent 4) and already holds 1.
    const stalled = Array.from({ length: 4 }, () => {
      const req = request(new URL('/mcp', edge.base), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${KEYS.carol}`, 'content-length': '1000' },
      });
      req.on('error', () => undefined);
      req.write('{"jsonrpc":"2.0","id":0,"method":"initialize",');
      return req;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const opened = await edge.session('carol');
      expect(opened).toMatch(/^[0-9a-f-]{36}$/);
      const r = await edge.rpcCall(opened, 'carol', 'h.echo', { amount: 1 });
      expectDenial(r.result, 'missing_token');
    } finally {
      for (const req of stalled) req.destroy();
    }
  });
});

describe('POST /v1/tokens without an agent key costs nothing that grows', () => {
  const post = (headers: Record<string, string | string[]>, body: string) =>
    edge.send({ path: '/v1/tokens', session: undefined, headers: { 'content-type': 'application/json', ...headers }, body });

  it('no key, an unknown key, two keys, or a 2 MiB body: 401 before the body is read, and no audit line', async () => {
    const before = edge.audit().length;
    const answers = [
      await post({}, JSON.stringify({ tool: 'h.echo' })),
      await post({ authorization: 'Bearer cfk_unknown' }, JSON.stringify({ tool: 'h.echo' })),
      await post({ authorization: [`Bearer ${KEYS.alice}`, `Bearer ${KEYS.bob}`] }, JSON.stringify({ tool: 'h.echo' })),
      await post({}, JSON.stringify({ tool: 'h.echo', pad: 'x'.repeat(2 * 1024 * 1024) })),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.messages[0]).toMatchObject({ allowed: false, code: 'agent_unknown' });
    }
    // A call's audit line written after them shows that they wrote none.
    const issued = await post({ authorization: `Bearer ${KEYS.carol}` }, JSON.stringify({ tool: 'h.echo' }));
    expect(issued.status).toBe(200);
    const id = (issued.messages[0] as { id: string }).id;
    await poll(() => (edge.audit().some((r) => r.token_id === id) ? true : undefined), 'the audit line of the issued token');
    const issuance = edge.audit().slice(before).filter((r) => r.tool === 'capframe.request_token');
    expect(issuance.map((r) => [r.agent, r.code])).toEqual([['carol', 'ok']]);
  });
});

describe('the refusals above are what an attacker learns, nothing more', () => {
  it('another agent\'s session and an unknown one get the same bytes', async () => {
    const [theirs, unknown] = await Promise.all([
      edge.send({ key: 'bob', session: alice, body: callBody({ amount: 1 }) }),
      edge.send({ key: 'bob', session: randomUUID(), body: callBody({ amount: 1 }) }),
    ]);
    expect([theirs.status, theirs.text]).toEqual([unknown.status, unknown.text]);
  });

  it('a denial names its code in _meta and nothing about the upstream', async () => {
    const r = await edge.rpcCall(carol, 'carol', 'h.echo', { amount: 1 });
    expectDenial(r.result, 'missing_token');
    expect(Object.keys(metaOf(r.result).meta)).toEqual(['capframe/decision']);
  });
});
