/**
 * Adversarial suite, policy evasion through arguments (issue 8, acceptance 1): every
 * constraint operator fed type confusion, encodings, Unicode and parser differentials,
 * sent the way a client would (the official MCP SDK client) through a real `capframe serve`.
 * An argument that is refused never reaches the upstream; one that passes reaches it
 * exactly as checked (and audited) — so a row that "passes" documents what the policy
 * means, never a forwarded value that differs from the judged one.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, it } from 'vitest';

import { expectToolResult, startEdge, type Edge, type ToolExpect } from './harness.js';

const TOOLS = ['num', 'eq', 'ne', 'inlist', 'notin', 're', 'notre', 'starts', 'contains', 'maxlen', 'absent', 'path', 'write', 'origin', 'upath', 'fetch'];

let edge: Edge;
let agent: Client;

beforeAll(async () => {
  edge = await startEdge({
    servers: { p: { timeout: 15, env: { ECHO_TOOLS: TOOLS.join(',') } } },
    rules: [
      '- { tool: p.num, ttl: 60, when: [{ arg: amount, op: "<=", value: 50 }, { arg: amount, op: ">", value: 0 }] }',
      '- { tool: p.eq, ttl: 60, when: [{ arg: table, op: "==", value: orders }] }',
      '- { tool: p.ne, ttl: 60, when: [{ arg: reason, op: "!=", value: "" }] }',
      '- { tool: p.inlist, ttl: 60, when: [{ arg: currency, op: in, value: [EUR, USD] }] }',
      '- { tool: p.notin, ttl: 60, when: [{ arg: currency, op: not_in, value: [XXX] }] }',
      '- { tool: p.re, ttl: 60, when: [{ arg: sql, op: matches, value: "^SELECT [a-z]+ FROM t$" }] }',
      '- { tool: p.notre, ttl: 60, when: [{ arg: sql, op: not_matches, value: "DROP" }] }',
      '- { tool: p.starts, ttl: 60, when: [{ arg: id, op: starts_with, value: "ch_" }] }',
      '- { tool: p.contains, ttl: 60, when: [{ arg: note, op: contains, value: "ticket-" }] }',
      '- { tool: p.maxlen, ttl: 60, when: [{ arg: note, op: max_length, value: 5 }] }',
      '- { tool: p.absent, ttl: 60, when: [{ arg: fields.total, op: absent }] }',
      '- { tool: p.path, ttl: 60, when: [{ arg: path, op: path_within, value: /srv/app }] }',
      '- { tool: p.write, effect: deny, when: [{ arg: path, op: path_within, value: /srv/app/config }] }',
      '- { tool: p.write, ttl: 60, when: [{ arg: path, op: path_within, value: /srv/app }] }',
      '- { tool: p.origin, ttl: 60, when: [{ arg: url, op: url_origin_in, value: ["https://api.example.com"] }] }',
      '- { tool: p.upath, ttl: 60, when: [{ arg: url, op: url_path_within, value: /api }] }',
      '- { tool: p.fetch, effect: deny, when: [{ arg: url, op: url_path_within, value: /admin }] }',
      '- { tool: p.fetch, ttl: 60 }',
    ],
  });
  agent = await edge.client('alice');
}, 90_000);

afterAll(async () => edge?.stop());

const sentinel = (marker: number) => agent.callTool({ name: 'p.num', arguments: { amount: 1, sentinel: marker } });

/** Row: [tool, arguments, expected]. `OK` means: allowed, and forwarded exactly as sent. */
type Row = [tool: string, args: Record<string, unknown>, want: 'OK' | ToolExpect];
const DENY: ToolExpect = { denied: 'constraint_failed' };
const BY_RULE: ToolExpect = { denied: 'denied_by_rule' };

function run(rows: Row[]): void {
  for (const [tool, args, want] of rows) {
    it(`${tool} ${JSON.stringify(args)}`, () =>
      expectToolResult(edge, () => agent.callTool({ name: `p.${tool}`, arguments: args }) as Promise<CallToolResult>, want === 'OK' ? { forwarded: args } : want, sentinel, {
        server: 'p',
        tool,
      }));
  }
}

describe('type confusion: a value of the wrong type fails every operator', () => {
  run([
    ['num', { amount: 50 }, 'OK'],
    ['num', { amount: '50' }, DENY],
    ['num', { amount: [10] }, DENY],
    ['num', { amount: { value: 10 } }, DENY],
    ['num', { amount: null }, DENY],
    ['num', { amount: true }, DENY],
    ['num', {}, DENY],
    ['num', { amount: 51 }, DENY],
    ['num', { amount: 0 }, DENY],
    ['num', { amount: -0 }, DENY],
    ['num', { amount: 1e-300 }, 'OK'],
    ['eq', { table: 'orders' }, 'OK'],
    ['eq', { table: ['orders'] }, DENY],
    ['eq', { table: { 0: 'orders' } }, DENY],
    ['eq', { table: 'Orders' }, DENY],
    ['eq', { table: 'orders\u0000' }, DENY],
    ['eq', { table: 'orders ' }, DENY],
    ['eq', { table: '\uff4frders' }, DENY],
    ['ne', { reason: '' }, DENY],
    ['ne', { reason: null }, DENY],
    ['ne', { reason: 0 }, DENY],
    ['ne', { reason: [] }, DENY],
    ['ne', {}, DENY],
    ['inlist', { currency: 'EUR' }, 'OK'],
    ['inlist', { currency: 'eur' }, DENY],
    ['inlist', { currency: ['EUR'] }, DENY],
    ['inlist', { currency: 'EUR\u200b' }, DENY],
    ['inlist', { currency: true }, DENY],
    ['notin', { currency: 'XXX' }, DENY],
    ['notin', { currency: 123 }, DENY],
    ['notin', { currency: null }, DENY],
    ['notin', { currency: ['XXX', 'EUR'] }, DENY],
    ['maxlen', { note: '12345' }, 'OK'],
    ['maxlen', { note: '123456' }, DENY],
    ['maxlen', { note: '\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}' }, 'OK'],
    ['maxlen', { note: ['a', 'b', 'c', 'd', 'e', 'f'] }, DENY],
    ['maxlen', { note: 123456 }, DENY],
    ['absent', { fields: { status: 'shipped' } }, 'OK'],
    ['absent', { fields: { total: 1 } }, DENY],
    ['absent', { fields: { total: null } }, DENY],
    ['absent', { fields: [{ total: 1 }] }, DENY],
    ['absent', { fields: 'total' }, DENY],
    // A key with a dot in it is one key, not a path: the tool sees "fields.total", not fields.total.
    ['absent', { 'fields.total': 1 }, 'OK'],
  ]);
});

describe('strings and patterns: anchors, line terminators, Unicode spaces', () => {
  run([
    ['re', { sql: 'SELECT a FROM t' }, 'OK'],
    ['re', { sql: 'SELECT a FROM t\nDROP TABLE t' }, DENY],
    ['re', { sql: 'SELECT a FROM t\n' }, DENY],
    ['re', { sql: 'DROP TABLE t;\nSELECT a FROM t' }, DENY],
    ['re', { sql: 'SELECT\u00a0a FROM t' }, DENY],
    ['re', { sql: 'SELECT a FROM t\u2028' }, DENY],
    ['re', { sql: ['SELECT a FROM t'] }, DENY],
    ['notre', { sql: 'DROP TABLE t' }, DENY],
    ['notre', { sql: 'SELECT 1; DROP TABLE t' }, DENY],
    ['notre', { sql: 42 }, DENY],
    // The pattern is literal and case-sensitive: these pass the policy, and the tool gets exactly them.
    ['notre', { sql: 'D\u200bROP TABLE t' }, 'OK'],
    ['starts', { id: 'ch_123' }, 'OK'],
    ['starts', { id: ' ch_123' }, DENY],
    ['starts', { id: 'CH_123' }, DENY],
    ['starts', { id: '\u202ech_123' }, DENY],
    ['starts', { id: '\ufeffch_123' }, DENY],
    ['contains', { note: 'see ticket-42' }, 'OK'],
    ['contains', { note: 'see ticket\u2010 42' }, DENY],
    ['contains', { note: { text: 'ticket-42' } }, DENY],
  ]);
});

describe('path_within /srv/app: encodings, traversal, separators', () => {
  run([
    ['path', { path: '/srv/app/logs/a.txt' }, 'OK'],
    ['path', { path: '/srv/app' }, 'OK'],
    ['path', { path: '/srv/app/../etc/passwd' }, DENY],
    ['path', { path: '/srv/app/%2e%2e/etc/passwd' }, DENY],
    ['path', { path: '/srv/app/%2E%2E/etc/passwd' }, DENY],
    ['path', { path: '/srv/app/%252e%252e/etc/passwd' }, DENY],
    ['path', { path: '/srv/app/..%2fetc/passwd' }, DENY],
    ['path', { path: '/srv/app/%c0%ae%c0%ae/etc/passwd' }, DENY],
    ['path', { path: '/srv/app\\..\\etc\\passwd' }, DENY],
    ['path', { path: '/srv/app/a\u0000/../../etc' }, DENY],
    ['path', { path: '/srv/app/%00/x' }, DENY],
    ['path', { path: '/srv/app-shadow/x' }, DENY],
    ['path', { path: '/srv/application' }, DENY],
    ['path', { path: 'srv/app/a' }, DENY],
    ['path', { path: './srv/app/a' }, DENY],
    ['path', { path: '' }, DENY],
    ['path', { path: '/srv/app/%' }, DENY],
    ['path', { path: ['/srv/app/a'] }, DENY],
    ['path', { path: '/srv/app/~/../../etc' }, DENY],
    ['path', { path: '/srv/app/a/../../app/b' }, 'OK'],
    ['path', { path: '//srv/app/a' }, 'OK'],
    // Not dots to a filesystem: U+2025 and fullwidth dots are names, inside the root.
    ['path', { path: '/srv/app/\u2025/etc' }, 'OK'],
    ['path', { path: '/srv/app/\uff0e\uff0e/etc' }, 'OK'],
    ['write', { path: '/srv/app/data/x' }, 'OK'],
    ['write', { path: '/srv/app/config/x' }, BY_RULE],
    ['write', { path: '/srv/app/config' }, BY_RULE],
    ['write', { path: '/srv/app/data/../config/x' }, BY_RULE],
    ['write', { path: '/srv/app/%63onfig/x' }, BY_RULE],
    ['write', { path: '/srv/app/./config//x' }, BY_RULE],
    // The token auto_mint made carries the allow rule's path_within, which refuses backslashes first.
    ['write', { path: '/srv/app\\config\\x' }, DENY],
    ['write', { path: '/etc/passwd' }, DENY],
  ]);
});

describe('url_origin_in ["https://api.example.com"]: userinfo, parsers, hosts', () => {
  run([
    ['origin', { url: 'https://api.example.com/v1' }, 'OK'],
    ['origin', { url: 'https://api.example.com:443/v1' }, 'OK'],
    ['origin', { url: 'HTTPS://API.EXAMPLE.COM/v1' }, 'OK'],
    ['origin', { url: 'https://api.example.com#@evil.com' }, 'OK'],
    ['origin', { url: 'https://api.example.com@evil.com/' }, DENY],
    ['origin', { url: 'https://user:pass@api.example.com/' }, DENY],
    ['origin', { url: 'https://evil.com\\@api.example.com/' }, DENY],
    ['origin', { url: 'https://api.example.com\\@evil.com/' }, DENY],
    ['origin', { url: 'https://api.example.com.evil.com/' }, DENY],
    ['origin', { url: 'https://api.example.com./' }, DENY],
    ['origin', { url: 'https://api.example.com:8443/' }, DENY],
    ['origin', { url: 'http://api.example.com/' }, DENY],
    ['origin', { url: ' https://api.example.com/' }, DENY],
    ['origin', { url: 'https://api.example.com\t/' }, DENY],
    ['origin', { url: 'https://api.exa\nmple.com/' }, DENY],
    ['origin', { url: 'javascript:alert(1)//api.example.com' }, DENY],
    ['origin', { url: '//api.example.com/x' }, DENY],
    ['origin', { url: 'https:api.example.com/x' }, DENY],
    ['origin', { url: 'https:/api.example.com/x' }, DENY],
    ['origin', { url: 'https://api%2eexample.com/' }, DENY],
    ['origin', { url: 'https://api.example.com%2f@evil.com/' }, DENY],
    ['origin', { url: 'https://\u0430pi.example.com/' }, DENY],
    ['origin', { url: 'https://xn--pi-7ka.example.com/' }, DENY],
    ['origin', { url: 'https://\uff41pi.example.com/' }, DENY],
    ['origin', { url: 'https://[::1]/' }, DENY],
    ['origin', { url: 'https://0x7f.1/' }, DENY],
    ['origin', { url: 'https://api.example.com' + '/x'.repeat(5000) }, DENY],
    ['origin', { url: ['https://api.example.com'] }, DENY],
  ]);
});

describe('url_path_within /api and a deny rule on /admin: decoding, dot segments, readings that disagree', () => {
  run([
    ['upath', { url: 'https://h.example/api/v1' }, 'OK'],
    ['upath', { url: 'https://h.example/api' }, 'OK'],
    ['upath', { url: 'https://h.example/%61pi/v1' }, 'OK'],
    ['upath', { url: 'https://h.example/api/v1?next=/../admin' }, 'OK'],
    ['upath', { url: 'https://h.example/api/../admin' }, DENY],
    ['upath', { url: 'https://h.example/api/%2e%2e/admin' }, DENY],
    ['upath', { url: 'https://h.example/api/..%2fadmin' }, DENY],
    ['upath', { url: 'https://h.example/api/..%5cadmin' }, DENY],
    ['upath', { url: 'https://h.example/api/%252e%252e/admin' }, DENY],
    // The URL parser resolves "..;" away; Tomcat strips ";" first and lands on /admin.
    ['upath', { url: 'https://h.example/api/x/..;/../admin' }, DENY],
    // The URL parser keeps the empty segment for ".." to pop; nginx merges "//" first and lands on /admin.
    ['upath', { url: 'https://h.example/api/x//../../admin' }, DENY],
    ['upath', { url: 'https://h.example/API/v1' }, DENY],
    ['upath', { url: 'https://h.example//api/v1' }, DENY],
    ['upath', { url: 'https://h.example/api%2fv1' }, DENY],
    ['upath', { url: 'https://h.example/api-internal' }, DENY],
    ['upath', { url: 'https://h.example/\uff41pi/v1' }, DENY],
    ['upath', { url: 'https://h.example/api/%zz' }, DENY],
    ['upath', { url: '/api/v1' }, DENY],
    ['upath', { url: 'https://user@h.example/api/v1' }, DENY],
    ['fetch', { url: 'https://h.example/public' }, 'OK'],
    ['fetch', { url: 'https://h.example/adminx' }, 'OK'],
    ['fetch', { url: 'https://h.example/admin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/admin/users' }, BY_RULE],
    ['fetch', { url: 'https://h.example/%61dmin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/ADMIN' }, BY_RULE],
    ['fetch', { url: 'https://h.example//admin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/x/..;/admin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/x/..;/../admin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/public//../admin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/public/%2e%2e/admin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/public/..%2fadmin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/\uff41dmin' }, BY_RULE],
    ['fetch', { url: 'https://h.example/admin;jsessionid=1' }, BY_RULE],
    ['fetch', { url: 'not a url' }, BY_RULE],
  ]);
});
