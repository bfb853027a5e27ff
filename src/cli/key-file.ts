/** Keys on the command line: secret keys from files (`--key <file>`), holder public keys (`--holder`, `--to`). */
import { readFileSync } from 'node:fs';

import { CapframeError } from '../errors.js';
import { parseHolderKey, signingKey, type SigningKey } from '../keys/keys.js';

export function readKeyFile(path: string, option: string): SigningKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CapframeError('invalid_argument', `${option}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return signingKey(text.includes('-----BEGIN') ? text : text.trim());
  } catch (error) {
    throw new CapframeError('invalid_key', `${option}: ${path} holds no Ed25519 secret key (expected what \`capframe keys generate --holder --out <file>\` writes): ${(error as Error).message}`);
  }
}

/** A holder's public key given as an option (`--holder`, `--to`); the error names the option. */
export function holderOption(value: string, option = '--holder'): Uint8Array {
  try {
    return parseHolderKey(value.trim());
  } catch (error) {
    throw new CapframeError('invalid_key', `${option}: ${(error as Error).message}`);
  }
}
