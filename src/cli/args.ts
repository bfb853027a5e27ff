/** Parsing of numeric CLI options, with errors that name the option. */
import { CapframeError } from '../errors.js';

/** A whole number written in decimal digits, at least `min` (default 1). */
export function parseWholeNumber(value: string, option: string, min = 1): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new CapframeError('invalid_argument', `${option} must be a whole number${min > 0 ? ` of at least ${min}` : ''}, got "${value}"`);
  }
  return n;
}

/** JSON given on the command line (`--args`, `--when`), parsed; the error names the option. */
export function parseJsonOption(value: string, option: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    throw new CapframeError('invalid_argument', `${option} must be JSON (quote it for the shell), e.g. '{"amount": 20}': ${(error as Error).message}`);
  }
}
