/**
 * The embedded store (SPEC §7): plain files in the state directory.
 *
 *   issuer.key       PKCS#8 PEM of the issuer's Ed25519 key, mode 0600
 *   trusted.keys     extra trusted public keys (hex, one per line) for rotation; optional
 *   revocations.log  append-only, one `tok_… <ISO time>` line per revocation, fsynced
 *   tokens.jsonl     ledger of issued tokens, so the CLI accepts a `tok_` id anywhere
 *
 * One process writes at a time per file (appends of a single short line are atomic
 * on POSIX with O_APPEND, so concurrent CLI invocations do not interleave lines).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { CapframeError } from '../errors.js';
import { generateKeyPair, parsePublicKey, secretKeyToPem, signingKey, type SigningKey } from '../keys/keys.js';
import type { MintedToken } from '../token/mint.js';
import { parseTokenId } from '../verify/token-id.js';
import { tokenId } from '../token/claims.js';

export const ISSUER_KEY_FILE = 'issuer.key';
export const TRUSTED_KEYS_FILE = 'trusted.keys';
export const REVOCATIONS_FILE = 'revocations.log';
export const LEDGER_FILE = 'tokens.jsonl';

/** One issued token as the ledger records it. */
export interface LedgerEntry {
  id: string;
  token: string;
  tool: string;
  agent?: string;
  capability?: string;
  exp: number;
  iat: number;
}

export interface FileStore {
  readonly stateDir: string;
  readonly paths: { issuerKey: string; trustedKeys: string; revocations: string; ledger: string };
  /** Creates `issuer.key` (0600) unless it exists; returns whether it was created. */
  ensureIssuerKey(): boolean;
  /** The issuer signing key: `CAPFRAME_ISSUER_KEY` if set, else `issuer.key`. */
  issuerKey(): SigningKey;
  /** Public keys to trust: the issuer's plus `trusted.keys`. */
  trustedKeys(): Uint8Array[];
  /** Appends and fsyncs a revocation; false when the id was already revoked. */
  revoke(cti: Uint8Array): boolean;
  /** Every revoked id, in log order. */
  revokedIds(): Uint8Array[];
  record(minted: MintedToken): void;
  /** The printable token for a `tok_` id from the ledger, if it is there. */
  findToken(id: string): LedgerEntry | undefined;
}

function fail(message: string, cause?: unknown): never {
  throw new CapframeError('store_error', message, { cause });
}

/** Appends one line and fsyncs it, so a reported success survives a crash. */
function appendDurable(path: string, line: string): void {
  const created = !existsSync(path);
  const fd = openSync(path, 'a', 0o600);
  try {
    writeSync(fd, line);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) {
    // A new file's directory entry must reach the disk too.
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}

function readLines(path: string): string[] {
  if (!existsSync(path)) return [];
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch (error) {
    fail(`cannot read ${path}: ${(error as Error).message}`, error);
  }
}

export function openFileStore(stateDir: string): FileStore {
  const paths = {
    issuerKey: join(stateDir, ISSUER_KEY_FILE),
    trustedKeys: join(stateDir, TRUSTED_KEYS_FILE),
    revocations: join(stateDir, REVOCATIONS_FILE),
    ledger: join(stateDir, LEDGER_FILE),
  };

  function ensureDir(): void {
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      fail(`cannot create state directory ${stateDir}: ${(error as Error).message}`, error);
    }
  }

  function revokedIds(): Uint8Array[] {
    const ids: Uint8Array[] = [];
    readLines(paths.revocations).forEach((line, i) => {
      if (line.trim() === '') return;
      const id = line.split(' ')[0] ?? '';
      try {
        ids.push(parseTokenId(id));
      } catch {
        // A revocation we cannot read could be a token we must deny: refuse to guess.
        fail(`${paths.revocations}:${i + 1}: not a revocation line: "${line.slice(0, 60)}"`);
      }
    });
    return ids;
  }

  return {
    stateDir,
    paths,
    ensureIssuerKey() {
      if (existsSync(paths.issuerKey)) return false;
      ensureDir();
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
      const fromEnv = process.env.CAPFRAME_ISSUER_KEY;
      if (fromEnv !== undefined && fromEnv !== '') return signingKey(fromEnv);
      if (!existsSync(paths.issuerKey)) {
        fail(`no issuer key at ${paths.issuerKey}; run \`capframe init --policy <file>\` or set CAPFRAME_ISSUER_KEY`);
      }
      return signingKey(readFileSync(paths.issuerKey, 'utf8'));
    },
    trustedKeys() {
      const keys: Uint8Array[] = [];
      const fromEnv = process.env.CAPFRAME_ISSUER_KEY;
      if ((fromEnv !== undefined && fromEnv !== '') || existsSync(paths.issuerKey)) keys.push(this.issuerKey().publicKey);
      readLines(paths.trustedKeys).forEach((line, i) => {
        const text = line.replace(/#.*/, '').trim();
        if (text === '') return;
        try {
          keys.push(parsePublicKey(text));
        } catch (error) {
          fail(`${paths.trustedKeys}:${i + 1}: ${(error as Error).message}`);
        }
      });
      return keys;
    },
    revoke(cti) {
      const id = tokenId(cti);
      const already = revokedIds().some((r) => Buffer.compare(r, cti) === 0);
      if (already) return false;
      ensureDir();
      try {
        appendDurable(paths.revocations, `${id} ${new Date().toISOString()}\n`);
      } catch (error) {
        fail(`cannot write ${paths.revocations}: ${(error as Error).message}`, error);
      }
      return true;
    },
    revokedIds,
    record(minted) {
      ensureDir();
      const entry: LedgerEntry = {
        id: minted.id,
        token: minted.token,
        tool: minted.claims.tool,
        exp: minted.claims.exp,
        iat: minted.claims.iat,
      };
      if (minted.claims.sub !== undefined) entry.agent = minted.claims.sub;
      if (minted.claims.cap !== undefined) entry.capability = minted.claims.cap;
      try {
        appendDurable(paths.ledger, `${JSON.stringify(entry)}\n`);
      } catch (error) {
        fail(`cannot write ${paths.ledger}: ${(error as Error).message}`, error);
      }
    },
    findToken(id) {
      for (const line of readLines(paths.ledger)) {
        if (!line.includes(id)) continue;
        try {
          const entry = JSON.parse(line) as LedgerEntry;
          if (entry.id === id) return entry;
        } catch {
          // A torn last line from a crash mid-append; the rest of the ledger is intact.
        }
      }
      return undefined;
    },
  };
}
