/**
 * The gate every tool call's arguments pass before the policy sees them (SPEC §4): they
 * must be data that re-serialises to exactly what was checked. One walk checks I-JSON
 * (RFC 7493: finite numbers, integers within ±(2^53−1), no lone surrogates in strings or
 * keys), plain JSON values only, no own `"__proto__"` key, and the nesting depth.
 */

/** Arguments nested deeper than this are refused; no real tool call comes close. */
export const MAX_ARGUMENT_DEPTH = 64;

// String.prototype.isWellFormed (ES2024, Node ≥ 20) is false exactly when a string holds a
// lone surrogate; the lib setting here predates it.
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Where a problem is, innermost step first (built while the walk unwinds, so the success path builds nothing). */
type Where = (string | number)[];

interface Problem {
  where: Where;
  what: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const MAX_PATH_CHARS = 200;

/** `arguments.items[3].price`, `arguments["a b"]`; long paths keep their start and end. */
function describe(reversed: Where): string {
  let text = 'arguments';
  for (let i = reversed.length - 1; i >= 0; i--) {
    const step = reversed[i]!;
    if (typeof step === 'number') text += `[${step}]`;
    else if (IDENTIFIER.test(step) && step.length <= 40) text += `.${step}`;
    else text += `[${JSON.stringify(step.length > 40 ? `${step.slice(0, 40)}…` : step)}]`;
  }
  if (text.length <= MAX_PATH_CHARS) return text;
  return `${text.slice(0, MAX_PATH_CHARS / 2)}…${text.slice(-MAX_PATH_CHARS / 2)}`;
}

/**
 * Why `args` cannot be forwarded exactly as checked, naming the path, or undefined when
 * they can. A parsed number whose magnitude exceeds 2^53−1 is refused even when it is
 * written as an exact integer, since JSON.parse may already have rounded it
 * (`9007199254740993` parses as `9007199254740992`); `1e400` parses as Infinity and is
 * refused as not finite.
 *
 * @example
 * argumentProblem({ items: [{ price: 1e400 }] });
 * // 'arguments.items[0].price: Infinity is not a finite number'
 * argumentProblem({ sql: 'SELECT 1' }); // undefined
 */
export function argumentProblem(args: unknown): string | undefined {
  const problem = walk(args, 0);
  return problem === undefined ? undefined : `${describe(problem.where)}: ${problem.what}`;
}

const here = (what: string): Problem => ({ where: [], what });

function walk(value: unknown, depth: number): Problem | undefined {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? undefined : here('the string contains a lone surrogate (not valid Unicode)');
    case 'number':
      if (!Number.isFinite(value)) return here(`${String(value)} is not a finite number`);
      if (value > Number.MAX_SAFE_INTEGER || value < -Number.MAX_SAFE_INTEGER) {
        return here(`${String(value)} is outside ±(2^53−1), so it may have been rounded and cannot be forwarded exactly`);
      }
      return undefined;
    case 'boolean':
      return undefined;
    case 'object':
      break;
    default:
      return here(`${typeof value} is not a JSON value`);
  }
  if (value === null) return undefined;
  if (depth >= MAX_ARGUMENT_DEPTH) return here(`the arguments are nested deeper than ${MAX_ARGUMENT_DEPTH} levels`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = walk(value[i], depth + 1);
      if (problem !== undefined) {
        problem.where.push(i);
        return problem;
      }
    }
    return undefined;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return here('not a plain JSON object');
  if (Object.hasOwn(value, '__proto__')) {
    // JSON.parse keeps "__proto__" as a plain key that constraints never see; an upstream
    // that merges the arguments into an object would inherit what it holds.
    return here('a "__proto__" key is not allowed');
  }
  const record = value as Record<string, unknown>;
  // for…in over a plain object: its own keys (Object.prototype has no enumerable ones),
  // without the array Object.keys would allocate.
  for (const key in record) {
    const problem = isWellFormed(key) ? walk(record[key], depth + 1) : here('the key contains a lone surrogate (not valid Unicode)');
    if (problem !== undefined) {
      problem.where.push(key);
      return problem;
    }
  }
  return undefined;
}
