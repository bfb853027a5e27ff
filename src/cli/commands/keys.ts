import { writeFileSync } from 'node:fs';

import type { Command } from 'commander';

import { CapframeError } from '../../errors.js';
import { publicJwk, publicJwks } from '../../keys/jwks.js';
import { generateKeyPair, secretKeyToPem } from '../../keys/keys.js';
import { encodeBase64url } from '../../lib/base64url.js';
import type { KeyStore } from '../../store/keys.js';
import { openKeys } from '../context.js';
import { err, out } from '../exit.js';
import type { SetExit } from './index.js';

export function registerKeys(program: Command, setExit: SetExit): void {
  const keys = program.command('keys').description('manage Ed25519 keys');
  keys
    .command('generate')
    .description('generate an Ed25519 key pair (an issuer key, or with --holder an agent\'s holder key)')
    .option('--holder', 'a holder key for an agent: tokens are bound to its public key (mint --holder, delegate --to) and it signs proofs and delegations')
    .option('--out <file>', 'write the secret key here as PKCS#8 PEM (mode 0600)')
    .option('--force', 'overwrite --out if it exists')
    .option('--json', 'print JSON')
    .action((opts: { holder?: boolean; out?: string; force?: boolean; json?: boolean }) => {
      const pair = generateKeyPair();
      if (opts.out !== undefined) {
        try {
          writeFileSync(opts.out, secretKeyToPem(pair.secretKey), { mode: 0o600, flag: opts.force === true ? 'w' : 'wx' });
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          const why = code === 'EEXIST' ? 'it already exists (pass --force to overwrite)' : (error as Error).message;
          throw new CapframeError('invalid_argument', `cannot write ${opts.out}: ${why}`);
        }
      }
      const result: Record<string, string> = {
        public_key: Buffer.from(pair.publicKey).toString('hex'),
        kid: Buffer.from(pair.kid).toString('hex'),
      };
      // Without --out the secret has nowhere else to go; say what it is for.
      if (opts.out === undefined) result.secret_key = encodeBase64url(pair.secretKey);
      if (opts.json === true) out(JSON.stringify(result));
      else for (const [k, v] of Object.entries(result)) out(`${k}: ${v}`);
      if (opts.holder === true) {
        err(
          opts.out === undefined
            ? 'capframe: secret_key is the agent\'s holder key; keep it with the agent only (pass --out <file> to write it 0600). Give public_key to `mint --holder` or `delegate --to`.'
            : `capframe: holder key written to ${opts.out}; give public_key to \`mint --holder\` or \`delegate --to\`, and the file to \`proof --key\` / \`delegate --key\`.`,
        );
      } else if (opts.out === undefined) {
        err('capframe: secret_key is secret; use it as CAPFRAME_ISSUER_KEY or pass --out <file>');
      }
      setExit(0);
    });
  registerKeysPublic(keys, setExit);
}

/**
 * `keys public`: the keys a verifier should trust (the issuer's, then `trusted.keys`),
 * for programs outside capframe. Reads the state directory, never prints a secret.
 */
function registerKeysPublic(keys: Command, setExit: SetExit): void {
  keys
    .command('public')
    .description('print the trusted issuer public keys (kid, hex, JWK); --json prints a JWK Set')
    .option('--policy <file>', 'policy file (locates the state directory)')
    .option('--state-dir <dir>', 'state directory (default .capframe)')
    .option('--json', 'print a JWK Set ({"keys": [...]})')
    .action(async (opts: { policy?: string; stateDir?: string; json?: boolean }) => {
      const { keys: store } = await openKeys(opts);
      const set = publicJwks(store.trustedKeys());
      if (set.keys.length === 0) {
        throw new CapframeError(
          'store_error',
          `no trusted keys in ${store.stateDir}: no issuer key (${store.paths.issuerKey} or CAPFRAME_ISSUER_KEY) and no ${store.paths.trustedKeys}; run \`capframe init --policy <file>\``,
        );
      }
      if (opts.json === true) {
        out(JSON.stringify(set));
      } else {
        const issuer = issuerJwkX(store);
        set.keys.forEach((jwk, i) => {
          if (i > 0) out('');
          const kid = Buffer.from(jwk.kid, 'base64url').toString('hex');
          out(`kid: ${kid} (${jwk.x === issuer ? 'issuer' : 'trusted.keys'})`);
          out(`public_key: ${Buffer.from(jwk.x, 'base64url').toString('hex')}`);
          out(`jwk: ${JSON.stringify(jwk)}`);
        });
      }
      setExit(0);
    });
}

/**
 * The issuer's public key as a JWK `x`, or undefined when there is no issuer key.
 * Called after `trustedKeys()` succeeded, which already read (and would have rejected)
 * a damaged issuer key, so a failure here can only mean there is none.
 */
function issuerJwkX(store: KeyStore): string | undefined {
  try {
    return publicJwk(store.issuerKey().publicKey).x;
  } catch {
    return undefined;
  }
}
