/**
 * The cases every out-of-capframe verifier (examples/verify-python, examples/verify-go)
 * must pass, run against the real program as a child process. Tokens are minted with
 * the library; where capframe's own verifier has the same answer, it is checked too,
 * so the examples and capframe agree on what a token means.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it as vitestIt } from 'vitest';

import { createVerifier, generateKeyPair, mint, publicJwks, signingKey, type KeyPair } from '../../src/index.js';
import { encodeCbor } from '../../src/lib/cbor/encode.js';
import { signPayload } from '../../src/token/mint.js';
import { fromPrintable, toPrintable } from '../../src/token/printable.js';
import { cli, ROOT, tempDir } from '../helpers.js';

export interface ExampleVerifier {
  /** `python` or `go`: the part of scripts/ci-interop.sh that prepares it. */
  part: 'python' | 'go';
  /** The command and leading arguments, with paths inside the repository. */
  command: string[];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs scripts/ci-interop.sh for one part (a no-op in well under a second when it is
 * up to date) and fails, never skips, when that cannot be done.
 */
export function ensurePrepared(verifier: ExampleVerifier): void {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'ci-interop.sh'), verifier.part], { cwd: ROOT, encoding: 'utf8', timeout: 540_000 });
  const program = join(ROOT, verifier.command[0]!);
  if (r.status !== 0 || !existsSync(program)) {
    throw new Error(
      `the ${verifier.part} interop verifier is not ready (${program}).\n` +
        `scripts/ci-interop.sh ${verifier.part} exited ${r.status ?? r.signal ?? r.error?.message}:\n${(r.stderr ?? '').slice(-2000)}\n` +
        `Run scripts/ci-interop.sh first; it needs python3 >= 3.11 with venv and Go >= 1.24, and PyPI and the Go module proxy once.`,
    );
  }
}

/** Runs the verifier asynchronously (a key server may be answering in this process). */
function run(verifier: ExampleVerifier, args: string[], stdin?: string): Promise<RunResult> {
  const [program, ...lead] = verifier.command;
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, program!), [...lead.map((a) => join(ROOT, a)), ...args], {
      cwd: ROOT,
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? -1, stdout, stderr: signal === null ? stderr : `${stderr}[killed by ${signal}]` }));
    child.stdin?.end(stdin);
  });
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const now = () => Math.floor(Date.now() / 1000);

/** A CWT claims payload as `mint` writes it, plus `extra` claims. */
function claimsPayload(extra: [string, unknown][] = []): Uint8Array {
  const claims: [number | string, unknown][] = [[1, 'capframe'], [4, now() + 60], [6, now()], [7, new Uint8Array(16).fill(7)], ['tool', 'x']];
  return encodeCbor(new Map([...claims, ...extra]));
}

/** The token with one bit of byte `index` of its COSE bytes flipped. */
function flipped(token: string, index: number): string {
  const bytes = new Uint8Array(fromPrintable(token)!);
  bytes[index]! ^= 0x01;
  return toPrintable(bytes);
}

export function describeExampleVerifier(name: string, verifier: ExampleVerifier): void {
  describe(`${name} verifies capframe tokens with a standard COSE library`, () => {
    const issuer = generateKeyPair();
    const rotated = generateKeyPair();
    const stranger = generateKeyPair();
    const capframe = createVerifier({ keys: [issuer.publicKey, rotated.publicKey] });
    let dir: string;
    let server: Server;
    let keysUrl: string;

    const good = (key: KeyPair = issuer) =>
      mint({
        key: key.secretKey,
        tool: 'payments.refund',
        agent: 'support-bot',
        capability: 'admin',
        ttl: 300,
        issuer: 'capframe-test',
        when: [{ arg: 'amount', op: '<=', value: 50 }],
      });

    /** Verifies with the issuer's hex key and checks capframe's own verifier agrees on the code. */
    async function deniedAs(token: string, code: string, key: Uint8Array = issuer.publicKey): Promise<RunResult> {
      const r = await run(verifier, ['--key', hex(key), token]);
      expect(r.code, `${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stdout).toMatch(new RegExp(`^DENIED ${code}: \\S.*\\n$`));
      return r;
    }

    // A verifier that cannot be prepared fails every test with the reason (a failing
    // beforeAll would only mark them skipped).
    let unprepared: Error | undefined;
    // Each test starts the program several times (Python imports pycose each time): allow
    // a loaded machine far more than the default 30 s.
    const it = (title: string, fn: () => Promise<void>) =>
      vitestIt(
        title,
        async () => {
          if (unprepared !== undefined) throw unprepared;
          await fn();
        },
        180_000,
      );

    beforeAll(async () => {
      try {
        ensurePrepared(verifier);
      } catch (error) {
        unprepared = error as Error;
      }
      dir = tempDir('capframe-interop-');
      // A key endpoint the way `serve` publishes one: the JWK Set of the trusted keys.
      server = createServer((req, res) => {
        if (req.url === '/.well-known/capframe-keys') {
          res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
          res.end(JSON.stringify(publicJwks([issuer.publicKey, rotated.publicKey])));
        } else if (req.url === '/redirect') {
          res.writeHead(302, { location: '/.well-known/capframe-keys' });
          res.end();
        } else {
          res.writeHead(404);
          res.end();
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      keysUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/capframe-keys`;
    }, 600_000);

    afterAll(async () => {
      if (server !== undefined) await new Promise((resolve) => server.close(resolve));
    });

    it('accepts a valid token and prints its claims on one OK line', async () => {
      const t = good();
      const r = await run(verifier, ['--key', hex(issuer.publicKey), t.token]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`OK ${t.id} iss=capframe-test sub=support-bot tool=payments.refund cap=admin exp=${iso(t.claims.exp)}\n`);
      // It says what it did not check.
      expect(r.stderr).toMatch(/1 `when` constraint\(s\) on call arguments were not checked/);
      expect(capframe.verify(t.token).code).toBe('ok');
    });

    it('reads the token from standard input with -, and prints - for absent claims', async () => {
      const t = mint({ key: issuer.secretKey, tool: 'database.query', ttl: 60 });
      const r = await run(verifier, ['--key', hex(issuer.publicKey), '-'], `${t.token}\n`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`OK ${t.id} iss=capframe sub=- tool=database.query cap=- exp=${iso(t.claims.exp)}\n`);
      expect(r.stderr).toBe('');
    });

    it('picks the key by kid from a JWK Set printed by `capframe keys public --json` (rotation)', async () => {
      const stateDir = join(dir, 'state');
      const env = { CAPFRAME_ISSUER_KEY: Buffer.from(issuer.secretKey).toString('base64url') };
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(join(stateDir, 'trusted.keys'), `${hex(rotated.publicKey)}\n`);
      const printed = cli(['keys', 'public', '--state-dir', stateDir, '--json'], { env });
      expect(printed.code, printed.stderr).toBe(0);
      const keysFile = join(dir, 'keys.json');
      writeFileSync(keysFile, printed.stdout);
      for (const key of [issuer, rotated]) {
        const t = good(key);
        const r = await run(verifier, ['--key', keysFile, t.token]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^OK ${t.id} `));
      }
      const r = await run(verifier, ['--key', keysFile, good(stranger).token]);
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/^DENIED unknown_key: token is signed by key [0-9a-f]{16}, which is not among the given keys\n$/);
    });

    it('accepts a single JWK and the key endpoint URL', async () => {
      const jwkFile = join(dir, 'one.jwk');
      writeFileSync(jwkFile, JSON.stringify(publicJwks([rotated.publicKey]).keys[0]));
      const t = good(rotated);
      expect((await run(verifier, ['--key', jwkFile, t.token])).code).toBe(0);
      const r = await run(verifier, ['--key', keysUrl, t.token]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^OK ${t.id} `));
    });

    it('rejects a token with one payload byte flipped (bad signature)', async () => {
      const t = good();
      // Flip a bit inside the tool name: the CBOR stays well-formed, so only the signature can catch it.
      const at = Buffer.from(t.bytes).indexOf(Buffer.from('payments.refund'));
      expect(at).toBeGreaterThan(0);
      const tampered = flipped(t.token, at);
      await deniedAs(tampered, 'bad_signature');
      expect(capframe.verify(tampered).code).toBe('bad_signature');
    });

    it('rejects a token with one signature byte flipped', async () => {
      const t = good();
      const tampered = flipped(t.token, t.bytes.length - 1);
      await deniedAs(tampered, 'bad_signature');
      expect(capframe.verify(tampered).code).toBe('bad_signature');
    });

    it('rejects a token signed by another key, by kid and by signature', async () => {
      const other = good(stranger).token;
      await deniedAs(other, 'unknown_key');
      expect(capframe.verify(other).code).toBe('unknown_key');
      // The kid is only a hint: another key's signature under the trusted kid fails the signature.
      const spoofed = { ...signingKey(stranger.secretKey), kid: signingKey(issuer.secretKey).kid };
      const forged = toPrintable(signPayload(spoofed, claimsPayload()));
      await deniedAs(forged, 'bad_signature');
      expect(capframe.verify(forged).code).toBe('bad_signature');
    });

    it('denies a byte changed anywhere in the token (exit 2, never accepted, never a crash)', async () => {
      const t = good();
      const step = Math.ceil(t.bytes.length / 12);
      for (let at = 0; at < t.bytes.length; at += step) {
        const bytes = new Uint8Array(t.bytes);
        bytes[at]! ^= 0xff;
        const r = await run(verifier, ['--key', hex(issuer.publicKey), toPrintable(bytes)]);
        expect(r.code, `byte ${at}: ${r.stdout}${r.stderr}`).toBe(2);
        expect(r.stdout).toMatch(/^DENIED (malformed_token|bad_signature|unknown_key): /);
      }
    });

    it('rejects an expired token and one not valid yet, allowing small clock skew for nbf', async () => {
      const expired = mint({ key: issuer.secretKey, tool: 'database.query', ttl: 60, now: now() - 120 });
      const r = await deniedAs(expired.token, 'expired');
      expect(r.stdout).toContain(iso(expired.claims.exp));
      expect(capframe.verify(expired.token).code).toBe('expired');

      const later = mint({ key: issuer.secretKey, tool: 'database.query', ttl: 7200, notBefore: now() + 3600 });
      await deniedAs(later.token, 'not_yet_valid');
      expect(capframe.verify(later.token).code).toBe('not_yet_valid');

      const skewed = mint({ key: issuer.secretKey, tool: 'database.query', ttl: 600, notBefore: now() + 10 });
      expect((await run(verifier, ['--key', hex(issuer.publicKey), skewed.token])).code).toBe(0);
      const strict = await run(verifier, ['--key', hex(issuer.publicKey), '--leeway', '0', skewed.token]);
      expect(strict.stdout).toMatch(/^DENIED not_yet_valid: /);
    });

    it('rejects malformed input and claims it does not understand', async () => {
      await deniedAs('eyJhbGciOiJub25lIn0.e30.', 'malformed_token');
      await deniedAs('cf1.not*base64', 'malformed_token');
      await deniedAs('cf1.oA', 'malformed_token');
      await deniedAs(`cf1.${'A'.repeat(12_000)}`, 'malformed_token');
      // Validly signed, but with a claim an unaware verifier would ignore.
      const withExtra = toPrintable(signPayload(signingKey(issuer.secretKey), claimsPayload([['admin', true]])));
      const r = await deniedAs(withExtra, 'malformed_token');
      expect(r.stdout).toMatch(/unknown claim/);
      expect(capframe.verify(withExtra).code).toBe('malformed_token');
    });

    it('refuses holder-bound and delegated tokens rather than half-check them', async () => {
      const bound = mint({ key: issuer.secretKey, tool: 'database.query', ttl: 60, holderKey: stranger.publicKey });
      const r = await deniedAs(bound.token, 'unsupported');
      expect(r.stdout).toMatch(/holder-bound token \(cnf\).*capframe verify/);
      const child = mint({ key: issuer.secretKey, tool: 'database.query', ttl: 60, parent: good().bytes });
      expect((await deniedAs(child.token, 'unsupported')).stdout).toMatch(/delegated token \(prf\)/);
    });

    it('refuses key sources it cannot trust, as a usage error (exit 1)', async () => {
      const t = good().token;
      const forgedSet = join(dir, 'forged.json');
      const set = publicJwks([issuer.publicKey]);
      writeFileSync(forgedSet, JSON.stringify({ keys: [{ ...set.keys[0], kid: publicJwks([stranger.publicKey]).keys[0]!.kid }] }));
      const cases: [string[], RegExp][] = [
        [['--key', forgedSet, t], /kid .* does not match its key/],
        [['--key', 'http://keys.example.com/.well-known/capframe-keys', t], /refusing to fetch keys over plain http/],
        [['--key', keysUrl.replace('/.well-known/capframe-keys', '/redirect'), t], /cannot fetch/],
        [['--key', join(dir, 'missing.json'), t], /not 64 hex characters, a URL, or a readable file/],
        [[t], /--key/],
      ];
      for (const [args, message] of cases) {
        const r = await run(verifier, args);
        expect(r.code, `${args.join(' ')}: ${r.stdout}`).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(message);
      }
      // A private JWK is refused: a verifier must not be handed the issuer's secret.
      const privateJwk = join(dir, 'private.jwk');
      writeFileSync(privateJwk, JSON.stringify({ ...set.keys[0], d: Buffer.from(issuer.secretKey).toString('base64url') }));
      const r = await run(verifier, ['--key', privateJwk, t]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/private key/);
    });
  });
}
