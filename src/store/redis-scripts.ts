/**
 * The Lua scripts of the Redis store. Each runs atomically on the server and reads the
 * server's clock (TIME), so instances whose clocks differ still share one timeline.
 * Needs Redis 6.2 or later (ZADD GT, SET PXAT).
 */

/** Milliseconds since the epoch on the server. */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Revoke: drop expired revocations, add this one (keeping the later drop time if it
 * is there already), publish it. Returns 1 when the id was not revoked before.
 * KEYS[1] the revocation set; ARGV[1] the `tok_` id, ARGV[2] drop time (ms), ARGV[3] the channel.
 */
export const REVOKE_SCRIPT = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local added = redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return added`;

/** Drop revocations whose drop time has passed; returns how many. KEYS[1] the revocation set. */
export const TRIM_SCRIPT = `${NOW_MS}
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)`;

/**
 * Sliding-window rate limit: at most ARGV[1] calls in any ARGV[2]-millisecond window.
 * Records the call and returns 1 when there is room, else 0. KEYS[1] the window (a
 * sorted set of call times); ARGV[3] a member suffix unique to this call.
 */
export const RATE_LIMIT_SCRIPT = `${NOW_MS}
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1`;

