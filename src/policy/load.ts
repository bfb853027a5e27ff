/**
 * Loading a policy: read the file, parse YAML with positions, validate, build.
 * Every user error is a `CapframeError` whose message is one
 * `<file>:<line>:<column>: <what was wrong and what was expected>` line per problem.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import { CapframeError } from '../errors.js';
import { baseDirOf, buildPolicy, rawConstraintProblems } from './build.js';
import { validatePolicyFile } from './schema.js';
import type { Policy } from './types.js';
import { formatProblems, MAX_YAML_BYTES, parseYamlSource } from './yaml-source.js';

function notFound(file: string, error: unknown): CapframeError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
  return new CapframeError('policy_not_found', `cannot read policy file ${file}: ${why}`, { cause: error });
}

function compile(text: string, name: string, absolute: string): Policy {
  const source = parseYamlSource(text, name, 'invalid_policy');
  const validated = validatePolicyFile(source.data);
  if ('problems' in validated) {
    throw new CapframeError('invalid_policy', formatProblems(source, [...validated.problems, ...rawConstraintProblems(source.data)]));
  }
  const built = buildPolicy(validated.value, {
    file: absolute,
    baseDir: baseDirOf(absolute),
    lineOf: (path) => source.locate(path).line,
  });
  if ('problems' in built) throw new CapframeError('invalid_policy', formatProblems(source, built.problems));
  return built.policy;
}

/**
 * Parses policy text. `file` names it in messages and anchors relative paths
 * (`state_dir`, `audit.path`); without it the policy is `<inline>` and paths
 * resolve against the working directory.
 *
 * @example
 * const policy = parsePolicy('capframe:\n  version: "0.2"\n  rules:\n    - tool: database.query\n');
 * policy.decide({ tool: 'database.query', args: {} }).allowed; // true
 */
export function parsePolicy(text: string, file?: string): Policy {
  if (file === undefined) return compile(text, '<inline>', '<inline>');
  return compile(text, file, resolve(file));
}

/**
 * Reads and compiles a policy file; throws `policy_not_found` or `invalid_policy`.
 *
 * @example
 * const policy = loadPolicySync('examples/policy.yaml');
 */
export function loadPolicySync(file: string): Policy {
  let text: string;
  try {
    text = readText(readFileSync(resolve(file)), file);
  } catch (error) {
    if (error instanceof CapframeError) throw error;
    throw notFound(file, error);
  }
  return parsePolicy(text, file);
}

/**
 * Async `loadPolicySync`.
 *
 * @example
 * const policy = await loadPolicy('my-policy.yaml');
 * policy.decide({ agent: 'support-bot', tool: 'database.query', args: { sql: 'SELECT 1' } });
 */
export async function loadPolicy(file: string): Promise<Policy> {
  let text: string;
  try {
    text = readText(await readFile(resolve(file)), file);
  } catch (error) {
    if (error instanceof CapframeError) throw error;
    throw notFound(file, error);
  }
  return parsePolicy(text, file);
}

function readText(bytes: Buffer, file: string): string {
  if (bytes.length > MAX_YAML_BYTES) throw new CapframeError('invalid_policy', `${file}:1:1: file is larger than ${MAX_YAML_BYTES} bytes`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new CapframeError('invalid_policy', `${file}:1:1: file is not valid UTF-8`);
  }
}
