/**
 * Loading policies from real files: the seed and example policies load, every
 * key of SPEC §3 is understood, and malformed files fail with messages that
 * name the file, line and column.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { CapframeError } from '../../src/errors.js';
import { loadPolicy, loadPolicySync, OPERATORS, parsePolicy } from '../../src/policy/index.js';
import { ROOT, tempDir } from '../helpers.js';

const SEED = `capframe:
  version: "0.2"
  default_policy: deny
  rules:
    - tool: "database.query"
      capability: "read-only"
      ttl: 300
    - tool: "payments.refund"
      capability: "admin"
      ttl: 60
`;

const HEX = 'ab'.repeat(32);

function write(name: string, text: string | Buffer): string {
  const dir = tempDir('capframe-policy-');
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): CapframeError {
  try {
    fn();
  } catch (error) {
    if (error instanceof CapframeError) return error;
    throw error;
  }
  throw new Error('expected a CapframeError');
}

describe('seed and example policies', () => {
  it('loads the SPEC §1 seed policy unchanged', async () => {
    const file = write('my-policy.yaml', SEED);
    const policy = await loadPolicy(file);
    expect(policy.file).toBe(file);
    expect(policy.version).toBe('0.2');
    expect(policy.defaultPolicy).toBe('deny');
    expect(policy.stateDir).toBe(join(resolve(file, '..'), '.capframe'));
    expect(policy.rules.map((r) => [r.tool, r.effect, r.capability, r.ttl, r.line])).toEqual([
      ['database.query', 'allow', 'read-only', 300, 5],
      ['payments.refund', 'allow', 'admin', 60, 8],
    ]);
    // Loud but not fatal: the seed names capabilities it does not define (SPEC §3: labels).
    expect(policy.warnings).toEqual([
      'line 5: capability "read-only" is not defined under capabilities; it is a label with no extra constraints',
      'line 8: capability "admin" is not defined under capabilities; it is a label with no extra constraints',
    ]);
    expect(policy.autoMint).toBe(false);
    expect(policy.onStoreFailure).toBe('deny');
    expect(policy.audit).toEqual({ logArgs: false, syncMs: 100, sinks: [] });
    expect(Object.keys(policy.servers)).toEqual([]);
    expect(policy.decide({ tool: 'database.query', args: {}, token: { tool: 'database.query', cap: 'read-only' } }).allowed).toBe(true);
  });

  it('loads examples/policy.yaml with every section', () => {
    const policy = loadPolicySync(join(ROOT, 'examples', 'policy.yaml'));
    expect(Object.keys(policy.servers).sort()).toEqual(['database', 'filesystem', 'http', 'payments', 'shell']);
    expect(policy.servers.database).toEqual({ command: 'node', args: ['servers/database.js'], cwd: '.', timeout: 30 });
    expect(policy.servers.filesystem).toEqual({ command: 'node', args: ['servers/filesystem.js'], cwd: '.', env: { SANDBOX_DIR: '/srv/app' } });
    expect(Object.keys(policy.agents).sort()).toEqual(['billing-bot', 'ops-bot', 'research-bot', 'support-bot']);
    expect(policy.agents['support-bot']?.autoMint).toBe(true);
    expect(policy.agents['billing-bot']?.autoMint).toBe(false);
    expect(policy.rules.filter((r) => r.effect === 'deny').length).toBe(4);
    expect(policy.issuer).toBe('capframe-example');
    expect(policy.stateDir).toBe(join(ROOT, 'examples', '.capframe'));
    expect(policy.warnings).toEqual([]);
    const ops = new Set<string>();
    for (const rule of policy.rules) for (const c of rule.when.source) ops.add(c.op);
    for (const cap of Object.values(policy.capabilities)) for (const c of cap.when.source) ops.add(c.op);
    // Every operator but `contains`: a substring check on a URL is what url_path_within replaces.
    expect([...ops].sort()).toEqual(OPERATORS.filter((op) => op !== 'contains').sort());
  });

  it('loads the full SPEC §3 example (with a real key hash)', () => {
    const text = `capframe:
  version: "0.2"
  default_policy: deny
  issuer: "capframe-prod"
  state_dir: .capframe
  store: redis://127.0.0.1:6379
  servers:
    database: { command: node, args: [examples/servers/database.js], env: { DB_URL: "file:demo.db" } }
    payments: { url: "http://127.0.0.1:9000/mcp" }
  agents:
    support-bot: { key_sha256: "${HEX.toUpperCase()}" }
  capabilities:
    read-only:
      when: [{ arg: sql, op: matches, value: "^\\\\s*SELECT\\\\b" }]
  rules:
    - tool: "database.query"
      capability: "read-only"
      ttl: 300
      agents: [support-bot]
    - tool: "payments.refund"
      capability: "admin"
      ttl: 60
      when: [{ arg: amount, op: "<=", value: 50 }]
      rate_limit: { calls: 10, per: 60 }
    - tool: "shell.*"
      effect: deny
`;
    const policy = parsePolicy(text, '/etc/capframe/policy.yaml');
    expect(policy.store).toBe('redis://127.0.0.1:6379');
    expect(policy.stateDir).toBe('/etc/capframe/.capframe');
    expect(policy.servers.payments).toEqual({ url: 'http://127.0.0.1:9000/mcp' });
    expect(policy.servers.database).toEqual({ command: 'node', args: ['examples/servers/database.js'], env: { DB_URL: 'file:demo.db' } });
    expect(policy.agents['support-bot']).toEqual({ keySha256: HEX, autoMint: false, pdp: false, holderKeys: [] });
    expect(policy.capabilities['read-only']?.when.source).toEqual([{ arg: 'sql', op: 'matches', value: '^\\s*SELECT\\b' }]);
    expect(policy.rules[1]?.rateLimit).toEqual({ calls: 10, per: 60 });
    expect(policy.rules[1]?.when.source).toEqual([{ arg: 'amount', op: '<=', value: 50 }]);
    expect(policy.rules[2]).toMatchObject({ tool: 'shell.*', effect: 'deny', line: 25 });
    // shell has no server and admin no capability definition: both loud, neither fatal.
    expect(policy.warnings).toEqual([
      'line 14: capability "read-only": sql matches "^\\\\s*SELECT\\\\b": ' +
        '\\s and \\S also treat Unicode spaces (U+00A0, U+2028, U+FEFF, …) as spaces, which the tool may not; write the class you mean, e.g. [ \\t\\r\\n]; ' +
        '\\w, \\b and \\B know only ASCII [A-Za-z0-9_] even with the u flag (\\bSELECT\\b matches inside "SELECTé"); write the class you mean, e.g. (?<![A-Za-z0-9_])SELECT(?![A-Za-z0-9_])',
      'line 20: capability "admin" is not defined under capabilities; it is a label with no extra constraints',
      'line 25: rule tool "shell.*" names no configured server "shell"',
    ]);
  });
});

describe('warnings', () => {
  it('names each undefined capability once, with every line that names it, in file order', () => {
    const policy = parsePolicy(
      'capframe:\n  version: "0.2"\n  rules:\n    - { tool: a.x, capability: ro }\n    - { tool: a.y, capability: admin }\n    - { tool: a.z, capability: ro }\n',
      'p.yaml',
    );
    expect(policy.warnings).toEqual([
      'lines 4, 6: capability "ro" is not defined under capabilities; it is a label with no extra constraints',
      'line 5: capability "admin" is not defined under capabilities; it is a label with no extra constraints',
    ]);
  });
});

describe('keys and paths', () => {
  it('resolves state_dir and audit.path against the policy directory, keeps server cwd as written', () => {
    const text = `capframe:
  version: "0.2"
  state_dir: state
  auto_mint: true
  on_store_failure: use_cached
  audit: { log_args: true, path: logs/audit.log }
  servers:
    fs: { command: node, args: [fs.js], cwd: ./servers, timeout: 2.5 }
    web: { url: "https://mcp.example.com/mcp", headers: { Authorization: "Bearer x" }, timeout: 10 }
  agents:
    a: { key_sha256: "${HEX}" }
    b: { key_sha256: "${HEX}", auto_mint: false }
`;
    const file = write('p.yaml', text);
    const dir = resolve(file, '..');
    const policy = loadPolicySync(file);
    expect(policy.stateDir).toBe(join(dir, 'state'));
    expect(policy.audit).toEqual({ logArgs: true, syncMs: 100, path: join(dir, 'logs', 'audit.log'), sinks: [] });
    expect(policy.autoMint).toBe(true);
    expect(policy.onStoreFailure).toBe('use_cached');
    expect(policy.servers.fs).toEqual({ command: 'node', args: ['fs.js'], cwd: './servers', timeout: 2.5 });
    expect(policy.servers.web).toEqual({ url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer x' }, timeout: 10 });
    // An agent inherits the policy's auto_mint unless it sets its own.
    expect(policy.agents.a?.autoMint).toBe(true);
    expect(policy.agents.b?.autoMint).toBe(false);
  });

  it('audit.sync_ms: a whole number of ms from 0 to 60000', () => {
    expect(parsePolicy('capframe:\n  version: "0.2"\n  audit: { sync_ms: 250 }\n').audit.syncMs).toBe(250);
    expect(parsePolicy('capframe:\n  version: "0.2"\n  audit: { sync_ms: 0 }\n').audit.syncMs).toBe(0);
    for (const bad of ['-1', '1.5', '60001', '"100"']) {
      expect(() => parsePolicy(`capframe:\n  version: "0.2"\n  audit: { sync_ms: ${bad} }\n`)).toThrow(/sync_ms|expected/);
    }
  });

  it('keeps an absolute state_dir; inline policies resolve against the working directory', () => {
    expect(parsePolicy('capframe:\n  version: "0.2"\n  state_dir: /var/lib/capframe\n', '/x/p.yaml').stateDir).toBe('/var/lib/capframe');
    const inline = parsePolicy('capframe:\n  version: "0.2"\n');
    expect(inline.file).toBe('<inline>');
    expect(inline.stateDir).toBe(join(process.cwd(), '.capframe'));
  });

  it('gives records null prototypes so a name like "constructor" is never an agent', () => {
    const policy = parsePolicy(`capframe:\n  version: "0.2"\n  agents:\n    bot: { key_sha256: "${HEX}" }\n`);
    expect(policy.agents.constructor).toBeUndefined();
    expect(Object.hasOwn(policy.agents, 'bot')).toBe(true);
    expect(policy.decide({ agent: 'constructor', tool: 'x.y', args: {} }).code).toBe('agent_unknown');
  });

  it('loads default_policy: allow with a loud warning', () => {
    const policy = parsePolicy('capframe:\n  version: "0.2"\n  default_policy: allow\n');
    expect(policy.defaultPolicy).toBe('allow');
    expect(policy.warnings[0]).toMatch(/^WARNING: default_policy is allow: every tool that no rule mentions is ALLOWED/);
  });

  it('returns a frozen policy', () => {
    const policy = parsePolicy(SEED);
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.rules)).toBe(true);
    expect(Object.isFrozen(policy.rules[0])).toBe(true);
  });
});

describe('screen: and max_result_bytes', () => {
  it('screens by default; screen.allow names exact tools; screen.tools: false warns', () => {
    const plain = parsePolicy('capframe:\n  version: "0.2"\n');
    expect(plain.screen).toEqual({ tools: true, prompts: true, resources: true, allow: [] });
    const allowed = parsePolicy('capframe:\n  version: "0.2"\n  servers:\n    db: { command: node }\n  screen:\n    allow: [db.query, other.tool]\n');
    expect(allowed.screen).toEqual({ tools: true, prompts: true, resources: true, allow: ['db.query', 'other.tool'] });
    expect(allowed.warnings).toContain('screen.allow: "other.tool" names no configured server "other"');
    const off = parsePolicy('capframe:\n  version: "0.2"\n  screen: { tools: false }\n');
    expect(off.screen.tools).toBe(false);
    expect(off.warnings.some((w) => w.startsWith('screen.tools is false'))).toBe(true);
    expect(errorOf(() => parsePolicy('capframe:\n  version: "0.2"\n  screen:\n    allow: ["db.*"]\n', 'p.yaml')).message).toBe(
      'p.yaml:4:13: "db.*" is not a tool, prompt or resource name; screen.allow lists exact "<server>.<tool>", "<server>.<prompt>" or "<server>:<uri>" names (no globs), each reviewed',
    );
    expect(errorOf(() => parsePolicy('capframe:\n  version: "0.2"\n  screen: { tool: true }\n', 'p.yaml')).message).toBe('p.yaml:3:13: unknown key "tool"; expected one of: tools, prompts, resources, allow');
  });

  it('max_result_bytes is a per-server byte count within bounds', () => {
    const policy = parsePolicy('capframe:\n  version: "0.2"\n  servers:\n    a: { command: node, max_result_bytes: 1048576 }\n    b: { url: "http://127.0.0.1:1/mcp", max_result_bytes: 2048 }\n    c: { command: node }\n');
    expect(policy.servers.a).toMatchObject({ maxResultBytes: 1048576 });
    expect(policy.servers.b).toMatchObject({ maxResultBytes: 2048 });
    expect(policy.servers.c).not.toHaveProperty('maxResultBytes');
    for (const bad of ['0', '100', '1.5', '"8MiB"', String(2 ** 30)]) {
      const error = errorOf(() => parsePolicy(`capframe:\n  version: "0.2"\n  servers:\n    a: { command: node, max_result_bytes: ${bad} }\n`, 'p.yaml'));
      expect(error.message, bad).toMatch(/^p\.yaml:4:\d+: (max_result_bytes must be a whole number of bytes from 1024|expected a number)/);
    }
  });
});

describe('malformed policies name file, line and column', () => {
  const rows: [string, string, string][] = [
    ['bad YAML', 'capframe:\n  version: "0.2"\n  rules:\n    - tool: [a\n', 'p.yaml:5:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ['duplicate key', 'capframe:\n  version: "0.2"\n  version: "0.2"\n', 'p.yaml:3:3: invalid YAML: Map keys must be unique'],
    ['two documents', 'capframe:\n  version: "0.2"\n---\nx: 1\n', 'p.yaml:3:1: invalid YAML: a second document ("---"); the file must hold exactly one'],
    ['unknown tag', 'capframe:\n  version: !foo "0.2"\n', 'p.yaml:2:12: invalid YAML: Unresolved tag: !foo'],
    ['a list as a key', 'capframe:\n  version: "0.2"\n  ? [rules, x]\n  : 1\n', 'p.yaml:3:5: invalid YAML: a mapping key must be a plain value, not a list or a mapping'],
    ['wrong type (ttl as string)', 'capframe:\n  version: "0.2"\n  rules:\n    - tool: database.query\n      ttl: "300"\n', 'p.yaml:5:12: expected a number, got a string'],
    ['wrong type (rules as mapping)', 'capframe:\n  version: "0.2"\n  rules:\n    tool: x\n', 'p.yaml:4:5: expected a list, got a mapping'],
    ['version as a number', 'capframe:\n  version: 0.2\n', 'p.yaml:2:12: expected version as a quoted string such as "0.2", got a number'],
    ['unsupported version', 'capframe:\n  version: "0.3"\n', 'p.yaml:2:12: unsupported version; this capframe reads version "0.2"'],
    ['missing version', 'capframe:\n  default_policy: deny\n', 'p.yaml:2:3: missing required key "version"; expected a quoted string such as "0.2"'],
    ['empty file', '', 'p.yaml:1:1: expected a mapping, got null'],
    [
      'unknown key in a rule',
      'capframe:\n  version: "0.2"\n  rules:\n    - tool: database.query\n      capabilty: read-only\n',
      'p.yaml:5:7: unknown key "capabilty"; expected one of: tool, resource, prompt, capability, ttl, agents, when, effect, rate_limit',
    ],
    [
      'unknown top-level key',
      'capframe:\n  version: "0.2"\n  defualt_policy: allow\n',
      'p.yaml:3:3: unknown key "defualt_policy"; expected one of: version, default_policy, issuer, state_dir, store, servers, agents, capabilities, rules, auto_mint, on_store_failure, audit, screen, max_delegation_depth, allowed_origins, allowed_hosts, redis',
    ],
    ['unknown key beside capframe', 'capframe:\n  version: "0.2"\nrules: []\n', 'p.yaml:3:1: unknown key "rules"; expected one of: capframe'],
    [
      'invalid regex',
      'capframe:\n  version: "0.2"\n  capabilities:\n    ro:\n      when:\n        - { arg: sql, op: matches, value: "(" }\n',
      'p.yaml:6:43: invalid regular expression "(": /(/u: Unterminated group',
    ],
    [
      'unknown operator',
      'capframe:\n  version: "0.2"\n  rules:\n    - tool: payments.refund\n      when:\n        - arg: amount\n          op: "=<"\n          value: 50\n',
      'p.yaml:7:15: unknown operator "=<"; expected one of == != < <= > >= in not_in matches not_matches starts_with contains max_length path_within url_origin_in url_path_within absent',
    ],
    [
      'url_path_within given a whole URL',
      'capframe:\n  version: "0.2"\n  rules:\n    - tool: http.fetch\n      effect: deny\n      when: [{ arg: url, op: url_path_within, value: "https://a.example/admin" }]\n',
      'p.yaml:6:54: url_path_within takes a path such as "/api/v1", not a URL (got "https://a.example/admin"); pin the origin with url_origin_in',
    ],
    [
      'url_path_within given a relative path',
      'capframe:\n  version: "0.2"\n  capabilities:\n    docs:\n      when:\n        - { arg: url, op: url_path_within, value: docs }\n',
      'p.yaml:6:51: url_path_within expected a path starting with "/" such as "/api/v1", got "docs"',
    ],
    [
      'constraint value of the wrong type',
      'capframe:\n  version: "0.2"\n  rules:\n    - tool: payments.refund\n      when: [{ arg: amount, op: "<=", value: "50" }]\n',
      'p.yaml:5:46: <= needs a number value, got a string',
    ],
    [
      'unknown key in a constraint',
      'capframe:\n  version: "0.2"\n  rules:\n    - tool: x.y\n      when: [{ arg: a, op: "==", val: 1 }]\n',
      'p.yaml:5:14: == needs a "value"\np.yaml:5:34: unknown key "val" in constraint; expected arg, op, value',
    ],
    ['server with command and url', 'capframe:\n  version: "0.2"\n  servers:\n    db: { command: node, url: "http://x" }\n', 'p.yaml:4:9: a server needs exactly one of "command" (stdio) or "url" (Streamable HTTP)'],
    ['url server with args', 'capframe:\n  version: "0.2"\n  servers:\n    db: { url: "http://x", args: [a] }\n', 'p.yaml:4:34: "args" applies to stdio servers ("command"), not to a "url" server'],
    ['server url not http', 'capframe:\n  version: "0.2"\n  servers:\n    db: { url: "ftp://x" }\n', 'p.yaml:4:16: expected an http:// or https:// URL, got "ftp://x"'],
    ['env value not a string', 'capframe:\n  version: "0.2"\n  servers:\n    db: { command: node, env: { PORT: 8080 } }\n', 'p.yaml:4:39: expected a string (quote it), got a number'],
    ['server name with a dot', 'capframe:\n  version: "0.2"\n  servers:\n    my.db: { command: node }\n', 'p.yaml:4:5: server name "my.db" is not allowed; expected letters, digits, _ or - (no dots), and not "capframe"'],
    ['bad key hash', 'capframe:\n  version: "0.2"\n  agents:\n    bot: { key_sha256: "abc" }\n', 'p.yaml:4:24: expected key_sha256, the hex SHA-256 of the agent API key (64 hex digits)'],
    [
      'rule names an undefined agent',
      `capframe:\n  version: "0.2"\n  agents:\n    bot: { key_sha256: "${HEX}" }\n  rules:\n    - tool: x.y\n      agents: [bot, bott]\n`,
      'p.yaml:7:21: agent "bott" is not defined under agents',
    ],
    ['ttl on a deny rule', 'capframe:\n  version: "0.2"\n  rules:\n    - tool: x.y\n      effect: deny\n      ttl: 5\n', 'p.yaml:6:7: "ttl" has no meaning on a deny rule; remove it or make the rule effect: allow'],
    ['unknown effect', 'capframe:\n  version: "0.2"\n  rules:\n    - tool: x.y\n      effect: block\n', 'p.yaml:5:15: expected one of "allow", "deny", got "block"'],
    [
      'rule without tool',
      'capframe:\n  version: "0.2"\n  rules:\n    - ttl: 5\n',
      'p.yaml:4:7: missing required key "tool", "resource" or "prompt"; a rule names one tool ("<server>.<tool>"), resource ("<server>:<uri>") or prompt ("<server>.<prompt>") pattern',
    ],
    ['tool with a space', 'capframe:\n  version: "0.2"\n  rules:\n    - tool: "database query"\n', 'p.yaml:4:13: tool "database query" is not a tool name or pattern; expected "<server>.<tool>" or a glob such as "database.*"'],
    ['store not redis', 'capframe:\n  version: "0.2"\n  store: mysql://x\n', 'p.yaml:3:10: expected a redis:// or rediss:// URL (omit store for the embedded file store)'],
    [
      'bad rate_limit',
      'capframe:\n  version: "0.2"\n  rules:\n    - tool: x.y\n      rate_limit: { calls: 0, per: 60, burst: 3 }\n',
      'p.yaml:5:28: calls must be a positive integer\np.yaml:5:40: unknown key "burst"; expected one of: calls, per',
    ],
    ['negative ttl', 'capframe:\n  version: "0.2"\n  rules:\n    - tool: x.y\n      ttl: -5\n', 'p.yaml:5:12: ttl (seconds) must be a positive integer'],
  ];

  it.each(rows)('%s', (_name, text, message) => {
    const error = errorOf(() => parsePolicy(text, 'p.yaml'));
    expect(error.code).toBe('invalid_policy');
    expect(error.message).toBe(message);
  });

  it('reports several problems at once, in file order', () => {
    const text = 'capframe:\n  version: "0.2"\n  rules:\n    - tool: x.y\n      ttl: "5"\n    - tool: a.b\n      when: [{ arg: a, op: matches, value: "[" }]\n  defualt: 1\n';
    const error = errorOf(() => parsePolicy(text, 'p.yaml'));
    expect(error.message.split('\n')).toEqual([
      'p.yaml:5:12: expected a number, got a string',
      'p.yaml:7:44: invalid regular expression "[": /[/u: Unterminated character class',
      'p.yaml:8:3: unknown key "defualt"; expected one of: version, default_policy, issuer, state_dir, store, servers, agents, capabilities, rules, auto_mint, on_store_failure, audit, screen, max_delegation_depth, allowed_origins, allowed_hosts, redis',
    ]);
  });

  it('names the file as it was given when loading from disk', () => {
    const file = write('bad.yaml', 'capframe:\n  version: "0.2"\n  rulez: []\n');
    const error = errorOf(() => loadPolicySync(file));
    expect(error.message).toBe(`${file}:3:3: unknown key "rulez"; expected one of: version, default_policy, issuer, state_dir, store, servers, agents, capabilities, rules, auto_mint, on_store_failure, audit, screen, max_delegation_depth, allowed_origins, allowed_hosts, redis`);
  });

  it('rejects a file that is not UTF-8', () => {
    const file = write('bin.yaml', Buffer.from([0x63, 0x3a, 0x20, 0xff, 0xfe, 0x0a]));
    expect(errorOf(() => loadPolicySync(file)).message).toBe(`${file}:1:1: file is not valid UTF-8`);
  });

  it('missing or unreadable files are policy_not_found naming the path', async () => {
    const dir = tempDir('capframe-policy-');
    const missing = join(dir, 'nope.yaml');
    const sync = errorOf(() => loadPolicySync(missing));
    expect(sync.code).toBe('policy_not_found');
    expect(sync.message).toBe(`cannot read policy file ${missing}: no such file`);
    await expect(loadPolicy(missing)).rejects.toMatchObject({ code: 'policy_not_found', message: `cannot read policy file ${missing}: no such file` });
    mkdirSync(join(dir, 'adir.yaml'));
    expect(errorOf(() => loadPolicySync(join(dir, 'adir.yaml'))).message).toBe(`cannot read policy file ${join(dir, 'adir.yaml')}: it is a directory`);
  });
});
