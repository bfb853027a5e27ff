/**
 * The CLI path of SPEC §1 with real files and real child processes:
 * init → mint → verify → revoke → verify, by token and by tok_ id, plus the
 * denials and input errors the foundation issue names.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { signingKey } from '../../src/keys/keys.js';
import { mint } from '../../src/token/mint.js';
import { fromPrintable, toPrintable } from '../../src/token/printable.js';
import { cli, tempDir } from '../helpers.js';

describe('capframe token CLI', () => {
  let dir: string;
  let policy: string;
  let token: string;
  let id: string;

  beforeAll(() => {
    dir = tempDir();
    policy = join(dir, 'policy.yaml');
    const init = cli(['init', '--policy', policy]);
    expect(init.code).toBe(0);
    const minted = cli(['mint', '--policy', policy, '--tool', 'database.query', '--agent', 'support-bot', '--json']);
    expect(minted.code).toBe(0);
    ({ token, id } = JSON.parse(minted.stdout) as { token: string; id: string });
  });

  it('init writes the seed policy and a 0600 issuer key, and refuses to overwrite', () => {
    expect(readFileSync(policy, 'utf8')).toContain('default_policy: deny');
    expect(statSync(join(dir, '.capframe', 'issuer.key')).mode & 0o777).toBe(0o600);
    const again = cli(['init', '--policy', policy]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`capframe: ${policy} already exists; pass --force to overwrite it`);
    const keyBefore = readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8');
    expect(cli(['init', '--policy', policy, '--force']).code).toBe(0);
    expect(readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8')).toBe(keyBefore);
  });

  it('verify prints OK with tool, capability, agent and expiry, by token and by id', () => {
    for (const t of [token, id]) {
      const r = cli(['verify', '--policy', policy, '--token', t]);
      expect(r.code).toBe(0);
      const printed = new RegExp(`^OK ${id} tool=database\\.query capability=read-only agent=support-bot expires=\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(in (\\d+)s\\)\\n$`).exec(r.stdout);
      expect(printed, r.stdout).not.toBeNull();
      // The rule's 300 s TTL, less however long this loaded machine took since the mint.
      expect(Number(printed![1])).toBeGreaterThan(200);
      expect(Number(printed![1])).toBeLessThanOrEqual(300);
    }
  });

  it('mint caps the TTL at the rule and refuses tools no rule grants', () => {
    const capped = cli(['mint', '--policy', policy, '--tool', 'payments.refund', '--ttl', '3600', '--json']);
    expect(capped.code).toBe(0);
    expect(capped.stderr).toContain('--ttl 3600 capped to 60s');
    const exp = Date.parse((JSON.parse(capped.stdout) as { expires_at: string }).expires_at);
    expect(exp - Date.now()).toBeLessThanOrEqual(60_000);
    const denied = cli(['mint', '--policy', policy, '--tool', 'shell.exec']);
    expect(denied.code).toBe(2);
    expect(denied.stdout).toBe('');
    expect(denied.stderr.trim()).toMatch(/^DENIED no_rule: cannot mint shell\.exec: .*shell\.exec/);
  });

  it('denies a token with one byte flipped, one signed by another key, and an expired one', () => {
    const bytes = fromPrintable(token)!;
    const flipped = new Uint8Array(bytes);
    flipped[flipped.length - 70]! ^= 0x01;
    const r1 = cli(['verify', '--policy', policy, '--token', toPrintable(flipped)]);
    expect(r1.code).toBe(2);
    expect(r1.stdout).toMatch(/^DENIED bad_signature: /);

    const stranger = mint({ key: new Uint8Array(32).fill(5), tool: 'database.query', ttl: 60 });
    const r2 = cli(['verify', '--policy', policy, '--token', stranger.token]);
    expect(r2.code).toBe(2);
    expect(r2.stdout).toMatch(/^DENIED unknown_key: /);

    const issuer = signingKey(readFileSync(join(dir, '.capframe', 'issuer.key'), 'utf8'));
    const old = mint({ key: issuer, tool: 'database.query', ttl: 60, now: Math.floor(Date.now() / 1000) - 120 });
    const r3 = cli(['verify', '--policy', policy, '--token', old.token]);
    expect(r3.code).toBe(2);
    expect(r3.stdout).toMatch(new RegExp(`^DENIED expired: token has expired \\(${old.id}\\)`));
  });

  it('revoke makes both the token and its id deny with revoked', () => {
    const fresh = JSON.parse(cli(['mint', '--policy', policy, '--tool', 'database.query', '--json']).stdout) as { token: string; id: string };
    const r = cli(['revoke', '--policy', policy, '--token', fresh.id]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`revoked ${fresh.id}`);
    for (const t of [fresh.token, fresh.id]) {
      const v = cli(['verify', '--policy', policy, '--token', t]);
      expect(v.code).toBe(2);
      expect(v.stdout.trim()).toBe(`DENIED revoked: token has been revoked (${fresh.id})`);
    }
    expect(cli(['revoke', '--policy', policy, '--token', fresh.token]).stdout.trim()).toBe(`already revoked ${fresh.id}`);
    expect(readFileSync(join(dir, '.capframe', 'revocations.log'), 'utf8')).toMatch(new RegExp(`^${fresh.id} \\d{4}-`, 'm'));
  });

  it('revoke of an id this store never issued still revokes it, and says so (text and --json)', () => {
    const foreign = `tok_${randomBytes(16).toString('base64url')}`;
    const r = cli(['revoke', '--policy', policy, '--token', foreign]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `revoked ${foreign} (not issued by this store: ${join(dir, '.capframe')} has no record of it; revoked anyway, in case it was minted elsewhere)\n`,
    );
    expect(readFileSync(join(dir, '.capframe', 'revocations.log'), 'utf8')).toMatch(new RegExp(`^${foreign} \\d{4}-`, 'm'));
    const again = cli(['revoke', '--policy', policy, '--token', foreign, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ id: foreign, revoked: true, already_revoked: true, issued_by_this_store: false, state_dir: join(dir, '.capframe') });

    // A token minted by another state directory (another instance): revocable here, flagged as foreign.
    const other = tempDir();
    const otherPolicy = join(other, 'policy.yaml');
    expect(cli(['init', '--policy', otherPolicy]).code).toBe(0);
    const elsewhere = JSON.parse(cli(['mint', '--policy', otherPolicy, '--tool', 'database.query', '--json']).stdout) as { token: string; id: string };
    const json = JSON.parse(cli(['revoke', '--policy', policy, '--token', elsewhere.token, '--json']).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ id: elsewhere.id, revoked: true, already_revoked: false, issued_by_this_store: false });

    // One this store issued: no note, and the flag says so.
    const own = JSON.parse(cli(['mint', '--policy', policy, '--tool', 'database.query', '--json']).stdout) as { id: string };
    expect(JSON.parse(cli(['revoke', '--policy', policy, '--token', own.id, '--json']).stdout)).toMatchObject({ id: own.id, already_revoked: false, issued_by_this_store: true });
  });

  it('a non-token (x, truncated base64, random bytes, empty) is DENIED malformed_token, exit 2', () => {
    const cases: [string, RegExp][] = [
      ['x', /not a capframe token/],
      [token.slice(0, token.length - 7), /truncated|not a capframe token/],
      [`cf1.${Buffer.from('random bytes, not CBOR at all').toString('base64url')}`, /token /],
      ['cf1.', /token is truncated/],
    ];
    for (const [input, reason] of cases) {
      const r = cli(['verify', '--policy', policy, '--token', input]);
      expect([input, r.code]).toEqual([input, 2]);
      expect(r.stdout).toMatch(/^DENIED malformed_token: /);
      expect(r.stdout).toMatch(reason);
      expect(r.stderr).toBe('');
    }
  });

  it.each([
    [['mint', '--policy', 'missing.yaml', '--tool', 'x'], /^capframe: cannot read policy file missing\.yaml: no such file/],
    [['verify', '--token', 'x', '--bogus'], /^capframe: unknown option '--bogus'/],
    [['mint', '--policy', 'p.yaml'], /^capframe: required option '--tool <name>' not specified/],
    [['mint', '--policy', 'p.yaml', '--tool', 'database.query', '--ttl', '-5'], /--ttl must be a whole number of at least 1, got "-5"/],
    [['frobnicate'], /^capframe: unknown command 'frobnicate'/],
  ])('bad input %j is one clear line, exit 1, no stack trace', (args, message) => {
    const r = cli(args, { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unreadable policy file (a directory) is a clear error', () => {
    writeFileSync(join(dir, 'placeholder'), '');
    const r = cli(['mint', '--policy', dir, '--tool', 'database.query']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^capframe: cannot read policy file /);
  });

  it('keys generate writes a 0600 PEM and prints the public key and kid', () => {
    const out = join(dir, 'k.pem');
    const r = cli(['keys', 'generate', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout) as { public_key: string; kid: string };
    expect(printed.public_key).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(Buffer.from(signingKey(readFileSync(out, 'utf8')).publicKey).toString('hex')).toBe(printed.public_key);
    expect(cli(['keys', 'generate', '--out', out]).code).toBe(1);
  });

  it('doctor names the backend in use and why', () => {
    const r = cli(['doctor', '--policy', policy, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { backend: string; reason: string; state_dir: string };
    expect(report.backend).toBe(process.env.CAPFRAME_BACKEND ?? report.backend);
    expect(report.reason.length).toBeGreaterThan(0);
    expect(report.state_dir).toBe(join(dir, '.capframe'));
  });
});
