import type { IncomingMessage } from 'node:http';

import { describe, expect, it } from 'vitest';

import { cookieValue, crossOriginReason, sessionCookie } from '../../src/console/request.js';

const req = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

describe('console request checks', () => {
  it('Origin must name this very host (scheme-aware default ports); Sec-Fetch-Site, when sent, same-origin', () => {
    const host = '127.0.0.1:8080';
    expect(crossOriginReason(req({ host, origin: 'http://127.0.0.1:8080' }))).toBeUndefined();
    expect(crossOriginReason(req({ host, origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'same-origin' }))).toBeUndefined();
    expect(crossOriginReason(req({ host: 'console.example', origin: 'https://console.example' }))).toBeUndefined();
    expect(crossOriginReason(req({ host: 'console.example:443', origin: 'https://console.example' }))).toBeUndefined();
    const refused: Record<string, string>[] = [
      { host },
      { host, origin: 'null' },
      { host, origin: 'http://localhost:8080' },
      { host, origin: 'http://127.0.0.1:8081' },
      { host, origin: 'http://127.0.0.1:8080/console' },
      { host, origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'same-site' },
      { host, origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'none' },
      { origin: 'http://127.0.0.1:8080' },
      { host: 'console.example:80', origin: 'https://console.example' },
    ];
    for (const headers of refused) {
      expect(crossOriginReason(req(headers)), JSON.stringify(headers)).toBeDefined();
    }
  });

  it('reads one cookie among others; the Set-Cookie value carries the flags', () => {
    expect(cookieValue(req({ cookie: 'a=1; capframe_console=abc; b=2' }), 'capframe_console')).toBe('abc');
    expect(cookieValue(req({ cookie: 'xcapframe_console=abc' }), 'capframe_console')).toBeUndefined();
    expect(cookieValue(req({}), 'capframe_console')).toBeUndefined();
    expect(sessionCookie('id', { secure: true, maxAgeSeconds: 60 })).toBe('capframe_console=id; Path=/console; HttpOnly; SameSite=Strict; Max-Age=60; Secure');
  });
});
