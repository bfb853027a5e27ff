/**
 * The policy file's shape (SPEC §3) as a zod schema. Every mapping is strict:
 * an unknown key is an error, because a typo must not silently loosen policy.
 * Constraint lists are only checked to be lists here; `constraints.ts` validates
 * their contents so YAML and token claims share one validator.
 */
import { z } from 'zod';

import { describeValue, type Problem } from './problem.js';

/** Policy format versions this code reads. */
export const SUPPORTED_VERSIONS: readonly string[] = ['0.2'];

/** A strict mapping whose unknown-key message lists the keys it accepts. */
function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const keys = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `expected one of: ${keys}` : undefined),
  });
}

const nonEmpty = (what: string) => z.string().min(1, { error: `${what} must not be empty` });
const seconds = z
  .number()
  .refine((n) => Number.isFinite(n) && n > 0, { error: 'expected a positive number of seconds' });
const positiveInt = (what: string) =>
  z.number().refine((n) => Number.isSafeInteger(n) && n > 0, { error: `${what} must be a positive integer` });
const constraintList = z.array(z.unknown(), { error: 'expected a list of constraints such as [{ arg: amount, op: "<=", value: 50 }]' });
const stringMap = z.record(z.string(), z.string({ error: (i) => `expected a string (quote it), got ${describeValue(i.input)}` }));

/** Bounds of a server's `max_result_bytes`: smaller cannot carry an initialize answer, larger is no limit. */
export const MIN_RESULT_BYTES = 1024;
export const MAX_RESULT_BYTES = 256 * 1024 * 1024;

const server = strict({
  command: nonEmpty('command').optional(),
  args: z.array(z.string({ error: (i) => `expected a string (quote it), got ${describeValue(i.input)}` })).optional(),
  env: stringMap.optional(),
  cwd: nonEmpty('cwd').optional(),
  url: nonEmpty('url').optional(),
  headers: stringMap.optional(),
  timeout: seconds.optional(),
  max_result_bytes: z
    .number()
    .refine((n) => Number.isSafeInteger(n) && n >= MIN_RESULT_BYTES && n <= MAX_RESULT_BYTES, {
      error: `max_result_bytes must be a whole number of bytes from ${MIN_RESULT_BYTES} (1 KiB) to ${MAX_RESULT_BYTES} (256 MiB); the default is 8388608 (8 MiB)`,
    })
    .optional(),
  names: z.enum(['qualified', 'upstream']).optional(),
  relay: strict({
    sampling: z.enum(['allow', 'deny']).optional(),
    elicitation: z.enum(['allow', 'deny']).optional(),
    roots: z.enum(['allow', 'deny']).optional(),
  }).optional(),
}).superRefine((s, ctx) => {
  if ((s.command === undefined) === (s.url === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'a server needs exactly one of "command" (stdio) or "url" (Streamable HTTP)' });
    return;
  }
  if (s.url !== undefined) {
    for (const key of ['args', 'env', 'cwd'] as const) {
      if (s[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" applies to stdio servers ("command"), not to a "url" server` });
    }
    let ok = false;
    try {
      const u = new URL(s.url);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) ctx.addIssue({ code: 'custom', path: ['url'], message: `expected an http:// or https:// URL, got ${JSON.stringify(s.url)}` });
  } else if (s.headers !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['headers'], message: '"headers" applies to "url" servers, not to a stdio "command" server' });
  }
});

const agent = strict({
  key_sha256: z
    .string({ error: 'expected key_sha256, the hex SHA-256 of the agent API key (64 hex digits)' })
    .regex(/^[0-9a-fA-F]{64}$/, { error: 'expected key_sha256, the hex SHA-256 of the agent API key (64 hex digits)' }),
  auto_mint: z.boolean().optional(),
  /** The agent's holder public keys (hex or base64url): it must hold the last link of a delegated token it presents. */
  /** May authenticate to the AuthZEN decision API (`/access/v1/*`) as a policy enforcement point. */
  pdp: z.boolean().optional(),
  holder_keys: z
    .array(z.string({ error: (i) => `expected a public key as a quoted hex or base64url string, got ${describeValue(i.input)}` }))
    .min(1, { error: 'holder_keys must list at least one public key (omit it otherwise)' })
    .optional(),
});

const capability = strict({ when: constraintList.optional() });

/** Longest queue of undelivered lines a sink may hold in memory (the audit file keeps the rest). */
export const MAX_SINK_QUEUE = 1_000_000;

/** `audit.sinks[]`: where every audit line is streamed as OCSF (the local file stays the source of truth). */
const auditSink = strict({
  type: z.enum(['syslog', 'http']),
  url: nonEmpty('url'),
  /** PEM file of the CA that signed the receiver's certificate (tls:// and https:// only). */
  ca: nonEmpty('ca').optional(),
  headers: stringMap.optional(),
  queue: z
    .number()
    .refine((n) => Number.isSafeInteger(n) && n >= 1 && n <= MAX_SINK_QUEUE, { error: `queue must be a whole number of lines from 1 to ${MAX_SINK_QUEUE} (default 10000)` })
    .optional(),
}).superRefine((sink, ctx) => {
  let url: URL | undefined;
  try {
    url = new URL(sink.url);
  } catch {
    url = undefined;
  }
  const schemes = sink.type === 'syslog' ? ['tcp:', 'tls:'] : ['http:', 'https:'];
  if (url === undefined || !schemes.includes(url.protocol) || url.hostname === '') {
    const expected = sink.type === 'syslog' ? 'tcp://host:514 or tls://host:6514' : 'an http:// or https:// URL';
    ctx.addIssue({ code: 'custom', path: ['url'], message: `expected ${expected}, got ${JSON.stringify(sink.url)}` });
    return;
  }
  if (sink.type === 'syslog' && url.port === '') ctx.addIssue({ code: 'custom', path: ['url'], message: `a syslog url needs a port, e.g. ${url.protocol}//${url.hostname}:${url.protocol === 'tls:' ? 6514 : 514}` });
  if (sink.type === 'syslog' && (url.pathname.replace(/^\/$/, '') !== '' || url.search !== '')) ctx.addIssue({ code: 'custom', path: ['url'], message: 'a syslog url is only scheme://host:port' });
  if (sink.ca !== undefined && url.protocol !== 'tls:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', path: ['ca'], message: '"ca" applies to tls:// and https:// sinks' });
  if (sink.headers !== undefined && sink.type !== 'http') ctx.addIssue({ code: 'custom', path: ['headers'], message: '"headers" applies to http sinks' });
});

const rule = strict({
  tool: nonEmpty('tool').optional(),
  resource: nonEmpty('resource').optional(),
  prompt: nonEmpty('prompt').optional(),
  capability: nonEmpty('capability').optional(),
  ttl: positiveInt('ttl (seconds)').optional(),
  agents: z.array(nonEmpty('agent name')).min(1, { error: 'agents must list at least one agent (omit it to allow any agent)' }).optional(),
  when: constraintList.optional(),
  effect: z.enum(['allow', 'deny']).optional(),
  rate_limit: strict({ calls: positiveInt('calls'), per: seconds }).optional(),
}).superRefine((r, ctx) => {
  const named = (['tool', 'resource', 'prompt'] as const).filter((key) => r[key] !== undefined);
  if (named.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      message:
        named.length === 0
          ? 'missing required key "tool", "resource" or "prompt"; a rule names one tool ("<server>.<tool>"), resource ("<server>:<uri>") or prompt ("<server>.<prompt>") pattern'
          : `a rule names exactly one of "tool", "resource" or "prompt", not ${named.map((k) => `"${k}"`).join(' and ')}; write one rule for each`,
    });
  }
});

const body = strict({
  version: z
    .string({
      error: (i) => (i.input === undefined ? 'missing required key; expected a quoted string such as "0.2"' : `expected version as a quoted string such as "0.2", got ${describeValue(i.input)}`),
    })
    .refine((v) => SUPPORTED_VERSIONS.includes(v), { error: `unsupported version; this capframe reads version ${SUPPORTED_VERSIONS.map((v) => `"${v}"`).join(', ')}` }),
  default_policy: z.enum(['deny', 'allow']).optional(),
  issuer: nonEmpty('issuer').optional(),
  state_dir: nonEmpty('state_dir').optional(),
  store: nonEmpty('store')
    .refine((s) => /^rediss?:\/\/./i.test(s), { error: 'expected a redis:// or rediss:// URL (omit store for the embedded file store)' })
    .optional(),
  servers: z.record(z.string(), server).optional(),
  agents: z.record(z.string(), agent).optional(),
  capabilities: z.record(z.string(), capability).optional(),
  rules: z.array(rule).optional(),
  auto_mint: z.boolean().optional(),
  on_store_failure: z.enum(['deny', 'use_cached']).optional(),
  audit: strict({
    log_args: z.boolean().optional(),
    path: nonEmpty('audit.path').optional(),
    /** fsync the audit log at most this many ms after a write (default 100; 0: only on shutdown). */
    sync_ms: z
      .number()
      .refine((n) => Number.isSafeInteger(n) && n >= 0 && n <= 60_000, { error: 'sync_ms must be a whole number of milliseconds from 0 to 60000 (default 100)' })
      .optional(),
    sinks: z.array(auditSink).optional(),
  }).optional(),
  screen: strict({
    tools: z.boolean().optional(),
    prompts: z.boolean().optional(),
    resources: z.boolean().optional(),
    allow: z.array(nonEmpty('a screen.allow entry')).optional(),
  }).optional(),
  max_delegation_depth: z
    .number()
    .refine((n) => Number.isSafeInteger(n) && n >= 0 && n <= 16, { error: 'max_delegation_depth must be a whole number from 0 (no delegated tokens) to 16' })
    .optional(),
  allowed_origins: z.array(nonEmpty('origin'), { error: 'expected a list of origins such as ["https://console.example.com"]' }).optional(),
  allowed_hosts: z.array(nonEmpty('host'), { error: 'expected a list of host names such as ["mcp.example.com"]' }).optional(),
  /** The Redis store's settings (the store itself is `store:` or CAPFRAME_REDIS_URL). */
  redis: strict({
    prefix: z
      .string({ error: 'expected the key prefix as a quoted string, e.g. "capframe:"' })
      .regex(/^[^\s*?[\]]*$/, { error: 'the key prefix must not contain spaces or glob characters (* ? [ ])' })
      .optional(),
    revocation_grace: z
      .number()
      .refine((n) => Number.isFinite(n) && n >= 0 && n <= 86_400, { error: 'revocation_grace must be a number of seconds from 0 to 86400 (the default is 60)' })
      .optional(),
  }).optional(),
});

/** The whole file: one top-level `capframe:` mapping. */
export const policyFileSchema = strict({ capframe: body });

export type PolicyFile = z.infer<typeof policyFileSchema>;
export type PolicyBody = PolicyFile['capframe'];
export type RuleInput = NonNullable<PolicyBody['rules']>[number];
export type ServerInput = NonNullable<PolicyBody['servers']>[string];

const MISSING = 'missing required key';

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

/** Default wording for zod issues the schema gives no message of its own. */
function defaultMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return `${MISSING}; expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
  }
  if (issue.code === 'invalid_value') {
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(issue.input) ?? describeValue(issue.input)}`;
  }
  return undefined;
}

/**
 * Validates parsed YAML; problems carry data paths for `formatProblems`.
 *
 * @example
 * const r = validatePolicyFile({ capframe: { version: '0.2', rulez: [] } });
 * // { problems: [{ path: ['capframe'], key: 'rulez', message: 'unknown key "rulez"; expected one of: version, …' }] }
 */
export function validatePolicyFile(data: unknown): { value: PolicyFile } | { problems: Problem[] } {
  const result = policyFileSchema.safeParse(data, { error: defaultMessage });
  if (result.success) return { value: result.data };
  return { problems: issuesToProblems(result.error.issues) };
}

/** Turns zod issues into located problems; an unknown-key issue becomes one problem per key. */
export function issuesToProblems(issues: readonly z.core.$ZodIssue[]): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path, key, message: `unknown key "${key}"; ${issue.message}` });
    } else if (issue.message.startsWith(MISSING) && typeof path[path.length - 1] === 'string') {
      // Point at the mapping that lacks the key, and name the key.
      problems.push({ path: path.slice(0, -1), message: `${MISSING} "${String(path[path.length - 1])}"${issue.message.slice(MISSING.length)}` });
    } else {
      problems.push({ path, message: issue.message });
    }
  }
  return problems;
}
