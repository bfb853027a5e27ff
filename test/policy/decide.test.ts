/**
 * Decision semantics: deny rules win, then allow rules (tool, agents,
 * capability, constraints), then the default; and what `grant` lets mint issue.
 */
import { describe, expect, it } from 'vitest';

import { parsePolicy, type Decision, type Grant } from '../../src/policy/index.js';

const HEX = 'cd'.repeat(32);

function policy(body: string) {
  return parsePolicy(`capframe:\n  version: "0.2"\n${body}`, '/srv/policy.yaml');
}

function isGrant(g: Grant | Decision): g is Grant {
  return 'ttl' in g;
}

describe('deny rules', () => {
  const p = policy(`  rules:
    - tool: "*"
    - tool: "shell.*"
      effect: deny
    - tool: payments.refund
      effect: deny
      when: [{ arg: amount, op: ">", value: 1000 }]
`);

  it('win over an allow rule listed before them', () => {
    const d = p.decide({ tool: 'shell.exec', args: { command: 'ls' } });
    expect(d).toMatchObject({ allowed: false, code: 'denied_by_rule' });
    expect(d.reason).toBe('denied by the deny rule at line 5 (tool "shell.*")');
    expect(d.rule?.line).toBe(5);
  });

  it('with constraints apply only when the constraints hold', () => {
    expect(p.decide({ tool: 'payments.refund', args: { amount: 5000 } }).code).toBe('denied_by_rule');
    expect(p.decide({ tool: 'payments.refund', args: { amount: 10 } })).toMatchObject({ allowed: true, code: 'ok' });
  });

  it('apply when a constraint cannot be evaluated (fail closed)', () => {
    expect(p.decide({ tool: 'payments.refund', args: { amount: '5000' } }).code).toBe('denied_by_rule');
    expect(p.decide({ tool: 'payments.refund', args: { amount: [5000] } }).code).toBe('denied_by_rule');
    expect(p.decide({ tool: 'payments.refund', args: {} }).code).toBe('denied_by_rule');
  });

  it('with agents apply to those agents, and to calls whose agent is unknown', () => {
    const q = policy(`  rules:
    - tool: "db.*"
    - tool: db.drop
      effect: deny
      agents: [intern]
`);
    expect(q.decide({ agent: 'intern', tool: 'db.drop', args: {} }).code).toBe('denied_by_rule');
    expect(q.decide({ agent: 'admin', tool: 'db.drop', args: {} }).allowed).toBe(true);
    expect(q.decide({ tool: 'db.drop', args: {} }).code).toBe('denied_by_rule');
  });
});

describe('allow rules', () => {
  const p = policy(`  agents:
    support-bot: { key_sha256: "${HEX}" }
    billing-bot: { key_sha256: "${HEX}" }
  capabilities:
    small:
      when: [{ arg: amount, op: "<=", value: 50 }]
    large:
      when: [{ arg: amount, op: "<", value: 1000 }]
  rules:
    - tool: payments.refund
      capability: small
      agents: [support-bot]
      when: [{ arg: currency, op: "==", value: EUR }]
    - tool: payments.refund
      capability: large
      agents: [billing-bot]
    - tool: "database.*"
      capability: read-only
`);

  it('allow when tool, agent and all constraints (rule + capability) match', () => {
    const d = p.decide({ agent: 'support-bot', tool: 'payments.refund', args: { amount: 20, currency: 'EUR' } });
    expect(d).toMatchObject({ allowed: true, code: 'ok', reason: 'allowed by the rule at line 12' });
    expect(d.rule?.capability).toBe('small');
  });

  it('enforce the capability constraints', () => {
    const d = p.decide({ agent: 'support-bot', tool: 'payments.refund', args: { amount: 60, currency: 'EUR' } });
    expect(d).toMatchObject({ allowed: false, code: 'constraint_failed', reason: 'rule at line 12: amount <= 50: does not hold' });
  });

  it('enforce the rule constraints', () => {
    const d = p.decide({ agent: 'support-bot', tool: 'payments.refund', args: { amount: 20, currency: 'USD' } });
    expect(d).toMatchObject({ code: 'constraint_failed', reason: 'rule at line 12: currency == "EUR": value differs' });
  });

  it('deny an agent the rules do not list, and an agent the policy does not define', () => {
    expect(p.decide({ agent: 'billing-bot', tool: 'database.query', args: {} }).allowed).toBe(true);
    const notListed = p.decide({ agent: 'billing-bot', tool: 'payments.refund', args: { amount: 2000, currency: 'EUR' } });
    // billing-bot's own rule fails on amount: constraint_failed is the more precise answer.
    expect(notListed.code).toBe('constraint_failed');
    const q = policy(`  agents:
    a: { key_sha256: "${HEX}" }
    b: { key_sha256: "${HEX}" }
  rules:
    - tool: x.y
      agents: [a]
`);
    expect(q.decide({ agent: 'b', tool: 'x.y', args: {} })).toMatchObject({ allowed: false, code: 'agent_not_allowed', reason: 'no rule for "x.y" allows agent "b"' });
    expect(q.decide({ agent: 'zed', tool: 'x.y', args: {} })).toMatchObject({ allowed: false, code: 'agent_unknown' });
    expect(q.decide({ tool: 'x.y', args: {} }).code).toBe('agent_not_allowed');
  });

  it('with a token capability, only rules of that capability count', () => {
    const args = { amount: 20, currency: 'EUR' };
    expect(p.decide({ agent: 'support-bot', tool: 'payments.refund', args, token: { tool: 'payments.refund', cap: 'small' } }).allowed).toBe(true);
    expect(p.decide({ agent: 'support-bot', tool: 'payments.refund', args, token: { tool: 'payments.refund', cap: 'large' } }).code).toBe('agent_not_allowed');
    expect(p.decide({ agent: 'support-bot', tool: 'payments.refund', args, token: { tool: 'payments.refund', cap: 'admin' } })).toMatchObject({
      code: 'no_rule',
      reason: 'no rule allows "payments.refund" with capability "admin"',
    });
  });

  it('a capability without a definition is a label with no extra constraints', () => {
    expect(p.decide({ agent: 'support-bot', tool: 'database.query', args: { anything: 1 }, token: { tool: 'database.*', cap: 'read-only' } }).allowed).toBe(true);
  });

  it('deny a tool the token does not cover', () => {
    const d = p.decide({ agent: 'support-bot', tool: 'database.query', args: {}, token: { tool: 'database.update' } });
    expect(d).toMatchObject({ allowed: false, code: 'tool_mismatch' });
    expect(p.decide({ agent: 'support-bot', tool: 'database.query', args: {}, token: { tool: 'database.*' } }).allowed).toBe(true);
  });

  it('a later allow rule can allow what an earlier one refuses', () => {
    const q = policy(`  rules:
    - tool: files.read
      when: [{ arg: path, op: path_within, value: /srv/a }]
    - tool: files.read
      when: [{ arg: path, op: path_within, value: /srv/b }]
`);
    expect(q.decide({ tool: 'files.read', args: { path: '/srv/b/x' } })).toMatchObject({ allowed: true, reason: 'allowed by the rule at line 6' });
    expect(q.decide({ tool: 'files.read', args: { path: '/srv/c/x' } })).toMatchObject({ code: 'constraint_failed', reason: expect.stringMatching(/^rule at line 4: path path_within "\/srv\/a"/) as unknown });
  });

  it('without agents in the policy, rule agents match the token subject (pure capability model)', () => {
    const q = policy(`  rules:
    - tool: x.y
      agents: [sub-1]
`);
    expect(q.decide({ agent: 'sub-1', tool: 'x.y', args: {} }).allowed).toBe(true);
    expect(q.decide({ agent: 'sub-2', tool: 'x.y', args: {} }).code).toBe('agent_not_allowed');
  });

  it('returns the same frozen decision object for an allowed call (no allocation)', () => {
    const a = p.decide({ agent: 'billing-bot', tool: 'database.query', args: {} });
    const b = p.decide({ agent: 'billing-bot', tool: 'database.query', args: { x: 1 } });
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
  });
});

describe('the default', () => {
  it('deny: a tool no rule mentions is no_rule', () => {
    const p = policy('  rules:\n    - tool: a.b\n');
    expect(p.decide({ tool: 'c.d', args: {} })).toEqual({ allowed: false, code: 'no_rule', reason: 'no rule allows "c.d"' });
  });

  it('allow: a tool no rule mentions is allowed, but a rule\'s constraints are not bypassed', () => {
    const p = policy(`  default_policy: allow
  rules:
    - tool: payments.refund
      when: [{ arg: amount, op: "<=", value: 50 }]
    - tool: shell.exec
      effect: deny
`);
    expect(p.warnings[0]).toContain('default_policy is allow');
    expect(p.decide({ tool: 'anything.else', args: {} })).toMatchObject({ allowed: true, code: 'ok' });
    expect(p.decide({ tool: 'payments.refund', args: { amount: 10 } }).allowed).toBe(true);
    expect(p.decide({ tool: 'payments.refund', args: { amount: 100 } }).code).toBe('constraint_failed');
    expect(p.decide({ tool: 'shell.exec', args: {} }).code).toBe('denied_by_rule');
  });
});

describe('grant (what mint may issue)', () => {
  const p = policy(`  agents:
    support-bot: { key_sha256: "${HEX}" }
    ops-bot: { key_sha256: "${HEX}" }
  capabilities:
    read-only:
      when: [{ arg: sql, op: matches, value: "^SELECT" }]
  rules:
    - tool: database.query
      capability: read-only
      ttl: 120
      agents: [support-bot]
      when: [{ arg: sql, op: max_length, value: 100 }]
    - tool: database.query
      capability: admin
      agents: [ops-bot]
    - tool: "files.*"
      ttl: 30
    - tool: shell.exec
      effect: deny
    - tool: files.delete
      effect: deny
      when: [{ arg: path, op: starts_with, value: /etc }]
`);

  it('picks the rule and copies rule then capability constraints, raw', () => {
    const g = p.grant({ tool: 'database.query', agent: 'support-bot' });
    expect(isGrant(g)).toBe(true);
    if (!isGrant(g)) return;
    expect(g.ttl).toBe(120);
    expect(g.capability).toBe('read-only');
    expect(g.rule.line).toBe(10);
    expect(g.when).toEqual([
      { arg: 'sql', op: 'max_length', value: 100 },
      { arg: 'sql', op: 'matches', value: '^SELECT' },
    ]);
  });

  it('defaults the TTL cap to 300 seconds', () => {
    const g = p.grant({ tool: 'database.query', agent: 'ops-bot' });
    expect(isGrant(g) && g.ttl).toBe(300);
    expect(isGrant(g) && g.capability).toBe('admin');
  });

  it('honours a requested capability', () => {
    expect(p.grant({ tool: 'database.query', capability: 'admin', agent: 'support-bot' })).toMatchObject({ allowed: false, code: 'agent_not_allowed' });
    expect(p.grant({ tool: 'database.query', capability: 'nope', agent: 'support-bot' })).toMatchObject({
      allowed: false,
      code: 'no_rule',
      reason: 'no allow rule grants "database.query" with capability "nope"; add a rule for it to the policy',
    });
  });

  it('refuses clearly when no rule grants the tool', () => {
    expect(p.grant({ tool: 'payments.refund', agent: 'support-bot' })).toEqual({
      allowed: false,
      code: 'no_rule',
      reason: 'no allow rule grants "payments.refund"; add a rule for it to the policy',
    });
    expect(p.grant({ tool: 'database.query', agent: 'mallory' })).toMatchObject({ allowed: false, code: 'agent_unknown' });
  });

  it('refuses a tool an unconditional deny rule blocks; a conditional deny is left to call time', () => {
    expect(policy('  rules:\n    - tool: "*"\n    - tool: shell.exec\n      effect: deny\n').grant({ tool: 'shell.exec' })).toMatchObject({ code: 'denied_by_rule' });
    const g = p.grant({ tool: 'files.delete' });
    expect(isGrant(g) && g.ttl).toBe(30);
  });

  it('grants a pattern only under a rule that covers it and no deny rule it could reach', () => {
    expect(isGrant(p.grant({ tool: 'files.*' }))).toBe(true);
    expect(isGrant(p.grant({ tool: 'files.read_*' }))).toBe(true);
    expect(p.grant({ tool: 'database.*', agent: 'support-bot' })).toMatchObject({ code: 'no_rule' });
    const q = policy('  rules:\n    - tool: "*"\n    - tool: "shell.*"\n      effect: deny\n');
    expect(q.grant({ tool: '*' })).toMatchObject({ code: 'denied_by_rule' });
    expect(isGrant(q.grant({ tool: 'database.*' }))).toBe(true);
  });

  it('under default allow, grants an unmentioned tool with the default TTL', () => {
    const q = policy('  default_policy: allow\n');
    const g = q.grant({ tool: 'x.y' });
    expect(isGrant(g) && [g.ttl, g.when, g.rule.line]).toEqual([300, [], 0]);
  });
});

describe('couldGrant (tools/list filtering)', () => {
  const p = policy(`  agents:
    a: { key_sha256: "${HEX}" }
    b: { key_sha256: "${HEX}" }
  rules:
    - tool: "db.*"
      agents: [a]
    - tool: "web.fetch"
      when: [{ arg: url, op: url_origin_in, value: ["https://x.com"] }]
    - tool: "db.drop"
      effect: deny
    - tool: "web.fetch"
      effect: deny
      when: [{ arg: url, op: contains, value: admin }]
`);

  it('answers per agent, honouring unconditional deny rules', () => {
    expect(p.couldGrant('db.query', 'a')).toBe(true);
    expect(p.couldGrant('db.query', 'b')).toBe(false);
    expect(p.couldGrant('db.drop', 'a')).toBe(false);
    expect(p.couldGrant('web.fetch', 'b')).toBe(true);
    expect(p.couldGrant('mail.send', 'a')).toBe(false);
    expect(p.couldGrant('db.query', 'zed')).toBe(false);
    expect(p.couldGrant('db.query')).toBe(false);
  });

  it('without agents in the policy, an anonymous caller sees agent-limited tools', () => {
    const q = policy('  rules:\n    - tool: x.y\n      agents: [s]\n');
    expect(q.couldGrant('x.y')).toBe(true);
    expect(q.couldGrant('x.y', 'other')).toBe(false);
  });
});
