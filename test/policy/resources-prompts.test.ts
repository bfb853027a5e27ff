/**
 * `resource:` and `prompt:` rules: each kind decided by its own rules, default deny for
 * both (even under `default_policy: allow`), resource tokens kept apart from tool
 * tokens, URIs judged only in normal form, and the server options `names` and `relay`.
 */
import { describe, expect, it } from 'vitest';

import { CapframeError } from '../../src/errors.js';
import { parsePolicy, type Decision, type Grant } from '../../src/policy/index.js';

const HEX = 'ab'.repeat(32);

function policy(body: string) {
  return parsePolicy(`capframe:\n  version: "0.2"\n${body}`, '/srv/policy.yaml');
}

function errorOf(fn: () => unknown): CapframeError {
  try {
    fn();
  } catch (error) {
    return error as CapframeError;
  }
  throw new Error('expected an error');
}

const isGrant = (g: Grant | Decision): g is Grant => 'ttl' in g;

describe('resource rules', () => {
  const p = policy(`  agents:
    reader: { key_sha256: "${HEX}" }
    intern: { key_sha256: "${HEX}" }
  rules:
    - tool: "*"
    - resource: "docs:file:///srv/docs/*"
      ttl: 120
    - resource: "docs:file:///srv/docs/private/*"
      effect: deny
      agents: [intern]
    - resource: "web:https://api.example.com/*"
      agents: [reader]
      when: [{ arg: uri, op: url_path_within, value: /v1 }]
      rate_limit: { calls: 5, per: 60 }
`);

  it('are decided apart from tool rules: a tool rule "*" reads nothing', () => {
    expect(p.decide({ agent: 'reader', tool: 'docs:file:///srv/docs/a.md', args: { uri: 'file:///srv/docs/a.md' } })).toMatchObject({ allowed: true, code: 'ok' });
    expect(p.decide({ agent: 'reader', tool: 'other:file:///srv/docs/a.md', args: { uri: 'file:///srv/docs/a.md' } })).toMatchObject({ allowed: false, code: 'no_rule' });
    expect(p.decide({ agent: 'reader', tool: 'database.query', args: {} }).allowed).toBe(true);
    expect(p.resources.couldGrant('docs:file:///etc/passwd', 'reader')).toBe(false);
  });

  it('take agents, deny rules and constraints on {uri}', () => {
    expect(p.decide({ agent: 'intern', tool: 'docs:file:///srv/docs/private/pay.csv', args: { uri: 'file:///srv/docs/private/pay.csv' } })).toMatchObject({
      code: 'denied_by_rule',
      reason: 'denied by the deny rule at line 10 (resource "docs:file:///srv/docs/private/*")',
    });
    expect(p.decide({ agent: 'reader', tool: 'docs:file:///srv/docs/private/pay.csv', args: { uri: 'file:///srv/docs/private/pay.csv' } }).allowed).toBe(true);
    expect(p.decide({ agent: 'reader', tool: 'web:https://api.example.com/v1/x', args: { uri: 'https://api.example.com/v1/x' } }).allowed).toBe(true);
    expect(p.decide({ agent: 'reader', tool: 'web:https://api.example.com/v2/x', args: { uri: 'https://api.example.com/v2/x' } }).code).toBe('constraint_failed');
    expect(p.decide({ agent: 'intern', tool: 'web:https://api.example.com/v1/x', args: { uri: 'https://api.example.com/v1/x' } }).code).toBe('agent_not_allowed');
    expect(p.resources.couldGrant('docs:file:///srv/docs/private/pay.csv', 'intern')).toBe(false);
    expect(p.resources.couldGrant('docs:file:///srv/docs/private/pay.csv', 'reader')).toBe(true);
  });

  it('never judge a URI out of normal form, so neither an allow nor a deny rule is walked past', () => {
    for (const uri of ['file:///srv/docs/../secrets', 'file:///srv/docs/%2e%2e/secrets', 'file:///srv/docs/private%2Fpay.csv', 'FILE:///srv/docs/a.md', 'file:///srv/docs//private/pay.csv']) {
      const d = p.decide({ agent: 'reader', tool: `docs:${uri}`, args: { uri } });
      expect(d, uri).toMatchObject({ allowed: false, code: 'constraint_failed' });
      expect(d.reason).toMatch(/^resource "docs:.*" is refused: /);
      expect(p.couldGrant(`docs:${uri}`, 'reader')).toBe(false);
    }
    expect(p.grant({ tool: 'docs:file:///srv/docs/../x', agent: 'reader' })).toMatchObject({ code: 'constraint_failed' });
    // "//" walks past the deny rule for private/* as a string, while the server reads private/pay.csv.
    expect(p.decide({ agent: 'intern', tool: 'docs:file:///srv/docs//private/pay.csv', args: { uri: 'file:///srv/docs//private/pay.csv' } })).toMatchObject({ allowed: false, code: 'constraint_failed' });
  });

  it('accept only resource tokens: a tool token, even "*", reads nothing', () => {
    const name = 'docs:file:///srv/docs/a.md';
    const args = { uri: 'file:///srv/docs/a.md' };
    expect(p.decide({ agent: 'reader', tool: name, args, token: { tool: 'docs:file:///srv/docs/*' } }).allowed).toBe(true);
    expect(p.decide({ agent: 'reader', tool: name, args, token: { tool: '*' } })).toMatchObject({ code: 'tool_mismatch' });
    expect(p.decide({ agent: 'reader', tool: name, args, token: { tool: 'docs*' } })).toMatchObject({ code: 'tool_mismatch' });
    expect(p.decide({ agent: 'reader', tool: name, args, token: { tool: 'docs:file:///srv/other/*' } })).toMatchObject({ code: 'tool_mismatch' });
    // ...and a resource token calls no tool.
    expect(p.decide({ agent: 'reader', tool: 'docs.query', args: {}, token: { tool: 'docs:*' } })).toMatchObject({ code: 'tool_mismatch' });
  });

  it('grant resource tokens for names and patterns, capped by the rule', () => {
    const g = p.grant({ tool: 'docs:file:///srv/docs/a.md', agent: 'reader' });
    expect(isGrant(g) && g.ttl).toBe(120);
    expect(isGrant(p.grant({ tool: 'docs:file:///srv/docs/sub/*', agent: 'reader' }))).toBe(true);
    expect(p.grant({ tool: 'docs:file:///srv/*', agent: 'reader' })).toMatchObject({ code: 'no_rule' });
    const w = p.grant({ tool: 'web:https://api.example.com/v1/x', agent: 'reader' });
    expect(isGrant(w) && w.when).toEqual([{ arg: 'uri', op: 'url_path_within', value: '/v1' }]);
  });

  it('say whether some resource of a template pattern could be read', () => {
    expect(p.resources.couldGrantSome('docs:file:///srv/docs/*/index.md', 'reader')).toBe(true);
    expect(p.resources.couldGrantSome('docs:file:///srv/*', 'reader')).toBe(true);
    expect(p.resources.couldGrantSome('docs:file:///etc/*', 'reader')).toBe(false);
    expect(p.resources.couldGrantSome('docs:file:///srv/docs/private/*', 'intern')).toBe(false);
    expect(p.resources.couldGrantSome('web:https://api.example.com/*', 'intern')).toBe(false);
  });

  it('are needed even under default_policy: allow, which applies to tools alone', () => {
    const open = policy('  default_policy: allow\n');
    expect(open.decide({ tool: 'anything.at_all', args: {} }).allowed).toBe(true);
    expect(open.decide({ tool: 'docs:file:///srv/a', args: { uri: 'file:///srv/a' } })).toMatchObject({ allowed: false, code: 'no_rule' });
    expect(open.prompts.decide({ tool: 'notes.summarize', args: {} })).toMatchObject({ allowed: false, code: 'no_rule' });
    expect(open.couldGrant('docs:file:///srv/a')).toBe(false);
  });
});

describe('prompt rules', () => {
  const p = policy(`  agents:
    writer: { key_sha256: "${HEX}" }
  rules:
    - prompt: "notes.*"
      agents: [writer]
      when: [{ arg: topic, op: in, value: [sales, support] }]
    - prompt: notes.secret
      effect: deny
    - tool: "notes.*"
`);

  it('decide prompts by their own rules, not by tool rules', () => {
    expect(p.prompts.decide({ agent: 'writer', tool: 'notes.summarize', args: { topic: 'sales' } })).toMatchObject({ allowed: true });
    expect(p.prompts.decide({ agent: 'writer', tool: 'notes.summarize', args: { topic: 'hr' } }).code).toBe('constraint_failed');
    expect(p.prompts.decide({ agent: 'writer', tool: 'notes.secret', args: { topic: 'sales' } }).code).toBe('denied_by_rule');
    expect(p.prompts.couldGrant('notes.summarize', 'writer')).toBe(true);
    expect(p.prompts.couldGrant('notes.secret', 'writer')).toBe(false);
    expect(p.prompts.couldGrant('other.summarize', 'writer')).toBe(false);
    // The tool rule "notes.*" grants no prompt, and the prompt rule no tool.
    expect(p.decide({ agent: 'writer', tool: 'notes.summarize', args: {} }).allowed).toBe(true);
    expect(p.couldGrant('notes.secret', 'writer')).toBe(true);
  });

  it('refuse ttl and capability, which shape tokens prompts do not use', () => {
    expect(errorOf(() => policy('  rules:\n    - prompt: notes.x\n      ttl: 5\n')).message).toBe(
      '/srv/policy.yaml:5:7: "ttl" has no meaning on a prompt rule (prompts are decided by the policy for the caller, without tokens); remove it',
    );
  });
});

describe('rule shape', () => {
  it('names exactly one of tool, resource or prompt', () => {
    expect(errorOf(() => policy('  rules:\n    - tool: a.b\n      resource: "a:x://y"\n')).message).toBe(
      '/srv/policy.yaml:4:7: a rule names exactly one of "tool", "resource" or "prompt", not "tool" and "resource"; write one rule for each',
    );
  });

  it('checks resource patterns and points a resource written as a tool to resource:', () => {
    expect(errorOf(() => policy('  rules:\n    - resource: "no-colon"\n')).message).toMatch(/^\/srv\/policy\.yaml:4:17: resource "no-colon" is not a resource name or pattern; expected "<server>:<uri>"/);
    expect(errorOf(() => policy('  rules:\n    - resource: "docs:file:///a b"\n')).message).toMatch(/is not a resource name or pattern/);
    expect(errorOf(() => policy('  rules:\n    - tool: "docs:file:///x"\n')).message).toMatch(/\(a name with ":" is a resource: write it as resource:\)$/);
    expect(errorOf(() => policy('  rules:\n    - prompt: "docs:x"\n')).message).toMatch(/prompt "docs:x" is not a prompt name or pattern/);
  });

  it('warns about resource rules for unknown servers and servers that are not URI schemes', () => {
    const p = policy('  servers:\n    my_db: { command: node }\n    docs: { command: node }\n  rules:\n    - resource: "my_db:db://x/*"\n    - resource: "nowhere:file:///x"\n    - resource: "docs:file:///x"\n');
    expect(p.warnings).toContain('line 8: rule resource "nowhere:file:///x" names no configured server "nowhere"');
    expect(p.warnings.some((w) => w.startsWith('line 7: server "my_db" is not a valid URI scheme'))).toBe(true);
    expect(p.warnings.filter((w) => w.includes('"docs"'))).toEqual([]);
  });
});

describe('server names and relay options', () => {
  it('load and stay in the server entry, so a change restarts that server', () => {
    const p = policy('  servers:\n    a: { command: node, names: upstream, relay: { sampling: allow, roots: deny } }\n    b: { url: "http://127.0.0.1:1/mcp" }\n');
    expect(p.servers.a).toMatchObject({ names: 'upstream', relay: { sampling: 'allow', roots: 'deny' } });
    expect(p.servers.b).not.toHaveProperty('names');
    expect(errorOf(() => policy('  servers:\n    a: { command: node, relay: { sampling: maybe } }\n')).message).toBe(
      '/srv/policy.yaml:4:44: expected one of "allow", "deny", got "maybe"',
    );
    expect(errorOf(() => policy('  servers:\n    a: { command: node, relay: { tasks: allow } }\n')).message).toBe(
      '/srv/policy.yaml:4:34: unknown key "tasks"; expected one of: sampling, elicitation, roots',
    );
    expect(errorOf(() => policy('  servers:\n    a: { command: node, names: bare }\n')).message).toBe('/srv/policy.yaml:4:32: expected one of "qualified", "upstream", got "bare"');
  });
});
