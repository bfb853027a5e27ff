import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time equality of a presented secret and the expected one. Both are hashed
 * first, so neither the comparison nor its length check says how much of a guess was
 * right; an empty or missing expected secret never matches anything.
 *
 * @example
 * sameSecret(bearerOf(req.headersDistinct.authorization), process.env.CAPFRAME_ADMIN_KEY); // true or false
 */
export function sameSecret(presented: string | undefined, expected: string | undefined): boolean {
  if (presented === undefined || expected === undefined || expected === '') return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
