/**
 * The typed shape of a loaded policy (SPEC §3) and of a decision. Every other
 * module of the runtime depends on these names; change them only with care.
 */

/** Argument-constraint operators (SPEC §4). */
export type Operator =
  | '=='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | 'in'
  | 'not_in'
  | 'matches'
  | 'not_matches'
  | 'starts_with'
  | 'contains'
  | 'max_length'
  | 'path_within'
  | 'url_origin_in'
  | 'url_path_within'
  | 'absent';

/** A constraint as written in YAML or carried in a token's `"when"` claim. */
export interface Constraint {
  /** Dotted path into the call's arguments, e.g. `"filter.owner"`. */
  arg: string;
  op: Operator;
  /** Absent only for `absent`. */
  value?: unknown;
}

/** Constraints validated and compiled once (regexes, roots, origins), checked many times. */
export interface CompiledConstraints {
  /** The constraints exactly as given (plain data, safe to copy into a token). */
  readonly source: readonly Constraint[];
  /** All constraints hold → `{ ok: true }`; else the first failure, naming arg, op and why. */
  check(args: unknown): { ok: true } | { ok: false; reason: string };
}

/**
 * An upstream MCP server: a stdio child process or a Streamable HTTP URL.
 * `timeout` is in seconds (like every duration in the policy file). A relative
 * `cwd` is kept as written; the runtime resolves it against the policy's directory.
 * `maxResultBytes` (`max_result_bytes`) caps one answer; unset means 8 MiB.
 */
export type ServerConfig =
  | ({ command: string; args?: string[]; env?: Record<string, string>; cwd?: string } & ServerServing)
  | ({ url: string; headers?: Record<string, string> } & ServerServing);

/** What a server entry says about serving it, stdio or HTTP alike. */
export interface ServerServing {
  timeout?: number;
  maxResultBytes?: number;
  /**
   * `qualified` (default): its tools and prompts appear as `<server>.<name>` and its
   * resources as `<server>:<uri>`; `upstream`: under the upstream's own names (a
   * transparent proxy for clients that expect them). Rules and tokens name
   * `<server>.<tool>` and `<server>:<uri>` either way.
   */
  names?: 'qualified' | 'upstream';
  /** Which server-to-client requests of this upstream are relayed to the calling session; unset kinds take {@link DEFAULT_RELAY}. */
  relay?: Partial<Record<RelayKind, 'allow' | 'deny'>>;
}

/** The server-to-client requests an upstream may send during a call. */
export type RelayKind = 'sampling' | 'elicitation' | 'roots';

/**
 * Relayed unless the policy says otherwise: elicitation (the user answers it), not
 * sampling (the upstream would spend the client's model on text of its choosing) nor
 * roots (they disclose the client's local paths, and some servers widen what they serve
 * to them).
 */
export const DEFAULT_RELAY: Readonly<Record<RelayKind, 'allow' | 'deny'>> = Object.freeze({ sampling: 'deny', elicitation: 'allow', roots: 'deny' });

/**
 * An agent that authenticates with an API key. `keySha256` is lowercase hex;
 * `autoMint` is the agent's own `auto_mint`, or the policy's when unset.
 * `holderKeys` are the raw Ed25519 public keys (lowercase hex) the agent holds: a
 * delegated token it presents must be bound (in its last link's `cnf`) to one of them.
 */
export interface AgentConfig {
  keySha256: string;
  autoMint: boolean;
  /** `pdp: true`: the agent's key may call the AuthZEN decision API (as a policy enforcement point). */
  pdp: boolean;
  holderKeys: readonly string[];
}

/**
 * One `audit.sinks` entry: every audit line is streamed there as OCSF. `ca` is an
 * absolute path; `queue` is how many undelivered lines are kept in memory.
 */
export type AuditSinkConfig =
  | { type: 'syslog'; url: string; ca?: string; queue: number }
  | { type: 'http'; url: string; ca?: string; headers: Readonly<Record<string, string>>; queue: number };

/** What a rule names: tools (`tool:`), resources (`resource:`) or prompts (`prompt:`). */
export type RuleKind = 'tool' | 'resource' | 'prompt';

/** One policy rule, in file order. */
export interface Rule {
  kind: RuleKind;
  /**
   * Exact name or glob (`*` matches any run of characters) of what the rule names, by
   * kind: `<server>.<tool>`, `<server>:<uri>` or `<server>.<prompt>`.
   */
  tool: string;
  effect: 'allow' | 'deny';
  capability?: string;
  /** Upper bound, in seconds, on tokens minted under this rule. */
  ttl?: number;
  agents?: string[];
  /** The rule's own constraints (its capability's are kept on the capability). */
  when: CompiledConstraints;
  /** At most `calls` calls per `per` seconds. */
  rateLimit?: { calls: number; per: number };
  /** 1-based line of the rule in the policy file. */
  line: number;
}

/** What a tool call is decided on. */
export interface DecideInput {
  /** The authenticated agent or the token's `sub`; undefined when unknown. */
  agent?: string;
  /** `<server>.<tool>`; for resource and prompt engines, `<server>:<uri>` or `<server>.<prompt>`. */
  tool: string;
  /** The call's arguments, as they will be forwarded (a resource read's are `{uri}`, a prompt's its arguments). */
  args: unknown;
  /** The verified token's scope; `cap` restricts the decision to rules of that capability. */
  token?: { tool: string; cap?: string };
}

/**
 * The verdict. `code` is `ok` when allowed, otherwise one of `no_rule`,
 * `denied_by_rule`, `constraint_failed`, `agent_not_allowed`, `agent_unknown`
 * (an agent the policy does not define) or `tool_mismatch` (the token does not
 * cover the tool).
 */
export interface Decision {
  allowed: boolean;
  code: string;
  reason: string;
  rule?: Rule;
}

/** What `capframe mint` may issue for a request. */
export interface Grant {
  rule: Rule;
  capability?: string;
  /** TTL cap in seconds: the rule's `ttl`, 300 when it has none. */
  ttl: number;
  /** The rule's constraints then its capability's, raw, for the token's `"when"` claim. */
  when: Constraint[];
}

/** Decisions on one kind of name (tools, resources or prompts), each with its own rules. */
export interface AccessEngine {
  decide(input: DecideInput): Decision;
  grant(request: { tool: string; capability?: string; agent?: string }): Grant | Decision;
  couldGrant(name: string, agent?: string): boolean;
  /** Whether some name matching `pattern` (a glob) could be granted to `agent`; may answer true when none can, never the reverse. */
  couldGrantSome(pattern: string, agent?: string): boolean;
}

/** A validated, compiled policy. Records have null prototypes: look names up with `Object.hasOwn`. */
export interface Policy {
  /** Absolute path of the policy file, or `<inline>`. */
  file: string;
  version: string;
  defaultPolicy: 'deny' | 'allow';
  issuer?: string;
  /** Absolute; default `<policy dir>/.capframe`. */
  stateDir: string;
  store?: string;
  servers: Record<string, ServerConfig>;
  agents: Record<string, AgentConfig>;
  capabilities: Record<string, { when: CompiledConstraints }>;
  rules: Rule[];
  autoMint: boolean;
  onStoreFailure: 'deny' | 'use_cached';
  /**
   * The Redis store's settings (`redis:`): key prefix (default `capframe:`) and how long a
   * revocation outlives its token's expiry, in seconds (default 60).
   */
  redis: { prefix: string; revocationGrace: number };
  /** Delegations accepted below a root token (`max_delegation_depth`, default 4). */
  maxDelegationDepth: number;
  /** `path` is absolute when given (relative paths resolve against the policy's directory). */
  /** `syncMs`: the audit log is fsynced at most this long after a write (`audit.sync_ms`, default 100; 0: only on shutdown). */
  audit: { logArgs: boolean; path?: string; syncMs: number; sinks: readonly AuditSinkConfig[] };
  /**
   * The `screen:` section: `tools`, `prompts` and `resources` (each default true) withhold
   * upstream definitions that address the model or hide characters; `allow` lists the
   * `<server>.<tool>`, `<server>.<prompt>` and `<server>:<uri>` names served despite that.
   */
  screen: { tools: boolean; prompts: boolean; resources: boolean; allow: readonly string[] };
  /** Browser origins `serve` accepts beyond loopback ones, normalized (`scheme://host[:port]`). */
  allowedOrigins: readonly string[];
  /** `Host` header values `serve` accepts beyond loopback names, lower case. */
  allowedHosts: readonly string[];
  /** Things that load but deserve attention, e.g. `default_policy: allow`. */
  warnings: string[];
  /**
   * Decides a tool call or, for a resource name (`<server>:<uri>`, the only names with a
   * `:`), a resource read: each kind by its own rules.
   */
  decide(input: DecideInput): Decision;
  /** What may be minted for a tool or, for a resource name or pattern, a resource. */
  grant(request: { tool: string; capability?: string; agent?: string }): Grant | Decision;
  couldGrant(tool: string, agent?: string): boolean;
  /** Resource rules alone (`resource:`); `decide`, `grant` and `couldGrant` hand resource names to it. */
  resources: AccessEngine;
  /** Prompt rules alone (`prompt:`): prompts are decided by the policy for the caller, without tokens. */
  prompts: AccessEngine;
}
