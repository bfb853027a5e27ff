/**
 * The MCP tool-name rules (SEP-986, as the SDK's `validateToolName` states them): 1 to
 * 128 characters of A–Z, a–z, 0–9, `_`, `-` and `.`. The proxy refuses any other name
 * before doing any work for it, which also bounds what an unauthenticated caller can
 * make it log.
 */
export const MAX_TOOL_NAME_LENGTH = 128;

const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * @example
 * isValidToolName('database.query'); // true
 * isValidToolName('database.query; rm -rf /'); // false
 */
export function isValidToolName(name: unknown): name is string {
  return typeof name === 'string' && TOOL_NAME.test(name);
}

const TOOL_PATTERN = /^[A-Za-z0-9_.*-]{1,128}$/;

/**
 * A tool name or a `*` pattern over such names (`database.*`), as a token may name: the
 * MCP characters plus `*`, at most 128 of them. A token for anything else could never
 * match a call.
 *
 * @example
 * isValidToolPattern('database.*'); // true
 * isValidToolPattern('database.\u202equery'); // false
 */
export function isValidToolPattern(pattern: unknown): pattern is string {
  return typeof pattern === 'string' && TOOL_PATTERN.test(pattern);
}
