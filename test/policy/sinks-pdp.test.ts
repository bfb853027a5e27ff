/** The policy keys of issue 14: `agents.<name>.pdp` and `audit.sinks`, validated with clear errors. */
import { describe, expect, it } from 'vitest';

import { parsePolicy } from '../../src/policy/index.js';

const HEX = 'ab'.repeat(32);
const load = (extra: string) => parsePolicy(`capframe:\n  version: "0.2"\n${extra}`, '/etc/capframe/policy.yaml');
const problem = (extra: string) => {
  try {
    load(extra);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('loaded');
};

describe('agents.<name>.pdp', () => {
  it('defaults to false and must be true or false', () => {
    const policy = load(`  agents:\n    gw: { key_sha256: "${HEX}", pdp: true }\n    bot: { key_sha256: "${HEX.replace('ab', 'cd')}" }\n`);
    expect(policy.agents.gw?.pdp).toBe(true);
    expect(policy.agents.bot?.pdp).toBe(false);
    expect(problem(`  agents:\n    gw: { key_sha256: "${HEX}", pdp: "yes" }\n`)).toMatch(/policy\.yaml:4:\d+: .*true or false/);
  });
});

describe('audit.sinks', () => {
  it('takes syslog (tcp, tls) and http sinks, resolves ca against the policy directory, defaults the queue', () => {
    const policy = load(`  audit:
    sinks:
      - { type: syslog, url: "tcp://127.0.0.1:514" }
      - { type: syslog, url: "tls://logs.example.com:6514", ca: certs/ca.pem, queue: 50 }
      - { type: http, url: "https://siem.example.com/ingest", headers: { Authorization: "Bearer x" } }
`);
    expect(policy.audit.sinks).toEqual([
      { type: 'syslog', url: 'tcp://127.0.0.1:514', queue: 10000 },
      { type: 'syslog', url: 'tls://logs.example.com:6514', ca: '/etc/capframe/certs/ca.pem', queue: 50 },
      { type: 'http', url: 'https://siem.example.com/ingest', headers: { Authorization: 'Bearer x' }, queue: 10000 },
    ]);
  });

  it.each([
    ['{ type: syslog, url: "udp://h:514" }', /tcp:\/\/host:514 or tls:\/\/host:6514/],
    ['{ type: syslog, url: "tcp://h" }', /needs a port/],
    ['{ type: http, url: "ftp://h/x" }', /http:\/\/ or https:\/\//],
    ['{ type: syslog, url: "tcp://h:514", ca: ca.pem }', /"ca" applies to tls/],
    ['{ type: syslog, url: "tls://h:6514", headers: { a: b } }', /"headers" applies to http/],
    ['{ type: kafka, url: "tcp://h:1" }', /expected one of "syslog", "http"/],
    ['{ type: http, url: "http://h/", queue: 0 }', /queue must be/],
    ['{ type: http, url: "http://h/", retries: 3 }', /unknown key "retries"/],
  ])('%s is refused', (sink, message) => {
    expect(problem(`  audit:\n    sinks:\n      - ${sink}\n`)).toMatch(message);
  });
});
