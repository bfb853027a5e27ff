/**
 * Walks a tool's whole JSON Schema so the rules see every value the tool
 * accepts: nested properties, array items and tuples, map values
 * (additionalProperties / patternProperties), anyOf / oneOf alternatives,
 * allOf conjunctions and local `$ref`s — with cycle protection and hard budgets,
 * because schemas come from servers we do not trust.
 */

/** JSON Schema primitive type names. */
export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

/** The keywords of one value that the rules care about, merged across allOf/$ref. */
export interface ValueKeywords {
  maximum?: number;
  exclusiveMaximum?: number;
  minimum?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  enum?: unknown[];
  const?: unknown;
  description?: string;
}

/** One value position in the input, as a rule sees it. */
export interface SchemaNode {
  /** Path from the arguments root: property names, `[]` for array items, `*` for map values. Empty for the root. */
  path: string[];
  /** The nearest property name (for array items, the array's name); '' for the root. */
  name: string;
  /** Declared types (from `type`, `const`, `enum`); empty when the schema does not say. */
  types: ReadonlySet<JsonType>;
  keywords: ValueKeywords;
  /** Required at every level from the root (so a constraint on it cannot fail just for being absent). */
  required: boolean;
}

/** A piece of text found in the schema (description, title, enum/const/default/example strings). */
export interface SchemaText {
  /** Dotted location, e.g. `properties.sql.description`. */
  where: string;
  text: string;
}

export interface WalkResult {
  nodes: SchemaNode[];
  texts: SchemaText[];
  /** True when a budget or the depth limit stopped the walk early; the rules then say so. */
  truncated: boolean;
}

/** Limits that keep a hostile schema from exhausting memory or time. */
export interface WalkLimits {
  maxDepth?: number;
  maxNodes?: number;
  maxAlternatives?: number;
}

type JsonObject = Record<string, unknown>;

/** A sub-schema plus the $refs followed to reach it (the cycle guard travels with it). */
interface Sub {
  schema: unknown;
  refs: ReadonlySet<string>;
}

interface Flat {
  types: Set<JsonType> | undefined;
  keywords: ValueKeywords;
  properties: Map<string, Sub[]>;
  required: Set<string>;
  items: Sub[];
  tuple: Sub[][];
  mapValues: Sub[];
}

const TYPES: ReadonlySet<string> = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

/**
 * Flattens `schema` into the value positions it describes.
 *
 * @example
 * const { nodes } = walkSchema({
 *   type: 'object',
 *   properties: { payment: { $ref: '#/$defs/money' } },
 *   $defs: { money: { type: 'object', properties: { amount: { type: 'number' } } } },
 * });
 * nodes.map((n) => n.path.join('.')); // ['', 'payment', 'payment.amount']
 */
export function walkSchema(schema: unknown, limits: WalkLimits = {}): WalkResult {
  const maxDepth = limits.maxDepth ?? 32;
  const maxNodes = limits.maxNodes ?? 5000;
  const maxAlternatives = limits.maxAlternatives ?? 64;
  const root = isObject(schema) ? schema : {};
  const nodes: SchemaNode[] = [];
  const texts: SchemaText[] = [];
  let truncated = false;
  const textSeen = new Set<unknown>();

  const collectTexts = (node: JsonObject, where: string): void => {
    // Each schema object is read once even when reached through several $refs.
    if (textSeen.has(node)) return;
    textSeen.add(node);
    for (const key of ['description', 'title', '$comment'] as const) {
      const value = node[key];
      if (typeof value === 'string') texts.push({ where: join(where, key), text: value });
    }
    for (const key of ['enum', 'examples'] as const) {
      const list = node[key];
      if (Array.isArray(list)) list.forEach((v, i) => typeof v === 'string' && texts.push({ where: `${join(where, key)}[${i}]`, text: v }));
    }
    for (const key of ['const', 'default'] as const) {
      const value = node[key];
      if (typeof value === 'string') texts.push({ where: join(where, key), text: value });
    }
  };

  /** Resolves a local JSON pointer; undefined for remote or broken refs. */
  const resolveRef = (ref: string): unknown => {
    if (ref === '#') return root;
    if (!ref.startsWith('#/')) return undefined;
    let cur: unknown = root;
    for (const raw of ref.slice(2).split('/')) {
      const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      if (!isObject(cur) && !Array.isArray(cur)) return undefined;
      cur = (cur as Record<string, unknown>)[key];
      if (cur === undefined) return undefined;
    }
    return cur;
  };

  /**
   * Turns one schema into its alternatives: allOf and $ref are merged into each
   * alternative (a conjunction), anyOf/oneOf multiply them (a disjunction).
   * `refs` holds the $refs on the current expansion chain: a ref seen again is a
   * cycle and contributes nothing more.
   */
  const flatten = (node: unknown, where: string, refs: ReadonlySet<string>, depth: number): Flat[] => {
    if (node === false) return [];
    if (!isObject(node) || depth > maxDepth) {
      if (depth > maxDepth) truncated = true;
      return [emptyFlat()];
    }
    collectTexts(node, where);
    let alternatives: Flat[] = [ownFlat(node, refs)];
    const conjuncts: { schema: unknown; where: string; refs: ReadonlySet<string> }[] = [];
    if (typeof node.$ref === 'string') {
      const ref = node.$ref;
      if (!refs.has(ref)) {
        const target = resolveRef(ref);
        if (target !== undefined) conjuncts.push({ schema: target, where: ref, refs: new Set([...refs, ref]) });
      }
    }
    if (Array.isArray(node.allOf)) node.allOf.forEach((s, i) => conjuncts.push({ schema: s, where: `${join(where, 'allOf')}[${i}]`, refs }));
    for (const c of conjuncts) {
      alternatives = cross(alternatives, flatten(c.schema, c.where, c.refs, depth + 1));
    }
    for (const key of ['anyOf', 'oneOf'] as const) {
      const list = node[key];
      if (!Array.isArray(list) || list.length === 0) continue;
      const options = list.flatMap((s, i) => flatten(s, `${join(where, key)}[${i}]`, refs, depth + 1));
      alternatives = cross(alternatives, options);
    }
    if (alternatives.length > maxAlternatives) {
      truncated = true;
      alternatives = alternatives.slice(0, maxAlternatives);
    }
    return alternatives;
  };

  const cross = (left: Flat[], right: Flat[]): Flat[] => {
    const out: Flat[] = [];
    for (const a of left) {
      for (const b of right) {
        out.push(merge(a, b));
        if (out.length >= maxAlternatives) {
          truncated = true;
          return out;
        }
      }
    }
    return out;
  };

  const visit = (schemas: Sub[], path: string[], name: string, required: boolean, where: string, depth: number): void => {
    if (nodes.length >= maxNodes || depth > maxDepth) {
      truncated = true;
      return;
    }
    // Several schemas at one position (e.g. a property named in two allOf members) are a conjunction.
    let alternatives: Flat[] = [emptyFlat()];
    schemas.forEach((s, i) => {
      alternatives = cross(alternatives, flatten(s.schema, schemas.length > 1 ? `${where}#${i}` : where, s.refs, depth));
    });
    for (const alt of alternatives) {
      if (nodes.length >= maxNodes) {
        truncated = true;
        return;
      }
      nodes.push({ path, name, types: alt.types ?? new Set(), keywords: alt.keywords, required });
      for (const [prop, propSchemas] of alt.properties) {
        visit(propSchemas, [...path, prop], prop, required && alt.required.has(prop), join(where, `properties.${prop}`), depth + 1);
      }
      if (alt.items.length > 0) visit(alt.items, [...path, '[]'], name, false, join(where, 'items'), depth + 1);
      alt.tuple.forEach((itemSchemas, i) => visit(itemSchemas, [...path, '[]'], name, false, `${join(where, 'prefixItems')}[${i}]`, depth + 1));
      if (alt.mapValues.length > 0) visit(alt.mapValues, [...path, '*'], name, false, join(where, 'additionalProperties'), depth + 1);
    }
  };

  visit([{ schema: root, refs: new Set() }], [], '', true, '', 0);
  return { nodes: dedupe(nodes), texts, truncated };
}

/**
 * The dotted argument path of a node for a SPEC §4 constraint, or undefined when
 * the value sits inside an array or a map (a dotted path cannot name it) or a
 * property name itself contains a dot.
 *
 * @example
 * constraintPath({ path: ['payment', 'amount'] } as SchemaNode); // 'payment.amount'
 */
export function constraintPath(node: Pick<SchemaNode, 'path'>): string | undefined {
  if (node.path.length === 0) return undefined;
  if (node.path.some((p) => p === '[]' || p === '*' || p.includes('.') || p === '')) return undefined;
  return node.path.join('.');
}

/** Human-readable path of a node: `payment.amount`, `urls[]`, `fields.*`. */
export function displayPath(node: Pick<SchemaNode, 'path'>): string {
  let out = '';
  for (const p of node.path) out += p === '[]' ? '[]' : out === '' ? p : `.${p}`;
  return out === '' ? '(arguments)' : out;
}

function ownFlat(node: JsonObject, refs: ReadonlySet<string>): Flat {
  const sub = (schema: unknown): Sub => ({ schema, refs });
  const flat = emptyFlat();
  const type = node.type;
  if (typeof type === 'string' && TYPES.has(type)) flat.types = new Set([type as JsonType]);
  else if (Array.isArray(type)) flat.types = new Set(type.filter((t): t is JsonType => typeof t === 'string' && TYPES.has(t)));
  const k = flat.keywords;
  if (typeof node.maximum === 'number') k.maximum = node.maximum;
  // Draft-04 spelled an exclusive maximum as `maximum` + `exclusiveMaximum: true`.
  if (typeof node.exclusiveMaximum === 'number') k.exclusiveMaximum = node.exclusiveMaximum;
  if (typeof node.minimum === 'number') k.minimum = node.minimum;
  if (typeof node.maxLength === 'number') k.maxLength = node.maxLength;
  if (typeof node.pattern === 'string') k.pattern = node.pattern;
  if (typeof node.format === 'string') k.format = node.format;
  if (Array.isArray(node.enum)) k.enum = node.enum;
  if ('const' in node) k.const = node.const;
  if (typeof node.description === 'string') k.description = node.description;
  if (flat.types === undefined && (k.enum !== undefined || 'const' in node)) {
    const values = k.enum ?? [k.const];
    flat.types = new Set(values.map(jsonTypeOf));
  }
  if (isObject(node.properties)) {
    for (const [prop, schema] of Object.entries(node.properties)) flat.properties.set(prop, [sub(schema)]);
  }
  if (Array.isArray(node.required)) for (const r of node.required) if (typeof r === 'string') flat.required.add(r);
  if (Array.isArray(node.items)) flat.tuple = node.items.map((s) => [sub(s)]);
  else if (node.items !== undefined && node.items !== true) flat.items = [sub(node.items)];
  if (Array.isArray(node.prefixItems)) flat.tuple = node.prefixItems.map((s) => [sub(s)]);
  if (isObject(node.additionalProperties)) flat.mapValues.push(sub(node.additionalProperties));
  if (isObject(node.patternProperties)) flat.mapValues.push(...Object.values(node.patternProperties).map(sub));
  // An object with no declared shape still has values; leave them unknown rather than invent a node.
  return flat;
}

function merge(a: Flat, b: Flat): Flat {
  const types = a.types && b.types ? intersect(a.types, b.types) : (a.types ?? b.types);
  const properties = new Map(a.properties);
  for (const [k, v] of b.properties) properties.set(k, [...(properties.get(k) ?? []), ...v]);
  const tupleLength = Math.max(a.tuple.length, b.tuple.length);
  const tuple: Sub[][] = [];
  for (let i = 0; i < tupleLength; i++) tuple.push([...(a.tuple[i] ?? []), ...(b.tuple[i] ?? [])]);
  return {
    types: types === undefined ? undefined : new Set(types),
    keywords: mergeKeywords(a.keywords, b.keywords),
    properties,
    required: new Set([...a.required, ...b.required]),
    items: [...a.items, ...b.items],
    tuple,
    mapValues: [...a.mapValues, ...b.mapValues],
  };
}

/** A conjunction keeps the tightest of each bound: any declared bound constrains the value. */
function mergeKeywords(a: ValueKeywords, b: ValueKeywords): ValueKeywords {
  const out: ValueKeywords = { ...a };
  for (const key of ['maximum', 'exclusiveMaximum', 'maxLength'] as const) {
    const x = a[key];
    const y = b[key];
    if (y !== undefined) out[key] = x === undefined ? y : Math.min(x, y);
  }
  if (b.minimum !== undefined) out.minimum = a.minimum === undefined ? b.minimum : Math.max(a.minimum, b.minimum);
  if (b.pattern !== undefined) out.pattern = b.pattern;
  if (b.format !== undefined) out.format ??= b.format;
  if (b.enum !== undefined) out.enum = a.enum === undefined ? b.enum : a.enum.filter((v) => b.enum?.some((w) => sameJson(v, w)));
  if ('const' in b) out.const = b.const;
  if (b.description !== undefined) out.description = a.description === undefined ? b.description : `${a.description} ${b.description}`;
  return out;
}

function intersect<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): Set<T> {
  const out = new Set<T>();
  for (const x of a) if (b.has(x)) out.add(x);
  // `integer` is a subset of `number`.
  if ((a.has('number' as T) && b.has('integer' as T)) || (a.has('integer' as T) && b.has('number' as T))) out.add('integer' as T);
  return out;
}

function emptyFlat(): Flat {
  return { types: undefined, keywords: {}, properties: new Map(), required: new Set(), items: [], tuple: [], mapValues: [] };
}

/** Identical alternatives at one path (e.g. from a oneOf that differs only in text) are reported once. */
function dedupe(nodes: SchemaNode[]): SchemaNode[] {
  const seen = new Set<string>();
  return nodes.filter((n) => {
    const key = JSON.stringify([n.path, [...n.types].sort(), n.keywords, n.required]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function jsonTypeOf(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'object') return typeof value as JsonType;
  return 'null';
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function join(where: string, key: string): string {
  return where === '' ? key : `${where}.${key}`;
}
