import { afterEach, describe, expect, it } from 'vitest';

import { parseRedisUrl, redactRedisUrl } from '../../src/store/redis-url.js';

afterEach(() => {
  delete process.env.CAPFRAME_REDIS_PASSWORD;
});

describe('Redis URLs', () => {
  it('are printed without credentials', () => {
    expect(redactRedisUrl('redis://:s3cret@cache:6379/2')).toBe('redis://***@cache:6379/2');
    expect(redactRedisUrl('rediss://user:s3cret@cache.internal:6380')).toBe('rediss://***@cache.internal:6380');
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactRedisUrl('redis://:p@ss:word@host')).not.toContain('word');
    expect(redactRedisUrl('not a url with secret')).toBe('<unparsable redis URL>');
  });

  it('carry host, port, database and credentials; the password falls back to CAPFRAME_REDIS_PASSWORD', () => {
    expect(parseRedisUrl('redis://cache').options).toEqual({ host: 'cache', port: 6379 });
    expect(parseRedisUrl('redis://u:p%40ss@cache:7000/3').options).toEqual({ host: 'cache', port: 7000, db: 3, username: 'u', password: 'p@ss' });
    process.env.CAPFRAME_REDIS_PASSWORD = 'from-env';
    expect(parseRedisUrl('redis://cache').options.password).toBe('from-env');
    expect(parseRedisUrl('redis://:from-url@cache').options.password).toBe('from-url');
    expect(parseRedisUrl('redis://[::1]:6390').options).toMatchObject({ host: '::1', port: 6390 });
  });

  it('refuses what they cannot mean, without echoing a password', () => {
    expect(() => parseRedisUrl('http://cache')).toThrow(/expected a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => parseRedisUrl('redis://:s3cret@cache/x')).toThrow(/^redis:\/\/\*\*\*@cache\/x: the path must be a database number/);
    expect(() => parseRedisUrl('redis://cache?tls=true')).toThrow(/query strings and fragments are not read/);
    try {
      parseRedisUrl('redis://:s3cret@cache/x');
    } catch (error) {
      expect((error as Error).message).not.toContain('s3cret');
    }
  });
});
