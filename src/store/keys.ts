/**
 * Keys live in the state directory whatever the store: never in Redis, so a fleet's
 * shared store holds nothing that can mint a token.
 *
 *   issuer.key     PKCS#8 PEM of the issuer's Ed25519 key, mode 0600
 *                  (or CAPFRAME_ISSUER_KEY instead)
 *   trusted.keys   extra trusted public keys (hex, one per line) for rotation, or for
 *                  the other instances of a fleet that sign with keys of their own
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { CapframeError } from '../errors.js';
import { generateKeyPair, parsePublicKey, secretKeyToPem, signingKey, type SigningKey } from '../keys/keys.js';

export const ISSUER_KEY_FILE = 'issuer.key';
export const TRUSTED_KEYS_FILE = 'trusted.keys';

export interface KeyStore {
  readonly stateDir: string;
  readonly paths: { issuerKey: string; trustedKeys: string };
  /** Creates `issuer.key` (0600) unless it exists; returns whether it was created. */
  ensureIssuerKey(): boolean;
  /** The issuer signing key: `CAPFRAME_ISSUER_KEY` if set, else `issuer.key`. */
  issuerKey(): SigningKey;
  /** Public keys to trust: the issuer's plus `trusted.keys`. */
  trustedKeys(): Uint8Array[];
}

function fail(message: string, cause?: unknown): never {
  throw new CapframeError('store_error', message, { cause });
}

/** The lines of a file, or none when it does not exist. */
export function readLines(path: string): string[] {
  if (!existsSync(path)) return [];
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch (error) {
    fail(`cannot read ${path}: ${(error as Error).message}`, error);
  }
}

/** Creates the state directory (0700) if needed. */
export function ensureStateDir(stateDir: string): void {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    fail(`cannot create state directory ${stateDir}: ${(error as Error).message}`, error);
  }
}

/**
 * The keys of a state directory.
 *
 * @example
 * const keys = openKeyStore('.capframe');
 * keys.ensureIssuerKey();
 * const verifier = createVerifier({ keys: keys.trustedKeys() });
 */
export function openKeyStore(stateDir: string): KeyStore {
  const paths = { issuerKey: join(stateDir, ISSUER_KEY_FILE), trustedKeys: join(stateDir, TRUSTED_KEYS_FILE) };
  const fromEnv = (): string | undefined => {
    const value = process.env.CAPFRAME_ISSUER_KEY;
    return value === undefined || value === '' ? undefined : value;
  };
  const keys: KeyStore = {
    stateDir,
    paths,
    ensureIssuerKey() {
      if (existsSync(paths.issuerKey)) return false;
      ensureStateDir(stateDir);
      // Write a private temporary file, then link it into place: link() fails if the key
      // exists, so two processes starting at once never overwrite or half-read a key.
      const tmp = `${paths.issuerKey}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        const fd = openSync(tmp, 'wx', 0o600);
        try {
          writeSync(fd, secretKeyToPem(generateKeyPair().secretKey));
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        linkSync(tmp, paths.issuerKey);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
        fail(`cannot write ${paths.issuerKey}: ${(error as Error).message}`, error);
      } finally {
        rmSync(tmp, { force: true });
      }
    },
    issuerKey() {
      const env = fromEnv();
      if (env !== undefined) return signingKey(env);
      if (!existsSync(paths.issuerKey)) {
        fail(`no issuer key at ${paths.issuerKey}; run \`capframe init --policy <file>\` or set CAPFRAME_ISSUER_KEY`);
      }
      return signingKey(readFileSync(paths.issuerKey, 'utf8'));
    },
    trustedKeys() {
      const trusted: Uint8Array[] = [];
      if (fromEnv() !== undefined || existsSync(paths.issuerKey)) trusted.push(keys.issuerKey().publicKey);
      readLines(paths.trustedKeys).forEach((line, i) => {
        const text = line.replace(/#.*/, '').trim();
        if (text === '') return;
        try {
          trusted.push(parsePublicKey(text));
        } catch (error) {
          fail(`${paths.trustedKeys}:${i + 1}: ${(error as Error).message}`);
        }
      });
      return trusted;
    },
  };
  return keys;
}
