/**
 * Resource names `<server>:<uri>` and the normal form a URI must have to be judged.
 */
import { describe, expect, it } from 'vitest';

import { isResourceName, MAX_RESOURCE_URI_LENGTH, resourceUriProblem, splitResourceName } from '../../src/policy/resource-name.js';

describe('resource names', () => {
  it('are the names with a colon; the first colon ends the server', () => {
    expect(isResourceName('docs:file:///srv/a.md')).toBe(true);
    expect(isResourceName('database.query')).toBe(false);
    expect(splitResourceName('docs:file:///srv/a.md')).toEqual({ server: 'docs', uri: 'file:///srv/a.md' });
    // An upstream URI that claims another server's prefix stays that upstream's.
    expect(splitResourceName('a:b:secret://x')).toEqual({ server: 'a', uri: 'b:secret://x' });
    expect(splitResourceName(':test://x')).toBeUndefined();
    expect(splitResourceName('no-colon')).toBeUndefined();
  });
});

describe('resourceUriProblem', () => {
  it('accepts URIs in normal form', () => {
    for (const uri of [
      'file:///srv/docs/a.md',
      'test://static-text',
      'https://api.example.com/v1/items?q=a%20b#frag',
      'https://[::1]:8080/x',
      'db://customers/42',
      'mailto:someone@example.com',
      'file:///srv/docs/a%2Cb.md',
      'file:///srv/.hidden/a',
      'file:///srv/a..b',
      'file:///srv/docs/',
      'file:///',
      'other:test://claimed', // a rootless path: opaque, a URI inside a URI
    ]) {
      expect(resourceUriProblem(uri), uri).toBeUndefined();
    }
  });

  it('refuses what a server might resolve differently from the rule', () => {
    const cases: [string, RegExp][] = [
      ['file:///srv/docs/../secrets', /"\." or "\.\." segment/],
      ['file:///srv/docs/./a', /"\." or "\.\." segment/],
      ['file:///srv/docs/..', /"\." or "\.\." segment/],
      // A file or HTTP server collapses "//": "/srv/docs//private/x" is "/srv/docs/private/x" to it.
      ['file:///srv/docs//private/x', /empty segment/],
      ['file:////srv/docs/x', /empty segment/],
      ['https://h.example/v1//admin', /empty segment/],
      ['file:///srv/%73ecrets', /percent-encodes "s"/],
      ['file:///srv/docs%2F..%2Fsecrets', /percent-encodes "\/"/],
      ['file:///srv/docs%5csecrets', /percent-encodes "\\\\"/],
      ['file:///srv/%2e%2e/x', /percent-encodes "\."/],
      ['file:///srv/%00', /percent-encodes/],
      ['file:///srv/%zz', /malformed percent-escape/],
      ['file:///srv/%2', /malformed percent-escape/],
      ['FILE:///srv/a', /lower-case scheme/],
      ['https://API.example.com/x', /host is not in lower case/],
      ['file:///srv/a b', /contains U\+0020/],
      ['file:///srv/a\\b', /contains "\\\\"/],
      ['file:///srv/a\u0000', /contains U\+0000/],
      ['file:///srv/caf\u00e9', /contains U\+00E9/],
      ['file:///srv/\u202ereversed', /contains U\+202E/],
      ['/srv/a', /lower-case scheme/],
      ['', /empty/],
    ];
    for (const [uri, reason] of cases) expect(resourceUriProblem(uri), JSON.stringify(uri)).toMatch(reason);
  });

  it('bounds the length', () => {
    const long = `file:///${'a'.repeat(MAX_RESOURCE_URI_LENGTH)}`;
    expect(resourceUriProblem(long)).toMatch(/longer than 4096/);
    expect(resourceUriProblem(long.slice(0, MAX_RESOURCE_URI_LENGTH))).toBeUndefined();
  });
});
