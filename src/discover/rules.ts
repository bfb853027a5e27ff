/**
 * The deterministic discovery rules. Each rule is a small function from one
 * tool (plus its flattened schema) to at most one finding; shadowing looks
 * across servers. Words are matched as whole tokens (see words.ts), never as
 * substrings.
 */
import { frameworksFor } from './frameworks.js';
import { constraintPath, displayPath, walkSchema, type SchemaNode, type WalkResult } from './schema-walk.js';
import { SEVERITIES, type ArgumentHints, type Finding, type RuleId, type Severity, type Tool } from './types.js';
import { hasAnyWord, hasPhrase, matchingWords, near, wordSet, words } from './words.js';

/** Everything a rule looks at, computed once per tool. */
export interface ToolContext {
  server: string;
  tool: Tool;
  /** `<server>.<tool>`. */
  qualified: string;
  nameWords: string[];
  /** Words of the title and description. */
  textWords: string[];
  walk: WalkResult;
  /** `readOnlyHint: true`. */
  readOnly: boolean;
  /** `readOnlyHint: false` or `destructiveHint: true`: the server says the tool changes things. */
  declaresSideEffect: boolean;
}

/** A per-tool rule. */
export type ToolRule = (ctx: ToolContext) => Finding | undefined;

/** Title and remediation of each rule, shared by all its findings. */
export const RULE_INFO: Readonly<Record<RuleId, { title: string; remediation: string }>> = {
  'CF-EXEC-001': {
    title: 'Code or command execution',
    remediation:
      'Deny this tool (effect: deny) unless an agent truly needs it; if it must be allowed, grant it to one named agent with a short TTL and an `in` or `matches` constraint that allow-lists exact commands.',
  },
  'CF-MONEY-001': {
    title: 'Unbounded money-like amount',
    remediation:
      'Add a `<=` constraint on the amount in the policy rule (and a `maximum` in the tool schema), keep the TTL short and add a rate_limit.',
  },
  'CF-SSRF-001': {
    title: 'URL input without an allow-list (SSRF surface)',
    remediation:
      'Constrain the URL with `url_origin_in` to the origins the agent needs; also give the schema a `pattern` or `enum` so the server rejects other targets.',
  },
  'CF-FS-001': {
    title: 'Filesystem write or delete',
    remediation: 'Constrain every path argument with `path_within` to a dedicated directory, and keep the TTL short.',
  },
  'CF-SECRET-001': {
    title: 'Secret or credential access',
    remediation:
      'Deny by default; if needed, grant to one agent with a short TTL. Prefer a tool that uses the secret server-side over one that returns it to the model.',
  },
  'CF-TEXT-001': {
    title: 'Unconstrained free text in a side-effecting tool',
    remediation:
      'Bound the text with `max_length` (and `matches` or `in` where the values are known) in the policy rule; add `maxLength`/`pattern` to the tool schema.',
  },
  'CF-MUT-001': {
    title: 'Mutation without a declared side effect',
    remediation:
      'Treat the tool as side-effecting: short TTL and constraints. Ask the server author to set `readOnlyHint: false` and `destructiveHint` correctly.',
  },
  'CF-PROMPT-001': {
    title: 'Tool text addresses the model (possible tool poisoning)',
    remediation:
      'Do not expose this tool until its definition is reviewed; pin the reviewed definition with `capframe discover --lock` so later changes are refused.',
  },
  'CF-UNICODE-001': {
    title: 'Hidden or control characters in tool text',
    remediation:
      'Treat as hostile until reviewed: invisible characters can carry instructions a reviewer cannot see. Pin the reviewed definition with `--lock`.',
  },
  'CF-SHADOW-001': {
    title: 'Tool name exposed by more than one server (shadowing)',
    remediation:
      'Grant only the server you intend (rules use `<server>.<tool>`), remove or rename the duplicate, and pin definitions with `--lock`.',
  },
  'CF-SCHEMA-001': {
    title: 'Input schema too large or deep to analyse fully',
    remediation: 'Review this tool by hand; simplify the schema (fewer alternatives, less nesting) so it can be checked.',
  },
};

// ---- vocabularies -----------------------------------------------------------

const EXEC_NAME = wordSet('exec execute executes eval shell bash sh zsh powershell pwsh cmd subprocess spawn popen terminal repl interpreter');
const RUN_VERBS = wordSet('run runs execute executes executing exec eval evaluate evaluates evaluating interpret interprets spawn spawns');
const EXEC_OBJECTS = wordSet('command commands cmd cmds shell script scripts code program programs python javascript js bash powershell binary binaries snippet snippets');
const EXEC_PARAM = wordSet('command commands cmd cmdline commandline script shell bash powershell');

const MONEY = wordSet(
  'amount amounts price prices cost costs fee fees total subtotal balance payment payments refund refunds charge charges salary wage wages budget spend payout payouts deposit withdrawal transfer usd eur gbp jpy cent cents dollar dollars euro euros money cash credit credits debit tip bid funds invoice',
);
/** A money word next to one of these is a count or a measure, not money ("total_pages"). */
const NOT_MONEY = wordSet('count pages page items results rows records size bytes lines steps tokens retries attempts seconds ms minutes hours days percent percentage ratio weight length width height');

const URL_WORDS = wordSet('url urls uri uris href endpoint endpoints webhook webhooks host hostname');
const URL_FORMATS: ReadonlySet<string> = new Set(['uri', 'url', 'iri', 'uri-reference', 'iri-reference', 'uri-template']);

const FS_NOUNS = wordSet('file files filename dir dirs directory directories folder folders path paths fs filesystem disk');
const FS_WRITE = wordSet('write writes create delete remove rm unlink move mv rename edit append overwrite truncate upload copy cp save put chmod chown mkdir rmdir touch patch replace modify update');
const FS_STANDALONE = wordSet('mkdir rmdir unlink rm mv chmod chown');
const FS_DESTRUCTIVE = wordSet('delete remove rm unlink rmdir move mv overwrite truncate rename');
const PATH_WORDS = wordSet('path paths filepath filename file dir directory folder dirname');
const FS_ROLE_WORDS = wordSet('source destination src dest target');

const SECRET_WORDS = wordSet('secret secrets password passwords passwd passphrase credential credentials apikey apikeys privatekey keychain keyring keystore dotenv ssh gpg pgp totp');
const SECRET_DESC_WORDS = wordSet('password passwords passwd credential credentials secrets');
const SECRET_PAIRS: readonly (readonly string[])[] = [
  ['api', 'key'], ['api', 'keys'], ['private', 'key'], ['private', 'keys'], ['access', 'key'], ['secret', 'key'],
  ['access', 'token'], ['auth', 'token'], ['bearer', 'token'], ['refresh', 'token'], ['session', 'token'],
  ['client', 'secret'], ['environment', 'variables'], ['environment', 'variable'], ['ssh', 'key'], ['signing', 'key'],
];

const MUTATION_VERBS = wordSet(
  'create update delete remove insert upsert write send refund charge pay transfer drop truncate modify edit move rename upload publish deploy cancel approve revoke grant kill terminate restart reset purge destroy archive append replace merge commit push submit buy purchase sell invite assign disable enable install uninstall ban unblock block lock unlock mute share schedule email notify tweet wipe erase overwrite',
);
/** Verbs that mutate only when they have an object ("add_user", not math "add"). */
const OBJECT_VERBS = wordSet('add set put post close open order start stop clear comment reply');
/** Objects that make an ambiguous verb arithmetic ("add_numbers"). */
const MATH_NOUNS = wordSet('number numbers integer integers int ints float floats value values vector vectors matrix matrices two digits');
const READ_VERBS = wordSet(
  'get list read fetch search find query describe show view check count lookup look retrieve download inspect preview validate verify calculate compute estimate explain summarize print watch',
);

// Zero-width, bidi controls, tag characters (ASCII smuggling), soft hyphen, other C0/C1 controls.
const HIDDEN_CHARS = /[\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\u061C\u180E\u00AD\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]|[\u{E0000}-\u{E007F}]/gu;

const PROMPT_TAG = /<\/?\s*(?:instructions?|important|system|secret|hidden|prompt|admin|assistant|context)\s*>|<\|[a-z_]+\|>|\[\/?INST\]|<<\/?SYS>>/i;
const SHOUTED = /\b(?:IMPORTANT|ATTENTION AI|NOTE TO (?:THE )?(?:AI|ASSISTANT|MODEL|LLM))\b/;
const CREDENTIAL_FILES = /~\/\.ssh|\bid_(?:rsa|ed25519|ecdsa)\b|\.aws\/credentials|\.netrc\b|\.npmrc\b|\.pgpass\b/i;
const OVERRIDE_VERBS = wordSet('ignore disregard forget override bypass');
const OVERRIDE_OBJECTS = wordSet('previous prior above earlier preceding instructions instruction rules guidelines system prompt');
const CONCEAL_LEADS: readonly (readonly string[])[] = [['do', 'not'], ['don', 't'], ['never'], ['without'], ['must', 'not'], ['should', 'not']];
const CONCEAL_VERBS = wordSet('tell telling inform informing mention mentioning reveal revealing notify notifying alert alerting show showing disclose disclosing');
const AUDIENCE = wordSet('user users human humans anyone operator');
const MODEL_PHRASES: readonly (readonly string[])[] = [
  ['you', 'are', 'now'], ['you', 'will', 'now'], ['you', 'should', 'always'], ['you', 'must', 'always'], ['you', 'must', 'first'],
  ['new', 'instructions'], ['system', 'prompt'], ['before', 'using', 'this', 'tool'], ['before', 'using', 'any'],
  ['before', 'calling', 'any'], ['always', 'call', 'this'], ['assistant', 'must'], ['the', 'model', 'must'], ['as', 'an', 'ai'],
  ['ai', 'assistant', 'must'], ['this', 'is', 'a', 'system', 'message'],
];

// ---- context ------------------------------------------------------------------

/**
 * Precomputes what the rules need for one tool.
 *
 * @example
 * const ctx = toolContext('payments', { name: 'refund', inputSchema: { type: 'object' } });
 * ctx.qualified; // 'payments.refund'
 */
export function toolContext(server: string, tool: Tool): ToolContext {
  const annotations = tool.annotations ?? {};
  return {
    server,
    tool,
    qualified: `${server}.${tool.name}`,
    nameWords: words(tool.name),
    textWords: words(`${tool.title ?? ''} ${annotations.title ?? ''} ${tool.description ?? ''}`),
    walk: walkSchema(tool.inputSchema),
    readOnly: annotations.readOnlyHint === true,
    declaresSideEffect: annotations.readOnlyHint === false || annotations.destructiveHint === true,
  };
}

function finding(ctx: ToolContext, rule: RuleId, severity: Severity, detail: string, args: string[] = []): Finding {
  const info = RULE_INFO[rule];
  return {
    id: `${rule}:${ctx.qualified}`,
    rule,
    severity,
    server: ctx.server,
    tool: ctx.qualified,
    title: info.title,
    detail,
    args: [...new Set(args)],
    remediation: info.remediation,
    ...frameworksFor(rule),
  };
}

/** Argument nodes below the root, i.e. actual argument values. */
function argNodes(ctx: ToolContext): SchemaNode[] {
  return ctx.walk.nodes.filter((n) => n.path.length > 0);
}

const isStringish = (n: SchemaNode): boolean => n.types.size === 0 || n.types.has('string');
const isNumberish = (n: SchemaNode): boolean => n.types.size === 0 || n.types.has('number') || n.types.has('integer');
const isEnumerated = (n: SchemaNode): boolean => n.keywords.enum !== undefined || 'const' in n.keywords;

function isExecParam(ctx: ToolContext, n: SchemaNode): boolean {
  if (!isStringish(n) || isEnumerated(n)) return false;
  const w = words(n.name);
  if (hasAnyWord(w, EXEC_PARAM)) return true;
  // "code" alone is often a country or currency code; count it only in a tool that says it runs things.
  return w.includes('code') && (hasAnyWord(ctx.nameWords, RUN_VERBS) || hasAnyWord(ctx.textWords, RUN_VERBS));
}

function isMoneyNode(n: SchemaNode): boolean {
  if (!isNumberish(n) || isEnumerated(n)) return false;
  const w = words(n.name);
  return hasAnyWord(w, MONEY) && !hasAnyWord(w, NOT_MONEY);
}

function isUnboundedMoney(n: SchemaNode): boolean {
  return isMoneyNode(n) && n.keywords.maximum === undefined && n.keywords.exclusiveMaximum === undefined;
}

function isUrlNode(n: SchemaNode): boolean {
  if (!isStringish(n)) return false;
  return hasAnyWord(words(n.name), URL_WORDS) || (n.keywords.format !== undefined && URL_FORMATS.has(n.keywords.format));
}

function isOpenUrl(n: SchemaNode): boolean {
  return isUrlNode(n) && n.keywords.pattern === undefined && !isEnumerated(n);
}

function isFreeText(ctx: ToolContext, n: SchemaNode): boolean {
  // MCP's default for a missing readOnlyHint is "may write", so only a declared read-only tool is exempt.
  if (ctx.readOnly) return false;
  return (
    n.types.has('string') &&
    n.keywords.maxLength === undefined &&
    n.keywords.pattern === undefined &&
    n.keywords.format === undefined &&
    !isEnumerated(n) &&
    // These have their own rules and their own constraint suggestions.
    !isUrlNode(n) &&
    !isExecParam(ctx, n) &&
    !isPathNode(ctx, n)
  );
}

function isFsTool(ctx: ToolContext): boolean {
  return hasAnyWord(ctx.nameWords, FS_NOUNS);
}

function isPathNode(ctx: ToolContext, n: SchemaNode): boolean {
  if (!isStringish(n) || isEnumerated(n)) return false;
  const w = words(n.name);
  return hasAnyWord(w, PATH_WORDS) || (isFsTool(ctx) && hasAnyWord(w, FS_ROLE_WORDS));
}

// ---- rules --------------------------------------------------------------------

/** CF-EXEC-001: the tool runs commands or code (name, parameters, or a description that says so). */
export const execRule: ToolRule = (ctx) => {
  const reasons: string[] = [];
  const nameHits = matchingWords(ctx.nameWords, EXEC_NAME);
  if (nameHits.length > 0) reasons.push(`name has ${quoteList(nameHits)}`);
  if (ctx.nameWords.includes('run') && hasAnyWord(ctx.nameWords, EXEC_OBJECTS)) reasons.push('name says it runs code or commands');
  const params = argNodes(ctx).filter((n) => isExecParam(ctx, n));
  if (params.length > 0) reasons.push(`takes ${quoteList(params.map(displayPath))}`);
  if (near(ctx.textWords, RUN_VERBS, EXEC_OBJECTS, 4)) reasons.push('description says it runs code or commands');
  if (reasons.length === 0) return undefined;
  return finding(ctx, 'CF-EXEC-001', 'critical', `${capitalize(reasons.join('; '))}.`, params.map(displayPath));
};

/** CF-MONEY-001: a money-like number with no maximum, in a tool that may act on it. */
export const moneyRule: ToolRule = (ctx) => {
  // A declared read-only tool moves no money ("convert {amount}"); a read-only claim on a
  // tool named like a payment is caught by CF-MUT-001 instead.
  if (ctx.readOnly && mutationVerbs(ctx.nameWords).length === 0) return undefined;
  const nodes = argNodes(ctx).filter(isUnboundedMoney);
  if (nodes.length === 0) return undefined;
  const args = nodes.map(displayPath);
  return finding(ctx, 'CF-MONEY-001', 'high', `${quoteList(args)} ${args.length > 1 ? 'are' : 'is'} money-like with no maximum.`, args);
};

/** CF-SSRF-001: a URL/URI input with neither a pattern nor an enum. */
export const ssrfRule: ToolRule = (ctx) => {
  const nodes = argNodes(ctx).filter(isOpenUrl);
  if (nodes.length === 0) return undefined;
  const args = nodes.map(displayPath);
  return finding(ctx, 'CF-SSRF-001', 'high', `${quoteList(args)} accept${args.length > 1 ? '' : 's'} any URL or host (no pattern or enum).`, args);
};

/** CF-FS-001: writes, moves or deletes files. */
export const fsRule: ToolRule = (ctx) => {
  const verbs = matchingWords(ctx.nameWords, FS_WRITE);
  const standalone = matchingWords(ctx.nameWords, FS_STANDALONE);
  const pathArgs = argNodes(ctx).filter((n) => isPathNode(ctx, n));
  const byName = (verbs.length > 0 && isFsTool(ctx)) || standalone.length > 0;
  // A write verb plus a path argument is a filesystem write even without a file noun ("save(path, content)").
  const byArgs = !ctx.readOnly && verbs.length > 0 && pathArgs.length > 0;
  if (!byName && !byArgs) return undefined;
  const all = [...new Set([...verbs, ...standalone])];
  const destructive = hasAnyWord(all, FS_DESTRUCTIVE) || ctx.tool.annotations?.destructiveHint === true;
  const args = pathArgs.map(displayPath);
  return finding(
    ctx,
    'CF-FS-001',
    destructive ? 'high' : 'medium',
    `${destructive ? 'Overwrites, moves or deletes' : 'Creates or changes'} files (${quoteList(all)})${args.length > 0 ? `; path arguments ${quoteList(args)}` : ''}.`,
    args,
  );
};

/** CF-SECRET-001: reads or handles secrets, credentials or the environment. */
export const secretRule: ToolRule = (ctx) => {
  const reasons: string[] = [];
  const nameHits = matchingWords(ctx.nameWords, SECRET_WORDS);
  if (ctx.nameWords.includes('env') || ctx.nameWords.includes('environ')) nameHits.push('env');
  const namePairs = SECRET_PAIRS.filter((p) => hasPhrase(ctx.nameWords, p));
  if (nameHits.length > 0 || namePairs.length > 0) reasons.push(`name has ${quoteList([...nameHits, ...namePairs.map((p) => p.join(' '))])}`);
  const params = argNodes(ctx).filter((n) => {
    const w = words(n.name);
    return hasAnyWord(w, SECRET_WORDS) || SECRET_PAIRS.some((p) => hasPhrase(w, p));
  });
  if (params.length > 0) reasons.push(`takes ${quoteList(params.map(displayPath))}`);
  const descPairs = SECRET_PAIRS.filter((p) => hasPhrase(ctx.textWords, p));
  const descWords = matchingWords(ctx.textWords, SECRET_DESC_WORDS);
  if (descPairs.length > 0 || descWords.length > 0) reasons.push(`description mentions ${quoteList([...descPairs.map((p) => p.join(' ')), ...descWords])}`);
  if (reasons.length === 0) return undefined;
  return finding(ctx, 'CF-SECRET-001', 'high', `${capitalize(reasons.join('; '))}.`, params.map(displayPath));
};

/** CF-TEXT-001: a side-effecting tool takes strings with no length, pattern, enum or format. */
export const freeTextRule: ToolRule = (ctx) => {
  const nodes = argNodes(ctx).filter((n) => isFreeText(ctx, n));
  if (nodes.length === 0) return undefined;
  const args = [...new Set(nodes.map(displayPath))];
  return finding(ctx, 'CF-TEXT-001', 'low', `${quoteList(args)} accept${args.length > 1 ? '' : 's'} unbounded free text.`, args);
};

/** The mutation verbs in a tool name, honouring read verbs and verbs that need an object. */
export function mutationVerbs(nameWords: readonly string[]): string[] {
  const [first] = nameWords;
  if (first === undefined || READ_VERBS.has(first)) return [];
  const found = matchingWords(nameWords, MUTATION_VERBS);
  if (OBJECT_VERBS.has(first) && nameWords.length > 1 && !nameWords.slice(1).every((w) => MATH_NOUNS.has(w))) found.unshift(first);
  return [...new Set(found)];
}

/** CF-MUT-001: the name says it changes things, the annotations do not. */
export const mutationRule: ToolRule = (ctx) => {
  if (ctx.declaresSideEffect) return undefined;
  const verbs = mutationVerbs(ctx.nameWords);
  if (verbs.length === 0) return undefined;
  if (ctx.readOnly) {
    return finding(ctx, 'CF-MUT-001', 'high', `Name says it mutates (${quoteList(verbs)}) but the server declares readOnlyHint: true.`);
  }
  return finding(ctx, 'CF-MUT-001', 'medium', `Name says it mutates (${quoteList(verbs)}) but neither readOnlyHint: false nor destructiveHint: true is declared.`);
};

/** Every piece of text a model would read about this tool, with where it was found. */
function toolTexts(ctx: ToolContext): { where: string; text: string }[] {
  const t = ctx.tool;
  const out = [{ where: 'name', text: t.name }];
  if (t.title) out.push({ where: 'title', text: t.title });
  if (t.annotations?.title) out.push({ where: 'annotations.title', text: t.annotations.title });
  if (t.description) out.push({ where: 'description', text: t.description });
  for (const x of ctx.walk.texts) out.push({ where: `inputSchema.${x.where}`, text: x.text });
  for (const n of argNodes(ctx)) out.push({ where: `argument name ${displayPath(n)}`, text: n.name });
  return out;
}

/** Why a text looks like it addresses the model, or undefined. */
export function modelAddressing(raw: string): string | undefined {
  // Judge the text as a model would read it: invisible characters cannot split a word.
  const text = raw.replace(HIDDEN_CHARS, '');
  const tag = PROMPT_TAG.exec(text);
  if (tag) return `contains ${JSON.stringify(tag[0])}`;
  const shout = SHOUTED.exec(text);
  if (shout) return `contains ${JSON.stringify(shout[0])}`;
  const w = words(text);
  if (near(w, OVERRIDE_VERBS, OVERRIDE_OBJECTS, 3)) return 'tells the model to ignore or override earlier instructions';
  for (let i = 0; i < w.length; i++) {
    if (!CONCEAL_VERBS.has(w[i] ?? '')) continue;
    const before = w.slice(Math.max(0, i - 3), i);
    const lead = CONCEAL_LEADS.some((l) => hasPhrase(before, l));
    if (lead && hasAnyWord(w.slice(i + 1, i + 5), AUDIENCE)) return 'tells the model to hide something from the user';
  }
  const phrase = MODEL_PHRASES.find((p) => hasPhrase(w, p));
  if (phrase) return `says ${JSON.stringify(phrase.join(' '))}`;
  const file = CREDENTIAL_FILES.exec(text);
  if (file) return `points at credential file ${JSON.stringify(file[0])}`;
  return undefined;
}

/** CF-PROMPT-001: text aimed at the model rather than describing the tool. */
export const promptRule: ToolRule = (ctx) => {
  const hits: string[] = [];
  for (const { where, text } of toolTexts(ctx)) {
    const why = modelAddressing(text);
    if (why) hits.push(`${where} ${why}`);
  }
  if (hits.length === 0) return undefined;
  return finding(ctx, 'CF-PROMPT-001', 'high', `${hits.slice(0, 5).join('; ')}${hits.length > 5 ? `; and ${hits.length - 5} more` : ''}.`);
};

/** The hidden or control characters in a text, as `U+200B` labels (deduplicated). */
export function hiddenCharacters(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(HIDDEN_CHARS)) {
    const cp = m[0].codePointAt(0) ?? 0;
    // Ordinary whitespace controls are fine in a description.
    if (cp === 0x09 || cp === 0x0a || cp === 0x0d) continue;
    found.add(`U+${cp.toString(16).toUpperCase().padStart(4, '0')}`);
  }
  return [...found];
}

/** CF-UNICODE-001: zero-width, bidi, tag or control characters anywhere in the tool's text. */
export const unicodeRule: ToolRule = (ctx) => {
  const hits: string[] = [];
  for (const { where, text } of toolTexts(ctx)) {
    const chars = hiddenCharacters(text);
    if (chars.length > 0) hits.push(`${where}: ${chars.slice(0, 6).join(', ')}${chars.length > 6 ? ', …' : ''}`);
  }
  if (hits.length === 0) return undefined;
  return finding(ctx, 'CF-UNICODE-001', 'high', `Invisible or control characters in ${hits.slice(0, 5).join('; ')}.`);
};

/** CF-SCHEMA-001: the walk hit a budget, so the other rules may have missed something. */
export const schemaRule: ToolRule = (ctx) =>
  ctx.walk.truncated ? finding(ctx, 'CF-SCHEMA-001', 'medium', 'The input schema exceeded the analysis limits (depth, size or alternatives); some arguments were not checked.') : undefined;

/** All per-tool rules, in report order. */
export const TOOL_RULES: readonly ToolRule[] = [execRule, moneyRule, ssrfRule, fsRule, secretRule, freeTextRule, mutationRule, promptRule, unicodeRule, schemaRule];

/**
 * Runs every per-tool rule on one tool.
 *
 * @example
 * classifyTool('shell', { name: 'exec', inputSchema: { type: 'object', properties: { command: { type: 'string' } } } })
 *   .map((f) => f.id); // ['CF-EXEC-001:shell.exec', 'CF-MUT-001:…' …]
 */
export function classifyTool(server: string, tool: Tool): Finding[] {
  return classifyContext(toolContext(server, tool));
}

/** Like {@link classifyTool} for a precomputed context. */
export function classifyContext(ctx: ToolContext): Finding[] {
  const out: Finding[] = [];
  for (const rule of TOOL_RULES) {
    const f = rule(ctx);
    if (f) out.push(f);
  }
  return out;
}

/**
 * CF-SHADOW-001: the same tool name (or a look-alike differing only in case,
 * separators or Unicode compatibility forms) on two or more servers. One finding
 * per tool involved.
 *
 * @example
 * shadowingFindings([{ server: 'a', tool: readFile }, { server: 'b', tool: readFile }]).length; // 2
 */
export function shadowingFindings(entries: readonly { server: string; tool: Tool }[]): Finding[] {
  const groups = new Map<string, { server: string; tool: Tool }[]>();
  for (const e of entries) {
    const key = words(e.tool.name).join('_');
    if (key === '') continue;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  const out: Finding[] = [];
  for (const group of groups.values()) {
    const servers = new Set(group.map((g) => g.server));
    if (servers.size < 2) continue;
    for (const e of group) {
      const others = group.filter((g) => g.server !== e.server);
      const exact = others.every((o) => o.tool.name === e.tool.name);
      const ctx = { server: e.server, qualified: `${e.server}.${e.tool.name}` } as ToolContext;
      out.push(
        finding(
          ctx,
          'CF-SHADOW-001',
          exact ? 'medium' : 'high',
          `${exact ? 'Same tool name' : 'Look-alike tool name'} also on ${quoteList(others.map((o) => `${o.server}.${o.tool.name}`))}; an agent told to call "${e.tool.name}" may reach the wrong server.`,
        ),
      );
    }
  }
  return out;
}

/**
 * Arguments a drafted policy can constrain: money, open URLs, paths and free
 * text (only those a dotted SPEC §4 path can name — not inside arrays or maps).
 */
export function argumentHints(ctx: ToolContext): ArgumentHints {
  const pick = (pred: (n: SchemaNode) => boolean): { arg: string; required: boolean }[] => {
    const seen = new Map<string, boolean>();
    for (const n of argNodes(ctx)) {
      if (!pred(n)) continue;
      const arg = constraintPath(n);
      if (arg !== undefined) seen.set(arg, (seen.get(arg) ?? false) || n.required);
    }
    return [...seen].map(([arg, required]) => ({ arg, required }));
  };
  return {
    money: pick(isMoneyNode),
    url: pick(isOpenUrl),
    // Reads get a root too: least privilege also limits what can be read.
    path: pick((n) => isPathNode(ctx, n)),
    text: pick((n) => isFreeText(ctx, n)),
  };
}

/** Sorts findings most severe first, then by tool and rule. */
export function sortFindings(findings: Finding[]): Finding[] {
  const rank = (s: Severity): number => SEVERITIES.indexOf(s);
  return [...findings].sort((a, b) => rank(a.severity) - rank(b.severity) || cmp(a.tool, b.tool) || cmp(a.rule, b.rule));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function quoteList(items: readonly string[]): string {
  return items.map((i) => `"${i}"`).join(', ');
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
