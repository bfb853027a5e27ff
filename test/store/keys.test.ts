import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { generateKeyPair } from '../../src/index.js';
import { encodeBase64url } from '../../src/lib/base64url.js';
import { openKeyStore } from '../../src/store/keys.js';
import { tempDir } from '../helpers.js';

describe('keys in the state directory', () => {
  it('creates issuer.key once, with mode 0600, and signs with it', () => {
    const keys = openKeyStore(join(tempDir(), 'state'));
    expect(keys.ensureIssuerKey()).toBe(true);
    expect(keys.ensureIssuerKey()).toBe(false);
    expect(statSync(keys.paths.issuerKey).mode & 0o777).toBe(0o600);
    expect(keys.trustedKeys().map((k) => Buffer.from(k).toString('hex'))).toEqual([Buffer.from(keys.issuerKey().publicKey).toString('hex')]);
  });

  it('CAPFRAME_ISSUER_KEY overrides the key file', () => {
    const keys = openKeyStore(tempDir());
    const pair = generateKeyPair();
    process.env.CAPFRAME_ISSUER_KEY = encodeBase64url(pair.secretKey);
    try {
      expect(Buffer.from(keys.issuerKey().publicKey)).toEqual(Buffer.from(pair.publicKey));
    } finally {
      delete process.env.CAPFRAME_ISSUER_KEY;
    }
  });

  it('without a key it says how to make one', () => {
    const keys = openKeyStore(tempDir());
    expect(() => keys.issuerKey()).toThrow(/no issuer key at .*issuer\.key; run `capframe init --policy <file>`/);
  });

  it('reads extra trusted keys for rotation and rejects bad lines', () => {
    const keys = openKeyStore(tempDir());
    const old = generateKeyPair();
    keys.ensureIssuerKey();
    writeFileSync(keys.paths.trustedKeys, `# previous issuer\n${Buffer.from(old.publicKey).toString('hex')}\n`);
    expect(keys.trustedKeys()).toHaveLength(2);
    writeFileSync(keys.paths.trustedKeys, 'not-a-key\n');
    expect(() => keys.trustedKeys()).toThrow(/trusted\.keys:1: an Ed25519 public key is 32 bytes/);
  });
});

describe('issuer key creation under concurrency', () => {
  it('eight processes creating the key at once end with one key that all of them read', async () => {
    const { spawn } = await import('node:child_process');
    const dir = join(tempDir(), 'state');
    const script = `import { openKeyStore } from ${JSON.stringify(new URL('../../dist/store/keys.js', import.meta.url).href)};
      const s = openKeyStore(${JSON.stringify(dir)}); const created = s.ensureIssuerKey();
      console.log(JSON.stringify({ created, pub: Buffer.from(s.issuerKey().publicKey).toString('hex') }));`;
    const runs = await Promise.all(
      Array.from({ length: 8 }, () => new Promise<{ created: boolean; pub: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d));
        child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { created: boolean; pub: string }) : reject(new Error(`exit ${code}`))));
      })),
    );
    expect(runs.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(runs.map((r) => r.pub)).size).toBe(1);
    expect(statSync(join(dir, 'issuer.key')).mode & 0o777).toBe(0o600);
  });
});
