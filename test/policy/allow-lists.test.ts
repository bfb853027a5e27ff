/** allowed_origins / allowed_hosts: normalized to what browsers send, malformed entries located. */
import { describe, expect, it } from 'vitest';

import { CapframeError } from '../../src/errors.js';
import { normalizeHost, normalizeOrigin } from '../../src/policy/allow-lists.js';
import { parsePolicy } from '../../src/policy/index.js';

describe('normalizeOrigin', () => {
  it('gives the form of the Origin header: scheme://host[:port], lower case, default port dropped', () => {
    expect(normalizeOrigin('https://Console.Example.com')).toEqual({ value: 'https://console.example.com' });
    expect(normalizeOrigin('https://console.example.com:443/')).toEqual({ value: 'https://console.example.com' });
    expect(normalizeOrigin('http://localhost:5173')).toEqual({ value: 'http://localhost:5173' });
    expect(normalizeOrigin('http://[::1]:8080')).toEqual({ value: 'http://[::1]:8080' });
    expect(normalizeOrigin('chrome-extension://AbCdEf')).toEqual({ value: 'chrome-extension://abcdef' });
  });

  it('refuses anything that is not an origin, saying what is expected', () => {
    for (const bad of ['*', 'null', 'console.example.com', 'https://console.example.com/app', 'https://user:pw@console.example.com', 'https://console.example.com?x', '']) {
      expect(normalizeOrigin(bad), bad).toEqual({ error: `expected an origin such as "https://console.example.com" or "http://localhost:5173" (scheme, host and port only), got ${JSON.stringify(bad)}` });
    }
  });
});

describe('normalizeHost', () => {
  it('accepts a host name or address with or without a port, in lower case', () => {
    expect(normalizeHost('MCP.example.com')).toEqual({ value: 'mcp.example.com' });
    expect(normalizeHost('mcp.example.com:8080')).toEqual({ value: 'mcp.example.com:8080' });
    expect(normalizeHost('[::1]:80')).toEqual({ value: '[::1]:80' });
    expect(normalizeHost('10.0.0.5')).toEqual({ value: '10.0.0.5' });
  });

  it('refuses URLs, paths and wildcards', () => {
    for (const bad of ['https://mcp.example.com', 'mcp.example.com/mcp', '*.example.com', 'mcp.example.com:', '-x', '']) {
      expect(normalizeHost(bad), bad).toMatchObject({ error: expect.stringContaining('expected a host name as the Host header carries it') });
    }
  });
});

describe('in a policy', () => {
  it('loads normalized, and empty when absent', () => {
    const policy = parsePolicy('capframe:\n  version: "0.2"\n  allowed_origins: ["https://Console.example.com/"]\n  allowed_hosts: [MCP.example.com, "proxy.internal:8080"]\n');
    expect(policy.allowedOrigins).toEqual(['https://console.example.com']);
    expect(policy.allowedHosts).toEqual(['mcp.example.com', 'proxy.internal:8080']);
    const none = parsePolicy('capframe:\n  version: "0.2"\n');
    expect([none.allowedOrigins, none.allowedHosts]).toEqual([[], []]);
  });

  it('names file, line and column of a malformed entry', () => {
    const text = 'capframe:\n  version: "0.2"\n  allowed_origins:\n    - https://ok.example.com\n    - "*"\n  allowed_hosts: [https://mcp.example.com]\n';
    let error: unknown;
    try {
      parsePolicy(text, 'p.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CapframeError);
    const message = (error as CapframeError).message;
    expect(message).toContain('p.yaml:5:7: expected an origin such as');
    expect(message).toContain('p.yaml:6:19: expected a host name as the Host header carries it');
  });
});
