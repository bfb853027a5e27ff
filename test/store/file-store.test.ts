import { readFileSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { generateKeyPair, mint } from '../../src/index.js';
import { encodeBase64url } from '../../src/lib/base64url.js';
import { openFileStore } from '../../src/store/file-store.js';
import { tempDir } from '../helpers.js';

describe('embedded file store', () => {
  it('creates issuer.key once, with mode 0600, and signs with it', () => {
    const store = openFileStore(join(tempDir(), 'state'));
    expect(store.ensureIssuerKey()).toBe(true);
    expect(store.ensureIssuerKey()).toBe(false);
    expect(statSync(store.paths.issuerKey).mode & 0o777).toBe(0o600);
    expect(store.trustedKeys().map((k) => Buffer.from(k).toString('hex'))).toEqual([Buffer.from(store.issuerKey().publicKey).toString('hex')]);
  });

  it('CAPFRAME_ISSUER_KEY overrides the key file', () => {
    const store = openFileStore(tempDir());
    const pair = generateKeyPair();
    process.env.CAPFRAME_ISSUER_KEY = encodeBase64url(pair.secretKey);
    try {
      expect(Buffer.from(store.issuerKey().publicKey)).toEqual(Buffer.from(pair.publicKey));
    } finally {
      delete process.env.CAPFRAME_ISSUER_KEY;
    }
  });

  it('without a key it says how to make one', () => {
    const store = openFileStore(tempDir());
    expect(() => store.issuerKey()).toThrow(/no issuer key at .*issuer\.key; run `capframe init --policy <file>`/);
  });

  it('appends revocations once each and reads them back in order', () => {
    const store = openFileStore(tempDir());
    const a = new Uint8Array(16).fill(1);
    const b = new Uint8Array(16).fill(2);
    expect(store.revoke(a)).toBe(true);
    expect(store.revoke(b)).toBe(true);
    expect(store.revoke(a)).toBe(false);
    expect(store.revokedIds().map((x) => x[0])).toEqual([1, 2]);
    expect(readFileSync(store.paths.revocations, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(statSync(store.paths.revocations).mode & 0o077).toBe(0);
  });

  it('refuses a revocation log it cannot read, naming file and line (fail closed)', () => {
    const store = openFileStore(tempDir());
    store.revoke(new Uint8Array(16).fill(1));
    appendFileSync(store.paths.revocations, 'garbage line\n');
    expect(() => store.revokedIds()).toThrow(new RegExp(`${store.paths.revocations.replace(/[.]/g, '\\.')}:2: not a revocation line`));
  });

  it('finds tokens in the ledger by id, ignoring a torn last line', () => {
    const store = openFileStore(tempDir());
    const pair = generateKeyPair();
    const t = mint({ key: pair.secretKey, tool: 'database.query', agent: 'bot', ttl: 60 });
    store.record(t);
    appendFileSync(store.paths.ledger, '{"id":"tok_torn');
    expect(store.findToken(t.id)).toMatchObject({ id: t.id, token: t.token, tool: 'database.query', agent: 'bot' });
    expect(store.findToken('tok_AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
  });

  it('reads extra trusted keys for rotation and rejects bad lines', () => {
    const store = openFileStore(tempDir());
    const old = generateKeyPair();
    store.ensureIssuerKey();
    writeFileSync(store.paths.trustedKeys, `# previous issuer\n${Buffer.from(old.publicKey).toString('hex')}\n`);
    expect(store.trustedKeys()).toHaveLength(2);
    writeFileSync(store.paths.trustedKeys, 'not-a-key\n');
    expect(() => store.trustedKeys()).toThrow(/trusted\.keys:1: an Ed25519 public key is 32 bytes/);
  });
});

describe('issuer key creation under concurrency', () => {
  it('eight processes creating the key at once end with one key that all of them read', async () => {
    const { spawn } = await import('node:child_process');
    const dir = join(tempDir(), 'state');
    const script = `import { openFileStore } from ${JSON.stringify(new URL('../../dist/store/file-store.js', import.meta.url).href)};
      const s = openFileStore(${JSON.stringify(dir)}); const created = s.ensureIssuerKey();
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
