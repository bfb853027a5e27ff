/**
 * Independent implementations read capframe tokens: @ldclabs/cose-ts verifies the
 * COSE_Sign1 with only the public key, and cborg (a generic CBOR decoder) reads the
 * claims. Nothing here uses capframe's own decoder.
 */
import { Ed25519Key } from '@ldclabs/cose-ts/ed25519';
import { Sign1Message } from '@ldclabs/cose-ts/sign1';
import { decode as cborgDecode } from 'cborg';
import { describe, expect, it } from 'vitest';

import { generateKeyPair } from '../../src/keys/keys.js';
import { mint } from '../../src/token/mint.js';

describe('COSE interoperability', () => {
  const pair = generateKeyPair();
  const minted = mint({
    key: pair.secretKey,
    tool: 'payments.refund',
    agent: 'support-bot',
    capability: 'admin',
    ttl: 60,
    when: [{ arg: 'amount', op: '<=', value: 50 }],
    issuer: 'capframe-test',
  });

  it('@ldclabs/cose-ts verifies the signature with the public key', () => {
    const key = Ed25519Key.fromPublic(pair.publicKey);
    const msg = Sign1Message.fromBytes(key, minted.bytes);
    expect(Buffer.from(msg.payload).length).toBeGreaterThan(0);
  });

  it('@ldclabs/cose-ts rejects it under another key and when tampered', () => {
    const other = Ed25519Key.fromPublic(generateKeyPair().publicKey);
    expect(() => Sign1Message.fromBytes(other, minted.bytes)).toThrow();
    const tampered = new Uint8Array(minted.bytes);
    tampered[tampered.length - 70]! ^= 1;
    expect(() => Sign1Message.fromBytes(Ed25519Key.fromPublic(pair.publicKey), tampered)).toThrow();
  });

  it('a generic CBOR decoder reads the envelope and the CWT claims', () => {
    const tags: ((inner: unknown) => unknown)[] = [];
    tags[18] = (inner) => ({ cose_sign1: inner });
    const envelope = cborgDecode(minted.bytes, { tags, useMaps: true }) as { cose_sign1: [Uint8Array, Map<unknown, unknown>, Uint8Array, Uint8Array] };
    const [protectedBytes, unprotected, payload, signature] = envelope.cose_sign1;
    const header = cborgDecode(protectedBytes, { useMaps: true }) as Map<number, unknown>;
    expect(header.get(1)).toBe(-8);
    expect(Buffer.from(header.get(4) as Uint8Array)).toEqual(Buffer.from(pair.kid));
    expect(unprotected.size).toBe(0);
    expect(signature.length).toBe(64);

    const claims = cborgDecode(payload, { useMaps: true }) as Map<number | string, unknown>;
    expect(claims.get(1)).toBe('capframe-test');
    expect(claims.get(2)).toBe('support-bot');
    expect(claims.get(4)).toBe(minted.claims.exp);
    expect(claims.get(6)).toBe(minted.claims.iat);
    expect((claims.get(7) as Uint8Array).length).toBe(16);
    expect(claims.get('tool')).toBe('payments.refund');
    expect(claims.get('cap')).toBe('admin');
    expect(claims.get('when')).toEqual([new Map<string, unknown>([['op', '<='], ['arg', 'amount'], ['value', 50]])]);
  });

  it('cborg in strict mode accepts the encoding (no duplicates, no indefinite lengths)', () => {
    expect(() =>
      cborgDecode(minted.bytes.subarray(1), { strict: true, rejectDuplicateMapKeys: true, allowIndefinite: false, useMaps: true }),
    ).not.toThrow();
  });
});
