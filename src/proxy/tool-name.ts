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
